package cachecore

import (
	"encoding/binary"
	"strconv"
)

// VM restarts. A VM that traps is gone with its Go state; with
// failure_policy FAIL_RELOAD Envoy builds a new one on that worker at the
// next request (after a backoff). The new VM cannot be told it replaces a
// crashed one, but shared data outlives VMs, so it can tell that it started
// late: after this process's VMs had already served traffic. VMs Envoy
// starts at configuration time (one per worker, one on the main thread, a
// throw-away canary per plugin configuration) start before any request. So:
//
//   - the first request any VM serves creates VMLifeKey (8 bytes, a
//     little-endian count of restarts);
//   - a VM instance whose first plugin start finds the key already there
//     started late, and counts itself as a restart (stat
//     modelcache.vm_restarts, warning "VM restarted (n)") at its first tick
//     or request — not at its start, because the canary Envoy runs for a
//     plugin configuration pushed while traffic flows starts late too, but
//     is discarded before it ever ticks or sees a request.
//
// A new plugin configuration only adds a root context to running VMs (not
// counted: the VM instance started before). A new module version pushed
// while traffic flows does start new VMs late, and is not a restart (the
// stat feeds a critical alert; an upgrade must not page): when the module
// names its build (VMLife.Module), "late" means after a VM of the same
// build served traffic (VMServedKey holds the last build that served: one
// key, whatever the number of upgrades), so only a reload of a build that
// has served counts.
// VMLifeKey holds the restart count in shared data.
const VMLifeKey = "mc:vm:restarts"

// VMServedKey holds, in shared data, the build of the last VM that
// started serving (VMLife.Module).
const VMServedKey = "mc:vm:served"

// VMLife is kept per VM instance (the host keeps it in a global, which
// lives exactly as long as its VM).
type VMLife struct {
	// Module names the module's build (the filter's build ID); empty: not
	// known, and any VM of the process that served counts.
	Module  string
	started bool // a root context of this VM instance has started
	late    bool // ... and the process had served traffic by then
	live    bool // this VM has had its first tick or request
	marked  bool // this VM knows VMLifeKey exists
}

// Start runs when a root context starts; only the VM instance's first
// start matters.
func (l *VMLife) Start(s Store) {
	if l.started {
		return
	}
	l.started = true
	_, _, err := s.Get(VMLifeKey)
	l.late = err == nil
	if l.late && l.Module != "" {
		served, _, err := s.Get(VMServedKey)
		l.late = err == nil && string(served) == l.Module
	}
	l.marked = l.late
}

// Live runs at every tick (request false) and every new stream; after a
// VM's first request it is two branches. It reports whether this VM
// replaces one that stopped, with the log line that says so.
func (l *VMLife) Live(s Store, request bool) (restarted bool, warning string) {
	if !l.live {
		l.live = true
		if l.late {
			restarted, warning = true, restartWarning(countRestart(s))
		}
	}
	if request && !l.marked {
		l.markTraffic(s)
	}
	return restarted, warning
}

// Settled reports whether Live has nothing left to do for a request: the
// VM is live and knows VMLifeKey exists. It inlines, so that the host's
// check before Live costs a request of a settled VM (every request once
// one has marked traffic) no call.
func (l *VMLife) Settled() bool { return l.live && l.marked }

// markTraffic creates VMLifeKey if no VM has yet. Two VMs creating it at
// once both write a zero count: no restart can be counted before the key
// exists, so nothing is lost.
func (l *VMLife) markTraffic(s Store) {
	_, _, err := s.Get(VMLifeKey)
	switch {
	case err == nil:
		l.marked = true
	case errIs(err, ErrNotFound):
		if s.Set(VMLifeKey, make([]byte, 8), 0) == nil {
			l.marked = true
		}
	}
	if l.marked && l.Module != "" {
		// This build serves from now on (a lost race with another
		// build's VM leaves that one's name: a reload is then taken for
		// an upgrade, never the reverse).
		if served, cas, err := s.Get(VMServedKey); err != nil || string(served) != l.Module {
			if err != nil {
				cas = 0
			}
			_ = s.Set(VMServedKey, []byte(l.Module), cas)
		}
	}
}

// countRestart adds one to the process-wide restart count (CAS; the key
// exists, since this VM found it at start) and returns it (0 if it could
// not be read).
func countRestart(s Store) uint64 {
	var n uint64
	for try := 0; try < 16; try++ {
		v, cas, err := s.Get(VMLifeKey)
		if err != nil || len(v) != 8 {
			break
		}
		n = binary.LittleEndian.Uint64(v) + 1
		var b [8]byte
		binary.LittleEndian.PutUint64(b[:], n)
		if err := s.Set(VMLifeKey, b[:], cas); err == nil || !errIs(err, ErrCasMismatch) {
			break
		}
	}
	return n
}

func restartWarning(n uint64) string {
	return "VM restarted (" + strconv.FormatUint(n, 10) + "): this VM replaces one that stopped " +
		"while serving (a crash reloaded by failure_policy FAIL_RELOAD; a new build's VMs are not counted); " +
		"the cache in shared data is intact, this VM's in-flight state was lost"
}

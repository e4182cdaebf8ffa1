package main

import (
	"encoding/binary"
	"errors"
	"strconv"

	"github.com/modelcache/modelcache/filter/proxywasm"
	"github.com/modelcache/modelcache/filter/proxywasm/types"
)

// VM restarts. A VM that traps is gone with its Go state; with
// failure_policy FAIL_RELOAD Envoy builds a new one on that worker at the
// next request (after a backoff). The new VM cannot be told it replaces a
// crashed one, but shared data outlives VMs, so it can tell that it started
// late: after this process's VMs had already served traffic. VMs Envoy
// starts at configuration time (one per worker, one on the main thread, a
// throw-away canary per plugin configuration) start before any request. So:
//
//   - the first request any VM serves creates vmLifeKey (8 bytes, a
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
// while traffic flows does start new VMs late; they are counted too — they
// also begin with no Go state, which is what the stat is for.
const vmLifeKey = "mc:vm:restarts"

// vmLife is per VM instance: a Go global lives exactly as long as its VM.
var vmLife struct {
	started bool // a root context of this VM instance has started
	late    bool // ... and the process had served traffic by then
	live    bool // this VM has had its first tick or request
	marked  bool // this VM knows vmLifeKey exists
}

// noteVMStart runs when a root context starts; only the VM instance's first
// start matters.
func noteVMStart() {
	if vmLife.started {
		return
	}
	vmLife.started = true
	_, _, err := proxywasm.GetSharedData(vmLifeKey)
	vmLife.late = err == nil
	vmLife.marked = vmLife.late
}

// noteLive runs at every tick and every new stream; after a VM's first
// request it is two branches.
func (p *plugin) noteLive(request bool) {
	if !vmLife.live {
		vmLife.live = true
		if vmLife.late {
			p.countRestart()
		}
	}
	if request && !vmLife.marked {
		markTraffic()
	}
}

// markTraffic creates vmLifeKey if no VM has yet. Two VMs creating it at
// once both write a zero count: no restart can be counted before the key
// exists, so nothing is lost.
func markTraffic() {
	_, _, err := proxywasm.GetSharedData(vmLifeKey)
	switch {
	case err == nil:
		vmLife.marked = true
	case errors.Is(err, types.ErrorStatusNotFound):
		if proxywasm.SetSharedData(vmLifeKey, make([]byte, 8), 0) == nil {
			vmLife.marked = true
		}
	}
}

// countRestart adds one to the process-wide restart count (CAS; the key
// exists, since this VM found it at start) and reports it.
func (p *plugin) countRestart() {
	p.stats.restarts.Increment(1)
	var n uint64
	for try := 0; try < 16; try++ {
		v, cas, err := proxywasm.GetSharedData(vmLifeKey)
		if err != nil || len(v) != 8 {
			break
		}
		n = binary.LittleEndian.Uint64(v) + 1
		var b [8]byte
		binary.LittleEndian.PutUint64(b[:], n)
		if err := proxywasm.SetSharedData(vmLifeKey, b[:], cas); err == nil {
			break
		} else if !errors.Is(err, types.ErrorStatusCasMismatch) {
			break
		}
	}
	proxywasm.LogWarn("VM restarted (" + strconv.FormatUint(n, 10) + "): this VM replaces one that stopped " +
		"while serving (a crash reloaded by failure_policy FAIL_RELOAD, or a new module version); " +
		"the cache in shared data is intact, this VM's in-flight state was lost")
}

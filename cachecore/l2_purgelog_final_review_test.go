package cachecore

import (
	"bytes"
	"strings"
	"testing"
)

// Review Z56. README (Invalidation): "A purged entry is therefore gone from
// every proxy's L1 within sync_interval + tick_period"; the purge log's
// reader promises every purge another proxy logs is applied to this L1, or
// the whole L1 is dropped. l2Read moves the cursor past a record before
// applying it (l2Apply) and saves the position whatever l2Apply answered:
// a purge whose application fails here (a shared-data write refused, CAS
// contention on the bucket's index) is logged at info and never tried
// again, and nothing is dropped instead: once the fault has passed, the
// purged answer is served from this L1 until its TTL.
func TestL2PurgeThatFailedToApplyIsNotSkipped(t *testing.T) {
	for _, tc := range []struct {
		name  string
		purge string
		fail  string // shared-data keys whose writes fail during the read
		err   error
	}{
		{"entry purge, index write refused", `{"path":"/v1/chat/completions","headers":{"authorization":"Bearer sk-alice"},"body":` + chatRequest("hello") + `}`, "mc:i:", errStoreDown},
		{"entry purge, index contended", `{"path":"/v1/chat/completions","headers":{"authorization":"Bearer sk-alice"},"body":` + chatRequest("hello") + `}`, "mc:i:", ErrCasMismatch},
		{"model purge, model state write refused", `{"route":"chat","model":"gpt-4o-mini"}`, "mc:m:", errStoreDown},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m := newL2Mesh(t, "")
			fs := &flakyStore{Store: NewMemStore()}
			m.p[1] = New(m.p[1].cfg, Options{Store: fs, Now: m.clock.Now, Rand: seededRand(1)})
			m.step(m.p[1].L2Tick()) // B: its start record, position 1
			if !m.p[1].l2s.started || m.p[1].l2s.cursor != 1 {
				t.Fatalf("setup: B %+v", m.p[1].l2s)
			}
			m.copyToBsL1() // B has "hello" in L1
			m.purgeOnA(tc.purge)
			fs.setErr = func(k string) error {
				if strings.HasPrefix(k, tc.fail) {
					return tc.err
				}
				return nil
			}
			m.clock.Advance(DefaultL2SyncInterval)
			var logs []string
			acts := m.p[1].L2Tick() // B reads A's purge; applying it here fails
			for len(acts) > 0 {
				a := acts[0]
				acts = acts[1:]
				switch a.Kind {
				case ActDispatch:
					acts = append(acts, a.Call.Done(m.wd.do(a.Call))...)
				case ActLog:
					logs = append(logs, string(a.Message))
				}
			}
			if !strings.Contains(strings.Join(logs, "|"), "could not be applied") {
				t.Fatalf("setup: B's read did not fail to apply the purge: %q", logs)
			}
			fs.setErr = nil
			for range 3 {
				m.clock.Advance(DefaultL2SyncInterval)
				m.step(m.p[1].L2Tick())
			}
			if cs, body := m.ask(1, "hello", "fresh"); !strings.Contains(cs, "fwd=miss") || !bytes.Contains(body, []byte("fresh")) {
				t.Fatalf("B read A's purge while its shared data refused it, moved its position past it (%+v) and serves the purged answer from L1: %q %s", m.p[1].l2s, cs, body)
			}
		})
	}
}

// Review Z56. README: "A proxy that has no position yet ... if the log is
// not empty then, ... drops its L1 once". A process whose workers start
// together (Envoy starts every worker's VM at once, their ticks aligned)
// on an empty log, no other proxy logging anything: each worker's LLEN
// answers 0, each appends a start record, and every worker whose start
// record lands after a sibling's (same process, no purge) takes that
// sibling's record for another proxy's and drops the shared L1 again
// (l2MarkStart, n > 1 -> l2SyncFirst). With three workers, the process's
// L1 is dropped twice, what the first worker cached between included.
func TestL2SiblingWorkersStartRecordsDropL1AtMostOnce(t *testing.T) {
	m := newL2Mesh(t, "")
	w := []*Cache{m.p[1],
		New(m.p[1].cfg, Options{Store: m.p[1].store, Now: m.clock.Now, Rand: seededRand(7)}),
		New(m.p[1].cfg, Options{Store: m.p[1].store, Now: m.clock.Now, Rand: seededRand(8)})}
	held := make([][]Action, len(w))
	for i, vm := range w { // every worker's LLEN is answered 0 before any start record lands
		acts := vm.L2Tick()
		if len(acts) != 1 || acts[0].Kind != ActDispatch || !strings.HasPrefix(headerValue(acts[0].Call.Headers, ":path"), "/LLEN/") {
			t.Fatalf("setup: worker %d: %v", i, acts)
		}
		held[i] = acts[0].Call.Done(m.wd.do(acts[0].Call))
		if len(held[i]) != 1 || !strings.HasPrefix(headerValue(held[i][0].Call.Headers, ":path"), "/RPUSH/") {
			t.Fatalf("setup: worker %d sent no start record: %v", i, held[i])
		}
	}
	m.step(held[0]) // worker 1's start record: index 0, no drop
	m.step(held[1]) // worker 2's: index 1, after its sibling's
	m.copyToBsL1()  // worker 1 caches "hello" in the process's L1
	m.freed = 0
	m.step(held[2]) // worker 3's: index 2
	if cs, _ := m.ask(1, "hello", "fresh"); !strings.Contains(cs, "hit") || strings.Contains(cs, "l2") {
		t.Fatalf("no purge was ever logged (the log holds only this process's start records), yet a third worker's start dropped the process's L1 again (%d entries freed): %q", m.freed, cs)
	}
}

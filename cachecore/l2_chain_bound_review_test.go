package cachecore

import (
	"strings"
	"testing"
)

// Review Z46 (mend 0c67c1b). A VM reads the purge log once per
// sync_interval: a bounded amount of work per tick. Since 0c67c1b, LLEN's
// answer (n > 0) sends the LRANGE at once, and an LRANGE that finds no
// record at n-1 sends LLEN at once (l2LogLost): when the two disagree for
// a while — webdis behind a load balancer over a primary and a lagging
// replica, a log trimmed in a loop, or webdis answering garbage — the VM
// reads without end, never waiting for a tick, and one L2Tick never
// finishes its chain of calls.
func TestL2LLENAndLRANGEDisagreeingIsBoundedPerTick(t *testing.T) {
	m := newL2Mesh(t, "")
	b := m.p[1]
	answer := func(c *Call) CallResult {
		body := `{"LRANGE":[]}`
		if strings.Contains(headerValue(c.Headers, ":path"), "/LLEN/") {
			body = `{"LLEN":3}`
		}
		return CallResult{Status: 200, Headers: [][2]string{{":status", "200"}}, Body: []byte(body)}
	}
	calls := 0
	acts := b.L2Tick()
	for len(acts) > 0 && calls < 1000 {
		a := acts[0]
		acts = acts[1:]
		if a.Kind == ActDispatch {
			calls++
			acts = append(acts, a.Call.Done(answer(a.Call))...)
		}
	}
	if calls > 4 {
		t.Fatalf("one L2Tick made %d purge-log reads (stopped at 1000) without waiting for a tick", calls)
	}
}

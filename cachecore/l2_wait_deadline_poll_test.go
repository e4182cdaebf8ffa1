package cachecore

import (
	"strings"
	"testing"
	"time"
)

// README (Cross-proxy single flight): a slow answer "is still asked once
// across the mesh, as long as it comes within coalesce.max_wait (past that
// a waiting proxy's leader calls the model itself)". Review Z75's mend puts
// B's last poll on the tick before max_wait (nextPoll capped at
// waitSince+max_wait-tick_period) and then, on the tick at max_wait,
// l2Tick goes upstream without a look: an answer written to L2 between
// that last poll and max_wait (here 50 ms before it, on the default
// 100 ms ticks) is asked of the model a second time.
func TestL2AnswerInL2JustBeforeMaxWaitIsNotAskedAgain(t *testing.T) {
	m := newL2Mesh(t, "")
	a, b := m.leadAndWait(t)
	maxWait := b.Request().Route.Coalesce.MaxWait
	tick := m.p[1].cfg.TickPeriod
	var waited time.Duration
	for waited < maxWait-tick {
		m.clock.Advance(tick)
		waited += tick
		m.step(a.KeepLease())
		got, _ := m.step(b.Tick())
		if got != "" {
			t.Fatalf("setup: B at %v: %q", waited, got)
		}
	}
	// B polled at max_wait - tick (its last poll), found A still leading.
	// A's answer lands in L2 50 ms later, 50 ms before B's max_wait.
	m.clock.Advance(tick / 2)
	m.answer(a, 200, "the answer")
	if _, ok := m.wd.kv[DefaultL2Prefix+"e:"+l2Hash(a.Request().Key[:a.Request().stableLen])]; !ok {
		t.Fatal("setup: A's answer is not in L2")
	}
	m.clock.Advance(tick / 2) // B's next tick: max_wait
	got, _ := m.step(b.Tick())
	for i := 0; i < 20 && got == ""; i++ { // a poll under way may decide on the next ticks
		m.clock.Advance(tick)
		got, _ = m.step(b.Tick())
	}
	if strings.Contains(got, "forward") || !strings.Contains(got, "serve") {
		t.Fatalf("B at max_wait (%v), A's answer in L2 since %v: %q — the model is asked a second time", maxWait, tick/2, got)
	}
}

package cachecore

import (
	"strings"
	"testing"
	"time"
)

// README (Cross-proxy single flight): a slow answer "is still asked once
// across the mesh, as long as it comes within coalesce.max_wait (past that
// a waiting proxy's leader calls the model itself)", and the waiting
// proxies "serve the answer as soon as it is in L2". Here A's answer is in
// L2 0.3 s before B's max_wait ends; B's polls back off to 1 s, its next
// poll would fall after max_wait, and at max_wait B calls the model itself
// without one last look: a second model call for an answer L2 already had.
func TestL2AnswerInL2BeforeMaxWaitIsServedNotAskedAgain(t *testing.T) {
	m := newL2Mesh(t, "")
	a, b := m.leadAndWait(t)
	maxWait := b.Request().Route.Coalesce.MaxWait
	answerAt := maxWait - 300*time.Millisecond
	var waited time.Duration
	answered := false
	for waited < 2*maxWait {
		m.clock.Advance(100 * time.Millisecond)
		waited += 100 * time.Millisecond
		m.step(a.KeepLease())
		if !answered && waited >= answerAt {
			m.answer(a, 200, "the answer") // written to L2, lease released
			answered = true
			if _, ok := m.wd.kv[DefaultL2Prefix+"e:"+l2Hash(a.Request().Key[:a.Request().stableLen])]; !ok {
				t.Fatal("A's answer is not in L2")
			}
		}
		got, _ := m.step(b.Tick())
		if strings.Contains(got, "serve") {
			return
		}
		if strings.Contains(got, "forward") {
			t.Fatalf("B, %v after it started to wait (max_wait %v): %q — A's answer had been in L2 for %v; model calls: 2",
				waited, maxWait, got, waited-answerAt)
		}
	}
	t.Fatal("B neither served nor forwarded")
}

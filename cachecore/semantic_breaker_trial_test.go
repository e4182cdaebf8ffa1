package cachecore

import (
	"testing"
	"time"
)

// A call sent while the breaker was closed whose failure comes back after
// the breaker opened and its trial went out does not end that trial: a
// second trial went out while the first still hung (Z262's suspicion).
func TestEmbedBreakerLateFailureKeepsTheTrialOut(t *testing.T) {
	s := &Semantic{}
	s.Breaker.Failures, s.Breaker.CoolDown = 2, 100*time.Millisecond
	s.Embedding.Timeout = time.Second
	b := &embedBreaker{}
	for i := 0; i < 3; i++ { // three calls while closed
		if ok, _ := b.allow(0, s); !ok {
			t.Fatalf("call %d refused by a closed breaker", i)
		}
	}
	b.result(false, false, 1)
	b.result(false, false, 2) // open
	if ok, _ := b.allow(50, s); ok {
		t.Fatal("a call allowed within the cool-down")
	}
	if ok, trial := b.allow(200, s); !ok || !trial {
		t.Fatal("no trial after the cool-down")
	}
	b.result(false, false, 300) // the third call's late failure
	if ok, _ := b.allow(450, s); ok {
		t.Fatal("a second trial went out while the first was out (a late failure of an earlier call ended it)")
	}
	b.result(false, true, 500) // the trial fails: open again
	if ok, _ := b.allow(550, s); ok {
		t.Fatal("a call allowed within the cool-down after the failed trial")
	}
	if ok, trial := b.allow(650, s); !ok || !trial {
		t.Fatal("no new trial after the cool-down of the failed trial")
	}
}

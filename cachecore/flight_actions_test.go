package cachecore

import "testing"

// Nothing lost: a step that emits more actions than the Flight's fixed
// array holds keeps every one, in order. No path emits more than eight
// today (a rewritten coalesced batch none of whose items is kept emits
// exactly eight, the followers' wake-up last:
// filter/batch_eight_actions_test.go); the next action added to such a
// path must not drop the wake-up silently.
func TestFlightKeepsEveryActionPastItsArray(t *testing.T) {
	f := &Flight{}
	for round := 0; round < 2; round++ {
		f.reset()
		n := len(f.out) + 3
		for i := 0; i < n; i++ {
			f.emit(Action{Kind: ActCount, Event: Event(i)})
		}
		got := f.actions()
		if len(got) != n {
			t.Fatalf("round %d: %d actions emitted, %d kept", round, n, len(got))
		}
		for i, a := range got {
			if a.Event != Event(i) {
				t.Fatalf("round %d: action %d is event %d", round, i, a.Event)
			}
		}
	}
	f.reset()
	f.emit(Action{Kind: ActInternal})
	if got := f.actions(); len(got) != 1 || got[0].Kind != ActInternal {
		t.Fatalf("after a reset, a step's actions are its own: %v", got)
	}
}

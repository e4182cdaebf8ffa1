package cachecore

import (
	"fmt"
	"testing"
)

// An index filled under max_entries 1,280 (20 segments in the partition),
// then its route reconfigured to max_entries 128 (shared data outlives a
// config update). Every stored turn has expired: a sweep must be able to
// drop them all, and new turns must be indexed again.
func TestSemanticSweepReachesSegmentsPastALoweredBound(t *testing.T) {
	store := NewMemStore()
	q := make([]int8, 16)
	for i := range q {
		q[i] = int8(i + 1)
	}
	var cursor semSweepPos
	big := semIndexStore{s: readerOf(store), now: 0, maxSeg: semMaxSegments(1280)}
	for i := 0; i < 1280; i++ {
		if ev, err := big.add(1, 2, q, 10, []byte(fmt.Sprintf(`"turn %d"`, i)), 1000, 0, 1280, semOwner{}, &cursor); err != nil || ev != EvSemanticIndexed {
			t.Fatalf("turn %d: %v %v", i, ev, err)
		}
	}
	full := 0
	for i := 0; i < 200; i++ {
		now := int64(10_000 + i)
		small := semIndexStore{s: readerOf(store), now: now, maxSeg: semMaxSegments(128)}
		ev, err := small.add(1, 2, q, 10, []byte(fmt.Sprintf(`"new turn %d"`, i)), now+1_000_000, now, 128, semOwner{}, &cursor)
		if err != nil {
			t.Fatal(err)
		}
		if ev == EvSemanticIndexFull && i < 100 {
			full++
		}
	}
	if full > 0 {
		t.Fatalf("%d of the first 100 new turns refused index_full, though every one of the 1,280 stored turns expired long ago", full)
	}
}

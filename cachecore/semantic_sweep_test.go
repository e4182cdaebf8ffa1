package cachecore

import (
	"encoding/binary"
	"fmt"
	"testing"
)

// A steady stream of turns into one partition (one system prompt, single
// turns: the common case), each answer fresh for 1 s, one turn every
// 10 ms: about 100 turns are live at any time, under max_entries 128. A
// full index sweeps expired turns and makes room, so every turn after the
// first second must be indexed. The sweep restarts at segment 0 of the
// partition and visits at most 16 segments, while new turns only go to the
// last segment: once the first 16 segments are empty, nothing is ever
// swept again and the index stays full of expired turns.
func TestSemanticSweepReachesExpiredTurnsPastSixteenSegments(t *testing.T) {
	store := NewMemStore()
	q := make([]int8, 16)
	for i := range q {
		q[i] = int8(i + 1)
	}
	var norm float32 = 10
	cursor := 0
	full := 0
	first := -1
	for i := 0; i < 3000; i++ {
		now := int64(i) * 10
		ix := semIndexStore{readerOf(store), now}
		ev, err := ix.add(1, 2, q, norm, []byte(fmt.Sprintf(`"turn %d"`, i)), now+1000, now, 128, &cursor)
		if err != nil {
			t.Fatal(err)
		}
		if ev == EvSemanticIndexFull && i > 200 {
			full++
			if first < 0 {
				first = i
			}
		}
	}
	head, _, _ := store.Get(semPrefix(1, 2) + "h")
	if full > 0 {
		t.Fatalf("%d of 2,800 turns not indexed (index_full from turn %d on) with ~100 live of max_entries 128; the partition has %d segments",
			full, first, binary.LittleEndian.Uint32(head))
	}
}

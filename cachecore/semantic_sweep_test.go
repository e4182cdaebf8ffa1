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
	var cursor semSweepPos
	full := 0
	first := -1
	for i := 0; i < 3000; i++ {
		now := int64(i) * 10
		ix := semIndexStore{s: readerOf(store), now: now}
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

// The same stream: a partition opens a segment only when all of its
// segments are full, so it keeps at most semMaxSegments(max_entries), and
// the namespace's count is the records its segments hold.
func TestSemanticPartitionReusesItsSegments(t *testing.T) {
	store := NewMemStore()
	q := make([]int8, 16)
	for i := range q {
		q[i] = int8(i + 1)
	}
	var cursor semSweepPos
	for i := 0; i < 3000; i++ {
		now := int64(i) * 10
		ix := semIndexStore{s: readerOf(store), now: now}
		if _, err := ix.add(1, 2, q, 10, []byte(fmt.Sprintf(`"turn %d"`, i)), now+1000, now, 128, &cursor); err != nil {
			t.Fatal(err)
		}
	}
	head, _, _ := store.Get(semPrefix(1, 2) + "h")
	nseg := int(binary.LittleEndian.Uint32(head))
	if nseg > semMaxSegments(128) {
		t.Fatalf("%d segments for max_entries 128 (at most %d)", nseg, semMaxSegments(128))
	}
	held := 0
	for s := 0; s < nseg; s++ {
		if seg, _, err := store.Get(fmt.Sprintf("%sr%d", semPrefix(1, 2), s)); err == nil && len(seg) >= 2 {
			held += int(binary.LittleEndian.Uint16(seg))
		}
	}
	n, _, _ := store.Get(semNamespace(1) + "n")
	if got := int(binary.LittleEndian.Uint32(n)); got != held || held > 128 {
		t.Fatalf("the count says %d records, the segments hold %d (max_entries 128)", got, held)
	}
}

// getLimit fails its test after limit reads.
type getLimit struct {
	Store
	t     *testing.T
	limit int
}

func (g *getLimit) Get(key string) ([]byte, uint32, error) {
	if g.limit--; g.limit < 0 {
		g.t.Fatalf("more reads than the bound allows (at %s)", key)
	}
	return g.Store.Get(key)
}

// A segment count in h that no writer of this index could have set (a
// corrupt or hostile value) costs a search at most the partition's bound
// of segment reads, not one per counted segment.
func TestSemanticSegmentCountReadIsBounded(t *testing.T) {
	store := NewMemStore()
	q := make([]int8, 16)
	for i := range q {
		q[i] = int8(i + 1)
	}
	ix := semIndexStore{s: readerOf(store), maxSeg: semMaxSegments(128)}
	if _, err := ix.add(1, 2, q, 10, []byte(`"a turn"`), 1<<62, 0, 128, new(semSweepPos)); err != nil {
		t.Fatal(err)
	}
	_ = store.Set(semPrefix(1, 2)+"h", encodeSemHead(1<<32-1, 0), 0)
	ix.s = readerOf(&getLimit{Store: store, t: t, limit: 1 + semMaxSegments(128) + semShortlist})
	if got := ix.search(1, 2, q, 10, 0.5); len(got) != 1 {
		t.Fatalf("%d candidates, want the one turn", len(got))
	}
}

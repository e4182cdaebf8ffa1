package cachecore

import (
	"encoding/binary"
	"fmt"
	"strings"
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
		ev, err := ix.add(1, 2, q, norm, []byte(fmt.Sprintf(`"turn %d"`, i)), now+1000, now, 128, semOwner{}, &cursor)
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
		if _, err := ix.add(1, 2, q, 10, []byte(fmt.Sprintf(`"turn %d"`, i)), now+1000, now, 128, semOwner{}, &cursor); err != nil {
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
	if _, err := ix.add(1, 2, q, 10, []byte(`"a turn"`), 1<<62, 0, 128, semOwner{}, new(semSweepPos)); err != nil {
		t.Fatal(err)
	}
	_ = store.Set(semPrefix(1, 2)+"h", encodeSemHead(1<<32-1, 0), 0)
	ix.s = readerOf(&getLimit{Store: store, t: t, limit: 1 + semMaxSegments(128) + semShortlist})
	if got := ix.search(1, 2, q, 10, 0.5); len(got) != 1 {
		t.Fatalf("%d candidates, want the one turn", len(got))
	}
}

const semPurgeConfig = `{"upstream_cluster":"model","purge":{"path":"/_purge","token":"0123456789abcdef-token"},
  "routes":[{"name":"chat","kind":"chat","path_prefix":"/v1/chat/completions",
  "ttl":"1h","semantic":{"embedding":{"cluster":"embeddings","model":"e5"},"max_entries":2}}]}`

// A purge of the model moves its generation, part of every partition: the
// turns indexed before can never be served again, and must not keep the
// index full until their answers' ttl has passed.
func TestSemanticSweepDropsPurgedTurns(t *testing.T) {
	e := newSemEnv(t, "")
	e.testEnv = newEnv(t, semPurgeConfig)
	store := func(q string) string { f, _ := e.ask(alice, q, nil); return e.answer(f, "a") }
	store("question number one")
	store("question number two")
	if _, err := e.cache.Purge([]byte(`{"route":"chat","model":"gpt-4o-mini"}`), ""); err != nil {
		t.Fatal(err)
	}
	if got := store("question number three"); !strings.Contains(got, "semantic.indexed") {
		t.Fatalf("after a purge of the model: %q", got)
	}
}

// A purge of everything moves every model's generation: the same as a
// purge of the model for the index.
func TestSemanticSweepDropsTurnsPurgedWithEverything(t *testing.T) {
	e := newSemEnv(t, "")
	e.testEnv = newEnv(t, semPurgeConfig)
	store := func(q string) string { f, _ := e.ask(alice, q, nil); return e.answer(f, "a") }
	store("question number one")
	store("question number two")
	if _, err := e.cache.Purge([]byte(`{"all":true}`), ""); err != nil {
		t.Fatal(err)
	}
	if got := store("question number three"); !strings.Contains(got, "semantic.indexed") {
		t.Fatalf("after a purge of everything: %q", got)
	}
}

// A dead partition (its model's generation moved on) of several segments
// is dropped by sweeps within their budget of segments, resuming where
// the last stopped; then its values are empty and it leaves the
// namespace's list, and the count is what the live partition holds.
func TestSemanticSweepDropsADeadPartitionForGood(t *testing.T) {
	store := NewMemStore()
	setModel := func(gen uint64) {
		_ = store.Set(modelKey(7), encodeModels([]modelRecord{{id: 7, gen: gen, until: 1 << 50}}), 0)
	}
	setModel(1)
	q := make([]int8, 16)
	for i := range q {
		q[i] = int8(i + 1)
	}
	ix := semIndexStore{s: readerOf(store)}
	const dead = 20 * semSegRecords // 20 segments: more than one sweep's 16
	var cursor semSweepPos
	for i := 0; i < dead; i++ {
		if ev, err := ix.add(1, 2, q, 10, []byte(fmt.Sprintf(`"turn %d"`, i)), 1<<50, 0, dead, semOwner{7, 1}, &cursor); err != nil || ev != EvSemanticIndexed {
			t.Fatalf("turn %d: %v %v", i, ev, err)
		}
	}
	setModel(2) // a purge, a version switch, a shadow invalidation
	for i := 0; i < 3; i++ {
		if ev, err := ix.add(1, 3, q, 10, []byte(fmt.Sprintf(`"new turn %d"`, i)), 1<<50, 0, dead, semOwner{7, 2}, &cursor); err != nil || ev != EvSemanticIndexed {
			t.Fatalf("new turn %d: %v %v", i, ev, err)
		}
	}
	// The first store swept 16 of the 20 dead segments: the next store's
	// sweep, or a later one, finishes them.
	for i := 0; i < 4; i++ {
		ix.sweep(1, 0, &cursor)
	}
	for k, v := range store.m {
		if strings.HasPrefix(k, semPrefix(1, 2)) && len(v.v) > 0 {
			t.Errorf("%s of the dead partition holds %d bytes", k, len(v.v))
		}
	}
	parts, _, _ := store.Get(semNamespace(1) + "parts")
	if len(parts) != 8 || binary.LittleEndian.Uint64(parts) != 3 {
		t.Errorf("the namespace lists %x, want only the live partition", parts)
	}
	n, _, _ := store.Get(semNamespace(1) + "n")
	if got := binary.LittleEndian.Uint32(n); got != 3 {
		t.Errorf("count %d, want the 3 live turns", got)
	}
	if got := ix.search(1, 3, q, 10, 0.5); len(got) == 0 {
		t.Error("the live partition's turns are not found")
	}
}

// A late writer of a dead generation (its store just before the purge,
// its index write after) that reopens the partition while dropPartition
// takes it off the namespace's list must not leave its record counted in
// n but in no listed partition, where no sweep or reclaim reaches it:
// here that held a max_entries of 1 full for good, and every live turn
// after it was refused index_full.
func TestSemanticLateWriterDuringDropIsNotOrphaned(t *testing.T) {
	mem := NewMemStore()
	hs := &hookStore{Store: mem}
	setModel := func(gen uint64) {
		_ = mem.Set(modelKey(7), encodeModels([]modelRecord{{id: 7, gen: gen, until: 1 << 50}}), 0)
	}
	setModel(1)
	q := make([]int8, 16)
	for i := range q {
		q[i] = int8(i + 1)
	}
	ix := semIndexStore{s: readerOf(hs)}
	var cursor semSweepPos
	if ev, err := ix.add(1, 2, q, 10, []byte(`"old turn"`), 1<<50, 0, 1, semOwner{7, 1}, &cursor); err != nil || ev != EvSemanticIndexed {
		t.Fatalf("setup: %v %v", ev, err)
	}
	setModel(2) // a purge
	// The sweep's 2nd read of the list is unregister's, after h was read
	// empty: a late writer of generation 1 reopens the partition then.
	hs.key, hs.n = semNamespace(1)+"parts", 2
	hs.hook = func() {
		late := semIndexStore{s: readerOf(mem)}
		var c semSweepPos
		if ev, err := late.add(1, 2, q, 10, []byte(`"late turn"`), 1<<50, 0, 100, semOwner{7, 1}, &c); err != nil || ev != EvSemanticIndexed {
			t.Fatalf("late writer: %v %v", ev, err)
		}
	}
	// (A store's sweep: a store of a live turn here would take the one
	// entry the drop frees, and the live turn below could not be indexed.)
	ix.sweep(1, 0, &cursor)
	for i := 0; i < 3; i++ {
		ix.sweep(1, 0, &cursor)
	}
	if h, _, _ := mem.Get(semPrefix(1, 2) + "h"); len(h) > 0 {
		parts, _, _ := mem.Get(semNamespace(1) + "parts")
		g, _, _ := mem.Get(semPrefix(1, 2) + "g")
		t.Errorf("the dead partition holds a segment again (h %x) but the list is %x and its owner %x: no sweep reaches it", h, parts, g)
	}
	if ev, _ := ix.add(1, 3, q, 10, []byte(`"another live turn"`), 1<<50, 0, 1, semOwner{7, 2}, &cursor); ev != EvSemanticIndexed {
		n, _, _ := mem.Get(semNamespace(1) + "n")
		t.Errorf("a live turn after the drop: %v (count %x): the orphaned dead record holds the index full", ev, n)
	}
}

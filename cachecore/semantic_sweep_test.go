package cachecore

import (
	"encoding/binary"
	"fmt"
	"runtime"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/modelcache/modelcache/internal/hammer"
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

// bytesRead counts the bytes read from a Store.
type bytesRead struct {
	*MemStore
	read int
}

func (s *bytesRead) Get(key string) ([]byte, uint32, error) {
	v, cas, err := s.MemStore.Get(key)
	s.read += len(v)
	return v, cas, err
}

func (s *bytesRead) GetInto(key string, buf []byte) ([]byte, uint32, error) {
	v, cas, err := s.MemStore.GetInto(key, buf)
	s.read += len(v)
	return v, cas, err
}

// One tenant's turns, each under its own system prompt (its own
// partition), each answered and indexed, the index never holding more
// than max_entries (64) turns at once: every answer expires before the
// next 50 are asked. A partition a sweep leaves without records leaves
// the namespace's list, so the list holds at most the partitions that
// have records, sweeps spend no visits on empty ones, and another tenant
// on another worker finds the droppable turns: every one of its turns is
// indexed. (Until a review a live partition stayed listed for good: 3,731
// listed after 4,014 turns, and 99 of the other tenant's 100 turns were
// refused index_full while 49 of the 63 counted turns were droppable.)
// The shared-data keys an emptied partition leaves behind (shared data
// cannot delete them) are measured here, not bounded: see README, "Index
// and memory".
func TestSemanticEmptiedPartitionsLeaveTheList(t *testing.T) {
	const cfg = `{"upstream_cluster":"model","routes":[{"name":"chat","kind":"chat","path_prefix":"/v1/chat/completions",
	  "ttl":"1m","semantic":{"embedding":{"cluster":"embeddings","model":"e5"},"max_entries":64}}]}`
	mem := NewMemStore()
	counter := &bytesRead{MemStore: mem}
	clock := newFakeClock()
	e := newSemEnv(t, "")
	e.testEnv = &testEnv{t: t, store: mem, clock: clock,
		cache: New(mustParse(t, cfg), Options{Store: counter, Now: clock.Now, Rand: seededRand(1)})}
	worker2 := New(mustParse(t, cfg), Options{Store: counter, Now: clock.Now, Rand: seededRand(2)})
	mallory := hdr("authorization", "Bearer sk-mallory")
	body := func(system, turn string) string {
		return `{"model":"gpt-4o-mini","messages":[{"role":"system","content":` + quote(system) +
			`},{"role":"user","content":` + quote(turn) + `}],"temperature":0}`
	}
	malloryFull := 0
	malloryTurn := func(i int) {
		f, _ := e.semAskBody("chat", "/v1/chat/completions", mallory, body(fmt.Sprintf("system prompt %d", i), "hello there"), "hello there")
		if got := e.answer(f, "a"); strings.Contains(got, "semantic.index_full") {
			malloryFull++
		} else if !strings.Contains(got, "semantic.indexed") {
			t.Fatalf("mallory's store %d: %q", i, got)
		}
	}
	const n = 4000
	for i := 0; i < n; i++ {
		if i%50 == 49 {
			clock.Advance(2 * time.Minute) // every turn indexed so far is no longer fresh
		}
		malloryTurn(i)
	}
	clock.Advance(2 * time.Minute) // the 50 turns held now are no longer fresh either
	for i := n; i < n+14; i++ {    // 14 fresh ones: the count is at max_entries
		malloryTurn(i)
	}
	keys, size, listed, held, stale := 0, 0, 0, -1, 0
	type partKeys struct{ keys, bytes, held int }
	parts := map[string]*partKeys{}
	now := e.cache.NowMs()
	for k, v := range mem.m {
		if !strings.HasPrefix(k, "modelcache/sem2/") {
			continue
		}
		keys++
		size += len(k) + len(v.v)
		if strings.HasSuffix(k, "/parts") {
			listed += len(v.v) / 8
		}
		if strings.HasSuffix(k, "/n") && len(v.v) == 4 {
			held = int(binary.LittleEndian.Uint32(v.v))
		}
		i := strings.LastIndexByte(k, '/')
		if p := k[:i]; strings.Count(p, "/") == 3 { // a partition's key
			if parts[p] == nil {
				parts[p] = &partKeys{}
			}
			parts[p].keys++
			parts[p].bytes += len(k) + len(v.v)
			if len(v.v) > 0 {
				parts[p].held++
			}
		}
		if k[i+1] == 'r' && len(v.v) >= semSegHead {
			cnt, dim := int(binary.LittleEndian.Uint16(v.v)), int(binary.LittleEndian.Uint16(v.v[2:]))
			for r, p := 0, semSegHead; r < cnt; r++ {
				if int64(binary.LittleEndian.Uint64(v.v[p+4:])) <= now {
					stale++
				}
				p += semRecHead + dim + 2 + int(binary.LittleEndian.Uint16(v.v[p+semRecHead+dim:]))
			}
		}
	}
	emptied, emptiedKeys, emptiedBytes := 0, 0, 0
	for _, p := range parts {
		if p.held == 0 {
			emptied++
			emptiedKeys += p.keys
			emptiedBytes += p.bytes
		}
	}
	t.Logf("after %d of mallory's turns (%d refused index_full; at most 64 indexed at once; %d counted now, %d of them no longer fresh): %d partitions listed, %d shared-data keys, %d bytes of keys and values",
		n+14, malloryFull, held, stale, listed, keys, size)
	if emptied > 0 {
		t.Logf("%d emptied partitions keep %d keys (%.1f each) of %d bytes (%.1f each, all of it key names: values are empty), plus the host's per-key overhead",
			emptied, emptiedKeys, float64(emptiedKeys)/float64(emptied), emptiedBytes, float64(emptiedBytes)/float64(emptied))
	}
	if listed > 64+2 {
		t.Errorf("max_entries 64: %d partitions listed, growing with every partition ever opened", listed)
	}
	// alice, on another worker, asks 100 new questions, none of them
	// expiring meanwhile: the droppable turns make room for the first
	// 64 - (held - stale), and only then is the index full of fresh ones.
	room := 64 - (held - stale)
	e.cache = worker2
	refused, firstRefused, read := 0, -1, 0
	for i := 0; i < 100; i++ {
		turn := fmt.Sprintf("alice question %d", i)
		f, _ := e.semAskBody("chat", "/v1/chat/completions", alice, body("alice's prompt", turn), turn)
		counter.read = 0
		got := e.answer(f, "a")
		read += counter.read
		if strings.Contains(got, "semantic.index_full") {
			refused++
			if firstRefused < 0 {
				firstRefused = i
			}
		}
	}
	t.Logf("alice's 100 turns on worker 2: %d refused index_full, from turn %d on; %d bytes read from shared data by their stores", refused, firstRefused, read)
	if firstRefused != room || refused != 100-room {
		t.Fatalf("another tenant's turns refused index_full %d times of 100, from turn %d on, while %d of the %d counted turns were droppable (room for %d)",
			refused, firstRefused, stale, held, room)
	}
}

// A live partition's writer may add a record while a sweep that emptied
// the partition takes it off h and off the namespace's list. Its record
// must stay where sweeps, searches and reclaim reach it: the partition
// listed with its owner, h counting the segment, the turn found, and once
// its answer expires a sweep drops it (else it stays counted for good, in
// a partition no sweep visits). Either the sweep sees the writer's record
// when it reads the segment again after taking it off h, or the writer
// sees h without its segment when it reads h again after its write.
func TestSemanticWriterDuringUnlistIsNotLost(t *testing.T) {
	q := make([]int8, 16)
	for i := range q {
		q[i] = int8(i + 1)
	}
	prefix := semPrefix(1, 2)
	const now = 2000
	cases := []struct {
		name string
		// run sweeps the partition once with write, a writer's add, run
		// in between by hooks on the store.
		run func(mem *MemStore, write func(Store), cursor *semSweepPos)
	}{
		{"the writer's record lands while the sweep empties the segment", func(mem *MemStore, write func(Store), cursor *semSweepPos) {
			// The sweep's 2nd read of the signs: after it emptied the
			// segment, before it takes the segment off h.
			hs := &hookStore{Store: mem, key: prefix + "s0", n: 2, hook: func() { write(mem) }}
			semIndexStore{s: readerOf(hs), now: now}.sweep(1, now, cursor)
		}},
		{"the writer read h before the sweep, its record lands after the partition left the list", func(mem *MemStore, write func(Store), cursor *semSweepPos) {
			// The writer's read of the segment, after its read of h.
			hs := &hookStore{Store: mem, key: prefix + "r0", n: 1, hook: func() {
				semIndexStore{s: readerOf(mem), now: now}.sweep(1, now, cursor)
				if parts, _, _ := mem.Get(semNamespace(1) + "parts"); len(parts) != 0 {
					t.Fatalf("setup: the sweep left the emptied partition listed (%x)", parts)
				}
			}}
			write(hs)
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			mem := NewMemStore()
			_ = mem.Set(modelKey(7), encodeModels([]modelRecord{{id: 7, gen: 1, until: 1 << 50}}), 0)
			owner := semOwner{7, 1}
			ix := semIndexStore{s: readerOf(mem)}
			var cursor semSweepPos
			if ev, err := ix.add(1, 2, q, 10, []byte(`"old turn"`), 1000, 0, 100, owner, &cursor); err != nil || ev != EvSemanticIndexed {
				t.Fatalf("setup: %v %v", ev, err)
			}
			wrote := false
			tc.run(mem, func(s Store) {
				var c semSweepPos
				w := semIndexStore{s: readerOf(s), now: now}
				if ev, err := w.add(1, 2, q, 10, []byte(`"new turn"`), 1<<50, now, 100, owner, &c); err != nil || ev != EvSemanticIndexed {
					t.Fatalf("writer: %v %v", ev, err)
				}
				wrote = true
			}, &cursor)
			if !wrote {
				t.Fatal("setup: the writer did not run")
			}
			parts, _, _ := mem.Get(semNamespace(1) + "parts")
			h, _, _ := mem.Get(prefix + "h")
			g, _, _ := mem.Get(prefix + "g")
			if len(parts) != 8 || binary.LittleEndian.Uint64(parts) != 2 || len(h) == 0 || string(g) != string(owner.bytes()) {
				t.Errorf("the writer's partition: listed %x, h %x, owner %x", parts, h, g)
			}
			ix.now = now
			if got := ix.search(1, 2, q, 10, 0.5); len(got) != 1 || got[0].text != "new turn" {
				t.Errorf("search finds %+v, want the writer's turn", got)
			}
			n, _, _ := mem.Get(semNamespace(1) + "n")
			if got := binary.LittleEndian.Uint32(n); got != 1 {
				t.Errorf("count %d, want the writer's 1", got)
			}
			later := int64(1<<50) + 1
			ix.now = later
			ix.sweep(1, later, &cursor)
			n, _, _ = mem.Get(semNamespace(1) + "n")
			parts, _, _ = mem.Get(semNamespace(1) + "parts")
			if got := binary.LittleEndian.Uint32(n); got != 0 || len(parts) != 0 {
				t.Errorf("once the writer's answer expired, a sweep leaves count %d and list %x, want 0 and none", got, parts)
			}
		})
	}
}

// setHook is a Store that runs hook(key) before each Set.
type setHook struct {
	Store
	hook func(key string)
}

func (s *setHook) Set(key string, v []byte, cas uint32) error {
	s.hook(key)
	return s.Store.Set(key, v, cas)
}

// The namespace's first listing is created only if still missing: two
// workers opening the namespace's first two partitions at once both find
// no list, and a set with CAS 0 replaced the first one's listing with the
// second's, so that partition's records were counted in a partition no
// sweep visits (the index held full by them for good).
func TestSemanticFirstListingsAreBothKept(t *testing.T) {
	mem := NewMemStore()
	q := make([]int8, 16)
	for i := range q {
		q[i] = int8(i + 1)
	}
	other := false
	hs := &setHook{Store: mem, hook: func(key string) {
		if key == semNamespace(1)+"parts" && !other {
			other = true // another worker lists its partition meanwhile
			semIndexStore{s: readerOf(mem)}.register(1, 3)
		}
	}}
	if ev, err := (semIndexStore{s: readerOf(hs)}).add(1, 2, q, 10, []byte(`"a turn"`), 1<<50, 0, 100, semOwner{}, new(semSweepPos)); err != nil || ev != EvSemanticIndexed {
		t.Fatalf("add: %v %v", ev, err)
	}
	parts, _, _ := mem.Get(semNamespace(1) + "parts")
	if len(parts) != 16 {
		t.Fatalf("the namespace lists %x, want partitions 3 and 2", parts)
	}
}

// yielding lets other goroutines run before each read and write, so that
// hammer tests' workers interleave between them.
type yielding struct{ Store }

func (s yielding) Get(key string) ([]byte, uint32, error) {
	runtime.Gosched()
	return s.Store.Get(key)
}

func (s yielding) Set(key string, v []byte, cas uint32) error {
	runtime.Gosched()
	return s.Store.Set(key, v, cas)
}

// Workers add short-lived turns to three partitions of a small index, so
// that their stores' sweeps empty and unlist partitions while others
// write to them. Afterwards every record is in a segment its partition's
// h counts, of a listed partition; once every answer expired, sweeps drop
// them all and unlist every partition.
func TestSemanticUnlistingHammer(t *testing.T) {
	mem := NewMemStore()
	_ = mem.Set(modelKey(7), encodeModels([]modelRecord{{id: 7, gen: 1, until: 1 << 50}}), 0)
	q := make([]int8, 16)
	for i := range q {
		q[i] = int8(i + 1)
	}
	const workers, turns = 8, 3000
	hammer.Loop(t, workers, turns, func(w, i int) error {
		now := int64(i) * 10
		ix := semIndexStore{s: readerOf(yielding{mem}), now: now}
		var cursor semSweepPos
		_, err := ix.add(1, uint64(2+(w+i)%3), q, 10, []byte(fmt.Sprintf(`"turn %d of %d"`, i, w)), now+30, now, 16, semOwner{7, 1}, &cursor)
		if errIs(err, ErrCasMismatch) {
			return nil // not indexed (nor counted): contention
		}
		return err
	})
	held := func() (inList int) {
		parts, _, _ := mem.Get(semNamespace(1) + "parts")
		listed := map[uint64]bool{}
		for i := 0; i+8 <= len(parts); i += 8 {
			listed[binary.LittleEndian.Uint64(parts[i:])] = true
		}
		for part := uint64(2); part < 5; part++ {
			prefix := semPrefix(1, part)
			h, _, _ := mem.Get(prefix + "h")
			nseg := 0
			if len(h) >= 4 {
				nseg = int(binary.LittleEndian.Uint32(h))
			}
			for i := 0; i < semMaxSegments(semMaxEntriesLimit); i++ {
				seg, _, err := mem.Get(fmt.Sprintf("%sr%d", prefix, i))
				if err != nil || len(seg) < semSegHead || binary.LittleEndian.Uint16(seg) == 0 {
					continue
				}
				if i >= nseg || !listed[part] {
					t.Errorf("partition %d segment %d holds %d records beyond h's %d segments or unlisted (%v)",
						part, i, binary.LittleEndian.Uint16(seg), nseg, listed[part])
				}
				inList += int(binary.LittleEndian.Uint16(seg))
			}
		}
		return inList
	}
	n, _, _ := mem.Get(semNamespace(1) + "n")
	// (The count is not checked against the records: under these forced
	// interleavings an uncount gives up after its tries now and then;
	// RATIONALE, "Per-tenant share of the store".)
	t.Logf("count %d, the segments hold %d", binary.LittleEndian.Uint32(n), held())
	later := int64(turns) * 100
	var cursor semSweepPos
	for i := 0; i < 8; i++ {
		semIndexStore{s: readerOf(mem), now: later}.sweep(1, later, &cursor)
	}
	parts, _, _ := mem.Get(semNamespace(1) + "parts")
	if left := held(); left != 0 || len(parts) != 0 {
		t.Errorf("every answer expired: %d records left, list %x", left, parts)
	}
}

// A store whose last try to count its turn finds the index full, and
// whose sweep then drops a turn, is not indexed: it went on and placed its
// record uncounted, so the index held more than max_entries.
func TestSemanticStoreIsNeverIndexedUncounted(t *testing.T) {
	mem := NewMemStore()
	q := make([]int8, 16)
	for i := range q {
		q[i] = int8(i + 1)
	}
	ix := semIndexStore{s: readerOf(mem)}
	if ev, err := ix.add(1, 2, q, 10, []byte(`"old turn"`), 100, 0, 2, semOwner{}, new(semSweepPos)); err != nil || ev != EvSemanticIndexed {
		t.Fatalf("setup: %v %v", ev, err)
	}
	countKey := semNamespace(1) + "n"
	sets := 0
	hs := &setHook{Store: mem, hook: func(key string) {
		if key != countKey || sets == 7 {
			return
		}
		if sets++; sets < 7 {
			v, _, _ := mem.Get(key) // another worker counts and uncounts meanwhile
			_ = mem.Set(key, v, 0)
			return
		}
		// and, before the store's 7th try, another worker's turn fills the index
		if ev, err := (semIndexStore{s: readerOf(mem), now: 200}).add(1, 2, q, 10, []byte(`"other turn"`), 1<<50, 200, 2, semOwner{}, new(semSweepPos)); err != nil || ev != EvSemanticIndexed {
			t.Fatalf("the other worker's turn: %v %v", ev, err)
		}
	}}
	ev, err := (semIndexStore{s: readerOf(hs), now: 200}).add(1, 2, q, 10, []byte(`"new turn"`), 1<<50, 200, 2, semOwner{}, new(semSweepPos))
	seg, _, _ := mem.Get(semPrefix(1, 2) + "r0")
	n, _, _ := mem.Get(countKey)
	if held, counted := binary.LittleEndian.Uint16(seg), binary.LittleEndian.Uint32(n); int(held) != int(counted) {
		t.Fatalf("add: %v %v; the index holds %d turns, its count says %d", ev, err, held, counted)
	}
}

// gateSet is a Store that, before its first Set of key, signals reached
// and waits for release (a worker paused between two of its writes).
type gateSet struct {
	Store
	key              string
	reached, release chan struct{}
	fired            bool
}

func (s *gateSet) Set(key string, v []byte, cas uint32) error {
	if key == s.key && !s.fired {
		s.fired = true
		close(s.reached)
		<-s.release
	}
	return s.Store.Set(key, v, cas)
}

// A partition's first writer lists it and then records its owner; a sweep
// that reads g between the two (no owner yet) and finds the partition
// empty unlists it. If the writer finishes meanwhile (its record covered,
// its g written) before the sweep's last step empties g, that step lists
// the partition again but cannot restore an owner it never read: the
// partition keeps a record and no g, so once its generation is purged no
// sweep drops it, and its turn holds the index full until its ttl.
func TestSemanticUnlistKeepsTheFirstWritersOwner(t *testing.T) {
	mem := NewMemStore()
	setModel := func(gen uint64) {
		_ = mem.Set(modelKey(7), encodeModels([]modelRecord{{id: 7, gen: gen, until: 1 << 50}}), 0)
	}
	setModel(1)
	q := make([]int8, 16)
	for i := range q {
		q[i] = int8(i + 1)
	}
	prefix := semPrefix(1, 2)
	owner := semOwner{7, 1}
	// The writer pauses before its g write (after it set h and listed the partition).
	gw := &gateSet{Store: mem, key: prefix + "g", reached: make(chan struct{}), release: make(chan struct{})}
	done := make(chan struct{})
	go func() {
		defer close(done)
		w := semIndexStore{s: readerOf(gw)}
		if ev, err := w.add(1, 2, q, 10, []byte(`"a turn"`), 1<<50, 0, 1, owner, new(semSweepPos)); err != nil || ev != EvSemanticIndexed {
			t.Errorf("writer: %v %v", ev, err)
		}
	}()
	<-gw.reached
	// The sweep reads g (none yet), finds the partition without records and
	// unlists it; as it does, the writer finishes, before the sweep's last
	// step deals with g.
	released := false // (the writer's goroutine reads only the channel)
	hs := &setHook{Store: mem, hook: func(key string) {
		if key == semNamespace(1)+"parts" && !released {
			released = true
			close(gw.release)
			<-done
		}
	}}
	semIndexStore{s: readerOf(hs)}.sweep(1, 0, new(semSweepPos))
	if !released {
		close(gw.release)
		<-done
		t.Fatal("setup: the sweep did not reach its last step")
	}
	parts, _, _ := mem.Get(semNamespace(1) + "parts")
	h, _, _ := mem.Get(prefix + "h")
	g, _, _ := mem.Get(prefix + "g")
	t.Logf("after the race: listed %x, h %x, g %x", parts, h, g)
	setModel(2) // a purge: the partition's generation is gone
	ix := semIndexStore{s: readerOf(mem)}
	var cursor semSweepPos
	if ev, _ := ix.add(1, 3, q, 10, []byte(`"a live turn"`), 1<<50, 0, 1, semOwner{7, 2}, &cursor); ev != EvSemanticIndexed {
		n, _, _ := mem.Get(semNamespace(1) + "n")
		t.Errorf("a live turn after the purge: %v (count %d): the purged turn's partition has owner %x, so no sweep drops it and it holds max_entries 1 full until its ttl",
			ev, binary.LittleEndian.Uint32(n), g)
	}
}

// semKeysHeld counts the shared-data keys of the semantic index (values
// emptied or not: shared data cannot delete a key).
func semKeysHeld(mem *MemStore) (keys int) {
	for k := range mem.m {
		if strings.HasPrefix(k, "modelcache/sem2/") {
			keys++
		}
	}
	return keys
}

// Traffic that opens a new context per turn (each under a new system
// prompt, the pattern of TestSemanticEmptiedPartitionsLeaveTheList) leaves
// the index's shared-data keys bounded by its slots, not growing with the
// contexts ever indexed: a context's records go to one of a route's
// slots (64 at max_entries 64), each slot with its head, owner and at most
// semMaxSegments(64) segments and signs values, and the namespace's count
// and list. Another tenant's turns on another worker are still indexed as
// the room allows. (Until a review every context kept its own keys for
// good: 4,000 contexts left 16,002 keys, ≈ 600 bytes each context with
// Envoy's per-key overhead.)
func TestSemanticKeysAreBoundedBySlots(t *testing.T) {
	const cfg = `{"upstream_cluster":"model","routes":[{"name":"chat","kind":"chat","path_prefix":"/v1/chat/completions",
	  "ttl":"1m","semantic":{"embedding":{"cluster":"embeddings","model":"e5"},"max_entries":64}}]}`
	mem := NewMemStore()
	clock := newFakeClock()
	e := newSemEnv(t, "")
	e.testEnv = &testEnv{t: t, store: mem, clock: clock,
		cache: New(mustParse(t, cfg), Options{Store: mem, Now: clock.Now, Rand: seededRand(1)})}
	worker2 := New(mustParse(t, cfg), Options{Store: mem, Now: clock.Now, Rand: seededRand(2)})
	mallory := hdr("authorization", "Bearer sk-mallory")
	body := func(system, turn string) string {
		return `{"model":"gpt-4o-mini","messages":[{"role":"system","content":` + quote(system) +
			`},{"role":"user","content":` + quote(turn) + `}],"temperature":0}`
	}
	const slots = 64 // max_entries 64
	bound := 2 + slots*(2+2*semMaxSegments(64))
	const n = 4000
	for i := 0; i < n; i++ {
		if i%50 == 49 {
			clock.Advance(2 * time.Minute) // every turn indexed so far is no longer fresh
		}
		f, _ := e.semAskBody("chat", "/v1/chat/completions", mallory, body(fmt.Sprintf("system prompt %d", i), "hello there"), "hello there")
		if got := e.answer(f, "a"); !strings.Contains(got, "semantic.indexed") && !strings.Contains(got, "semantic.index_full") {
			t.Fatalf("mallory's store %d: %q", i, got)
		}
		if i == 999 || i == n-1 {
			if keys := semKeysHeld(mem); keys > bound {
				t.Fatalf("after %d contexts: %d shared-data keys, more than the %d that %d slots allow", i+1, keys, bound, slots)
			}
		}
	}
	t.Logf("after %d contexts: %d shared-data keys (bound %d)", n, semKeysHeld(mem), bound)
	clock.Advance(2 * time.Minute) // nothing mallory indexed is fresh
	e.cache = worker2
	refused := 0
	for i := 0; i < 64; i++ {
		turn := fmt.Sprintf("alice question %d", i)
		f, _ := e.semAskBody("chat", "/v1/chat/completions", alice, body("alice's prompt", turn), turn)
		if got := e.answer(f, "a"); !strings.Contains(got, "semantic.indexed") {
			refused++
		}
	}
	if refused > 0 {
		t.Fatalf("another tenant's 64 turns, all the room there is: %d not indexed", refused)
	}
	if keys := semKeysHeld(mem); keys > bound {
		t.Fatalf("%d shared-data keys, more than the %d that %d slots allow", keys, bound, slots)
	}
}

// Writers of two models share three slots while one model is purged
// midway: a writer that finds a slot owned by the purged generation drops
// it before it writes, one that finds the other live model's owner leaves
// it. Afterwards every record is in a segment its slot's h counts, of a
// listed slot; a slot that holds records has an owner; once every answer
// expired, sweeps drop them all and unlist every slot.
func TestSemanticSharedSlotOwnersHammer(t *testing.T) {
	mem := NewMemStore()
	setModel := func(id, gen uint64) {
		_ = mem.Set(modelKey(id), encodeModels([]modelRecord{{id: id, gen: gen, until: 1 << 50}}), 0)
	}
	setModel(7, 1)
	setModel(8, 1)
	q := make([]int8, 16)
	for i := range q {
		q[i] = int8(i + 1)
	}
	const workers, turns = 8, 2000
	var purged atomicBool
	hammer.Loop(t, workers, turns, func(w, i int) error {
		if w == 0 && i == turns/2 {
			setModel(7, 2) // a purge of model 7
			purged.set()
		}
		owner := semOwner{8, 1}
		if w%2 == 0 {
			owner = semOwner{7, 1}
			if purged.get() {
				owner.gen = 2
			}
		}
		now := int64(i) * 10
		ix := semIndexStore{s: readerOf(yielding{mem}), now: now}
		var cursor semSweepPos
		_, err := ix.add(1, uint64(1+(w+i)%3), q, 10, []byte(fmt.Sprintf(`"turn %d of %d"`, i, w)), now+1000, now, 32, owner, &cursor)
		if errIs(err, ErrCasMismatch) {
			return nil // not indexed (nor counted): contention
		}
		return err
	})
	parts, _, _ := mem.Get(semNamespace(1) + "parts")
	listed := map[uint64]bool{}
	for i := 0; i+8 <= len(parts); i += 8 {
		listed[binary.LittleEndian.Uint64(parts[i:])] = true
	}
	held := 0
	for part := uint64(1); part <= 3; part++ {
		prefix := semPrefix(1, part)
		h, _, _ := mem.Get(prefix + "h")
		g, _, _ := mem.Get(prefix + "g")
		nseg := 0
		if len(h) >= 4 {
			nseg = int(binary.LittleEndian.Uint32(h))
		}
		for i := 0; i < semMaxSegments(semMaxEntriesLimit); i++ {
			seg, _, err := mem.Get(fmt.Sprintf("%sr%d", prefix, i))
			if err != nil || len(seg) < semSegHead || binary.LittleEndian.Uint16(seg) == 0 {
				continue
			}
			held += int(binary.LittleEndian.Uint16(seg))
			if i >= nseg || !listed[part] || len(g) != 16 {
				t.Errorf("slot %d segment %d holds %d records beyond h's %d segments, unlisted (%v) or without an owner (%x)",
					part, i, binary.LittleEndian.Uint16(seg), nseg, listed[part], g)
			}
		}
	}
	// (Not checked against max_entries: with a purge under these forced
	// interleavings the count now and then ends below what the slots hold,
	// a few records over max_entries; the one-partition layout did the
	// same in this test.)
	n, _, _ := mem.Get(semNamespace(1) + "n")
	t.Logf("count %d, the slots hold %d records (max_entries 32)", binary.LittleEndian.Uint32(n), held)
	later := int64(turns) * 100
	var cursor semSweepPos
	for i := 0; i < 8; i++ {
		semIndexStore{s: readerOf(mem), now: later}.sweep(1, later, &cursor)
	}
	parts, _, _ = mem.Get(semNamespace(1) + "parts")
	for part := uint64(1); part <= 3; part++ {
		for i := 0; i < semMaxSegments(semMaxEntriesLimit); i++ {
			if seg, _, err := mem.Get(fmt.Sprintf("%sr%d", semPrefix(1, part), i)); err == nil && len(seg) >= semSegHead && binary.LittleEndian.Uint16(seg) > 0 {
				t.Errorf("every answer expired: slot %d segment %d still holds %d records", part, i, binary.LittleEndian.Uint16(seg))
			}
		}
	}
	if len(parts) != 0 {
		t.Errorf("every answer expired: the namespace still lists %x", parts)
	}
}

type atomicBool struct{ v atomic.Bool }

func (b *atomicBool) set()      { b.v.Store(true) }
func (b *atomicBool) get() bool { return b.v.Load() }

package cachecore

import (
	"fmt"
	"strings"
	"testing"
	"time"
)

// A batch that leads its key reads its lease slot ahead of its index reads
// and, when it wins the lease with that read, does not read the indexes
// again (leaderLookup). These tests hold both halves: the reads it spares,
// and the stores of an earlier leader it must still see.

// readCounter counts the reads of each kind of shared-data key.
type readCounter struct {
	*MemStore
	gets map[string]int // by key prefix: "mc:i", "mc:e", "mc:l", "mc:m"
	// onLease, if set, runs once before the next read of a lease slot.
	onLease func()
}

// count notes a read by its key's kind (keys alias their callers'
// buffers: the kind is copied).
func (s *readCounter) count(key string) {
	if len(key) >= 4 {
		s.gets[strings.Clone(key[:4])]++
	}
	if f := s.onLease; f != nil && strings.HasPrefix(key, "mc:l:") {
		s.onLease = nil
		f()
	}
}

func (s *readCounter) Get(key string) ([]byte, uint32, error) {
	s.count(key)
	return s.MemStore.Get(key)
}

func (s *readCounter) GetInto(key string, buf []byte) ([]byte, uint32, error) {
	s.count(key)
	return s.MemStore.GetInto(key, buf)
}

// leadEnv is two workers over one store, an embeddings route with
// coalescing on (its default).
type leadEnv struct {
	reads *readCounter
	clock *fakeClock
	w     [2]*Cache
}

func newLeadEnv(t *testing.T) *leadEnv {
	cfg := mustParse(t, `{"upstream_cluster":"model","routes":[{"name":"emb","kind":"embeddings","path_prefix":"/v1/embeddings","ttl":"1h"}]}`)
	// Items are kept an hour past their freshness, as a route configured
	// before embeddings routes refused stale windows kept them (its
	// entries outlive a reload): a batch then reads stale copies.
	cfg.Routes[0].StaleWhileReval = time.Hour
	e := &leadEnv{reads: &readCounter{MemStore: NewMemStore(), gets: map[string]int{}}, clock: newFakeClock()}
	for i := range e.w {
		e.w[i] = New(cfg, Options{Store: e.reads, Now: e.clock.Now, Rand: seededRand(uint64(i + 1))})
	}
	return e
}

func (e *leadEnv) begin(w int, items []string) *Request {
	c := e.w[w]
	req := c.Begin(c.routeByName("emb"), "POST", "/v1/embeddings", [][2]string{{"authorization", "Bearer t"}})
	c.SetBody(req, []byte(`{"model":"e","input":["`+strings.Join(items, `","`)+`"]}`))
	return req
}

// answer answers req's items as the upstream would and stores them.
func (e *leadEnv) answer(t *testing.T, w int, req *Request, items []string) {
	t.Helper()
	jsonHdr := [][2]string{{"content-type", "application/json"}}
	ans := embAnswer(items)
	adm := e.w[w].AdmitBody(req, jsonHdr, ans)
	if res := e.w[w].Store(req, 200, jsonHdr, ans, adm, 1); res.Reason != ReasonNone || res.ItemsStored != len(items) {
		t.Fatalf("store: %+v", res)
	}
}

// lead runs a whole lead on worker w: lookup, lease, store, release.
func (e *leadEnv) lead(t *testing.T, w int, items []string) {
	t.Helper()
	req := e.begin(w, items)
	if d := e.w[w].Lookup(req); d != Forward || req.Status != StatusMiss {
		t.Fatalf("lead: lookup %v %s", d, req.Status)
	}
	f := e.w[w].NewFlight(req, uint64(w+1), 7)
	if k := outcome(f.Miss()); k != ActForward {
		t.Fatalf("lead: %v", k)
	}
	e.answer(t, w, req, items)
	f.FinishLead(OutcomeStored, 200)
}

// miss looks items up on worker 0 and requires a miss.
func (e *leadEnv) miss(t *testing.T, items []string) *Request {
	t.Helper()
	req := e.begin(0, items)
	if d := e.w[0].Lookup(req); d != Forward || req.Status != StatusMiss {
		t.Fatalf("lookup %v %s", d, req.Status)
	}
	return req
}

// storeUnled stores items from worker w as a writer outside single
// flight does: a lookup and a store, no lease.
func (e *leadEnv) storeUnled(t *testing.T, w int, items []string) {
	t.Helper()
	req := e.begin(w, items)
	if d := e.w[w].Lookup(req); d != Forward {
		t.Fatalf("the unled writer's lookup: %v", d)
	}
	e.answer(t, w, req, items)
}

// mustServeOnLead makes req (worker 0's, looked up) lead, and requires
// the lead to find its items in the cache.
func (e *leadEnv) mustServeOnLead(t *testing.T, req *Request, why string) {
	t.Helper()
	f := e.w[0].NewFlight(req, 1, 10)
	if k := outcome(f.Miss()); k != ActServeEntry || req.Status != StatusHit {
		t.Fatalf("%s, got %v (%s)", why, k, req.Status)
	}
}

// outcome is what actions do with the request: the first that answers,
// forwards or waits.
func outcome(acts []Action) ActionKind {
	for _, a := range acts {
		switch a.Kind {
		case ActServeEntry, ActServeLocal, ActForward, ActWait:
			return a.Kind
		}
	}
	return ActCount
}

func newItems(prefix string, n int) []string {
	items := make([]string, n)
	for i := range items {
		items[i] = fmt.Sprintf("%s item %d", prefix, i)
	}
	return items
}

func TestBatchLeaderReadsEachIndexOnce(t *testing.T) {
	e := newLeadEnv(t)
	e.lead(t, 0, []string{"the model becomes known"})
	items := newItems("new", 16)
	clear(e.reads.gets)
	req := e.begin(0, items)
	e.w[0].Lookup(req)
	f := e.w[0].NewFlight(req, 1, 8)
	if k := outcome(f.Miss()); k != ActForward {
		t.Fatalf("new items: %v", k)
	}
	buckets := map[uint64]bool{}
	for _, i := range req.batch.distinct {
		buckets[e.w[0].table.bucketOf(req.batch.items[i].fp)] = true
	}
	if got := e.reads.gets["mc:i"]; got != len(buckets) {
		t.Errorf("index reads: %d for %d buckets (one each expected)", got, len(buckets))
	}
	if got := e.reads.gets["mc:l"]; got != 1 {
		t.Errorf("lease slot reads: %d (the read ahead only)", got)
	}
}

// A batch looks an item up through its preferred way first (one read for
// a hit, two for a miss) until its misses outnumber its hits by two, and
// then through the index first (one read for a miss, two for a hit): a
// batch of new items reads two preferred ways, not one per item, and a
// batch of cached items still reads one entry per item and no index.
func TestBatchOfNewItemsStopsReadingPreferredWays(t *testing.T) {
	e := newLeadEnv(t)
	e.lead(t, 0, []string{"the model becomes known"})
	cached := newItems("cached", 16)
	e.lead(t, 1, cached)

	fresh := newItems("new", 16)
	e.indexBuckets(t, fresh) // a warm cache: every bucket has its index
	clear(e.reads.gets)
	e.miss(t, fresh)
	if got := e.reads.gets["mc:e"]; got != 2 {
		t.Errorf("16 new items: %d entry reads (the first two items' preferred ways expected)", got)
	}
	// With no index to trust, the preferred way is read all the same.
	bare := newItems("unindexed", 16)
	want := 2 + e.unindexed(t, bare[2:])
	clear(e.reads.gets)
	e.miss(t, bare)
	if got := e.reads.gets["mc:e"]; got != want || want < 10 {
		t.Errorf("16 new items, %d of the last 14 in buckets without an index: %d entry reads (%d expected)", want-2, got, want)
	}

	clear(e.reads.gets)
	req := e.begin(0, cached)
	if d := e.w[0].Lookup(req); d != Serve || req.Status != StatusHit {
		t.Fatalf("cached batch: %v %s", d, req.Status)
	}
	if got, idx := e.reads.gets["mc:e"], e.reads.gets["mc:i"]; got != len(cached) || idx != 0 {
		t.Errorf("16 cached items: %d entry and %d index reads (16 and 0 expected)", got, idx)
	}

	// An item behind a garbled index (or one written with other ways) is
	// found through its preferred way, as a batch that read it first finds
	// it (until a store writes the index over: the next test).
	kept := "kept behind a garbled index"
	e.lead(t, 1, []string{kept})
	c := e.w[0]
	if err := e.reads.Set(c.table.indexKey(c.table.bucketOf(e.itemFP(kept))), []byte("garbled"), 0); err != nil {
		t.Fatal(err)
	}
	before := newItems("before", 4)
	e.indexBuckets(t, before)
	req = e.begin(0, append(before, kept))
	if d := e.w[0].Lookup(req); d != Forward || req.batch.hits != 1 {
		t.Fatalf("an item behind a garbled index after 4 misses: %v %s, %d hits", d, req.Status, req.batch.hits)
	}

	// New items first, then cached ones: the cached items read through
	// the index are found all the same.
	mixed := append(newItems("other", 8), cached...)
	req = e.begin(0, mixed)
	if d := e.w[0].Lookup(req); d != Forward || req.Status != StatusPartial || req.batch.hits != len(cached) {
		t.Fatalf("mixed batch: %v %s, %d hits (%d expected)", d, req.Status, req.batch.hits, len(cached))
	}
}

// A garbled index that a store then writes over lists only what that
// store put there: an item already in its preferred way is not listed. A
// batch that reads it through the index first misses it, and its store
// lists it: the item costs at most one upstream call, and is then found
// whichever read comes first.
func TestBatchMissesAnUnlistedItemAtMostOnce(t *testing.T) {
	e := newLeadEnv(t)
	e.lead(t, 0, []string{"the model becomes known"})
	x := "x, behind an index written over"
	e.lead(t, 1, []string{x})
	c := e.w[0]
	fx := e.itemFP(x)
	bx := c.table.bucketOf(fx)
	if err := e.reads.Set(c.table.indexKey(bx), []byte("garbled"), 0); err != nil {
		t.Fatal(err)
	}
	// z: x's bucket, another preferred way (z's store takes its own).
	z := ""
	for i := 0; i < 100000 && z == ""; i++ {
		cand := fmt.Sprintf("z %d", i)
		if fz := e.itemFP(cand); c.table.bucketOf(fz) == bx && c.table.preferredWay(fz) != c.table.preferredWay(fx) {
			z = cand
		}
	}
	if z == "" {
		t.Fatal("no item found in x's bucket")
	}
	e.lead(t, 1, []string{z}) // writes a well-formed index: z only
	req := e.begin(0, []string{x})
	if d := c.Lookup(req); d != Serve {
		t.Fatalf("x read through its preferred way first: %v %s", d, req.Status)
	}
	first := append(newItems("ahead", 4), x)
	e.indexBuckets(t, first[:4])
	req = e.begin(0, first)
	if c.Lookup(req); req.batch.hits == 0 {
		e.lead(t, 0, first) // the one upstream call: x is stored and listed
	}
	then := append(newItems("later", 4), x)
	e.indexBuckets(t, then[:4])
	req = e.begin(0, then)
	if d := c.Lookup(req); d != Forward || req.batch.hits != 1 {
		t.Fatalf("x after its store, behind 4 misses: %v %s, %d hits", d, req.Status, req.batch.hits)
	}
}

// fps are the fingerprints of items' keys on worker 0, in order (items
// distinct).
func (e *leadEnv) fps(items []string) []uint64 {
	req := e.begin(0, items)
	e.w[0].itemKeys(req)
	fps := make([]uint64, 0, len(items))
	for _, i := range req.batch.distinct {
		fps = append(fps, req.batch.items[i].fp)
	}
	return fps
}

func (e *leadEnv) itemFP(item string) uint64 { return e.fps([]string{item})[0] }

// indexBuckets writes an empty, well-formed index for every bucket of
// items that has none, as a warm cache has.
func (e *leadEnv) indexBuckets(t *testing.T, items []string) {
	t.Helper()
	tb := e.w[0].table
	for _, fp := range e.fps(items) {
		b := tb.bucketOf(fp)
		if _, exists, err := tb.readIndex(b); err != nil || exists {
			continue
		}
		tb.resetIdx()
		if err := tb.writeIndex(b, 0, false); err != nil {
			t.Fatal(err)
		}
	}
}

// unindexed counts the items whose bucket has no index.
func (e *leadEnv) unindexed(t *testing.T, items []string) int {
	t.Helper()
	tb := e.w[0].table
	n := 0
	for _, fp := range e.fps(items) {
		if _, exists, err := tb.readIndex(tb.bucketOf(fp)); err != nil {
			t.Fatal(err)
		} else if !exists {
			n++
		}
	}
	return n
}

func TestBatchLeaderSeesAnEarlierLeadersItems(t *testing.T) {
	e := newLeadEnv(t)
	e.lead(t, 0, []string{"the model becomes known"})
	items := newItems("raced", 8)
	// Worker 0 misses, and reads its lease slot ahead; before it takes the
	// lease, worker 1 leads the same batch to the end.
	req := e.miss(t, items)
	e.lead(t, 1, items)
	e.mustServeOnLead(t, req, "the lead must find the earlier leader's items")
}

func TestBatchLeaderWithAStaleItemLooksAgain(t *testing.T) {
	e := newLeadEnv(t)
	items := newItems("stale", 4)
	e.lead(t, 0, items)
	e.clock.Advance(90 * time.Minute) // every item stale, still kept
	// The stale items come first. Without the guard, the new item's index
	// read would read the lease slot ahead, after the stale copies were
	// read; with it, a stale read means no read ahead and a full look.
	items = append(items, "a new item")
	req := e.miss(t, items)
	// A writer outside single flight stores the items afresh; the lease
	// slot does not change. The stale copies were read before the slot
	// was, so the lead must look again and find the fresh ones.
	e.storeUnled(t, 1, items)
	e.mustServeOnLead(t, req, "the lead must look again after a stale read")
}

func TestBatchLeaderSeesAnItemStoredAfterItsFirstRead(t *testing.T) {
	e := newLeadEnv(t)
	e.lead(t, 0, []string{"the model becomes known"})
	items := newItems("between", 6)
	// The first item's preferred way is read (nothing there); the lease
	// slot is read ahead of its index read, and just before that read
	// worker 1 leads the same batch to the end. The index then names the
	// preferred way, which must be read again.
	e.reads.onLease = func() { e.lead(t, 1, items) }
	req := e.begin(0, items)
	if d := e.w[0].Lookup(req); d != Serve || req.Status != StatusHit {
		t.Fatalf("an item stored between its two reads must be found: %v %s", d, req.Status)
	}
}

func TestLeaseReadAheadThatFailedIsNotUsed(t *testing.T) {
	failed := false
	store := &flakyStore{Store: NewMemStore(), getErr: func(string) error {
		if !failed {
			failed = true
			return errStoreDown
		}
		return nil
	}}
	lt := NewLeaseTable(store, 64)
	seq := lt.ReadAhead(42)
	role, unchanged, err := lt.acquire(42, 0, 1, 1, 1000, 2000, true, seq)
	if err != nil || role != RoleLeader || unchanged {
		t.Fatalf("after a failed read ahead the acquire reads for itself: %v %v %v", role, unchanged, err)
	}
	// A read ahead that worked is used, once.
	seq = lt.ReadAhead(43)
	if role, unchanged, err := lt.acquire(43, 0, 1, 2, 1000, 2000, true, seq); err != nil || role != RoleLeader || !unchanged {
		t.Fatalf("acquire with the read ahead: %v %v %v", role, unchanged, err)
	}
	if _, unchanged, _ := lt.acquire(44, 0, 1, 3, 1000, 2000, true, seq); unchanged {
		t.Fatal("a read ahead is used by one acquire only")
	}
}

func TestBatchLeaderKeepsTheStateItsLookupRead(t *testing.T) {
	e := newLeadEnv(t)
	e.lead(t, 0, []string{"the model becomes known"})
	items := newItems("moved", 4)
	req := e.miss(t, items)
	// The model's generation moves on, and a writer outside single flight
	// stores the items under it. The lead that won with its read ahead
	// reads nothing more (the model record included) and goes upstream:
	// one more upstream call in this race, and no item of the old
	// generation.
	if err := e.w[1].PurgeModel("emb", "e"); err != nil {
		t.Fatal(err)
	}
	e.storeUnled(t, 1, items)
	clear(e.reads.gets)
	f := e.w[0].NewFlight(req, 1, 10)
	if k := outcome(f.Miss()); k != ActForward {
		t.Fatalf("the lead: %v", k)
	}
	if len(e.reads.gets) != 0 {
		t.Errorf("reads after the read ahead: %v (none expected)", e.reads.gets)
	}
}

func TestBatchWithAHitReadsNoLeaseSlot(t *testing.T) {
	e := newLeadEnv(t)
	cached := newItems("cached", 3)
	e.lead(t, 0, cached)
	for _, items := range [][]string{cached, append(cached[:1:1], newItems("fresh", 3)...)} {
		clear(e.reads.gets)
		req := e.begin(0, items)
		e.w[0].Lookup(req)
		if req.Status != StatusHit && req.Status != StatusPartial {
			t.Fatalf("%v: %s", items, req.Status)
		}
		if n := e.reads.gets["mc:l"]; n != 0 {
			t.Errorf("%s batch: %d lease slot reads (it cannot lead)", req.Status, n)
		}
	}
}

func TestTakingOverAnExpiredLeaseIsNotUnchanged(t *testing.T) {
	store := NewMemStore()
	a, b := NewLeaseTable(store, 64), NewLeaseTable(store, 64)
	if role, _, err := a.acquire(42, 0, 1, 1, 1000, 2000, true, 0); err != nil || role != RoleLeader {
		t.Fatalf("first leader: %v %v", role, err)
	}
	// Past its deadline the first leader may still store: a read made
	// before that store proves nothing.
	seq := b.ReadAhead(42)
	role, unchanged, err := b.acquire(42, 0, 2, 1, 3000, 4000, true, seq)
	if err != nil || role != RoleLeader || unchanged {
		t.Fatalf("take-over: %v unchanged=%v %v", role, unchanged, err)
	}
}

// leaveReadAhead sets up a read ahead left behind: worker 1 leads a batch
// of items, worker 0 follows it, and a third request on worker 0 reads the
// lease slot ahead of its first index read ("a" misses), then finds "b"
// (stored by a writer outside the lease) and goes upstream partial,
// never joining. It returns the leader's and the follower's flights.
func (e *leadEnv) leaveReadAhead(t *testing.T) (fL, fF *Flight) {
	t.Helper()
	items := []string{"a", "b"}
	reqL := e.begin(1, items)
	if d := e.w[1].Lookup(reqL); d != Forward || reqL.Status != StatusMiss {
		t.Fatalf("leader lookup %v %s", d, reqL.Status)
	}
	fL = e.w[1].NewFlight(reqL, 2, 7)
	if k := outcome(fL.Miss()); k != ActForward {
		t.Fatalf("leader: %v", k)
	}
	reqF := e.miss(t, items)
	fF = e.w[0].NewFlight(reqF, 1, 8)
	fF.Miss()
	if !fF.Following() {
		t.Fatal("the second request does not follow")
	}
	e.storeUnled(t, 1, []string{"b"})
	reqG := e.begin(0, items)
	if d := e.w[0].Lookup(reqG); d != Forward || reqG.Status != StatusPartial {
		t.Fatalf("third request: %v %s", d, reqG.Status)
	}
	return fL, fF
}

// A lease slot read ahead by a batch's lookup belongs to that batch's
// Join. A batch that read ahead and then found a hit never joins (a
// partial one is not coalesced), and its read must not decide a later
// Join of the same key: here a follower woken by its failed leader, which
// must take the freed lease, not be told from the old read that the
// failed leader still leads.
func TestAReadAheadLeftByAnotherBatchDecidesNoJoin(t *testing.T) {
	e := newLeadEnv(t)
	e.lead(t, 0, []string{"the model becomes known"})
	fL, fF := e.leaveReadAhead(t)
	fp := fF.Request().LeaseFP()
	fL.FinishLead(OutcomeFailed, 503)
	if l, _ := e.w[0].Leases().Peek(fp); l.State != LeaseFree {
		t.Fatalf("lease after the leader's release: %+v", l)
	}
	fF.Wake(OutcomeFailed, 503)
	if fF.Following() {
		l, _ := e.w[0].Leases().Peek(fp)
		t.Fatalf("the woken follower keeps waiting for a leader that is gone (lease now %+v): another batch's read ahead decided its Join", l)
	}
}

// The same old read, where it reaches the client: with max_retries 1 a
// follower whose one leader failed must lead next; misled into waiting,
// its ticks count the same failure again and it would answer the client
// "leader failed" instead of going upstream.
func TestAReadAheadLeftByAnotherBatchFailsNoFollower(t *testing.T) {
	cfg := mustParse(t, `{"upstream_cluster":"model","routes":[{"name":"emb","kind":"embeddings","path_prefix":"/v1/embeddings","ttl":"1h","coalesce":{"max_retries":1}}]}`)
	e := &leadEnv{reads: &readCounter{MemStore: NewMemStore(), gets: map[string]int{}}, clock: newFakeClock()}
	for i := range e.w {
		e.w[i] = New(cfg, Options{Store: e.reads, Now: e.clock.Now, Rand: seededRand(uint64(i + 1))})
	}
	e.lead(t, 0, []string{"the model becomes known"})
	fL, fF := e.leaveReadAhead(t)
	fL.FinishLead(OutcomeFailed, 503)
	acts := fF.Wake(OutcomeFailed, 503)
	for i := 0; i < 3 && fF.Following(); i++ {
		e.clock.Advance(100 * time.Millisecond)
		acts = fF.Tick()
	}
	if k := outcome(acts); k != ActForward {
		for _, a := range acts {
			if a.Kind == ActServeLocal {
				t.Fatalf("after one leader failure (max_retries 1) the follower answered %d %s instead of leading", a.Status, a.Body)
			}
		}
		t.Fatalf("after one leader failure the follower did %v, want a forward as the new leader", k)
	}
}

package cachecore

import (
	"fmt"
	"strings"
	"testing"
	"time"
)

// A copy the index does not list (RATIONALE): two stores racing on one
// way, the first one's entry write landing after the second's index and
// entry writes, leave the first key's answer in its preferred way behind a
// well-formed index that lists another live key there. A lookup that reads
// the index first (lookupListed, Table.known) misses it, and the key's next
// store cannot take that way (listed live for the other key): it puts a
// second copy in another way. These tests hold what the table owes then: a
// purge frees both copies, and the older copy, once stale, does not hide
// the newer one from a lookup that reads the preferred way first.

// raceHookStore runs before once, just before the first Set of key after arm.
type raceHookStore struct {
	*MemStore
	key    string
	before func()
}

func (s *raceHookStore) Set(key string, value []byte, cas uint32) error {
	if s.before != nil && key == s.key {
		f := s.before
		s.before = nil
		f()
	}
	return s.MemStore.Set(key, value, cas)
}

const dupCfg = `{"upstream_cluster":"model","purge":{"path":"/purge","token":"a-review-token-0123456789"},
 "store":{"buckets":1,"ways":4},
 "routes":[{"name":"chat","kind":"chat","path_prefix":"/v1/chat/completions","ttl":"1h","stale_if_error":"10m"}]}`

type dupEnv struct {
	store *raceHookStore
	clock *fakeClock
	cfg   *Config
	w     []*Cache
}

func newDupEnv(t *testing.T, n int) *dupEnv {
	e := &dupEnv{store: &raceHookStore{MemStore: NewMemStore()}, clock: newFakeClock(), cfg: mustParse(t, dupCfg)}
	for i := 0; i < n; i++ {
		e.addWorker()
	}
	return e
}

// addWorker starts one more worker (a VM that has read nothing yet).
func (e *dupEnv) addWorker() *Cache {
	c := New(e.cfg, Options{Store: e.store, Now: e.clock.Now, Rand: seededRand(uint64(len(e.w) + 1))})
	e.w = append(e.w, c)
	return c
}

func (e *dupEnv) req(c *Cache, body string) *Request {
	r := c.Begin(c.routeByName("chat"), "POST", "/v1/chat/completions", [][2]string{{"authorization", "Bearer t"}})
	c.SetBody(r, []byte(body))
	return r
}

func (e *dupEnv) storeAs(t *testing.T, c *Cache, r *Request, headers [][2]string, content string) {
	t.Helper()
	body := []byte(chatResponse(content))
	adm := c.AdmitBody(r, headers, body)
	if res := c.Store(r, 200, headers, body, adm, 1); res.Reason != ReasonNone {
		t.Fatalf("store: %+v", res)
	}
}

// setup leaves the target's first answer ("old") unlisted in its preferred
// way, behind an index listing another live key there, through a real race
// of two writers; it returns the target's body and its preferred way.
func (e *dupEnv) setup(t *testing.T) (string, int) {
	t.Helper()
	w0, w1, w2 := e.w[0], e.w[1], e.w[2]
	e.storeAs(t, w0, e.req(w0, chatRequest("the model becomes known")), jsonCT, "x")
	if _, err := w0.table.Clear(); err != nil { // an empty bucket; the model keeps its record
		t.Fatal(err)
	}
	target := sampleChatRequest
	tfp := e.req(w0, target).FP
	pw := w0.table.preferredWay(tfp)
	// Three fillers in the three other ways, each in its own preferred way.
	used := map[int]bool{pw: true}
	var fillers []string
	for i := 0; len(fillers) < 3 && i < 1000; i++ {
		b := chatRequest(fmt.Sprintf("filler %d", i))
		if p := w0.table.preferredWay(e.req(w0, b).FP); !used[p] {
			used[p] = true
			fillers = append(fillers, b)
		}
	}
	for _, b := range fillers {
		e.storeAs(t, w0, e.req(w0, b), jsonCT, "filler")
	}
	e.clock.Advance(time.Second)
	// Worker 1 stores the target's answer (half its ttl already spent
	// upstream: it dies first). Between its index write and its entry
	// write, worker 2 stores another key, whose store takes the way of the
	// soonest-dying entry: the target's.
	e.store.key = w1.table.entryKey(0, pw)
	e.store.before = func() {
		e.storeAs(t, w2, e.req(w2, chatRequest("another key")), jsonCT, "another")
	}
	e.storeAs(t, w1, e.req(w1, target), hdr("content-type", "application/json", "age", "1800"), "old")
	if e.store.before != nil {
		t.Fatal("the race did not run")
	}
	if _, _, err := w0.table.readIndex(0); err != nil || w0.table.idx[pw].fp == tfp {
		t.Fatalf("the index still lists the target in its way (%v)", err)
	}
	// A fresh worker reading its preferred way first finds the answer.
	if r := e.req(e.addWorker(), target); e.w[len(e.w)-1].Lookup(r) != Serve {
		t.Fatal("the target's answer is not in its preferred way")
	}
	return target, pw
}

// The index-first miss and its store leave two copies; a purge of the
// entry must free both: no worker, whatever it read before, and no
// only-if-cached request (which reads the preferred way first) is served
// the purged answer.
func TestPurgeFreesACopyLeftUnlistedInItsPreferredWay(t *testing.T) {
	e := newDupEnv(t, 3)
	target, _ := e.setup(t)
	w2 := e.w[2] // stored the other key: it saw its way listed for that key
	r := e.req(w2, target)
	f := w2.NewFlight(r, 2, 20)
	if d := w2.Lookup(r); d == Serve {
		t.Log("the lookup found the answer: no second copy")
	} else if k := outcome(f.Miss()); k == ActForward && f.leader {
		// The lead went upstream with the answer in its way; its store
		// lists a second copy elsewhere.
		e.storeAs(t, w2, r, jsonCT, "new")
		f.FinishLead(OutcomeStored, 200)
	} else if k != ActServeEntry {
		t.Fatalf("the request: %v", k)
	}

	// The operator purges that one entry.
	purge := `{"path":"/v1/chat/completions","headers":{"authorization":"Bearer t"},"body":` + target + `}`
	res, err := e.w[0].Purge([]byte(purge), "")
	if err != nil || res.Freed != 1 {
		t.Fatalf("purge: %+v %v", res, err)
	}
	for i, c := range append(e.w, e.addWorker()) {
		q := e.req(c, target)
		if d := c.Lookup(q); d == Serve {
			t.Errorf("worker %d serves the purged entry (%s)", i, answerText(q))
		}
	}
	oic := e.addWorker()
	q := oic.Begin(oic.routeByName("chat"), "POST", "/v1/chat/completions",
		[][2]string{{"authorization", "Bearer t"}, {"cache-control", "only-if-cached"}})
	oic.SetBody(q, []byte(target))
	if d := oic.Lookup(q); d == Serve {
		t.Errorf("an only-if-cached request is served the purged entry (%s)", answerText(q))
	}
}

// One upstream call per key: the answer left unlisted in its preferred way
// (setup) goes stale, kept for stale_if_error. A worker reading its
// preferred way first takes that stale copy, leads, and stores a second
// copy elsewhere (the way is listed for the other key). The follower woken
// on another worker after the leader stored and released must be served
// that new copy, not find the stale one again and lead a second upstream
// call (lookupInto, listedPastStale).
func TestFollowerFindsTheStoredCopyPastAStaleUnlistedOne(t *testing.T) {
	e := newDupEnv(t, 3)
	e.setup(t)
	e.staleShadowStampede(t)
}

// staleShadowStampede: 35 minutes after setup the old copy is stale, not
// dead. A leader on a fresh worker, then its follower on another fresh
// worker, woken after the leader stored and released.
func (e *dupEnv) staleShadowStampede(t *testing.T) {
	t.Helper()
	e.clock.Advance(35 * time.Minute)
	target := sampleChatRequest
	a, b := e.addWorker(), e.addWorker()
	ra, rb := e.req(a, target), e.req(b, target)
	if a.Lookup(ra) == Serve || b.Lookup(rb) == Serve {
		t.Skip("served: nothing to show")
	}
	fa := a.NewFlight(ra, 10, 1)
	if k := outcome(fa.Miss()); k != ActForward || !fa.leader {
		t.Fatalf("the first request: %v", k)
	}
	fb := b.NewFlight(rb, 11, 1)
	if k := outcome(fb.Miss()); k != ActWait {
		t.Fatalf("the second request: %v; want it following", k)
	}
	e.storeAs(t, a, ra, jsonCT, "newer")
	fa.FinishLead(OutcomeStored, 200)
	if k := outcome(fb.Wake(OutcomeStored, 200)); k != ActServeEntry {
		t.Errorf("the follower, woken after its leader stored and released its answer: %v (leader %v, %s); want it served — a second upstream call for the key", k, fb.leader, rb.Status)
	}
}

func answerText(r *Request) string {
	if r.Entry == nil {
		return ""
	}
	s := string(r.Entry.Body)
	if i := strings.Index(s, `"content":`); i >= 0 {
		s = s[i:]
		if j := strings.IndexByte(s, '}'); j >= 0 {
			s = s[:j]
		}
	}
	return s
}

// The table's side of the follower's test above, for a single request's
// lookup and for a batch item's: the key's old copy sits stale in its
// preferred way, which the index lists for another live key (the race of
// setup), and its new copy is listed in another way. Both lookups return
// the new copy; a lookup that reads the preferred way first and stops at
// the stale copy would send the key upstream on every request until the
// old copy dies.
func TestLookupsPassAStaleUnlistedCopyToTheListedOne(t *testing.T) {
	store := NewMemStore()
	tb := NewTable(store, 1, 4)
	fp, other := fpIn(tb, 0, 0), fpIn(tb, 0, 1)
	pw := tb.preferredWay(fp)
	if tb.preferredWay(other) != pw {
		t.Fatal("the two keys should share a preferred way")
	}
	const key = "the key"
	now := int64(1000)
	if _, err := tb.Insert(fp, 0, 100_000, tableEntry(key, "old", now, 2000, 100_000), now); err != nil {
		t.Fatal(err)
	}
	// What the race leaves: the index lists the other key in that way.
	cas, exists, err := tb.readIndex(0)
	if err != nil || !exists || tb.idx[pw].fp != fp {
		t.Fatalf("the old copy is not listed in its preferred way (%v)", err)
	}
	tb.idx[pw] = slot{fp: other, staleUntil: 100_000}
	if err := tb.writeIndex(0, cas, true); err != nil {
		t.Fatal(err)
	}
	now = 3000 // the old copy is stale
	if _, err := tb.Insert(fp, 0, 100_000, tableEntry(key, "new", now, 50_000, 100_000), now); err != nil {
		t.Fatal(err)
	}
	if _, _, err := tb.readIndex(0); err != nil || tb.idx[pw].fp != other {
		t.Fatalf("the new copy took the preferred way (%v): nothing to show", err)
	}
	fresh := NewTable(store, 1, 4) // a VM that has read nothing: the preferred way first
	if got := get(t, fresh, fp, key, now); got != "new" {
		t.Errorf("a lookup returned %q; want the listed copy, new", got)
	}
	var vs indexViews
	var e Entry
	if ok, err := fresh.lookupBatch(&vs, fp, []byte(key), now, false, &e); err != nil || !ok || string(e.Body) != "new" {
		t.Errorf("a batch item's lookup returned %q (found %v, %v); want the listed copy, new", e.Body, ok, err)
	}
}

package cachecore

import (
	"strings"
	"testing"
	"time"
)

// Guarantee: the purge API's answer and the entries gauge it feeds are
// truthful ("freed": slots freed). An entry purge leaves its key's
// tombstone in the bucket index (RATIONALE "A purge of one entry leaves a
// tombstone"); the tombstone holds no entry and the entry purge already
// reported its slot freed. Table.Clear (purge of everything, and the L2
// log's drops) counts every index slot with a fingerprint, tombstones
// included, so it reports the purged entry freed a second time: two
// entries stored, one purged, and {"all":true} says it freed 2.
func TestPurgeAllDoesNotCountAnEntryPurgesTombstoneAsFreed(t *testing.T) {
	env := newEnv(t, testConfig)
	for _, q := range []string{"one", "two"} {
		req, _ := env.lookup("chat", alice, chatRequest(q))
		env.fill(req, jsonCT, chatResponse("x"), 10)
	}
	one, err := env.cache.Purge([]byte(`{"path":"/v1/chat/completions","headers":{"authorization":"Bearer sk-alice"},"body":`+chatRequest("one")+`}`), "")
	if err != nil || one.Freed != 1 {
		t.Fatalf("entry purge: %+v %v", one, err)
	}
	all, err := env.cache.Purge([]byte(`{"all":true}`), "")
	if err != nil {
		t.Fatal(err)
	}
	if all.Freed != 1 {
		t.Fatalf("purge of everything with one entry left reports freed %d, want 1 (the entry purge's tombstone counted as an entry)", all.Freed)
	}
}

// indexHookStore runs onIndexSet (once) right after a bucket index write:
// what another worker's VM can do between two shared-data calls of this one.
type indexHookStore struct {
	Store
	onIndexSet func()
}

func (s *indexHookStore) Set(key string, value []byte, cas uint32) error {
	err := s.Store.Set(key, value, cas)
	if err == nil && strings.HasPrefix(key, "mc:i:") && s.onIndexSet != nil {
		f := s.onIndexSet
		s.onIndexSet = nil
		f()
	}
	return err
}

// Guarantee (README, Purge API): an entry purge refuses an answer in
// flight when it came, asked for before it; nothing purged is served
// after the purge returned. A store is two shared-data writes — the
// bucket index (claiming a way for the key), then the entry. A purge on
// another worker that lands between them finds the key listed but its
// entry not yet readable: Table.remove frees nothing and puts its
// tombstone in another way, and returns 200 {"freed":0}. The store's
// entry write then lands in the way the index still lists for the key,
// and the answer asked for before the purge is served on every worker.
func TestEntryPurgeBetweenAStoresIndexAndEntryWritesIsNotUndone(t *testing.T) {
	store := &indexHookStore{Store: NewMemStore()}
	clock := newFakeClock()
	cfg := mustParse(t, testConfig)
	vm1 := New(cfg, Options{Store: store, Now: clock.Now, Rand: seededRand(1)})
	vm2 := New(cfg, Options{Store: store, Now: clock.Now, Rand: seededRand(2)})
	w1 := &testEnv{t: t, cache: vm1, clock: clock}
	w2 := &testEnv{t: t, cache: vm2, clock: clock}

	req, d := w1.lookup("chat", alice, chatRequest("q")) // worker 1's leader goes upstream
	if d != Forward {
		t.Fatal(d)
	}
	clock.Advance(time.Millisecond) // the purge comes strictly after the lookup
	var purged PurgeResult
	var perr error
	store.onIndexSet = func() { // worker 2 takes the operator's purge
		purged, perr = vm2.Purge([]byte(`{"path":"/v1/chat/completions","headers":{"authorization":"Bearer sk-alice"},"body":`+chatRequest("q")+`}`), "")
	}
	vm1.AdmitAndStore(req, 200, jsonCT, []byte(chatResponse("asked for before the purge")), OriginUpstream, 10)
	if perr != nil || purged.Scope != "entry" {
		t.Fatalf("purge: %+v %v", purged, perr)
	}
	for i, w := range []*testEnv{w1, w2} {
		if r, d := w.lookup("chat", alice, chatRequest("q")); d == Serve {
			_, _, body := w.cache.HitResponse(r)
			t.Fatalf("worker %d serves, after the purge returned, the answer asked for before it: %s", i+1, body)
		}
	}
}

// The batch's side of TestEntryPurgeBetweenAStoresIndexAndEntryWritesIsNotUndone:
// an embeddings batch writes each bucket's index, then its entries; a
// purge of one item landing between them must not be undone by the entry
// written after it, on any worker.
func TestEntryPurgeBetweenABatchsIndexAndEntryWritesIsNotUndone(t *testing.T) {
	store := &indexHookStore{Store: NewMemStore()}
	clock := newFakeClock()
	cfg := mustParse(t, testConfig)
	vm1 := New(cfg, Options{Store: store, Now: clock.Now, Rand: seededRand(1)})
	vm2 := New(cfg, Options{Store: store, Now: clock.Now, Rand: seededRand(2)})
	embed := func(c *Cache, input string) *Request {
		req := c.Begin(c.routeByName("embed"), "POST", "/v1/embeddings", hdr("authorization", "Bearer t"))
		c.SetBody(req, []byte(`{"model":"e","input":`+input+`}`))
		return req
	}
	req := embed(vm1, `["aa"]`)
	if d := vm1.Lookup(req); d != Forward {
		t.Fatal(d)
	}
	clock.Advance(time.Millisecond)
	var purged PurgeResult
	var perr error
	store.onIndexSet = func() { // worker 2 takes the operator's purge of the item
		purged, perr = vm2.Purge([]byte(`{"path":"/v1/embeddings","body":{"model":"e","input":"aa"}}`), "")
	}
	st := vm1.AdmitAndStore(req, 200, jsonCT, embAnswer([]string{"aa"}), OriginUpstream, 10)
	if perr != nil || purged.Scope != "entry" {
		t.Fatalf("purge: %+v %v", purged, perr)
	}
	for i, c := range []*Cache{vm1, vm2} {
		if r := embed(c, `["aa"]`); c.Lookup(r) == Serve {
			t.Fatalf("worker %d serves the item asked for before its purge (store: %+v)", i+1, st.Result)
		}
	}
}

package cachecore

import (
	"strings"
	"testing"
	"time"
)

// Review Z23. README (Limitations): changing store.buckets with the same
// vm_id starts the cache empty "so an entry purged under one layout never
// returns under the one before it". A new configuration does not stop the
// old one: Envoy keeps the old filter chain (and its plugin configuration)
// on the connections it drains, so the old layout's VMs keep storing and
// serving beside the new one's. Both name a bucket's index "mc:i:<n>"
// whatever the layout, and place a key in bucket fp % buckets: a purge by
// replay sent to a VM of the new layout (32 buckets) looks for the key in
// bucket fp%32, tombstones it there and answers 200, while the old
// layout's VM (16 buckets) still holds it, and serves it, in bucket fp%16.
func TestEntryPurgedUnderNewLayoutIsNotServedByTheOldLayoutStillServing(t *testing.T) {
	for _, tc := range []struct{ name, to, was string }{
		{"buckets", `"buckets": 32`, "16x4"},
		{"ways", `"buckets": 16, "ways": 8`, "16x4"},
	} {
		t.Run(tc.name, func(t *testing.T) { purgedUnderNewLayout(t, tc.to, tc.was, false) })
		// And the other way: the old configuration's VM purges what the
		// new one stored (it reads the layout recorded since).
		t.Run(tc.name+"-old-purges-new", func(t *testing.T) { purgedUnderNewLayout(t, tc.to, tc.was, true) })
	}
}

func purgedUnderNewLayout(t *testing.T, to, was string, oldPurges bool) {
	cfgA := testConfig
	cfgB := strings.Replace(testConfig, `"buckets": 16, "ways": 4`, to, 1)
	if cfgA == cfgB {
		t.Fatal("setup: config not changed")
	}
	store := NewMemStore()
	clock := newFakeClock()
	mk := func(cfg string, seed uint64) *testEnv {
		c := New(mustParse(t, cfg), Options{Store: store, Now: clock.Now, Rand: seededRand(seed)})
		return &testEnv{t: t, cache: c, store: store, clock: clock}
	}
	a := mk(cfgA, 1) // the old configuration's VM, still serving
	clock.Advance(time.Second)
	b := mk(cfgB, 2) // the new configuration's VM: store.buckets 16 -> 32
	if b.cache.LayoutReplaced() != was {
		t.Fatalf("setup: layout replaced %q", b.cache.LayoutReplaced())
	}
	if oldPurges {
		a, b = b, a
	}
	var served, purged int
	for i := range 8 {
		q := chatRequest("poisoned question " + itoa(int64(i)))
		req, d := a.lookup("chat", alice, q)
		if d == Serve {
			t.Fatalf("setup: %s served before it was stored", q)
		}
		a.fill(req, jsonCT, chatResponse("poisoned answer"), 10)
		if r, d := a.lookup("chat", alice, q); d != Serve {
			t.Fatalf("setup: %s not stored by the old configuration (%s)", q, r.Status)
		}
		purge := `{"path":"/v1/chat/completions","headers":{"authorization":"Bearer sk-alice"},"body":` + q + `}`
		res, err := b.cache.Purge([]byte(purge), "")
		if err != nil {
			t.Fatal(err)
		}
		purged++
		clock.Advance(100 * time.Millisecond)
		if r, d := a.lookup("chat", alice, q); d == Serve {
			_, _, body := a.cache.HitResponse(r)
			t.Logf("purge answered freed=%d; the old layout's VM still serves %s -> %s", res.Freed, q, body)
			served++
		}
	}
	if served > 0 {
		t.Fatalf("%d of %d entries purged by replay (each purge answered without error) are still served by the VMs of the configuration before the layout change", served, purged)
	}
}

// Review Z29. A purge by replay now also purges the key under the other
// layout (purgeOtherLayouts). Under a different store.ways the two layouts
// name a bucket's index alike ("mc:i:<b>") but not its shape: the other
// layout's readIndex takes this layout's index for foreign, reads it as
// empty and writes its own shape back holding only its tombstone. The
// tombstone this layout's PurgeKey had just written is gone, so an answer
// asked for before the purge (a leader upstream across it) is stored
// after the purge returned and served: the purge guarantee of
// TestEntryPurgeRefusesAnAnswerAskedForBeforeIt, lost on the path the
// mend added.
func TestPurgeUnderOtherWaysKeepsThisLayoutsTombstone(t *testing.T) {
	for _, oldPurges := range []bool{false, true} {
		name := "new-purges"
		if oldPurges {
			name = "old-purges"
		}
		t.Run(name, func(t *testing.T) {
			store := NewMemStore()
			clock := newFakeClock()
			mk := func(cfg string, seed uint64) *testEnv {
				c := New(mustParse(t, cfg), Options{Store: store, Now: clock.Now, Rand: seededRand(seed)})
				return &testEnv{t: t, cache: c, store: store, clock: clock}
			}
			a := mk(testConfig, 1) // the old configuration, still serving
			clock.Advance(time.Second)
			b := mk(strings.Replace(testConfig, `"ways": 4`, `"ways": 8`, 1), 2) // reload: ways 4 -> 8
			if b.cache.LayoutReplaced() != "16x4" {
				t.Fatalf("setup: layout replaced %q", b.cache.LayoutReplaced())
			}
			env := b
			if oldPurges {
				env = a
			}
			if stored := storedAfterPurges(t, env, env, clock, 4); stored > 0 {
				t.Fatalf("%d of 4 answers asked for before an entry purge were stored after it and served (this layout's tombstone overwritten by the purge's write under the other layout's ways)", stored)
			}
		})
	}
}

// Review Z29. The same write under the other layout's ways drops this
// layout's listings of the bucket. RATIONALE accepts the lookups that
// miss on them; it does not say what the occupancy counts make of them:
// the entries still hold their ways, and every later store into the
// bucket reads the ways as empty and counts a fill (not an eviction) as
// it overwrites one. modelcache.entries ("occupied slots", the sum of the
// fills less what purges freed) then climbs past the table's capacity
// and never comes back.
func TestPurgeUnderOtherWaysKeepsTheEntriesGaugeWithinCapacity(t *testing.T) {
	cfg := func(ways string) string {
		return `{"upstream_cluster": "models", "store": {"buckets": 1, "ways": ` + ways + `},
		  "routes": [{"name": "chat", "kind": "chat", "path_exact": "/v1/chat/completions"}]}`
	}
	store := NewMemStore()
	clock := newFakeClock()
	_ = New(mustParse(t, cfg("4")), Options{Store: store, Now: clock.Now, Rand: seededRand(1)}) // the old configuration
	clock.Advance(time.Second)
	b := &testEnv{t: t, cache: New(mustParse(t, cfg("8")), Options{Store: store, Now: clock.Now, Rand: seededRand(2)}), store: store, clock: clock}
	if b.cache.LayoutReplaced() != "1x4" {
		t.Fatalf("setup: layout replaced %q", b.cache.LayoutReplaced())
	}
	gauge := 0 // what the filter's modelcache.entries adds up (noteStore, purge)
	fill := func(q string) {
		req, _ := b.lookup("chat", alice, chatRequest(q))
		res := b.fill(req, jsonCT, chatResponse("answer to "+q), 10)
		filled, _, _, _ := res.Occupancy()
		gauge += filled
	}
	for i := range 8 {
		fill("first " + itoa(int64(i)))
	}
	if gauge != 8 {
		t.Fatalf("setup: gauge %d after filling the 8 ways", gauge)
	}
	purge := `{"path":"/v1/chat/completions","headers":{"authorization":"Bearer sk-alice"},"body":` + chatRequest("first 0") + `}`
	res, err := b.cache.Purge([]byte(purge), "")
	if err != nil {
		t.Fatal(err)
	}
	gauge -= res.Freed
	clock.Advance(time.Second)
	for i := range 8 {
		fill("second " + itoa(int64(i)))
	}
	if gauge > 8 {
		occ, _ := b.cache.table.Occupied()
		t.Fatalf("modelcache.entries reads %d occupied slots in a table of 1 bucket x 8 ways (Occupied %d): the purge's write under the 1x4 layout dropped 7 listings whose entries were then overwritten as fills", gauge, occ)
	}
}

// Review Z32. A purge by replay sent to one configuration during a
// reload's overlap must also hold for the other layout's requests in
// flight: RATIONALE ("A reload overlaps two configurations") says the
// purge "removes the key, tombstone included, under the layout this
// configuration replaced", and the entry-purge promise is that an answer
// asked for before the purge is not stored after it. Under a different
// store.ways the other layout's index is left as it is (Z29 mend) and no
// tombstone is written for it: the old configuration's leader, upstream
// across the purge, stores its answer after the purge returned, and the
// old configuration serves the purged answer.
func TestPurgeUnderOtherWaysStopsTheOtherLayoutsStoreInFlight(t *testing.T) {
	for _, tc := range []struct {
		to        string
		oldPurges bool
	}{{`"buckets": 16, "ways": 8`, false}, {`"buckets": 16, "ways": 8`, true}, {`"buckets": 32, "ways": 4`, false}} {
		oldPurges := tc.oldPurges
		name := "new-purges-old-stores"
		if oldPurges {
			name = "old-purges-new-stores"
		}
		name += "/" + tc.to
		t.Run(name, func(t *testing.T) {
			store := NewMemStore()
			clock := newFakeClock()
			mk := func(cfg string, seed uint64) *testEnv {
				c := New(mustParse(t, cfg), Options{Store: store, Now: clock.Now, Rand: seededRand(seed)})
				return &testEnv{t: t, cache: c, store: store, clock: clock}
			}
			a := mk(testConfig, 1) // the old configuration, still serving
			clock.Advance(time.Second)
			b := mk(strings.Replace(testConfig, `"buckets": 16, "ways": 4`, tc.to, 1), 2) // reload: ways 4 -> 8
			if b.cache.LayoutReplaced() != "16x4" {
				t.Fatalf("setup: layout replaced %q", b.cache.LayoutReplaced())
			}
			storer, purger := a, b
			if oldPurges {
				storer, purger = b, a
			}
			// Warm the buckets under the purger's layout, as a live cache
			// has them: its index is then the one the purge finds. (Not
			// so full that a bucket has no way for the tombstone: a
			// purge there frees only the entry, in one layout as in two;
			// RATIONALE, "A purge of one entry leaves a tombstone".)
			for i := range 16 {
				q := chatRequest("warm " + itoa(int64(i)))
				req, d := purger.lookup("chat", alice, q)
				if d == Forward {
					purger.fill(req, jsonCT, chatResponse("warm"), 10)
				}
			}
			if stored := storedAfterPurges(t, storer, purger, clock, 8); stored > 0 {
				t.Fatalf("%d of 8 answers asked for before an entry purge (sent to the other configuration of the reload's overlap) were stored after it and served", stored)
			}
		})
	}
}

// Review Z34. The Z32 mend (foreignPurgedAfter) makes a store that reads
// its bucket's index in the other layout's shape honour that layout's
// tombstone of its key: InsertSince and purgedSince check it. An
// embeddings batch stores its items through insertBucket, which reads the
// index (view / readIndex) and checks only purgedAfter on its own shape:
// an item asked for before an entry purge sent to the other configuration
// of a reload's overlap is stored after the purge returned, and served.
func TestPurgeUnderOtherWaysStopsTheOtherLayoutsBatchItemInFlight(t *testing.T) {
	for _, tc := range []struct{ oldPurges, oneLayout bool }{{false, false}, {true, false}, {false, true}} {
		oldPurges := tc.oldPurges
		name := "new-purges-old-stores"
		if oldPurges {
			name = "old-purges-new-stores"
		}
		if tc.oneLayout {
			name = "control-one-layout"
		}
		t.Run(name, func(t *testing.T) {
			store := NewMemStore()
			clock := newFakeClock()
			mk := func(cfg string, seed uint64) *testEnv {
				c := New(mustParse(t, cfg), Options{Store: store, Now: clock.Now, Rand: seededRand(seed)})
				return &testEnv{t: t, cache: c, store: store, clock: clock}
			}
			a := mk(testConfig, 1)
			clock.Advance(time.Second)
			b := mk(strings.Replace(testConfig, `"buckets": 16, "ways": 4`, `"buckets": 16, "ways": 8`, 1), 2)
			if b.cache.LayoutReplaced() != "16x4" {
				t.Fatalf("setup: layout replaced %q", b.cache.LayoutReplaced())
			}
			storer, purger := a, b
			if tc.oneLayout {
				storer, purger = b, b
			}
			if oldPurges {
				storer, purger = b, a
			}
			for i := range 16 {
				q := chatRequest("warm " + itoa(int64(i)))
				req, d := purger.lookup("chat", alice, q)
				if d == Forward {
					purger.fill(req, jsonCT, chatResponse("warm"), 10)
				}
			}
			var stored int
			for i := range 8 {
				item := "asked before the purge " + itoa(int64(i))
				q := `{"model":"e","input":["` + item + `"]}`
				req, d := storer.lookup("embed", nil, q)
				if d != Forward {
					t.Fatalf("setup: %v", d)
				}
				clock.Advance(time.Millisecond)
				purge := `{"path":"/v1/embeddings","body":{"model":"e","input":"` + item + `"}}`
				if res, err := purger.cache.Purge([]byte(purge), ""); err != nil || res.Scope != "entry" {
					t.Fatalf("purge: %+v %v", res, err)
				}
				st := storer.cache.AdmitAndStore(req, 200, jsonCT, embAnswer([]string{item}), OriginUpstream, 10)
				if _, d := storer.lookup("embed", nil, q); d == Serve {
					t.Logf("item %d: stored %d refused %d (reason %q) after the purge returned, served", i, st.Result.ItemsStored, st.Result.ItemsRefused, st.Reason)
					stored++
				}
			}
			if stored > 0 {
				t.Fatalf("%d of 8 embeddings items asked for before an entry purge (sent to the other configuration of the reload's overlap) were stored after it and served", stored)
			}
		})
	}
}

// Review Z36 (1). A store is two writes: the bucket index, then the
// entry; a purge landing between them is caught after the entry write
// (stillListed / batchStillListed: the key's tombstone in its way blanks
// the late entry and refuses it). The Z32/Z34 mends make the *store's*
// index read honour the other layout's tombstone (foreignIdx), but the
// check after the entry write does not: a purge sent to the other
// configuration of a reload's overlap (other store.ways) writes its own
// index shape there, which readIndex takes for foreign and reads as
// empty; dropLate finds nothing and keeps the entry, and the key's
// preferred way, read without the index, serves the purged answer.
func TestPurgeUnderOtherLayoutBetweenIndexAndEntryWritesIsNotUndone(t *testing.T) {
	for _, batch := range []bool{false, true} {
		name := "chat"
		if batch {
			name = "embeddings-batch"
		}
		t.Run(name, func(t *testing.T) {
			for _, mode := range []string{"new-purges", "old-purges", "control-one-layout"} {
				oldPurges := mode
				served := 0
				for i := range 8 {
					store := &indexHookStore{Store: NewMemStore()}
					clock := newFakeClock()
					mk := func(cfg string, seed uint64) *testEnv {
						c := New(mustParse(t, cfg), Options{Store: store, Now: clock.Now, Rand: seededRand(seed)})
						return &testEnv{t: t, cache: c, clock: clock}
					}
					a := mk(testConfig, 1)
					clock.Advance(time.Second)
					b := mk(strings.Replace(testConfig, `"buckets": 16, "ways": 4`, `"buckets": 16, "ways": 8`, 1), 2)
					if b.cache.LayoutReplaced() != "16x4" {
						t.Fatalf("setup: layout replaced %q", b.cache.LayoutReplaced())
					}
					storer, purger := a, b
					switch mode {
					case "old-purges":
						storer, purger = b, a
					case "control-one-layout":
						// another VM of the same configuration purges: held (stillListed)
						purger = mk(strings.Replace(testConfig, `"buckets": 16, "ways": 4`, `"buckets": 16, "ways": 8`, 1), 3)
						storer = b
					}
					item := "asked before the purge " + itoa(int64(i))
					var q, purge, route string
					var hdrs [][2]string
					if batch {
						route, q = "embed", `{"model":"e","input":["`+item+`"]}`
						purge = `{"path":"/v1/embeddings","body":{"model":"e","input":"` + item + `"}}`
					} else {
						route, q, hdrs = "chat", chatRequest(item), alice
						purge = `{"path":"/v1/chat/completions","headers":{"authorization":"Bearer sk-alice"},"body":` + q + `}`
					}
					req, d := storer.lookup(route, hdrs, q)
					if d != Forward {
						t.Fatalf("setup: %v", d)
					}
					clock.Advance(time.Millisecond)
					var perr error
					var pres PurgeResult
					store.onIndexSet = func() { // the other configuration's VM takes the purge
						pres, perr = purger.cache.Purge([]byte(purge), "")
					}
					var st Stored
					if batch {
						st = storer.cache.AdmitAndStore(req, 200, jsonCT, embAnswer([]string{item}), OriginUpstream, 10)
					} else {
						st = storer.cache.AdmitAndStore(req, 200, jsonCT, []byte(chatResponse("answered before the purge")), OriginUpstream, 10)
					}
					if perr != nil || pres.Scope != "entry" || store.onIndexSet != nil {
						t.Fatalf("setup: purge %+v %v (hook ran: %v)", pres, perr, store.onIndexSet == nil)
					}
					for _, w := range []*testEnv{storer, purger} {
						if r, d := w.lookup(route, hdrs, q); d == Serve {
							_, _, body := w.cache.HitResponse(r)
							t.Logf("%s key %d: store %+v reason %q; served after the purge returned: %.80s", oldPurges, i, st.Result, st.Reason, body)
							served++
							break
						}
					}
				}
				if served > 0 {
					t.Errorf("%s: %d of 8 answers asked for before an entry purge (sent to the other layout's configuration between the store's index and entry writes) are served after the purge returned", oldPurges, served)
				}
			}
		})
	}
}

// Review Z37 (2). TestDiffReviewPurgeThenFreshStoreBetweenAStoresWritesIsNotUndone
// across a reload's two layouts (store.ways 4 -> 8, same buckets). Between
// the old store's index write and its entry write, the other layout's VM
// takes the purge (its tombstone goes into an index of its own shape) and
// then stores a fresh answer to the same key, asked for after the purge:
// that store's chooseWay takes the tombstone's way, so the tombstone is
// gone. The old store's check after its entry write (stillListed ->
// dropForeignLate) looks only for the tombstone in the foreign index, finds
// none, and keeps the late entry in its own layout's way (another way than
// the fresh one's): the answer asked for before the purge is served.
func TestPurgeThenFreshStoreUnderOtherLayoutIsNotUndone(t *testing.T) {
	for _, batch := range []bool{false, true} {
		name := "chat"
		if batch {
			name = "embeddings-batch"
		}
		t.Run(name, func(t *testing.T) {
			for _, mode := range []string{"new-purges", "old-purges", "control-one-layout"} {
				served := 0
				for i := range 8 {
					store := &indexHookStore{Store: NewMemStore()}
					clock := newFakeClock()
					mk := func(cfg string, seed uint64) *testEnv {
						c := New(mustParse(t, cfg), Options{Store: store, Now: clock.Now, Rand: seededRand(seed)})
						return &testEnv{t: t, cache: c, clock: clock}
					}
					a := mk(testConfig, 1)
					clock.Advance(time.Second)
					b := mk(strings.Replace(testConfig, `"buckets": 16, "ways": 4`, `"buckets": 16, "ways": 8`, 1), 2)
					if b.cache.LayoutReplaced() != "16x4" {
						t.Fatalf("setup: layout replaced %q", b.cache.LayoutReplaced())
					}
					storer, purger := a, b
					switch mode {
					case "old-purges":
						storer, purger = b, a
					case "control-one-layout": // held: dropLate
						storer, purger = b, mk(strings.Replace(testConfig, `"buckets": 16, "ways": 4`, `"buckets": 16, "ways": 8`, 1), 3)
					}
					item := "asked before the purge " + itoa(int64(i))
					var q, purge, route string
					var hdrs [][2]string
					if batch {
						route, q = "embed", `{"model":"e","input":["`+item+`"]}`
						purge = `{"path":"/v1/embeddings","body":{"model":"e","input":"` + item + `"}}`
					} else {
						route, q, hdrs = "chat", chatRequest(item), alice
						purge = `{"path":"/v1/chat/completions","headers":{"authorization":"Bearer sk-alice"},"body":` + q + `}`
					}
					answer := func(s string) []byte {
						if batch {
							v := "222"
							if strings.Contains(s, "before") {
								v = "111"
							}
							return []byte(`{"object":"list","data":[{"object":"embedding","index":0,"embedding":[` + v + `,0.5]}],"model":"e-1","usage":{"prompt_tokens":7,"total_tokens":7}}`)
						}
						return []byte(chatResponse(s))
					}
					req, d := storer.lookup(route, hdrs, q)
					if d != Forward {
						t.Fatalf("setup: %v", d)
					}
					clock.Advance(time.Millisecond)
					var perr error
					var pres PurgeResult
					var fresh Stored
					freshRan := false
					store.onIndexSet = func() { // the other configuration's VM: the purge, then a fresh request
						pres, perr = purger.cache.Purge([]byte(purge), "")
						clock.Advance(time.Millisecond)
						r2, d := purger.lookup(route, hdrs, q)
						if d != Forward {
							t.Errorf("setup: lookup after the purge: %v", d)
							return
						}
						freshRan = true
						fresh = purger.cache.AdmitAndStore(r2, 200, jsonCT, answer("asked for after the purge"), OriginUpstream, 10)
					}
					st := storer.cache.AdmitAndStore(req, 200, jsonCT, answer("answered before the purge"), OriginUpstream, 10)
					if perr != nil || pres.Scope != "entry" || store.onIndexSet != nil || !freshRan {
						t.Fatalf("setup: purge %+v %v (hook ran: %v, fresh ran %v)", pres, perr, store.onIndexSet == nil, freshRan)
					}
					if fresh.Reason != ReasonNone {
						t.Fatalf("setup: the fresh answer was not stored: %+v", fresh)
					}
					for wi, w := range []*testEnv{storer, purger} {
						r, d := w.lookup(route, hdrs, q)
						if d != Serve {
							continue
						}
						_, _, body := w.cache.HitResponse(r)
						if strings.Contains(string(body), "before the purge") || batch && strings.Contains(string(body), "111") {
							t.Logf("%s key %d: worker %d; store %+v reason %q; served: %.120s", mode, i, wi, st.Result, st.Reason, body)
							served++
							break
						}
					}
				}
				if served > 0 {
					t.Errorf("%s: %d of 8 answers asked for before an entry purge (other layout: purge, then a fresh store of the key, between the store's index and entry writes) are served after the purge", mode, served)
				}
			}
		})
	}
}

// Review Z37 (2). dropForeignLate blanks way w when the other layout's
// index holds a tombstone of *my* key and the entry in way w has my
// entry's staleUntil — it never checks that the entry is my key's. Under
// the other layout way w (same name, mc:e:<b>:<w>) is another key's way:
// a store of another key there, after my entry write, in the same
// millisecond with the same ttl (the same staleUntil), is blanked by my
// check. dropLate, on one layout, is guarded by the index listing my key
// in way w; here nothing is. The other key's answer is stored and
// counted (entries gauge, items) and then misses.
func TestForeignLateCheckNeverBlanksAnotherKeysEntry(t *testing.T) {
	cfgA := testConfig
	cfgB := strings.Replace(testConfig, `"buckets": 16, "ways": 4`, `"buckets": 16, "ways": 8`, 1)
	store := &twoHookStore{Store: NewMemStore()}
	clock := newFakeClock()
	mk := func(cfg string, seed uint64) *testEnv {
		c := New(mustParse(t, cfg), Options{Store: store, Now: clock.Now, Rand: seededRand(seed)})
		return &testEnv{t: t, cache: c, clock: clock}
	}
	a := mk(cfgA, 1)
	clock.Advance(time.Second)
	b := mk(cfgB, 2)
	if b.cache.LayoutReplaced() != "16x4" {
		t.Fatalf("setup: layout replaced %q", b.cache.LayoutReplaced())
	}
	bucket := func(fp uint64) uint64 { return (fp >> 16) % 16 }
	// K: the key stored by the old layout (4 ways) and purged by the new
	// one (8 ways), whose tombstone then takes way 0; K2: another key the
	// new layout places in K's bucket, in the way K has under the old one.
	var k string
	var req *Request
	for i := 0; k == ""; i++ {
		p := "purged key " + itoa(int64(i))
		r, d := a.lookup("chat", alice, chatRequest(p))
		if d != Forward {
			t.Fatalf("setup: %v", d)
		}
		if r.FP%4 != 0 {
			k, req = p, r
		}
	}
	fpK := req.FP
	var req2 *Request
	for i := 0; req2 == nil && i < 20000; i++ {
		r, d := b.lookup("chat", alice, chatRequest("other key "+itoa(int64(i))))
		if d != Forward {
			t.Fatalf("setup: %v", d)
		}
		if bucket(r.FP) == bucket(fpK) && r.FP%8 == fpK%4 {
			req2 = r
		}
	}
	if req2 == nil {
		t.Fatal("setup: no other key found")
	}
	clock.Advance(time.Millisecond)
	var pres PurgeResult
	var perr error
	store.onIndexSet = func() { // between the old layout's two writes: the purge of K, new layout
		pres, perr = b.cache.Purge([]byte(`{"path":"/v1/chat/completions","headers":{"authorization":"Bearer sk-alice"},"body":`+chatRequest(k)+`}`), "")
	}
	var other Stored
	ran := false
	store.onEntrySet = func() { // after the old layout's entry write: another key's store, new layout
		ran = true
		other = b.cache.AdmitAndStore(req2, 200, jsonCT, []byte(chatResponse("the other key's answer")), OriginUpstream, 10)
	}
	st := a.cache.AdmitAndStore(req, 200, jsonCT, []byte(chatResponse("asked before the purge")), OriginUpstream, 10)
	if perr != nil || pres.Scope != "entry" || !ran || other.Reason != ReasonNone {
		t.Fatalf("setup: purge %+v %v; other store ran %v: %+v", pres, perr, ran, other)
	}
	if st.Reason != ReasonInvalidated {
		t.Fatalf("setup: the purged key's store was not refused: %+v", st)
	}
	if r, d := b.lookup("chat", alice, string(req2.Body)); d != Serve {
		t.Fatalf("another key's answer, stored (%+v) after the purge of this one, is gone: %s (the purged key's late check blanked its way)", other.Result, r.Status)
	}
}

// twoHookStore runs onIndexSet once after a bucket index write and
// onEntrySet once after a non-empty entry write: what other workers' VMs
// can do between this one's shared-data calls.
type twoHookStore struct {
	Store
	onIndexSet, onEntrySet func()
}

func (s *twoHookStore) Set(key string, value []byte, cas uint32) error {
	err := s.Store.Set(key, value, cas)
	if err != nil {
		return err
	}
	hook := &s.onEntrySet
	if strings.HasPrefix(key, "mc:i:") {
		hook = &s.onIndexSet
	} else if !strings.HasPrefix(key, "mc:e:") || len(value) == 0 {
		return nil
	}
	if f := *hook; f != nil {
		*hook = nil
		f()
	}
	return nil
}

// storedAfterPurges asks n new questions on storer, purges each through
// purger after it leads and before its answer is stored, and counts the
// answers served after their purge returned.
func storedAfterPurges(t *testing.T, storer, purger *testEnv, clock *fakeClock, n int) (stored int) {
	t.Helper()
	for i := range n {
		q := chatRequest("asked before the purge " + itoa(int64(i)))
		req, d := storer.lookup("chat", alice, q)
		if d != Forward {
			t.Fatalf("setup: %v", d)
		}
		clock.Advance(time.Millisecond)
		purge := `{"path":"/v1/chat/completions","headers":{"authorization":"Bearer sk-alice"},"body":` + q + `}`
		if _, err := purger.cache.Purge([]byte(purge), ""); err != nil {
			t.Fatal(err)
		}
		st := storer.cache.AdmitAndStore(req, 200, jsonCT, []byte(chatResponse("answered before the purge")), OriginUpstream, 10)
		if r2, d := storer.lookup("chat", alice, q); d == Serve {
			_, _, body := storer.cache.HitResponse(r2)
			t.Logf("key %d: stored (reason %q) after the purge returned, served: %s", i, st.Reason, body)
			stored++
		}
	}
	return stored
}

package cachecore

import (
	"errors"
	"testing"
	"time"
)

// Review Z163's mend keeps a purge's tombstone its whole life: chooseWay
// skips a live tombstone of the key, so a store asked for after the purge
// takes another way. But in a full bucket whose live entries outlive the
// tombstone (any ttl + stale window past 15 minutes), chooseWay's last
// resort — the way going dead soonest — is the key's own tombstone: the
// post-purge store takes it, the tombstone is gone, and the answer asked
// for before the purge, landing next, is stored over the fresh one and
// served. Expected: the pre-purge answer is refused (ErrPurgedSince) and
// the fresh answer is kept.
func TestFollowup168PostPurgeStoreEvictsItsOwnTombstoneInAFullBucket(t *testing.T) {
	tb := NewTable(NewMemStore(), 1, 2)
	fp, other := fpIn(tb, 0, 0), fpIn(tb, 0, 1)
	const long = 24 * 3600 * 1000 // a day's ttl: outlives the tombstone's 15 minutes
	put(t, tb, fp, "k", "before", long, 1000)
	put(t, tb, other, "o", "other", long, 1000)
	if freed, err := tb.PurgeKey(fp, []byte("k"), 2000); err != nil || freed != 1 {
		t.Fatalf("purge: %v %v", freed, err)
	}
	// A store asked for after the purge (a no-cache revalidation, say).
	if _, err := tb.InsertSince(fp, 0, long, tableEntry("k", "fresh, after the purge", 2500, long, long), 2500, 2500); err != nil {
		t.Fatalf("post-purge store: %v", err)
	}
	// The answer asked for before the purge lands.
	_, err := tb.InsertSince(fp, 0, long, tableEntry("k", "PURGED, asked before", 1999, long, long), 3000, 1999)
	got := get(t, tb, fp, "k", 3000)
	if !errors.Is(err, ErrPurgedSince) || got != "fresh, after the purge" {
		t.Fatalf("an answer asked for before the purge: err %v, served %q; want ErrPurgedSince and the fresh answer kept (the post-purge store took the key's own tombstone as its victim)", err, got)
	}
}

// Review Z159's mend puts a route's admission settings in its keying tag:
// a reload that changes them starts the route's cache afresh (README,
// "Policy"). But the lists are digested as written, not as the sets they
// are: a reload that only reorders statuses, finish_reasons, validation
// rules or stored_headers (or lists a status twice) — the same admission, as the confidence tiers, which the
// parser sorts, already are — drops every stored answer of the route (and
// its L2 and semantic index), a cold cache and a burst of upstream calls
// for nothing. Expected: an equivalent admission keeps the tag, and the
// answers stored before the reload are served after it.
func TestFollowup168EquivalentAdmissionWrittenInAnotherOrderStartsTheCacheAfresh(t *testing.T) {
	for _, tc := range []struct{ name, route, kind, path, oldPol, newPol, body, resp string }{
		{"statuses reordered", "json", "json", "/v1/json", `"shared":true,"key_fields":["model","input"],"statuses":[200,203]`,
			`"shared":true,"key_fields":["model","input"],"statuses":[203,200]`, `{"model":"m","input":"x"}`, `{"label":"a"}`},
		{"status listed twice", "json", "json", "/v1/json", `"shared":true,"key_fields":["model","input"],"statuses":[200]`,
			`"shared":true,"key_fields":["model","input"],"statuses":[200,200]`, `{"model":"m","input":"x"}`, `{"label":"a"}`},
		{"finish_reasons reordered", "chat", "chat", "/v1/chat/completions", `"shared":true,"finish_reasons":["stop","tool_calls"]`,
			`"shared":true,"finish_reasons":["tool_calls","stop"]`, chatRequest("q"), chatResponse("a")},
		{"validate rules reordered", "chat", "chat", "/v1/chat/completions",
			`"shared":true,"validate":[{"path":"id","type":"string"},{"path":"choices","type":"array","min_items":1}]`,
			`"shared":true,"validate":[{"path":"choices","type":"array","min_items":1},{"path":"id","type":"string"}]`, chatRequest("q"), chatResponse("a")},
		{"stored_headers reordered", "chat", "chat", "/v1/chat/completions", `"shared":true,"stored_headers":["content-type","x-model-version"]`,
			`"shared":true,"stored_headers":["x-model-version","content-type"]`, chatRequest("q"), chatResponse("a")},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := func(pol string) string {
				return `{"upstream_cluster":"model","routes":[{"name":"` + tc.route + `","kind":"` + tc.kind + `","path_exact":"` + tc.path + `",` + pol + `}]}`
			}
			old := newEnv(t, cfg(tc.oldPol))
			storeWith(t, old, tc.route, nil, tc.body, 200, tc.resp)
			now := reloadEnv(t, old, cfg(tc.newPol), 2)
			old.clock.Advance(time.Second)
			if r, d := now.lookup(tc.route, nil, tc.body); d != Serve {
				t.Errorf("a reload whose admission only differs in how it is written (%s) lost the stored answer: %v %s; want it served", tc.name, d, r.Status)
			}
		})
	}
}

// Since review Z163's mend a store after a purge no longer takes the
// key's tombstone way, and a purge of the key stored again leaves a new
// tombstone where it is listed, beside the one already there: each purge
// and fresh store of one key within the tombstone's 15 minutes holds one
// more way of its bucket, and the stores evict the neighbours whose
// entries go dead before the tombstones do (any ttl + stale window under
// 15 minutes; the 5m default). Here two purges of one key, each followed
// by its fresh answer, evict another key's live entry from a bucket with
// room for all: the key's two tombstones hold two ways. Before the mend
// the key kept one way and one tombstone at most. Expected: a key's
// purges keep one tombstone of it (the latest purge's time), and the
// other key's entry stays served.
func TestFollowup168RepeatedPurgesOfOneKeyEvictItsNeighbours(t *testing.T) {
	tb := NewTable(NewMemStore(), 1, 4)
	k, o1, o2 := fpIn(tb, 0, 0), fpIn(tb, 0, 1), fpIn(tb, 0, 2)
	const short = 10 * 60 * 1000 // a 10 minute life: shorter than a tombstone's 15
	put(t, tb, k, "k", "v0", 100_000_000, 1000)
	put(t, tb, o1, "o1", "one", short, 1000)
	put(t, tb, o2, "o2", "two", short, 1000)
	now := int64(2000)
	for i := 1; i <= 2; i++ {
		if _, err := tb.PurgeKey(k, []byte("k"), now); err != nil {
			t.Fatalf("purge %d: %v", i, err)
		}
		now += 1000
		if _, err := tb.InsertSince(k, 0, 100_000_000, tableEntry("k", "fresh", now, 100_000_000, 100_000_000), now, now); err != nil {
			t.Fatalf("store %d: %v", i, err)
		}
		now += 1000
	}
	if get(t, tb, k, "k", now) != "fresh" {
		t.Fatal("setup: the key's fresh answer is not served")
	}
	tombs := 0
	for _, s := range tb.idx {
		if s.fp == k && s.tag == purgedTag {
			tombs++
		}
	}
	if a, b := get(t, tb, o1, "o1", now), get(t, tb, o2, "o2", now); a != "one" || b != "two" {
		t.Fatalf("two purges of one key, each followed by a fresh store, evicted a neighbour: o1 %q, o2 %q (the key holds %d tombstones); want both served", a, b, tombs)
	}
}

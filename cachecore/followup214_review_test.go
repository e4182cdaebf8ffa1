package cachecore

import (
	"errors"
	"testing"
)

// Review Z214: a follow-up of the fixes of reviews Z209, Z211 and Z212.

// failedPurgeLeavesTombstoneOverEntry builds what Z212 describes: a and b
// share one bucket of two ways and prefer way 0; b went to way 1. A purge
// of b wrote its tombstone in way 1 but could not blank the entry there
// (shared data refused the write). It returns the table, over the store
// (no longer failing).
func failedPurgeLeavesTombstoneOverEntry(t *testing.T, aDiesAt int64) (*Table, *MemStore, uint64, uint64) {
	t.Helper()
	const now = 1000
	mem := NewMemStore()
	tb := NewTable(mem, 1, 2)
	fpA, fpB := uint64(1<<16), uint64(2<<16) // one bucket, both prefer way 0
	put(t, tb, fpA, "a", "answer a", aDiesAt, now)
	put(t, tb, fpB, "b", "answer b", 1_000_000, now) // way 0 held by a: b takes way 1
	if raw, _, _ := mem.Get("mc:e:0:1"); len(raw) == 0 {
		t.Fatal("setup: b is not in way 1")
	}
	fail := true
	s := &flakyStore{Store: mem, setErr: func(k string) error {
		if fail && k == "mc:e:0:1" {
			return errStoreDown
		}
		return nil
	}}
	ft := NewTable(s, 1, 2)
	if _, err := ft.PurgeKey(fpB, []byte("b"), now+1); !errors.Is(err, errStoreDown) {
		t.Fatalf("setup: purge with the entry's blank failing: %v", err)
	}
	fail = false
	if _, _, err := ft.readIndex(0); err != nil || ft.idx[1].fp != fpB || ft.idx[1].tag != purgedTag {
		t.Fatalf("setup: way 1 is not b's tombstone (%v, %+v)", err, ft.idx)
	}
	return NewTable(mem, 1, 2), mem, fpA, fpB
}

// Z212's fix made lookupInto and lookupListed skip tombstone slots ("a
// tombstone names no answer"): after a purge whose blank failed, the
// purged entry the tombstone's way still holds is no longer served by a
// lookup. An embeddings batch item's lookup (lookupBatch) reads the index
// with its own loop, which still follows the tombstone (s.fp == fp, its
// staleUntil the tombstone's life, 15 minutes on): the purged item is
// served to embeddings batches while the same key is a miss everywhere
// else. Expected: a miss, as Lookup gives.
func TestFollowup214BatchItemLookupFollowsATombstoneToThePurgedEntry(t *testing.T) {
	tb, _, _, fpB := failedPurgeLeavesTombstoneOverEntry(t, 1_000_000)
	const now = 1005
	if got := get(t, tb, fpB, "b", now); got != "" {
		t.Fatalf("control: Lookup of purged b returned %q (Z212's fix: a miss)", got)
	}
	for _, indexFirst := range []bool{false, true} {
		var vs indexViews
		var e Entry
		fresh := NewTable(tb.store, 1, 2)
		ok, err := fresh.lookupBatch(&vs, fpB, []byte("b"), now, indexFirst, &e)
		if err != nil {
			t.Fatal(err)
		}
		if ok {
			t.Errorf("indexFirst=%v: a batch item's lookup of purged b followed its tombstone and returned %q; want a miss", indexFirst, e.Body)
		}
	}
}

// The stale path of a lookup (listedPastStale → listedElsewhere, and
// batchPastStale for a batch item) also follows a tombstone. b was purged
// with its blank failing (its tombstone over its old entry in way 1),
// then stored again after the purge (a new answer, in way 0: a died).
// Once the new answer is stale, the lookup reads way 0's stale copy, then
// looks for a copy "the index lists in another way", takes b's tombstone
// for one, and returns the purged answer — fresh till its old ttl — in
// place of the answer stored after the purge. Expected: the newer answer
// (stale), never the purged one.
func TestFollowup214StaleLookupFollowsATombstoneToThePurgedEntry(t *testing.T) {
	tb, _, _, fpB := failedPurgeLeavesTombstoneOverEntry(t, 2000)
	now := int64(3000) // a is dead; the purge (at 1001) is before this store's look
	if _, err := tb.Insert(fpB, 0, 100_000, tableEntry("b", "new b", now, 4000, 100_000), now); err != nil {
		t.Fatalf("store of b after the purge: %v", err)
	}
	if _, _, err := tb.readIndex(0); err != nil || tb.idx[0].fp != fpB || tb.idx[0].tag == purgedTag {
		t.Fatalf("setup: the new b is not in way 0 (%v, %+v)", err, tb.idx)
	}
	now = 5000 // the new b is stale
	if got := get(t, NewTable(tb.store, 1, 2), fpB, "b", now); got != "new b" {
		t.Errorf("a lookup of b, stored again after its purge and now stale, returned %q; want \"new b\" (the purged answer is \"answer b\")", got)
	}
	var vs indexViews
	var e Entry
	fresh := NewTable(tb.store, 1, 2)
	if ok, err := fresh.lookupBatch(&vs, fpB, []byte("b"), now, false, &e); err != nil || !ok || string(e.Body) != "new b" {
		t.Errorf("a batch item's lookup of b returned %q (found %v, %v); want \"new b\"", e.Body, ok, err)
	}
}

// Z211 refuses a path ending at a multipath with min/max, a scalar type or
// a scalar equals (README: "min/max, a scalar type or a scalar equals on a
// path ending at a multipath ({score}: it reads the object it builds)").
// The same path with predicates that hold on no object or array it builds
// loads all the same, and the route stores nothing (refused.validation on
// every answer): one_of of scalars (equals 0.5 is refused, one_of [0.5,1]
// is not), min_items on {…} (always an object), type array on {…} or
// object on […], equals an object on […]. Expected: config errors, as
// equals 0.5 on the path is.
func TestFollowup214MultipathRulesThatHoldOnNoAnswerLoad(t *testing.T) {
	for name, rule := range map[string]string{
		"one_of scalars":            `{"path":"{label}","one_of":["cat","dog"]}`,
		"min_items on an object":    `{"path":"{labels}","min_items":1}`,
		"type array on {...}":       `{"path":"{labels}","type":"array"}`,
		"type object on [...]":      `{"path":"[label]","type":"object"}`,
		"equals an object on [...]": `{"path":"[label]","equals":{"label":"cat"}}`,
	} {
		t.Run(name, func(t *testing.T) {
			cfg := `{"routes":[{"name":"cls","kind":"classify","path_prefix":"/v1","shared":true,"validate":[` + rule + `]}]}`
			if _, err := ParseConfig([]byte(cfg)); err == nil {
				r := storeVerdict(t, cfg, "cls", nil, `{"model":"m","inputs":"x"}`, jsonCT, `{"label":"cat","labels":["cat"],"score":0.97}`)
				t.Fatalf("rule %s loads; it holds on no answer ({\"label\":\"cat\",\"labels\":[\"cat\"],\"score\":0.97}: %s)", rule, verdict(r))
			}
		})
	}
}

// endsAtMultipath returns at the first segment that opens with { or [,
// whether or not that multipath is the path's last: a path that starts
// with a multipath and ends at another ({label,score}.{score}: gjson reads
// {"score":0.97}) is not seen, and min on it, or a confidence path there,
// loads, while the same last segment alone ({score}) is refused.
// Expected: config errors.
func TestFollowup214PathEndingAtASecondMultipathIsNotSeen(t *testing.T) {
	for name, policy := range map[string]string{
		"rule min":        `"validate":[{"path":"{label,score}.{score}","min":0.5}]`,
		"confidence path": `"confidence":{"path":"{label,score}.{score}","tiers":[{"min":0.5,"ttl":"1m"}]}`,
	} {
		t.Run(name, func(t *testing.T) {
			cfg := `{"routes":[{"name":"cls","kind":"classify","path_prefix":"/v1","shared":true,` + policy + `}]}`
			if _, err := ParseConfig([]byte(cfg)); err == nil {
				r := storeVerdict(t, cfg, "cls", nil, `{"model":"m","inputs":"x"}`, jsonCT, `{"label":"cat","score":0.97}`)
				t.Fatalf("%s loads; the path ends at a multipath, never a score ({\"label\":\"cat\",\"score\":0.97}: %s)", policy, verdict(r))
			}
		})
	}
}

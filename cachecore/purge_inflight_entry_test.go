package cachecore

import (
	"errors"
	"testing"
	"time"
)

// An entry purge while the key's answer is upstream (a leader's, a
// background refresh's): the answer asked for before the purge must not be
// stored after it, as a purge of a model or of everything refuses it (the
// generation it was keyed under moved) and L2 does (the entry's own
// generation moved). In L1 the purge leaves the key's tombstone in the
// index (Table.PurgeKey), which refuses a store of an answer looked up
// before it (InsertSince).
func TestEntryPurgeRefusesAnAnswerAskedForBeforeIt(t *testing.T) {
	purge := `{"path":"/v1/chat/completions","headers":{"authorization":"Bearer sk-alice"},"body":` + chatRequest("q") + `}`
	t.Run("leader", func(t *testing.T) {
		env := newEnv(t, testConfig)
		// The key's leader on one worker goes upstream.
		req, d := env.lookup("chat", alice, chatRequest("q"))
		if d != Forward {
			t.Fatal(d)
		}
		// The operator purges that one entry (on any worker) while it is
		// out, a millisecond later: the clock is read in milliseconds, and a
		// look in the purge's own millisecond counts as after it.
		env.clock.Advance(time.Millisecond)
		if _, err := env.cache.Purge([]byte(purge), ""); err != nil {
			t.Fatal(err)
		}
		// The answer computed before the purge lands after it.
		st := env.cache.AdmitAndStore(req, 200, jsonCT, []byte(chatResponse("answered before the purge")), OriginUpstream, 10)
		if req2, d := env.lookup("chat", alice, chatRequest("q")); d == Serve {
			_, _, body := env.cache.HitResponse(req2)
			t.Fatalf("entry purge: an answer in flight across it was stored (reason %q) and is served after the purge returned: %s", st.Reason, body)
		}
	})
	t.Run("background refresh", func(t *testing.T) {
		env := newEnv(t, testConfig)
		c := env.cache
		hs := hdr(":method", "POST", ":path", "/v1/chat/completions", "authorization", "Bearer sk-alice")
		env.fill(env.request("chat", alice, chatRequest("q")), jsonCT, chatResponse("bad answer"), 10)
		env.clock.Advance(5*time.Minute + time.Second) // stale, within stale_while_revalidate
		stale, _ := env.lookup("chat", alice, chatRequest("q"))
		if stale.Status != StatusStale {
			t.Fatalf("setup: %s", stale.Status)
		}
		acts := c.Refresh(stale, hs, 1)
		if len(acts) != 1 || acts[0].Kind != ActDispatch {
			t.Fatalf("refresh: %+v", acts)
		}
		env.clock.Advance(time.Millisecond)
		if res, err := c.Purge([]byte(purge), ""); err != nil || res.Freed != 1 {
			t.Fatalf("purge: %+v %v", res, err)
		}
		// The refresh's answer (the same bad model, asked before the purge) lands.
		acts[0].Call.Done(CallResult{Status: 200, Headers: jsonCT, Body: []byte(chatResponse("bad answer, refreshed"))})
		if req2, d := env.lookup("chat", alice, chatRequest("q")); d == Serve {
			_, _, body := c.HitResponse(req2)
			t.Fatalf("entry purge: a refresh in flight across it stored its answer, served after the purge returned: %s", body)
		}
	})
}

// The table's side: a purge's tombstone refuses a store of its key asked
// for before the purge (a single insert and a batch's), not one asked for
// in the purge's millisecond or after it, and not another key's in the
// same bucket.
func TestPurgeTombstoneRefusesOnlyAnswersAskedForBeforeIt(t *testing.T) {
	store := NewMemStore()
	tb := NewTable(store, 1, 4)
	fp, other := fpIn(tb, 0, 0), fpIn(tb, 0, 1)
	put(t, tb, fp, "k", "before", 100_000, 1000)
	if freed, err := tb.PurgeKey(fp, []byte("k"), 2000); err != nil || freed != 1 {
		t.Fatalf("purge: %v %v", freed, err)
	}
	if get(t, tb, fp, "k", 2000) != "" {
		t.Fatal("the purged entry is still found")
	}
	if _, err := tb.InsertSince(fp, 0, 100_000, tableEntry("k", "asked before", 1999, 100_000, 100_000), 2500, 1999); !errors.Is(err, ErrPurgedSince) {
		t.Fatalf("an answer asked for before the purge: %v; want ErrPurgedSince", err)
	}
	if get(t, tb, fp, "k", 2500) != "" {
		t.Fatal("an answer asked for before the purge was stored")
	}
	res, err := tb.InsertSince(other, 0, 100_000, tableEntry("o", "other", 2500, 100_000, 100_000), 2500, 1000)
	if err != nil || get(t, tb, other, "o", 2500) != "other" {
		t.Fatalf("another key's store: %+v %v", res, err)
	}
	res, err = tb.InsertSince(fp, 0, 100_000, tableEntry("k", "asked after", 2000, 100_000, 100_000), 2500, 2000)
	if err != nil || !res.Filled || get(t, tb, fp, "k", 2500) != "asked after" {
		t.Fatalf("an answer asked for in the purge's millisecond: %+v %v; want it stored, filling the slot", res, err)
	}

	// A batch: the purged item is refused, the other item of its bucket stored.
	third := fpIn(tb, 0, 2)
	if _, err := tb.PurgeKey(fp, []byte("k"), 3000); err != nil {
		t.Fatal(err)
	}
	items := []batchInsert{
		{fp: fp, staleUntil: 100_000, encoded: tableEntry("k", "batch, asked before", 2999, 100_000, 100_000)},
		{fp: third, staleUntil: 100_000, encoded: tableEntry("t", "batch, third", 2999, 100_000, 100_000)},
	}
	tb.insertBucket(0, nil, items, 3500, 2999)
	if !errors.Is(items[0].err, ErrPurgedSince) || items[1].err != nil {
		t.Fatalf("batch: %v, %v; want ErrPurgedSince, nil", items[0].err, items[1].err)
	}
	if get(t, tb, fp, "k", 3500) != "" || get(t, tb, third, "t", 3500) != "batch, third" {
		t.Fatal("batch: the purged item was stored, or the other was not")
	}
}

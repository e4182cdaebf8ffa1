package cachecore

import (
	"strings"
	"testing"
	"time"
)

// Guarantee (README, Purge API): purges are honoured — an answer asked for
// before an entry purge is never served after it. A store is two writes
// (index, then entry); stillListed re-reads the index after the entry
// write but blanks the entry only if the way still holds the purge's
// tombstone. When, between the old store's index and entry writes, the
// purge lands AND a fresh request (looked up after the purge) stores its
// answer — chooseWay gives it the tombstone's way, the same way — the old
// store's entry write then overwrites the fresh answer, and stillListed
// sees the fresh store's slot (not a tombstone) and keeps it: the answer
// asked for before the purge is served on every worker.
// Cause: Table.stillListed only recognises the tombstone itself, not a
// way re-taken (with another staleUntil) since its own index write.
func TestDiffReviewPurgeThenFreshStoreBetweenAStoresWritesIsNotUndone(t *testing.T) {
	store := &indexHookStore{Store: NewMemStore()}
	clock := newFakeClock()
	cfg := mustParse(t, testConfig)
	vm1 := New(cfg, Options{Store: store, Now: clock.Now, Rand: seededRand(1)})
	vm2 := New(cfg, Options{Store: store, Now: clock.Now, Rand: seededRand(2)})
	w1 := &testEnv{t: t, cache: vm1, clock: clock}
	w2 := &testEnv{t: t, cache: vm2, clock: clock}

	old, d := w1.lookup("chat", alice, chatRequest("q"))
	if d != Forward {
		t.Fatal(d)
	}
	clock.Advance(time.Millisecond)
	var purged PurgeResult
	var perr error
	var fresh Stored
	store.onIndexSet = func() {
		purged, perr = vm2.Purge([]byte(`{"path":"/v1/chat/completions","headers":{"authorization":"Bearer sk-alice"},"body":`+chatRequest("q")+`}`), "")
		clock.Advance(time.Millisecond)
		req, d := w2.lookup("chat", alice, chatRequest("q")) // asked after the purge
		if d != Forward {
			t.Errorf("lookup after the purge: %v", d)
			return
		}
		fresh = vm2.AdmitAndStore(req, 200, jsonCT, []byte(chatResponse("asked for after the purge")), OriginUpstream, 10)
	}
	vm1.AdmitAndStore(old, 200, jsonCT, []byte(chatResponse("asked for before the purge")), OriginUpstream, 10)
	if perr != nil || purged.Scope != "entry" {
		t.Fatalf("purge: %+v %v", purged, perr)
	}
	if fresh.Reason != ReasonNone {
		t.Fatalf("the answer asked for after the purge was not stored: %+v", fresh)
	}
	for i, w := range []*testEnv{w1, w2} {
		if r, d := w.lookup("chat", alice, chatRequest("q")); d == Serve {
			_, _, body := w.cache.HitResponse(r)
			if strings.Contains(string(body), "before the purge") {
				t.Fatalf("worker %d serves, after the purge, the answer asked for before it: %s", i+1, body)
			}
		}
	}
}

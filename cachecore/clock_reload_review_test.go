package cachecore

import (
	"strings"
	"testing"
	"time"
)

// Guarantee: RATIONALE "The wall clock may step back": every measure of
// elapsed time is "now bounded by the step's start, not its length", and
// an entry is fresh for at most the route's ttl (the reason the mend
// judges an entry stored "after" now "as just stored"). But judging it as
// just stored on every lookup keeps it fresh (Age 0, ttl=<whole ttl>) for
// as long as the step lasts: stepped back 1h, a 300 s entry is still
// served as a fresh hit 10 minutes (two ttls) of real time later, and
// would be for the whole hour. Freshness is bounded by the step's length.
func TestDiff2FutureEntryNotFreshLongerThanTTLAfterClockStepsBack(t *testing.T) {
	env := newEnv(t, testConfig)
	body := chatRequest("future entry, ten minutes on")
	req, _ := env.lookup("sie", alice, body)
	env.fill(req, jsonCT, chatResponse("ok"), 10)
	ttl := env.route("sie").TTL

	env.clock.Advance(10 * time.Second)
	env.clock.Set(env.clock.Now().Add(-time.Hour)) // NTP steps the wall clock back
	env.clock.Advance(2 * ttl)                     // two whole ttls of real time pass
	req, d := env.lookup("sie", alice, body)
	if d == Serve && req.Status == StatusHit {
		_, headers, _ := env.cache.HitResponse(req)
		t.Fatalf("an entry of a %v route served as a fresh hit %v after it was stored (wall clock stepped back 1h): Cache-Status %q, Age %q",
			ttl, 2*ttl+10*time.Second, headerValue(headers, "cache-status"), headerValue(headers, "age"))
	}
}

// diff2EntryHookStore runs hook once, right after the first non-empty entry write
// ("…:e:…") it sees while armed: another worker's store interleaved
// between a store's entry write and its check of the index
// (Table.stillListed), as two Envoy workers run at once.
type diff2EntryHookStore struct {
	*MemStore
	hook func()
}

func (s *diff2EntryHookStore) Set(key string, value []byte, cas uint32) error {
	err := s.MemStore.Set(key, value, cas)
	if h := s.hook; h != nil && strings.Contains(key, ":e:") && len(value) > 0 {
		s.hook = nil
		h()
	}
	return err
}

// Guarantee: one request per key reaches the model, and what is stored is
// served (no valid entry lost in normal operation). Two workers store the
// same key a second apart (a follower that timed out and went upstream
// itself, a refresh next to a miss): worker 0 writes its index slot and
// its entry, worker 1 then writes its slot (same way, the key's) and its
// entry, and worker 0's stillListed, finding its key listed under worker
// 1's slot, takes worker 0's entry for one "written over it late" and
// blanks the way — worker 1's valid entry, written after it. The index
// lists the key, the way is empty: the next request misses and goes to the
// model again.
func TestDiff2ConcurrentStoresOfOneKeyKeepAnEntry(t *testing.T) {
	cfg := mustParse(t, testConfig)
	hs := &diff2EntryHookStore{MemStore: NewMemStore()}
	clock := newFakeClock()
	w0 := &testEnv{t: t, cache: New(cfg, Options{Store: hs, Now: clock.Now, Rand: seededRand(1)}), store: hs.MemStore, clock: clock}
	w1 := &testEnv{t: t, cache: New(mustParse(t, testConfig), Options{Store: hs, Now: clock.Now, Rand: seededRand(2)}), store: hs.MemStore, clock: clock}
	body := chatRequest("stored by two workers")
	r0, d0 := w0.lookup("sie", alice, body)
	r1, d1 := w1.lookup("sie", alice, body)
	if d0 != Forward || d1 != Forward {
		t.Fatalf("setup: %v %v", d0, d1)
	}
	var st1 Stored
	hs.hook = func() {
		clock.Advance(time.Second) // worker 1's answer comes a second later
		st1 = w1.cache.AdmitAndStore(r1, 200, jsonCT, []byte(chatResponse("second")), OriginUpstream, 10)
	}
	st0 := w0.cache.AdmitAndStore(r0, 200, jsonCT, []byte(chatResponse("first")), OriginUpstream, 10)
	if st0.Reason != ReasonNone || st1.Reason != ReasonNone {
		t.Fatalf("setup: stores refused: worker 0 %s, worker 1 %s", st0.Reason, st1.Reason)
	}
	for i, w := range []*testEnv{w0, w1} {
		if req, d := w.lookup("sie", alice, body); d != Serve {
			t.Fatalf("worker %d: lookup after both workers stored the key = %v (status %v), want a hit: a valid entry was blanked",
				i, d, req.Status)
		}
	}
}

// Guarantee: one request per key reaches the model. A configuration
// reload that lowers a route's coalesce.max_wait (5m to 10s here) leaves
// the previous configuration's leader upstream with its lease (written for
// 5 m, in shared data that outlives the reload). SetHorizon bounds a live
// record by the new configuration alone (2×10s, hit_for_miss 30s,
// background timeout 30s, plus a minute): the old leader's lease, ending
// 5 m ahead, is taken for one from before a clock step and dead, so the
// first request under the new configuration takes the lead over and goes to
// the model at once next to the old leader, instead of following it (for
// at most its own 10 s max_wait).
func TestDiff2ReloadLoweringMaxWaitKeepsTheOldLeader(t *testing.T) {
	cfg := func(wait string) string {
		return `{"upstream_cluster": "models", "routes": [{"name": "chat", "kind": "chat", "path_exact": "/v1/chat/completions",` +
			`"coalesce": {"max_wait": "` + wait + `"}}]}`
	}
	store := NewMemStore()
	clock := newFakeClock()
	old := &testEnv{t: t, cache: New(mustParse(t, cfg("5m")), Options{Store: store, Now: clock.Now, Rand: seededRand(1)}), store: store, clock: clock}
	cur := &testEnv{t: t, cache: New(mustParse(t, cfg("10s")), Options{Store: store, Now: clock.Now, Rand: seededRand(2)}), store: store, clock: clock}
	body := chatRequest("a long answer across a reload")
	req, _ := old.lookup("chat", alice, body)
	if role := old.cache.Join(req, 1, 1); role != RoleLeader {
		t.Fatalf("setup: old configuration's Join = %v, want leader", role)
	}
	clock.Advance(time.Second) // the reload; the old leader is still upstream
	req, _ = cur.lookup("chat", alice, body)
	if role := cur.cache.Join(req, 2, 2); role != RoleFollower {
		t.Fatalf("Join under the reloaded configuration = %v while the previous configuration's leader (max_wait 5m) is 1s into its call: want follower (single flight), a second leader sends the key to the model twice", role)
	}
}

// Guarantee: purges are honoured (RATIONALE "A purge of one entry leaves a
// tombstone": a store whose request looked the key up before the purge is
// refused; a purge's stamp "refuses a little more than needed, never
// less"). Each worker reads the wall clock once per callback (filter
// nowMs), so a store can run with a "now" read a few ms before an entry
// purge that another worker made while that callback was admitting the
// answer. purgedAfter now ignores a tombstone whose purge time is after
// the store's now (meant for a clock stepped back), so that store, of an
// answer asked for before the purge, overwrites the tombstone and the
// purged answer is served again on every worker.
func TestDiff2EntryPurgeNotUndoneByAStoreWhoseCallbackClockIsAFewMsBehind(t *testing.T) {
	store := NewMemStore()
	clockA, clockB := newFakeClock(), newFakeClock() // the same wall clock, read by two workers' callbacks
	a := &testEnv{t: t, cache: New(mustParse(t, testConfig), Options{Store: store, Now: clockA.Now, Rand: seededRand(1)}), store: store, clock: clockA}
	b := &testEnv{t: t, cache: New(mustParse(t, testConfig), Options{Store: store, Now: clockB.Now, Rand: seededRand(2)}), store: store, clock: clockB}
	body := chatRequest("purged while its answer is admitted")
	req, d := a.lookup("chat", alice, body) // worker A looks the key up at T: a miss, it goes upstream
	if d != Forward {
		t.Fatalf("setup: %v", d)
	}
	clockB.Advance(time.Millisecond) // another request of the key is answered and stored on worker B
	b.fill(b.request("chat", alice, body), jsonCT, chatResponse("old"), 10)
	// A's answer comes back at T+4ms: worker A's callback reads its clock,
	// then admits the answer; at T+5ms worker B purges the entry.
	clockA.Advance(4 * time.Millisecond)
	clockB.Advance(4 * time.Millisecond)
	purge := `{"path":"/v1/chat/completions","headers":{"authorization":"Bearer sk-alice"},"body":` + body + `}`
	if _, err := b.cache.Purge([]byte(purge), ""); err != nil {
		t.Fatal(err)
	}
	st := a.cache.AdmitAndStore(req, 200, jsonCT, []byte(chatResponse("asked before the purge")), OriginUpstream, 10)
	if st.Reason == ReasonNone {
		t.Fatalf("an answer asked for 5 ms before an entry purge was stored after it (its callback's clock read 1 ms before the purge's): the purge is undone")
	}
	clockB.Advance(time.Second)
	if _, d := b.lookup("chat", alice, body); d == Serve {
		t.Fatalf("the purged key is served again after an entry purge")
	}
}

package cachecore

import (
	"errors"
	"strconv"
	"testing"
	"time"
)

// Review Z212 (fail-open: store error paths of the table).

// A purge whose index write succeeded but whose entry blank failed
// (proxy_set_shared_data refused the entry's write) leaves the key's
// tombstone in the index at the way that still holds the entry, and
// reports an error: the purge API answers 503 "send it again". Two
// defects follow for an entry that is not in its preferred way (a
// neighbour held that way when it was stored):
//
//   - lookupInto reads every way the index lists for the fingerprint and
//     does not skip tombstones (purgedTag), so the tombstone leads the
//     lookup straight to the purged entry: it is served as a hit;
//   - the purge sent again (as its 503 asks) no longer sees the way as
//     listed (a tombstone is not "listed") and the way is not the key's
//     preferred one, so it finds nothing and blanks nothing: it succeeds,
//     and the purged entry goes on being served until it dies.
//
// Expected: after a purge that failed and was sent again successfully,
// the key is a miss.
func TestPurgeWhoseEntryBlankFailedIsNotServedAfterItsRetry(t *testing.T) {
	const now = 1000
	mem := NewMemStore()
	tb := NewTable(mem, 1, 2)
	fpA, fpB := uint64(1<<16), uint64(2<<16) // one bucket, both prefer way 0
	put(t, tb, fpA, "a", "answer a", 1_000_000, now)
	put(t, tb, fpB, "b", "answer b", 1_000_000, now) // way 0 held by a live a: b takes way 1
	if got := get(t, tb, fpB, "b", now); got != "answer b" {
		t.Fatalf("setup: b is %q", got)
	}
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
	tb = NewTable(s, 1, 2)
	if _, err := tb.PurgeKey(fpB, []byte("b"), now+1); !errors.Is(err, errStoreDown) {
		t.Fatalf("setup: purge with the entry's blank failing: %v", err)
	}
	fail = false
	if _, err := tb.PurgeKey(fpB, []byte("b"), now+3); err != nil {
		t.Fatalf("purge sent again: %v", err)
	}
	if got := get(t, tb, fpB, "b", now+4); got != "" {
		t.Errorf("the purge sent again succeeded, yet b is still served: %q (want a miss)", got)
	}
	if got := get(t, tb, fpA, "a", now+4); got != "answer a" {
		t.Errorf("a, never purged, is %q", got)
	}
}

// The same through the purge API (a purge by replay), as an operator
// meets it: shared data refuses the write that blanks the entry, the purge
// is answered with an error (the filter's 503 "purge failed, send it
// again": stream.purgeFault), the operator sends it again, it succeeds —
// and the purged answer is still served, until it dies. The key's entry
// sits in a way that is not its preferred one (a neighbour held that way
// when it was stored). The same retry is what the L2 purge log relies on
// ("applied again at the next tick", l2sync.go), so another proxy's purge
// applied after such a fault leaves the entry served too.
func TestPurgeSentAgainAfterAFaultPurgesTheEntry(t *testing.T) {
	cfg := `{"store": {"buckets": 1, "ways": 2},
  "routes": [{"name": "chat", "kind": "chat", "path_prefix": "/v1/chat/completions", "ttl": "1h"}]}`
	mem := NewMemStore()
	failKey := ""
	fs := &flakyStore{Store: mem, setErr: func(k string) error {
		if failKey != "" && k == failKey {
			return errStoreDown
		}
		return nil
	}}
	clock := newFakeClock()
	env := &testEnv{t: t, cache: New(mustParse(t, cfg), Options{Store: fs, Now: clock.Now, Rand: seededRand(1)}), store: mem, clock: clock}
	// Two questions whose entries prefer one way of the one bucket.
	first := env.request("chat", alice, chatRequest("q0"))
	var second string
	for i := 1; i < 64 && second == ""; i++ {
		q := chatRequest("q" + strconv.Itoa(i))
		if r := env.request("chat", alice, q); r.FP%2 == first.FP%2 {
			second = q
		}
	}
	if second == "" {
		t.Fatal("setup: no second question prefers the first's way")
	}
	req, _ := env.lookup("chat", alice, chatRequest("q0"))
	env.fill(req, jsonCT, chatResponse("first"), 10)
	req, _ = env.lookup("chat", alice, second)
	env.fill(req, jsonCT, chatResponse("second"), 10)
	other := "mc:e:0:" + strconv.Itoa(int(1-first.FP%2)) // where the second's entry went
	if raw, _, _ := mem.Get(other); len(raw) == 0 {
		t.Fatalf("setup: the second entry is not in %s", other)
	}
	if _, d := env.lookup("chat", alice, second); d != Serve {
		t.Fatalf("setup: the second question is not a hit")
	}
	purge := `{"method":"POST","path":"/v1/chat/completions","headers":{"authorization":"Bearer sk-alice"},"body":` + second + `}`
	failKey = other
	if _, err := env.cache.Purge([]byte(purge), ""); err == nil || errors.Is(err, ErrBadPurge) {
		t.Fatalf("setup: the purge with its entry's blank refused: %v (want a fault, answered 503: send it again)", err)
	}
	failKey = ""
	clock.Advance(time.Second)
	res, err := env.cache.Purge([]byte(purge), "")
	if err != nil {
		t.Fatalf("the purge sent again: %v", err)
	}
	if _, d := env.lookup("chat", alice, second); d == Serve {
		t.Errorf("the purge sent again succeeded (%+v), yet the purged answer is still served from %s: want a miss", res, other)
	}
	if _, d := env.lookup("chat", alice, chatRequest("q0")); d != Serve {
		t.Errorf("the first question, never purged, is no longer served")
	}
}

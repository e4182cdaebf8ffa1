package cachecore

import (
	"strconv"
	"strings"
	"testing"
	"time"
)

// Review Z147: the per-tenant share of a bucket (store.max_tenant_share).

// liveWaysOf counts the ways of bucket b that list a live entry (not a
// tombstone) of the tenant tagged tag at now.
func liveWaysOf(t *testing.T, tb *Table, b uint64, tag uint32, now int64) int {
	t.Helper()
	if _, _, err := tb.readIndex(b); err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, s := range tb.idx {
		if s.fp != 0 && s.tag == tag && s.staleUntil > now {
			n++
		}
	}
	return n
}

// README (store.max_tenant_share): "fraction of each bucket's ways one
// tenant's entries may hold … a tenant at its share replaces its own
// soonest-expiring entry instead of another tenant's". chooseWay returns
// the way that lists the key's own fingerprint before it looks at the
// share at all, whatever that way holds: a dead entry of the key (still
// listed: nothing needed its way yet) or the key's tombstone. Storing the
// key again there makes a live entry of the tenant out of a way that did
// not count toward its share, so a tenant at its share ends up holding
// one way more than its share (and, doing it again with every key of its
// that died in the bucket, the whole bucket). Expected: a tenant at its
// share that stores a key whose listed way is dead or a tombstone still
// holds at most its share of live ways (its own soonest live entry gives
// way, as for any other key of it).
func TestTableShareRestoredDeadOwnKeyStaysWithinShare(t *testing.T) {
	const bob, alice = 7, 9
	// fp with preferred way w of 4, in bucket 0 of a one-bucket table.
	fpAt := func(i, w uint64) uint64 { return i<<8 | w }
	for _, tc := range keyLaidDead(bob) {
		t.Run(tc.name, func(t *testing.T) {
			tb := NewTable(NewMemStore(), 1, 4)
			tb.SetTenantShare(0.5) // 2 of 4 ways
			k := fpAt(1, 0)
			tc.lay(t, tb, k)
			const now = 1000
			// Alice holds one way; Bob two live ways: his share.
			for _, in := range []struct {
				fp  uint64
				tag uint32
				key string
			}{{fpAt(2, 3), alice, "A"}, {fpAt(3, 1), bob, "L1"}, {fpAt(4, 2), bob, "L2"}} {
				if _, err := tb.Insert(in.fp, in.tag, 60_000, tableEntry(in.key, "v", now, 60_000, 60_000), now); err != nil {
					t.Fatal(err)
				}
			}
			if got := liveWaysOf(t, tb, 0, bob, now); got != 2 {
				t.Fatalf("setup: bob holds %d live ways, want his share 2", got)
			}
			// Bob asks for K again (after its death / its purge) and stores it.
			res, err := tb.InsertSince(k, bob, 60_000, tableEntry("K", "new", now, 60_000, 60_000), now, now)
			if err != nil {
				t.Fatal(err)
			}
			if got := liveWaysOf(t, tb, 0, bob, now); got > 2 {
				t.Fatalf("bob, at his share of 2 of 4 ways, stored K again and now holds %d live ways (InsertResult %+v); max_tenant_share 0.5 allows 2", got, res)
			}
		})
	}
}

// The same through the cache: a classifier route whose confidence tiers
// give 10 minutes or an hour. Bob's key K (10 minutes) dies; Bob, at his
// share of the one bucket with two live hour-long entries, asks for K
// again and is stored in K's old way: he holds 3 of the 4 ways under
// max_tenant_share 0.5. Expected: at most 2 (his own soonest live entry
// gives way to K).
func TestTenantShareRestoredExpiredKeyTakesAThirdWay(t *testing.T) {
	cfg := strings.Replace(testConfig, `"store": {"buckets": 16, "ways": 4, "max_entry_bytes": 65536}`,
		`"store": {"buckets": 1, "ways": 4, "max_entry_bytes": 65536, "max_tenant_share": 0.5}`, 1)
	env := newEnv(t, cfg)
	ask := func(h [][2]string, in string) *Request {
		req, d := env.lookup("classify", h, `{"model":"clf","input":`+quote(in)+`}`)
		if req.Bypassed() {
			t.Fatalf("%q bypassed: %s", in, req.Reason)
		}
		_ = d
		return req
	}
	store := func(req *Request, score string) {
		env.fill(req, jsonCT, `{"label":"cat","score":`+score+`}`, 10)
	}
	way := func(req *Request) uint64 { return req.FP % 4 }

	k := ask(bob, "bob K")
	// A: a preferred way that K's is not.
	var a *Request
	for i := 0; a == nil; i++ {
		if r := ask(alice, "alice "+strconv.Itoa(i)); way(r) != way(k) {
			a = r
		}
	}
	store(a, "0.95") // an hour
	env.clock.Advance(time.Second)
	store(k, "0.7") // ten minutes
	env.clock.Advance(time.Second)
	// L1: a preferred way that neither A nor K holds.
	var l1 *Request
	for i := 0; l1 == nil; i++ {
		r := ask(bob, "bob L1 "+strconv.Itoa(i))
		if w := way(r); w != way(a) && w != way(k) {
			l1 = r
		}
	}
	store(l1, "0.95")
	env.clock.Advance(11 * time.Minute) // K is dead, still listed
	// L2: goes to the one empty way (its preferred way is not K's).
	var l2 *Request
	for i := 0; l2 == nil; i++ {
		r := ask(bob, "bob L2 "+strconv.Itoa(i))
		if w := way(r); w != way(k) {
			l2 = r
		}
	}
	store(l2, "0.95")
	now := env.clock.Now().UnixMilli()
	tb := env.cache.table
	bobTag := TenantTag(l2.tenant)
	if got := liveWaysOf(t, tb, 0, bobTag, now); got != 2 {
		t.Fatalf("setup: bob holds %d live ways, want 2", got)
	}
	// Bob asks for K again.
	k2 := ask(bob, "bob K")
	store(k2, "0.95")
	if got := liveWaysOf(t, tb, 0, bobTag, env.clock.Now().UnixMilli()); got > 2 {
		t.Fatalf("with max_tenant_share 0.5 of 4 ways, bob holds %d live ways of the bucket after asking again for a key of his that had died", got)
	}
}

// keyLaidDead are the two ways tenant's key K (fingerprint k) is left
// listed in way 0 and not live: its dead entry, or its tombstone (purged,
// asked for again after the purge).
func keyLaidDead(tenant uint32) []struct {
	name string
	lay  func(t *testing.T, tb *Table, k uint64)
} {
	return []struct {
		name string
		lay  func(t *testing.T, tb *Table, k uint64)
	}{
		{"the key's dead entry is still listed", func(t *testing.T, tb *Table, k uint64) {
			// K stored at 100, dead at 500.
			if _, err := tb.Insert(k, tenant, 500, tableEntry("K", "old", 100, 500, 500), 100); err != nil {
				t.Fatal(err)
			}
		}},
		{"the key's tombstone (purged, asked for again after the purge)", func(t *testing.T, tb *Table, k uint64) {
			if _, err := tb.Insert(k, tenant, 50_000, tableEntry("K", "old", 100, 50_000, 50_000), 100); err != nil {
				t.Fatal(err)
			}
			if n, err := tb.PurgeKey(k, []byte("K"), 200); err != nil || n != 1 {
				t.Fatalf("purge: %d %v", n, err)
			}
		}},
	}
}

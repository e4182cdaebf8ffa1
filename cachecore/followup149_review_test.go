package cachecore

import (
	"strconv"
	"strings"
	"testing"
	"time"
)

// Review Z149 (follow-up of Z145..Z148's mends).

// Z147's mend made chooseWay stop at the first way listing the key's
// fingerprint and, where that way is the key's dead entry or tombstone,
// go through the tenant's share check. But a tenant at its share that
// stored the key again already holds it live in another way (its own
// soonest live entry gave way to it, as Z147 wants): the next store of
// the key (a refresh, a no-cache revalidation) stops at the dead way
// listed first, never sees the live one, and evicts yet another of the
// tenant's live entries. The key is then listed live twice, and a lookup
// reads the ways in index order: it serves the older copy, the new answer
// is never served. Expected: a store of a key listed live replaces that
// way (as before the mend); the tenant's other entry stays, and the new
// answer is what a lookup returns.
func TestFollowup149ShareStoreAgainSkipsLiveCopyBehindDeadWay(t *testing.T) {
	const bob, alice = 7, 9
	fpAt := func(i, w uint64) uint64 { return i<<8 | w }
	for _, tc := range keyLaidDead(bob) {
		t.Run(tc.name, func(t *testing.T) {
			tb := NewTable(NewMemStore(), 1, 4)
			tb.SetTenantShare(0.5) // 2 of 4 ways
			k := fpAt(1, 0)        // K prefers way 0
			tc.lay(t, tb, k)
			const now = 1000
			for _, in := range []struct {
				fp    uint64
				tag   uint32
				key   string
				until int64
			}{{fpAt(2, 3), alice, "A", 100_000}, {fpAt(3, 1), bob, "L1", 60_000}, {fpAt(4, 2), bob, "L2", 70_000}} {
				if _, err := tb.Insert(in.fp, in.tag, in.until, tableEntry(in.key, "v", now, in.until, in.until), now); err != nil {
					t.Fatal(err)
				}
			}
			// Bob, at his share, stores K: his soonest live entry (L1) gives way.
			if _, err := tb.InsertSince(k, bob, 80_000, tableEntry("K", "second", now, 80_000, 80_000), now, now); err != nil {
				t.Fatal(err)
			}
			if got := get(t, tb, k, "K", now); got != "second" {
				t.Fatalf("setup: K = %q, want second", got)
			}
			// Bob's K is refreshed: stored again with a newer answer.
			const later = 2000
			res, err := tb.InsertSince(k, bob, 90_000, tableEntry("K", "third", later, 90_000, 90_000), later, later)
			if err != nil {
				t.Fatal(err)
			}
			if got := get(t, tb, fpAt(4, 2), "L2", later); got != "v" {
				t.Errorf("storing K again, live in its own way, evicted bob's other entry L2 (InsertResult %+v); want K's live way replaced and L2 kept", res)
			}
			if got := get(t, tb, k, "K", later); got != "third" {
				t.Errorf("K after its refresh serves %q, want the new answer \"third\" (the older copy stays listed before it)", got)
			}
		})
	}
}

// Z146's mend bounds max_text_bytes on the decoded turn (len(v.Str))
// instead of its canonical JSON (len(v.Raw)). The semantic index keeps a
// record's turn as that JSON behind a 16-bit length (semIndexStore.add:
// uint16(len(raw))); the old bound (at most 16 KiB of JSON, the config's
// maximum) kept it below 64 KiB. Now a turn of 11,000 control characters
// (11,000 bytes, within max_text_bytes 16384) is 66,002 bytes of JSON
// (\u0001 each): its record's length wraps, and the segment it is
// appended to is read from then on at the wrong offsets, so every record
// after it (here a question of the same tenant and context, confirmed)
// never serves a near hit again. Expected: a turn whose JSON the index
// cannot hold is not indexed (or held whole), and the records beside it
// stay usable: the paraphrase of the confirmed question is a near hit.
func TestFollowup149SemanticLongEscapedTurnCorruptsIndexSegment(t *testing.T) {
	e := newSemEnv(t, `,"max_text_bytes":16384`)
	hostile := strings.Repeat("\x01", 11000)
	body := `{"model":"gpt-4o-mini","messages":[{"role":"user","content":"` + strings.Repeat(`\u0001`, len(hostile)) + `"}],"temperature":0}`
	f, got := e.semAskBody("chat", "/v1/chat/completions", alice, body, hostile)
	// Matched exactly only (not embedded) is the mend; embedded, it must
	// not break the segment. (The review's setup required it embedded.)
	e.answer(f, "ok")
	_ = got
	q, para := "How do I reset my password?", "How can I reset my password?"
	f, _ = e.ask(alice, q, nil)
	if got := e.answer(f, "Click 'forgot password'."); !strings.Contains(got, "semantic.indexed") {
		t.Fatalf("setup: store: %q", got)
	}
	if _, got := e.ask(alice, q, nil); !strings.HasSuffix(got, "serve") {
		t.Fatalf("setup: exact hit: %q", got)
	}
	if _, got := e.ask(alice, para, nil); !strings.HasSuffix(got, "serve") {
		t.Errorf("after a turn of %d control characters was indexed, the confirmed question's paraphrase is no near hit: %q", len(hostile), got)
	}
}

// The same through the cache (classifier route, one bucket of 4 ways,
// max_tenant_share 0.5): Bob's key K died in way 0; at his share, asked
// again, K took his soonest live way (1). A client then revalidates K
// (Cache-Control: no-cache) and the model now answers "dog": the store
// stops at K's dead way 0, evicts Bob's other entry L2 (way 2) for the new
// answer, and leaves K's previous answer listed in way 1, which every
// later request is served. Expected: after the revalidation stored "dog",
// K is served "dog", and L2 is still cached.
func TestFollowup149ShareRevalidatedAnswerNeverServed(t *testing.T) {
	cfg := strings.Replace(testConfig, `"store": {"buckets": 16, "ways": 4, "max_entry_bytes": 65536}`,
		`"store": {"buckets": 1, "ways": 4, "max_entry_bytes": 65536, "max_tenant_share": 0.5}`, 1)
	env := newEnv(t, cfg)
	body := func(in string) string { return `{"model":"clf","input":` + quote(in) + `}` }
	ask := func(h [][2]string, in string) (*Request, Decision) {
		req, d := env.lookup("classify", h, body(in))
		if req.Bypassed() {
			t.Fatalf("%q bypassed: %s", in, req.Reason)
		}
		return req, d
	}
	find := func(h [][2]string, prefix string, way uint64) string {
		for i := 0; ; i++ {
			in := prefix + strconv.Itoa(i)
			if r, _ := ask(h, in); r.FP%4 == way {
				return in
			}
		}
	}
	store := func(h [][2]string, in, label, score string) {
		req, _ := ask(h, in)
		env.fill(req, jsonCT, `{"label":"`+label+`","score":`+score+`}`, 10)
	}
	k, a, l1, l2 := find(bob, "bob K ", 0), find(alice, "alice A ", 3), find(bob, "bob L1 ", 1), find(bob, "bob L2 ", 2)
	store(alice, a, "cat", "0.95") // an hour
	store(bob, k, "cat", "0.7")    // ten minutes
	env.clock.Advance(time.Second)
	store(bob, l1, "cat", "0.95")
	env.clock.Advance(11 * time.Minute) // K is dead, still listed in way 0
	store(bob, l2, "cat", "0.95")
	env.clock.Advance(time.Second)
	store(bob, k, "bird", "0.95") // at his share: L1 (way 1) gives way to K
	if req, d := ask(bob, k); d != Serve || !strings.Contains(string(req.Entry.Body), "bird") {
		t.Fatalf("setup: K not served bird (%v)", d)
	}
	env.clock.Advance(time.Second)
	// A revalidation of K: the model now says dog.
	reval, _ := ask(append(hdr("cache-control", "no-cache"), bob...), k)
	env.fill(reval, jsonCT, `{"label":"dog","score":0.95}`, 10)
	if req, d := ask(bob, k); d != Serve || !strings.Contains(string(req.Entry.Body), "dog") {
		got := ""
		if req.Entry != nil {
			got = string(req.Entry.Body)
		}
		t.Errorf("after a no-cache revalidation stored dog, K is served %q (decision %v); want the revalidated answer", got, d)
	}
	if _, d := ask(bob, l2); d != Serve {
		t.Errorf("bob's L2, live for the hour, was evicted by the revalidation of K, a key he already held live (decision %v)", d)
	}
}

package cachecore

import (
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"
)

// Review Z208 (follow-up of the fixes after 5f4770f).

// Refresh skips its call when Table.listedAfter says the key "was stored
// again since this entry was served", which since review Z205 means: the
// bucket's index lists fp with any stale time other than the served
// entry's. listedAfter does not look at whether that listing is live. With
// store.max_tenant_share, a store of a key whose old way is dead goes to
// the tenant's own way (chooseWay: the tenant at its share) and the key's
// dead listing stays in the index beside the live one. Every refresh of
// the live entry then finds the dead listing's other stale time, makes no
// call and counts background.joined: the entry is served stale out its
// whole stale_while_revalidate window with nothing refreshing it, and
// then misses. (Before Z205, "past the served one's" could never match a
// dead listing.) Expected: a dead listing of the key is not a store since
// the entry was served; the refresh dispatches its call.
func TestZ208RefreshIsNotSkippedForADeadListingOfItsKey(t *testing.T) {
	env := newEnv(t, `{"upstream_cluster":"model","store":{"buckets":1,"ways":4,"max_tenant_share":0.25},
	  "routes":[{"name":"chat","kind":"chat","path_prefix":"/v1/chat/completions","ttl":"10s","stale_while_revalidate":"1m"}]}`)
	c := env.cache
	body := chatRequest("key")
	k := env.request("chat", alice, body)
	env.fill(k, jsonCT, chatResponse("first"), 10)
	env.clock.Advance(2 * time.Minute) // the key's entry is dead (past ttl + stale_while_revalidate)
	// Another of alice's keys, of another preferred way, takes her one way of the bucket.
	var other string
	for i := 0; i < 64; i++ {
		b := chatRequest("other" + string(rune('a'+i%26)) + string(rune('a'+i/26)))
		if r := env.request("chat", alice, b); c.table.preferredWay(r.FP) != c.table.preferredWay(k.FP) {
			other = b
			break
		}
	}
	if other == "" {
		t.Fatal("setup: no key of another preferred way")
	}
	env.fill(env.request("chat", alice, other), jsonCT, chatResponse("other"), 10)
	// The key is asked again: it is stored in alice's own way, evicting the other key.
	req, d := env.lookup("chat", alice, body)
	if d == Serve {
		t.Fatalf("setup: the dead key served (%s)", req.Status)
	}
	env.fill(env.request("chat", alice, body), jsonCT, chatResponse("second"), 10)
	if _, _, err := c.table.readIndex(0); err != nil {
		t.Fatal(err)
	}
	now, live, dead := c.nowMs(), 0, 0
	for _, s := range c.table.idx {
		if s.fp == k.FP && s.staleUntil > now {
			live++
		} else if s.fp == k.FP {
			dead++
		}
	}
	if live != 1 || dead != 1 {
		t.Fatalf("setup: the key listed live %d, dead %d times; want 1 and 1 (%+v)", live, dead, c.table.idx)
	}
	env.clock.Advance(20 * time.Second) // stale, within stale_while_revalidate
	req, d = env.lookup("chat", alice, body)
	if d != Serve || req.Status != StatusStale || string(req.Entry.Body) != chatResponse("second") || !c.WantsRefresh(req) {
		t.Fatalf("setup: %v %s", d, req.Status)
	}
	acts := c.Refresh(req, backgroundAliceHeaders, 1)
	dispatched := false
	for _, a := range acts {
		if a.Kind == ActDispatch {
			dispatched = true
		}
	}
	if !dispatched {
		var evs []string
		for _, a := range acts {
			if a.Kind == ActCount {
				evs = append(evs, EventNames[a.Event])
			}
		}
		t.Errorf("the stale entry's refresh made no call (counted %v): the key's dead listing of another stale time was taken for a store since it was served; "+
			"no refresh ever runs for it while that way stays listed", evs)
	}
}

// An L2 hit is served from the L2 value (req.Entry: the writer's entry,
// with the writer's stale time) after l2Install copied it into L1 with
// this proxy's stale windows (review Z165). An early refresh (XFetch) of
// that hit asks listedAfter(fp, writer's stale time): since review Z205
// any other stale time listed counts as "stored again since it was
// served", and the copy this very request just installed, of this
// proxy's windows, is exactly that. The refresh makes no call and counts
// background.joined though nothing is in flight (before Z205 only a
// proxy with longer windows than the writer's was hit; now any
// difference, shorter windows too). Expected: the hit's own install is
// not a store since it was served; the refresh dispatches its call.
// (ttl_slack 0 and a 50 ms margin only make XFetch's draw certain here;
// a model call of seconds makes the same refresh likely with the default
// slack.)
func TestZ208EarlyRefreshOfAnL2HitIsNotSkippedForItsOwnCopy(t *testing.T) {
	m := newL2Mesh(t, `,"ttl_slack":"0s"`)
	cfgB := mustParse(t, strings.Replace(fmt.Sprintf(l2TestConfig, `,"ttl_slack":"0s"`), `"ttl":"1h",`,
		`"ttl":"1h","stale_while_revalidate":"10m","early_refresh":{"enabled":true,"beta":100},`, 1))
	m.p[1] = New(cfgB, Options{Store: NewMemStore(), Now: m.clock.Now, Rand: seededRand(9)})
	c := m.p[1]
	m.ask(1, "warm", "up") // B's generations exist
	m.ask(0, "hello", "world")
	m.clock.Advance(time.Hour - 50*time.Millisecond) // the writer's entry about to expire: XFetch refreshes it
	f, got := m.begin(1, 50, "hello")
	req := f.Request()
	if !strings.Contains(got, "l2.hit") || !strings.Contains(got, "serve") || req.Status != StatusHit || req.Entry == nil {
		t.Fatalf("setup: B's request: %q %s", got, req.Status)
	}
	if !c.WantsRefresh(req) {
		t.Fatalf("setup: no early refresh wanted")
	}
	acts := c.Refresh(req, append(hdr(":method", "POST", ":path", "/v1/chat/completions"), alice...), 2)
	var evs []string
	dispatched := false
	for _, a := range acts {
		if a.Kind == ActDispatch {
			dispatched = true
		}
		if a.Kind == ActCount {
			evs = append(evs, EventNames[a.Event])
		}
	}
	if !dispatched {
		t.Errorf("the early refresh of an L2 hit made no call (counted %v): the L1 copy the hit itself installed, with this proxy's stale window, "+
			"was taken for a store since the entry was served", evs)
	}
}

// A purge by replay drops the purged turn's records from the semantic
// index (semForget, review Z204): in each namespace, expireTurn zeroes
// every record of the partition whose turn text equals the purged one. A
// partition is a slot shared by every context that hashes to it
// (semPartition: 64 slots at least), and a record carries only its turn
// text, not its context or tenant. Another tenant's answer to the same
// question, in a context of the same slot, loses its record with alice's
// purge: its paraphrases miss (its entry is still cached and fresh) until
// it is stored again. One tenant's purge takes out another tenant's
// semantic cache. Expected: the other tenant's near match still serves
// after alice's purge.
func TestZ208PurgeByReplayKeepsAnotherTenantsRecordOfTheSameTurn(t *testing.T) {
	e := newSemEnv(t, "")
	e.testEnv = newEnv(t, strings.Replace(semPurgeConfig, `"max_entries":2`, `"max_entries":100,"confirm":{"exact_hits":0}`, 1))
	c := e.cache
	q, para := "How do I reset my password?", "How can I reset my password?"
	f, _ := e.ask(alice, q, nil)
	if got := e.answer(f, "alice's answer"); !strings.Contains(got, "semantic.indexed") {
		t.Fatalf("setup: alice's turn not indexed: %q", got)
	}
	raw, _, err := c.store.Get("modelcache/sem/ns/chat")
	if err != nil || len(decodeSemModels(raw).ns) != 1 {
		t.Fatalf("setup: namespaces: %v", err)
	}
	ns := decodeSemModels(raw).ns[0].ns
	part := func(h [][2]string) uint64 {
		req := e.request("chat", h, chatRequest(q))
		sq, ok := c.semanticQuery(req)
		if !ok {
			t.Fatal("setup: no semantic query")
		}
		sq.ns = ns
		return c.semPartition(req, sq)
	}
	var other [][2]string
	for i := 0; i < 2000 && other == nil; i++ {
		h := hdr("authorization", "Bearer sk-tenant-"+strconv.Itoa(i))
		if part(h) == part(alice) {
			other = h
		}
	}
	if other == nil {
		t.Fatal("setup: no tenant of alice's partition")
	}
	f, _ = e.ask(other, q, nil)
	if got := e.answer(f, "the other tenant's answer"); !strings.Contains(got, "semantic.indexed") {
		t.Fatalf("setup: the other tenant's turn not indexed: %q", got)
	}
	if _, got := e.ask(other, para, nil); !strings.HasSuffix(got, "serve") {
		t.Fatalf("setup: the other tenant's paraphrase: %q", got)
	}
	e.purgeReplay(q) // alice's entry
	if _, got := e.ask(other, q, nil); !strings.HasSuffix(got, "serve") {
		t.Fatalf("setup: the other tenant's own entry is gone after alice's purge: %q", got)
	}
	if _, got := e.ask(other, para, nil); !strings.HasSuffix(got, "serve") {
		t.Errorf("after alice's purge of her answer, another tenant's paraphrase of its own cached, fresh answer misses (%q): "+
			"the purge zeroed every record of that turn text in the shared partition", got)
	}
}

// purgeReplay purges by replay alice's chat request for prompt.
func (e *semEnv) purgeReplay(prompt string) {
	e.t.Helper()
	res, err := e.cache.Purge([]byte(`{"method":"POST","path":"/v1/chat/completions","headers":{"authorization":"Bearer sk-alice"},"body":`+
		chatRequest(prompt)+`}`), "")
	if err != nil || res.Freed != 1 {
		e.t.Fatalf("setup: purge of %q: freed %d, %v", prompt, res.Freed, err)
	}
	if _, got := e.ask(alice, prompt, nil); strings.HasSuffix(got, "serve") {
		e.t.Fatalf("setup: %q still served after its purge: %q", prompt, got)
	}
}

package cachecore

import (
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/modelcache/modelcache/internal/hammer"
)

// Hostile co-tenants and the model table (issue 13, item 3).

// unkeyedModelSlot is the slot the model table used before it was keyed:
// XXH64 of route, NUL, model with a public seed, modulo 256. Anyone could
// compute it offline.
func unkeyedModelSlot(route, model string) uint64 {
	b := append([]byte(route), 0)
	b = append(b, model...)
	return Hash64(b, 0x6d6f64656c737461) % 256
}

// collidingModels brute-forces n model names whose unkeyed slot is the one
// of (route, model), as an attacker would offline.
func collidingModels(route, model string, n int) []string {
	want := unkeyedModelSlot(route, model)
	var out []string
	for i := 0; len(out) < n; i++ {
		name := "evil-" + strconv.Itoa(i)
		if unkeyedModelSlot(route, name) == want {
			out = append(out, name)
		}
	}
	return out
}

// roomyConfig is testConfig with a slot table large enough that a few
// dozen entries never compete for ways: what these tests look at is the
// model table.
var roomyConfig = strings.Replace(testConfig, `"buckets": 16, "ways": 4`, `"buckets": 4096, "ways": 4`, 1)

func withModel(body, model string) string {
	return strings.Replace(body, `"gpt-4o-mini"`, quote(model), 1)
}

// TestCotenantCannotEvictModelByCollision: tenant B stores answers for
// model names chosen to share tenant A's model slot under the old public
// hash. A's entry stays reachable.
func TestCotenantCannotEvictModelByCollision(t *testing.T) {
	env := newEnv(t, roomyConfig)
	body := chatRequest("what is the capital of France?")
	req, _ := env.lookup("chat", alice, body)
	env.fill(req, jsonCT, chatResponse("Paris"), 10)
	gen := req.state.Gen

	for _, name := range collidingModels("chat", "gpt-4o-mini", 64) {
		req, _ := env.lookup("chat", bob, withModel(chatRequest("x"), name))
		if req.Bypassed() {
			continue
		}
		env.cache.Store(req, 200, jsonCT, []byte(chatResponse("y")), env.cache.AdmitBody(req, jsonCT, []byte(chatResponse("y"))), 1)
	}
	if req, d := env.lookup("chat", alice, body); d != Serve || req.state.Gen != gen {
		t.Fatal("tenant B's model names made tenant A's entry unreachable")
	}
}

// sameModelSlot finds n model names whose records share one slot of c's
// model table, through c's secret (which the test can read; a client
// cannot).
func sameModelSlot(t *testing.T, c *Cache, route string, n int) []string {
	t.Helper()
	var out []string
	var slot uint64
	for i := 0; len(out) < n; i++ {
		name := "m-" + strconv.Itoa(i)
		id, err := c.modelID(route, name)
		if err != nil {
			t.Fatal(err)
		}
		if len(out) == 0 {
			slot = id % modelSlots
		}
		if id%modelSlots == slot {
			out = append(out, name)
		}
	}
	return out
}

// TestCotenantFullSlotNeverEvictsLive: even knowing the secret (the test
// reads it; a client cannot), 64 models of tenant B in tenant A's slot
// never displace A's live record: B's extra models are refused with
// model_table_full and A keeps hitting.
func TestCotenantFullSlotNeverEvictsLive(t *testing.T) {
	env := newEnv(t, roomyConfig)
	models := sameModelSlot(t, env.cache, "chat", 65)
	victim := withModel(chatRequest("capital of France?"), models[0])
	req, _ := env.lookup("chat", alice, victim)
	env.fill(req, jsonCT, chatResponse("Paris"), 10)
	gen := req.state.Gen

	full := 0
	for _, m := range models[1:] {
		req, _ := env.lookup("chat", bob, withModel(chatRequest("x"), m))
		adm := env.cache.AdmitBody(req, jsonCT, []byte(chatResponse("y")))
		switch res := env.cache.Store(req, 200, jsonCT, []byte(chatResponse("y")), adm, 1); res.Reason {
		case ReasonNone:
		case ReasonModelTableFull:
			full++
		default:
			t.Fatalf("store for %s: %s", m, res.Reason)
		}
	}
	if want := 64 - (modelsPerSlot - 1); full != want {
		t.Errorf("%d stores refused with model_table_full, want %d", full, want)
	}
	if OutcomeOf(ReasonModelTableFull, 200) != OutcomeUncacheable {
		t.Error("model_table_full is not a lasting refusal for single flight")
	}
	req, d := env.lookup("chat", alice, victim)
	if d != Serve || req.state.Gen != gen {
		t.Fatal("tenant A's live model record was displaced")
	}
}

// TestRecordLivesAsLongAsItsEntries: a record is live until the last
// StaleUntil of the entries stored under it, and storing a later entry
// extends it; an empty record (created by a purge) is reclaimable at once.
func TestRecordLivesAsLongAsItsEntries(t *testing.T) {
	env := newEnv(t, testConfig)
	record := func(model string) modelRecord {
		t.Helper()
		id, _ := env.cache.modelID("chat", model)
		raw, _, err := env.store.Get(modelKey(id))
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range decodeModels(raw) {
			if r.id == id {
				return r
			}
		}
		t.Fatalf("no record for %s", model)
		return modelRecord{}
	}
	req, _ := env.lookup("chat", alice, chatRequest("q1"))
	env.fill(req, jsonCT, chatResponse("a"), 10)
	e1, _ := env.lookup("chat", alice, chatRequest("q1"))
	until := record("gpt-4o-mini").until
	if until < e1.Entry.StaleUntil {
		t.Fatalf("record live until %d, its entry until %d", until, e1.Entry.StaleUntil)
	}
	env.clock.Advance(time.Duration(until-env.cache.NowMs())*time.Millisecond - time.Second)
	req, _ = env.lookup("chat", alice, chatRequest("q2"))
	env.fill(req, jsonCT, chatResponse("b"), 10)
	e2, _ := env.lookup("chat", alice, chatRequest("q2"))
	if got := record("gpt-4o-mini").until; got < e2.Entry.StaleUntil || got <= until {
		t.Fatalf("record not extended by a later entry: %d (entry %d, before %d)", got, e2.Entry.StaleUntil, until)
	}
	if err := env.cache.PurgeModel("chat", "never-stored"); err != nil {
		t.Fatal(err)
	}
	if r := record("never-stored"); r.until > env.cache.NowMs() {
		t.Fatalf("a record without entries is live until %d", r.until)
	}
}

// TestProcessSecretShared: VMs racing to create the process secret all
// end up with the same one, so they find each other's entries; a process
// with another secret places the same request elsewhere.
func TestProcessSecretShared(t *testing.T) {
	cfg := mustParse(t, testConfig)
	store := NewMemStore()
	const vms = 8
	caches := make([]*Cache, vms)
	for i := range caches {
		caches[i] = New(cfg, Options{Store: store, Rand: seededRand(uint64(100 + i))})
	}
	hammer.Run(t, vms, func(i int) error {
		_, err := caches[i].keys()
		return err
	})
	for i, c := range caches {
		if *c.hk != *caches[0].hk {
			t.Fatalf("VM %d hashes with another secret", i)
		}
	}
	route := caches[0].routeByName("chat")
	keyed := func(c *Cache) *Request {
		req := c.Begin(route, "POST", "/v1/chat/completions", alice)
		c.SetBody(req, []byte(chatRequest("q")))
		if req.Bypassed() {
			t.Fatalf("bypassed: %s", req.Reason)
		}
		return req
	}
	req := keyed(caches[3])
	adm := caches[3].AdmitBody(req, jsonCT, []byte(chatResponse("a")))
	if res := caches[3].Store(req, 200, jsonCT, []byte(chatResponse("a")), adm, 1); res.Reason != ReasonNone {
		t.Fatal(res.Reason)
	}
	if caches[5].Lookup(keyed(caches[5])) != Serve {
		t.Fatal("another VM of the process misses")
	}
	other := New(cfg, Options{Store: NewMemStore(), Rand: seededRand(7)})
	r1, r2 := keyed(caches[0]), keyed(other)
	if r1.FP == r2.FP {
		t.Fatal("the fingerprint does not depend on the secret")
	}
	a, _ := caches[0].modelID("chat", "m")
	b, _ := other.modelID("chat", "m")
	if a == b {
		t.Fatal("the model id does not depend on the secret")
	}
}

// TestProcessSecretMalformed: a malformed secret is never replaced (VMs
// already hashing with it would disagree); requests bypass as internal.
func TestProcessSecretMalformed(t *testing.T) {
	env := newEnv(t, testConfig)
	if err := env.store.Set(secretKey, []byte("junk"), 0); err != nil {
		t.Fatal(err)
	}
	req := env.request("chat", alice, chatRequest("q"))
	if !req.Bypassed() || req.Reason != ReasonInternal {
		t.Fatalf("request with a malformed secret: %s %s", req.Status, req.Reason)
	}
	if raw, _, _ := env.store.Get(secretKey); string(raw) != "junk" {
		t.Fatal("secret overwritten")
	}
}

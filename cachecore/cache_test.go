package cachecore

import (
	"bytes"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/modelcache/modelcache/internal/hammer"
)

const purgeToken = "0123456789abcdef-token"

const testConfig = `{
  "upstream_cluster": "models",
  "max_request_bytes": 8192,
  "store": {"buckets": 16, "ways": 4, "max_entry_bytes": 65536},
  "purge": {"path": "/_modelcache/purge", "token": "` + purgeToken + `"},
  "routes": [
    {"name": "chat", "kind": "chat", "path_exact": "/v1/chat/completions",
     "stale_while_revalidate": "30s", "early_refresh": {"enabled": true, "beta": 1}},
    {"name": "sie", "kind": "chat", "path_exact": "/v1/sie", "stale_if_error": "60s"},
    {"name": "beta2", "kind": "chat", "path_exact": "/v1/beta2", "early_refresh": {"enabled": true, "beta": 2}},
    {"name": "completions", "kind": "completions", "path_exact": "/v1/completions", "finish_reasons": ["stop", "length"]},
    {"name": "tools", "kind": "chat", "path_exact": "/v1/tools", "finish_reasons": ["stop", "tool_calls"]},
    {"name": "embed", "kind": "embeddings", "path_exact": "/v1/embeddings", "shared": true},
    {"name": "classify", "kind": "classify", "path_exact": "/v1/classify",
     "confidence": {"path": "score", "tiers": [{"min": 0.9, "ttl": "1h"}, {"min": 0.6, "ttl": "10m"}]}},
    {"name": "versioned", "kind": "chat", "path_exact": "/v1/versioned", "model_version": {"header": "x-model-version"}},
    {"name": "fingerprinted", "kind": "chat", "path_exact": "/v1/fp", "model_version": {"body_path": "system_fingerprint"}},
    {"name": "json", "kind": "json", "path_prefix": "/v1/json", "shared": true, "statuses": [200, 203]},
    {"name": "nocc", "kind": "chat", "path_exact": "/v1/nocc", "honor_request_cache_control": false},
    {"name": "small", "kind": "json", "path_exact": "/v1/small", "shared": true, "max_entry_bytes": 1024}
  ]
}`

func TestMissStoreHit(t *testing.T) {
	env := newEnv(t, testConfig)
	body := chatRequest("What is 2+2?")
	answer := chatResponse("4")
	respHeaders := hdr("content-type", "application/json", "set-cookie", "s=1", "x-request-id", "r1", "date", "then")

	req, d := env.lookup("chat", alice, body)
	if d != Forward || req.Status != StatusMiss || req.Entry != nil {
		t.Fatalf("first lookup: %v %s", d, req.Status)
	}
	if env.cache.Age(req) != 0 {
		t.Errorf("Age without entry = %v", env.cache.Age(req))
	}
	res := env.fill(req, respHeaders, answer, 1200)
	if len(res.Inserts) != 1 || !res.Inserts[0].Filled || res.Reason != ReasonNone || res.FreshUntil != env.clock.Now().Add(5*time.Minute).UnixMilli() {
		t.Fatalf("Store = %+v", res)
	}

	env.clock.Advance(100*time.Second + 500*time.Millisecond)
	req, d = env.lookup("chat", alice, body)
	if d != Serve || req.Status != StatusHit {
		t.Fatalf("second lookup: %v %s", d, req.Status)
	}
	if req.Entry.ComputeMs != 1200 {
		t.Errorf("ComputeMs = %d", req.Entry.ComputeMs)
	}
	if got := env.cache.Age(req); got != 100500*time.Millisecond {
		t.Errorf("Age = %v", got)
	}
	status, headers, got := env.cache.HitResponse(req)
	if status != 200 || string(got) != answer {
		t.Fatalf("HitResponse: %d %s", status, got)
	}
	want := hdr("content-type", "application/json", "age", "100", "cache-status", "modelcache; hit; ttl=199")
	if fmt.Sprint(headers) != fmt.Sprint(want) {
		t.Errorf("hit headers = %q\nwant %q", headers, want)
	}

	t.Run("another tenant misses", func(t *testing.T) {
		if req, d := env.lookup("chat", bob, body); d != Forward || req.Entry != nil {
			t.Fatalf("bob: %v %s", d, req.Status)
		}
	})
	t.Run("another route misses", func(t *testing.T) {
		if req, d := env.lookup("sie", alice, body); d != Forward || req.Entry != nil {
			t.Fatalf("sie: %v %s", d, req.Status)
		}
	})
	t.Run("re-store replaces in place", func(t *testing.T) {
		req, _ := env.lookup("chat", hdr("authorization", "Bearer sk-alice", "cache-control", "no-cache"), body)
		if req.Status != StatusRevalidate {
			t.Fatalf("status %s", req.Status)
		}
		res := env.fill(req, jsonCT, chatResponse("four"), 10)
		if len(res.Inserts) != 1 || res.Inserts[0] != (InsertResult{}) {
			t.Fatalf("inserts %+v, want one in-place replacement", res.Inserts)
		}
		req, _ = env.lookup("chat", alice, body)
		_, headers, got := env.cache.HitResponse(req)
		if string(got) != chatResponse("four") || headerValue(headers, "age") != "0" || headerValue(headers, "cache-status") != "modelcache; hit; ttl=300" {
			t.Fatalf("after re-store: %q %s", headers, got)
		}
	})
}

func TestNewRequiresRand(t *testing.T) {
	defer func() {
		if recover() == nil {
			t.Fatal("New without Rand did not panic")
		}
	}()
	New(mustParse(t, minimalChat), Options{Store: NewMemStore()})
}

// TestCacheHammer: 8 Caches (8 worker VMs) over one store. Each round a
// new model's first request reaches all 8 at once — all miss, all store,
// racing to create the model's record — and then every one of them must
// hit: had two records (generations) been created, some would miss. Then
// random traffic over a small key space must only ever hit the entry of
// the asked tenant and prompt.
func TestCacheHammer(t *testing.T) {
	const workers = 8
	if testing.Short() {
		t.Skip("hammer")
	}
	cfg := mustParse(t, testConfig)
	store := NewMemStore()
	clock := newFakeClock()
	caches := make([]*Cache, workers)
	for w := range caches {
		caches[w] = New(cfg, Options{Store: store, Now: clock.Now, Rand: seededRand(uint64(100 + w))})
	}
	route := cfg.MatchRoute("POST", "/v1/chat/completions")
	tenant := func(i int) [][2]string { return hdr("authorization", "Bearer t"+strconv.Itoa(i)) }
	request := func(model, prompt string) []byte {
		return []byte(`{"model":"` + model + `","messages":[{"role":"user","content":"` + prompt + `"}]}`)
	}
	answer := func(tn int, prompt string) []byte {
		return []byte(chatResponse("tenant " + strconv.Itoa(tn) + " asked " + prompt))
	}
	run := func(fn func(w int, c *Cache) error) []error {
		return hammer.Go(workers, func(w int) error { return fn(w, caches[w]) })
	}
	store1 := func(c *Cache, tn int, model, prompt string) error {
		req := c.Begin(route, "POST", "/v1/chat/completions", tenant(tn))
		c.SetBody(req, request(model, prompt))
		if req.Bypassed() {
			return fmt.Errorf("bypassed: %s", req.Reason)
		}
		if c.Lookup(req) == Serve {
			return nil
		}
		body := answer(tn, prompt)
		adm := c.AdmitBody(req, jsonCT, body)
		if res := c.Store(req, 200, jsonCT, body, adm, 5); res.Reason != ReasonNone && res.Reason != ReasonStoreContention {
			return fmt.Errorf("Store: %s", res.Reason)
		}
		return nil
	}
	check := func(c *Cache, tn int, model, prompt string) (bool, error) {
		req := c.Begin(route, "POST", "/v1/chat/completions", tenant(tn))
		c.SetBody(req, request(model, prompt))
		if c.Lookup(req) != Serve {
			return false, nil
		}
		if want := answer(tn, prompt); !bytes.Equal(req.Entry.Body, want) {
			return true, fmt.Errorf("tenant %d, %s: served %s", tn, prompt, req.Entry.Body)
		}
		return true, nil
	}

	for round := 0; round < 40; round++ {
		model := "model-" + strconv.Itoa(round)
		for _, err := range run(func(w int, c *Cache) error { return store1(c, 0, model, "first") }) {
			if err != nil {
				t.Fatalf("round %d: %v", round, err)
			}
		}
		for w, err := range run(func(w int, c *Cache) error {
			hit, err := check(c, 0, model, "first")
			if err == nil && !hit {
				err = errors.New("miss right after all workers stored")
			}
			return err
		}) {
			if err != nil {
				t.Fatalf("round %d, worker %d: %v", round, w, err)
			}
		}
	}

	var hits, lookups sync.Map
	for w, err := range run(func(w int, c *Cache) error {
		r := seededRand(uint64(w))
		h, n := 0, 0
		for i := 0; i < 1500; i++ {
			tn, prompt := int(r()%3), "p"+strconv.Itoa(int(r()%8))
			model := "model-" + strconv.Itoa(int(r()%3))
			if r()%2 == 0 {
				if err := store1(c, tn, model, prompt); err != nil {
					return err
				}
				continue
			}
			hit, err := check(c, tn, model, prompt)
			if err != nil {
				return err
			}
			n++
			if hit {
				h++
			}
		}
		hits.Store(w, h)
		lookups.Store(w, n)
		return nil
	}) {
		if err != nil {
			t.Errorf("worker %d: %v", w, err)
		}
	}
	total, found := 0, 0
	for w := 0; w < workers; w++ {
		n, _ := lookups.Load(w)
		h, _ := hits.Load(w)
		total, found = total+n.(int), found+h.(int)
	}
	if found == 0 {
		t.Errorf("no hits in %d lookups", total)
	}
	if n, limit := store.Keys(), 1+modelSlots+cfg.Store.Buckets*(1+cfg.Store.Ways); n > limit {
		t.Errorf("store holds %d keys, bound %d", n, limit)
	}
	t.Logf("random phase: %d hits in %d lookups", found, total)
}

// ---- benchmarks: the hit path's cost, natively ----

func benchEnv(b *testing.B) (*testEnv, *Route) {
	env := newEnv(b, `{"routes":[{"name":"chat","kind":"chat","path_exact":"/v1/chat/completions"}]}`)
	return env, env.route("chat")
}

// BenchmarkKeyAndLookupHit is the hit path before the response is built:
// Begin (tenant hash), SetBody (canonical key of a 1.7 KB request) and
// Lookup (model record, index, entry, key comparison) against a MemStore.
func BenchmarkKeyAndLookupHit(b *testing.B) {
	env, route := benchEnv(b)
	body := []byte(sampleChatRequest)
	req := env.cache.Begin(route, "POST", "/v1/chat/completions", alice)
	env.cache.SetBody(req, body)
	env.fill(req, jsonCT, chatResponse("Your order ships Tuesday."), 800)
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	for b.Loop() {
		req := env.cache.Begin(route, "POST", "/v1/chat/completions", alice)
		env.cache.SetBody(req, body)
		if env.cache.Lookup(req) != Serve {
			b.Fatal("miss")
		}
	}
}

func BenchmarkHitResponse(b *testing.B) {
	env, route := benchEnv(b)
	req := env.cache.Begin(route, "POST", "/v1/chat/completions", alice)
	env.cache.SetBody(req, []byte(sampleChatRequest))
	env.fill(req, jsonCT, chatResponse("Your order ships Tuesday."), 800)
	req = env.cache.Begin(route, "POST", "/v1/chat/completions", alice)
	env.cache.SetBody(req, []byte(sampleChatRequest))
	if env.cache.Lookup(req) != Serve {
		b.Fatal("miss")
	}
	b.ReportAllocs()
	for b.Loop() {
		env.cache.HitResponse(req)
	}
}

// BenchmarkStore stores a 2 KB response for a keyed 1.7 KB request (the
// same key each time: replaced in place).
func BenchmarkStore(b *testing.B) {
	env, route := benchEnv(b)
	req := env.cache.Begin(route, "POST", "/v1/chat/completions", alice)
	env.cache.SetBody(req, []byte(sampleChatRequest))
	body := []byte(chatResponse(strings.Repeat("Your order ships Tuesday. ", 80)))
	adm := env.cache.AdmitBody(req, jsonCT, body)
	if adm.Reason != ReasonNone {
		b.Fatal(adm.Reason)
	}
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	for b.Loop() {
		if res := env.cache.Store(req, 200, jsonCT, body, adm, 800); res.Reason != ReasonNone {
			b.Fatal(res.Reason)
		}
	}
}

func BenchmarkAdmitBody16KiB(b *testing.B) {
	env, route := benchEnv(b)
	req := &Request{Route: route}
	body := []byte(chatResponse(strings.Repeat("lorem ipsum dolor sit amet, ", 16<<10/28)))
	if len(body) < 16<<10 || len(body) > 17<<10 {
		b.Fatalf("body is %d bytes", len(body))
	}
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	for b.Loop() {
		if a := env.cache.AdmitBody(req, jsonCT, body); a.Reason != ReasonNone {
			b.Fatal(a.Reason)
		}
	}
}

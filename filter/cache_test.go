//go:build !wasip1

package main

import (
	"bytes"
	"fmt"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/modelcache/modelcache/e2e/modelsim"
	"github.com/modelcache/modelcache/wasmhost"
)

func TestMissThenHitAcrossWorkers(t *testing.T) {
	hs := newHarness(t, chatConfig)
	body := chatBody("What is the capital of France?")
	first := hs.post(0, "/v1/chat/completions", body)
	if first.Status != 200 {
		t.Fatalf("status %d: %s", first.Status, first.Body)
	}
	expectCacheStatus(t, first, "modelcache; fwd=miss", "fwd-status=200", "stored", "ttl=60")
	// The other worker shares the cache: shared data is process-wide.
	second := hs.post(1, "/v1/chat/completions", body)
	expectCacheStatus(t, second, "modelcache; hit", "ttl=60")
	if !bytes.Equal(first.Body, second.Body) {
		t.Fatalf("hit body differs:\n%s\n%s", first.Body, second.Body)
	}
	if got := hdr(second, "age"); got != "0" {
		t.Fatalf("age = %q", got)
	}
	if got := hs.sim.Calls("/v1/chat/completions"); got != 1 {
		t.Fatalf("model calls = %d, want 1", got)
	}
	hs.clock.Advance(20 * time.Second)
	third := hs.post(0, "/v1/chat/completions", body)
	expectCacheStatus(t, third, "hit", "ttl=40")
	if hdr(third, "age") != "20" {
		t.Fatalf("age = %q", hdr(third, "age"))
	}
	if hs.counter("modelcache_route.chat.requests.hit") != 2 || hs.counter("modelcache_route.chat.requests.miss") != 1 ||
		hs.counter("modelcache_route.chat.stored") != 1 {
		t.Fatalf("stats: %v", hs.h.MetricNames())
	}
	if g, _ := hs.h.Gauge("modelcache.entries"); g != 1 {
		t.Fatalf("entries gauge = %d", g)
	}
	if ages := hs.h.Histogram("modelcache_route.chat.age_at_serve_ms"); len(ages) != 2 || ages[1] != 20000 {
		t.Fatalf("age histogram = %v", ages)
	}
}

// Each route's requests count in its own stats, whichever route a
// request matched last (routes are found by their index).
func TestRouteStatsFollowTheRoute(t *testing.T) {
	hs := newHarness(t, chatConfig)
	hs.post(0, "/public/v1/chat/completions", chatBody("public question"))
	hs.post(0, "/v1/chat/completions", chatBody("tenant question"))
	hs.post(1, "/public/v1/chat/completions", chatBody("public question"))
	hs.post(1, "/v1/chat/completions", chatBody("another tenant question"))
	hs.post(0, "/v1/chat/completions", chatBody("tenant question"))
	for name, want := range map[string]uint64{
		"modelcache_route.public.requests.miss": 1, "modelcache_route.public.requests.hit": 1, "modelcache_route.public.stored": 1,
		"modelcache_route.chat.requests.miss": 2, "modelcache_route.chat.requests.hit": 1, "modelcache_route.chat.stored": 2,
		"modelcache_route.classify.requests.miss": 0,
	} {
		if got := hs.counter(name); got != want {
			t.Errorf("%s = %d, want %d", name, got, want)
		}
	}
}

func TestHitDoesNotReachTheRouter(t *testing.T) {
	hs := newHarness(t, chatConfig)
	body := chatBody("hold the headers")
	hs.post(0, "/v1/chat/completions", body)
	ex := hs.h.StartExchange(0, wasmhost.Request{
		Headers: [][2]string{{":method", "POST"}, {":path", "/v1/chat/completions"}, {":authority", "models"},
			{"authorization", "Bearer tenant-a"}, {"content-type", "application/json"}},
		Body: []byte(body),
	})
	hs.h.Drain()
	if !ex.Done() || ex.Response().Status != 200 {
		t.Fatalf("hit not served: %s", ex.State())
	}
	if ex.UpstreamContacted() {
		t.Fatal("the request headers reached the router on a hit")
	}
}

func TestExpiryMissesAgain(t *testing.T) {
	hs := newHarness(t, chatConfig)
	body := chatBody("expire me")
	hs.post(0, "/v1/chat/completions", body)
	hs.clock.Advance(61 * time.Second)
	res := hs.post(1, "/v1/chat/completions", body)
	expectCacheStatus(t, res, "fwd=miss", "stored")
	if hs.sim.Calls("/v1/chat/completions") != 2 {
		t.Fatal("expired entry was served")
	}
	if hs.counter("modelcache.expired_replaced") != 1 {
		t.Fatalf("expired_replaced = %d", hs.counter("modelcache.expired_replaced"))
	}
}

func TestNonMatchingRequestsPassThroughUntouched(t *testing.T) {
	hs := newHarness(t, chatConfig)
	for _, tc := range []struct{ method, path string }{
		{"GET", "/v1/models"},
		{"POST", "/v1/other"},
		{"GET", "/v1/chat/completions"}, // route matches the path, not the method
	} {
		t.Run(tc.method+tc.path, func(t *testing.T) {
			body := []byte(`{"x": 1,  "y":[2]}`)
			reqHeaders := [][2]string{{":method", tc.method}, {":path", tc.path}, {":authority", "m"},
				{"accept-encoding", "gzip"}, {"x-custom", "v"}}
			var seen [][2]string
			var seenBody []byte
			answer := []byte("raw \x00 upstream bytes, not JSON")
			hs.fault = func(u *wasmhost.UpstreamRequest) bool {
				seen, seenBody = u.Headers, u.Body
				u.Respond(200, [][2]string{{"content-type", "application/octet-stream"}, {"x-up", "1"}}, answer)
				return true
			}
			res, err := hs.h.Exchange(0, wasmhost.Request{Headers: reqHeaders, Body: body})
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(res.Body, answer) || hdr(res, "x-up") != "1" || hdr(res, "cache-status") != "" {
				t.Fatalf("response changed: %+v", res)
			}
			if !bytes.Equal(seenBody, body) {
				t.Fatalf("request body changed: %q", seenBody)
			}
			for _, want := range reqHeaders {
				found := false
				for _, kv := range seen {
					found = found || kv == want
				}
				if !found {
					t.Fatalf("request header %v lost: %v", want, seen)
				}
			}
		})
	}
}

func TestEquivalentBodiesShareOneEntry(t *testing.T) {
	hs := newHarness(t, chatConfig)
	base := `{"model":"sim-chat","messages":[{"role":"user","content":"Hi"}],"temperature":1.0,"seed":42,"tools":[{"type":"function","function":{"name":"f","parameters":{}}}]}`
	hs.post(0, "/v1/chat/completions", base)
	for _, same := range []string{
		"{\n  \"seed\": 42, \"temperature\": 1.0,\n  \"model\": \"sim-chat\",\"tools\":[{\"function\":{\"parameters\":{},\"name\":\"f\"},\"type\":\"function\"}],\n  \"messages\": [ {\"content\": \"Hi\", \"role\": \"user\"} ]\n}",
		`{"model":"sim-chat","messages":[{"role":"user","content":"\u0048i"}],"temperature":10e-1,"seed":42,"tools":[{"type":"function","function":{"name":"f","parameters":{}}}],"user":"someone-else"}`,
	} {
		res := hs.post(1, "/v1/chat/completions", same)
		expectCacheStatus(t, res, "hit")
	}
	for name, diff := range map[string]string{
		"model":       strings.Replace(base, `"sim-chat"`, `"sim-chat-2"`, 1),
		"message":     strings.Replace(base, `"Hi"`, `"Hi!"`, 1),
		"role":        strings.Replace(base, `"role":"user"`, `"role":"system"`, 1),
		"tool":        strings.Replace(base, `"name":"f"`, `"name":"g"`, 1),
		"temperature": strings.Replace(base, `1.0`, `0.7`, 1),
		"seed":        strings.Replace(base, `42`, `43`, 1),
		"new param":   strings.Replace(base, `"seed":42`, `"seed":42,"top_p":0.5`, 1),
	} {
		t.Run(name, func(t *testing.T) {
			res := hs.post(0, "/v1/chat/completions", diff)
			expectCacheStatus(t, res, "fwd=miss")
		})
	}
}

func TestTenantIsolation(t *testing.T) {
	hs := newHarness(t, chatConfig)
	body := chatBody("tenant secret")
	a := hs.post(0, "/v1/chat/completions", body, "authorization", "Bearer tenant-a")
	expectCacheStatus(t, a, "fwd=miss", "stored")
	b := hs.post(1, "/v1/chat/completions", body, "authorization", "Bearer tenant-b")
	expectCacheStatus(t, b, "fwd=miss", "stored")
	// The same secret in another identity header is another tenant too.
	c := hs.post(0, "/v1/chat/completions", body, "x-api-key", "tenant-a")
	expectCacheStatus(t, c, "fwd=miss")
	// No identity: never touches the cache, counted.
	for i := 0; i < 2; i++ {
		none := hs.post(i, "/v1/chat/completions", body, "-", "")
		expectCacheStatus(t, none, "fwd=bypass", "detail=no-identity")
	}
	if got := hs.counter("modelcache_route.chat.bypass.no_identity"); got != 2 {
		t.Fatalf("no_identity = %d", got)
	}
	if got := hs.sim.Calls("/v1/chat/completions"); got != 5 {
		t.Fatalf("model calls = %d, want 5 (3 tenants + 2 anonymous)", got)
	}
	// Each tenant now hits its own entry.
	expectCacheStatus(t, hs.post(1, "/v1/chat/completions", body, "authorization", "Bearer tenant-a"), "hit")
	expectCacheStatus(t, hs.post(0, "/v1/chat/completions", body, "authorization", "Bearer tenant-b"), "hit")
	// A route declared shared needs no identity and is shared by all.
	expectCacheStatus(t, hs.post(0, "/public/v1/chat/completions", body, "-", ""), "fwd=miss", "stored")
	expectCacheStatus(t, hs.post(1, "/public/v1/chat/completions", body, "authorization", "Bearer x"), "hit")
}

// An answer that depends on a request header (OpenAI-Project selects the
// project whose fine-tunes, policies and billing apply) is keyed by it on
// a route that lists it in key_headers: two requests of one tenant that
// differ only in it never share an entry; the header absent, present but
// empty, and repeated (each line, in order) are each an entry of their
// own; and a hit is still served to a request with the same value. An
// upstream Vary that names it no longer refuses the answer.
func TestKeyHeadersSeparateAnswers(t *testing.T) {
	cfg := `{"routes":[{"name":"chat","kind":"chat","path_prefix":"/v1/chat/completions","ttl":"60s","key_headers":["OpenAI-Project"]}]}`
	hs := newHarness(t, cfg)
	hs.fault = func(u *wasmhost.UpstreamRequest) bool {
		var projects []string
		for _, kv := range u.Headers {
			if kv[0] == "openai-project" {
				projects = append(projects, strconv.Quote(kv[1]))
			}
		}
		body := []byte(`{"id":"r","object":"chat.completion","model":"sim-chat","choices":[{"index":0,"message":{"role":"assistant","content":` +
			strconv.Quote("answer for project "+strings.Join(projects, " ")) + `},"finish_reason":"stop"}]}`)
		u.Respond(200, [][2]string{{"content-type", "application/json"}, {"content-length", strconv.Itoa(len(body))}, {"vary", "OpenAI-Project"}}, body)
		return true
	}
	body := chatBody("which project am I in?")
	variants := []struct {
		name    string
		headers []string
		answer  string
	}{
		{"project A", []string{"openai-project", "proj_A"}, `project \"proj_A\"`},
		{"project B", []string{"openai-project", "proj_B"}, `project \"proj_B\"`},
		{"no project", nil, `project "`},
		{"empty project", []string{"openai-project", ""}, `project \"\""`},
		{"two lines", []string{"openai-project", "proj_A", "openai-project", "proj_B"}, `project \"proj_A\" \"proj_B\"`},
		{"two lines, other order", []string{"openai-project", "proj_B", "openai-project", "proj_A"}, `project \"proj_B\" \"proj_A\"`},
	}
	for _, v := range variants {
		res := hs.post(0, "/v1/chat/completions", body, v.headers...)
		expectCacheStatus(t, res, "fwd=miss", "stored")
		if !strings.Contains(string(res.Body), v.answer) {
			t.Fatalf("%s: got %s", v.name, res.Body)
		}
	}
	for _, v := range variants {
		res := hs.post(1, "/v1/chat/completions", body, v.headers...)
		expectCacheStatus(t, res, "hit")
		if !strings.Contains(string(res.Body), v.answer) {
			t.Fatalf("%s: served another project's answer: %s", v.name, res.Body)
		}
	}
	if got := hs.upstream.Load(); got != int64(len(variants)) {
		t.Fatalf("upstream calls = %d, want %d", got, len(variants))
	}
}

// TestNeverCached: each failure mode reaches the client as the upstream sent
// it, is not stored (the next identical request goes upstream again), and is
// counted by reason.
func TestNeverCached(t *testing.T) {
	long := strings.Repeat("x", 300<<10)
	tests := []struct {
		name   string
		config string
		body   string
		fault  func(u *wasmhost.UpstreamRequest) bool
		header string // sim knob header set on the request
		value  string
		stat   string
		detail string
	}{
		{name: "500", header: "x-sim-status", value: "500", stat: "refused_status.500", detail: "detail=status-500"},
		{name: "503", header: "x-sim-status", value: "503", stat: "refused_status.503", detail: "detail=status-503"},
		{name: "429", header: "x-sim-status", value: "429", stat: "refused_status.429", detail: "detail=status-429"},
		{name: "400", header: "x-sim-status", value: "400", stat: "refused_status.400", detail: "detail=status-400"},
		{name: "upstream reset", fault: func(u *wasmhost.UpstreamRequest) bool { u.Reset(); return true },
			stat: "refused.upstream_reset", detail: "detail=upstream-reset"},
		// A gateway's 504 from upstream (Envoy's own timeout reply is
		// TestEnvoyLocalRepliesAreNeverStored).
		{name: "upstream 504", fault: func(u *wasmhost.UpstreamRequest) bool {
			u.Respond(504, [][2]string{{"content-type", "text/plain"}}, []byte("upstream request timeout"))
			return true
		}, stat: "refused_status.504", detail: "detail=status-504"},
		{name: "malformed JSON", header: "x-sim-fault", value: "malformed", stat: "refused.malformed_json", detail: "detail=malformed-json"},
		{name: "finish_reason length", header: "x-sim-finish-reason", value: "length", stat: "refused.finish_reason", detail: "detail=finish-reason"},
		{name: "empty content", header: "x-sim-fault", value: "empty", stat: "refused.empty_content", detail: "detail=empty-content"},
		{name: "response no-store", header: "x-sim-cache-control", value: "no-store", stat: "refused.no_store", detail: "detail=no-store"},
		{name: "oversized", fault: func(u *wasmhost.UpstreamRequest) bool {
			body := `{"choices":[{"message":{"content":"` + long + `"},"finish_reason":"stop"}]}`
			u.Respond(200, [][2]string{{"content-type", "application/json"}}, []byte(body))
			return true
		}, stat: "refused.too_large", detail: "detail=too-large"},
		{name: "validation rule", config: `{"routes":[{"name":"chat","kind":"chat","path_prefix":"/v1/chat/completions",
			"validate":[{"path":"usage.total_tokens","type":"number","max":1}]}]}`,
			stat: "refused.validation", detail: "detail=validation"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cfg := chatConfig
			if tc.config != "" {
				cfg = tc.config
			}
			hs := newHarness(t, cfg)
			hs.fault = tc.fault
			body := chatBody("never cache " + tc.name)
			var extra []string
			if tc.header != "" {
				extra = []string{tc.header, tc.value}
			}
			for i := 0; i < 2; i++ {
				res := hs.post(i, "/v1/chat/completions", body, extra...)
				expectCacheStatus(t, res, "fwd=miss", tc.detail)
				if strings.Contains(hdr(res, "cache-status"), "stored") {
					t.Fatal("stored")
				}
			}
			if got := hs.upstream.Load(); got != 2 {
				t.Fatalf("upstream requests = %d, want 2 (nothing stored)", got)
			}
			if got := hs.counter("modelcache_route.chat." + tc.stat); got != 2 {
				t.Fatalf("%s = %d, want 2; stats: %v", tc.stat, got, hs.h.MetricNames())
			}
			if g, _ := hs.h.Gauge("modelcache.entries"); g != 0 {
				t.Fatalf("entries = %d", g)
			}
		})
	}
}

// Envoy's own answer to an upstream timeout or reset reaches the filter as a
// local reply; its response code details say which.
func TestEnvoyLocalRepliesAreNeverStored(t *testing.T) {
	hs := newHarness(t, chatConfig)
	body := chatBody("timeout")
	for i := 0; i < 2; i++ {
		res, err := hs.h.Exchange(0, wasmhost.Request{
			Headers: [][2]string{{":method", "POST"}, {":path", "/v1/chat/completions"}, {":authority", "m"},
				{"authorization", "Bearer t"}, {"content-type", "application/json"}},
			Body:       []byte(body),
			Properties: map[string][]byte{wasmhost.Path("response", "code_details"): []byte("upstream_response_timeout")},
		})
		if err != nil {
			t.Fatal(err)
		}
		expectCacheStatus(t, res, "detail=upstream-timeout")
	}
	if got := hs.counter("modelcache_route.chat.refused.upstream_timeout"); got != 2 {
		t.Fatalf("upstream_timeout = %d", got)
	}
}

func TestRequestBodyBypasses(t *testing.T) {
	hs := newHarness(t, chatConfig)
	tests := []struct {
		name, body, stat, detail string
	}{
		{"malformed", `{"model":"m",`, "bypass.malformed_json", "detail=malformed-json"},
		{"duplicate key", `{"model":"a","model":"b","messages":[]}`, "bypass.duplicate_key", "detail=duplicate-key"},
		{"too large", `{"model":"m","messages":[{"role":"user","content":"` + strings.Repeat("y", 300<<10) + `"}]}`, "bypass.body_too_large", "detail=body-too-large"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			before := hs.upstream.Load()
			res := hs.post(0, "/v1/chat/completions", tc.body)
			expectCacheStatus(t, res, "fwd=bypass", tc.detail)
			if hs.upstream.Load() != before+1 {
				t.Fatal("request did not reach the upstream")
			}
			if hs.counter("modelcache_route.chat."+tc.stat) != 1 {
				t.Fatalf("%s not counted", tc.stat)
			}
		})
	}
}

// Each tier runs on its own harness (store, clock, counters), so any
// subtest runs alone.
func TestConfidenceTiers(t *testing.T) {
	tests := []struct {
		score   string
		status  []string
		ttl     time.Duration
		refused uint64 // refused.low_confidence after the subtest
	}{
		{"0.95", []string{"stored", "ttl=3600"}, time.Hour, 0},
		{"0.7", []string{"stored", "ttl=60"}, time.Minute, 0},
		{"0.3", []string{"detail=low-confidence"}, 0, 2},
	}
	for _, tc := range tests {
		t.Run(tc.score, func(t *testing.T) {
			hs := newHarness(t, chatConfig)
			defer func() {
				if got := hs.counter("modelcache_route.classify.refused.low_confidence"); got != tc.refused {
					t.Errorf("low_confidence = %d, want %d", got, tc.refused)
				}
			}()
			body := `{"model":"clf","input":"text with score [score=` + tc.score + `]"}`
			res := hs.post(0, "/v1/classify", body)
			expectCacheStatus(t, res, tc.status...)
			again := hs.post(1, "/v1/classify", body)
			if tc.ttl == 0 {
				expectCacheStatus(t, again, "fwd=miss", "detail=low-confidence")
				return
			}
			expectCacheStatus(t, again, "hit")
			hs.clock.Advance(tc.ttl + time.Second)
			expectCacheStatus(t, hs.post(0, "/v1/classify", body), "fwd=miss")
		})
	}
}

func TestRequestCacheControl(t *testing.T) {
	hs := newHarness(t, chatConfig)
	body := chatBody("cache control")
	expectCacheStatus(t, hs.post(0, "/v1/chat/completions", body, "cache-control", "no-store"), "fwd=bypass", "detail=request-no-store")
	expectCacheStatus(t, hs.post(0, "/v1/chat/completions", body, "cache-control", "only-if-cached"), "detail=only-if-cached")
	if res := hs.post(0, "/v1/chat/completions", body, "cache-control", "only-if-cached"); res.Status != 504 {
		t.Fatalf("only-if-cached miss: status %d", res.Status)
	}
	// only-if-cached never reaches the model, even when the cache could
	// not have taken part anyway.
	upstream := hs.upstream.Load()
	for _, extra := range [][]string{{"-", "", "cache-control", "only-if-cached"}, {"cache-control", "only-if-cached, no-cache"}} {
		if res := hs.post(0, "/v1/chat/completions", body, extra...); res.Status != 504 {
			t.Fatalf("%v: status %d", extra, res.Status)
		}
	}
	if hs.upstream.Load() != upstream {
		t.Fatal("only-if-cached reached the upstream")
	}
	calls := hs.sim.Calls("/v1/chat/completions")
	expectCacheStatus(t, hs.post(0, "/v1/chat/completions", body), "fwd=miss", "stored")
	expectCacheStatus(t, hs.post(0, "/v1/chat/completions", body, "cache-control", "only-if-cached"), "hit")
	// no-cache: skip the lookup, still store.
	expectCacheStatus(t, hs.post(1, "/v1/chat/completions", body, "cache-control", "no-cache"), "fwd=request", "stored")
	if hs.sim.Calls("/v1/chat/completions") != calls+2 {
		t.Fatal("no-cache did not go upstream")
	}
	hs.clock.Advance(30 * time.Second)
	// fwd=request since review Z148 (was fwd=miss): the client's
	// directive refused an entry still fresh (RFC 9211 §2.2).
	expectCacheStatus(t, hs.post(0, "/v1/chat/completions", body, "cache-control", "max-age=10"), "fwd=request")
	hs.clock.Advance(25 * time.Second) // 25 s old, 35 s of freshness left
	expectCacheStatus(t, hs.post(0, "/v1/chat/completions", body, "cache-control", "min-fresh=50"), "fwd=request")
	expectCacheStatus(t, hs.post(0, "/v1/chat/completions", body, "cache-control", "max-age=100"), "hit")
	hs.clock.Advance(70 * time.Second) // stale by 10 s
	expectCacheStatus(t, hs.post(0, "/v1/chat/completions", body, "cache-control", "max-stale=5"), "fwd=miss")
}

func TestMaxStaleServesStale(t *testing.T) {
	cfg := `{"routes":[{"name":"chat","kind":"chat","path_prefix":"/v1/chat/completions","ttl":"10s","stale_if_error":"1m"}]}`
	hs := newHarness(t, cfg)
	body := chatBody("max-stale")
	hs.post(0, "/v1/chat/completions", body)
	hs.clock.Advance(15 * time.Second)
	res := hs.post(1, "/v1/chat/completions", body, "cache-control", "max-stale=30")
	expectCacheStatus(t, res, "hit", "fwd=stale", "ttl=-5")
	if hs.sim.Calls("/v1/chat/completions") != 1 {
		t.Fatal("stale answer went upstream")
	}
}

func TestModelVersionChangeInvalidates(t *testing.T) {
	cfg := `{"routes":[{"name":"chat","kind":"chat","path_prefix":"/v1/chat/completions","model_version":{"header":"x-model-version"}}]}`
	hs := newHarness(t, cfg)
	body := chatBody("versioned")
	v1 := hs.post(0, "/v1/chat/completions", body)
	expectCacheStatus(t, hs.post(1, "/v1/chat/completions", body), "hit")
	if err := hs.sim.UpdateKnobs(func(k *modelsim.Knobs) { k.ModelVersion = "v2" }); err != nil {
		t.Fatal(err)
	}
	// A different prompt reaches the model and reveals the new version.
	hs.post(0, "/v1/chat/completions", chatBody("another prompt"))
	if hs.counter("modelcache.model_version_changes") != 1 {
		t.Fatal("version change not counted")
	}
	res := hs.post(1, "/v1/chat/completions", body)
	expectCacheStatus(t, res, "fwd=miss", "stored")
	if bytes.Equal(res.Body, v1.Body) {
		t.Fatal("answer of the old model version served")
	}
	if hdr(res, "x-model-version") != "v2" {
		t.Fatalf("x-model-version = %q", hdr(res, "x-model-version"))
	}
	expectCacheStatus(t, hs.post(0, "/v1/chat/completions", body), "hit")
}

// TestCapacityBound writes 20× the table's capacity of distinct keys: live
// entries never exceed it, and shared data stays a fixed set of keys.
func TestCapacityBound(t *testing.T) {
	const buckets, ways = 4, 2
	cfg := fmt.Sprintf(`{"store":{"buckets":%d,"ways":%d,"max_entry_bytes":4096,"lease_slots":16},
		"routes":[{"name":"chat","kind":"chat","path_prefix":"/v1/chat/completions"}]}`, buckets, ways)
	hs := newHarness(t, cfg)
	capacity := buckets * ways
	maxKeys := 0
	for i := 0; i < 20*capacity; i++ {
		res := hs.post(i%2, "/v1/chat/completions", chatBody("key "+strconv.Itoa(i)))
		expectCacheStatus(t, res, "stored")
		g, _ := hs.h.Gauge("modelcache.entries")
		if g > int64(capacity) {
			t.Fatalf("after %d inserts: %d live entries > capacity %d", i+1, g, capacity)
		}
		if n := len(hs.h.SharedDataKeys()); n > maxKeys {
			maxKeys = n
		}
	}
	if g, _ := hs.h.Gauge("modelcache.entries"); g != int64(capacity) {
		t.Fatalf("entries = %d, want full table %d", g, capacity)
	}
	// index keys + entry keys + lease slots + one model-state key + the CAS
	// anchor + the process secret + the VM-restart count + the build that
	// serves (cachecore.VMServedKey) + the lease horizon (stop 69) + the
	// table layout (stop 71) + the process's lease slot count (stop 73) +
	// the layouts its configurations started with (stop 74, mc:layouts).
	if bound := buckets + capacity + 16 + 9; maxKeys > bound {
		t.Fatalf("shared data grew to %d keys (bound %d): %v", maxKeys, bound, hs.h.SharedDataKeys())
	}
	if hs.counter("modelcache.evictions") != uint64(19*capacity) {
		t.Fatalf("evictions = %d", hs.counter("modelcache.evictions"))
	}
	if bytes := hs.h.SharedDataBytes(); bytes > capacity*4096+buckets*200+1024 {
		t.Fatalf("shared data holds %d bytes, over the bound", bytes)
	}
}

func TestPurge(t *testing.T) {
	hs := newHarness(t, chatConfig)
	purge := func(token, body string) *wasmhost.ClientResponse {
		t.Helper()
		res, err := hs.h.Exchange(0, wasmhost.Request{
			Headers: [][2]string{{":method", "POST"}, {":path", "/modelcache/purge"}, {":authority", "m"},
				{"authorization", "Bearer " + token}},
			Body: []byte(body),
		})
		if err != nil {
			t.Fatal(err)
		}
		return res
	}
	a, b := chatBody("purge a"), chatBody("purge b")
	hs.post(0, "/v1/chat/completions", a)
	hs.post(0, "/v1/chat/completions", b)
	if res := purge("wrong-token-wrong-token", `{"all":true}`); res.Status != 401 {
		t.Fatalf("wrong token: %d", res.Status)
	}
	if hs.upstream.Load() != 2 {
		t.Fatal("purge request reached the upstream")
	}
	// One entry, by replaying the request.
	res := purge("0123456789abcdef-token", `{"path":"/v1/chat/completions","headers":{"authorization":"Bearer tenant-a","host":"models"},"body":`+a+`}`)
	if res.Status != 200 || !strings.Contains(string(res.Body), `"freed":1`) {
		t.Fatalf("purge entry: %d %s", res.Status, res.Body)
	}
	expectCacheStatus(t, hs.post(1, "/v1/chat/completions", a), "fwd=miss")
	expectCacheStatus(t, hs.post(1, "/v1/chat/completions", b), "hit")
	// Everything of a model, for every tenant.
	hs.post(0, "/v1/chat/completions", b, "authorization", "Bearer tenant-c")
	res = purge("0123456789abcdef-token", `{"route":"chat","model":"sim-chat"}`)
	if res.Status != 200 {
		t.Fatalf("purge model: %d %s", res.Status, res.Body)
	}
	expectCacheStatus(t, hs.post(1, "/v1/chat/completions", b), "fwd=miss")
	expectCacheStatus(t, hs.post(1, "/v1/chat/completions", b, "authorization", "Bearer tenant-c"), "fwd=miss")
	// Everything.
	res = purge("0123456789abcdef-token", `{"all":true}`)
	if res.Status != 200 || !strings.Contains(string(res.Body), `"scope":"all"`) {
		t.Fatalf("purge all: %d %s", res.Status, res.Body)
	}
	if g, _ := hs.h.Gauge("modelcache.entries"); g != 0 {
		t.Fatalf("entries after purge all = %d", g)
	}
	expectCacheStatus(t, hs.post(0, "/v1/chat/completions", a), "fwd=miss")
	if res := purge("0123456789abcdef-token", `{"nonsense":1}`); res.Status != 400 {
		t.Fatalf("bad purge body: %d", res.Status)
	}
}

func TestPurgeAPIAbsentWithoutToken(t *testing.T) {
	hs := newHarness(t, `{"routes":[{"name":"chat","kind":"chat","path_prefix":"/v1/chat/completions"}]}`)
	hs.fault = func(u *wasmhost.UpstreamRequest) bool {
		u.Respond(404, nil, []byte("no such path"))
		return true
	}
	res, err := hs.h.Exchange(0, wasmhost.Request{
		Headers: [][2]string{{":method", "POST"}, {":path", "/modelcache/purge"}, {":authority", "m"}},
		Body:    []byte(`{"all":true}`),
	})
	if err != nil || res.Status != 404 {
		t.Fatalf("purge without token configured: %v %d", err, res.Status)
	}
}

func TestStatsExistAtStart(t *testing.T) {
	hs := newHarness(t, chatConfig)
	names := strings.Join(hs.h.MetricNames(), "\n")
	for _, want := range []string{"modelcache_route.chat.requests.hit", "modelcache_route.chat.requests.miss",
		"modelcache_route.chat.requests.bypass", "modelcache_route.chat.stored", "modelcache_route.chat.refused.upstream_reset",
		"modelcache_route.chat.bypass.no_identity", "modelcache.entries", "modelcache_route.chat.age_at_serve_ms",
		"modelcache.vm_restarts"} {
		if !strings.Contains(names, want) {
			t.Errorf("stat %s missing", want)
		}
	}
}

// The stats_tags entry of every shipped Envoy config that has one turns a
// route stat's route segment into the label modelcache_route, and leaves
// the process-wide stats (modelcache.entries, modelcache.vm_heap_allocs,
// …) untagged, as README, Stats, says; applied here as Envoy applies a
// TagSpecifier regex (the first group is cut out of the name, the second
// is the value) to every stat the module defines, for routes named like
// the process-wide stats ("vm", "v", "vmx", "v-m", "entries").
// Every stat exports under a name and tag of its own.
func TestShippedStatsTagsTagRoutesOnly(t *testing.T) {
	routes := []string{"chat", "v", "vmx", "v-m", "m", "vm", "entries"}
	var rs []string
	for i, r := range routes {
		rs = append(rs, fmt.Sprintf(`{"name":%q,"kind":"chat","path_prefix":"/r%d",
		  "freshness_slo":{"max_age":"10s","max_fraction":0.05,"window":"1m","min_samples":10}}`, r, i))
	}
	hs := newHarness(t, `{"routes":[`+strings.Join(rs, ",")+`]}`)
	names := hs.h.MetricNames()
	configs := 0
	for _, f := range []string{"../envoy/envoy.yaml", "../envoy/istio/ecds/envoy.yaml"} {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		m := regexp.MustCompile(`tag_name: modelcache_route\s+regex: '([^']+)'`).FindSubmatch(b)
		if m == nil {
			t.Errorf("%s: no stats_tags entry for modelcache_route", f)
			continue
		}
		configs++
		re := regexp.MustCompile(string(m[1]))
		exported := map[string]string{}
		for _, name := range names {
			want := ""
			for _, r := range routes {
				if strings.HasPrefix(name, "modelcache_route."+r+".") {
					want = r
				}
			}
			full := "wasmcustom." + name
			prom, tag := strings.ReplaceAll(name, ".", "_"), ""
			if s := re.FindStringSubmatchIndex(full); s != nil {
				tag = full[s[4]:s[5]]
				prom = strings.ReplaceAll(strings.TrimPrefix(full[:s[2]]+full[s[3]:], "wasmcustom."), ".", "_")
			}
			if tag != want {
				t.Errorf("%s: %s is exported as %s{modelcache_route=%q}, want the tag %q", f, name, prom, tag, want)
			}
			if other, dup := exported[prom+"/"+tag]; dup {
				t.Errorf("%s: %s and %s are both exported as %s{modelcache_route=%q}", f, other, name, prom, tag)
			}
			exported[prom+"/"+tag] = name
		}
	}
	if configs == 0 || !slices.Contains(names, "modelcache.vm_heap_allocs") {
		t.Fatalf("%d configs checked; stats %v", configs, names)
	}
}

// The module must import only from env and wasi_snapshot_preview1, and
// export the ABI marker and allocator Envoy looks for.
func TestModuleInterface(t *testing.T) {
	for _, imp := range module.Imports() {
		if !strings.HasPrefix(imp, "env.") && !strings.HasPrefix(imp, "wasi_snapshot_preview1.") {
			t.Errorf("unexpected import %s", imp)
		}
	}
	if module.ABIVersion() != "0_2_1" {
		t.Fatalf("ABI version %q", module.ABIVersion())
	}
}

// TestInvalidConfigRefused: the plugin refuses to start on a bad
// configuration, and the log names the field and the reason.
func TestInvalidConfigRefused(t *testing.T) {
	route := func(extra string) string {
		return `{"routes":[{"name":"c","kind":"chat","path_prefix":"/v1/chat"` + extra + `}]}`
	}
	tests := []struct{ name, config, log string }{
		{"empty", ``, "configuration: is empty"},
		{"not JSON", `{"routes":`, "configuration: is not valid JSON"},
		{"no routes", `{}`, "routes: is required"},
		{"unknown top-level field", `{"rutes":[]}`, "rutes: unknown field"},
		{"bad kind", `{"routes":[{"name":"c","kind":"llm","path_prefix":"/v1"}]}`, "routes[0].kind: must be one of"},
		{"missing path", `{"routes":[{"name":"c","kind":"chat"}]}`, "routes[0]: needs path_prefix or path_exact"},
		{"bad duration", route(`,"ttl":"ten minutes"`), `routes[0].ttl: invalid duration "ten minutes"`},
		{"error status", route(`,"statuses":[500]`), "routes[0].statuses[0]: must be between 200 and 299"},
		{"rule without predicate", route(`,"validate":[{"path":"a"}]`), "routes[0].validate[0]: has no predicate"},
		{"tier without ttl", route(`,"confidence":{"path":"score","tiers":[{"min":0.5}]}`), "routes[0].confidence.tiers[0]: needs both min and ttl"},
		{"short purge token", route(``)[:len(route(``))-1] + `,"purge":{"path":"/p","token":"short"}}`, "purge.token: must be at least 16 characters"},
		{"swr without cluster", route(`,"stale_while_revalidate":"1m"`), "routes[0]: stale_while_revalidate, early_refresh and shadow make background calls: set upstream_cluster"},
		{"zero buckets", `{"store":{"buckets":0},` + route(``)[1:], "store.buckets: must be between 1 and"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := wasmhost.New(t.Context(), module, wasmhost.Config{PluginConfig: []byte(tc.config)})
			if err == nil {
				t.Fatal("plugin started")
			}
			if !strings.Contains(err.Error(), "invalid configuration: "+tc.log) {
				t.Fatalf("log does not say %q:\n%v", tc.log, err)
			}
		})
	}
}

// One VM reads the time once per callback, not once for good: an entry
// stored by a worker expires for that same worker's later request.
func TestExpiryMissesAgainOnTheSameWorker(t *testing.T) {
	hs := newHarness(t, chatConfig)
	body := chatBody("expire me here")
	hs.post(0, "/v1/chat/completions", body)
	expectCacheStatus(t, hs.post(0, "/v1/chat/completions", body), "hit")
	hs.clock.Advance(61 * time.Second)
	res := hs.post(0, "/v1/chat/completions", body)
	expectCacheStatus(t, res, "fwd=miss", "stored")
	if hs.sim.Calls("/v1/chat/completions") != 2 {
		t.Fatal("expired entry was served")
	}
}

// stored_headers replaces its default (["content-type"]): a list without
// content-type stored entries without one, and Envoy types a local reply
// with a body and no content-type text/plain — a replayed event stream
// that no SSE client reads as one. A hit carries the content-type its
// answer was stored with, whatever the list.
func TestHitKeepsContentTypeWhateverStoredHeaders(t *testing.T) {
	cfg := `{"routes":[{"name":"chat","kind":"chat","path_prefix":"/v1/chat/completions","stored_headers":["x-model-version"]}]}`
	hs := newHarness(t, cfg)
	for _, body := range []string{streamBody("a story"), chatBody("a fact")} {
		miss := hs.post(0, "/v1/chat/completions", body)
		expectCacheStatus(t, miss, "fwd=miss")
		hit := hs.post(1, "/v1/chat/completions", body)
		expectCacheStatus(t, hit, "hit")
		if a, b := hdr(miss, "content-type"), hdr(hit, "content-type"); a != b {
			t.Errorf("miss content-type %q, hit content-type %q", a, b)
		}
	}
}

// After the wall clock steps back (NTP, or an L2 entry from a proxy whose
// clock runs ahead) an entry looks stored in the future. Its hit says Age
// 0; age_at_serve_ms must say 0 too, not a negative age cast to a uint64
// (1.8e19 ms in the +Inf bucket and the histogram's sum). Both places an
// age is recorded: a hit, and a partly cached batch's merged answer.
func TestAgeAtServeNeverNegative(t *testing.T) {
	t.Run("hit", func(t *testing.T) {
		hs := newHarness(t, chatConfig)
		body := chatBody("clock step")
		hs.post(0, "/v1/chat/completions", body)
		hs.clock.Set(hs.clock.Now().Add(-10 * time.Second))
		res := hs.post(1, "/v1/chat/completions", body)
		expectCacheStatus(t, res, "hit")
		if ages := hs.h.Histogram("modelcache_route.chat.age_at_serve_ms"); len(ages) != 1 || ages[0] != 0 {
			t.Fatalf("hit with Age %q recorded age_at_serve_ms %v, want [0]", hdr(res, "age"), ages)
		}
	})
	t.Run("partial batch", func(t *testing.T) {
		hs := newHarness(t, embConfig)
		hs.post(0, "/v1/embeddings", embReq([]string{"cached"}, ""))
		hs.clock.Set(hs.clock.Now().Add(-10 * time.Second))
		res := hs.post(1, "/v1/embeddings", embReq([]string{"cached", "new"}, ""))
		expectCacheStatus(t, res, "fwd=partial")
		if ages := hs.h.Histogram("modelcache_route.emb.age_at_serve_ms"); len(ages) != 1 || ages[0] != 0 {
			t.Fatalf("partly cached batch with Age %q recorded age_at_serve_ms %v, want [0]", hdr(res, "age"), ages)
		}
	})
}

// Review Z22. README "Staleness you can see": age_at_serve_ms is the "age of the
// entries served". An embeddings batch none of whose items is cached is a
// plain miss that serves no entry: whether or not it repeats an item, it
// must leave the histogram alone (a batch without repeats does).
func TestEmbeddingsMissWithARepeatedItemRecordsNoAgeAtServe(t *testing.T) {
	hs := newHarness(t, embConfig)
	plain := hs.post(0, "/v1/embeddings", embReq([]string{"alpha", "beta"}, ""))
	expectCacheStatus(t, plain, "fwd=miss")
	if ages := hs.h.Histogram("modelcache_route.emb.age_at_serve_ms"); len(ages) != 0 {
		t.Fatalf("plain miss recorded age_at_serve_ms %v", ages)
	}
	rep := hs.post(1, "/v1/embeddings", embReq([]string{"gamma", "gamma"}, ""))
	expectCacheStatus(t, rep, "fwd=miss")
	if got := hdr(rep, "x-modelcache-cached-items"); got != "0/2" {
		t.Logf("cached items %q", got)
	}
	got, _ := requestCounters(hs, "emb")
	if ages := hs.h.Histogram("modelcache_route.emb.age_at_serve_ms"); len(ages) != 0 {
		t.Fatalf("a batch served no cached item (Cache-Status %q, requests %s) yet age_at_serve_ms recorded %v: a miss counted as an entry served at age 0",
			hdr(rep, "cache-status"), fmtCounters(got), ages)
	}
}

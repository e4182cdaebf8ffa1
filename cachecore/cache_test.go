package cachecore

import (
	"bytes"
	"errors"
	"fmt"
	"math"
	"sort"
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

func TestBegin(t *testing.T) {
	tests := []struct {
		name       string
		route      string
		headers    [][2]string
		wantStatus Status
		wantReason Reason
		check      func(t *testing.T, req *Request)
	}{
		{name: "authorization is an identity", route: "chat", headers: alice, wantStatus: StatusMiss},
		{name: "x-api-key is an identity", route: "chat", headers: hdr("x-api-key", "k1"), wantStatus: StatusMiss},
		{name: "no identity bypasses", route: "chat", headers: noIdent, wantStatus: StatusBypass, wantReason: ReasonNoIdentity},
		{name: "blank identity bypasses", route: "chat", headers: hdr("authorization", "  ", "x-api-key", ""), wantStatus: StatusBypass, wantReason: ReasonNoIdentity},
		{name: "other headers are no identity", route: "chat", headers: hdr("cookie", "session=1", "x-user", "u"), wantStatus: StatusBypass, wantReason: ReasonNoIdentity},
		{name: "shared route needs no identity", route: "embed", headers: noIdent, wantStatus: StatusMiss},
		{name: "no-store bypasses", route: "chat", headers: hdr("authorization", "a", "cache-control", "no-store"), wantStatus: StatusBypass, wantReason: ReasonRequestNoStore},
		{name: "no-store wins over no identity", route: "chat", headers: hdr("cache-control", "no-store"), wantStatus: StatusBypass, wantReason: ReasonRequestNoStore},
		{name: "no-store on a shared route", route: "embed", headers: hdr("cache-control", "max-age=5, NO-STORE"), wantStatus: StatusBypass, wantReason: ReasonRequestNoStore},
		{name: "no-cache revalidates", route: "chat", headers: hdr("authorization", "a", "cache-control", "no-cache"), wantStatus: StatusRevalidate},
		{name: "pragma no-cache revalidates", route: "chat", headers: hdr("authorization", "a", "pragma", "No-Cache"), wantStatus: StatusRevalidate},
		{name: "no-cache without identity still bypasses", route: "chat", headers: hdr("cache-control", "no-cache"), wantStatus: StatusBypass, wantReason: ReasonNoIdentity},
		{
			name: "request directives are kept", route: "chat", wantStatus: StatusMiss,
			headers: hdr("authorization", "a", "cache-control", "max-age=60, min-fresh=5, max-stale, only-if-cached"),
			check: func(t *testing.T, req *Request) {
				want := RequestCC{MaxAge: time.Minute, HasMaxAge: true, MinFresh: 5 * time.Second, HasMinFresh: true, HasMaxStale: true, MaxStaleAny: true, OnlyIfCached: true}
				if req.CC != want {
					t.Errorf("CC = %+v, want %+v", req.CC, want)
				}
			},
		},
		{
			name: "route ignoring Cache-Control", route: "nocc", wantStatus: StatusMiss,
			headers: hdr("authorization", "a", "cache-control", "no-store, no-cache", "pragma", "no-cache"),
			check: func(t *testing.T, req *Request) {
				if req.CC != (RequestCC{}) {
					t.Errorf("CC = %+v", req.CC)
				}
			},
		},
	}
	env := newEnv(t, testConfig)
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := env.route(tc.route)
			req := env.cache.Begin(r, "POST", r.Exact, tc.headers)
			if req.Status != tc.wantStatus || req.Reason != tc.wantReason {
				t.Fatalf("Begin: %s/%s, want %s/%s", req.Status, req.Reason, tc.wantStatus, tc.wantReason)
			}
			if req.Bypassed() != (tc.wantStatus == StatusBypass) {
				t.Errorf("Bypassed() = %v", req.Bypassed())
			}
			if tc.check != nil {
				tc.check(t, req)
			}
		})
	}
}

// TestKeyIdentity: what does and does not change a request's key.
func TestKeyIdentity(t *testing.T) {
	base := chatRequest("What is the capital of France?")
	tests := []struct {
		name        string
		route       string
		headers     [][2]string
		body        string
		sameAsBase  bool
		baseOnRoute string // route of the base request (default: route)
		baseHeaders [][2]string
	}{
		{name: "identical", route: "chat", headers: alice, body: base, sameAsBase: true},
		{name: "key order and whitespace", route: "chat", headers: alice, sameAsBase: true,
			body: "{ \"temperature\": 0,\n \"messages\":[{\"content\":\"What is the capital of France?\",\"role\":\"user\"}], \"model\":\"gpt-4o-mini\" }"},
		{name: "float spelling of an integer", route: "chat", headers: alice, body: strings.Replace(base, `"temperature":0`, `"temperature":0.0`, 1)},
		{name: "ignored user field", route: "chat", headers: alice, sameAsBase: true,
			body: strings.Replace(base, `{`, `{"user":"u-42","metadata":{"trace":"x"},"store":true,`, 1)},
		{name: "other temperature", route: "chat", headers: alice, body: strings.Replace(base, `"temperature":0`, `"temperature":0.7`, 1)},
		{name: "other prompt", route: "chat", headers: alice, body: chatRequest("What is the capital of Spain?")},
		{name: "other model", route: "chat", headers: alice, body: strings.Replace(base, "gpt-4o-mini", "gpt-4o", 1)},
		{name: "other tenant", route: "chat", headers: bob, body: base},
		{name: "same secret under another header", route: "chat", headers: hdr("x-api-key", "Bearer sk-alice"), body: base},
		{name: "first identity header wins", route: "chat", headers: hdr("x-api-key", "other", "authorization", "Bearer sk-alice"), body: base, sameAsBase: true},
		{name: "other route", route: "sie", headers: alice, body: base, baseOnRoute: "chat"},
		{name: "shared route ignores tenants", route: "embed", headers: bob, body: `{"model":"e","input":"x"}`, sameAsBase: true, baseHeaders: alice},
		{name: "shared route without identity", route: "embed", headers: noIdent, body: `{"model":"e","input":"x"}`, sameAsBase: true, baseHeaders: alice},
	}
	env := newEnv(t, testConfig)
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			baseRoute, baseHeaders, baseBody := tc.route, alice, base
			if tc.baseOnRoute != "" {
				baseRoute = tc.baseOnRoute
			}
			if tc.baseHeaders != nil {
				baseHeaders = tc.baseHeaders
			}
			if tc.route == "embed" {
				baseBody = tc.body
			}
			a := env.request(baseRoute, baseHeaders, baseBody)
			b := env.request(tc.route, tc.headers, tc.body)
			if a.Bypassed() || b.Bypassed() {
				t.Fatalf("bypassed: %s / %s", a.Reason, b.Reason)
			}
			same := bytes.Equal(a.Key, b.Key)
			if same != tc.sameAsBase {
				t.Fatalf("same key = %v, want %v", same, tc.sameAsBase)
			}
			if same != (a.FP == b.FP) {
				t.Fatalf("fingerprints disagree with keys")
			}
		})
	}
}

func TestSetBody(t *testing.T) {
	tests := []struct {
		name       string
		route      string
		headers    [][2]string
		body       string
		wantReason Reason
		check      func(t *testing.T, req *Request)
	}{
		{name: "chat request", route: "chat", headers: alice, body: chatRequest("hi"), check: func(t *testing.T, req *Request) {
			if req.Model != "gpt-4o-mini" || req.Stream || len(req.Key) == 0 || req.FP == 0 || req.Body == nil {
				t.Errorf("req = %+v", req)
			}
		}},
		{name: "empty body", route: "chat", headers: alice, body: "", wantReason: ReasonNoBody},
		{name: "too large", route: "chat", headers: alice, body: chatRequest(strings.Repeat("x", 8192)), wantReason: ReasonBodyTooLarge},
		{name: "exactly max_request_bytes", route: "json", body: `{"x":"` + strings.Repeat("y", 8192-8) + `"}`},
		{name: "malformed", route: "chat", headers: alice, body: `{"model":"m",`, wantReason: ReasonMalformedJSON},
		{name: "not JSON at all", route: "chat", headers: alice, body: `model=gpt`, wantReason: ReasonMalformedJSON},
		{name: "duplicate key", route: "chat", headers: alice, body: `{"model":"a","model":"b"}`, wantReason: ReasonDuplicateKey},
		{name: "too deep", route: "json", body: `{"x":` + strings.Repeat("[", 70) + strings.Repeat("]", 70) + `}`, wantReason: ReasonTooDeep},
		{name: "absurd exponent", route: "json", body: `{"x":1e99999999}`, wantReason: ReasonNumberRange},
		{name: "stream on chat is cached (streams are recorded)", route: "chat", headers: alice, body: `{"model":"m","stream":true,"messages":[]}`},
		{name: "stream false on chat", route: "chat", headers: alice, body: `{"model":"m","stream":false,"messages":[]}`},
		{name: "stream on a json route", route: "json", body: `{"model":"m","stream":true}`, check: func(t *testing.T, req *Request) {
			if !req.Stream {
				t.Errorf("Stream = false")
			}
		}},
		{name: "no model", route: "json", body: `{"input":"x"}`, check: func(t *testing.T, req *Request) {
			if req.Model != "" {
				t.Errorf("Model = %q", req.Model)
			}
		}},
		{name: "already bypassed", route: "chat", headers: noIdent, body: chatRequest("hi"), wantReason: ReasonNoIdentity, check: func(t *testing.T, req *Request) {
			if req.Key != nil || req.Body != nil {
				t.Errorf("a bypassed request was keyed")
			}
		}},
	}
	env := newEnv(t, testConfig)
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			req := env.request(tc.route, tc.headers, tc.body)
			if req.Reason != tc.wantReason || req.Bypassed() != (tc.wantReason != ReasonNone) {
				t.Fatalf("status %s reason %s, want reason %s", req.Status, req.Reason, tc.wantReason)
			}
			if tc.check != nil {
				tc.check(t, req)
			}
		})
	}
}

// TestStreamModeIsPartOfKey: a recorded event stream must never answer a
// request for a JSON body, nor the reverse (sse.go: "stream: true and
// stream: false requests never share an entry: stream is part of the
// key") — whatever key_fields selects.
func TestStreamModeIsPartOfKey(t *testing.T) {
	for _, tc := range []struct{ name, members string }{
		{"kind defaults", ``},
		{"key_fields without stream", `,"key_fields":["model","messages"]`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			env := newEnv(t, `{"routes":[{"name":"chat","kind":"chat","path_prefix":"/v1"`+tc.members+`}]}`)
			streaming := env.request("chat", alice, `{"model":"m","messages":[{"role":"user","content":"hi"}],"stream":true}`)
			plain := env.request("chat", alice, `{"model":"m","messages":[{"role":"user","content":"hi"}],"stream":false}`)
			if !streaming.Stream || plain.Stream || streaming.Bypassed() || plain.Bypassed() {
				t.Fatalf("requests: stream %v/%v, bypass %s/%s", streaming.Stream, plain.Stream, streaming.Reason, plain.Reason)
			}
			if bytes.Equal(streaming.Key, plain.Key) {
				t.Fatalf("stream:true and stream:false share a key: a recorded event stream would answer a JSON request")
			}
		})
	}
}

// TestMissStoreHit walks one key through its life: miss, store, hit with
// Age and Cache-Status, across tenants.
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

func TestHitResponseCustomCacheName(t *testing.T) {
	env := newEnv(t, `{"cache_name":"edge-1","routes":[{"name":"j","kind":"json","path_prefix":"/j","shared":true,"ttl":"90s"}]}`)
	req, _ := env.lookup("j", nil, `{"q":1}`)
	env.fill(req, hdr("content-type", "application/problem+json"), `{"a":1}`, 0)
	req, _ = env.lookup("j", nil, `{"q":1}`)
	_, headers, _ := env.cache.HitResponse(req)
	if got := headerValue(headers, "cache-status"); got != "edge-1; hit; ttl=90" {
		t.Fatalf("cache-status %q", got)
	}
	if got := headerValue(headers, "content-type"); got != "application/problem+json" {
		t.Fatalf("content-type %q", got)
	}
}

// TestFreshness: TTL, stale-while-revalidate, stale-if-error and the
// client's Cache-Control, on an entry stored with a 300 s TTL.
func TestFreshness(t *testing.T) {
	ms := time.Millisecond
	tests := []struct {
		name      string
		route     string // chat: SWR 30 s; sie: stale-if-error 60 s; nocc: ignores Cache-Control
		after     time.Duration
		cc        string
		extra     [][2]string
		want      Decision
		status    Status
		wantEntry bool
	}{
		{"fresh", "chat", 0, "", nil, Serve, StatusHit, true},
		{"last fresh millisecond", "chat", 300*time.Second - ms, "", nil, Serve, StatusHit, true},
		{"stale within SWR", "chat", 300 * time.Second, "", nil, Serve, StatusStale, true},
		{"end of SWR", "chat", 330*time.Second - ms, "", nil, Serve, StatusStale, true},
		{"past SWR", "chat", 330 * time.Second, "", nil, Forward, StatusMiss, false},
		{"max-age satisfied", "chat", 60 * time.Second, "max-age=60", nil, Serve, StatusHit, true},
		{"max-age exceeded", "chat", 60*time.Second + ms, "max-age=60", nil, Forward, StatusMiss, true},
		{"max-age=0 at age 0", "chat", 0, "max-age=0", nil, Serve, StatusHit, true},
		{"max-age=0 at age 1 s", "chat", time.Second, "max-age=0", nil, Forward, StatusMiss, true},
		{"malformed max-age is 0", "chat", time.Second, "max-age=soon", nil, Forward, StatusMiss, true},
		{"large max-age does not extend freshness", "chat", 310 * time.Second, "max-age=600", nil, Serve, StatusStale, true},
		{"max-age refuses SWR", "chat", 310 * time.Second, "max-age=10", nil, Forward, StatusMiss, true},
		{"min-fresh satisfied", "chat", 100 * time.Second, "min-fresh=200", nil, Serve, StatusHit, true},
		{"min-fresh not satisfied", "chat", 100*time.Second + ms, "min-fresh=200", nil, Forward, StatusMiss, true},
		{"min-fresh refuses SWR", "chat", 305 * time.Second, "min-fresh=1", nil, Forward, StatusMiss, true},
		{"only-if-cached fresh", "chat", 0, "only-if-cached", nil, Serve, StatusHit, true},
		{"only-if-cached stale within SWR", "chat", 310 * time.Second, "only-if-cached", nil, Serve, StatusStale, true},
		{"only-if-cached and nothing usable", "chat", 330 * time.Second, "only-if-cached", nil, Unavailable, StatusUnavailable, false},
		{"only-if-cached and too old", "chat", 100 * time.Second, "only-if-cached, max-age=10", nil, Unavailable, StatusUnavailable, true},
		{"no-cache skips the lookup", "chat", 0, "no-cache", nil, Forward, StatusRevalidate, false},
		{"pragma no-cache skips the lookup", "chat", 0, "", hdr("pragma", "no-cache"), Forward, StatusRevalidate, false},
		{"stale kept for stale-if-error", "sie", 310 * time.Second, "", nil, Forward, StatusMiss, true},
		{"max-stale without value", "sie", 310 * time.Second, "max-stale", nil, Serve, StatusStale, true},
		{"max-stale enough", "sie", 310 * time.Second, "max-stale=10", nil, Serve, StatusStale, true},
		{"max-stale too little", "sie", 310 * time.Second, "max-stale=9", nil, Forward, StatusMiss, true},
		{"max-stale past the stale window", "sie", 360 * time.Second, "max-stale", nil, Forward, StatusMiss, false},
		{"no SWR on a stale-if-error route", "sie", 300 * time.Second, "", nil, Forward, StatusMiss, true},
		{"Cache-Control ignored", "nocc", 0, "no-cache, max-age=0", nil, Serve, StatusHit, true},
		{"Cache-Control ignored when stale", "nocc", 301 * time.Second, "max-stale", nil, Forward, StatusMiss, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			env := newEnv(t, testConfig)
			body := chatRequest("freshness")
			req, _ := env.lookup(tc.route, alice, body)
			env.fill(req, jsonCT, chatResponse("ok"), 10)
			env.clock.Advance(tc.after)
			h := append(hdr("authorization", "Bearer sk-alice", "cache-control", tc.cc), tc.extra...)
			req, d := env.lookup(tc.route, h, body)
			if d != tc.want || req.Status != tc.status {
				t.Fatalf("Lookup = %v/%s, want %v/%s", d, req.Status, tc.want, tc.status)
			}
			if (req.Entry != nil) != tc.wantEntry {
				t.Fatalf("entry kept = %v, want %v", req.Entry != nil, tc.wantEntry)
			}
		})
	}
}

func TestOnlyIfCachedMiss(t *testing.T) {
	env := newEnv(t, testConfig)
	req, d := env.lookup("chat", hdr("authorization", "a", "cache-control", "only-if-cached"), chatRequest("never stored"))
	if d != Unavailable || req.Status != StatusUnavailable {
		t.Fatalf("Lookup = %v/%s", d, req.Status)
	}
	var cs CacheStatus
	cs.Status = req.Status
	if got := string(cs.AppendHeader(nil, "modelcache")); got != "modelcache; fwd=miss; detail=only-if-cached" {
		t.Fatalf("cache-status %q", got)
	}
}

// TestOnlyIfCachedNeverForwards: only-if-cached means "answer 504 rather
// than go upstream" (RequestCC, RFC 9111 §5.2.1.7) — for a paid model API
// it is a cost guard. It must hold whatever else makes the cache unable to
// answer: no-cache, no identity, an unkeyable body.
func TestOnlyIfCachedNeverForwards(t *testing.T) {
	tests := []struct {
		name    string
		headers [][2]string
		body    string
	}{
		{"with no-cache", hdr("authorization", "a", "cache-control", "only-if-cached, no-cache"), chatRequest("q")},
		{"without identity", hdr("cache-control", "only-if-cached"), chatRequest("q")},
		{"with a malformed body", hdr("authorization", "a", "cache-control", "only-if-cached"), `{"model":`},
		{"with a body too large", hdr("authorization", "a", "cache-control", "only-if-cached"), chatRequest(strings.Repeat("x", 9000))},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			env := newEnv(t, testConfig)
			// The answer is cached for the well-formed request, to show the
			// cache would rather go upstream than use it.
			req, _ := env.lookup("chat", hdr("authorization", "a"), chatRequest("q"))
			env.fill(req, jsonCT, chatResponse("cached"), 1)
			req, d := env.lookup("chat", tc.headers, tc.body)
			if d == Forward {
				t.Fatalf("Lookup = Forward (status %s, reason %s): an only-if-cached request goes upstream", req.Status, req.Reason)
			}
		})
	}
}

func TestHitResponseStale(t *testing.T) {
	env := newEnv(t, testConfig)
	body := chatRequest("stale")
	req, _ := env.lookup("chat", alice, body)
	env.fill(req, jsonCT, chatResponse("ok"), 10)
	stored := env.clock.Now()
	for _, tc := range []struct {
		after      time.Duration
		age, cache string
	}{
		{300 * time.Second, "300", "modelcache; hit; fwd=stale; ttl=0"},
		{300*time.Second + 500*time.Millisecond, "300", "modelcache; hit; fwd=stale; ttl=-1"},
		{312 * time.Second, "312", "modelcache; hit; fwd=stale; ttl=-12"},
	} {
		t.Run(tc.after.String(), func(t *testing.T) {
			env.clock.Set(stored.Add(tc.after))
			req, d := env.lookup("chat", alice, body)
			if d != Serve || req.Status != StatusStale {
				t.Fatalf("Lookup = %v/%s", d, req.Status)
			}
			_, headers, _ := env.cache.HitResponse(req)
			if headerValue(headers, "age") != tc.age || headerValue(headers, "cache-status") != tc.cache {
				t.Fatalf("headers %q", headers)
			}
		})
	}
}

// hitFor stores a response for route with the given XFetch δ and returns a
// fresh hit on it.
func hitFor(t *testing.T, env *testEnv, route string, computeMs uint32) *Request {
	t.Helper()
	body := chatRequest("xfetch " + route)
	req, _ := env.lookup(route, alice, body)
	env.fill(req, jsonCT, chatResponse("ok"), computeMs)
	req, d := env.lookup(route, alice, body)
	if d != Serve || req.Status != StatusHit {
		t.Fatalf("no hit: %v %s", d, req.Status)
	}
	return req
}

// at moves the clock to `remaining` before the entry's expiry.
func at(env *testEnv, req *Request, remaining time.Duration) {
	env.clock.Set(time.UnixMilli(req.Entry.FreshUntil).Add(-remaining))
}

func TestEarlyRefresh(t *testing.T) {
	const delta = 1000 // ms: how long the upstream took

	t.Run("never without early_refresh", func(t *testing.T) {
		env := newEnv(t, testConfig)
		req := hitFor(t, env, "sie", delta)
		for i := 0; i < 1000; i++ {
			at(env, req, time.Millisecond)
			if env.cache.EarlyRefresh(req) {
				t.Fatal("refresh on a route without early_refresh")
			}
		}
	})
	t.Run("never for a stale hit or a miss", func(t *testing.T) {
		env := newEnv(t, testConfig)
		req := hitFor(t, env, "chat", delta)
		env.clock.Set(time.UnixMilli(req.Entry.FreshUntil).Add(time.Second))
		req, d := env.lookup("chat", alice, chatRequest("xfetch chat"))
		if d != Serve || req.Status != StatusStale {
			t.Fatalf("not stale: %s", req.Status)
		}
		miss, _ := env.lookup("chat", alice, chatRequest("other"))
		for i := 0; i < 1000; i++ {
			if env.cache.EarlyRefresh(req) || env.cache.EarlyRefresh(miss) {
				t.Fatal("early refresh of a stale hit or a miss")
			}
		}
	})
	t.Run("never for a zero recompute time", func(t *testing.T) {
		env := newEnv(t, testConfig)
		req := hitFor(t, env, "chat", 0)
		for _, remaining := range []time.Duration{time.Millisecond, time.Second, time.Minute} {
			at(env, req, remaining)
			for i := 0; i < 1000; i++ {
				if env.cache.EarlyRefresh(req) {
					t.Fatalf("refresh with δ=0 at %v before expiry", remaining)
				}
			}
		}
	})
	t.Run("bounded by the smallest draw", func(t *testing.T) {
		// U is at least 2^-53, so the gap is at most δ·β·53·ln 2 ≈ 36.74 δβ.
		ln2 := math.Ln2
		bound := time.Duration(delta * 53 * ln2 * float64(time.Millisecond))
		for _, tc := range []struct {
			name  string
			rand  func() uint64
			route string
			beta  float64
		}{
			{"smallest U, beta 1", func() uint64 { return 0 }, "chat", 1},
			{"smallest U, beta 2", func() uint64 { return 0 }, "beta2", 2},
		} {
			t.Run(tc.name, func(t *testing.T) {
				env := newEnv(t, testConfig)
				req := hitFor(t, env, tc.route, delta)
				env.cache.rand = tc.rand // after storing: a generation is never 0
				b := time.Duration(float64(bound) * tc.beta)
				at(env, req, b+2*time.Millisecond)
				if env.cache.EarlyRefresh(req) {
					t.Errorf("refresh %v before expiry, beyond the bound %v", b+2*time.Millisecond, b)
				}
				at(env, req, b-2*time.Millisecond)
				if !env.cache.EarlyRefresh(req) {
					t.Errorf("no refresh %v before expiry with the smallest U", b-2*time.Millisecond)
				}
			})
		}
	})
	t.Run("largest draw never refreshes a fresh entry", func(t *testing.T) {
		env := newEnv(t, testConfig)
		req := hitFor(t, env, "chat", delta)
		env.cache.rand = func() uint64 { return math.MaxUint64 } // U = 1, ln U = 0
		at(env, req, time.Millisecond)
		if env.cache.EarlyRefresh(req) {
			t.Fatal("refresh with U = 1")
		}
	})
	t.Run("probability rises as expiry nears", func(t *testing.T) {
		// P(refresh at r before expiry) = P(-δβ ln U ≥ r) = exp(-r/(δβ)).
		for _, tc := range []struct {
			route string
			beta  float64
		}{{"chat", 1}, {"beta2", 2}} {
			t.Run(tc.route, func(t *testing.T) {
				env := newEnv(t, testConfig)
				req := hitFor(t, env, tc.route, delta)
				const n = 4000
				prev := -1.0
				for _, r := range []float64{8000, 5000, 3000, 2000, 1000, 500, 100, 1} {
					at(env, req, time.Duration(r)*time.Millisecond)
					k := 0
					for i := 0; i < n; i++ {
						if env.cache.EarlyRefresh(req) {
							k++
						}
					}
					p := float64(k) / n
					want := math.Exp(-r / (delta * tc.beta))
					if math.Abs(p-want) > 0.03 {
						t.Errorf("r=%vms: P = %.3f, want %.3f", r, p, want)
					}
					if p < prev {
						t.Errorf("r=%vms: P fell from %.3f to %.3f", r, prev, p)
					}
					prev = p
				}
			})
		}
	})
	t.Run("first refresh of a hot key", func(t *testing.T) {
		// One hit every h ms. The first refresh comes at R ms before expiry
		// with P(R < r) = exp(-(δ/h)·e^(-r/δ)): a Gumbel law with location
		// δ·ln(δ/h), scale δ, mean δ·(ln(δ/h) + γ).
		const (
			h      = 10
			trials = 400
			gamma  = 0.5772156649
		)
		env := newEnv(t, testConfig)
		req := hitFor(t, env, "chat", delta)
		mu := delta * math.Log(delta/h)
		var firsts []float64
		for trial := 0; trial < trials; trial++ {
			remaining := 20 * delta
			for {
				at(env, req, time.Duration(remaining)*time.Millisecond)
				if env.cache.EarlyRefresh(req) {
					break
				}
				remaining -= h
				if remaining < 0 {
					t.Fatal("no refresh by expiry")
				}
			}
			firsts = append(firsts, float64(remaining))
		}
		sort.Float64s(firsts)
		mean := 0.0
		for _, f := range firsts {
			mean += f
		}
		mean /= trials
		quantile := func(q float64) float64 { return firsts[int(q*trials)] }
		wantMean := mu + gamma*delta
		t.Logf("first refresh before expiry: mean %.0f ms (want %.0f), 5%% %.0f ms, median %.0f ms, 95%% %.0f ms",
			mean, wantMean, quantile(0.05), quantile(0.5), quantile(0.95))
		if math.Abs(mean-wantMean) > 0.3*delta {
			t.Errorf("mean %.0f ms before expiry, want %.0f ± %d", mean, wantMean, int(0.3*delta))
		}
		gumbel := func(q float64) float64 { return mu - delta*math.Log(-math.Log(q)) }
		for _, q := range []float64{0.05, 0.5, 0.95} {
			if got, want := quantile(q), gumbel(q); math.Abs(got-want) > 0.6*delta {
				t.Errorf("%.0f%% quantile %.0f ms, want %.0f ms", q*100, got, want)
			}
		}
	})
}

func TestModelVersionChange(t *testing.T) {
	env := newEnv(t, testConfig)
	promptA, promptB := chatRequest("A"), chatRequest("B")
	answer := chatResponse("same answer")
	v := func(version string) [][2]string {
		return hdr("content-type", "application/json", "x-model-version", version)
	}

	req, _ := env.lookup("versioned", alice, promptA)
	if res := env.fill(req, v("v1"), answer, 10); res.VersionChanged || res.Version != "v1" {
		t.Fatalf("first store: %+v", res)
	}
	req, d := env.lookup("versioned", alice, promptA)
	if d != Serve {
		t.Fatalf("A not cached under v1")
	}
	if _, headers, _ := env.cache.HitResponse(req); headerValue(headers, "x-model-version") != "v1" {
		t.Fatalf("version header not replayed: %q", headers)
	}

	// B's answer comes from v2: the model moved on.
	req, _ = env.lookup("versioned", alice, promptB)
	if res := env.fill(req, v("v2"), answer, 10); !res.VersionChanged || res.Version != "v2" {
		t.Fatalf("store under v2: %+v", res)
	}
	if n, _ := env.cache.Table().Occupied(); n != 2 {
		t.Fatalf("occupied %d: A's v1 entry should still be in the table", n)
	}
	if req, d := env.lookup("versioned", alice, promptA); d != Forward || req.Entry != nil {
		t.Fatalf("A's v1 entry served after the switch to v2 (identical body)")
	}
	if _, d := env.lookup("versioned", alice, promptB); d != Serve {
		t.Fatalf("B not cached under v2")
	}
	req, _ = env.lookup("versioned", alice, promptA)
	if res := env.fill(req, v("v2"), answer, 10); res.VersionChanged {
		t.Fatalf("same version reported as a change: %+v", res)
	}
	if _, d := env.lookup("versioned", alice, promptA); d != Serve {
		t.Fatalf("A not cached under v2")
	}

	t.Run("version from the body", func(t *testing.T) {
		resp := func(fp string) string {
			return strings.Replace(answer, `{"id"`, `{"system_fingerprint":"`+fp+`","id"`, 1)
		}
		req, _ := env.lookup("fingerprinted", alice, promptA)
		if res := env.fill(req, jsonCT, resp("fp_1"), 10); res.Version != "fp_1" || res.VersionChanged {
			t.Fatalf("fp_1: %+v", res)
		}
		req, _ = env.lookup("fingerprinted", alice, promptB)
		if res := env.fill(req, jsonCT, resp("fp_2"), 10); !res.VersionChanged {
			t.Fatalf("fp_2: %+v", res)
		}
		if _, d := env.lookup("fingerprinted", alice, promptA); d != Forward {
			t.Fatalf("fp_1 entry served after fp_2")
		}
	})
}

func TestObserveVersion(t *testing.T) {
	env := newEnv(t, testConfig)
	c := env.cache
	long := strings.Repeat("v", 100)
	steps := []struct {
		version     string
		wantChanged bool
		wantStored  string
	}{
		{"", false, ""},
		{"v1", false, "v1"}, // a first version is not a change
		{"v1", false, "v1"},
		{"v2", true, "v2"},
		{long, true, long},
		{long[:maxVersionLen] + "different tail", true, long[:maxVersionLen] + "different tail"},
		{long[:maxVersionLen] + "different tail", false, long[:maxVersionLen] + "different tail"},
	}
	var gen uint64
	for i, s := range steps {
		st, changed, err := c.ObserveVersion("versioned", "m", s.version, 0)
		if err != nil || !st.Found || changed != s.wantChanged || st.Version != versionID(s.wantStored) {
			t.Fatalf("step %d (%q): %+v changed=%v err=%v", i, s.version, st, changed, err)
		}
		if i > 0 && st.Gen != gen {
			t.Fatalf("step %d: a version change moved the generation", i)
		}
		gen = st.Gen
	}
	last := steps[len(steps)-1].wantStored
	if st, _ := c.loadModel("versioned", "m"); st.Version != versionID(last) || st.Gen != gen {
		t.Fatalf("loadModel = %+v", st)
	}
	if st, _ := c.loadModel("versioned", "other"); st.Found {
		t.Fatalf("unrelated model found: %+v", st)
	}
}

func TestPurgeModel(t *testing.T) {
	env := newEnv(t, testConfig)
	m1 := chatRequest("q")
	m2 := strings.Replace(m1, "gpt-4o-mini", "gpt-4o", 1)
	for _, who := range [][][2]string{alice, bob} {
		for _, body := range []string{m1, m2} {
			req, _ := env.lookup("chat", who, body)
			env.fill(req, jsonCT, chatResponse("a"), 10)
		}
	}
	req, _ := env.lookup("sie", alice, m1)
	env.fill(req, jsonCT, chatResponse("a"), 10)

	if err := env.cache.PurgeModel("chat", "gpt-4o-mini"); err != nil {
		t.Fatal(err)
	}
	for _, who := range [][][2]string{alice, bob} {
		if _, d := env.lookup("chat", who, m1); d != Forward {
			t.Errorf("purged model still served")
		}
		if _, d := env.lookup("chat", who, m2); d != Serve {
			t.Errorf("other model purged too")
		}
	}
	if _, d := env.lookup("sie", alice, m1); d != Serve {
		t.Errorf("same model on another route purged too")
	}
	req, _ = env.lookup("chat", alice, m1)
	env.fill(req, jsonCT, chatResponse("b"), 10)
	if req, d := env.lookup("chat", alice, m1); d != Serve || !strings.Contains(string(req.Entry.Body), `"b"`) {
		t.Errorf("not cacheable again after a purge")
	}
	if err := env.cache.PurgeModel("chat", "never-seen"); err != nil {
		t.Errorf("purge of an unknown model: %v", err)
	}
}

// TestModelTableBounded: the model table is a fixed set of keys. A slot
// full of live records refuses a new model (model_table_full) rather than
// forget a live one; once records are dead, a new model reclaims one, and
// the reclaimed model comes back with a new generation, never with its old
// entries.
func TestModelTableBounded(t *testing.T) {
	env := newEnv(t, testConfig)
	models := sameModelSlot(t, env.cache, "chat", modelsPerSlot+1)
	body := func(model string) string { return withModel(chatRequest("q"), model) }
	req, _ := env.lookup("chat", alice, body(models[0]))
	env.fill(req, jsonCT, chatResponse("first"), 10)
	first, _ := env.cache.loadModel("chat", models[0])
	for _, m := range models[1:modelsPerSlot] {
		req, _ := env.lookup("chat", bob, body(m))
		env.fill(req, jsonCT, chatResponse(m), 10)
	}
	extra := models[modelsPerSlot]
	req, _ = env.lookup("chat", bob, body(extra))
	adm := env.cache.AdmitBody(req, jsonCT, []byte(chatResponse("x")))
	if res := env.cache.Store(req, 200, jsonCT, []byte(chatResponse("x")), adm, 1); res.Reason != ReasonModelTableFull {
		t.Fatalf("store of a new model into a slot of live records: %s", res.Reason)
	}
	if req, d := env.lookup("chat", alice, body(models[0])); d != Serve || !strings.Contains(string(req.Entry.Body), "first") {
		t.Fatalf("a live model was forgotten")
	}
	if err := env.cache.PurgeModel("chat", extra); err != nil {
		t.Fatalf("purge of an unknown model in a full slot: %v", err)
	}

	// Every entry dies (TTL 5m, stale-while-revalidate 30s): the records
	// become reclaimable.
	env.clock.Advance(time.Hour)
	req, _ = env.lookup("chat", bob, body(extra))
	env.fill(req, jsonCT, chatResponse("extra"), 10)
	if st, _ := env.cache.loadModel("chat", models[0]); st.Found {
		t.Fatalf("the first model to die was not the one reclaimed")
	}
	req, _ = env.lookup("chat", alice, body(models[0]))
	if req.Entry != nil {
		t.Fatalf("entry of a reclaimed model found")
	}
	if res := env.cache.Store(req, 200, jsonCT, []byte(chatResponse("second")), env.cache.AdmitBody(req, jsonCT, []byte(chatResponse("second"))), 1); res.Reason != ReasonNone {
		t.Fatalf("store after reclaim: %s", res.Reason)
	}
	st, _ := env.cache.loadModel("chat", models[0])
	if !st.Found || st.Gen == first.Gen {
		t.Fatalf("model came back with its old generation")
	}
	if req, _ := env.lookup("chat", alice, body(models[0])); req.Entry == nil || !strings.Contains(string(req.Entry.Body), "second") {
		t.Fatalf("re-stored entry not served")
	}
	if n, limit := env.store.Keys(), 2+modelSlots+16+16*4; n > limit {
		t.Fatalf("store holds %d keys, bound %d", n, limit)
	}
}

// TestModelTableHammer: 8 Caches race ObserveVersion and PurgeModel on a
// few models. A purge that returned nil is never undone by a racing
// writer (the generation a worker sees after its purge differs from the
// one before), and no slot ever holds two records for one model.
func TestModelTableHammer(t *testing.T) {
	const workers, ops = 8, 300
	if testing.Short() {
		t.Skip("hammer")
	}
	cfg := mustParse(t, testConfig)
	store := NewMemStore()
	models := []string{"a", "b", "c"}
	hammer.Run(t, workers, func(w int) error {
		c := New(cfg, Options{Store: store, Rand: seededRand(uint64(1000 + w))})
		r := seededRand(uint64(w))
		for i := 0; i < ops; i++ {
			m := models[r()%uint64(len(models))]
			if r()%2 == 0 {
				_, _, err := c.ObserveVersion("versioned", m, "v"+strconv.Itoa(int(r()%3)), 0)
				if err != nil && !errors.Is(err, ErrContention) {
					return err
				}
				continue
			}
			before, err := c.loadModel("versioned", m)
			if err != nil {
				return err
			}
			err = c.PurgeModel("versioned", m)
			if errors.Is(err, ErrContention) {
				continue
			}
			if err != nil {
				return err
			}
			after, _ := c.loadModel("versioned", m)
			if !after.Found || after.Gen == before.Gen {
				return fmt.Errorf("worker %d: purge of %s lost: gen %x before and after", w, m, before.Gen)
			}
		}
		return nil
	})
	for slot := 0; slot < modelSlots; slot++ {
		raw, _, err := store.Get("mc:m:" + strconv.Itoa(slot))
		if errors.Is(err, ErrNotFound) {
			continue
		}
		recs := decodeModels(raw)
		if recs == nil || len(recs) > modelsPerSlot {
			t.Fatalf("slot %d: %d records (%q)", slot, len(recs), raw)
		}
		ids := map[uint64]bool{}
		for _, r := range recs {
			if ids[r.id] {
				t.Fatalf("slot %d holds model %x twice", slot, r.id)
			}
			ids[r.id] = true
		}
	}
}

func TestIsPurge(t *testing.T) {
	env := newEnv(t, testConfig)
	for _, tc := range []struct {
		path string
		want bool
	}{
		{"/_modelcache/purge", true},
		{"/_modelcache/purge?all=1", true},
		{"/_modelcache/purge/", false},
		{"/_modelcache", false},
		{"/v1/chat/completions", false},
	} {
		if got := env.cache.IsPurge("POST", tc.path); got != tc.want {
			t.Errorf("IsPurge(%q) = %v", tc.path, got)
		}
	}
	off := newEnv(t, minimalChat)
	if off.cache.IsPurge("POST", "") || off.cache.IsPurge("POST", "/") {
		t.Errorf("purge API exists without a token")
	}
}

func TestPurgeAuthorized(t *testing.T) {
	env := newEnv(t, testConfig)
	tests := []struct {
		name    string
		headers [][2]string
		want    bool
	}{
		{"exact bearer token", hdr("authorization", "Bearer "+purgeToken), true},
		{"scheme is case-insensitive", hdr("authorization", "bEARER "+purgeToken), true},
		{"surrounding spaces", hdr("authorization", "Bearer   "+purgeToken+" "), true},
		{"no header", nil, false},
		{"other header", hdr("x-api-key", purgeToken), false},
		{"token alone", hdr("authorization", purgeToken), false},
		{"basic scheme", hdr("authorization", "Basic "+purgeToken), false},
		{"bearer without token", hdr("authorization", "Bearer "), false},
		{"bearer only", hdr("authorization", "Bearer"), false},
		{"prefix of the token", hdr("authorization", "Bearer "+purgeToken[:len(purgeToken)-1]), false},
		{"token plus a character", hdr("authorization", "Bearer "+purgeToken+"x"), false},
		{"token in other case", hdr("authorization", "Bearer "+strings.ToUpper(purgeToken)), false},
		{"token with an inner space", hdr("authorization", "Bearer "+purgeToken[:4]+" "+purgeToken[4:]), false},
		{"second authorization header not consulted", hdr("authorization", "Bearer wrong", "authorization", "Bearer "+purgeToken), false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := env.cache.PurgeAuthorized(tc.headers); got != tc.want {
				t.Fatalf("PurgeAuthorized = %v, want %v", got, tc.want)
			}
		})
	}
}

// TestPurgeAuthorizedWithoutToken: with no purge token configured there is
// no purge API, and no header may authorize one.
func TestPurgeAuthorizedWithoutToken(t *testing.T) {
	env := newEnv(t, minimalChat)
	for _, v := range []string{"Bearer ", "Bearer    ", "bearer \t"} {
		if env.cache.PurgeAuthorized(hdr("authorization", v)) {
			t.Errorf("PurgeAuthorized(%q) = true with no token configured", v)
		}
	}
}

func TestPurge(t *testing.T) {
	q1, q2 := chatRequest("one"), chatRequest("two")
	// fillAll stores alice/q1, alice/q2, bob/q1 on chat and one embedding.
	fillAll := func(t *testing.T) *testEnv {
		env := newEnv(t, testConfig)
		for _, c := range []struct {
			who  [][2]string
			body string
		}{{alice, q1}, {alice, q2}, {bob, q1}} {
			req, _ := env.lookup("chat", c.who, c.body)
			env.fill(req, jsonCT, chatResponse("x"), 10)
		}
		req, _ := env.lookup("embed", nil, `{"model":"e","input":"x"}`)
		env.fill(req, jsonCT, `{"object":"list","data":[{"object":"embedding","index":0,"embedding":[0.1]}]}`, 10)
		return env
	}
	served := func(env *testEnv, route string, who [][2]string, body string) bool {
		_, d := env.lookup(route, who, body)
		return d == Serve
	}
	tests := []struct {
		name      string
		body      string
		want      PurgeResult
		aliceQ1   bool // still served afterwards
		aliceQ2   bool
		bobQ1     bool
		embedding bool
	}{
		{"all", `{"all":true}`, PurgeResult{"all", 4}, false, false, false, false},
		{"model", `{"route":"chat","model":"gpt-4o-mini"}`, PurgeResult{"model", 0}, false, false, false, true},
		{"model on another route", `{"route":"sie","model":"gpt-4o-mini"}`, PurgeResult{"model", 0}, true, true, true, true},
		{"entry by replay", `{"method":"POST","path":"/v1/chat/completions","headers":{"Authorization":"Bearer sk-alice"},"body":` + q1 + `}`,
			PurgeResult{"entry", 1}, false, true, true, true},
		{"entry by replay, default method, reordered body", `{"path":"/v1/chat/completions","headers":{"authorization":"Bearer sk-bob"},` +
			`"body":{"temperature":0,"messages":[{"content":"one","role":"user"}],"model":"gpt-4o-mini","user":"ignored"}}`,
			PurgeResult{"entry", 1}, true, true, false, true},
		{"entry by replay, shared route", `{"path":"/v1/embeddings","body":{"model":"e","input":"x"}}`, PurgeResult{"entry", 1}, true, true, true, false},
		{"entry never stored", `{"path":"/v1/chat/completions","headers":{"authorization":"Bearer sk-alice"},"body":` + chatRequest("three") + `}`,
			PurgeResult{"entry", 0}, true, true, true, true},
		{"entry of an unknown model", `{"path":"/v1/chat/completions","headers":{"authorization":"Bearer sk-alice"},"body":{"model":"nope"}}`,
			PurgeResult{"entry", 0}, true, true, true, true},
		{"replay with no-cache still purges", `{"path":"/v1/chat/completions","headers":{"authorization":"Bearer sk-alice","cache-control":"no-cache"},"body":` + q2 + `}`,
			PurgeResult{"entry", 1}, true, false, true, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			env := fillAll(t)
			got, err := env.cache.Purge([]byte(tc.body), "")
			if err != nil || got != tc.want {
				t.Fatalf("Purge = %+v, %v; want %+v", got, err, tc.want)
			}
			if served(env, "chat", alice, q1) != tc.aliceQ1 || served(env, "chat", alice, q2) != tc.aliceQ2 ||
				served(env, "chat", bob, q1) != tc.bobQ1 || served(env, "embed", nil, `{"model":"e","input":"x"}`) != tc.embedding {
				t.Fatalf("wrong entries left: alice/q1 %v alice/q2 %v bob/q1 %v embedding %v",
					served(env, "chat", alice, q1), served(env, "chat", alice, q2), served(env, "chat", bob, q1),
					served(env, "embed", nil, `{"model":"e","input":"x"}`))
			}
		})
	}

	bad := []struct {
		name, body, want string
	}{
		{"not JSON", `all=true`, "not JSON"},
		{"empty object", `{}`, "expected"},
		{"all false", `{"all":false}`, "expected"},
		{"model without route", `{"model":"gpt-4o-mini"}`, `unknown route ""`},
		{"unknown route", `{"route":"nope","model":"m"}`, `unknown route "nope"`},
		{"no route for the replay", `{"path":"/nope","body":{}}`, "no route matches POST /nope"},
		{"method not cached", `{"method":"GET","path":"/v1/chat/completions","body":{}}`, "no route matches GET"},
		{"replay that would bypass", `{"path":"/v1/chat/completions","headers":{"authorization":"a"},"body":{"model":"m","model":"n"}}`, "duplicate_key"},
		{"replay without identity", `{"path":"/v1/chat/completions","body":` + q1 + `}`, "no_identity"},
	}
	for _, tc := range bad {
		t.Run(tc.name, func(t *testing.T) {
			env := fillAll(t)
			before, _ := env.cache.Table().Occupied()
			res, err := env.cache.Purge([]byte(tc.body), "")
			if !errors.Is(err, ErrBadPurge) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Purge = %+v, %v; want ErrBadPurge mentioning %q", res, err, tc.want)
			}
			if after, _ := env.cache.Table().Occupied(); after != before {
				t.Fatalf("a refused purge changed the table: %d -> %d", before, after)
			}
		})
	}
}

func TestClassifyOrigin(t *testing.T) {
	tests := []struct {
		details string
		want    Origin
	}{
		{"", OriginUpstream},
		{"via_upstream", OriginUpstream},
		{"upstream_response_timeout", OriginUpstreamTimeout},
		{"upstream_per_try_timeout", OriginUpstreamTimeout},
		{"request_overall_timeout", OriginUpstreamTimeout},
		{"upstream_reset_before_response_started{connection_termination}", OriginUpstreamReset},
		{"upstream_reset_after_response_started{remote_reset}", OriginUpstreamReset},
		{"overflow", OriginUpstreamReset},
		{"no_healthy_upstream", OriginUpstreamReset},
		{"upstream_reset_before_response_started{connection_failure}", OriginUpstreamReset},
		{"direct_response", OriginLocalReply},
		{"route_not_found", OriginLocalReply},
		{"ext_authz_denied", OriginLocalReply},
	}
	for _, tc := range tests {
		t.Run(tc.details, func(t *testing.T) {
			if got := ClassifyOrigin(tc.details); got != tc.want {
				t.Fatalf("ClassifyOrigin(%q) = %d, want %d", tc.details, got, tc.want)
			}
		})
	}
}

func TestAdmitHeaders(t *testing.T) {
	tests := []struct {
		name    string
		route   string
		status  int
		headers [][2]string
		origin  Origin
		want    Reason
	}{
		{"plain JSON 200", "chat", 200, jsonCT, OriginUpstream, ReasonNone},
		{"charset parameter", "chat", 200, hdr("content-type", "Application/JSON; charset=utf-8"), OriginUpstream, ReasonNone},
		{"+json media type", "chat", 200, hdr("content-type", "application/vnd.api+json"), OriginUpstream, ReasonNone},
		{"upstream reset", "chat", 200, jsonCT, OriginUpstreamReset, ReasonUpstreamReset},
		{"upstream timeout", "chat", 504, jsonCT, OriginUpstreamTimeout, ReasonUpstreamTimeout},
		{"local reply", "chat", 200, jsonCT, OriginLocalReply, ReasonLocalReply},
		{"status 503", "chat", 503, jsonCT, OriginUpstream, ReasonStatus},
		{"status 203 not listed", "chat", 203, jsonCT, OriginUpstream, ReasonStatus},
		{"status 203 listed", "json", 203, jsonCT, OriginUpstream, ReasonNone},
		{"status 206 not listed", "json", 206, jsonCT, OriginUpstream, ReasonStatus},
		{"no-store", "chat", 200, hdr("content-type", "application/json", "cache-control", "no-store"), OriginUpstream, ReasonNoStore},
		{"no-store among others", "chat", 200, hdr("content-type", "application/json", "cache-control", "max-age=60, No-Store"), OriginUpstream, ReasonNoStore},
		{"private", "chat", 200, hdr("content-type", "application/json", "cache-control", "private"), OriginUpstream, ReasonPrivate},
		{"private with fields", "chat", 200, hdr("content-type", "application/json", "cache-control", `private="set-cookie"`), OriginUpstream, ReasonPrivate},
		{"public max-age", "chat", 200, hdr("content-type", "application/json", "cache-control", "public, max-age=60"), OriginUpstream, ReasonNone},
		{"gzip", "chat", 200, hdr("content-type", "application/json", "content-encoding", "gzip"), OriginUpstream, ReasonEncoded},
		{"br", "chat", 200, hdr("content-type", "application/json", "content-encoding", "br"), OriginUpstream, ReasonEncoded},
		{"identity encoding", "chat", 200, hdr("content-type", "application/json", "content-encoding", " Identity "), OriginUpstream, ReasonNone},
		{"text/plain", "chat", 200, hdr("content-type", "text/plain"), OriginUpstream, ReasonNotJSON},
		{"event stream on chat (a recorded stream)", "chat", 200, hdr("content-type", "text/event-stream; charset=utf-8"), OriginUpstream, ReasonNone},
		{"event stream on a json route", "json", 200, hdr("content-type", "text/event-stream"), OriginUpstream, ReasonNotJSON},
		{"event stream on embeddings", "embed", 200, hdr("content-type", "text/event-stream"), OriginUpstream, ReasonNotJSON},
		{"no content-type", "chat", 200, nil, OriginUpstream, ReasonNotJSON},
		{"json-ish but not json", "chat", 200, hdr("content-type", "application/jsonl"), OriginUpstream, ReasonNotJSON},
		{"content-length over max_entry_bytes", "small", 200, hdr("content-type", "application/json", "content-length", "1025"), OriginUpstream, ReasonTooLarge},
		{"content-length at max_entry_bytes", "small", 200, hdr("content-type", "application/json", "content-length", " 1024 "), OriginUpstream, ReasonNone},
		{"unparseable content-length", "small", 200, hdr("content-type", "application/json", "content-length", "lots"), OriginUpstream, ReasonNone},
		{"origin checked before status", "chat", 503, nil, OriginUpstreamReset, ReasonUpstreamReset},
	}
	env := newEnv(t, testConfig)
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			req := &Request{Route: env.route(tc.route)}
			if got := env.cache.AdmitHeaders(req, tc.status, tc.headers, tc.origin); got != tc.want {
				t.Fatalf("AdmitHeaders = %s, want %s", got, tc.want)
			}
		})
	}
}

// TestAdmitHeadersResponseNoCache pins a deliberate deviation from RFC 9111
// §5.2.2.4: model providers send "Cache-Control: no-cache" on every answer
// (reference/peer-caches.md), so honouring it would disable the cache; the
// response directives that forbid storing — no-store, private — are
// honoured, no-cache and max-age are not (the route's TTL rules).
func TestAdmitHeadersResponseNoCache(t *testing.T) {
	env := newEnv(t, testConfig)
	req := &Request{Route: env.route("chat")}
	for _, cc := range []string{"no-cache", "no-cache, must-revalidate", "max-age=0", "s-maxage=0, proxy-revalidate"} {
		h := hdr("content-type", "application/json", "cache-control", cc)
		if got := env.cache.AdmitHeaders(req, 200, h, OriginUpstream); got != ReasonNone {
			t.Errorf("Cache-Control: %s refused: %s", cc, got)
		}
	}
}

func TestAdmitBody(t *testing.T) {
	choice := func(msg, finish string) string {
		return `{"index":0,"message":` + msg + `,"finish_reason":` + finish + `}`
	}
	chat := func(choices ...string) string {
		return `{"id":"c","object":"chat.completion","choices":[` + strings.Join(choices, ",") + `]}`
	}
	ok := choice(`{"role":"assistant","content":"Paris."}`, `"stop"`)
	toolCall := `{"role":"assistant","content":null,"tool_calls":[{"id":"t1","type":"function","function":{"name":"f","arguments":"{}"}}]}`
	tests := []struct {
		name    string
		route   string
		body    string
		want    Reason
		wantTTL time.Duration
	}{
		{"chat answer", "chat", chat(ok), ReasonNone, 5 * time.Minute},
		{"two good choices", "chat", chat(ok, ok), ReasonNone, 5 * time.Minute},
		{"not JSON", "chat", `{"choices":[`, ReasonMalformedJSON, 0},
		{"no body", "chat", ``, ReasonMalformedJSON, 0},
		{"no choices", "chat", `{"id":"c"}`, ReasonEmptyContent, 0},
		{"empty choices", "chat", chat(), ReasonEmptyContent, 0},
		{"choices not an array", "chat", `{"choices":{"0":{}}}`, ReasonEmptyContent, 0},
		{"truncated by length", "chat", chat(choice(`{"content":"Par"}`, `"length"`)), ReasonFinishReason, 0},
		{"content filter", "chat", chat(choice(`{"content":"x"}`, `"content_filter"`)), ReasonFinishReason, 0},
		{"no finish_reason", "chat", chat(`{"message":{"content":"x"}}`), ReasonFinishReason, 0},
		{"null finish_reason", "chat", chat(choice(`{"content":"x"}`, `null`)), ReasonFinishReason, 0},
		{"second choice truncated", "chat", chat(ok, choice(`{"content":"x"}`, `"length"`)), ReasonFinishReason, 0},
		{"empty content", "chat", chat(choice(`{"content":""}`, `"stop"`)), ReasonEmptyContent, 0},
		{"whitespace content", "chat", chat(choice(`{"content":" \n\t"}`, `"stop"`)), ReasonEmptyContent, 0},
		{"null content", "chat", chat(choice(`{"content":null}`, `"stop"`)), ReasonEmptyContent, 0},
		{"no message", "chat", chat(`{"finish_reason":"stop"}`), ReasonEmptyContent, 0},
		{"tool call refused by default finish_reasons", "chat", chat(choice(toolCall, `"tool_calls"`)), ReasonFinishReason, 0},
		{"tool call without content", "tools", chat(choice(toolCall, `"tool_calls"`)), ReasonNone, 5 * time.Minute},
		{"tool call with finish stop", "chat", chat(choice(toolCall, `"stop"`)), ReasonNone, 5 * time.Minute},
		{"empty tool_calls is no answer", "tools", chat(choice(`{"content":null,"tool_calls":[]}`, `"tool_calls"`)), ReasonEmptyContent, 0},
		{"completion text", "completions", `{"choices":[{"text":"Paris.","finish_reason":"stop"}]}`, ReasonNone, 5 * time.Minute},
		{"completion length allowed", "completions", `{"choices":[{"text":"Par","finish_reason":"length"}]}`, ReasonNone, 5 * time.Minute},
		{"completion empty text", "completions", `{"choices":[{"text":"","finish_reason":"stop"}]}`, ReasonEmptyContent, 0},
		{"completion reads text, not message", "completions", `{"choices":[{"message":{"content":"x"},"finish_reason":"stop"}]}`, ReasonEmptyContent, 0},
		{"embeddings", "embed", `{"data":[{"embedding":[0.1,0.2],"index":0}]}`, ReasonNone, 5 * time.Minute},
		{"embeddings empty data", "embed", `{"data":[]}`, ReasonEmptyContent, 0},
		{"embeddings no data", "embed", `{"object":"list"}`, ReasonEmptyContent, 0},
		{"embeddings data object", "embed", `{"data":{}}`, ReasonEmptyContent, 0},
		{"json anything", "json", `[1,2,3]`, ReasonNone, 5 * time.Minute},
		{"json scalar", "json", `"x"`, ReasonNone, 5 * time.Minute},
		{"too large", "small", `{"x":"` + strings.Repeat("y", 1020) + `"}`, ReasonTooLarge, 0},
		{"confidence top tier", "classify", `{"label":"cat","score":0.95}`, ReasonNone, time.Hour},
		{"confidence at a tier's min", "classify", `{"label":"cat","score":0.9}`, ReasonNone, time.Hour},
		{"confidence second tier", "classify", `{"label":"cat","score":0.8999}`, ReasonNone, 10 * time.Minute},
		{"confidence at lowest min", "classify", `{"label":"cat","score":0.6}`, ReasonNone, 10 * time.Minute},
		{"confidence too low", "classify", `{"label":"cat","score":0.59}`, ReasonLowConfidence, 0},
		{"confidence negative", "classify", `{"label":"cat","score":-1}`, ReasonLowConfidence, 0},
		{"confidence missing", "classify", `{"label":"cat"}`, ReasonNoConfidence, 0},
		{"confidence as string", "classify", `{"label":"cat","score":"0.95"}`, ReasonNoConfidence, 0},
		{"confidence null", "classify", `{"label":"cat","score":null}`, ReasonNoConfidence, 0},
	}
	env := newEnv(t, testConfig)
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			req := &Request{Route: env.route(tc.route)}
			a := env.cache.AdmitBody(req, jsonCT, []byte(tc.body))
			if a.Reason != tc.want || a.TTL != tc.wantTTL {
				t.Fatalf("AdmitBody = %s ttl %v, want %s ttl %v", a.Reason, a.TTL, tc.want, tc.wantTTL)
			}
		})
	}

	t.Run("version", func(t *testing.T) {
		req := &Request{Route: env.route("versioned")}
		if a := env.cache.AdmitBody(req, hdr("x-model-version", "v7"), []byte(chat(ok))); a.Version != "v7" {
			t.Errorf("header version %q", a.Version)
		}
		long := strings.Repeat("z", 80)
		if a := env.cache.AdmitBody(req, hdr("x-model-version", long), []byte(chat(ok))); a.Version != long {
			t.Errorf("long version %q", a.Version)
		}
		req = &Request{Route: env.route("fingerprinted")}
		body := strings.Replace(chat(ok), `{"id"`, `{"system_fingerprint":"fp_9","id"`, 1)
		if a := env.cache.AdmitBody(req, nil, []byte(body)); a.Version != "fp_9" {
			t.Errorf("body version %q", a.Version)
		}
		req = &Request{Route: env.route("chat")}
		if a := env.cache.AdmitBody(req, hdr("x-model-version", "v7"), []byte(chat(ok))); a.Version != "" {
			t.Errorf("version read on a route without model_version: %q", a.Version)
		}
	})
}

// TestRules: every predicate of a validation rule, alone and combined.
func TestRules(t *testing.T) {
	tests := []struct {
		name string
		rule string
		body string
		want bool
	}{
		{"exists true, present", `"exists":true`, `{"v":1}`, true},
		{"exists true, null", `"exists":true`, `{"v":null}`, true},
		{"exists true, missing", `"exists":true`, `{"w":1}`, false},
		{"exists false, missing", `"exists":false`, `{"w":1}`, true},
		{"exists false, present", `"exists":false`, `{"v":1}`, false},
		{"missing fails other predicates", `"type":"null"`, `{}`, false},
		{"missing fails min", `"min":0`, `{}`, false},
		{"missing fails exists false with type", `"exists":false,"type":"string"`, `{}`, false},
		{"type string", `"type":"string"`, `{"v":"a"}`, true},
		{"type string, got number", `"type":"string"`, `{"v":1}`, false},
		{"type number", `"type":"number"`, `{"v":-1.5e3}`, true},
		{"type number, got numeric string", `"type":"number"`, `{"v":"1"}`, false},
		{"type bool true", `"type":"bool"`, `{"v":true}`, true},
		{"type bool false", `"type":"bool"`, `{"v":false}`, true},
		{"type bool, got string", `"type":"bool"`, `{"v":"true"}`, false},
		{"type array", `"type":"array"`, `{"v":[]}`, true},
		{"type array, got object", `"type":"array"`, `{"v":{}}`, false},
		{"type object", `"type":"object"`, `{"v":{"a":1}}`, true},
		{"type object, got array", `"type":"object"`, `{"v":[1]}`, false},
		{"type null", `"type":"null"`, `{"v":null}`, true},
		{"type null, got string", `"type":"null"`, `{"v":"null"}`, false},
		{"non_empty string", `"non_empty":true`, `{"v":"a"}`, true},
		{"non_empty empty string", `"non_empty":true`, `{"v":""}`, false},
		{"non_empty blank string", `"non_empty":true`, `{"v":" \n"}`, false},
		{"non_empty array", `"non_empty":true`, `{"v":[0]}`, true},
		{"non_empty empty array", `"non_empty":true`, `{"v":[]}`, false},
		{"non_empty object", `"non_empty":true`, `{"v":{"a":null}}`, true},
		{"non_empty empty object", `"non_empty":true`, `{"v":{}}`, false},
		{"non_empty null", `"non_empty":true`, `{"v":null}`, false},
		{"non_empty zero", `"non_empty":true`, `{"v":0}`, true},
		{"non_empty false", `"non_empty":true`, `{"v":false}`, true},
		{"non_empty false is no predicate", `"non_empty":false`, `{"v":""}`, true},
		{"equals string", `"equals":"ok"`, `{"v":"ok"}`, true},
		{"equals string, other case", `"equals":"ok"`, `{"v":"OK"}`, false},
		{"equals string, escaped", `"equals":"ok"`, `{"v":"\u006fk"}`, true},
		{"equals number, other form", `"equals":1`, `{"v":1.0}`, true},
		{"equals number", `"equals":1`, `{"v":2}`, false},
		{"equals object, other key order", `"equals":{"a":1,"b":[true]}`, `{"v":{"b":[true],"a":1}}`, true},
		{"equals array order matters", `"equals":[1,2]`, `{"v":[2,1]}`, false},
		{"equals null", `"equals":null`, `{"v":null}`, true},
		{"equals true, got string", `"equals":true`, `{"v":"true"}`, false},
		{"one_of hit", `"one_of":["cat","dog"]`, `{"v":"dog"}`, true},
		{"one_of miss", `"one_of":["cat","dog"]`, `{"v":"cow"}`, false},
		{"one_of mixed types", `"one_of":["1",1]`, `{"v":1e0}`, true},
		{"min inclusive", `"min":0.5`, `{"v":0.5}`, true},
		{"below min", `"min":0.5`, `{"v":0.49}`, false},
		{"max inclusive", `"max":1`, `{"v":1}`, true},
		{"above max", `"max":1`, `{"v":1.01}`, false},
		{"min and max", `"min":0,"max":1`, `{"v":0.3}`, true},
		{"min on a string", `"min":0`, `{"v":"5"}`, false},
		{"min_items", `"min_items":1`, `{"v":[1]}`, true},
		{"below min_items", `"min_items":1`, `{"v":[]}`, false},
		{"max_items", `"max_items":2`, `{"v":[1,2]}`, true},
		{"above max_items", `"max_items":2`, `{"v":[1,2,3]}`, false},
		{"min_items on a string", `"min_items":1`, `{"v":"abc"}`, false},
		{"max_items on an object", `"max_items":5`, `{"v":{"a":1}}`, false},
		{"combined, all hold", `"type":"string","non_empty":true,"one_of":["a","b"]`, `{"v":"a"}`, true},
		{"combined, one fails", `"type":"string","non_empty":true,"one_of":["a","b"]`, `{"v":"c"}`, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cfg := mustParse(t, `{"routes":[{"name":"r","kind":"json","path_prefix":"/","shared":true,
				"validate":[{"path":"v",`+tc.rule+`}]}]}`)
			r := cfg.Routes[0]
			if got := r.Rules[0].Holds([]byte(tc.body)); got != tc.want {
				t.Fatalf("Holds(%s) = %v, want %v", tc.body, got, tc.want)
			}
			c := New(cfg, Options{Store: NewMemStore(), Rand: seededRand(1)})
			a := c.AdmitBody(&Request{Route: r}, jsonCT, []byte(tc.body))
			if tc.want && a.Reason != ReasonNone || !tc.want && (a.Reason != ReasonValidation || a.Rule != "v") {
				t.Fatalf("AdmitBody = %+v", a)
			}
		})
	}

	t.Run("nested paths and the first failing rule", func(t *testing.T) {
		cfg := mustParse(t, `{"routes":[{"name":"r","kind":"json","path_prefix":"/","shared":true,"validate":[
			{"path":"result.labels","min_items":1},
			{"path":"result.labels.0.name","non_empty":true},
			{"path":"error","exists":false}]}]}`)
		c := New(cfg, Options{Store: NewMemStore(), Rand: seededRand(1)})
		req := &Request{Route: cfg.Routes[0]}
		for _, tc := range []struct{ body, rule string }{
			{`{"result":{"labels":[{"name":"cat"}]}}`, ""},
			{`{"result":{"labels":[]}}`, "result.labels"},
			{`{"result":{"labels":[{"name":""}]}}`, "result.labels.0.name"},
			{`{"result":{"labels":[{"name":"cat"}]},"error":null}`, "error"},
		} {
			a := c.AdmitBody(req, jsonCT, []byte(tc.body))
			if a.Rule != tc.rule || (a.Reason == ReasonValidation) != (tc.rule != "") {
				t.Errorf("%s: %+v, want rule %q", tc.body, a, tc.rule)
			}
		}
	})
}

func TestStoreRefusals(t *testing.T) {
	t.Run("entry larger than max_entry_bytes", func(t *testing.T) {
		env := newEnv(t, testConfig)
		req, _ := env.lookup("small", nil, `{"q":1}`)
		body := []byte(`{"x":"` + strings.Repeat("y", 1000) + `"}`) // admitted: under 1024 bytes
		adm := env.cache.AdmitBody(req, jsonCT, body)
		if adm.Reason != ReasonNone {
			t.Fatalf("AdmitBody: %s", adm.Reason)
		}
		if res := env.cache.Store(req, 200, jsonCT, body, adm, 1); res.Reason != ReasonTooLarge {
			t.Fatalf("Store = %+v, want too_large (key and headers count)", res)
		}
		if n, _ := env.cache.Table().Occupied(); n != 0 {
			t.Fatalf("stored anyway")
		}
	})
	t.Run("index contention", func(t *testing.T) {
		env := newEnv(t, testConfig)
		s := &flakyStore{Store: env.store, setErr: func(k string) error {
			if strings.HasPrefix(k, "mc:i:") {
				return ErrCasMismatch
			}
			return nil
		}}
		c := New(env.cache.cfg, Options{Store: s, Now: env.clock.Now, Rand: seededRand(2)})
		req := c.Begin(env.route("chat"), "POST", "/v1/chat/completions", alice)
		c.SetBody(req, []byte(chatRequest("x")))
		adm := c.AdmitBody(req, jsonCT, []byte(chatResponse("y")))
		if res := c.Store(req, 200, jsonCT, []byte(chatResponse("y")), adm, 1); res.Reason != ReasonStoreContention {
			t.Fatalf("Store = %+v", res)
		}
	})
	t.Run("store down", func(t *testing.T) {
		env := newEnv(t, testConfig)
		s := &flakyStore{Store: env.store, setErr: func(string) error { return errStoreDown }}
		c := New(env.cache.cfg, Options{Store: s, Now: env.clock.Now, Rand: seededRand(2)})
		req := c.Begin(env.route("chat"), "POST", "/v1/chat/completions", alice)
		c.SetBody(req, []byte(chatRequest("x")))
		adm := c.AdmitBody(req, jsonCT, []byte(chatResponse("y")))
		if res := c.Store(req, 200, jsonCT, []byte(chatResponse("y")), adm, 1); res.Reason != ReasonInternal {
			t.Fatalf("Store = %+v", res)
		}
	})
	t.Run("only configured headers are kept", func(t *testing.T) {
		env := newEnv(t, testConfig)
		req, _ := env.lookup("versioned", alice, chatRequest("h"))
		env.fill(req, hdr("set-cookie", "a=b", "content-type", "application/json", "x-model-version", "v1", "x-ratelimit-remaining", "9"), chatResponse("a"), 1)
		req, _ = env.lookup("versioned", alice, chatRequest("h"))
		want := hdr("content-type", "application/json", "x-model-version", "v1")
		if fmt.Sprint(req.Entry.Headers) != fmt.Sprint(want) {
			t.Fatalf("stored headers %q, want %q", req.Entry.Headers, want)
		}
	})
}

func TestLookupFailsOpen(t *testing.T) {
	env := newEnv(t, testConfig)
	req, _ := env.lookup("chat", alice, chatRequest("x"))
	env.fill(req, jsonCT, chatResponse("y"), 1)
	// (An index read error alone does not fail the lookup: an entry in its
	// preferred way is read directly, without the index.)
	for _, prefix := range []string{"mc:e:", "mc:m:"} {
		t.Run(prefix, func(t *testing.T) {
			s := &flakyStore{Store: env.store, getErr: func(k string) error {
				if strings.HasPrefix(k, prefix) {
					return errStoreDown
				}
				return nil
			}}
			c := New(env.cache.cfg, Options{Store: s, Now: env.clock.Now, Rand: seededRand(2)})
			req := c.Begin(env.route("chat"), "POST", "/v1/chat/completions", alice)
			c.SetBody(req, []byte(chatRequest("x")))
			if d := c.Lookup(req); d != Forward || req.Status != StatusBypass || req.Reason != ReasonInternal {
				t.Fatalf("Lookup = %v %s/%s, want forward, bypass/internal", d, req.Status, req.Reason)
			}
		})
	}
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

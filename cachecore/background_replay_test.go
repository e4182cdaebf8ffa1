package cachecore

import (
	"strings"
	"testing"
	"time"
)

const backgroundSWRConfig = `{"upstream_cluster":"model","routes":[{"name":"chat","kind":"chat","path_prefix":"/v1/chat/completions","ttl":"10s",
  "stale_while_revalidate":"1m"}]}`

var backgroundAliceHeaders = hdr(":method", "POST", ":path", "/v1/chat/completions", "authorization", "Bearer sk-alice")

// A purge between a refresh's dispatch and its answer: the refreshed
// answer must not bring the purged entry back.
func TestBackgroundRefreshAcrossPurgeDoesNotResurrect(t *testing.T) {
	for _, purge := range []string{
		`{"route":"chat","model":"gpt-4o-mini"}`,
		`{"all":true}`,
		`{"path":"/v1/chat/completions","headers":{"authorization":"Bearer sk-alice"},"body":` + chatRequest("q") + `}`,
	} {
		env := newEnv(t, backgroundSWRConfig)
		c := env.cache
		env.fill(env.request("chat", alice, chatRequest("q")), jsonCT, chatResponse("old"), 10)
		env.clock.Advance(20 * time.Second)
		req, d := env.lookup("chat", alice, chatRequest("q"))
		if d != Serve || req.Status != StatusStale || !c.WantsRefresh(req) {
			t.Fatalf("setup: %v %s", d, req.Status)
		}
		acts := c.Refresh(req, backgroundAliceHeaders, 1)
		if len(acts) != 1 || acts[0].Kind != ActDispatch {
			t.Fatalf("setup: %+v", acts)
		}
		env.clock.Advance(100 * time.Millisecond)
		if _, err := c.Purge([]byte(purge), ""); err != nil {
			t.Fatal(err)
		}
		env.clock.Advance(100 * time.Millisecond)
		done := acts[0].Call.Done(CallResult{Status: 200, Headers: jsonCT, Body: []byte(chatResponse("new"))})
		if r, d := env.lookup("chat", alice, chatRequest("q")); d == Serve {
			t.Errorf("purge %s: the refresh in flight across it was stored and is served (%s %s); done %+v", purge, r.Status, r.Entry.Body, done[0])
		}
	}
}

// A background call (refresh or shadow) replays the request under the
// same key: every header the key holds — the route's tenant header and
// its key_headers, "headers that change an answer" (README) — must reach
// the model, or the fresh answer is another question's, stored (refresh,
// shadow replacement) or compared (shadow) under this key. ReplayHeaders
// drops x-forwarded-*, x-envoy-* and cache-control/pragma/accept-encoding
// whatever the route keys on.
func TestBackgroundCallsReplayTheHeadersTheKeyHolds(t *testing.T) {
	env := newEnv(t, `{"upstream_cluster":"model","routes":[{"name":"chat","kind":"chat","path_prefix":"/v1/chat/completions","ttl":"10s",
	  "stale_while_revalidate":"1m","tenant_headers":["x-forwarded-user"],"key_headers":["x-forwarded-host"],
	  "shadow":{"sample":1.0,"max_concurrent":2,"min_samples":100}}]}`)
	c := env.cache
	who := hdr("x-forwarded-user", "alice", "x-forwarded-host", "eu.example")
	env.fill(env.request("chat", who, chatRequest("q")), jsonCT, chatResponse("old"), 10)
	headers := hdr(":method", "POST", ":path", "/v1/chat/completions", ":authority", "models",
		"x-forwarded-user", "alice", "x-forwarded-host", "eu.example")
	check := func(what string, acts []Action) {
		t.Helper()
		if len(acts) != 1 || acts[0].Kind != ActDispatch {
			t.Fatalf("%s: %+v", what, acts)
		}
		got := acts[0].Call.Headers
		for _, name := range []string{"x-forwarded-user", "x-forwarded-host"} {
			if headerValue(got, name) == "" {
				t.Errorf("%s: the call drops %s, which the entry's key holds: %v", what, name, got)
			}
		}
	}
	hit, d := env.lookup("chat", who, chatRequest("q"))
	if d != Serve || hit.Status != StatusHit {
		t.Fatalf("setup: %v %s", d, hit.Status)
	}
	check("shadow", c.Shadow(hit, headers))
	env.clock.Advance(20 * time.Second)
	stale, d := env.lookup("chat", who, chatRequest("q"))
	if d != Serve || stale.Status != StatusStale {
		t.Fatalf("setup: %v %s", d, stale.Status)
	}
	check("refresh", c.Refresh(stale, headers, 1))
}

// A refresh of a streamed entry: a cut stream, or JSON for a request that
// asked for a stream, is not stored, and the stale entry stays.
func TestBackgroundRefreshOfAStreamRefusesACutOne(t *testing.T) {
	sse := hdr("content-type", "text/event-stream")
	body := `{"model":"gpt-4o-mini","messages":[{"role":"user","content":"s"}],"temperature":0,"stream":true}`
	for name, ans := range map[string]struct {
		h    [][2]string
		body string
	}{
		"cut":     {sse, strings.TrimSuffix(chatStream, "data: [DONE]\n\n")},
		"cut mid": {sse, chatStream[:len(chatStream)/2]},
		"json":    {jsonCT, chatResponse("json for a stream")},
	} {
		env := newEnv(t, backgroundSWRConfig)
		c := env.cache
		env.fill(env.request("chat", alice, body), sse, chatStream, 10)
		env.clock.Advance(20 * time.Second)
		req, d := env.lookup("chat", alice, body)
		if d != Serve || req.Status != StatusStale {
			t.Fatalf("setup: %v %s", d, req.Status)
		}
		acts := c.Refresh(req, backgroundAliceHeaders, 1)
		done := acts[0].Call.Done(CallResult{Status: 200, Headers: ans.h, Body: []byte(ans.body)})
		if done[0].Event != EvRefreshRefused {
			t.Errorf("%s: refresh %s", name, EventNames[done[0].Event])
		}
		r, d := env.lookup("chat", alice, body)
		if d != Serve || r.Status != StatusStale || string(r.Entry.Body) != chatStream {
			t.Errorf("%s: after the refresh: %v %s %q", name, d, r.Status, r.Entry.Body)
		}
	}
}

package cachecore

import (
	"testing"
	"time"
)

// Review Z174 (stale-while-revalidate, early refresh, background calls).

// conditionalModel answers as an HTTP server with validators does (an
// OpenAI-compatible gateway, or the "cache upstream" RATIONALE names: a
// gateway, a CDN): a request carrying a validator or a range is answered
// 304 / 206, any other with the full answer.
func conditionalModel(headers [][2]string) CallResult {
	switch {
	case headerValue(headers, "if-none-match") != "", headerValue(headers, "if-modified-since") != "":
		return CallResult{Status: 304, Headers: hdr("etag", `"v1"`)}
	case headerValue(headers, "range") != "":
		return CallResult{Status: 206, Headers: append(hdr("content-range", "bytes 0-9/100"), jsonCT...), Body: []byte(`{"choices"`)}
	}
	return CallResult{Status: 200, Headers: jsonCT, Body: []byte(chatResponse("refreshed"))}
}

// A background refresh is the cache's own request for the entry
// (README: "exactly one background request refreshes it"), yet
// ReplayHeaders sends the triggering client's conditional and range
// headers (If-None-Match, If-Modified-Since, Range): they are the client's
// preconditions on its own copy, not the cache's. An upstream that honours
// them answers 304 (or 206); the refresh is refused (status, a lasting
// refusal: hit-for-miss) and the stale entry is never renewed while such
// clients hit it. Expected: the refresh asks for the full answer (drops
// the client's preconditions, as it drops its cache directives), and the
// key holds a fresh entry after it.
func TestZ174RefreshReplaysTheClientsConditionalHeaders(t *testing.T) {
	for _, h := range [][2]string{
		{"if-none-match", `"v0"`},
		{"if-modified-since", "Mon, 01 Jan 2024 00:00:00 GMT"},
		{"range", "bytes=0-9"},
	} {
		env := newEnv(t, backgroundSWRConfig)
		c := env.cache
		body := chatRequest("q")
		env.fill(env.request("chat", alice, body), jsonCT, chatResponse("old"), 10)
		env.clock.Advance(20 * time.Second) // stale, within stale_while_revalidate
		client := append(hdr(h[0], h[1]), alice...)
		req, d := env.lookup("chat", client, body)
		if d != Serve || req.Status != StatusStale || !c.WantsRefresh(req) {
			t.Fatalf("setup: %v %s", d, req.Status)
		}
		acts := c.Refresh(req, append(hdr(":method", "POST", ":path", "/v1/chat/completions", h[0], h[1]), alice...), 1)
		if len(acts) != 1 || acts[0].Kind != ActDispatch {
			t.Fatalf("setup: refresh %+v", acts)
		}
		call := acts[0].Call
		env.clock.Advance(100 * time.Millisecond)
		res := conditionalModel(call.Headers)
		call.Done(res)
		r, d := env.lookup("chat", alice, body)
		if d != Serve || r.Status != StatusHit {
			t.Errorf("client header %s: the refresh sent %s: %q and was answered %d; the key after the refresh: %v %s, want a fresh hit (the refresh is the cache's own request for the whole answer)",
				h[0], h[0], headerValue(call.Headers, h[0]), res.Status, d, r.Status)
		}
	}
}

// A refresh that finds its key's lease holding a hit-for-miss mark (the
// key's last answer, here a refresh's, may not be stored) makes no call,
// and is counted background.joined: "Someone is already getting a fresh
// answer" (Cache.Refresh). Nobody is: no call is in flight for the key.
// An operator reading joined (a refresh deduplicated onto one in flight)
// while the entry is never refreshed is misled. Expected: a refresh not
// made because of a hit-for-miss mark is not counted as joined.
func TestZ174RefreshOnAHitForMissMarkIsNotCountedJoined(t *testing.T) {
	env := newEnv(t, backgroundSWRConfig)
	c := env.cache
	body := chatRequest("q")
	env.fill(env.request("chat", alice, body), jsonCT, chatResponse("old"), 10)
	env.clock.Advance(20 * time.Second)
	first, _ := env.lookup("chat", alice, body)
	acts := c.Refresh(first, backgroundAliceHeaders, 1)
	if len(acts) != 1 || acts[0].Kind != ActDispatch {
		t.Fatalf("setup: refresh %+v", acts)
	}
	// The model answers no-store: a lasting refusal, the key is marked
	// hit-for-miss (coalesce.hit_for_miss, 30 s by default).
	acts[0].Call.Done(CallResult{Status: 200, Headers: append(hdr("cache-control", "no-store"), jsonCT...), Body: []byte(chatResponse("x"))})
	env.clock.Advance(time.Second)
	second, d := env.lookup("chat", alice, body)
	if d != Serve || second.Status != StatusStale || !c.WantsRefresh(second) {
		t.Fatalf("setup: %v %s", d, second.Status)
	}
	if l, err := c.leases.Peek(second.LeaseFP()); err != nil || l.State != LeaseHitForMiss {
		t.Fatalf("setup: lease %+v %v, want a hit-for-miss mark", l, err)
	}
	for _, a := range c.Refresh(second, backgroundAliceHeaders, 1) {
		if a.Kind == ActDispatch {
			t.Fatalf("setup: a refresh was dispatched")
		}
		if a.Kind == ActCount && a.Event == EvRefreshJoined {
			t.Errorf("a refresh skipped for the key's hit-for-miss mark is counted background.joined, though no refresh (nor any call) of the key is in flight")
		}
	}
}

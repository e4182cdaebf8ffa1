package cachecore

import (
	"fmt"
	"strings"
	"testing"
	"time"
)

// Review Z243: follow-up of the fixes 3dd40dc..3b82185.

// z243Ask runs a chat request for prompt on route (path) to its first
// decision, answering an embeddings call with res (nil: a good vector).
func (e *semEnv) z243Ask(route, path, prompt string, res *CallResult) string {
	e.id++
	req := e.cache.Begin(e.route(route), "POST", path, alice)
	f := e.cache.NewFlight(req, 1, e.id)
	acts := f.RequestBody([]byte(chatRequest(prompt)), false)
	var kinds []string
	for len(acts) > 0 {
		a := acts[0]
		acts = acts[1:]
		if a.Kind != ActDispatch {
			kinds = append(kinds, actionKinds([]Action{a}))
			continue
		}
		kinds = append(kinds, "embed")
		r := semEmbAnswer(e.model, e.vec(prompt))
		if res != nil {
			r = *res
		}
		acts = append(acts, a.Call.Done(r)...)
	}
	e.answer(f, "a")
	return strings.Join(kinds, " ")
}

// Routes that call one embeddings server share one breaker
// (semEmbedBreaker), but each checks it with its own cool_down, and
// breaker.allowed takes an openUntil further away than the caller's
// cool_down for a wall clock stepped back and closes the breaker for good.
// So a breaker that route "chat" (cool_down 1m) opened is closed by the
// first request of route "b" (the default 5s) that comes along — here one
// second after it opened, before even b's own cool_down has passed — and
// from then on every new turn of both routes calls the dead server and
// waits for its deadline again. Expected: a breaker opened a second ago
// stays open (semantic.breaker_open) for route b too.
func TestZ243EmbedBreakerOpenedByOneRouteIsNotClosedByASharingRoutesShorterCoolDown(t *testing.T) {
	e := newSemEnv(t, "")
	e.testEnv = newEnv(t, `{"upstream_cluster":"model","routes":[
	  {"name":"chat","kind":"chat","path_prefix":"/v1/chat/completions","ttl":"1h",
	   "semantic":{"embedding":{"cluster":"embeddings","model":"e5","breaker":{"cool_down":"1m"}}}},
	  {"name":"b","kind":"chat","path_prefix":"/b/v1/chat/completions","ttl":"1h",
	   "semantic":{"embedding":{"cluster":"embeddings","model":"e5"}}}]}`)
	failed := CallResult{Status: 503, Body: []byte("upstream connect error or disconnect/reset before headers")}
	for i := 0; i < 5; i++ {
		if got := e.z243Ask("chat", "/v1/chat/completions", fmt.Sprintf("what is question %d about?", i), &failed); !strings.HasPrefix(got, "embed semantic.embed_error") {
			t.Fatalf("setup: call %d: %q", i, got)
		}
	}
	if got := e.z243Ask("chat", "/v1/chat/completions", "what is question 5 about?", &failed); !strings.HasPrefix(got, "semantic.breaker_open") {
		t.Fatalf("setup: the breaker did not open after 5 failures: %q", got)
	}
	e.clock.Advance(time.Second)
	if got := e.z243Ask("b", "/b/v1/chat/completions", "what is question 6 about?", &failed); !strings.HasPrefix(got, "semantic.breaker_open") {
		t.Errorf("route b, 1s after the shared server's breaker opened: %q, want semantic.breaker_open (no call)", got)
	}
	if got := e.z243Ask("chat", "/v1/chat/completions", "what is question 7 about?", nil); !strings.HasPrefix(got, "semantic.breaker_open") {
		t.Errorf("route chat, 1s into its 1m cool_down, after a request of route b: %q, want semantic.breaker_open (no call)", got)
	}
}

// README (embedding.breaker.cool_down): "how long it is skipped; then one
// call is tried again, and one success closes it". The breaker has no
// half-open state: once the cool_down is over it is closed for every new
// turn until a call fails, so with a server that hangs (the case the
// breaker is for: each call waits up to embedding.timeout) every new turn
// that arrives while the one trial call is still waiting calls too and
// waits its whole deadline. Expected: while the trial call is in flight,
// another new turn is skipped (semantic.breaker_open).
func TestZ243EmbedBreakerTriesOneCallAfterItsCoolDown(t *testing.T) {
	e := newSemEnv(t, "")
	failed := CallResult{Status: 504, Body: []byte("upstream request timeout")}
	for i := 0; i < 5; i++ {
		f, got := e.ask(alice, fmt.Sprintf("what is question %d about?", i), &failed)
		e.answer(f, "a")
		if !strings.HasPrefix(got, "embed semantic.embed_timeout") {
			t.Fatalf("setup: call %d: %q", i, got)
		}
	}
	e.clock.Advance(5 * time.Second)
	_, done := e.askHeld(alice, "what is question 5 about?") // the trial call: in flight (the server hangs)
	_ = done
	for i := 6; i < 9; i++ {
		f, got := e.ask(alice, fmt.Sprintf("what is question %d about?", i), &failed)
		e.answer(f, "a")
		if strings.Contains(got, "embed") {
			t.Errorf("turn %d while the trial call after the cool_down is in flight: %q, want semantic.breaker_open (one call tried)", i, got)
		}
	}
}

// The JSON check of a message whose request asked response_format
// json_object or json_schema (asksJSON) reads the key's canonical request.
// A route whose key_fields allowlist leaves response_format out (as most
// allowlists do: it is not among the fields kept "whatever key_fields
// says") keys the request without it, so the check never runs: a JSON
// reply cut short under finish_reason "stop" is stored and served to
// every later json_object caller, which fails to decode it — what the fix
// (cc03597) was for. Expected: refused bad_shape as on a route without
// key_fields.
func TestZ243JSONModeCheckRunsUnderAKeyFieldsAllowlist(t *testing.T) {
	const cfg = `{"routes":[{"name":"chat","kind":"chat","path_prefix":"/v1/chat/completions","key_fields":["model","messages"]}]}`
	req := `{"model":"gpt-4o-mini","messages":[{"role":"user","content":"list three colours as JSON"}],"response_format":{"type":"json_object"}}`
	ans := `{"id":"c1","object":"chat.completion","model":"m","choices":[{"index":0,"message":{"role":"assistant","content":` +
		`"{\"colours\": [\"red\", \"gre"},"finish_reason":"stop"}]}`
	if r := storeVerdict(t, testConfig, "chat", alice, req, jsonCT, ans); r != ReasonBadShape {
		t.Fatalf("setup: without key_fields: %q", r)
	}
	if r := storeVerdict(t, cfg, "chat", alice, req, jsonCT, ans); r != ReasonBadShape {
		t.Errorf("key_fields [model, messages]: a json_object reply cut short: reason %q, want %q (stored)", r, ReasonBadShape)
	}
}

// response_format sets the answer's form as much as tools, modalities or
// logprobs do (prose, a JSON object, an object of one schema), yet it is
// not among the fields a key keeps whatever key_fields says (formKeyed):
// under an allowlist a prose answer stored for a plain request is served
// to a json_schema caller, whose client fails to decode it. Expected: the
// two requests have different keys.
func TestZ243ResponseFormatStaysKeyedUnderKeyFields(t *testing.T) {
	env := newEnv(t, `{"routes":[{"name":"chat","kind":"chat","path_prefix":"/v1/chat/completions","key_fields":["model","messages"]}]}`)
	plain := `{"model":"gpt-4o-mini","messages":[{"role":"user","content":"list three colours"}]}`
	env.fill(env.request("chat", alice, plain), jsonCT, chatResponse("red, green and blue"), 5)
	schema := `{"model":"gpt-4o-mini","messages":[{"role":"user","content":"list three colours"}],` +
		`"response_format":{"type":"json_schema","json_schema":{"name":"colours","schema":{"type":"object"}}}}`
	if req, d := env.lookup("chat", alice, schema); d == Serve {
		_, _, body := env.cache.HitResponse(req)
		t.Errorf("a json_schema request was served the plain request's prose answer: %s", body)
	}
}

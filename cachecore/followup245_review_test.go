package cachecore

import (
	"fmt"
	"strings"
	"testing"
	"time"
)

// Review Z245: follow-up of the fixes 7719281..HEAD.

// The embeddings breaker's one trial after its cool-down (embedBreaker,
// c46f500) marks itself out until a wall-clock instant, trialUntil = now +
// embedding.timeout + 1s, cleared only by the trial's result. A trial
// whose result never comes (its client left: the filter drops the result
// of a call whose stream is gone, and the embeddings call sets no Gone)
// leaves trialUntil set; should NTP then step the wall clock back (an
// hour here), every new turn reads now < trialUntil and is skipped as
// semantic.breaker_open for the whole step, though the breaker's own
// open window is closed for exactly that reason (breaker.allowed, reviews
// Z120, Z128) and a turn's pending mark is bounded the same way
// (claimLive's clockSkewMs). Expected: once the trial's deadline has
// passed (embedding.timeout + 1s of the VM's time), a new turn tries the
// server again.
func TestZ245EmbedBreakerTrialMarkSurvivesAClockSteppedBack(t *testing.T) {
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
	_, done := e.askHeld(alice, "what is question 5 about?") // the trial: its client leaves, its result is dropped
	_ = done
	e.clock.Set(e.clock.Now().Add(-time.Hour)) // NTP steps the wall clock back
	e.clock.Advance(10 * time.Second)          // far past the trial's deadline (200ms + 1s) and any cool-down
	f, got := e.ask(alice, "what is question 6 about?", nil)
	e.answer(f, "a")
	if !strings.HasPrefix(got, "embed ") {
		b := e.cache.semEmbedBreaker(e.route("chat").Semantic)
		t.Errorf("10s after a trial whose result never came, the clock stepped back 1h meanwhile: %q, want an embeddings call "+
			"(breaker skips turns for %v more)", got, time.Duration(b.trialUntil-e.cache.nowMs())*time.Millisecond)
	}
}

// cc03597 refuses (bad_shape) a chat message that is not JSON where the
// request asked for JSON, but asksJSON reads only OpenAI's
// response_format. c46f500 keys vLLM's guided_json and structured_outputs
// and llama.cpp's top-level json_schema as fields that make the answer
// JSON ("JSON or text, and which JSON or grammar constrains it"), yet a
// reply to such a request cut short under finish_reason "stop" (a stop
// string inside the JSON, a server that stops at max_tokens and says
// "stop") is stored and served to every later caller of that schema,
// whose client fails to decode it — the harm cc03597 was for. Expected:
// refused bad_shape as for response_format json_schema.
func TestZ245JSONModeCheckCoversGuidedJSONAndJSONSchema(t *testing.T) {
	ans := `{"id":"c1","object":"chat.completion","model":"m","choices":[{"index":0,"message":{"role":"assistant","content":` +
		`"{\"colours\": [\"red\", \"gre"},"finish_reason":"stop"}]}`
	const msgs = `"model":"gpt-4o-mini","messages":[{"role":"user","content":"list three colours as JSON"}]`
	if r := storeVerdict(t, testConfig, "chat", alice, `{`+msgs+`,"response_format":{"type":"json_schema","json_schema":{"name":"c","schema":{"type":"object"}}}}`, jsonCT, ans); r != ReasonBadShape {
		t.Fatalf("setup: response_format json_schema: %q", r)
	}
	for name, extra := range map[string]string{
		"vLLM guided_json":             `"guided_json":{"type":"object"}`,
		"vLLM structured_outputs.json": `"structured_outputs":{"json":{"type":"object"}}`,
		"llama.cpp json_schema":        `"json_schema":{"type":"object"}`,
	} {
		if r := storeVerdict(t, testConfig, "chat", alice, `{`+msgs+`,`+extra+`}`, jsonCT, ans); r != ReasonBadShape {
			t.Errorf("%s: a JSON reply cut short under finish_reason stop: reason %q, want %q (not stored)", name, r, ReasonBadShape)
		}
	}
}

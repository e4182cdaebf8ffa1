package cachecore

import (
	"fmt"
	"strings"
	"testing"
	"time"
)

// Review Z128 (follow-up of Z120): l2Allowed treats a breaker whose end is
// more than a cool-down ahead (a wall clock stepped back) as closed, but
// leaves openUntil as it is. L2 then works again, calls succeed, and the
// wall clock catches up with the old openUntil: within a cool-down of it
// the breaker "opens" again by itself, without a single new failure, and
// the VM skips L2 for a whole cool-down although webdis answered every call.
func TestZ128L2BreakerDoesNotReopenWithoutFailureAfterClockStepBack(t *testing.T) {
	m := breakerOpenThenClockBack(t, "10s")
	m.clock.Advance(time.Second)
	calls := m.wd.calls
	m.ask(0, "after the step", "a") // L2 tried (Z120's fix) and answers
	if m.wd.calls == calls {
		t.Fatal("L2 still skipped after the clock stepped back")
	}
	// An hour of healthy L2 traffic later the clock reaches the instant the
	// old breaker opened (its cool-down not yet over).
	for i := 0; i < 60; i++ {
		m.clock.Advance(time.Minute)
		m.ask(0, fmt.Sprint("healthy", i), "a")
	}
	calls = m.wd.calls
	cs, _ := m.ask(0, "still healthy", "a")
	if m.wd.calls == calls || !m.p[0].l2Allowed() {
		t.Errorf("webdis answered every call for an hour, and no failure came since, yet L2 is skipped now: %q, no webdis call (breaker open for %v more)",
			cs, time.Duration(m.p[0].l2b.openUntil-m.p[0].nowMs())*time.Millisecond)
	}
}

// Review Z128 (follow-up of Z127): promptCount counts prompt_embeds only
// when the request has no "prompt" member. vLLM's own client example
// (examples/online_serving/prompt_embed_inference_with_openai_client.py)
// sends prompt "" — the OpenAI SDK does not allow prompt None — with the
// tensors in extra_body, and vLLM (renderer.render_prompt_and_embeds)
// renders the embeds and skips a prompt that is "" or null: a request of
// two tensors with n 2 is answered 4 choices. The cache takes it for one
// prompt, wants 2 choices, refuses every such answer as bad_shape (never
// cached) — and would store a 2-choice answer as complete.
func TestZ128CompletionsEmptyPromptWithPromptEmbedsCountsTheEmbeds(t *testing.T) {
	cfg := `{"routes":[{"name":"cmpl","kind":"completions","path_prefix":"/v1/completions","ttl":"1h"}]}`
	req := `{"model":"m","prompt":"","prompt_embeds":["AAAAAAAAgD8AAABAAABAQA==","AAAAAAAAAEAAAABAAABAQA=="],"n":2,"temperature":1}`
	var cs []string
	for i := 0; i < 4; i++ {
		cs = append(cs, fmt.Sprintf(`{"index":%d,"text":" t%d","finish_reason":"stop"}`, i, i))
	}
	four := `{"id":"cmpl-1","object":"text_completion","created":1,"model":"m","choices":[` + strings.Join(cs, ",") + `]}`
	if r := storeVerdict(t, cfg, "cmpl", alice, req, jsonCT, four); r != ReasonNone {
		t.Errorf("vLLM's answer (2 prompt_embeds × n 2 = 4 choices) to a request with prompt \"\": %q, want stored", r)
	}
	two := `{"id":"cmpl-1","object":"text_completion","created":1,"model":"m","choices":[` + strings.Join(cs[:2], ",") + `]}`
	if r := storeVerdict(t, cfg, "cmpl", alice, req, jsonCT, two); r != ReasonBadShape {
		t.Errorf("2 choices for 2 prompt_embeds × n 2 (prompt \"\"): %q, want bad_shape", r)
	}
}

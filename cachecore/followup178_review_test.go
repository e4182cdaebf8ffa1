package cachecore

import (
	"errors"
	"testing"
	"time"

	"github.com/tidwall/gjson"
)

// Review Z178: a follow-up of the mends of reviews Z170-Z177. Each test
// fails on the code it was written against.

// README (model_path: every gjson path of the configuration has "no `!`
// literal"); review Z171 refused a path led by `!` and a multipath whose
// first member is one (`[!true]`). gjson reads every member of a
// multipath as a path of its own (parseSubSelectors, then Get), so a later
// member (`[a,!true]`) or a named one (`{s:!0.99}`) is a literal too, and
// gjsonPathOK lets them through: its check skips a comma inside a
// multipath (depth > 0) and never looks after a ':'. A confidence path
// `{s:!0.99}.s` reads 0.99 from every answer (each stored for the top
// tier, the exact defect of Z171), a rule on `{ok:!true}.ok` holds on
// every answer. Expected: config errors, as `!0.99` and `[!true]` are.
func TestFollowup178MultipathLiteralMemberIsAConfigError(t *testing.T) {
	if _, err := ParseConfig([]byte(z171ChatCfg(`{"path":"[!true]","min_items":1}`))); err == nil {
		t.Fatal("setup: [!true] (the mended form) loads")
	}
	for _, tc := range []struct{ name, path, cfg string }{
		{"confidence named member", "{s:!0.99}.s", `{"routes":[{"name":"cls","kind":"classify","path_prefix":"/v1","shared":true,
			"confidence":{"path":"{s:!0.99}.s","tiers":[{"min":0.9,"ttl":"1h"}]}}]}`},
		{"rule named member", "{ok:!true}.ok", `{"routes":[{"name":"cls","kind":"classify","path_prefix":"/v1","shared":true,"validate":[
			{"path":"{ok:!true}.ok","equals":true}]}]}`},
		{"rule second member", "[label,!true]", `{"routes":[{"name":"cls","kind":"classify","path_prefix":"/v1","shared":true,"validate":[
			{"path":"[label,!true]","min_items":1}]}]}`},
		{"rule quoted name", `{"ok":!true}.ok`, `{"routes":[{"name":"cls","kind":"classify","path_prefix":"/v1","shared":true,"validate":[
			{"path":"{\"ok\":!true}.ok","equals":true}]}]}`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := ParseConfig([]byte(tc.cfg)); err == nil {
				r := storeVerdict(t, tc.cfg, "cls", nil, `{"model":"m","input":"x"}`, jsonCT, `{"x":1}`)
				t.Fatalf("the path %s (a multipath member that is a gjson literal) loads; it reads %s from the answer {\"x\":1}, which is %s",
					tc.path, gjson.Get(`{"x":1}`, tc.path).Raw, verdict(r))
			}
		})
	}
}

// README (Purge API): "A body names one form only (`all`, which must be
// `true`; a `model`; or a `body` to replay …); anything else is
// malformed." Review Z176 counted the forms by the members all, model and
// body only: {"all": true, "route": "chat"} — an operator's purge of one
// route, or a purge by model whose "model" was left out — is taken as a
// purge of everything, every tenant of every route and every model's
// generation, answered 200. Expected: 400 (ErrBadPurge), nothing purged.
func TestFollowup178PurgeAllBesideARouteIsMalformed(t *testing.T) {
	for _, body := range []string{
		`{"all":true,"route":"chat"}`,
		`{"all":true,"path":"/v1/chat/completions","headers":{"authorization":"Bearer sk-alice"}}`,
	} {
		t.Run(body, func(t *testing.T) {
			env := newEnv(t, testConfig)
			q := chatRequest("kept")
			env.fill(env.request("sie", bob, q), jsonCT, chatResponse("b"), 10)
			res, err := env.cache.Purge([]byte(body), "")
			_, d := env.lookup("sie", bob, q)
			if err == nil || !errors.Is(err, ErrBadPurge) {
				t.Fatalf("purge body %s (all beside another form's member) accepted: %+v, err %v; bob's entry on route sie still served: %v; want 400 and nothing purged",
					body, res, err, d == Serve)
			}
		})
	}
}

// README (Purge API): a replay's "headers are strings, one line each";
// review Z176 refused a header whose value is not a string, but not a
// "headers" that is not an object: a string (the raw header block) is
// read by gjson's ForEach as one header named "", a list of header lines
// (["x-team: red"]) as headers named "0", "1"…, and a number or bool
// is flagged with the name "" that badHeader takes for "none". The replay
// is keyed with none of the headers: on a route with key_headers it
// purges the entry of a request without them and answers 200, while the
// named one stays served — the "200 for nothing" of Z176. Expected: 400.
func TestFollowup178PurgeReplayHeadersNotAnObjectIsMalformed(t *testing.T) {
	const cfg = `{"max_request_bytes":8192,"purge":{"path":"/_modelcache/purge","token":"` + purgeToken + `"},
	  "routes":[{"name":"team","kind":"chat","path_exact":"/v1/team","shared":true,"key_headers":["x-team"]}]}`
	for _, headers := range []string{`"x-team: red"`, `["x-team: red"]`, `true`} {
		t.Run(headers, func(t *testing.T) {
			env := newEnv(t, cfg)
			q := chatRequest("team question")
			red := hdr("x-team", "red")
			env.fill(env.request("team", red, q), jsonCT, chatResponse("r"), 10)
			if _, d := env.lookup("team", red, q); d != Serve {
				t.Fatal("setup: team red's entry is not served")
			}
			purge := `{"path":"/v1/team","headers":` + headers + `,"body":` + q + `}`
			res, err := env.cache.Purge([]byte(purge), "")
			_, d := env.lookup("team", red, q)
			if err == nil && d == Serve {
				t.Fatalf("purge with \"headers\": %s answered success (%+v) and team red's entry is still served; want 400", headers, res)
			}
		})
	}
}

// README (Validation rules): a stream is judged on the message it
// assembles to, "the JSON form it stands for" (RATIONALE). Review Z171
// made the assembly keep a delta's role as carried (its raw JSON): a
// "role": null in a later delta — which pydantic-based OpenAI-compatible
// servers and proxies write in every delta after the first, serialising
// unset fields (LiteLLM's Delta) — now overwrites "assistant" with null,
// where String() read it as "" and the assembly wrote "assistant". The
// JSON form of that answer says "assistant"; a rule on the role
// ({"path":"choices.0.message.role","equals":"assistant"}) stores it and
// refuses the stream. A null says nothing, as review Z169 settled for
// tool call ids and types. Expected: the stream is stored.
func TestFollowup178StreamRoleNullInALaterDeltaSaysNothing(t *testing.T) {
	cfg := z171ChatCfg(`{"path":"choices.0.message.role","equals":"assistant"}`)
	jsonAns := `{"id":"c1","object":"chat.completion","model":"m","choices":[{"index":0,"message":{"role":"assistant","content":"Hello"},"finish_reason":"stop"}]}`
	if r := storeVerdict(t, cfg, "chat", alice, z171Plain, jsonCT, jsonAns); r != ReasonNone {
		t.Fatalf("setup: the JSON answer: %s", verdict(r))
	}
	stream := sseEvent(chatChunk(`{"role":"assistant","content":"Hel"}`, "")) +
		sseEvent(chatChunk(`{"role":null,"content":"lo"}`, "")) +
		sseEvent(chatChunk(`{"role":null}`, "stop")) + sseEvent("[DONE]")
	if r := storeVerdict(t, cfg, "chat", alice, streamChatRequest, sseCT, stream); r != ReasonNone {
		t.Errorf("a stream whose later deltas say \"role\":null: %s, want stored as its JSON form (assembled: %s)",
			verdict(r), AssembleStream(KindChat, []byte(stream)).Assembled)
	}
}

// SLOStatus.Standing (README: under min_samples with a stale response "the
// last verdict (and rate) stands"): "the rate of the last settled flush of
// any VM, read from shared data". Review Z170 made each VM skip writing a
// rate equal to the one it last noted or read itself — but another VM may
// have written another rate since. VM A settles 50%, VM B then 25%, VM A
// then 50% again: A skips the write, and shared data keeps B's older 25%.
// Once the window is thin (under min_samples, one stale response), every
// VM shows 25% as the standing rate, where the last settled flush (A's)
// measured 50%. Expected: Standing is the last settled flush's rate, 0.5.
func TestFollowup178SLOStandingRateIsTheLastSettledFlushs(t *testing.T) {
	const cfg = `{"routes":[{"name":"chat","kind":"chat","path_exact":"/v1/chat/completions","ttl":"720h",
	  "freshness_slo":{"max_age":"10s","max_fraction":0.9,"window":"1m","min_samples":4}}]}`
	store, clock := NewMemStore(), newFakeClock()
	vm := func() *Cache {
		return New(mustParse(t, cfg), Options{Store: store, Now: clock.Now, Rand: seededRand(1)})
	}
	a, b := vm(), vm()
	r := a.routeByName("chat")
	rb := b.routeByName("chat")
	serve := func(c *Cache, r *Route, fresh, stale int) {
		for i := 0; i < fresh; i++ {
			c.NoteServed(r, 0)
		}
		for i := 0; i < stale; i++ {
			c.NoteServed(r, time.Minute)
		}
	}
	flush := func(c *Cache) SLOStatus {
		t.Helper()
		out := c.FlushSLO()
		if len(out) != 1 {
			t.Fatalf("flush: %d statuses", len(out))
		}
		return out[0]
	}
	serve(a, r, 2, 2)
	if st := flush(a); !st.Settled || st.Rate != 0.5 {
		t.Fatalf("setup: A's flush %+v", st)
	}
	clock.Advance(time.Second)
	serve(b, rb, 4, 0)
	if st := flush(b); !st.Settled || st.Rate != 0.25 {
		t.Fatalf("setup: B's flush %+v", st)
	}
	clock.Advance(time.Second)
	serve(a, r, 0, 4)
	if st := flush(a); !st.Settled || st.Rate != 0.5 {
		t.Fatalf("setup: A's second flush %+v", st)
	}
	// The window empties; one stale response: under min_samples.
	clock.Advance(2 * time.Minute)
	serve(b, rb, 0, 1)
	st := flush(b)
	if st.Settled {
		t.Fatalf("setup: the thin window settled: %+v", st)
	}
	if st.Standing != 0.5 {
		t.Errorf("standing rate %v, want 0.5: the last settled flush (VM A's) measured 50%%; 25%% is VM B's, settled before it", st.Standing)
	}
}

// Review Z171 refused a length path (ending in #) compared with a string
// ({"path":"labels.#","equals":"1"}): "a rule no answer could pass
// refuses every answer: an error, not a route that silently stores
// nothing" (config_policy.go), and the error now says "compare it with
// numbers". A length is a whole number of at least 0, so equals 1.5,
// equals -1 or one_of [0.5, 1.5] holds on no answer just as "1" did, yet
// loads, and the route stores nothing (refused.validation on every
// answer). Expected: a config error, as for "1".
func TestFollowup178LengthPathComparedWithNoPossibleLengthIsAConfigError(t *testing.T) {
	for _, rule := range []string{`"equals":1.5`, `"equals":-1`, `"one_of":[0.5,1.5]`} {
		t.Run(rule, func(t *testing.T) {
			cfg := `{"routes":[{"name":"cls","kind":"classify","path_prefix":"/v1","shared":true,"validate":[
				{"path":"labels.#",` + rule + `}]}]}`
			if _, err := ParseConfig([]byte(cfg)); err == nil {
				r1 := storeVerdict(t, cfg, "cls", nil, `{"model":"m","input":"x"}`, jsonCT, `{"labels":["cat"]}`)
				r0 := storeVerdict(t, cfg, "cls", nil, `{"model":"m","input":"x"}`, jsonCT, `{"labels":[]}`)
				t.Fatalf("%s on the length labels.# loads; {\"labels\":[\"cat\"]}: %s, {\"labels\":[]}: %s", rule, verdict(r1), verdict(r0))
			}
		})
	}
}

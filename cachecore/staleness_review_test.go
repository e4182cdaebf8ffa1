package cachecore

import (
	"testing"
)

// Review Z268: staleness (shadow comparison, invalidation, SLO).

const z268ChatCfg = `{"upstream_cluster":"u","routes":[{"name":"chat","kind":"chat","path_prefix":"/v1/chat","finish_reasons":["stop","tool_calls"],` +
	`"shadow":{"sample":1,"min_samples":2,"max_divergence":0.5,"min_tenants":1}}]}`

// A custom tool call (OpenAI's tools of type "custom") carries an "id" the
// model makes new for every completion, as a function call's: README says
// a tool call's id is left out of the text comparison. textForm drops it
// only from calls with a "function" member, so the very same custom call
// diverges on every sample and invalidates a deterministic model.
func TestZ268CustomToolCallIdIsNotADivergence(t *testing.T) {
	env := newEnv(t, z268ChatCfg)
	q := `{"model":"m","messages":[{"role":"user","content":"run it"}],"tools":[{"type":"custom","custom":{"name":"code_exec"}}]}`
	ans := func(id string) string {
		return `{"id":"chatcmpl-` + id + `","object":"chat.completion","model":"m","choices":[{"index":0,"message":{"role":"assistant","content":null,` +
			`"tool_calls":[{"id":"call_` + id + `","type":"custom","custom":{"name":"code_exec","input":"print(1)"}}]},"finish_reason":"tool_calls"}]}`
	}
	env.fill(env.request("chat", alice, q), jsonCT, ans("a"), 10)
	req, d := env.lookup("chat", alice, q)
	if d != Serve {
		t.Fatal("setup: not a hit")
	}
	agree, ok := env.cache.compareFresh(req, jsonCT, []byte(ans("b")))
	if !ok || !agree {
		t.Errorf("the same custom tool call with a new call id compared agree=%v comparable=%v; want an agreement", agree, ok)
	}
	// End to end: the model answers every sample with the same call (a new
	// id each time), and another question's entry is dropped with the
	// namespace.
	other := `{"model":"m","messages":[{"role":"user","content":"unrelated"}]}`
	env.fill(env.request("chat", alice, other), jsonCT, chatResponse("kept"), 10)
	for i := 0; i < 3; i++ {
		req, d := env.lookup("chat", alice, q)
		if d != Serve {
			break
		}
		acts := env.cache.Shadow(req, hdr(":method", "POST", ":path", "/v1/chat"))
		acts[0].Call.Done(CallResult{Status: 200, Headers: jsonCT, Body: []byte(ans(string(rune('c' + i))))})
	}
	if _, d := env.lookup("chat", alice, other); d != Serve {
		t.Errorf("a deterministic model's identical custom tool calls invalidated its namespace: another question's entry is gone")
	}
}

// The legacy function_call answer (functions/function_call, which the
// cache keys on and admits) is the whole answer: content is null. The
// default chat paths compare content and tool_calls only, so a model that
// now calls another function, or with other arguments, agrees with the
// cached call: the divergence is never seen.
func TestZ268LegacyFunctionCallDivergenceIsSeen(t *testing.T) {
	var env *testEnv
	q := `{"model":"m","messages":[{"role":"user","content":"weather in Paris"}],"functions":[{"name":"get_weather","parameters":{}},{"name":"get_time","parameters":{}}]}`
	ans := func(name, args string) string {
		return `{"id":"chatcmpl-1","object":"chat.completion","model":"m","choices":[{"index":0,"message":{"role":"assistant","content":null,` +
			`"function_call":{"name":"` + name + `","arguments":` + quote(args) + `}},"finish_reason":"function_call"}]}`
	}
	// finish_reasons must admit function_call for the answer to be stored.
	env = newEnv(t, `{"upstream_cluster":"u","routes":[{"name":"chat","kind":"chat","path_prefix":"/v1/chat","finish_reasons":["stop","function_call"],`+
		`"shadow":{"sample":1,"min_samples":2,"max_divergence":0.5,"min_tenants":1}}]}`)
	env.fill(env.request("chat", alice, q), jsonCT, ans("get_weather", `{"city":"Paris"}`), 10)
	req, d := env.lookup("chat", alice, q)
	if d != Serve {
		t.Fatal("setup: not a hit")
	}
	fresh := []byte(ans("get_time", `{"tz":"Europe/Paris"}`))
	if r := env.cache.AdmitBody(req, jsonCT, fresh).Reason; r != ReasonNone {
		t.Fatalf("setup: fresh answer refused: %s", r)
	}
	agree, ok := env.cache.compareFresh(req, jsonCT, fresh)
	if !ok || agree {
		t.Fatalf("a different legacy function call compared agree=%v comparable=%v; want a divergence", agree, ok)
	}
}

// One credential, sent as Authorization: Bearer sk-alice on some requests
// and as x-api-key: sk-alice on others (both default tenant_headers; a
// gateway such as LiteLLM accepts the key under either), counts as two
// tenants: the tenant is a hash of the header's name and value. One client
// alone then meets min_tenants 2 and invalidates every tenant's entries of
// the model (README "No tenant invalidates alone"; RATIONALE: "as two
// they let one client alone meet shadow.min_tenants").
func TestZ268OneKeyUnderTwoHeadersIsNotTwoTenantsForShadow(t *testing.T) {
	const chat = `{"model":"m","messages":[{"role":"user","content":"hi"}]}`
	env := newEnv(t, `{"upstream_cluster":"u","routes":[{"name":"chat","kind":"chat","path_prefix":"/v1/chat",`+
		`"shadow":{"sample":1,"min_samples":5,"max_divergence":0.5}}]}`)
	env.fill(env.request("chat", bob, chat), jsonCT, chatWith(""), 10)
	observe := func(who [][2]string, n int) (res ShadowResult) {
		for i := 0; i < n && !res.Invalidated; i++ {
			req := env.request("chat", who, chat)
			env.fill(req, jsonCT, chatWith(""), 10)
			res, _ = env.cache.ObserveShadow(req, true)
		}
		return res
	}
	if res := observe(alice, 10); !res.HeldForTenants {
		t.Fatalf("setup: %+v", res)
	}
	res := observe(hdr("x-api-key", "sk-alice"), 1) // the same key
	if _, d := env.lookup("chat", bob, chat); res.Invalidated || d != Serve {
		t.Fatalf("one key under two header names invalidated the model for every tenant: %+v; bob served: %v", res, d == Serve)
	}
}

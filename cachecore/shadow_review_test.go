package cachecore

import (
	"fmt"
	"strings"
	"testing"

	"github.com/tidwall/gjson"
)

// The shadow comparison invalidates a model only on real divergence seen
// by real tenants (review 8).

func TestOneCredentialIsNotTwoTenantsForShadow(t *testing.T) {
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
	if res := observe(alice, 10); !res.HeldForTenants { // "Bearer sk-alice" alone: held, as designed
		t.Fatalf("setup: %+v", res)
	}
	res := observe(hdr("authorization", "bearer sk-alice"), 1) // the same credential
	if _, d := env.lookup("chat", bob, chat); res.Invalidated || d != Serve {
		t.Fatalf("one credential alone invalidated the model for every tenant: %+v; bob served: %v", res, d == Serve)
	}
}

func shadowEmbeddingsEnv(t *testing.T, extra string, vecs []string) (*testEnv, string) {
	env := newEnv(t, `{"upstream_cluster":"model","routes":[{"name":"embed","kind":"embeddings","path_exact":"/v1/embeddings","shared":true,
	  "ttl":"1h"`+extra+`,"shadow":{"sample":1,"max_concurrent":4,"min_samples":3,"max_divergence":0.5}}]}`)
	var in []string
	for i, v := range vecs {
		req, _ := env.lookup("embed", nil, fmt.Sprintf(`{"model":"e","input":"item %d"}`, i))
		env.fill(req, jsonCT, `{"object":"list","model":"e","data":[{"object":"embedding","index":0,"embedding":`+v+`}]}`, 10)
		in = append(in, fmt.Sprintf(`"item %d"`, i))
	}
	return env, `{"model":"e","input":[` + strings.Join(in, ",") + `]}`
}

func TestLargeBatchOfCachedItemsDoesNotDiverge(t *testing.T) {
	var vecs, data []string
	for i := 0; i < 40; i++ {
		vecs = append(vecs, fmt.Sprintf("[0.%03d1,0.%03d2,0.%03d3,0.%03d4,0.%03d5,0.%03d6,0.%03d7,0.%03d8]", i, i, i, i, i, i, i, i))
		data = append(data, fmt.Sprintf(`{"object":"embedding","index":%d,"embedding":%s}`, i, vecs[i]))
	}
	env, batch := shadowEmbeddingsEnv(t, `,"max_entry_bytes":2048`, vecs)
	fresh := []byte(`{"object":"list","model":"e","data":[` + strings.Join(data, ",") + `]}`) // the cached vectors, 4 KB
	other := `{"model":"e","input":"someone else's"}`
	req, _ := env.lookup("embed", nil, other)
	env.fill(req, jsonCT, `{"object":"list","model":"e","data":[{"object":"embedding","index":0,"embedding":[1,2]}]}`, 10)
	for s := 0; s < 3; s++ {
		req, d := env.lookup("embed", nil, batch)
		if d != Serve {
			t.Fatal("batch of cached items not a hit")
		}
		if !env.cache.Agrees(req, jsonCT, fresh) {
			t.Errorf("sample %d: the very same vectors (%d bytes) count as divergence", s, len(fresh))
		}
		acts := env.cache.Shadow(req, hdr(":method", "POST", ":path", "/v1/embeddings"))
		acts[0].Call.Done(CallResult{Status: 200, Headers: jsonCT, Body: fresh})
	}
	if _, d := env.lookup("embed", nil, other); d != Serve {
		t.Fatal("identical answers invalidated the model: another client's vector is gone")
	}
}

func TestShadowEmbeddingsPairsItemsByIndex(t *testing.T) {
	env, batch := shadowEmbeddingsEnv(t, "", []string{"[1,0,0]", "[0,1,0]", "[0,0,1]"})
	fresh := []byte(`{"object":"list","model":"e","data":[{"object":"embedding","index":2,"embedding":[0,0,1]},` +
		`{"object":"embedding","index":1,"embedding":[0,1,0]},{"object":"embedding","index":0,"embedding":[1,0,0]}]}`)
	if r, _ := env.lookup("embed", nil, `{"model":"e","input":["x0","x1","x2"]}`); env.cache.AdmitBody(r, jsonCT, fresh).Reason != ReasonNone {
		t.Fatal("setup: admission refuses it")
	}
	req, _ := env.lookup("embed", nil, batch)
	if !env.cache.Agrees(req, jsonCT, fresh) {
		t.Fatal("the same vectors in another order, each with its index (admission accepts it), count as divergence")
	}
}

func TestCosineOfIdenticalLargeVectorsAgrees(t *testing.T) {
	v := gjson.Parse(`[1e200, 2e200, 3e200]`)
	if !compareValues(&Shadow{Compare: "cosine", MinCosine: 0.999}, v, v) {
		t.Fatalf("identical finite vectors diverge: cosine = %v", cosine(numbers(v), numbers(v)))
	}
}

// Review Z25. README (Shadow comparison): only an answer "that can be
// read" is compared; any other counts as shadow.errors, never as a
// divergence. A fresh answer the route would refuse to store — cut by
// max_tokens (finish_reason "length"), failing a validation rule, a
// completion of the wrong shape — is not the model's answer to the
// question the entry holds: compared, it diverged from every cached
// answer and counted towards invalidating the model's namespace. Its
// streamed form was already judged so (assembledClean); its JSON form was
// compared whole.
func TestShadowFreshAnswerTheRouteRefusesIsAnErrorNotADivergence(t *testing.T) {
	env := newEnv(t, `{"upstream_cluster":"u","routes":[{"name":"chat","kind":"chat","path_prefix":"/v1/chat/completions",`+
		`"validate":[{"path":"choices.0.message.content","type":"string"}],`+
		`"shadow":{"sample":1,"min_samples":5,"max_divergence":0.5}}]}`)
	q := chatRequest("tell me a long story")
	req, _ := env.lookup("chat", alice, q)
	env.fill(req, jsonCT, chatResponse("Once upon a time, the end."), 10)
	for name, fresh := range map[string]string{
		"finish_reason length": `{"id":"c2","object":"chat.completion","model":"gpt-4o-mini","choices":[{"index":0,"message":{"role":"assistant","content":"Once upon"},"finish_reason":"length"}]}`,
		"validation rule":      `{"id":"c2","object":"chat.completion","model":"gpt-4o-mini","choices":[{"index":0,"message":{"role":"assistant","content":null,"tool_calls":[{"id":"x","type":"function","function":{"name":"f","arguments":"{}"}}]},"finish_reason":"stop"}]}`,
	} {
		hit, d := env.lookup("chat", alice, q)
		if d != Serve {
			t.Fatalf("setup: not a hit: %v", d)
		}
		if agree, ok := env.cache.compareFresh(hit, jsonCT, []byte(fresh)); ok {
			t.Errorf("%s: a fresh answer the route refuses to store was compared (agree=%v): counted shadow.%s, not shadow.errors",
				name, agree, map[bool]string{true: "agree", false: "diverge"}[agree])
		}
	}
}

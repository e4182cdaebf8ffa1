package cachecore

import (
	"fmt"
	"strings"
	"testing"
)

// Review Z250: follow-up of the fixes fab40d2..HEAD (review Z248) and
// 8d9ccc0..HEAD.

// z250CutJSON is a chat answer whose JSON-mode message was cut short
// under finish_reason "stop": its client fails to decode it.
const z250CutJSON = `{"id":"c1","object":"chat.completion","model":"m","choices":[{"index":0,"message":{"role":"assistant","content":` +
	`"{\"colours\": [\"red\", \"gre"},"finish_reason":"stop"}]}`

const z250Msgs = `"model":"gpt-4o-mini","messages":[{"role":"user","content":"list three colours as JSON"}]`

// Review Z248 exempts from the JSON-mode check every request with "echo":
// true, chat included, on the ground that the answer is the prompt
// followed by the JSON (README: "not for a completion that echoes its
// prompt"). A chat answer echoes nothing when the last message is the
// user's (vLLM prepends the last message only when it is of the
// assistant's role; OpenAI, TGI, llama.cpp and Ollama ignore echo on
// chat): the message is the JSON alone. A chat request with echo true and
// response_format json_object whose reply was cut short under
// finish_reason "stop" is stored and served to every later caller of it,
// whose client fails to decode it — the harm cc03597 fixed. Expected:
// refused bad_shape as without echo.
func TestZ250ChatEchoTrueSkipsJSONModeCheck(t *testing.T) {
	mode := `"response_format":{"type":"json_object"}`
	if r := storeVerdict(t, testConfig, "chat", alice, `{`+z250Msgs+`,`+mode+`}`, jsonCT, z250CutJSON); r != ReasonBadShape {
		t.Fatalf("setup: without echo: %q", r)
	}
	if r := storeVerdict(t, testConfig, "chat", alice, `{`+z250Msgs+`,"echo":true,`+mode+`}`, jsonCT, z250CutJSON); r != ReasonBadShape {
		t.Errorf("chat, last message the user's, echo true, response_format json_object: a JSON reply cut short "+
			"under finish_reason stop (nothing echoed): reason %q, want %q (not stored)", r, ReasonBadShape)
	}
}

// Review Z246 reads n and prompt "in any case", as Go's encoding/json
// (Ollama's OpenAI API, LocalAI) reads a member, and the canonical key
// keeps "Response_Format" as sent; but asksJSON reads the exact paths
// "response_format.type" (and "echo"). To such a server
// {"Response_Format":{"type":"json_object"}} (or a "Type" member) is JSON
// mode, yet the JSON check is skipped: a reply cut short under
// finish_reason "stop" is stored and served for the entry's life.
// Expected: refused bad_shape, as for "response_format".
func TestZ250JSONModeMemberInAnotherCaseNotChecked(t *testing.T) {
	for name, mode := range map[string]string{
		"Response_Format":        `"Response_Format":{"type":"json_object"}`,
		"response_format's Type": `"response_format":{"Type":"json_object"}`,
	} {
		env := newEnv(t, testConfig)
		req := env.request("chat", alice, `{`+z250Msgs+`,`+mode+`}`)
		if req.Bypassed() {
			continue // refused at the request: not stored either
		}
		if r := env.cache.AdmitAndStore(req, 200, jsonCT, []byte(z250CutJSON), OriginUpstream, 10).Reason; r != ReasonBadShape {
			t.Errorf("%s (JSON mode to a Go server): a JSON reply cut short under finish_reason stop: reason %q, want %q",
				name, r, ReasonBadShape)
		}
	}
}

// Review Z248 reads n as a string as pydantic's lax mode does ("3",
// "3.0"), but the echo exemption reads only a JSON true: to vLLM
// (pydantic lax) "echo": "true" (or 1) is true as well, and its legacy
// completion is the prompt followed by the JSON. Every such answer, whole
// and valid, is refused bad_shape (a lasting refusal) and the route never
// caches it — what TestZ248CompletionsEchoWithJSONModeAlwaysRefused was
// for. Expected: stored, as with "echo": true.
func TestZ250CompletionsEchoAsLaxTrueAlwaysRefused(t *testing.T) {
	const prompt = "List three colours as a JSON object:"
	ans := z246Completion(prompt + `{"colours": ["red", "green", "blue"]}`)
	mode := `"response_format":{"type":"json_object"}`
	if r := storeVerdict(t, testConfig, "completions", alice, `{"model":"m","prompt":`+quote(prompt)+`,"echo":true,`+mode+`}`, jsonCT, ans); r != ReasonNone {
		t.Fatalf("setup: echo true: %q", r)
	}
	for _, echo := range []string{`"true"`, `1`} {
		req := `{"model":"m","prompt":` + quote(prompt) + `,"echo":` + echo + `,` + mode + `}`
		if r := storeVerdict(t, testConfig, "completions", alice, req, jsonCT, ans); r != ReasonNone {
			t.Errorf("echo %s (true to pydantic's lax mode): the prompt echoed before a whole JSON object: reason %q, want stored",
				echo, r)
		}
	}
}

// Review Z248's otherVersion reads a shadowed answer larger than
// max_entry_bytes (a batch's may be items × max_entry_bytes: shadowLimit)
// by its header only. On a route whose model_version is a body_path
// (README's {"body_path": "system_fingerprint"}), the version is not read
// at all, though the body is in hand and compareFresh reads all of it
// next: an ordinary batch of a new version is compared with the old
// version's vectors, and the rollout counts shadow.diverge (and, with its
// samples, a shadow invalidation) — what Z247 and Z248 fixed for a header.
// Expected: no shadow.diverge; the answer is handled as another
// version's.
func TestZ250ShadowLargeBatchBodyPathVersionCompared(t *testing.T) {
	for _, meb := range []int{65536, 2048} { // the first a control: the answer within max_entry_bytes
		env := newEnv(t, `{"upstream_cluster":"model","routes":[{"name":"embed","kind":"embeddings","path_exact":"/v1/embeddings","shared":true,
		  "ttl":"1h","max_entry_bytes":`+fmt.Sprint(meb)+`,"model_version":{"body_path":"system_fingerprint"},
		  "shadow":{"sample":1,"max_concurrent":4,"min_samples":1,"max_divergence":0.5}}]}`)
		ct := hdr("content-type", "application/json")
		var in, data []string
		for i := 0; i < 40; i++ {
			req, _ := env.lookup("embed", nil, fmt.Sprintf(`{"model":"e","input":"item %d"}`, i))
			vec := fmt.Sprintf("[0.%03d1,0.%03d2,0.%03d3,0.%03d4]", i, i, i, i)
			env.fill(req, ct, `{"object":"list","model":"e","system_fingerprint":"v1","data":[{"object":"embedding","index":0,"embedding":`+vec+`}]}`, 10)
			in = append(in, fmt.Sprintf(`"item %d"`, i))
			data = append(data, fmt.Sprintf(`{"object":"embedding","index":%d,"embedding":[-0.%03d4,0.%03d3,-0.%03d2,0.%03d1]}`, i, i, i, i, i))
		}
		batch := `{"model":"e","input":[` + strings.Join(in, ",") + `]}`
		fresh := []byte(`{"object":"list","model":"e","system_fingerprint":"v2","data":[` + strings.Join(data, ",") + `]}`)
		req, d := env.lookup("embed", nil, batch)
		if d != Serve {
			t.Fatalf("max_entry_bytes %d: setup: batch of cached items not a hit: %v", meb, d)
		}
		acts := env.cache.Shadow(req, hdr(":method", "POST", ":path", "/v1/embeddings"))
		var events []string
		for _, a := range acts[0].Call.Done(CallResult{Status: 200, Headers: ct, Body: fresh}) {
			if a.Kind == ActCount {
				events = append(events, EventNames[a.Event])
			}
		}
		for _, e := range events {
			if e == "shadow.diverge" || e == "shadow.invalidations" {
				t.Errorf("a v2 batch answer (%d bytes; max_entry_bytes %d; its version at body_path system_fingerprint) "+
					"compared with v1 vectors: counted %v; want it handled as another version's answer (not compared)", len(fresh), meb, events)
				break
			}
		}
	}
}

package cachecore

import (
	"fmt"
	"strings"
	"testing"
)

// Review Z248: follow-up of the fixes c46f500..HEAD (reviews Z245, Z246,
// Z247).

// Review Z246's fix reads a string n as pydantic's lax mode does, but
// with strconv.Atoi: pydantic (vLLM, SGLang) also reads "3.0" as 3
// (strip_decimal_zeros), and a JSON number 3.0 is read as 3 here too. For
// "3.0" choicesAsked returns 1 and no count is checked: an answer of one
// choice is stored under the key of a request that asked three, and served
// to every later client of it — the case TestZ246CompletionsStringNSkipsTheChoiceCount
// was for. Expected: refused bad_shape (or the request bypassed).
func TestZ248StringNWithDecimalZerosSkipsTheChoiceCount(t *testing.T) {
	for _, n := range []string{`"3.0"`, `"3.00"`} {
		env := newEnv(t, testConfig)
		req := env.request("completions", alice, `{"model":"m","prompt":"Name a colour:","n":`+n+`}`)
		if req.Bypassed() {
			continue
		}
		if r := env.cache.AdmitAndStore(req, 200, jsonCT, []byte(z246Completion(" red")), OriginUpstream, 10).Reason; r == ReasonNone {
			t.Errorf("n %s (three choices to a lax server) answered with one choice: stored, want refused %q or the request bypassed",
				n, ReasonBadShape)
		}
	}
}

// Since c86f6b5 the JSON-mode check covers completions. A legacy
// completion with "echo": true (keyed as the answer's form, README
// key_fields) returns its prompt followed by the generated text, so the
// text of a JSON-mode completion is the prompt plus the JSON object and
// is never JSON itself: every such answer, whole and valid, is refused
// bad_shape and the route never caches it. Expected: a whole JSON
// object after the echoed prompt is stored.
func TestZ248CompletionsEchoWithJSONModeAlwaysRefused(t *testing.T) {
	const prompt = "List three colours as a JSON object:"
	for name, mode := range map[string]string{
		"response_format json_object": `"response_format":{"type":"json_object"}`,
		"guided_json":                 `"guided_json":{"type":"object"}`,
	} {
		req := `{"model":"m","prompt":` + quote(prompt) + `,"echo":true,` + mode + `}`
		ans := z246Completion(prompt + `{"colours": ["red", "green", "blue"]}`)
		if r := storeVerdict(t, testConfig, "completions", alice, req, jsonCT, ans); r != ReasonNone {
			t.Errorf("%s with echo: the prompt echoed before a whole JSON object: reason %q, want stored", name, r)
		}
	}
}

// Review Z245's fix counts one accept-encoding fault once (the host
// counted it: EncodingKept), but only on the path of a route without
// model_version and a request without entry or batch: ResponseHeaders
// sends every other refusal through headersRefused, whose f.refuse counts
// ReasonInternal as an internal error again. On a route that tracks model
// versions (versionRefused) one host fault still counts two internal
// errors, and so does a leader that keeps a stale entry for
// stale_if_error (req.Entry != nil). Expected: no ActInternal from the protocol (the host's count is
// the one).
func TestZ248EncodingFaultCountedTwiceOffThePlainPath(t *testing.T) {
	gz := hdr("content-type", "application/json", "content-encoding", "gzip", "x-model-version", "v1")
	check := func(name string, f *Flight) {
		t.Helper()
		f.Request().EncodingKept()
		_, acts := f.ResponseHeaders(200, gz, OriginUpstream, false)
		internal := 0
		for _, a := range acts {
			if a.Kind == ActInternal {
				internal++
			}
		}
		if internal != 0 {
			t.Errorf("%s: one accept-encoding fault the host already counted: the protocol counts %d more internal error(s) "+
				"(actions %s), want 0", name, internal, streamActs(acts))
		}
	}
	for _, tc := range []struct{ name, extra string }{
		{"plain route (control)", ""},
		{"model_version route", `,"model_version":{"header":"x-model-version"}`},
	} {
		c := newEnv(t, `{"routes":[{"name":"chat","kind":"chat","path_exact":"/v1/chat/completions"`+tc.extra+`}]}`).cache
		req := c.Begin(c.routeByName("chat"), "POST", "/v1/chat/completions", alice)
		c.SetBody(req, []byte(chatRequest("one accept-encoding fault")))
		if req.Bypassed() || c.Lookup(req) == Serve {
			t.Fatalf("%s: setup: not a miss", tc.name)
		}
		f := c.NewFlight(req, 1, 1)
		f.Miss()
		check(tc.name, f)
	}
	// A leader that keeps a stale entry for stale_if_error (req.Entry set).
	check("stale_if_error route, stale entry kept", staleLeaderUpstream(t, newEnv(t, flightConfig), chatRequest("q")))
}

// otherVersion (review Z247) reads the fresh answer's version only when
// the answer is within max_entry_bytes, although a header names the
// version whatever the body's size (noteVersion reads the header of an
// answer it does not read: review Z173). A shadowed embeddings batch's
// answer may be len(items)·max_entry_bytes (shadowLimit), so an ordinary
// batch of a new version is compared with the old version's vectors
// anyway: the rollout counts shadow.diverge (and, with its samples, a
// shadow invalidation on top of the version switch) — what Z247 fixed
// for every other answer. Expected: no shadow.diverge; the answer is
// handled as another version's (shadow.errors, the version switch).
func TestZ248ShadowLargeBatchOfAnotherVersionIsCompared(t *testing.T) {
	for _, meb := range []int{65536, 2048} { // the first a control: the answer within max_entry_bytes
		z248ShadowBatchOtherVersion(t, meb)
	}
}

func z248ShadowBatchOtherVersion(t *testing.T, meb int) {
	env := newEnv(t, `{"upstream_cluster":"model","routes":[{"name":"embed","kind":"embeddings","path_exact":"/v1/embeddings","shared":true,
	  "ttl":"1h","max_entry_bytes":`+fmt.Sprint(meb)+`,"model_version":{"header":"x-model-version"},
	  "shadow":{"sample":1,"max_concurrent":4,"min_samples":1,"max_divergence":0.5}}]}`)
	v1 := hdr("content-type", "application/json", "x-model-version", "v1")
	v2 := hdr("content-type", "application/json", "x-model-version", "v2")
	var in, data []string
	for i := 0; i < 40; i++ {
		req, _ := env.lookup("embed", nil, fmt.Sprintf(`{"model":"e","input":"item %d"}`, i))
		vec := fmt.Sprintf("[0.%03d1,0.%03d2,0.%03d3,0.%03d4]", i, i, i, i)
		env.fill(req, v1, `{"object":"list","model":"e","data":[{"object":"embedding","index":0,"embedding":`+vec+`}]}`, 10)
		in = append(in, fmt.Sprintf(`"item %d"`, i))
		// v2's vectors point elsewhere: another model.
		data = append(data, fmt.Sprintf(`{"object":"embedding","index":%d,"embedding":[-0.%03d4,0.%03d3,-0.%03d2,0.%03d1]}`, i, i, i, i, i))
	}
	batch := `{"model":"e","input":[` + strings.Join(in, ",") + `]}`
	fresh := []byte(`{"object":"list","model":"e","data":[` + strings.Join(data, ",") + `]}`)
	req, d := env.lookup("embed", nil, batch)
	if d != Serve {
		t.Fatalf("setup: batch of cached items not a hit: %v", d)
	}
	acts := env.cache.Shadow(req, hdr(":method", "POST", ":path", "/v1/embeddings"))
	var events []string
	for _, a := range acts[0].Call.Done(CallResult{Status: 200, Headers: v2, Body: fresh}) {
		if a.Kind == ActCount {
			events = append(events, EventNames[a.Event])
		}
	}
	for _, e := range events {
		if e == "shadow.diverge" || e == "shadow.invalidations" {
			t.Errorf("a v2 batch answer (%d bytes; max_entry_bytes %d; its version in a header) compared with v1 vectors: "+
				"counted %v; want it handled as another version's answer (not compared)", len(fresh), meb, events)
			return
		}
	}
}

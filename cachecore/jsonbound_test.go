package cachecore

import (
	"errors"
	"runtime/debug"
	"strconv"
	"strings"
	"testing"

	"github.com/tidwall/gjson"
)

// deep returns n nested arrays around 1: [[[…1…]]].
func deep(n int) string {
	return strings.Repeat("[", n) + "1" + strings.Repeat("]", n)
}

// deepObj returns n nested objects: {"a":{"a":…{}…}}.
func deepObj(n int) string {
	return strings.Repeat(`{"a":`, n) + "{}" + strings.Repeat("}", n)
}

// chatWith is a valid, admissible chat answer carrying extra members.
func chatWith(extra string) string {
	return `{"id":"c1","object":"chat.completion","model":"m","choices":[{"index":0,` +
		`"message":{"role":"assistant","content":"hi"},"finish_reason":"stop"}]` + extra + `}`
}

func sseEvent(data string) string { return "data: " + data + "\n\n" }

func chatChunk(delta, finish string) string {
	fr := "null"
	if finish != "" {
		fr = `"` + finish + `"`
	}
	return `{"id":"c1","object":"chat.completion.chunk","model":"m","choices":[{"index":0,"delta":` + delta + `,"finish_reason":` + fr + `}]}`
}

// goodStream is a complete, admissible chat stream with extra inserted
// after the finishing chunk and before [DONE].
func goodStream(extra string) string {
	return sseEvent(chatChunk(`{"role":"assistant","content":"Hel"}`, "")) +
		sseEvent(chatChunk(`{"content":"lo"}`, "")) +
		sseEvent(chatChunk(`{}`, "stop")) + extra + sseEvent("[DONE]")
}

var sseCT = hdr("content-type", "text/event-stream")

// Every parse of an upstream answer is bounded in depth before gjson (whose
// validator recurses once per level) sees it: a deeply nested answer is
// refused, whatever its kind, streamed or not, and wherever the depth hides.
func TestAdmitBodyRefusesDeepNesting(t *testing.T) {
	const levels = 100_000
	tests := []struct {
		name, route, body string
		headers           [][2]string
	}{
		{"chat: deep extra member", "chat", chatWith(`,"x":` + deep(levels)), jsonCT},
		{"chat: deep objects", "chat", chatWith(`,"x":` + deepObj(levels)), jsonCT},
		{"chat: whole body", "chat", deep(levels), jsonCT},
		{"chat: just over the limit", "chat", chatWith(`,"x":` + deep(MaxJSONDepth)), jsonCT},
		{"json route", "json", `{"ok":true,"x":` + deep(levels) + `}`, jsonCT},
		{"classify route", "classify", `{"label":"a","score":0.95,"x":` + deep(levels) + `}`, jsonCT},
		{"stream: deep event", "chat", goodStream(sseEvent(`{"id":"c1","choices":[],"x":` + deep(levels) + `}`)), sseCT},
		{"stream: deep usage", "chat", goodStream(sseEvent(`{"id":"c1","choices":[],"usage":` + deepObj(levels) + `}`)), sseCT},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			env := newEnv(t, strings.Replace(testConfig, `"max_entry_bytes": 65536`, `"max_entry_bytes": 4194304`, 1))
			h := alice
			if env.route(tc.route).Shared {
				h = noIdent
			}
			body := `{"model":"m","messages":[{"role":"user","content":"hi"}]}`
			if tc.headers[0][1] == "text/event-stream" {
				body = `{"model":"m","stream":true,"messages":[{"role":"user","content":"hi"}]}`
			}
			req := env.request(tc.route, h, body)
			if req.Bypassed() {
				t.Fatalf("request bypassed: %s", req.Reason)
			}
			adm := env.cache.AdmitBody(req, tc.headers, []byte(tc.body))
			if adm.Reason != ReasonTooDeep {
				t.Fatalf("AdmitBody = %q, want %q", adm.Reason, ReasonTooDeep)
			}
		})
	}
}

// Within the limit, nesting is fine.
func TestAdmitBodyAcceptsNestingWithinLimit(t *testing.T) {
	env := newEnv(t, testConfig)
	req := env.request("chat", alice, chatRequest("within"))
	// the answer's top-level object is level 1, "x" adds MaxJSONDepth-1.
	body := chatWith(`,"x":` + deep(MaxJSONDepth-1))
	if adm := env.cache.AdmitBody(req, jsonCT, []byte(body)); adm.Reason != ReasonNone {
		t.Fatalf("AdmitBody = %q, want stored", adm.Reason)
	}
}

// No recursive code sees unbounded nesting: the whole admission path (and
// purge) runs on a 100,000-level document within a small stack. Before the
// bound, gjson's validator needed tens of MiB here, and the runtime aborts
// the test binary with "goroutine stack exceeds limit".
func TestDeepNestingNeedsNoDeepStack(t *testing.T) {
	cfg := strings.Replace(testConfig, `"max_entry_bytes": 65536`, `"max_entry_bytes": 4194304`, 1)
	env := newEnv(t, strings.Replace(cfg, `"max_request_bytes": 8192`, `"max_request_bytes": 4194304`, 1))
	const levels = 100_000
	bodies := []string{
		chatWith(`,"x":` + deep(levels)),
		goodStream(sseEvent(`{"id":"c1","choices":[],"x":` + deepObj(levels) + `}`)),
	}
	old := debug.SetMaxStack(2 << 20)
	defer debug.SetMaxStack(old)
	done := make(chan []Reason)
	go func() {
		var got []Reason
		req := env.request("chat", alice, chatRequest("a"))
		got = append(got, env.cache.AdmitBody(req, jsonCT, []byte(bodies[0])).Reason)
		req = env.request("chat", alice, `{"model":"m","stream":true,"messages":[]}`)
		got = append(got, env.cache.AdmitBody(req, sseCT, []byte(bodies[1])).Reason)
		_, err := env.cache.Purge([]byte(`{"all":true,"x":`+deep(levels)+`}`), "")
		if !errors.Is(err, ErrTooDeep) {
			got = append(got, ReasonNone)
		} else {
			got = append(got, ReasonTooDeep)
		}
		done <- got
	}()
	got := <-done
	for i, r := range got {
		if r != ReasonTooDeep {
			t.Errorf("case %d: %q, want %q", i, r, ReasonTooDeep)
		}
	}
}

// A purge body is bounded too: a deep {"all":true,…} must not purge.
func TestPurgeRefusesDeepNesting(t *testing.T) {
	env := newEnv(t, testConfig)
	req := env.request("chat", alice, chatRequest("keep me"))
	env.fill(req, jsonCT, chatResponse("kept"), 10)
	for _, body := range []string{
		`{"all":true,"x":` + deep(3_000) + `}`,
		`{"all":true,"x":` + deepObj(MaxJSONDepth) + `}`,
		deep(4_000),
	} {
		_, err := env.cache.Purge([]byte(body), "")
		if !errors.Is(err, ErrBadPurge) || !errors.Is(err, ErrTooDeep) {
			t.Fatalf("Purge(deep) err = %v, want ErrBadPurge and ErrTooDeep", err)
		}
	}
	if _, d := env.lookup("chat", alice, chatRequest("keep me")); d != Serve {
		t.Fatalf("entry gone after refused purges: %v", d)
	}
	// A purge body over max_request_bytes and the room for a replay's
	// headers is refused before it is parsed.
	big := `{"all":true,"pad":"` + strings.Repeat("x", env.cache.Config().MaxRequestBytes+purgeEnvelope) + `"}`
	if _, err := env.cache.Purge([]byte(big), ""); !errors.Is(err, ErrBadPurge) {
		t.Fatalf("Purge(oversized) err = %v, want ErrBadPurge", err)
	}
	if _, d := env.lookup("chat", alice, chatRequest("keep me")); d != Serve {
		t.Fatalf("entry gone after an oversized purge: %v", d)
	}
}

func TestCheckJSONDepth(t *testing.T) {
	tests := []struct {
		name string
		in   string
		max  int
		want error
	}{
		{"scalar", `1`, 0, nil},
		{"at the limit", deep(3), 3, nil},
		{"over the limit", deep(4), 3, ErrTooDeep},
		{"objects over", deepObj(3), 3, ErrTooDeep}, // deepObj(3) is 4 levels
		{"siblings do not add up", `[[1],[2],[[3]]]`, 3, nil},
		{"brackets in strings do not count", `["[[[[{{{{"]`, 1, nil},
		{"escaped quote keeps the string open", `["\"[[[["]`, 1, nil},
		{"escaped backslash closes it", `["\\",[[1]]]`, 1, ErrTooDeep},
		{"very deep", deep(1_000_000), MaxJSONDepth, ErrTooDeep},
		{"unbalanced close", `]]][[[`, 2, ErrMalformedJSON},
		{"unterminated string", `["[[[[`, 1, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if err := CheckJSONDepth(tc.in, tc.max); !errors.Is(err, tc.want) || (err == nil) != (tc.want == nil) {
				t.Fatalf("CheckJSONDepth = %v, want %v", err, tc.want)
			}
			if err := CheckJSONDepth([]byte(tc.in), tc.max); !errors.Is(err, tc.want) || (err == nil) != (tc.want == nil) {
				t.Fatalf("CheckJSONDepth([]byte) = %v, want %v", err, tc.want)
			}
		})
	}
}

// The request side shares the limit: the canonicaliser refuses what the
// pre-scan refuses.
func TestOneDepthLimitForRequestsAndResponses(t *testing.T) {
	if _, err := Canonicalize([]byte(deep(MaxJSONDepth)), nil); err != nil {
		t.Fatalf("canonicaliser refuses %d levels: %v", MaxJSONDepth, err)
	}
	if _, err := Canonicalize([]byte(deep(MaxJSONDepth+1)), nil); !errors.Is(err, ErrTooDeep) {
		t.Fatalf("canonicaliser accepts %d levels: %v", MaxJSONDepth+1, err)
	}
	if CheckJSONDepth(deep(MaxJSONDepth), MaxJSONDepth) != nil || CheckJSONDepth(deep(MaxJSONDepth+1), MaxJSONDepth) == nil {
		t.Fatal("pre-scan and canonicaliser disagree on the limit")
	}
}

// An answer that reports an error is never stored, even with a complete
// message next to it.
func TestAdmitBodyRefusesErrorPayloads(t *testing.T) {
	vllmErr := `{"error":{"object":"error","message":"engine died","type":"InternalServerError","code":500}}`
	tests := []struct {
		name, route, body string
		headers           [][2]string
	}{
		{"stream: vLLM late error", "chat", goodStream(sseEvent(vllmErr)), sseCT},
		{"stream: object error", "chat", goodStream(sseEvent(`{"object":"error","message":"boom","code":500}`)), sseCT},
		{"stream: event error", "chat", goodStream("event: error\ndata: {\"message\":\"boom\"}\n\n"), sseCT},
		{"stream: event error without data", "chat", goodStream("event: error\ndata: \n\n"), sseCT},
		{"stream: error string", "chat", goodStream(sseEvent(`{"error":"boom"}`)), sseCT},
		{"stream: error after DONE", "chat", goodStream("") + sseEvent(vllmErr), sseCT},
		// After [DONE] an event is read only for an error report: one
		// that cannot be read (cut, a duplicate member) is taken for one,
		// as before [DONE] such an event refuses the stream.
		{"stream: cut error after DONE", "chat", goodStream("") + sseEvent(`{"error":{"message":"engine died"`), sseCT},
		{"stream: duplicate error after DONE", "chat", goodStream("") + sseEvent(`{"error":null,"error":{"message":"engine died"}}`), sseCT},
		{"stream: error inside a chunk", "chat", goodStream(sseEvent(`{"id":"c1","choices":[],"error":{"message":"x"}}`)), sseCT},
		{"body: error and choices", "chat", chatWith(`,"error":{"message":"partial failure"}`), jsonCT},
		{"body: object error and choices", "chat", strings.Replace(chatWith(""), `"object":"chat.completion"`, `"object":"error"`, 1), jsonCT},
		{"body: error string on json route", "json", `{"result":1,"error":"boom"}`, jsonCT},
		{"body: error on classify", "classify", `{"label":"a","score":0.95,"error":{"message":"x"}}`, jsonCT},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			env := newEnv(t, testConfig)
			h := alice
			if env.route(tc.route).Shared {
				h = noIdent
			}
			body := `{"model":"m","messages":[{"role":"user","content":"hi"}]}`
			if tc.headers[0][1] == "text/event-stream" {
				body = `{"model":"m","stream":true,"messages":[{"role":"user","content":"hi"}]}`
			}
			req := env.request(tc.route, h, body)
			if adm := env.cache.AdmitBody(req, tc.headers, []byte(tc.body)); adm.Reason != ReasonErrorPayload {
				t.Fatalf("AdmitBody = %q, want %q", adm.Reason, ReasonErrorPayload)
			}
		})
	}
	// The same answers without the error are stored: the refusal is the
	// error's doing.
	env := newEnv(t, testConfig)
	req := env.request("chat", alice, `{"model":"m","stream":true,"messages":[]}`)
	if adm := env.cache.AdmitBody(req, sseCT, []byte(goodStream(""))); adm.Reason != ReasonNone {
		t.Fatalf("clean stream refused: %q", adm.Reason)
	}
	req = env.request("chat", alice, chatRequest("x"))
	for _, extra := range []string{``, `,"error":null`} {
		if adm := env.cache.AdmitBody(req, jsonCT, []byte(chatWith(extra))); adm.Reason != ReasonNone {
			t.Fatalf("clean body %q refused: %q", extra, adm.Reason)
		}
	}
}

// Fuzz the response side: admission of any body, streamed or not, never
// panics, never admits an answer nested beyond the limit or carrying an
// error, and terminates within a small stack.
func FuzzAdmitResponse(f *testing.F) {
	for _, s := range []string{
		chatWith(""), chatWith(`,"x":` + deep(200)), deep(10_000), deepObj(5_000),
		chatWith(`,"error":{"message":"x"}`), `{"error":{"message":"x"}}`, `{"object":"error"}`,
		`{"choices":[{"message":{"content":"\"[[[["},"finish_reason":"stop"}]}`, `["\\",[[[1]]]]`,
		`]]]]`, `"[[[`, ``, `{`,
	} {
		f.Add([]byte(s), false)
	}
	for _, s := range []string{
		goodStream(""), goodStream(sseEvent(deep(10_000))), goodStream("event: error\ndata: {}\n\n"),
		goodStream(sseEvent(`{"error":{"message":"late"}}`)), "data: " + deepObj(3_000) + "\n\ndata: [DONE]\n\n",
		"data: [DONE]\n\n", "data: {\n\n", "event: error\n\n",
	} {
		f.Add([]byte(s), true)
	}
	env := newEnv(f, strings.Replace(testConfig, `"max_entry_bytes": 65536`, `"max_entry_bytes": 4194304`, 1))
	route := env.route("chat")
	f.Fuzz(func(t *testing.T, body []byte, streamed bool) {
		headers, reqBody := jsonCT, chatRequest("fuzz")
		if streamed {
			headers, reqBody = sseCT, `{"model":"m","stream":true,"messages":[]}`
		}
		req := env.cache.Begin(route, "POST", route.Exact, alice)
		env.cache.SetBody(req, []byte(reqBody))
		adm := env.cache.AdmitBody(req, headers, body)
		if adm.Reason != ReasonNone {
			return
		}
		doc := body
		if streamed {
			sum := AssembleStream(KindChat, body)
			if sum.ErrorEvent || sum.TooDeep || sum.Malformed || !sum.Done {
				t.Fatalf("admitted a stream with error=%v deep=%v malformed=%v done=%v", sum.ErrorEvent, sum.TooDeep, sum.Malformed, sum.Done)
			}
			doc = sum.Assembled
		}
		if err := CheckJSONDepth(doc, MaxJSONDepth); err != nil {
			t.Fatalf("admitted %q: %v", body, err)
		}
	})
}

// Fuzz stream assembly on its own: it never panics, and what it assembles
// is bounded JSON whenever it reports no fault.
func FuzzAssembleStream(f *testing.F) {
	for _, s := range []string{
		goodStream(""), goodStream(sseEvent(deep(20_000))), goodStream(sseEvent(`{"id":"c1","choices":[],"usage":` + deepObj(2_000) + `}`)),
		goodStream("event: error\ndata: {\"message\":\"x\"}\n\n"), goodStream(sseEvent(`{"object":"error"}`)),
		"data: [DONE]\n\ndata: {\"error\":1}\n\n", "data: {\"choices\":[{\"index\":127,\"delta\":{\"tool_calls\":[{\"index\":3,\"function\":{\"name\":\"f\"}}]}}]}\n\n",
		"\r\r\r", "data", ":\n\n",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		for _, kind := range []Kind{KindChat, KindCompletions} {
			s := AssembleStream(kind, body)
			if s.Malformed || s.TooDeep {
				continue
			}
			if err := CheckJSONDepth(s.Assembled, MaxJSONDepth); err != nil {
				t.Fatalf("assembled beyond the limit from %q: %v", body, err)
			}
		}
	})
}

// An answer with a duplicate member name means two things: gjson (and so
// every check here) reads the first copy, while many clients' JSON parsers
// keep the last. Such an answer is never stored, whatever the copies say.
func TestAdmitBodyRefusesDuplicateMembers(t *testing.T) {
	tests := []struct {
		name, body string
		headers    [][2]string
	}{
		{"body: error null then error", chatWith(`,"error":null,"error":{"message":"boom"}`), jsonCT},
		{"body: content twice", strings.Replace(chatWith(""), `"content":"hi"`, `"content":"hi","content":""`, 1), jsonCT},
		{"body: finish_reason twice", strings.Replace(chatWith(""), `"finish_reason":"stop"`, `"finish_reason":"stop","finish_reason":"length"`, 1), jsonCT},
		{"stream: finish_reason twice in a chunk", goodStream(sseEvent(strings.Replace(chatChunk(`{}`, "stop"), `"finish_reason":"stop"`, `"finish_reason":"stop","finish_reason":"length"`, 1))), sseCT},
		{"stream: content twice in a delta", sseEvent(chatChunk(`{"role":"assistant","content":"Hel","content":""}`, "")) +
			sseEvent(chatChunk(`{}`, "stop")) + sseEvent("[DONE]"), sseCT},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			env := newEnv(t, testConfig)
			body := `{"model":"m","messages":[{"role":"user","content":"hi"}]}`
			if tc.headers[0][1] == "text/event-stream" {
				body = `{"model":"m","stream":true,"messages":[{"role":"user","content":"hi"}]}`
			}
			req := env.request("chat", alice, body)
			if adm := env.cache.AdmitBody(req, tc.headers, []byte(tc.body)); adm.Reason != ReasonDuplicateKey {
				t.Fatalf("AdmitBody = %q, want %q", adm.Reason, ReasonDuplicateKey)
			}
		})
	}
}

// The duplicate-member check runs on every answer admitted to the cache;
// an embeddings answer is mostly numbers. (make bench's S9 prints the
// end-to-end cost per item.)
func BenchmarkDuplicateMembersEmbeddings(b *testing.B) {
	body := embBody()
	var d duplicateMembers
	b.SetBytes(int64(len(body)))
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if d.check(body) != ReasonNone {
			b.Fatal("refused")
		}
	}
}

// embBody is an embeddings answer of 64 vectors of 256 floats.
func embBody() []byte {
	var sb strings.Builder
	sb.WriteString(`{"object":"list","data":[`)
	for i := 0; i < 64; i++ {
		if i > 0 {
			sb.WriteByte(',')
		}
		sb.WriteString(`{"object":"embedding","index":` + strconv.Itoa(i) + `,"embedding":[`)
		for j := 0; j < 256; j++ {
			if j > 0 {
				sb.WriteByte(',')
			}
			sb.WriteString(strconv.FormatFloat(float64(i*j%97)/97.0-0.5, 'g', -1, 64))
		}
		sb.WriteString(`]}`)
	}
	sb.WriteString(`],"model":"m","usage":{"prompt_tokens":64,"total_tokens":64}}`)
	return []byte(sb.String())
}

// The duplicate-member scan agrees with the canonicaliser (which decodes
// every name and refuses duplicates) on every valid document within the
// depth bound.
func FuzzDuplicateMembers(f *testing.F) {
	for _, s := range []string{
		`{"a":1,"b":2}`, `{"a":1,"a":2}`, `{"a":1,"\u0061":2}`, `{"a\"":1,"a\\":2}`,
		`{"x":{"a":1},"y":{"a":1}}`, `{"x":[{"a":1,"a":1}]}`, `["a","a"]`, `{"a":"b","b":"a"}`,
		`{"k0":0,"k1":1,"k2":2,"k3":3,"k4":4,"k5":5,"k6":6,"k7":7,"k8":8,"k9":9,"k3":10}`,
		`{"s":"{\"a\":1,\"a\":2}"}`, `{"a" : 1 , "a" : 2}`, `{"\n":1,"\u000a":2}`, `{}`, `[]`, `1`,
		`{"é":1,"\u00e9":2}`, `{"\ud83d\ude00":1,"😀":2}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		if checkJSON(b) != ReasonNone {
			return
		}
		var c Canonicalizer
		_, err := c.Append(nil, b, nil)
		if err != nil && !errors.Is(err, ErrDuplicateKey) {
			return // a number out of range: the canonicaliser stops early
		}
		var d duplicateMembers
		got := d.check(b) == ReasonDuplicateKey
		if want := errors.Is(err, ErrDuplicateKey); got != want {
			t.Fatalf("%q: scan says duplicate %v, canonicaliser %v", b, got, want)
		}
	})
}

// checkJSONTwoPasses is checkJSON as it was: the depth pre-scan, then
// gjson's validator. The one-pass scan must give its verdict exactly.
func checkJSONTwoPasses(b []byte, maxDepth int) Reason {
	if err := CheckJSONDepth(b, maxDepth); err != nil {
		if errors.Is(err, ErrTooDeep) {
			return ReasonTooDeep
		}
		return ReasonMalformedJSON
	}
	if !gjson.ValidBytes(b) {
		return ReasonMalformedJSON
	}
	return ReasonNone
}

var checkJSONSeeds = []string{
	``, ` `, `1`, `-`, `-0`, `01`, `-01`, `1.`, `1.5`, `1.5e`, `1e+`, `1E-7`, `.5`, `+1`, `1.5.3`, `0x1`,
	`true`, `tru`, `truex`, `false`, `null`, `nul`, `"a"`, `"a`, `"\u00e9"`, `"\u00g9"`, `"\u12"`, `"\x"`, `"\/"`,
	"\"a\tb\"", "\"\x7f\xff\"", `[]`, `[ ]`, `[1,]`, `[,1]`, `[1 2]`, `[1,2]`, `{}`, `{ }`, `{"a":1}`, `{"a":1,}`,
	`{"a" : [1, {"b": null}] }`, `{"a"}`, `{"a":}`, `{a:1}`, `{"a":1 "b":2}`, `[}`, `{]`, `]`, `}`, `[[]]]`,
	`[1] [2]`, "\n{\"a\":\r\n[true,false]\t}\n", `["\"[[[["]`, `["\\",[[1]]]`, `]]][[[`, `["[[[[`,
	deep(3), deep(4), deepObj(3), deep(MaxJSONDepth), deep(MaxJSONDepth + 1), `x` + deep(MaxJSONDepth+1), deep(MaxJSONDepth+1) + `x`,
	`{"data":[{"index":0,"embedding":[0.1,-2e-3,3E+2]}],"model":"m","usage":{"total_tokens":1}}`,
}

func TestCheckJSONIsTheTwoPassVerdict(t *testing.T) {
	for _, s := range checkJSONSeeds {
		for _, max := range []int{3, MaxJSONDepth} {
			if got, want := checkJSONAt([]byte(s), max), checkJSONTwoPasses([]byte(s), max); got != want {
				t.Errorf("%q (max %d): one pass %s, two passes %s", s, max, got, want)
			}
		}
		if got, want := checkJSON(s), checkJSONTwoPasses([]byte(s), MaxJSONDepth); got != want {
			t.Errorf("%q: checkJSON(string) %s, two passes %s", s, got, want)
		}
	}
}

func FuzzCheckJSON(f *testing.F) {
	for _, s := range checkJSONSeeds {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		for _, max := range []int{2, MaxJSONDepth} {
			if got, want := checkJSONAt(b, max), checkJSONTwoPasses(b, max); got != want {
				t.Fatalf("%q (max %d): one pass %s, two passes %s", b, max, got, want)
			}
		}
		if got, want := checkJSON(string(b)), checkJSON(b); got != want {
			t.Fatalf("%q: string %s, bytes %s", b, got, want)
		}
	})
}

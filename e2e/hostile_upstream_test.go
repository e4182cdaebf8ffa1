package e2e

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"
)

// Hostile upstream answers, on real Envoy --concurrency 2 with the shipped
// envoy/envoy.yaml. The model server is scripted (modelsim SetScript) to
// answer with what an attacker — or a user asking the model to print ten
// thousand brackets — can make it say. Each attack asserts:
//
//   - nothing poisoned is served: the same request again is not a hit, and
//     once the model behaves, that request gets the model's real answer;
//   - the refusal is counted (modelcache_route.chat.refused.<reason>);
//   - the VM lives on every worker: fresh requests on fresh connections
//     (the kernel spreads them over both workers) are cached, miss then hit;
//   - Envoy's log has no RangeError, panic or failed VM callback.

const shippedPurgeToken = "demo-purge-token-change-me" // envoy/envoy.yaml

// freshClient opens a new connection per request, so that successive
// requests land on either worker.
var freshClient = &http.Client{Transport: &http.Transport{DisableKeepAlives: true, DisableCompression: true}, Timeout: 60 * time.Second}

func tryFresh(method, url, body string, headers ...string) (*response, error) {
	req, err := http.NewRequestWithContext(context.Background(), method, url, strings.NewReader(body))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", "application/json")
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	res, err := freshClient.Do(req)
	if err != nil {
		return nil, err
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		return &response{Status: res.StatusCode, Header: res.Header, Body: b}, err
	}
	return &response{Status: res.StatusCode, Header: res.Header, Body: b}, nil
}

func doFresh(t *testing.T, method, url, body string, headers ...string) *response {
	t.Helper()
	r, err := tryFresh(method, url, body, headers...)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

const tenantA = "Bearer tenant-a"

// everyWorkerCaches sends distinct requests twice each, every one on its
// own connection, until both workers took several (Envoy's per-worker
// connection counters say so): each must carry Cache-Status (a worker
// whose VM died under FAIL_OPEN answers without one), the first stored,
// the second a hit.
func everyWorkerCaches(t *testing.T, e *envoyProc, tag string) {
	t.Helper()
	url := e.URL + "/v1/chat/completions"
	w0, w1 := workerConnections(e)
	for i := 0; ; i++ {
		if n0, n1 := workerConnections(e); i >= 8 && n0-w0 >= 4 && n1-w1 >= 4 {
			break
		} else if i == 64 {
			t.Fatalf("64 fresh connections did not reach both workers (+%d, +%d)", n0-w0, n1-w1)
		}
		body := chat(fmt.Sprintf("%s: is the cache alive? %d", tag, i))
		miss := doFresh(t, "POST", url, body, "authorization", tenantA)
		if miss.Status != 200 || !strings.Contains(miss.CacheStatus(), "fwd=miss") || !strings.Contains(miss.CacheStatus(), "stored") {
			t.Fatalf("request %d: status %d, Cache-Status %q: the filter is not caching on this worker", i, miss.Status, miss.CacheStatus())
		}
		hit := doFresh(t, "POST", url, body, "authorization", tenantA)
		if !strings.Contains(hit.CacheStatus(), "hit") || string(hit.Body) != string(miss.Body) {
			t.Fatalf("request %d again: Cache-Status %q, want a hit of the stored answer", i, hit.CacheStatus())
		}
	}
}

var vmFault = regexp.MustCompile(`RangeError|panic|failed`)

// logIsClean fails the test if Envoy's log shows a VM fault.
func logIsClean(t *testing.T, e *envoyProc) {
	t.Helper()
	for _, line := range strings.Split(e.Log(), "\n") {
		if vmFault.MatchString(line) {
			t.Fatalf("Envoy's log shows a fault: %s", line)
		}
	}
}

// waitAtLeast polls a stat until it reaches want (or 10 s pass).
func waitAtLeast(e *envoyProc, name string, want int64) int64 {
	deadline := time.Now().Add(10 * time.Second)
	for {
		v := e.Stat(name)
		if v >= want || time.Now().After(deadline) {
			return v
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// nested returns n nested arrays.
func nested(n int) string { return strings.Repeat("[", n) + "0" + strings.Repeat("]", n) }

// A well-formed chat answer with extra top-level members.
func chatAnswer(extra string) string {
	return `{"id":"chatcmpl-h","object":"chat.completion","created":1,"model":"sim-chat","choices":[{"index":0,` +
		`"message":{"role":"assistant","content":"a perfectly fine answer"},"finish_reason":"stop"}]` + extra + `}`
}

func chunk(delta, finish string) string {
	fr := "null"
	if finish != "" {
		fr = `"` + finish + `"`
	}
	return `data: {"id":"chatcmpl-h","object":"chat.completion.chunk","created":1,"model":"sim-chat","choices":[{"index":0,"delta":` +
		delta + `,"finish_reason":` + fr + `}]}` + "\n\n"
}

// chatStream is a complete stream — content, finish_reason stop — with
// extra events after the last chunk and before [DONE].
func chatStream(extra string) string {
	return chunk(`{"role":"assistant","content":"a perfectly "}`, "") + chunk(`{"content":"fine answer"}`, "") +
		chunk(`{}`, "stop") + extra + "data: [DONE]\n\n"
}

// answer scripts the model's reply: status 200, the given headers, body.
func answer(body string, headers ...string) func(w http.ResponseWriter, r *http.Request, _ []byte) bool {
	return func(w http.ResponseWriter, r *http.Request, _ []byte) bool {
		for i := 0; i+1 < len(headers); i += 2 {
			w.Header().Set(headers[i], headers[i+1])
		}
		w.WriteHeader(200)
		_, _ = io.WriteString(w, body)
		return true
	}
}

// chunked writes body in pieces with no content-length (Go's server
// sends it chunked).
func chunked(body string, headers ...string) func(w http.ResponseWriter, r *http.Request, _ []byte) bool {
	return func(w http.ResponseWriter, r *http.Request, _ []byte) bool {
		for i := 0; i+1 < len(headers); i += 2 {
			w.Header().Set(headers[i], headers[i+1])
		}
		w.WriteHeader(200)
		for len(body) > 0 {
			n := min(len(body), 64<<10)
			_, _ = io.WriteString(w, body[:n])
			body = body[n:]
		}
		return true
	}
}

// shortLength declares a content-length 20 bytes short of body and writes
// it all: what reaches Envoy is the declared prefix, a cut JSON document.
func shortLength(body string) func(w http.ResponseWriter, r *http.Request, _ []byte) bool {
	return func(w http.ResponseWriter, r *http.Request, _ []byte) bool {
		n := len(body) - 20
		w.Header().Set("content-type", jsonType)
		w.Header().Set("content-length", strconv.Itoa(n))
		w.WriteHeader(200)
		_, _ = io.WriteString(w, body[:n])
		_, _ = io.WriteString(w, body[n:]) // refused by net/http: more than declared
		return true
	}
}

const jsonType, sseType = "application/json", "text/event-stream"

// TestDeeplyNestedAnswersAndPurgesKeepEveryWorkerCaching is issue 13's
// acceptance for item 1: 4 upstream 200 answers and 4 purge bodies nested
// 20,000 deep, then every worker still caches and the log is clean.
func TestDeeplyNestedAnswersAndPurgesKeepEveryWorkerCaching(t *testing.T) {
	e := startEnvoy(t, envoyOpts{})
	url := e.URL + "/v1/chat/completions"
	deepAnswer := chatAnswer(`,"x":` + nested(20_000))
	e.Sim.SetScript(answer(deepAnswer, "content-type", jsonType))
	for i := 0; i < 4; i++ {
		r, err := tryFresh("POST", url, chat(fmt.Sprintf("print 20000 brackets, please (%d)", i)), "authorization", tenantA)
		if err != nil {
			t.Fatalf("deep answer %d: %v", i, err)
		}
		if r.Status != 200 || string(r.Body) != deepAnswer {
			t.Fatalf("deep answer %d did not reach the client intact: status %d, %d bytes", i, r.Status, len(r.Body))
		}
		expectCS(t, r, "fwd=miss", "detail=too-deep")
	}
	if got := waitAtLeast(e, "wasmcustom.modelcache_route.chat.refused.too_deep", 4); got != 4 {
		t.Fatalf("refused.too_deep = %d, want 4", got)
	}
	for i := 0; i < 4; i++ {
		body := `{"all":true,"x":` + nested(20_000) + `}`
		r, err := tryFresh("POST", e.URL+"/modelcache/purge", body, "authorization", "Bearer "+shippedPurgeToken)
		if err != nil {
			t.Fatalf("deep purge %d: %v", i, err)
		}
		if r.Status != 400 || !strings.Contains(string(r.Body), "nested too deeply") {
			t.Fatalf("deep purge %d: status %d %.200s, want 400 from the filter", i, r.Status, r.Body)
		}
	}
	e.Sim.SetScript(nil)
	everyWorkerCaches(t, e, "after deep nesting")
	if n := e.Stat("wasmcustom.modelcache.purges"); n != 0 {
		t.Fatalf("a deep purge body purged (purges=%d)", n)
	}
	logIsClean(t, e)
}

// attack is one hostile answer of the model.
type attack struct {
	name   string
	stream bool // the client asks for stream: true
	script func(w http.ResponseWriter, r *http.Request, body []byte) bool
	reason string // refused.<reason> counted for the first request
	// route is the shipped config's route under attack; "" is chat.
	route string
}

// routeRequest is, per route of the shipped config, its path, a request
// for prompt, and what the model's real answer contains.
func routeRequest(route, prompt string, stream bool) (path, body, model string) {
	switch route {
	case "embeddings":
		return "/v1/embeddings", fmt.Sprintf(`{"model":"sim-embed","input":[%q]}`, prompt), "sim-embed"
	case "classify":
		return "/v1/classify", fmt.Sprintf(`{"model":"sim-classify","input":%q}`, prompt), "sim-classify"
	}
	if stream {
		return "/v1/chat/completions", streamReq(prompt), "sim-chat"
	}
	return "/v1/chat/completions", chat(prompt), "sim-chat"
}

func hostileAttacks() []attack {
	vllmLate := `data: {"error":{"object":"error","message":"engine died mid-request","type":"InternalServerError","param":null,"code":500}}` + "\n\n"
	huge := chatAnswer(`,"pad":"` + strings.Repeat("x", 2<<20) + `"`)
	var hugeStream strings.Builder
	for hugeStream.Len() < 2<<20 {
		hugeStream.WriteString(chunk(`{"content":"`+strings.Repeat("y", 1000)+`"}`, ""))
	}
	hugeStream.WriteString(chunk(`{}`, "stop") + "data: [DONE]\n\n")
	good := chatAnswer("")
	return []attack{
		// Nesting.
		{name: "deep JSON answer", script: answer(chatAnswer(`,"x":`+nested(20_000)), "content-type", jsonType), reason: "too_deep"},
		{name: "deep JSON answer, objects", script: answer(chatAnswer(`,"x":`+strings.Repeat(`{"a":`, 20_000)+"{}"+strings.Repeat("}", 20_000)), "content-type", jsonType), reason: "too_deep"},
		{name: "deep embeddings answer", route: "embeddings", script: answer(`{"object":"list","data":[{"object":"embedding","index":0,"embedding":[0.5,0.5]}],"model":"sim-embed","x":`+nested(20_000)+`}`, "content-type", jsonType), reason: "too_deep"},
		{name: "deep classify answer", route: "classify", script: answer(`{"model":"sim-classify","label":"a","score":0.99,"x":`+nested(20_000)+`}`, "content-type", jsonType), reason: "too_deep"},
		{name: "deep SSE event", stream: true, script: answer(chatStream(`data: {"id":"chatcmpl-h","choices":[],"x":`+nested(20_000)+"}\n\n"), "content-type", sseType), reason: "too_deep"},
		{name: "deep SSE usage", stream: true, script: answer(chatStream(`data: {"id":"chatcmpl-h","choices":[],"usage":`+strings.Repeat(`{"a":`, 20_000)+"{}"+strings.Repeat("}", 20_000)+"}\n\n"), "content-type", sseType), reason: "too_deep"},
		// Size.
		{name: "huge answer, chunked", script: chunked(huge, "content-type", jsonType), reason: "too_large"},
		{name: "huge answer with content-length", script: answer(huge, "content-type", jsonType, "content-length", strconv.Itoa(len(huge))), reason: "too_large"},
		{name: "huge stream", stream: true, script: chunked(hugeStream.String(), "content-type", sseType), reason: "too_large"},
		// Error events in streams and error members in bodies.
		{name: "stream with a late vLLM error", stream: true, script: answer(chatStream(vllmLate), "content-type", sseType), reason: "error_payload"},
		{name: "stream with an object:error event", stream: true, script: answer(chatStream(`data: {"object":"error","message":"boom","code":500}`+"\n\n"), "content-type", sseType), reason: "error_payload"},
		{name: "stream with event: error", stream: true, script: answer(chatStream("event: error\ndata: {\"message\":\"boom\"}\n\n"), "content-type", sseType), reason: "error_payload"},
		{name: "stream with an error after DONE", stream: true, script: answer(chatStream("")+vllmLate, "content-type", sseType), reason: "error_payload"},
		{name: "body with error and choices", script: answer(chatAnswer(`,"error":{"message":"partial failure","code":500}`), "content-type", jsonType), reason: "error_payload"},
		{name: "embeddings with an error member", route: "embeddings", script: answer(`{"object":"list","data":[{"object":"embedding","index":0,"embedding":[0.5,0.5]}],"model":"sim-embed","error":{"message":"partial"}}`, "content-type", jsonType), reason: "error_payload"},
		{name: "classify with an error member", route: "classify", script: answer(`{"model":"sim-classify","label":"a","score":0.99,"error":"degraded"}`, "content-type", jsonType), reason: "error_payload"},
		// Lying content-type.
		// Duplicate member names: the cache reads the first copy, many clients the last.
		{name: "body with error null, then an error", script: answer(chatAnswer(`,"error":null,"error":{"message":"boom"}`), "content-type", jsonType), reason: "duplicate_key"},
		{name: "stream chunk with finish_reason stop, then length", stream: true, script: answer(chatStream(strings.Replace(chunk(`{}`, "stop"), `"finish_reason":"stop"`, `"finish_reason":"stop","finish_reason":"length"`, 1)), "content-type", sseType), reason: "duplicate_key"},

		{name: "text/plain carrying JSON", script: answer(good, "content-type", "text/plain"), reason: "not_json"},
		{name: "application/json carrying garbage", script: answer("<html>502 Bad Gateway</html>", "content-type", jsonType), reason: "malformed_json"},
		{name: "event-stream carrying garbage", stream: true, script: answer("data: {not json\n\ndata: [DONE]\n\n", "content-type", sseType), reason: "malformed_json"},
		// Lying content-length.
		{name: "content-length shorter than the body", script: shortLength(good), reason: "malformed_json"},
		{name: "content-length longer than the body", script: answer(good, "content-type", jsonType, "content-length", strconv.Itoa(len(good)+100)), reason: "truncated"},
	}
}

// TestHostileUpstream runs every attack against one Envoy.
func TestHostileUpstream(t *testing.T) {
	e := startEnvoy(t, envoyOpts{})
	for i, a := range hostileAttacks() {
		t.Run(a.name, func(t *testing.T) {
			route := a.route
			if route == "" {
				route = "chat"
			}
			path, body, model := routeRequest(route, fmt.Sprintf("attack %d: %s", i, a.name), a.stream)
			url := e.URL + path
			stat := "wasmcustom.modelcache_route." + route + ".refused." + a.reason
			before := e.Stat(stat)
			calls := e.Sim.Calls(path)
			e.Sim.SetScript(a.script)
			defer e.Sim.SetScript(nil)
			first, _ := tryFresh("POST", url, body, "authorization", tenantA) // may fail: the answer is hostile
			if first != nil && strings.Contains(first.CacheStatus(), "hit") {
				t.Fatalf("first request was a hit: %q", first.CacheStatus())
			}
			// Still hostile: the same request again is not served from the cache.
			again, _ := tryFresh("POST", url, body, "authorization", tenantA)
			if again != nil && strings.Contains(again.CacheStatus(), "hit") {
				t.Fatalf("the hostile answer was stored and served: %q", again.CacheStatus())
			}
			if n := e.Sim.Calls(path) - calls; n != 2 {
				t.Fatalf("the model got %d calls, want 2 (nothing answered from the cache)", n)
			}
			if got := waitAtLeast(e, stat, before+1); got < before+1 {
				t.Fatalf("refused.%s went %d -> %d, want at least +1", a.reason, before, got)
			}
			// The model behaves again: the same request gets its real answer,
			// not the hostile bytes.
			e.Sim.SetScript(nil)
			real := doFresh(t, "POST", url, body, "authorization", tenantA)
			if real.Status != 200 || strings.Contains(real.CacheStatus(), "hit") || !strings.Contains(string(real.Body), model) ||
				strings.Contains(string(real.Body), "perfectly ") {
				t.Fatalf("after the attack: status %d, Cache-Status %q, body %.200s", real.Status, real.CacheStatus(), real.Body)
			}
			everyWorkerCaches(t, e, a.name)
			logIsClean(t, e)
		})
	}
}

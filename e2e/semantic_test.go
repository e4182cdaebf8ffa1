package e2e

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/modelcache/modelcache/e2e/modelsim"
)

// Acceptance of the semantic cache (issue 14) on real Envoy
// --concurrency 2, with the real embedding model where the answer
// depends on it.

func semRoutes(semantic string) string {
	return `{
  "upstream_cluster": "model",
  "defaults": {"model_version": {"header": "x-model-version"}},
  "routes": [
    {"name": "chat", "kind": "chat", "path_prefix": "/v1/chat/completions", "ttl": "1h",
     "semantic": ` + semantic + `}
  ]
}`
}

const semDefault = `{"embedding": {"cluster": "embeddings", "timeout": "2s"}}`

func semChat(system, user string, extra ...string) string {
	msgs := []map[string]string{}
	if system != "" {
		msgs = append(msgs, map[string]string{"role": "system", "content": system})
	}
	for i := 0; i+1 < len(extra); i += 2 {
		msgs = append(msgs, map[string]string{"role": extra[i], "content": extra[i+1]})
	}
	msgs = append(msgs, map[string]string{"role": "user", "content": user})
	b, _ := json.Marshal(map[string]any{"model": "sim-chat", "messages": msgs})
	return string(b)
}

func isSemanticHit(r *response) bool { return strings.Contains(r.CacheStatus(), "detail=semantic") }

// storeConfirmed stores body's answer and confirms it with one exact hit.
func storeConfirmed(t *testing.T, url, body string, hdr ...string) {
	t.Helper()
	expectCS(t, do(t, "POST", url, body, hdr...), "stored")
	expectCS(t, do(t, "POST", url, body, hdr...), "hit")
}

func TestSemanticRealModelParaphraseHitsAndPartitionsHold(t *testing.T) {
	port := startEmbedder(t)
	e := startEnvoy(t, envoyOpts{Config: semRoutes(semDefault), Ports: map[int]int{8001: port}})
	url := e.URL + "/v1/chat/completions"
	a := []string{"authorization", "Bearer tenant-a"}
	b := []string{"authorization", "Bearer tenant-b"}
	q := "How do I reset my password?"
	para := "How can I reset my password?"
	sys := "You are a helpful support agent."
	storeConfirmed(t, url, semChat(sys, q), a...)

	calls := e.Sim.TotalCalls()
	r := do(t, "POST", url, semChat(sys, para), a...)
	if r.Status != 200 || !isSemanticHit(r) {
		t.Fatalf("paraphrase: status %d, Cache-Status %q (want a semantic hit)", r.Status, r.CacheStatus())
	}
	sim, err := strconv.ParseFloat(r.Header.Get("x-modelcache-similarity"), 64)
	if err != nil || sim < 0.9 || sim > 1 {
		t.Fatalf("x-modelcache-similarity %q", r.Header.Get("x-modelcache-similarity"))
	}
	if e.Sim.TotalCalls() != calls {
		t.Fatal("a semantic hit reached the model")
	}
	// Everything but the last user turn partitions the index.
	cases := map[string]struct {
		body string
		hdr  []string
	}{
		"other tenant":        {semChat(sys, para), b},
		"other system prompt": {semChat("You are a pirate.", para), a},
		"other earlier turn":  {semChat(sys, para, "user", "I use the mobile app.", "assistant", "Noted."), a},
		"other model":         {strings.Replace(semChat(sys, para), `"sim-chat"`, `"sim-chat-2"`, 1), a},
		"tools":               {strings.Replace(semChat(sys, para), `{"messages"`, `{"tools":[{"type":"function","function":{"name":"f"}}],"messages"`, 1), a},
		"negation":            {semChat(sys, "How do I not reset my password?"), a},
	}
	for name, c := range cases {
		r := do(t, "POST", url, c.body, c.hdr...)
		if r.Status != 200 || isSemanticHit(r) || !strings.Contains(r.CacheStatus(), "fwd=miss") {
			t.Errorf("%s: status %d, Cache-Status %q (want a miss)", name, r.Status, r.CacheStatus())
		}
	}
	if got := e.WaitStat("wasmcustom.modelcache_route.chat.semantic.hits", 1); got != 1 {
		t.Errorf("semantic.hits = %d", got)
	}
}

func TestSemanticModelVersionPartitions(t *testing.T) {
	port := startEmbedder(t)
	e := startEnvoy(t, envoyOpts{Config: semRoutes(semDefault), Ports: map[int]int{8001: port}})
	url := e.URL + "/v1/chat/completions"
	a := []string{"authorization", "Bearer tenant-a"}
	storeConfirmed(t, url, semChat("", "How do I reset my password?"), a...)
	if err := e.Sim.UpdateKnobs(func(k *modelsim.Knobs) { k.ModelVersion = "v-next" }); err != nil {
		t.Fatal(err)
	}
	do(t, "POST", url, semChat("", "What is the capital of France?"), a...) // the model reports its new version
	r := do(t, "POST", url, semChat("", "How can I reset my password?"), a...)
	if isSemanticHit(r) || r.Status != 200 {
		t.Fatalf("after a model version change: %d %q", r.Status, r.CacheStatus())
	}
}

func TestSemanticConfirmAndShadowDemotion(t *testing.T) {
	port := startEmbedder(t)
	cfg := `{"embedding": {"cluster": "embeddings", "timeout": "2s"}}`
	routes := strings.Replace(semRoutes(cfg), `"ttl": "1h",`, `"ttl": "1h", "shadow": {"sample": 1, "min_samples": 1000},`, 1)
	e := startEnvoy(t, envoyOpts{Config: routes, Ports: map[int]int{8001: port}})
	url := e.URL + "/v1/chat/completions"
	a := []string{"authorization", "Bearer tenant-a"}
	q, para := "How do I reset my password?", "How can I reset my password?"
	expectCS(t, do(t, "POST", url, semChat("", q), a...), "stored")
	// Unconfirmed: only an exact hit reaches it.
	if r := do(t, "POST", url, semChat("", para), a...); isSemanticHit(r) || r.Status != 200 {
		t.Fatalf("unconfirmed entry answered a near match: %q", r.CacheStatus())
	}
	if e.WaitStat("wasmcustom.modelcache_route.chat.semantic.unconfirmed", 1) < 1 {
		t.Fatal("semantic.unconfirmed not counted")
	}
	// Confirmed by an exact hit (its shadow comparison agrees, too).
	expectCS(t, do(t, "POST", url, semChat("", q), a...), "hit")
	para2 := "How can I reset my password, please?"
	// The next near hit's shadow comparison diverges: the simulator
	// answers this turn differently from the stored answer.
	e.Sim.SetScript(func(w http.ResponseWriter, r *http.Request, body []byte) bool {
		if !strings.Contains(string(body), "please") {
			return false
		}
		w.Header().Set("content-type", "application/json")
		fmt.Fprint(w, `{"id":"x","object":"chat.completion","model":"sim-chat","choices":[{"index":0,"message":{"role":"assistant","content":"something else entirely"},"finish_reason":"stop"}]}`)
		return true
	})
	r := do(t, "POST", url, semChat("", para2), a...)
	if !isSemanticHit(r) {
		t.Fatalf("confirmed entry: %q (want a semantic hit)", r.CacheStatus())
	}
	if got := e.WaitStat("wasmcustom.modelcache_route.chat.semantic.demoted", 1); got != 1 {
		t.Fatalf("semantic.demoted = %d", got)
	}
	if r := do(t, "POST", url, semChat("", "How could I reset my password?"), a...); isSemanticHit(r) {
		t.Fatalf("a demoted entry answered a near match: %q", r.CacheStatus())
	}
	if r := do(t, "POST", url, semChat("", q), a...); !strings.Contains(r.CacheStatus(), "hit") || isSemanticHit(r) {
		t.Fatalf("a demoted entry no longer answers its exact question: %q", r.CacheStatus())
	}
}

// fakeEmbedder answers every text with the same vector of model/dimension
// it is told, or with what bad says.
type fakeEmbedder struct {
	model atomic.Value // string
	dim   atomic.Int64
	bad   atomic.Value // string: "", "garbage", "nan", "slow", "500"
	calls atomic.Int64
}

func (f *fakeEmbedder) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	f.calls.Add(1)
	switch f.bad.Load().(string) {
	case "garbage":
		fmt.Fprint(w, "\x00\xffnot json at all")
		return
	case "nan":
		fmt.Fprint(w, `{"data":[{"embedding":[1e999, "x", null]}]}`)
		return
	case "500":
		w.WriteHeader(500)
		return
	case "slow":
		time.Sleep(500 * time.Millisecond) // past the route's 100ms deadline
	}
	vec := make([]string, f.dim.Load())
	for i := range vec {
		vec[i] = strconv.FormatFloat(float64(i%7)/7+0.01, 'f', 4, 64)
	}
	fmt.Fprintf(w, `{"object":"list","model":%q,"data":[{"index":0,"embedding":[%s]}]}`, f.model.Load().(string), strings.Join(vec, ","))
}

func startFakeEmbedder(t *testing.T) (*fakeEmbedder, int) {
	f := &fakeEmbedder{}
	f.model.Store("model-a")
	f.dim.Store(64)
	f.bad.Store("")
	srv := httptest.NewServer(f)
	t.Cleanup(srv.Close)
	port, _ := strconv.Atoi(srv.URL[strings.LastIndexByte(srv.URL, ':')+1:])
	return f, port
}

func TestSemanticEmbeddingModelSwitchNeverComparesOldVectors(t *testing.T) {
	f, port := startFakeEmbedder(t)
	e := startEnvoy(t, envoyOpts{Config: semRoutes(semDefault), Ports: map[int]int{8001: port}})
	url := e.URL + "/v1/chat/completions"
	a := []string{"authorization", "Bearer tenant-a"}
	storeConfirmed(t, url, semChat("", "How do I reset my password?"), a...)
	if r := do(t, "POST", url, semChat("", "How can I reset my password?"), a...); !isSemanticHit(r) {
		t.Fatalf("same model: %q (want a semantic hit: the fake gives every text one vector)", r.CacheStatus())
	}
	for _, sw := range []struct {
		model string
		dim   int64
	}{{"model-b", 64}, {"model-b", 32}} {
		f.model.Store(sw.model)
		f.dim.Store(sw.dim)
		r := do(t, "POST", url, semChat("", "How could I reset my password, "+sw.model+strconv.Itoa(int(sw.dim))+"?"), a...)
		if isSemanticHit(r) || r.Status != 200 {
			t.Fatalf("after switching to %s/%d: %d %q (old vectors compared)", sw.model, sw.dim, r.Status, r.CacheStatus())
		}
	}
	if got := e.WaitStat("wasmcustom.modelcache_route.chat.semantic.model_changes", 2); got != 2 {
		t.Fatalf("semantic.model_changes = %d, want 2", got)
	}
	if !strings.Contains(e.Log(), "turns indexed with the old model are no longer compared") {
		t.Fatal("the model change was not logged")
	}
}

func TestSemanticEmbeddingsFailuresFailOpen(t *testing.T) {
	f, port := startFakeEmbedder(t)
	// 12 failures in a row: a breaker that opened after 5 would skip the
	// calls whose kinds this test counts (TestSemanticEmbeddingsBreaker…).
	cfg := `{"embedding": {"cluster": "embeddings", "timeout": "100ms", "breaker": {"failures": 100}}}`
	e := startEnvoy(t, envoyOpts{Config: semRoutes(cfg), Ports: map[int]int{8001: port}})
	url := e.URL + "/v1/chat/completions"
	a := []string{"authorization", "Bearer tenant-a"}
	n := 0
	for _, bad := range []string{"garbage", "nan", "500", "slow"} {
		f.bad.Store(bad)
		for i := 0; i < 3; i++ {
			n++
			calls := e.Sim.TotalCalls()
			r := do(t, "POST", url, semChat("", fmt.Sprintf("question %d about %s", n, bad)), a...)
			if r.Status != 200 || !strings.Contains(r.CacheStatus(), "fwd=miss") || e.Sim.TotalCalls() != calls+1 {
				t.Fatalf("embedder %s: status %d, Cache-Status %q", bad, r.Status, r.CacheStatus())
			}
		}
	}
	if got := e.WaitStat("wasmcustom.modelcache_route.chat.semantic.embed_error", 9); got != 9 {
		t.Errorf("semantic.embed_error = %d, want 9", got)
	}
	if got := e.WaitStat("wasmcustom.modelcache_route.chat.semantic.embed_timeout", 3); got != 3 {
		t.Errorf("semantic.embed_timeout = %d, want 3", got)
	}
}

func TestSemanticEmbeddingsServerDownFailsOpen(t *testing.T) {
	down := freePort(t) // nothing listens there
	e := startEnvoy(t, envoyOpts{Config: semRoutes(semDefault), Ports: map[int]int{8001: down}})
	url := e.URL + "/v1/chat/completions"
	a := []string{"authorization", "Bearer tenant-a"}
	for i := 0; i < 4; i++ {
		r := do(t, "POST", url, semChat("", fmt.Sprintf("question number %d", i)), a...)
		if r.Status != 200 {
			t.Fatalf("embeddings server down: status %d, Cache-Status %q", r.Status, r.CacheStatus())
		}
	}
	deadline := time.Now().Add(10 * time.Second)
	got := int64(0)
	for time.Now().Before(deadline) {
		if got = e.Stat("wasmcustom.modelcache_route.chat.semantic.embed_error") + e.Stat("wasmcustom.modelcache_route.chat.semantic.embed_timeout"); got == 4 {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if got != 4 {
		t.Errorf("embed errors+timeouts = %d, want 4", got)
	}
}

// An embeddings server that stays down is skipped after
// embedding.breaker.failures calls in a row on a worker: the next new
// turns are exact misses at once (semantic.breaker_open), each answered
// by the model, and every request counts one of the three.
func TestSemanticEmbeddingsBreakerSkipsADeadServer(t *testing.T) {
	down := freePort(t) // nothing listens there
	cfg := `{"embedding": {"cluster": "embeddings", "breaker": {"failures": 2, "cool_down": "1h"}}}`
	e := startEnvoy(t, envoyOpts{Config: semRoutes(cfg), Ports: map[int]int{8001: down}})
	url := e.URL + "/v1/chat/completions"
	a := []string{"authorization", "Bearer tenant-a"}
	const n = 12
	for i := 0; i < n; i++ {
		calls := e.Sim.TotalCalls()
		r := do(t, "POST", url, semChat("", fmt.Sprintf("question number %d", i)), a...)
		if r.Status != 200 || !strings.Contains(r.CacheStatus(), "fwd=miss") || e.Sim.TotalCalls() != calls+1 {
			t.Fatalf("embeddings server down: status %d, Cache-Status %q", r.Status, r.CacheStatus())
		}
	}
	var failed, open int64
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		failed = e.Stat("wasmcustom.modelcache_route.chat.semantic.embed_error") + e.Stat("wasmcustom.modelcache_route.chat.semantic.embed_timeout")
		if open = e.Stat("wasmcustom.modelcache_route.chat.semantic.breaker_open"); failed+open == n {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	// Two failures in a row open a worker's breaker; Envoy runs 2 workers.
	if failed+open != n || failed > 4 || open < n-4 {
		t.Errorf("embed errors+timeouts %d, breaker_open %d: want at most 2 calls per worker, the other of %d requests skipped", failed, open, n)
	}
}

func TestSemanticStreamedHitReplaysTheStoredStream(t *testing.T) {
	_, port := startFakeEmbedder(t) // every text one vector: the guards and partitions decide
	e := startEnvoy(t, envoyOpts{Config: semRoutes(semDefault), Ports: map[int]int{8001: port}})
	url := e.URL + "/v1/chat/completions"
	a := []string{"authorization", "Bearer tenant-a"}
	stream := func(q string) string {
		return `{"model":"sim-chat","stream":true,"messages":[{"role":"user","content":` + strconv.Quote(q) + `}]}`
	}
	first := do(t, "POST", url, stream("How do I reset my password?"), a...)
	if got := e.WaitStat("wasmcustom.modelcache_route.chat.stored", 1); got != 1 {
		t.Fatalf("stream not stored: %d", got)
	}
	expectCS(t, do(t, "POST", url, stream("How do I reset my password?"), a...), "hit")
	calls := e.Sim.TotalCalls()
	r := do(t, "POST", url, stream("How can I reset my password?"), a...)
	if !isSemanticHit(r) || !strings.Contains(string(r.Body), "data:") || string(r.Body) != string(first.Body) {
		t.Fatalf("streamed paraphrase: %q, body %.200q (want the stored stream)", r.CacheStatus(), r.Body)
	}
	if e.Sim.TotalCalls() != calls {
		t.Fatal("the streamed semantic hit reached the model")
	}
	// A non-streamed request is another partition: it never gets the stream.
	if r := do(t, "POST", url, semChat("", "How can I reset my password?"), a...); isSemanticHit(r) {
		t.Fatalf("non-streamed request served from a streamed entry: %q", r.CacheStatus())
	}
}

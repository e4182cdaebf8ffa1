package e2e

import (
	"net/http"
	"strings"
	"testing"
)

// Issue 13 item 9: an upstream that aborts mid-body after its headers were
// held (the filter buffers a storable answer to check it) makes Envoy answer
// the client itself. That answer, like every response on a cached route,
// carries Cache-Status saying what happened, and the refusal is counted.
func TestHostileUpstreamAbortMidBodyHasCacheStatus(t *testing.T) {
	e := startEnvoy(t, envoyOpts{Config: chatRoutes})
	e.Sim.SetScript(func(w http.ResponseWriter, r *http.Request, body []byte) bool {
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Content-Length", "5000")
		w.WriteHeader(200)
		w.Write([]byte(`{"id":"chatcmpl-1","object":"chat.completion","choices":[{"index":0,"message":{"role":"assistant","content":"par`))
		http.NewResponseController(w).Flush() //nolint:errcheck
		panic(http.ErrAbortHandler)
	})
	for i := 0; i < 4; i++ {
		r, err := tryDo(t.Context(), "POST", e.URL+"/v1/chat/completions", chat("cut short"), "authorization", "Bearer a")
		if err != nil {
			// Envoy may reset the client's stream instead (if the headers
			// had already left); then there is no response to label.
			t.Fatalf("try %d: %v", i, err)
		}
		if r.Status == 200 {
			t.Fatalf("try %d: a truncated answer reached the client as 200: %s", i, r.Body)
		}
		expectCS(t, r, "modelcache; fwd=miss", "detail=")
		if strings.Contains(r.CacheStatus(), "stored") {
			t.Fatalf("try %d: %q", i, r.CacheStatus())
		}
		t.Logf("try %d: %d %q", i, r.Status, r.CacheStatus())
	}
	if got := e.WaitStat("wasmcustom.modelcache_route.chat.refused.truncated", 4); got != 4 {
		t.Fatalf("refused.truncated = %d, want 4", got)
	}
	// Nothing was stored: once the upstream behaves, the next is a miss.
	e.Sim.SetScript(nil)
	expectCS(t, do(t, "POST", e.URL+"/v1/chat/completions", chat("cut short"), "authorization", "Bearer a"), "fwd=miss", "stored")
}

// Envoy's local replies on routes the cache does not serve carry no
// Cache-Status: the shipped local_reply_config adds one only where the
// filter left it.
func TestLocalReplyOffCachedRoutesHasNoCacheStatus(t *testing.T) {
	e := startEnvoy(t, envoyOpts{Config: chatRoutes})
	e.Sim.SetScript(func(w http.ResponseWriter, r *http.Request, body []byte) bool {
		panic(http.ErrAbortHandler) // before any header
	})
	for _, path := range []string{"/v1/completions", "/v1/embeddings"} {
		r := do(t, "POST", e.URL+path, `{"model":"c","prompt":"x","input":"x"}`, "authorization", "Bearer a")
		if r.Status < 500 {
			t.Fatalf("%s: status %d", path, r.Status)
		}
		if v, ok := r.Header["Cache-Status"]; ok {
			t.Fatalf("%s: Cache-Status %q on an uncached route", path, v)
		}
	}
	// On the cached route the same failure is labelled by the filter itself.
	r := do(t, "POST", e.URL+"/v1/chat/completions", chat("x"), "authorization", "Bearer a")
	expectCS(t, r, "fwd=miss", "detail=upstream-reset")
}

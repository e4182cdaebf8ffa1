package cachecore

import (
	"strings"
	"testing"
)

// A semantic route with an L2 tier: after the embeddings call (the request
// is paused across it) a miss looks L2 up. If that lookup cannot even be
// dispatched, its result comes back at once, and the request must still be
// resumed upstream: it has been paused since the embeddings call.
func TestSemanticThenL2NotStartedResumes(t *testing.T) {
	cfg := `{"upstream_cluster":"model","l2":{"cluster":"webdis"},"routes":[{"name":"chat","kind":"chat","path_prefix":"/v1/chat/completions",
  "ttl":"1h","semantic":{"embedding":{"cluster":"embeddings","model":"e5"}}}]}`
	e := &semEnv{testEnv: newEnv(t, cfg), model: "e5-small", vec: func(string) []float64 { return []float64{1, 2, 3, 4} }}
	req := e.cache.Begin(e.route("chat"), "POST", "/v1/chat/completions", alice)
	f := e.cache.NewFlight(req, 1, 1)
	acts := f.RequestBody([]byte(chatRequest("what is the capital of France")), false)
	var seen []string
	for steps := 0; len(acts) > 0 && steps < 10; steps++ {
		a := acts[0]
		acts = acts[1:]
		switch {
		case a.Kind == ActDispatch && a.Call.Cluster == "embeddings":
			seen = append(seen, "embed")
			acts = append(acts, a.Call.Done(semEmbAnswer(e.model, e.vec("")))...)
		case a.Kind == ActDispatch && a.Call.Cluster == "webdis":
			seen = append(seen, "l2(not started)")
			acts = append(acts, a.Call.Done(CallResult{NotStarted: true})...)
		case a.Kind == ActForward:
			seen = append(seen, "forward")
			if !a.Resume {
				t.Fatalf("%s: the request paused across the embeddings call goes upstream without being resumed", strings.Join(seen, " "))
			}
		}
	}
	if got := strings.Join(seen, " "); got != "embed l2(not started) forward" {
		t.Fatalf("steps: %s", got)
	}
}

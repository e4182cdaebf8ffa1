package e2e

import (
	"bytes"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/modelcache/modelcache/e2e/modelsim"
)

// An answer that ends with trailers (over HTTP/2 the body's last frame
// does not end the stream; the trailers' HEADERS frame does) is judged
// and stored like any other in real Envoy: the trailers end the held
// answer, the client gets the filter's Cache-Status, and the next request
// is a hit.
func TestAnswerEndingWithTrailersIsStored(t *testing.T) {
	e := startEnvoy(t, envoyOpts{Config: chatRoutes, UpstreamH2: true})
	body := chat("Name a river that ends in trailers.")
	first := do(t, "POST", e.URL+"/v1/chat/completions", body, "authorization", "Bearer tenant-a",
		modelsim.HeaderFault, string(modelsim.FaultTrailers))
	expectCS(t, first, "modelcache; fwd=miss", "stored")
	second := do(t, "POST", e.URL+"/v1/chat/completions", body, "authorization", "Bearer tenant-a")
	expectCS(t, second, "modelcache; hit")
	if !bytes.Equal(first.Body, second.Body) || first.Status != 200 {
		t.Fatalf("bodies differ:\n%s\n%s", first.Body, second.Body)
	}
	if n := e.Sim.Calls("/v1/chat/completions"); n != 1 {
		t.Fatalf("simulator counted %d calls, want 1", n)
	}
}

// A request whose body ends with trailers (a chunked HTTP/1.1 body with a
// trailer section, which the listener is set to accept) is decided on when
// they arrive: a miss that is stored, then a hit — not sent upstream
// undecided.
func TestRequestEndingWithTrailersIsDecided(t *testing.T) {
	e := startEnvoy(t, envoyOpts{Config: chatRoutes, Edit: func(t *testing.T, cfg string) string {
		const at = "          stat_prefix: models\n"
		if !strings.Contains(cfg, at) {
			t.Fatal("envoy.yaml: no stat_prefix: models to add http_protocol_options after")
		}
		return strings.Replace(cfg, at, at+"          http_protocol_options: {enable_trailers: true}\n", 1)
	}})
	body := chat("Name a river that flows with trailers.")
	send := func() *response {
		req, err := http.NewRequestWithContext(t.Context(), "POST", e.URL+"/v1/chat/completions", io.MultiReader(strings.NewReader(body)))
		if err != nil {
			t.Fatal(err)
		}
		req.ContentLength = -1 // chunked, so that trailers can follow
		req.Header.Set("authorization", "Bearer tenant-a")
		req.Header.Set("content-type", "application/json")
		req.Trailer = http.Header{"X-Checksum": {"1"}}
		res, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		b, _ := io.ReadAll(res.Body)
		return &response{Status: res.StatusCode, Header: res.Header, Body: b}
	}
	first := send()
	expectCS(t, first, "modelcache; fwd=miss", "stored")
	second := send()
	expectCS(t, second, "modelcache; hit")
	if n := e.Sim.Calls("/v1/chat/completions"); n != 1 {
		t.Fatalf("simulator counted %d calls, want 1", n)
	}
}

package e2e

import (
	"bufio"
	"context"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/modelcache/modelcache/e2e/modelsim"
	"github.com/modelcache/modelcache/internal/hammer"
)

// Acceptance of "Streaming responses" on real Envoy --concurrency 2.

func streamReq(content string) string {
	return `{"model":"sim-chat","stream":true,"stream_options":{"include_usage":true},"messages":[{"role":"user","content":"` + content + `"}]}`
}

func dataLines(b []byte) []string {
	var out []string
	for _, l := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(l, "data:") {
			out = append(out, l)
		}
	}
	return out
}

func TestStreamReplayIsByteIdentical(t *testing.T) {
	e := startEnvoy(t, envoyOpts{Config: stampedeRoutes})
	if err := e.Sim.UpdateKnobs(func(k *modelsim.Knobs) { k.ChunkDelayMS = 20 }); err != nil {
		t.Fatal(err)
	}
	url := e.URL + "/v1/chat/completions"
	// The leader's stream reaches its client as it is produced: the first
	// event arrives long before the last.
	firstEvent, total, miss := timeStream(t, url, streamReq("stream me"))
	if firstEvent > total/2 {
		t.Fatalf("first event after %v of %v: the stream was buffered", firstEvent, total)
	}
	expectCS(t, miss, "fwd=miss")
	if got := e.WaitStat("wasmcustom.modelcache_route.chat.stored", 1); got != 1 {
		t.Fatalf("stream not stored (stored=%d)", got)
	}
	hit := do(t, "POST", url, streamReq("stream me"), "authorization", "Bearer tenant-a")
	expectCS(t, hit, "hit")
	if hit.Header.Get("Content-Type") != "text/event-stream" {
		t.Fatalf("replay content-type %q", hit.Header.Get("Content-Type"))
	}
	a, b := dataLines(miss.Body), dataLines(hit.Body)
	if len(a) < 4 || strings.Join(a, "\n") != strings.Join(b, "\n") {
		t.Fatalf("data lines differ:\n%s\n---\n%s", strings.Join(a, "\n"), strings.Join(b, "\n"))
	}
	if e.Sim.Calls("/v1/chat/completions") != 1 {
		t.Fatal("the hit reached the model")
	}
}

// timeStream reads a streaming response and reports when its first event
// and its end arrived.
func timeStream(t *testing.T, url, body string) (first, total time.Duration, r *response) {
	t.Helper()
	req, _ := http.NewRequest("POST", url, strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer tenant-a")
	start := time.Now()
	res, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	var all strings.Builder
	sc := bufio.NewScanner(res.Body)
	for sc.Scan() {
		if first == 0 && strings.HasPrefix(sc.Text(), "data:") {
			first = time.Since(start)
		}
		all.WriteString(sc.Text() + "\n")
	}
	return first, time.Since(start), &response{Status: res.StatusCode, Header: res.Header, Body: []byte(all.String())}
}

func TestBrokenStreamsNeverStoredInEnvoy(t *testing.T) {
	e := startEnvoy(t, envoyOpts{Config: stampedeRoutes, RouteTimeout: "2s"})
	url := e.URL + "/v1/chat/completions"
	tests := []struct {
		name  string
		knobs modelsim.Knobs
		abort bool
		stat  string
	}{
		{"truncated stream", modelsim.Knobs{Fault: modelsim.FaultTruncate}, false, "refused.truncated"},
		{"upstream reset", modelsim.Knobs{Fault: modelsim.FaultReset}, false, "refused.upstream_reset"},
		{"finish_reason length", modelsim.Knobs{FinishReason: "length"}, false, "refused.finish_reason"},
		{"client abort", modelsim.Knobs{ChunkDelayMS: 200}, true, "refused.truncated"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if err := e.Sim.SetKnobs(tc.knobs); err != nil {
				t.Fatal(err)
			}
			body := streamReq("broken: " + tc.name)
			stat := "wasmcustom.modelcache_route.chat." + tc.stat
			before := e.Stat(stat)
			calls := e.Sim.Calls("/v1/chat/completions")
			for i := 0; i < 2; i++ {
				if tc.abort {
					ctx, cancel := context.WithCancel(context.Background())
					req, _ := http.NewRequestWithContext(ctx, "POST", url, strings.NewReader(body))
					req.Header.Set("Authorization", "Bearer tenant-a")
					res, err := client.Do(req)
					if err == nil {
						br := bufio.NewReader(res.Body)
						br.ReadString('\n') // the first event arrives, then the client leaves
						cancel()
						res.Body.Close()
					}
					cancel()
					continue
				}
				r, err := tryDo(context.Background(), "POST", url, body, "authorization", "Bearer tenant-a")
				if err == nil && strings.Contains(r.CacheStatus(), "hit") {
					t.Fatal("a broken stream was served from cache")
				}
			}
			if got := e.Sim.Calls("/v1/chat/completions") - calls; got != 2 {
				t.Fatalf("model calls = %d, want 2", got)
			}
			if got := e.WaitStat(stat, before+2); got != before+2 {
				t.Fatalf("%s = %d, want %d", stat, got, before+2)
			}
		})
	}
}

func TestStreamStampede(t *testing.T) {
	e := startEnvoy(t, envoyOpts{Config: stampedeRoutes})
	if err := e.Sim.UpdateKnobs(func(k *modelsim.Knobs) { k.LatencyMS = 200; k.ChunkDelayMS = 10 }); err != nil {
		t.Fatal(err)
	}
	client.CloseIdleConnections()
	const n = 50
	bodies := make([][]string, n)
	for i, err := range hammer.Go(n, func(i int) error {
		r, err := tryDo(context.Background(), "POST", e.URL+"/v1/chat/completions", streamReq("fifty streams"), "authorization", "Bearer tenant-a")
		if err != nil || r.Status != 200 {
			return fmt.Errorf("%v", err)
		}
		bodies[i] = dataLines(r.Body)
		return nil
	}) {
		if err != nil {
			t.Errorf("stream %d: %v", i, err)
		}
	}
	if got := e.Sim.Calls("/v1/chat/completions"); got != 1 {
		t.Fatalf("model calls = %d, want 1", got)
	}
	for i, b := range bodies {
		if len(b) == 0 || b[len(b)-1] != "data: [DONE]" || strings.Join(b, "\n") != strings.Join(bodies[0], "\n") {
			t.Fatalf("stream %d incomplete or different (%d lines)", i, len(b))
		}
	}
}

package e2e

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// Probes from the adversarial review of the merged hardening (issue 13).

// TestHostileClientUnauthorizedPurgeBodyIgnored: a purge with a wrong token
// gets 401 at its headers; its body — sent with the headers, or streamed
// after the 401 came back — never reaches the purge handler.
func TestHostileClientUnauthorizedPurgeBodyIgnored(t *testing.T) {
	e := startEnvoy(t, envoyOpts{Config: hostileRoutes})
	url := e.URL + chatPath
	victim := chat("an entry no wrong token may purge")
	expectCS(t, do(t, "POST", url, victim, "authorization", "Bearer tenant-a"), "stored")

	r := do(t, "POST", e.URL+"/modelcache/purge", `{"all":true}`, "authorization", "Bearer wrong-token")
	if r.Status != 401 {
		t.Fatalf("wrong token: %d", r.Status)
	}
	// Chunked: headers first, the body only after the 401 arrived.
	conn, err := net.Dial("tcp", strings.TrimPrefix(e.URL, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(10 * time.Second))
	fmt.Fprint(conn, "POST /modelcache/purge HTTP/1.1\r\nHost: models\r\nAuthorization: Bearer wrong-token\r\n"+
		"Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n")
	br := bufio.NewReader(conn)
	res, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != 401 {
		t.Fatalf("chunked wrong token: %d", res.StatusCode)
	}
	body := `{"all":true}`
	fmt.Fprintf(conn, "%x\r\n%s\r\n0\r\n\r\n", len(body), body)
	_, _ = br.ReadByte() // whatever Envoy does with the rest: wait for it

	expectCS(t, do(t, "POST", url, victim, "authorization", "Bearer tenant-a"), "hit")
	if n := e.Stat("wasmcustom.modelcache.purges"); n != 0 {
		t.Fatalf("purges = %d after only unauthorized purge calls", n)
	}
}

// TestLeaderClientAbortIsNotAnUpstreamFailure: with coalesce.max_retries 0
// (one leader failure exhausts the followers' patience), a leader whose
// client hangs up — before the answer, or mid-stream — must not answer its
// followers "the upstream failed": one of them leads next and all get the
// model's answer. Before, they got 502 detail=leader-failed although the
// model never failed.
func TestLeaderClientAbortIsNotAnUpstreamFailure(t *testing.T) {
	for _, streamed := range []bool{false, true} {
		t.Run(fmt.Sprintf("stream=%v", streamed), func(t *testing.T) {
			e := startEnvoy(t, envoyOpts{Config: `{"upstream_cluster":"model","routes":[{"name":"chat","kind":"chat",
  "path_prefix":"/v1/chat/completions","ttl":"10m","coalesce":{"max_wait":"20s","max_retries":0}}]}`})
			var first atomic.Bool
			e.Sim.SetScript(func(w http.ResponseWriter, r *http.Request, body []byte) bool {
				if !first.CompareAndSwap(false, true) {
					return false // the model answers every later call
				}
				if streamed {
					w.Header().Set("Content-Type", "text/event-stream")
					w.WriteHeader(200)
					w.Write([]byte("data: {\"choices\":[{\"index\":0,\"delta\":{\"content\":\"Hel\"}}]}\n\n"))
					http.NewResponseController(w).Flush() //nolint:errcheck
				}
				<-r.Context().Done() // the leader's client hangs up: Envoy cancels this call
				return true
			})
			body := fmt.Sprintf(`{"model":"m","stream":%v,"messages":[{"role":"user","content":"who leads?"}]}`, streamed)
			url := e.URL + chatPath
			ctx, cancel := context.WithCancel(t.Context())
			leaderDone, reading := make(chan struct{}), make(chan struct{})
			go func() {
				defer close(leaderDone)
				req, _ := http.NewRequestWithContext(ctx, "POST", url, strings.NewReader(body))
				req.Header.Set("authorization", "Bearer t")
				if res, err := http.DefaultClient.Do(req); err == nil {
					buf := make([]byte, 64)
					_, _ = res.Body.Read(buf) // mid-stream when streamed
					close(reading)
					<-ctx.Done()
					res.Body.Close()
				}
			}()
			for i := 0; e.Sim.TotalCalls() < 1; i++ {
				if i > 500 {
					t.Fatal("the leader never reached the model")
				}
				time.Sleep(10 * time.Millisecond)
			}
			const followers = 3
			results := make(chan *response, followers)
			for i := 0; i < followers; i++ {
				go func() {
					r, err := tryDo(t.Context(), "POST", url, body, "authorization", "Bearer t")
					if err != nil {
						t.Error(err)
					}
					results <- r
				}()
			}
			if n := e.WaitStat("wasmcustom.modelcache_route.chat.coalesce.followers", followers); n != followers {
				t.Fatalf("followers = %d, want %d", n, followers)
			}
			if streamed {
				// Hang up only once the leader's client is reading the stream.
				select {
				case <-reading:
				case <-time.After(10 * time.Second):
					t.Fatal("the leader's stream never started")
				}
			}
			cancel()
			<-leaderDone
			for i := 0; i < followers; i++ {
				r := <-results
				if r == nil {
					continue
				}
				if r.Status != 200 || strings.Contains(r.CacheStatus(), "leader-failed") {
					t.Fatalf("follower: %d %q %s", r.Status, r.CacheStatus(), r.Body)
				}
			}
			if n := e.Sim.TotalCalls(); n != 2 {
				t.Fatalf("%d model calls, want 2 (the abandoned leader's and its successor's)", n)
			}
		})
	}
}

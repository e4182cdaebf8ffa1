package cachecore

import (
	"errors"
	"fmt"
	"strings"
	"testing"
)

// Review Z255: README promises of "Semantic cache", "Purge API" and
// "Cache-Status".

// README, Purge API: a replay's "headers are strings, one line each, …;
// anything else is malformed. A malformed purge is answered 400". A header
// value of two lines ("Bearer sk-alice\nx", or a CRLF-joined pair of
// fields a tool serialised as one string) is no header line any request
// reaching the filter can carry: the replay is keyed under a tenant no
// request is, and the purge answers 200 {"scope":"entry","freed":0} while
// alice's entry goes on being served — the "200 for nothing" reviews Z176
// and Z178 removed for lists and non-objects. Expected: ErrBadPurge (400).
func TestReadmePromises6PurgeReplayHeaderOfTwoLinesIsMalformed(t *testing.T) {
	q := chatRequest("two lines")
	// v is JSON string text: the escapes are JSON's.
	for _, v := range []string{`Bearer sk-alice\nx-other: 1`, `Bearer sk-alice\r\nx-other: 1`} {
		t.Run(v, func(t *testing.T) {
			env := newEnv(t, testConfig)
			env.fill(env.request("chat", alice, q), jsonCT, chatResponse("a"), 10)
			purge := `{"path":"/v1/chat/completions","headers":{"authorization":"` + v + `"},"body":` + q + `}`
			res, err := env.cache.Purge([]byte(purge), "")
			_, d := env.lookup("chat", alice, q)
			if !errors.Is(err, ErrBadPurge) {
				t.Fatalf("purge with a header value of two lines = %+v, %v (alice's entry still served: %v); want ErrBadPurge (400): headers are one line each",
					res, err, d == Serve)
			}
		})
	}
}

// README, embedding.breaker.failures: "calls in a row (per VM, per
// embeddings server) that failed or timed out, after which the call is
// skipped … Routes calling one server share its breaker: each opens it
// after its own `failures`" (RATIONALE: "routes that share one server learn
// together (each by its own failures)"). Route "b" (failures 2) shares the
// server of route "chat" (the default 5). After two calls of chat failed
// in a row, b's own threshold is reached: its next new turn should be
// skipped (semantic.breaker_open). The breaker was never marked open (the
// failures were counted under chat's threshold, so openUntil stayed 0),
// and b's turn calls the failing server anyway, waiting for its deadline.
func TestReadmePromises6EmbedBreakerSharingRouteOpensAfterItsOwnFailures(t *testing.T) {
	e := newSemEnv(t, "")
	e.testEnv = newEnv(t, `{"upstream_cluster":"model","routes":[
	  {"name":"chat","kind":"chat","path_prefix":"/v1/chat/completions","ttl":"1h",
	   "semantic":{"embedding":{"cluster":"embeddings","model":"e5"}}},
	  {"name":"b","kind":"chat","path_prefix":"/b/v1/chat/completions","ttl":"1h",
	   "semantic":{"embedding":{"cluster":"embeddings","model":"e5","breaker":{"failures":2}}}}]}`)
	failed := CallResult{Status: 503, Body: []byte("upstream connect error or disconnect/reset before headers")}
	for i := 0; i < 2; i++ {
		if got := e.z243Ask("chat", "/v1/chat/completions", fmt.Sprintf("what is question %d about?", i), &failed); !strings.HasPrefix(got, "embed semantic.embed_error") {
			t.Fatalf("setup: call %d: %q", i, got)
		}
	}
	if got := e.z243Ask("b", "/b/v1/chat/completions", "what is question 2 about?", &failed); !strings.HasPrefix(got, "semantic.breaker_open") {
		t.Errorf("route b (failures 2) after 2 calls to its server failed in a row: %q, want semantic.breaker_open (no call)", got)
	}
}

//go:build !wasip1

package main

import (
	"testing"

	"github.com/modelcache/modelcache/wasmhost"
)

// A model that is rate limited answers 429 with Retry-After. A follower
// whose leaders all met it is answered 429 leader-failed by the cache; it
// must carry the model's Retry-After, or every client of a burst retries
// at once (the OpenAI SDKs wait what Retry-After says, else a short
// backoff), which is the stampede the cache is there to prevent.
func TestALeaderFailedAnswerCarriesTheModelsRetryAfter(t *testing.T) {
	for _, tc := range []struct{ name, upstream, want string }{
		{"seconds", "7", "7"},
		{"padded", " 12 ", "12"},
		{"junk", "soon", ""},
		{"too far", "99999999999999999999", "65535"}, // passed as the most the wake-up carries (review Z220)
	} {
		t.Run(tc.name, func(t *testing.T) {
			hs, exs, calls := streamlessBurst(t, func(u *wasmhost.UpstreamRequest) {
				u.Respond(429, [][2]string{{"content-type", "application/json"}, {"retry-after", tc.upstream}},
					[]byte(`{"error":{"message":"rate limited","type":"rate_limit_error"}}`))
			})
			failed := 0
			for i, ex := range exs {
				if !ex.Done() {
					t.Fatalf("exchange %d stuck: %s", i, ex.State())
				}
				r := ex.Response()
				if r.Status != 429 {
					t.Fatalf("exchange %d: status %d, want 429 (%d model calls)", i, r.Status, calls)
				}
				if hdr(r, "cache-status") != "modelcache; fwd=miss; collapsed; fwd-status=429; detail=leader-failed" {
					continue // a leader: the model's own answer
				}
				failed++
				if got := hdr(r, "retry-after"); got != tc.want {
					t.Errorf("exchange %d (leader-failed): retry-after %q, want %q (the model said %q)", i, got, tc.want, tc.upstream)
				}
			}
			if failed == 0 || hs.counter("modelcache_route.chat.requests.leader_failed") != uint64(failed) {
				t.Fatalf("setup: %d leader-failed answers, counter %d", failed, hs.counter("modelcache_route.chat.requests.leader_failed"))
			}
		})
	}
}

// streamlessBurst sends 8 identical chat requests over 2 workers to
// coalesceConfig's route and answers every upstream call with answer.
func streamlessBurst(t *testing.T, answer func(*wasmhost.UpstreamRequest)) (*harness, []*wasmhost.Exchange, int) {
	t.Helper()
	return burstOf(t, chatRequest("rate limited?"), answer)
}

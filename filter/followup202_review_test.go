//go:build !wasip1

package main

import (
	"strconv"
	"testing"

	"github.com/modelcache/modelcache/wasmhost"
)

// Review Z202 (follow-up of b8addf5: leader-failed answers carry the
// model's Retry-After).

// leaderFailedRetryAfter runs streamlessBurst with every upstream call
// answered status and Retry-After ra, and returns the Retry-After of each
// leader-failed answer.
func leaderFailedRetryAfter(t *testing.T, status int, ra string) []string {
	t.Helper()
	hs, exs, calls := streamlessBurst(t, func(u *wasmhost.UpstreamRequest) {
		u.Respond(status, [][2]string{{"content-type", "application/json"}, {"retry-after", ra}},
			[]byte(`{"error":{"message":"overloaded","type":"server_error"}}`))
	})
	var got []string
	for i, ex := range exs {
		if !ex.Done() {
			t.Fatalf("exchange %d stuck: %s", i, ex.State())
		}
		r := ex.Response()
		if r.Status != status {
			t.Fatalf("exchange %d: status %d, want %d (%d model calls)", i, r.Status, status, calls)
		}
		if cs := hdr(r, "cache-status"); cs == "modelcache; fwd=miss; collapsed; fwd-status="+strconv.Itoa(status)+"; detail=leader-failed" {
			got = append(got, hdr(r, "retry-after"))
		}
	}
	if len(got) == 0 || hs.counter("modelcache_route.chat.requests.leader_failed") != uint64(len(got)) {
		t.Fatalf("setup: %d leader-failed answers, counter %d", len(got), hs.counter("modelcache_route.chat.requests.leader_failed"))
	}
	return got
}

// leaderFailedResponse adds Retry-After only when status != 502, meant
// to skip its own 502 (a leader that failed with no status to pass on);
// but a model (or the gateway in front of it) that answers 502 with
// Retry-After is passed on as 502 too, and its Retry-After is dropped
// while a 503's is kept: the burst's clients retry at once. retryAfterOf
// already gives 0 for any status not passed on. Expected: the model's 502
// leader-failed answers carry its Retry-After as a 503's do.
func TestFollowup202LeaderFailed502DropsTheModelsRetryAfter(t *testing.T) {
	for i, got := range leaderFailedRetryAfter(t, 502, "30") {
		if got != "30" {
			t.Errorf("leader-failed answer %d to the model's 502 with Retry-After: 30: retry-after %q, want \"30\"", i, got)
		}
	}
}

// retryAfterOf drops a Retry-After above 65535 s (the wake-up's 16 bits)
// instead of capping it: a model rate limited by a daily quota (Retry-After:
// 86400, a day) has its leader-failed answers carry no Retry-After at all,
// so every client of the burst retries at once, as before the fix, exactly
// when waiting matters most. Expected: the followers are told to wait at
// least as long as the 16 bits allow (65535), or the model's 86400.
func TestFollowup202LeaderFailedDropsADaysRetryAfter(t *testing.T) {
	for i, got := range leaderFailedRetryAfter(t, 429, "86400") {
		if got != "86400" && got != "65535" {
			t.Errorf("leader-failed answer %d to the model's 429 with Retry-After: 86400: retry-after %q, want 86400 (or 65535, capped)", i, got)
		}
	}
}

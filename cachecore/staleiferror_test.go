package cachecore

import (
	"testing"
	"time"
)

// A leader keeps a stale copy for stale-if-error; while its call is
// upstream, another proxy (or a refresh) stores a fresh answer under the
// same key. The upstream then fails: the client must still get an answer
// (the kept copy, or better the fresh one), not the 503.
func TestStaleIfErrorAfterTheKeyWasStoredAgain(t *testing.T) {
	small := chatRequest("q")
	env := newEnv(t, flightConfig)
	f := staleLeaderUpstream(t, env, small)
	// Meanwhile the same key is stored afresh (another VM's answer).
	env.clock.Advance(time.Second)
	env.fill(env.request("chat", alice, small), jsonCT, chatResponse("new"), 10)
	if _, d := env.lookup("chat", alice, small); d != Serve {
		t.Fatal("fresh answer not stored")
	}
	step, acts := f.ResponseHeaders(503, jsonCT, OriginUpstream, false)
	if step != RespServed {
		t.Fatalf("upstream 503 passed to the client though the key holds a fresh answer (step %v, %q)", step, actionKinds(acts))
	}
}

// A stale entry kept by a leader's lookup (for stale-if-error) must not be
// served once it has been purged while the leader's call was upstream.
func TestStaleIfErrorNeverServesAPurgedEntry(t *testing.T) {
	small := chatRequest("q")
	for _, purge := range []string{
		`{"all":true}`,
		`{"route":"chat","model":"gpt-4o-mini"}`,
	} {
		t.Run(purge[:12], func(t *testing.T) {
			env := newEnv(t, flightConfig)
			f := staleLeaderUpstream(t, env, small)
			// The operator purges while the leader's call is upstream.
			if _, err := env.cache.Purge([]byte(purge), ""); err != nil {
				t.Fatal(err)
			}
			// A fresh request sees nothing: the purge worked.
			if _, d := env.lookup("chat", alice, small); d == Serve {
				t.Fatal("purged entry still found by a lookup")
			}
			step, acts := f.ResponseHeaders(503, jsonCT, OriginUpstream, false)
			if step == RespServed {
				t.Fatalf("purged entry served as stale-if-error: %q, body %s", actionKinds(acts), f.Request().Entry.Body)
			}
		})
	}
}

// staleLeaderUpstream stores body's answer, lets it go stale within
// stale_if_error (1h), and starts a request for it that leads upstream
// with the stale copy kept.
func staleLeaderUpstream(t *testing.T, env *testEnv, body string) *Flight {
	t.Helper()
	env.fill(env.request("chat", alice, body), jsonCT, chatResponse("old"), 10)
	env.clock.Advance(90 * time.Minute)
	f := flightFor(t, env, alice)
	f.RequestHeaders(append(append([][2]string{}, alice...), [2]string{"content-length", itoa(int64(len(body)))}), false, true)
	if got := actionKinds(f.RequestBody([]byte(body), false)); got != "coalesce.leaders forward" {
		t.Fatal(got)
	}
	return f
}

// stale_if_error answers an upstream failure (5xx, 429, reset, timeout)
// with the stale entry. An answer the model really gave that the route
// merely does not cache (a 202 of an async API, a 204, a redirect) is not
// a failure: the client gets it, not an old cached answer.
func TestStaleIfErrorOnlyForFailures(t *testing.T) {
	small := chatRequest("q")
	for _, status := range []int{201, 202, 204, 301, 307, 304} {
		t.Run(itoa(int64(status)), func(t *testing.T) {
			env := newEnv(t, flightConfig)
			f := staleLeaderUpstream(t, env, small)
			step, acts := f.ResponseHeaders(status, jsonCT, OriginUpstream, false)
			if step == RespServed {
				t.Fatalf("upstream %d replaced by the stale entry (stale-if-error): %q", status, actionKinds(acts))
			}
		})
	}
}

// A status the route does not cache below 400 is the model's answer, not
// a failure that may pass: lasting (hit-for-miss), never a leader failure.
func TestNonErrorStatusIsNotAFailure(t *testing.T) {
	for _, status := range []int{201, 202, 204, 301, 304, 307} {
		if o := OutcomeOf(ReasonStatus, status); o != OutcomeUncacheable {
			t.Errorf("OutcomeOf(status, %d) = %s, want uncacheable", status, o)
		}
	}
	for _, status := range []int{408, 429, 500, 502, 503, 504} {
		if o := OutcomeOf(ReasonStatus, status); o != OutcomeFailed {
			t.Errorf("OutcomeOf(status, %d) = %s, want failed", status, o)
		}
	}
}

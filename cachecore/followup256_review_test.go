package cachecore

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"
)

// Review Z256: follow-up of 4a46f0d~1..HEAD.

// z256Held starts a request of route for prompt and returns the action
// kinds up to its first embeddings call, which is left out (its result
// never given).
func (e *semEnv) z256Held(route, path, prompt string) string {
	e.id++
	req := e.cache.Begin(e.route(route), "POST", path, alice)
	f := e.cache.NewFlight(req, 1, e.id)
	var kinds []string
	for _, a := range f.RequestBody([]byte(chatRequest(prompt)), false) {
		if a.Kind == ActDispatch {
			kinds = append(kinds, "embed")
			continue
		}
		kinds = append(kinds, actionKinds([]Action{a}))
	}
	return strings.Join(kinds, " ")
}

// Routes that share an embeddings server share its breaker, and its one
// trial after the cool-down is marked out until trialUntil = now + the
// trying route's embedding.timeout + 1s. Another route reads that mark
// against its own timeout: a deadline further than its own call's reads as
// a clock stepped back (review Z245), so route "chat" (timeout 200ms)
// takes the trial of route "slow" (timeout 5s), out for 10ms, for "over",
// and sends a second trial; every new turn of chat does so, each waiting
// its whole deadline on a server that hangs — what the one trial is for
// (README, embedding.breaker.cool_down: "then one call is tried again (the
// other new turns skipped until its result, or its deadline)"; the same
// cross-route misreading reviews Z243 and Z255 fixed for the cool-down).
// Expected: semantic.breaker_open for chat while slow's trial is out.
func TestFollowup256EmbedBreakerTrialOfARouteWithALongerTimeoutTakenForOver(t *testing.T) {
	e := newSemEnv(t, "")
	e.testEnv = newEnv(t, `{"upstream_cluster":"model","routes":[
	  {"name":"chat","kind":"chat","path_prefix":"/v1/chat/completions","ttl":"1h",
	   "semantic":{"embedding":{"cluster":"embeddings","model":"e5"}}},
	  {"name":"slow","kind":"chat","path_prefix":"/slow/v1/chat/completions","ttl":"1h",
	   "semantic":{"embedding":{"cluster":"embeddings","model":"e5","timeout":"5s"}}}]}`)
	failed := CallResult{Status: 503, Body: []byte("upstream connect error or disconnect/reset before headers")}
	for i := 0; i < 5; i++ {
		if got := e.z243Ask("chat", "/v1/chat/completions", fmt.Sprintf("what is question %d about?", i), &failed); !strings.HasPrefix(got, "embed semantic.embed_error") {
			t.Fatalf("setup: call %d: %q", i, got)
		}
	}
	if got := e.z243Ask("chat", "/v1/chat/completions", "what is question 5 about?", &failed); !strings.HasPrefix(got, "semantic.breaker_open") {
		t.Fatalf("setup: the breaker did not open after 5 failures: %q", got)
	}
	e.clock.Advance(6 * time.Second) // past both routes' cool_down (5s)
	if got := e.z256Held("slow", "/slow/v1/chat/completions", "what is question 6 about?"); !strings.HasPrefix(got, "embed") {
		t.Fatalf("setup: route slow's trial: %q", got)
	}
	e.clock.Advance(10 * time.Millisecond)
	if got := e.z256Held("chat", "/v1/chat/completions", "what is question 7 about?"); !strings.HasPrefix(got, "semantic.breaker_open") {
		t.Errorf("route chat, 10ms into route slow's trial (out for up to 6s): %q, want semantic.breaker_open (one trial at a time)", got)
	}
}

// 4a46f0d refuses a purge replay's header value holding CR, LF or NUL
// (README, Purge API: headers are "strings, one line each …; anything else
// is malformed"), but not the other control characters, which no request
// reaching the filter carries either (HTTP's field values are visible
// characters, space and tab; Envoy's codecs refuse the rest, and
// purge.token refuses them for that very reason: "no Authorization header
// can carry it"). A replay whose authorization holds one (a \u0001 or DEL
// from a copy) is keyed under a tenant no request is and answered 200
// {"scope":"entry","freed":0} while alice's entry goes on being served —
// the "200 for nothing" reviews Z176, Z178 and Z255 removed. Expected:
// ErrBadPurge (400).
func TestFollowup256PurgeReplayHeaderWithAControlCharacterIsMalformed(t *testing.T) {
	q := chatRequest("control character")
	// v is JSON string text: the escapes are JSON's.
	for _, v := range []string{`Bearer sk-alice\u0001`, `Bearer sk-alice\u007f`, `Bearer\u000bsk-alice`} {
		t.Run(v, func(t *testing.T) {
			env := newEnv(t, testConfig)
			env.fill(env.request("chat", alice, q), jsonCT, chatResponse("a"), 10)
			purge := `{"path":"/v1/chat/completions","headers":{"authorization":"` + v + `"},"body":` + q + `}`
			res, err := env.cache.Purge([]byte(purge), "")
			_, d := env.lookup("chat", alice, q)
			if !errors.Is(err, ErrBadPurge) {
				t.Errorf("purge with a header value holding a control character = %+v, %v (alice's entry still served: %v); want ErrBadPurge (400)",
					res, err, d == Serve)
			}
		})
	}
}

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
	withLen := func(h [][2]string, n int) [][2]string {
		return append(append([][2]string{}, h...), [2]string{"content-length", itoa(int64(n))})
	}
	env := newEnv(t, flightConfig)
	env.fill(env.request("chat", alice, small), jsonCT, chatResponse("old"), 10)
	env.clock.Advance(90 * time.Minute) // stale, within stale_if_error (1h)
	f := flightFor(t, env, alice)
	f.RequestHeaders(withLen(alice, len(small)), false, true)
	if got := actionKinds(f.RequestBody([]byte(small), false)); got != "coalesce.leaders forward" {
		t.Fatal(got)
	}
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

package cachecore

import (
	"fmt"
	"strings"
	"testing"
	"time"
)

// Review Z177: what clients get when the model fails.

const sieProtoConfig = `{"upstream_cluster":"model","routes":[{"name":"chat","kind":"chat","path_prefix":"/v1/chat/completions",
  "ttl":"60s","stale_if_error":"1h","coalesce":{"enabled":true,"max_wait":"10s","max_retries":%d}}]}`

// newSIEProtoEnv is newProtoEnv on a route with stale_if_error.
func newSIEProtoEnv(t *testing.T, retries int) *protoEnv {
	store, clock := NewMemStore(), newFakeClock()
	cfg := mustParse(t, fmt.Sprintf(sieProtoConfig, retries))
	e := &protoEnv{t: t, clock: clock}
	for i := range e.w {
		e.w[i] = New(cfg, Options{Store: store, Now: clock.Now, Rand: seededRand(uint64(i))})
	}
	return e
}

// A leader whose model answered 200, whole, with an answer the cache
// refuses for what it says (an empty completion, a validation rule,
// malformed JSON) is no upstream failure: its own client gets that 200
// (Complete passes it), and RATIONALE ("A refused whole answer is
// retried, then forwarded, never a 502") says only a failure of the model
// — a status, a reset, a timeout, an error it reports — ends in the 502
// "or stale-if-error"; README's stale_if_error is for "an upstream failure
// (5xx, 429, reset, timeout)". Yet its followers, woken with the failed
// outcome, count a failure and are answered at once with the key's stale
// entry as `detail=stale-if-error` (counted requests.stale_if_error) —
// while the model answered, and the leader's client got its fresh answer.
// Expected: the follower leads the next call (as it does when no stale
// entry exists), not serve the stale entry as if the model had failed.
func TestRefusedWholeAnswerIsNoStaleIfErrorForFollowers(t *testing.T) {
	e := newSIEProtoEnv(t, 1)
	// An answer stored, then stale: past its ttl, within stale_if_error.
	a0, got := e.start(0, 1, "q")
	expectActs(t, "first miss", got, "coalesce.leaders forward")
	e.store(0, a0, "old answer")
	e.show(a0.FinishLead(OutcomeStored, 200))
	e.clock.Advance(2 * time.Minute)

	a, got := e.start(0, 2, "q")
	expectActs(t, "A miss (stale entry kept)", got, "coalesce.leaders forward")
	if a.Request().Entry == nil {
		t.Fatal("A's lookup kept no stale entry")
	}
	b, got := e.start(1, 3, "q")
	expectActs(t, "B miss", got, "coalesce.followers wait")

	// The model answers A 200 with an empty completion: refused whole.
	if step, acts := a.ResponseHeaders(200, jsonCT, OriginUpstream, false); step != RespHold && step != RespCopy {
		t.Fatalf("A's headers: step %v %s", step, e.show(acts))
	}
	body := []byte(chatResponse(""))
	c, acts := a.Complete(jsonCT, body, 10, alice)
	if c != Refused {
		t.Fatalf("A's empty completion: %v", c)
	}
	shown := e.show(acts)
	if !strings.Contains(shown, "wake(w1)") {
		t.Fatalf("A's refusal woke nobody: %q", shown)
	}
	if st := a.CacheStatusValue(); strings.Contains(st, "stale") {
		t.Fatalf("A's client: %q", st)
	}
	// A's client got the model's 200. B is woken by that lead.
	e.clock.Advance(time.Millisecond)
	got = e.deliver(1, b)
	if got == "serve" && b.Request().Status == StatusStaleIfError {
		t.Fatalf("follower answered with the stale entry as stale-if-error (%s) after its leader's model answered 200 "+
			"(refused whole, empty content); want it to lead the next call", b.Request().Status)
	}
}

// A leader whose client cancels is no upstream failure (README,
// "Stampedes": "A leader whose client hangs up (before the answer or
// mid-stream ...) is not counted as a failure ... a follower simply leads
// next"). clientLeft recognises only the HTTP/1 code details
// ("downstream_remote_disconnect"). A client on HTTP/2 — every
// sidecar-to-sidecar hop in Istio, gRPC-style and Go/httpx h2 clients —
// cancels by RST_STREAM, and Envoy then reports the response code details
// "http2.remote_reset" (Envoy's access-log docs: response flag DR,
// DownstreamRemoteReset, "the response details are http2.remote_reset or
// http2.remote_refuse"; Istio access logs of a cancelled h2 client show
// "DR http2.remote_reset"; an upstream reset says
// "upstream_reset_…" instead). The lead then ends failed: its followers
// count a failure the model never had and, past max_retries, are answered
// 502 leader_failed. Expected: OutcomeAbandoned, as for the HTTP/1 detail.
func TestH2ClientCancelOfALeaderIsNoUpstreamFailure(t *testing.T) {
	for _, details := range []string{"http2.remote_reset"} {
		for _, phase := range []string{"before the answer", "mid-answer"} {
			t.Run(details+" "+phase, func(t *testing.T) {
				e := newStreamEnv(t)
				var a, b Stream
				if _, acts := e.begin(&a, 1, "q"); !strings.Contains(streamActs(acts), "coalesce.leaders") {
					t.Fatalf("A: %s", streamActs(acts))
				}
				if _, acts := e.begin(&b, 2, "q"); streamActs(acts) != "coalesce.followers wait" {
					t.Fatalf("B: %s", streamActs(acts))
				}
				if phase == "mid-answer" {
					rd := &fakeReader{respHeaders: append([][2]string{{":status", "200"}, {"content-length", "400"}}, jsonCT...)}
					if v, _ := a.ResponseHeaders(false, rd); v != Pause {
						t.Fatalf("A's answer headers: verdict %d", v)
					}
				}
				var wake []byte
				for _, x := range a.Done(&fakeReader{details: details}) {
					if x.Kind == ActWake {
						wake = x.Message
					}
				}
				_, o, status, ok := DecodeWake(wake)
				if !ok {
					t.Fatal("A's end woke nobody")
				}
				if o != OutcomeAbandoned {
					t.Errorf("A's HTTP/2 client cancelled (%s) %s: its lead ended %s, want %s", details, phase, o, OutcomeAbandoned)
				}
				// (With max_retries 1, a second such cancel answers B 502
				// leader_failed.)
				if got := streamActs(b.Wake(o, status)); strings.Contains(got, "retries_exhausted") {
					t.Errorf("B woken: %s", got)
				}
			})
		}
	}
}

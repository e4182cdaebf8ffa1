package cachecore

import (
	"strings"
	"testing"
)

// Review Z154 (follow-up of Z149..Z153's mends).

// followup154Run carries a flight's actions out against webdis wd; the
// model answers hs and b if asked. It returns the Cache-Status and the
// body the client got, and the request (for a shadow of a hit).
func followup154Run(t *testing.T, m *l2Mesh, f *Flight, acts []Action, hs [][2]string, b []byte) (string, []byte) {
	t.Helper()
	c := f.c
	var cs string
	var body []byte
	for len(acts) > 0 {
		a := acts[0]
		acts = acts[1:]
		switch a.Kind {
		case ActDispatch:
			acts = append(acts, a.Call.Done(m.wd.do(a.Call))...)
		case ActServeEntry:
			_, h, hit := c.HitResponse(f.Request())
			cs, body = headerValue(h, "cache-status"), hit
		case ActForward:
			m.upstream++
			if _, more := f.ResponseHeaders(200, hs, OriginUpstream, false); more != nil {
				t.Fatalf("response headers: %v", more)
			}
			_, more := f.Complete(hs, b, 10, nil)
			acts = append(acts, more...)
			cs, body = string(f.CacheStatusHeader(nil)), b
		}
	}
	return cs, body
}

// Z150's mend marks the followers of a lead whose event stream reached
// its end without [DONE] refusedWhole (CompleteStream → refusalEnded):
// README "A stream that reaches its end without [DONE] ... is the model's
// whole answer: followers past max_retries go upstream for it rather than
// get a 502". A background refresh (stale-while-revalidate, early refresh)
// of a streamed request leads the key too, and its followers get its
// outcome "as a request's leader's" (Refresh), but it judges the same
// whole stream through AdmitAndStore and leadEnd, where truncated stays
// the model's own failure: with no retries left, the follower of the
// refresh is answered 502 leader-failed, where the follower of a
// request's lead that met the very same stream goes upstream. Expected:
// the follower of the refresh goes upstream (forward), not a 502.
func TestFollowup154RefreshOfStreamWithoutDoneFailsItsFollower(t *testing.T) {
	const q = `{"model":"gpt-4o-mini","stream":true,"messages":[{"role":"user","content":"q"}],"temperature":0}`
	sse := []byte("data: {\"id\":\"c1\",\"object\":\"chat.completion.chunk\",\"model\":\"gpt-4o-mini\",\"choices\":[{\"index\":0,\"delta\":{\"role\":\"assistant\",\"content\":\"Hello\"},\"finish_reason\":null}]}\n\n" +
		"data: {\"id\":\"c1\",\"object\":\"chat.completion.chunk\",\"model\":\"gpt-4o-mini\",\"choices\":[{\"index\":0,\"delta\":{},\"finish_reason\":\"stop\"}]}\n\n")
	sseCT := hdr("content-type", "text/event-stream")
	e := newProtoEnv(t, 0, "fail")
	begin := func(w int) *Request {
		c := e.w[w]
		req := c.Begin(c.routeByName("chat"), "POST", "/v1/chat/completions", alice)
		c.SetBody(req, []byte(q))
		if c.Lookup(req) == Serve {
			t.Fatalf("setup: a hit")
		}
		return req
	}
	// The refresh leads the key on worker 0.
	acts := e.w[0].Refresh(begin(0), alice, 1)
	if len(acts) != 1 || acts[0].Kind != ActDispatch {
		t.Fatalf("setup: refresh: %q", e.show(acts))
	}
	call := acts[0].Call
	f := e.w[1].NewFlight(begin(1), 2, 2)
	expectActs(t, "the follower", e.show(f.Miss()), "coalesce.followers wait")
	got := e.show(call.Done(CallResult{Status: 200, Headers: sseCT, Body: sse}))
	if !strings.Contains(got, "wake(w1)") {
		t.Fatalf("setup: the refresh's end woke nobody: %q", got)
	}
	if got := e.deliver(1, f); strings.Contains(got, "local(") {
		t.Errorf("the follower of a refresh that got a whole 200 stream without [DONE]: %q; want it sent upstream, as a request leader's follower is", got)
	}
}

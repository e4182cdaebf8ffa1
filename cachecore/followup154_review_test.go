package cachecore

import (
	"strings"
	"testing"
	"time"
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

// Z153's mend: a shadow comparison whose fresh answer diverges but cannot
// replace the entry (low confidence) drops the diverged entry, and README
// promises "this proxy drops the diverged entry instead, so that it is not
// served for the rest of its ttl". With an L2 the drop is of the L1 copy
// only (the code says so: "an L2 copy lives out its own"): the very next
// request on this proxy misses L1, finds the same contradicted answer in
// L2, is served it (detail=l2) and copies it back into L1, so the entry the
// model contradicts is served for the rest of its ttl all the same.
// Expected: after the divergence, the next request on this proxy is not
// served the contradicted "cat" (neither from L1 nor from L2).
func TestFollowup154ShadowDropOfDivergedEntryUndoneByL2(t *testing.T) {
	cfg := `{"upstream_cluster":"model","l2":{"cluster":"webdis"},"routes":[{"name":"cls","kind":"classify","path_exact":"/v1/classify","shared":true,` +
		`"confidence":{"path":"score","tiers":[{"min":0.9,"ttl":"1h"},{"min":0.6,"ttl":"1m"}]},` +
		`"shadow":{"sample":1,"min_samples":100,"max_divergence":0.5}}]}`
	m := &l2Mesh{t: t, clock: newFakeClock(), wd: newFakeWebdis()}
	c := New(mustParse(t, cfg), Options{Store: NewMemStore(), Now: m.clock.Now, Rand: seededRand(1)})
	m.p[0] = c
	const q = `{"model":"clf","input":"a photo"}`
	ask := func(answer string) (string, []byte, *Request) {
		req := c.Begin(c.routeByName("cls"), "POST", "/v1/classify", nil)
		m.nextID++
		f := c.NewFlight(req, 1, m.nextID)
		if _, acts := f.RequestHeaders(nil, false, true); acts != nil {
			t.Fatalf("headers: %v", acts)
		}
		cs, body := followup154Run(t, m, f, f.RequestBody([]byte(q), false), jsonCT, []byte(answer))
		return cs, body, f.Request()
	}
	if cs, _, _ := ask(`{"label":"cat","score":0.95}`); !strings.Contains(cs, "stored") {
		t.Fatalf("setup: first answer not stored: %q", cs)
	}
	cs, body, hit := ask(`{"label":"unasked","score":0.95}`)
	if !strings.HasPrefix(cs, "modelcache; hit") || strings.Contains(cs, "l2") || !strings.Contains(string(body), "cat") {
		t.Fatalf("setup: not an L1 hit of cat: %q %s", cs, body)
	}
	if got := len(m.wd.kv); got == 0 {
		t.Fatalf("setup: nothing written to L2")
	}
	acts := c.Shadow(hit, hdr(":method", "POST", ":path", "/v1/classify"))
	if len(acts) == 0 || acts[0].Call == nil {
		t.Fatalf("setup: no shadow call: %s", actionKinds(acts))
	}
	// The model now says dog, with low confidence: a divergence whose
	// answer cannot be stored.
	done := acts[0].Call.Done(CallResult{Status: 200, Headers: jsonCT, Body: []byte(`{"label":"dog","score":0.3}`)})
	if got, _ := m.step(done); !strings.Contains(got, "shadow.diverge") {
		t.Fatalf("setup: no divergence counted: %q", got)
	}
	m.clock.Advance(time.Minute) // the 1h entry is still fresh
	cs, body, _ = ask(`{"label":"dog","score":0.3}`)
	if strings.Contains(string(body), "cat") {
		t.Errorf("after the shadow saw the model contradict it, the dropped entry is served again: %q %s (want the model asked)", cs, body)
	}
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

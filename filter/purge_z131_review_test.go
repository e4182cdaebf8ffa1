//go:build !wasip1

package main

import (
	"strings"
	"testing"
	"time"

	"github.com/modelcache/modelcache/wasmhost"
)

func z131Purge(body string) wasmhost.Request {
	return wasmhost.Request{
		Headers: [][2]string{{":method", "POST"}, {":path", "/modelcache/purge"}, {":authority", "models"},
			{"authorization", "Bearer 0123456789abcdef-token"}, {"content-type", "application/json"}},
		Body: []byte(body),
	}
}

// Review Z131 (1). RATIONALE "Faults fail open": a host call error or a
// store error inside the filter "is logged and counted", and a purge may
// not go upstream (it carries the token), so its answer must tell the
// operator to send it again. A purge whose body the host would not hand
// over (proxy_get_buffer_bytes of the request body fails) is instead
// carried out on no body at all: the operator is told 400 "bad purge
// request: body is not JSON" for a body that is valid, and
// modelcache.internal_errors does not move.
func TestZ131PurgeBodyReadFaultIsNotABadRequest(t *testing.T) {
	f := &faultPlan{}
	hs := newHarness(t, chatConfig, withFaults(f))
	expectCacheStatus(t, hs.post(0, "/v1/chat/completions", chatBody("z131 read")), "stored")
	f.set(nthCall(1, wasmhost.StatusInternalFailure, func(c wasmhost.HostCall) bool {
		return c.Name == "proxy_get_buffer_bytes" && len(c.Args) > 0 &&
			wasmhost.BufferType(uint32(c.Args[0])) == wasmhost.BufferHTTPRequestBody
	}))
	res, err := hs.h.Exchange(0, z131Purge(`{"all":true}`))
	f.set(nil)
	if err != nil {
		t.Fatalf("exchange: %v", err)
	}
	if f.failed() != 1 {
		t.Fatalf("fault not injected (%d)", f.failed())
	}
	internal := hs.counter("modelcache.internal_errors")
	if res.Status < 500 || internal == 0 {
		t.Errorf("a purge whose body the host would not read: answered %d %s, internal_errors %d; want a 5xx (send it again) and the fault counted",
			res.Status, res.Body, internal)
	}
}

// Review Z131 (2). The same for a store fault: shared data refusing a
// write while a purge of everything clears L1 (Table.Clear's index
// write). The purge is left half done and answered 400 — "your request
// is bad, do not send it again" — with the store's error as its text,
// and modelcache.internal_errors does not move.
func TestZ131PurgeStoreFaultIsNotABadRequest(t *testing.T) {
	f := &faultPlan{}
	hs := newHarness(t, chatConfig, withFaults(f))
	expectCacheStatus(t, hs.post(0, "/v1/chat/completions", chatBody("z131 store")), "stored")
	f.set(func(c wasmhost.HostCall) (wasmhost.Status, bool) {
		return wasmhost.StatusInternalFailure, c.Name == "proxy_set_shared_data"
	})
	res, err := hs.h.Exchange(0, z131Purge(`{"all":true}`))
	f.set(nil)
	if err != nil {
		t.Fatalf("exchange: %v", err)
	}
	if f.failed() == 0 {
		t.Fatalf("fault not injected")
	}
	internal := hs.counter("modelcache.internal_errors")
	if res.Status < 500 || internal == 0 {
		t.Errorf("a purge shared data refused: answered %d %s, internal_errors %d; want a 5xx (send it again) and the fault counted",
			res.Status, strings.TrimSpace(string(res.Body)), internal)
	}
}

// Review Z131 (3). README "Purge API": where Envoy cannot hold request
// headers, a purge's headers go on to its route's upstream without the
// token, "and the answer is the filter's own (... any answer to it is
// held back, except Envoy's own)". The upstream's answer is held at its
// headers and body (purgeLate), but not at its trailers: an answer that
// ends with trailers (HTTP/2, chunked with trailers) has its trailers
// callback return Continue, which resumes the held headers and body
// (Envoy's commonContinue, as wasmhost models it). The model server's
// answer to the purge's headers — here a 404 for a path it does not
// serve — reaches the operator's client, and the purge, carried out when
// its body comes, can no longer answer.
func TestZ131LatePurgeHoldsAnUpstreamAnswerThatEndsWithTrailers(t *testing.T) {
	// header_hold "auto" (the default) in an Envoy that lets a filter hold
	// headers (envoy/envoy.yaml): a VM that has not yet seen holding work
	// lets a purge's headers go on (README: "or may not (auto or hold
	// before a VM has seen holding work)").
	cfg := strings.Replace(chatConfig, `"upstream_cluster": "model",`, `"upstream_cluster": "model", "header_hold": "auto",`, 1)
	hs := newHarness(t, cfg, withWorkers(1))
	req := z131Purge(`{"all":true}`)
	req.Streaming = true
	ex := hs.h.StartExchange(0, req)
	hs.h.Drain()
	u := ex.OpenUpstream()
	if u == nil {
		t.Fatalf("setup: no upstream request open for the late purge's headers: %s", ex.State())
	}
	u.RespondHeaders(404, [][2]string{{"content-type", "application/json"}}, false)
	hs.h.Drain()
	u.SendChunk([]byte(`{"error":"not found"}`), false)
	hs.h.Drain()
	u.SendTrailers([][2]string{{"x-upstream-done", "1"}})
	hs.h.Drain()
	ex.SendBody(req.Body, true)
	hs.h.Drain()
	for i := 0; i < 5 && !ex.Done(); i++ {
		hs.h.AdvanceAndTick(time.Second)
		hs.h.Drain()
	}
	r := ex.Response()
	if r.Status != 200 || !r.FromLocalReply || hs.counter("modelcache.purges") != 1 {
		t.Fatalf("a late purge whose upstream answer ended with trailers: client got status %d, local reply %v, body %q (purges %d); want the purge's own 200",
			r.Status, r.FromLocalReply, r.Body, hs.counter("modelcache.purges"))
	}
}

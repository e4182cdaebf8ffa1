//go:build !wasip1

package main

import (
	"testing"

	"github.com/modelcache/modelcache/wasmhost"
)

// RATIONALE "Faults fail open": a host call error "is logged and
// counted"; "A stream chunk the host could not read drops the recording
// as an internal fault (refused.internal)". The count waits for the
// stream's end (Stream.record only marks the recording failed; Flight.
// CompleteRecording counts it): a stream that is then cut — its client
// leaves, or the upstream resets it — goes through Stream.cut instead,
// which counts refused.truncated only, and the host's fault is counted
// nowhere (modelcache.internal_errors stays 0).
func TestStreamChunkReadFaultCountedWhenTheStreamIsCut(t *testing.T) {
	for _, tc := range []struct {
		name string
		cut  func(ex *wasmhost.Exchange, u *wasmhost.UpstreamRequest)
	}{
		{"client leaves", func(ex *wasmhost.Exchange, _ *wasmhost.UpstreamRequest) { ex.Abort() }},
		{"upstream resets", func(_ *wasmhost.Exchange, u *wasmhost.UpstreamRequest) { u.Reset() }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := &faultPlan{}
			hs := newHarness(t, chatConfig, withFaults(f))
			hs.holdUpstream()
			req := chatRequest("")
			req.Body = []byte(streamBody("a read fault, then a cut"))
			ex, u := hs.lead(req)
			u.RespondHeaders(200, [][2]string{{"content-type", "text/event-stream"}}, false)
			hs.h.Drain()
			f.set(nthCall(1, wasmhost.StatusInternalFailure, isResponseBodyRead))
			u.SendChunk([]byte(`data: {"id":"c1","object":"chat.completion.chunk","model":"sim-chat","choices":[{"index":0,"delta":{"role":"assistant","content":"Hel"},"finish_reason":null}]}`+"\n\n"), false)
			hs.h.Drain()
			f.set(nil)
			if f.failed() != 1 {
				t.Fatalf("fault not injected (%d)", f.failed())
			}
			tc.cut(ex, u)
			hs.h.Drain()
			if !ex.Done() {
				t.Fatalf("exchange not over: %s", ex.State())
			}
			if got := hs.counter("modelcache.internal_errors"); got == 0 {
				t.Errorf("a chunk read the host refused mid-stream, then the stream cut: internal_errors = 0 (want 1); refused.truncated = %d, refused.internal = %d",
					hs.counter("modelcache_route.chat.refused.truncated"), hs.counter("modelcache_route.chat.refused.internal"))
			}
		})
	}
}

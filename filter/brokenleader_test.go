//go:build !wasip1

package main

import (
	"context"
	"os"
	"testing"
	"time"

	"github.com/modelcache/modelcache/internal/wasmbuild"
	"github.com/modelcache/modelcache/wasmhost"
)

// A leader whose callback panicked is broken: the binding fails it open
// and the plugin hears no more of it — neither its end (so it never
// releases its lease) nor its deletion. Its lease must then end as a gone
// leader's does, coalesce.max_wait after it was last kept. It did not:
// the stream stayed on the VM's leading list for good and every tick kept
// its lease, so the key stayed led by a request that had long ended, and
// every later request for it followed, waited max_wait for nothing and
// went upstream, for as long as the VM lived.
func TestBrokenLeaderKeepsNoLease(t *testing.T) {
	ctx := context.Background()
	wasm, err := os.ReadFile(wasmbuild.FilterWithTags(t, "modelcache_crashtest"))
	if err != nil {
		t.Fatal(err)
	}
	mod, err := wasmhost.Compile(ctx, wasm)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { mod.Close(ctx) })
	cfg := `{"upstream_cluster":"model","routes":[{"name":"chat","kind":"chat","path_prefix":"/v1/chat/completions","ttl":"60s","coalesce":{"max_wait":"30s"}}]}`
	hs := newHarness(t, cfg, withModule(mod))
	hs.holdUpstream()
	req := chatRequest("a leader that panics")
	broken := req
	broken.Headers = append(append([][2]string(nil), req.Headers...), [2]string{"x-modelcache-crash", "panic-on-response"})
	leader := hs.h.StartExchange(0, broken)
	hs.h.Drain()
	up := hs.h.PendingUpstream()
	if len(up) != 1 {
		t.Fatalf("%d upstream requests", len(up))
	}
	hs.answer(up[0]) // its response headers callback panics: the stream fails open
	hs.h.Drain()
	if !leader.Done() || leader.Response().Status != 200 || hs.counter("modelcache.panics") != 1 {
		t.Fatalf("broken leader: done %v, panics %d", leader.Done(), hs.counter("modelcache.panics"))
	}
	for i := 0; i < 40; i++ { // 10 s past the lease's max_wait
		hs.h.AdvanceAndTick(time.Second)
	}
	next := hs.h.StartExchange(1, req)
	hs.h.Drain()
	if n, f := hs.upstream.Load(), hs.counter("modelcache.chat.coalesce.followers"); n != 2 || f != 0 {
		t.Fatalf("a request 40 s after a broken leader's answer ended: %d upstream calls (want 2: it leads at once), %d followers",
			n, f)
	}
	hs.answer(hs.h.PendingUpstream()[0])
	hs.h.Drain()
	if r := next.Response(); !next.Done() || r.Status != 200 {
		t.Fatalf("next request: done %v", next.Done())
	}
}

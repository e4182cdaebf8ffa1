//go:build !wasip1

package main

import (
	"strings"
	"testing"
	"time"

	"github.com/modelcache/modelcache/wasmhost"
)

// Fail-open: a purge is the operator's, not the model's failure. An entry
// purge that lands while a leader is upstream refuses the leader's store
// (ReasonInvalidated: its answer may predate the purge), and the model's
// 200 reaches the leader's client. That refusal is no leader failure:
// its followers must not spend max_retries on it, nor be answered 502
// leader-failed for a model that answered 200 every time (here an
// operator purging a hot key while it is being fetched, three times).
func TestPurgesDuringLeadsNeverFailFollowers(t *testing.T) {
	cfg := strings.Replace(coalesceConfig, `"routes"`, `"purge": {"path": "/modelcache/purge", "token": "0123456789abcdef-token"}, "routes"`, 1)
	hs := newHarness(t, cfg, withWorkers(2))
	hs.holdUpstream()
	exs := startMany(hs, 4, "purged while fetched")
	req := chatRequest("purged while fetched")
	purge := `{"path":"/v1/chat/completions","headers":{"authorization":"Bearer tenant-a","host":"models"},"body":` + string(req.Body) + `}`
	for round := 0; round < 8; round++ {
		pending := hs.h.PendingUpstream()
		if len(pending) == 0 {
			break
		}
		hs.h.AdvanceAndTick(5 * time.Millisecond) // the purge after the lead's lookup
		reviewPurge(hs, round%2, purge)
		for _, u := range pending {
			// Answered alone: a lead its answer starts is held, for the
			// next round's purge to land during it.
			hs.fault = func(x *wasmhost.UpstreamRequest) bool { return x != u }
			hs.upstream.Add(-1) // serveUpstream counts again
			hs.serveUpstream(u)
			hs.holdUpstream()
		}
		hs.h.Drain()
	}
	for i, ex := range exs {
		if !ex.Done() {
			t.Errorf("request %d not answered: %s", i, ex.State())
			continue
		}
		if res := ex.Response(); res.Status != 200 {
			t.Errorf("request %d: %d %q — the model answered 200 to every request (%d upstream); only purges ran",
				i, res.Status, hdr(res, "cache-status"), hs.upstream.Load())
		}
	}
}

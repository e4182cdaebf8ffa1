//go:build !wasip1

package main

import (
	"strings"
	"testing"
	"time"
)

// Review Z14 (stop 72), through the module: on a versioned route, a
// model's first answer was in flight when the operator purged its entry by
// replay; README promises it is not stored ("an answer in flight when it
// came, asked for before it"). It was stored under the version it
// reported, past the purge's tombstone, and served after the purge.
func TestEntryPurgeRefusesAFirstVersionAnswerInFlight(t *testing.T) {
	cfg := `{"upstream_cluster": "model",
  "purge": {"path": "/modelcache/purge", "token": "0123456789abcdef-token"},
  "routes": [{"name": "chat", "kind": "chat", "path_prefix": "/v1/chat/completions", "ttl": "60s",
     "model_version": {"body_path": "system_fingerprint"}}]}`
	hs := newHarness(t, cfg)
	hs.holdUpstream()
	req := chatRequest("purged in flight")
	ex := hs.h.StartExchange(0, req)
	hs.h.Drain()
	u := hs.onlyUpstream()
	hs.h.AdvanceAndTick(5 * time.Millisecond)
	reviewPurge(hs, 1, `{"path":"/v1/chat/completions","headers":{"authorization":"Bearer tenant-a","host":"models"},"body":`+string(req.Body)+`}`)
	hs.h.AdvanceAndTick(5 * time.Millisecond)
	hs.answer(u)
	hs.h.Drain()
	if !ex.Done() || ex.Response().Status != 200 {
		t.Fatalf("leader: %v", ex.State())
	}
	t.Logf("leader: %s", hdr(ex.Response(), "cache-status"))
	hs.fault = nil
	res := hs.post(1, "/v1/chat/completions", string(req.Body))
	if strings.Contains(hdr(res, "cache-status"), "hit") {
		t.Fatalf("the answer asked for before the purge is served after it: Cache-Status %q", hdr(res, "cache-status"))
	}
}

//go:build !wasip1

package main

import (
	"strings"
	"testing"
	"time"

	"github.com/modelcache/modelcache/wasmhost"
)

// gatewayModelAnswer is a model behind a gateway that names callers by
// x-forwarded-user (oauth2-proxy and the like): its answer depends on the
// caller it is told about.
func gatewayModelAnswer(headers [][2]string) (int, [][2]string, []byte) {
	user := hdrOf(headers, "x-forwarded-user")
	if user == "" {
		user = "nobody"
	}
	body := `{"id":"c","object":"chat.completion","model":"m","choices":[{"index":0,"message":{"role":"assistant","content":"answer for ` +
		user + `"},"finish_reason":"stop"}]}`
	return 200, [][2]string{{"content-type", "application/json"}}, []byte(body)
}

// README: tenant_headers — "behind a gateway that names callers by another
// header, list that header first"; a refresh re-asks the model for the
// entry it was served from, under the same key (tenant included). The
// replayed request drops every x-forwarded-* header (ReplayHeaders), so a
// tenant named by x-forwarded-user is refreshed as nobody and the
// anonymous answer is stored under that tenant's key.
func TestBackgroundRefreshCarriesTheTenantHeader(t *testing.T) {
	cfg := `{"upstream_cluster":"model","routes":[{"name":"chat","kind":"chat","path_prefix":"/v1/chat/completions","ttl":"60s",
	  "stale_while_revalidate":"30s","tenant_headers":["x-forwarded-user","authorization"]}]}`
	hs := newHarness(t, cfg, withHTTPCalls())
	hs.fault = func(u *wasmhost.UpstreamRequest) bool {
		u.Respond(gatewayModelAnswer(u.Headers))
		return true
	}
	hs.holdCalls = true
	body := chatBody("who am I")
	first := hs.post(0, "/v1/chat/completions", body, "x-forwarded-user", "alice")
	if !strings.Contains(string(first.Body), "answer for alice") {
		t.Fatalf("setup: %s", first.Body)
	}
	hs.clock.Advance(70 * time.Second) // stale, inside stale_while_revalidate
	expectCacheStatus(t, hs.post(0, "/v1/chat/completions", body, "x-forwarded-user", "alice"), "fwd=stale")
	calls := hs.h.PendingHTTPCalls()
	if len(calls) != 1 {
		t.Fatalf("%d refreshes, want 1", len(calls))
	}
	call := calls[0]
	call.Respond(gatewayModelAnswer(call.Headers))
	hs.h.Drain()
	res := hs.post(1, "/v1/chat/completions", body, "x-forwarded-user", "alice")
	if !strings.Contains(string(res.Body), "answer for alice") {
		t.Fatalf("alice's entry after its refresh: %s (Cache-Status %q); the refresh call's headers: %v",
			res.Body, hdr(res, "cache-status"), call.Headers)
	}
}

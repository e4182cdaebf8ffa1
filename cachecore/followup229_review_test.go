package cachecore

import (
	"strings"
	"testing"
	"time"
)

// Review Z229 (follow-up of Z228/Z227).
//
// The configuration refuses a tenant header a background call does not
// send: "A refresh or shadow call does not send it (ReplayHeaders): it
// would ask as no one, for an answer stored under the tenant's key"
// (config_policy.go, tenant_headers), and README says a background call
// keeps the route's tenant_headers. Review Z174 made ReplayHeaders drop
// the client's preconditions and ranges (if-none-match, if-modified-since,
// if-match, if-unmodified-since, if-range, range) whatever the route keys
// on, but tenant_headers still accepts them: the refresh of tenant A's
// entry asks as no one (without the header that names A), and its answer
// is stored under A's key.
//
// Expected: each such name refused in tenant_headers beside background
// calls (as "expect" and "cache-control" are), or the replay keeps it.
func TestZ229TenantHeaderReplayDropsIsRefused(t *testing.T) {
	for _, name := range []string{"if-none-match", "if-modified-since", "if-match", "if-unmodified-since", "if-range", "range"} {
		cfg := `{"upstream_cluster":"model","routes":[{"name":"chat","kind":"chat","path_prefix":"/v1/chat/completions",
		  "ttl":"10s","stale_while_revalidate":"1m","tenant_headers":["` + name + `"]}]}`
		if _, err := ParseConfig([]byte(cfg)); err == nil {
			t.Errorf("tenant_headers [%q] with stale_while_revalidate is accepted, though a refresh does not send %s (ReplayHeaders drops it): it would ask as no one", name, name)
		}
	}
}

// The behaviour the accepted configuration above leads to: tenant A
// (named by if-match) is refreshed by a call that names no one, whose
// answer (the model's for an anonymous caller) is stored under A's key and
// served to A.
func TestZ229RefreshAsksAsTheTenantNamedByIfMatch(t *testing.T) {
	env := authorityTenantEnv(t, `{"upstream_cluster":"model","routes":[{"name":"chat","kind":"chat",
	  "path_prefix":"/v1/chat/completions","ttl":"10s","stale_while_revalidate":"1m","tenant_headers":["if-match"]}]}`)
	if env == nil {
		return // refused: a fix
	}
	c := env.cache
	tenantA := hdr(":authority", "api.example", "if-match", "tenant-a")
	env.fill(env.request("chat", tenantA, chatRequest("q")), jsonCT, chatResponse("for tenant-a"), 10)
	env.clock.Advance(20 * time.Second)
	req, d := env.lookup("chat", tenantA, chatRequest("q"))
	if d != Serve || req.Status != StatusStale || !c.WantsRefresh(req) {
		t.Fatalf("setup: %v %s", d, req.Status)
	}
	acts := c.Refresh(req, hdr(":method", "POST", ":path", "/v1/chat/completions", ":authority", "api.example", "if-match", "tenant-a"), 1)
	if len(acts) != 1 || acts[0].Kind != ActDispatch {
		t.Fatalf("setup: %+v", acts)
	}
	call := acts[0].Call
	if got := headerValue(call.Headers, "if-match"); got != "tenant-a" {
		t.Errorf("tenant-a's refresh asks without its tenant header (if-match %q; call headers %q): as no one", got, call.Headers)
	}
	who := headerValue(call.Headers, "if-match")
	if who == "" {
		who = "anonymous"
	}
	call.Done(CallResult{Status: 200, Headers: jsonCT, Body: []byte(chatResponse("for " + who))})
	r, _ := env.lookup("chat", tenantA, chatRequest("q"))
	if r.Entry == nil || !strings.Contains(string(r.Entry.Body), "for tenant-a") {
		body := ""
		if r.Entry != nil {
			body = string(r.Entry.Body)
		}
		t.Errorf("tenant-a is served, after its refresh, %s (%s): an anonymous caller's answer", body, r.Status)
	}
}

package cachecore

import (
	"strings"
	"testing"
	"time"
)

// Tenants named by their host: tenant_headers [":authority"], which README
// allows ("a pseudo-header other than :authority ... names no caller"),
// beside upstream_authority (":authority of background calls").
//
// README (upstream_cluster): "A background call replays the client's
// headers ... except the route's tenant_headers and key_headers, which it
// keeps", and the configuration refuses a tenant header a background call
// does not send ("it would ask as no one, for an answer stored under the
// tenant's key", config_policy.go). This combination is accepted, yet
// ReplayHeaders puts upstream_authority in place of the tenant's
// :authority: a.example's entry is re-asked as api.internal — another
// identity — and that answer is stored under a.example's key.
//
// Expected: the configuration is refused, or the background call asks as
// the tenant its key names (:authority a.example).

// hostModelAnswer is a model whose answer depends on the caller, named by
// the host it was asked through.
func hostModelAnswer(call *Call) CallResult {
	return CallResult{Status: 200, Headers: jsonCT, Body: []byte(chatResponse("for " + headerValue(call.Headers, ":authority")))}
}

func authorityTenantEnv(t *testing.T, cfg string) *testEnv {
	t.Helper()
	parsed, err := ParseConfig([]byte(cfg))
	if err != nil {
		return nil // refused: a fix
	}
	store := NewMemStore()
	clock := newFakeClock()
	return &testEnv{t: t, store: store, clock: clock,
		cache: New(parsed, Options{Store: store, Now: clock.Now, Rand: seededRand(1)})}
}

// The refresh of tenant a.example's stale entry asks as api.internal and
// stores that caller's answer under a.example's key, served to a.example.
func TestRefreshAsksAsTheAuthorityTenantItStoresFor(t *testing.T) {
	env := authorityTenantEnv(t, `{"upstream_cluster":"model","upstream_authority":"api.internal","routes":[{"name":"chat","kind":"chat",
	  "path_prefix":"/v1/chat/completions","ttl":"10s","stale_while_revalidate":"1m","tenant_headers":[":authority"]}]}`)
	if env == nil {
		return
	}
	c := env.cache
	tenantA := hdr(":authority", "a.example")
	env.fill(env.request("chat", tenantA, chatRequest("q")), jsonCT, chatResponse("for a.example"), 10)
	env.clock.Advance(20 * time.Second)
	req, d := env.lookup("chat", tenantA, chatRequest("q"))
	if d != Serve || req.Status != StatusStale || !c.WantsRefresh(req) {
		t.Fatalf("setup: %v %s", d, req.Status)
	}
	acts := c.Refresh(req, hdr(":method", "POST", ":path", "/v1/chat/completions", ":authority", "a.example"), 1)
	if len(acts) != 1 || acts[0].Kind != ActDispatch {
		t.Fatalf("setup: %+v", acts)
	}
	call := acts[0].Call
	if got := headerValue(call.Headers, ":authority"); got != "a.example" {
		t.Errorf("tenant a.example's refresh asks as :authority %q (call headers %q)", got, call.Headers)
	}
	call.Done(hostModelAnswer(call))
	r, _ := env.lookup("chat", tenantA, chatRequest("q"))
	if r.Entry == nil || !strings.Contains(string(r.Entry.Body), "for a.example") {
		body := ""
		if r.Entry != nil {
			body = string(r.Entry.Body)
		}
		t.Errorf("tenant a.example is served, after its refresh, %s (%s): another caller's answer", body, r.Status)
	}
}

// The shadow comparison of a.example's hit asks as api.internal: the
// other caller's answer "diverges" and replaces a.example's entry.
func TestShadowAsksAsTheAuthorityTenantItCompares(t *testing.T) {
	env := authorityTenantEnv(t, `{"upstream_cluster":"model","upstream_authority":"api.internal","routes":[{"name":"chat","kind":"chat",
	  "path_prefix":"/v1/chat/completions","ttl":"1h","tenant_headers":[":authority"],
	  "shadow":{"sample":1.0,"max_concurrent":1,"min_samples":100,"max_divergence":0.5,"window":"10m"}}]}`)
	if env == nil {
		return
	}
	c := env.cache
	tenantA := hdr(":authority", "a.example")
	env.fill(env.request("chat", tenantA, chatRequest("q")), jsonCT, chatResponse("for a.example"), 10)
	req, d := env.lookup("chat", tenantA, chatRequest("q"))
	if d != Serve {
		t.Fatalf("setup: %v %s", d, req.Status)
	}
	acts := c.Shadow(req, hdr(":method", "POST", ":path", "/v1/chat/completions", ":authority", "a.example"))
	if len(acts) != 1 || acts[0].Kind != ActDispatch {
		t.Fatalf("setup: %+v", acts)
	}
	call := acts[0].Call
	if got := headerValue(call.Headers, ":authority"); got != "a.example" {
		t.Errorf("tenant a.example's shadow comparison asks as :authority %q (call headers %q)", got, call.Headers)
	}
	call.Done(hostModelAnswer(call))
	r, _ := env.lookup("chat", tenantA, chatRequest("q"))
	if r.Entry == nil || !strings.Contains(string(r.Entry.Body), "for a.example") {
		body := ""
		if r.Entry != nil {
			body = string(r.Entry.Body)
		}
		t.Errorf("tenant a.example is served, after the comparison, %s (%s): another caller's answer", body, r.Status)
	}
}

// The configuration that made the tests above ask as another caller is
// refused, naming the field and the reason; without background calls, or
// with tenants named by another header, it is accepted.
func TestAuthorityTenantWithUpstreamAuthorityRefused(t *testing.T) {
	route := func(extra string) string {
		return `{"upstream_cluster":"model","upstream_authority":"api.internal","routes":[{"name":"chat","kind":"chat",
		  "path_prefix":"/v1/chat/completions","tenant_headers":[":authority"]` + extra + `}]}`
	}
	for _, bad := range []string{route(`,"stale_while_revalidate":"1m"`), route(`,"shadow":{"sample":0.5,"max_concurrent":2}`)} {
		_, err := ParseConfig([]byte(bad))
		if err == nil || !strings.Contains(err.Error(), "routes[0].tenant_headers: names the tenant by :authority, but upstream_authority") {
			t.Errorf("accepted, or refused for another reason (%v):\n%s", err, bad)
		}
	}
	emb := `{"upstream_cluster":"model","upstream_authority":"api.internal","routes":[{"name":"emb","kind":"embeddings",
	  "path_prefix":"/v1/embeddings","tenant_headers":[":authority"]}]}`
	if _, err := ParseConfig([]byte(emb)); err == nil {
		t.Error("an embeddings route (its batches are refetched whole) with :authority tenants and upstream_authority is accepted")
	}
	for _, good := range []string{route(``), strings.Replace(route(`,"stale_while_revalidate":"1m"`), `":authority"`, `"x-tenant"`, 1)} {
		if _, err := ParseConfig([]byte(good)); err != nil {
			t.Errorf("refused: %v\n%s", err, good)
		}
	}
}

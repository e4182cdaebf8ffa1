package cachecore

import "testing"

// Review Z253: tenants.

// TestPurgeReplayByHostOnAuthorityTenantRoute: README (purge API): "A
// replay is addressed to the authority its headers name ("host" or
// ":authority")". On a route that names its tenants by :authority
// (tenant_headers [":authority"], which README allows), the replay's
// "host" is taken as the authority of the key (Begin reads host when
// there is no :authority) but not as the tenant: readTenant reads only
// ":authority", so the replay has no identity and the purge is refused
// (400, "would bypass the cache (no_identity)") while a.example's entry
// goes on being served. Expected: the replay naming the host a.example
// purges a.example's entry, as one naming ":authority" does.
func TestPurgeReplayByHostOnAuthorityTenantRoute(t *testing.T) {
	env := newEnv(t, `{"routes":[{"name":"chat","kind":"chat","path_prefix":"/v1/chat/completions","ttl":"10m","tenant_headers":[":authority"]}]}`)
	q := chatRequest("what is on my calendar today?")
	tenantA := hdr(":authority", "a.example")
	env.fill(env.request("chat", tenantA, q), jsonCT, chatResponse("a.example's calendar"), 10)
	if _, d := env.lookup("chat", tenantA, q); d != Serve {
		t.Fatal("setup: a.example's answer is not cached")
	}
	purge := `{"path":"/v1/chat/completions","headers":{"host":"a.example"},"body":` + q + `}`
	res, err := env.cache.Purge([]byte(purge), "purge.internal")
	if err != nil {
		t.Errorf("a replay addressed to host a.example is refused: %v", err)
	}
	if _, d := env.lookup("chat", tenantA, q); d == Serve {
		t.Errorf("a.example's entry still served after a replay of its request addressed to host a.example (purge %+v)", res)
	}
}

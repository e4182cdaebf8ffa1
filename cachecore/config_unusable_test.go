package cachecore

import (
	"strings"
	"testing"
)

// Configurations the filter accepted that could never work as written are
// errors at start, naming the field.

// An empty finish_reasons list turned the check off: truncated answers
// were stored.
func TestConfigEmptyFinishReasonsRefused(t *testing.T) {
	cfg := `{"routes":[{"name":"chat","kind":"chat","path_prefix":"/v1/chat","finish_reasons":[]}]}`
	if _, err := ParseConfig([]byte(cfg)); err == nil || !strings.Contains(err.Error(), "finish_reasons") {
		t.Fatalf("finish_reasons [] accepted (err %v): a truncated answer would be stored", err)
	}
}

// A purge path that is a route's own path took every request of the
// route there as a purge call. (A purge path under a route's prefix, such
// as /v1/_purge under /v1/, is a deliberate carve-out and allowed.)
func TestConfigPurgePathShadowingARouteRefused(t *testing.T) {
	for _, route := range []string{`"path_exact":"/v1/chat/completions"`, `"path_prefix":"/v1/chat/completions"`} {
		cfg := `{"purge":{"path":"/v1/chat/completions","token":"0123456789abcdef"},
		         "routes":[{"name":"chat","kind":"chat",` + route + `}]}`
		if _, err := ParseConfig([]byte(cfg)); err == nil || !strings.Contains(err.Error(), "purge.path") {
			t.Errorf("%s: config accepted (err %v): the route's requests to the purge path would be purge calls", route, err)
		}
	}
}

// A route path with a query or fragment never matches: requests are
// matched on their path alone.
func TestConfigRoutePathWithQueryRefused(t *testing.T) {
	for _, m := range []string{`"path_exact":"/v1/chat/completions?stream=false"`, `"path_prefix":"/v1/chat?"`, `"path_prefix":"/v1/chat#x"`} {
		cfg := `{"routes":[{"name":"chat","kind":"chat",` + m + `}]}`
		if _, err := ParseConfig([]byte(cfg)); err == nil || !strings.Contains(err.Error(), "routes[0].path") {
			t.Errorf("%s accepted (err %v), yet no request can match it", m, err)
		}
	}
}

// A header name no header can have (a space, a colon inside, a control
// character) never matches: a tenant route would bypass every request
// as having no identity, a stored header would never be stored.
func TestConfigHeaderNamesMustBeTokens(t *testing.T) {
	for _, tc := range []struct{ field, route string }{
		{"tenant_headers[0]", `"tenant_headers":["x api-key"]`},
		{"tenant_headers[1]", `"tenant_headers":["authorization","x-key\u0000"]`},
		{"stored_headers[0]", `"stored_headers":["x-a:b"]`},
		{"model_version.header", `"model_version":{"header":"x model"}`},
	} {
		cfg := `{"routes":[{"name":"chat","kind":"chat","path_prefix":"/v1/chat",` + tc.route + `}]}`
		if _, err := ParseConfig([]byte(cfg)); err == nil || !strings.Contains(err.Error(), "routes[0]."+tc.field) {
			t.Errorf("%s accepted (err %v)", tc.route, err)
		}
	}
	ok := `{"routes":[{"name":"chat","kind":"chat","path_prefix":"/v1/chat","tenant_headers":["X-Api-Key",":authority"],"stored_headers":["x-request-id"]}]}`
	if _, err := ParseConfig([]byte(ok)); err != nil {
		t.Errorf("valid header names refused: %v", err)
	}
}

// An embeddings route caches its items one by one, serves an item only
// while it is fresh and stores it for the route's ttl: stale windows,
// early refresh and confidence tiers did nothing there, silently. Set on
// the route they are errors; inherited from defaults (where they serve the
// other routes) they are dropped, so that nothing reads as set.
func TestConfigEmbeddingsRouteRefusesWhatItCannotDo(t *testing.T) {
	for _, tc := range []struct{ field, value string }{
		{"stale_while_revalidate", `"1m"`},
		{"stale_if_error", `"1h"`},
		{"early_refresh", `{"enabled":true}`},
		{"confidence", `{"path":"score","tiers":[{"min":0.9,"ttl":"1m"}]}`},
	} {
		cfg := `{"upstream_cluster":"model","routes":[{"name":"emb","kind":"embeddings","path_prefix":"/v1/embeddings","ttl":"1h","` + tc.field + `":` + tc.value + `}]}`
		if _, err := ParseConfig([]byte(cfg)); err == nil || !strings.Contains(err.Error(), "routes[0]."+tc.field) {
			t.Errorf("%s on an embeddings route accepted (err %v)", tc.field, err)
		}
		inherited := `{"upstream_cluster":"model","defaults":{"` + tc.field + `":` + tc.value + `},"routes":[
		  {"name":"chat","kind":"chat","path_prefix":"/v1/chat/completions"},
		  {"name":"emb","kind":"embeddings","path_prefix":"/v1/embeddings","ttl":"1h"}]}`
		c, err := ParseConfig([]byte(inherited))
		if err != nil {
			t.Errorf("%s in defaults refused for the embeddings route: %v", tc.field, err)
			continue
		}
		chat, emb := c.Routes[0], c.Routes[1]
		if emb.StaleWhileReval != 0 || emb.StaleIfError != 0 || emb.EarlyRefresh.Enabled || emb.Confidence != nil {
			t.Errorf("%s from defaults kept on the embeddings route: %+v", tc.field, emb.Policy)
		}
		if chat.StaleWhileReval == 0 && chat.StaleIfError == 0 && !chat.EarlyRefresh.Enabled && chat.Confidence == nil {
			t.Errorf("%s from defaults lost on the chat route", tc.field)
		}
	}
	// Zero values say nothing is wanted: accepted.
	ok := `{"routes":[{"name":"emb","kind":"embeddings","path_prefix":"/v1/embeddings","stale_while_revalidate":"0s","stale_if_error":"0s","early_refresh":{"enabled":false}}]}`
	if _, err := ParseConfig([]byte(ok)); err != nil {
		t.Errorf("zero stale windows refused: %v", err)
	}
}

// With an L2, a copy is served only while fresh for longer than
// l2.ttl_slack: a route (or a confidence tier) whose ttl is not above it
// wrote every answer to L2 and led it across the mesh, and another proxy
// waited for an answer it then could not use.
func TestConfigTTLNotAboveL2SlackRefused(t *testing.T) {
	for _, tc := range []struct{ field, route, l2 string }{
		{"routes[0].ttl", `"ttl":"1s"`, `{"cluster":"webdis"}`},
		{"routes[0].ttl", `"ttl":"5s"`, `{"cluster":"webdis","ttl_slack":"5s"}`},
		{"routes[0].confidence.tiers", `"ttl":"1h","confidence":{"path":"score","tiers":[{"min":0.9,"ttl":"1h"},{"min":0.5,"ttl":"1s"}]}`, `{"cluster":"webdis"}`},
	} {
		cfg := `{"l2":` + tc.l2 + `,"routes":[{"name":"chat","kind":"chat","path_prefix":"/v1/chat",` + tc.route + `}]}`
		if _, err := ParseConfig([]byte(cfg)); err == nil || !strings.Contains(err.Error(), tc.field) {
			t.Errorf("%s with l2 %s accepted (err %v)", tc.route, tc.l2, err)
		}
	}
	ok := `{"l2":{"cluster":"webdis","ttl_slack":"0s"},"routes":[{"name":"chat","kind":"chat","path_prefix":"/v1/chat","ttl":"1s"}]}`
	if _, err := ParseConfig([]byte(ok)); err != nil {
		t.Errorf("ttl 1s with no slack refused: %v", err)
	}
	noL2 := `{"routes":[{"name":"chat","kind":"chat","path_prefix":"/v1/chat","ttl":"1s"}]}`
	if _, err := ParseConfig([]byte(noL2)); err != nil {
		t.Errorf("ttl 1s without an L2 refused: %v", err)
	}
}

// An embeddings route is cached per item in L1 only (README, "Mesh-wide
// L2": "embeddings batches, which are cached per item in L1 only"; l2On
// skips every batch, and every embeddings request is one). Its ttl has
// nothing to do with l2.ttl_slack, yet a config with an L2 refuses it.
func TestConfigL2SlackLeavesEmbeddingsRoutesAlone(t *testing.T) {
	cfg := `{"l2":{"cluster":"webdis","ttl_slack":"10m"},"routes":[
	  {"name":"chat","kind":"chat","path_prefix":"/v1/chat/completions","ttl":"24h"},
	  {"name":"emb","kind":"embeddings","path_prefix":"/v1/embeddings","ttl":"5m"}]}`
	if _, err := ParseConfig([]byte(cfg)); err != nil {
		t.Fatalf("embeddings route (L1 only) refused for l2.ttl_slack: %v", err)
	}
}

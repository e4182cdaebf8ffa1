package cachecore

import "testing"

// Review Z142: tenant isolation.

// TestTenantHeadersRefusePseudoHeaders: tenant_headers accepts a
// pseudo-header such as ":method" or ":scheme" (headerName lets a leading
// colon through), which every request carries with the same value: the
// "tenant" route then keys every caller alike, so Bob is served Alice's
// answer on a route that claims tenant isolation (README: one tenant's
// answers are never served to another; "fails closed"). key_headers and
// stored_headers refuse pseudo-headers. Expected: a config error for a
// pseudo-header in tenant_headers.
func TestTenantHeadersRefusePseudoHeaders(t *testing.T) {
	for _, name := range []string{":method", ":scheme", ":path"} {
		cfg := `{"routes":[{"name":"chat","kind":"chat","path_exact":"/v1/chat/completions","tenant_headers":["` + name + `","authorization"]}]}`
		if _, err := ParseConfig([]byte(cfg)); err != nil {
			continue // refused: as expected
		}
		env := newEnv(t, cfg)
		withPseudo := func(h [][2]string) [][2]string {
			return append(hdr(":method", "POST", ":scheme", "https", ":path", "/v1/chat/completions"), h...)
		}
		body := chatRequest("what did I tell you about my diagnosis?")
		req, _ := env.lookup("chat", withPseudo(alice), body)
		if req.Bypassed() {
			t.Fatalf("tenant_headers [%q]: accepted, alice bypassed (%s)", name, req.Reason)
		}
		env.fill(req, jsonCT, chatResponse("Alice's private answer"), 10)
		_, d := env.lookup("chat", withPseudo(bob), body)
		t.Errorf("tenant_headers [%q, \"authorization\"] is accepted; with it every caller is one tenant (bob's lookup of alice's question: decision %d, 1 = served alice's answer); want a config error", name, d)
	}
}

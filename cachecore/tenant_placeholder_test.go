package cachecore

import (
	"strings"
	"testing"
)

// A client whose Authorization carries a placeholder ("null", "undefined")
// names no one there, and is keyed under its next identity header, its
// x-api-key (README, tenant_headers), however the scheme and the
// placeholder are spaced: the hash of a credential splits them on spaces
// and tabs, any number, so "Bearer\tnull" and "Bearer<20 spaces>undefined"
// taken for credentials would make every client that sends one, whatever
// its x-api-key, one tenant, served the others' answers.
func TestPlaceholderSpellingsWithTabsOrSpacesNameNoOne(t *testing.T) {
	for _, auth := range []string{
		"Bearer null", // control: the spelling the check knows passes
		"Bearer\tnull",
		"Bearer " + strings.Repeat(" ", 20) + "undefined",
		"Bearer \tNone",
	} {
		placeholderKeepsTenantsApart(t, auth)
	}
}

// The first identity header present is the tenant. OpenAI SDK clients
// behind a gateway that authenticates by x-api-key must still send an
// api_key, and send the placeholder their server's docs show: vLLM's
// "EMPTY", llama.cpp's "sk-no-key-required", Ollama's "ollama". Taken for
// credentials, every such client would be one tenant, whatever its own
// x-api-key: they name no one, as "null" does.
func TestWellKnownNoKeyPlaceholdersNameNoOne(t *testing.T) {
	for _, auth := range []string{"Bearer EMPTY", "Bearer sk-no-key-required", "Bearer ollama"} {
		placeholderKeepsTenantsApart(t, auth)
	}
}

// placeholderKeepsTenantsApart stores tenant A's answer under an
// Authorization of auth and its own x-api-key, and fails t if a request
// with the same Authorization and another x-api-key is served it.
func placeholderKeepsTenantsApart(t *testing.T, auth string) {
	t.Helper()
	env := newEnv(t, testConfig)
	body := chatRequest("summarise my private notes")
	a := hdr("authorization", auth, "x-api-key", "key-of-tenant-A")
	b := hdr("authorization", auth, "x-api-key", "key-of-tenant-B")
	req, d := env.lookup("chat", a, body)
	if req.Bypassed() || d != Forward {
		t.Fatalf("%q: tenant A's first request: %v %s", auth, d, req.Reason)
	}
	env.fill(req, jsonCT, chatResponse("tenant A's private answer"), 1)
	if req, d := env.lookup("chat", b, body); d == Serve {
		t.Errorf("authorization %q: tenant B (another x-api-key) was served tenant A's answer (tenant read from %q)", auth, req.tenantFrom)
	}
}

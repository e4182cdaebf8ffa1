package cachecore

import "testing"

// An Authorization value that is a scheme and nothing else ("Bearer", what
// a client with an empty key sends, its trailing space trimmed by the
// proxy) names no one. Taken as the identity, it made every such client
// one tenant: under the default tenant_headers a client whose credential
// is its x-api-key was served another client's answer, and clients
// without any credential shared a namespace. It is no identity: the next
// configured header is read, and without one the request bypasses.
func TestTenantSchemeWithoutCredentialsIsNoIdentity(t *testing.T) {
	env := newEnv(t, testConfig)
	body := chatRequest("What did I ask you yesterday?")
	carol := hdr("authorization", "Bearer", "x-api-key", "sk-carol")
	req, d := env.lookup("chat", carol, body)
	if d != Forward || req.Bypassed() {
		t.Fatalf("carol: %v %s/%s", d, req.Status, req.Reason)
	}
	env.fill(req, jsonCT, chatResponse("carol's answer"), 10)
	for _, v := range []string{"Bearer", "bearer", "Bearer ", "BASIC", " Bearer\t", "Negotiate"} {
		dave := hdr("authorization", v, "x-api-key", "sk-dave")
		if req, d := env.lookup("chat", dave, body); d == Serve || req.Entry != nil {
			t.Errorf("authorization %q with another x-api-key was served carol's answer", v)
		}
		if req := env.request("chat", hdr("authorization", v), body); req.Reason != ReasonNoIdentity {
			t.Errorf("authorization %q alone: %s/%s, want a bypass for no identity", v, req.Status, req.Reason)
		}
	}
	// A value that is not a scheme alone stays an identity, and one
	// credential is still one tenant.
	if req := env.request("chat", hdr("authorization", "sk-carol"), body); req.Bypassed() {
		t.Errorf("a one-word credential bypassed: %s", req.Reason)
	}
	if req, d := env.lookup("chat", hdr("x-api-key", "sk-carol"), body); d != Serve {
		t.Errorf("carol's x-api-key alone: %v %s, want her answer", d, req.Status)
	}
}

// tenantHeader looks a value up in authSchemes only when it is no longer
// than maxSchemeLen: no scheme may be longer.
func TestMaxSchemeLenCoversEveryScheme(t *testing.T) {
	for _, s := range authSchemes {
		if len(s) > maxSchemeLen {
			t.Fatalf("scheme %q is longer than maxSchemeLen %d", s, maxSchemeLen)
		}
	}
}

// A scheme followed by what a client's code writes for a key it never set
// ("Bearer undefined" from JavaScript, "Bearer null", "Bearer None" from
// Python) names no one either: as the identity it made every such client
// one tenant, and one whose credential is its x-api-key was served
// another's answer. A real credential of that length stays an identity.
func TestTenantPlaceholderCredentialIsNoIdentity(t *testing.T) {
	env := newEnv(t, testConfig)
	body := chatRequest("What is on my calendar?")
	carol := hdr("authorization", "Bearer undefined", "x-api-key", "sk-carol")
	req, d := env.lookup("chat", carol, body)
	if d != Forward || req.Bypassed() {
		t.Fatalf("carol: %v %s/%s", d, req.Status, req.Reason)
	}
	env.fill(req, jsonCT, chatResponse("carol's answer"), 10)
	for _, v := range []string{"Bearer undefined", "Bearer null", "bearer NULL", "Bearer None", " Bearer  undefined "} {
		dave := hdr("authorization", v, "x-api-key", "sk-dave")
		if req, d := env.lookup("chat", dave, body); d == Serve || req.Entry != nil {
			t.Errorf("authorization %q with another x-api-key was served carol's answer", v)
		}
	}
	if req, d := env.lookup("chat", hdr("x-api-key", "sk-carol"), body); d != Serve {
		t.Errorf("carol's x-api-key alone: %v %s, want her answer", d, req.Status)
	}
	if req := env.request("chat", hdr("authorization", "Bearer nulls"), body); req.Bypassed() {
		t.Errorf("a short real credential bypassed: %s", req.Reason)
	}
}

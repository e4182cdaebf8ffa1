package cachecore

import "testing"

// An identity header sent twice names two callers, and which one the
// upstream, an authoriser or a gateway takes is theirs to choose: behind
// a gateway that appends the caller's authenticated id to a client's own
// line (Envoy's request_headers_to_add appends by default), the first line
// is the client's word. Keyed under it, a client that sent a victim's id
// first was served the victim's answers. Such a request names no one
// (no_identity); the next listed header is not read instead, since the
// first one present is the route's word for who calls.
func TestIdentityHeaderSentTwiceIsNoIdentity(t *testing.T) {
	cfg := `{"routes":[{"name":"chat","kind":"chat","path_prefix":"/v1","tenant_headers":["x-tenant","authorization"]}]}`
	env := newEnv(t, cfg)
	body := chatRequest("what is the capital of France?")
	victim, _ := env.lookup("chat", hdr("x-tenant", "victim"), body)
	if victim.Bypassed() {
		t.Fatalf("setup: %s", victim.Reason)
	}
	env.fill(victim, jsonCT, chatResponse("Paris"), 10)
	for _, h := range [][][2]string{
		hdr("x-tenant", "victim", "x-tenant", "attacker"),
		hdr("x-tenant", "victim", "authorization", "Bearer sk-a", "x-tenant", "attacker"),
		hdr("x-tenant", "victim", "x-tenant", "victim"),
	} {
		req, d := env.lookup("chat", h, body)
		if d == Serve {
			t.Fatalf("headers %q: served the victim's answer", h)
		}
		if !req.Bypassed() || req.Reason != ReasonNoIdentity {
			t.Fatalf("headers %q: %v (%s), want a no_identity bypass", h, d, req.Reason)
		}
	}
	// One line of each is an identity, the first listed one.
	if _, d := env.lookup("chat", hdr("authorization", "Bearer sk-a", "x-tenant", "victim"), body); d != Serve {
		t.Fatalf("one x-tenant line: %v", d)
	}
}

package cachecore

import (
	"bytes"
	"testing"
)

// Review Z40: the request Content-Type check of e4f7050 (directiveLines'
// notJSON) returns from Begin before the request's Cache-Control is read,
// so an only-if-cached request whose body is not JSON goes upstream.
// README: only-if-cached is "a 504 whenever the cache cannot answer —
// never an upstream call, even for a request the cache cannot take part
// in"; TestOnlyIfCachedNeverForwards holds it for no identity, a
// malformed body and a body too large, and not_json must be no different.
func TestOnlyIfCachedNeverForwardsANonJSONBody(t *testing.T) {
	for _, tc := range []struct {
		name    string
		headers [][2]string
	}{
		{"text/plain", hdr("authorization", "a", "content-type", "text/plain", "cache-control", "only-if-cached")},
		{"octet-stream", hdr("authorization", "a", "content-type", "application/octet-stream", "cache-control", "only-if-cached")},
		{"triton binary tensors", hdr("authorization", "a", "inference-header-content-length", "12", "cache-control", "only-if-cached")},
	} {
		t.Run(tc.name, func(t *testing.T) {
			env := newEnv(t, testConfig)
			req, d := env.lookup("chat", tc.headers, chatRequest("q"))
			if req.Reason != ReasonNotJSON {
				t.Fatalf("setup: reason %s, want not_json", req.Reason)
			}
			if d == Forward || !req.CC.OnlyIfCached {
				t.Fatalf("Lookup = %v (status %s, reason %s, CC.OnlyIfCached %v): an only-if-cached request goes upstream",
					d, req.Status, req.Reason, req.CC.OnlyIfCached)
			}
		})
	}
}

// isJSONType folds case and trims space as Unicode does (strings.ToLower,
// strings.TrimSpace), where media types are ASCII case-insensitive and
// HTTP's optional white space is SP and HTAB (RFC 9110 §8.3.1, §5.6.3):
// "applİcation/json" (U+0130 lower-cases to "i") and "application/json"
// followed by a no-break space or NEL are read as JSON, yet no server
// reads them as application/json, so such a body is keyed by its JSON
// meaning (1e2 and 100.0 one key) while the server reads it as bytes — the
// wrong answer e4f7050 removed for text/plain. Likewise a type that merely
// ends in "+json" without being one media type ("text/plain,x/y+json",
// Envoy's join of two Content-Type lines; "+json").
func TestRequestContentTypeIsReadAsASCII(t *testing.T) {
	for _, ct := range []string{
		"appl\u0130cation/json",
		"application/json\u00a0",
		"\u0085application/json",
		"text/plain,application/vnd.x+json",
		"+json",
	} {
		if _, _, notJSON := directiveLines(hdr("content-type", ct)); !notJSON {
			t.Errorf("content-type %q is keyed as JSON: no server reads it as application/json or a +json type", ct)
		}
	}
}

// The authority is folded as a host name is, in ASCII (RFC 9110 §4.2.3):
// Unicode's folding took "A.İ" (U+0130 lower-cases to "i") to the key of
// the host "a.i", a name Envoy's virtual hosts, matching in ASCII, route
// apart (found beside review Z40).
func TestAuthorityIsFoldedInASCII(t *testing.T) {
	env := newEnv(t, testConfig)
	key := func(authority string) []byte {
		req := env.request("chat", append(hdr(":authority", authority), alice...), chatRequest("q"))
		if req.Bypassed() {
			t.Fatalf("bypassed: %s", req.Reason)
		}
		return req.Key
	}
	if bytes.Equal(key("A.\u0130"), key("a.i")) {
		t.Fatal(`the authorities "A.İ" and "a.i" share a key`)
	}
	if !bytes.Equal(key("A.I"), key("a.i")) {
		t.Fatal("host names differing in ASCII case do not share a key")
	}
}

package cachecore

import "testing"

// A client's Cache-Control: no-store counts on any of its header lines,
// as a response's does (TestAdmitSecondCacheControlLineNoStore): the
// request bypasses the cache, so its answer is never stored.
func TestRequestSecondCacheControlLineNoStore(t *testing.T) {
	env := newEnv(t, testConfig)
	h := append(append([][2]string{}, alice...), [2]string{"cache-control", "max-stale=0"}, [2]string{"cache-control", "no-store"})
	req := env.request("chat", h, chatRequest("my medical history"))
	if req.Bypassed() {
		if req.Reason != ReasonRequestNoStore {
			t.Fatalf("bypassed for %s, want request_no_store", req.Reason)
		}
		return
	}
	if r := env.cache.AdmitAndStore(req, 200, jsonCT, []byte(chatResponse("diagnosis")), OriginUpstream, 10).Reason; r == ReasonNone {
		t.Fatalf("request with `Cache-Control: no-store` on its second line: answer stored")
	}
}

// Pragma: no-cache (HTTP/1.0) counts on any of its lines too.
func TestRequestSecondPragmaLineNoCache(t *testing.T) {
	env := newEnv(t, testConfig)
	h := append(append([][2]string{}, alice...), [2]string{"pragma", "x-a"}, [2]string{"pragma", "no-cache"})
	if req := env.request("chat", h, chatRequest("q")); req.Status != StatusRevalidate {
		t.Fatalf("status %s, want revalidate", req.Status)
	}
}

// Only cache-control and pragma are directives: a header of
// cache-control's length that starts with its letter (content-range) or
// has its name's other letters is not read as one.
func TestRequestDirectivesOnlyTheirNames(t *testing.T) {
	h := hdr("authorization", "no-store", "content-range", "no-store", "cache-controx", "no-store",
		"cache-control", "no-cache", "pragmas", "no-cache", "pragma", "x", "cache-control", "max-age=0")
	cc, pragma := requestDirectives(h)
	if cc != "no-cache, max-age=0" || pragma != "x" {
		t.Fatalf("requestDirectives = %q, %q; want %q, %q", cc, pragma, "no-cache, max-age=0", "x")
	}
}

// A no-cache request with no identity bypasses for the identity: the
// revalidate status readDirectives sets is replaced by the bypass.
func TestRequestNoCacheWithoutIdentityBypasses(t *testing.T) {
	env := newEnv(t, testConfig)
	req := env.cache.Begin(env.cache.cfg.Routes[0], "POST", "/v1/chat/completions", hdr("cache-control", "no-cache"))
	if !req.Bypassed() || req.Reason != ReasonNoIdentity {
		t.Fatalf("status %s reason %s, want bypass for no identity", req.Status, req.Reason)
	}
}

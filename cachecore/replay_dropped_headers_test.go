package cachecore

import (
	"strings"
	"testing"
)

// A background call (a refresh, a shadow call, a refetch) leaves out the
// headers replayDrops names. A route keying its answers on one of them
// stored what the model said without it under the key of a request that
// sent it: the refresh of a "range: bytes=0-9" entry asked for the whole
// answer (review Z232, noticed then). As for tenant_headers (Z229), such a
// key_headers list is refused.
func TestKeyHeadersTheBackgroundCallsDropAreRefused(t *testing.T) {
	for _, name := range []string{"range", "accept-encoding", "cache-control", "if-none-match", "pragma", "expect"} {
		for _, cfg := range []string{
			oneRoute(`,"key_headers":["openai-project","` + name + `"]`),
			`{"defaults":{"key_headers":["` + name + `"]},"routes":[{"name":"r","kind":"chat","path_prefix":"/v1"}]}`,
		} {
			_, err := ParseConfig([]byte(cfg))
			if err == nil || !strings.Contains(err.Error(), "key_headers[") || !strings.Contains(err.Error(), `"`+name+`"`) {
				t.Errorf("key_headers naming %q: error %v, want it refused (a background call does not send it)", name, err)
				continue
			}
			checkErrorLines(t, err.Error())
		}
	}
	if _, err := ParseConfig([]byte(oneRoute(`,"key_headers":["openai-project","accept-language"]`))); err != nil {
		t.Errorf("a header background calls send: %v", err)
	}
}

// The hop-by-hop headers the configuration refuses to key on (hopByHop)
// describe the client's connection; a background call is the cache's own
// and sends none of them.
func TestBackgroundCallsSendNoHopByHopHeader(t *testing.T) {
	in := hdr(":method", "POST", ":path", "/v1/chat/completions", ":authority", "models",
		"trailer", "x-checksum", "proxy-connection", "keep-alive", "te", "trailers", "accept-language", "de")
	out := ReplayHeaders(in, "", nil)
	for _, kv := range out {
		if hopByHop(kv[0]) {
			t.Errorf("a background call sends %s: %s", kv[0], kv[1])
		}
	}
	if len(out) != 4 {
		t.Errorf("replayed %v, want the method, path, authority and accept-language", out)
	}
}

//go:build !wasip1

package main

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/modelcache/modelcache/wasmhost"
)

// Review Z40. README: only-if-cached is "a 504 whenever the cache cannot
// answer — never an upstream call, even for a request the cache cannot take
// part in". A request whose Content-Type is not JSON (or that carries
// Triton's Inference-Header-Content-Length) bypasses in Begin before its
// Cache-Control is read, so its only-if-cached is never seen: the request
// reaches the model (a paid call the client forbade) and is labelled a
// plain bypass.
func TestOnlyIfCachedNonJSONBodyNeverReachesTheModel(t *testing.T) {
	hs := newHarness(t, `{"routes":[{"name":"j","kind":"json","path_prefix":"/v2/models/","ttl":"1h"}]}`)
	hs.fault = func(u *wasmhost.UpstreamRequest) bool {
		u.Respond(200, [][2]string{{"content-type", "application/json"}}, []byte(`{"outputs":[6]}`))
		return true
	}
	body := []byte(`{"inputs":[1,2,3]}`)
	for _, tc := range []struct {
		ct    string
		extra []string
	}{
		{"text/plain", nil},
		{"application/octet-stream", []string{"inference-header-content-length", "18"}},
		{"application/json", []string{"inference-header-content-length", "18"}},
	} {
		before := hs.upstream.Load()
		res := sendRaw(hs, 0, "/v2/models/m/infer", tc.ct, body, append([]string{"cache-control", "only-if-cached"}, tc.extra...)...)
		if calls := hs.upstream.Load() - before; calls != 0 || res.Status != 504 {
			t.Errorf("content-type %q %v, only-if-cached: status %d, Cache-Status %q, %d upstream call(s); want a 504 and none",
				tc.ct, tc.extra, res.Status, hdr(res, "cache-status"), calls)
		}
	}
	if n := hs.counter("modelcache_route.j.requests.unavailable"); n != 3 {
		t.Errorf("requests.unavailable = %d, want 3 (requests.bypass = %d)", n, hs.counter("modelcache_route.j.requests.bypass"))
	}
}

// A TorchServe-like text handler reads the body as JSON only when its
// Content-Type is application/json by HTTP's rules (ASCII case-insensitive,
// SP/HTAB trimmed), and as the bytes sent otherwise. The cache reads the
// type with Unicode's case folding and white space: "applİcation/json"
// (U+0130 lower-cases to ASCII "i") is JSON to it, so the texts "1e2" and
// "100.0" share one key and the second client gets the first's answer —
// the wrong answer e4f7050 removed for text/plain.
func TestUnicodeSpelledJSONTypeIsNotKeyedAsJSON(t *testing.T) {
	hs := newHarness(t, `{"routes":[{"name":"ts","kind":"classify","path_prefix":"/predictions/","ttl":"1h",
	  "validate":[{"path":"label","type":"string","non_empty":true}]}]}`)
	hs.fault = func(u *wasmhost.UpstreamRequest) bool {
		ct := ""
		for _, kv := range u.Headers {
			if kv[0] == "content-type" {
				ct = kv[1]
			}
		}
		mt, _, _ := strings.Cut(ct, ";")
		label := "text:" + string(u.Body)
		if strings.EqualFold(strings.Trim(mt, " \t"), "application/json") { // HTTP's reading: ASCII
			var v any
			_ = json.Unmarshal(u.Body, &v)
			b, _ := json.Marshal(v)
			label = "json:" + string(b)
		}
		out, _ := json.Marshal(map[string]any{"label": label, "score": 0.99})
		u.Respond(200, [][2]string{{"content-type", "application/json"}}, out)
		return true
	}
	for i, ct := range []string{"appl\u0130cation/json", "application/json\u00a0"} {
		path := "/predictions/sentiment" + string(rune('a'+i))
		a := sendRaw(hs, 0, path, ct, []byte("1e2"))
		if a.Status != 200 || !strings.Contains(string(a.Body), `"text:1e2"`) {
			t.Fatalf("setup %q: %d %s", ct, a.Status, a.Body)
		}
		b := sendRaw(hs, 1, path, ct, []byte("100.0"))
		if !strings.Contains(string(b.Body), `"text:100.0"`) {
			t.Errorf("content-type %q: the text 100.0 is answered with the answer to the text 1e2 (Cache-Status %q): %s",
				ct, hdr(b, "cache-status"), b.Body)
		}
	}
}

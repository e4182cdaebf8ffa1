package cachecore

import (
	"strings"
	"testing"
)

// The canonicaliser's captures (a request's "stream" and "model", copied
// as it reads them) are scratch space it keeps for the next body too, and
// the last model name is kept to spare the next request its copy: a
// request whose model or stream member is large (a client's to choose, up
// to max_request_bytes) must not size them for good, as it must not size
// the canonicaliser's other scratch buffers (TestVMBuffersKeepNoLargeRequest).
func TestVMBuffersKeepNoLargeCapture(t *testing.T) {
	for _, tc := range []struct{ name, member string }{
		{"a model name of 1 MiB", `"model":"` + strings.Repeat("m", 1<<20) + `"`},
		{"a stream member of 1 MiB", `"stream":{"x":"` + strings.Repeat("s", 1<<20) + `"}`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, `{"upstream_cluster":"model","max_request_bytes":4194304,
				"routes":[{"name":"chat","kind":"chat","path_prefix":"/v1/chat/completions","ttl":"1h"}]}`)
			body := `{` + tc.member + `,"messages":[{"role":"user","content":"hi"}]}`
			e.lookup("chat", alice, body)
			if n := len(e.cache.lastModel); n > maxSpareBuffer {
				t.Errorf("the last model name, kept to spare its copy, keeps %d bytes, over %d", n, maxSpareBuffer)
			}
			for i, b := range e.cache.canon.captured {
				if cap(b) > maxSpareBuffer {
					t.Errorf("the canonicaliser's capture %d keeps %d bytes after a request of %d, over %d", i, cap(b), len(body), maxSpareBuffer)
				}
			}
		})
	}
}

package cachecore

import (
	"fmt"
	"strings"
	"testing"
)

// Review Z93. README "Memory bound" lists the canonicaliser's scratch
// among the per-VM buffers of up to 32 KiB each, and
// TestVMBuffersKeepNoLargeRequest holds its scratch, digits and member
// list to it. The case-twin check added by reviews Z87/Z89 folds every
// member name of an object that has one cased name into c.canon.fold.folded and
// lists each in c.canon.fold.at: neither is let go by Canonicalizer.done,
// so one request of many members, one of them cased ("Meta"), sizes them
// for good.
func TestCanonFoldScratchKeepsNoLargeRequest(t *testing.T) {
	e := newEnv(t, `{"upstream_cluster":"model","max_request_bytes":4194304,"store":{"max_entry_bytes":4194304},
		"routes":[{"name":"chat","kind":"chat","path_prefix":"/v1/chat/completions","ttl":"1h"}]}`)
	var meta strings.Builder // an object of 50,000 members, the first one cased
	meta.WriteString(`"Meta":0`)
	for i := range 50000 {
		fmt.Fprintf(&meta, `,"member_number_%d":0`, i)
	}
	body := chatRequest("hello")
	body = body[:len(body)-1] + `,"metadata":{` + meta.String() + `}}`
	req, d := e.lookup("chat", alice, body)
	if req.Bypassed() || d != Forward {
		t.Fatalf("the large request was not a miss: bypassed %v (%s)", req.Bypassed(), req.Reason)
	}
	c := e.cache
	if n := cap(c.canon.fold.folded); n > maxSpareBuffer {
		t.Errorf("the canonicaliser's folded names keep %d bytes after a request of %d, over %d", n, len(body), maxSpareBuffer)
	}
	// An entry of foldAt is two ints: 16 bytes.
	if n := cap(c.canon.fold.at); n > maxSpareBuffer/16 {
		t.Errorf("the canonicaliser keeps room for %d folded names (%d bytes), over %d", n, n*16, maxSpareBuffer/16)
	}
}

// The same at the default max_request_bytes (128 KiB): a 100 KB body of
// 10,000 members, one cased, leaves the fold list at ≈ 160 KB for good.
func TestCanonFoldScratchAtDefaultRequestLimit(t *testing.T) {
	e := newEnv(t, `{"upstream_cluster":"model",
		"routes":[{"name":"chat","kind":"chat","path_prefix":"/v1/chat/completions","ttl":"1h"}]}`)
	var meta strings.Builder
	meta.WriteString(`"Meta":0`)
	for i := range 10000 {
		fmt.Fprintf(&meta, `,"m%d":0`, i)
	}
	body := chatRequest("hello")
	body = body[:len(body)-1] + `,"metadata":{` + meta.String() + `}}`
	req, d := e.lookup("chat", alice, body)
	if req.Bypassed() || d != Forward {
		t.Fatalf("the request was not a miss: bypassed %v (%s)", req.Bypassed(), req.Reason)
	}
	c := e.cache
	if n := cap(c.canon.fold.at) * 16; n > maxSpareBuffer {
		t.Errorf("the canonicaliser's fold list keeps %d bytes after a request of %d, over %d", n, len(body), maxSpareBuffer)
	}
}

package cachecore

import (
	"fmt"
	"strings"
	"testing"
)

// The buffers a VM reuses from request to request — the canonicaliser's
// scratch space, number digits and member list, the buffer an entry is
// encoded into, the names of the answers' duplicate check — keep at most
// maxSpareBuffer bytes after a request, as every other buffer kept for
// reuse does, and no slice of the last answer: one request at max_request_bytes (up to 64 MiB) with an
// answer at max_entry_bytes (as much) made the VM keep both sizes for good,
// outside the per-VM bound README states.
func TestVMBuffersKeepNoLargeRequest(t *testing.T) {
	e := newEnv(t, `{"upstream_cluster":"model","max_request_bytes":4194304,"store":{"max_entry_bytes":4194304},
		"routes":[{"name":"chat","kind":"chat","path_prefix":"/v1/chat/completions","ttl":"1h"}]}`)
	big := strings.Repeat("a long prompt ", 1<<20/14)
	var meta strings.Builder // an object of 50,000 members
	for i := range 50000 {
		fmt.Fprintf(&meta, `,"k%d":0`, i)
	}
	body := chatRequest(big)
	body = body[:len(body)-1] + `,"metadata":{` + meta.String()[1:] + `}}`
	req, d := e.lookup("chat", alice, body)
	if req.Bypassed() || d != Forward {
		t.Fatalf("the large request was not a miss: bypassed %v (%s)", req.Bypassed(), req.Reason)
	}
	ans := chatResponse(big)
	ans = ans[:len(ans)-1] + `,"x_meta":{` + meta.String()[1:] + `}}`
	e.fill(req, jsonCT, ans, 10)
	c := e.cache
	for _, b := range []struct {
		name string
		cap  int
	}{
		{"the canonicaliser's scratch", cap(c.canon.scratch)},
		{"the canonicaliser's number digits", cap(c.canon.keyBuf)},
		{"the entry encoding buffer", cap(c.encBuf)},
	} {
		if b.cap > maxSpareBuffer {
			t.Errorf("%s keeps %d bytes after a request of %d, over %d", b.name, b.cap, len(big), maxSpareBuffer)
		}
	}
	// A member is 32 bytes: its three offsets and a flag; a name 24.
	if n := cap(c.canon.members); n > maxSpareBuffer/32 {
		t.Errorf("the canonicaliser keeps room for %d members, over %d", n, maxSpareBuffer/32)
	}
	if n := cap(c.dups.names); n > maxSpareBuffer/24 {
		t.Errorf("the answers' duplicate check keeps room for %d names, over %d", n, maxSpareBuffer/24)
	}
	for _, name := range c.dups.names[:cap(c.dups.names)] {
		if name != nil {
			t.Fatal("the answers' duplicate check keeps a slice of the last answer alive")
		}
	}
}

// An embeddings batch's entries are encoded into a buffer the VM keeps
// for the next batch; like the batch's own arenas it keeps at most
// maxSpareBatch bytes.
func TestVMBuffersKeepNoLargeBatch(t *testing.T) {
	clock := newFakeClock()
	cfg := mustParse(t, `{"upstream_cluster":"model","max_request_bytes":4194304,"store":{"max_entry_bytes":4194304},
		"routes":[{"name":"emb","kind":"embeddings","path_prefix":"/v1/embeddings","ttl":"1h"}]}`)
	c := New(cfg, Options{Store: NewMemStore(), Now: clock.Now, Rand: seededRand(1)})
	items := make([]string, 64) // each item's text is in its key: 1.3 MB of entries
	for i := range items {
		items[i] = fmt.Sprint(i) + strings.Repeat("x", 20<<10)
	}
	s, _ := embStream(c, `{"model":"m","input":["`+strings.Join(items, `","`)+`"]}`, 1)
	ans := embAnswer(items)
	rd := &fakeReader{respHeaders: [][2]string{{":status", "200"}, {"content-type", "application/json"}, {"content-length", fmt.Sprint(len(ans))}}, respBody: ans}
	s.ResponseHeaders(false, rd)
	s.ResponseBody(len(ans), true, rd)
	s.Done(rd)
	if n, _ := c.table.Occupied(); n < len(items) {
		t.Fatalf("%d of the batch's %d items stored", n, len(items))
	}
	if n := cap(c.embEnc); n > maxSpareBatch {
		t.Errorf("the batch encoding buffer keeps %d bytes, over %d", n, maxSpareBatch)
	}
}

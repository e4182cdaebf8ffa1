package cachecore

import (
	"fmt"
	"testing"
)

// A request kept for reuse holds only its own buffers, not what it
// pointed to: its batch (arenas, slices of the answer) and its body would
// otherwise stay alive in the spare list — up to 64 per VM, each up to
// max_request_bytes — outside the memory bound README states.
func TestSpareRequestsHoldOnlyTheirBuffers(t *testing.T) {
	clock := newFakeClock()
	cfg := mustParse(t, `{"upstream_cluster":"model","routes":[{"name":"emb","kind":"embeddings","path_prefix":"/v1/embeddings","ttl":"1h"}]}`)
	c := New(cfg, Options{Store: NewMemStore(), Now: clock.Now, Rand: seededRand(1)})
	var hold HoldState
	body := `{"model":"m","input":["a","b","c"]}`
	hs := append(append([][2]string{}, alice...), [2]string{"content-length", fmt.Sprint(len(body))})
	var s Stream
	s.Begin(c, c.routeByName("emb"), "POST", "/v1/embeddings", hs, false, hold.Holdable(), 1, 7)
	s.RequestBody(len(body), true, &fakeReader{reqBody: []byte(body)}, &hold)
	s.Done(&fakeReader{})
	if !s.Recycle() {
		t.Fatal("the request was not recycled")
	}
	sp := c.spare[len(c.spare)-1]
	if sp.batch != nil || sp.Body != nil || sp.Path != "" || sp.Route != nil {
		t.Fatalf("a spare request still holds its batch (%v), body (%d bytes), path %q or route", sp.batch != nil, len(sp.Body), sp.Path)
	}
	if cap(sp.canonical) == 0 {
		t.Fatal("a spare request lost its canonical buffer")
	}
}

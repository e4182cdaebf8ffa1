package cachecore

import (
	"fmt"
	"reflect"
	"strings"
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

// A spare request keeps header lists of at most maxSparePairs pairs: an
// entry or an answer with many headers sizes nothing kept for later.
func TestSpareRequestsKeepShortHeaderLists(t *testing.T) {
	for _, n := range []int{maxSparePairs, maxSparePairs + 1} {
		clock := newFakeClock()
		cfg := mustParse(t, `{"upstream_cluster":"model","routes":[{"name":"emb","kind":"embeddings","path_prefix":"/v1/embeddings","ttl":"1h"}]}`)
		c := New(cfg, Options{Store: NewMemStore(), Now: clock.Now, Rand: seededRand(1)})
		s, _ := embStream(c, `{"model":"m","input":["a"]}`, 7)
		req := s.fl.req
		req.entry.Headers, req.resp = make([][2]string, 0, n), make([][2]string, 0, n)
		s.Done(&fakeReader{})
		if !s.Recycle() {
			t.Fatal("the request was not recycled")
		}
		sp := c.spare[len(c.spare)-1]
		if kept := cap(sp.entry.Headers) == n && cap(sp.resp) == n; kept != (n <= maxSparePairs) {
			t.Fatalf("lists of %d pairs: kept %v (capacities %d, %d)", n, kept, cap(sp.entry.Headers), cap(sp.resp))
		}
	}
}

// embStream runs one embeddings request through a Stream until its
// request body is read, and returns the stream and its actions.
func embStream(c *Cache, body string, id uint32) (*Stream, []Action) {
	var hold HoldState
	hs := append(append([][2]string{}, alice...), [2]string{"content-length", fmt.Sprint(len(body))})
	s := &Stream{}
	s.Begin(c, c.routeByName("emb"), "POST", "/v1/embeddings", hs, false, hold.Holdable(), 1, id)
	_, acts := s.RequestBody(len(body), true, &fakeReader{reqBody: []byte(body)}, &hold)
	return s, acts
}

// embStoreAndServe stores body's items (a miss answered by the upstream),
// then sends body again: every item cached, the stream of the second
// request and its actions are returned.
func embStoreAndServe(t *testing.T, body string, items []string) (*Cache, *Stream, []Action) {
	t.Helper()
	clock := newFakeClock()
	cfg := mustParse(t, `{"upstream_cluster":"model","routes":[{"name":"emb","kind":"embeddings","path_prefix":"/v1/embeddings","ttl":"1h"}]}`)
	c := New(cfg, Options{Store: NewMemStore(), Now: clock.Now, Rand: seededRand(1)})
	s, _ := embStream(c, body, 1)
	ans := embAnswer(items)
	rd := &fakeReader{respHeaders: [][2]string{{":status", "200"}, {"content-type", "application/json"}, {"content-length", fmt.Sprint(len(ans))}}, respBody: ans}
	s.ResponseHeaders(false, rd)
	s.ResponseBody(len(ans), true, rd)
	s.Done(rd)
	s.Recycle()
	s, acts := embStream(c, body, 2)
	for i := range acts {
		if acts[i].Kind == ActServeEntry {
			return c, s, acts
		}
	}
	t.Fatalf("the stored batch was not served: %s", streamActs(acts))
	return nil, nil, nil
}

// A recycled request's header lists keep no strings: a served batch's
// headers point into its vectors' arena, which the spare batch may not
// keep (a large batch), and a stale string past the list's length would
// keep it alive in the spare list. The spare batch keeps no model name
// (a view of that arena) and no route's strings either.
func TestSpareRequestsKeepNoStaleStrings(t *testing.T) {
	body := `{"model":"m","input":["a","b","c"]}`
	c, s, acts := embStoreAndServe(t, body, []string{"a", "b", "c"})
	for i := range acts {
		if acts[i].Kind == ActServeEntry {
			s.Served(&acts[i])
		}
	}
	s.Done(&fakeReader{})
	if !s.Recycle() {
		t.Fatal("the request was not recycled")
	}
	sp := c.spare[len(c.spare)-1]
	for i, h := range sp.resp[:cap(sp.resp)] {
		if h != ([2]string{}) {
			t.Fatalf("the spare request's response headers keep %q at %d", h, i)
		}
	}
	for i, h := range sp.entry.Headers[:cap(sp.entry.Headers)] {
		if h != ([2]string{}) {
			t.Fatalf("the spare request's entry headers keep %q at %d", h, i)
		}
	}
	b := c.spareBatch
	if b == nil {
		t.Fatal("the batch was not kept")
	}
	if b.model != "" {
		t.Fatalf("the spare batch keeps the model name %q", b.model)
	}
	for i, f := range b.ignore[:cap(b.ignore)] {
		if f != "" {
			t.Fatalf("the spare batch keeps the route's ignored field %q at %d", f, i)
		}
	}
}

// A batch the cache could not answer locally goes upstream whole, as the
// client wrote it: every item was cached, so none is missing, and a body
// rewritten to the missing items would ask the model for nothing.
func TestFailedAnswerOfACachedBatchSendsItWhole(t *testing.T) {
	body := `{"model":"m","input":["a","b","c"]}`
	_, s, _ := embStoreAndServe(t, body, []string{"a", "b", "c"})
	for _, a := range s.SendFailed() {
		if a.Kind != ActForward {
			continue
		}
		if a.Rewrite || string(a.Body) != body {
			t.Fatalf("forwarded %q (rewritten %v), want the request as sent", a.Body, a.Rewrite)
		}
		if cached, total := s.fl.req.ItemCounts(); cached != 0 || total != 3 {
			t.Fatalf("items cached %d of %d after the fail-open, want 0 of 3", cached, total)
		}
		return
	}
	t.Fatal("no forward after the failed answer")
}

// TestOversizeMatchesDropOversize: Recycle asks oversize before it calls
// dropOversize, so the two must agree on every buffer's bound: oversize
// is true exactly when dropOversize lets go of something.
func TestOversizeMatchesDropOversize(t *testing.T) {
	caps := []int{0, maxSparePairs, maxSparePairs + 1, maxSpareBuffer, maxSpareBuffer + 1}
	for i := 0; i < 1<<10; i++ {
		pick := func(shift int) int { return caps[(i>>shift)%len(caps)] }
		req := &Request{canonical: make([]byte, 0, pick(0)), Key: make([]byte, 0, pick(2)),
			resp: make([][2]string, 0, pick(4)), respBuf: make([]byte, 0, pick(6))}
		req.entry.Headers = make([][2]string, 0, caps[(i*7)%len(caps)])
		before := [...]int{cap(req.canonical), cap(req.Key), cap(req.entry.Headers), cap(req.resp), cap(req.respBuf)}
		over := req.oversize()
		req.dropOversize()
		after := [...]int{cap(req.canonical), cap(req.Key), cap(req.entry.Headers), cap(req.resp), cap(req.respBuf)}
		if dropped := before != after; dropped != over {
			t.Fatalf("caps %v: oversize %v, but dropOversize dropped something: %v", before, over, dropped)
		}
	}
}

// A stream reset for another request (Stream.Reset, which the filter
// calls on every stream it keeps for reuse) is a zero Stream again,
// whatever its exchange left in its action slots: Reset clears only the
// slots that lists used, found by their Kind (clearActions), and a slot
// it missed would keep a body, a request or a call alive, and show here.
func TestResetLeavesAZeroStream(t *testing.T) {
	env := newEnv(t, `{"routes":[{"name":"pass","kind":"chat","path_prefix":"/pass/","ttl":"24h"}]}`)
	sb := &streamBench{env: env, route: env.route("pass"), check: true}
	noStore := append(append([][2]string(nil), benchHeaders...), [2]string{"cache-control", "no-store"})
	answer := func(status string, extra ...string) *fakeReader {
		return &fakeReader{respHeaders: hdr(append([]string{":status", status, "content-type", "application/json"}, extra...)...),
			respBody: []byte(chatResponse("fresh"))}
	}
	for _, x := range []struct {
		what, body string
		headers    [][2]string
		rd         *fakeReader
		want       string
	}{
		{"a stored miss", sampleChatRequest, benchHeaders, answer("200"), "stored"},
		{"a hit", sampleChatRequest, benchHeaders, answer("200"), "; hit"},
		{"an uncacheable miss", strings.Replace(sampleChatRequest, `"seed":7`, `"seed":8`, 1), benchHeaders, answer("200", "cache-control", "no-store"), "detail=no-store"},
		{"a bypass", sampleChatRequest, noStore, answer("200"), "fwd=bypass"},
		{"an upstream error", strings.Replace(sampleChatRequest, `"seed":7`, `"seed":9`, 1), benchHeaders, answer("503"), "fwd=miss"},
		{"a body that is not JSON", `{"model":`, benchHeaders, answer("200"), "detail=malformed-json"},
	} {
		sb.setBody(x.rd, x.body)
		if _, cs := sb.exchange(x.headers, x.rd); !strings.Contains(cs, x.want) {
			t.Fatalf("%s: Cache-Status %q, want %q", x.what, cs, x.want)
		}
		sb.st.Reset()
		if !reflect.DeepEqual(sb.st, Stream{}) {
			t.Errorf("%s: the stream after Reset is not a zero Stream: %+v", x.what, sb.st)
		}
	}
}

// clear zeroes a Request's requestState whole and only empties the
// fields beside it: every field beside it must be the Route (zeroed on its
// own) or a buffer a spare request keeps. A field added beside them
// would outlive the request it belongs to.
func TestClearLeavesOnlyBuffers(t *testing.T) {
	kept := map[string]bool{"Route": true, "Status": true, "Entry": true, "requestState": true,
		"keyHeaders": true, "canonical": true, "Key": true, "resp": true, "respBuf": true}
	rt := reflect.TypeOf(Request{})
	for i := 0; i < rt.NumField(); i++ {
		if f := rt.Field(i); !kept[f.Name] {
			t.Errorf("Request.%s is neither in requestState nor a buffer clear keeps", f.Name)
		}
	}
	req := &Request{Route: &Route{}, keyHeaders: []byte("k"), canonical: []byte("c"), Key: []byte("key"),
		resp: [][2]string{{"a", "b"}}, respBuf: []byte("r")}
	req.Method, req.Body, req.Model, req.Entry, req.Status = "POST", []byte("body"), "m", &req.entry, StatusMiss
	req.entry.Headers = [][2]string{{"x", "y"}}
	req.entry.Body = []byte("entry")
	req.clear()
	headers := req.entry.Headers
	req.entry.Headers = nil
	if !reflect.ValueOf(req.requestState).IsZero() || req.Route != nil || req.Status != StatusNone || req.Entry != nil {
		t.Fatalf("clear left state: %+v", req.requestState)
	}
	if len(headers) != 0 || cap(headers) != 1 || headers[:1][0] != [2]string{} || req.resp[:1][0] != [2]string{} {
		t.Fatal("clear did not empty and zero the header lists in place")
	}
	for _, b := range [][]byte{req.keyHeaders, req.canonical, req.Key, req.respBuf} {
		if len(b) != 0 || cap(b) == 0 {
			t.Fatal("clear did not keep a buffer, emptied")
		}
	}
}

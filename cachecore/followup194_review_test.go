package cachecore

import (
	"strings"
	"testing"
	"time"
)

// followup194Batch is two workers over one store with an embeddings route
// that coalesces (max_wait 2s). A (w0) leads the batch [x, y], B (w1)
// follows it; meanwhile another request stores item x alone.
func followup194Batch(t *testing.T) (e *protoEnv, a, b *Flight, items []string) {
	t.Helper()
	cfg := mustParse(t, `{"upstream_cluster":"model","routes":[{"name":"emb","kind":"embeddings","path_prefix":"/v1/embeddings","ttl":"1h",
	  "coalesce":{"enabled":true,"max_wait":"2s","max_retries":1,"on_retries_exhausted":"fail"}}]}`)
	store, clock := NewMemStore(), newFakeClock()
	e = &protoEnv{t: t, clock: clock}
	for i := range e.w {
		e.w[i] = New(cfg, Options{Store: store, Now: clock.Now, Rand: seededRand(uint64(i + 1))})
	}
	hs := [][2]string{{"authorization", "Bearer t"}}
	items = []string{"first item", "second item, longer"}
	start := func(w int, id uint32, in []string) (*Flight, string) {
		c := e.w[w]
		req := c.Begin(c.routeByName("emb"), "POST", "/v1/embeddings", hs)
		f := c.NewFlight(req, uint64(w+1), id)
		f.RequestHeaders(hs, false, true)
		return f, e.show(f.RequestBody([]byte(`{"model":"e","input":["`+strings.Join(in, `","`)+`"]}`), false))
	}
	// The model becomes known (a record with an answer stored under it).
	known, got := start(0, 9, []string{"warm up"})
	expectActs(t, "warm-up", got, "coalesce.leaders forward")
	jsonHdr := [][2]string{{"content-type", "application/json"}}
	st := e.w[0].AdmitAndStore(known.Request(), 200, jsonHdr, embAnswer([]string{"warm up"}), OriginUpstream, 1)
	if st.Reason != ReasonNone {
		t.Fatalf("warm-up store: %s", st.Reason)
	}
	known.FinishLead(OutcomeStored, 200)
	a, got = start(0, 1, items)
	expectActs(t, "A", got, "coalesce.leaders forward")
	b, got = start(1, 2, items)
	expectActs(t, "B", got, "coalesce.followers wait")
	// Item x is stored by an unrelated request (its own batch of one).
	x, got := start(0, 3, items[:1])
	expectActs(t, "x alone", got, "coalesce.leaders forward")
	st = e.w[0].AdmitAndStore(x.Request(), 200, jsonHdr, embAnswer(items[:1]), OriginUpstream, 1)
	if st.Reason != ReasonNone {
		t.Fatalf("x store: %s", st.Reason)
	}
	x.FinishLead(OutcomeStored, 200)
	e.queue = [2][][]byte{}
	return e, a, b, items
}

// Review Z194. Tick's new look in L1 for a follower past max_wait
// (review Z193) runs Lookup on an embeddings batch, which finds item x
// cached meanwhile and makes the request a partial batch (Status
// partial; its upstream body rewritten to the missing item, the cached
// one merged into the answer). Tick then goes upstream through
// upstream(true) → forward(true), which resets the status to miss: the
// client gets a merged answer holding a cached item while its
// Cache-Status says "fwd=miss" and requests.miss is counted (a batch
// partly served from the cache is "partial" everywhere else).
// Expected: the forward and the final Cache-Status say partial.
func TestFollowup194TickPastMaxWaitPartialBatchCountedMiss(t *testing.T) {
	e, _, b, items := followup194Batch(t)
	e.clock.Advance(3 * time.Second)
	acts := b.Tick()
	var fwd *Action
	for i := range acts {
		if acts[i].Kind == ActForward {
			fwd = &acts[i]
		}
	}
	if fwd == nil {
		t.Fatalf("B past max_wait: %s, want it upstream", e.show(acts))
	}
	req := b.Request()
	cached, total := req.ItemCounts()
	if cached != 1 || total != 2 {
		t.Fatalf("setup: B's batch after its tick: %d of %d items cached, want 1 of 2", cached, total)
	}
	jsonHdr := [][2]string{{"content-type", "application/json"}}
	if step, _ := b.ResponseHeaders(200, jsonHdr, OriginUpstream, false); step != RespHold {
		t.Fatalf("B's response headers: %d", step)
	}
	_, done := b.Complete(jsonHdr, embAnswer(items[1:]), 5, nil)
	merged := false
	for _, a := range done {
		if a.Kind == ActReplaceBody {
			merged = true
		}
	}
	if !merged {
		t.Fatalf("setup: B's answer was not merged with the cached item: %s", streamActs(done))
	}
	if req.Status != StatusPartial || !strings.Contains(b.CacheStatusValue(), "partial") {
		t.Fatalf("a follower past max_wait whose batch was partly served from the cache (merged, 1/2 items cached) "+
			"ends with status %s, Cache-Status %q: want partial (Tick's look in L1 found the item, forward(true) reset the status to miss)",
			req.Status, b.CacheStatusValue())
	}
}

// Review Z194, the same reset on the wake path (the root is
// Flight.forward, which sets StatusMiss for every request it resumes):
// the leader's client left (abandoned), the woken follower's look again
// finds item x cached, it leads with a batch rewritten to item y, and its
// merged answer is counted and labelled a miss. Expected: partial.
func TestFollowup194WokenFollowerPartialBatchCountedMiss(t *testing.T) {
	e, a, b, items := followup194Batch(t)
	// A's client leaves: its lead ends abandoned, B is woken.
	if got := e.show(a.FinishLead(OutcomeAbandoned, 0)); !strings.Contains(got, "wake(w1)") {
		t.Fatalf("A abandoned: %q, want B woken", got)
	}
	acts := e.deliver(1, b)
	req := b.Request()
	if cached, total := req.ItemCounts(); cached != 1 || total != 2 || !b.Leading() {
		t.Fatalf("setup: B woken: %s; %d of %d items cached, leading %v", acts, cached, total, b.Leading())
	}
	jsonHdr := [][2]string{{"content-type", "application/json"}}
	if step, _ := b.ResponseHeaders(200, jsonHdr, OriginUpstream, false); step != RespHold {
		t.Fatalf("B's response headers: %d", step)
	}
	b.Complete(jsonHdr, embAnswer(items[1:]), 5, nil)
	if req.Status != StatusPartial || !strings.Contains(b.CacheStatusValue(), "partial") {
		t.Fatalf("a woken follower whose batch was partly served from the cache ends with status %s, Cache-Status %q: want partial",
			req.Status, b.CacheStatusValue())
	}
}

// Review Z194. Tick's look in L1 past max_wait serves whatever Lookup
// finds servable, a stale entry within stale_while_revalidate included,
// and labels it collapsed: a route whose ttl (10s) is shorter than its
// max_wait (30s) has follower B, past its max_wait, served an answer
// another request stored 14 s earlier, 4 s past its freshness, with
// Cache-Status "fwd=miss; collapsed" (as if it were the fresh answer of
// the call it waited on), counted requests.collapsed, and no refresh
// started (WantsRefresh is for StatusStale only), where a new request
// at that moment is "hit; fwd=stale" and refreshes the entry. Expected:
// a stale entry found by that look is served as stale (with its
// refresh), not as a collapsed answer.
func TestFollowup194TickPastMaxWaitServesStaleEntryAsCollapsed(t *testing.T) {
	cfg := mustParse(t, `{"upstream_cluster":"model","routes":[{"name":"chat","kind":"chat","path_prefix":"/v1/chat/completions",
	  "ttl":"10s","stale_while_revalidate":"1m","coalesce":{"enabled":true,"max_wait":"30s","max_retries":2,"on_retries_exhausted":"fail"}}]}`)
	store, clock := NewMemStore(), newFakeClock()
	e := &protoEnv{t: t, clock: clock}
	for i := range e.w {
		e.w[i] = New(cfg, Options{Store: store, Now: clock.Now, Rand: seededRand(uint64(i))})
	}
	a, got := e.start(0, 1, "q") // a slow leader (a long stream)
	expectActs(t, "A", got, "coalesce.leaders forward")
	clock.Advance(15 * time.Second)
	b, got := e.start(1, 2, "q") // B follows at 15 s
	expectActs(t, "B", got, "coalesce.followers wait")
	// At 31 s a follower that joined at 0 s went upstream past its
	// max_wait and its answer is stored (fresh until 41 s).
	clock.Advance(16 * time.Second)
	other := e.w[0]
	req := other.Begin(other.routeByName("chat"), "POST", "/v1/chat/completions", alice)
	other.SetBody(req, []byte(chatRequest("q")))
	if d := other.Lookup(req); d != Forward {
		t.Fatalf("setup: the other follower's look: %v", d)
	}
	if st := other.AdmitAndStore(req, 200, jsonCT, []byte(chatResponse("answer")), OriginUpstream, 10); st.Reason != ReasonNone {
		t.Fatalf("setup: store: %s", st.Reason)
	}
	// 45 s: B is past its max_wait; the entry is 4 s stale.
	clock.Advance(14 * time.Second)
	if !a.Leading() {
		t.Fatal("setup: A no longer leads")
	}
	acts := e.show(b.Tick())
	if !strings.Contains(acts, "serve") {
		t.Fatalf("setup: B past max_wait: %q, want it served from L1 (review Z193's fix)", acts)
	}
	breq := b.Request()
	if breq.Status != StatusStale || !e.w[1].WantsRefresh(breq) {
		_, hs, _ := e.w[1].HitResponse(breq)
		t.Fatalf("B past max_wait served an entry 4 s past its ttl with status %s, Cache-Status %q, refresh %v: "+
			"want it served as stale (hit; fwd=stale) with its refresh, as a new request is",
			breq.Status, headerValue(hs, "cache-status"), e.w[1].WantsRefresh(breq))
	}
}

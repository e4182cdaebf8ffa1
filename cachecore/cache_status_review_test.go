package cachecore

import (
	"strings"
	"testing"
	"time"
)

// Review Z225 (Cache-Status). Review Z194 made a follower's look past
// max_wait (Tick) serve a stale entry as stale ("hit; fwd=stale", with its
// refresh) rather than as collapsed. The follower's wake-up (Wake) looks
// again in L1 too (relookup) and serves whatever Lookup finds servable,
// a stale entry within stale_while_revalidate included, with
// serve(StatusCollapsed): follower B, woken when its slow leader A ends
// (here: its client went away), is served an answer another request
// stored 9 s earlier, 4 s past its ttl, with Cache-Status "fwd=miss;
// collapsed; ttl=-4" — as if it were the fresh answer of the call it
// waited on —, counted requests.collapsed, and no refresh is started
// (WantsRefresh is for StatusStale only), where a new request at that
// moment is "hit; fwd=stale" and refreshes the entry. Expected: a stale
// entry found by the wake-up's look is served as stale, with its refresh.
func TestCacheStatusWokenFollowerServedStaleEntryAsCollapsed(t *testing.T) {
	cfg := mustParse(t, `{"upstream_cluster":"model","routes":[{"name":"chat","kind":"chat","path_prefix":"/v1/chat/completions",
	  "ttl":"5s","stale_while_revalidate":"1m","coalesce":{"enabled":true,"max_wait":"30s","max_retries":2,"on_retries_exhausted":"fail"}}]}`)
	store, clock := NewMemStore(), newFakeClock()
	e := &protoEnv{t: t, clock: clock}
	for i := range e.w {
		e.w[i] = New(cfg, Options{Store: store, Now: clock.Now, Rand: seededRand(uint64(i))})
	}
	a, got := e.start(0, 1, "q") // a slow leader (a long stream)
	expectActs(t, "A", got, "coalesce.leaders forward")
	clock.Advance(15 * time.Second)
	b, got := e.start(1, 2, "q") // B follows at 15 s (its max_wait ends at 45 s)
	expectActs(t, "B", got, "coalesce.followers wait")
	// At 31 s another request (a follower that joined at 0 s, past its
	// max_wait) stores the answer: fresh until 36 s.
	clock.Advance(16 * time.Second)
	other := e.w[0]
	req := other.Begin(other.routeByName("chat"), "POST", "/v1/chat/completions", alice)
	other.SetBody(req, []byte(chatRequest("q")))
	if d := other.Lookup(req); d != Forward {
		t.Fatalf("setup: the other request's look: %v", d)
	}
	if st := other.AdmitAndStore(req, 200, jsonCT, []byte(chatResponse("answer")), OriginUpstream, 10); st.Reason != ReasonNone {
		t.Fatalf("setup: store: %s", st.Reason)
	}
	// 40 s: the entry is 4 s stale; A's client goes away, B is woken.
	clock.Advance(9 * time.Second)
	if !a.Leading() {
		t.Fatal("setup: A no longer leads")
	}
	e.show(a.FinishLead(OutcomeAbandoned, 0))
	acts := e.deliver(1, b)
	if !strings.Contains(acts, "serve") {
		t.Fatalf("setup: B woken: %q, want it served from L1", acts)
	}
	breq := b.Request()
	if breq.Status != StatusStale || !e.w[1].WantsRefresh(breq) {
		_, hs, _ := e.w[1].HitResponse(breq)
		t.Fatalf("woken follower served an entry 4 s past its ttl with status %s, Cache-Status %q, refresh %v: "+
			"want it served as stale (hit; fwd=stale) with its refresh, as a new request is and as Tick does (review Z194)",
			breq.Status, headerValue(hs, "cache-status"), e.w[1].WantsRefresh(breq))
	}
}

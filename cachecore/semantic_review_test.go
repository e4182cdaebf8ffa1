package cachecore

import (
	"strings"
	"testing"
	"time"
)

// README (semantic, "Index and memory"): "A record is fresh while the
// answer it was indexed with is; ... (none kept: at the turn's next
// miss)". On a route with stale_if_error, a turn whose answer expired is
// still found in the table (stale, kept for stale-if-error): semanticStep
// returns at once when req.Entry != nil, so req.sem stays nil, and the
// fresh answer that miss stores is never indexed again. Its old record is
// stale, so the fresh, confirmed answer is unreachable by near matches
// for good (every later expiry repeats it).
func TestSemanticReviewMissWithStaleEntryIndexesTurnAgain(t *testing.T) {
	const cfg = `{"upstream_cluster":"model","routes":[{"name":"chat","kind":"chat","path_prefix":"/v1/chat/completions",
	  "ttl":"10s","stale_if_error":"1h","semantic":{"embedding":{"cluster":"embeddings","model":"e5"}}}]}`
	e := newSemEnv(t, "")
	e.testEnv = newEnv(t, cfg)
	stored, para := "How do I reset my password?", "How can I reset my password?"
	f, _ := e.ask(alice, stored, nil)
	e.answer(f, "Click 'forgot password'.")

	e.clock.Advance(11 * time.Second) // past the ttl: a miss, the stale entry kept for stale-if-error
	f, got := e.ask(alice, stored, nil)
	if f.Request().Status != StatusMiss {
		t.Fatalf("setup: the stored turn past its ttl: %s (%q)", f.Request().Status, got)
	}
	if got := e.answer(f, "Click 'forgot password' on the sign-in page."); !strings.Contains(got, "semantic.indexed") {
		t.Errorf("the fresh answer stored at the turn's next miss is not indexed: %q", got)
	}
	if f, got := e.ask(alice, stored, nil); f.Request().Status != StatusHit {
		t.Fatalf("setup: the new answer: %s (%q)", f.Request().Status, got) // this exact hit confirms it
	}
	if _, got := e.ask(alice, para, nil); !strings.HasSuffix(got, "serve") {
		t.Fatalf("a paraphrase of a fresh, confirmed answer stored at a miss is not a near hit: %q", got)
	}
}

// README: "While a turn is being embedded (by any worker), the same
// turn's other requests go on as exact misses (and coalesce as usual)".
// The request that so goes upstream first leads, and its answer is the
// one stored — but it has no semQuery (semanticStep returned nil on the
// pending mark), so semanticStored indexes nothing; the request that was
// embedding follows it and stores nothing. The turn of a question asked
// twice at once (the hot questions a cache is for) is never indexed,
// though its vector is kept: its fresh, confirmed answer is unreachable
// by near matches until it expires. (semanticRefreshed already indexes
// from the kept vector; the store at a lead does not.)
func TestSemanticReviewTurnStoredWhileBeingEmbeddedIsIndexed(t *testing.T) {
	e := newSemEnv(t, "")
	stored, para := "How do I reset my password?", "How can I reset my password?"
	body := []byte(chatRequest(stored))

	// A: its turn goes to the embeddings server; the call is still out.
	reqA := e.cache.Begin(e.route("chat"), "POST", "/v1/chat/completions", alice)
	fa := e.cache.NewFlight(reqA, 1, 1)
	actsA := fa.RequestBody(body, false)
	if len(actsA) != 1 || actsA[0].Kind != ActDispatch {
		t.Fatalf("setup: A: %s", actionKinds(actsA))
	}
	// B: the same question meanwhile: an exact miss that leads.
	reqB := e.cache.Begin(e.route("chat"), "POST", "/v1/chat/completions", alice)
	fb := e.cache.NewFlight(reqB, 1, 2)
	if got := actionKinds(fb.RequestBody(body, false)); !strings.Contains(got, "forward") {
		t.Fatalf("setup: B: %q", got)
	}
	// A's vector arrives: no near match, A follows B.
	got := actionKinds(actsA[0].Call.Done(semEmbAnswer(e.model, e.vec(stored))))
	t.Logf("A after its call: %q", got)
	if !strings.Contains(got, "semantic.misses") {
		t.Fatalf("setup: A after its call: %q", got)
	}
	// B's answer is stored (A is woken with it).
	st := e.answer(fb, "Click 'forgot password'.")
	if !strings.Contains(st, "stored") {
		t.Fatalf("setup: B's store: %q", st)
	}
	if f, got := e.ask(alice, stored, nil); f.Request().Status != StatusHit {
		t.Fatalf("setup: exact hit: %s (%q)", f.Request().Status, got) // confirms it
	}
	if _, got := e.ask(alice, para, nil); !strings.HasSuffix(got, "serve") {
		t.Fatalf("a paraphrase of a stored, fresh, confirmed answer whose turn's vector is kept is not a near hit (turn never indexed; B's store: %q): %q", st, got)
	}
}

// With L2, a proxy that gets a question's answer from L2 installs it in
// its L1 under the request's key (l2Serve / l2Install) but never indexes
// the request's turn, though the request embedded it (req.sem holds its
// vector): only the proxy that asked the model indexes a turn. So in a
// mesh, an answer is reachable by near matches on one proxy only; on
// every other proxy a paraphrase of a stored, fresh, confirmed answer in
// its own L1 goes upstream (README: a near match is served from "the
// table under its exact key"; nothing says L2-installed answers are
// excluded).
func TestSemanticReviewL2InstalledAnswerIsIndexed(t *testing.T) {
	const cfg = `{"upstream_cluster":"model","l2":{"cluster":"webdis"},
 "routes":[{"name":"chat","kind":"chat","path_prefix":"/v1/chat/completions","ttl":"1h","coalesce":{"enabled":true,"max_wait":"5s"},
  "semantic":{"embedding":{"cluster":"embeddings","model":"e5"}}}]}`
	m := &l2Mesh{t: t, clock: newFakeClock(), wd: newFakeWebdis()}
	pc := mustParse(t, cfg)
	for i := range m.p {
		m.p[i] = New(pc, Options{Store: NewMemStore(), Now: m.clock.Now, Rand: seededRand(uint64(i))})
	}
	vec := make([]float64, 16)
	for i := range vec {
		vec[i] = float64(i%5) + 1
	}
	ask := func(p int, prompt string) (cs string, events string) {
		c := m.p[p]
		req := c.Begin(c.routeByName("chat"), "POST", "/v1/chat/completions", alice)
		m.nextID++
		f := c.NewFlight(req, uint64(p+1), m.nextID)
		f.RequestHeaders(alice, false, true)
		acts := f.RequestBody([]byte(chatRequest(prompt)), false)
		var seen []string
		for len(acts) > 0 {
			a := acts[0]
			acts = acts[1:]
			switch a.Kind {
			case ActDispatch:
				if a.Call.Cluster == "embeddings" {
					acts = append(acts, a.Call.Done(semEmbAnswer("e5-small", vec))...)
				} else {
					acts = append(acts, a.Call.Done(m.wd.do(a.Call))...)
				}
			case ActCount:
				seen = append(seen, EventNames[a.Event])
			case ActServeEntry:
				_, h, _ := c.HitResponse(f.Request())
				cs = headerValue(h, "cache-status")
			case ActForward:
				m.upstream++
				f.ResponseHeaders(200, jsonCT, OriginUpstream, false)
				_, more := f.Complete(jsonCT, []byte(chatResponse("Click 'forgot password'.")), 10, nil)
				acts = append(acts, more...)
				cs = string(f.CacheStatusHeader(nil))
			}
		}
		return cs, strings.Join(seen, " ")
	}
	stored, para := "How do I reset my password?", "How can I reset my password?"
	if cs, ev := ask(0, stored); !strings.Contains(cs, "fwd=miss") || !strings.Contains(ev, "semantic.indexed") {
		t.Fatalf("setup: proxy 0: %q (%s)", cs, ev)
	}
	if cs, ev := ask(1, stored); !strings.Contains(cs, "detail=l2") {
		t.Fatalf("setup: proxy 1 from L2: %q (%s)", cs, ev)
	}
	if cs, ev := ask(1, stored); !strings.HasPrefix(cs, "modelcache; hit") || strings.Contains(cs, "l2") {
		t.Fatalf("setup: proxy 1 from its L1: %q (%s)", cs, ev) // confirms it
	}
	up := m.upstream
	if cs, ev := ask(1, para); !strings.Contains(cs, "detail=semantic") || m.upstream != up {
		t.Fatalf("a paraphrase of a fresh, confirmed answer in proxy 1's L1 (from L2) is not a near hit there: %q (%s)", cs, ev)
	}
	// (On proxy 0, which asked the model, the same paraphrase is one.)
}

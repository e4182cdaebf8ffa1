package cachecore

import (
	"fmt"
	"strings"
	"testing"
	"time"
)

// Late decisions: the request headers go upstream at once, the body is
// held and decided on as when headers are held.

func lateActs(acts []Action) string {
	var out []string
	for _, a := range acts {
		switch a.Kind {
		case ActRemoveRequestHeader:
			out = append(out, "-"+a.Name)
		case ActForward:
			out = append(out, fmt.Sprintf("forward(%s,resume=%v,late=%v)", a.CacheStatus, a.Resume, a.Late))
		default:
			out = append(out, streamActs([]Action{a}))
		}
	}
	return strings.Join(out, " ")
}

// beginLate runs a chat request for prompt through its request callbacks,
// decided late.
func (e *streamEnv) beginLate(s *Stream, id uint32, prompt string) (Verdict, []Action) {
	body := chatRequest(prompt)
	v, acts := s.BeginLate(e.c, e.c.routeByName("chat"), "POST", "/v1/chat/completions", e.headers(body), false, 1, id)
	if got := lateActs(acts); v != Continue || got != "late.decisions -accept-encoding" {
		e.t.Fatalf("late headers: verdict %d actions %s", v, got)
	}
	if s.Holding() || !s.Late() {
		e.t.Fatalf("late request: holding %v late %v", s.Holding(), s.Late())
	}
	return s.RequestBody(len(body), true, &fakeReader{reqBody: []byte(body)}, &e.hold)
}

// answerLate runs the upstream's 200 through the response callbacks of a
// late request: the headers pass at once (their Cache-Status cannot say
// stored), the body passes chunk by chunk while copied, and is stored at
// its end.
func (e *streamEnv) answerLate(s *Stream, content string) []Action {
	body := chatResponse(content)
	rd := &fakeReader{respHeaders: append([][2]string{{":status", "200"}, {"content-length", fmt.Sprint(len(body))}}, jsonCT...)}
	v, acts := s.ResponseHeaders(false, rd)
	if got := streamActs(acts); v != Continue || got != "cache-status=modelcache; fwd=miss; fwd-status=200" {
		e.t.Fatalf("late response headers: verdict %d actions %s", v, got)
	}
	half := len(body) / 2
	rd.respBody = []byte(body[:half])
	if v, acts := s.ResponseBody(half, false, rd); v != Continue || len(acts) != 0 {
		e.t.Fatalf("late response chunk: verdict %d actions %s", v, streamActs(acts))
	}
	rd.respBody = []byte(body[half:])
	v, acts = s.ResponseBody(len(body)-half, true, rd)
	if v != Continue {
		e.t.Fatalf("late response end: verdict %d", v)
	}
	for _, a := range acts {
		if a.Kind == ActSetHeader || a.Kind == ActReplaceBody {
			e.t.Fatalf("late response end touches the response: %s", streamActs(acts))
		}
	}
	return acts
}

func TestStreamLateMissThenHit(t *testing.T) {
	e := newStreamEnv(t)
	var a Stream
	v, acts := e.beginLate(&a, 1, "q")
	if got := lateActs(acts); got != "coalesce.leaders forward(miss,resume=false,late=true)" || a.Resolve(v, false) != Continue {
		t.Fatalf("late miss: %s, verdict %d", got, a.Resolve(v, false))
	}
	if !e.hold.Watching() {
		t.Fatal("a body seen after the headers went upstream proved header holding")
	}
	if got := streamActs(e.answerLate(&a, "hello")); !strings.HasPrefix(got, "stored") {
		t.Fatalf("late answer not stored: %s", got)
	}
	var b Stream
	v, acts = e.beginLate(&b, 2, "q")
	if got := lateActs(acts); got != "serve(200)" || b.Resolve(v, false) != Pause {
		t.Fatalf("late hit: %s verdict %d", got, b.Resolve(v, false))
	}
	if got := streamActs(b.Served(&acts[0])); got != "late.upstream_aborted request(hit) age" {
		t.Fatalf("late hit served: %s", got)
	}
	// The same hit with its headers held opened no upstream request.
	var c Stream
	_, acts = e.begin(&c, 3, "q")
	if got := streamActs(c.Served(&acts[0])); got != "request(hit) age" {
		t.Fatalf("held hit served: %s", got)
	}
}

func TestStreamLateFollowerHoldsItsUpstreamRequest(t *testing.T) {
	e := newStreamEnv(t)
	var a, b Stream
	e.beginLate(&a, 1, "q")
	v, acts := e.beginLate(&b, 2, "q")
	if got := lateActs(acts); got != "coalesce.followers wait late.followers_held" || b.Resolve(v, false) != Pause || !b.Following() {
		t.Fatalf("late follower: %s verdict %d", got, b.Resolve(v, false))
	}
	e.answerLate(&a, "hello")
	acts = b.Wake(OutcomeStored, 0)
	if got := lateActs(acts); got != "serve(200)" {
		t.Fatalf("woken: %s", got)
	}
	if got := streamActs(b.Served(&acts[0])); !strings.HasPrefix(got, "late.upstream_aborted request(collapsed)") {
		t.Fatalf("collapsed follower served: %s", got)
	}
}

func TestStreamLateBypassAtHeaders(t *testing.T) {
	e := newStreamEnv(t)
	var s Stream
	// No identity: decided at the headers, nothing prepared, nothing late.
	v, acts := s.BeginLate(e.c, e.c.routeByName("chat"), "POST", "/v1/chat/completions", [][2]string{{"content-length", "10"}}, false, 1, 1)
	if s.Resolve(v, false) != Continue || s.Late() || len(acts) == 0 || acts[0].Kind != ActBypass {
		t.Fatalf("bypass: %s verdict %d late %v", lateActs(acts), s.Resolve(v, false), s.Late())
	}
}

// Late, an embeddings batch keeps its body (fetched whole when only some
// items are cached: the answer cannot be merged once its headers passed),
// so its content-length stays.
func TestStreamLateEmbeddingsKeepTheirBody(t *testing.T) {
	clock := newFakeClock()
	cfg := mustParse(t, `{"routes":[{"name":"embed","kind":"embeddings","path_exact":"/v1/embeddings","shared":true}]}`)
	c := New(cfg, Options{Store: NewMemStore(), Now: clock.Now, Rand: seededRand(1)})
	body := `{"model":"m","input":["a","b"]}`
	for _, tc := range []struct {
		headers [][2]string
		want    string
	}{
		{[][2]string{{"content-length", fmt.Sprint(len(body))}}, "late.decisions -accept-encoding"},
		{nil, "late.decisions -accept-encoding"}, // chunked
	} {
		var s Stream
		v, acts := s.BeginLate(c, c.routeByName("embed"), "POST", "/v1/embeddings", tc.headers, false, 1, 1)
		if got := lateActs(acts); v != Continue || got != tc.want || !s.Request().keepBody {
			t.Fatalf("embeddings late headers %v: verdict %d actions %s, want %s; body kept %v", tc.headers, v, got, tc.want, s.Request().keepBody)
		}
	}
}

// A request held without a body in sight is let go: under "auto" it is
// decided late on the body the proxy delivers once the headers continue;
// under "hold" it passes uncached.
func TestStreamLetGo(t *testing.T) {
	for _, setting := range []HeaderHold{HoldAuto, HoldHeaders} {
		e := newStreamEnv(t)
		e.hold.Setting = setting
		var s Stream
		body := chatRequest("q")
		v, _ := s.Start(e.c, e.c.routeByName("chat"), "POST", "/v1/chat/completions", e.headers(body), false, &e.hold, 1, 1)
		if v != Pause || !s.Holding() {
			t.Fatalf("%v: not held", setting)
		}
		e.clock.Advance(HoldGrace)
		acts := s.LetGo(&e.hold)
		if s.Resolve(Decided, false) != Continue || s.Holding() {
			t.Fatalf("%v: let go: %s, verdict %d, holding %v", setting, lateActs(acts), s.Resolve(Decided, false), s.Holding())
		}
		if setting == HoldHeaders {
			// body_late: a fresh VM's let-go proves no stall yet (review
			// Z160; hold_unsupported before, a behaviour change).
			if acts[0].Kind != ActBypass || acts[0].Reason != ReasonBodyLate {
				t.Fatalf("hold: %s", lateActs(acts))
			}
			continue
		}
		if got := lateActs(acts); got != "late.decisions -accept-encoding late.rescued" {
			t.Fatalf("auto: %s", got)
		}
		v, acts = s.RequestBody(len(body), true, &fakeReader{reqBody: []byte(body)}, &e.hold)
		if got := lateActs(acts); got != "coalesce.leaders forward(miss,resume=false,late=true)" || s.Resolve(v, false) != Continue {
			t.Fatalf("rescued body: %s", got)
		}
		if !e.hold.Watching() {
			t.Fatal("a rescued body proved header holding")
		}
	}
}

func TestHoldStateSettings(t *testing.T) {
	for _, tc := range []struct {
		setting                  HeaderHold
		holdable, late, watching bool // before any stall
		holdableAfter, lateAfter bool // after HoldStallsToGiveUp stalls
	}{
		{HoldAuto, true, true, true, false, true},
		{HoldHeaders, true, false, true, false, false},
		{HoldLate, false, true, false, false, true},
	} {
		h := HoldState{Setting: tc.setting}
		if h.Holdable() != tc.holdable || h.Late() != tc.late || h.Watching() != tc.watching {
			t.Fatalf("%v: holdable %v late %v watching %v", tc.setting, h.Holdable(), h.Late(), h.Watching())
		}
		gaveUp := false
		for i := 0; i < HoldStallsToGiveUp; i++ {
			gaveUp = h.Stalled(0) || gaveUp
		}
		if !gaveUp || h.Holdable() != tc.holdableAfter || h.Late() != tc.lateAfter {
			t.Fatalf("%v after stalls: gave up %v holdable %v late %v", tc.setting, gaveUp, h.Holdable(), h.Late())
		}
		if want := map[bool]string{true: LateDecisionWarning, false: HoldUnsupportedWarning}[tc.lateAfter]; h.Warning() != want {
			t.Fatalf("%v: warning %q", tc.setting, h.Warning())
		}
	}
	// A body seen while holding proves it for good.
	h := HoldState{}
	h.BodySeen()
	for i := 0; i < HoldStallsToGiveUp; i++ {
		h.Stalled(0)
	}
	if !h.Holdable() || h.Watching() {
		t.Fatal("proven holding given up")
	}
}

// A stale answer served for the upstream's error ends no upstream request
// early: it is not counted as aborted.
func TestStreamLateStaleIfErrorIsNoAbort(t *testing.T) {
	clock := newFakeClock()
	cfg := mustParse(t, `{"routes":[{"name":"chat","kind":"chat","path_prefix":"/v1/chat/completions","ttl":"1s",
	  "stale_if_error":"1h","coalesce":{"enabled":false}}]}`)
	e := &streamEnv{t: t, clock: clock, c: New(cfg, Options{Store: NewMemStore(), Now: clock.Now, Rand: seededRand(1)})}
	var a Stream
	e.beginLate(&a, 1, "q")
	e.answerLate(&a, "hello")
	clock.Advance(2 * time.Second)
	var b Stream
	_, acts := e.beginLate(&b, 2, "q")
	if got := lateActs(acts); !strings.HasPrefix(got, "forward(") {
		t.Fatalf("expired: %s", got)
	}
	rd := &fakeReader{respHeaders: append([][2]string{{":status", "500"}}, jsonCT...)}
	v, acts := b.ResponseHeaders(false, rd)
	var served *Action
	for i := range acts {
		if acts[i].Kind == ActServeEntry {
			served = &acts[i]
		}
	}
	if v != Pause || served == nil {
		t.Fatalf("upstream 500: verdict %d actions %s", v, streamActs(acts))
	}
	if got := streamActs(b.Served(served)); strings.Contains(got, "late.upstream_aborted") {
		t.Fatalf("stale-if-error counted as an aborted upstream request: %s", got)
	}
}

// A late request waiting for a call of its own (here an L2 lookup) keeps
// its body paused until the call answers; an L2 hit then cuts the upstream
// request opened for its headers.
func TestStreamLateWaitsForItsCall(t *testing.T) {
	m := newL2Mesh(t, "")
	m.ask(0, "hello", "world") // stored in L1 of proxy 0 and in L2
	c := m.p[1]
	body := chatRequest("hello")
	headers := append(append([][2]string{}, alice...), [2]string{"content-length", fmt.Sprint(len(body))})
	var s Stream
	if v, _ := s.BeginLate(c, c.routeByName("chat"), "POST", "/v1/chat/completions", headers, false, 2, 77); v != Continue {
		t.Fatalf("late headers: verdict %d", v)
	}
	var hold HoldState
	v, acts := s.RequestBody(len(body), true, &fakeReader{reqBody: []byte(body)}, &hold)
	var call *Call
	for _, a := range acts {
		if a.Kind == ActDispatch {
			call = a.Call
		}
	}
	if call == nil || s.Resolve(v, true) != Pause {
		t.Fatalf("L2 lookup: %s, verdict %d (the body must stay paused)", lateActs(acts), s.Resolve(v, true))
	}
	acts = s.Continue(call.Done(m.wd.do(call)))
	var served *Action
	for i := range acts {
		if acts[i].Kind == ActServeEntry {
			served = &acts[i]
		}
	}
	if served == nil {
		t.Fatalf("L2 answer: %s", lateActs(acts))
	}
	if got := streamActs(s.Served(served)); !strings.HasPrefix(got, "late.upstream_aborted request(hit)") {
		t.Fatalf("L2 hit served: %s", got)
	}
}

// Decided late, the request headers are upstream before the body is
// complete, and a model server may answer them at once (an API-key check
// done on the headers: 401 before the body is read). That answer is the
// model's, not Envoy's: its Cache-Status must not call it a local reply the
// cache bypassed (README: local-reply is "Envoy's own local replies").
func TestLateEarlyUpstreamAnswerIsNotALocalReply(t *testing.T) {
	e := newStreamEnv(t)
	var s Stream
	body := chatRequest("q")
	v, acts := s.BeginLate(e.c, e.c.routeByName("chat"), "POST", "/v1/chat/completions", e.headers(body), false, 1, 1)
	if v != Continue || !s.Late() {
		t.Fatalf("late headers: verdict %d actions %s", v, lateActs(acts))
	}
	// The first half of the body: held (its headers are upstream).
	if v, _ := s.RequestBody(len(body)/2, false, &fakeReader{}, &e.hold); v != Pause {
		t.Fatalf("first half of the body: verdict %d", v)
	}
	// The model answers the headers.
	rd := &fakeReader{details: "via_upstream", respHeaders: append([][2]string{{":status", "401"}, {"content-length", "20"}}, jsonCT...)}
	_, acts = s.ResponseHeaders(false, rd)
	got := streamActs(acts)
	t.Logf("actions: %s", got)
	if strings.Contains(got, "local-reply") || strings.Contains(got, "local_reply") {
		t.Errorf("the model's 401 (response code details via_upstream) is labelled and counted an Envoy local reply: %s", got)
	}
	if !strings.Contains(got, "fwd-status=401") {
		t.Errorf("Cache-Status does not report the upstream's status: %s", got)
	}
}

// Decided late on a semantic route, the body waits (paused) for its
// turn's embedding; the request headers are already upstream, and the
// model may answer them meanwhile (a 401 on the headers). That answer
// passes to the client and the request is over for the cache. The
// embedding's result, arriving after, must not go on with the request:
// neither serve a near hit after the model's headers reached the client nor
// forward it and count it a second time. (An L2 lookup's result
// is ignored in the same case: l2Looked checks the flight's state.)
func TestLateEmbeddingAfterEarlyUpstreamAnswerIsDropped(t *testing.T) {
	e := newSemEnv(t, "")
	var s Stream
	body := chatRequest("what is the capital of France")
	hs := append(append([][2]string{}, alice...), [2]string{"content-length", fmt.Sprint(len(body))})
	if v, acts := s.BeginLate(e.cache, e.route("chat"), "POST", "/v1/chat/completions", hs, false, 1, 1); v != Continue || !s.Late() {
		t.Fatalf("late headers: %d %s", v, lateActs(acts))
	}
	var hold HoldState
	v, acts := s.RequestBody(len(body), true, &fakeReader{reqBody: []byte(body)}, &hold)
	var call *Call
	for _, a := range acts {
		if a.Kind == ActDispatch {
			call = a.Call
		}
	}
	if call == nil || s.Resolve(v, true) != Pause {
		t.Fatalf("body: no embedding call (%s)", lateActs(acts))
	}
	// The model answers the request headers while the embedding is out.
	rd := &fakeReader{details: "via_upstream", respHeaders: append([][2]string{{":status", "401"}, {"content-length", "20"}}, jsonCT...)}
	v, acts = s.ResponseHeaders(false, rd)
	early := streamActs(acts)
	// The embedding comes back.
	acts = s.Continue(call.Done(semEmbAnswer(e.model, e.vec("what is the capital of France"))))
	after := lateActs(acts)
	t.Logf("at the early answer: %s; after the embedding: %s", early, after)
	if strings.Contains(after, "forward(") || strings.Contains(after, "serve(") {
		t.Errorf("the embedding's result sends (or serves) a request whose answer already passed, counted already (%s): %s", early, after)
	}
}

package cachecore

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"
)

// Table tests of Stream, the phases of one exchange, natively: a fake
// Reader stands for the proxy's callbacks.

type fakeReader struct {
	reqBody     []byte
	respHeaders [][2]string
	respBody    []byte
	details     string
	failBody    bool
	reads       int
}

func (r *fakeReader) RequestBody(int) ([]byte, error) {
	r.reads++
	if r.failBody {
		return nil, errors.New("gone")
	}
	return r.reqBody, nil
}
func (r *fakeReader) ResponseHeaders() ([][2]string, error) { r.reads++; return r.respHeaders, nil }
func (r *fakeReader) ResponseBody(int) ([]byte, error)      { r.reads++; return r.respBody, nil }
func (r *fakeReader) CodeDetails() string                   { return r.details }

type streamEnv struct {
	t     *testing.T
	c     *Cache
	clock *fakeClock
	hold  HoldState
}

func newStreamEnv(t *testing.T) *streamEnv {
	clock := newFakeClock()
	cfg := mustParse(t, fmt.Sprintf(protoTableConfig, 1, "fail"))
	return &streamEnv{t: t, clock: clock, c: New(cfg, Options{Store: NewMemStore(), Now: clock.Now, Rand: seededRand(1)})}
}

func (e *streamEnv) headers(body string) [][2]string {
	return append(append([][2]string{}, alice...), [2]string{"content-length", fmt.Sprint(len(body))})
}

// begin runs a chat request for prompt through its request callbacks.
func (e *streamEnv) begin(s *Stream, id uint32, prompt string) (Verdict, []Action) {
	body := chatRequest(prompt)
	v, acts := s.Begin(e.c, e.c.routeByName("chat"), "POST", "/v1/chat/completions", e.headers(body), false, e.hold.Holdable(), 1, id)
	if v != Pause || len(acts) != 0 {
		e.t.Fatalf("headers: verdict %d actions %s", v, streamActs(acts))
	}
	return s.RequestBody(len(body), true, &fakeReader{reqBody: []byte(body)}, &e.hold)
}

func streamActs(acts []Action) string {
	var out []string
	for _, a := range acts {
		s := fmt.Sprintf("kind%d", a.Kind)
		switch a.Kind {
		case ActServeEntry:
			s = fmt.Sprintf("serve(%d)", a.Status)
		case ActForward:
			s = fmt.Sprintf("forward(%s,resume=%v)", a.CacheStatus, a.Resume)
		case ActCountRequest:
			s = "request(" + a.CacheStatus.String() + ")"
		case ActSetHeader:
			s = a.Name + "=" + a.Value
		case ActStored:
			s = "stored"
		case ActInternal:
			s = "internal"
		case ActRecordAge:
			s = "age"
		case ActSetProperty:
			s = "property"
		case ActCount:
			s = EventNames[a.Event]
		case ActWait:
			s = "wait"
		case ActRefused:
			s = "refused(" + a.Reason.String() + ")"
		}
		out = append(out, s)
	}
	return strings.Join(out, " ")
}

// answer runs the upstream's 200 through the response callbacks.
func (e *streamEnv) answer(s *Stream, content string) []Action {
	body := chatResponse(content)
	rd := &fakeReader{respHeaders: append([][2]string{{":status", "200"}, {"content-length", fmt.Sprint(len(body))}}, jsonCT...),
		respBody: []byte(body)}
	v, acts := s.ResponseHeaders(false, rd)
	if v != Pause || streamActs(acts) != "property" {
		e.t.Fatalf("response headers: verdict %d actions %s", v, streamActs(acts))
	}
	v, acts = s.ResponseBody(len(body), true, rd)
	if v != Continue {
		e.t.Fatalf("response body: verdict %d", v)
	}
	return acts
}

func TestStreamMissThenHit(t *testing.T) {
	e := newStreamEnv(t)
	var a Stream
	v, acts := e.begin(&a, 1, "q")
	if got := streamActs(acts); got != "coalesce.leaders forward(miss,resume=false)" || a.Resolve(v, false) != Continue {
		t.Fatalf("miss: %s, verdict %d", got, a.Resolve(v, false))
	}
	acts = e.answer(&a, "hello")
	if got := streamActs(acts); !strings.HasPrefix(got, "stored") || !strings.HasSuffix(got, "cache-status=modelcache; fwd=miss; fwd-status=200; stored; ttl=3600") {
		t.Fatalf("stored: %s", got)
	}
	var b Stream
	v, acts = e.begin(&b, 2, "q")
	if got := streamActs(acts); got != "serve(200)" || b.Resolve(v, false) != Pause {
		t.Fatalf("hit: %s verdict %d", got, b.Resolve(v, false))
	}
	if got := streamActs(b.Served(&acts[0])); got != "request(hit) age" {
		t.Fatalf("served: %s", got)
	}
	// A hit carries its own Cache-Status: the response callbacks do nothing.
	rd := &fakeReader{}
	if v, acts := b.ResponseHeaders(false, rd); v != Continue || len(acts) != 0 || rd.reads != 0 {
		t.Fatalf("hit response: verdict %d actions %s reads %d", v, streamActs(acts), rd.reads)
	}
}

func TestStreamHitThatCannotBeSentGoesUpstream(t *testing.T) {
	e := newStreamEnv(t)
	var a Stream
	e.begin(&a, 1, "q")
	e.answer(&a, "hello")
	var b Stream
	_, acts := e.begin(&b, 2, "q")
	if !acts[0].Resume {
		t.Fatal("a served entry must fail open when it cannot be sent")
	}
	if got := streamActs(b.SendFailed()); got != "internal forward(miss,resume=true)" {
		t.Fatalf("send failed: %s", got)
	}
	if b.Resolve(Decided, false) != Continue {
		t.Fatal("a request sent upstream after a failed local answer must continue")
	}
}

func TestStreamFollowerInterrupted(t *testing.T) {
	e := newStreamEnv(t)
	var a, b Stream
	e.begin(&a, 1, "q")
	_, acts := e.begin(&b, 2, "q")
	if got := streamActs(acts); got != "coalesce.followers wait" || !b.Following() || b.Resolve(Decided, false) != Pause {
		t.Fatalf("follower: %s following %v", got, b.Following())
	}
	// Envoy answers the waiting client itself (a stream timeout).
	_, acts = b.ResponseHeaders(false, &fakeReader{details: "stream_idle_timeout"})
	if got := streamActs(acts); got != "request(bypass) refused(upstream_timeout) cache-status=modelcache; fwd=bypass; detail=upstream-timeout" {
		t.Fatalf("interrupted follower: %s", got)
	}
	if b.Following() {
		t.Fatal("an interrupted follower still follows")
	}
}

func TestStreamHeldTooLong(t *testing.T) {
	e := newStreamEnv(t)
	var s Stream
	body := chatRequest("q")
	s.Begin(e.c, e.c.routeByName("chat"), "POST", "/v1/chat/completions", e.headers(body), false, true, 1, 1)
	if !s.Holding() || s.HeldTooLong() {
		t.Fatalf("just held: holding %v, too long %v", s.Holding(), s.HeldTooLong())
	}
	e.clock.Advance(HoldGrace)
	if !s.HeldTooLong() {
		t.Fatal("held past the grace period, not noticed")
	}
	// On a VM that gave up holding before (a fresh VM's let-go is
	// body_late: review Z160's TestSlowClientUnderHoldIsNotCountedHoldUnsupported).
	acts := s.GiveUpHold(&HoldState{Setting: HoldHeaders, gaveUp: true})
	if acts[0].Kind != ActBypass || acts[0].Reason != ReasonHoldUnsupported || s.Resolve(Decided, false) != Continue {
		t.Fatalf("given up: %s", streamActs(acts))
	}
}

func TestStreamRequestBodyUnreadable(t *testing.T) {
	e := newStreamEnv(t)
	var s Stream
	body := chatRequest("q")
	s.Begin(e.c, e.c.routeByName("chat"), "POST", "/v1/chat/completions", e.headers(body), false, true, 1, 1)
	v, acts := s.RequestBody(len(body), true, &fakeReader{failBody: true}, &e.hold)
	if acts[0].Kind != ActBypass || acts[0].Reason != ReasonInternal || s.Resolve(v, false) != Continue {
		t.Fatalf("unreadable body: %s", streamActs(acts))
	}
}

func TestStreamLeaderCutMidBodyHandsTheLeadOn(t *testing.T) {
	e := newStreamEnv(t)
	var a, b Stream
	e.begin(&a, 1, "q")
	e.begin(&b, 2, "q")
	rd := &fakeReader{respHeaders: append([][2]string{{":status", "200"}, {"content-length", "100"}}, jsonCT...)}
	a.ResponseHeaders(false, rd)
	rd.details = "upstream_reset_after_response_started{remote_reset}"
	got := streamActs(a.Done(rd))
	if got != "refused(truncated) coalesce.leader_failures kind6" {
		t.Fatalf("cut leader: %s", got)
	}
	if a.Done(rd) != nil && len(a.Done(rd)) != 0 {
		t.Fatal("a finished stream acts again")
	}
}

func TestHoldStateGivesUpOnceAfterStalls(t *testing.T) {
	var h HoldState
	for i := 1; i < HoldStallsToGiveUp; i++ {
		if h.Stalled(0) || !h.Holdable() {
			t.Fatalf("gave up after %d stalls", i)
		}
	}
	if !h.Stalled(0) || h.Holdable() {
		t.Fatal("did not give up")
	}
	if h.Stalled(0) {
		t.Fatal("gave up twice")
	}
	var seen HoldState
	seen.BodySeen()
	for i := 0; i < 2*HoldStallsToGiveUp; i++ {
		if seen.Stalled(0) {
			t.Fatal("gave up although a body was seen while holding")
		}
	}
	if seen.Watching() {
		t.Fatal("still watching after a body was seen")
	}
}

func TestVMLifeCountsLateStartsOnly(t *testing.T) {
	store := NewMemStore()
	var first VMLife
	first.Start(store)
	if restarted, _ := first.Live(store, true); restarted {
		t.Fatal("a VM started before traffic counted as a restart")
	}
	if v, _, err := store.Get(VMLifeKey); err != nil || len(v) != 8 {
		t.Fatalf("the first request did not mark the process as serving: %v %v", v, err)
	}
	for want := 1; want <= 2; want++ {
		var late VMLife
		late.Start(store)
		restarted, warning := late.Live(store, false)
		if !restarted || !strings.HasPrefix(warning, fmt.Sprintf("VM restarted (%d)", want)) {
			t.Fatalf("late VM %d: restarted %v %q", want, restarted, warning)
		}
		if again, _ := late.Live(store, true); again {
			t.Fatal("a restart counted twice")
		}
	}
}

func TestStatNamesFollowTheRoute(t *testing.T) {
	e := newStreamEnv(t)
	n := StatNames(e.c.routeByName("chat"))
	if n.Requests[StatusHit] != "modelcache_route.chat.requests.hit" || n.Events[EvFollower] != "modelcache_route.chat.coalesce.followers" {
		t.Fatalf("names: %q %q", n.Requests[StatusHit], n.Events[EvFollower])
	}
	if n.StaleRatePPM != "" {
		t.Fatal("an SLO gauge for a route without freshness_slo")
	}
	for _, re := range AllReasons() {
		if (n.Bypass[re] != "") != re.RequestSide() || (n.Refused[re] != "") != re.ResponseSide() {
			t.Fatalf("reason %s: bypass %q refused %q", re, n.Bypass[re], n.Refused[re])
		}
	}
}

// Ended promises the host that Done would do nothing but make the stream
// idle (the host then skips it): true only where Done returns no actions,
// here for an answer passed uncached; false for a leader cut mid-body, and
// for a request still held (Done may find something to end there).
func TestStreamEndedOnlyWhereDoneDoesNothing(t *testing.T) {
	e := newStreamEnv(t)
	var zero Stream
	if !zero.Ended() || len(zero.Done(nil)) != 0 {
		t.Fatal("a zero stream has something to end")
	}
	var passed, cut, held Stream
	e.begin(&passed, 1, "passed")
	if passed.Ended() {
		t.Fatal("a request gone upstream has ended")
	}
	passed.ResponseHeaders(false, &fakeReader{respHeaders: append([][2]string{{":status", "200"}, {"cache-control", "no-store"}}, jsonCT...)})
	if !passed.Ended() {
		t.Fatal("an answer passed uncached has something to end")
	}
	if got := streamActs(passed.Done(nil)); got != "" {
		t.Fatalf("ended, yet Done acts: %s", got)
	}
	e.begin(&cut, 2, "cut")
	rd := &fakeReader{respHeaders: append([][2]string{{":status", "200"}, {"content-length", "100"}}, jsonCT...)}
	cut.ResponseHeaders(false, rd)
	rd.details = "upstream_reset_after_response_started{remote_reset}"
	if cut.Ended() || len(cut.Done(rd)) == 0 {
		t.Fatal("a leader cut mid-body: Ended, or Done did nothing")
	}
	body := chatRequest("held")
	held.Begin(e.c, e.c.routeByName("chat"), "POST", "/v1/chat/completions", e.headers(body), false, true, 1, 3)
	if held.Ended() {
		t.Fatal("a request still held has ended")
	}
}

// A VM that has seen a body arrive while headers were held watches no
// held request for stalls (the filter lists none), so Start reads no clock
// for it: on a proxy that delivers bodies, each request's headers callback
// is a host call shorter. Should such a request be watched after all, its
// grace runs from the first look.
func TestStreamHeldUnderAProvenHoldReadsNoClock(t *testing.T) {
	clock, reads := newFakeClock(), 0
	cfg := mustParse(t, fmt.Sprintf(protoTableConfig, 1, "fail"))
	c := New(cfg, Options{Store: NewMemStore(), Now: clock.Now, Rand: seededRand(1),
		NowMs: func() int64 { reads++; return clock.Now().UnixMilli() }})
	e := &streamEnv{t: t, clock: clock, c: c}
	hold := HoldState{Setting: HoldHeaders}
	hold.BodySeen()
	var s Stream
	v, acts := s.Start(c, c.routeByName("chat"), "POST", "/v1/chat/completions", e.headers(chatRequest("q")), false, &hold, 1, 1)
	if v != Pause || len(acts) != 0 || !s.Holding() {
		t.Fatalf("headers: verdict %d actions %s holding %v", v, streamActs(acts), s.Holding())
	}
	if reads != 0 {
		t.Fatalf("the headers of a request nobody watches read the clock %d times", reads)
	}
	clock.Advance(time.Hour)
	if s.HeldTooLong() {
		t.Fatal("held too long before anyone looked at it")
	}
	clock.Advance(HoldGrace)
	if !s.HeldTooLong() {
		t.Fatal("held past the grace period since the first look, not noticed")
	}
}

package cachecore

import (
	"fmt"
	"strings"
	"testing"
	"time"
)

// Review Z202 (follow-up of 270b10e..3961c30).

// README ("Cache-Control"): an answer whose Cache-Control says
// must-revalidate "is stored with no stale window: never served stale
// ... (nor its copy from L2)". storeStaleWindow sets FlagNoStale only when
// the writing route has a stale window (w > 0); a proxy whose route has
// none writes the must-revalidate answer to L2 unflagged, and l2Install
// on a proxy whose route has stale_while_revalidate gives the copy that
// proxy's window ("its stale windows are this proxy's"): B serves it
// stale, which the upstream forbade. Expected: the flag follows the
// answer's Cache-Control, whatever the writer's windows, and B's copy is
// a miss past its ttl.
func TestFollowup202MustRevalidateCopyFromL2IsServedStale(t *testing.T) {
	m := newL2Mesh(t, "") // A: ttl 1h, no stale window
	cfgB := mustParse(t, strings.Replace(fmt.Sprintf(l2TestConfig, ""), `"ttl":"1h",`,
		`"ttl":"1h","stale_while_revalidate":"10m",`, 1))
	m.p[1] = New(cfgB, Options{Store: NewMemStore(), Now: m.clock.Now, Rand: seededRand(9)})
	mr := hdr("content-type", "application/json", "cache-control", "must-revalidate")
	m.askBody(0, "hello", mr, chatResponse("world")) // A answers with must-revalidate, writes L2
	if cs, _ := m.askBody(1, "hello", mr, chatResponse("x")); !strings.Contains(cs, "detail=l2") {
		t.Fatalf("setup: B's copy from L2: %q", cs)
	}
	m.clock.Advance(time.Hour + 5*time.Second)
	before := m.upstream
	if cs, body := m.askBody(1, "hello", mr, chatResponse("fresh")); strings.Contains(cs, "fwd=stale") || m.upstream == before {
		t.Fatalf("the upstream said must-revalidate, yet B's copy from L2 is served 5 s past its ttl by B's stale_while_revalidate: %q %s", cs, body)
	}
}

// RFC 9111 §5.2.2.10: "The s-maxage directive incorporates the semantics
// of the proxy-revalidate response directive (Section 5.2.2.8) for a
// shared cache", and §4.2.4 names "an applicable s-maxage" next to
// must-revalidate and proxy-revalidate among the directives under which
// "a cache MUST NOT generate a stale response". The filter is a shared
// cache; the Z197 fix reads must-revalidate and proxy-revalidate only, so
// an answer with s-maxage is still served stale by
// stale_while_revalidate. README departs only from response no-cache and
// max-age as the TTL. Expected: s-maxage stores the answer with no stale
// window, as proxy-revalidate does.
func TestFollowup202SMaxageAnswerIsNotServedStale(t *testing.T) {
	env := newEnv(t, testConfig) // route chat: ttl 5m, stale_while_revalidate 30s
	body := chatRequest("may this be served stale by a shared cache?")
	req, _ := env.lookup("chat", alice, body)
	env.fill(req, hdr("content-type", "application/json", "cache-control", "public, s-maxage=300"), chatResponse("no"), 10)
	env.clock.Advance(5*time.Minute + 10*time.Second) // past the ttl, within stale_while_revalidate
	if req, d := env.lookup("chat", alice, body); d == Serve {
		t.Fatalf("Cache-Control: s-maxage=300: the answer is served stale 10 s past its ttl (status %s); s-maxage carries "+
			"proxy-revalidate's semantics for a shared cache (RFC 9111 §5.2.2.10)", req.Status)
	}
}

// Review Z199 kept tool_choice in the key whatever key_fields says:
// "whether the answer is tool calls or text". OpenAI's legacy form of the
// same field, function_call ("none": a text answer; {"name": …}: a forced
// call, message.function_call with content null), with functions, which
// the Chat Completions API still accepts, was left out: on a route keyed
// on model, messages and functions, the text answer stored for
// function_call "none" is served to a request that forces a call, whose
// client reads message.function_call and finds none. Expected:
// function_call stays keyed as sent, as tool_choice does.
func TestFollowup202ChatLegacyFunctionCallStaysKeyedUnderKeyFields(t *testing.T) {
	env := newEnv(t, `{"upstream_cluster":"model","routes":[{"name":"chat","kind":"chat","path_prefix":"/v1/chat/completions","ttl":"1h",
	  "key_fields":["model","messages","functions"]}]}`)
	const functions = `"functions":[{"name":"get_weather","parameters":{"type":"object","properties":{"city":{"type":"string"}}}}]`
	none := strings.Replace(chatRequest("weather in Paris?"), `"temperature":0`, `"temperature":0,`+functions+`,"function_call":"none"`, 1)
	req, d := env.lookup("chat", alice, none)
	if req.Bypassed() || d != Forward {
		t.Fatalf("setup: %v %s", d, req.Reason)
	}
	env.fill(req, jsonCT, chatResponse("I cannot look up the weather, but Paris is usually mild."), 5)
	if _, d := env.lookup("chat", alice, none); d != Serve {
		t.Fatalf("setup: the same request is not served: %v", d)
	}
	forced := strings.Replace(chatRequest("weather in Paris?"), `"temperature":0`,
		`"temperature":0,`+functions+`,"function_call":{"name":"get_weather"}`, 1)
	if got, d := env.lookup("chat", alice, forced); d == Serve {
		t.Fatalf("a request forcing function_call get_weather is served the text answer stored for function_call \"none\": %s", got.Entry.Body)
	}
}

// Review Z196 made a formula's brackets part of its quantities, but only a
// bracket touching its operand: "(" right before a digit or a variable,
// ")" right after one. A formula typed with a space inside its brackets
// (as "x · y" with a space each side is read, review Z96) loses them all,
// and two groupings with different values read alike again: "( 2 + 3 ) *
// 4" is 20, "2 + ( 3 * 4 )" is 14; "( x + 2 ) / 3 = 4" gives x = 10, "x +
// 2 / 3 = 4" x = 10/3. Every guard lets these through, so a confirmed near
// match serves one the other's answer. Expected: vetoed (veto.numbers),
// as the unspaced forms are.
func TestFollowup202GuardsVetoSpacedGroupingBrackets(t *testing.T) {
	for _, c := range [][2]string{
		{"What is ( 2 + 3 ) * 4?", "What is 2 + ( 3 * 4 )?"},
		{"Solve ( x + 2 ) / 3 = 4", "Solve x + 2 / 3 = 4"},
	} {
		if vetoes(&allGuards, c[0], c[1]) == 0 || vetoes(&allGuards, c[1], c[0]) == 0 {
			t.Errorf("%q / %q: not vetoed (the unspaced forms are)", c[0], c[1])
		}
	}
}

// b8addf5: "a follower answered with its leaders' 429 or 5xx carries the
// model's Retry-After". A request's lead records it (Flight.retryAfter,
// finishLead), but a background refresh, which leads the key too and
// whose followers get "a 429 or 5xx as a request's leader's"
// (protocol_background.go), passes the bare status (leadEnd) to its
// wake-up: the followers of a rate-limited refresh are answered 429 with
// no Retry-After, and retry at once. Expected: the follower's leader-failed
// 429 carries the model's Retry-After, as a request leader's follower's
// does.
func TestFollowup202RefreshFollowerLeaderFailedCarriesRetryAfter(t *testing.T) {
	a := refreshFollowerAnswer(t, "20", `{"error":{"message":"rate limited","type":"rate_limit_error"}}`)
	if a.Status != 429 {
		t.Fatalf("setup: the follower is answered %d, want 429", a.Status)
	}
	if ra := headerValue(a.Headers, "retry-after"); ra != "20" {
		t.Fatalf("the follower of a refresh the model answered 429 with Retry-After: 20 is answered 429 leader-failed with retry-after %q, want \"20\"", ra)
	}
}

// refreshFollowerAnswer is the local answer of a follower of a background
// refresh the model answered 429 with Retry-After retryAfter and body.
func refreshFollowerAnswer(t *testing.T, retryAfter, body string) Action {
	t.Helper()
	e := newProtoEnv(t, 0, "fail")
	call := e.startRefresh("q")
	follower, got := e.start(1, 2, "q")
	expectActs(t, "the follower", got, "coalesce.followers wait")
	e.show(call.Done(CallResult{Status: 429, Headers: hdr("content-type", "application/json", "retry-after", retryAfter), Body: []byte(body)}))
	if len(e.queue[1]) == 0 {
		t.Fatal("setup: no wake-up for the follower")
	}
	msg := e.queue[1][0]
	e.queue[1] = e.queue[1][1:]
	_, o, status, _ := DecodeWake(msg)
	for _, a := range follower.WakeFrom(WakeLeader(msg), o, status) {
		if a.Kind == ActServeLocal {
			return a
		}
	}
	t.Fatal("setup: the follower was not answered leader-failed")
	return Action{}
}

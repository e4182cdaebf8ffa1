package cachecore

import (
	"testing"
	"time"
)

// Review Z197: what the upstream's response headers do to storing and
// serving.

// A quote inside a directive's name ("a\"") makes the response
// Cache-Control parser open a quoted-string at the '=' after it and read
// the rest of the value, no-store or private included, as that argument.
// The quotes all close, so the open-quote rule (README: "so does a response
// Cache-Control whose quoted argument never closes (it could hide
// either)") does not fire, and the answer is stored. The value is
// malformed (a directive name is a token: RFC 9111 §5.2), and every other
// reading of it — split at each comma, or with quotes toggled wherever
// they stand, with or without backslash escapes — finds the no-store or
// private as a directive of its own. When in doubt, not stored: as for
// the stray quotes of TestResponseCCOpenQuoteAfterAStrayQuoteIsNotStored,
// a value whose no-store/private only this parser hides must refuse the
// answer.
func TestResponseCCQuoteInADirectiveNameHidesNoStore(t *testing.T) {
	env := newEnv(t, testConfig)
	req, _ := env.lookup("chat", alice, chatRequest("q"))
	for _, v := range []string{
		`a"="b, no-store, c="d"`,
		`x"="y, private, z="w"`,
		`"x=", no-store, x="`,
	} {
		h := hdr("content-type", "application/json", "cache-control", v)
		if got := env.cache.AdmitHeaders(req, 200, h, OriginUpstream); got == ReasonNone {
			t.Errorf("Cache-Control: %s: answer admitted (ParseResponseCC = %+v); the no-store/private every other "+
				"reading of the value sees is hidden in a quoted-string opened after a quote in a directive name", v, ParseResponseCC(v))
		}
	}
}

// An upstream that sends "Cache-Control: must-revalidate" (or
// proxy-revalidate, its shared-cache form) forbids serving its answer
// stale: RFC 9111 §5.2.2.2, §5.2.2.8 and §4.2.4 ("A cache MUST NOT generate a stale response if it
// is prohibited by an explicit in-protocol directive (e.g., ... a
// must-revalidate response directive, or an applicable s-maxage or
// proxy-revalidate response directive)"). The README lists the response
// directives it departs from (no-cache ignored, max-age not the TTL) and
// names none of these; yet the directive is not read at all, and the
// answer is served stale by stale_while_revalidate for the route's whole
// window. Expected: such an answer is fresh for the route's ttl and then
// a miss (or not kept past it), never a stale hit.
func TestMustRevalidateAnswerIsNotServedStale(t *testing.T) {
	for _, cc := range []string{"must-revalidate", "proxy-revalidate", "public, must-revalidate"} {
		t.Run(cc, func(t *testing.T) {
			env := newEnv(t, testConfig) // route chat: ttl 5m, stale_while_revalidate 30s
			body := chatRequest("may this be served stale?")
			req, _ := env.lookup("chat", alice, body)
			env.fill(req, hdr("content-type", "application/json", "cache-control", cc), chatResponse("no"), 10)
			env.clock.Advance(5*time.Minute + 10*time.Second) // past the ttl, within stale_while_revalidate
			req, d := env.lookup("chat", alice, body)
			if d == Serve {
				t.Fatalf("Cache-Control: %s: the answer is served stale 10 s past its ttl (status %s); the upstream forbade "+
					"serving it stale (RFC 9111 §4.2.4)", cc, req.Status)
			}
		})
	}
}

// As above for stale_if_error: the upstream that said must-revalidate
// fails, and the cache answers its client with the stale copy instead of
// the 503 (RFC 9111 §5.2.2.2: "the cache MUST either forward the request
// ... or generate an error response such as 504").
func TestMustRevalidateAnswerIsNotServedStaleIfError(t *testing.T) {
	env := newEnv(t, flightConfig) // ttl 1h, stale_if_error 1h
	body := chatRequest("q")
	env.fill(env.request("chat", alice, body), hdr("content-type", "application/json", "cache-control", "must-revalidate"), chatResponse("old"), 10)
	env.clock.Advance(90 * time.Minute)
	f := flightFor(t, env, alice)
	f.RequestHeaders(append(append([][2]string{}, alice...), [2]string{"content-length", itoa(int64(len(body)))}), false, true)
	if got := actionKinds(f.RequestBody([]byte(body), false)); got != "coalesce.leaders forward" {
		t.Fatal(got)
	}
	if step, acts := f.ResponseHeaders(503, jsonCT, OriginUpstream, false); step == RespServed {
		t.Fatalf("the upstream said must-revalidate, then failed 503: its answer was served 30 min stale instead (%q)", actionKinds(acts))
	}
}

// The request side reads directives with the same splitter: a quote in a
// directive's name hid the client's no-store or no-cache after it.
func TestRequestCCQuoteInADirectiveNameHidesNoStore(t *testing.T) {
	for _, v := range []string{`a"="b, no-store, c="d"`, `x"="y, no-cache, z="w"`} {
		cc := ParseRequestCC(v)
		if !cc.NoStore && !cc.NoCache {
			t.Errorf("Cache-Control: %s: read as %+v, its no-store / no-cache hidden", v, cc)
		}
	}
}

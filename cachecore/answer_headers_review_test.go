package cachecore

import (
	"strings"
	"testing"
)

// Hostile and unusual upstream answers (a review's findings).

// A header sent on two lines is one value (RFC 9110 §5.3); a route that
// keeps it (stored_headers) must replay all of it, not its first line only.
func TestRepeatedStoredHeaderIsReplayedWhole(t *testing.T) {
	cfg := `{"routes":[{"name":"chat","kind":"chat","path_exact":"/v1/chat/completions",
	  "stored_headers":["content-type","link"]}]}`
	env := newEnv(t, cfg)
	body := chatRequest("repeated header")
	req, d := env.lookup("chat", alice, body)
	if d != Forward {
		t.Fatalf("first lookup: %v", d)
	}
	resp := hdr("content-type", "application/json",
		"link", `<https://a.example/terms>; rel="terms-of-service"`,
		"link", `<https://a.example/usage>; rel="usage"`)
	env.fill(req, resp, chatResponse("4"), 10)

	req, d = env.lookup("chat", alice, body)
	if d != Serve {
		t.Fatalf("second lookup: %v %s", d, req.Status)
	}
	_, hs, _ := env.cache.HitResponse(req)
	var links []string
	for _, h := range hs {
		if h[0] == "link" {
			links = append(links, h[1])
		}
	}
	if len(links) != 2 {
		t.Fatalf("upstream sent 2 link lines, hit replays %d: %q", len(links), links)
	}
}

// A Cache-Control line that the parser cannot close (an unterminated
// quoted-string) is malformed: "when in doubt, not stored". Read as it is,
// the quote swallows the directive after it and a no-store / private the
// upstream sent is never seen.
func TestUnclosedQuoteInCacheControlIsNotStored(t *testing.T) {
	env := newEnv(t, testConfig)
	req := &Request{Route: env.route("chat")}
	for _, cc := range []string{
		`ext="a, no-store`,
		`ext="a\", no-store`,
		`community="x, private`,
	} {
		h := hdr("content-type", "application/json", "cache-control", cc)
		if got := env.cache.AdmitHeaders(req, 200, h, OriginUpstream); got == ReasonNone {
			t.Errorf("Cache-Control: %s admitted (the no-store/private in it is ignored)", cc)
		}
	}
}

// A 206 is a part of a representation, selected by the client's Range
// header, which the key does not hold: stored, it would be replayed to
// clients that asked for the whole. statuses refuses it at start, naming
// the field.
func TestStatusesRefuse206(t *testing.T) {
	cfg := `{"routes":[{"name":"json","kind":"json","path_prefix":"/v1/json","shared":true,"statuses":[200,206]}]}`
	_, err := ParseConfig([]byte(cfg))
	if err == nil || !strings.Contains(err.Error(), "statuses[1]") || !strings.Contains(err.Error(), "Range") {
		t.Fatalf("statuses [200,206]: %v", err)
	}
	if _, err := ParseConfig([]byte(strings.Replace(cfg, "206", "203", 1))); err != nil {
		t.Fatalf("statuses [200,203]: %v", err)
	}
}

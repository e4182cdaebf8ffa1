package cachecore

import (
	"testing"
	"time"
)

// The mend read a request's joined Cache-Control lines again, split at
// every comma, when a first line's quote never closes: what asks the cache
// to do less counts under either reading. It does so for no-store,
// no-cache and only-if-cached, but not for max-age (nor min-fresh), which
// the same open quote still hides: a client's max-age=0 on its own line
// is served an entry 100 s old, against README's "an answer its max-age or
// min-fresh refuses is not served to it".
func TestRequestMaxAgeLineAfterAnOpenQuoteCounts(t *testing.T) {
	env := newEnv(t, testConfig)
	body := chatRequest("max-age after an open quote")
	req, _ := env.lookup("chat", alice, body)
	env.fill(req, jsonCT, chatResponse("ok"), 10)
	env.clock.Advance(100 * time.Second) // fresh for 200 s more
	h := append(append([][2]string{}, alice...),
		[2]string{"cache-control", `x-trace="abc`},
		[2]string{"cache-control", "max-age=0"})
	req, d := env.lookup("chat", h, body)
	if d == Serve {
		t.Fatalf("max-age=0 on its own line after a line with an unclosed quote: a 100 s old entry served (%s; CC %+v)", req.Status, req.CC)
	}
}

// The same for min-fresh: the client asks for an answer fresh for at
// least an hour more; the entry has 200 s left.
func TestRequestMinFreshLineAfterAnOpenQuoteCounts(t *testing.T) {
	env := newEnv(t, testConfig)
	body := chatRequest("min-fresh after an open quote")
	req, _ := env.lookup("chat", alice, body)
	env.fill(req, jsonCT, chatResponse("ok"), 10)
	env.clock.Advance(100 * time.Second) // fresh for 200 s more
	h := append(append([][2]string{}, alice...),
		[2]string{"cache-control", `x-trace="abc`},
		[2]string{"cache-control", "min-fresh=3600"})
	req, d := env.lookup("chat", h, body)
	if d == Serve {
		t.Fatalf("min-fresh=3600 on its own line after a line with an unclosed quote: an entry fresh for 200 s more served (%s; CC %+v)", req.Status, req.CC)
	}
}

// notQuoted, the second reading, trims names of ASCII space only, while
// the parser's own reading of a value with a byte over 0x7f trims Unicode
// space (strings.TrimSpace): a line " no-store" led by U+00A0 is a no-store
// on its own (ParseRequestCC reads it so), and hidden again after a line
// whose quote never closes, against README's "a quoted argument that never
// closes hides no no-store … after it".
func TestRequestNoStoreLineAfterAnOpenQuoteReadAsWithout(t *testing.T) {
	if !ParseRequestCC("a=1, \u00a0no-store").NoStore {
		t.Skip("setup: the parser does not read a U+00A0-led no-store")
	}
	env := newEnv(t, testConfig)
	h := append(append([][2]string{}, alice...),
		[2]string{"cache-control", `x-trace="abc`},
		[2]string{"cache-control", "\u00a0no-store"})
	req := env.request("chat", h, chatRequest("my medical history, nbsp line"))
	if req.Bypassed() {
		return
	}
	if r := env.cache.AdmitAndStore(req, 200, jsonCT, []byte(chatResponse("diagnosis")), OriginUpstream, 10).Reason; r == ReasonNone {
		t.Fatalf("no-store on its own line (read as no-store without the open quote before it): answer stored (CC %+v)", req.CC)
	}
}

package cachecore

import (
	"testing"
	"time"
)

// A client's no-store on a later Cache-Control line counts as much as on
// the first (TestRequestSecondCacheControlLineNoStore). The lines are
// joined with a comma into one value before they are parsed, so a first
// line whose quoted argument never closes swallows the later line: its
// no-store is read as part of a quoted string and the answer is stored.
// The response side reads each line on its own, and reads an unclosed
// quote as no-store ("when in doubt, not stored"); the request side does
// neither.
func TestRequestNoStoreLineAfterAnOpenQuoteCounts(t *testing.T) {
	env := newEnv(t, testConfig)
	h := append(append([][2]string{}, alice...),
		[2]string{"cache-control", `x-trace="abc`},
		[2]string{"cache-control", "no-store"})
	req := env.request("chat", h, chatRequest("my medical history, line two"))
	if req.Bypassed() {
		return
	}
	if r := env.cache.AdmitAndStore(req, 200, jsonCT, []byte(chatResponse("diagnosis")), OriginUpstream, 10).Reason; r == ReasonNone {
		t.Fatalf("request with `Cache-Control: no-store` on its own line (after a line with an unclosed quote): answer stored (CC parsed as %+v)", req.CC)
	}
}

// The same swallowing turns an only-if-cached on its own line into an
// upstream call: the cost guard README promises ("never an upstream call").
func TestRequestOnlyIfCachedLineAfterAnOpenQuoteCounts(t *testing.T) {
	env := newEnv(t, testConfig)
	h := append(append([][2]string{}, alice...),
		[2]string{"cache-control", `x-trace="abc`},
		[2]string{"cache-control", "only-if-cached"})
	req, d := env.lookup("chat", h, chatRequest("never cached"))
	if d == Forward {
		t.Fatalf("only-if-cached on its own line (after a line with an unclosed quote): Lookup = Forward, status %s (CC %+v)", req.Status, req.CC)
	}
}

// A request whose Cache-Control carries max-age twice (one line from the
// client, one added on the way, or a list with both): the value read is
// the last one, so a later, laxer max-age overrides the client's
// max-age=0 and an entry 100 s old is served. RFC 9111 §4.2.1 reads
// duplicate freshness directives as the first occurrence or as stale;
// either way the client's max-age=0 must refuse a 100 s old answer.
func TestRepeatedRequestDirectivesReadAtTheirStrictest(t *testing.T) {
	env := newEnv(t, testConfig)
	body := chatRequest("duplicate max-age")
	req, _ := env.lookup("chat", alice, body)
	env.fill(req, jsonCT, chatResponse("ok"), 10)
	env.clock.Advance(100 * time.Second) // fresh for 200 s more
	h := append(append([][2]string{}, alice...),
		[2]string{"cache-control", "max-age=0"},
		[2]string{"cache-control", "max-age=3600"})
	req, d := env.lookup("chat", h, body)
	if d == Serve {
		t.Fatalf("max-age=0 then max-age=3600: a 100 s old entry served (%s; CC max-age %v)", req.Status, req.CC.MaxAge)
	}
}

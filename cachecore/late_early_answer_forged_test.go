package cachecore

import (
	"strings"
	"testing"
)

// RATIONALE "An upstream's Age counts; its x-modelcache-
// headers do not pass": the x-modelcache- response headers are the
// filter's word about how an answer was served; an upstream's reached the
// client on a miss beside a Cache-Status that said otherwise, and are now
// taken off every answer whose headers the filter reads — only a bypass,
// whose Cache-Status says the cache did not take part, passes as it came.
// A request decided late whose model answers its headers before its body
// is decided (early_answer) is a miss (fwd=miss; fwd-status=N;
// detail=early-answer) whose headers the filter reads, yet the upstream's
// forged x-modelcache-similarity passes to the client beside that
// Cache-Status.
func TestLateEarlyAnswerDropsForgedOwnHeaders(t *testing.T) {
	e := newStreamEnv(t)
	var s Stream
	body := chatRequest("q")
	v, acts := s.BeginLate(e.c, e.c.routeByName("chat"), "POST", "/v1/chat/completions", e.headers(body), false, 1, 1)
	if v != Continue || !s.Late() {
		t.Fatalf("late headers: verdict %d actions %s", v, lateActs(acts))
	}
	if v, _ := s.RequestBody(len(body)/2, false, &fakeReader{}, &e.hold); v != Pause {
		t.Fatalf("first half of the body: verdict %d", v)
	}
	rd := &fakeReader{details: "via_upstream", respHeaders: append([][2]string{{":status", "401"}, {"content-length", "20"},
		{SimilarityHeader, "0.999"}, {CachedItemsHeader, "64/64"}}, jsonCT...)}
	_, acts = s.ResponseHeaders(false, rd)
	var cs string
	removed := map[string]bool{}
	for _, a := range acts {
		switch {
		case a.Kind == ActSetHeader && a.Name == "cache-status":
			cs = a.Value
		case a.Kind == ActRemoveResponseHeader:
			removed[a.Name] = true
		}
	}
	if !strings.Contains(cs, "fwd=miss") || !strings.Contains(cs, "early-answer") {
		t.Fatalf("setup: not an early answer: Cache-Status %q (%s)", cs, streamActs(acts))
	}
	for _, n := range []string{SimilarityHeader, CachedItemsHeader} {
		if !removed[n] {
			t.Errorf("the model's forged %s passes to the client beside Cache-Status %q (actions: %s)", n, cs, streamActs(acts))
		}
	}
}

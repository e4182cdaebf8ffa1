package cachecore

import "testing"

// Review Z126: a recorded stream is replayed with the content type its
// answer came with, so the cache must only record as an event stream an
// answer whose Content-Type is text/event-stream as HTTP reads it: one
// media type, compared in ASCII without regard to case, white space SP and
// HTAB (RFC 9110 §8.3.1, §5.6.3) — the rule isJSONType already follows for
// JSON answers and directiveLines for requests (review of e4f7050,
// TestRequestContentTypeIsReadAsASCII). isEventStream uses
// strings.EqualFold and strings.TrimSpace, which fold and trim as Unicode
// does: "text/event-ſtream" (U+017F LATIN SMALL LETTER LONG S folds to
// "s") and "text/event-stream" with a no-break space or NEL around it are
// taken for an event stream, so the answer is admitted, stored and
// replayed for the route's ttl under a type no client reads as one (a
// browser's EventSource and httpx-sse, which LangChain's streaming
// integrations use, refuse it). They are not JSON either: the answer
// should be refused (not_json) as any other type is.
func TestEventStreamTypeIsReadAsASCII(t *testing.T) {
	for _, ct := range []string{
		"text/event-\u017ftream",
		"text/event-stream\u00a0",
		"\u0085text/event-stream",
	} {
		env := newEnv(t, testConfig)
		body := `{"model":"gpt-4o-mini","stream":true,"messages":[{"role":"user","content":"hi"}]}`
		req, _ := env.lookup("chat", alice, body)
		if !req.Stream {
			t.Fatalf("setup: request not read as streaming")
		}
		hs := hdr("content-type", ct)
		if r := env.cache.AdmitHeaders(req, 200, hs, OriginUpstream); r != ReasonNotJSON {
			t.Errorf("content-type %q: AdmitHeaders = %q, want not_json (StreamsResponse = %v): recorded and replayed as an event stream",
				ct, r, StreamsResponse(req, hs))
		}
	}
}

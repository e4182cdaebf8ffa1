//go:build !wasip1

package main

import (
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/modelcache/modelcache/wasmhost"
)

// A request whose body ends with trailers (end_of_stream comes on the
// trailers, never on a body chunk) is decided on like any other: cached,
// or bypassed for a true reason. It is not let through undecided and then
// labelled as if Envoy had answered it.
func TestRequestTrailersEndTheBody(t *testing.T) {
	for _, sized := range []bool{true, false} {
		t.Run("content-length="+strconv.FormatBool(sized), func(t *testing.T) {
			hs := newHarness(t, chatConfig)
			body := chatBody("request with trailers")
			h := [][2]string{{":method", "POST"}, {":path", "/v1/chat/completions"}, {":authority", "models"},
				{"authorization", "Bearer tenant-a"}, {"content-type", "application/json"}}
			if sized {
				h = append(h, [2]string{"content-length", strconv.Itoa(len(body))})
			}
			res, err := hs.h.Exchange(0, wasmhost.Request{Headers: h, Body: []byte(body), Trailers: [][2]string{{"x-checksum", "1"}}})
			if err != nil {
				t.Fatal(err)
			}
			if res.Status != 200 || res.FromLocalReply {
				t.Fatalf("status %d (local reply %v)", res.Status, res.FromLocalReply)
			}
			cs := hdr(res, "cache-status")
			if n := hs.counter("modelcache_route.chat.refused.local_reply"); n != 0 || strings.Contains(cs, "local-reply") {
				t.Fatalf("the model's own 200 is reported as Envoy's local reply: Cache-Status %q, refused.local_reply = %d", cs, n)
			}
		})
	}
}

// An answer that ends with trailers (end_of_stream on the trailers) is
// judged like any other: the client gets the filter's Cache-Status — never
// the upstream's — and the answer is stored or refused for a true reason.
func TestResponseTrailersEndTheAnswer(t *testing.T) {
	hs := newHarness(t, chatConfig)
	answer := `{"id":"x","object":"chat.completion","model":"sim-chat","choices":[{"index":0,"message":{"role":"assistant","content":"hi"},"finish_reason":"stop"}]}`
	hs.fault = func(u *wasmhost.UpstreamRequest) bool {
		u.RespondHeaders(200, [][2]string{{"content-type", "application/json"}, {"content-length", strconv.Itoa(len(answer))},
			{"cache-status", "modelcache; hit; ttl=31536000"}}, false)
		u.SendChunk([]byte(answer), false)
		u.SendTrailers([][2]string{{"x-trailer", "1"}})
		return true
	}
	res := hs.post(0, "/v1/chat/completions", chatBody("answer with trailers"))
	if cs := hdr(res, "cache-status"); !strings.HasPrefix(cs, "modelcache; fwd=miss") {
		t.Fatalf("client got Cache-Status %q for an answer that went upstream (refused.truncated = %d, leader_failures = %d)",
			cs, hs.counter("modelcache_route.chat.refused.truncated"), hs.counter("modelcache_route.chat.coalesce.leader_failures"))
	}
}

// Followers of a leader whose every answer is a complete 200 ending in
// trailers are answered with it: one upstream call, no leader-failed 502s.
func TestResponseTrailersDoNotFailFollowers(t *testing.T) {
	hs := newHarness(t, coalesceConfig, withWorkers(2))
	hs.holdUpstream()
	exs := startMany(hs, 10, "answer with trailers")
	answer := `{"id":"x","object":"chat.completion","model":"sim-chat","choices":[{"index":0,"message":{"role":"assistant","content":"hi"},"finish_reason":"stop"}]}`
	calls := 0
	for round := 0; round < 10; round++ {
		pending := hs.h.PendingUpstream()
		if len(pending) == 0 {
			break
		}
		for _, u := range pending {
			calls++
			u.RespondHeaders(200, [][2]string{{"content-type", "application/json"}, {"content-length", strconv.Itoa(len(answer))}}, false)
			u.SendChunk([]byte(answer), false)
			u.SendTrailers([][2]string{{"x-trailer", "1"}})
		}
		hs.h.Drain()
		hs.h.AdvanceAndTick(200 * time.Millisecond)
	}
	responses := map[string]int{}
	for i, ex := range exs {
		if !ex.Done() {
			t.Fatalf("exchange %d stuck: %s", i, ex.State())
		}
		r := ex.Response()
		responses[strconv.Itoa(r.Status)+" "+hdr(r, "cache-status")]++
	}
	if calls != 1 || responses["502 modelcache; fwd=miss; collapsed; detail=leader-failed"] > 0 {
		t.Fatalf("%d upstream calls for one key whose every answer was a complete 200; clients got %v", calls, responses)
	}
}

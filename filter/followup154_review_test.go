//go:build !wasip1

package main

import (
	"testing"

	"github.com/modelcache/modelcache/wasmhost"
)

// Review Z154 (follow-up of Z150's mend). Z150 made a stream that reaches
// its end without `data: [DONE]` mark its followers refusedWhole
// (Flight.refusalEnded, from CompleteStream), as README promises: "A
// stream that reaches its end without [DONE] is not stored
// (refused.truncated), but it is the model's whole answer: followers past
// max_retries go upstream for it rather than get a 502." The mend covers
// only a stream whose end comes in a body frame. A model server that
// answers 200 text/event-stream with no body at all, the end of stream on
// its headers (an HTTP/2 HEADERS frame with END_STREAM, a content-length
// 0), goes through Complete (RespComplete), whose refusal for the same
// reason (truncated: no [DONE]) is still the model's own failure: a burst
// of identical stream requests is led max_retries+1 times into the same
// empty answer and the remaining followers get 502 leader-failed. The
// same empty answer with its end in an empty DATA frame is not (its
// followers go upstream). Expected: no follower gets a 502 while every
// model call answered 200.
func TestFollowup154EmptyEventStreamEndedOnHeadersFailsFollowers(t *testing.T) {
	hs, exs, calls := streamBurst(t, "a server answering nothing", func(u *wasmhost.UpstreamRequest) {
		u.RespondHeaders(200, [][2]string{{"content-type", "text/event-stream"}}, true)
	})
	if got := hs.counter("modelcache_route.chat.refused.truncated"); got == 0 {
		t.Fatalf("setup: the empty stream was not refused as truncated (calls %d)", calls)
	}
	allAnswered200(t, hs, exs, calls, "answered 200 (an event stream ended on its headers)")
}

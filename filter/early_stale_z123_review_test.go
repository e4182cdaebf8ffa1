//go:build !wasip1

package main

import (
	"strings"
	"testing"
	"time"
)

// Review Z123 (follow-up of Z119: Flight.EarlyStale with the origin).
//
// A late request whose upstream request is reset before its body is
// decided, its entry within stale_if_error, is answered with the entry
// (Z119). Should the host refuse that local reply, Stream.SendFailed
// passes Envoy's 503 on "with the Cache-Status its refusal gave it" and
// counts the request at its end "as that says" (countLater). For a reset
// the refusal's Cache-Status is a bypass (Flight.Interrupted:
// fwd=bypass; detail=upstream-reset), but SendFailed's FailOpen makes
// the request a miss: the header says bypass, requests.miss is counted.
// Before Z119 the same reset was counted requests.bypass, as its header
// says; a model answer's early 503 (Z115) stays consistent (miss both).
func TestZ123LateEarlyResetStaleReplyRefusedCountsAsItsCacheStatus(t *testing.T) {
	f := &faultPlan{}
	hs, a, ua, _ := earlyStaleLeader(t, f)
	f.set(failSendLocalResponse)
	ua.Reset() // Envoy's 503, upstream_reset_before_response_started
	hs.h.Drain()
	f.set(nil)
	if f.failed() == 0 {
		t.Fatal("setup: no stale-if-error reply was attempted")
	}
	for _, c := range hs.h.PendingHTTPCalls() { // the L2 lookup still out
		c.Respond(200, nil, []byte(`{"MGET":[null,null,null,null,null]}`))
	}
	hs.h.Drain()
	for i := 0; i < 3 && !a.Done(); i++ {
		hs.h.AdvanceAndTick(time.Second)
		hs.h.Drain()
	}
	r := a.Response()
	if !a.Done() || r.Status != 503 {
		t.Fatalf("setup: a %s, status %d", a.State(), r.Status)
	}
	cs := hdr(r, "cache-status")
	counts, _ := requestCounters(hs, "chat")
	counts["miss"]-- // the warm-up's
	switch {
	case strings.Contains(cs, "fwd=bypass") && (counts["bypass"] != 1 || counts["miss"] != 0):
		t.Fatalf("the reset request's Cache-Status is %q but it is counted as %s (want requests.bypass=1, no miss): "+
			"the requests.<status> counters no longer say what its Cache-Status says", cs, fmtCounters(counts))
	case strings.Contains(cs, "fwd=miss") && (counts["miss"] != 1 || counts["bypass"] != 0):
		t.Fatalf("the reset request's Cache-Status is %q but it is counted as %s", cs, fmtCounters(counts))
	case !strings.Contains(cs, "fwd=bypass") && !strings.Contains(cs, "fwd=miss"):
		t.Fatalf("the reset request's Cache-Status is %q", cs)
	}
}

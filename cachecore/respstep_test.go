package cachecore

import "testing"

// A refusal at the response headers (RespPass) hands the host only
// actions that change no stream's phase: Stream.ResponseHeaders passes
// them on without Stream.apply. Here with the most a refusal carries: a
// lead that ends with a follower to wake.
func TestHeadersRefusalActionsNeedNoApply(t *testing.T) {
	e := newProtoEnv(t, 2, "forward")
	lead, got := e.start(0, 1, "refused at its headers")
	if lead == nil || !lead.Leading() {
		t.Fatalf("first request: %s, want a lead", got)
	}
	if follower, got := e.start(1, 2, "refused at its headers"); follower == nil || !follower.Following() {
		t.Fatalf("second request: %s, want a follower", got)
	}
	step, acts := lead.ResponseHeaders(200, hdr("content-type", "application/json", "cache-control", "no-store"), OriginUpstream, false)
	if step != RespPass {
		t.Fatalf("step %d, want RespPass", step)
	}
	woke := false
	for _, a := range acts {
		switch a.Kind {
		case ActWait, ActBypass, ActServeEntry, ActServeLocal, ActRecordAge, ActForward:
			t.Errorf("a refusal's actions include kind %d, which Stream.apply acts on", a.Kind)
		case ActWake:
			woke = true
		}
	}
	if !woke {
		t.Errorf("the lead's end woke no follower: %s", e.show(acts))
	}
}

package cachecore

import (
	"strings"
	"testing"
	"time"
)

// The host reads a webdis answer only up to its call's MaxBody and one
// byte more (filter/actions.go): a consumer must then decide as it would
// have on the whole answer. A RESP reply is complete when its first CRLF
// ends the body, so an answer whose first line ends just at the cut —
// a reply followed by more, which the whole answer shows — read as a
// reply: the lease SET NX counted lease_won where the whole answer is an
// L2 error.
func TestL2AnswerCutAtMaxBodyIsReadAsTheWhole(t *testing.T) {
	max := newL2Mesh(t, "").p[0].webdis("GET", "/x.raw", nil, time.Second).MaxBody
	whole := "+" + strings.Repeat("x", max-2) + "\r\n" + "+OK\r\n"
	run := func(body string) string {
		m := newL2Mesh(t, "")
		m.ask(0, "warm", "up") // the generations exist
		_, lease := m.untilLease(50)
		got, _ := m.step(lease.Done(CallResult{Status: 200, Body: []byte(body)}))
		return got
	}
	if w, c := run(whole), run(whole[:max+1]); w != c {
		t.Fatalf("a lease answer of %d bytes: %q; cut at MaxBody+1 as the host reads it: %q", len(whole), w, c)
	}
}

package cachecore

import (
	"testing"
	"time"
)

// An entry purge while a leader is upstream leaves a tombstone that must
// refuse the leader's answer (asked for before the purge) for 15 minutes
// (README "Purge API"). A request sent after the purge that does not
// coalesce on that leader (here a client's no-cache revalidation) may
// store its fresh answer, and its store takes the tombstone's way. Then
// the pre-purge leader's answer lands: nothing refuses it any more, and it
// overwrites the fresh answer — the purged (pre-purge) answer is served on
// every worker after the purge said 200. Expected: the answer asked for
// before the purge is refused (invalidated), the fresh one kept.
func TestPurgePathsPrePurgeAnswerLandsAfterAFreshStoreTookTheTombstone(t *testing.T) {
	env := newEnv(t, testConfig)
	q := chatRequest("purged while a revalidation stored")
	lead, d := env.lookup("chat", alice, q)
	if d != Forward {
		t.Fatalf("setup: leader %v", d)
	}
	env.clock.Advance(time.Millisecond)
	purge := `{"path":"/v1/chat/completions","headers":{"authorization":"Bearer sk-alice"},"body":` + q + `}`
	if _, err := env.cache.Purge([]byte(purge), ""); err != nil {
		t.Fatal(err)
	}
	env.clock.Advance(time.Millisecond)
	// A client's no-cache request after the purge goes upstream itself
	// and stores the model's fresh answer.
	fresh, d := env.lookup("chat", hdr("authorization", "Bearer sk-alice", "cache-control", "no-cache"), q)
	if d != Forward || fresh.Status != StatusRevalidate {
		t.Fatalf("setup: revalidation %v %s", d, fresh.Status)
	}
	env.fill(fresh, jsonCT, chatResponse("fresh, after the purge"), 10)
	env.clock.Advance(time.Millisecond)
	// The leader's answer, asked for before the purge, lands.
	st := env.cache.AdmitAndStore(lead, 200, jsonCT, []byte(chatResponse("PURGED, asked for before the purge")), OriginUpstream, 10)
	req, d := env.lookup("chat", alice, q)
	if d != Serve {
		t.Fatalf("lookup after both stores: %v", d)
	}
	_, _, body := env.cache.HitResponse(req)
	if string(body) != chatResponse("fresh, after the purge") {
		t.Fatalf("an answer asked for before an entry purge was stored after it (store reason %q) over the fresh one, and is served: %s", st.Reason, body)
	}
}

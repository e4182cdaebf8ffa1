package cachecore

import (
	"testing"
	"time"
)

// Review Z16 (stop 72). README "Purge API": a purge by replay refuses "an answer in
// flight when it came, asked for before it". The mend (rebuildKey keeps
// Request.lookedAs, purgedAsLooked) checks the key the request looked up
// and the key it stores under. But a replay keys the request under the
// model state at the purge, which may be neither: the model's first
// version, reported by another answer after the look, keeps the generation
// (no invalidation), so the in-flight answer is not stale; the purge's
// tombstone names the request under that first version; the in-flight
// answer reports yet another version and is filed under a third key.
func TestEntryPurgeRefusesAnInFlightAnswerKeyedUnderAThirdState(t *testing.T) {
	const cfg = `{"upstream_cluster":"u","purge":{"path":"/purge","token":"0123456789abcdef"},"routes":[{"name":"chat","kind":"chat",` +
		`"path_prefix":"/v1/chat/completions","ttl":"1h","model_version":{"header":"x-model-version"}}]}`
	env := newEnv(t, cfg)
	v := func(s string) [][2]string { return hdr("content-type", "application/json", "x-model-version", s) }
	// Alice's "q" goes upstream; the model has no version yet.
	req, d := env.lookup("chat", alice, chatRequest("q"))
	if d != Forward {
		t.Fatal(d)
	}
	env.clock.Advance(time.Millisecond)
	// Another answer reports the model's first version, v1 (no new generation).
	warm, _ := env.lookup("chat", bob, chatRequest("warm"))
	env.fill(warm, v("v1"), chatResponse("warm"), 10)
	env.clock.Advance(time.Millisecond)
	// The operator purges alice's "q" by replay: keyed under v1.
	purge := `{"path":"/v1/chat/completions","headers":{"authorization":"Bearer sk-alice"},"body":` + chatRequest("q") + `}`
	if _, err := env.cache.Purge([]byte(purge), ""); err != nil {
		t.Fatal(err)
	}
	env.clock.Advance(time.Millisecond)
	// Alice's answer, asked for before the purge, lands and reports v2.
	st := env.cache.AdmitAndStore(req, 200, v("v2"), []byte(chatResponse("answered before the purge")), OriginUpstream, 10)
	if req2, d := env.lookup("chat", alice, chatRequest("q")); d == Serve {
		_, _, body := env.cache.HitResponse(req2)
		t.Fatalf("an answer in flight across an entry purge, asked before it, was stored (store reason %q, version changed %v) and is served after the purge returned: %s",
			st.Reason, st.Result.VersionChanged, body)
	}
}

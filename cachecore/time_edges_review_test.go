package cachecore

import (
	"strings"
	"testing"
	"time"
)

// Review Z200 (time edges): deadlines written into shared data that, after
// the wall clock steps back, hold for the length of the step instead of the
// few seconds they were written for. Leases, background slots, hit-for-miss
// marks, the L2 breaker and the shadow window were all made to count such a
// record dead (RATIONALE, "the wall clock steps back"); these two were not.

// A request keyed for a model makes that model's record at once, "young"
// (until = -made) and reclaimable 30 s (youngRecordMs) after it was made,
// so that a flood of model names that never store anything cannot hold a
// model-table slot. After the wall clock steps back an hour, those records
// look made an hour in the future: they stay young for the step's length,
// and every new model of their slot is refused (model_table_full, not
// cached) for an hour. Expected: a young record made further in the future
// than the clock skew between workers was made before the step, and is
// reclaimable once 30 s have passed since the step, as it was before it.
func TestTimeEdgesYoungModelRecordsHoldTheirSlotForAClockStepBack(t *testing.T) {
	env := newEnv(t, testConfig)
	models := sameModelSlot(t, env.cache, "chat", modelsPerSlot+1)
	body := func(m string) string { return withModel(chatRequest("q"), m) }
	for _, m := range models[:modelsPerSlot] {
		// Keyed (a record each), never answered: the upstream failed, or a
		// client sent model names the server does not have.
		if req, _ := env.lookup("chat", bob, body(m)); req.Bypassed() {
			t.Fatalf("setup: %s bypassed: %s", m, req.Reason)
		}
	}
	env.clock.Set(env.clock.Now().Add(-time.Hour)) // NTP steps the wall clock back
	env.clock.Advance(time.Minute)                 // twice youngRecordMs of real time pass
	req, _ := env.lookup("chat", alice, body(models[modelsPerSlot]))
	if st := env.cache.AdmitAndStore(req, 200, jsonCT, []byte(chatResponse("a")), OriginUpstream, 10); st.Reason != ReasonNone {
		t.Fatalf("a new model's answer, a minute after a 1h clock step back, is refused with %s: the slot's %d unanswered "+
			"records (reclaimable 30 s after they were made) stay young until the clock catches up, an hour",
			st.Reason, modelsPerSlot)
	}
}

// abandonEmbedding starts a semantic miss on e's worker whose client then
// leaves while its turn is being embedded: the host drops the call's
// result, so neither the worker's pending mark nor the shared claim ('P'
// slot, until now + embedding timeout + 1 s) is cleared by it.
func abandonEmbedding(t *testing.T, e *semEnv, turn string) {
	t.Helper()
	req := e.cache.Begin(e.route("chat"), "POST", "/v1/chat/completions", alice)
	f := e.cache.NewFlight(req, 1, 99)
	if acts := f.RequestBody([]byte(chatRequest(turn)), false); len(acts) != 1 || acts[0].Kind != ActDispatch {
		t.Fatalf("setup: the turn is not embedded: %q", actionKinds(acts))
	}
	f.Done() // the client left; the call's Done is never called
}

// The shared claim of an abandoned embedding (semShared) lives until its
// deadline, written as now + timeout + 1 s. After the wall clock steps back
// an hour, that deadline is an hour away: every worker takes the turn as
// "being embedded by another worker" and skips the semantic lookup — no
// near hit, and the answer stored is not indexed — for an hour instead of
// ~11 s. Expected: a claim whose deadline lies further ahead than any claim
// is written for (timeout + 1 s, plus the workers' clock skew) was written
// before the step and is dead; the turn is embedded again.
func TestTimeEdgesAbandonedEmbeddingClaimOutlivesAClockStepBack(t *testing.T) {
	e := newSemEnv(t, "")
	turn := "What is the capital of France?"
	abandonEmbedding(t, e, turn)
	e.clock.Set(e.clock.Now().Add(-time.Hour)) // NTP steps the wall clock back
	e.clock.Advance(30 * time.Second)          // well past any embedding's deadline
	// Another worker of the process (no pending mark of its own).
	e.cache = New(e.cache.cfg, Options{Store: e.store, Now: e.clock.Now, Rand: seededRand(7)})
	if _, got := e.ask(alice, turn, nil); !strings.HasPrefix(got, "embed") {
		t.Fatalf("30 s after a 1h clock step back, the turn of an embedding abandoned before it is still taken "+
			"for one under way: no semantic lookup (%q); want it embedded again", got)
	}
}

// The same on the worker whose client left: its own pending mark
// (Cache.semPending, until now + timeout + 1 s) holds the turn for the
// step's length too, even once another worker has embedded the turn and
// shared its vector. Expected: the mark, written before the step, is dead
// 30 s after it; the worker takes the shared vector and searches, as it
// does without a step (TestSemanticAbandonedEmbeddingExpires).
func TestTimeEdgesAbandonedEmbeddingPendingMarkOutlivesAClockStepBack(t *testing.T) {
	e := newSemEnv(t, "")
	turn := "What is the capital of France?"
	abandonEmbedding(t, e, turn)
	a := e.cache
	e.clock.Advance(15 * time.Second) // past the abandoned call's deadline
	// Another worker embeds the turn and shares its vector.
	e.cache = New(a.cfg, Options{Store: e.store, Now: e.clock.Now, Rand: seededRand(7)})
	if _, got := e.ask(alice, turn, nil); !strings.HasPrefix(got, "embed") {
		t.Fatalf("setup: the other worker does not embed the turn: %q", got)
	}
	e.clock.Set(e.clock.Now().Add(-time.Hour)) // NTP steps the wall clock back
	e.clock.Advance(30 * time.Second)
	e.cache = a // the worker whose client left
	if _, got := e.ask(alice, turn, nil); !strings.HasPrefix(got, "semantic.vector_cached") {
		t.Fatalf("30 s after a 1h clock step back, the worker whose client left before the step still takes the turn "+
			"for one it is embedding: no semantic lookup (%q), though the turn's vector is shared; want it searched", got)
	}
}

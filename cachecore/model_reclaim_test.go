package cachecore

// No reclaim, full slot or purge hides a purge, a shadow invalidation or
// a version switch from an answer in flight across it; a purge of
// everything does not hold dead records (review 11).

import (
	"testing"
	"time"
)

// Short-lived entries so that records die within the 10-minute hold.
const heldRecordsConfig = `{"upstream_cluster":"u","purge":{"path":"/purge","token":"0123456789abcdef"},
 "store":{"buckets":4096,"ways":4,"max_entry_bytes":65536},
 "routes":[{"name":"chat","kind":"chat","path_exact":"/v1/chat/completions","ttl":"10s",
   "shadow":{"sample":1,"min_samples":1,"max_divergence":0.5,"min_tenants":1}},
  {"name":"ver","kind":"chat","path_exact":"/v1/ver","ttl":"10s","model_version":{"header":"x-model-version"}}]}`

// A request keyed while its slot was full (no record) is not stored:
// nothing would tell it a purge of its model came while it was upstream.
func TestPurgeUnderFullSlotRefusesInFlightAnswer(t *testing.T) {
	env := newEnv(t, heldRecordsConfig)
	others := modelsInSlotOf(t, env.cache, "chat", "gpt-4o-mini", modelsPerSlot)
	for _, m := range others { // 16 live records: the slot is full
		req, _ := env.lookup("chat", bob, withModel(chatRequest("q"), m))
		env.fill(req, jsonCT, chatResponse(m), 10)
	}
	inflight, _ := env.lookup("chat", alice, chatRequest("q")) // keyed: no record (table full)
	purgeBetween(t, env, `{"route":"chat","model":"gpt-4o-mini"}`)
	if inflight.state.Found {
		t.Fatal("setup: the slot was not full")
	}
	env.clock.Advance(30 * time.Second) // the other records die
	st := env.cache.AdmitAndStore(inflight, 200, jsonCT, []byte(chatResponse("answered before the purge")), OriginUpstream, 10)
	if _, d := env.lookup("chat", alice, chatRequest("q")); d == Serve {
		t.Errorf("an answer in flight across a purge of its model is stored (%q) and served 30 s after the purge", st.Reason)
	}
}

// An answer keyed before a shadow invalidation is refused even when the
// record was reclaimed since and its store would make a new one.
func TestShadowInvalidationThenReclaimRefusesInFlightAnswer(t *testing.T) {
	env := newEnv(t, heldRecordsConfig)
	env.fill(env.request("chat", alice, chatRequest("hi")), jsonCT, chatResponse("old"), 10)
	inflight, _ := env.lookup("chat", bob, chatRequest("q")) // keyed under the pre-invalidation generation
	hit, d := env.lookup("chat", alice, chatRequest("hi"))
	if d != Serve {
		t.Fatal("setup: no hit")
	}
	acts := env.cache.Shadow(hit, hdr(":method", "POST", ":path", "/v1/chat/completions"))
	env.clock.Advance(time.Millisecond)
	acts[0].Call.Done(CallResult{Status: 200, Headers: jsonCT, Body: []byte(chatResponse("new"))})
	if st, _ := env.cache.loadModel("chat", "gpt-4o-mini"); !st.Found || st.Gen == inflight.state.Gen {
		t.Fatal("setup: the shadow comparison did not invalidate the model")
	}
	env.clock.Advance(time.Second)
	others := modelsInSlotOf(t, env.cache, "chat", "gpt-4o-mini", modelsPerSlot)
	for _, m := range others[:modelsPerSlot-1] { // 15 records dying after gpt-4o-mini's
		req, _ := env.lookup("chat", bob, withModel(chatRequest("q"), m))
		env.fill(req, jsonCT, chatResponse(m), 10)
	}
	env.clock.Advance(time.Minute)
	env.request("chat", bob, withModel(chatRequest("q"), others[modelsPerSlot-1])) // reclaims gpt-4o-mini's record
	if st, _ := env.cache.loadModel("chat", "gpt-4o-mini"); st.Found {
		t.Fatal("setup: record not reclaimed")
	}
	st := env.cache.AdmitAndStore(inflight, 200, jsonCT, []byte(chatResponse("answered before the invalidation")), OriginUpstream, 10)
	if _, d := env.lookup("chat", bob, chatRequest("q")); d == Serve {
		t.Errorf("an answer in flight across a shadow invalidation is stored (%q) and served 61 s after it", st.Reason)
	}
}

// A late answer of a replaced version, keyed before the switch, is
// refused even when the record was reclaimed since.
func TestVersionSwitchThenReclaimRefusesLateOldVersion(t *testing.T) {
	env := newEnv(t, heldRecordsConfig)
	v := func(s string) [][2]string { return hdr("content-type", "application/json", "x-model-version", s) }
	env.fill(env.request("ver", alice, chatRequest("a")), v("v1"), chatResponse("v1 a"), 10)
	inflight, _ := env.lookup("ver", bob, chatRequest("q")) // keyed under v1
	other, _ := env.lookup("ver", bob, chatRequest("b"))
	env.fill(other, v("v2"), chatResponse("v2 b"), 10) // the switch to v2
	env.clock.Advance(time.Second)
	others := modelsInSlotOf(t, env.cache, "ver", "gpt-4o-mini", modelsPerSlot)
	for _, m := range others[:modelsPerSlot-1] {
		req, _ := env.lookup("ver", bob, withModel(chatRequest("q"), m))
		env.fill(req, v("v9"), chatResponse(m), 10)
	}
	env.clock.Advance(time.Minute)
	env.request("ver", bob, withModel(chatRequest("q"), others[modelsPerSlot-1])) // reclaims gpt-4o-mini's record
	if st, _ := env.cache.loadModel("ver", "gpt-4o-mini"); st.Found {
		t.Fatal("setup: record not reclaimed")
	}
	st := env.cache.AdmitAndStore(inflight, 200, v("v1"), []byte(chatResponse("late v1 answer")), OriginUpstream, 10)
	if req, d := env.lookup("ver", bob, chatRequest("q")); d == Serve {
		_, h, body := env.cache.HitResponse(req)
		t.Errorf("a late answer of the replaced version v1, keyed before the switch to v2, is stored (%q) and served 61 s later: %s %v", st.Reason, body, h)
	}
}

// A purge of everything leaves dead records reclaimable: a new model in a
// slot full of them is cached at once.
func TestPurgeAllLeavesDeadRecordsReclaimable(t *testing.T) {
	env := newEnv(t, heldRecordsConfig)
	others := modelsInSlotOf(t, env.cache, "chat", "gpt-4o-mini", modelsPerSlot)
	for _, m := range others {
		req, _ := env.lookup("chat", bob, withModel(chatRequest("q"), m))
		env.fill(req, jsonCT, chatResponse(m), 10)
	}
	env.clock.Advance(24 * time.Hour) // every record of the slot dead for a day
	purgeBetween(t, env, `{"all":true}`)
	req, _ := env.lookup("chat", alice, chatRequest("asked after the purge"))
	if st := env.cache.AdmitAndStore(req, 200, jsonCT, []byte(chatResponse("a")), OriginUpstream, 10); st.Reason != ReasonNone {
		t.Errorf("a new model's first answer, keyed after a purge of everything, in a slot of records dead for a day, is refused: %s", st.Reason)
	}
}

// The same with the records of another client's flood of model names,
// once past their 30 s.
func TestPurgeAllLeavesFloodRecordsReclaimable(t *testing.T) {
	env := newEnv(t, heldRecordsConfig)
	names := modelsInSlotOf(t, env.cache, "chat", "gpt-4o-mini", modelsPerSlot)
	for _, m := range names {
		env.request("chat", bob, withModel(chatRequest("x"), m))
	}
	purgeBetween(t, env, `{"all":true}`)
	env.clock.Advance(time.Minute)
	req, _ := env.lookup("chat", alice, chatRequest("q"))
	if st := env.cache.AdmitAndStore(req, 200, jsonCT, []byte(chatResponse("a")), OriginUpstream, 10); st.Reason != ReasonNone {
		t.Errorf("after a flood of %d keyed-only names and a purge of everything, a new model's first answer is refused: %s", len(names), st.Reason)
	}
}

// The timeline of the shadow test with a purge instead of the
// invalidation: the in-flight answer is refused.
func TestPurgeThenReclaimRefusesInFlightAnswer(t *testing.T) {
	env := newEnv(t, heldRecordsConfig)
	env.fill(env.request("chat", alice, chatRequest("hi")), jsonCT, chatResponse("old"), 10)
	inflight, _ := env.lookup("chat", bob, chatRequest("q"))
	purgeBetween(t, env, `{"route":"chat","model":"gpt-4o-mini"}`)
	env.clock.Advance(time.Second)
	others := modelsInSlotOf(t, env.cache, "chat", "gpt-4o-mini", modelsPerSlot)
	for _, m := range others[:modelsPerSlot-1] {
		req, _ := env.lookup("chat", bob, withModel(chatRequest("q"), m))
		env.fill(req, jsonCT, chatResponse(m), 10)
	}
	env.clock.Advance(time.Minute)
	env.request("chat", bob, withModel(chatRequest("q"), others[modelsPerSlot-1]))
	st := env.cache.AdmitAndStore(inflight, 200, jsonCT, []byte(chatResponse("answered before the purge")), OriginUpstream, 10)
	if st.Reason != ReasonInvalidated {
		t.Errorf("control: %q", st.Reason)
	}
}

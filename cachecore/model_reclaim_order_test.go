package cachecore

// Which record a new model takes the place of, and who may make records:
// good answers are not refused in ordinary operation (review 12).

import (
	"testing"
	"time"
)

// A record whose entries are all dead gives its place before a record
// made at keying, even one past its 30 s: a first answer that takes
// longer (a long generation) keeps its record while 15 dead ones are left.
func TestSlowFirstAnswerKeptWhenDeadRecordsExist(t *testing.T) {
	env := newEnv(t, roomyConfig)
	another := deadRecordsBeside(t, env)                           // 15 records dead for a day
	slow, _ := env.lookup("chat", alice, chatRequest("q"))         // new model, keyed: record made
	env.clock.Advance(35 * time.Second)                            // its answer is still being generated
	env.request("chat", bob, withModel(chatRequest("q"), another)) // one more new model
	st := env.cache.AdmitAndStore(slow, 200, jsonCT, []byte(chatResponse("a")), OriginUpstream, 35000)
	if st.Reason != ReasonNone {
		t.Errorf("a first answer that took 35 s is refused (%s): the keying of one other new model reclaimed its record "+
			"instead of one of 15 records dead for a day", st.Reason)
	}
}

// Among records made at keying and past their 30 s, the oldest gives its
// place first; the newest is the one most likely still in flight.
func TestOldestEmptyRecordReclaimedFirst(t *testing.T) {
	env := newEnv(t, roomyConfig)
	others := modelsInSlotOf(t, env.cache, "chat", "gpt-4o-mini", modelsPerSlot+1)
	for _, m := range others[:modelsPerSlot-2] { // 14 live records
		req, _ := env.lookup("chat", bob, withModel(chatRequest("q"), m))
		env.fill(req, jsonCT, chatResponse(m), 10)
	}
	old, _ := env.lookup("chat", alice, withModel(chatRequest("q"), others[modelsPerSlot-2])) // keyed at T
	env.clock.Advance(10 * time.Second)
	recent, _ := env.lookup("chat", alice, chatRequest("q")) // keyed at T+10 s
	env.clock.Advance(35 * time.Second)                      // T+45: both past 30 s
	for _, m := range others[:modelsPerSlot-2] {             // the 14 others stay live
		req, _ := env.lookup("chat", bob, withModel(chatRequest("again"), m))
		env.fill(req, jsonCT, chatResponse(m), 10)
	}
	env.request("chat", bob, withModel(chatRequest("q"), others[modelsPerSlot])) // reclaims one of the two
	stOld := env.cache.AdmitAndStore(old, 200, jsonCT, []byte(chatResponse("a")), OriginUpstream, 45000)
	stRecent := env.cache.AdmitAndStore(recent, 200, jsonCT, []byte(chatResponse("b")), OriginUpstream, 35000)
	t.Logf("keyed 45 s ago: %q; keyed 35 s ago: %q", stOld.Reason, stRecent.Reason)
	if stRecent.Reason != ReasonNone && stOld.Reason == ReasonNone {
		t.Errorf("the record keyed 35 s ago was reclaimed (%s) and the one keyed 45 s ago kept", stRecent.Reason)
	}
}

// A purge of a model without a record (nothing of it is reachable) makes
// one only in a free place, never in the place of another model's record
// whose first answer is still upstream (a purge log replayed from other
// proxies purges models this proxy never saw).
func TestPurgeOfAnUnknownModelKeepsInFlightRecord(t *testing.T) {
	env := newEnv(t, roomyConfig)
	others := modelsInSlotOf(t, env.cache, "chat", "gpt-4o-mini", modelsPerSlot)
	slow, _ := env.lookup("chat", alice, chatRequest("q")) // new model, keyed at T
	env.clock.Advance(35 * time.Second)
	for _, m := range others[:modelsPerSlot-1] { // 15 live records
		req, _ := env.lookup("chat", bob, withModel(chatRequest("q"), m))
		env.fill(req, jsonCT, chatResponse(m), 10)
	}
	unknown := others[modelsPerSlot-1] // never requested on this proxy
	if _, err := env.cache.Purge([]byte(`{"route":"chat","model":"`+unknown+`"}`), ""); err != nil {
		t.Fatal(err)
	}
	st := env.cache.AdmitAndStore(slow, 200, jsonCT, []byte(chatResponse("a")), OriginUpstream, 35000)
	if st.Reason != ReasonNone {
		t.Errorf("a first answer is refused (%s) after a purge of a model that had no record at all", st.Reason)
	}
}

// A store refused because its record was reclaimed makes no record: it
// would take the place of another model's record made at keying and
// refuse that one's first answer too, a chain from one reclaim.
func TestRefusedStoreMakesNoRecord(t *testing.T) {
	env := newEnv(t, roomyConfig)
	others := modelsInSlotOf(t, env.cache, "chat", "gpt-4o-mini", modelsPerSlot+1)
	x, _ := env.lookup("chat", alice, chatRequest("q")) // new model, keyed at T
	env.clock.Advance(time.Second)
	z, _ := env.lookup("chat", alice, withModel(chatRequest("q"), others[0])) // another, keyed at T+1 s
	env.clock.Advance(34 * time.Second)
	for _, m := range others[1 : modelsPerSlot-1] { // 14 live records: the slot is full
		req, _ := env.lookup("chat", bob, withModel(chatRequest("q"), m))
		env.fill(req, jsonCT, chatResponse(m), 10)
	}
	env.request("chat", bob, withModel(chatRequest("q"), others[modelsPerSlot])) // a new model reclaims one young record
	stZ := env.cache.AdmitAndStore(z, 200, jsonCT, []byte(chatResponse("z")), OriginUpstream, 34000)
	stX := env.cache.AdmitAndStore(x, 200, jsonCT, []byte(chatResponse("x")), OriginUpstream, 35000)
	t.Logf("z: %q, x: %q", stZ.Reason, stX.Reason)
	if stZ.Reason != ReasonNone && stX.Reason != ReasonNone {
		t.Errorf("one new model's keying refused two in-flight first answers (%s, %s): the first refused store took the second's place", stZ.Reason, stX.Reason)
	}
}

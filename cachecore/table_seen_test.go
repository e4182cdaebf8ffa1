package cachecore

import (
	"strings"
	"testing"
)

// A lookup reads its key's preferred way first, which in a full table
// holds another key's entry: a whole entry copied to learn nothing. Once a
// VM has read the bucket's index and seen that way listed for another key,
// its next lookup there asks the index first (RATIONALE: "A lookup skips a
// way it saw holding another key").

// fullBucket lists four other live keys in the bucket of fp, as another
// VM's stores would, and puts another key's entry in fp's preferred way.
// deadWay, if not -1, is listed dead (a store may take it).
func (e *chatLeadEnv) fullBucket(t *testing.T, fp uint64, deadWay int) {
	t.Helper()
	tb := NewTable(e.reads, int(e.w[1].table.buckets), e.w[1].table.ways)
	b := tb.bucketOf(fp)
	cas, exists, err := tb.readIndex(b)
	if err != nil {
		t.Fatal(err)
	}
	tb.resetIdx()
	for w := range tb.idx {
		tb.idx[w] = slot{fp: fp ^ uint64(w+1)<<20, staleUntil: 1 << 62}
		if w == deadWay {
			tb.idx[w].staleUntil = 1
		}
	}
	if err := tb.writeIndex(b, cas, exists); err != nil {
		t.Fatal(err)
	}
	if err := e.reads.Set(tb.entryKey(b, tb.preferredWay(fp)), []byte("another key's entry"), 0); err != nil {
		t.Fatal(err)
	}
}

// look begins body on worker w, looks it up and returns the request and
// what the lookup read, by kind.
func (e *chatLeadEnv) look(w int, body string) (*Request, Decision, int, int) {
	c := e.w[w]
	req := c.Begin(c.routeByName("chat"), "POST", "/v1/chat/completions", [][2]string{{"authorization", "Bearer t"}})
	c.SetBody(req, []byte(body))
	clear(e.reads.gets)
	d := c.Lookup(req)
	return req, d, e.reads.gets["mc:e"], e.reads.gets["mc:i"]
}

// unlistedEntry leaves sampleChatRequest's answer in its preferred way
// behind a well-formed index that lists other keys in every way, after
// worker 0 has read that index (and so saw the way listed for another
// key).
func (e *chatLeadEnv) unlistedEntry(t *testing.T) {
	t.Helper()
	e.store(t, 0, e.miss(t, 0, `{"model":"gpt-4o-mini","messages":[{"role":"user","content":"the model becomes known"}]}`))
	probe := e.miss(t, 1, sampleChatRequest)
	e.store(t, 1, probe)
	tb := e.w[1].table
	b, pw := tb.bucketOf(probe.FP), tb.preferredWay(probe.FP)
	entry, _, err := e.reads.Get(tb.entryKey(b, pw))
	if err != nil || len(entry) == 0 {
		t.Fatalf("the answer is not in its preferred way (%v)", err)
	}
	entry = append([]byte(nil), entry...)
	e.fullBucket(t, probe.FP, -1)
	if _, d, _, _ := e.look(0, sampleChatRequest); d != Forward {
		t.Fatalf("the first lookup: %v", d)
	}
	// The key's entry is back in its way, unlisted.
	if err := e.reads.Set(tb.entryKey(b, pw), entry, 0); err != nil {
		t.Fatal(err)
	}
}

func TestLookupSkipsAPreferredWaySeenHoldingAnotherKey(t *testing.T) {
	e := newChatLeadEnv(t)
	e.store(t, 0, e.miss(t, 0, `{"model":"gpt-4o-mini","messages":[{"role":"user","content":"the model becomes known"}]}`))
	req := e.miss(t, 1, sampleChatRequest)
	e.fullBucket(t, req.FP, -1)

	// Worker 0 has never read this bucket: the preferred way first, then
	// the index, as always.
	if _, d, ent, idx := e.look(0, sampleChatRequest); d != Forward || ent != 1 || idx != 1 {
		t.Fatalf("the first lookup: %v, %d entries and %d indexes read; want a miss, 1 and 1", d, ent, idx)
	}
	// Its index said another key holds the preferred way: the index alone.
	if _, d, ent, idx := e.look(0, sampleChatRequest); d != Forward || ent != 0 || idx != 1 {
		t.Errorf("the second lookup: %v, %d entries and %d indexes read; want a miss, 0 and 1", d, ent, idx)
	}
	// What one worker saw is its own: worker 1 never read that index.
	if _, d, ent, idx := e.look(1, sampleChatRequest); d != Forward || ent != 1 || idx != 1 {
		t.Errorf("worker 1's lookup: %v, %d entries and %d indexes read; want a miss, 1 and 1", d, ent, idx)
	}
}

// An answer stored in the way since it was seen holding another key is
// found through the index, and the way is known to be the key's after.
func TestLookupFindsAnAnswerStoredInAWaySeenHoldingAnotherKey(t *testing.T) {
	e := newChatLeadEnv(t)
	e.store(t, 0, e.miss(t, 0, `{"model":"gpt-4o-mini","messages":[{"role":"user","content":"the model becomes known"}]}`))
	probe := e.miss(t, 1, sampleChatRequest)
	pw := e.w[0].table.preferredWay(probe.FP)
	e.fullBucket(t, probe.FP, pw) // the preferred way's key is dead: a store takes its way
	if _, d, _, _ := e.look(0, sampleChatRequest); d != Forward {
		t.Fatalf("the first lookup: %v", d)
	}
	e.store(t, 1, e.miss(t, 1, sampleChatRequest))
	b := e.w[1].table.bucketOf(probe.FP)
	if _, _, err := e.w[1].table.readIndex(b); err != nil || e.w[1].table.idx[pw].fp != probe.FP {
		t.Fatalf("worker 1 did not store the answer in its preferred way (%v)", err)
	}
	if req, d, _, _ := e.look(0, sampleChatRequest); d != Serve || !strings.Contains(string(req.Entry.Body), "an answer") {
		t.Fatalf("an answer stored in a way seen holding another key: %v", d)
	}
	if _, d, ent, idx := e.look(0, sampleChatRequest); d != Serve || ent != 1 || idx != 0 {
		t.Errorf("the next hit: %v, %d entries and %d indexes read; want a hit, 1 and 0", d, ent, idx)
	}
}

// An entry in its preferred way that a well-formed index does not list
// (RATIONALE, "A batch that mostly misses looks through the index first",
// lists how) is missed at most once: the store that follows lists it.
func TestLookupMissesAnUnlistedEntryInASeenWayAtMostOnce(t *testing.T) {
	e := newChatLeadEnv(t)
	e.unlistedEntry(t)
	req, d, _, _ := e.look(0, sampleChatRequest)
	if d == Serve {
		return // found anyway: nothing was missed
	}
	e.store(t, 0, req)
	if _, d, _, _ := e.look(0, sampleChatRequest); d != Serve {
		t.Fatalf("after its store the key is still missed: %v", d)
	}
}

// seenFullBucket fills sampleChatRequest's bucket with other keys
// (fullBucket), under a model with answers stored, and has worker 0 miss
// it once: worker 0 has then seen every way listed for another key.
func (e *chatLeadEnv) seenFullBucket(t *testing.T) {
	t.Helper()
	e.store(t, 0, e.miss(t, 0, `{"model":"gpt-4o-mini","messages":[{"role":"user","content":"the model becomes known"}]}`))
	e.fullBucket(t, e.miss(t, 1, sampleChatRequest).FP, -1)
	if _, d, _, _ := e.look(0, sampleChatRequest); d != Forward {
		t.Fatalf("the first lookup: %v", d)
	}
}

// A lookup that expects to miss (every way of its bucket seen listed for
// other keys) reads its lease slot before the index, as an embeddings
// batch does; a lead won with that read knows no leader of its key
// finished since, and goes upstream without looking again (coalesce.go,
// leaderLookup).
func TestLeaderWhoseLookupReadItsSlotAheadDoesNotLookAgain(t *testing.T) {
	e := newChatLeadEnv(t)
	e.seenFullBucket(t)
	req, d, ent, idx := e.look(0, sampleChatRequest)
	if d != Forward || ent != 0 || idx != 1 || e.reads.gets["mc:l"] != 1 {
		t.Fatalf("the lookup: %v, %d entries, %d indexes and %d lease slots read; want a miss, 0, 1 and 1", d, ent, idx, e.reads.gets["mc:l"])
	}
	clear(e.reads.gets)
	f := e.w[0].NewFlight(req, 1, 10)
	if k := outcome(f.Miss()); k != ActForward || req.Status != StatusMiss || !f.leader {
		t.Fatalf("the lead: %v (%s)", k, req.Status)
	}
	if n := e.reads.gets["mc:i"] + e.reads.gets["mc:e"] + e.reads.gets["mc:l"]; n != 0 {
		t.Errorf("the lead read %v; want nothing", e.reads.gets)
	}
}

// A leader of the key that finished between the read ahead and the lease
// wrote the slot: the lead is not won with that read, and looks again.
func TestLeaderWhoseSlotMovedSinceItsReadAheadLooksAgain(t *testing.T) {
	e := newChatLeadEnv(t)
	e.seenFullBucket(t)
	req, d, _, _ := e.look(0, sampleChatRequest)
	if d != Forward || e.reads.gets["mc:l"] != 1 {
		t.Fatalf("the lookup: %v, %d lease slots read", d, e.reads.gets["mc:l"])
	}
	// Worker 1 leads the key, stores its answer and finishes meanwhile.
	other := e.miss(t, 1, sampleChatRequest)
	of := e.w[1].NewFlight(other, 2, 20)
	if k := outcome(of.Miss()); k != ActForward || !of.leader {
		t.Fatalf("worker 1's lead: %v", k)
	}
	e.store(t, 1, other)
	of.FinishLead(OutcomeStored, 200)
	f := e.w[0].NewFlight(req, 1, 10)
	if k := outcome(f.Miss()); k != ActServeEntry || req.Status != StatusHit {
		t.Fatalf("a lead must find the answer its key's leader stored since its read ahead, got %v (%s)", k, req.Status)
	}
}

// A lookup that expects a hit outside its preferred way (its bucket seen
// listing its key in another way) reads the index and the entry, and no
// lease slot.
func TestLookupExpectingAHitReadsNoSlotAhead(t *testing.T) {
	e := newChatLeadEnv(t)
	e.store(t, 0, e.miss(t, 0, `{"model":"gpt-4o-mini","messages":[{"role":"user","content":"the model becomes known"}]}`))
	probe := e.miss(t, 1, sampleChatRequest)
	pw := e.w[0].table.preferredWay(probe.FP)
	e.fullBucket(t, probe.FP, (pw+1)%e.w[0].table.ways) // a store takes the way after the preferred one
	e.store(t, 1, probe)
	if _, d, _, _ := e.look(0, sampleChatRequest); d != Serve {
		t.Fatalf("the first lookup: %v", d)
	}
	if _, d, ent, idx := e.look(0, sampleChatRequest); d != Serve || ent != 1 || idx != 1 || e.reads.gets["mc:l"] != 0 {
		t.Errorf("the second lookup: %v, %d entries, %d indexes and %d lease slots read; want a hit, 1, 1 and 0", d, ent, idx, e.reads.gets["mc:l"])
	}
}

// A lease slot read ahead decides only an outcome whose write its CAS
// checks. Here the key's leader, followed by another request of the same
// worker, finished uncacheable between the read ahead (which saw the live
// lease and this worker among its waiters) and the lead: the key is now
// hit-for-miss, and the request goes upstream, not waiting for a wake-up
// that was already sent.
func TestJoinDecidesNothingUnwrittenOnASlotReadAhead(t *testing.T) {
	e := newChatLeadEnv(t)
	e.seenFullBucket(t)
	lf := e.w[1].NewFlight(e.miss(t, 1, sampleChatRequest), 2, 20)
	if k := outcome(lf.Miss()); k != ActForward || !lf.leader {
		t.Fatalf("worker 1's lead: %v", k)
	}
	fr, _, _, _ := e.look(0, sampleChatRequest)
	ff := e.w[0].NewFlight(fr, 1, 11)
	if k := outcome(ff.Miss()); k != ActWait {
		t.Fatalf("worker 0's follower: %v", k)
	}
	req, d, _, _ := e.look(0, sampleChatRequest)
	if d != Forward || e.reads.gets["mc:l"] != 1 {
		t.Fatalf("the lookup: %v, %d lease slots read", d, e.reads.gets["mc:l"])
	}
	lf.FinishLead(OutcomeUncacheable, 200)
	ff.Wake(OutcomeUncacheable, 200)
	f := e.w[0].NewFlight(req, 1, 12)
	if k := outcome(f.Miss()); k != ActForward || f.leader {
		t.Fatalf("the request: %v (leader %v); want it upstream under the hit-for-miss mark", k, f.leader)
	}
}

// A lookup that stores nothing (only-if-cached) reads its preferred way
// first even where it saw another key listed there: an entry a well-formed
// index leaves out is found, request after request, as before.
func TestOnlyIfCachedFindsAnUnlistedEntryInItsPreferredWay(t *testing.T) {
	e := newChatLeadEnv(t)
	e.unlistedEntry(t)
	c := e.w[0]
	for i := 0; i < 3; i++ {
		req := c.Begin(c.routeByName("chat"), "POST", "/v1/chat/completions",
			[][2]string{{"authorization", "Bearer t"}, {"cache-control", "only-if-cached"}})
		c.SetBody(req, []byte(sampleChatRequest))
		if d := c.Lookup(req); d != Serve {
			t.Fatalf("only-if-cached request %d: %v (%s)", i, d, req.Status)
		}
	}
}

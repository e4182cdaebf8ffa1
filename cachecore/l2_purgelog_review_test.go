package cachecore

import (
	"bytes"
	"strings"
	"testing"
)

// failStartRecordsTick runs one L2Tick of m.p[p], failing the next fail start-record
// RPUSHes (a transport failure: the append did not land); it returns how
// many it failed.
func failStartRecordsTick(m *l2Mesh, p, fail int) int {
	failed := 0
	acts := m.p[p].L2Tick()
	for len(acts) > 0 {
		a := acts[0]
		acts = acts[1:]
		switch a.Kind {
		case ActDispatch:
			var res CallResult
			if strings.HasPrefix(headerValue(a.Call.Headers, ":path"), "/RPUSH/") && failed < fail {
				failed++
				res = CallResult{Failed: true}
			} else {
				res = m.wd.do(a.Call)
			}
			acts = append(acts, a.Call.Done(res)...)
		case ActFreed:
			m.freed += a.N
		}
	}
	return failed
}

// Review Z52 (mend 6311ba9). RATIONALE: "An append that fails is tried
// again from LLEN at the next interval; only after three failures in a row
// does the VM read on from the empty log's unnamed position". startFails is
// reset only when a start record succeeds or is given up: a failed start
// record followed by an LLEN that finds the log not empty (another proxy
// logged a purge, or the append landed and only its answer was lost) keeps
// its count. Two such episodes over a VM's life, and the next single failed
// start record (one kept-alive connection webdis closed) takes position 0
// unnamed and saves it: the Z46 hole (a purge logged at index 0, the log
// deleted, another purge at index 0) is open after one failure.
func TestL2StartRecordFailuresCountOnlyInARow(t *testing.T) {
	m := newL2Mesh(t, "")
	key := DefaultL2Prefix + "purges"
	// Episode 1, at the start: B's start record fails once; A logs a purge
	// and B's next read names its position by it.
	if failStartRecordsTick(m, 1, 1) != 1 {
		t.Fatal("setup: episode 1 start record not sent")
	}
	m.purgeOnA(`{"route":"chat","model":"other-1"}`)
	m.clock.Advance(DefaultL2SyncInterval)
	failStartRecordsTick(m, 1, 0) // LLEN=1, named: a position
	// Episode 2: the operator deletes the log; B's start record fails
	// once; A logs a purge, and B names its position by it.
	delete(m.wd.lists, key)
	m.clock.Advance(DefaultL2SyncInterval)
	if failStartRecordsTick(m, 1, 1) != 1 {
		t.Fatal("setup: episode 2 start record not sent")
	}
	m.purgeOnA(`{"route":"chat","model":"other-2"}`)
	m.clock.Advance(DefaultL2SyncInterval)
	failStartRecordsTick(m, 1, 0)
	if !m.p[1].l2s.started || m.p[1].l2s.cursor != 1 || m.p[1].l2s.lost {
		t.Fatalf("setup: B after episode 2: %+v", m.p[1].l2s)
	}
	// Episode 3, long after: the log is deleted again and one start
	// record fails — the first failure in a row.
	delete(m.wd.lists, key)
	m.clock.Advance(DefaultL2SyncInterval)
	if failStartRecordsTick(m, 1, 1) != 1 {
		t.Fatal("setup: episode 3 start record not sent")
	}
	after3 := m.p[1].l2s
	// The Z46/Z49 sequence.
	m.copyToBsL1()
	m.purgeOnA(`{"path":"/v1/chat/completions","headers":{"authorization":"Bearer sk-alice"},"body":` + chatRequest("hello") + `}`)
	delete(m.wd.lists, key) // the operator deletes the log
	m.purgeOnA(`{"route":"chat","model":"another-model"}`)
	for range 3 {
		m.clock.Advance(DefaultL2SyncInterval)
		failStartRecordsTick(m, 1, 0)
	}
	if cs, body := m.ask(1, "hello", "fresh"); !strings.Contains(cs, "fwd=miss") || !bytes.Contains(body, []byte("fresh")) {
		t.Fatalf("after ONE failed start record in a row (two earlier ones, each followed by a named position, still counted: startFails=%d), B took the unnamed position 0 (state after that failure: %+v) and never saw the purge logged at index 0 before the delete: it serves the purged answer: %q %s",
			after3.startFails, after3, cs, body)
	}
}

// Review Z52 (mend 6311ba9). README: a VM that no longer finds the last
// record it read "cannot know which purges it missed, so it takes where the
// log ends at once, then drops its whole L1 once"; Z49 made a VM that lost
// the log drop L1 "at once whenever the read that would name its new
// position finds nothing". When the log was deleted, that read is the start
// record's RPUSH; when it fails (a kept-alive connection closed, a
// read-only replica answering -READONLY) l2MarkStart just waits for the
// next interval with lost set: a VM that knows it missed purges serves its
// whole L1, purged entries included, for two more intervals (l2WriteTries
// failures), up to two hours with sync_interval 1h.
func TestL2LostLogDropsL1WhenItsStartRecordFails(t *testing.T) {
	m := newL2Mesh(t, "")
	m.step(m.p[1].L2Tick()) // B: its start record, position 1
	m.copyToBsL1()          // B caches "hello"
	m.purgeOnA(`{"path":"/v1/chat/completions","headers":{"authorization":"Bearer sk-alice"},"body":` + chatRequest("hello") + `}`)
	delete(m.wd.lists, DefaultL2Prefix+"purges") // deleted before B read the purge
	failed := 0
	for range 2 {
		m.clock.Advance(DefaultL2SyncInterval)
		failed += failStartRecordsTick(m, 1, 1) // every start record fails
	}
	if failed != 2 || !m.p[1].l2s.lost {
		t.Fatalf("setup: %d start records failed, B %+v", failed, m.p[1].l2s)
	}
	if cs, body := m.ask(1, "hello", "fresh"); !strings.Contains(cs, "fwd=miss") || !bytes.Contains(body, []byte("fresh")) {
		t.Fatalf("B found its log record gone two intervals ago (purges missed; its start record failing) and still serves its L1: the purged answer: %q %s", cs, body)
	}
}

// Review Z52 (mend 6311ba9). Z49 made a VM that lost the log drop L1 "at
// once whenever the read that would name its new position finds nothing
// ... however long webdis goes on disagreeing". A read that fails instead
// is the same state — the VM knows it missed purges — yet when webdis
// goes down right after the read that found the record gone (the LLEN
// sent at once fails, and every read after it), lost stays set and the
// whole L1, the missed purge's entry included, is served for the whole
// outage (here 5 intervals).
func TestL2LostLogDropsL1WhileWebdisIsDown(t *testing.T) {
	m := newL2Mesh(t, "")
	m.step(m.p[1].L2Tick()) // B: its start record, position 1
	m.copyToBsL1()          // B caches "hello"
	m.purgeOnA(`{"path":"/v1/chat/completions","headers":{"authorization":"Bearer sk-alice"},"body":` + chatRequest("hello") + `}`)
	key := DefaultL2Prefix + "purges"
	m.wd.lists[key] = m.wd.lists[key][1:] // LTRIM purges 1 -1: B's record goes
	reads := 0
	for range 5 {
		m.clock.Advance(DefaultL2SyncInterval)
		acts := m.p[1].L2Tick()
		for len(acts) > 0 {
			a := acts[0]
			acts = acts[1:]
			if a.Kind != ActDispatch {
				continue
			}
			reads++
			res := m.wd.do(a.Call)
			if reads == 1 {
				m.wd.down = true // webdis goes down after answering the read that found the log lost
			}
			acts = append(acts, a.Call.Done(res)...)
		}
	}
	m.wd.down = false
	if reads < 5 || !m.p[1].l2s.lost {
		t.Fatalf("setup: %d reads, B %+v", reads, m.p[1].l2s)
	}
	// webdis is back only for this request, which B serves from its L1.
	if cs, body := m.ask(1, "hello", "fresh"); !strings.Contains(cs, "fwd=miss") || !bytes.Contains(body, []byte("fresh")) {
		t.Fatalf("B found its log record gone 5 intervals ago (purges missed; webdis down since) and still serves its L1: the purged answer: %q %s", cs, body)
	}
}

// Review Z52 (mend fe4fb7c). README: a proxy that has no position yet
// "cannot tell which records are newer than what it cached meanwhile, so it
// drops its L1 once" if the log is not empty; RATIONALE (Z44): the record
// before an LLEN position is read at once so that "a log deleted or trimmed
// between the two reads is then either found lost, or holds before the
// position only records older than the drop". Since fe4fb7c a read after
// LLEN that finds nothing resets the VM without marking the log lost: a
// new process whose LLEN saw the log not empty (a purge of an entry it
// copied from L2 meanwhile), the log deleted before the LRANGE sent at
// once, finds it empty at its next interval, appends its start record and
// holds position 1 with no drop (lost is false): the purge is never
// applied and the purged answer is served until its TTL.
func TestL2NewProcessDropsL1WhenTheLogGoesBetweenLLENAndItsRead(t *testing.T) {
	m := newL2Mesh(t, "")
	m.copyToBsL1() // B, no position yet, caches "hello" from L2
	m.purgeOnA(`{"path":"/v1/chat/completions","headers":{"authorization":"Bearer sk-alice"},"body":` + chatRequest("hello") + `}`)
	key := DefaultL2Prefix + "purges"
	if n := len(l2PurgeRecords(m.wd.lists[key])); n != 1 {
		t.Fatalf("setup: purge log holds %d purge records", n)
	}
	deleted := false
	acts := m.p[1].L2Tick() // B's first read: LLEN=1, the LRANGE at once
	for len(acts) > 0 {
		a := acts[0]
		acts = acts[1:]
		switch a.Kind {
		case ActDispatch:
			if strings.HasPrefix(headerValue(a.Call.Headers, ":path"), "/LRANGE/") && !deleted {
				delete(m.wd.lists, key) // the operator deletes the log between B's two reads
				deleted = true
			}
			acts = append(acts, a.Call.Done(m.wd.do(a.Call))...)
		case ActFreed:
			m.freed += a.N
		}
	}
	if !deleted {
		t.Fatal("setup: B sent no LRANGE after its LLEN")
	}
	for range 3 {
		m.clock.Advance(DefaultL2SyncInterval)
		m.step(m.p[1].L2Tick())
	}
	if !m.p[1].l2s.started {
		t.Fatalf("setup: B has no position: %+v", m.p[1].l2s)
	}
	if cs, body := m.ask(1, "hello", "fresh"); !strings.Contains(cs, "fwd=miss") || !bytes.Contains(body, []byte("fresh")) {
		t.Fatalf("B's first LLEN found the log not empty (a purge of its copy), the log was deleted before the read sent at once, and B never dropped its L1 (position %d, %d entries freed): the purged answer: %q %s",
			m.p[1].l2s.cursor, m.freed, cs, body)
	}
}

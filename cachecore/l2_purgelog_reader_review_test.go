package cachecore

import (
	"bytes"
	"encoding/base64"
	"strings"
	"testing"
)

// Review Z54. RATIONALE ("The purge log holds records, and detects being
// trimmed"): "each read starts one record early and checks it is the
// record last read (a random nonce makes records distinct)". The nonce is
// drawn once per purge (l2Log), and l2LogTry sends the same bytes again
// when an RPUSH's answer fails: an RPUSH that landed but whose answer was
// lost (a write timeout) puts the same record in the log twice, another
// proxy's purge possibly between the two copies. A VM that read the first
// copy then takes the second, after an LTRIM of the log's head, for the
// record it last read, and reads on past the purge in between: that purge
// is never applied to its L1 and the purged answer is served until its TTL.
func TestL2RetriedLogRecordIsNotTakenForTheLastOneRead(t *testing.T) {
	m := newL2Mesh(t, "")
	key := DefaultL2Prefix + "purges"
	m.step(m.p[1].L2Tick()) // B: its start record at index 0, position 1
	m.copyToBsL1()          // B caches "hello"
	if !m.p[1].l2s.started || m.p[1].l2s.cursor != 1 {
		t.Fatalf("setup: B %+v", m.p[1].l2s)
	}

	// A purges a model: its RPUSH lands (index 1) but the answer is lost;
	// the retry is held until the write timeout fires.
	res, err := m.p[0].Purge([]byte(`{"route":"chat","model":"other-1"}`), "")
	if err != nil {
		t.Fatal(err)
	}
	var held []Action
	failed := false
	acts := res.L2.Done(m.wd.do(res.L2))
	for len(acts) > 0 {
		a := acts[0]
		acts = acts[1:]
		if a.Kind != ActDispatch {
			continue
		}
		r := m.wd.do(a.Call)
		if strings.HasPrefix(headerValue(a.Call.Headers, ":path"), "/RPUSH/") && !failed {
			failed = true
			held = append(held, a.Call.Done(CallResult{Failed: true})...) // landed, answer lost
			continue
		}
		acts = append(acts, a.Call.Done(r)...)
	}
	if !failed || len(held) == 0 || len(m.wd.lists[key]) != 2 {
		t.Fatalf("setup: failed=%v held=%d log=%d", failed, len(held), len(m.wd.lists[key]))
	}

	// B reads the first copy: position 2, named by it.
	m.clock.Advance(DefaultL2SyncInterval)
	m.step(m.p[1].L2Tick())
	if m.p[1].l2s.cursor != 2 {
		t.Fatalf("setup: B %+v", m.p[1].l2s)
	}
	// Meanwhile another proxy (A here) purges B's "hello" (index 2), then
	// A's retry lands: the same record again (index 3).
	m.purgeOnA(`{"path":"/v1/chat/completions","headers":{"authorization":"Bearer sk-alice"},"body":` + chatRequest("hello") + `}`)
	m.step(held)
	l := m.wd.lists[key]
	if len(l) != 4 {
		t.Fatalf("setup: log %d records", len(l))
	}
	for _, i := range []int{1, 3} { // the purge's two copies (the same bytes before review Z54)
		if raw, _ := base64.StdEncoding.DecodeString(l[i]); !strings.Contains(string(raw), `"other-1"`) {
			t.Fatalf("setup: index %d is not the retried purge: %q", i, raw)
		}
	}
	if raw, _ := base64.StdEncoding.DecodeString(l[2]); !strings.Contains(string(raw), "entry") {
		t.Fatalf("setup: index 2 is not the entry purge: %q", raw)
	}
	// The operator trims the log's head: LTRIM purges 2 -1.
	m.wd.lists[key] = l[2:]

	for range 3 {
		m.clock.Advance(DefaultL2SyncInterval)
		m.step(m.p[1].L2Tick())
	}
	if cs, body := m.ask(1, "hello", "fresh"); !strings.Contains(cs, "fwd=miss") || !bytes.Contains(body, []byte("fresh")) {
		t.Fatalf("a retried purge-log RPUSH left the same record twice; after an LTRIM B took the second copy for the record it last read (position %d, lost=%v, %d entries freed), skipped the entry purge between the copies, and serves the purged answer: %q %s",
			m.p[1].l2s.cursor, m.p[1].l2s.lost, m.freed, cs, body)
	}
}

// Review Z54. README: "Each proxy keeps its position in the purge log in
// shared data: a worker that starts ... reads on from there"; only "a proxy
// that has no position yet ... drops its L1 once". A VM whose start record
// lands after another proxy's (both found the log empty: a deployment's
// start) drops L1 and holds a named position, but l2MarkStart's n > 1 path
// (l2SyncFirst) never saves it: the process's second worker, starting
// within the interval, finds no position, takes LLEN and drops the shared
// L1 again — a healthy mesh (no trim, webdis correct) drops the process's
// L1 twice, the entries the first worker cached since included.
func TestL2StartRecordAfterAnothersIsKeptForTheNextWorker(t *testing.T) {
	m := newL2Mesh(t, "")
	// B's first worker finds the log empty; A's start record lands between
	// its LLEN and its own start record (both proxies start at once).
	acts := m.p[1].L2Tick()
	aStarted := false
	for len(acts) > 0 {
		a := acts[0]
		acts = acts[1:]
		switch a.Kind {
		case ActDispatch:
			if strings.HasPrefix(headerValue(a.Call.Headers, ":path"), "/RPUSH/") && !aStarted {
				aStarted = true
				m.step(m.p[0].L2Tick())
			}
			acts = append(acts, a.Call.Done(m.wd.do(a.Call))...)
		case ActFreed:
			m.freed += a.N
		}
	}
	if !aStarted || !m.p[1].l2s.started || m.p[1].l2s.cursor != 2 {
		t.Fatalf("setup: A started %v, B %+v", aStarted, m.p[1].l2s)
	}
	m.copyToBsL1() // B's first worker caches "hello" in the process's L1
	// B's second worker starts (same shared data), a moment later.
	w2 := New(m.p[1].cfg, Options{Store: m.p[1].store, Now: m.clock.Now, Rand: seededRand(7)})
	m.freed = 0
	m.step(w2.L2Tick())
	if cs, _ := m.ask(1, "hello", "fresh"); !strings.Contains(cs, "hit") || strings.Contains(cs, "l2") {
		t.Fatalf("no purge was logged and the log was never trimmed, yet B's second worker dropped the process's L1 on start (%d entries freed; it found no position: %+v): %q",
			m.freed, w2.l2s, cs)
	}
}

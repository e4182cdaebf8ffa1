package cachecore

import (
	"bytes"
	"strings"
	"testing"
)

// Review Z44. A position taken by LLEN on a non-empty log (a process's
// first read, or the read after a lost log) is a "baseline": the next read
// takes the record at cursor-1 as the one before its position without
// checking it. If the operator deletes (or trims) the log between those two
// reads — README: "It may be trimmed (LTRIM) or deleted at any time" — and
// other proxies log purges meanwhile, the record now at cursor-1 is one of
// those new purges: it is taken for history and never applied, and the
// records below it are never read. The purged answer stays in this
// proxy's L1 (served as a hit) until its TTL, although the VM never read
// its position's record and so cannot know it missed nothing.
func TestL2FirstPositionIsNamedBeforeL1IsDropped(t *testing.T) {
	m := newL2Mesh(t, "")
	m.purgeOnA(`{"route":"chat","model":"another-model"}`) // log: 1 old record
	m.step(m.p[1].L2Tick())                                // B's first read: LLEN=1, baseline; L1 dropped (empty)
	m.copyToBsL1()                                         // B caches "hello" after that
	delete(m.wd.lists, DefaultL2Prefix+"purges")           // the operator deletes the log
	m.purgeOnA(`{"path":"/v1/chat/completions","headers":{"authorization":"Bearer sk-alice"},"body":` + chatRequest("hello") + `}`)
	if n := len(m.wd.lists[DefaultL2Prefix+"purges"]); n != 1 {
		t.Fatalf("log: %d records", n)
	}
	for range 3 { // well past sync_interval + tick_period
		m.clock.Advance(DefaultL2SyncInterval)
		m.step(m.p[1].L2Tick())
	}
	if cs, body := m.ask(1, "hello", "fresh"); !strings.Contains(cs, "fwd=miss") || !bytes.Contains(body, []byte("fresh")) {
		t.Fatalf("B serves the purged answer from its L1 after 3 sync intervals (the new log's first record was taken as the baseline and never applied): %q %s", cs, body)
	}
}

// The same hole after a lost log: a VM that found its record trimmed takes
// the log's end by LLEN (a baseline again) and drops L1; a second delete
// before its next read, and a purge logged meanwhile, is taken for the
// record before its position and never applied.
func TestL2PositionAfterALostLogIsNamedBeforeL1IsDropped(t *testing.T) {
	m := newL2Mesh(t, "")
	m.step(m.p[1].L2Tick()) // B: position 0 (empty log)
	m.purgeOnA(`{"route":"chat","model":"other"}`)
	m.purgeOnA(`{"route":"chat","model":"other"}`)
	m.clock.Advance(DefaultL2SyncInterval)
	m.step(m.p[1].L2Tick()) // B read both: position 2
	key := DefaultL2Prefix + "purges"
	m.wd.lists[key] = m.wd.lists[key][1:] // the operator trims the oldest
	m.clock.Advance(DefaultL2SyncInterval)
	m.step(m.p[1].L2Tick()) // B finds its record gone: LLEN=1 (baseline), drops L1
	m.copyToBsL1()
	delete(m.wd.lists, key) // deleted again
	m.purgeOnA(`{"path":"/v1/chat/completions","headers":{"authorization":"Bearer sk-alice"},"body":` + chatRequest("hello") + `}`)
	for range 3 {
		m.clock.Advance(DefaultL2SyncInterval)
		m.step(m.p[1].L2Tick())
	}
	if cs, body := m.ask(1, "hello", "fresh"); !strings.Contains(cs, "fwd=miss") || !bytes.Contains(body, []byte("fresh")) {
		t.Fatalf("B serves the purged answer from its L1: %q %s", cs, body)
	}
}

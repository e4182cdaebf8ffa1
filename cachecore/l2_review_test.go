package cachecore

import (
	"strconv"
	"strings"
	"testing"
	"time"
)

// Bounded work: a VM reads the purge log l2SyncBatch records at a time
// (LRANGE cursor-1 .. cursor+l2SyncBatch-1), so one read applies at most
// that many purges. A webdis answer holding more records than the range
// asked for (a misbehaving webdis, a proxy in front of it answering for
// another key) is garbage; today every record in it is applied, each a
// purge of the whole L1 (256 model records renewed, the table cleared),
// and the cursor jumps past records never asked for: one read of a
// lookup-sized answer (up to l2SyncCap, ~8.8 MB) may apply >100k purges
// in one tick of the VM.
func TestL2PurgeLogReadAppliesNoMoreThanItAskedFor(t *testing.T) {
	m := newL2Mesh(t, "")
	m.step(m.p[1].L2Tick()) // B's cursor: the end of the (empty) log
	res, _ := m.p[0].Purge([]byte(`{"all":true}`), "")
	m.step(res.L2.Done(m.wd.do(res.L2)))
	rec := l2PurgeRecords(m.wd.lists[DefaultL2Prefix+"purges"])
	if len(rec) != 1 {
		t.Fatalf("log: %v", rec)
	}
	m.clock.Advance(DefaultL2SyncInterval)
	acts := m.p[1].L2Tick()
	if len(acts) != 1 || acts[0].Kind != ActDispatch {
		t.Fatalf("no log read: %v", acts)
	}
	const n = 2000
	items := make([]string, n)
	for i := range items {
		items[i] = strconv.Quote(rec[0])
	}
	body := `{"LRANGE":[` + strings.Join(items, ",") + `]}`
	start := time.Now()
	out := acts[0].Call.Done(CallResult{Status: 200, Headers: [][2]string{{":status", "200"}}, Body: []byte(body)})
	took := time.Since(start)
	applied := 0
	for _, a := range out {
		if a.Kind == ActLog && strings.Contains(string(a.Message), "applied another proxy's purge") {
			applied++
		}
	}
	if applied > l2SyncBatch || m.p[1].l2s.cursor > l2SyncBatch {
		t.Fatalf("one log read asked for at most %d records and applied %d purges of everything (cursor now %d, %v of work in one tick)",
			l2SyncBatch, applied, m.p[1].l2s.cursor, took)
	}
}

// A value another proxy wrote within its own l2.max_entry_bytes (a mesh
// mid-rollout of a lower limit, or of a lower store.max_entry_bytes, the
// default of l2.max_entry_bytes) is larger than this proxy's lookup cap
// (3 × its l2.max_entry_bytes + 4 KiB). Such an answer is not a fault of
// L2: it is a sound value this proxy will not read. Today it is an
// l2.error counted by the breaker, so a few lookups of such keys open the
// breaker and this VM skips L2 for every other key for cool_down, over and
// over ("After breaker.failures consecutive failures", README: failures
// of webdis or Redis, "down, slow or answering garbage").
func TestL2ForeignLargeValueDoesNotOpenTheBreaker(t *testing.T) {
	m := &l2Mesh{t: t, clock: newFakeClock(), wd: newFakeWebdis()}
	big := mustParse(t, strings.Replace(l2TestConfig, "%s", `,"breaker":{"failures":2,"cool_down":"5s"}`, 1))
	small := mustParse(t, strings.Replace(l2TestConfig, "%s", `,"max_entry_bytes":4096,"breaker":{"failures":2,"cool_down":"5s"}`, 1))
	m.p[0] = New(big, Options{Store: NewMemStore(), Now: m.clock.Now, Rand: seededRand(0)})
	m.p[1] = New(small, Options{Store: NewMemStore(), Now: m.clock.Now, Rand: seededRand(1)})
	long := strings.Repeat("a long answer ", 1500) // ~21 KB: written by A (1 MiB limit), over B's lookup cap (16 KiB)
	m.ask(0, "hello", "world")
	m.ask(0, "x1", long)
	m.ask(0, "x2", long)
	for _, p := range []string{"x1", "x2"} {
		if cs, _ := m.ask(1, p, long); !strings.Contains(cs, "fwd=miss") {
			t.Fatalf("B %s: %q", p, cs)
		}
	}
	if cs, _ := m.ask(1, "hello", "other"); !strings.Contains(cs, "detail=l2") {
		t.Fatalf("B's lookup of a small shared answer after two lookups of large (sound) values: %q (breaker open: %v)", cs, !m.p[1].l2Allowed())
	}
}

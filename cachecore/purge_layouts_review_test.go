package cachecore

import (
	"bytes"
	"strings"
	"testing"
	"time"
)

// Review Z59 (1). RATIONALE ("A reload overlaps two configurations"): a
// purge by replay removes the key under every layout the process's
// configurations started with lately, which purgeOtherLayouts reads from
// mc:layouts. When that one read fails (shared data refuses it), the
// purge visits no other layout and still answers success: the purge API
// says 200, and the old configuration, still draining, serves the purged
// answer. Any other shared-data failure on a purge's path is returned
// (PurgeKey's errors are), so the operator knows to send it again.
func TestPurgeWhoseLayoutsRecordCannotBeReadDoesNotAnswerSuccess(t *testing.T) {
	mem := NewMemStore()
	failLayouts := false
	store := &flakyStore{Store: mem, getErr: func(key string) error {
		if failLayouts && key == layoutsKey {
			return errStoreDown
		}
		return nil
	}}
	clock := newFakeClock()
	mk := func(cfg string, seed uint64) *testEnv {
		c := New(mustParse(t, cfg), Options{Store: store, Now: clock.Now, Rand: seededRand(seed)})
		return &testEnv{t: t, cache: c, store: mem, clock: clock}
	}
	cfgB := strings.Replace(testConfig, `"buckets": 16, "ways": 4`, `"buckets": 32, "ways": 4`, 1)
	a := mk(testConfig, 1) // the old configuration, still draining
	clock.Advance(time.Second)
	canary := mk(cfgB, 2) // the new configuration's first New (Envoy: the canary)
	if canary.cache.LayoutReplaced() != "16x4" {
		t.Fatalf("setup: layout replaced %q", canary.cache.LayoutReplaced())
	}
	worker := mk(cfgB, 3) // a worker VM of the new configuration
	if raw, _, err := mem.Get(layoutsKey); err != nil || string(raw) != "32x4,16x4" {
		t.Fatalf("setup: mc:layouts %q %v", raw, err)
	}
	bad := 0
	for i := range 8 {
		q := chatRequest("poisoned question " + itoa(int64(i)))
		req, _ := a.lookup("chat", alice, q)
		a.fill(req, jsonCT, chatResponse("poisoned answer"), 10)
		if r, d := a.lookup("chat", alice, q); d != Serve {
			t.Fatalf("setup: not stored (%s)", r.Status)
		}
		purge := `{"path":"/v1/chat/completions","headers":{"authorization":"Bearer sk-alice"},"body":` + q + `}`
		failLayouts = true
		res, err := worker.cache.Purge([]byte(purge), "")
		failLayouts = false
		clock.Advance(100 * time.Millisecond)
		if _, d := a.lookup("chat", alice, q); d == Serve && err == nil {
			t.Logf("purge %d answered success (%+v) and the old layout still serves it", i, res)
			bad++
		}
	}
	if bad > 0 {
		t.Fatalf("%d of 8 purges by replay answered success while mc:layouts could not be read, and the draining configuration still serves those purged answers", bad)
	}
}

// Review Z59 (2). RATIONALE ("A purge is done again once L2 has it"): the
// proxy that takes a purge does it again in L1 once Redis has it, since
// an L2 lookup answered in between copied the old value back into L1,
// and the proxy skips its own records in the purge log, so nothing else
// removes it. In a reload's overlap the first pass reaches both layouts
// (purgeOtherLayouts), but the pass done again (l2PurgeEntry -> l2Again
// -> l2RemoveEntries) purges only the purging configuration's own layout:
// a lookup by the draining configuration between the two passes copies
// the purged value into its layout, where it stays and is served.
func TestEntryPurgeDoneAgainOnceL2HasItReachesTheDrainingLayout(t *testing.T) {
	for _, tc := range []struct{ name, to string }{
		{"buckets", `"buckets": 32, "ways": 4`},
		{"ways", `"buckets": 16, "ways": 8`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			const base = `{"upstream_cluster":"model","l2":{"cluster":"webdis"},"store":{"buckets": 16, "ways": 4},
 "purge":{"path":"/purge","token":"0123456789abcdef"},
 "routes":[{"name":"chat","kind":"chat","path_prefix":"/v1/chat/completions","ttl":"1h","coalesce":{"enabled":true,"max_wait":"5s"}}]}`
			store := NewMemStore() // one process: both configurations share it
			m := &l2Mesh{t: t, clock: newFakeClock(), wd: newFakeWebdis()}
			m.p[0] = New(mustParse(t, base), Options{Store: store, Now: m.clock.Now, Rand: seededRand(1)}) // the old configuration, draining
			m.clock.Advance(time.Second)
			m.p[1] = New(mustParse(t, strings.Replace(base, `"buckets": 16, "ways": 4`, tc.to, 1)), Options{Store: store, Now: m.clock.Now, Rand: seededRand(2)})
			if m.p[1].LayoutReplaced() != "16x4" {
				t.Fatalf("setup: layout replaced %q", m.p[1].LayoutReplaced())
			}
			m.step(m.p[0].L2Tick())
			m.step(m.p[1].L2Tick())
			served := 0
			for i := range 8 {
				q := "hello " + itoa(int64(i))
				m.ask(0, q, "purged answer") // in A's L1 and in L2
				if cs, _ := m.ask(0, q, "x"); !strings.Contains(cs, "hit") || strings.Contains(cs, "l2") {
					t.Fatalf("setup: not in A's L1: %q", cs)
				}
				pr, err := m.p[1].Purge([]byte(`{"path":"/v1/chat/completions","headers":{"authorization":"Bearer sk-alice"},"body":`+chatRequest(q)+`}`), "")
				if err != nil || pr.L2 == nil {
					t.Fatalf("purge: %+v %v", pr, err)
				}
				m.clock.Advance(time.Millisecond)
				// A request on the draining configuration while the purge's
				// INCR is on its way: L1 misses (the first pass reached it),
				// L2 still has the value, copied into A's L1.
				cs, _ := m.ask(0, q, "fresh")
				// Redis has the purge; it is done again in L1 and logged;
				// the operator gets 200.
				m.step(pr.L2.Done(m.wd.do(pr.L2)))
				for range 2 {
					m.clock.Advance(DefaultL2SyncInterval)
					m.step(m.p[0].L2Tick())
					m.step(m.p[1].L2Tick())
				}
				if cs2, body := m.ask(0, q, "fresh"); bytes.Contains(body, []byte("purged answer")) {
					t.Logf("%s: during the purge %q; after it completed, the draining configuration serves it: %q", q, cs, cs2)
					served++
				}
				if cs, body := m.ask(1, q, "fresh"); bytes.Contains(body, []byte("purged answer")) {
					t.Fatalf("the purging configuration serves the purged answer: %q", cs)
				}
			}
			if served > 0 {
				t.Fatalf("%d of 8 entries purged by replay (done again once L2 had the purge, answered 200) are still served from L1 by the draining configuration", served)
			}
		})
	}
}

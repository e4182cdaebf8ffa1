package cachecore

import (
	"fmt"
	"strings"
	"testing"
)

// Review Z226 (config_push): a new configuration pushed to running VMs
// (a new root context over the same shared data) while entries stored
// under the old one live on.

// README (L2, "Limits"): "Each proxy keeps its position in the purge log
// in shared data: a worker that starts, or reloads after a crash, or a
// new configuration with the same routes reads on from there"; a process
// with no position drops its L1 at its first read, because "a new
// process's L1 holds one tick's worth" (RATIONALE). The position is keyed
// by the configuration's route names too (l2CursorKey), so a push that
// only adds a route — to a process whose L1 is full, which has read the
// log all along and whose old configuration still holds a position in it
// — finds no position, takes the log's end and drops the whole L1: every
// route's and every tenant's entries, on every proxy of the mesh the push
// reaches, at once (each then asks Redis for every key again). Expected: a
// configuration that keeps the routes the process's position was read for
// (and adds one) keeps L1, as one with the same routes does; the entry
// cached before the push is still an L1 hit.
func TestConfigPushAddingARouteDropsTheWholeL1(t *testing.T) {
	m := newL2Mesh(t, "")
	m.step(m.p[1].L2Tick()) // proxy B reads the log: the process has a position
	m.step(m.p[0].L2Tick())
	m.copyToBsL1()
	res, _ := m.p[0].Purge([]byte(`{"route":"chat","model":"another-model"}`), "") // a purge of something else
	m.step(res.L2.Done(m.wd.do(res.L2)))
	m.clock.Advance(DefaultL2SyncInterval)
	m.step(m.p[1].L2Tick()) // B reads it: nothing of its L1
	if cs, _ := m.ask(1, "hello", "x"); strings.Contains(cs, "l2") || !strings.Contains(cs, "hit") {
		t.Fatalf("setup: B's L1 before the push: %q", cs)
	}
	pushed := strings.Replace(fmt.Sprintf(l2TestConfig, ""), `"routes":[`,
		`"routes":[{"name":"other","kind":"chat","path_prefix":"/v1/other/completions","ttl":"1h"},`, 1)
	m.p[1] = New(mustParse(t, pushed), Options{Store: m.p[1].store, Now: m.clock.Now, Rand: seededRand(9)})
	m.freed = 0
	for range 2 { // the new configuration's first tick, and its next read
		m.step(m.p[1].L2Tick())
		m.clock.Advance(DefaultL2SyncInterval)
	}
	if cs, _ := m.ask(1, "hello", "x"); strings.Contains(cs, "l2") || !strings.Contains(cs, "hit") {
		t.Fatalf("after a push that only added a route, the entry B held in L1 is gone (Cache-Status %q; %d L1 entries dropped at the new configuration's first read of the purge log)", cs, m.freed)
	}
}

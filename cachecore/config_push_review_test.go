package cachecore

import (
	"fmt"
	"strings"
	"testing"
	"time"
)

// Review Z226 (config_push): a new configuration pushed to running VMs
// (a new root context over the same shared data) while entries stored
// under the old one live on.

// README (Policy): ttl is the "freshness of a stored answer". RATIONALE
// ("A change of what a route admits starts its cache afresh") digests a
// confidence tier's ttl into the key because "a tier that now keeps
// answers shorter ... would otherwise have served them for the old ttl";
// the route's own ttl is left out of the digest, as it changes "how long,
// not what" — yet nothing applies the new "how long" either: freshness is
// judged only by the FreshUntil the old configuration wrote (lookup.go
// freshness), while the stale windows are judged as they are now (review
// Z98). An operator who lowers a route's ttl from 1h to 1m (answers go
// out of date) keeps getting hits up to an hour old, with a Cache-Status
// ttl= far above the configured ttl. Expected: an entry is fresh at most
// the route's current ttl after it was stored (here a miss, or stale).
func TestConfigPushLoweringTTLStillServesAnswersFreshForTheOldTTL(t *testing.T) {
	const cfg = `{"upstream_cluster":"model","routes":[{"name":"chat","kind":"chat","path_prefix":"/v1/chat/completions","ttl":%q}]}`
	old := newEnv(t, fmt.Sprintf(cfg, "1h"))
	q := chatRequest("what is the exchange rate today?")
	old.fill(old.request("chat", alice, q), jsonCT, chatResponse("1.08"), 10)
	nw := reloadEnv(t, old, fmt.Sprintf(cfg, "1m"), 2)
	old.clock.Advance(10 * time.Minute) // ten times the new ttl
	req, d := nw.lookup("chat", alice, q)
	if d == Serve && req.Status == StatusHit {
		ttl := (req.Entry.FreshUntil - nw.clock.Now().UnixMilli()) / 1000
		t.Fatalf("10 minutes after it was stored, under a configuration whose ttl is 1m, an answer stored under the old ttl 1h is a fresh hit (Cache-Status ttl=%d): the lowered ttl is not applied to entries stored before the push", ttl)
	}
}

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

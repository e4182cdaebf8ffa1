package cachecore

import (
	"fmt"
	"strings"
	"testing"
)

// Review Z237 (followup237): a follow-up of this stop's changes.

// l2OtherRoute is l2TestConfig with a second chat route, "other", first.
func l2OtherRoute() string {
	return strings.Replace(fmt.Sprintf(l2TestConfig, ""), `"routes":[`,
		`"routes":[{"name":"other","kind":"chat","path_prefix":"/v1/other/completions","ttl":"1h"},`, 1)
}

// The purge-log position is kept per route (review Z226), and a
// configuration resumes from the earliest of its routes' positions,
// ignoring a route that has none. A configuration pushed to a process
// whose old configuration's VMs still run (draining, or another listener
// with the same L2) adds route "other": its VM serves and caches "other"
// from its first request, but reads the log only from its first tick.
// Meanwhile another proxy purges "other"'s model; the old configuration's
// VM reads that record, skips it (it has no route "other") and moves the
// process's position for "chat" past it. The new VM's first read then
// resumes from "chat"'s position, past the purge, and never applies it:
// the purged answer is served from its L1 until its ttl. (Before Z226 a
// configuration with no position of its own dropped L1 at its first read.)
// RATIONALE's "a route with none is new to the process, and no reader kept
// its entries past a purge" does not hold: the new VM itself kept them.
// Expected: the purged answer is not served; a route with no position
// does not let the configuration resume past records of that route that
// it may have entries for.
func TestFollowup237NewRoutesPurgeSkippedByOldConfigurationIsNeverApplied(t *testing.T) {
	m := newL2Mesh(t, "")
	pushed := mustParse(t, l2OtherRoute())
	m.p[0] = New(pushed, Options{Store: NewMemStore(), Now: m.clock.Now, Rand: seededRand(7)}) // proxy A knows "other"
	m.step(m.p[1].L2Tick())                                                                    // B's old configuration reads the log: a position for "chat"
	m.step(m.p[0].L2Tick())
	m.clock.Advance(DefaultL2SyncInterval)

	// The push: a new VM on B's shared data, the old one still running.
	bNew := New(pushed, Options{Store: m.p[1].store, Now: m.clock.Now, Rand: seededRand(9)})
	other := func() *Request {
		r := bNew.Begin(bNew.routeByName("other"), "POST", "/v1/other/completions", alice)
		bNew.SetBody(r, []byte(chatRequest("hello")))
		return r
	}
	r := other()
	bNew.Lookup(r)
	bNew.AdmitAndStore(r, 200, jsonCT, []byte(chatResponse("world")), OriginUpstream, 10)
	if d := bNew.Lookup(other()); d != Serve {
		t.Fatalf("setup: the new VM's answer is not in L1 (%v)", d)
	}

	m.purgeOnA(`{"route":"other","model":"gpt-4o-mini"}`) // another proxy purges it
	m.step(m.p[1].L2Tick())                               // the old VM reads the record (not its route) and moves on
	for range 3 {                                         // the new VM's first reads
		m.clock.Advance(DefaultL2SyncInterval)
		m.step(bNew.L2Tick())
	}
	if d := bNew.Lookup(other()); d == Serve {
		t.Fatalf("a purge of route \"other\" logged after the new configuration's VM cached its answer was never applied: the purged answer is still served from L1 (the new VM resumed from route \"chat\"'s position, which the old configuration moved past the record)")
	}
}

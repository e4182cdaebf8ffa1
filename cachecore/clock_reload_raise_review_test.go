package cachecore

import (
	"fmt"
	"strings"
	"testing"
	"time"
)

// Guarantee: one request per key reaches the model (RATIONALE "The wall
// clock may step back": the lease horizon is "the longest of any
// configuration of the process", kept in shared data because leases
// outlive a reload). A reload that RAISES a route's coalesce.max_wait
// (10s to 5m): the previous configuration's plugin, still serving the
// requests of its draining connections, read the horizon once at its
// start (SetHorizon, 2×10s, hit_for_miss, background timeout, plus a
// minute) and never reads it again. The new configuration's leader's
// lease, ending 5 m ahead, is beyond that stale horizon: the old plugin
// takes it for one from before a clock step and leads the key a second
// time, sending it to the model next to the new leader.
func TestDiff3ReloadRaisingMaxWaitOldConfigFollowsNewLeader(t *testing.T) {
	cfg := func(wait string) string {
		return `{"upstream_cluster": "models", "routes": [{"name": "chat", "kind": "chat", "path_exact": "/v1/chat/completions",` +
			`"coalesce": {"max_wait": "` + wait + `"}}]}`
	}
	store := NewMemStore()
	clock := newFakeClock()
	old := &testEnv{t: t, cache: New(mustParse(t, cfg("10s")), Options{Store: store, Now: clock.Now, Rand: seededRand(1)}), store: store, clock: clock}
	clock.Advance(time.Second) // the reload: the new configuration's plugin starts
	cur := &testEnv{t: t, cache: New(mustParse(t, cfg("5m")), Options{Store: store, Now: clock.Now, Rand: seededRand(2)}), store: store, clock: clock}
	body := chatRequest("a long answer across a reload that raised max_wait")
	req, _ := cur.lookup("chat", alice, body)
	if role := cur.cache.Join(req, 2, 2); role != RoleLeader {
		t.Fatalf("setup: new configuration's Join = %v, want leader", role)
	}
	clock.Advance(time.Second) // a request on a draining connection of the old configuration
	req, _ = old.lookup("chat", alice, body)
	if role := old.cache.Join(req, 1, 1); role != RoleFollower {
		t.Fatalf("Join under the previous configuration = %v while the reloaded configuration's leader (max_wait 5m) is 1s into its call: want follower (single flight); a second leader sends the key to the model twice", role)
	}
}

// Guarantee: README "Staleness you can see": "An entry that looks stored in
// the future (the wall clock stepped back, or an L2 entry from a proxy
// whose clock runs ahead) counts as age 0", and "Freshness is judged by
// the writer's clock: ttl_slack allows for skew" (l2.ttl_slack up to 1h).
// freshness now refuses any entry stored more than clockSkewMs (10 s)
// after the reader's now: with ttl_slack 30s set for proxies whose clocks
// differ by up to 30 s, an answer stored in L2 by a proxy whose clock
// runs 15 s ahead is refused by the other proxy's freshness check
// (notAcceptable), which asks the model for it again. Before e3ec111 it
// was served as a hit with age 0; with a 9 s skew it still is.
func TestDiff3L2EntryFromProxyWhoseClockRunsAheadIsServed(t *testing.T) {
	m := &l2Mesh{t: t, clock: newFakeClock(), wd: newFakeWebdis()}
	cfg := mustParse(t, fmt.Sprintf(l2TestConfig, `,"ttl_slack":"30s"`))
	ahead := func() time.Time { return m.clock.Now().Add(15 * time.Second) } // proxy 0's clock runs 15 s ahead
	m.p[0] = New(cfg, Options{Store: NewMemStore(), Now: ahead, Rand: seededRand(0)})
	m.p[1] = New(cfg, Options{Store: NewMemStore(), Now: m.clock.Now, Rand: seededRand(1)})
	if cs, _ := m.ask(0, "hello", "world"); !strings.Contains(cs, "fwd=miss") || m.upstream != 1 {
		t.Fatalf("setup: first request %q, %d upstream calls", cs, m.upstream)
	}
	m.clock.Advance(time.Second)
	cs, body := m.ask(1, "hello", "other")
	if !strings.HasPrefix(cs, "modelcache; hit") || m.upstream != 1 {
		t.Fatalf("the other proxy (clock 15 s behind the writer's, ttl_slack 30s): Cache-Status %q, body %q, %d upstream calls; want an L2 hit (age 0) and 1 upstream call", cs, body, m.upstream)
	}
}

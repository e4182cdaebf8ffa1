package cachecore

import (
	"bytes"
	"fmt"
	"strings"
	"testing"
	"time"
)

// Review Z165: cross-proxy single flight (README "Mesh-wide L2").

// flightOnVM starts a request for prompt on the VM c (vm: its id in the
// leases), as l2Mesh.begin does on a proxy's only VM.
func (m *l2Mesh) flightOnVM(c *Cache, vm uint64, id uint32, prompt string) (*Flight, string) {
	req := c.Begin(c.routeByName("chat"), "POST", "/v1/chat/completions", alice)
	f := c.NewFlight(req, vm, id)
	f.RequestHeaders(alice, false, true)
	got, _ := m.step(f.RequestBody([]byte(chatRequest(prompt)), false))
	return f, got
}

// A VM of proxy A traps while its request leads "q" (its local lease and
// the cross-proxy lease are its own). Its follower on another worker of A
// is promoted when the local lease lapses at max_wait (5 s), and its L2
// lookup finds the cross-proxy lease the dead VM took (lease_ttl 10 s):
// it starts a new max_wait of waiting on it, from the promotion. So the
// client, which had already waited 4.9 s, waits until 10 s before its
// request goes upstream — twice max_wait, on a lease its own proxy's dead
// VM holds. README: "Nobody waits longer than coalesce.max_wait"; a
// leader that is gone loses the key "within max_wait". Expected: the
// request's wait ends (served or sent upstream) within max_wait of when
// it began waiting, plus the ticks and l2.timeouts the L2 wait allows.
func TestL2PromotedFollowerWaitsNoLongerThanMaxWait(t *testing.T) {
	m := newL2Mesh(t, "")
	m.wd.clock = m.clock   // Redis expires the dead VM's lease after lease_ttl
	m.ask(0, "warm", "up") // the generations exist
	vm1 := m.p[0]
	vm2 := New(vm1.cfg, Options{Store: vm1.store, Now: m.clock.Now, Rand: seededRand(7)})
	if _, got := m.flightOnVM(vm1, 1, 1, "q"); got != "coalesce.leaders l2.miss l2.lease_won forward" {
		t.Fatalf("VM 1's leader: %s", got)
	}
	// VM 1 traps now: it neither ticks nor answers.
	m.clock.Advance(100 * time.Millisecond)
	f, got := m.flightOnVM(vm2, 2, 1, "q")
	if got != "coalesce.followers wait" {
		t.Fatalf("VM 2's follower: %s", got)
	}
	joined := m.clock.Now()
	maxWait := f.Request().Route.Coalesce.MaxWait
	bound := maxWait + 2*vm2.cfg.TickPeriod + 2*vm2.cfg.L2.Timeout
	var events []string
	for i := 0; i < 150; i++ {
		m.clock.Advance(100 * time.Millisecond)
		m.step(f.KeepLease())
		g, _ := m.step(f.Tick())
		if g == "" {
			continue
		}
		waited := m.clock.Now().Sub(joined)
		events = append(events, fmt.Sprintf("+%v: %s", waited, g))
		if strings.HasSuffix(g, "forward") || strings.HasSuffix(g, "serve") {
			if waited > bound {
				t.Fatalf("the request waited %v before it was sent upstream or served (max_wait %v, bound %v): %q",
					waited, maxWait, bound, events)
			}
			return
		}
	}
	t.Fatalf("the request never ended its wait: %q", events)
}

// The same trap, with two followers on VM 2: the first is promoted at
// 5 s and waits on the dead VM's cross-proxy lease; the second times out
// at its max_wait, goes upstream on its own, and its answer is stored in
// the proxy's L1 at 5.2 s. The promoted request polls only L2 (which the
// second's answer never reached: it made no L2 lookup), never L1: at
// 10 s it asks the model a second time for an answer its own proxy has
// held for almost 5 s. Expected: no second model call while the proxy's
// L1 holds the answer; the waiting request is served it.
func TestL2WaitOnAMeshLeaseIgnoresTheAnswerInL1(t *testing.T) {
	m := newL2Mesh(t, "")
	m.wd.clock = m.clock
	m.ask(0, "warm", "up")
	vm1 := m.p[0]
	vm2 := New(vm1.cfg, Options{Store: vm1.store, Now: m.clock.Now, Rand: seededRand(7)})
	m.flightOnVM(vm1, 1, 1, "q") // leads, then its VM traps
	m.clock.Advance(100 * time.Millisecond)
	f1, _ := m.flightOnVM(vm2, 2, 1, "q")
	m.clock.Advance(100 * time.Millisecond)
	f2, _ := m.flightOnVM(vm2, 2, 2, "q")
	var events []string
	storedAt := time.Duration(-1)
	start := m.clock.Now().Add(-200 * time.Millisecond) // the leader's start
	for i := 0; i < 150; i++ {
		m.clock.Advance(100 * time.Millisecond)
		at := m.clock.Now().Sub(start)
		for n, f := range []*Flight{f1, f2} {
			m.step(f.KeepLease())
			g, _ := m.step(f.Tick())
			if g == "" {
				continue
			}
			events = append(events, fmt.Sprintf("%v F%d: %s", at, n+1, g))
			if !strings.HasSuffix(g, "forward") {
				continue
			}
			if storedAt >= 0 {
				t.Fatalf("F%d went upstream at %v, though the answer has been in this proxy's L1 since %v: %q", n+1, at, storedAt, events)
			}
			m.answer(f, 200, fmt.Sprint("answer ", n+1))
			if cs, _ := m.ask(0, "q", "never asked"); !strings.HasPrefix(cs, "modelcache; hit") || strings.Contains(cs, "l2") {
				t.Fatalf("setup: the answer is not in L1: %q", cs)
			}
			storedAt = at
		}
	}
	if storedAt < 0 {
		t.Fatalf("setup: no answer was stored: %q", events)
	}
}

// A follower that timed out at max_wait goes upstream on its own, and its
// answer is stored in L1 — but never written to L2 (it made no L2 lookup,
// so its generations are unknown). README, write path: "An answer stored
// in L1 is written to L2"; only background refreshes are said not to. With
// its proxy's leader gone (VM trapped, the cross-proxy lease still held
// until lease_ttl), every other proxy waiting on that lease waits its
// whole max_wait and then asks the model again, although this answer
// existed seconds earlier. Expected: the answer is written to L2, and the
// other proxy's waiting leader is served it at its next poll.
func TestL2TimedOutFollowersAnswerReachesL2(t *testing.T) {
	m := newL2Mesh(t, "")
	m.wd.clock = m.clock
	m.ask(0, "warm", "up")
	vm1 := m.p[0]
	vm2 := New(vm1.cfg, Options{Store: vm1.store, Now: m.clock.Now, Rand: seededRand(7)})
	m.flightOnVM(vm1, 1, 1, "q")         // leads across the mesh, then its VM traps
	f, _ := m.flightOnVM(vm2, 2, 1, "q") // follows at once: times out at max_wait
	m.clock.Advance(3 * time.Second)
	b, got := m.begin(1, 1, "q")
	if got != "coalesce.leaders l2.miss l2.lease_lost wait" {
		t.Fatalf("proxy B: %s", got)
	}
	upstream := 0
	answeredAt := time.Duration(-1)
	start := m.clock.Now().Add(-3 * time.Second)
	var events []string
	for i := 0; i < 100; i++ {
		m.clock.Advance(100 * time.Millisecond)
		at := m.clock.Now().Sub(start)
		for n, fl := range []*Flight{f, b} {
			g, _ := m.step(fl.Tick())
			if g == "" {
				continue
			}
			who := [...]string{"A's follower", "B's leader"}[n]
			events = append(events, fmt.Sprintf("%v %s: %s", at, who, g))
			if strings.HasSuffix(g, "forward") {
				upstream++
				w := m.answer(fl, 200, "answer of "+who)
				events = append(events, fmt.Sprintf("%v %s answered: %s", at, who, w))
				if answeredAt < 0 {
					answeredAt = at
				}
			}
			if strings.HasSuffix(g, "serve") && fl == b {
				if _, _, body := m.p[1].HitResponse(b.Request()); !bytes.Contains(body, []byte("answer of A's follower")) {
					t.Fatalf("B served %s", body)
				}
			}
		}
	}
	if upstream != 1 {
		t.Fatalf("%d model calls: the answer A stored at %v never reached L2, and B asked the model again: %q", upstream, answeredAt, events)
	}
}

// An entry copied from L2 is kept in L1 with the writer's stale_until
// (l2Install copies the value whole), not this proxy's: README says a
// copy keeps its writer's ttl but "its stale windows are this proxy's".
// Proxy A (no stale windows) writes; proxy B, whose route has
// stale_while_revalidate and stale_if_error of 10 minutes, copies it. At
// the copy's expiry B's L1 slot is already gone, so B neither serves it
// stale (as it does its own answers) nor keeps it for stale-if-error:
// its client waits for the model. Expected: served stale, as B's own
// entry is.
func TestL2CopyKeepsThisProxysStaleWindows(t *testing.T) {
	m := newL2Mesh(t, "")
	cfgB := mustParse(t, strings.Replace(fmt.Sprintf(l2TestConfig, ""), `"ttl":"1h",`,
		`"ttl":"1h","stale_while_revalidate":"10m","stale_if_error":"10m",`, 1))
	m.p[1] = New(cfgB, Options{Store: NewMemStore(), Now: m.clock.Now, Rand: seededRand(9)})
	// Control: B's own answer is served stale past its ttl.
	m.ask(1, "own", "b's answer")
	m.ask(0, "hello", "world")
	if cs, _ := m.ask(1, "hello", "x"); !strings.Contains(cs, "detail=l2") {
		t.Fatalf("B's copy: %q", cs)
	}
	m.clock.Advance(time.Hour + 5*time.Second)
	if cs, _ := m.ask(1, "own", "fresh"); !strings.Contains(cs, "fwd=stale") {
		t.Fatalf("control: B's own entry: %q", cs)
	}
	before := m.upstream
	cs, body := m.ask(1, "hello", "fresh")
	if !strings.Contains(cs, "fwd=stale") || !bytes.Contains(body, []byte("world")) || m.upstream != before {
		t.Fatalf("B's copy from L2, 5 s past its ttl within B's stale_while_revalidate: %q (%d model calls), want it served stale as B's own entry is",
			cs, m.upstream-before)
	}
}

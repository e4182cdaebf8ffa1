package cachecore

import (
	"fmt"
	"strings"
	"testing"
	"time"
)

// A lease call that Redis carried out but whose answer came too late (a
// timeout): counted as a timeout, and the lease — which may be in Redis —
// is released once the answer is written, so no proxy waits on it.
func TestL2LeaseCallTimeoutCountedAndReleased(t *testing.T) {
	m := newL2Mesh(t, "")
	m.ask(0, "warm", "up") // the generations exist
	f, lease := m.untilLease(50)
	m.wd.do(lease) // Redis sets it...
	m.clock.Advance(DefaultL2Timeout)
	got, _ := m.step(lease.Done(CallResult{Failed: true})) // ...the answer is too late
	if !strings.Contains(got, "l2.timeout") || !strings.Contains(got, "forward") {
		t.Fatalf("lease call timed out: %q", got)
	}
	m.answer(f, 200, "the answer")
	m.step(f.Done())
	for k := range m.wd.kv {
		if strings.Contains(k, ":l:") {
			t.Fatalf("lease %s left in Redis after the answer was written", k)
		}
	}
}

// An L2 value larger than this proxy's route admits (max_entry_bytes) is
// served but not copied into L1.
func TestL2InstallHonoursRouteMaxEntryBytes(t *testing.T) {
	m := newL2Mesh(t, "")
	small := mustParse(t, strings.Replace(fmt.Sprintf(l2TestConfig, ""), `"ttl":"1h",`, `"ttl":"1h","max_entry_bytes":1024,`, 1))
	m.p[1] = New(small, Options{Store: NewMemStore(), Now: m.clock.Now, Rand: seededRand(9)})
	big := strings.Repeat("lorem ipsum ", 200)
	m.ask(0, "hello", big)
	if cs, _ := m.ask(1, "hello", "x"); !strings.Contains(cs, "detail=l2") {
		t.Fatalf("B first: %q", cs)
	}
	if cs, _ := m.ask(1, "hello", "x"); strings.Contains(cs, "hit") && !strings.Contains(cs, "detail=l2") {
		t.Fatalf("an entry over B's max_entry_bytes was copied into B's L1: %q", cs)
	}
}

// untilLease runs a request for "q" on proxy 0 until it dispatches its
// cross-proxy lease (SET NX), which it returns not carried out; the calls
// before it (lookups, generations) are.
func (m *l2Mesh) untilLease(id uint32) (*Flight, *Call) {
	m.t.Helper()
	c := m.p[0]
	req := c.Begin(c.routeByName("chat"), "POST", "/v1/chat/completions", alice)
	f := c.NewFlight(req, 1, id)
	f.RequestHeaders(alice, false, true)
	acts := f.RequestBody([]byte(chatRequest("q")), false)
	var lease *Call
	for len(acts) > 0 {
		a := acts[0]
		acts = acts[1:]
		if a.Kind == ActDispatch {
			if h := a.Call.Headers[1][1]; strings.HasPrefix(h, "/SET/"+DefaultL2Prefix+"l:") { // the lease, not a generation (created with NX EX too)
				lease = a.Call
				continue
			}
			acts = append(acts, a.Call.Done(m.wd.do(a.Call))...)
		}
	}
	if lease == nil {
		m.t.Fatal("no lease call")
	}
	return f, lease
}

// newL2MeshCfg is newL2Mesh with the test configuration rewritten by
// replace (old, new pairs).
func newL2MeshCfg(t *testing.T, l2extra string, replace ...string) *l2Mesh {
	m := &l2Mesh{t: t, clock: newFakeClock(), wd: newFakeWebdis()}
	s := strings.Replace(l2TestConfig, "%s", l2extra, 1)
	for i := 0; i+1 < len(replace); i += 2 {
		s = strings.Replace(s, replace[i], replace[i+1], 1)
	}
	cfg := mustParse(t, s)
	for i := range m.p {
		m.p[i] = New(cfg, Options{Store: NewMemStore(), Now: m.clock.Now, Rand: seededRand(uint64(i))})
	}
	return m
}

// Proxy B's leader waits on proxy A's cross-proxy lease (A's model call
// is slow). The wait on another proxy uses up B's local lease (deadline:
// join + coalesce.max_wait), although B's leader is alive and waiting as
// designed. B's local follower then takes the expired local lease for a
// leader failure: with max_retries 0 it is answered 502 leader_failed —
// a client error although no model call failed at all (A's is still
// running, B's leader never called).
func TestWaitingOnAnotherProxyKeepsTheLocalLease(t *testing.T) {
	m := newL2MeshCfg(t, "", `"max_wait":"5s"}`, `"max_wait":"5s","max_retries":0}`)
	m.ask(0, "warm", "up") // the generations exist
	m.begin(0, 1, "q")     // A leads "q" across the mesh; its model is slow
	b1, got := m.begin(1, 1, "q")
	if got != "coalesce.leaders l2.miss l2.lease_lost wait" {
		t.Fatalf("B1: %s", got)
	}
	for i := 0; i < 20; i++ { // 2 s later, another request for "q" on B
		m.clock.Advance(100 * time.Millisecond)
		m.step(b1.Tick())
	}
	b2, got := m.begin(1, 2, "q")
	if got != "coalesce.followers wait" {
		t.Fatalf("B2: %s", got)
	}
	for i := 0; i < 80; i++ {
		m.clock.Advance(100 * time.Millisecond)
		if g, _ := m.step(b1.Tick()); g != "" {
			t.Logf("B1 at +%v: %s", time.Duration(i+1)*100*time.Millisecond, g)
		}
		for _, a := range b2.Tick() {
			if a.Kind == ActServeLocal {
				t.Fatalf("after %v, B's follower was answered %d: %s", time.Duration(i+1)*100*time.Millisecond, a.Status, a.Body)
			}
			if a.Kind == ActDispatch {
				m.step(a.Call.Done(m.wd.do(a.Call)))
			}
		}
	}
}

// A leader whose answer takes longer than l2.lease_ttl keeps its
// cross-proxy lease while its VM ticks: another proxy that asks meanwhile
// waits for that answer and is served it from L2, rather than finding the
// lease gone, leading, and asking the model a second time.
func TestL2SlowLeaderKeepsTheMeshLease(t *testing.T) {
	// A lease_ttl of whole seconds, and one that is not: Redis keeps a
	// lease for whole seconds, and a renewal due at half of 1.9 s came
	// after a lease of 1 s had lapsed.
	for _, ttl := range []time.Duration{DefaultL2LeaseTTL, 1900 * time.Millisecond} {
		t.Run(ttl.String(), func(t *testing.T) {
			m := newL2Mesh(t, `,"lease_ttl":"`+ttl.String()+`"`)
			m.wd.clock = m.clock // keys expire
			a, got := m.begin(0, 1, "q")
			if got != "coalesce.leaders l2.miss l2.lease_won forward" {
				t.Fatalf("A: %s", got)
			}
			before := m.wd.calls
			for waited := time.Duration(0); waited < 3*ttl; waited += 100 * time.Millisecond {
				m.clock.Advance(100 * time.Millisecond)
				m.step(a.KeepLease()) // A's VM ticks while the model works
			}
			if renewals := m.wd.calls - before; renewals > 6 {
				t.Fatalf("%d calls to keep the lease for %v (lease_ttl %v): one per lease_ttl/2 is enough", renewals, 3*ttl, ttl)
			}
			b, got := m.begin(1, 1, "q")
			if got != "coalesce.leaders l2.miss l2.lease_lost wait" {
				t.Fatalf("B, %v after A led: %s (a second model call)", 3*ttl, got)
			}
			m.answer(a, 200, "the answer")
			m.clock.Advance(time.Second) // past B's backoff
			if got, _ := m.step(b.Tick()); got != "l2.hit coalesce.leaders serve" && got != "l2.hit serve" {
				t.Fatalf("B after A's answer: %q", got)
			}
		})
	}
}

// While the breaker is open (webdis failing), a leader sends no renewals:
// each would wait out l2.write_timeout against a webdis known to fail.
func TestL2LeaseRenewalHonoursTheBreaker(t *testing.T) {
	m := newL2Mesh(t, `,"lease_ttl":"4s"`) // a renewal is due at 2 s, within the breaker's cool-down (5 s)
	a, got := m.begin(0, 1, "q")
	if got != "coalesce.leaders l2.miss l2.lease_won forward" {
		t.Fatalf("A: %s", got)
	}
	m.wd.down = true
	for i := 0; i < DefaultL2Failures; i++ { // other requests open the breaker
		m.begin(0, uint32(10+i), fmt.Sprint("other ", i))
	}
	if m.p[0].l2Allowed() {
		t.Fatal("the breaker did not open")
	}
	before := m.wd.calls
	for i := 0; i < 40; i++ { // past the half of lease_ttl a renewal waits for
		m.clock.Advance(100 * time.Millisecond)
		m.step(a.KeepLease())
	}
	if n := m.wd.calls - before; n != 0 {
		t.Fatalf("%d renewals sent with the breaker open", n)
	}
}

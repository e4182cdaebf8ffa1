package cachecore

import (
	"fmt"
	"strings"
	"testing"
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
			if h := a.Call.Headers[1][1]; strings.HasPrefix(h, "/SET/") && strings.Contains(h, "/NX/EX/") { // the lease, not a generation
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

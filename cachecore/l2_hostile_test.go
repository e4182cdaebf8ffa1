// Hostile cases of the L2 tier (from an adversarial review): each failed
// before its fix.
package cachecore

import (
	"encoding/base64"
	"runtime/debug"
	"strings"
	"testing"
	"time"
)

func newMeshCfg(t *testing.T, cfg string) *l2Mesh {
	m := &l2Mesh{t: t, clock: newFakeClock(), wd: newFakeWebdis()}
	c := mustParse(t, cfg)
	for i := range m.p {
		m.p[i] = New(c, Options{Store: NewMemStore(), Now: m.clock.Now, Rand: seededRand(uint64(i))})
	}
	return m
}

// 1. The purge log stores the purge body verbatim: the tenant's credential.
func TestL2PurgeLogHoldsNoCredential(t *testing.T) {
	m := newL2Mesh(t, "")
	m.ask(0, "hello", "world")
	body := `{"path":"/v1/chat/completions","headers":{"authorization":"Bearer sk-alice"},"body":` + chatRequest("hello") + `}`
	res, err := m.p[0].Purge([]byte(body), "")
	if err != nil {
		t.Fatal(err)
	}
	m.step(res.L2.Done(m.wd.do(res.L2)))
	for _, l := range m.wd.lists {
		for _, it := range l {
			raw, _ := base64.StdEncoding.DecodeString(it)
			if strings.Contains(string(raw), "sk-alice") {
				t.Fatalf("credential in clear in Redis purge log: %q", raw)
			}
		}
	}
}

// 2. README: "delete it — a proxy then starts reading from the new end".
func TestL2PurgeLogDeletedOrTrimmedStillPurgesL1(t *testing.T) {
	m := newL2Mesh(t, "")
	m.step(m.p[1].L2Tick())
	for i := 0; i < 3; i++ { // some history
		res, _ := m.p[0].Purge([]byte(`{"route":"chat","model":"other"}`), "")
		m.step(res.L2.Done(m.wd.do(res.L2)))
	}
	m.clock.Advance(DefaultL2SyncInterval)
	m.step(m.p[1].L2Tick())                      // B's cursor = 3
	delete(m.wd.lists, DefaultL2Prefix+"purges") // operator deletes (or LTRIMs) the log
	m.ask(0, "hello", "world")
	if cs, _ := m.ask(1, "hello", "x"); !strings.Contains(cs, "detail=l2") {
		t.Fatalf("B: %q", cs)
	}
	res, _ := m.p[0].Purge([]byte(`{"path":"/v1/chat/completions","headers":{"authorization":"Bearer sk-alice"},"body":`+chatRequest("hello")+`}`), "")
	m.step(res.L2.Done(m.wd.do(res.L2)))
	for i := 0; i < 5; i++ {
		m.clock.Advance(DefaultL2SyncInterval)
		m.step(m.p[1].L2Tick())
	}
	if cs, body := m.ask(1, "hello", "fresh"); strings.Contains(cs, "hit") {
		t.Fatalf("B still serves the purged entry from its L1 after 5 sync intervals: %q %s", cs, body)
	}
}

// 3. A generation counter lost (allkeys-lru eviction, Redis restart from an
// older RDB, failover) reads as 0: values purged under gen 0 come back.
func TestL2LostGenerationDoesNotResurrectValues(t *testing.T) {
	m := newL2Mesh(t, "")
	m.ask(0, "hello", "old")
	res, _ := m.p[0].Purge([]byte(`{"all":true}`), "")
	m.step(res.L2.Done(m.wd.do(res.L2)))
	delete(m.wd.kv, DefaultL2Prefix+"g") // evicted by allkeys-lru (README's advice)
	if cs, body := m.ask(1, "hello", "fresh"); strings.Contains(cs, "hit") {
		t.Fatalf("purged value served again: %q %s", cs, body)
	}
}

// 4. Single-entry purge (DEL) racing a write-behind issued before it.
func TestL2EntryPurgeBeatsInFlightWriteBehind(t *testing.T) {
	m := newL2Mesh(t, "")
	b, _ := m.begin(1, 1, "hello") // B leads, forwards
	_, acts := b.ResponseHeaders(200, jsonCT, OriginUpstream, false)
	m.step(acts)
	_, acts = b.Complete(jsonCT, []byte(chatResponse("bad answer")), 10, nil)
	var held []*Call
	for _, a := range acts {
		if a.Kind == ActDispatch {
			held = append(held, a.Call) // the SETEX, in flight
		}
	}
	// Operator purges the bad answer on A while B's SETEX is in flight.
	res, _ := m.p[0].Purge([]byte(`{"path":"/v1/chat/completions","headers":{"authorization":"Bearer sk-alice"},"body":`+chatRequest("hello")+`}`), "")
	m.step(res.L2.Done(m.wd.do(res.L2)))
	for _, c := range held {
		m.step(c.Done(m.wd.do(c)))
	}
	if cs, body := m.ask(0, "hello", "fresh"); strings.Contains(cs, "hit") {
		t.Fatalf("purged answer back from L2 on A: %q %s", cs, body)
	}
}

const l2VersionCfg = `{"upstream_cluster":"model","l2":{"cluster":"webdis"},
 "purge":{"path":"/purge","token":"0123456789abcdef"},
 "routes":[{"name":"chat","kind":"chat","path_prefix":"/v1/chat/completions","ttl":"1h",%s"coalesce":{"enabled":true,"max_wait":"5s"}}]}`

func (m *l2Mesh) askBody(p int, prompt string, hs [][2]string, body string) (string, []byte) {
	c := m.p[p]
	req := c.Begin(c.routeByName("chat"), "POST", "/v1/chat/completions", alice)
	m.nextID++
	f := c.NewFlight(req, uint64(p+1), m.nextID)
	f.RequestHeaders(alice, false, true)
	return m.runWith(f, f.RequestBody([]byte(chatRequest(prompt)), false), hs, []byte(body))
}

// 5. Versioned route: an entry purge on a proxy that has not seen the
// version DELs the wrong key; the other proxies get the entry back from L2.
func TestL2EntryPurgeOnVersionedRouteReachesL2(t *testing.T) {
	m := newMeshCfg(t, strings.Replace(l2VersionCfg, "%s", `"model_version":{"header":"x-v"},`, 1))
	hs := hdr("content-type", "application/json", "x-v", "v7")
	m.askBody(1, "hello", hs, chatResponse("bad")) // B answers and writes L2
	res, _ := m.p[0].Purge([]byte(`{"path":"/v1/chat/completions","headers":{"authorization":"Bearer sk-alice"},"body":`+chatRequest("hello")+`}`), "")
	m.step(res.L2.Done(m.wd.do(res.L2)))
	n := 0
	for k := range m.wd.kv {
		if strings.Contains(k, ":e:") {
			n++
		}
	}
	if n != 0 {
		t.Fatalf("purged entry still in L2 (%d entries): any proxy that knows v7 serves it", n)
	}
}

// 6. body_path-versioned route: an L2 hit is never copied into L1; local
// followers woken "stored" find nothing and count leader failures.
func TestL2HitInstalledOnBodyPathVersionedRoute(t *testing.T) {
	m := newMeshCfg(t, strings.Replace(l2VersionCfg, "%s", `"model_version":{"body_path":"system_fingerprint"},`, 1))
	fp := func(s string) string {
		return strings.Replace(chatResponse(s), `{"id"`, `{"system_fingerprint":"fp_9","id"`, 1)
	}
	m.askBody(0, "hello", jsonCT, fp("world"))
	m.askBody(1, "other", jsonCT, fp("x")) // B has seen fp_9
	cs, _ := m.askBody(1, "hello", jsonCT, fp("again"))
	if !strings.Contains(cs, "detail=l2") {
		t.Fatalf("B first: %q", cs)
	}
	calls := m.wd.calls
	cs, _ = m.askBody(1, "hello", jsonCT, fp("again"))
	if !strings.Contains(cs, "hit") || strings.Contains(cs, "l2") || m.wd.calls != calls {
		t.Fatalf("L2 hit was not copied into B's L1: second request %q (webdis calls %d->%d)", cs, calls, m.wd.calls)
	}
}

// 7. The client goes away while the lease call is in flight: SET NX landed
// in Redis, nobody releases it; other proxies wait max_wait.
func TestL2LeaseReleasedWhenClientGoesDuringLeaseCall(t *testing.T) {
	m := newL2Mesh(t, "")
	f, lease := m.untilLease(1)
	m.step(f.Done()) // client gone: the host calls Gone, not Done
	if lease.Gone == nil {
		t.Fatal("the lease call has nothing to do once its request is gone")
	}
	m.step(lease.Gone(m.wd.do(lease)))
	for k := range m.wd.kv {
		if strings.Contains(k, ":l:") {
			b, got := m.begin(1, 1, "q")
			waited := 0
			for ; waited < 100 && !strings.Contains(got, "forward"); waited++ {
				m.clock.Advance(100 * time.Millisecond)
				got, _ = m.step(b.Tick())
			}
			t.Fatalf("orphan lease %s left in Redis; proxy B waited %dms before going upstream", k, waited*100)
		}
	}
}

func TestL2BodyPathFollowersNeverGetLeaderFailed(t *testing.T) {
	m := newMeshCfg(t, strings.Replace(l2VersionCfg, "%s", `"model_version":{"body_path":"system_fingerprint"},`, 1))
	fp := func(s string) string {
		return strings.Replace(chatResponse(s), `{"id"`, `{"system_fingerprint":"fp_9","id"`, 1)
	}
	m.askBody(0, "hello", jsonCT, fp("world"))
	m.askBody(1, "other", jsonCT, fp("x")) // B has seen fp_9
	c := m.p[1]
	var fs []*Flight
	var first []Action
	for i := 0; i < 5; i++ {
		req := c.Begin(c.routeByName("chat"), "POST", "/v1/chat/completions", alice)
		f := c.NewFlight(req, 2, uint32(100+i))
		f.RequestHeaders(alice, false, true)
		acts := f.RequestBody([]byte(chatRequest("hello")), false)
		if i == 0 {
			first = acts // the leader's lookup, not run yet
		} else {
			m.step(acts)
		}
		fs = append(fs, f)
	}
	got, _ := m.step(first)
	t.Logf("leader: %s", got)
	served := map[int]string{0: got}
	for round := 0; round < 6; round++ {
		var pending [][]Action
		var who []int
		for i := 1; i < 5; i++ { // the wake reaches every follower at once
			if _, done := served[i]; done {
				continue
			}
			acts := fs[i].Wake(OutcomeStored, 0)
			for _, a := range acts {
				if a.Kind == ActServeLocal {
					served[i] = "LOCAL " + string(a.Body)
				}
			}
			pending, who = append(pending, acts), append(who, i)
		}
		for k, acts := range pending { // then the promoted one's L2 lookup answers
			g, _ := m.step(acts)
			if strings.Contains(g, "serve") {
				served[who[k]] = g
			}
		}
	}
	for i, s := range served {
		if strings.HasPrefix(s, "LOCAL") {
			t.Errorf("follower %d got a local error answer although every leader was served: %s", i, s)
		}
	}
	t.Logf("%v", served)
}

func TestL2EntryPurgeFromLogOnVersionedRoute(t *testing.T) {
	m := newMeshCfg(t, strings.Replace(l2VersionCfg, "%s", `"model_version":{"header":"x-v"},`, 1))
	hs := hdr("content-type", "application/json", "x-v", "v7")
	m.step(m.p[1].L2Tick())
	m.askBody(1, "hello", hs, chatResponse("bad"))
	res, _ := m.p[0].Purge([]byte(`{"path":"/v1/chat/completions","headers":{"authorization":"Bearer sk-alice"},"body":`+chatRequest("hello")+`}`), "")
	m.step(res.L2.Done(m.wd.do(res.L2)))
	m.clock.Advance(2 * DefaultL2SyncInterval)
	m.step(m.p[1].L2Tick())
	if cs, body := m.askBody(1, "hello", hs, chatResponse("fresh")); strings.Contains(cs, "hit") {
		t.Fatalf("B after the purge (applied from the log): %q %s", cs, body)
	}
}

// stepWakes runs acts like step and also returns the outcome of every
// wake message the leader sent.
func (m *l2Mesh) stepWakes(acts []Action) (string, []Outcome) {
	var seen []string
	var wakes []Outcome
	for len(acts) > 0 {
		a := acts[0]
		acts = acts[1:]
		switch a.Kind {
		case ActDispatch:
			acts = append(acts, a.Call.Done(m.wd.do(a.Call))...)
		case ActCount:
			seen = append(seen, EventNames[a.Event])
		case ActWake:
			_, o, _, ok := DecodeWake(a.Message)
			if !ok {
				m.t.Fatalf("bad wake message %q", a.Message)
			}
			wakes = append(wakes, o)
		case ActForward:
			seen = append(seen, "forward")
		case ActServeEntry:
			seen = append(seen, "serve")
		}
	}
	return strings.Join(seen, " "), wakes
}

// An L2 hit that cannot be copied into L1 (here: the model was purged on
// this proxy while the lookup was under way) is served, but its local
// followers are not told "stored": they find L2 themselves, and none gets
// a leader_failed answer.
func TestL2HitNotInstalledNeverFailsLocalFollowers(t *testing.T) {
	m := newL2Mesh(t, `,"lease_ttl":"10s"`)
	m.ask(0, "hello", "world") // in L2
	m.ask(1, "other", "x")     // B knows the model
	c := m.p[1]
	var fs []*Flight
	var first []Action
	for i := 0; i < 4; i++ {
		req := c.Begin(c.routeByName("chat"), "POST", "/v1/chat/completions", alice)
		f := c.NewFlight(req, 2, uint32(100+i))
		f.RequestHeaders(alice, false, true)
		acts := f.RequestBody([]byte(chatRequest("hello")), false)
		if i == 0 {
			first = acts
		} else if got, _ := m.step(acts); !strings.HasSuffix(got, "wait") {
			t.Fatalf("follower %d: %q", i, got)
		}
		fs = append(fs, f)
	}
	if err := c.PurgeModel("chat", fs[0].Request().Model); err != nil { // local only, while the lookup is out
		t.Fatal(err)
	}
	got, wakes := m.stepWakes(first)
	if !strings.Contains(got, "serve") {
		t.Fatalf("leader: %q", got)
	}
	for _, o := range wakes {
		if o == OutcomeStored {
			t.Fatalf("followers told %q although nothing was stored in L1 (leader: %q)", o, got)
		}
	}
	served := map[int]bool{}
	for round := 0; round < 8 && len(served) < 3; round++ {
		for i := 1; i < 4; i++ {
			if served[i] {
				continue
			}
			o := OutcomeStored
			if len(wakes) > 0 {
				o = wakes[0]
			}
			acts := fs[i].Wake(o, 0)
			for _, a := range acts {
				if a.Kind == ActServeLocal {
					t.Fatalf("follower %d got a local answer %d %s", i, a.Status, a.Body)
				}
			}
			g, w := m.stepWakes(acts)
			if strings.Contains(g, "serve") {
				served[i] = true
				wakes = w
			}
		}
	}
	if len(served) != 3 || m.upstream != 2 {
		t.Fatalf("followers served %v, upstream calls %d", served, m.upstream)
	}
}

// webdis answering a deeply nested body (a JSON bomb) to a lookup: refused
// before gjson's recursive validator sees it, with a 1 MiB stack.
func TestL2LookupRefusesJSONBomb(t *testing.T) {
	body := []byte(`{"MGET":` + strings.Repeat("[", 200000) + strings.Repeat("]", 200000) + `}`)
	if checkJSON(body) != ReasonTooDeep {
		t.Fatal("checkJSON would have refused it")
	}
	defer debug.SetMaxStack(debug.SetMaxStack(1 << 20))
	if _, ok := parseL2Lookup(body, 1<<30); ok {
		t.Fatal("bomb accepted")
	}
}

// The same for the purge log's reads.
func TestL2SyncRefusesJSONBomb(t *testing.T) {
	m := newL2Mesh(t, "")
	m.step(m.p[1].L2Tick()) // cursor set
	m.clock.Advance(DefaultL2SyncInterval)
	acts := m.p[1].L2Tick()
	if len(acts) != 1 || acts[0].Kind != ActDispatch {
		t.Fatalf("no log read: %v", acts)
	}
	body := []byte(`{"LRANGE":` + strings.Repeat("[", 200000) + strings.Repeat("]", 200000) + `}`)
	defer debug.SetMaxStack(debug.SetMaxStack(1 << 20))
	got, _ := m.step(acts[0].Call.Done(CallResult{Status: 200, Body: body}))
	if !strings.Contains(got, "l2.error") {
		t.Fatalf("bomb not counted as an L2 error: %q", got)
	}
}

// An answer far larger than any value L2 may hold is refused as an error
// (counted), whatever its shape.
func TestL2OversizedLookupAnswerIsAnError(t *testing.T) {
	m := newL2Mesh(t, `,"max_entry_bytes":2048`)
	c := m.p[0]
	req := c.Begin(c.routeByName("chat"), "POST", "/v1/chat/completions", alice)
	f := c.NewFlight(req, 1, 1)
	f.RequestHeaders(alice, false, true)
	var lookup *Call
	for _, a := range f.RequestBody([]byte(chatRequest("q")), false) {
		if a.Kind == ActDispatch {
			lookup = a.Call
		}
	}
	if lookup == nil {
		t.Fatal("no lookup")
	}
	body := []byte(`{"MGET":["1","1","` + strings.Repeat("A", 64<<10) + `",null]}`)
	got, _ := m.step(lookup.Done(CallResult{Status: 200, Body: body}))
	if !strings.Contains(got, "l2.error") || !strings.Contains(got, "forward") {
		t.Fatalf("oversized answer: %q", got)
	}
}

package cachecore

import (
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"
	"time"
)

// The randomized model-based test of the request protocol: many requests
// over a few keys and two tenants, across several simulated workers (one
// Cache each, over one MemStore, as Envoy's workers share one shared-data
// map), in random interleavings of arrivals, upstream answers (stored,
// failed, refused, aborted), wake-ups (delivered or lost), client aborts,
// ticks and the passing of time (lease and entry expiry). After every step
// it checks the protocol's invariants:
//
//  1. never two live leaders for one key;
//  2. every follower ends served, leading or forwarded within max_wait
//     (plus the tick that notices it);
//  3. no answer crosses a namespace (a tenant only ever gets its own);
//  4. nothing refused is ever served from the cache, nor anything expired
//     (the route serves nothing stale).

const protoModelConfig = `{"tick_period":"100ms","routes":[{"name":"chat","kind":"chat","path_prefix":"/v1/chat/completions",
  "ttl":"2s","coalesce":{"enabled":true,"max_wait":"1s","max_retries":1,"hit_for_miss":"500ms"}}]}`

const (
	modelWorkers  = 3
	modelKeys     = 3
	modelTenants  = 2
	modelTickMs   = 100
	modelMaxWait  = 1000
	modelLeaseLen = 1000 // lease deadline: max_wait from acquisition
)

type modelWorker struct {
	vm    uint64
	cache *Cache
	queue [][]byte
	next  int64 // next tick (ms)
}

type modelReq struct {
	id          uint32
	w           int
	key, tenant int
	req         *Request
	fl          *Flight
	following   bool
	waitSince   int64
	upstream    bool  // an upstream answer is outstanding
	slow        bool  // the upstream takes long (past max_wait, often)
	leadSince   int64 // when it became leader (if leading)
	wasLeading  bool
	done        bool
	servedCount int
}

type protoModel struct {
	t       testing.TB
	rng     *rand.Rand
	clock   *fakeClock
	workers []*modelWorker
	reqs    []*modelReq
	nextID  uint32
	log     []string
	// mutate, if set, tampers with the actions before the model performs
	// them (to show the test catches a broken protocol).
	mutate func(m *protoModel, r *modelReq, acts []Action) []Action
	seen   map[string]int // what happened, to show the run was not vacuous
}

func newProtoModel(t testing.TB, seed uint64) *protoModel {
	store := NewMemStore()
	clock := newFakeClock()
	m := &protoModel{t: t, rng: rand.New(rand.NewPCG(seed, seed^0xdeadbeef)), clock: clock, seen: map[string]int{}}
	cfg := mustParse(t, protoModelConfig)
	for i := 0; i < modelWorkers; i++ {
		c := New(cfg, Options{Store: store, Now: clock.Now, Rand: seededRand(seed + uint64(i))})
		m.workers = append(m.workers, &modelWorker{vm: uint64(i + 1), cache: c, next: clock.Now().UnixMilli() + modelTickMs})
	}
	return m
}

func (m *protoModel) now() int64 { return m.clock.Now().UnixMilli() }

func (m *protoModel) fail(format string, args ...any) {
	m.t.Helper()
	tail := m.log
	if len(tail) > 40 {
		tail = tail[len(tail)-40:]
	}
	m.t.Fatalf("%s\nlast steps:\n  %s", fmt.Sprintf(format, args...), strings.Join(tail, "\n  "))
}

func (m *protoModel) note(format string, args ...any) {
	m.log = append(m.log, fmt.Sprintf("t=%d ", m.now()%100000)+fmt.Sprintf(format, args...))
}

func modelAnswer(tenant, key int) string { return fmt.Sprintf("answer tenant=%d key=%d", tenant, key) }

var modelTenantHeaders = [modelTenants][][2]string{alice, bob}

// arrive starts a request on a random worker.
func (m *protoModel) arrive() {
	w := m.rng.IntN(modelWorkers)
	r := &modelReq{id: m.nextID + 1, w: w, key: m.rng.IntN(modelKeys), tenant: m.rng.IntN(modelTenants)}
	m.nextID++
	c := m.workers[w].cache
	route := c.routeByName("chat")
	r.req = c.Begin(route, "POST", "/v1/chat/completions", modelTenantHeaders[r.tenant])
	r.fl = c.NewFlight(r.req, m.workers[w].vm, r.id)
	m.reqs = append(m.reqs, r)
	m.note("req %d arrives on w%d (tenant %d key %d)", r.id, w, r.tenant, r.key)
	if step, acts := r.fl.RequestHeaders(modelTenantHeaders[r.tenant], false, true); step != ReqHoldCopy || len(acts) != 0 {
		m.fail("req %d: request headers: %d %v", r.id, step, acts)
	}
	m.perform(r, r.fl.RequestBody([]byte(chatRequest(fmt.Sprint("question ", r.key))), false))
}

func (m *protoModel) serveEntry(r *modelReq) {
	if e := r.req.Entry; e == nil || e.FreshUntil <= m.now() {
		m.fail("req %d served (%s) no fresh entry (the route has no stale serving)", r.id, r.req.Status)
	}
	_, _, body := m.workers[r.w].cache.HitResponse(r.req)
	b := string(body)
	if strings.Contains(b, "refused") {
		m.fail("req %d served a refused answer: %s", r.id, b)
	}
	if !strings.Contains(b, quote(modelAnswer(r.tenant, r.key))) {
		m.fail("req %d (tenant %d key %d) served another namespace's or key's answer: %s", r.id, r.tenant, r.key, b)
	}
	m.note("req %d served (%s)", r.id, r.req.Status)
	m.seen["served "+r.req.Status.String()]++
	r.servedCount++
	m.resolve(r)
}

// resolve ends a request's wait (if it waited), checking max_wait.
func (m *protoModel) resolve(r *modelReq) {
	if r.following {
		if waited := m.now() - r.waitSince; waited > modelMaxWait+modelTickMs {
			m.fail("req %d followed for %d ms, max_wait is %d", r.id, waited, modelMaxWait)
		}
		r.following = false
	}
	if r.upstream {
		return
	}
	r.done = true
}

func (m *protoModel) perform(r *modelReq, acts []Action) {
	if m.mutate != nil {
		acts = m.mutate(m, r, acts)
	}
	for _, a := range acts {
		switch a.Kind {
		case ActWait:
			if !r.following {
				r.following, r.waitSince = true, m.now()
			}
			m.note("req %d follows", r.id)
		case ActServeEntry:
			m.serveEntry(r)
		case ActServeLocal:
			if strings.Contains(string(a.Body), "refused") || a.CacheStatus != StatusLeaderFailed {
				m.fail("req %d: local answer %s %s", r.id, a.CacheStatus, a.Body)
			}
			m.note("req %d answered leader_failed", r.id)
			m.seen["served leader_failed"]++
			m.resolve(r)
		case ActForward:
			r.upstream, r.slow = true, m.rng.IntN(4) == 0
			m.note("req %d forwarded (leading: %v)", r.id, r.fl.Leading())
			m.resolve(r)
		case ActWake:
			for _, vm := range a.VMs {
				w := m.workers[vm-1]
				w.queue = append(w.queue, a.Message)
			}
		case ActCount:
			m.seen[EventNames[a.Event]]++
		case ActLog, ActRefused, ActStored, ActNoteStore, ActInternal:
		default:
			m.fail("req %d: unexpected action %d", r.id, a.Kind)
		}
	}
	m.checkLeaders(r)
}

// checkLeaders: invariant 1, whenever r may have become a leader.
func (m *protoModel) checkLeaders(r *modelReq) {
	if r.fl == nil || !r.fl.Leading() {
		r.wasLeading = false
		return
	}
	if !r.wasLeading {
		r.wasLeading, r.leadSince = true, m.now()
	}
	fp := r.req.LeaseFP()
	for _, o := range m.reqs {
		if o == r || o.fl == nil || !o.fl.Leading() || o.req.LeaseFP() != fp {
			continue
		}
		// A leader whose lease expired (a slow upstream) may still think
		// it leads; two live leases for one key must never exist.
		if m.now() < o.leadSince+modelLeaseLen && m.now() < r.leadSince+modelLeaseLen {
			m.fail("two live leaders for one key: req %d (since %d) and req %d (since %d)", o.id, o.leadSince, r.id, r.leadSince)
		}
	}
}

// answer completes one outstanding upstream request at random.
func (m *protoModel) answer(r *modelReq) {
	r.upstream = false
	status, body, refusable := 200, chatResponse(modelAnswer(r.tenant, r.key)), false
	switch p := m.rng.IntN(100); {
	case p < 15: // the client or the upstream aborts: never stored
		m.note("req %d upstream aborted", r.id)
		m.seen["upstream abort"]++
		m.perform(r, r.fl.Done())
		r.done = true
		return
	case p < 30:
		status, body, refusable = 500, chatResponse("refused: server error"), true
	case p < 40: // a truncated answer: refused by admission
		body = strings.Replace(chatResponse("refused: truncated "+modelAnswer(r.tenant, r.key)), `"stop"`, `"length"`, 1)
		refusable = true
	}
	headers := append(hdr("content-length", fmt.Sprint(len(body))), jsonCT...)
	step, acts := r.fl.ResponseHeaders(status, headers, OriginUpstream, false)
	m.perform(r, acts)
	if step == RespHold {
		done, acts := r.fl.Complete(headers, []byte(body), 5, nil)
		if done == Completed && refusable {
			m.fail("req %d: a refused answer was stored", r.id)
		}
		m.perform(r, acts)
	} else if step != RespPass || !refusable {
		m.fail("req %d: response headers step %d", r.id, step)
	}
	m.note("req %d upstream answered %d", r.id, status)
	if r.fl.Leading() {
		m.fail("req %d still leads after its response", r.id)
	}
	r.done = true
}

// deliver pops one wake-up of worker w; lost is a wake-up that never
// arrives (its followers must notice on a tick).
func (m *protoModel) deliver(w int, lost bool) {
	wk := m.workers[w]
	msg := wk.queue[0]
	wk.queue = wk.queue[1:]
	if lost {
		m.seen["lost wake-up"]++
		m.note("wake-up to w%d lost", w)
		return
	}
	fp, o, status, ok := DecodeWake(msg)
	if !ok {
		m.fail("undecodable wake-up %x", msg)
	}
	m.note("w%d woken: %s", w, o)
	for _, r := range m.reqs {
		if r.w == w && r.following && !r.done && r.req.LeaseFP() == fp {
			m.perform(r, r.fl.Wake(o, status))
		}
	}
}

func (m *protoModel) tick(w int) {
	m.workers[w].next = m.now() + modelTickMs
	for _, r := range m.reqs {
		if r.w == w && r.following && !r.done {
			m.perform(r, r.fl.Tick())
		}
	}
}

// advance moves time on by up to one tick period, ticking the workers
// at their tick times (Envoy's ticks are reliable; wake-ups are not).
func (m *protoModel) advance(ms int64) {
	target := m.now() + ms
	for {
		w, next := -1, target
		for i, wk := range m.workers {
			if wk.next <= next {
				w, next = i, wk.next
			}
		}
		if w < 0 {
			break
		}
		m.clock.Advance(time.Duration(next-m.now()) * time.Millisecond)
		m.tick(w)
	}
	m.clock.Advance(time.Duration(target-m.now()) * time.Millisecond)
	for _, r := range m.reqs {
		if r.following && !r.done && m.now()-r.waitSince > modelMaxWait+modelTickMs {
			m.fail("req %d still follows after %d ms", r.id, m.now()-r.waitSince)
		}
	}
}

func (m *protoModel) live(f func(*modelReq) bool) []*modelReq {
	var out []*modelReq
	for _, r := range m.reqs {
		if !r.done && f(r) {
			out = append(out, r)
		}
	}
	return out
}

// step runs one random event.
func (m *protoModel) step(arrivals bool) {
	switch p := m.rng.IntN(100); {
	case p < 30 && arrivals:
		m.arrive()
	case p < 50:
		if ups := m.live(func(r *modelReq) bool { return r.upstream }); len(ups) > 0 {
			if r := ups[m.rng.IntN(len(ups))]; !r.slow || m.rng.IntN(20) == 0 {
				m.answer(r)
			}
		}
	case p < 70:
		w := m.rng.IntN(modelWorkers)
		if len(m.workers[w].queue) > 0 {
			m.deliver(w, m.rng.IntN(5) == 0)
		}
	case p < 75:
		if fs := m.live(func(r *modelReq) bool { return r.following }); len(fs) > 0 {
			r := fs[m.rng.IntN(len(fs))]
			m.note("req %d: client gone while following", r.id)
			m.seen["follower abort"]++
			m.perform(r, r.fl.Done())
			r.following = false
			r.done = true
		}
	case p < 80:
		m.tick(m.rng.IntN(modelWorkers))
	default:
		m.advance(1 + m.rng.Int64N(modelTickMs))
	}
}

// drain ends the run: no more arrivals; everything outstanding completes
// and every follower must be resolved within max_wait.
func (m *protoModel) drain() {
	for i := 0; i < 10000; i++ {
		if len(m.live(func(*modelReq) bool { return true })) == 0 {
			return
		}
		m.step(false)
	}
	for _, r := range m.live(func(*modelReq) bool { return true }) {
		m.fail("req %d never ended (following %v, upstream %v)", r.id, r.following, r.upstream)
	}
}

func runProtoModel(t testing.TB, seed uint64, steps int, mutate func(*protoModel, *modelReq, []Action) []Action) map[string]int {
	m := newProtoModel(t, seed)
	m.mutate = mutate
	for i := 0; i < steps; i++ {
		m.step(true)
	}
	m.drain()
	return m.seen
}

func TestProtocolModel(t *testing.T) {
	seeds := 40
	if testing.Short() {
		seeds = 5
	}
	seen := map[string]int{}
	for seed := 1; seed <= seeds; seed++ {
		for k, v := range runProtoModel(t, uint64(seed), 600, nil) {
			seen[k] += v
		}
	}
	t.Logf("%v", seen)
	// The runs reach every part of the protocol.
	for _, k := range []string{"served hit", "served collapsed", "served leader_failed", "coalesce.leaders",
		"coalesce.followers", "coalesce.promoted", "coalesce.leader_failures", "coalesce.timeouts",
		"coalesce.retries_exhausted", "coalesce.hit_for_miss", "coalesce.tick_wakeups",
		"lost wake-up", "follower abort", "upstream abort"} {
		if seen[k] == 0 {
			t.Errorf("no run reached %q", k)
		}
	}
}

// FuzzProtocol runs the model test on any seed (make fuzz runs it at
// length).
func FuzzProtocol(f *testing.F) {
	for _, s := range []uint64{1, 2, 3, 42} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, seed uint64) {
		runProtoModel(t, seed, 400, nil)
	})
}

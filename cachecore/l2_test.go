package cachecore

import (
	"bytes"
	"encoding/base64"
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"
)

// fakeWebdis answers the filter's webdis calls from a map, as webdis with
// ".raw" relays Redis: enough of MGET, SETEX, SET (NX, XX, EX, PX,
// KEEPTTL, in any order), EXPIRE, DEL and INCR. ttl holds the expiry a
// key was last given (seconds; none: it never expires), as Redis would
// set, keep and clear it. Keys expire only when the test gives it a clock
// (then a key given an expiry is gone that many seconds after, as each
// call finds).
type fakeWebdis struct {
	kv    map[string][]byte
	ttl   map[string]int64
	clock *fakeClock
	given map[string]time.Time // when ttl was given (with a clock)
	lists map[string][]string
	down  bool
	calls int
	// failNext fails that many calls (a transport failure), then answers.
	failNext int
	// seen, if set, is shown every call.
	seen func(*Call)
}

func newFakeWebdis() *fakeWebdis {
	return &fakeWebdis{kv: map[string][]byte{}, ttl: map[string]int64{}, lists: map[string][]string{}, given: map[string]time.Time{}}
}

// expireIn gives key an expiry of s seconds from now.
func (w *fakeWebdis) expireIn(key string, s int64) {
	w.ttl[key] = s
	if w.clock != nil {
		w.given[key] = w.clock.Now()
	}
}

// lapse takes out the keys whose expiry passed (with a clock).
func (w *fakeWebdis) lapse() {
	if w.clock == nil {
		return
	}
	for k, s := range w.ttl {
		if at, ok := w.given[k]; ok && !w.clock.Now().Before(at.Add(time.Duration(s)*time.Second)) {
			delete(w.kv, k)
			delete(w.ttl, k)
			delete(w.given, k)
		}
	}
}

func (w *fakeWebdis) do(call *Call) CallResult {
	w.calls++
	if w.seen != nil {
		w.seen(call)
	}
	w.lapse()
	if w.down || w.failNext > 0 {
		w.failNext--
		return CallResult{Failed: true}
	}
	var method, path string
	for _, h := range call.Headers {
		switch h[0] {
		case ":method":
			method = h[1]
		case ":path":
			path = h[1]
		}
	}
	args := strings.Split(strings.TrimSuffix(strings.TrimPrefix(path, "/"), ".raw"), "/")
	if method == "PUT" {
		args = append(args, string(call.Body))
	}
	out := ""
	switch args[0] {
	case "MGET": // JSON, as the filter asks
		var vs []string
		for _, k := range args[1:] {
			if v, ok := w.kv[k]; ok {
				vs = append(vs, strconv.Quote(string(v)))
			} else {
				vs = append(vs, "null")
			}
		}
		out = `{"MGET":[` + strings.Join(vs, ",") + `]}`
	case "SETEX":
		s, err := strconv.ParseInt(args[2], 10, 64)
		if err != nil || s <= 0 {
			out = "-ERR invalid expire time in 'setex' command\r\n"
			break
		}
		w.kv[args[1]] = []byte(args[3])
		w.expireIn(args[1], s)
		out = "+OK\r\n"
	case "SET": // SET key value [NX|XX] [EX s|PX ms|KEEPTTL], options in any order
		out = w.set(args[1], args[2], args[3:])
	case "EXPIRE":
		// EXPIRE key seconds [GT]: with GT, only a later expiry is set,
		// and a key without one counts as never expiring (Redis 7).
		s, err := strconv.ParseInt(args[2], 10, 64)
		_, ok := w.kv[args[1]]
		old, volatile := w.ttl[args[1]]
		gt := len(args) == 4 && strings.EqualFold(args[3], "GT")
		switch {
		case err != nil || len(args) != 3 && !gt:
			out = "-ERR syntax error\r\n"
		case !ok, gt && (!volatile || s <= old):
			out = ":0\r\n"
		default:
			w.expireIn(args[1], s)
			out = ":1\r\n"
		}
	case "DEL":
		n := 0
		for _, k := range args[1:] {
			if _, ok := w.kv[k]; ok {
				delete(w.kv, k)
				n++
			}
			delete(w.ttl, k)
		}
		out = ":" + strconv.Itoa(n) + "\r\n"
	case "INCR": // keeps the key's expiry; a missing key is created at 1, with none
		if _, ok := w.kv[args[1]]; !ok {
			delete(w.ttl, args[1])
		}
		n, _ := strconv.Atoi(string(w.kv[args[1]]))
		n++
		w.kv[args[1]] = []byte(strconv.Itoa(n))
		out = ":" + strconv.Itoa(n) + "\r\n"
	case "RPUSH":
		w.lists[args[1]] = append(w.lists[args[1]], args[2])
		out = ":" + strconv.Itoa(len(w.lists[args[1]])) + "\r\n"
	case "LLEN": // JSON
		out = `{"LLEN":` + strconv.Itoa(len(w.lists[args[1]])) + `}`
	case "LRANGE": // JSON; non-negative indexes only
		l := w.lists[args[1]]
		from, _ := strconv.Atoi(args[2])
		to, _ := strconv.Atoi(args[3])
		var vs []string
		for i := from; i <= to && i < len(l); i++ {
			vs = append(vs, strconv.Quote(l[i]))
		}
		out = `{"LRANGE":[` + strings.Join(vs, ",") + `]}`
	default:
		out = "-ERR unknown command\r\n"
	}
	return CallResult{Status: 200, Headers: [][2]string{{":status", "200"}}, Body: []byte(out)}
}

// set is Redis' SET with its options: NX or XX, GET, and EX, PX or
// KEEPTTL (none of those: the key loses its expiry), in any order.
func (w *fakeWebdis) set(key, value string, opts []string) string {
	var nx, xx, keep, get bool
	ttl := int64(-1)
	for i := 0; i < len(opts); i++ {
		switch strings.ToUpper(opts[i]) {
		case "NX":
			nx = true
		case "XX":
			xx = true
		case "KEEPTTL":
			keep = true
		case "GET": // the old value (a bulk string, or nil) instead of OK
			get = true
		case "EX", "PX":
			if i+1 == len(opts) || ttl >= 0 {
				return "-ERR syntax error\r\n"
			}
			n, err := strconv.ParseInt(opts[i+1], 10, 64)
			if err != nil || n <= 0 {
				return "-ERR invalid expire time in 'set' command\r\n"
			}
			if strings.ToUpper(opts[i]) == "PX" {
				n = (n + 999) / 1000
			}
			ttl = n
			i++
		default:
			return "-ERR syntax error\r\n"
		}
	}
	if nx && xx || keep && ttl >= 0 {
		return "-ERR syntax error\r\n"
	}
	old, ok := w.kv[key]
	reply := "+OK\r\n"
	if get {
		reply = "$-1\r\n"
		if ok {
			reply = "$" + strconv.Itoa(len(old)) + "\r\n" + string(old) + "\r\n"
		}
	}
	if ok && nx || !ok && xx {
		if get {
			return reply
		}
		return "$-1\r\n"
	}
	w.kv[key] = []byte(value)
	switch {
	case ttl >= 0:
		w.expireIn(key, ttl)
	case !keep:
		delete(w.ttl, key)
	}
	return reply
}

const l2TestConfig = `{"upstream_cluster":"model","l2":{"cluster":"webdis"%s},
 "purge":{"path":"/purge","token":"0123456789abcdef"},
 "routes":[{"name":"chat","kind":"chat","path_prefix":"/v1/chat/completions","ttl":"1h","coalesce":{"enabled":true,"max_wait":"5s"}}]}`

// l2Mesh is two proxies (each its own Store: no shared memory) and one
// webdis.
type l2Mesh struct {
	t        *testing.T
	clock    *fakeClock
	p        [2]*Cache
	wd       *fakeWebdis
	upstream int
	nextID   uint32
	freed    int // entries the VMs said left L1 (ActFreed)
}

func newL2Mesh(t *testing.T, l2extra string) *l2Mesh {
	m := &l2Mesh{t: t, clock: newFakeClock(), wd: newFakeWebdis()}
	cfg := mustParse(t, fmt.Sprintf(l2TestConfig, l2extra))
	for i := range m.p {
		m.p[i] = New(cfg, Options{Store: NewMemStore(), Now: m.clock.Now, Rand: seededRand(uint64(i))})
	}
	return m
}

// ask runs one request on proxy p to its end: the model answers answer
// when asked. It returns how it was answered (its Cache-Status) and the
// body the client got.
func (m *l2Mesh) ask(p int, prompt, answer string) (string, []byte) {
	c := m.p[p]
	req := c.Begin(c.routeByName("chat"), "POST", "/v1/chat/completions", alice)
	m.nextID++
	f := c.NewFlight(req, uint64(p+1), m.nextID)
	_, acts := f.RequestHeaders(alice, false, true)
	if acts != nil {
		m.t.Fatalf("headers: %v", acts)
	}
	return m.run(f, f.RequestBody([]byte(chatRequest(prompt)), false), answer)
}

// run carries acts out to the request's end; the model answers answer.
func (m *l2Mesh) run(f *Flight, acts []Action, answer string) (string, []byte) {
	return m.runWith(f, acts, jsonCT, []byte(chatResponse(answer)))
}

// runWith is run with the model answering hs and b.
func (m *l2Mesh) runWith(f *Flight, acts []Action, hs [][2]string, b []byte) (string, []byte) {
	c := f.c
	var cs string
	var body []byte
	for len(acts) > 0 {
		a := acts[0]
		acts = acts[1:]
		switch a.Kind {
		case ActDispatch:
			acts = append(acts, a.Call.Done(m.wd.do(a.Call))...)
		case ActServeEntry:
			_, h, hit := c.HitResponse(f.Request())
			cs, body = headerValue(h, "cache-status"), hit
		case ActForward:
			m.upstream++
			if _, more := f.ResponseHeaders(200, hs, OriginUpstream, false); more != nil {
				m.t.Fatalf("response headers: %v", more)
			}
			_, more := f.Complete(hs, b, 10, nil)
			acts = append(acts, more...)
			cs, body = string(f.CacheStatusHeader(nil)), b
		}
	}
	return cs, body
}

func TestL2SharesAnswersAcrossProxies(t *testing.T) {
	m := newL2Mesh(t, "")
	cs, a := m.ask(0, "hello", "world")
	if !strings.Contains(cs, "fwd=miss") || m.upstream != 1 {
		t.Fatalf("first request: %q, %d upstream calls", cs, m.upstream)
	}
	cs, b := m.ask(1, "hello", "other")
	if cs != "modelcache; hit; ttl=3599; detail=l2" && cs != "modelcache; hit; ttl=3600; detail=l2" || m.upstream != 1 {
		t.Fatalf("second proxy: %q, %d upstream calls", cs, m.upstream)
	}
	if !bytes.Equal(a, b) {
		t.Fatalf("bodies differ: %q vs %q", a, b)
	}
	// Copied into B's L1: the next request there never asks L2.
	calls := m.wd.calls
	if cs, _ := m.ask(1, "hello", "other"); !strings.HasPrefix(cs, "modelcache; hit") || strings.Contains(cs, "l2") || m.wd.calls != calls {
		t.Fatalf("third request: %q, webdis calls %d -> %d", cs, calls, m.wd.calls)
	}
	// Another tenant never sees it.
	c := m.p[1]
	req := c.Begin(c.routeByName("chat"), "POST", "/v1/chat/completions", hdr("authorization", "Bearer sk-bob"))
	f := c.NewFlight(req, 2, 99)
	f.RequestHeaders(nil, false, true)
	if cs, _ := m.run(f, f.RequestBody([]byte(chatRequest("hello")), false), "bob's"); !strings.Contains(cs, "fwd=miss") {
		t.Fatalf("other tenant: %q", cs)
	}
}

func TestL2TamperedValueIsNeverServed(t *testing.T) {
	for _, tc := range []struct {
		name   string
		tamper func(m *l2Mesh, key string)
	}{
		{"flipped byte", func(m *l2Mesh, key string) {
			v, _ := base64.StdEncoding.DecodeString(string(m.wd.kv[key]))
			v[len(v)-3] ^= 1
			m.wd.kv[key] = []byte(base64.StdEncoding.EncodeToString(v))
		}},
		{"not base64", func(m *l2Mesh, key string) { m.wd.kv[key] = []byte("%%%") }},
		{"truncated", func(m *l2Mesh, key string) { m.wd.kv[key] = m.wd.kv[key][:40] }},
		{"garbage", func(m *l2Mesh, key string) { m.wd.kv[key] = []byte("hello") }},
		{"another key's value", func(m *l2Mesh, key string) {
			m.ask(0, "other prompt", "other answer")
			for k, v := range m.wd.kv {
				if k != key && strings.Contains(k, ":e:") {
					m.wd.kv[key] = v
				}
			}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m := newL2Mesh(t, "")
			m.ask(0, "hello", "world")
			var key string
			for k := range m.wd.kv {
				if strings.Contains(k, ":e:") {
					key = k
				}
			}
			tc.tamper(m, key)
			before := m.upstream
			cs, body := m.ask(1, "hello", "fresh")
			if !strings.Contains(cs, "fwd=miss") || m.upstream != before+1 || !bytes.Contains(body, []byte("fresh")) {
				t.Fatalf("tampered value: %q %s", cs, body)
			}
			// The answer overwrote it: a third proxy (here: B's L1 aside) reads it whole.
			if cs, _ := m.ask(0, "hello", "x"); !strings.HasPrefix(cs, "modelcache; hit") {
				t.Fatalf("after overwrite: %q", cs)
			}
		})
	}
}

func TestL2DownGoesUpstreamAndOpensBreaker(t *testing.T) {
	m := newL2Mesh(t, `,"breaker":{"failures":2,"cool_down":"1s"}`)
	m.wd.down = true
	for i := 0; i < 4; i++ {
		if cs, _ := m.ask(0, fmt.Sprint("p", i), "a"); !strings.Contains(cs, "fwd=miss") {
			t.Fatalf("request %d: %q", i, cs)
		}
	}
	// 2 lookups failed (breaker open), then skipped; 2 writes skipped
	// (no lookup, no known generations).
	if m.wd.calls != 2 {
		t.Fatalf("webdis calls with the breaker: %d, want 2", m.wd.calls)
	}
	m.wd.down = false
	m.clock.Advance(1100 * time.Millisecond)
	m.ask(0, "again", "a")
	// lookup, then twice (the Redis is new) create a missing generation
	// and look up again, lease, write, renewal of the model's generation,
	// lease release: closed again
	if m.wd.calls != 11 {
		t.Fatalf("webdis calls after cool-down: %d, want 11", m.wd.calls)
	}
}

// l2Purges are a purge of each scope: everything, a model, one entry.
var l2Purges = []string{
	`{"all":true}`,
	`{"route":"chat","model":"gpt-4o-mini"}`,
	`{"path":"/v1/chat/completions","headers":{"authorization":"Bearer sk-alice"},"body":` + chatRequest("hello") + `}`,
}

func TestL2PurgeReachesEveryProxy(t *testing.T) {
	for _, purge := range l2Purges {
		t.Run(purge, func(t *testing.T) {
			m := newL2Mesh(t, "")
			m.ask(0, "hello", "world")
			res, err := m.p[0].Purge([]byte(purge), "")
			if err != nil || res.L2 == nil {
				t.Fatalf("purge: %+v %v", res, err)
			}
			if got, _ := m.step(res.L2.Done(m.wd.do(res.L2))); got != "" || len(m.wd.lists) != 1 {
				t.Fatalf("purge did not reach L2 and its log: %q %v", got, m.wd.lists)
			}
			before := m.upstream
			if cs, _ := m.ask(1, "hello", "fresh"); !strings.Contains(cs, "fwd=miss") || m.upstream != before+1 {
				t.Fatalf("proxy B after the purge: %q", cs)
			}
			// The fresh answer, written under the new generations, is shared again.
			if cs, body := m.ask(0, "hello", "x"); !strings.Contains(cs, "detail=l2") || !bytes.Contains(body, []byte("fresh")) {
				t.Fatalf("proxy A after B's fresh answer: %q %s", cs, body)
			}
		})
	}
}

func TestL2PurgeThatCannotReachL2IsLogged(t *testing.T) {
	m := newL2Mesh(t, "")
	m.wd.down = true
	res, _ := m.p[0].Purge([]byte(`{"all":true}`), "")
	acts := res.L2.Done(m.wd.do(res.L2))
	// Every try fails (the invalidation is retried, l2WriteTries in all).
	for try := 1; try < l2WriteTries; try++ {
		if len(acts) == 0 || acts[0].Kind != ActDispatch {
			t.Fatalf("try %d: actions: %+v", try, acts)
		}
		acts = append(acts[0].Call.Done(m.wd.do(acts[0].Call)), acts[1:]...)
	}
	if len(acts) != 2 || acts[0].Kind != ActLog || acts[0].Level != LogWarn {
		t.Fatalf("actions: %+v", acts)
	}
}

// A kept-alive connection that webdis closed fails the next call at once:
// one transport failure must not leave a purge out of L2 (the purged entry
// would come back from L2 into every proxy) or out of the purge log.
func TestL2PurgeSurvivesOneTransportFailure(t *testing.T) {
	for _, purge := range l2Purges {
		t.Run(purge, func(t *testing.T) {
			m := newL2Mesh(t, "")
			m.ask(0, "hello", "world")
			res, err := m.p[0].Purge([]byte(purge), "")
			if err != nil || res.L2 == nil {
				t.Fatalf("purge: %+v %v", res, err)
			}
			m.wd.failNext = 1
			m.step(res.L2.Done(m.wd.do(res.L2)))
			if len(m.wd.lists) != 1 {
				t.Fatalf("purge log: %v", m.wd.lists)
			}
			before := m.upstream
			if cs, _ := m.ask(1, "hello", "fresh"); !strings.Contains(cs, "fwd=miss") || m.upstream != before+1 {
				t.Fatalf("proxy B after the purge: %q (the purged answer came from L2)", cs)
			}
		})
	}
}

// step performs acts up to the first that needs the test (forward, wait,
// serve), doing every webdis call at once; it returns what is left.
func (m *l2Mesh) step(acts []Action) (string, []Action) {
	var seen []string
	for len(acts) > 0 {
		a := acts[0]
		acts = acts[1:]
		switch a.Kind {
		case ActDispatch:
			acts = append(acts, a.Call.Done(m.wd.do(a.Call))...)
		case ActCount:
			seen = append(seen, EventNames[a.Event])
		case ActForward:
			seen = append(seen, "forward")
		case ActWait:
			seen = append(seen, "wait")
		case ActServeEntry:
			seen = append(seen, "serve")
		case ActFreed:
			m.freed += a.N
		}
	}
	return strings.Join(seen, " "), acts
}

func (m *l2Mesh) begin(p int, id uint32, prompt string) (*Flight, string) {
	c := m.p[p]
	req := c.Begin(c.routeByName("chat"), "POST", "/v1/chat/completions", alice)
	f := c.NewFlight(req, uint64(p+1), id)
	f.RequestHeaders(alice, false, true)
	got, _ := m.step(f.RequestBody([]byte(chatRequest(prompt)), false))
	return f, got
}

func (m *l2Mesh) answer(f *Flight, status int, content string) string {
	if step, acts := f.ResponseHeaders(status, jsonCT, OriginUpstream, false); step == RespPass {
		got, _ := m.step(acts)
		return got
	}
	_, acts := f.Complete(jsonCT, []byte(chatResponse(content)), 10, nil)
	got, _ := m.step(acts)
	return got
}

// leadAndWait starts "q" on proxy 0, which leads it across the mesh, and
// on proxy 1, which waits on that lease.
func (m *l2Mesh) leadAndWait(t *testing.T) (a, b *Flight) {
	t.Helper()
	a, got := m.begin(0, 1, "q")
	if got != "coalesce.leaders l2.miss l2.lease_won forward" {
		t.Fatalf("A: %s", got)
	}
	b, got = m.begin(1, 1, "q")
	if got != "coalesce.leaders l2.miss l2.lease_lost wait" {
		t.Fatalf("B: %s", got)
	}
	return a, b
}

func TestL2CrossProxySingleFlight(t *testing.T) {
	m := newL2Mesh(t, "")
	a, b := m.leadAndWait(t)
	if got, _ := m.step(b.Tick()); got != "" { // polled: still led, nothing yet
		t.Fatalf("B's first poll: %q", got)
	}
	m.answer(a, 200, "the answer")
	if _, ok := m.wd.kv[DefaultL2Prefix+"l:"+l2Hash(a.Request().l2.id)]; ok {
		t.Fatal("A's lease outlived its answer")
	}
	m.clock.Advance(time.Second) // past the backoff
	if got, _ := m.step(b.Tick()); got != "l2.hit coalesce.leaders serve" && got != "l2.hit serve" {
		t.Fatalf("B after A's answer: %q", got)
	}
	if _, _, body := m.p[1].HitResponse(b.Request()); !bytes.Contains(body, []byte("the answer")) {
		t.Fatalf("B served %s", body)
	}
}

func TestL2LeaderFailureLetsAnotherProxyLead(t *testing.T) {
	m := newL2Mesh(t, "")
	a, _ := m.begin(0, 1, "q")
	b, _ := m.begin(1, 1, "q")
	if got := m.answer(a, 503, "overloaded"); !strings.Contains(got, "coalesce.leader_failures") {
		t.Fatalf("A's failure: %q", got)
	}
	m.clock.Advance(time.Second)
	if got, _ := m.step(b.Tick()); got != "l2.lease_won forward" {
		t.Fatalf("B after A failed: %q", got)
	}
}

func TestL2WaitIsBoundedByMaxWait(t *testing.T) {
	m := newL2Mesh(t, "")
	m.begin(0, 1, "q") // leads and never answers
	b, _ := m.begin(1, 1, "q")
	for i := 0; i < 100; i++ {
		m.clock.Advance(100 * time.Millisecond)
		if got, _ := m.step(b.Tick()); got != "" {
			if got != "coalesce.timeouts forward" {
				t.Fatalf("B: %q", got)
			}
			if waited := time.Duration(i+1) * 100 * time.Millisecond; waited != b.Request().Route.Coalesce.MaxWait {
				t.Fatalf("B gave up after %v", waited)
			}
			return
		}
	}
	t.Fatal("B never gave up")
}

func TestL2PromotedFollowerLooksUpL2(t *testing.T) {
	m := newL2Mesh(t, "")
	a1, _ := m.begin(0, 1, "q")
	a2, got := m.begin(0, 2, "q")
	if got != "coalesce.followers wait" {
		t.Fatalf("A2: %q", got)
	}
	b, _ := m.begin(1, 1, "q")
	m.answer(a1, 503, "overloaded")
	got, _ = m.step(a2.Wake(OutcomeFailed, 503))
	if got != "coalesce.promoted l2.miss l2.lease_won forward" {
		t.Fatalf("A2 woken: %q", got)
	}
	m.clock.Advance(time.Second)
	if got, _ := m.step(b.Tick()); got != "" {
		t.Fatalf("B while A2 leads: %q", got)
	}
	m.answer(a2, 200, "second try")
	m.clock.Advance(time.Second)
	if got, _ := m.step(b.Tick()); !strings.Contains(got, "l2.hit") {
		t.Fatalf("B after A2's answer: %q", got)
	}
}

func TestL2FailedPollKeepsWaitingUntilTheBreakerOpens(t *testing.T) {
	m := newL2Mesh(t, `,"breaker":{"failures":3,"cool_down":"5s"}`)
	m.begin(0, 1, "q")
	b, _ := m.begin(1, 1, "q")
	m.wd.down = true
	var got []string
	for i := 0; i < 5; i++ {
		m.clock.Advance(time.Second)
		g, _ := m.step(b.Tick())
		got = append(got, g)
	}
	want := "l2.error|l2.error|l2.error|l2.breaker_open forward|"
	if strings.Join(got, "|") != want {
		t.Fatalf("polls: %q, want %q", strings.Join(got, "|"), want)
	}
}

// copyToB has A answer "hello" and B find it in L2 (and copy it to L1).
func (m *l2Mesh) copyToB() {
	t := m.t
	t.Helper()
	m.ask(0, "hello", "world")
	if cs, _ := m.ask(1, "hello", "x"); !strings.Contains(cs, "detail=l2") {
		t.Fatalf("B: %q", cs)
	}
}

// copyToBsL1 is copyToB, then B finds "hello" in its L1.
func (m *l2Mesh) copyToBsL1() {
	t := m.t
	t.Helper()
	m.copyToB()
	if cs, _ := m.ask(1, "hello", "x"); strings.Contains(cs, "l2") || !strings.Contains(cs, "hit") {
		t.Fatalf("B's L1: %q", cs)
	}
}

// reloadB replaces B's VM by a new one on the same shared data, as Envoy
// does after a crash or a reconfiguration.
func (m *l2Mesh) reloadB(seed uint64) {
	m.p[1] = New(m.p[1].cfg, Options{Store: m.p[1].store, Now: m.clock.Now, Rand: seededRand(seed)})
}

// expectBPurged lets B read the log twice (its first tick and the next
// read), then expects "hello" to be asked of the model again.
func (m *l2Mesh) expectBPurged(what string) {
	t := m.t
	t.Helper()
	for range 2 {
		m.step(m.p[1].L2Tick())
		m.clock.Advance(DefaultL2SyncInterval)
	}
	if cs, body := m.ask(1, "hello", "fresh"); !strings.Contains(cs, "fwd=miss") || !bytes.Contains(body, []byte("fresh")) {
		t.Fatalf("purged answer still served from B's L1%s: %q %s", what, cs, body)
	}
}

func TestL2PurgeReachesOtherProxiesL1(t *testing.T) {
	m := newL2Mesh(t, "")
	m.step(m.p[1].L2Tick()) // B and A start reading the log where it ends
	m.step(m.p[0].L2Tick())
	m.copyToBsL1()
	res, _ := m.p[0].Purge([]byte(`{"route":"chat","model":"gpt-4o-mini"}`), "")
	m.step(res.L2.Done(m.wd.do(res.L2)))
	if got, _ := m.step(m.p[1].L2Tick()); got != "" { // not yet due
		t.Fatalf("early tick: %q", got)
	}
	m.clock.Advance(DefaultL2SyncInterval)
	m.step(m.p[1].L2Tick())
	if cs, body := m.ask(1, "hello", "fresh"); !strings.Contains(cs, "fwd=miss") || !bytes.Contains(body, []byte("fresh")) {
		t.Fatalf("B after the purge reached it: %q %s", cs, body)
	}
	// A does not apply its own purge again.
	m.ask(0, "again", "a")
	m.step(m.p[0].L2Tick())
	if cs, _ := m.ask(0, "again", "b"); !strings.Contains(cs, "hit") || strings.Contains(cs, "l2") {
		t.Fatalf("A re-applied its own purge: %q", cs)
	}
}

// A proxy caches from its first request on, but reads the purge log only
// from its first tick (LLEN: where to read on from): a purge logged in
// between was taken for history, and the answer B had copied into its L1
// was served on for good. (e2e TestL2IntegrityPurgeAndOutage failed so,
// 1 run in 6–10: B is started last, and A's purge landed before B's first
// tick.)
func TestL2PurgeLoggedBeforeTheFirstReadReachesL1(t *testing.T) {
	m := newL2Mesh(t, "")
	m.step(m.p[0].L2Tick()) // A reads the log; B has not ticked yet
	m.copyToBsL1()
	res, _ := m.p[0].Purge([]byte(`{"route":"chat","model":"gpt-4o-mini"}`), "")
	m.step(res.L2.Done(m.wd.do(res.L2)))
	if n := len(l2PurgeRecords(m.wd.lists["mc:purges"])); n != 1 {
		t.Fatalf("purge log: %d records", n)
	}
	for range 2 { // B's first tick, and the next read
		m.step(m.p[1].L2Tick())
		m.clock.Advance(DefaultL2SyncInterval)
	}
	if cs, body := m.ask(1, "hello", "fresh"); !strings.Contains(cs, "fwd=miss") || !bytes.Contains(body, []byte("fresh")) {
		t.Fatalf("B after the purge reached it: %q %s", cs, body)
	}
}

// Only a process with no position in the log drops its L1 at its first
// read: a VM that starts reading later (another worker, a new plugin
// configuration) resumes the process's position and keeps L1, whatever
// the log holds.
func TestL2LaterVMKeepsTheProcessL1(t *testing.T) {
	m := newL2Mesh(t, "")
	m.step(m.p[1].L2Tick()) // B's first VM reads the log
	m.copyToB()
	res, _ := m.p[0].Purge([]byte(`{"route":"chat","model":"another-model"}`), "")
	m.step(res.L2.Done(m.wd.do(res.L2)))
	if n := len(l2PurgeRecords(m.wd.lists["mc:purges"])); n != 1 {
		t.Fatalf("purge log: %d records", n)
	}
	b2 := New(m.p[1].cfg, Options{Store: m.p[1].store, Now: m.clock.Now, Rand: seededRand(7)})
	m.step(b2.L2Tick())
	if cs, _ := m.ask(1, "hello", "x"); strings.Contains(cs, "l2") || !strings.Contains(cs, "hit") {
		t.Fatalf("B's L1 after another VM's first read: %q", cs)
	}
}

// A VM reloaded after a crash (shared data, so L1, survives) carries on
// from where the process last read the log: a purge logged between the
// old VM's last read and the new VM's first reaches L1.
func TestL2ReloadedVMReadsOnFromTheProcessCursor(t *testing.T) {
	m := newL2Mesh(t, "")
	m.step(m.p[1].L2Tick()) // B's only VM reads the log (empty)
	m.copyToB()
	res, _ := m.p[0].Purge([]byte(`{"route":"chat","model":"gpt-4o-mini"}`), "")
	m.step(res.L2.Done(m.wd.do(res.L2)))
	m.reloadB(9)
	m.expectBPurged(" after its VM reload")
}

// The process's position is per log: a plugin reading another log (other
// prefix) that shares the process's L1 is no reader of this one.
func TestL2ProcessCursorIsPerLog(t *testing.T) {
	m := newL2Mesh(t, `,"prefix":"b:"`)
	other := New(mustParse(t, strings.Replace(l2TestConfig, "%s", "", 1)), Options{Store: m.p[1].store, Now: m.clock.Now, Rand: seededRand(11)})
	m.step(other.L2Tick()) // process B, a plugin reading log "mc:purges"
	m.copyToB()
	res, _ := m.p[0].Purge([]byte(`{"route":"chat","model":"gpt-4o-mini"}`), "")
	m.step(res.L2.Done(m.wd.do(res.L2)))
	if n := len(m.wd.lists["b:purges"]); n != 1 {
		t.Fatalf("log b: %d records", n)
	}
	m.expectBPurged("")
}

// What another proxy's purge takes out of this L1 is reported (ActFreed),
// so that the occupied-slots gauge follows it down: an "all" purge and a
// single entry, each applied from the log; the first read's drop too.
func TestL2SyncReportsWhatLeavesL1(t *testing.T) {
	m := newL2Mesh(t, "")
	m.step(m.p[1].L2Tick())
	m.step(m.p[0].L2Tick())
	m.copyToBsL1()
	purge := func(body string) {
		res, _ := m.p[0].Purge([]byte(body), "")
		m.step(res.L2.Done(m.wd.do(res.L2)))
		m.clock.Advance(DefaultL2SyncInterval)
		m.step(m.p[1].L2Tick())
	}
	purge(`{"all":true}`)
	if m.freed != 1 {
		t.Fatalf("after an all purge: %d entries reported freed, want 1", m.freed)
	}
	m.copyToBsL1()
	purge(`{"path":"/v1/chat/completions","headers":{"authorization":"Bearer sk-alice"},"body":` + chatRequest("hello") + `}`)
	if m.freed != 2 {
		t.Fatalf("after an entry purge: %d entries reported freed, want 2", m.freed)
	}

	fresh := newL2Mesh(t, "")
	fresh.step(fresh.p[0].L2Tick())
	fresh.copyToBsL1()
	res, _ := fresh.p[0].Purge([]byte(`{"route":"chat","model":"another-model"}`), "")
	fresh.step(res.L2.Done(fresh.wd.do(res.L2)))
	fresh.step(fresh.p[1].L2Tick()) // B's first read: the log is not empty
	if fresh.freed != 1 {
		t.Fatalf("B's first read of a non-empty log: %d entries reported freed, want 1", fresh.freed)
	}
}

// A position taken by LLEN on a non-empty log knows no record before it:
// it is not kept for other VMs, which could not tell the log rewritten
// (deleted here) and would take its first record for the one before.
func TestL2BaselinePositionIsNotResumed(t *testing.T) {
	m := newL2Mesh(t, "")
	res, _ := m.p[0].Purge([]byte(`{"route":"chat","model":"another-model"}`), "")
	m.step(res.L2.Done(m.wd.do(res.L2))) // log: 1 record
	m.step(m.p[1].L2Tick())              // B: no position -> LLEN=1, baseline (1, 0, true) saved
	m.copyToBsL1()
	delete(m.wd.lists, "mc:purges") // operator deletes the log; A purges again
	res, _ = m.p[0].Purge([]byte(`{"route":"chat","model":"gpt-4o-mini"}`), "")
	m.step(res.L2.Done(m.wd.do(res.L2)))
	m.reloadB(9)
	m.expectBPurged("")
}

// Two configurations of one process read the same log but know different
// routes: one skips a record of a route it lacks, so its position is not
// the other's (which resumes from its own, or starts anew).
func TestL2PositionIsPerRouteSet(t *testing.T) {
	m := newL2Mesh(t, "")
	m.step(m.p[1].L2Tick()) // B/P2 (route "chat") position 0
	m.copyToBsL1()
	p1cfg := mustParse(t, strings.Replace(strings.Replace(fmt.Sprintf(l2TestConfig, ""), `"name":"chat"`, `"name":"other"`, 1), "/v1/chat/completions", "/v1/other", 1))
	p1 := New(p1cfg, Options{Store: m.p[1].store, Now: m.clock.Now, Rand: seededRand(5)})
	res, _ := m.p[0].Purge([]byte(`{"route":"chat","model":"gpt-4o-mini"}`), "")
	m.step(res.L2.Done(m.wd.do(res.L2)))
	m.step(p1.L2Tick()) // P1 resumes at 0, reads the record ("unknown route"), saves 1
	m.reloadB(9)        // P2 reloaded
	m.expectBPurged("")
}

// What a first read's L1 drop frees is reported even if the drop fails
// part way (and is done again at the next read).
func TestL2FirstReadPartialClearIsReported(t *testing.T) {
	m := newL2Mesh(t, "")
	fs := &flakyStore{Store: NewMemStore()}
	m.p[1] = New(m.p[1].cfg, Options{Store: fs, Now: m.clock.Now, Rand: seededRand(1)})
	res, _ := m.p[0].Purge([]byte(`{"route":"chat","model":"another-model"}`), "")
	m.step(res.L2.Done(m.wd.do(res.L2))) // log not empty
	for _, p := range []string{"p1", "p2", "p3", "p4", "p5", "p6"} {
		m.ask(1, p, "a")
	}
	before, _ := m.p[1].table.Occupied()
	writes := 0
	fs.setErr = func(k string) error {
		if strings.HasPrefix(k, "mc:i:") {
			if writes++; writes == 2 {
				return errStoreDown
			}
		}
		return nil
	}
	m.step(m.p[1].L2Tick()) // first read: Clear frees one bucket, then fails
	fs.setErr = nil
	m.clock.Advance(DefaultL2SyncInterval)
	m.step(m.p[1].L2Tick()) // again: the rest
	after, _ := m.p[1].table.Occupied()
	if before < 2 || after != 0 {
		t.Fatalf("setup: occupied %d -> %d", before, after)
	}
	if m.freed != before-after {
		t.Fatalf("reported freed %d, slots actually freed %d", m.freed, before-after)
	}
}

func TestL2ConfigIsValidated(t *testing.T) {
	route := `"routes":[{"name":"chat","kind":"chat","path_prefix":"/v1/chat/completions"}]`
	for _, tc := range []struct{ l2, want string }{
		{`{}`, "l2.cluster: is required"},
		{`{"cluster":"webdis","timeout":"25"}`, "l2.timeout: invalid duration"},
		{`{"cluster":"webdis","write":"sync"}`, `l2.write: must be "async" (write-behind) or "off"`},
		{`{"cluster":"webdis","prefix":"a/b"}`, "l2.prefix: may hold only"},
		{`{"cluster":"webdis","max_entry_bytes":999999999}`, "l2.max_entry_bytes: must be between"},
		{`{"cluster":"webdis","breaker":{"failures":0}}`, "l2.breaker.failures: must be between"},
		{`{"cluster":"webdis","lease":1}`, "l2.lease"},
	} {
		_, err := ParseConfig([]byte(`{"l2":` + tc.l2 + `,` + route + `}`))
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("l2 %s: error %v, want %q", tc.l2, err, tc.want)
		}
	}
	// A leader renews its lease on its ticks (keepL2Lease), at the first
	// after half of it: a tick well within that half, or the lease lapses
	// under a live leader.
	if _, err := ParseConfig([]byte(`{"tick_period":"300ms","l2":{"cluster":"webdis","lease_ttl":"1s"},` + route + `}`)); err == nil ||
		!strings.Contains(err.Error(), "l2.lease_ttl: must be at least four times tick_period") {
		t.Errorf("a lease_ttl under four tick_periods: error %v", err)
	}
	if _, err := ParseConfig([]byte(`{"tick_period":"250ms","l2":{"cluster":"webdis","lease_ttl":"1s"},` + route + `}`)); err != nil {
		t.Errorf("a lease_ttl of four tick_periods: %v", err)
	}
	if _, err := ParseConfig([]byte(`{"l2":{"cluster":"webdis","lease_ttl":"500ms"},` + route + `}`)); err == nil ||
		strings.Contains(err.Error(), "tick_period") {
		t.Errorf("a lease_ttl out of range: error %v, want only the range's", err)
	}
	cfg, err := ParseConfig([]byte(`{"l2":{"cluster":"webdis"},` + route + `}`))
	if err != nil {
		t.Fatal(err)
	}
	l := cfg.L2
	if l.Timeout != 25*time.Millisecond || l.Write != "async" || l.Prefix != "mc:" || l.MaxEntryBytes != cfg.Store.MaxEntryBytes ||
		l.TTLSlack != time.Second || l.BreakerFailures != 5 || l.BreakerCoolDown != 5*time.Second || !cfg.Routes[0].L2 {
		t.Fatalf("defaults: %+v", l)
	}
	if cfg, _ := ParseConfig([]byte(`{` + route + `}`)); cfg.L2 != nil || cfg.Routes[0].L2 || EvL2Hit.Applies(cfg.Routes[0]) {
		t.Fatal("no l2 section, yet L2 is on")
	}
}

func TestL2HitHonoursTheClientsMaxAge(t *testing.T) {
	m := newL2Mesh(t, "")
	m.ask(0, "hello", "world")
	m.clock.Advance(20 * time.Second)
	c := m.p[1]
	hs := hdr("authorization", "Bearer sk-alice", "cache-control", "max-age=10")
	req := c.Begin(c.routeByName("chat"), "POST", "/v1/chat/completions", hs)
	f := c.NewFlight(req, 2, 50)
	f.RequestHeaders(hs, false, true)
	if cs, _ := m.run(f, f.RequestBody([]byte(chatRequest("hello")), false), "fresh"); !strings.Contains(cs, "fwd=request") {
		// fwd=request since review Z148 (was fwd=miss): the client's
		// max-age refused an entry at hand (RFC 9211 §2.2).
		t.Fatalf("an entry 20 s old served to max-age=10: %q", cs)
	}
}

// webdis answers some integer replies in its raw format without the
// closing CRLF (seen on Envoy: content-length 3, body ":19" for an INCR
// that succeeded): the reply is still an integer, and an invalidation that
// reached Redis is not retried and then reported lost.
func TestRESPIntegerWithoutCRLF(t *testing.T) {
	for body, want := range map[string]respKind{
		":19\r\n": respInt, ":19": respInt, ":-3": respInt,
		":": respBad, ":1x": respBad, ":19\r": respBad, "+OK": respBad, "19": respBad,
	} {
		if got := parseRESP([]byte(body)); got != want {
			t.Errorf("parseRESP(%q) = %v, want %v", body, got, want)
		}
	}
}

// helloOnB stores the answer to "hello" in B's L1 only, and returns how
// to make that request on B again.
func (m *l2Mesh) helloOnB() func() *Request {
	chat := func() *Request {
		r := m.p[1].Begin(m.p[1].routeByName("chat"), "POST", "/v1/chat/completions", alice)
		m.p[1].SetBody(r, []byte(chatRequest("hello")))
		return r
	}
	r := chat()
	m.p[1].Lookup(r)
	m.p[1].AdmitAndStore(r, 200, jsonCT, []byte(chatResponse("world")), OriginUpstream, 10)
	return chat
}

// purgeOnA runs a purge on A, L2 calls and purge-log writes included.
func (m *l2Mesh) purgeOnA(body string) {
	m.t.Helper()
	res, err := m.p[0].Purge([]byte(body), "")
	if err != nil {
		m.t.Fatal(err)
	}
	m.step(res.L2.Done(m.wd.do(res.L2)))
}

// A lookup for a model L2 has not seen creates its generation in Redis
// before the model is asked, and the model name is the client's to
// choose: the generation is created with an expiry (SET … NX EX), so a
// tenant cycling made-up names (each answered 404, nothing stored) leaves
// nothing in Redis for good. At most the mesh-wide "all" generation, one
// key, is kept without one.
func TestL2MadeUpModelNamesLeaveNoPermanentKeys(t *testing.T) {
	m := newL2Mesh(t, "")
	c := m.p[0]
	persistent := map[string]bool{}
	for i := 0; i < 50; i++ {
		req := c.Begin(c.routeByName("chat"), "POST", "/v1/chat/completions", alice)
		f := c.NewFlight(req, 1, uint32(i+1))
		f.RequestHeaders(alice, false, true)
		acts := f.RequestBody([]byte(`{"model":"no-such-model-`+strconv.Itoa(i)+`","messages":[{"role":"user","content":"hi"}]}`), false)
		for len(acts) > 0 {
			a := acts[0]
			acts = acts[1:]
			switch a.Kind {
			case ActDispatch:
				p := a.Call.Headers[1][1]
				if strings.HasPrefix(p, "/SET/") && !strings.Contains(p, "/EX/") && !strings.Contains(p, "/PX/") {
					persistent[strings.Split(p, "/")[2]] = true
				}
				acts = append(acts, a.Call.Done(m.wd.do(a.Call))...)
			case ActForward:
				_, more := f.ResponseHeaders(404, jsonCT, OriginUpstream, false)
				acts = append(acts, more...)
				acts = append(acts, f.Done()...)
			}
		}
	}
	if len(persistent) > 2 {
		t.Fatalf("50 requests for made-up models (all answered 404, nothing stored) left %d keys without expiry in Redis", len(persistent))
	}
}

// A model's generation is created with l2GenLife and renewed by each
// entry written under it, so a model in use keeps it; the "all"
// generation keeps no expiry. A purge of a generation that expired
// creates it at 1 (INCR of a missing key): what was written before is
// still a miss, and a generation an INCR made is never given an expiry
// (it could come back at 1, the value older entries carry).
func TestL2ModelGenerationLivesWhileWrittenUnder(t *testing.T) {
	m := newL2Mesh(t, "")
	life := m.p[0].l2GenLife()
	if life != 3600+1+60 { // ttl 1h, the second SETEX adds, l2GenMargin
		t.Fatalf("l2GenLife %d", life)
	}
	model, all := DefaultL2Prefix+l2ModelGen("chat", "gpt-4o-mini"), DefaultL2Prefix+"g"
	m.ask(0, "hello", "world")
	if ttl, ok := m.wd.ttl[model]; !ok || ttl != life {
		t.Fatalf("model generation's expiry: %d %v, want %d", ttl, ok, life)
	}
	if _, ok := m.wd.ttl[all]; ok || m.wd.kv[all] == nil {
		t.Fatalf("the all generation: %q, expiry %v", m.wd.kv[all], ok)
	}
	m.wd.ttl[model] = 5 // about to expire
	m.ask(0, "other", "x")
	if m.wd.ttl[model] != life {
		t.Fatalf("an entry written under the model's generation did not renew it: expiry %d", m.wd.ttl[model])
	}
	// The generation expires; a purge of the model comes before a lookup
	// creates it again.
	delete(m.wd.kv, model)
	delete(m.wd.ttl, model)
	m.purgeOnA(`{"route":"chat","model":"gpt-4o-mini"}`)
	if string(m.wd.kv[model]) != "1" {
		t.Fatalf("model generation after the purge: %q", m.wd.kv[model])
	}
	before := m.upstream
	if cs, _ := m.ask(1, "hello", "fresh"); !strings.Contains(cs, "fwd=miss") || m.upstream != before+1 {
		t.Fatalf("an entry written before the purge of an expired generation: %q", cs)
	}
	if cs, body := m.ask(0, "hello", "x"); !strings.Contains(cs, "detail=l2") || !bytes.Contains(body, []byte("fresh")) {
		t.Fatalf("the answer written under the new generation: %q %s", cs, body)
	}
	if ttl, ok := m.wd.ttl[model]; ok {
		t.Fatalf("a generation an INCR made was given an expiry (%d)", ttl)
	}
}

// l2Renew decides from the generation the lookup read (req.l2.gens.model)
// but EXPIREs whatever the key holds when the write lands. A generation
// that lapsed (or was evicted: volatile-ttl picks keys with an expiry) while
// the request was upstream, then re-made at 1 by a purge's INCR, is given
// an expiry by the late write — the thing RATIONALE ("A model's generation
// expires unless written under") says must never happen. Carried on: an
// entry written under 1 outlives that expiry, a second purge moves the
// generation to 2, it lapses, a third purge's INCR makes it 1 again, and
// the entry purged by the second purge is served from L2.
func TestL2LateWriteGivesNoExpiryToAnINCRMadeGeneration(t *testing.T) {
	m := newL2Mesh(t, "")
	model := DefaultL2Prefix + l2ModelGen("chat", "gpt-4o-mini")
	m.ask(0, "warm", "w") // the model's generation: random, with an expiry

	// A leads "slow" upstream, having read the random generation.
	a, got := m.begin(0, 1, "slow")
	if !strings.HasSuffix(got, "forward") {
		t.Fatalf("A: %s", got)
	}
	// Meanwhile the generation lapses (or is evicted) and the model is
	// purged: INCR makes it 1, with no expiry.
	delete(m.wd.kv, model)
	delete(m.wd.ttl, model)
	purgeOn(m, 1, `{"route":"chat","model":"gpt-4o-mini"}`) // another proxy's purge
	if string(m.wd.kv[model]) != "1" {
		t.Fatalf("generation after the purge: %q", m.wd.kv[model])
	}
	// A's answer lands: SETEX (under the old generation, harmless), then
	// the renewal of the key — which now holds the INCR-made 1.
	t.Logf("A's answer: %s", m.answer(a, 200, "slow answer"))
	if ttl, ok := m.wd.ttl[model]; ok {
		t.Errorf("a generation an INCR made (1) was given an expiry (%ds) by a write under the old one", ttl)
	}

	// The consequence. Two minutes later B stores "hello" under generation
	// 1: its entry (ttl 1h + 1s) outlives the expiry just given (1h 61s).
	m.clock.Advance(2 * time.Minute)
	if cs, _ := m.ask(1, "hello", "purged answer"); !strings.Contains(cs, "fwd=miss") {
		t.Fatalf("B: %q", cs)
	}
	written := string(m.wd.kv[model])                    // B reseeded the INCR-made 1 before its write (l2Reseed)
	m.purgeOnA(`{"route":"chat","model":"gpt-4o-mini"}`) // the generation moves on: "purged answer" is out
	if g := string(m.wd.kv[model]); g == "" || g == written {
		t.Fatalf("generation after the second purge: %q (B wrote under %q)", g, written)
	}
	if _, ok := m.wd.ttl[model]; ok { // INCR kept the expiry: it lapses before B's entry
		delete(m.wd.kv, model)
		delete(m.wd.ttl, model)
	}
	m.purgeOnA(`{"route":"chat","model":"gpt-4o-mini"}`) // INCR of the missing key: 1 again
	m.clock.Advance(time.Minute)
	if cs, body := m.ask(0, "hello", "fresh"); bytes.Contains(body, []byte("purged answer")) {
		t.Fatalf("an answer purged (generation 1 -> 2) is served again after the generation lapsed and came back at 1: %q %s", cs, body)
	}
}

func purgeOn(m *l2Mesh, p int, body string) {
	m.t.Helper()
	res, err := m.p[p].Purge([]byte(body), "")
	if err != nil {
		m.t.Fatal(err)
	}
	m.step(res.L2.Done(m.wd.do(res.L2)))
}

// A shadow comparison that invalidates the model replaces the diverged
// entry with the fresh answer (Shadow: "Replace the diverged entry with
// the fresh answer ... the generation this comparison's invalidation
// made"). With an L2, the same comparison's INCR is followed by l2Again,
// which moves the L1 generation once more: the replacement it just stored
// (and every answer stored in between) is dropped as soon as webdis answers.
func TestL2ShadowReplacementSurvivesItsOwnInvalidation(t *testing.T) {
	env := newEnv(t, `{"upstream_cluster":"u","l2":{"cluster":"webdis"},"routes":[{"name":"chat","kind":"chat",`+
		`"path_prefix":"/v1/chat","ttl":"1h","shadow":{"sample":1,"min_samples":1,"max_divergence":0,"min_tenants":1}}]}`)
	wd := newFakeWebdis()
	env.fill(env.request("chat", alice, chatRequest("hi")), jsonCT, chatResponse("old"), 10)
	req, _ := env.lookup("chat", alice, chatRequest("hi"))
	acts := env.cache.Shadow(req, hdr(":method", "POST", ":path", "/v1/chat/completions"))
	if len(acts) != 1 || acts[0].Kind != ActDispatch {
		t.Fatalf("shadow: %s", actionKinds(acts))
	}
	acts = acts[0].Call.Done(CallResult{Status: 200, Headers: jsonCT, Body: []byte(chatResponse("the retrained model's answer"))})
	t.Logf("shadow done: %s", actionKinds(acts))
	if r, d := env.lookup("chat", alice, chatRequest("hi")); d != Serve {
		t.Fatalf("the replacement is not served before the INCR returns: %s", r.Status)
	}
	for len(acts) > 0 { // webdis answers the INCR
		a := acts[0]
		acts = acts[1:]
		if a.Kind == ActDispatch {
			acts = append(acts, a.Call.Done(wd.do(a.Call))...)
		}
	}
	if r, d := env.lookup("chat", alice, chatRequest("hi")); d != Serve {
		t.Errorf("the shadow's fresh replacement is gone once L2 had the invalidation: %s", r.Status)
	}
}

// A shadow comparison that invalidates the model stores its replacement
// twice with an L2: at once, and again under the generation its own
// INCR's l2Again makes (l2InvalidateModelThen's then). The second store
// keys the replacement under whatever state the model has when webdis
// answers: a purge applied to this L1 in between — another proxy's, read
// from the purge log (l2Apply calls PurgeModel) — removed the first copy,
// and the second brings the answer (fetched before that purge) back.
func TestL2ShadowSecondStoreRespectsAPurgeMeanwhile(t *testing.T) {
	for _, purge := range []struct {
		name string
		do   func(env *testEnv) error
	}{
		{"model", func(env *testEnv) error { return env.cache.PurgeModel("chat", "gpt-4o-mini") }},
		{"all", func(env *testEnv) error { _, err := env.cache.purgeAll(); return err }},
	} {
		t.Run(purge.name, func(t *testing.T) {
			env := newEnv(t, `{"upstream_cluster":"u","l2":{"cluster":"webdis"},"routes":[{"name":"chat","kind":"chat",`+
				`"path_prefix":"/v1/chat","ttl":"1h","shadow":{"sample":1,"min_samples":1,"max_divergence":0,"min_tenants":1}}]}`)
			wd := newFakeWebdis()
			env.fill(env.request("chat", alice, chatRequest("hi")), jsonCT, chatResponse("old"), 10)
			req, _ := env.lookup("chat", alice, chatRequest("hi"))
			if req.Model != "gpt-4o-mini" {
				t.Fatalf("model %q", req.Model)
			}
			acts := env.cache.Shadow(req, hdr(":method", "POST", ":path", "/v1/chat/completions"))
			if len(acts) != 1 || acts[0].Kind != ActDispatch {
				t.Fatalf("shadow: %s", actionKinds(acts))
			}
			acts = acts[0].Call.Done(CallResult{Status: 200, Headers: jsonCT, Body: []byte(chatResponse("pre-purge answer"))})
			if _, d := env.lookup("chat", alice, chatRequest("hi")); d != Serve {
				t.Fatalf("the replacement is not stored")
			}
			// Another proxy's purge reaches this L1 (from the log) while the
			// shadow's INCR is still out.
			if err := purge.do(env); err != nil {
				t.Fatal(err)
			}
			if _, d := env.lookup("chat", alice, chatRequest("hi")); d == Serve {
				t.Fatalf("the purge left the replacement")
			}
			for len(acts) > 0 { // webdis answers the shadow's INCR
				a := acts[0]
				acts = acts[1:]
				if a.Kind == ActDispatch {
					acts = append(acts, a.Call.Done(wd.do(a.Call))...)
				}
			}
			if r, d := env.lookup("chat", alice, chatRequest("hi")); d == Serve {
				t.Errorf("an answer fetched before a purge is served after it: the shadow's second store put it back under the purge's generation: %q",
					strings.TrimSpace(string(r.Entry.Body)))
			}
		})
	}
}

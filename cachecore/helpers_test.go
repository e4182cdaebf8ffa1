package cachecore

import (
	"errors"
	"math/rand/v2"
	"strings"
	"sync"
	"testing"
	"time"
)

// fakeClock is the injected clock of the tests: time moves only when a test
// says so. It is safe for concurrent use so hammer tests can share one.
type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func newFakeClock() *fakeClock {
	return &fakeClock{now: time.Date(2025, 6, 1, 12, 0, 0, 0, time.UTC)}
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

func (c *fakeClock) Set(t time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = t
}

// seededRand is a deterministic Options.Rand.
func seededRand(seed uint64) func() uint64 {
	return rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15)).Uint64
}

func mustParse(t testing.TB, cfg string) *Config {
	t.Helper()
	c, err := ParseConfig([]byte(cfg))
	if err != nil {
		t.Fatalf("ParseConfig: %v\nconfig: %s", err, cfg)
	}
	return c
}

// testEnv is one Cache over a MemStore with a fake clock and a seeded RNG.
type testEnv struct {
	t     testing.TB
	cache *Cache
	store *MemStore
	clock *fakeClock
}

func newEnv(t testing.TB, cfg string) *testEnv {
	t.Helper()
	store := NewMemStore()
	clock := newFakeClock()
	c := New(mustParse(t, cfg), Options{Store: store, Now: clock.Now, Rand: seededRand(1)})
	return &testEnv{t: t, cache: c, store: store, clock: clock}
}

func (e *testEnv) route(name string) *Route {
	e.t.Helper()
	r := e.cache.routeByName(name)
	if r == nil {
		e.t.Fatalf("no route %q", name)
	}
	return r
}

// request runs Begin and SetBody for a POST to the route's path.
func (e *testEnv) request(route string, headers [][2]string, body string) *Request {
	e.t.Helper()
	r := e.route(route)
	path := r.Exact
	if path == "" {
		path = r.Prefix
	}
	req := e.cache.Begin(r, "POST", path, headers)
	e.cache.SetBody(req, []byte(body))
	return req
}

// fill answers req as the upstream would and stores the response, failing
// the test if anything on the way refuses it.
func (e *testEnv) fill(req *Request, headers [][2]string, body string, computeMs uint32) StoreResult {
	e.t.Helper()
	if req.Bypassed() {
		e.t.Fatalf("fill: request bypassed: %s", req.Reason)
	}
	if r := e.cache.AdmitHeaders(req, 200, headers, OriginUpstream); r != ReasonNone {
		e.t.Fatalf("fill: AdmitHeaders: %s", r)
	}
	adm := e.cache.AdmitBody(req, headers, []byte(body))
	if adm.Reason != ReasonNone {
		e.t.Fatalf("fill: AdmitBody: %s (rule %q)", adm.Reason, adm.Rule)
	}
	res := e.cache.Store(req, 200, headers, []byte(body), adm, computeMs)
	if res.Reason != ReasonNone {
		e.t.Fatalf("fill: Store: %s", res.Reason)
	}
	return res
}

// lookup runs a fresh request through Begin, SetBody and Lookup.
func (e *testEnv) lookup(route string, headers [][2]string, body string) (*Request, Decision) {
	e.t.Helper()
	req := e.request(route, headers, body)
	return req, e.cache.Lookup(req)
}

func hdr(kv ...string) [][2]string {
	out := make([][2]string, 0, len(kv)/2)
	for i := 0; i+1 < len(kv); i += 2 {
		out = append(out, [2]string{kv[i], kv[i+1]})
	}
	return out
}

func headerValue(h [][2]string, name string) string {
	v, _ := header(h, name)
	return v
}

var (
	alice   = hdr("authorization", "Bearer sk-alice")
	bob     = hdr("authorization", "Bearer sk-bob")
	jsonCT  = hdr("content-type", "application/json")
	noIdent = [][2]string(nil)
)

func chatRequest(prompt string) string {
	return `{"model":"gpt-4o-mini","messages":[{"role":"user","content":` + quote(prompt) + `}],"temperature":0}`
}

func chatResponse(content string) string {
	return `{"id":"chatcmpl-1","object":"chat.completion","model":"gpt-4o-mini","choices":[{"index":0,` +
		`"message":{"role":"assistant","content":` + quote(content) + `},"finish_reason":"stop"}]}`
}

func quote(s string) string {
	return `"` + strings.NewReplacer(`\`, `\\`, `"`, `\"`, "\n", `\n`).Replace(s) + `"`
}

// flakyStore wraps a Store and fails chosen operations, to reach the error
// paths of the table and the cache.
type flakyStore struct {
	Store
	getErr func(key string) error
	setErr func(key string) error
}

func (s *flakyStore) Get(key string) ([]byte, uint32, error) {
	if s.getErr != nil {
		if err := s.getErr(key); err != nil {
			return nil, 0, err
		}
	}
	return s.Store.Get(key)
}

func (s *flakyStore) Set(key string, value []byte, cas uint32) error {
	if s.setErr != nil {
		if err := s.setErr(key); err != nil {
			return err
		}
	}
	return s.Store.Set(key, value, cas)
}

var errStoreDown = errors.New("store down")

// EncodeWake builds a wake-up message from a leader not named.
func EncodeWake(fp uint64, o Outcome, status int) []byte {
	return encodeWake(fp, o, status, LeaseHolder{})
}

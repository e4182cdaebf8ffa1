package cachecore

// A model's record made when a request is keyed must not let other
// requests refuse its first answers; a shadow's answer never crosses a
// purge; purge-log records fit every reader (review 10).

import (
	"strconv"
	"strings"
	"testing"
	"time"
)

// modelsInSlotOf finds n model names (not model) whose records share the slot
// of (route, model), through c's secret.
func modelsInSlotOf(t *testing.T, c *Cache, route, model string, n int) []string {
	t.Helper()
	id0, err := c.modelID(route, model)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for i := 0; len(out) < n; i++ {
		name := "x-" + strconv.Itoa(i)
		id, _ := c.modelID(route, name)
		if id%modelSlots == id0%modelSlots {
			out = append(out, name)
		}
	}
	return out
}

// A new model's record made at keying is not reclaimed while young, so
// the next new model in its slot takes a dead record's place and the
// first answer upstream is stored.
func TestInFlightRecordReclaimedKeepsItsAnswer(t *testing.T) {
	env := newEnv(t, roomyConfig)
	another := deadRecordsBeside(t, env)
	victim, _ := env.lookup("chat", alice, chatRequest("q"))       // the 16th record, made at keying
	env.request("chat", bob, withModel(chatRequest("q"), another)) // another new model, keyed
	st := env.cache.AdmitAndStore(victim, 200, jsonCT, []byte(chatResponse("a")), OriginUpstream, 10)
	if st.Reason != ReasonNone {
		t.Errorf("a new model's first answer is refused (%s): another new model's keying reclaimed its in-flight record, "+
			"not one of the 15 records dead for a day", st.Reason)
	}
}

// A client whose answers are never stored (keyed only) cannot evict
// another tenant's new model's record while its first answer is upstream.
func TestKeyedOnlyFloodKeepsOtherTenantsFirstAnswer(t *testing.T) {
	env := newEnv(t, roomyConfig)
	names := modelsInSlotOf(t, env.cache, "chat", "gpt-4o-mini", modelsPerSlot)
	victim, _ := env.lookup("chat", alice, chatRequest("q"))
	for _, m := range names { // keyed, forwarded, never stored (e.g. the upstream answers 404)
		env.request("chat", bob, withModel(chatRequest("x"), m))
	}
	st := env.cache.AdmitAndStore(victim, 200, jsonCT, []byte(chatResponse("a")), OriginUpstream, 10)
	if st.Reason != ReasonNone {
		t.Errorf("alice's first answer of a new model is refused (%s) after bob keyed %d model names", st.Reason, len(names))
	}
}

// The same, with a follower: it is served the stored answer, never a
// leader failure after the upstream answered 200.
func TestKeyedOnlyFloodKeepsFollowers(t *testing.T) {
	e := newProtoEnv(t, 0, "fail")
	names := modelsInSlotOf(t, e.w[0], "chat", "gpt-4o-mini", modelsPerSlot)
	a, _ := e.start(0, 1, "q")
	b, _ := e.start(1, 2, "q")
	for _, m := range names {
		c := e.w[0]
		req := c.Begin(c.routeByName("chat"), "POST", "/v1/chat/completions", bob)
		c.SetBody(req, []byte(withModel(chatRequest("x"), m)))
	}
	a.ResponseHeaders(200, jsonCT, OriginUpstream, false)
	_, acts := a.Complete(jsonCT, []byte(chatResponse("answer")), 10, nil)
	e.show(acts)
	if got := e.deliver(1, b); got != "" && !strings.HasPrefix(got, "serve") {
		t.Errorf("follower of a leader whose upstream answered 200, after another client keyed %d model names: %q", len(names), got)
	}
}

// A blind flood of model names fills the model table with records made
// at keying. While it lasts, a new model's first answers are refused as
// model_table_full — an uncacheable outcome: its followers go upstream,
// none fails — never stored under a state nothing checks; the models the
// flood found recorded keep theirs; and once the flood's records are 30 s
// old they give way, and new models are cached again.
func TestBlindFloodOfModelNames(t *testing.T) {
	env := newEnv(t, roomyConfig)
	known, _ := env.lookup("chat", alice, chatRequest("known"))
	env.fill(known, jsonCT, chatResponse("kept"), 10)
	n := 0
	atk := func(k int) {
		for i := 0; i < k; i++ {
			env.request("chat", bob, withModel(chatRequest("x"), "atk-"+strconv.Itoa(n)))
			n++
		}
	}
	atk(9000)
	for v := 0; v < 50; v++ {
		req, _ := env.lookup("chat", alice, withModel(chatRequest("q"), "victim-"+strconv.Itoa(v)))
		atk(256)
		st := env.cache.AdmitAndStore(req, 200, jsonCT, []byte(chatResponse("a")), OriginUpstream, 10)
		if st.Reason != ReasonNone && st.Reason != ReasonModelTableFull {
			t.Fatalf("victim %d refused for %s", v, st.Reason)
		}
		if st.Reason != ReasonNone && OutcomeOf(st.Reason, 200) != OutcomeUncacheable {
			t.Fatalf("victim %d: %s is not an uncacheable outcome", v, st.Reason)
		}
	}
	if _, d := env.lookup("chat", alice, chatRequest("known")); d != Serve {
		t.Fatal("a model recorded before the flood lost its entry")
	}
	env.clock.Advance(31 * time.Second)
	req, _ := env.lookup("chat", alice, withModel(chatRequest("q"), "after-the-flood"))
	if st := env.cache.AdmitAndStore(req, 200, jsonCT, []byte(chatResponse("a")), OriginUpstream, 10); st.Reason != ReasonNone {
		t.Fatalf("a new model after the flood: %s", st.Reason)
	}
}

// hookStore is a Store (Get and Set only) that runs a hook before a Get of
// one key, once armed, on the armed-th such Get.
type hookStore struct {
	Store
	key  string
	n    int // Gets of key left before the hook runs; 0: disarmed
	hook func()
}

func (s *hookStore) Get(key string) ([]byte, uint32, error) {
	if key == s.key && s.n > 0 {
		if s.n--; s.n == 0 {
			s.hook()
		}
	}
	return s.Store.Get(key)
}

// A purge by another worker while a shadow compares (here during its
// ObserveShadow update) refuses the shadow's fresh answer, asked before it.
func TestShadowPurgeDuringItsComparisonIsSeen(t *testing.T) {
	cfg := mustParse(t, `{"upstream_cluster":"u","purge":{"path":"/purge","token":"0123456789abcdef"},"routes":[{"name":"chat","kind":"chat",`+
		`"path_prefix":"/v1/chat","shadow":{"sample":1,"min_samples":50,"max_divergence":0.5}}]}`)
	mem, clock := NewMemStore(), newFakeClock()
	hs := &hookStore{Store: mem}
	w0 := New(cfg, Options{Store: hs, Now: clock.Now, Rand: seededRand(1)})
	w1 := New(cfg, Options{Store: mem, Now: clock.Now, Rand: seededRand(2)}) // another worker
	r := w0.routeByName("chat")
	ask := func(c *Cache) (*Request, Decision) {
		req := c.Begin(r, "POST", "/v1/chat", alice)
		c.SetBody(req, []byte(chatRequest("hi")))
		return req, c.Lookup(req)
	}
	req, _ := ask(w0)
	if st := w0.AdmitAndStore(req, 200, jsonCT, []byte(chatResponse("old")), OriginUpstream, 10); st.Reason != ReasonNone {
		t.Fatal(st.Reason)
	}
	req, d := ask(w0)
	if d != Serve {
		t.Fatal("setup: no hit")
	}
	acts := w0.Shadow(req, hdr(":method", "POST", ":path", "/v1/chat/completions"))
	id, _ := w0.modelID("chat", "gpt-4o-mini")
	hs.key, hs.n = modelKey(id), 2 // 1: the "moved" check; 2: ObserveShadow's update
	hs.hook = func() {
		clock.Advance(time.Millisecond)
		if _, err := w1.Purge([]byte(`{"route":"chat","model":"gpt-4o-mini"}`), ""); err != nil {
			t.Fatal(err)
		}
	}
	clock.Advance(time.Millisecond)
	acts[0].Call.Done(CallResult{Status: 200, Headers: jsonCT, Body: []byte(chatResponse("answered before the purge"))})
	if hs.n != 0 {
		t.Fatal("setup: the purge did not run")
	}
	if req, d := ask(w1); d == Serve {
		_, _, body := w1.HitResponse(req)
		t.Errorf("the shadow's answer, asked before the purge, is served after it: %s", body)
	}
}

// Purge-log records fit what every reader takes, whatever the writer's
// max_request_bytes: a reader with a smaller one (another configuration,
// a fleet mid-rollout) keeps reading the log.
func TestPurgeLogRecordWithinEveryReadersCap(t *testing.T) {
	m := &l2Mesh{t: t, clock: newFakeClock(), wd: newFakeWebdis()}
	writer := mustParse(t, `{"upstream_cluster":"model","max_request_bytes":1048576,"l2":{"cluster":"webdis"},"purge":{"path":"/purge","token":"0123456789abcdef"},
	 "routes":[{"name":"chat","kind":"chat","path_prefix":"/v1/chat/completions","ttl":"1h"},
	           {"name":"embed","kind":"embeddings","path_exact":"/v1/embeddings","ttl":"1h"}]}`)
	reader := mustParse(t, `{"upstream_cluster":"model","max_request_bytes":8192,"l2":{"cluster":"webdis"},"purge":{"path":"/purge","token":"0123456789abcdef"},
	 "routes":[{"name":"chat","kind":"chat","path_prefix":"/v1/chat/completions","ttl":"1h"}]}`)
	m.p[0] = New(writer, Options{Store: NewMemStore(), Now: m.clock.Now, Rand: seededRand(0)})
	m.p[1] = New(reader, Options{Store: NewMemStore(), Now: m.clock.Now, Rand: seededRand(1)})
	for _, p := range m.p {
		m.step(p.L2Tick())
	}
	chat := m.helloOnB()
	purge := m.purgeOnA
	// One embeddings entry of 600 KB (within the writer's 1 MiB).
	purge(`{"path":"/v1/embeddings","headers":{"authorization":"Bearer sk-alice"},"body":{"model":"e","input":"` + strings.Repeat("a", 600<<10) + `"}}`)
	purge(`{"path":"/v1/chat/completions","headers":{"authorization":"Bearer sk-alice"},"body":` + chatRequest("hello") + `}`)
	for range 20 {
		m.clock.Advance(DefaultL2SyncInterval + 100*time.Millisecond)
		m.step(m.p[1].L2Tick())
	}
	if m.p[1].Lookup(chat()) == Serve {
		t.Errorf("the reader still serves the purged chat answer 20 sync intervals later: its log reads stopped at a %d-byte record (cap %d per read)",
			len(m.wd.lists["mc:purges"][0]), m.p[1].l2SyncCap())
	}
}

// A flood of only-if-cached requests (answered locally, each new name
// keyed and recorded) cannot evict a first answer's record either.
func TestOnlyIfCachedFloodKeepsFirstAnswer(t *testing.T) {
	env := newEnv(t, roomyConfig)
	names := modelsInSlotOf(t, env.cache, "chat", "gpt-4o-mini", modelsPerSlot)
	victim, _ := env.lookup("chat", alice, chatRequest("q"))
	h := hdr("authorization", "Bearer sk-bob", "cache-control", "only-if-cached")
	for _, m := range names {
		if _, d := env.lookup("chat", h, withModel(chatRequest("x"), m)); d != Unavailable {
			t.Fatalf("setup: only-if-cached request: %v", d)
		}
	}
	if st := env.cache.AdmitAndStore(victim, 200, jsonCT, []byte(chatResponse("a")), OriginUpstream, 10); st.Reason != ReasonNone {
		t.Errorf("alice's first answer is refused (%s) after %d only-if-cached requests, none of which reached the upstream", st.Reason, len(names))
	}
}

// deadRecordsBeside fills gpt-4o-mini's model-table slot on route chat
// with 15 records whose entries have been dead for a day, and returns a
// 16th model name of that slot, not yet seen.
func deadRecordsBeside(t *testing.T, env *testEnv) string {
	t.Helper()
	others := modelsInSlotOf(t, env.cache, "chat", "gpt-4o-mini", modelsPerSlot)
	for _, m := range others[:modelsPerSlot-1] {
		req, _ := env.lookup("chat", bob, withModel(chatRequest("q"), m))
		env.fill(req, jsonCT, chatResponse(m), 10)
	}
	env.clock.Advance(24 * time.Hour)
	return others[modelsPerSlot-1]
}

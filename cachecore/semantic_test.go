package cachecore

import (
	"encoding/binary"
	"fmt"
	"math/rand/v2"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

const semConfig = `{"upstream_cluster":"model","routes":[{"name":"chat","kind":"chat","path_prefix":"/v1/chat/completions",
  "ttl":"1h","semantic":{"embedding":{"cluster":"embeddings","model":"e5"}%s}}]}`

func TestSemanticConfig(t *testing.T) {
	c := mustParse(t, fmt.Sprintf(semConfig, ""))
	s := c.Routes[0].Semantic
	if s == nil || s.Embedding.Path != "/v1/embeddings" || s.MinSimilarity != DefaultMinSimilarity || s.ConfirmHits != 1 ||
		!s.Guards.Numbers || !s.Guards.Negation || !s.Guards.Entities || s.MaxEntries != 10000 {
		t.Fatalf("defaults: %+v", s)
	}
	if c := mustParse(t, fmt.Sprintf(semConfig, `,"guards":false,"min_similarity":0.95,"confirm":{"exact_hits":0}`)); c.Routes[0].Semantic.Guards != (Guards{}) ||
		c.Routes[0].Semantic.MinSimilarity != 0.95 || c.Routes[0].Semantic.ConfirmHits != 0 {
		t.Fatalf("overrides: %+v", c.Routes[0].Semantic)
	}
	if c := mustParse(t, `{"routes":[{"name":"chat","kind":"chat","path_prefix":"/x"}]}`); c.Routes[0].Semantic != nil {
		t.Fatal("semantic on without the option")
	}
	for _, bad := range []struct{ cfg, want string }{
		{`{"routes":[{"name":"c","kind":"chat","path_prefix":"/x","semantic":{}}]}`, "routes[0].semantic.embedding.cluster: is required"},
		{`{"routes":[{"name":"e","kind":"embeddings","path_prefix":"/x","semantic":{"embedding":{"cluster":"e"}}}]}`, "only for chat and completions"},
		{`{"defaults":{"semantic":{"embedding":{"cluster":"e"}}},"routes":[{"name":"c","kind":"chat","path_prefix":"/x"}]}`, "not in defaults"},
		{fmt.Sprintf(semConfig, `,"min_similarity":0.2`), "min_similarity"},
		{fmt.Sprintf(semConfig, `,"guards":{"numbers":true,"colour":true}`), "guards.colour: unknown field"},
		{fmt.Sprintf(semConfig, `,"max_entries":0`), "max_entries"},
		{strings.Replace(fmt.Sprintf(semConfig, ""), `"model":"e5"`, `"model":"e5","path":"v1"`, 1), "must start with /"},
	} {
		_, err := ParseConfig([]byte(bad.cfg))
		if err == nil || !strings.Contains(err.Error(), bad.want) {
			t.Errorf("%s: error %v, want %q", bad.cfg, err, bad.want)
		}
	}
}

// semEnv drives one worker's Flights on a semantic route, answering the
// embeddings calls with vec(text).
type semEnv struct {
	*testEnv
	vec   func(text string) []float64
	model string
	id    uint32
	logs  []string
	asked int // storeOn's questions
}

// storeOn stores a new question's answer through worker w, its turn
// embedded by model, and lets a second pass.
func (e *semEnv) storeOn(w *Cache, model string) {
	e.cache, e.model = w, model
	e.asked++
	f, _ := e.ask(alice, fmt.Sprintf("question number %d", e.asked), nil)
	e.answer(f, "a")
	e.clock.Advance(time.Second)
}

func newSemEnv(t *testing.T, extra string) *semEnv {
	return &semEnv{testEnv: newEnv(t, fmt.Sprintf(semConfig, extra)), model: "e5-small", vec: func(text string) []float64 {
		v := make([]float64, 16)
		for i := range v {
			v[i] = float64(i%5) + 1
		}
		return v // every text alike: only the guards, confirmation and partitions tell them apart
	}}
}

func semEmbAnswer(model string, v []float64) CallResult {
	parts := make([]string, len(v))
	for i, x := range v {
		parts[i] = strconv.FormatFloat(x, 'g', -1, 64)
	}
	return CallResult{Status: 200, Body: []byte(`{"model":"` + model + `","data":[{"embedding":[` + strings.Join(parts, ",") + `]}]}`)}
}

// ask runs a request for prompt to its first decision, answering an
// embeddings call with res (nil: the env's vector). It returns the flight
// and the action kinds.
func (e *semEnv) ask(headers [][2]string, prompt string, res *CallResult) (*Flight, string) {
	e.id++
	req := e.cache.Begin(e.route("chat"), "POST", "/v1/chat/completions", headers)
	f := e.cache.NewFlight(req, 1, e.id)
	acts := f.RequestBody([]byte(chatRequest(prompt)), false)
	var kinds []string
	for len(acts) > 0 {
		a := acts[0]
		acts = acts[1:]
		if a.Kind == ActLog {
			e.logs = append(e.logs, string(a.Message))
		}
		if a.Kind != ActDispatch {
			kinds = append(kinds, actionKinds([]Action{a}))
			if a.Kind == ActForward && a.Resume {
				kinds = append(kinds, "(resume)")
			}
			continue
		}
		kinds = append(kinds, "embed")
		if a.Call.Cluster != "embeddings" || !strings.Contains(string(a.Call.Body), `"model":"e5"`) {
			e.t.Fatalf("call %s %s", a.Call.Cluster, a.Call.Body)
		}
		r := semEmbAnswer(e.model, e.vec(prompt))
		if res != nil {
			r = *res
		}
		acts = append(acts, a.Call.Done(r)...)
	}
	return f, strings.Join(kinds, " ")
}

// answer completes f's request upstream with content (stored).
func (e *semEnv) answer(f *Flight, content string) string {
	f.ResponseHeaders(200, jsonCT, OriginUpstream, false)
	_, acts := f.Complete(jsonCT, []byte(chatResponse(content)), 5, alice)
	return actionKinds(acts)
}

func TestSemanticFlight(t *testing.T) {
	e := newSemEnv(t, "")
	q := "How do I reset my password?"
	f, got := e.ask(alice, q, nil)
	if got != "embed semantic.misses coalesce.leaders forward (resume)" {
		t.Fatalf("first ask: %q", got)
	}
	if got := e.answer(f, "Click 'forgot password'."); !strings.Contains(got, "semantic.indexed") {
		t.Fatalf("store: %q", got)
	}
	para := "How can I reset my password?"
	if _, got := e.ask(alice, para, nil); !strings.Contains(got, "semantic.unconfirmed") || strings.Contains(got, "serve") {
		t.Fatalf("unconfirmed entry: %q", got)
	}
	if _, got := e.ask(alice, q, nil); got != "semantic.confirmed serve" {
		t.Fatalf("exact hit: %q", got)
	}
	f, got = e.ask(alice, para, nil)
	if !strings.Contains(got, "semantic.hits serve") {
		t.Fatalf("confirmed entry: %q", got)
	}
	status, headers, body := e.cache.HitResponse(f.Request())
	if status != 200 || !strings.Contains(headerValue(headers, "cache-status"), "hit") || !strings.Contains(headerValue(headers, "cache-status"), "detail=semantic") ||
		!strings.HasPrefix(headerValue(headers, SimilarityHeader), "0.99") && headerValue(headers, SimilarityHeader) != "1.000" || !strings.Contains(string(body), "forgot password") {
		t.Fatalf("near hit: %d %v %s", status, headers, body)
	}
	// The vector of a turn already embedded is not asked for again.
	if _, got := e.ask(alice, para, nil); !strings.HasPrefix(got, "semantic.vector_cached") {
		t.Fatalf("second near ask: %q", got)
	}
	// Partitions: another tenant; guards: a negation.
	if _, got := e.ask(bob, para, nil); strings.Contains(got, "serve") {
		t.Fatalf("another tenant: %q", got)
	}
	if _, got := e.ask(alice, "How do I not reset my password?", nil); !strings.Contains(got, "semantic.veto.negation") || strings.Contains(got, "serve") {
		t.Fatalf("negation: %q", got)
	}
	// A shadow comparison of the near hit that diverges demotes the entry.
	if acts := e.cache.semanticShadow(f.Request(), false); actionKinds(acts) != "semantic.demoted" {
		t.Fatalf("demotion: %q", actionKinds(acts))
	}
	if _, got := e.ask(alice, "How could I reset my password?", nil); strings.Contains(got, "serve") {
		t.Fatalf("demoted entry: %q", got)
	}
	if _, got := e.ask(alice, q, nil); !strings.HasSuffix(got, "serve") {
		t.Fatalf("demoted entry, exact: %q", got)
	}
}

func TestSemanticEmbeddingFailuresFailOpen(t *testing.T) {
	for _, c := range []struct {
		name string
		res  CallResult
		want string
	}{
		{"not started", CallResult{NotStarted: true}, "embed semantic.embed_error coalesce.leaders forward"},
		{"reset or timeout", CallResult{Failed: true}, "embed semantic.embed_timeout coalesce.leaders forward (resume)"},
		{"envoy's 504", CallResult{Status: 504}, "embed semantic.embed_timeout coalesce.leaders forward (resume)"},
		{"500", CallResult{Status: 500, Body: []byte(`{}`)}, "embed semantic.embed_error coalesce.leaders forward (resume)"},
		{"garbage", CallResult{Status: 200, Body: []byte("\x00\xff")}, "embed semantic.embed_error coalesce.leaders forward (resume)"},
		{"non-finite", CallResult{Status: 200, Body: []byte(`{"data":[{"embedding":[1e999,1,1,1,1,1,1,1]}]}`)}, "embed semantic.embed_error coalesce.leaders forward (resume)"},
		{"zero", CallResult{Status: 200, Body: []byte(`{"data":[{"embedding":[0,0,0,0,0,0,0,0]}]}`)}, "embed semantic.embed_error coalesce.leaders forward (resume)"},
		{"too short", CallResult{Status: 200, Body: []byte(`{"data":[{"embedding":[1,2]}]}`)}, "embed semantic.embed_error coalesce.leaders forward (resume)"},
		{"strings", CallResult{Status: 200, Body: []byte(`{"data":[{"embedding":["1","2","3","4","5","6","7","8"]}]}`)}, "embed semantic.embed_error coalesce.leaders forward (resume)"},
	} {
		t.Run(c.name, func(t *testing.T) {
			e := newSemEnv(t, "")
			res := c.res
			if _, got := e.ask(alice, "What is the capital of France?", &res); got != c.want {
				t.Fatalf("got %q, want %q", got, c.want)
			}
		})
	}
}

func TestSemanticModelChangeSeparatesVectors(t *testing.T) {
	e := newSemEnv(t, `,"confirm":{"exact_hits":0}`)
	f, _ := e.ask(alice, "How do I reset my password?", nil)
	e.answer(f, "Click 'forgot password'.")
	if _, got := e.ask(alice, "How can I reset my password?", nil); !strings.HasSuffix(got, "serve") {
		t.Fatalf("same model: %q", got)
	}
	e.model = "e5-large" // the server now reports another model (same dimension)
	_, got := e.ask(alice, "How could I reset my password?", nil)
	if strings.Contains(got, "serve") || !strings.Contains(got, "semantic.model_changes") {
		t.Fatalf("another model: %q", got)
	}
	// The old model's index is kept (it is reclaimed once idle: its
	// replicas may answer again during a rolling update).
	if len(e.logs) != 1 || !strings.Contains(e.logs[0], "(0 reclaimed now)") || !strings.Contains(e.logs[0], "e5-large") {
		t.Fatalf("logs %q", e.logs)
	}
	// Another dimension under the same name is another namespace too.
	e.vec = func(string) []float64 { return []float64{1, 2, 3, 4, 5, 6, 7, 8} }
	if _, got := e.ask(alice, "How might I reset my password?", nil); strings.Contains(got, "serve") || !strings.Contains(got, "semantic.model_changes") {
		t.Fatalf("another dimension: %q", got)
	}
}

// A rolling update of the embeddings deployment: replicas answer with two
// identities mixed. One answer of the other identity must not wipe the
// index of the one the server reports again right after (namespaces keep
// their vectors apart already; an idle one is reclaimed later).
func TestSemanticOneStrayModelAnswerKeepsTheIndex(t *testing.T) {
	e := newSemEnv(t, `,"confirm":{"exact_hits":0}`)
	stored := "How do I reset my password?"
	f, _ := e.ask(alice, stored, nil)
	e.answer(f, "Click 'forgot password'.")
	if _, got := e.ask(alice, "How can I reset my password?", nil); !strings.HasSuffix(got, "serve") {
		t.Fatalf("setup: %q", got)
	}
	e.model = "e5-small-v2" // one answer from a replica reporting another version
	e.ask(alice, "What is the capital of France?", nil)
	e.model = "e5-small"
	changes := 0
	for i := 0; i < 5; i++ {
		_, got := e.ask(alice, fmt.Sprintf("How could I reset my password %s?", strings.Repeat("please ", i)), nil)
		if strings.Contains(got, "semantic.model_changes") {
			changes++
		}
		if strings.HasSuffix(got, "serve") {
			return
		}
	}
	t.Fatalf("the model is e5-small again and the entry is fresh, but its turn was reclaimed: no near hit (model_changes counted %d more times, %d warnings logged)", changes, len(e.logs))
}

// semNamespacesHeld counts the embedding namespaces whose index holds
// turns.
func (e *semEnv) semNamespacesHeld() int {
	n := 0
	for k, v := range e.store.m {
		if strings.HasPrefix(k, "modelcache/sem2/") && strings.HasSuffix(k, "/n") && len(v.v) == 4 && binary.LittleEndian.Uint32(v.v) > 0 {
			n++
		}
	}
	return n
}

// A model no longer reported is reclaimed once idle: a namespace never
// used again does not keep its turns for good.
func TestSemanticIdleModelNamespaceIsReclaimed(t *testing.T) {
	e := newSemEnv(t, "")
	f, _ := e.ask(alice, "How do I reset my password?", nil)
	e.answer(f, "Click 'forgot password'.")
	e.model = "e5-large"
	e.ask(alice, "What is the capital of France?", nil)
	if got := e.semNamespacesHeld(); got != 1 {
		t.Fatalf("right after the change: %d namespaces hold turns, want the old one kept", got)
	}
	e.clock.Advance(semNamespaceIdleMs*time.Millisecond + time.Minute)
	e.ask(alice, "What is the capital of Spain?", nil)
	if got := e.semNamespacesHeld(); got != 0 {
		t.Fatalf("%d namespaces hold turns after the old model was not reported for %v", got, semNamespaceIdleMs*time.Millisecond)
	}
}

// Workers of one process whose embeddings answers report ever new
// identities (a version header per replica, a flapping deployment): the
// route's index holds at most semMaxNamespaces namespaces, the changes are
// counted and the warning is logged once per semModelWarnMs.
func TestSemanticFlappingModelsKeepABoundedIndex(t *testing.T) {
	e := newSemEnv(t, "")
	workers := []*Cache{e.cache, New(mustParse(t, fmt.Sprintf(semConfig, "")), Options{Store: e.store, Now: e.clock.Now, Rand: seededRand(2)})}
	changes := 0
	for i := 0; i < 12; i++ {
		e.cache = workers[i%2]
		e.model = fmt.Sprintf("e5-small-%d", i%7)
		f, got := e.ask(alice, fmt.Sprintf("question number %d", i), nil)
		changes += strings.Count(got, "semantic.model_changes")
		e.answer(f, "a")
		if got := e.semNamespacesHeld(); got > semMaxNamespaces {
			t.Fatalf("after %d identities: %d namespaces hold turns (at most %d)", i+1, got, semMaxNamespaces)
		}
		e.clock.Advance(time.Second)
	}
	if changes != 11 || len(e.logs) != 1 {
		t.Fatalf("%d changes counted (want 11), %d warnings logged (want 1): %q", changes, len(e.logs), e.logs)
	}
}

func TestSemanticIndexBound(t *testing.T) {
	e := newSemEnv(t, `,"max_entries":2`)
	var got []string
	for i := 0; i < 3; i++ {
		f, _ := e.ask(alice, fmt.Sprintf("question number %d", i), nil)
		got = append(got, e.answer(f, "a"))
	}
	if !strings.Contains(got[1], "semantic.indexed") || !strings.Contains(got[2], "semantic.index_full") {
		t.Fatalf("%q", got)
	}
}

// BenchmarkSemanticLookup10k: a search of one partition of 10,000
// indexed turns (384 dimensions, int8), the embedding call excluded.
func BenchmarkSemanticLookup10k(b *testing.B) {
	store := NewMemStore()
	ix := semIndexStore{s: readerOf(store)}
	rng := rand.New(rand.NewPCG(1, 2))
	randVec := func() ([]int8, float32) {
		v := make([]float32, 384)
		for i := range v {
			v[i] = float32(rng.NormFloat64())
		}
		return quantise(v)
	}
	for i := 0; i < 10000; i++ {
		q, n := randVec()
		if _, err := ix.add(1, 2, q, n, []byte(fmt.Sprintf(`"stored question number %d about something"`, i)), 1<<62, 0, 20000, semOwner{}, new(semSweepPos)); err != nil {
			b.Fatal(err)
		}
	}
	q, n := randVec()
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		ix.search(1, 2, q, n, 0.9)
	}
	// Index memory per entry, measured (the turns here are ~45 bytes).
	b.ReportMetric(float64(store.Bytes())/10000, "index-B/entry")
}

// The sign-bit shortlist must not lose a near duplicate among many
// unrelated turns that are all fairly similar (as a small encoder's
// vectors are: a large shared component, cosine ~0.8 between unrelated
// texts).
func TestSemanticSearchFindsNearDuplicateAmongTenThousand(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	const dim = 384
	common := make([]float64, dim)
	for i := range common {
		common[i] = rng.NormFloat64()
	}
	vec := func(base []float64, noise float64) []float32 {
		v := make([]float32, dim)
		for i := range v {
			v[i] = float32(base[i] + noise*rng.NormFloat64())
		}
		return v
	}
	for trial := 0; trial < 5; trial++ {
		store := NewMemStore()
		ix := semIndexStore{s: readerOf(store)}
		topic := make([]float64, dim)
		for i := range topic {
			topic[i] = common[i] + 0.5*rng.NormFloat64()
		}
		var unrelatedMax float64
		qv := vec(topic, 0.2)
		q, qn := quantise(qv)
		target := 5000 + trial*997
		for i := 0; i < 10000; i++ {
			var v []float32
			if i == target {
				v = vec(topic, 0.2) // the near duplicate
			} else {
				v = vec(common, 0.5) // unrelated, but close: cos ≈ 0.8
			}
			r, n := quantise(v)
			if i != target {
				if c := float64(dot(q, int8Bytes(r))) / float64(qn*n); c > unrelatedMax {
					unrelatedMax = c
				}
			}
			if _, err := ix.add(1, 2, r, n, []byte(strconv.Quote(strconv.Itoa(i))), 1<<62, 0, 20000, semOwner{}, new(semSweepPos)); err != nil {
				t.Fatal(err)
			}
		}
		got := ix.search(1, 2, q, qn, unrelatedMax+0.01)
		if len(got) == 0 || got[0].text != strconv.Itoa(target) {
			t.Fatalf("trial %d: near duplicate not found above the closest unrelated turn (%.3f): %+v", trial, unrelatedMax, got)
		}
	}
}

func int8Bytes(v []int8) []byte {
	b := make([]byte, len(v))
	for i, x := range v {
		b[i] = byte(x)
	}
	return b
}

// Two workers: while one embeds a turn the other does not call for it
// (it goes on as an exact miss); once embedded, the other reuses the
// vector from shared data.
func TestSemanticTurnEmbeddedOncePerProcess(t *testing.T) {
	store, clock := NewMemStore(), newFakeClock()
	cfg := mustParse(t, fmt.Sprintf(semConfig, ""))
	var w [2]*Cache
	for i := range w {
		w[i] = New(cfg, Options{Store: store, Now: clock.Now, Rand: seededRand(uint64(i))})
	}
	begin := func(c *Cache, id uint32) (*Flight, []Action) {
		req := c.Begin(c.routeByName("chat"), "POST", "/v1/chat/completions", alice)
		f := c.NewFlight(req, uint64(id), id)
		return f, f.RequestBody([]byte(chatRequest("What is the capital of France?")), false)
	}
	_, acts := begin(w[0], 1)
	if len(acts) != 1 || acts[0].Kind != ActDispatch {
		t.Fatalf("worker 1: %q", actionKinds(acts))
	}
	if _, acts2 := begin(w[1], 2); actionKinds(acts2) != "coalesce.leaders forward" {
		t.Fatalf("worker 2 while worker 1 embeds: %q", actionKinds(acts2))
	}
	v := make([]float64, 16)
	for i := range v {
		v[i] = float64(i + 1)
	}
	acts[0].Call.Done(semEmbAnswer("e5-small", v))
	if _, acts3 := begin(w[1], 3); !strings.HasPrefix(actionKinds(acts3), "semantic.vector_cached") {
		t.Fatalf("worker 2 after: %q", actionKinds(acts3))
	}
}

// Confirmation belongs to the stored answer, not to its key: an answer
// stored again under the same question (after a purge, a refresh, an
// expiry) must be confirmed again before near matches reach it.
func TestSemanticConfirmationBelongsToTheStoredAnswer(t *testing.T) {
	e := newSemEnv(t, "")
	q, para := "How do I reset my password?", "How can I reset my password?"
	f, _ := e.ask(alice, q, nil)
	e.answer(f, "Click 'forgot password'.")
	e.ask(alice, q, nil) // exact hit: confirmed
	if _, got := e.ask(alice, para, nil); !strings.HasSuffix(got, "serve") {
		t.Fatalf("confirmed: %q", got)
	}
	// The same question's answer is stored anew (e.g. after a purge).
	e.clock.Advance(2 * time.Second)
	req := e.cache.Begin(e.route("chat"), "POST", "/v1/chat/completions", alice)
	e.cache.SetBody(req, []byte(chatRequest(q)))
	if st := e.cache.AdmitAndStore(req, 200, jsonCT, []byte(chatResponse("A different, unverified answer.")), OriginUpstream, 5); st.Reason != ReasonNone {
		t.Fatal(st.Reason)
	}
	if _, got := e.ask(alice, "How could I reset my password?", nil); strings.HasSuffix(got, "serve") || !strings.Contains(got, "semantic.unconfirmed") {
		t.Fatalf("a new answer under a confirmed key served a near match: %q", got)
	}
}

// A request whose client left while its turn was being embedded never
// gets the call's result (the host drops it): the turn must not stay
// "being embedded" for ever on that worker.
func TestSemanticAbandonedEmbeddingExpires(t *testing.T) {
	e := newSemEnv(t, "")
	req := e.cache.Begin(e.route("chat"), "POST", "/v1/chat/completions", alice)
	f := e.cache.NewFlight(req, 1, 99)
	if acts := f.RequestBody([]byte(chatRequest("What is the capital of France?")), false); len(acts) != 1 || acts[0].Kind != ActDispatch {
		t.Fatalf("%q", actionKinds(acts))
	}
	f.Done() // the client left; Done of the call is never called
	e.clock.Advance(5 * time.Second)
	if _, got := e.ask(alice, "What is the capital of France?", nil); !strings.HasPrefix(got, "embed") {
		t.Fatalf("after the abandoned call's deadline: %q", got)
	}
}

// Confirmation records live in a fixed number of slots: however many
// answers are confirmed, the shared data they use is bounded, and an
// answer whose slot another answer took is unconfirmed, never confirmed
// by the other's record.
func TestSemanticConfirmationRecordsAreBounded(t *testing.T) {
	defer func(n uint64) { semConfirmSlots = n }(semConfirmSlots)
	semConfirmSlots = 8
	e := newSemEnv(t, "")
	for i := 0; i < 50; i++ {
		q := fmt.Sprintf("question number %d", i)
		f, _ := e.ask(alice, q, nil)
		e.answer(f, "a")
		e.ask(alice, q, nil) // exact hit: confirms
	}
	n := 0
	for k := range e.store.m {
		if strings.HasPrefix(k, "modelcache/semc/") {
			n++
		}
	}
	if n > 8 {
		t.Fatalf("%d confirmation keys for 8 slots", n)
	}
	confirmed := 0
	for i := 0; i < 50; i++ {
		req := e.cache.Begin(e.route("chat"), "POST", "/v1/chat/completions", alice)
		e.cache.SetBody(req, []byte(chatRequest(fmt.Sprintf("question number %d", i))))
		if e.cache.Lookup(req) != Serve {
			t.Fatal("not stored")
		}
		if c := e.cache.semConfirmState(req.FP).of(req.Entry.StoredAt); c.confirmedBy(req.Route.Semantic) {
			confirmed++
		}
	}
	if confirmed > 8 {
		t.Fatalf("%d answers confirmed through 8 slots", confirmed)
	}
}

// A full index makes room by dropping turns whose answers expired: it does
// not stop indexing for good once max_entries turns were ever indexed.
func TestSemanticFullIndexReclaimsExpiredTurns(t *testing.T) {
	e := newSemEnv(t, `,"max_entries":2`)
	store := func(q string) string {
		f, _ := e.ask(alice, q, nil)
		return e.answer(f, "a")
	}
	store("question number one")
	store("question number two")
	if got := store("question number three"); !strings.Contains(got, "semantic.index_full") {
		t.Fatalf("third: %q", got)
	}
	e.clock.Advance(2 * time.Hour) // the route's ttl is 1h
	if got := store("question number four"); !strings.Contains(got, "semantic.indexed") {
		t.Fatalf("after the indexed answers expired: %q", got)
	}
}

// semAskBody runs one request with body on route to its first decision,
// answering embeddings calls with e.vec(turn), as ask does for chat.
func (e *semEnv) semAskBody(route, path string, headers [][2]string, body, turn string) (*Flight, string) {
	e.id++
	req := e.cache.Begin(e.route(route), "POST", path, headers)
	f := e.cache.NewFlight(req, 1, e.id)
	acts := f.RequestBody([]byte(body), false)
	var kinds []string
	for len(acts) > 0 {
		a := acts[0]
		acts = acts[1:]
		if a.Kind != ActDispatch {
			kinds = append(kinds, actionKinds([]Action{a}))
			continue
		}
		kinds = append(kinds, "embed")
		acts = append(acts, a.Call.Done(semEmbAnswer(e.model, e.vec(turn)))...)
	}
	return f, strings.Join(kinds, " ")
}

// With echo, a completion's text is its prompt followed by the
// continuation: a near match's answer would repeat another prompt (and
// its logprobs describe that prompt's tokens). Such a request is matched
// exactly only; without echo the same pair is a near hit.
func TestSemanticCompletionsWithEchoMatchOnlyExactly(t *testing.T) {
	const cfg = `{"upstream_cluster":"model","routes":[{"name":"cmpl","kind":"completions","path_prefix":"/v1/completions",
	  "ttl":"1h","semantic":{"embedding":{"cluster":"embeddings","model":"e5"}}}]}`
	for _, echo := range []bool{false, true} {
		e := newSemEnv(t, "")
		e.testEnv = newEnv(t, cfg)
		body := func(p string) string {
			return `{"model":"gpt-3.5-turbo-instruct","prompt":` + quote(p) + `,"echo":` + fmt.Sprint(echo) + `,"max_tokens":64,"temperature":0}`
		}
		stored := "How do I reset my password?"
		text := " Click 'forgot password'."
		if echo {
			text = stored + text
		}
		f, _ := e.semAskBody("cmpl", "/v1/completions", alice, body(stored), stored)
		f.ResponseHeaders(200, jsonCT, OriginUpstream, false)
		f.Complete(jsonCT, []byte(`{"id":"cmpl-1","object":"text_completion","choices":[{"index":0,"text":`+
			quote(text)+`,"finish_reason":"stop"}]}`), 5, alice)
		if _, got := e.semAskBody("cmpl", "/v1/completions", alice, body(stored), stored); !strings.HasSuffix(got, "serve") {
			t.Fatalf("echo %v: the exact request again: %q", echo, got)
		}
		para := "How can I reset my password?"
		_, got := e.semAskBody("cmpl", "/v1/completions", alice, body(para), para)
		if near := strings.HasSuffix(got, "serve"); near == echo {
			t.Errorf("echo %v: a paraphrase: %q", echo, got)
		}
	}
}

// The vectors of turns are kept per tenant: a turn another tenant sent
// was answered from its vector, with no embeddings call, and the time
// saved told the second tenant that someone had asked those words.
func TestSemanticTurnVectorsArePerTenant(t *testing.T) {
	e := newSemEnv(t, "")
	secret := "Is Jane Doe in accounting being laid off next week?"
	e.ask(alice, secret, nil)
	if _, got := e.ask(bob, secret, nil); !strings.Contains(got, "embed") {
		t.Fatalf("bob's identical turn answered from alice's vector, no embeddings call: %q", got)
	}
	if _, got := e.ask(alice, secret, nil); !strings.Contains(got, "semantic.vector_cached") || strings.Contains(got, "embed") {
		t.Fatalf("alice's own turn again: %q", got)
	}
}

// vLLM reads a completions request with pydantic in lax mode: "echo": 1
// (or "true") is echo on, and its answer starts with its own prompt. The
// semantic step skips only the JSON literal true, so a paraphrase with
// "echo": 1 is served another prompt's echoed text.
func TestSemanticCompletionsWithLenientEchoMatchOnlyExactly(t *testing.T) {
	const cfg = `{"upstream_cluster":"model","routes":[{"name":"cmpl","kind":"completions","path_prefix":"/v1/completions",
	  "ttl":"1h","semantic":{"embedding":{"cluster":"embeddings","model":"e5"}}}]}`
	e := newSemEnv(t, "")
	e.testEnv = newEnv(t, cfg)
	body := func(p string) string {
		return `{"model":"Qwen/Qwen2.5-7B","prompt":` + quote(p) + `,"echo":1,"max_tokens":64,"temperature":0}`
	}
	stored := "How do I reset my password?"
	f, _ := e.semAskBody("cmpl", "/v1/completions", alice, body(stored), stored)
	f.ResponseHeaders(200, jsonCT, OriginUpstream, false)
	f.Complete(jsonCT, []byte(`{"id":"cmpl-1","object":"text_completion","choices":[{"index":0,"text":`+
		quote(stored+" Click 'forgot password'.")+`,"finish_reason":"stop"}]}`), 5, alice)
	para := "How can I reset my password?"
	_, again := e.semAskBody("cmpl", "/v1/completions", alice, body(stored), stored)
	t.Logf("exact again: %q", again)
	_, got := e.semAskBody("cmpl", "/v1/completions", alice, body(para), para)
	t.Logf("para: %q", got)
	if strings.HasSuffix(got, "serve") {
		t.Fatalf(`"echo":1 paraphrase served the stored prompt's echoed text: %q`, got)
	}
}

// A worker keeps indexing under the namespace it last saw for up to
// semModelRecheckMs without reading the route's list. When another worker
// evicts that namespace from the list (a 4th identity) and reclaims it,
// the first worker's next store writes into it again: that write finds it
// unlisted and reclaims it (it was left unlisted, and its turns were never
// reclaimed: the route's index held more than semMaxNamespaces namespaces
// for good).
func TestSemanticEvictedNamespaceWrittenAgainIsReclaimed(t *testing.T) {
	e := newSemEnv(t, "")
	w1 := e.cache
	w2 := New(mustParse(t, fmt.Sprintf(semConfig, "")), Options{Store: e.store, Now: e.clock.Now, Rand: seededRand(2)})
	store := e.storeOn
	store(w2, "m0") // w2 lists m0 and indexes a turn under it
	store(w1, "m1")
	store(w1, "m2")
	store(w1, "m3") // a 4th identity: m0, the least recent, is evicted and reclaimed
	store(w2, "m0") // w2 has not re-read the list (within a minute): indexes under m0 again
	store(w2, "m4") // w2's model changes: m1 is evicted; m0 is not listed
	if got := e.semNamespacesHeld(); got > semMaxNamespaces {
		t.Errorf("%d namespaces hold turns (at most %d)", got, semMaxNamespaces)
	}
	e.clock.Advance(semNamespaceIdleMs*time.Millisecond + time.Minute)
	store(w1, "m4") // every other namespace is idle: reclaimed
	if got := e.semNamespacesHeld(); got != 1 {
		t.Fatalf("%d namespaces hold turns after all but m4 were idle for %v, want 1 (m0's turns are never reclaimed)", got, semNamespaceIdleMs*time.Millisecond)
	}
}

// The shared slots keep a vector of a model no longer reported until the
// slot is reused. A fresh worker (a restart, a new Envoy worker) that has
// seen no model yet and asks a turn embedded under the old model must not
// take that vector: it counted a model change, logged that the server
// "now reports" the old model — it reports e5-large — re-listed the old,
// already reclaimed namespace and indexed the new answer's turn in it.
func TestSemanticFreshWorkerIgnoresAStaleSharedVector(t *testing.T) {
	e := newSemEnv(t, "")
	f, _ := e.ask(alice, "How do I reset my password?", nil)
	e.answer(f, "a")
	e.ask(alice, "What is the tallest mountain?", nil) // embedded under e5-small and shared
	e.model = "e5-large"
	f, _ = e.ask(alice, "What is the capital of France?", nil)
	e.answer(f, "b")
	e.clock.Advance(semNamespaceIdleMs*time.Millisecond + time.Minute)
	e.ask(alice, "What is the capital of Spain?", nil) // e5-small is reclaimed
	logs := len(e.logs)
	e.cache = New(mustParse(t, fmt.Sprintf(semConfig, "")), Options{Store: e.store, Now: e.clock.Now, Rand: seededRand(3)})
	f, got := e.ask(alice, "What is the tallest mountain?", nil)
	e.answer(f, "c")
	if strings.Contains(got, "semantic.model_changes") || len(e.logs) > logs || e.semNamespacesHeld() != 1 {
		t.Fatalf("the server reports e5-large only, yet: %q, new logs %q, %d namespaces hold turns", got, e.logs[logs:], e.semNamespacesHeld())
	}
}

func semListedNamespaces(e *semEnv) []uint64 {
	raw, _, err := e.store.Get("modelcache/sem/ns/chat")
	if err != nil {
		return nil
	}
	var out []uint64
	for _, n := range decodeSemModels(raw).ns {
		out = append(out, n.ns)
	}
	return out
}

// semanticStored re-listed a namespace it wrote into with seen = now,
// as if a server had just reported it. A late write of a namespace that
// was evicted as the least recently reported (m0) thus outranks the
// three namespaces workers report right now, and evicts and reclaims one
// of them (m1); m1's next indexed turn re-lists m1 and reclaims m2, whose
// next turn reclaims m3, and only then is m0 the oldest: one late write
// wipes every live namespace's turns in a cascade. Expected: the late
// namespace is the one to go (it is the least recently reported), the
// live ones keep their turns.
func TestSemanticLateWriteOfAnEvictedNamespaceReclaimsOnlyIt(t *testing.T) {
	e := newSemEnv(t, "")
	w0 := e.cache
	mk := func(seed int) *Cache {
		return New(mustParse(t, fmt.Sprintf(semConfig, "")), Options{Store: e.store, Now: e.clock.Now, Rand: seededRand(uint64(seed))})
	}
	wA, wB, wC := mk(2), mk(3), mk(4)
	store := e.storeOn
	store(w0, "m0") // w0 reports m0 (its server moves on afterwards)
	store(wA, "m1") // three workers report m1, m2, m3 from now on
	store(wB, "m2")
	store(wC, "m3") // m0, least recently reported, is evicted and reclaimed
	live := semListedNamespaces(e)
	reclaimed := map[uint64]bool{}
	note := func() {
		for _, ns := range live {
			if !slices.Contains(semListedNamespaces(e), ns) {
				reclaimed[ns] = true // taken off the list: its turns reclaimed
			}
		}
	}
	store(w0, "m0") // w0's answer under m0 arrives late (no list re-read yet)
	note()
	for round := 0; round < 3; round++ {
		for i, w := range []*Cache{wA, wB, wC} {
			store(w, fmt.Sprintf("m%d", i+1))
			note()
		}
	}
	if len(reclaimed) > 0 {
		t.Errorf("one late write under m0 (evicted as least recently reported, reported by no one since) reclaimed %d of the %d namespaces reported every few seconds", len(reclaimed), len(live))
	}
}

// Contexts (here: system prompts) whose turns share a slot of the index
// (semPartition) never answer each other: a near match is served only
// through the querying request's own key with the stored turn put back.
// max_entries 8 makes 64 slots; of 1,000 system prompts the 200 in the
// most crowded slots are taken, and slot by slot six of them store an
// answer naming their context (half under one phrasing, half under the
// other) while every one of them asks the other phrasing. Every turn is
// embedded alike, so every record of the slot is as similar as the
// querying context's own: each storer is answered its own answer, and
// no context that stored nothing is answered at all.
func TestSemanticNearMatchesNeverCrossContextsInASlot(t *testing.T) {
	e := newSemEnv(t, `,"max_entries":8`)
	const phraseA, phraseB = "How do I reset my password?", "How can I reset my password?"
	body := func(ctx int, turn string) string {
		return `{"model":"gpt-4o-mini","messages":[{"role":"system","content":` + quote(fmt.Sprintf("You are assistant number %d.", ctx)) +
			`},{"role":"user","content":` + quote(turn) + `}],"temperature":0}`
	}
	ask := func(ctx int, turn string) (*Flight, string) {
		return e.semAskBody("chat", "/v1/chat/completions", alice, body(ctx, turn), turn)
	}
	bySlot := semContextsBySlot(t, ask, 1000, phraseA)
	slots := make([]uint64, 0, len(bySlot))
	for s := range bySlot {
		slots = append(slots, s)
	}
	if len(slots) > semSlots(8) {
		t.Fatalf("1,000 contexts in %d slots, max_entries 8 allows %d", len(slots), semSlots(8))
	}
	slices.SortFunc(slots, func(a, b uint64) int { return len(bySlot[b]) - len(bySlot[a]) })
	taken, hits, shared := 0, 0, 0
	for _, s := range slots {
		if taken >= 200 {
			break
		}
		shared++
		group := bySlot[s]
		if taken += len(group); taken > 200 {
			group = group[:len(group)-(taken-200)]
		}
		for start := 0; start < len(group); start += 12 {
			chunk := group[start:min(start+12, len(group))]
			stored := map[int]string{} // context: its phrasing
			for i, ctx := range chunk[:min(6, len(chunk))] {
				turn := phraseA
				if i%2 == 1 {
					turn = phraseB
				}
				f, _ := ask(ctx, turn)
				if got := e.answer(f, fmt.Sprintf("answer of context %d", ctx)); !strings.Contains(got, "semantic.indexed") {
					t.Fatalf("context %d's store: %q", ctx, got)
				}
				if _, got := ask(ctx, turn); !strings.HasSuffix(got, "serve") { // an exact hit confirms it
					t.Fatalf("context %d's exact hit: %q", ctx, got)
				}
				stored[ctx] = turn
			}
			for _, ctx := range chunk {
				turn := phraseA
				if stored[ctx] == phraseA {
					turn = phraseB
				}
				f, got := ask(ctx, turn)
				served := strings.HasSuffix(got, "serve")
				_, own := stored[ctx]
				switch {
				case served && !own:
					_, _, b := e.cache.HitResponse(f.Request())
					t.Fatalf("context %d stored nothing and was answered %s (slot %d shared with %v)", ctx, b, s, chunk)
				case served:
					if _, _, b := e.cache.HitResponse(f.Request()); !strings.Contains(string(b), fmt.Sprintf("answer of context %d\"", ctx)) {
						t.Fatalf("context %d was answered %s (slot %d shared with %v)", ctx, b, s, chunk)
					}
					hits++
				case own:
					t.Errorf("context %d: its own near match was not served: %q", ctx, got)
					f.Done()
				default:
					f.Done()
				}
			}
			e.clock.Advance(2 * time.Hour) // the route's ttl is 1h: the next chunk's stores sweep these
		}
	}
	t.Logf("200 contexts in %d slots; %d near hits, each the querying context's own answer", shared, hits)
}

// semContextsBySlot asks turn in contexts 0 to n-1 (ask's first argument)
// and groups them by their slot (semPartition); each request goes on as
// a miss and is dropped.
func semContextsBySlot(t *testing.T, ask func(ctx int, turn string) (*Flight, string), n int, turn string) map[uint64][]int {
	bySlot := map[uint64][]int{}
	for ctx := 0; ctx < n; ctx++ {
		f, _ := ask(ctx, turn)
		if f.Request().sem == nil {
			t.Fatalf("context %d: no semantic lookup", ctx)
		}
		slot := f.c.semPartition(f.Request(), f.Request().sem)
		bySlot[slot] = append(bySlot[slot], ctx)
		f.Done()
	}
	return bySlot
}

// Records of the querying request's own turn, which other contexts
// sharing its slot stored, are not candidates: put back into its key they
// make the very key that just missed. Four contexts of a slot store a
// common turn, then a fifth stores a paraphrase of it and asks that common
// turn: every turn is embedded alike, and the four others' records, found
// first, took all four tries, so its own near match was never tried.
func TestSemanticOthersRecordsOfTheSameTurnTakeNoTry(t *testing.T) {
	e := newSemEnv(t, `,"max_entries":8,"confirm":{"exact_hits":0}`)
	const common, para = "How can I reset my password?", "How do I reset my password?"
	body := func(ctx int, turn string) string {
		return `{"model":"gpt-4o-mini","messages":[{"role":"system","content":` + quote(fmt.Sprintf("You are assistant number %d.", ctx)) +
			`},{"role":"user","content":` + quote(turn) + `}],"temperature":0}`
	}
	ask := func(ctx int, turn string) (*Flight, string) {
		return e.semAskBody("chat", "/v1/chat/completions", alice, body(ctx, turn), turn)
	}
	var group []int
	for _, g := range semContextsBySlot(t, ask, 200, common) {
		if len(g) >= 5 {
			group = g[:5]
			break
		}
	}
	if group == nil {
		t.Fatal("setup: no slot of five contexts")
	}
	for i, ctx := range group {
		turn := common
		if i == 4 {
			turn = para
		}
		f, _ := ask(ctx, turn)
		if got := e.answer(f, fmt.Sprintf("answer of context %d", ctx)); !strings.Contains(got, "semantic.indexed") {
			t.Fatalf("context %d's store: %q", ctx, got)
		}
	}
	x := group[4]
	f, got := ask(x, common)
	if !strings.HasSuffix(got, "serve") {
		t.Fatalf("context %d asks the turn four others of its slot stored: %q, not its own near match", x, got)
	}
	if _, _, b := e.cache.HitResponse(f.Request()); !strings.Contains(string(b), fmt.Sprintf("answer of context %d\"", x)) {
		t.Fatalf("context %d was answered %s", x, b)
	}
}

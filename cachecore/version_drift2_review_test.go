package cachecore

import (
	"fmt"
	"strings"
	"testing"
	"time"
)

// Review Z206: model version drift.

// versionDrift2ShadowEnv is a shared classify route that tracks its
// model's version by the x-model-version header and shadows every hit; a
// window of 4 samples, invalidated above half of them divergent.
func versionDrift2ShadowEnv(t *testing.T) *testEnv {
	return newEnv(t, `{"upstream_cluster":"model","routes":[{"name":"cls","kind":"classify","path_exact":"/v1/classify","shared":true,
	  "ttl":"1h","model_version":{"header":"x-model-version"},
	  "shadow":{"sample":1,"max_concurrent":8,"min_samples":4,"max_divergence":0.5,"window":"10m"}}]}`)
}

func invalidatedBy(acts []Action) bool {
	for _, a := range acts {
		if a.Kind == ActCount && a.Event == EvInvalidation {
			return true
		}
	}
	return false
}

// A rollout from v1 to v2 while three shadow comparisons of v1 hits are
// out: their fresh answers are v2's, which label differently. The first
// one switches the version (v1's entries are retired, as they should be);
// the three divergences are counted in the model's comparison window all
// the same, and that window is not restarted by the switch: it now holds 3
// divergent samples of 3, all of them comparisons of the retired version's
// entries, none of v2's. The next comparison, of a v2 entry that agrees
// with the model, reaches min_samples at 3 of 4 divergent and invalidates
// the model: every v2 entry (here the one just confirmed) is dropped
// because v1 and v2 disagree, which the version switch already handled.
// Expected: divergences measured on a generation the model has left (a
// version switch, a purge) do not count against the new one; v2's entry,
// whose only comparison agreed, stays served.
func TestZ206ShadowDivergenceOfTheRetiredVersionInvalidatesTheNewOne(t *testing.T) {
	env := versionDrift2ShadowEnv(t)
	v1 := append(hdr("x-model-version", "v1"), jsonCT...)
	v2 := append(hdr("x-model-version", "v2"), jsonCT...)
	qs := []string{`{"model":"clf","input":"photo 1"}`, `{"model":"clf","input":"photo 2"}`, `{"model":"clf","input":"photo 3"}`}
	const cat, dog = `{"label":"cat","score":0.95}`, `{"label":"dog","score":0.95}`
	for _, q := range qs {
		req, _ := env.lookup("cls", nil, q)
		env.fill(req, v1, cat, 10)
	}
	// Three v1 hits, each sampled; their comparisons are out together.
	var calls []*Call
	for _, q := range qs {
		hit, d := env.lookup("cls", nil, q)
		if d != Serve {
			t.Fatalf("setup: %s not a hit: %v", q, d)
		}
		acts := env.cache.Shadow(hit, hdr(":method", "POST", ":path", "/v1/classify"))
		if len(acts) == 0 || acts[0].Call == nil {
			t.Fatalf("setup: no shadow call: %s", actionKinds(acts))
		}
		calls = append(calls, acts[0].Call)
	}
	// v2 is rolled out meanwhile: every fresh answer is v2's, and says dog.
	for i, call := range calls {
		done := call.Done(CallResult{Status: 200, Headers: v2, Body: []byte(dog)})
		if invalidatedBy(done) {
			t.Fatalf("setup: comparison %d invalidated already: %s", i, actionKinds(done))
		}
	}
	// The first comparison's answer switched the version and was stored as
	// v2's entry for photo 1.
	hit, d := env.lookup("cls", nil, qs[0])
	if d != Serve || string(hit.Entry.Body) != dog {
		t.Fatalf("setup: v2's answer for photo 1 not served: %v", d)
	}
	// v2's entry is compared with v2's model: they agree.
	acts := env.cache.Shadow(hit, hdr(":method", "POST", ":path", "/v1/classify"))
	if len(acts) == 0 || acts[0].Call == nil {
		t.Fatalf("setup: no shadow call: %s", actionKinds(acts))
	}
	done := acts[0].Call.Done(CallResult{Status: 200, Headers: v2, Body: []byte(dog)})
	if invalidatedBy(done) {
		t.Errorf("v2's model was invalidated by a comparison of a v2 entry that agreed: the window still held the 3 divergences of v1's retired entries (want: a version switch starts a new window)")
	}
	if _, d := env.lookup("cls", nil, qs[0]); d != Serve {
		t.Errorf("v2's entry for photo 1, whose only comparison agreed, is no longer served: %v", d)
	}
}

const versionDrift2EmbConfig = `{"upstream_cluster":"model","routes":[{"name":"emb","kind":"embeddings","path_prefix":"/v1/embeddings","ttl":"1h",
  "model_version":{"header":"x-model-version"}}]}`

// versionDrift2Emb answers inputs with vectors of dim dimensions.
func versionDrift2Emb(n, dim int) []byte {
	b := []byte(`{"object":"list","data":[`)
	for i := 0; i < n; i++ {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, `{"object":"embedding","index":`...)
		b = append(b, byte('0'+i))
		b = append(b, `,"embedding":[`...)
		for d := 0; d < dim; d++ {
			if d > 0 {
				b = append(b, ',')
			}
			b = append(b, "0.5"...)
		}
		b = append(b, "]}"...)
	}
	return append(b, `],"model":"e","usage":{"prompt_tokens":1,"total_tokens":1}}`...)
}

func versionDrift2EmbStore(t *testing.T, c *Cache, body string, hs [][2]string, answer []byte) {
	t.Helper()
	req := c.Begin(c.routeByName("emb"), "POST", "/v1/embeddings", alice)
	c.SetBody(req, []byte(body))
	if req.Bypassed() {
		t.Fatalf("%s bypassed: %s", body, req.Reason)
	}
	c.Lookup(req)
	if st := c.AdmitAndStore(req, 200, hs, answer, OriginUpstream, 1); st.Reason != ReasonNone {
		t.Fatalf("setup: %s not stored: %s", body, st.Reason)
	}
}

func countedEvent(acts []Action, ev Event) bool {
	for _, a := range acts {
		if a.Kind == ActCount && a.Event == ev {
			return true
		}
	}
	return false
}

// README (embeddings): "With model_version configured, a new version
// reported by the upstream makes every older vector unreachable, even at
// equal dimensions; vectors of a new dimension under an unchanged version
// are treated the same way (model_drift)". A partial batch keyed under v1
// (its item x cached, 4-d) whose missing item comes back from v2 in 2
// dimensions is judged a drift before its version is looked at (admission
// compares the dimensions with the cached item first): the batch is asked
// for again and the model purged as a drift. Meanwhile another worker
// had already seen v2 and stored v2's vector for z: the drift purge moves
// the generation v2's entries were stored under, so z, a correct v2
// vector, is gone on every worker, and model_drift is counted (and a
// warning logged that the model changed dimension under the same
// version) for what was a version change.
// Expected: an answer reporting another version than the one its request
// was keyed under is no drift (not counted model_drift); v2's entries,
// stored under the version the model reports now, stay served.
func TestZ206NewVersionOfAnotherDimensionInAPartialBatchIsPurgedAsADrift(t *testing.T) {
	store, clock := NewMemStore(), newFakeClock()
	cfg := mustParse(t, versionDrift2EmbConfig)
	w0 := New(cfg, Options{Store: store, Now: clock.Now, Rand: seededRand(1)})
	w1 := New(cfg, Options{Store: store, Now: clock.Now, Rand: seededRand(2)})
	v1 := append(hdr("x-model-version", "v1"), jsonCT...)
	v2 := append(hdr("x-model-version", "v2"), jsonCT...)
	versionDrift2EmbStore(t, w0, `{"model":"e","input":["x"]}`, v1, versionDrift2Emb(1, 4))

	// Worker 0: [x, y], x cached (v1): y alone goes upstream.
	req := w0.Begin(w0.routeByName("emb"), "POST", "/v1/embeddings", alice)
	w0.SetBody(req, []byte(`{"model":"e","input":["x","y"]}`))
	if d := w0.Lookup(req); d == Serve {
		t.Fatalf("setup: [x, y] served whole")
	}
	if cached, total := req.ItemCounts(); cached != 1 || total != 2 {
		t.Fatalf("setup: %d of %d items cached, want 1 of 2", cached, total)
	}
	f := w0.NewFlight(req, 1, 1)
	f.Miss()

	// Worker 1 meanwhile meets v2 (2-d vectors) first and stores z under it.
	versionDrift2EmbStore(t, w1, `{"model":"e","input":["z"]}`, v2, versionDrift2Emb(1, 2))
	zreq := w1.Begin(w1.routeByName("emb"), "POST", "/v1/embeddings", alice)
	w1.SetBody(zreq, []byte(`{"model":"e","input":["z"]}`))
	if w1.Lookup(zreq) != Serve {
		t.Fatalf("setup: v2's z not served")
	}

	// Worker 0's answer for y is v2's, 2-d.
	if step, _ := f.ResponseHeaders(200, v2, OriginUpstream, false); step != RespHold {
		t.Fatalf("setup: response headers: %d", step)
	}
	_, acts := f.Complete(v2, versionDrift2Emb(1, 2), 5, hdr(":method", "POST", ":path", "/v1/embeddings"))
	if countedEvent(acts, EvModelDrift) {
		t.Errorf("a v2 answer to a request keyed under v1 is counted model_drift (a dimension change under an unchanged version): %s", actionKinds(acts))
	}
	zreq = w1.Begin(w1.routeByName("emb"), "POST", "/v1/embeddings", alice)
	w1.SetBody(zreq, []byte(`{"model":"e","input":["z"]}`))
	if d := w1.Lookup(zreq); d != Serve {
		t.Errorf("v2's vector for z, stored under the version the model reports, was purged as a drift by a late answer of a request keyed under v1: %v", d)
	}
}

// The same on one worker: the v2 answer (2-d) to a partial batch keyed
// under v1 switches the version (counted model_version_changes, as it
// should), and is then also counted model_drift and logged as vectors of
// another dimension under the same name and version. Expected: a version
// change is not a drift.
func TestZ206NewVersionOfAnotherDimensionIsCountedADrift(t *testing.T) {
	store, clock := NewMemStore(), newFakeClock()
	c := New(mustParse(t, versionDrift2EmbConfig), Options{Store: store, Now: clock.Now, Rand: seededRand(1)})
	v1 := append(hdr("x-model-version", "v1"), jsonCT...)
	v2 := append(hdr("x-model-version", "v2"), jsonCT...)
	versionDrift2EmbStore(t, c, `{"model":"e","input":["x"]}`, v1, versionDrift2Emb(1, 4))
	req := c.Begin(c.routeByName("emb"), "POST", "/v1/embeddings", alice)
	c.SetBody(req, []byte(`{"model":"e","input":["x","y"]}`))
	if d := c.Lookup(req); d == Serve {
		t.Fatalf("setup: [x, y] served whole")
	}
	f := c.NewFlight(req, 1, 1)
	f.Miss()
	if step, _ := f.ResponseHeaders(200, v2, OriginUpstream, false); step != RespHold {
		t.Fatalf("setup: response headers: %d", step)
	}
	_, acts := f.Complete(v2, versionDrift2Emb(1, 2), 5, hdr(":method", "POST", ":path", "/v1/embeddings"))
	switched := false
	for _, a := range acts {
		if a.Stored != nil && a.Stored.Result.VersionChanged {
			switched = true
		}
	}
	if !switched {
		t.Logf("note: the switch to v2 is not reported in the actions: %s", actionKinds(acts))
	}
	if countedEvent(acts, EvModelDrift) {
		t.Errorf("the upstream reported a new version (v2) with vectors of another dimension: counted model_drift and logged as a dimension change under the same version (want: a version switch only): %s", actionKinds(acts))
	}
}

// README (semantic, embedding model changes): "A model not among the
// route's namespaces is counted semantic.model_changes by the worker that
// lists it"; a namespace not reported for 10 minutes is reclaimed. A
// worker keeps a turn's vector (per VM) and reuses it without a call. Its
// turn's answer was not stored (the model failed), so the turn is an exact
// miss when asked again. Eleven minutes later the embeddings server runs
// e5-large: another worker's call reports it, and the idle e5-small
// namespace is reclaimed, counted once (a real change). The first worker
// then gets the turn again and takes its kept e5-small vector: it lists
// e5-small again as if the server reported it, counts a second
// model_changes for a model nobody reports, and searches and indexes under
// the reclaimed namespace. The code already refuses a shared vector of a
// namespace the list no longer names to a worker that has seen no model
// (semUsable: "taking it counted a model change, logged that the server
// now reports that model and listed its reclaimed namespace again"); a
// kept vector of the worker's own last model does the same.
// Expected: a kept vector whose namespace was reclaimed is not used (the
// turn is embedded again, by the model the server reports); no model
// change is counted for it.
func TestZ206KeptVectorOfAReclaimedModelCountsAModelChange(t *testing.T) {
	e := newSemEnv(t, "")
	w0 := e.cache
	w1 := New(mustParse(t, fmt.Sprintf(semConfig, "")), Options{Store: e.store, Now: e.clock.Now, Rand: seededRand(2)})
	const q = "How do I reset my password?"
	f, got := e.ask(alice, q, nil)
	if !strings.Contains(got, "embed") {
		t.Fatalf("setup: first ask: %q", got)
	}
	f.ResponseHeaders(503, jsonCT, OriginUpstream, false) // not stored: the turn stays an exact miss

	e.clock.Advance(semNamespaceIdleMs*time.Millisecond + time.Minute)
	e.cache, e.model = w1, "e5-large"
	f, got = e.ask(alice, "What is the capital of France?", nil)
	if !strings.Contains(got, "semantic.model_changes") {
		t.Fatalf("setup: the switch to e5-large is not counted: %q", got)
	}
	e.answer(f, "Paris.")

	e.cache = w0
	_, got = e.ask(alice, q, nil)
	if strings.Contains(got, "semantic.model_changes") {
		t.Errorf("a worker's kept vector of e5-small, whose namespace was reclaimed after e5-large replaced it, counted a model change to e5-small (the server reports e5-large): %q", got)
	}
	if !strings.Contains(got, "embed") {
		t.Errorf("the turn was searched with its kept e5-small vector, under a namespace reclaimed for not being reported, not embedded again by the model the server reports: %q", got)
	}
}

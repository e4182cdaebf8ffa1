package cachecore

import (
	"testing"
	"time"
)

// Review Z235: invalidations while an answer is in flight.

const z235EmbConfig = `{"upstream_cluster":"model","purge":{"path":"/purge","token":"0123456789abcdef"},
 "routes":[{"name":"emb","kind":"embeddings","path_prefix":"/v1/embeddings","ttl":"1h"}]}`

// z235EmbFlight begins body on c and makes it a miss that goes upstream
// (a partial batch sends its missing items only).
func z235EmbFlight(t *testing.T, c *Cache, id uint32, body string) *Flight {
	t.Helper()
	req := c.Begin(c.routeByName("emb"), "POST", "/v1/embeddings", alice)
	c.SetBody(req, []byte(body))
	if req.Bypassed() {
		t.Fatalf("%s bypassed: %s", body, req.Reason)
	}
	if d := c.Lookup(req); d == Serve {
		t.Fatalf("setup: %s served whole", body)
	}
	f := c.NewFlight(req, 1, id)
	f.Miss()
	return f
}

// z235EmbAnswer answers f with n vectors of dim dimensions.
func z235EmbAnswer(t *testing.T, f *Flight, n, dim int) []Action {
	t.Helper()
	if step, _ := f.ResponseHeaders(200, jsonCT, OriginUpstream, false); step != RespHold && step != RespCopy {
		t.Fatalf("setup: response headers: %d", step)
	}
	_, acts := f.Complete(jsonCT, versionDrift2Emb(n, dim), 5, hdr(":method", "POST", ":path", "/v1/embeddings"))
	return acts
}

func z235EmbServed(c *Cache, body string) bool {
	req := c.Begin(c.routeByName("emb"), "POST", "/v1/embeddings", alice)
	c.SetBody(req, []byte(body))
	return c.Lookup(req) == Serve
}

// The embeddings model changes dimension (2 -> 3) under the same name.
// Two partial batches were in flight when it did, each with the cached
// 2-d item x. The first answer seen detects the drift and invalidates the
// model (right). A new batch then stores w, a correct 3-d vector of the
// new model, under the new generation. The second partial batch, sent
// before the drift was handled, now comes back 3-d as well: its verdict
// is against x, an entry of a generation the model has already left, yet
// it purges the model again — w, stored after the invalidation and
// correct, is dropped for every tenant, and model_drift is counted (and
// the warning logged) a second time for one drift. During a rolling
// change every batch in flight with a cached item purges the new model's
// vectors once more. (Shadow comparisons of a left generation no longer
// count, review Z207; a drift verdict has no such check.)
// Expected: a drift judged against cached items of a generation the
// model has left since the request was keyed invalidates nothing more;
// w stays served.
func TestZ235DriftSeenByABatchInFlightAcrossAnInvalidationPurgesTheNewModelAgain(t *testing.T) {
	env := newEnv(t, z235EmbConfig)
	c := env.cache
	// x, 2-d, cached.
	f := z235EmbFlight(t, c, 1, `{"model":"e","input":["x"]}`)
	z235EmbAnswer(t, f, 1, 2)
	if !z235EmbServed(c, `{"model":"e","input":["x"]}`) {
		t.Fatal("setup: x not cached")
	}
	// Two partial batches go upstream: [x, y] and [x, z].
	first := z235EmbFlight(t, c, 2, `{"model":"e","input":["x","y"]}`)
	second := z235EmbFlight(t, c, 3, `{"model":"e","input":["x","z"]}`)
	// The model changes dimension: the first answer is 3-d, a drift.
	if acts := z235EmbAnswer(t, first, 1, 3); !countedEvent(acts, EvModelDrift) {
		t.Fatalf("setup: the first drift was not detected: %s", actionKinds(acts))
	}
	// A batch asked for after the invalidation stores the new model's w.
	fw := z235EmbFlight(t, c, 4, `{"model":"e","input":["w"]}`)
	z235EmbAnswer(t, fw, 1, 3)
	if !z235EmbServed(c, `{"model":"e","input":["w"]}`) {
		t.Fatal("setup: w (3-d, after the drift) not stored")
	}
	// The second batch, sent before the drift was handled, comes back.
	acts := z235EmbAnswer(t, second, 1, 3)
	if countedEvent(acts, EvModelDrift) {
		t.Errorf("a batch in flight across the drift's invalidation counted model_drift again (its cached item is of the generation already invalidated): %s", actionKinds(acts))
	}
	if !z235EmbServed(c, `{"model":"e","input":["w"]}`) {
		t.Errorf("w, the new model's vector stored after the invalidation, was purged again by the drift verdict of a batch sent before it")
	}
}

// A model's shadow comparison window (samples, divergent samples) lives in
// its record beside the generation, and nothing resets it when the
// generation moves on by a purge of the model, a purge of everything or a
// version switch. Three comparisons of the old generation's entries
// diverge (below min_samples: no invalidation yet); the operator then
// purges the model (or the upstream rolls out a new version). The next
// comparison, of an entry stored after that and agreeing with the model,
// reaches min_samples at 3 divergent of 4 and invalidates the new
// generation: every tenant's entries stored since the purge are dropped
// for divergences measured on entries the purge had already retired.
// Review Z207 stopped counting comparisons *in flight* across such a move
// ("it says nothing of the current one"); the ones counted just before
// it still count.
// Expected: a new generation starts a new window; the agreeing
// comparison of a post-purge entry invalidates nothing.
func TestZ235ShadowWindowOfARetiredGenerationInvalidatesTheNewOne(t *testing.T) {
	for _, move := range []string{"purge of the model", "purge of everything", "version switch"} {
		t.Run(move, func(t *testing.T) {
			env := versionDrift2ShadowEnv(t)
			v1 := append(hdr("x-model-version", "v1"), jsonCT...)
			v2 := append(hdr("x-model-version", "v2"), jsonCT...)
			const cat, dog = `{"label":"cat","score":0.95}`, `{"label":"dog","score":0.95}`
			qs := []string{`{"model":"clf","input":"photo 1"}`, `{"model":"clf","input":"photo 2"}`, `{"model":"clf","input":"photo 3"}`}
			for _, q := range qs {
				req, _ := env.lookup("cls", nil, q)
				env.fill(req, v1, cat, 10)
			}
			// Three comparisons of old entries diverge, one after the other.
			for i, q := range qs {
				hit, d := env.lookup("cls", nil, q)
				if d != Serve {
					t.Fatalf("setup: %s not a hit", q)
				}
				acts := env.cache.Shadow(hit, hdr(":method", "POST", ":path", "/v1/classify"))
				if len(acts) == 0 || acts[0].Call == nil {
					t.Fatalf("setup: no shadow call: %s", actionKinds(acts))
				}
				if done := acts[0].Call.Done(CallResult{Status: 200, Headers: v1, Body: []byte(dog)}); invalidatedBy(done) {
					t.Fatalf("setup: comparison %d invalidated already", i)
				}
			}
			hs := v1
			switch move {
			case "purge of the model":
				if err := env.cache.PurgeModel("cls", "clf"); err != nil {
					t.Fatal(err)
				}
			case "purge of everything":
				if _, err := env.cache.purgeAll(); err != nil {
					t.Fatal(err)
				}
			case "version switch":
				hs = v2
			}
			// A question asked after the move, stored under the new generation.
			q4 := `{"model":"clf","input":"photo 4"}`
			req, _ := env.lookup("cls", nil, q4)
			env.fill(req, hs, dog, 10)
			hit, d := env.lookup("cls", nil, q4)
			if d != Serve {
				t.Fatalf("setup: the post-%s entry is not served", move)
			}
			acts := env.cache.Shadow(hit, hdr(":method", "POST", ":path", "/v1/classify"))
			if len(acts) == 0 || acts[0].Call == nil {
				t.Fatalf("setup: no shadow call: %s", actionKinds(acts))
			}
			if done := acts[0].Call.Done(CallResult{Status: 200, Headers: hs, Body: []byte(dog)}); invalidatedBy(done) {
				t.Errorf("after a %s, the one comparison of a new entry agreed with the model and invalidated it: the window still held the 3 divergences of the retired generation", move)
			}
			if _, d := env.lookup("cls", nil, q4); d != Serve {
				t.Errorf("the entry stored after the %s, whose only comparison agreed, is no longer served", move)
			}
		})
	}
}

// RATIONALE ("A model's record ..."): "A purge makes a record for a model
// without one only in a free place, and a store that is refused makes
// none: either would take the place of another model's first answer in
// flight." A purge by model keeps to it (createIfFree); a purge by replay
// does not: it keys the replayed request as any request (SetBody), which
// makes the model's record reclaiming a place. Here the slot of
// gpt-4o-mini holds 15 live records and gpt-4o-mini's own, made when its
// first request was keyed, still empty 31 s later (a long completion is
// upstream). The operator purges one entry of a model nothing was ever
// stored for: there is nothing to purge, yet the purge takes
// gpt-4o-mini's record, and the answer in flight is refused.
// Expected: a purge by replay of a model without a record takes no other
// model's place; gpt-4o-mini's first answer is stored.
func TestZ235PurgeByReplayReclaimsAnotherModelsRecordWithItsAnswerInFlight(t *testing.T) {
	env := newEnv(t, roomyConfig)
	others := modelsInSlotOf(t, env.cache, "chat", "gpt-4o-mini", modelsPerSlot)
	for _, m := range others[:modelsPerSlot-1] { // 15 live records
		req, _ := env.lookup("chat", bob, withModel(chatRequest("q"), m))
		env.fill(req, jsonCT, chatResponse(m), 10)
	}
	inflight, _ := env.lookup("chat", alice, chatRequest("q")) // the 16th record, made at keying
	if !inflight.state.Found {
		t.Fatal("setup: the in-flight request has no record")
	}
	env.clock.Advance(31 * time.Second) // its answer is still upstream
	purge := `{"method":"POST","path":"/v1/chat/completions","headers":{"authorization":"Bearer sk-bob"},"body":` +
		withModel(chatRequest("never asked"), others[modelsPerSlot-1]) + `}`
	if _, err := env.cache.Purge([]byte(purge), ""); err != nil {
		t.Fatal(err)
	}
	st := env.cache.AdmitAndStore(inflight, 200, jsonCT, []byte(chatResponse("a")), OriginUpstream, 10)
	if st.Reason != ReasonNone {
		t.Errorf("a purge by replay of a model with no record (nothing to purge) reclaimed gpt-4o-mini's record: its first answer, in flight, is refused (%s)", st.Reason)
	}
	if got, _ := env.cache.loadModel("chat", others[modelsPerSlot-1]); got.Found {
		t.Errorf("the purge by replay made a record for %s by taking another model's place", others[modelsPerSlot-1])
	}
}

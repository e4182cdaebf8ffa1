package cachecore

import (
	"strings"
	"testing"
	"time"
)

// Review Z173: model version switches.

// versionShadowEnv is a classify route that tracks its model's version by
// the x-model-version header and shadows every hit.
func versionShadowEnv(t *testing.T) *testEnv {
	return newEnv(t, `{"upstream_cluster":"model","routes":[{"name":"cls","kind":"classify","path_exact":"/v1/classify","shared":true,
	  "ttl":"1h","model_version":{"header":"x-model-version"},
	  "shadow":{"sample":1,"max_concurrent":4,"min_samples":100,"max_divergence":0.5}}]}`)
}

// A shadow comparison's fresh answer is an answer of the upstream like any
// other, of a status the route caches. README (model_version): "an answer
// the cache does not store, of a status the route caches, switches the
// version too". When the fresh answer reports a new version but agrees with
// the entry it is compared with (temperature-0 classifiers mostly do),
// Shadow returns before anything reads its version: the record stays on
// v1, and every other v1 entry of the model is served on, though the
// upstream was seen answering v2. On a hit-heavy route a shadow sample may
// be the only upstream answer the proxy sees for a long time.
// Expected: after the agreeing v2 answer, v1's other entries are not
// served (the lookup goes upstream).
func TestZ173ShadowAgreeingAnswerOfANewVersionRetiresThePredecessor(t *testing.T) {
	env := versionShadowEnv(t)
	v1 := append(hdr("x-model-version", "v1"), jsonCT...)
	v2 := append(hdr("x-model-version", "v2"), jsonCT...)
	const q1, q2 = `{"model":"clf","input":"a photo"}`, `{"model":"clf","input":"another photo"}`
	const cat, dog = `{"label":"cat","score":0.95}`, `{"label":"dog","score":0.95}`
	req, _ := env.lookup("cls", nil, q1)
	env.fill(req, v1, cat, 10)
	req, _ = env.lookup("cls", nil, q2)
	env.fill(req, v1, dog, 10)

	hit, d := env.lookup("cls", nil, q1)
	if d != Serve {
		t.Fatalf("setup: q1 not a hit: %v", d)
	}
	acts := env.cache.Shadow(hit, hdr(":method", "POST", ":path", "/v1/classify"))
	if len(acts) == 0 || acts[0].Call == nil {
		t.Fatalf("setup: no shadow call: %s", actionKinds(acts))
	}
	// v2 is rolled out: the shadow's answer reports it, and agrees.
	done := acts[0].Call.Done(CallResult{Status: 200, Headers: v2, Body: []byte(cat)})
	t.Logf("shadow's end: %s", actionKinds(done))

	if req, d := env.lookup("cls", nil, q2); d == Serve {
		t.Errorf("v1's entry is still served after the upstream answered a shadow comparison as v2: %s (want a miss: a new version retires its predecessor's entries)", req.Entry.Body)
	}
}

// The same, where the shadow's fresh answer cannot be compared because the
// route refuses it (here it fails a validation rule): a request's refused
// answer reporting v2 switches the version (noteVersion, README), a
// shadow's does not. Expected: v1's entries are not served after it.
func TestZ173ShadowRefusedAnswerOfANewVersionRetiresThePredecessor(t *testing.T) {
	env := newEnv(t, `{"upstream_cluster":"model","routes":[{"name":"cls","kind":"classify","path_exact":"/v1/classify","shared":true,
	  "ttl":"1h","model_version":{"header":"x-model-version"},
	  "validate":[{"path":"label","type":"string","non_empty":true}],
	  "shadow":{"sample":1,"max_concurrent":4,"min_samples":100,"max_divergence":0.5}}]}`)
	v1 := append(hdr("x-model-version", "v1"), jsonCT...)
	v2 := append(hdr("x-model-version", "v2"), jsonCT...)
	const q1, q2 = `{"model":"clf","input":"a photo"}`, `{"model":"clf","input":"another photo"}`
	req, _ := env.lookup("cls", nil, q1)
	env.fill(req, v1, `{"label":"cat","score":0.95}`, 10)
	req, _ = env.lookup("cls", nil, q2)
	env.fill(req, v1, `{"label":"dog","score":0.95}`, 10)

	// Control: the same refused v2 answer to a request switches the version.
	ctl := newEnv(t, `{"upstream_cluster":"model","routes":[{"name":"cls","kind":"classify","path_exact":"/v1/classify","shared":true,
	  "ttl":"1h","model_version":{"header":"x-model-version"},
	  "validate":[{"path":"label","type":"string","non_empty":true}]}]}`)
	creq, _ := ctl.lookup("cls", nil, q2)
	ctl.fill(creq, v1, `{"label":"dog","score":0.95}`, 10)
	creq, _ = ctl.lookup("cls", nil, q1)
	if st := ctl.cache.StoreBody(creq, 200, v2, []byte(`{"label":"","score":0.95}`), 10); st.Reason != ReasonValidation || !st.Result.VersionChanged {
		t.Fatalf("control: a request's refused v2 answer: %s, switched %v", st.Reason, st.Result.VersionChanged)
	}
	if _, d := ctl.lookup("cls", nil, q2); d == Serve {
		t.Fatalf("control: v1 served after a request's refused v2 answer")
	}

	hit, d := env.lookup("cls", nil, q1)
	if d != Serve {
		t.Fatalf("setup: q1 not a hit: %v", d)
	}
	acts := env.cache.Shadow(hit, hdr(":method", "POST", ":path", "/v1/classify"))
	if len(acts) == 0 || acts[0].Call == nil {
		t.Fatalf("setup: no shadow call: %s", actionKinds(acts))
	}
	done := acts[0].Call.Done(CallResult{Status: 200, Headers: v2, Body: []byte(`{"label":"","score":0.95}`)})
	t.Logf("shadow's end: %s", actionKinds(done))
	if req, d := env.lookup("cls", nil, q2); d == Serve {
		t.Errorf("v1's entry is still served after the upstream answered a shadow comparison as v2 (refused): %s (want a miss, as after a request's refused v2 answer)", req.Entry.Body)
	}
}

// A route whose model_version.body_path names a member its answers carry
// at the top level (a server reporting "model_version" in every answer and
// every stream chunk, as it carries "system_fingerprint") caches its JSON
// answers, but never a stream: a stream's version is read from the message
// its assembly rebuilds (AssembleStream), which keeps only id, object,
// model, system_fingerprint, choices and usage, so every stream is refused
// no_version though each chunk names the version — and a stream reporting
// a new version never switches the model either (noteVersion reads the
// same assembly). The config is accepted without a word (README documents
// the assembly's limit for validation rules, not for model_version).
// Expected: a complete stream whose every chunk carries model_version is
// stored, under that version (or the config is refused at start).
func TestZ173StreamVersionAtACustomBodyPathIsRead(t *testing.T) {
	cfg := `{"routes":[{"name":"ver","kind":"chat","path_exact":"/v1/ver","model_version":{"body_path":"model_version"}}]}`
	if _, err := ParseConfig([]byte(cfg)); err != nil {
		return // refused at start: fine
	}
	env := newEnv(t, cfg)
	// Control: the JSON answer is read and stored.
	req, _ := env.lookup("ver", alice, `{"model":"m","messages":[{"role":"user","content":"json"}]}`)
	env.fill(req, jsonCT, strings.Replace(chatResponse("json answer"), `{"id"`, `{"model_version":"v1","id"`, 1), 10)

	chunk := func(delta, fr string) string {
		return `{"id":"c1","object":"chat.completion.chunk","model":"m","model_version":"v1","choices":[{"index":0,"delta":` + delta + `,"finish_reason":` + fr + `}]}`
	}
	stream := sseEvent(chunk(`{"role":"assistant","content":"streamed answer"}`, "null")) + sseEvent(chunk(`{}`, `"stop"`)) + sseEvent("[DONE]")
	req, d := env.lookup("ver", alice, `{"model":"m","stream":true,"messages":[{"role":"user","content":"stream"}]}`)
	if d != Forward {
		t.Fatalf("setup: %v", d)
	}
	st := env.cache.AdmitAndStore(req, 200, sseCT, []byte(stream), OriginUpstream, 10)
	if st.Reason != ReasonNone {
		t.Errorf("a complete stream whose every chunk reports model_version v1 was refused: %s (version read %q); want it stored under v1", st.Reason, st.Admission.Version)
	}
}

// A background refresh (stale-while-revalidate) whose answer reports a new
// version in its header and outgrows max_entry_bytes is refused too_large
// (the host hands the protocol at most MaxBody+1 bytes) — and its version
// is never read: noteVersion returns before reading even the header when
// the body is over max_entry_bytes. A request's answer that outgrows
// max_entry_bytes switches the version by its header (README: "one that
// outgrows max_entry_bytes after its headers … by the version in its
// header"; Flight.tooLarge, TestAVersionSwitchInATooLargeAnswerRetiresItsPredecessor),
// a refresh's does not. Expected: after the
// refresh's v2 answer, v1's other entries are not served.
func TestZ173TooLargeRefreshAnswerOfANewVersionRetiresThePredecessor(t *testing.T) {
	env := newEnv(t, `{"upstream_cluster":"model","routes":[{"name":"chat","kind":"chat","path_prefix":"/v1/chat/completions","ttl":"10s",
	  "stale_while_revalidate":"1h","max_entry_bytes":1024,"model_version":{"header":"x-model-version"}}]}`)
	c := env.cache
	v1 := append(hdr("x-model-version", "v1"), jsonCT...)
	v2 := append(hdr("x-model-version", "v2"), jsonCT...)
	env.fill(env.request("chat", alice, chatRequest("q1")), v1, chatResponse("v1 one"), 10)
	env.fill(env.request("chat", alice, chatRequest("q2")), v1, chatResponse("v1 two"), 10)

	env.clock.Advance(20 * time.Second)
	req, d := env.lookup("chat", alice, chatRequest("q1"))
	if d != Serve || req.Status != StatusStale || !c.WantsRefresh(req) {
		t.Fatalf("setup: q1 is not a stale hit that refreshes: %v %s", d, req.Status)
	}
	acts := c.Refresh(req, backgroundAliceHeaders, 1)
	if len(acts) != 1 || acts[0].Kind != ActDispatch {
		t.Fatalf("setup: no refresh call: %s", actionKinds(acts))
	}
	large := chatResponse("v2 " + strings.Repeat("x", 2048))
	body := []byte(large)
	if m := acts[0].Call.MaxBody; m > 0 && len(body) > m+1 {
		body = body[:m+1] // as the host hands it over
	}
	done := acts[0].Call.Done(CallResult{Status: 200, Headers: v2, Body: body})
	t.Logf("refresh's end: %s", actionKinds(done))

	if r, d := env.lookup("chat", alice, chatRequest("q2")); d == Serve {
		t.Errorf("v1's entry is still served after a refresh's too-large answer reported v2: %s %s (want a miss)", r.Status, r.Entry.Body)
	}
}

// A model's record made when its first request is keyed is kept from
// reclaim for 30 s (youngRecordMs), "so that its first answer, in flight,
// finds the generation it was keyed under (another client's flood of
// model names would otherwise reclaim it first and have that answer
// refused)" (RATIONALE; TestKeyedOnlyFloodKeepsOtherTenantsFirstAnswer).
// On a versioned route, a refused answer that reports the model's first
// version (noteVersion, staleUntil 0) runs extendLife(r, 0, now), which
// turns the record's "made at -t" into until 0: young no more, and ranked
// as made at the epoch, the first a flood reclaims. Then the model's other
// answers in flight are refused (invalidated) after a flood of 16 names in
// its slot. Expected: noting the first version of a young record keeps it
// young; the in-flight answer is stored.
func TestZ173FirstVersionOfARefusedAnswerKeepsTheRecordYoung(t *testing.T) {
	env := newEnv(t, roomyConfig)
	names := modelsInSlotOf(t, env.cache, "versioned", "gpt-4o-mini", modelsPerSlot)
	v1 := append(hdr("x-model-version", "v1"), jsonCT...)
	first, _ := env.lookup("versioned", alice, chatRequest("first"))
	second, _ := env.lookup("versioned", alice, chatRequest("second"))
	// The first answer is cut by max_tokens: refused, its version noted.
	cut := strings.Replace(chatResponse("cut"), `"stop"`, `"length"`, 1)
	if st := env.cache.AdmitAndStore(first, 200, v1, []byte(cut), OriginUpstream, 10); st.Reason != ReasonFinishReason {
		t.Fatalf("setup: first answer: %s", st.Reason)
	}
	env.clock.Advance(time.Second)
	for _, m := range names { // another client keys 16 model names of the slot
		env.request("versioned", bob, withModel(chatRequest("x"), m))
	}
	st := env.cache.AdmitAndStore(second, 200, v1, []byte(chatResponse("kept")), OriginUpstream, 10)
	if st.Reason != ReasonNone {
		t.Errorf("the model's second answer, in flight 1 s after its record was made, is refused (%s) after another client keyed %d model names: the refused first answer's version made the record reclaimable", st.Reason, len(names))
	}
}

package cachecore

// An answer is stored only under the model state it was keyed under, and
// a shadow never crashes or misjudges on a fresh answer it cannot read
// (review 9 of this session's fixes).

import (
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/tidwall/gjson"
)

func purgeBetween(t *testing.T, env *testEnv, body string) {
	env.clock.Advance(time.Millisecond)
	if _, err := env.cache.Purge([]byte(body), ""); err != nil {
		t.Fatal(err)
	}
	env.clock.Advance(time.Millisecond)
}

// D1a
func TestPurgedInFlightAnswerStoredAfterAnotherStore(t *testing.T) {
	env := newEnv(t, testConfig)
	inflight, _ := env.lookup("chat", alice, chatRequest("q")) // no record yet
	purgeBetween(t, env, `{"route":"chat","model":"gpt-4o-mini"}`)
	other, _ := env.lookup("chat", bob, chatRequest("other")) // keyed after the purge
	env.fill(other, jsonCT, chatResponse("fresh"), 10)
	env.cache.AdmitAndStore(inflight, 200, jsonCT, []byte(chatResponse("before the purge")), OriginUpstream, 10)
	if _, d := env.lookup("chat", alice, chatRequest("q")); d == Serve {
		t.Error("an answer in flight across the purge was stored and is served")
	}
}

// D1b
func TestPurgedInFlightAnswerStoredWhenRecordMadeBeforePurge(t *testing.T) {
	env := newEnv(t, testConfig)
	inflight, _ := env.lookup("chat", alice, chatRequest("q")) // no record yet
	other, _ := env.lookup("chat", bob, chatRequest("other"))
	env.fill(other, jsonCT, chatResponse("concurrent first answer"), 10)
	purgeBetween(t, env, `{"route":"chat","model":"gpt-4o-mini"}`)
	env.cache.AdmitAndStore(inflight, 200, jsonCT, []byte(chatResponse("before the purge")), OriginUpstream, 10)
	if _, d := env.lookup("chat", alice, chatRequest("q")); d == Serve {
		t.Error("an answer in flight across the purge was stored and is served")
	}
}

// D1c
func TestPurgeRecordReclaimedLetsInFlightAnswerIn(t *testing.T) {
	env := newEnv(t, testConfig)
	models := sameModelSlot(t, env.cache, "chat", modelsPerSlot+1)
	body := func(m string) string { return withModel(chatRequest("q"), m) }
	for _, m := range models[:modelsPerSlot-1] {
		req, _ := env.lookup("chat", bob, body(m))
		env.fill(req, jsonCT, chatResponse(m), 10)
	}
	env.clock.Advance(time.Hour) // records reclaimable
	x, y := models[modelsPerSlot-1], models[modelsPerSlot]
	inflight, _ := env.lookup("chat", alice, body(x))
	purgeBetween(t, env, `{"route":"chat","model":"`+x+`"}`)
	req, _ := env.lookup("chat", bob, body(y)) // reclaims the purge's until-0 record
	env.fill(req, jsonCT, chatResponse("y"), 10)
	env.cache.AdmitAndStore(inflight, 200, jsonCT, []byte(chatResponse("before the purge")), OriginUpstream, 10)
	if _, d := env.lookup("chat", alice, body(x)); d == Serve {
		t.Error("an answer in flight across the purge was stored and is served")
	}
}

// D2
func TestShadowAnswerInFlightAcrossPurgeIsStored(t *testing.T) {
	env := newEnv(t, `{"upstream_cluster":"u","purge":{"path":"/purge","token":"0123456789abcdef"},"routes":[{"name":"chat","kind":"chat",`+
		`"path_prefix":"/v1/chat","shadow":{"sample":1,"min_samples":50,"max_divergence":0.5}}]}`)
	env.fill(env.request("chat", alice, chatRequest("hi")), jsonCT, chatResponse("old"), 10)
	req, _ := env.lookup("chat", alice, chatRequest("hi"))
	acts := env.cache.Shadow(req, hdr(":method", "POST", ":path", "/v1/chat/completions"))
	purgeBetween(t, env, `{"route":"chat","model":"gpt-4o-mini"}`)
	acts[0].Call.Done(CallResult{Status: 200, Headers: jsonCT, Body: []byte(chatResponse("answered before the purge"))})
	if req, d := env.lookup("chat", alice, chatRequest("hi")); d == Serve {
		_, _, body := env.cache.HitResponse(req)
		t.Errorf("the shadow's answer, in flight across the purge, is served: %s", body)
	}
}

// D2b
func TestShadowAnswerOfReplacedVersionSwitchesBack(t *testing.T) {
	env := newEnv(t, `{"upstream_cluster":"u","routes":[{"name":"chat","kind":"chat","path_prefix":"/v1/chat",`+
		`"model_version":{"header":"x-model-version"},"shadow":{"sample":1,"min_samples":50,"max_divergence":0.5}}]}`)
	v := func(s string) [][2]string { return hdr("content-type", "application/json", "x-model-version", s) }
	env.fill(env.request("chat", alice, chatRequest("hi")), v("v1"), chatResponse("v1's answer"), 10)
	req, _ := env.lookup("chat", alice, chatRequest("hi"))
	acts := env.cache.Shadow(req, hdr(":method", "POST", ":path", "/v1/chat/completions"))
	other, _ := env.lookup("chat", bob, chatRequest("another"))
	env.fill(other, v("v2"), chatResponse("v2's answer"), 10) // switch to v2
	acts[0].Call.Done(CallResult{Status: 200, Headers: v("v1"), Body: []byte(chatResponse("late v1 answer"))})
	if _, d := env.lookup("chat", bob, chatRequest("another")); d != Serve {
		t.Error("a shadow's late v1 answer switched the model back: v2's entries are gone")
	}
}

// D3
func TestClockStepBackAfterPurgeAllRefusesNewModels(t *testing.T) {
	env := newEnv(t, testConfig)
	purgeBetween(t, env, `{"all":true}`)
	env.clock.Set(env.clock.Now().Add(-time.Hour)) // NTP steps the wall clock back
	env.clock.Advance(time.Minute)
	req, _ := env.lookup("chat", alice, chatRequest("asked after the purge"))
	if st := env.cache.AdmitAndStore(req, 200, jsonCT, []byte(chatResponse("a")), OriginUpstream, 10); st.Reason != ReasonNone {
		t.Errorf("a new model's first answer, keyed after the purge of everything, is refused: %v", st.Reason)
	}
}

// D3b
func TestClockStepBackAfterPurgeAllFailsFollowers(t *testing.T) {
	e := newProtoEnv(t, 0, "fail")
	if _, err := e.w[0].purgeAll(); err != nil {
		t.Fatal(err)
	}
	e.clock.Set(e.clock.Now().Add(-time.Hour))
	e.clock.Advance(time.Minute)
	a, _ := e.start(0, 1, "q")
	b, _ := e.start(1, 2, "q")
	a.ResponseHeaders(200, jsonCT, OriginUpstream, false)
	_, acts := a.Complete(jsonCT, []byte(chatResponse("answer")), 10, nil)
	e.show(acts)
	if got := e.deliver(1, b); got != "" && !strings.HasPrefix(got, "serve") {
		t.Errorf("follower of a leader whose upstream answered 200: %q", got)
	}
}

// D3c
func TestRelookupUnderNoRecordIsStored(t *testing.T) {
	env := newEnv(t, testConfig)
	purgeBetween(t, env, `{"all":true}`)
	env.clock.Advance(24 * time.Hour)
	models := sameModelSlot(t, env.cache, "chat", modelsPerSlot+1)
	body := func(m string) string { return withModel(chatRequest("q"), m) }
	for _, m := range models[:modelsPerSlot] {
		req, _ := env.lookup("chat", bob, body(m))
		env.fill(req, jsonCT, chatResponse(m), 10)
	}
	env.clock.Advance(time.Hour)
	req, _ := env.lookup("chat", alice, body(models[0])) // keyed under a (dead) record
	other, _ := env.lookup("chat", bob, body(models[modelsPerSlot]))
	env.fill(other, jsonCT, chatResponse("y"), 10) // reclaims models[0]'s record
	if _, read := env.cache.relookup(req); !read {
		t.Fatal("setup: relookup read nothing")
	}
	if st := env.cache.AdmitAndStore(req, 200, jsonCT, []byte(chatResponse("a")), OriginUpstream, 10); st.Reason != ReasonNone {
		t.Errorf("keyed a day after the last purge of everything, refused: %s", st.Reason)
	}
}

// D4
func TestLargeEmbeddingsPurgesKeepThePurgeLogRead(t *testing.T) {
	m := &l2Mesh{t: t, clock: newFakeClock(), wd: newFakeWebdis()}
	cfg := mustParse(t, `{"upstream_cluster":"model","l2":{"cluster":"webdis"},"purge":{"path":"/purge","token":"0123456789abcdef"},
	 "routes":[{"name":"chat","kind":"chat","path_prefix":"/v1/chat/completions","ttl":"1h"},
	           {"name":"embed","kind":"embeddings","path_exact":"/v1/embeddings","ttl":"1h"}]}`)
	for i := range m.p {
		m.p[i] = New(cfg, Options{Store: NewMemStore(), Now: m.clock.Now, Rand: seededRand(uint64(i))})
		m.step(m.p[i].L2Tick())
	}
	chat := m.helloOnB()
	purge := m.purgeOnA
	for n := 0; n < 30; n++ { // 30 purges of 2048-item batches on A
		in := make([]string, 2048)
		for i := range in {
			in[i] = `"` + strconv.Itoa(n) + "-" + strconv.Itoa(i) + `"`
		}
		purge(`{"path":"/v1/embeddings","headers":{"authorization":"Bearer sk-alice"},"body":{"model":"e","input":[` + strings.Join(in, ",") + `]}}`)
	}
	purge(`{"path":"/v1/chat/completions","headers":{"authorization":"Bearer sk-alice"},"body":` + chatRequest("hello") + `}`)
	var seen string
	for range 20 {
		m.clock.Advance(DefaultL2SyncInterval + 100*time.Millisecond)
		seen, _ = m.step(m.p[1].L2Tick())
	}
	if m.p[1].Lookup(chat()) == Serve {
		t.Errorf("B still serves the purged chat answer 20 sync intervals later; last log read: %q", seen)
	}
}

// D5
func TestShadowNullVectorDoesNotCrash(t *testing.T) {
	if os.Getenv("SHADOW_NULL_VECTOR_CHILD") == "1" {
		env, _ := shadowEmbeddingsEnv(t, "", []string{"[1,0,0]"})
		req, _ := env.lookup("embed", nil, `{"model":"e","input":"item 0"}`)
		acts := env.cache.Shadow(req, hdr(":method", "POST", ":path", "/v1/embeddings"))
		acts[0].Call.Done(CallResult{Status: 200, Headers: jsonCT,
			Body: []byte(`{"object":"list","model":"e","data":[{"object":"embedding","index":0,"embedding":null}]}`)})
		compareValues(&Shadow{Compare: "numeric", Tolerance: 0.1}, gjson.Parse(`0.9`), gjson.Parse(`"0.9"`))
		return
	}
	cmd := exec.Command(os.Args[0], "-test.run=^TestShadowNullVectorDoesNotCrash$")
	cmd.Env = append(os.Environ(), "SHADOW_NULL_VECTOR_CHILD=1")
	if out, err := cmd.CombinedOutput(); err != nil {
		s := string(out)
		if i := strings.Index(s, "\n\n"); i > 0 {
			s = s[:i]
		}
		t.Fatalf("shadow fresh answer with \"embedding\": null: %v\n%s", err, s)
	}
}

// D6
func TestShadowBatchWithoutVectorsIsAnError(t *testing.T) {
	env, batch := shadowEmbeddingsEnv(t, "", []string{"[1,0,0]", "[0,1,0]"})
	for _, fresh := range []string{
		`{"object":"list","model":"e","data":[{"object":"embedding","index":0},{"object":"embedding","index":1}]}`,
		`{"object":"list","model":"e","data":[{"object":"embedding","index":0,"embedding":[]},{"object":"embedding","index":1,"embedding":[]}]}`,
	} {
		req, _ := env.lookup("embed", nil, batch)
		acts := env.cache.Shadow(req, hdr(":method", "POST", ":path", "/v1/embeddings"))
		var evs []string
		for _, a := range acts[0].Call.Done(CallResult{Status: 200, Headers: jsonCT, Body: []byte(fresh)}) {
			if a.Kind == ActCount {
				evs = append(evs, EventNames[a.Event])
			}
		}
		if len(evs) == 0 || evs[0] != EventNames[EvShadowError] {
			t.Errorf("%s: counted %v, want shadow.errors", fresh, evs)
		}
	}
}

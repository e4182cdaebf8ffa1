package cachecore

import (
	"strings"
	"testing"
	"time"
)

// Review Z157 (follow-up of Z154..Z156's mends).

// followup157Mesh is a one-proxy L2 mesh whose classify route stores
// scored answers (0.9: 1h, 0.6: 1m) and shadows every hit.
func followup157Mesh(t *testing.T, extra string) (*l2Mesh, *Cache) {
	cfg := `{"upstream_cluster":"model","l2":{"cluster":"webdis"},"routes":[{"name":"cls","kind":"classify","path_exact":"/v1/classify","shared":true,` + extra +
		`"confidence":{"path":"score","tiers":[{"min":0.9,"ttl":"1h"},{"min":0.6,"ttl":"1m"}]},` +
		`"shadow":{"sample":1,"min_samples":100,"max_divergence":0.5}}]}`
	m := &l2Mesh{t: t, clock: newFakeClock(), wd: newFakeWebdis()}
	c := New(mustParse(t, cfg), Options{Store: NewMemStore(), Now: m.clock.Now, Rand: seededRand(1)})
	m.p[0] = c
	return m, c
}

// followup157Ask runs one classify request (request headers hs) to its
// end on c; the model answers answer if asked.
func followup157Ask(t *testing.T, m *l2Mesh, c *Cache, hs [][2]string, answer string) (string, []byte, *Request) {
	t.Helper()
	return followup157AskAs(t, m, c, hs, jsonCT, answer)
}

// followup157AskAs is followup157Ask whose model answers with headers rh.
func followup157AskAs(t *testing.T, m *l2Mesh, c *Cache, hs, rh [][2]string, answer string) (string, []byte, *Request) {
	t.Helper()
	const q = `{"model":"clf","input":"a photo"}`
	req := c.Begin(c.routeByName("cls"), "POST", "/v1/classify", hs)
	m.nextID++
	f := c.NewFlight(req, 1, m.nextID)
	if _, acts := f.RequestHeaders(hs, false, true); acts != nil {
		t.Fatalf("headers: %v", acts)
	}
	cs, body := followup154Run(t, m, f, f.RequestBody([]byte(q), false), rh, []byte(answer))
	return cs, body, f.Request()
}

// Z154's mend: a shadow comparison whose fresh answer diverges from the
// entry the hit was served and cannot take its place drops "the entry it
// contradicts" — now in L1 (table.Remove), in L2 (INCR + DEL of the
// version-free entry keys), again in L1 under any version (l2Again) and
// on every other proxy (an entry purge record). None of it checks that
// the entry it drops is the one the comparison was made against: an
// answer stored for the key while the shadow call was out (here a
// `Cache-Control: no-cache` request's fresh, high-confidence answer; a
// refresh's or a new version's alike) is what is dropped, mesh-wide,
// though the model never contradicted it (the fresh answer even agrees
// with it). Expected: the newer entry, stored after the contradicted one
// was served, stays: the next request is a hit of "dog".
func TestFollowup157ShadowDropPurgesNewerAnswerStoredMeanwhile(t *testing.T) {
	m, c := followup157Mesh(t, "")
	if cs, _, _ := followup157Ask(t, m, c, nil, `{"label":"cat","score":0.95}`); !strings.Contains(cs, "stored") {
		t.Fatalf("setup: first answer not stored: %q", cs)
	}
	cs, body, hit := followup157Ask(t, m, c, nil, `{"label":"unasked","score":0.95}`)
	if !strings.HasPrefix(cs, "modelcache; hit") || !strings.Contains(string(body), "cat") {
		t.Fatalf("setup: not a hit of cat: %q %s", cs, body)
	}
	acts := c.Shadow(hit, hdr(":method", "POST", ":path", "/v1/classify"))
	if len(acts) == 0 || acts[0].Call == nil {
		t.Fatalf("setup: no shadow call: %s", actionKinds(acts))
	}
	// While the shadow call is out, a client asks past the cache and the
	// model's confident new answer replaces the entry.
	m.clock.Advance(time.Second)
	cs, body, _ = followup157Ask(t, m, c, hdr("cache-control", "no-cache"), `{"label":"dog","score":0.95}`)
	if !strings.Contains(cs, "stored") || !strings.Contains(string(body), "dog") {
		t.Fatalf("setup: the no-cache request's answer was not stored: %q %s", cs, body)
	}
	if cs, body, _ := followup157Ask(t, m, c, nil, `{"label":"unasked","score":0.95}`); !strings.HasPrefix(cs, "modelcache; hit") || !strings.Contains(string(body), "dog") {
		t.Fatalf("setup: dog is not served: %q %s", cs, body)
	}
	// The shadow's answer comes back: dog, with low confidence. It
	// diverges from cat (the entry the hit was served) and cannot be
	// stored.
	m.clock.Advance(time.Second)
	done := acts[0].Call.Done(CallResult{Status: 200, Headers: jsonCT, Body: []byte(`{"label":"dog","score":0.3}`)})
	if got, _ := m.step(done); !strings.Contains(got, "shadow.diverge") {
		t.Fatalf("setup: no divergence counted: %q", got)
	}
	up := m.upstream
	cs, body, _ = followup157Ask(t, m, c, nil, `{"label":"unasked","score":0.95}`)
	if m.upstream != up || !strings.Contains(string(body), "dog") {
		t.Errorf("the entry stored after the contradicted one was served is dropped by the shadow's drop: %q %s (want a hit of dog, the model not asked)", cs, body)
	}
}

// The same drop, where the shadow's answer is a good one: refused only at
// the store, because the model's version switched while the call was out
// (the Request is put back on the state the call was sent under). The
// drop then takes out, by the version-free L2 keys and l2Again's removal
// under every version, the new version's entry — stored by the request
// that made the switch, the very answer the shadow's agrees with — here,
// in L2 and (by the purge log) on every proxy. Expected: the new
// version's entry is still served after the shadow's answer comes back.
func TestFollowup157ShadowDropAfterVersionSwitchPurgesNewVersionEntry(t *testing.T) {
	m, c := followup157Mesh(t, `"model_version":{"header":"x-model-version"},`)
	v1 := hdr("content-type", "application/json", "x-model-version", "v1")
	v2 := hdr("content-type", "application/json", "x-model-version", "v2")
	if cs, _, _ := followup157AskAs(t, m, c, nil, v1, `{"label":"cat","score":0.95}`); !strings.Contains(cs, "stored") {
		t.Fatalf("setup: first answer not stored: %q", cs)
	}
	cs, body, hit := followup157AskAs(t, m, c, nil, v1, `{"label":"unasked","score":0.95}`)
	if !strings.HasPrefix(cs, "modelcache; hit") || !strings.Contains(string(body), "cat") {
		t.Fatalf("setup: not a hit of cat: %q %s", cs, body)
	}
	acts := c.Shadow(hit, hdr(":method", "POST", ":path", "/v1/classify"))
	if len(acts) == 0 || acts[0].Call == nil {
		t.Fatalf("setup: no shadow call: %s", actionKinds(acts))
	}
	// While the shadow call is out, v2 is rolled out: a no-cache request
	// gets its answer, which switches the version and is stored.
	m.clock.Advance(time.Second)
	cs, body, _ = followup157AskAs(t, m, c, hdr("cache-control", "no-cache"), v2, `{"label":"dog","score":0.95}`)
	if !strings.Contains(cs, "stored") || !strings.Contains(string(body), "dog") {
		t.Fatalf("setup: the v2 answer was not stored: %q %s", cs, body)
	}
	if cs, body, _ := followup157AskAs(t, m, c, nil, v2, `{"label":"unasked","score":0.95}`); !strings.HasPrefix(cs, "modelcache; hit") || !strings.Contains(string(body), "dog") {
		t.Fatalf("setup: v2's dog is not served: %q %s", cs, body)
	}
	// The shadow's answer: v2's own confident dog.
	m.clock.Advance(time.Second)
	done := acts[0].Call.Done(CallResult{Status: 200, Headers: v2, Body: []byte(`{"label":"dog","score":0.95}`)})
	got, _ := m.step(done)
	t.Logf("shadow's end: %s", got)
	up := m.upstream
	cs, body, _ = followup157AskAs(t, m, c, nil, v2, `{"label":"unasked","score":0.95}`)
	if m.upstream != up || !strings.Contains(string(body), "dog") {
		t.Errorf("the new version's entry is dropped by a shadow of the old one's hit: %q %s (want a hit of v2's dog, the model not asked)", cs, body)
	}
}

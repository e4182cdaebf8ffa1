package cachecore

import (
	"bytes"
	"encoding/binary"
	"strings"
	"testing"
	"time"
	"unsafe"
)

func TestBegin(t *testing.T) {
	tests := []struct {
		name       string
		route      string
		headers    [][2]string
		wantStatus Status
		wantReason Reason
		check      func(t *testing.T, req *Request)
	}{
		{name: "authorization is an identity", route: "chat", headers: alice, wantStatus: StatusMiss},
		{name: "x-api-key is an identity", route: "chat", headers: hdr("x-api-key", "k1"), wantStatus: StatusMiss},
		{name: "no identity bypasses", route: "chat", headers: noIdent, wantStatus: StatusBypass, wantReason: ReasonNoIdentity},
		{name: "blank identity bypasses", route: "chat", headers: hdr("authorization", "  ", "x-api-key", ""), wantStatus: StatusBypass, wantReason: ReasonNoIdentity},
		{name: "other headers are no identity", route: "chat", headers: hdr("cookie", "session=1", "x-user", "u"), wantStatus: StatusBypass, wantReason: ReasonNoIdentity},
		{name: "shared route needs no identity", route: "embed", headers: noIdent, wantStatus: StatusMiss},
		{name: "no-store bypasses", route: "chat", headers: hdr("authorization", "a", "cache-control", "no-store"), wantStatus: StatusBypass, wantReason: ReasonRequestNoStore},
		{name: "no-store wins over no identity", route: "chat", headers: hdr("cache-control", "no-store"), wantStatus: StatusBypass, wantReason: ReasonRequestNoStore},
		{name: "no-store on a shared route", route: "embed", headers: hdr("cache-control", "max-age=5, NO-STORE"), wantStatus: StatusBypass, wantReason: ReasonRequestNoStore},
		{name: "no-cache revalidates", route: "chat", headers: hdr("authorization", "a", "cache-control", "no-cache"), wantStatus: StatusRevalidate},
		{name: "pragma no-cache revalidates", route: "chat", headers: hdr("authorization", "a", "pragma", "No-Cache"), wantStatus: StatusRevalidate},
		{name: "no-cache without identity still bypasses", route: "chat", headers: hdr("cache-control", "no-cache"), wantStatus: StatusBypass, wantReason: ReasonNoIdentity},
		{
			name: "request directives are kept", route: "chat", wantStatus: StatusMiss,
			headers: hdr("authorization", "a", "cache-control", "max-age=60, min-fresh=5, max-stale, only-if-cached"),
			check: func(t *testing.T, req *Request) {
				want := RequestCC{MaxAge: time.Minute, HasMaxAge: true, MinFresh: 5 * time.Second, HasMinFresh: true, HasMaxStale: true, MaxStaleAny: true, OnlyIfCached: true}
				if req.CC != want {
					t.Errorf("CC = %+v, want %+v", req.CC, want)
				}
			},
		},
		{
			name: "route ignoring Cache-Control", route: "nocc", wantStatus: StatusMiss,
			headers: hdr("authorization", "a", "cache-control", "no-store, no-cache", "pragma", "no-cache"),
			check: func(t *testing.T, req *Request) {
				if req.CC != (RequestCC{}) {
					t.Errorf("CC = %+v", req.CC)
				}
			},
		},
	}
	env := newEnv(t, testConfig)
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := env.route(tc.route)
			req := env.cache.Begin(r, "POST", r.Exact, tc.headers)
			if req.Status != tc.wantStatus || req.Reason != tc.wantReason {
				t.Fatalf("Begin: %s/%s, want %s/%s", req.Status, req.Reason, tc.wantStatus, tc.wantReason)
			}
			if req.Bypassed() != (tc.wantStatus == StatusBypass) {
				t.Errorf("Bypassed() = %v", req.Bypassed())
			}
			if tc.check != nil {
				tc.check(t, req)
			}
		})
	}
}

// TestKeyIdentity: what does and does not change a request's key.
func TestKeyIdentity(t *testing.T) {
	base := chatRequest("What is the capital of France?")
	tests := []struct {
		name        string
		route       string
		headers     [][2]string
		body        string
		sameAsBase  bool
		baseOnRoute string // route of the base request (default: route)
		baseHeaders [][2]string
	}{
		{name: "identical", route: "chat", headers: alice, body: base, sameAsBase: true},
		{name: "key order and whitespace", route: "chat", headers: alice, sameAsBase: true,
			body: "{ \"temperature\": 0,\n \"messages\":[{\"content\":\"What is the capital of France?\",\"role\":\"user\"}], \"model\":\"gpt-4o-mini\" }"},
		{name: "float spelling of an integer", route: "chat", headers: alice, body: strings.Replace(base, `"temperature":0`, `"temperature":0.0`, 1)},
		{name: "ignored user field", route: "chat", headers: alice, sameAsBase: true,
			body: strings.Replace(base, `{`, `{"user":"u-42","metadata":{"trace":"x"},"store":true,`, 1)},
		{name: "other temperature", route: "chat", headers: alice, body: strings.Replace(base, `"temperature":0`, `"temperature":0.7`, 1)},
		{name: "other prompt", route: "chat", headers: alice, body: chatRequest("What is the capital of Spain?")},
		{name: "other model", route: "chat", headers: alice, body: strings.Replace(base, "gpt-4o-mini", "gpt-4o", 1)},
		{name: "other tenant", route: "chat", headers: bob, body: base},
		{name: "same secret under another header", route: "chat", headers: hdr("x-api-key", "Bearer sk-alice"), body: base},
		{name: "first identity header wins", route: "chat", headers: hdr("x-api-key", "other", "authorization", "Bearer sk-alice"), body: base, sameAsBase: true},
		{name: "other route", route: "sie", headers: alice, body: base, baseOnRoute: "chat"},
		{name: "shared route ignores tenants", route: "embed", headers: bob, body: `{"model":"e","input":"x"}`, sameAsBase: true, baseHeaders: alice},
		{name: "shared route without identity", route: "embed", headers: noIdent, body: `{"model":"e","input":"x"}`, sameAsBase: true, baseHeaders: alice},
	}
	env := newEnv(t, testConfig)
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			baseRoute, baseHeaders, baseBody := tc.route, alice, base
			if tc.baseOnRoute != "" {
				baseRoute = tc.baseOnRoute
			}
			if tc.baseHeaders != nil {
				baseHeaders = tc.baseHeaders
			}
			if tc.route == "embed" {
				baseBody = tc.body
			}
			a := env.request(baseRoute, baseHeaders, baseBody)
			b := env.request(tc.route, tc.headers, tc.body)
			if a.Bypassed() || b.Bypassed() {
				t.Fatalf("bypassed: %s / %s", a.Reason, b.Reason)
			}
			same := bytes.Equal(a.Key, b.Key)
			if same != tc.sameAsBase {
				t.Fatalf("same key = %v, want %v", same, tc.sameAsBase)
			}
			if same != (a.FP == b.FP) {
				t.Fatalf("fingerprints disagree with keys")
			}
		})
	}
}

func TestSetBody(t *testing.T) {
	tests := []struct {
		name       string
		route      string
		headers    [][2]string
		body       string
		wantReason Reason
		check      func(t *testing.T, req *Request)
	}{
		{name: "chat request", route: "chat", headers: alice, body: chatRequest("hi"), check: func(t *testing.T, req *Request) {
			if req.Model != "gpt-4o-mini" || req.Stream || len(req.Key) == 0 || req.FP == 0 || req.Body == nil {
				t.Errorf("req = %+v", req)
			}
		}},
		{name: "empty body", route: "chat", headers: alice, body: "", wantReason: ReasonNoBody},
		{name: "too large", route: "chat", headers: alice, body: chatRequest(strings.Repeat("x", 8192)), wantReason: ReasonBodyTooLarge},
		{name: "exactly max_request_bytes", route: "json", body: `{"x":"` + strings.Repeat("y", 8192-8) + `"}`},
		{name: "malformed", route: "chat", headers: alice, body: `{"model":"m",`, wantReason: ReasonMalformedJSON},
		{name: "not JSON at all", route: "chat", headers: alice, body: `model=gpt`, wantReason: ReasonMalformedJSON},
		{name: "duplicate key", route: "chat", headers: alice, body: `{"model":"a","model":"b"}`, wantReason: ReasonDuplicateKey},
		{name: "too deep", route: "json", body: `{"x":` + strings.Repeat("[", 70) + strings.Repeat("]", 70) + `}`, wantReason: ReasonTooDeep},
		{name: "absurd exponent", route: "json", body: `{"x":1e99999999}`, wantReason: ReasonNumberRange},
		{name: "stream on chat is cached (streams are recorded)", route: "chat", headers: alice, body: `{"model":"m","stream":true,"messages":[]}`},
		{name: "stream false on chat", route: "chat", headers: alice, body: `{"model":"m","stream":false,"messages":[]}`},
		{name: "stream on a json route", route: "json", body: `{"model":"m","stream":true}`, check: func(t *testing.T, req *Request) {
			if !req.Stream {
				t.Errorf("Stream = false")
			}
		}},
		{name: "no model", route: "json", body: `{"input":"x"}`, check: func(t *testing.T, req *Request) {
			if req.Model != "" {
				t.Errorf("Model = %q", req.Model)
			}
		}},
		{name: "already bypassed", route: "chat", headers: noIdent, body: chatRequest("hi"), wantReason: ReasonNoIdentity, check: func(t *testing.T, req *Request) {
			if req.Key != nil || req.Body != nil {
				t.Errorf("a bypassed request was keyed")
			}
		}},
	}
	env := newEnv(t, testConfig)
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			req := env.request(tc.route, tc.headers, tc.body)
			if req.Reason != tc.wantReason || req.Bypassed() != (tc.wantReason != ReasonNone) {
				t.Fatalf("status %s reason %s, want reason %s", req.Status, req.Reason, tc.wantReason)
			}
			if tc.check != nil {
				tc.check(t, req)
			}
		})
	}
}

// TestStreamModeIsPartOfKey: a recorded event stream must never answer a
// request for a JSON body, nor the reverse (sse.go: "stream: true and
// stream: false requests never share an entry: stream is part of the
// key") — whatever key_fields selects.
func TestStreamModeIsPartOfKey(t *testing.T) {
	for _, tc := range []struct{ name, members string }{
		{"kind defaults", ``},
		{"key_fields without stream", `,"key_fields":["model","messages"]`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			env := newEnv(t, `{"routes":[{"name":"chat","kind":"chat","path_prefix":"/v1"`+tc.members+`}]}`)
			streaming := env.request("chat", alice, `{"model":"m","messages":[{"role":"user","content":"hi"}],"stream":true}`)
			plain := env.request("chat", alice, `{"model":"m","messages":[{"role":"user","content":"hi"}],"stream":false}`)
			if !streaming.Stream || plain.Stream || streaming.Bypassed() || plain.Bypassed() {
				t.Fatalf("requests: stream %v/%v, bypass %s/%s", streaming.Stream, plain.Stream, streaming.Reason, plain.Reason)
			}
			if bytes.Equal(streaming.Key, plain.Key) {
				t.Fatalf("stream:true and stream:false share a key: a recorded event stream would answer a JSON request")
			}
		})
	}
}

// A stream asked with usage (stream_options.include_usage) ends with a
// usage chunk; one asked without has none. Under key_fields that leave
// stream_options out, the two shared an entry, and a client that asked
// for usage could be replayed a stream without it (or the reverse).
func TestStreamOptionsArePartOfKeyUnderKeyFields(t *testing.T) {
	env := newEnv(t, `{"routes":[{"name":"chat","kind":"chat","path_prefix":"/v1","key_fields":["model","messages"]}]}`)
	withUsage := env.request("chat", alice, `{"model":"m","messages":[{"role":"user","content":"hi"}],"stream":true,"stream_options":{"include_usage":true}}`)
	without := env.request("chat", alice, `{"model":"m","messages":[{"role":"user","content":"hi"}],"stream":true}`)
	if withUsage.Bypassed() || without.Bypassed() {
		t.Fatalf("bypassed: %s/%s", withUsage.Reason, without.Reason)
	}
	if bytes.Equal(withUsage.Key, without.Key) {
		t.Fatal("a stream with usage and one without share a key")
	}
}

// TestMissStoreHit walks one key through its life: miss, store, hit with
// Age and Cache-Status, across tenants.

// The remembered credentials (the last one first, then the map) give every
// credential its own hash, whatever the order they come in, and the last
// one is a copy: the host's buffer it came from may be overwritten.
func TestTenantHashRemembersEachCredential(t *testing.T) {
	var c Cache
	fresh := func(name, value string) [32]byte {
		var other Cache
		return other.tenantHash(name, value).sum
	}
	buf := []byte("Bearer tenant-a")
	a := unsafe.String(&buf[0], len(buf)) // aliases buf, as header strings alias the host's buffer
	want := map[string][32]byte{}
	for _, v := range []string{"Bearer tenant-a", "Bearer tenant-b", "Bearer tenant-c"} {
		want[v] = fresh("authorization", v)
	}
	if want["Bearer tenant-a"] == want["Bearer tenant-b"] {
		t.Fatal("two credentials share a hash")
	}
	for i, v := range []string{"Bearer tenant-a", "Bearer tenant-a", "Bearer tenant-b", "Bearer tenant-a", "Bearer tenant-c", "Bearer tenant-c", "Bearer tenant-b"} {
		if i == 0 {
			v = a
		}
		for j := 0; j < 2; j++ { // the second: the last credential
			if got := c.tenantHash("authorization", v).sum; got != want[v] {
				t.Fatalf("request %d.%d (%s): another credential's hash", i, j, v)
			}
		}
		if got := c.tenantHash("x-api-key", v).sum; got == want[v] {
			t.Fatalf("request %d (%s): the hash of another header's credential", i, v)
		}
	}
	if got := c.tenantHash("authorization", a).sum; got != want["Bearer tenant-a"] {
		t.Fatal("tenant-a")
	}
	copy(buf, "Bearer tenant-z")
	if got := c.tenantHash("authorization", "Bearer tenant-z").sum; got != fresh("authorization", "Bearer tenant-z") {
		t.Fatal("a credential read into a reused buffer got the hash of what the buffer held before")
	}
}

// TestKeyLayout pins the key's bytes to the layout buildKey documents:
// entries already in shared data and in an L2 shared with proxies of
// another build are found only under the same bytes.
func TestKeyLayout(t *testing.T) {
	env := newEnv(t, testConfig)
	for _, body := range []string{chatRequest("What is the capital of France?"),
		`{"model":"m","messages":[{"role":"user","content":"hi"}],"stream":true}`} {
		req := env.request("chat", alice, body)
		if req.Bypassed() {
			t.Fatalf("bypassed: %s", req.Reason)
		}
		lv := func(b []byte, s string) []byte {
			return append(binary.LittleEndian.AppendUint32(b, uint32(len(s))), s...)
		}
		want := []byte("K2") // the key format's version, '2' since stop 73 (keyFormat)
		want = lv(want, req.Route.Name)
		want = binary.LittleEndian.AppendUint64(want, req.Route.keyTag)
		want = lv(want, req.Method)
		want = lv(want, req.Path)
		want = lv(want, req.authority)
		want = append(want, req.tenant[:]...)
		want = lv(want, req.Model)
		ns := len(want) // the namespace: "K2" through the model
		if req.Stream {
			want = append(want, 'S')
		} else {
			want = append(want, 'N')
		}
		want = append(want, req.canonical...)
		stable := len(want)
		want = append(want, req.state.Version[:]...)
		want = binary.LittleEndian.AppendUint64(want, req.state.Gen)
		if !bytes.Equal(req.Key, want) || req.stableLen != stable {
			t.Fatalf("key %q (stable %d), want %q (stable %d)", req.Key, req.stableLen, want, stable)
		}
		if got := req.appendNamespace([]byte("x"), 'E'); !bytes.Equal(got, append([]byte("xE"), want[1:ns]...)) {
			t.Fatalf("namespace %q", got)
		}
	}
}

// The same gap for a nested model_path. The parser
// requires key_fields to hold a plain model field, but not the member a
// nested model_path lives in; SetBody reads the model with gjson (the
// FIRST "params"), the canonical body drops "params" before the duplicate
// check, and a last-wins server answers with the SECOND one's model. The
// answer of model B is stored under model A's namespace and served to
// the next request for model A.
func TestNestedModelPathDuplicateIsRefused(t *testing.T) {
	env := newEnv(t, `{"routes":[{"name":"json","kind":"json","path_exact":"/v1/predict","shared":true,
	  "model_path":"params.model","key_fields":["input"]}]}`)
	twoModels := `{"params":{"model":"A"},"params":{"model":"B"},"input":"x"}`
	req := env.request("json", noIdent, twoModels)
	if req.Bypassed() {
		return
	}
	t.Errorf("a body with a duplicate \"params\" (which holds the model) is keyed under model %q (reason %q)", req.Model, req.Reason)
	if env.cache.Lookup(req) != Forward {
		t.Fatalf("lookup: %s", req.Status)
	}
	env.fill(req, jsonCT, `{"label":"answer of model B"}`, 1)
	honest, d := env.lookup("json", noIdent, `{"params":{"model":"A"},"input":"x"}`)
	if d == Serve {
		t.Fatalf("a request for model %q is served %s", honest.Model, honest.Entry.Body)
	}
}

// A key holds a digest of its route's selection (key_fields,
// ignore_fields). Shared data outlives a configuration change under the
// same vm_id (README: only a restart empties it): without it, after an
// operator took a field out of ignore_fields because it does change the
// answer, entries keyed without that field stayed reachable and answered
// requests that differ in it.
func TestKeySelectionChangeDoesNotReuseEntries(t *testing.T) {
	store := NewMemStore()
	clock := newFakeClock()
	mk := func(route string) *testEnv {
		c := New(mustParse(t, `{"routes":[`+route+`]}`), Options{Store: store, Now: clock.Now, Rand: seededRand(1)})
		return &testEnv{t: t, cache: c, store: store, clock: clock}
	}
	// Before: response_format wrongly listed as not changing the answer.
	before := mk(`{"name":"chat","kind":"chat","path_exact":"/v1/chat/completions","ttl":"1h","ignore_fields":["user","response_format"]}`)
	schema := `{"model":"m","messages":[{"role":"user","content":"list three colours"}],"response_format":{"type":"json_object"}}`
	req, _ := before.lookup("chat", alice, schema)
	before.fill(req, jsonCT, chatResponse(`{"colours":["red","green","blue"]}`), 10)

	// After: the fix, loaded into the same Envoy (same shared data).
	after := mk(`{"name":"chat","kind":"chat","path_exact":"/v1/chat/completions","ttl":"1h"}`)
	plain := `{"model":"m","messages":[{"role":"user","content":"list three colours"}]}`
	got, d := after.lookup("chat", alice, plain)
	if d == Serve {
		t.Fatalf("after response_format was taken out of ignore_fields, a request without it is served the JSON-mode answer stored under the old selection: %s", got.Entry.Body)
	}
}

// namespaceLen is what appendNamespace appends, for the bound on a batch's
// keys that is checked before any key is built.
func TestNamespaceLenIsAppendNamespaces(t *testing.T) {
	c, r := newEmbCache(t)
	req := c.Begin(r, "POST", "/v1/embeddings?x=1", [][2]string{{":authority", "models.example"}, {"authorization", "Bearer t"}})
	c.SetBody(req, []byte(`{"model":"text-embedding-3-small","input":["a"]}`))
	if got, want := req.namespaceLen(), len(req.appendNamespace(nil, 'E')); got != want {
		t.Fatalf("namespaceLen %d, appendNamespace appends %d", got, want)
	}
	// With key_headers, their values are in the namespace too.
	env := newEnv(t, keyHeadersConfig)
	req = env.cache.Begin(env.route("emb"), "POST", "/v1/embeddings", hdr("authorization", "Bearer t", "openai-project", "proj_A"))
	env.cache.SetBody(req, []byte(`{"model":"text-embedding-3-small","input":["a"]}`))
	if got, want := req.namespaceLen(), len(req.appendNamespace(nil, 'E')); got != want {
		t.Fatalf("with key headers: namespaceLen %d, appendNamespace appends %d", got, want)
	}
}

// keyHeadersConfig keys two request headers (key_headers, from defaults)
// on a semantic chat route and an embeddings route; "plain" keys none.
const keyHeadersConfig = `{"upstream_cluster":"model","defaults":{"key_headers":["OpenAI-Project","openai-organization"]},"routes":[
  {"name":"chat","kind":"chat","path_exact":"/v1/chat/completions","semantic":{"embedding":{"cluster":"embeddings","model":"e5"}}},
  {"name":"emb","kind":"embeddings","path_exact":"/v1/embeddings"},
  {"name":"plain","kind":"chat","path_exact":"/v2/chat/completions","key_headers":[]}]}`

// A route's key_headers are part of its namespace, so of every key made
// from it: the exact key (and so an L2 key, Key[:stableLen]), the lease
// fingerprint, a semantic partition and an embeddings item's key. Absent,
// empty, each value, and each order of repeated lines are all different
// keys; the same headers make the same key, whatever else the request
// carries.
func TestKeyHeadersAreInTheNamespace(t *testing.T) {
	env := newEnv(t, keyHeadersConfig)
	with := func(kv ...string) [][2]string {
		return append(hdr("authorization", "Bearer sk-alice", "x-trace", "1"), hdr(kv...)...)
	}
	variants := []struct {
		name    string
		headers [][2]string
	}{
		{"absent", with()},
		{"empty", with("openai-project", "")},
		{"proj_A", with("openai-project", "proj_A")},
		{"proj_a", with("openai-project", "proj_a")},
		{"proj_B", with("openai-project", "proj_B")},
		{"proj_A, proj_B", with("openai-project", "proj_A", "openai-project", "proj_B")},
		{"proj_B, proj_A", with("openai-project", "proj_B", "openai-project", "proj_A")},
		{"one line proj_A,proj_B", with("openai-project", "proj_A,proj_B")},
		{"organization proj_A", with("openai-organization", "proj_A")},
		{"both", with("openai-project", "proj_A", "openai-organization", "org_1")},
		{"both, other organization", with("openai-organization", "org_2", "openai-project", "proj_A")},
	}
	body := chatRequest("Which project is this?")
	type keys struct {
		key, stable []byte
		lease, part uint64
		item        []byte
	}
	keysOf := func(h [][2]string) keys {
		t.Helper()
		req := env.request("chat", h, body)
		if req.Bypassed() {
			t.Fatalf("bypassed: %s", req.Reason)
		}
		q, ok := env.cache.semanticQuery(req)
		if !ok {
			t.Fatal("no semantic turn")
		}
		q.ns = 7
		emb := env.request("emb", h, `{"model":"e","input":["one item"]}`)
		if emb.Bypassed() || emb.batch == nil {
			t.Fatalf("embeddings request: %s", emb.Reason)
		}
		env.cache.itemKeys(emb)
		return keys{bytes.Clone(req.Key), bytes.Clone(req.Key[:req.stableLen]), req.LeaseFP(), env.cache.semPartition(req, q),
			bytes.Clone(emb.batch.items[emb.batch.distinct[0]].key)}
	}
	got := make([]keys, len(variants))
	for i, v := range variants {
		got[i] = keysOf(v.headers)
		if again := keysOf(v.headers); !bytes.Equal(again.key, got[i].key) || again.part != got[i].part || !bytes.Equal(again.item, got[i].item) {
			t.Fatalf("%s: the same headers keyed twice differ", v.name)
		}
	}
	for i := range variants {
		for j := range i {
			a, b := got[i], got[j]
			switch {
			case bytes.Equal(a.key, b.key), bytes.Equal(a.stable, b.stable):
				t.Errorf("%s and %s share a key", variants[i].name, variants[j].name)
			case a.lease == b.lease:
				t.Errorf("%s and %s share a lease", variants[i].name, variants[j].name)
			case a.part == b.part:
				t.Errorf("%s and %s share a semantic partition", variants[i].name, variants[j].name)
			case bytes.Equal(a.item, b.item):
				t.Errorf("%s and %s share an embeddings item's key", variants[i].name, variants[j].name)
			}
		}
	}
	// Lines of different names are keyed by name, in key_headers' order.
	if swapped := keysOf(with("openai-organization", "org_1", "openai-project", "proj_A")); !bytes.Equal(swapped.key, got[9].key) {
		t.Error("the order of two key headers' lines changed the key")
	}
	// A route that keys no header: the header changes nothing.
	a, b := env.request("plain", with(), body), env.request("plain", with("openai-project", "proj_A"), body)
	if a.Bypassed() || !bytes.Equal(a.Key, b.Key) {
		t.Fatalf("a route without key_headers keys openai-project (%s)", a.Reason)
	}
}

// A key header's value is bounded (256 bytes a line, 8 lines): a longer
// one bypasses the cache with its reason rather than grow keys; at the
// bound it is keyed.
func TestKeyHeaderBeyondItsBoundBypasses(t *testing.T) {
	env := newEnv(t, keyHeadersConfig)
	lines := func(n, size int) [][2]string {
		h := alice
		for range n {
			h = append(h, [2]string{"openai-project", strings.Repeat("p", size)})
		}
		return h
	}
	for _, tc := range []struct {
		name    string
		headers [][2]string
		reason  Reason
	}{
		{"256 bytes", lines(1, 256), ReasonNone},
		{"257 bytes", lines(1, 257), ReasonKeyHeaderTooLarge},
		{"8 lines of 256 bytes", lines(8, 256), ReasonNone},
		{"9 lines", lines(9, 1), ReasonKeyHeaderTooLarge},
		{"second header too long", append(lines(1, 1), [2]string{"openai-organization", strings.Repeat("o", 300)}), ReasonKeyHeaderTooLarge},
	} {
		t.Run(tc.name, func(t *testing.T) {
			req := env.request("chat", tc.headers, chatRequest("bounded"))
			if req.Reason != tc.reason || req.Bypassed() != (tc.reason != ReasonNone) {
				t.Fatalf("%s (%s), want %s", req.Status, req.Reason, tc.reason)
			}
			if req.Bypassed() && !req.Reason.RequestSide() {
				t.Fatalf("%s is not a request-side reason", req.Reason)
			}
		})
	}
}

// directiveLines compares header names and the usual type a word at a time:
// it must agree with the plain comparison for names and values one byte
// off, in any position.
func TestBodyNotJSONReadsNamesAndTypesExactly(t *testing.T) {
	for _, tc := range []struct {
		name, value string
		want        bool
	}{
		{"content-type", "application/json", false},
		{"content-type", "application/jsoN", false}, // any case: isJSONType
		{"content-type", "application/jsox", true},
		{"content-type", "bpplication/json", true},
		{"content-type", "text/plain; x=1", true},
		{"content-type", "", false}, // empty: as none (servers read such a body as JSON)
		{"content-type", "application/problem+json", false},
		{"content-typo", "text/plain", false},
		{"dontent-type", "text/plain", false},
		{"content_type", "text/plain", false},
		{"accept-langu", "text/plain", false},
		{"inference-header-content-length", "12", true},
		{"inference-header-content-lengti", "12", false},
	} {
		h := [][2]string{{":path", "/v1/x"}, {tc.name, tc.value}, {"authorization", "Bearer a"}}
		if _, _, got := directiveLines(h); got != tc.want {
			t.Errorf("%s: %s: got %v, want %v", tc.name, tc.value, got, tc.want)
		}
	}
	if _, _, got := directiveLines(nil); got {
		t.Error("no headers: not JSON")
	}
}

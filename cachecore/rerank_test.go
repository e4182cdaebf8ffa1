package cachecore

import (
	"reflect"
	"strings"
	"testing"
)

const rerankCfg = `{"upstream_cluster":"model","routes":[{"name":"rerank","kind":"rerank","path_prefix":"/v1/rerank","ttl":"1h"}]}`

func rerankRequestBody(query string, topN string, docs ...string) string {
	b := `{"model":"rr-1","query":` + quote(query) + `,"documents":[`
	for i, d := range docs {
		if i > 0 {
			b += ","
		}
		b += quote(d)
	}
	b += "]"
	if topN != "" {
		b += `,"top_n":` + topN
	}
	return b + "}"
}

func TestRerankConfigDefaults(t *testing.T) {
	cfg := mustParse(t, `{"upstream_cluster":"model","routes":[{"name":"r","kind":"rerank","path_prefix":"/v1/rerank","shadow":{"sample":0.5}}]}`)
	r := cfg.Routes[0]
	if r.Kind != KindRerank || r.TTL != DefaultTTL || r.KeyFields != nil || r.IgnoreFields != nil || r.FinishReasons != nil {
		t.Errorf("rerank policy = %+v", r.Policy)
	}
	if r.PerItem() || r.Streams() {
		t.Errorf("rerank: PerItem %v Streams %v, want whole-request JSON", r.PerItem(), r.Streams())
	}
	if r.Shadow == nil || r.Shadow.Compare != "exact" || !reflect.DeepEqual(r.Shadow.Paths, []string{"results.#.index"}) {
		t.Errorf("rerank shadow = %+v, want exact on results.#.index", r.Shadow)
	}
}

// TestKindTable: every kind the parser accepts has one entry whose
// defaults the parsed route carries, and the entries do not share slices
// with the routes (a route's override must not change another route).
func TestKindTable(t *testing.T) {
	seen := map[Kind]bool{}
	for _, s := range kinds {
		if seen[s.kind] {
			t.Fatalf("kind %q twice in the table", s.kind)
		}
		seen[s.kind] = true
		if !compareModes[s.shadowCompare] {
			t.Errorf("%s: shadow comparator %q unknown", s.kind, s.shadowCompare)
		}
		if !strings.Contains(kindList(), string(s.kind)) {
			t.Errorf("%s missing from kindList %q", s.kind, kindList())
		}
		cfg := mustParse(t, `{"upstream_cluster":"m","routes":[{"name":"r","kind":"`+string(s.kind)+`","path_prefix":"/","shadow":{}}]}`)
		r := cfg.Routes[0]
		if !reflect.DeepEqual(r.IgnoreFields, s.ignoreFields) || !reflect.DeepEqual(r.FinishReasons, s.finishReasons) ||
			r.Shadow.Compare != s.shadowCompare || !reflect.DeepEqual(r.Shadow.Paths, s.shadowPaths) {
			t.Errorf("%s: route defaults %+v / %+v differ from the table %+v", s.kind, r.Policy, r.Shadow, s)
		}
		if len(r.IgnoreFields) > 0 {
			r.IgnoreFields[0] = "changed"
			if s.ignoreFields[0] == "changed" {
				t.Fatalf("%s: a route aliases the table's ignore_fields", s.kind)
			}
		}
	}
	for _, k := range []Kind{KindChat, KindCompletions, KindEmbeddings, KindClassify, KindJSON, KindRerank} {
		if !seen[k] {
			t.Errorf("kind %q has no table entry", k)
		}
	}
	if Kind("nope").spec() != jsonSpec || knownKind("nope") {
		t.Error("an unknown kind must behave as json and not parse")
	}
}

// TestRerankKey: the whole request is the key; every field that changes
// the ranking changes the key, spelling does not.
func TestRerankKey(t *testing.T) {
	env := newEnv(t, rerankCfg)
	base := rerankRequestBody("what is a cache", "2", "a", "b", "c")
	req := env.request("rerank", alice, base)
	if req.Bypassed() {
		t.Fatalf("bypassed: %s", req.Reason)
	}
	key := string(req.Key)
	same := `{ "documents": ["a","b","c"], "top_n": 2, "query": "what is a cache", "model": "rr-1" }`
	if got := env.request("rerank", alice, same); string(got.Key) != key {
		t.Error("reordered members changed the key")
	}
	for name, body := range map[string]string{
		"query":            rerankRequestBody("what is a store", "2", "a", "b", "c"),
		"documents":        rerankRequestBody("what is a cache", "2", "a", "c", "b"),
		"top_n":            rerankRequestBody("what is a cache", "3", "a", "b", "c"),
		"no top_n":         rerankRequestBody("what is a cache", "", "a", "b", "c"),
		"return_documents": strings.TrimSuffix(base, "}") + `,"return_documents":true}`,
		"model":            strings.Replace(base, `"rr-1"`, `"rr-2"`, 1),
	} {
		got := env.request("rerank", alice, body)
		if got.Bypassed() {
			t.Errorf("%s: bypassed: %s", name, got.Reason)
		} else if string(got.Key) == key {
			t.Errorf("%s: same key as the base request", name)
		}
	}
	if got := env.request("rerank", bob, base); string(got.Key) == key {
		t.Error("two tenants share a key")
	}
}

func TestRerankRequestBypass(t *testing.T) {
	env := newEnv(t, rerankCfg)
	for name, body := range map[string]string{
		"no documents":       `{"model":"m","query":"q"}`,
		"documents a string": `{"model":"m","query":"q","documents":"a"}`,
		"top_n negative":     rerankRequestBody("q", "-1", "a"),
		"top_n float":        rerankRequestBody("q", "1.0", "a"),
		"top_n exponent":     rerankRequestBody("q", "1e3", "a"),
		"top_n string":       rerankRequestBody("q", `"1"`, "a"),
	} {
		req := env.request("rerank", alice, body)
		if !req.Bypassed() || req.Reason != ReasonRerankInput {
			t.Errorf("%s: status %s reason %s, want bypass rerank_input", name, req.Status, req.Reason)
		}
	}
	for name, body := range map[string]string{
		"top_n null":     rerankRequestBody("q", "null", "a"),
		"top_n 0":        rerankRequestBody("q", "0", "a"),
		"top_n large":    rerankRequestBody("q", "1000", "a"),
		"no documents":   `{"model":"m","query":"q","documents":[]}`,
		"document texts": `{"model":"m","query":"q","documents":[{"text":"a"},{"text":"b"}]}`,
	} {
		if req := env.request("rerank", alice, body); req.Bypassed() {
			t.Errorf("%s: bypassed: %s", name, req.Reason)
		}
	}
	if !ReasonRerankInput.RequestSide() || ReasonRerankResults.RequestSide() || !ReasonNoIdentity.RequestSide() ||
		ReasonStatus.RequestSide() || ReasonNone.RequestSide() {
		t.Error("RequestSide misclassifies reasons")
	}
}

// TestRerankAdmission: only an answer that ranks exactly the documents
// asked about is stored.
func TestRerankAdmission(t *testing.T) {
	three := rerankRequestBody("q", "", "a", "b", "c")
	topTwo := rerankRequestBody("q", "2", "a", "b", "c")
	const good3 = `{"id":"r1","model":"rr-1","results":[{"index":2,"relevance_score":0.9},{"index":0,"relevance_score":0.5},{"index":1,"relevance_score":-1.25}],"usage":{"total_tokens":7}}`
	tests := []struct {
		name, req, answer string
		want              Reason
	}{
		{"good", three, good3, ReasonNone},
		{"good with documents", three, `{"results":[{"index":1,"relevance_score":0.9,"document":{"text":"b"}},{"index":0,"relevance_score":0.1,"document":{"text":"a"}},{"index":2,"relevance_score":0,"document":{"text":"c"}}],"meta":{"api_version":{"version":"2"}}}`, ReasonNone},
		{"good top_n", topTwo, `{"results":[{"index":2,"relevance_score":0.9},{"index":0,"relevance_score":0.5}]}`, ReasonNone},
		{"top_n beyond documents", rerankRequestBody("q", "10", "a"), `{"results":[{"index":0,"relevance_score":1}]}`, ReasonNone},
		{"no documents, no results", `{"model":"m","query":"q","documents":[]}`, `{"results":[]}`, ReasonNone},
		{"no results", three, `{"id":"r1","model":"rr-1"}`, ReasonForeignShape}, // another API's answer (review Z33)
		{"results null", three, `{"results":null}`, ReasonRerankResults},
		{"results an object", three, `{"results":{"index":0,"relevance_score":1}}`, ReasonRerankResults},
		{"results empty", three, `{"results":[]}`, ReasonRerankResults},
		{"result not an object", three, `{"results":[1,2,3]}`, ReasonRerankResults},
		{"a document dropped", three, `{"results":[{"index":2,"relevance_score":0.9},{"index":0,"relevance_score":0.5}]}`, ReasonRerankResults},
		{"more than top_n", topTwo, good3, ReasonRerankResults},
		// Duplicate members are refused for every kind before the kind's
		// checks run (jsonbound.go, duplicateMembers).
		{"results twice", three, `{"results":[],` + good3[1:], ReasonDuplicateKey},
		{"index out of range", three, strings.Replace(good3, `"index":2`, `"index":3`, 1), ReasonRerankIndex},
		{"index negative", three, strings.Replace(good3, `"index":2`, `"index":-1`, 1), ReasonRerankIndex},
		{"index float", three, strings.Replace(good3, `"index":2`, `"index":2.0`, 1), ReasonRerankIndex},
		{"index string", three, strings.Replace(good3, `"index":2`, `"index":"2"`, 1), ReasonRerankIndex},
		{"index missing", three, strings.Replace(good3, `"index":2,`, ``, 1), ReasonRerankIndex},
		{"index twice in a result", three, strings.Replace(good3, `"index":2`, `"index":2,"index":1`, 1), ReasonDuplicateKey},
		{"duplicate index", three, strings.Replace(good3, `"index":1`, `"index":0`, 1), ReasonRerankIndex},
		{"score infinite", three, strings.Replace(good3, `0.9`, `1e999`, 1), ReasonRerankScore},
		{"score negative infinite", three, strings.Replace(good3, `0.9`, `-1e999`, 1), ReasonRerankScore},
		{"score string", three, strings.Replace(good3, `0.9`, `"0.9"`, 1), ReasonRerankScore},
		{"score null", three, strings.Replace(good3, `0.9`, `null`, 1), ReasonRerankScore},
		{"score missing", three, strings.Replace(good3, `,"relevance_score":0.9`, ``, 1), ReasonRerankScore},
		{"error report", three, `{"error":{"message":"overloaded"},"results":[]}`, ReasonErrorPayload},
		{"not JSON", three, good3[:40], ReasonMalformedJSON},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			env := newEnv(t, rerankCfg)
			req := env.request("rerank", alice, tc.req)
			if req.Bypassed() {
				t.Fatalf("bypassed: %s", req.Reason)
			}
			if d := env.cache.Lookup(req); d != Forward {
				t.Fatalf("first lookup = %v", d)
			}
			if r := env.cache.AdmitHeaders(req, 200, jsonCT, OriginUpstream); r != ReasonNone {
				t.Fatalf("AdmitHeaders: %s", r)
			}
			adm := env.cache.AdmitBody(req, jsonCT, []byte(tc.answer))
			if adm.Reason != tc.want {
				t.Fatalf("AdmitBody = %s, want %s", adm.Reason, tc.want)
			}
			if tc.want != ReasonNone {
				return
			}
			if adm.TTL != 0 && adm.TTL != req.Route.TTL {
				t.Errorf("ttl = %v", adm.TTL)
			}
			if res := env.cache.Store(req, 200, jsonCT, []byte(tc.answer), adm, 3); res.Reason != ReasonNone {
				t.Fatalf("Store: %s", res.Reason)
			}
			again, d := env.lookup("rerank", alice, tc.req)
			if d != Serve || string(again.Entry.Body) != tc.answer {
				t.Fatalf("second lookup = %v, body %q", d, again.Entry.Body)
			}
		})
	}
}

// TestRerankPurge: a rerank entry is purged by replaying its request; a
// replay the cache could not key is refused, not silently ignored.
func TestRerankPurge(t *testing.T) {
	env := newEnv(t, rerankCfg)
	body := rerankRequestBody("q", "1", "a", "b")
	req, _ := env.lookup("rerank", alice, body)
	env.fill(req, jsonCT, `{"results":[{"index":1,"relevance_score":0.5}]}`, 1)
	if _, d := env.lookup("rerank", alice, body); d != Serve {
		t.Fatal("not stored")
	}
	if _, err := env.cache.Purge([]byte(`{"path":"/v1/rerank","headers":{"authorization":"Bearer sk-alice"},"body":{"model":"rr-1","query":"q","documents":"a"}}`), ""); err == nil {
		t.Error("a replay with unreadable documents was accepted")
	}
	got, err := env.cache.Purge([]byte(`{"path":"/v1/rerank","headers":{"authorization":"Bearer sk-alice"},"body":`+body+`}`), "")
	if err != nil || got != (PurgeResult{Scope: "entry", Freed: 1}) {
		t.Fatalf("Purge = %+v, %v", got, err)
	}
	if _, d := env.lookup("rerank", alice, body); d != Forward {
		t.Fatal("served after purge")
	}
}

package cachecore

import (
	"strconv"
	"strings"
	"testing"
	"time"
)

func TestClassifyOrigin(t *testing.T) {
	tests := []struct {
		details string
		want    Origin
	}{
		{"", OriginUpstream},
		{"via_upstream", OriginUpstream},
		{"upstream_response_timeout", OriginUpstreamTimeout},
		{"upstream_per_try_timeout", OriginUpstreamTimeout},
		{"request_overall_timeout", OriginUpstreamTimeout},
		{"upstream_reset_before_response_started{connection_termination}", OriginUpstreamReset},
		{"upstream_reset_after_response_started{remote_reset}", OriginUpstreamReset},
		{"overflow", OriginUpstreamReset},
		{"no_healthy_upstream", OriginUpstreamReset},
		{"upstream_reset_before_response_started{connection_failure}", OriginUpstreamReset},
		{"direct_response", OriginLocalReply},
		{"route_not_found", OriginLocalReply},
		{"ext_authz_denied", OriginLocalReply},
	}
	for _, tc := range tests {
		t.Run(tc.details, func(t *testing.T) {
			if got := ClassifyOrigin(tc.details); got != tc.want {
				t.Fatalf("ClassifyOrigin(%q) = %d, want %d", tc.details, got, tc.want)
			}
		})
	}
}

func TestAdmitHeaders(t *testing.T) {
	tests := []struct {
		name    string
		route   string
		status  int
		headers [][2]string
		origin  Origin
		want    Reason
	}{
		{"plain JSON 200", "chat", 200, jsonCT, OriginUpstream, ReasonNone},
		{"charset parameter", "chat", 200, hdr("content-type", "Application/JSON; charset=utf-8"), OriginUpstream, ReasonNone},
		{"+json media type", "chat", 200, hdr("content-type", "application/vnd.api+json"), OriginUpstream, ReasonNone},
		{"upstream reset", "chat", 200, jsonCT, OriginUpstreamReset, ReasonUpstreamReset},
		{"upstream timeout", "chat", 504, jsonCT, OriginUpstreamTimeout, ReasonUpstreamTimeout},
		{"local reply", "chat", 200, jsonCT, OriginLocalReply, ReasonLocalReply},
		{"status 503", "chat", 503, jsonCT, OriginUpstream, ReasonStatus},
		{"status 203 not listed", "chat", 203, jsonCT, OriginUpstream, ReasonStatus},
		{"status 203 listed", "json", 203, jsonCT, OriginUpstream, ReasonNone},
		{"status 206 not listed", "json", 206, jsonCT, OriginUpstream, ReasonStatus},
		{"no-store", "chat", 200, hdr("content-type", "application/json", "cache-control", "no-store"), OriginUpstream, ReasonNoStore},
		{"no-store among others", "chat", 200, hdr("content-type", "application/json", "cache-control", "max-age=60, No-Store"), OriginUpstream, ReasonNoStore},
		{"private", "chat", 200, hdr("content-type", "application/json", "cache-control", "private"), OriginUpstream, ReasonPrivate},
		{"private with fields", "chat", 200, hdr("content-type", "application/json", "cache-control", `private="set-cookie"`), OriginUpstream, ReasonPrivate},
		{"public max-age", "chat", 200, hdr("content-type", "application/json", "cache-control", "public, max-age=60"), OriginUpstream, ReasonNone},
		{"gzip", "chat", 200, hdr("content-type", "application/json", "content-encoding", "gzip"), OriginUpstream, ReasonEncoded},
		{"br", "chat", 200, hdr("content-type", "application/json", "content-encoding", "br"), OriginUpstream, ReasonEncoded},
		{"identity encoding", "chat", 200, hdr("content-type", "application/json", "content-encoding", " Identity "), OriginUpstream, ReasonNone},
		{"text/plain", "chat", 200, hdr("content-type", "text/plain"), OriginUpstream, ReasonNotJSON},
		{"event stream on chat (a recorded stream)", "chat", 200, hdr("content-type", "text/event-stream; charset=utf-8"), OriginUpstream, ReasonNone},
		{"event stream on a json route", "json", 200, hdr("content-type", "text/event-stream"), OriginUpstream, ReasonNotJSON},
		{"event stream on embeddings", "embed", 200, hdr("content-type", "text/event-stream"), OriginUpstream, ReasonNotJSON},
		{"no content-type", "chat", 200, nil, OriginUpstream, ReasonNotJSON},
		{"json-ish but not json", "chat", 200, hdr("content-type", "application/jsonl"), OriginUpstream, ReasonNotJSON},
		{"content-length over max_entry_bytes", "small", 200, hdr("content-type", "application/json", "content-length", "1025"), OriginUpstream, ReasonTooLarge},
		{"content-length at max_entry_bytes", "small", 200, hdr("content-type", "application/json", "content-length", " 1024 "), OriginUpstream, ReasonNone},
		{"unparseable content-length", "small", 200, hdr("content-type", "application/json", "content-length", "lots"), OriginUpstream, ReasonNone},
		{"origin checked before status", "chat", 503, nil, OriginUpstreamReset, ReasonUpstreamReset},
	}
	env := newEnv(t, testConfig)
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			req := &Request{Route: env.route(tc.route)}
			if got := env.cache.AdmitHeaders(req, tc.status, tc.headers, tc.origin); got != tc.want {
				t.Fatalf("AdmitHeaders = %s, want %s", got, tc.want)
			}
		})
	}
}

// TestAdmitHeadersResponseNoCache pins a deliberate deviation from RFC 9111
// §5.2.2.4: model providers send "Cache-Control: no-cache" on every answer
// (reference/peer-caches.md), so honouring it would disable the cache; the
// response directives that forbid storing — no-store, private — are
// honoured, no-cache and max-age are not (the route's TTL rules).
func TestAdmitHeadersResponseNoCache(t *testing.T) {
	env := newEnv(t, testConfig)
	req := &Request{Route: env.route("chat")}
	for _, cc := range []string{"no-cache", "no-cache, must-revalidate", "max-age=0", "s-maxage=0, proxy-revalidate"} {
		h := hdr("content-type", "application/json", "cache-control", cc)
		if got := env.cache.AdmitHeaders(req, 200, h, OriginUpstream); got != ReasonNone {
			t.Errorf("Cache-Control: %s refused: %s", cc, got)
		}
	}
}

func TestAdmitBody(t *testing.T) {
	choice := func(msg, finish string) string {
		return `{"index":0,"message":` + msg + `,"finish_reason":` + finish + `}`
	}
	chat := func(choices ...string) string {
		return `{"id":"c","object":"chat.completion","choices":[` + strings.Join(choices, ",") + `]}`
	}
	ok := choice(`{"role":"assistant","content":"Paris."}`, `"stop"`)
	toolCall := `{"role":"assistant","content":null,"tool_calls":[{"id":"t1","type":"function","function":{"name":"f","arguments":"{}"}}]}`
	tests := []struct {
		name    string
		route   string
		body    string
		want    Reason
		wantTTL time.Duration
	}{
		{"chat answer", "chat", chat(ok), ReasonNone, 5 * time.Minute},
		{"two good choices", "chat", chat(ok, ok), ReasonNone, 5 * time.Minute},
		{"not JSON", "chat", `{"choices":[`, ReasonMalformedJSON, 0},
		{"no body", "chat", ``, ReasonMalformedJSON, 0},
		{"no choices", "chat", `{"id":"c"}`, ReasonForeignShape, 0}, // another API's answer (review Z33)
		{"empty choices", "chat", chat(), ReasonEmptyContent, 0},
		{"choices not an array", "chat", `{"choices":{"0":{}}}`, ReasonEmptyContent, 0},
		{"truncated by length", "chat", chat(choice(`{"content":"Par"}`, `"length"`)), ReasonFinishReason, 0},
		{"content filter", "chat", chat(choice(`{"content":"x"}`, `"content_filter"`)), ReasonFinishReason, 0},
		{"no finish_reason", "chat", chat(`{"message":{"content":"x"}}`), ReasonFinishReason, 0},
		{"null finish_reason", "chat", chat(choice(`{"content":"x"}`, `null`)), ReasonFinishReason, 0},
		{"second choice truncated", "chat", chat(ok, choice(`{"content":"x"}`, `"length"`)), ReasonFinishReason, 0},
		{"empty content", "chat", chat(choice(`{"content":""}`, `"stop"`)), ReasonEmptyContent, 0},
		{"whitespace content", "chat", chat(choice(`{"content":" \n\t"}`, `"stop"`)), ReasonEmptyContent, 0},
		{"null content", "chat", chat(choice(`{"content":null}`, `"stop"`)), ReasonEmptyContent, 0},
		{"no message", "chat", chat(`{"finish_reason":"stop"}`), ReasonEmptyContent, 0},
		{"tool call refused by default finish_reasons", "chat", chat(choice(toolCall, `"tool_calls"`)), ReasonFinishReason, 0},
		{"tool call without content", "tools", chat(choice(toolCall, `"tool_calls"`)), ReasonNone, 5 * time.Minute},
		{"tool call with finish stop", "chat", chat(choice(toolCall, `"stop"`)), ReasonNone, 5 * time.Minute},
		{"empty tool_calls is no answer", "tools", chat(choice(`{"content":null,"tool_calls":[]}`, `"tool_calls"`)), ReasonEmptyContent, 0},
		{"completion text", "completions", `{"choices":[{"text":"Paris.","finish_reason":"stop"}]}`, ReasonNone, 5 * time.Minute},
		{"completion length allowed", "completions", `{"choices":[{"text":"Par","finish_reason":"length"}]}`, ReasonNone, 5 * time.Minute},
		{"completion empty text", "completions", `{"choices":[{"text":"","finish_reason":"stop"}]}`, ReasonEmptyContent, 0},
		{"completion reads text, not message", "completions", `{"choices":[{"message":{"content":"x"},"finish_reason":"stop"}]}`, ReasonEmptyContent, 0},
		{"embeddings", "embed", `{"data":[{"embedding":[0.1,0.2],"index":0}]}`, ReasonNone, 5 * time.Minute},
		{"embeddings empty data", "embed", `{"data":[]}`, ReasonEmptyContent, 0},
		{"embeddings no data", "embed", `{"object":"list"}`, ReasonForeignShape, 0},
		{"embeddings data object", "embed", `{"data":{}}`, ReasonEmptyContent, 0},
		{"json anything", "json", `[1,2,3]`, ReasonNone, 5 * time.Minute},
		{"json scalar", "json", `"x"`, ReasonNone, 5 * time.Minute},
		{"too large", "small", `{"x":"` + strings.Repeat("y", 1020) + `"}`, ReasonTooLarge, 0},
		{"confidence top tier", "classify", `{"label":"cat","score":0.95}`, ReasonNone, time.Hour},
		{"confidence at a tier's min", "classify", `{"label":"cat","score":0.9}`, ReasonNone, time.Hour},
		{"confidence second tier", "classify", `{"label":"cat","score":0.8999}`, ReasonNone, 10 * time.Minute},
		{"confidence at lowest min", "classify", `{"label":"cat","score":0.6}`, ReasonNone, 10 * time.Minute},
		{"confidence too low", "classify", `{"label":"cat","score":0.59}`, ReasonLowConfidence, 0},
		{"confidence negative", "classify", `{"label":"cat","score":-1}`, ReasonLowConfidence, 0},
		{"confidence missing", "classify", `{"label":"cat"}`, ReasonNoConfidence, 0},
		{"confidence as string", "classify", `{"label":"cat","score":"0.95"}`, ReasonNoConfidence, 0},
		{"confidence null", "classify", `{"label":"cat","score":null}`, ReasonNoConfidence, 0},
		{"confidence infinite (a number past float64)", "classify", `{"label":"cat","score":1e999}`, ReasonNoConfidence, 0},
		{"confidence negative infinite", "classify", `{"label":"cat","score":-1e999}`, ReasonNoConfidence, 0},
	}
	env := newEnv(t, testConfig)
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			req := &Request{Route: env.route(tc.route)}
			a := env.cache.AdmitBody(req, jsonCT, []byte(tc.body))
			if a.Reason != tc.want || a.TTL != tc.wantTTL {
				t.Fatalf("AdmitBody = %s ttl %v, want %s ttl %v", a.Reason, a.TTL, tc.want, tc.wantTTL)
			}
		})
	}

	t.Run("version", func(t *testing.T) {
		req := &Request{Route: env.route("versioned")}
		if a := env.cache.AdmitBody(req, hdr("x-model-version", "v7"), []byte(chat(ok))); a.Version != "v7" {
			t.Errorf("header version %q", a.Version)
		}
		long := strings.Repeat("z", 80)
		if a := env.cache.AdmitBody(req, hdr("x-model-version", long), []byte(chat(ok))); a.Version != long {
			t.Errorf("long version %q", a.Version)
		}
		req = &Request{Route: env.route("fingerprinted")}
		body := strings.Replace(chat(ok), `{"id"`, `{"system_fingerprint":"fp_9","id"`, 1)
		if a := env.cache.AdmitBody(req, nil, []byte(body)); a.Version != "fp_9" {
			t.Errorf("body version %q", a.Version)
		}
		req = &Request{Route: env.route("chat")}
		if a := env.cache.AdmitBody(req, hdr("x-model-version", "v7"), []byte(chat(ok))); a.Version != "" {
			t.Errorf("version read on a route without model_version: %q", a.Version)
		}
	})
}

// TestRules: every predicate of a validation rule, alone and combined.
func TestRules(t *testing.T) {
	tests := []struct {
		name string
		rule string
		body string
		want bool
	}{
		{"exists true, present", `"exists":true`, `{"v":1}`, true},
		{"exists true, null", `"exists":true`, `{"v":null}`, true},
		{"exists true, missing", `"exists":true`, `{"w":1}`, false},
		{"exists false, missing", `"exists":false`, `{"w":1}`, true},
		{"exists false, present", `"exists":false`, `{"v":1}`, false},
		{"missing fails other predicates", `"type":"null"`, `{}`, false},
		{"missing fails min", `"min":0`, `{}`, false},
		{"type string", `"type":"string"`, `{"v":"a"}`, true},
		{"type string, got number", `"type":"string"`, `{"v":1}`, false},
		{"type number", `"type":"number"`, `{"v":-1.5e3}`, true},
		{"type number, got numeric string", `"type":"number"`, `{"v":"1"}`, false},
		{"type bool true", `"type":"bool"`, `{"v":true}`, true},
		{"type bool false", `"type":"bool"`, `{"v":false}`, true},
		{"type bool, got string", `"type":"bool"`, `{"v":"true"}`, false},
		{"type array", `"type":"array"`, `{"v":[]}`, true},
		{"type array, got object", `"type":"array"`, `{"v":{}}`, false},
		{"type object", `"type":"object"`, `{"v":{"a":1}}`, true},
		{"type object, got array", `"type":"object"`, `{"v":[1]}`, false},
		{"type null", `"type":"null"`, `{"v":null}`, true},
		{"type null, got string", `"type":"null"`, `{"v":"null"}`, false},
		{"non_empty string", `"non_empty":true`, `{"v":"a"}`, true},
		{"non_empty empty string", `"non_empty":true`, `{"v":""}`, false},
		{"non_empty blank string", `"non_empty":true`, `{"v":" \n"}`, false},
		{"non_empty array", `"non_empty":true`, `{"v":[0]}`, true},
		{"non_empty empty array", `"non_empty":true`, `{"v":[]}`, false},
		{"non_empty object", `"non_empty":true`, `{"v":{"a":null}}`, true},
		{"non_empty empty object", `"non_empty":true`, `{"v":{}}`, false},
		{"non_empty null", `"non_empty":true`, `{"v":null}`, false},
		{"non_empty zero", `"non_empty":true`, `{"v":0}`, true},
		{"non_empty false", `"non_empty":true`, `{"v":false}`, true},
		{"non_empty false is no predicate", `"non_empty":false`, `{"v":""}`, true},
		{"equals string", `"equals":"ok"`, `{"v":"ok"}`, true},
		{"equals string, other case", `"equals":"ok"`, `{"v":"OK"}`, false},
		{"equals string, escaped", `"equals":"ok"`, `{"v":"\u006fk"}`, true},
		{"equals number, other form", `"equals":1`, `{"v":1.0}`, true},
		{"equals number", `"equals":1`, `{"v":2}`, false},
		{"equals object, other key order", `"equals":{"a":1,"b":[true]}`, `{"v":{"b":[true],"a":1}}`, true},
		{"equals array order matters", `"equals":[1,2]`, `{"v":[2,1]}`, false},
		{"equals null", `"equals":null`, `{"v":null}`, true},
		{"equals true, got string", `"equals":true`, `{"v":"true"}`, false},
		{"one_of hit", `"one_of":["cat","dog"]`, `{"v":"dog"}`, true},
		{"one_of miss", `"one_of":["cat","dog"]`, `{"v":"cow"}`, false},
		{"one_of mixed types", `"one_of":["1",1]`, `{"v":1e0}`, true},
		{"min inclusive", `"min":0.5`, `{"v":0.5}`, true},
		{"below min", `"min":0.5`, `{"v":0.49}`, false},
		{"max inclusive", `"max":1`, `{"v":1}`, true},
		{"above max", `"max":1`, `{"v":1.01}`, false},
		{"min and max", `"min":0,"max":1`, `{"v":0.3}`, true},
		{"min on a string", `"min":0`, `{"v":"5"}`, false},
		{"min_items", `"min_items":1`, `{"v":[1]}`, true},
		{"below min_items", `"min_items":1`, `{"v":[]}`, false},
		{"max_items", `"max_items":2`, `{"v":[1,2]}`, true},
		{"above max_items", `"max_items":2`, `{"v":[1,2,3]}`, false},
		{"min_items on a string", `"min_items":1`, `{"v":"abc"}`, false},
		{"max_items on an object", `"max_items":5`, `{"v":{"a":1}}`, false},
		{"combined, all hold", `"type":"string","non_empty":true,"one_of":["a","b"]`, `{"v":"a"}`, true},
		{"combined, one fails", `"type":"string","non_empty":true,"one_of":["a","b"]`, `{"v":"c"}`, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cfg := mustParse(t, `{"routes":[{"name":"r","kind":"json","path_prefix":"/","shared":true,
				"validate":[{"path":"v",`+tc.rule+`}]}]}`)
			r := cfg.Routes[0]
			if got := r.Rules[0].Holds([]byte(tc.body)); got != tc.want {
				t.Fatalf("Holds(%s) = %v, want %v", tc.body, got, tc.want)
			}
			c := New(cfg, Options{Store: NewMemStore(), Rand: seededRand(1)})
			a := c.AdmitBody(&Request{Route: r}, jsonCT, []byte(tc.body))
			if tc.want && a.Reason != ReasonNone || !tc.want && (a.Reason != ReasonValidation || a.Rule != "v") {
				t.Fatalf("AdmitBody = %+v", a)
			}
		})
	}

	t.Run("nested paths and the first failing rule", func(t *testing.T) {
		cfg := mustParse(t, `{"routes":[{"name":"r","kind":"json","path_prefix":"/","shared":true,"validate":[
			{"path":"result.labels","min_items":1},
			{"path":"result.labels.0.name","non_empty":true},
			{"path":"error","exists":false}]}]}`)
		c := New(cfg, Options{Store: NewMemStore(), Rand: seededRand(1)})
		req := &Request{Route: cfg.Routes[0]}
		for _, tc := range []struct{ body, rule string }{
			{`{"result":{"labels":[{"name":"cat"}]}}`, ""},
			{`{"result":{"labels":[]}}`, "result.labels"},
			{`{"result":{"labels":[{"name":""}]}}`, "result.labels.0.name"},
			{`{"result":{"labels":[{"name":"cat"}]},"error":null}`, "error"},
		} {
			a := c.AdmitBody(req, jsonCT, []byte(tc.body))
			if a.Rule != tc.rule || (a.Reason == ReasonValidation) != (tc.rule != "") {
				t.Errorf("%s: %+v, want rule %q", tc.body, a, tc.rule)
			}
		}
	})
}

// A legacy completions request of several prompts is answered with n
// choices per prompt: an answer for fewer (one choice for two prompts) is
// not stored. A prompt of token ids is one prompt.
func TestCompletionsChoicesPerPrompt(t *testing.T) {
	env := newEnv(t, testConfig)
	choices := func(k int) string {
		var cs []string
		for i := 0; i < k; i++ {
			cs = append(cs, `{"index":`+strconv.Itoa(i)+`,"text":"A","finish_reason":"stop"}`)
		}
		return `{"choices":[` + strings.Join(cs, ",") + `]}`
	}
	for _, tc := range []struct {
		prompt string
		n, k   int
		ok     bool
	}{
		{`["Say A","Say B"]`, 0, 1, false},
		{`["Say A","Say B"]`, 0, 2, true},
		{`["Say A","Say B"]`, 2, 2, false},
		{`["Say A","Say B"]`, 2, 4, true},
		{`[[1,2],[3,4],[5]]`, 0, 3, true},
		{`[[1,2],[3,4],[5]]`, 0, 1, false},
		{`[1,2,3]`, 2, 2, true},
		{`[1,2,3]`, 0, 1, true},
		{`"Say A"`, 3, 2, false},
		{`"Say A"`, 3, 3, true},
	} {
		body := `{"model":"m","prompt":` + tc.prompt + `,"max_tokens":4`
		if tc.n > 0 {
			body += `,"n":` + strconv.Itoa(tc.n)
		}
		req := env.request("completions", alice, body+`}`)
		if req.Bypassed() {
			t.Fatalf("%s: bypassed: %s", body, req.Reason)
		}
		a := env.cache.AdmitBody(req, jsonCT, []byte(choices(tc.k)))
		if (a.Reason == ReasonNone) != tc.ok {
			t.Errorf("prompt %s, n %d, %d choices: %s", tc.prompt, tc.n, tc.k, a.Reason)
		}
	}
}

package cachecore

import (
	"reflect"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"
)

const minimalChat = `{"routes":[{"name":"chat","kind":"chat","path_exact":"/v1/chat/completions"}]}`

func TestParseConfigDefaults(t *testing.T) {
	cfg := mustParse(t, minimalChat)
	if cfg.CacheName != DefaultCacheName || cfg.MaxRequestBytes != DefaultMaxRequestBytes {
		t.Errorf("top-level defaults: name %q, max request %d", cfg.CacheName, cfg.MaxRequestBytes)
	}
	if want := (StoreConfig{Buckets: DefaultBuckets, Ways: DefaultWays, MaxEntryBytes: DefaultMaxEntryBytes, LeaseSlots: DefaultLeaseSlots}); cfg.Store != want || cfg.TickPeriod != DefaultTickPeriod {
		t.Errorf("store = %+v, want %+v", cfg.Store, want)
	}
	if want := (BackgroundConfig{MaxConcurrent: 8, Timeout: 30 * time.Second}); cfg.Background != want {
		t.Errorf("background = %+v, want %+v", cfg.Background, want)
	}
	if cfg.Purge != (PurgeConfig{}) {
		t.Errorf("purge enabled without configuration: %+v", cfg.Purge)
	}
	if len(cfg.Routes) != 1 {
		t.Fatalf("routes = %d", len(cfg.Routes))
	}
	r := cfg.Routes[0]
	want := &Route{
		Name: "chat", Exact: "/v1/chat/completions", Methods: []string{"POST"}, Kind: KindChat,
		Policy: Policy{
			TTL:           DefaultTTL,
			Statuses:      []int{200},
			TenantHeaders: []string{"authorization", "x-api-key"},
			ModelPath:     "model",
			IgnoreFields:  []string{"user", "metadata", "store"},
			FinishReasons: []string{"stop"},
			StoredHeaders: []string{"content-type"},
			MaxEntryBytes: DefaultMaxEntryBytes,
			HonorCacheCtl: true,
			EarlyRefresh:  EarlyRefresh{Beta: 1},
			Coalesce:      Coalesce{Enabled: true, MaxWait: 30 * time.Second, MaxRetries: 2, HitForMiss: 30 * time.Second},
			kind:          KindChat,
		},
	}
	want.keyTag = keyingTag(want) // the key's selection, as every parsed route has it
	if !reflect.DeepEqual(r, want) {
		t.Errorf("route =\n%+v\nwant\n%+v", r, want)
	}
}

// TestParseConfigKindDefaults: each endpoint kind starts from its own
// key and admission defaults.
func TestParseConfigKindDefaults(t *testing.T) {
	tests := []struct {
		kind          Kind
		ignore        []string
		finishReasons []string
	}{
		{KindChat, []string{"user", "metadata", "store"}, []string{"stop"}},
		{KindCompletions, []string{"user", "metadata", "store"}, []string{"stop"}},
		{KindEmbeddings, []string{"user"}, nil},
		{KindClassify, nil, nil},
		{KindJSON, nil, nil},
	}
	for _, tc := range tests {
		t.Run(string(tc.kind), func(t *testing.T) {
			cfg := mustParse(t, `{"routes":[{"name":"r","kind":"`+string(tc.kind)+`","path_prefix":"/"}]}`)
			r := cfg.Routes[0]
			if !reflect.DeepEqual(r.IgnoreFields, tc.ignore) {
				t.Errorf("IgnoreFields = %q, want %q", r.IgnoreFields, tc.ignore)
			}
			if !reflect.DeepEqual(r.FinishReasons, tc.finishReasons) {
				t.Errorf("FinishReasons = %q, want %q", r.FinishReasons, tc.finishReasons)
			}
			if r.KeyFields != nil || r.Shared || r.TTL != DefaultTTL {
				t.Errorf("unexpected policy %+v", r.Policy)
			}
		})
	}
}

func TestParseConfigGood(t *testing.T) {
	tests := []struct {
		name  string
		cfg   string
		check func(t *testing.T, c *Config)
	}{
		{
			name: "routes inherit defaults and override them",
			cfg: `{"defaults":{"ttl":"1h","statuses":[200,203],"tenant_headers":["X-Tenant"],"stored_headers":["Content-Type","X-Model-Version"]},
			       "routes":[
			         {"name":"a","kind":"chat","path_prefix":"/a"},
			         {"name":"b","kind":"json","path_prefix":"/b","ttl":"10m","shared":true,"statuses":[200]}]}`,
			check: func(t *testing.T, c *Config) {
				a, b := c.Routes[0], c.Routes[1]
				if a.TTL != time.Hour || !reflect.DeepEqual(a.Statuses, []int{200, 203}) {
					t.Errorf("a did not inherit: ttl %v statuses %v", a.TTL, a.Statuses)
				}
				if !reflect.DeepEqual(a.TenantHeaders, []string{"x-tenant"}) {
					t.Errorf("tenant headers not lower-cased: %q", a.TenantHeaders)
				}
				if !reflect.DeepEqual(a.StoredHeaders, []string{"content-type", "x-model-version"}) {
					t.Errorf("stored headers not lower-cased: %q", a.StoredHeaders)
				}
				if !reflect.DeepEqual(a.IgnoreFields, []string{"user", "metadata", "store"}) {
					t.Errorf("a lost its kind defaults: %q", a.IgnoreFields)
				}
				if b.TTL != 10*time.Minute || !b.Shared || !reflect.DeepEqual(b.Statuses, []int{200}) {
					t.Errorf("b did not override: %+v", b.Policy)
				}
				if !reflect.DeepEqual(b.TenantHeaders, []string{"x-tenant"}) {
					t.Errorf("b did not inherit tenant headers: %q", b.TenantHeaders)
				}
			},
		},
		{
			name: "defaults never leak between routes",
			cfg: `{"defaults":{"validate":[{"path":"id","exists":true}]},
			       "routes":[
			         {"name":"a","kind":"json","path_prefix":"/a","validate":[{"path":"x","type":"string"}]},
			         {"name":"b","kind":"json","path_prefix":"/b"}]}`,
			check: func(t *testing.T, c *Config) {
				if len(c.Routes[0].Rules) != 1 || c.Routes[0].Rules[0].Path != "x" {
					t.Errorf("a rules = %+v", c.Routes[0].Rules)
				}
				if len(c.Routes[1].Rules) != 1 || c.Routes[1].Rules[0].Path != "id" {
					t.Errorf("b rules = %+v", c.Routes[1].Rules)
				}
			},
		},
		{
			name: "key_fields replaces the kind's ignore_fields",
			cfg:  `{"routes":[{"name":"a","kind":"chat","path_prefix":"/","key_fields":["model","messages"]}]}`,
			check: func(t *testing.T, c *Config) {
				r := c.Routes[0]
				if !reflect.DeepEqual(r.KeyFields, []string{"model", "messages"}) || r.IgnoreFields != nil {
					t.Errorf("key %q ignore %q", r.KeyFields, r.IgnoreFields)
				}
			},
		},
		{
			name: "key_fields may omit a nested model path",
			cfg:  `{"routes":[{"name":"a","kind":"json","path_prefix":"/","model_path":"spec.model","key_fields":["spec"]}]}`,
			check: func(t *testing.T, c *Config) {
				if c.Routes[0].ModelPath != "spec.model" {
					t.Errorf("model path %q", c.Routes[0].ModelPath)
				}
			},
		},
		{
			name: "confidence tiers sorted highest first",
			cfg: `{"routes":[{"name":"c","kind":"classify","path_prefix":"/c","confidence":{"path":"score",
			       "tiers":[{"min":0.5,"ttl":"1m"},{"min":0.95,"ttl":"1h"},{"min":0.8,"ttl":"10m"}]}}]}`,
			check: func(t *testing.T, c *Config) {
				want := &Confidence{Path: "score", Tiers: []Tier{{0.95, time.Hour}, {0.8, 10 * time.Minute}, {0.5, time.Minute}}}
				if !reflect.DeepEqual(c.Routes[0].Confidence, want) {
					t.Errorf("confidence = %+v", c.Routes[0].Confidence)
				}
			},
		},
		{
			name: "top level sections",
			cfg: `{"cache_name":"edge-cache","upstream_cluster":"models","upstream_authority":"api.internal",
			       "max_request_bytes":4096,"tick_period":"250ms","store":{"buckets":16,"ways":4,"max_entry_bytes":65536,"lease_slots":64},
			       "purge":{"path":"/_purge","token":"0123456789abcdef"},
			       "background":{"max_concurrent":2,"timeout":"5s"},
			       "routes":[{"name":"a","kind":"chat","path_prefix":"/","stale_while_revalidate":"30s","stale_if_error":"1h",
			                  "early_refresh":{"enabled":true,"beta":2.5},"max_entry_bytes":2048}]}`,
			check: func(t *testing.T, c *Config) {
				if c.CacheName != "edge-cache" || c.Cluster != "models" || c.Authority != "api.internal" || c.MaxRequestBytes != 4096 {
					t.Errorf("top level: %+v", c)
				}
				if c.Store != (StoreConfig{Buckets: 16, Ways: 4, MaxEntryBytes: 65536, LeaseSlots: 64}) || c.TickPeriod != 250*time.Millisecond {
					t.Errorf("store %+v", c.Store)
				}
				if c.Purge != (PurgeConfig{"/_purge", "0123456789abcdef"}) {
					t.Errorf("purge %+v", c.Purge)
				}
				if c.Background != (BackgroundConfig{2, 5 * time.Second}) {
					t.Errorf("background %+v", c.Background)
				}
				r := c.Routes[0]
				if r.StaleWhileReval != 30*time.Second || r.StaleIfError != time.Hour || r.EarlyRefresh != (EarlyRefresh{true, 2.5}) || r.MaxEntryBytes != 2048 {
					t.Errorf("route %+v", r.Policy)
				}
			},
		},
		{
			name: "route max_entry_bytes defaults to the store's",
			cfg:  `{"store":{"max_entry_bytes":8192},"routes":[{"name":"a","kind":"json","path_prefix":"/"}]}`,
			check: func(t *testing.T, c *Config) {
				if c.Routes[0].MaxEntryBytes != 8192 {
					t.Errorf("max entry bytes %d", c.Routes[0].MaxEntryBytes)
				}
			},
		},
		{
			name: "model_version, methods, coalesce, rules",
			cfg: `{"routes":[{"name":"a","kind":"json","path_prefix":"/","methods":["POST","PUT"],
			       "model_version":{"header":"X-Model-Version","body_path":"system_fingerprint"},
			       "coalesce":{"enabled":false,"max_wait":"2s","max_retries":0,"hit_for_miss":"0s"},
			       "honor_request_cache_control":false,"finish_reasons":["stop","length"],
			       "validate":[{"path":"label","one_of":["cat","dog"],"non_empty":true},
			                   {"path":"score","min":0,"max":1,"type":"number"},
			                   {"path":"items","min_items":1,"max_items":3},
			                   {"path":"status","equals":{"ok":true}},
			                   {"path":"error","exists":false}]}]}`,
			check: func(t *testing.T, c *Config) {
				r := c.Routes[0]
				if !reflect.DeepEqual(r.Methods, []string{"POST", "PUT"}) {
					t.Errorf("methods %q", r.Methods)
				}
				if r.ModelVersion != (VersionSource{"x-model-version", "system_fingerprint"}) || !r.ModelVersion.Enabled() {
					t.Errorf("model version %+v", r.ModelVersion)
				}
				if r.Coalesce != (Coalesce{Enabled: false, MaxWait: 2 * time.Second}) || r.HonorCacheCtl {
					t.Errorf("coalesce %+v honor %v", r.Coalesce, r.HonorCacheCtl)
				}
				if len(r.Rules) != 5 {
					t.Fatalf("rules %+v", r.Rules)
				}
				if len(r.Rules[0].OneOf) != 2 || !r.Rules[0].NonEmpty {
					t.Errorf("rule 0 %+v", r.Rules[0])
				}
				if *r.Rules[1].Min != 0 || *r.Rules[1].Max != 1 || r.Rules[1].Type != "number" {
					t.Errorf("rule 1 %+v", r.Rules[1])
				}
				if *r.Rules[2].MinItems != 1 || *r.Rules[2].MaxItems != 3 {
					t.Errorf("rule 2 %+v", r.Rules[2])
				}
				if r.Rules[3].Equals == nil || r.Rules[3].Equals.Raw != `{"ok":true}` {
					t.Errorf("rule 3 %+v", r.Rules[3])
				}
				if r.Rules[4].Exists == nil || *r.Rules[4].Exists {
					t.Errorf("rule 4 %+v", r.Rules[4])
				}
			},
		},
		{
			name: "whitespace around the document",
			cfg:  "\n\t " + minimalChat + " \n",
			check: func(t *testing.T, c *Config) {
				if len(c.Routes) != 1 {
					t.Errorf("routes %d", len(c.Routes))
				}
			},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tc.check(t, mustParse(t, tc.cfg))
		})
	}
}

func TestMatchRoute(t *testing.T) {
	cfg := mustParse(t, `{"routes":[
		{"name":"chat","kind":"chat","path_exact":"/v1/chat/completions"},
		{"name":"embed","kind":"embeddings","path_prefix":"/v1/embeddings"},
		{"name":"models-special","kind":"json","path_prefix":"/models/special","methods":["POST"]},
		{"name":"models","kind":"json","path_prefix":"/models/","methods":["POST","PUT"]}]}`)
	tests := []struct {
		name, method, path, want string
	}{
		{"exact", "POST", "/v1/chat/completions", "chat"},
		{"exact ignores query string", "POST", "/v1/chat/completions?api-version=2024", "chat"},
		{"exact with empty query", "POST", "/v1/chat/completions?", "chat"},
		{"exact rejects trailing slash", "POST", "/v1/chat/completions/", ""},
		{"exact rejects prefix of it", "POST", "/v1/chat", ""},
		{"exact rejects it followed by other than a query", "POST", "/v1/chat/completions#q", ""},
		{"exact rejects it in the query", "POST", "/v1?/v1/chat/completions", ""},
		{"exact is case sensitive", "POST", "/V1/chat/completions", ""},
		{"prefix itself", "POST", "/v1/embeddings", "embed"},
		{"prefix below", "POST", "/v1/embeddings/batch", "embed"},
		{"prefix with query", "POST", "/v1/embeddings?x=/", "embed"},
		{"query cannot make a prefix match", "POST", "/v1?/embeddings", ""},
		{"wrong method", "GET", "/v1/chat/completions", ""},
		{"method is case sensitive", "post", "/v1/chat/completions", ""},
		{"first matching route wins", "POST", "/models/special/x", "models-special"},
		{"later route for another method", "PUT", "/models/special/x", "models"},
		{"second method of a route", "PUT", "/models/a", "models"},
		{"no route", "POST", "/healthz", ""},
		{"empty path", "POST", "", ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := cfg.MatchRoute(tc.method, tc.path)
			got := ""
			if r != nil {
				got = r.Name
			}
			if got != tc.want {
				t.Fatalf("MatchRoute(%s, %q) = %q, want %q", tc.method, tc.path, got, tc.want)
			}
		})
	}
}

// route wraps route JSON members into a one-route config.
func oneRoute(members string) string {
	return `{"routes":[{"name":"r","kind":"chat","path_prefix":"/v1"` + members + `}]}`
}

func TestParseConfigInvalid(t *testing.T) {
	tests := []struct {
		name string
		cfg  string
		want []string // each must appear in the error text
		once string   // if set, must appear exactly once
	}{
		{name: "empty", cfg: ``, want: []string{"configuration: is empty"}},
		{name: "only whitespace", cfg: " \n\t", want: []string{"configuration: is empty"}},
		{name: "not JSON", cfg: `{"routes":[`, want: []string{"configuration: is not valid JSON"}},
		{name: "YAML instead of JSON", cfg: "routes:\n  - name: a\n", want: []string{"configuration: is not valid JSON"}},
		{name: "nested beyond the limit", cfg: `{"x":` + strings.Repeat("[", 100000) + strings.Repeat("]", 100000) + `}`, want: []string{"configuration: nests deeper than 64 levels"}},
		{name: "top level is an array", cfg: `[` + minimalChat + `]`, want: []string{"configuration: must be an object"}},
		{name: "top level is null", cfg: `null`, want: []string{"configuration: must be an object"}},
		{name: "missing routes", cfg: `{"cache_name":"x"}`, want: []string{"routes: is required"}},
		{name: "empty routes", cfg: `{"routes":[]}`, want: []string{"routes: must be a non-empty array"}},
		{name: "routes is an object", cfg: `{"routes":{"name":"a"}}`, want: []string{"routes: must be a non-empty array"}},
		{name: "route is not an object", cfg: `{"routes":["chat"]}`, want: []string{"routes[0]: must be an object"}},
		{name: "unknown top-level field", cfg: `{"route":[],"routes":[{"name":"a","kind":"chat","path_prefix":"/"}]}`, want: []string{"route: unknown field"}},
		{name: "duplicate top-level field", cfg: `{"cache_name":"a","cache_name":"b","routes":[{"name":"a","kind":"chat","path_prefix":"/"}]}`, want: []string{"cache_name: duplicate field"}},
		{name: "unknown route field (typo tll)", cfg: oneRoute(`,"tll":"5m"`), want: []string{"routes[0].tll: unknown field"}},
		{name: "stored Cache-Status", cfg: oneRoute(`,"stored_headers":["content-type","Cache-Status"]`), want: []string{`routes[0].stored_headers[1]: "cache-status" cannot be stored`}},
		{name: "stored Age", cfg: oneRoute(`,"stored_headers":["age"]`), want: []string{`routes[0].stored_headers[0]: "age" cannot be stored`}},
		{name: "stored own header", cfg: oneRoute(`,"stored_headers":["x-modelcache-similarity"]`), want: []string{`"x-modelcache-similarity" cannot be stored`}},
		{name: "stored framing header", cfg: oneRoute(`,"stored_headers":["transfer-encoding"]`), want: []string{`"transfer-encoding" cannot be stored`}},
		{name: "stored pseudo-header", cfg: oneRoute(`,"stored_headers":[":status"]`), want: []string{`":status" cannot be stored`}},
		{name: "stored Set-Cookie", cfg: oneRoute(`,"stored_headers":["Set-Cookie"]`), want: []string{`routes[0].stored_headers[0]: "set-cookie" cannot be stored: one client's cookie would be replayed to every client of the entry`}},
		{name: "version header Set-Cookie2", cfg: oneRoute(`,"model_version":{"header":"set-cookie2"}`), want: []string{`"set-cookie2" cannot be stored: one client's cookie`}},
		{name: "version header Cache-Status", cfg: oneRoute(`,"model_version":{"header":"cache-status"}`), want: []string{`routes[0].model_version.header: "cache-status" cannot be stored`}},
		{name: "duplicate route field", cfg: oneRoute(`,"ttl":"5m","ttl":"6m"`), want: []string{"routes[0].ttl: duplicate field"}},
		{name: "bad kind", cfg: `{"routes":[{"name":"a","kind":"chatt","path_prefix":"/"}]}`, want: []string{`routes[0].kind: must be one of chat, completions, embeddings, classify, json, rerank, got "chatt"`}},
		{name: "kind not a string", cfg: `{"routes":[{"name":"a","kind":1,"path_prefix":"/"}]}`, want: []string{"routes[0].kind: must be one of", "got 1"}},
		{name: "missing kind", cfg: `{"routes":[{"name":"a","path_prefix":"/"}]}`, want: []string{"routes[0].kind: is required"}},
		{name: "missing name", cfg: `{"routes":[{"kind":"chat","path_prefix":"/"}]}`, want: []string{"routes[0].name: is required"}},
		{name: "empty name", cfg: `{"routes":[{"name":"","kind":"chat","path_prefix":"/"}]}`, want: []string{"routes[0].name: must not be empty"}},
		{name: "name too long", cfg: `{"routes":[{"name":"` + strings.Repeat("r", 65) + `","kind":"chat","path_prefix":"/"}]}`, want: []string{"routes[0].name: is 65 bytes; at most 64"}},
		{name: "name not a token", cfg: `{"routes":[{"name":"my route","kind":"chat","path_prefix":"/"}]}`, want: []string{`routes[0].name: may only contain letters, digits, '_' and '-', got "my route"`}},
		{name: "route shadowed by a prefix", cfg: `{"routes":[{"name":"all","kind":"json","path_prefix":"/v1/","shared":true},{"name":"chat","kind":"chat","path_prefix":"/v1/chat/completions"}]}`,
			want: []string{`routes[1]: is never matched: route "all" comes first`}},
		{name: "exact route shadowed", cfg: `{"routes":[{"name":"a","kind":"json","path_prefix":"/v1"},{"name":"b","kind":"chat","path_exact":"/v1/chat/completions"}]}`,
			want: []string{`routes[1]: is never matched: route "a"`}},
		{name: "model path with a modifier", cfg: oneRoute(`,"model_path":"@reverse"`), want: []string{`routes[0].model_path: is not a usable gjson path: "@reverse"`}},
		{name: "version body path with a pipe", cfg: oneRoute(`,"model_version":{"body_path":"a|b"}`), want: []string{`routes[0].model_version.body_path: is not a usable gjson path`}},
		{name: "cache name not a token", cfg: `{"cache_name":"1cache",` + minimalChat[1:], want: []string{"cache_name: must start with a letter"}},
		{name: "duplicate route names", cfg: `{"routes":[{"name":"a","kind":"chat","path_prefix":"/a"},{"name":"a","kind":"json","path_prefix":"/b"}]}`, want: []string{`routes[1].name: duplicate route name "a"`}},
		{name: "both path_prefix and path_exact", cfg: oneRoute(`,"path_exact":"/v1/x"`), want: []string{"routes[0]: has both path_prefix and path_exact"}},
		{name: "no path", cfg: `{"routes":[{"name":"a","kind":"chat"}]}`, want: []string{"routes[0]: needs path_prefix or path_exact"}},
		{name: "prefix not starting with /", cfg: `{"routes":[{"name":"a","kind":"chat","path_prefix":"v1/"}]}`, want: []string{"routes[0].path_prefix: must start with /"}},
		{name: "exact not starting with /", cfg: `{"routes":[{"name":"a","kind":"chat","path_exact":"v1/chat"}]}`, want: []string{"routes[0].path_exact: must start with /"}},
		{name: "path not a string", cfg: `{"routes":[{"name":"a","kind":"chat","path_prefix":7}]}`, want: []string{"routes[0].path_prefix: must be a string, got 7"}},
		{name: "lower-case method", cfg: oneRoute(`,"methods":["post"]`), want: []string{`routes[0].methods[0]: must be an upper-case HTTP method, got "post"`}},
		{name: "no methods", cfg: oneRoute(`,"methods":[]`), want: []string{"routes[0].methods: must list at least one method"}},
		{
			name: "bad duration in second route",
			cfg:  `{"routes":[{"name":"a","kind":"chat","path_prefix":"/a"},{"name":"b","kind":"chat","path_prefix":"/b","ttl":"5 minutes"}]}`,
			want: []string{`routes[1].ttl: invalid duration "5 minutes"`},
		},
		{name: "duration as a number", cfg: oneRoute(`,"ttl":300`), want: []string{"routes[0].ttl: must be a duration string", "got 300"}},
		{name: "zero ttl", cfg: oneRoute(`,"ttl":"0s"`), want: []string{"routes[0].ttl: must be between 1s and"}},
		{name: "negative ttl", cfg: oneRoute(`,"ttl":"-5m"`), want: []string{"routes[0].ttl: must be between"}},
		{name: "negative buckets", cfg: `{"store":{"buckets":-1},` + minimalChat[1:], want: []string{"store.buckets: must be between 1 and 1048576, got -1"}},
		{name: "zero buckets", cfg: `{"store":{"buckets":0},` + minimalChat[1:], want: []string{"store.buckets: must be between 1 and 1048576, got 0"}},
		{name: "fractional ways", cfg: `{"store":{"ways":1.5},` + minimalChat[1:], want: []string{"store.ways: must be an integer, got 1.5"}},
		{name: "too many ways", cfg: `{"store":{"ways":65},` + minimalChat[1:], want: []string{"store.ways: must be between 1 and 64, got 65"}},
		{name: "unknown store field", cfg: `{"store":{"bucket":4},` + minimalChat[1:], want: []string{"store.bucket: unknown field"}},
		{name: "tiny store max_entry_bytes", cfg: `{"store":{"max_entry_bytes":10},` + minimalChat[1:], want: []string{"store.max_entry_bytes: must be between 1024 and"}},
		{name: "tick_period too short", cfg: `{"tick_period":"1ms",` + minimalChat[1:], want: []string{"tick_period: must be between 10ms and 10s, got 1ms"}},
		{name: "bad on_retries_exhausted", cfg: oneRoute(`,"coalesce":{"on_retries_exhausted":"retry"}`), want: []string{"routes[0].coalesce.on_retries_exhausted: must be one of fail, forward"}},
		{name: "zero lease_slots", cfg: `{"store":{"lease_slots":0},` + minimalChat[1:], want: []string{"store.lease_slots: must be between 1 and"}},
		{name: "zero max_request_bytes", cfg: `{"max_request_bytes":0,` + minimalChat[1:], want: []string{"max_request_bytes: must be between 1 and"}},
		{name: "bad header_hold", cfg: `{"header_hold":"later",` + minimalChat[1:], want: []string{`header_hold: must be one of auto, hold, late, got "later"`}},
		{name: "header_hold not a string", cfg: `{"header_hold":true,` + minimalChat[1:], want: []string{"header_hold: must be a string"}},
		{name: "bad cache name", cfg: `{"cache_name":"my cache;hit",` + minimalChat[1:], want: []string{"cache_name: may only contain letters"}},
		{name: "status outside 2xx", cfg: oneRoute(`,"statuses":[200,404]`), want: []string{"routes[0].statuses[1]: must be between 200 and 299, got 404"}},
		{name: "status 500", cfg: oneRoute(`,"statuses":[500]`), want: []string{"routes[0].statuses[0]: must be between 200 and 299, got 500"}},
		{name: "status as string", cfg: oneRoute(`,"statuses":["200"]`), want: []string{`routes[0].statuses[0]: must be an integer, got "200"`}},
		{name: "no statuses", cfg: oneRoute(`,"statuses":[]`), want: []string{"routes[0].statuses: must list at least one status"}},
		{name: "no tenant headers", cfg: oneRoute(`,"tenant_headers":[]`), want: []string{"routes[0].tenant_headers: must list at least one header"}},
		{name: "empty tenant header", cfg: oneRoute(`,"tenant_headers":[""]`), want: []string{"routes[0].tenant_headers[0]: must not be empty"}},
		{name: "shared not a bool", cfg: oneRoute(`,"shared":"yes"`), want: []string{`routes[0].shared: must be true or false, got "yes"`}},
		{name: "share_authorities not a bool", cfg: oneRoute(`,"share_authorities":1`), want: []string{`routes[0].share_authorities: must be true or false, got 1`}},
		{name: "rule without predicate", cfg: oneRoute(`,"validate":[{"path":"choices"}]`), want: []string{"routes[0].validate[0]: has no predicate"}},
		{name: "rule without path", cfg: oneRoute(`,"validate":[{"exists":true}]`), want: []string{"routes[0].validate[0].path: is required"}},
		{name: "rule with modifier path", cfg: oneRoute(`,"validate":[{"path":"@pretty","exists":true}]`), want: []string{`routes[0].validate[0].path: is not a usable gjson path: "@pretty"`}},
		{name: "rule with min > max", cfg: oneRoute(`,"validate":[{"path":"x","min":5,"max":1}]`), want: []string{"routes[0].validate[0]: min 5 is greater than max 1"}},
		{name: "rule with min_items > max_items", cfg: oneRoute(`,"validate":[{"path":"x","min_items":3,"max_items":1}]`), want: []string{"routes[0].validate[0]: min_items is greater than max_items"}},
		{name: "rule with unknown type", cfg: oneRoute(`,"validate":[{"path":"x","type":"integer"}]`), want: []string{"routes[0].validate[0].type: must be one of string, number, bool, array, object, null"}},
		{name: "rule with empty one_of", cfg: oneRoute(`,"validate":[{"path":"x","one_of":[]}]`), want: []string{"routes[0].validate[0].one_of: must list at least one value"}},
		{name: "rule with unknown predicate", cfg: oneRoute(`,"validate":[{"path":"x","exist":true}]`), want: []string{"routes[0].validate[0].exist: unknown field", "routes[0].validate[0]: has no predicate"}},
		{name: "second rule reported by index", cfg: oneRoute(`,"validate":[{"path":"x","exists":true},{"path":"y","min":"1"}]`), want: []string{`routes[0].validate[1].min: must be a number, got "1"`}},
		{name: "confidence tier without ttl", cfg: `{"routes":[{"name":"c","kind":"classify","path_prefix":"/","confidence":{"path":"score","tiers":[{"min":0.9}]}}]}`, want: []string{"routes[0].confidence.tiers[0]: needs both min and ttl"}},
		{name: "confidence tier without min", cfg: `{"routes":[{"name":"c","kind":"classify","path_prefix":"/","confidence":{"path":"score","tiers":[{"min":0.9,"ttl":"1h"},{"ttl":"1m"}]}}]}`, want: []string{"routes[0].confidence.tiers[1]: needs both min and ttl"}},
		{name: "duplicate tier mins", cfg: `{"routes":[{"name":"c","kind":"classify","path_prefix":"/","confidence":{"path":"score","tiers":[{"min":0.5,"ttl":"1m"},{"min":0.9,"ttl":"1h"},{"min":0.5,"ttl":"2m"}]}}]}`, want: []string{"routes[0].confidence.tiers: two tiers share min 0.5"}},
		{name: "confidence without tiers", cfg: `{"routes":[{"name":"c","kind":"classify","path_prefix":"/","confidence":{"path":"score"}}]}`, want: []string{"routes[0].confidence.tiers: must list at least one"}},
		{name: "confidence without path", cfg: `{"routes":[{"name":"c","kind":"classify","path_prefix":"/","confidence":{"tiers":[{"min":0.5,"ttl":"1m"}]}}]}`, want: []string{"routes[0].confidence.path: is required"}},
		{name: "purge token too short", cfg: `{"purge":{"path":"/_purge","token":"short"},` + minimalChat[1:], want: []string{"purge.token: must be at least 16 characters"}},
		{name: "purge path without token", cfg: `{"purge":{"path":"/_purge"},` + minimalChat[1:], want: []string{"purge.token: must be at least 16 characters"}},
		{name: "purge path relative", cfg: `{"purge":{"path":"_purge","token":"0123456789abcdef"},` + minimalChat[1:], want: []string{"purge.path: must be an absolute path"}},
		{name: "purge token without path", cfg: `{"purge":{"token":"0123456789abcdef"},` + minimalChat[1:], want: []string{"purge.path: must be an absolute path"}},
		{name: "stale_while_revalidate without upstream_cluster", cfg: oneRoute(`,"stale_while_revalidate":"30s"`), want: []string{"routes[0]: stale_while_revalidate, early_refresh and shadow make background calls: set upstream_cluster"}},
		{name: "shadow path with a modifier", cfg: `{"upstream_cluster":"u","routes":[{"name":"r","kind":"chat","path_prefix":"/v1","shadow":{"paths":["choices.0","@this"]}}]}`, want: []string{`routes[0].shadow.paths[1]: is not a usable gjson path: "@this"`}},
		{name: "shadow paths empty", cfg: `{"upstream_cluster":"u","routes":[{"name":"r","kind":"chat","path_prefix":"/v1","shadow":{"paths":[]}}]}`, want: []string{`routes[0].shadow.paths: must name at least one path; leave it out for the kind's default`}},
		{name: "shadow min_tenants out of range", cfg: `{"upstream_cluster":"u","routes":[{"name":"r","kind":"chat","path_prefix":"/v1","shadow":{"min_tenants":3}}]}`, want: []string{"routes[0].shadow.min_tenants"}},
		{name: "early_refresh without upstream_cluster", cfg: oneRoute(`,"early_refresh":{"enabled":true}`), want: []string{"routes[0]: stale_while_revalidate, early_refresh and shadow", "set upstream_cluster"}},
		{name: "early_refresh beta out of range", cfg: `{"upstream_cluster":"m",` + oneRoute(`,"early_refresh":{"enabled":true,"beta":0}`)[1:], want: []string{"routes[0].early_refresh.beta: must be between 0.01 and 100, got 0"}},
		{name: "coalesce max_wait too short", cfg: oneRoute(`,"coalesce":{"max_wait":"1ms"}`), want: []string{"routes[0].coalesce.max_wait: must be between 10ms and 10m0s, got 1ms"}},
		{name: "unknown coalesce field", cfg: oneRoute(`,"coalesce":{"maxwait":"1s"}`), want: []string{"routes[0].coalesce.maxwait: unknown field"}},
		{name: "unknown model_version field", cfg: oneRoute(`,"model_version":{"headers":"x"}`), want: []string{"routes[0].model_version.headers: unknown field"}},
		{name: "background timeout too long", cfg: `{"background":{"timeout":"2h"},` + minimalChat[1:], want: []string{"background.timeout: must be between 1ms and 1h0m0s, got 2h0m0s"}},
		{name: "key_fields and ignore_fields together", cfg: oneRoute(`,"key_fields":["model"],"ignore_fields":["user"]`), want: []string{"routes[0]: key_fields and ignore_fields exclude each other"}},
		{name: "key_fields without the model", cfg: oneRoute(`,"key_fields":["messages"]`), want: []string{`routes[0].key_fields: must include the model field "model"`}},
		{
			name: "route max_entry_bytes above store.max_entry_bytes",
			cfg:  `{"store":{"max_entry_bytes":65536},` + oneRoute(`,"max_entry_bytes":131072`)[1:],
			want: []string{"routes[0].max_entry_bytes: 131072 exceeds store.max_entry_bytes 65536"},
		},
		{
			name: "bad defaults field reported once",
			cfg: `{"defaults":{"ttl":"forever"},"routes":[{"name":"a","kind":"chat","path_prefix":"/a"},
			       {"name":"b","kind":"json","path_prefix":"/b"},{"name":"c","kind":"embeddings","path_prefix":"/c"}]}`,
			want: []string{`defaults.ttl: invalid duration "forever"`},
			once: "defaults.ttl",
		},
		{
			name: "unknown defaults field reported once",
			cfg:  `{"defaults":{"tll":"5m"},"routes":[{"name":"a","kind":"chat","path_prefix":"/a"},{"name":"b","kind":"chat","path_prefix":"/b"}]}`,
			want: []string{"defaults.tll: unknown field"},
			once: "defaults.tll",
		},
		{
			name: "route-only field in defaults",
			cfg:  `{"defaults":{"path_prefix":"/"},"routes":[{"name":"a","kind":"chat","path_prefix":"/a"}]}`,
			want: []string{"defaults.path_prefix: unknown field"},
		},
		{name: "defaults not an object", cfg: `{"defaults":[],` + minimalChat[1:], want: []string{"defaults: must be an object"}},
		{
			// The defaults are parsed while resolving routes[0]; when that
			// route is broken before its policy is read, the defaults'
			// errors must still be reported.
			name: "bad defaults field reported when routes[0] is broken",
			cfg:  `{"defaults":{"ttl":"forever"},"routes":[{"name":"a","path_prefix":"/a"},{"name":"b","kind":"chat","path_prefix":"/b"}]}`,
			want: []string{"routes[0].kind: is required", `defaults.ttl: invalid duration "forever"`},
			once: "defaults.ttl",
		},
		{
			name: "key_fields and ignore_fields together in defaults",
			cfg:  `{"defaults":{"key_fields":["model","messages"],"ignore_fields":["user"]},"routes":[{"name":"a","kind":"chat","path_prefix":"/a"}]}`,
			want: []string{"key_fields and ignore_fields exclude each other"},
		},
		{
			name: "every error is reported, not just the first",
			cfg: `{"store":{"ways":0},"routes":[{"name":"a","kind":"chat","path_prefix":"/a","ttl":"x"},
			       {"name":"b","kind":"nope","path_prefix":"/b"},{"name":"c","kind":"json","path_exact":"c"}]}`,
			want: []string{"store.ways:", "routes[0].ttl:", "routes[1].kind:", "routes[2].path_exact:"},
		},
	}
	if n := len(tests); n < 14 {
		t.Fatalf("only %d invalid configurations", n)
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cfg, err := ParseConfig([]byte(tc.cfg))
			if err == nil {
				t.Fatalf("accepted: %+v", cfg)
			}
			if cfg != nil {
				t.Errorf("returned a config with an error")
			}
			msg := err.Error()
			for _, w := range tc.want {
				if !strings.Contains(msg, w) {
					t.Errorf("error does not contain %q:\n%s", w, msg)
				}
			}
			if tc.once != "" {
				if n := strings.Count(msg, tc.once); n != 1 {
					t.Errorf("%q reported %d times:\n%s", tc.once, n, msg)
				}
			}
			checkErrorLines(t, msg)
		})
	}
}

// errLine is the shape of every line ParseConfig reports: a field path
// (dotted members, [i] indexes, or "configuration"), a colon, a reason.
var errLine = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_\-]*(\[\d+\])*(\.[^.:\s\[]+(\[\d+\])*)*: \S`)

func checkErrorLines(t *testing.T, msg string) {
	t.Helper()
	for _, line := range strings.Split(msg, "\n") {
		if !errLine.MatchString(line) {
			t.Errorf("error line does not start with a field path: %q", line)
		}
	}
}

// key_headers: names lower-cased, inherited from defaults, overridden by
// a route (an empty list keys none), and part of the route's keying tag;
// every name that cannot be keyed, or is keyed already, is an error
// naming the field.
func TestParseConfigKeyHeaders(t *testing.T) {
	cfg := mustParse(t, `{"defaults":{"key_headers":["OpenAI-Project","anthropic-version"]},"routes":[
	  {"name":"a","kind":"chat","path_exact":"/a"},
	  {"name":"b","kind":"chat","path_exact":"/b","key_headers":["Anthropic-Beta"]},
	  {"name":"c","kind":"chat","path_exact":"/c","key_headers":[]},
	  {"name":"d","kind":"chat","path_exact":"/d","shared":true,"key_headers":["x-team"]}]}`)
	for i, want := range [][]string{{"openai-project", "anthropic-version"}, {"anthropic-beta"}, nil, {"x-team"}} {
		if got := cfg.Routes[i].KeyHeaders; !slices.Equal(got, want) {
			t.Errorf("routes[%d].key_headers = %q, want %q", i, got, want)
		}
	}
	plain := mustParse(t, `{"routes":[{"name":"c","kind":"chat","path_exact":"/c"}]}`).Routes[0]
	if cfg.Routes[2].keyTag != plain.keyTag {
		t.Error("an empty key_headers changed the keying tag (and so every key already stored)")
	}
	if cfg.Routes[0].keyTag == plain.keyTag || cfg.Routes[0].keyTag == cfg.Routes[1].keyTag {
		t.Error("key_headers is not in the keying tag: entries keyed under another list would be found")
	}
	nine := `"h1","h2","h3","h4","h5","h6","h7","h8","h9"`
	for _, tc := range []struct{ name, cfg, want string }{
		{"not a list", oneRoute(`,"key_headers":"openai-project"`), `routes[0].key_headers: must be an array`},
		{"not a string", oneRoute(`,"key_headers":[1]`), `routes[0].key_headers[0]: must be a string`},
		{"empty name", oneRoute(`,"key_headers":[""]`), `routes[0].key_headers[0]: must not be empty`},
		{"not a token", oneRoute(`,"key_headers":["openai project"]`), `routes[0].key_headers[0]: "openai project" is not a header name`},
		{"pseudo-header", oneRoute(`,"key_headers":[":authority"]`), `routes[0].key_headers[0]: ":authority" is a pseudo-header`},
		{"duplicate", oneRoute(`,"key_headers":["openai-project","OpenAI-Project"]`), `routes[0].key_headers[1]: "openai-project" is listed twice`},
		{"hop-by-hop", oneRoute(`,"key_headers":["connection"]`), `routes[0].key_headers[0]: "connection" is a hop-by-hop header`},
		{"te", oneRoute(`,"key_headers":["TE"]`), `routes[0].key_headers[0]: "te" is a hop-by-hop header`},
		{"host", oneRoute(`,"key_headers":["host"]`), `routes[0].key_headers[0]: "host" is the authority, which the key holds already`},
		{"credentials", oneRoute(`,"shared":true,"tenant_headers":["x-team"],"key_headers":["cookie"]`), `routes[0].key_headers[0]: "cookie" carries credentials`},
		{"too many", oneRoute(`,"key_headers":[` + nine + `]`), `routes[0].key_headers: lists 9 headers; at most 8`},
		{"tenant header", oneRoute(`,"tenant_headers":["x-team"],"key_headers":["X-Team"]`), `routes[0].key_headers[0]: "x-team" is the route's tenant header, keyed already (hashed)`},
		{"default tenant header", oneRoute(`,"key_headers":["openai-project","x-api-key"]`), `routes[0].key_headers[1]: "x-api-key" is the route's tenant header, keyed already (hashed)`},
		{"tenant header on a shared route", oneRoute(`,"shared":true,"key_headers":["x-api-key"]`), `routes[0].key_headers[0]: "x-api-key" is in tenant_headers`},
		{"tenant header from defaults", `{"defaults":{"key_headers":["x-team"]},"routes":[{"name":"r","kind":"chat","path_prefix":"/v1","tenant_headers":["x-team"]}]}`,
			`defaults.key_headers[0]: "x-team" is a tenant header of route "r", keyed already (hashed)`},
		{"in defaults", `{"defaults":{"key_headers":["upgrade"]},"routes":[{"name":"r","kind":"chat","path_prefix":"/v1"}]}`, `defaults.key_headers[0]: "upgrade" is a hop-by-hop header`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ParseConfig([]byte(tc.cfg))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v, want %q", err, tc.want)
			}
			checkErrorLines(t, err.Error())
		})
	}
}

func FuzzParseConfig(f *testing.F) {
	for _, s := range []string{
		minimalChat,
		`{"routes":[{"name":"e","kind":"embeddings","path_prefix":"/v1/embeddings","shared":true}]}`,
		`{"upstream_cluster":"m","cache_name":"c","tick_period":"1s","store":{"buckets":2,"ways":2,"max_entry_bytes":4096,"lease_slots":8},
		  "purge":{"path":"/_purge","token":"0123456789abcdef"},"background":{"max_concurrent":1,"timeout":"1s"},
		  "defaults":{"ttl":"1h","statuses":[200,203],"tenant_headers":["x-tenant"]},
		  "routes":[{"name":"a","kind":"chat","path_exact":"/a","stale_while_revalidate":"10s","early_refresh":{"enabled":true,"beta":1.5}},
		            {"name":"b","kind":"classify","path_prefix":"/b","confidence":{"path":"s","tiers":[{"min":0.1,"ttl":"1m"},{"min":0.9,"ttl":"1h"}]}},
		            {"name":"c","kind":"json","path_prefix":"/c","methods":["PUT"],"key_fields":["model","x"],
		             "validate":[{"path":"x","type":"string","non_empty":true},{"path":"n","min":0,"max":9},{"path":"l","min_items":1},{"path":"o","one_of":[1,"a"]},{"path":"q","equals":null},{"path":"z","exists":false}],
		             "model_version":{"header":"x-v","body_path":"fp"},"coalesce":{"enabled":true,"max_wait":"1s","max_retries":3,"hit_for_miss":"5s"}}]}`,
		``, `{`, `null`, `{}`, `{"routes":[]}`, `{"routes":[{}]}`,
		oneRoute(`,"tll":"5m"`), oneRoute(`,"ttl":"5 minutes"`), oneRoute(`,"statuses":[404]`),
		oneRoute(`,"validate":[{"path":"x"}]`), oneRoute(`,"validate":[{"path":"x","min":2,"max":1}]`),
		`{"defaults":{"ttl":"x"},"routes":[{"name":"a","kind":"chat","path_prefix":"/a"},{"name":"b","kind":"chat","path_prefix":"/b"}]}`,
		`{"defaults":{"key_headers":["openai-project"]},"routes":[{"name":"a","kind":"chat","path_prefix":"/a","key_headers":["anthropic-beta","x-api-key"]}]}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		cfg, err := ParseConfig(data)
		if err != nil {
			if cfg != nil {
				t.Fatalf("config and error both returned")
			}
			return
		}
		if len(cfg.Routes) == 0 {
			t.Fatalf("parsed with no routes: %q", data)
		}
		if cfg.Store.Buckets < 1 || cfg.Store.Ways < 1 || cfg.Store.Ways > 64 || cfg.Store.MaxEntryBytes < 1024 || cfg.Store.LeaseSlots < 1 || cfg.TickPeriod <= 0 {
			t.Fatalf("store out of range: %+v", cfg.Store)
		}
		names := map[string]bool{}
		for i, r := range cfg.Routes {
			if r.Name == "" || !knownKind(r.Kind) {
				t.Fatalf("routes[%d] without name or kind: %+v", i, r)
			}
			if names[r.Name] {
				t.Fatalf("duplicate route name %q", r.Name)
			}
			names[r.Name] = true
			if (r.Prefix == "") == (r.Exact == "") || !strings.HasPrefix(r.Prefix+r.Exact, "/") {
				t.Fatalf("routes[%d] path: prefix %q exact %q", i, r.Prefix, r.Exact)
			}
			if len(r.Methods) == 0 || len(r.Statuses) == 0 || r.TTL <= 0 {
				t.Fatalf("routes[%d] policy: %+v", i, r)
			}
			for _, s := range r.Statuses {
				if s < 200 || s > 299 {
					t.Fatalf("routes[%d] caches status %d", i, s)
				}
			}
			if !r.Shared && len(r.TenantHeaders) == 0 {
				t.Fatalf("routes[%d] has no tenant identity", i)
			}
			if r.MaxEntryBytes <= 0 || r.MaxEntryBytes > cfg.Store.MaxEntryBytes {
				t.Fatalf("routes[%d] max entry %d, store %d", i, r.MaxEntryBytes, cfg.Store.MaxEntryBytes)
			}
			if (r.StaleWhileReval > 0 || r.EarlyRefresh.Enabled) && cfg.Cluster == "" {
				t.Fatalf("routes[%d] makes background calls without a cluster", i)
			}
			if c := r.Confidence; c != nil {
				if len(c.Tiers) == 0 {
					t.Fatalf("routes[%d] confidence without tiers", i)
				}
				for j := range c.Tiers {
					if c.Tiers[j].TTL <= 0 || j > 0 && c.Tiers[j].Min >= c.Tiers[j-1].Min {
						t.Fatalf("routes[%d] tiers not strictly descending: %+v", i, c.Tiers)
					}
				}
			}
			if cfg.MatchRoute(r.Methods[0], r.Prefix+r.Exact) == nil {
				t.Fatalf("routes[%d] does not match its own path", i)
			}
		}
	})
}

func TestParseConfigHeaderHold(t *testing.T) {
	if cfg := mustParse(t, minimalChat); cfg.HeaderHold != HoldAuto {
		t.Fatalf("default header_hold = %v", cfg.HeaderHold)
	}
	for _, want := range []HeaderHold{HoldAuto, HoldHeaders, HoldLate} {
		cfg := mustParse(t, `{"header_hold":"`+want.String()+`",`+minimalChat[1:])
		if cfg.HeaderHold != want {
			t.Fatalf("header_hold %q parsed as %v", want.String(), cfg.HeaderHold)
		}
	}
}

// Routes that only overlap are fine: a narrower one first, or an earlier
// one that takes other methods or another exact path.
func TestParseConfigOverlappingRoutes(t *testing.T) {
	for _, cfg := range []string{
		`{"routes":[{"name":"chat","kind":"chat","path_prefix":"/v1/chat/completions"},{"name":"all","kind":"json","path_prefix":"/v1/"}]}`,
		`{"routes":[{"name":"get","kind":"json","path_prefix":"/v1/","methods":["GET"]},{"name":"chat","kind":"chat","path_prefix":"/v1/chat/completions"}]}`,
		`{"routes":[{"name":"a","kind":"json","path_exact":"/v1/a"},{"name":"v1","kind":"json","path_prefix":"/v1/"}]}`,
	} {
		if _, err := ParseConfig([]byte(cfg)); err != nil {
			t.Errorf("%s: %v", cfg, err)
		}
	}
}

// Review Z20. README (ignore_fields): "A route's own key_fields replaces an
// ignore_fields it inherits from defaults". A route that writes its own
// key_fields as [] ("all fields", key_fields' documented default) still
// drops every field the defaults' ignore list names: two requests that
// differ only in temperature share one key on that route.
func TestRoutesOwnEmptyKeyFieldsReplacesInheritedIgnoreFields(t *testing.T) {
	cfg := `{"defaults": {"ignore_fields": ["user", "metadata", "store", "temperature"]},
	  "routes": [
	    {"name": "exact", "kind": "chat", "path_prefix": "/v1/chat/completions", "key_fields": []}
	  ]}`
	c, err := ParseConfig([]byte(cfg))
	if err != nil {
		t.Fatalf("refused: %v", err)
	}
	r := c.Routes[0]
	if slices.Contains(r.IgnoreFields, "temperature") {
		t.Fatalf("route with its own key_fields [] (all fields) keys %v and still ignores the inherited %v", r.KeyFields, r.IgnoreFields)
	}
}

package cachecore

import (
	"errors"
	"fmt"
	"math"
	"sort"
	"strings"
	"time"

	"github.com/tidwall/gjson"
)

// Config is the whole plugin configuration, parsed and validated once at
// start by ParseConfig. It is immutable afterwards and safe to share.
type Config struct {
	// CacheName names this cache in Cache-Status headers.
	CacheName string
	// Cluster is the Envoy cluster for background calls (refresh, shadow).
	Cluster string
	// Authority is the :authority of background calls ("" = the client's).
	Authority string
	// MaxRequestBytes bounds a request body the cache will buffer and key.
	MaxRequestBytes int
	// TickPeriod is how often every VM re-checks paused followers (a lost
	// wake-up costs at most this) and held requests.
	TickPeriod time.Duration
	Store      StoreConfig
	Purge      PurgeConfig
	Background BackgroundConfig
	Routes     []*Route
}

// StoreConfig fixes the shape of the slot table, and so its memory bound.
type StoreConfig struct {
	Buckets       int // index keys in shared data
	Ways          int // entries per bucket
	MaxEntryBytes int // largest encoded entry (key + headers + body)
	LeaseSlots    int // single-flight lease slots
	// MaxTenantShare: the fraction of a bucket's ways one tenant's entries
	// may hold (rounded up to whole ways); 0: no limit.
	MaxTenantShare float64
}

// PurgeConfig enables the purge API. Without a token it does not exist.
type PurgeConfig struct {
	Path  string
	Token string
}

// BackgroundConfig bounds background upstream calls process-wide.
type BackgroundConfig struct {
	MaxConcurrent int
	Timeout       time.Duration
}

// Route is one matched endpoint with its fully resolved policy.
type Route struct {
	Name    string
	Prefix  string
	Exact   string
	Methods []string
	Kind    Kind
	Policy
}

// Policy is every per-route setting; routes inherit "defaults" and override.
type Policy struct {
	TTL             time.Duration
	Statuses        []int
	Shared          bool     // no tenant identity required (public, shared answers)
	ShareAuth       bool     // share_authorities: entries shared across :authority values
	TenantHeaders   []string // identity headers, first present wins
	ModelPath       string   // gjson path of the model in the request body
	KeyFields       []string // top-level fields in the key (empty = all but IgnoreFields)
	IgnoreFields    []string // top-level fields that cannot change the answer
	FinishReasons   []string // allowed finish_reason values (chat, completions)
	Rules           []Rule
	Confidence      *Confidence
	ModelVersion    VersionSource
	StoredHeaders   []string // response headers kept in the entry and replayed on hits
	MaxEntryBytes   int
	HonorCacheCtl   bool // honour request Cache-Control
	StaleWhileReval time.Duration
	StaleIfError    time.Duration
	EarlyRefresh    EarlyRefresh
	Coalesce        Coalesce

	FreshnessSLO *FreshnessSLO
	Shadow       *Shadow

	ignoreSet bool // ignore_fields was configured (it excludes key_fields)
	kind      Kind // for kind-dependent defaults while parsing
}

// FreshnessSLO is a stale-serving objective: at most MaxFraction of the
// route's responses may be older than MaxAge, over a sliding Window.
type FreshnessSLO struct {
	MaxAge      time.Duration
	MaxFraction float64
	Window      time.Duration
	MinSamples  int
}

// Shadow configures sampled cached-vs-fresh comparison: a fraction of hits
// also asks the upstream in the background, compares the answers, and
// invalidates the namespace when they diverge too often.
type Shadow struct {
	Sample        float64 // fraction of hits compared
	MaxConcurrent int     // shadow calls at once, per route and Envoy process
	Compare       string  // text, exact, numeric, label, cosine
	Paths         []string
	Tolerance     float64 // numeric
	MinCosine     float64 // cosine
	MaxDivergence float64 // divergence rate that invalidates
	MinSamples    int
	Window        time.Duration
	// MinTenants is how many distinct tenants' hits must have diverged in
	// the window before a tenant route's model is invalidated (1 or 2):
	// with 2, no single tenant can invalidate everyone's entries.
	MinTenants int
}

var compareModes = map[string]bool{"text": true, "exact": true, "numeric": true, "label": true, "cosine": true}

// shadowDefaults picks the comparator a kind's answers are compared with.
func shadowDefaults(k Kind) Shadow {
	spec := k.spec()
	return Shadow{Sample: 0.01, MaxConcurrent: 2, MaxDivergence: 0.2, MinSamples: 10, Window: 10 * time.Minute, MinTenants: 2,
		Tolerance: 1e-6, MinCosine: 0.999, Compare: spec.shadowCompare, Paths: cloneStrings(spec.shadowPaths)}
}

// VersionSource says where the upstream reports its model version.
type VersionSource struct {
	Header   string // response header, e.g. x-model-version
	BodyPath string // gjson path in the response body, e.g. system_fingerprint
}

// Enabled reports whether a version is configured.
func (v VersionSource) Enabled() bool { return v.Header != "" || v.BodyPath != "" }

// EarlyRefresh configures XFetch probabilistic early refresh.
type EarlyRefresh struct {
	Enabled bool
	Beta    float64
}

// Coalesce configures single-flight.
type Coalesce struct {
	Enabled    bool
	MaxWait    time.Duration // a follower goes upstream itself after this
	MaxRetries int           // leader failures a follower sits through
	HitForMiss time.Duration // how long a lastingly uncacheable key skips coalescing
	// OnRetriesExhausted: what followers left after max_retries+1 leader
	// failures do.
	OnRetriesExhausted ExhaustedPolicy
}

// ExhaustedPolicy is coalesce.on_retries_exhausted.
type ExhaustedPolicy uint8

const (
	// ExhaustedFail (default, "fail"): the followers are answered with the
	// failure; a failing upstream sees at most max_retries+1 calls per key.
	ExhaustedFail ExhaustedPolicy = iota
	// ExhaustedForward ("forward"): every follower left goes upstream itself.
	ExhaustedForward
)

// Confidence maps a score in the response to a TTL.
type Confidence struct {
	Path  string
	Tiers []Tier // sorted by Min, highest first
}

// Tier is one confidence level: scores ≥ Min get TTL.
type Tier struct {
	Min float64
	TTL time.Duration
}

// Rule is one validation predicate over a gjson path of the response body.
// Every set field must hold for the body to be stored.
type Rule struct {
	Path     string
	Exists   *bool
	Type     string // string, number, bool, array, object, null
	NonEmpty bool
	Equals   *gjson.Result
	OneOf    []gjson.Result
	Min      *float64
	Max      *float64
	MinItems *int
	MaxItems *int
}

// Defaults applied when the configuration leaves a field out.
const (
	DefaultCacheName       = "modelcache"
	DefaultMaxRequestBytes = 128 << 10
	DefaultBuckets         = 1024
	DefaultWays            = 4
	DefaultMaxEntryBytes   = 128 << 10
	DefaultTTL             = 5 * time.Minute
	DefaultLeaseSlots      = 1024
	DefaultTickPeriod      = 100 * time.Millisecond
)

// kindDefaults returns the policy a route of kind k starts from.
func kindDefaults(k Kind) Policy {
	p := Policy{
		kind:          k,
		TTL:           DefaultTTL,
		Statuses:      []int{200},
		TenantHeaders: []string{"authorization", "x-api-key"},
		ModelPath:     "model",
		StoredHeaders: []string{"content-type"},
		HonorCacheCtl: true,
		EarlyRefresh:  EarlyRefresh{Beta: 1},
		Coalesce: Coalesce{
			Enabled:    true,
			MaxWait:    30 * time.Second,
			MaxRetries: 2,
			HitForMiss: 30 * time.Second,
		},
	}
	spec := k.spec()
	p.KeyFields = cloneStrings(spec.keyFields)
	p.IgnoreFields = cloneStrings(spec.ignoreFields)
	p.FinishReasons = cloneStrings(spec.finishReasons)
	return p
}

// ParseConfig parses and validates the plugin configuration. The error names
// every offending field by its JSON path, e.g. `routes[1].ttl: …`.
func ParseConfig(data []byte) (*Config, error) {
	p := &parser{}
	cfg := p.config(data)
	if len(p.errs) > 0 {
		return nil, errors.Join(p.errs...)
	}
	return cfg, nil
}

type parser struct {
	errs []error
}

func (p *parser) fail(path, format string, args ...any) {
	p.errs = append(p.errs, fmt.Errorf("%s: %s", path, fmt.Sprintf(format, args...)))
}

// fields walks an object, calling f for each member; unknown members are
// reported by f returning false.
func (p *parser) fields(path string, v gjson.Result, f func(key string, val gjson.Result) bool) {
	if !v.IsObject() {
		p.fail(path, "must be an object")
		return
	}
	seen := map[string]bool{}
	v.ForEach(func(k, val gjson.Result) bool {
		key := k.String()
		sub := join(path, key)
		if seen[key] {
			p.fail(sub, "duplicate field")
			return true
		}
		seen[key] = true
		if !f(key, val) {
			p.fail(sub, "unknown field")
		}
		return true
	})
}

func join(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

func (p *parser) config(data []byte) *Config {
	cfg := &Config{
		CacheName:       DefaultCacheName,
		MaxRequestBytes: DefaultMaxRequestBytes,
		Store:           StoreConfig{Buckets: DefaultBuckets, Ways: DefaultWays, MaxEntryBytes: DefaultMaxEntryBytes, LeaseSlots: DefaultLeaseSlots},
		TickPeriod:      DefaultTickPeriod,
		Background:      BackgroundConfig{MaxConcurrent: 8, Timeout: 30 * time.Second},
	}
	if len(strings.TrimSpace(string(data))) == 0 {
		p.fail("configuration", "is empty; at least one route is required")
		return cfg
	}
	if CheckJSONDepth(data, MaxJSONDepth) == ErrTooDeep {
		p.fail("configuration", "nests deeper than %d levels", MaxJSONDepth)
		return cfg
	}
	if !gjson.ValidBytes(data) {
		p.fail("configuration", "is not valid JSON")
		return cfg
	}
	root := gjson.ParseBytes(data)
	if !root.IsObject() {
		p.fail("configuration", "must be an object")
		return cfg
	}
	var defaults gjson.Result
	var routes gjson.Result
	p.fields("", root, func(key string, v gjson.Result) bool {
		switch key {
		case "cache_name":
			cfg.CacheName = p.token(key, v)
		case "upstream_cluster":
			cfg.Cluster = p.str(key, v)
		case "upstream_authority":
			cfg.Authority = p.str(key, v)
		case "max_request_bytes":
			cfg.MaxRequestBytes = p.intRange(key, v, 1, 64<<20)
		case "store":
			p.store(key, v, &cfg.Store)
		case "purge":
			p.purge(key, v, &cfg.Purge)
		case "background":
			p.background(key, v, &cfg.Background)
		case "tick_period":
			cfg.TickPeriod = p.duration(key, v, 10*time.Millisecond, 10*time.Second)
		case "defaults":
			defaults = v
		case "routes":
			routes = v
		default:
			return false
		}
		return true
	})
	if !routes.Exists() {
		p.fail("routes", "is required: list the model endpoints to cache")
		return cfg
	}
	if !routes.IsArray() || len(routes.Array()) == 0 {
		p.fail("routes", "must be a non-empty array")
		return cfg
	}
	if defaults.Exists() && !defaults.IsObject() {
		p.fail("defaults", "must be an object")
		defaults = gjson.Result{}
	}
	if defaults.Exists() {
		// Report the defaults' errors once, whatever the routes look like;
		// each route then applies them silently over its kind's defaults.
		pol := kindDefaults(KindJSON)
		p.fields("defaults", defaults, func(key string, v gjson.Result) bool {
			return p.policyField("defaults."+key, key, v, &pol)
		})
		if len(pol.KeyFields) > 0 && pol.ignoreSet {
			p.fail("defaults", "key_fields and ignore_fields exclude each other")
		}
	}
	names := map[string]bool{}
	for i, rv := range routes.Array() {
		path := fmt.Sprintf("routes[%d]", i)
		r := p.route(path, rv, defaults)
		if r == nil {
			continue
		}
		if names[r.Name] {
			p.fail(path+".name", "duplicate route name %q", r.Name)
		}
		names[r.Name] = true
		if r.MaxEntryBytes > cfg.Store.MaxEntryBytes {
			p.fail(path+".max_entry_bytes", "%d exceeds store.max_entry_bytes %d", r.MaxEntryBytes, cfg.Store.MaxEntryBytes)
		}
		if r.MaxEntryBytes == 0 {
			r.MaxEntryBytes = cfg.Store.MaxEntryBytes
		}
		needsCluster := r.StaleWhileReval > 0 || r.EarlyRefresh.Enabled || (r.Shadow != nil && r.Shadow.Sample > 0)
		if needsCluster && cfg.Cluster == "" {
			p.fail(path, "stale_while_revalidate, early_refresh and shadow make background calls: set upstream_cluster")
		}
		cfg.Routes = append(cfg.Routes, r)
	}
	if cfg.Purge.Path != "" || cfg.Purge.Token != "" {
		if cfg.Purge.Path == "" || !strings.HasPrefix(cfg.Purge.Path, "/") {
			p.fail("purge.path", "must be an absolute path")
		}
		if len(cfg.Purge.Token) < 16 {
			p.fail("purge.token", "must be at least 16 characters (the purge API is disabled without a token)")
		}
	}
	return cfg
}

func (p *parser) store(path string, v gjson.Result, s *StoreConfig) {
	p.fields(path, v, func(key string, v gjson.Result) bool {
		sub := join(path, key)
		switch key {
		case "buckets":
			s.Buckets = p.intRange(sub, v, 1, 1<<20)
		case "ways":
			s.Ways = p.intRange(sub, v, 1, 64)
		case "max_entry_bytes":
			s.MaxEntryBytes = p.intRange(sub, v, 1024, 64<<20)
		case "lease_slots":
			s.LeaseSlots = p.intRange(sub, v, 1, 1<<20)
		case "max_tenant_share":
			s.MaxTenantShare = p.floatRange(sub, v, 0, 1)
		default:
			return false
		}
		return true
	})
}

func (p *parser) purge(path string, v gjson.Result, pc *PurgeConfig) {
	p.fields(path, v, func(key string, v gjson.Result) bool {
		sub := join(path, key)
		switch key {
		case "path":
			pc.Path = p.str(sub, v)
		case "token":
			pc.Token = p.str(sub, v)
		default:
			return false
		}
		return true
	})
}

func (p *parser) background(path string, v gjson.Result, b *BackgroundConfig) {
	p.fields(path, v, func(key string, v gjson.Result) bool {
		sub := join(path, key)
		switch key {
		case "max_concurrent":
			b.MaxConcurrent = p.intRange(sub, v, 1, 1024)
		case "timeout":
			b.Timeout = p.duration(sub, v, time.Millisecond, time.Hour)
		default:
			return false
		}
		return true
	})
}

func (p *parser) route(path string, v gjson.Result, defaults gjson.Result) *Route {
	if !v.IsObject() {
		p.fail(path, "must be an object")
		return nil
	}
	r := &Route{Methods: []string{"POST"}}
	kind := v.Get("kind")
	switch {
	case !kind.Exists():
		p.fail(path+".kind", "is required (one of %s)", kindList())
		return nil
	case kind.Type != gjson.String || !knownKind(Kind(kind.Str)):
		p.fail(path+".kind", "must be one of %s, got %s", kindList(), kind.Raw)
		return nil
	}
	r.Kind = Kind(kind.Str)
	r.Policy = kindDefaults(r.Kind)
	if defaults.Exists() {
		// Errors in defaults were reported once by config().
		q := &parser{}
		q.fields("defaults", defaults, func(key string, v gjson.Result) bool {
			return q.policyField("defaults."+key, key, v, &r.Policy)
		})
	}
	p.fields(path, v, func(key string, val gjson.Result) bool {
		sub := join(path, key)
		switch key {
		case "name":
			r.Name = p.token(sub, val)
		case "kind":
		case "path_prefix":
			r.Prefix = p.str(sub, val)
		case "path_exact":
			r.Exact = p.str(sub, val)
		case "methods":
			r.Methods = p.strList(sub, val)
			for i, m := range r.Methods {
				if m == "" || strings.ToUpper(m) != m {
					p.fail(fmt.Sprintf("%s[%d]", sub, i), "must be an upper-case HTTP method, got %q", m)
				}
			}
			if len(r.Methods) == 0 {
				p.fail(sub, "must list at least one method")
			}
		default:
			return p.policyField(sub, key, val, &r.Policy)
		}
		return true
	})
	if r.Name == "" {
		p.fail(path+".name", "is required")
	}
	switch {
	case r.Prefix == "" && r.Exact == "":
		p.fail(path, "needs path_prefix or path_exact")
	case r.Prefix != "" && r.Exact != "":
		p.fail(path, "has both path_prefix and path_exact; choose one")
	case r.Prefix != "" && !strings.HasPrefix(r.Prefix, "/"):
		p.fail(path+".path_prefix", "must start with /")
	case r.Exact != "" && !strings.HasPrefix(r.Exact, "/"):
		p.fail(path+".path_exact", "must start with /")
	}
	if len(r.KeyFields) > 0 && r.ignoreSet && (v.Get("key_fields").Exists() || v.Get("ignore_fields").Exists()) {
		p.fail(path, "key_fields and ignore_fields exclude each other")
	}
	if len(r.KeyFields) > 0 {
		r.IgnoreFields = nil // an allowlist replaces the kind's ignore list
	}
	if len(r.KeyFields) > 0 && !containsStr(r.KeyFields, r.ModelPath) && !strings.Contains(r.ModelPath, ".") {
		p.fail(path+".key_fields", "must include the model field %q", r.ModelPath)
	}
	return r
}

func containsStr(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

// policyField parses one overridable setting; false means unknown field.
func (p *parser) policyField(path, key string, v gjson.Result, pol *Policy) bool {
	switch key {
	case "ttl":
		pol.TTL = p.duration(path, v, time.Second, 365*24*time.Hour)
	case "statuses":
		pol.Statuses = nil
		for i, s := range p.array(path, v) {
			code := p.intRange(fmt.Sprintf("%s[%d]", path, i), s, 200, 299)
			pol.Statuses = append(pol.Statuses, code)
		}
		if len(pol.Statuses) == 0 {
			p.fail(path, "must list at least one status")
		}
	case "shared":
		pol.Shared = p.boolean(path, v)
	case "share_authorities":
		pol.ShareAuth = p.boolean(path, v)
	case "tenant_headers":
		pol.TenantHeaders = lowerAll(p.strList(path, v))
		if len(pol.TenantHeaders) == 0 {
			p.fail(path, "must list at least one header (set \"shared\": true for a route without tenants)")
		}
	case "model_path":
		pol.ModelPath = p.str(path, v)
	case "key_fields":
		pol.KeyFields = p.strList(path, v)
	case "ignore_fields":
		pol.IgnoreFields = p.strList(path, v)
		pol.ignoreSet = true
	case "finish_reasons":
		pol.FinishReasons = p.strList(path, v)
	case "validate":
		pol.Rules = nil
		for i, rv := range p.array(path, v) {
			if r, ok := p.rule(fmt.Sprintf("%s[%d]", path, i), rv); ok {
				pol.Rules = append(pol.Rules, r)
			}
		}
	case "confidence":
		pol.Confidence = p.confidence(path, v)
	case "model_version":
		pol.ModelVersion = VersionSource{}
		p.fields(path, v, func(key string, val gjson.Result) bool {
			switch key {
			case "header":
				pol.ModelVersion.Header = strings.ToLower(p.str(join(path, key), val))
			case "body_path":
				pol.ModelVersion.BodyPath = p.str(join(path, key), val)
			default:
				return false
			}
			return true
		})
	case "stored_headers":
		pol.StoredHeaders = lowerAll(p.strList(path, v))
	case "max_entry_bytes":
		pol.MaxEntryBytes = p.intRange(path, v, 1024, 64<<20)
	case "honor_request_cache_control":
		pol.HonorCacheCtl = p.boolean(path, v)
	case "stale_while_revalidate":
		pol.StaleWhileReval = p.duration(path, v, 0, 365*24*time.Hour)
	case "stale_if_error":
		pol.StaleIfError = p.duration(path, v, 0, 365*24*time.Hour)
	case "early_refresh":
		p.fields(path, v, func(key string, val gjson.Result) bool {
			switch key {
			case "enabled":
				pol.EarlyRefresh.Enabled = p.boolean(join(path, key), val)
			case "beta":
				pol.EarlyRefresh.Beta = p.floatRange(join(path, key), val, 0.01, 100)
			default:
				return false
			}
			return true
		})
	case "freshness_slo":
		slo := &FreshnessSLO{MaxFraction: 0.05, Window: 5 * time.Minute, MinSamples: 20}
		var haveAge bool
		p.fields(path, v, func(key string, val gjson.Result) bool {
			sub := join(path, key)
			switch key {
			case "max_age":
				slo.MaxAge, haveAge = p.duration(sub, val, time.Second, 365*24*time.Hour), true
			case "max_fraction":
				slo.MaxFraction = p.floatRange(sub, val, 0, 1)
			case "window":
				slo.Window = p.duration(sub, val, 10*time.Second, 24*time.Hour)
			case "min_samples":
				slo.MinSamples = p.intRange(sub, val, 1, 1<<30)
			default:
				return false
			}
			return true
		})
		if !haveAge {
			p.fail(path+".max_age", "is required: the freshness budget, e.g. \"1h\"")
		}
		pol.FreshnessSLO = slo
	case "shadow":
		sh := shadowDefaults(pol.kind)
		p.fields(path, v, func(key string, val gjson.Result) bool {
			sub := join(path, key)
			switch key {
			case "sample":
				sh.Sample = p.floatRange(sub, val, 0, 1)
			case "max_concurrent":
				sh.MaxConcurrent = p.intRange(sub, val, 1, 64)
			case "compare":
				sh.Compare = p.str(sub, val)
				if !compareModes[sh.Compare] {
					p.fail(sub, "must be one of text, exact, numeric, label, cosine")
				}
			case "paths":
				sh.Paths = p.strList(sub, val)
			case "tolerance":
				sh.Tolerance = p.floatRange(sub, val, 0, 1e12)
			case "min_cosine":
				sh.MinCosine = p.floatRange(sub, val, -1, 1)
			case "max_divergence":
				sh.MaxDivergence = p.floatRange(sub, val, 0, 1)
			case "min_samples":
				sh.MinSamples = p.intRange(sub, val, 1, 1<<30)
			case "window":
				sh.Window = p.duration(sub, val, time.Second, 30*24*time.Hour)
			case "min_tenants":
				sh.MinTenants = p.intRange(sub, val, 1, 2)
			default:
				return false
			}
			return true
		})
		pol.Shadow = &sh
	case "coalesce":
		p.fields(path, v, func(key string, val gjson.Result) bool {
			sub := join(path, key)
			switch key {
			case "enabled":
				pol.Coalesce.Enabled = p.boolean(sub, val)
			case "max_wait":
				pol.Coalesce.MaxWait = p.duration(sub, val, 10*time.Millisecond, 10*time.Minute)
			case "max_retries":
				pol.Coalesce.MaxRetries = p.intRange(sub, val, 0, 10)
			case "hit_for_miss":
				pol.Coalesce.HitForMiss = p.duration(sub, val, 0, time.Hour)
			case "on_retries_exhausted":
				switch p.str(sub, val) {
				case "fail":
					pol.Coalesce.OnRetriesExhausted = ExhaustedFail
				case "forward":
					pol.Coalesce.OnRetriesExhausted = ExhaustedForward
				default:
					p.fail(sub, "must be one of fail, forward")
				}
			default:
				return false
			}
			return true
		})
	default:
		return false
	}
	return true
}

func lowerAll(s []string) []string {
	for i := range s {
		s[i] = strings.ToLower(s[i])
	}
	return s
}

var ruleTypes = map[string]bool{"string": true, "number": true, "bool": true, "array": true, "object": true, "null": true}

func (p *parser) rule(path string, v gjson.Result) (Rule, bool) {
	var r Rule
	preds := 0
	before := len(p.errs)
	p.fields(path, v, func(key string, val gjson.Result) bool {
		sub := join(path, key)
		switch key {
		case "path":
			r.Path = p.str(sub, val)
			return true
		case "exists":
			b := p.boolean(sub, val)
			r.Exists = &b
		case "type":
			r.Type = p.str(sub, val)
			if !ruleTypes[r.Type] {
				p.fail(sub, "must be one of string, number, bool, array, object, null")
			}
		case "non_empty":
			r.NonEmpty = p.boolean(sub, val)
		case "equals":
			eq := val
			r.Equals = &eq
		case "one_of":
			r.OneOf = p.array(sub, val)
			if len(r.OneOf) == 0 {
				p.fail(sub, "must list at least one value")
			}
		case "min":
			f := p.float(sub, val)
			r.Min = &f
		case "max":
			f := p.float(sub, val)
			r.Max = &f
		case "min_items":
			n := p.intRange(sub, val, 0, 1<<30)
			r.MinItems = &n
		case "max_items":
			n := p.intRange(sub, val, 0, 1<<30)
			r.MaxItems = &n
		default:
			return false
		}
		preds++
		return true
	})
	if r.Path == "" {
		p.fail(path+".path", "is required")
	} else if !gjsonPathOK(r.Path) {
		p.fail(path+".path", "is not a usable gjson path: %q", r.Path)
	}
	if preds == 0 {
		p.fail(path, "has no predicate (exists, type, non_empty, equals, one_of, min, max, min_items, max_items)")
	}
	if r.Min != nil && r.Max != nil && *r.Min > *r.Max {
		p.fail(path, "min %v is greater than max %v", *r.Min, *r.Max)
	}
	if r.MinItems != nil && r.MaxItems != nil && *r.MinItems > *r.MaxItems {
		p.fail(path, "min_items is greater than max_items")
	}
	return r, len(p.errs) == before
}

// gjsonPathOK refuses paths gjson would treat as modifiers or queries that
// have side effects on performance (e.g. @pretty) or can't be a field path.
func gjsonPathOK(path string) bool {
	if strings.ContainsAny(path, "@|\x00") {
		return false
	}
	return !strings.HasPrefix(path, ".") && !strings.HasSuffix(path, ".")
}

func (p *parser) confidence(path string, v gjson.Result) *Confidence {
	c := &Confidence{}
	p.fields(path, v, func(key string, val gjson.Result) bool {
		sub := join(path, key)
		switch key {
		case "path":
			c.Path = p.str(sub, val)
		case "tiers":
			for i, tv := range p.array(sub, val) {
				tp := fmt.Sprintf("%s[%d]", sub, i)
				var t Tier
				var haveMin, haveTTL bool
				p.fields(tp, tv, func(key string, val gjson.Result) bool {
					switch key {
					case "min":
						t.Min, haveMin = p.float(join(tp, key), val), true
					case "ttl":
						t.TTL, haveTTL = p.duration(join(tp, key), val, time.Second, 365*24*time.Hour), true
					default:
						return false
					}
					return true
				})
				if !haveMin || !haveTTL {
					p.fail(tp, "needs both min and ttl")
				}
				c.Tiers = append(c.Tiers, t)
			}
		default:
			return false
		}
		return true
	})
	if c.Path == "" || !gjsonPathOK(c.Path) {
		p.fail(path+".path", "is required: the gjson path of the score in the response")
	}
	if len(c.Tiers) == 0 {
		p.fail(path+".tiers", "must list at least one {min, ttl} tier")
	}
	sort.Slice(c.Tiers, func(i, j int) bool { return c.Tiers[i].Min > c.Tiers[j].Min })
	for i := 1; i < len(c.Tiers); i++ {
		if c.Tiers[i].Min == c.Tiers[i-1].Min {
			p.fail(path+".tiers", "two tiers share min %v", c.Tiers[i].Min)
		}
	}
	return c
}

// ---- scalar helpers ----

func (p *parser) str(path string, v gjson.Result) string {
	if v.Type != gjson.String {
		p.fail(path, "must be a string, got %s", short(v.Raw))
		return ""
	}
	return v.Str
}

// token is a string usable in stat names and Cache-Status: [A-Za-z0-9_-].
func (p *parser) token(path string, v gjson.Result) string {
	s := p.str(path, v)
	if s == "" {
		p.fail(path, "must not be empty")
		return s
	}
	for _, c := range s {
		if !(c == '_' || c == '-' || c >= '0' && c <= '9' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z') {
			p.fail(path, "may only contain letters, digits, '_' and '-', got %q", s)
			break
		}
	}
	return s
}

func (p *parser) boolean(path string, v gjson.Result) bool {
	if v.Type != gjson.True && v.Type != gjson.False {
		p.fail(path, "must be true or false, got %s", short(v.Raw))
	}
	return v.Type == gjson.True
}

func (p *parser) float(path string, v gjson.Result) float64 {
	if v.Type != gjson.Number || math.IsInf(v.Num, 0) || math.IsNaN(v.Num) {
		p.fail(path, "must be a number, got %s", short(v.Raw))
		return 0
	}
	return v.Num
}

func (p *parser) floatRange(path string, v gjson.Result, lo, hi float64) float64 {
	f := p.float(path, v)
	if v.Type == gjson.Number && (f < lo || f > hi) {
		p.fail(path, "must be between %v and %v, got %v", lo, hi, f)
	}
	return f
}

func (p *parser) intRange(path string, v gjson.Result, lo, hi int) int {
	if v.Type != gjson.Number || v.Num != math.Trunc(v.Num) {
		p.fail(path, "must be an integer, got %s", short(v.Raw))
		return 0
	}
	if v.Num < float64(lo) || v.Num > float64(hi) {
		p.fail(path, "must be between %d and %d, got %s", lo, hi, v.Raw)
		return 0
	}
	return int(v.Num)
}

// duration accepts Go duration strings ("90s", "5m", "1h30m").
func (p *parser) duration(path string, v gjson.Result, lo, hi time.Duration) time.Duration {
	if v.Type != gjson.String {
		p.fail(path, "must be a duration string such as \"30s\" or \"5m\", got %s", short(v.Raw))
		return 0
	}
	d, err := time.ParseDuration(v.Str)
	if err != nil {
		p.fail(path, "invalid duration %q (use forms like \"30s\", \"5m\", \"1h\")", v.Str)
		return 0
	}
	if d < lo || d > hi {
		p.fail(path, "must be between %v and %v, got %v", lo, hi, d)
		return 0
	}
	return d
}

func (p *parser) array(path string, v gjson.Result) []gjson.Result {
	if !v.IsArray() {
		p.fail(path, "must be an array, got %s", short(v.Raw))
		return nil
	}
	return v.Array()
}

func (p *parser) strList(path string, v gjson.Result) []string {
	var out []string
	for i, e := range p.array(path, v) {
		s := p.str(fmt.Sprintf("%s[%d]", path, i), e)
		if s == "" {
			p.fail(fmt.Sprintf("%s[%d]", path, i), "must not be empty")
		}
		out = append(out, s)
	}
	return out
}

func short(raw string) string {
	if len(raw) > 40 {
		return raw[:40] + "…"
	}
	if raw == "" {
		return "nothing"
	}
	return raw
}

// MatchRoute returns the first route matching method and path, or nil.
// The query string is ignored.
func (c *Config) MatchRoute(method, path string) *Route {
	if i := strings.IndexByte(path, '?'); i >= 0 {
		path = path[:i]
	}
	for _, r := range c.Routes {
		if r.Exact != "" && path != r.Exact {
			continue
		}
		if r.Prefix != "" && !strings.HasPrefix(path, r.Prefix) {
			continue
		}
		for _, m := range r.Methods {
			if m == method {
				return r
			}
		}
	}
	return nil
}

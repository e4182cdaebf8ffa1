package cachecore

import (
	"strings"
	"time"

	"github.com/tidwall/gjson"
)

// The configuration's types, their defaults (per endpoint kind too) and
// route matching. Parsing lives in config_parse.go (the machinery),
// config_sections.go (the document, store, purge, background, routes) and
// config_policy.go (the per-route policy: ttl, coalesce, shadow, slo,
// early_refresh, validation rules, confidence tiers).

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
	// HeaderHold says how a request's body is read before the cache
	// decides (header_hold; see HoldState).
	HeaderHold HeaderHold
	Store      StoreConfig
	Purge      PurgeConfig
	Background BackgroundConfig
	Routes     []*Route
	// L2 is the mesh-wide tier (l2.go); nil: none.
	L2 *L2Config
}

// HeaderHold is the header_hold setting: how a cacheable request waits
// for its body.
type HeaderHold uint8

const (
	// HoldAuto: hold the headers; if the proxy turns out not to deliver
	// bodies while they are held, decide late instead.
	HoldAuto HeaderHold = iota
	// HoldHeaders: always hold the headers (a hit never opens an upstream
	// request); if the proxy cannot, requests pass uncached.
	HoldHeaders
	// HoldLate: let the headers go upstream at once and decide on the
	// body (a hit resets the upstream request opened for it).
	HoldLate
)

// HeaderHoldNames are header_hold's values.
var HeaderHoldNames = [...]string{HoldAuto: "auto", HoldHeaders: "hold", HoldLate: "late"}

func (h HeaderHold) String() string { return HeaderHoldNames[h] }

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
	// L2: the configuration has an l2 tier (its counters apply).
	L2 bool
	// Index is the route's place in Config.Routes (the host's per-route
	// state can be a slice).
	Index int
	// keyTag names how the route selects what its key holds (keyingTag):
	// part of every key, so that entries keyed under another selection
	// are never found.
	keyTag uint64
}

// Policy is every per-route setting; routes inherit "defaults" and override.
type Policy struct {
	TTL             time.Duration
	Statuses        []int
	Shared          bool     // no tenant identity required (public, shared answers)
	ShareAuth       bool     // share_authorities: entries shared across :authority values
	TenantHeaders   []string // identity headers, first present wins
	KeyHeaders      []string // request headers whose values the key holds (key_headers), lower case
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
	Semantic     *Semantic // near-duplicate lookup (semantic.go); nil: exact only

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

	// oneOf: one_of's values by valueKey (indexOneOf): an answer's value
	// is looked up, not compared with every value.
	oneOf map[string]bool
	// oneOfLongest is the longest of oneOf's keys: a value whose key is
	// longer equals none of them.
	oneOfLongest int
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
	// IdleTickPeriod is how often a VM with nothing waiting in it (no
	// paused follower, no held request, no L2) ticks: often enough for
	// the stale-serving window, which is flushed once a second. A
	// tick_period above it is used instead.
	IdleTickPeriod = SLOFlushEvery
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

// MatchRoute returns the first route matching method and path, or nil.
// The query string is ignored. No route's path holds a '?' (ParseConfig
// refuses one), so the query is not searched for, a call on every
// request: a prefix matches a path with its query as it matches the path
// alone, and an exact path is the path when what follows it is nothing
// or the query.
func (c *Config) MatchRoute(method, path string) *Route {
	for _, r := range c.Routes {
		if e := r.Exact; e != "" && !(strings.HasPrefix(path, e) && (len(path) == len(e) || path[len(e)] == '?')) {
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

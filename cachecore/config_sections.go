package cachecore

import (
	"encoding/binary"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"
	"unsafe"

	"github.com/tidwall/gjson"
)

// Parsing of the configuration document's sections: the top level,
// store, purge, background and each route (kind, name, paths, methods).

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
	var routes, l2 gjson.Result
	p.fields("", root, func(key string, v gjson.Result) bool {
		switch key {
		case "cache_name":
			cfg.CacheName = p.token(key, v)
			if c := cfg.CacheName; c != "" && !(c[0] >= 'a' && c[0] <= 'z' || c[0] >= 'A' && c[0] <= 'Z') {
				p.fail(key, "must start with a letter (Cache-Status names the cache with a structured-field token), got %q", c)
			} else if len(c) > 64 {
				p.fail(key, "is %d bytes; at most 64 (it is in every answer's Cache-Status)", len(c))
			}
		case "upstream_cluster":
			cfg.Cluster = p.printable(key, v, "")
		case "upstream_authority":
			cfg.Authority = p.host(key, v)
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
		case "l2":
			l2 = v
		case "header_hold":
			cfg.HeaderHold = p.headerHold(key, v)
		case "defaults":
			defaults = v
		case "routes":
			routes = v
		default:
			return false
		}
		return true
	})
	if l2.Exists() {
		cfg.L2 = p.l2("l2", l2, cfg.Store.MaxEntryBytes)
		if cfg.L2.LeaseTTL > 0 && cfg.L2.LeaseTTL < 4*cfg.TickPeriod { // (0: invalid, said already)
			// A leader renews its cross-proxy lease on its VM's ticks, at
			// the first one after half of lease_ttl has passed
			// (Flight.keepL2Lease): at most three quarters of it, so.
			p.fail("l2.lease_ttl", "must be at least four times tick_period (%v): a leader renews its cross-proxy lease on its VM's ticks, once half of it has passed", cfg.TickPeriod)
		}
		// The purge log is read on the VM's ticks: a sync_interval below
		// tick_period was one in name only, another proxy's purge
		// reaching this L1 a tick_period late (review Z265). Not set, it
		// is 1s or tick_period if that is longer.
		switch {
		case cfg.L2.SyncInterval == 0:
			cfg.L2.SyncInterval = max(DefaultL2SyncInterval, cfg.TickPeriod)
		case cfg.L2.SyncInterval < cfg.TickPeriod:
			p.fail("l2.sync_interval", "%v is below tick_period (%v): the purge log is read on its VM's ticks; set sync_interval at least tick_period, or leave it out", cfg.L2.SyncInterval, cfg.TickPeriod)
		}
	}
	if !routes.Exists() {
		p.fail("routes", "is required: list the model endpoints to cache")
		return cfg
	}
	if !routes.IsArray() || len(routes.Array()) == 0 {
		p.fail("routes", "must be a non-empty array")
		return cfg
	}
	if n := len(routes.Array()); n > maxRoutes {
		// Each route is checked against every earlier one (routeCovers),
		// and has its stats and keying: bounded, at every VM's start.
		p.fail("routes", "lists %d routes; at most %d", n, maxRoutes)
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
		if defaults.Get("key_fields").Exists() && defaults.Get("ignore_fields").Exists() { // even [] (review Z69)
			p.fail("defaults", "key_fields and ignore_fields exclude each other")
		}
	}
	names, clusterNoted := map[string]bool{}, map[string]bool{}
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
			p.fail(fieldOf(path, rv, defaults, "max_entry_bytes"), "%d exceeds store.max_entry_bytes %d", r.MaxEntryBytes, cfg.Store.MaxEntryBytes)
		}
		if r.MaxEntryBytes == 0 {
			r.MaxEntryBytes = cfg.Store.MaxEntryBytes
		}
		if r.Coalesce.Enabled && r.Coalesce.MaxWait > 0 && cfg.TickPeriod > r.Coalesce.MaxWait {
			// A follower's max_wait is checked on its VM's ticks: it
			// would wait a whole tick_period.
			at := fieldOf(path, rv, defaults, "coalesce.max_wait")
			p.fail("tick_period", "%v is above %s (%v): a follower's wait is checked on its VM's ticks, so it would wait a whole tick_period; set tick_period at most max_wait", cfg.TickPeriod, at, r.Coalesce.MaxWait)
		}
		background := backgroundFrom(path, rv, defaults, r)
		if cfg.Authority != "" && !r.Shared && slices.Contains(r.TenantHeaders, ":authority") && (background != "" || r.PerItem()) {
			// A background call (a refresh, a shadow comparison, a batch's
			// refetch) carries upstream_authority in place of the client's
			// :authority: it would ask as another caller, for an answer
			// stored under the tenant's key (review Z228).
			p.fail(fieldOf(path, rv, defaults, "tenant_headers"), "names the tenant by :authority, but upstream_authority (%q) replaces it in the route's background calls (refreshes, shadow comparisons, a batch's refetch): they would ask as another caller; drop upstream_authority or name the tenant by another header", cfg.Authority)
		}
		if at := background; at != "" && cfg.Cluster == "" && !clusterNoted[at] {
			// Named where it is written: defaults' once, not per route
			// (review Z69).
			clusterNoted[at] = true
			p.fail(at, "stale_while_revalidate, early_refresh and shadow make background calls: set upstream_cluster")
		}
		for _, q := range cfg.Routes {
			if routeCovers(q, r) {
				p.fail(path, "is never matched: route %q comes first and takes every request it would (the first route that matches wins)", q.Name)
				break
			}
		}
		r.L2 = cfg.L2 != nil
		if r.L2 && !r.Kind.spec().perItem { // per-item routes are L1 only
			// A copy in L2 is served only while fresh for longer than the
			// slack: a shorter life would be written and led across the
			// mesh for nothing (another proxy waits for an answer it then
			// cannot use).
			if r.TTL <= cfg.L2.TTLSlack {
				p.fail(fieldOf(path, rv, defaults, "ttl"), "%s is not above l2.ttl_slack (%s): no copy in L2 could ever be served", r.TTL, cfg.L2.TTLSlack)
			}
			if c := r.Confidence; c != nil {
				for _, tier := range c.Tiers {
					if tier.TTL <= cfg.L2.TTLSlack {
						p.fail(fieldOf(path, rv, defaults, "confidence")+".tiers", "the ttl of the tier of min %g, %s, is not above l2.ttl_slack (%s): no copy in L2 could ever be served", tier.Min, tier.TTL, cfg.L2.TTLSlack)
					}
				}
			}
		}
		r.Index = len(cfg.Routes)
		cfg.Routes = append(cfg.Routes, r)
	}
	if cfg.Purge.Path != "" || cfg.Purge.Token != "" {
		if cfg.Purge.Path == "" || !strings.HasPrefix(cfg.Purge.Path, "/") {
			p.fail("purge.path", "must be an absolute path")
		} else if strings.ContainsAny(cfg.Purge.Path, "?#") {
			p.fail("purge.path", "must not hold a query or fragment: requests are matched on their path alone")
		}
		if len(cfg.Purge.Token) < 16 {
			p.fail("purge.token", "must be at least 16 characters (required with purge.path: without both there is no purge API)")
		} else if strings.TrimSpace(cfg.Purge.Token) != cfg.Purge.Token {
			// HTTP strips white space around a header value, and
			// PurgeAuthorized trims the token it reads: one with
			// white space at either end can never be presented.
			p.fail("purge.token", "must not start or end with white space: no Authorization header can carry it, and every purge would be refused")
		} else if strings.ContainsFunc(cfg.Purge.Token, func(r rune) bool { return r < 0x20 || r == 0x7f }) {
			p.fail("purge.token", "must not hold a control character: no Authorization header can carry it, and every purge would be refused")
		}
		for _, r := range cfg.Routes {
			if cfg.Purge.Path != "" && (cfg.Purge.Path == r.Exact || cfg.Purge.Path == r.Prefix) { // (none: an error of its own; review Z201)
				p.fail("purge.path", "is route %q's own path: its requests there would all be taken as purge calls", r.Name)
			}
		}
	}
	return cfg
}

// maxBuckets and maxWays bound store.buckets and store.ways (a bucket's
// ways are a 64-bit mask in Table.remove).
const (
	maxBuckets = 1 << 20
	maxWays    = 64
)

func (p *parser) store(path string, v gjson.Result, s *StoreConfig) {
	p.fields(path, v, func(key string, v gjson.Result) bool {
		sub := join(path, key)
		switch key {
		case "buckets":
			s.Buckets = p.intRange(sub, v, 1, maxBuckets)
		case "ways":
			s.Ways = p.intRange(sub, v, 1, maxWays)
		case "max_entry_bytes":
			s.MaxEntryBytes = p.intRange(sub, v, 1024, 64<<20)
		case "lease_slots":
			s.LeaseSlots = p.intRange(sub, v, 1, maxLeaseSlots)
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
			pc.Path = p.printable(sub, v, pathNote)
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

// kindPolicy is kind's defaults with the configuration's defaults
// applied: read once per kind, then copied to each route of the kind. The
// copies share its lists and objects: a route's own field replaces them,
// and an object merged over the defaults' (shadow, freshness_slo) is
// copied first, so that none is written through a copy.
func (p *parser) kindPolicy(kind Kind, defaults gjson.Result) Policy {
	if pol, ok := p.kindPolicies[kind]; ok {
		return pol
	}
	pol := kindDefaults(kind)
	if defaults.Exists() {
		// Errors in defaults were reported once by config().
		q := &parser{}
		q.fields("defaults", defaults, func(key string, v gjson.Result) bool {
			return q.policyField("defaults."+key, key, v, &pol)
		})
	}
	if p.kindPolicies == nil {
		p.kindPolicies = map[Kind]Policy{}
	}
	p.kindPolicies[kind] = pol
	return pol
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
	r.Policy = p.kindPolicy(r.Kind, defaults)
	p.fields(path, v, func(key string, val gjson.Result) bool {
		sub := join(path, key)
		switch key {
		case "name":
			r.Name = p.token(sub, val)
			if len(r.Name) > maxRouteName {
				// It names the route's keys in shared data and its stats:
				// the memory bound counts it at this length.
				p.fail(sub, "is %d bytes; at most %d", len(r.Name), maxRouteName)
			}
		case "kind":
		case "path_prefix":
			r.Prefix = p.printable(sub, val, pathNote)
		case "path_exact":
			r.Exact = p.printable(sub, val, pathNote)
		case "methods":
			r.Methods = p.strList(sub, val)
			for i, m := range r.Methods {
				if m == "" || strings.ToUpper(m) != m || strings.IndexFunc(m, func(c rune) bool { return !isTokenChar(c) }) >= 0 {
					p.fail(fmt.Sprintf("%s[%d]", sub, i), "must be an upper-case HTTP method, got %q", m)
				}
			}
			if len(r.Methods) == 0 {
				p.fail(sub, "must list at least one method")
			}
			if len(r.Methods) > maxRouteMethods {
				// Every request scans its route's list (MatchRoute), and
				// the check for routes never matched compares every
				// earlier route's: 40,000 methods on two routes took
				// seconds to parse (review Z105).
				p.fail(sub, "lists %d methods, more than %d", len(r.Methods), maxRouteMethods)
				r.Methods = r.Methods[:maxRouteMethods]
			}
			slices.Sort(r.Methods)
			r.Methods = slices.Compact(r.Methods) // a set: sorted for routeCovers
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
	case strings.ContainsAny(r.Prefix, "?#"):
		p.fail(path+".path_prefix", "must not hold a query or fragment: requests are matched on their path alone")
	case strings.ContainsAny(r.Exact, "?#"):
		p.fail(path+".path_exact", "must not hold a query or fragment: requests are matched on their path alone")
	}
	if r.Kind.spec().perItem {
		p.perItemPolicy(path, v, r)
	}
	if sh, spec := r.Shadow, r.Kind.spec(); sh != nil && (sh.Compare == "numeric" || sh.Compare == "cosine") &&
		spec.shadowCompare == "text" && slices.Equal(sh.Paths, spec.shadowPaths) {
		// The text of a completion holds no numbers to compare: cosine
		// found identical answers diverging, numeric any two agreeing
		// (review Z201).
		p.fail(fieldOf(path, v, defaults, "shadow.compare"), "%q compares numbers, and a %s route's default shadow paths hold text (%s): compare text, or name the paths that hold numbers in shadow.paths",
			sh.Compare, r.Kind, strings.Join(sh.Paths, ", "))
	}
	// A route's own list replaces the other kind of list it inherits from
	// defaults; written both on the route, they contradict each other.
	switch ownKeys, ownIgnore := v.Get("key_fields").Exists(), v.Get("ignore_fields").Exists(); {
	case ownKeys && ownIgnore: // even key_fields [] (review Z69)
		p.fail(path, "key_fields and ignore_fields exclude each other")
	case ownIgnore && !ownKeys:
		r.KeyFields = nil
	case ownKeys && !ownIgnore:
		// Even [] ("all fields"): the kind's own ignore list, not the
		// inherited one (review Z20).
		r.IgnoreFields, r.ignoreSet = cloneStrings(r.Kind.spec().ignoreFields), false
	}
	if len(r.KeyFields) > 0 {
		r.IgnoreFields = nil // an allowlist replaces the kind's ignore list
	}
	if len(r.KeyFields) > 0 && !slices.Contains(r.KeyFields, r.ModelPath) && !strings.Contains(r.ModelPath, ".") {
		p.fail(fieldOf(path, v, defaults, "key_fields"), "must include the model field %q", r.ModelPath)
	}
	for _, q := range r.Kind.spec().question {
		if len(r.KeyFields) > 0 && !slices.Contains(r.KeyFields, q) {
			p.fail(fieldOf(path, v, defaults, "key_fields"), "must include %q, what a %s request asks (without it every request to a model shares one key)", q, r.Kind)
		}
		if slices.Contains(r.IgnoreFields, q) {
			p.fail(fieldOf(path, v, defaults, "ignore_fields"), "must not name %q, what a %s request asks (without it every request to a model shares one key)", q, r.Kind)
		}
	}
	// A Go server (encoding/json) reads a member whose name is another's
	// but for case as that one: "Messages" is its question, "N" its n.
	// Ignored, such a member left the key while the model answered it
	// (review Z140). The model's member and the fields that set the
	// answer's form are kept whatever ignore_fields says (keepAlways), but
	// only under their own spelling.
	// A list routes share (inherited from defaults) is checked once per
	// kind and model field: checked for each route, a long one cost its
	// length times the routes (review Z201).
	if ck := (foldCheck{unsafe.SliceData(r.IgnoreFields), len(r.IgnoreFields), r.Kind, r.ModelPath}); len(r.IgnoreFields) > 0 && !p.foldChecked[ck] {
		if p.foldChecked == nil {
			p.foldChecked = map[foldCheck]bool{}
		}
		p.foldChecked[ck] = true
		kept := slices.Concat(r.Kind.spec().question, r.Kind.spec().formKeyed, []string{r.ModelPath})
		for _, name := range r.IgnoreFields {
			for _, k := range kept {
				if name != k && strings.EqualFold(name, k) {
					p.fail(fieldOf(path, v, defaults, "ignore_fields"), "must not name %q: a Go server reads it as %q, which the key must hold", name, k)
				}
			}
		}
	}
	// (A nested model path's top-level member, params for params.model,
	// may hold the inputs too: key_fields ["params"] is taken as written.)
	if spec := r.Kind.spec(); len(r.KeyFields) > 0 && len(spec.question) == 0 && !spec.perItem && v.Get("key_fields").Exists() &&
		!slices.ContainsFunc(r.KeyFields, func(f string) bool { return f != r.ModelPath }) {
		// Its own key_fields naming the model alone keyed every input to
		// it alike (review Z184), as an inherited list did (below).
		p.fail(join(path, "key_fields"), "names only the model's member: a %s route's key_fields must name the fields its requests ask in (such as inputs or instances), or every request to a model shares one key", r.Kind)
	}
	if spec := r.Kind.spec(); len(r.KeyFields) > 0 && len(spec.question) == 0 && !spec.perItem && !v.Get("key_fields").Exists() {
		// A classify or json route names no question the check above could
		// hold an allowlist to: one inherited from defaults was written
		// for other kinds (["model","messages"]), and keyed every input to
		// a classifier alike (review Z139). (An embeddings route keys its
		// input whatever key_fields says: perItem.)
		p.fail(fieldOf(path, v, defaults, "key_fields"), "is inherited from defaults: a %s route must write its own key_fields, with the fields its requests ask in (such as inputs or instances), or every request to a model may share one key", r.Kind)
	}
	p.keyHeadersOfRoute(path, v, r)
	if p.tagMemo == nil {
		p.tagMemo = setMemo{}
	}
	r.keyTag = keyingTagWith(r, p.tagMemo)
	return r
}

// backgroundFrom names where route r's background calls are configured
// (stale_while_revalidate, early_refresh, shadow): path if the route
// writes one of them itself, else the first one defaults gives it; "" if
// it makes none.
func backgroundFrom(path string, route, defaults gjson.Result, r *Route) string {
	at := ""
	for _, f := range []struct {
		key string
		set bool
	}{
		{"stale_while_revalidate", r.StaleWhileReval > 0},
		{"early_refresh", r.EarlyRefresh.Enabled},
		{"shadow", r.Shadow != nil && r.Shadow.Sample > 0},
	} {
		switch {
		case !f.set:
		case route.Get(f.key).Exists():
			return path
		case at == "" && defaults.Get(f.key).Exists():
			at = "defaults." + f.key
		case at == "":
			at = path
		}
	}
	return at
}

// fieldOf names where the value of a route's field (a path in the route
// object) is written: on the route, else in defaults, which the route
// inherits it from; an error names the field the operator can find.
func fieldOf(path string, route, defaults gjson.Result, field string) string {
	if !route.Get(field).Exists() && defaults.Get(field).Exists() {
		return "defaults." + field
	}
	return path + "." + field
}

// keyHeadersOfRoute refuses a key header that is one of the route's
// tenant headers: on a tenant route its value is keyed already (hashed);
// on a shared one it is a credential, which a key would keep as sent. The
// error names the list it came from: the route's, or defaults'.
func (p *parser) keyHeadersOfRoute(path string, v gjson.Result, r *Route) {
	at, whose := path+".key_headers", "the route's tenant header"
	if !v.Get("key_headers").Exists() {
		at, whose = "defaults.key_headers", "a tenant header of route "+strconv.Quote(r.Name)
	}
	for i, name := range r.KeyHeaders {
		if !slices.Contains(r.TenantHeaders, name) || credentialHeader(name) { // refused already
			continue
		}
		sub := fmt.Sprintf("%s[%d]", at, i)
		if r.Shared {
			p.fail(sub, "%q is in tenant_headers: a credential, which key_headers would keep in keys as sent; key callers apart with \"shared\": false", name)
		} else {
			p.fail(sub, "%q is %s, keyed already (hashed)", name, whose)
		}
	}
}

// keyingTag digests what decides which of a request's fields its key
// holds: the kind, key_fields, ignore_fields and model_path, and which
// request headers (key_headers; an empty list adds nothing, so a route
// without them keeps its tag). Shared data outlives a configuration
// change, so an operator who takes a field out of ignore_fields (it did
// change answers) would otherwise have requests without it served the
// answers stored for requests with it, until their ttl. Not secret: keys
// are compared whole, and two selections with one tag only keep the old
// behaviour.
func keyingTag(r *Route) uint64 { return keyingTagWith(r, nil) }

// setMemo keeps the digest bytes of lists as sets (appendSet), by the
// list's backing array and length: the routes that inherit a list from
// defaults share it, and 1,024 routes sorting defaults' 2,000 stored
// headers each took seconds to start (TestConfigDefaultsTimesRoutesIsBounded).
type setMemo map[setMemoKey][]byte

// foldCheck names an ignore_fields list (its memory and length) checked
// against a kind's kept fields and a model field.
type foldCheck struct {
	at    *string
	n     int
	kind  Kind
	model string
}

type setMemoKey struct {
	at unsafe.Pointer
	n  int
	// kind and allow name a forced-fields digest (forcedDigest) of the
	// list; zero for the list's own set.
	kind  Kind
	allow byte
}

// keyingTagWith is keyingTag, the sets' digests kept in memo (nil: none).
func keyingTagWith(r *Route, memo setMemo) uint64 {
	var b []byte
	b = appendLV(b, string(r.Kind))
	b = appendLV(b, r.ModelPath)
	// Field lists are sets: reordered, they key as before (review Z170).
	b = memo.appendSet(b, r.KeyFields)
	b = memo.appendSet(b, r.IgnoreFields)
	// The fields the kind keys as sent whatever those lists say, where
	// that changes the route's keys: the ones its key_fields leave out, or
	// its ignore_fields name. A module that keys more of them files such a
	// route's answers under other keys, and never reads the entries a
	// module keying fewer filed (in shared data kept across the upgrade,
	// or an L2 shared mid-rollout; review Z232); a route they do not
	// change keeps its tag, and its entries, across such a module (review
	// Z234). A batch's items are keyed from every field whatever its
	// key_fields say, but without those its ignore_fields name (review
	// Z236).
	switch {
	case len(r.KeyFields) > 0 && !r.PerItem():
		b = memo.forcedDigest(b, r.KeyFields, r.Kind, 'K')
	case len(r.KeyFields) == 0 && r.ignoreSet:
		b = memo.forcedDigest(b, r.IgnoreFields, r.Kind, 'I')
	}
	if len(r.KeyHeaders) > 0 {
		b = append(b, 'H')
		b = binary.LittleEndian.AppendUint32(b, uint32(len(r.KeyHeaders)))
		for _, h := range r.KeyHeaders {
			b = appendLV(b, h)
		}
	}
	return fnv64(string(appendAdmission(b, r, memo)))
}

// appendAdmission appends to keyingTag's bytes what decides which answers
// are stored and what a hit replays: statuses, finish_reasons, the
// validation rules, the confidence path and tiers and stored_headers.
// Checked only as an answer is stored, a reload that tightened them kept
// serving, until their ttl, the answers stored under the old ones — a
// length-cut answer after finish_reasons dropped "length", a header taken
// out of stored_headers replayed to every caller (review Z159). A change
// of any of them starts the route's cache afresh, as one of its keying.
//
// Each list is digested as a set (sorted, each value once): a reload that
// only reorders one, or names a value twice, stores what it stored before
// and keeps the cache (review Z168).
func appendAdmission(b []byte, r *Route, memo setMemo) []byte {
	b = append(b, 'A')
	statuses := slices.Compact(slices.Sorted(slices.Values(r.Statuses)))
	b = binary.LittleEndian.AppendUint32(b, uint32(len(statuses)))
	for _, st := range statuses {
		b = binary.LittleEndian.AppendUint32(b, uint32(st))
	}
	b = memo.appendSet(b, r.FinishReasons)
	b = memo.appendSet(b, r.StoredHeaders)
	if c := r.Confidence; c != nil {
		b = appendLV(append(b, 'C'), c.Path)
		b = binary.LittleEndian.AppendUint32(b, uint32(len(c.Tiers)))
		for _, t := range c.Tiers {
			b = binary.LittleEndian.AppendUint64(b, math.Float64bits(t.Min))
			b = binary.LittleEndian.AppendUint64(b, uint64(t.TTL))
		}
	}
	if len(r.Rules) == 0 {
		return appendSet(b, nil)
	}
	k := setMemoKey{at: unsafe.Pointer(&r.Rules[0]), n: len(r.Rules)}
	if d, ok := memo[k]; ok {
		return append(b, d...)
	}
	rules := make([]string, len(r.Rules))
	for i := range r.Rules {
		rules[i] = string(appendRule(nil, &r.Rules[i]))
	}
	d := appendSet(nil, rules)
	if memo != nil {
		memo[k] = d
	}
	return append(b, d...)
}

// appendSet is the package's appendSet, its digest kept in m by vs's
// backing array (m nil: none kept).
func (m setMemo) appendSet(b []byte, vs []string) []byte {
	if len(vs) == 0 || m == nil {
		return appendSet(b, vs)
	}
	k := setMemoKey{at: unsafe.Pointer(unsafe.SliceData(vs)), n: len(vs)}
	d, ok := m[k]
	if !ok {
		d = appendSet(nil, vs)
		m[k] = d
	}
	return append(b, d...)
}

// forcedDigest appends the set of kind's form-keyed fields that list
// changes: those an allowlist (allow 'K') leaves out, or an ignore list
// ('I') names; nothing when none. Worked out once per list and kind (a
// list inherited from defaults is shared by every route: review Z236).
func (m setMemo) forcedDigest(b []byte, list []string, kind Kind, allow byte) []byte {
	k := setMemoKey{unsafe.Pointer(unsafe.SliceData(list)), len(list), kind, allow}
	if d, ok := m[k]; ok {
		return append(b, d...)
	}
	in := make(map[string]bool, len(list)) // work linear in the list
	for _, f := range list {
		in[f] = true
	}
	var forced []string
	for _, f := range kind.spec().formKeyed {
		if in[f] != (allow == 'K') {
			forced = append(forced, f)
		}
	}
	var d []byte
	if len(forced) > 0 {
		d = appendSet([]byte{'F'}, forced)
	}
	if m != nil {
		m[k] = d
	}
	return append(b, d...)
}

// appendSet appends the set of strings vs: sorted, each once.
func appendSet(b []byte, vs []string) []byte {
	set := slices.Compact(slices.Sorted(slices.Values(vs)))
	b = binary.LittleEndian.AppendUint32(b, uint32(len(set)))
	for _, v := range set {
		b = appendLV(b, v)
	}
	return b
}

// appendRule appends one validation rule, each field set or not.
func appendRule(b []byte, ru *Rule) []byte {
	b = appendLV(appendLV(b, ru.Path), ru.Type)
	b = appendBool(appendBool(b, ru.NonEmpty), ru.Exists != nil)
	if ru.Exists != nil {
		b = appendBool(b, *ru.Exists)
	}
	if b = appendBool(b, ru.Equals != nil); ru.Equals != nil {
		b = appendLV(b, ru.Equals.Raw)
	}
	oneOf := make([]string, len(ru.OneOf))
	for i, v := range ru.OneOf {
		oneOf[i] = v.Raw
	}
	b = appendSet(b, oneOf) // a set, as indexOneOf reads it (review Z170)
	for _, f := range [...]*float64{ru.Min, ru.Max} {
		if b = appendBool(b, f != nil); f != nil {
			b = binary.LittleEndian.AppendUint64(b, math.Float64bits(*f))
		}
	}
	for _, n := range [...]*int{ru.MinItems, ru.MaxItems} {
		if b = appendBool(b, n != nil); n != nil {
			b = binary.LittleEndian.AppendUint64(b, uint64(*n))
		}
	}
	return b
}

func appendBool(b []byte, v bool) []byte {
	if v {
		return append(b, 1)
	}
	return append(b, 0)
}

// perItemPolicy refuses, on a route cached item by item (embeddings),
// what it cannot do: each item is served only while fresh and stored for
// the route's ttl, so stale windows, early refresh and confidence tiers
// would do nothing, and a shadow compares vectors by cosine alone. Set on
// the route they are errors; inherited from defaults, where they serve the
// other routes, they are dropped.
func (p *parser) perItemPolicy(path string, v gjson.Result, r *Route) {
	for _, f := range []struct {
		key string
		set bool
	}{
		{"stale_while_revalidate", r.StaleWhileReval > 0},
		{"stale_if_error", r.StaleIfError > 0},
		{"early_refresh", r.EarlyRefresh.Enabled},
		{"confidence", r.Confidence != nil},
	} {
		if f.set && v.Get(f.key).Exists() {
			p.fail(join(path, f.key), "does nothing on a %s route: its items are cached one by one, served only while fresh and stored for the route's ttl", r.Kind)
		}
	}
	r.StaleWhileReval, r.StaleIfError, r.EarlyRefresh.Enabled, r.Confidence = 0, 0, false, nil
	if r.Shadow != nil {
		// A batch's shadow pairs each item with its fresh vector and
		// compares them by cosine (min_cosine), whatever compare and paths
		// say: another comparator written on the route was accepted and
		// never used, and a vector twice as long agreed (review Z105).
		if c := v.Get("shadow.compare"); c.Exists() && c.String() != "cosine" {
			p.fail(join(path, "shadow.compare"), "does not apply on a %s route: each item's vector is compared with its fresh one by cosine (min_cosine)", r.Kind)
		}
		if v.Get("shadow.paths").Exists() {
			p.fail(join(path, "shadow.paths"), "does not apply on a %s route: each item's vector is compared with its fresh one by cosine (min_cosine)", r.Kind)
		}
		sh := *r.Shadow // perhaps defaults', which the other routes share
		sh.Compare, sh.Paths = r.Kind.spec().shadowCompare, nil
		r.Shadow = &sh
	}
}

// headerHold parses header_hold: "auto", "hold" or "late".
func (p *parser) headerHold(path string, v gjson.Result) HeaderHold {
	s := p.str(path, v)
	for h, name := range HeaderHoldNames {
		if s == name {
			return HeaderHold(h)
		}
	}
	if v.Type == gjson.String {
		p.fail(path, "must be one of %s, got %q", strings.Join(HeaderHoldNames[:], ", "), s)
	}
	return HoldAuto
}

// routeCovers reports whether q matches every request r matches, so that
// r, coming after q, never matches (MatchRoute takes the first).
func routeCovers(q, r *Route) bool {
	if r.Exact != "" {
		if !((q.Exact == "" || q.Exact == r.Exact) && strings.HasPrefix(r.Exact, q.Prefix)) {
			return false
		}
	} else if !(q.Exact == "" && strings.HasPrefix(r.Prefix, q.Prefix)) {
		return false
	}
	// r's methods a subset of q's: both sorted sets (the methods field),
	// compared in one pass.
	i := 0
	for _, m := range r.Methods {
		for i < len(q.Methods) && q.Methods[i] < m {
			i++
		}
		if i == len(q.Methods) || q.Methods[i] != m {
			return false
		}
	}
	return true
}

// maxRouteMethods bounds a route's methods.
const maxRouteMethods = 32

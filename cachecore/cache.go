package cachecore

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"math"
	"strings"
	"time"

	"github.com/tidwall/gjson"
)

// Cache is one VM's handle on the shared cache: the policy engine the filter
// drives. Everything that decides — keys, namespaces, freshness, admission —
// is here; the filter only moves bytes between Envoy and these methods.
// A Cache is not safe for concurrent use (one per VM); any number of Caches
// may share one Store.
type Cache struct {
	cfg    *Config
	store  Store
	table  *Table
	leases *LeaseTable
	bg     *BackgroundSlots
	now    func() time.Time
	rand   func() uint64
	canon  Canonicalizer
	dups   duplicateMembers // answers' duplicate member names (jsonbound.go)
	hk     *hashKeys        // the process secret's keys, once loaded (secret.go)

	slo         map[*Route]*sloCounts       // this VM's unflushed SLO counts
	shadowSlots map[*Route]*BackgroundSlots // per-route shadow limiters
	tenants     map[tenantKey][32]byte      // recently seen credentials' hashes
	refreshN    uint32                      // background refreshes started (lease owner ids)
}

// Options injects the store, the clock and the random source, so tests can
// drive time and chance deterministically.
type Options struct {
	Store Store
	Now   func() time.Time
	Rand  func() uint64 // uniformly random 64-bit values
}

// New returns a Cache over opts.Store with the given configuration.
func New(cfg *Config, opts Options) *Cache {
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Rand == nil {
		panic("cachecore: Options.Rand is required")
	}
	table := NewTable(opts.Store, cfg.Store.Buckets, cfg.Store.Ways)
	table.SetTenantShare(cfg.Store.MaxTenantShare)
	return &Cache{
		cfg:    cfg,
		store:  opts.Store,
		table:  table,
		leases: NewLeaseTable(opts.Store, cfg.Store.LeaseSlots),
		bg:     NewBackgroundSlots(opts.Store, cfg.Background.MaxConcurrent),
		now:    opts.Now,
		rand:   opts.Rand,
	}
}

// Config returns the configuration.
func (c *Cache) Config() *Config { return c.cfg }

// Background returns the process-wide limiter of background calls.
func (c *Cache) Background() *BackgroundSlots { return c.bg }

// NowMs is the cache's clock in unix milliseconds.
func (c *Cache) NowMs() int64 { return c.nowMs() }

// Table exposes the slot table (diagnostics, purge, tests).
func (c *Cache) Table() *Table { return c.table }

func (c *Cache) nowMs() int64 { return c.now().UnixMilli() }

// Request is the cache's state for one HTTP request. The filter keeps it in
// the stream context; it must not be shared between VMs.
type Request struct {
	Route  *Route
	Method string
	Path   string
	CC     RequestCC

	// Status and Reason record what happened; they drive Cache-Status,
	// stats and logs.
	Status Status
	Reason Reason

	tenant     [32]byte
	authority  string // lower-cased :authority; "" on share_authorities routes
	keyHeaders []string

	Model  string
	Stream bool
	Body   []byte // the request body (for replays)

	canonical []byte
	state     ModelState
	Key       []byte // full identity: namespace + canonical body
	FP        uint64
	stableLen int
	leaseFP   uint64
	hk        *hashKeys

	// Entry is the entry found by Lookup (fresh or stale), if any. On a
	// Serve decision its byte slices alias the VM's scratch buffer until
	// the next lookup: use them at once, or KeepEntry.
	Entry *Entry
	entry Entry

	batch *embBatch // embeddings routes: the per-item view
	// kindView is what the route kind's parse read from the request for
	// its admission (kinds.go), e.g. a *rerankRequest.
	kindView any

	keepBody bool // the upstream must get the body as sent (KeepBody)
}

// KeepBody says the request body cannot be rewritten (the filter holds no
// whole copy in Envoy's buffer): an embeddings batch with some items cached
// is then fetched whole instead of cut to its missing items.
func (r *Request) KeepBody() { r.keepBody = true }

// Begin starts a request on route. It reads what it needs from the request
// headers and decides whether the request may use the cache at all; if not,
// req.Status is StatusBypass with a reason.
func (c *Cache) Begin(route *Route, method, path string, headers [][2]string) *Request {
	req := &Request{Route: route, Method: method, Path: path, Status: StatusMiss}
	if route.HonorCacheCtl {
		if v, ok := header(headers, "cache-control"); ok {
			req.CC = ParseRequestCC(v)
		}
		if v, ok := header(headers, "pragma"); ok && !req.CC.NoCache && strings.Contains(strings.ToLower(v), "no-cache") {
			req.CC.NoCache = true // HTTP/1.0 clients
		}
	}
	if req.CC.NoStore {
		return req.bypass(ReasonRequestNoStore)
	}
	if !route.Shared {
		name, value, ok := tenantHeader(headers, route.TenantHeaders)
		if !ok {
			return req.bypass(ReasonNoIdentity)
		}
		req.tenant = c.tenantHash(name, value)
	}
	if req.CC.NoCache {
		req.Status = StatusRevalidate
	}
	if !route.ShareAuth {
		// Virtual hosts may route one path to different model builds:
		// an answer is never served through another authority.
		a, ok := header(headers, ":authority")
		if !ok {
			a, _ = header(headers, "host")
		}
		req.authority = lowerASCII(a)
	}
	return req
}

// lowerASCII lower-cases host names (case-insensitive), allocating only
// when there is something to change.
func lowerASCII(s string) string {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c >= 'A' && c <= 'Z' {
			return strings.ToLower(s)
		}
	}
	return s
}

// tenantHash is SHA-256 over the identity header's name and value: no
// credential is ever stored, and two tenants can never share a namespace.
// A VM sees few distinct credentials, so recent ones are remembered (a
// bounded map, reset when full) to spare the hash on every request.
func (c *Cache) tenantHash(name, value string) [32]byte {
	if len(value) <= maxRememberedCredential {
		if h, ok := c.tenants[tenantKey{name, value}]; ok {
			return h
		}
	}
	var sum [32]byte
	h := sha256.New()
	h.Write([]byte("modelcache tenant\x00"))
	h.Write([]byte(name))
	h.Write([]byte{0})
	h.Write([]byte(value))
	h.Sum(sum[:0])
	if len(value) <= maxRememberedCredential {
		if c.tenants == nil || len(c.tenants) >= maxRememberedTenants {
			c.tenants = make(map[tenantKey][32]byte, maxRememberedTenants)
		}
		// Clone: header strings alias the host's buffer of the whole map.
		c.tenants[tenantKey{strings.Clone(name), strings.Clone(value)}] = sum
	}
	return sum
}

type tenantKey struct{ name, value string }

const (
	maxRememberedTenants    = 256
	maxRememberedCredential = 512
)

func (r *Request) bypass(reason Reason) *Request {
	r.Status, r.Reason = StatusBypass, reason
	return r
}

// Bypassed reports whether the request no longer uses the cache.
func (r *Request) Bypassed() bool { return r.Status == StatusBypass }

func header(h [][2]string, name string) (string, bool) {
	for _, kv := range h {
		if kv[0] == name {
			return kv[1], true
		}
	}
	return "", false
}

// tenantHeader returns the first configured identity header that is present
// and non-empty.
func tenantHeader(h [][2]string, names []string) (string, string, bool) {
	for _, n := range names {
		if v, ok := header(h, n); ok && strings.TrimSpace(v) != "" {
			return n, v, true
		}
	}
	return "", "", false
}

// SetBody keys the request from its complete body. On failure the request is
// bypassed with the reason (too large, not JSON, …).
func (c *Cache) SetBody(req *Request, body []byte) {
	if req.Bypassed() {
		return
	}
	if len(body) == 0 {
		req.bypass(ReasonNoBody)
		return
	}
	if len(body) > c.cfg.MaxRequestBytes {
		req.bypass(ReasonBodyTooLarge)
		return
	}
	req.Body = body
	sel := Selection{Only: req.Route.KeyFields, Ignore: req.Route.IgnoreFields, Capture: captureFields(req.Route)}
	if cap(req.canonical) < len(body) {
		req.canonical = make([]byte, 0, len(body)) // canonical JSON is rarely longer
	}
	canon, err := c.canon.Append(req.canonical[:0], body, &sel)
	if err != nil {
		req.bypass(canonReason(err))
		return
	}
	req.canonical = canon
	// "stream" and a top-level model field come from the canonicaliser's
	// single pass; a nested model path needs gjson.
	v, _ := c.canon.Captured(0)
	req.Stream = string(v) == "true"
	if len(sel.Capture) > 1 {
		if v, ok := c.canon.Captured(1); ok {
			req.Model = canonicalString(v)
		} else {
			req.Model = ""
		}
	} else {
		req.Model = gjson.GetBytes(body, req.Route.ModelPath).String()
	}
	if parse := req.Route.Kind.spec().parse; parse != nil {
		if r := parse(c, req, body); r != ReasonNone {
			req.bypass(r)
			return
		}
	}
	st, err := c.loadModel(req.Route.Name, req.Model)
	if err != nil {
		req.bypass(ReasonInternal)
		return
	}
	req.state = st
	c.buildKey(req)
}

// captureFields asks the canonicaliser for "stream" and, when it is a
// plain top-level name, the model field.
func captureFields(r *Route) []string {
	if isPlainField(r.ModelPath) {
		return []string{"stream", r.ModelPath}
	}
	return []string{"stream"}
}

func isPlainField(path string) bool {
	for i := 0; i < len(path); i++ {
		switch c := path[i]; {
		case c == '_' || c == '-' || c >= '0' && c <= '9' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z':
		default:
			return false
		}
	}
	return path != ""
}

// canonicalString decodes a canonical JSON value as gjson's String would:
// a string's contents, or any other value's JSON text.
func canonicalString(v []byte) string {
	if len(v) >= 2 && v[0] == '"' && !bytes.ContainsRune(v, '\\') {
		return string(v[1 : len(v)-1])
	}
	return gjson.ParseBytes(v).String()
}

func canonReason(err error) Reason {
	switch {
	case errors.Is(err, ErrDuplicateKey):
		return ReasonDuplicateKey
	case errors.Is(err, ErrTooDeep):
		return ReasonTooDeep
	case errors.Is(err, ErrNumberRange):
		return ReasonNumberRange
	}
	return ReasonMalformedJSON
}

// buildKey assembles the full identity. Every variable-length part is
// length-prefixed (or, for the version, length-suffixed), so distinct parts
// can never concatenate to the same key:
//
//	"K1" route method path authority tenant(32) model stream(S|N) canonical | version(16) gen(8)
//
// The part before the version — the request itself, without the model
// state — is what single flight coalesces on (LeaseFP): a version change or
// a purge must not split followers from their leader.
func (c *Cache) buildKey(req *Request) {
	if need := len(req.canonical) + len(req.Route.Name) + len(req.Method) + len(req.Path) + len(req.authority) + len(req.Model) +
		versionIDLen + 80; cap(req.Key) < need {
		req.Key = make([]byte, 0, need)
	}
	k := req.appendNamespace(req.Key[:0], 'K')
	// Streamed and non-streamed answers never share an entry, even when
	// key_fields leaves "stream" out.
	if req.Stream {
		k = append(k, 'S')
	} else {
		k = append(k, 'N')
	}
	k = append(k, req.canonical...)
	req.stableLen = len(k)
	k = req.appendState(k)
	req.Key = k
	req.hk = c.hk
	req.FP = c.fingerprint(k)
}

// appendNamespace starts a key: kind of key, then route, method, path,
// authority, tenant and model, each length-prefixed (the tenant is a fixed
// 32 bytes).
func (req *Request) appendNamespace(k []byte, kind byte) []byte {
	k = append(k, kind, '1')
	k = appendLV(k, req.Route.Name)
	k = appendLV(k, req.Method)
	k = appendLV(k, req.Path)
	k = appendLV(k, req.authority)
	k = append(k, req.tenant[:]...)
	return appendLV(k, req.Model)
}

// appendState ends a key with the model state, fixed-size: the identity
// of the whole model version (zero when none is tracked) and generation.
func (req *Request) appendState(k []byte) []byte {
	k = append(k, req.state.Version[:]...)
	return binary.LittleEndian.AppendUint64(k, req.state.Gen)
}

// LeaseFP identifies the request for single flight: its key without the
// model state, computed on first use (only misses need it).
func (req *Request) LeaseFP() uint64 {
	if req.leaseFP == 0 {
		fp := req.hk.fp.sum64(req.Key[:req.stableLen])
		if fp == 0 {
			fp = 1
		}
		req.leaseFP = fp
	}
	return req.leaseFP
}

func appendLV(b []byte, s string) []byte {
	b = binary.LittleEndian.AppendUint32(b, uint32(len(s)))
	return append(b, s...)
}

// Decision is what to do with a keyed request.
type Decision uint8

const (
	// Forward: go upstream (miss, revalidation, or stale not acceptable).
	Forward Decision = iota
	// Serve: answer from req.Entry now.
	Serve
	// Unavailable: only-if-cached and no acceptable entry: answer 504.
	Unavailable
)

// Lookup decides between serving from cache and forwarding. It sets
// req.Status to StatusHit, StatusStale or StatusMiss and keeps any entry
// found in req.Entry (a stale one is still useful for stale-if-error).
func (c *Cache) Lookup(req *Request) Decision {
	if req.CC.OnlyIfCached && (req.Bypassed() || req.Status == StatusRevalidate) {
		// The client forbids going upstream and the cache cannot answer.
		req.Status = StatusUnavailable
		return Unavailable
	}
	if req.Bypassed() {
		return Forward
	}
	if req.batch != nil {
		if d := c.lookupItems(req); d == Serve {
			req.Status = StatusHit
			return Serve
		}
		switch {
		case req.CC.OnlyIfCached:
			req.Status = StatusUnavailable
			return Unavailable
		case req.Status == StatusRevalidate:
		case req.batch.hits > 0:
			req.Status = StatusPartial
		default:
			req.Status = StatusMiss
		}
		return Forward
	}
	if req.Status == StatusRevalidate {
		return Forward
	}
	now := c.nowMs()
	if req.state.Found {
		found, err := c.table.lookupInto(req.FP, req.Key, now, &req.entry)
		if err != nil {
			req.bypass(ReasonInternal)
			return Forward
		}
		req.Entry = nil
		if found {
			req.Entry = &req.entry
		}
	}
	if e := req.Entry; e != nil {
		switch c.freshness(req, e, now) {
		case fresh:
			req.Status = StatusHit
			return Serve
		case staleAcceptable:
			req.Status = StatusStale
			return Serve
		}
	}
	req.Status = StatusMiss
	if req.CC.OnlyIfCached {
		req.Status = StatusUnavailable
		return Unavailable
	}
	req.KeepEntry() // a stale entry may answer later (stale-if-error)
	return Forward
}

// KeepEntry makes req.Entry independent of the scratch buffer, for an
// entry needed after the current callback (e.g. by a shadow comparison).
func (req *Request) KeepEntry() {
	if req.Entry != nil {
		req.Entry.Detach()
	}
}

type freshState uint8

const (
	fresh freshState = iota
	staleAcceptable
	notAcceptable
)

// freshness applies the entry's TTL and the client's Cache-Control.
func (c *Cache) freshness(req *Request, e *Entry, now int64) freshState {
	age := now - e.StoredAt
	remaining := e.FreshUntil - now
	cc := &req.CC
	clientWantsFresher := (cc.HasMaxAge && age > cc.MaxAge.Milliseconds()) ||
		(cc.HasMinFresh && remaining < cc.MinFresh.Milliseconds())
	if remaining > 0 && !clientWantsFresher {
		return fresh
	}
	if clientWantsFresher && remaining > 0 {
		return notAcceptable
	}
	staleness := now - e.FreshUntil
	if cc.HasMaxStale && (cc.MaxStaleAny || staleness <= cc.MaxStale.Milliseconds()) {
		return staleAcceptable
	}
	if !clientWantsFresher && req.Route.StaleWhileReval > 0 && staleness < req.Route.StaleWhileReval.Milliseconds() {
		return staleAcceptable
	}
	return notAcceptable
}

// EarlyRefresh reports whether this fresh hit should trigger a background
// refresh (XFetch, Vattani et al., VLDB 2015): refresh when
// now − δ·β·ln(U) ≥ expiry, with δ the recompute time stored in the entry
// and U uniform in (0,1]. Hot keys are refreshed shortly before they
// expire, roughly once per TTL, and cold keys almost never.
func (c *Cache) EarlyRefresh(req *Request) bool {
	e := req.Entry
	if e == nil || req.Status != StatusHit || !req.Route.EarlyRefresh.Enabled {
		return false
	}
	u := float64(c.rand()>>11+1) / float64(1<<53) // (0, 1]
	gap := -float64(e.ComputeMs) * req.Route.EarlyRefresh.Beta * math.Log(u)
	return float64(c.nowMs())+gap >= float64(e.FreshUntil)
}

// HitResponse renders the response for a request served from req.Entry:
// the stored status, headers and body plus Age and Cache-Status.
func (c *Cache) HitResponse(req *Request) (status int, headers [][2]string, body []byte) {
	if req.batch != nil {
		return c.embeddingHit(req)
	}
	e := req.Entry
	now := c.nowMs()
	headers = make([][2]string, 0, len(e.Headers)+2)
	headers = append(headers, e.Headers...)
	age := (now - e.StoredAt) / 1000
	if age < 0 {
		age = 0
	}
	headers = append(headers, [2]string{"age", itoa(age)})
	cs := CacheStatus{Status: req.Status, TTL: floorDiv(e.FreshUntil-now, 1000), HasTTL: true}
	headers = append(headers, [2]string{"cache-status", string(cs.AppendHeader(nil, c.cfg.CacheName))})
	return int(e.Status), headers, e.Body
}

// floorDiv rounds towards minus infinity, so 0.5 s of staleness is ttl=-1.
func floorDiv(a, b int64) int64 {
	q := a / b
	if (a%b != 0) && ((a < 0) != (b < 0)) {
		q--
	}
	return q
}

// Age returns how old req.Entry is (for a batch: its oldest item).
func (c *Cache) Age(req *Request) time.Duration {
	if req.batch != nil && req.batch.hits > 0 {
		return time.Duration(c.nowMs()-req.batch.oldest) * time.Millisecond
	}
	if req.Entry == nil {
		return 0
	}
	return time.Duration(c.nowMs()-req.Entry.StoredAt) * time.Millisecond
}

func itoa(v int64) string {
	return string(appendInt(nil, v))
}

func appendInt(b []byte, v int64) []byte {
	if v < 0 {
		b = append(b, '-')
		return appendUint(b, uint64(-v))
	}
	return appendUint(b, uint64(v))
}

// StoreResult reports what Store did.
type StoreResult struct {
	Reason         Reason // ReasonNone when stored
	VersionChanged bool   // the upstream reported a model version other than the recorded one
	Version        string
	FreshUntil     int64
	// Inserts has one result per entry written (one per item for
	// embeddings), for the occupancy stats.
	Inserts []InsertResult
	// Embeddings: items stored and refused.
	ItemsStored, ItemsRefused int
}

// Store saves an admitted response under the request's key. computeMs is
// how long the upstream took (XFetch's δ). If the response reports a model
// version other than the one the request was keyed with, the model's
// recorded version moves on and the entry is stored under the new one, so
// nothing keyed by the old version is served again.
func (c *Cache) Store(req *Request, status int, headers [][2]string, body []byte, adm Admission, computeMs uint32) StoreResult {
	if req.batch != nil {
		return c.storeEmbeddings(req, status, headers, body, adm, computeMs)
	}
	now := c.nowMs()
	res, ok := c.prepareStore(req, adm, now+adm.TTL.Milliseconds()+c.staleWindow(req).Milliseconds())
	if !ok {
		return res
	}
	c.buildKey(req) // the state may have moved on since Lookup
	e := Entry{
		Key:        req.Key,
		StoredAt:   now,
		FreshUntil: now + adm.TTL.Milliseconds(),
		ComputeMs:  computeMs,
		Status:     uint16(status),
		Headers:    c.storedHeaders(req, headers),
		Body:       body,
	}
	e.StaleUntil = e.FreshUntil + c.staleWindow(req).Milliseconds()
	if e.EncodedSize() > req.Route.MaxEntryBytes {
		res.Reason = ReasonTooLarge
		return res
	}
	ins, err := c.table.Insert(req.FP, TenantTag(req.tenant), e.StaleUntil, e.AppendEncode(nil), now)
	if err != nil {
		res.Reason = storeErrReason(err)
		return res
	}
	res.FreshUntil = e.FreshUntil
	res.Inserts = []InsertResult{ins}
	return res
}

// prepareStore records the model version the response reported (or makes
// sure the model's record exists), keeps the record live until staleUntil
// (that of the entries about to be stored) and moves req onto the current
// state.
func (c *Cache) prepareStore(req *Request, adm Admission, staleUntil int64) (StoreResult, bool) {
	res := StoreResult{Version: adm.Version}
	if len(res.Version) > maxVersionLen {
		res.Version = res.Version[:maxVersionLen] + "…" // for display only
	}
	now := c.nowMs()
	before := req.state
	if req.Route.ModelVersion.Enabled() {
		if adm.Version == "" {
			// The route tracks versions but this answer names none: it
			// cannot be filed under any version safely.
			res.Reason = ReasonNoVersion
			return res, false
		}
		st, changed, err := c.ObserveVersion(req.Route.Name, req.Model, adm.Version, staleUntil)
		if err != nil {
			res.Reason = storeErrReason(err)
			return res, false
		}
		res.VersionChanged = changed
		req.state = st
	} else {
		st, err := c.updateModel(req.Route.Name, req.Model, func(r *modelRecord) bool { return extendLife(r, staleUntil, now) })
		if err != nil {
			res.Reason = storeErrReason(err)
			return res, false
		}
		req.state = st
	}
	if before.Found && req.state.Gen != before.Gen {
		// The model was purged (or invalidated) while this answer was in
		// flight: it belongs to the old generation and is not stored.
		res.Reason = ReasonInvalidated
		return res, false
	}
	return res, true
}

// storedHeaders picks the response headers an entry keeps.
func (c *Cache) storedHeaders(req *Request, headers [][2]string) [][2]string {
	var out [][2]string
	for _, name := range req.Route.StoredHeaders {
		if v, ok := header(headers, name); ok {
			out = append(out, [2]string{name, v})
		}
	}
	if h := req.Route.ModelVersion.Header; h != "" && !containsStr(req.Route.StoredHeaders, h) {
		if v, ok := header(headers, h); ok {
			out = append(out, [2]string{h, v})
		}
	}
	return out
}

// staleWindow is how long past its TTL an entry stays useful.
func (c *Cache) staleWindow(req *Request) time.Duration {
	return max(req.Route.StaleWhileReval, req.Route.StaleIfError)
}

func storeErrReason(err error) Reason {
	if errors.Is(err, ErrContention) {
		return ReasonStoreContention
	}
	if errors.Is(err, ErrModelTableFull) {
		return ReasonModelTableFull
	}
	return ReasonInternal
}

// Bypass takes the request out of the cache for reason (decided by the
// filter, e.g. a body too large to buffer).
func (r *Request) Bypass(reason Reason) { r.bypass(reason) }

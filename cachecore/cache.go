package cachecore

import (
	"errors"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Cache is one VM's handle on the shared cache: the policy engine that a
// request's Flight (protocol*.go) drives. Keys, namespaces, freshness and
// admission are decided here, the request protocol in the Flight; the
// filter only moves bytes between Envoy and the Flight's actions.
// A Cache is not safe for concurrent use (one per VM); any number of Caches
// may share one Store.
type Cache struct {
	// statuses are the Cache-Status values sent (statusString).
	statuses map[string]string
	// brokenBatchHeaders: BrokenBatchAnswer's headers, made once.
	brokenBatchHeaders [][2]string
	cfg                *Config
	store              storeReader
	table              *Table
	leases             *LeaseTable
	bg                 *BackgroundSlots
	nowMs              func() int64 // now in unix milliseconds
	rand               func() uint64
	canon              Canonicalizer
	dups               duplicateMembers // answers' duplicate member names (jsonbound.go)
	embEnc             []byte           // embeddings items encoded for one store (reused)
	hk                 *hashKeys        // the process secret's keys, once loaded (secret.go)
	keying             []routeKeying    // per route of cfg, by Route.Index (key.go)

	// statusMemo: the last Cache-Status values sent, by the status they
	// render (statusValueOf).
	statusMemo [statusMemoSize]statusMemo

	slo         map[*Route]*sloCounts       // this VM's unflushed SLO counts
	shadowSlots map[*Route]*BackgroundSlots // per-route shadow limiters
	tenants     map[tenantKey]tenantID      // recently seen credentials' hashes
	last        lastTenant                  // the last of them, checked first
	refreshN    uint32                      // background refreshes started (lease owner ids)
	layoutWas   string                      // the layout New replaced (noteLayout), or ""
	slotsKept   int                         // the process's lease slot count, kept over the configured one (adoptSlots), or 0
	l2b         l2Breaker                   // this VM's L2 circuit breaker (l2.go)
	l2Writing   int                         // bytes of write-behind values in flight (l2Write)
	l2s         l2Sync                      // this VM's reading of the purge log (l2sync.go)

	semVectors semVectorCache           // recent turns' vectors (semantic_index.go)
	semPending map[uint64]int64         // turns being embedded by this VM, until (ms)
	semModels  map[*Route]semModelSeen  // the embedding model last seen per route
	semSweep   semSweepPos              // where this VM's next sweep of a full index starts
	semBreak   map[string]*embedBreaker // per embeddings service (semEmbedBreaker)

	spare []*Request // requests of plain hits, for reuse (recycle.go); room for maxSpareRequests from NewCache on
	// spareBatch: the arenas of a recycled embeddings request's batch,
	// for the next one (embeddings.go newBatch).
	spareBatch *embBatch
	memo       canonMemo          // canonical forms of recent bodies (canonmemo.go): in the cache, no pointer to follow
	modelKeys  [modelSlots]string // shared-data names of the model slots, made once
	modelBuf   []byte             // model records are read into it
	// lastModelID is the last model id made (models.go).
	lastModelID modelIDMemo
	// joinedUntil is the deadline the last Join gave the lease it tried
	// for (read by Join's caller at once: a new leader keeps it, Flight.lead).
	joinedUntil int64
	lastModel   string // the model name last read from a request (reused)
	// lastModelField is lastModel's field as it was read, quoted and
	// unescaped (modelName).
	lastModelField string
	encBuf         []byte // an entry being stored is encoded into it (the store copies it)
}

// Options injects the store, the clock and the random source, so tests can
// drive time and chance deterministically.
type Options struct {
	Store Store
	Now   func() time.Time
	// NowMs, if set, is Now in unix milliseconds, for a caller with a
	// cheaper way to it than converting Now's (the filter keeps both per
	// callback). It must read the same clock as Now.
	NowMs func() int64
	Rand  func() uint64 // uniformly random 64-bit values
}

// New returns a Cache over opts.Store with the given configuration.
func New(cfg *Config, opts Options) *Cache {
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.NowMs == nil {
		now := opts.Now
		opts.NowMs = func() int64 { return now().UnixMilli() }
	}
	if opts.Rand == nil {
		panic("cachecore: Options.Rand is required")
	}
	table := NewTable(opts.Store, cfg.Store.Buckets, cfg.Store.Ways)
	table.SetTenantShare(cfg.Store.MaxTenantShare)
	leases := NewLeaseTable(opts.Store, cfg.Store.LeaseSlots)
	slotsKept := leases.adoptSlots()
	leases.SetHorizon(cfg)
	table.leases = leases
	keying := make([]routeKeying, len(cfg.Routes))
	for i, r := range cfg.Routes {
		keying[i] = newKeying(r)
	}
	c := &Cache{
		keying: keying,
		cfg:    cfg,
		store:  readerOf(opts.Store),
		table:  table,
		leases: leases,
		bg:     NewBackgroundSlots(opts.Store, cfg.Background.MaxConcurrent),
		nowMs:  opts.NowMs,
		rand:   opts.Rand,
		spare:  make([]*Request, 0, maxSpareRequests),
	}
	c.bg.leases = leases
	c.slotsKept = int(slotsKept)
	c.noteLayout()
	return c
}

// layoutKey holds the table layout the process's configurations last
// started with: "<store.buckets>x<store.ways>".
const layoutKey = "mc:layout"

// noteLayout records this configuration's table layout and, when the
// configuration before it had another, moves every model to a new
// generation, as a purge of everything does. Under another layout a key
// sits in another bucket: a purge by replay there cannot find the entry
// the old layout holds, and a configuration back to that layout served it
// again (review P, stop 71). The old layout's keys stay in shared data as
// before (README, Limitations); now none of its entries is reachable. A
// store that fails leaves the record as it is.
func (c *Cache) noteLayout() {
	want := strconv.Itoa(c.cfg.Store.Buckets) + "x" + strconv.Itoa(c.cfg.Store.Ways)
	defer c.noteLayoutSeen(want)
	for attempt := 0; attempt < maxCASAttempts; attempt++ {
		raw, cas, err := c.store.Get(layoutKey)
		found := err == nil
		switch {
		case found && string(raw) == want:
			return
		case errIs(err, ErrNotFound):
			if cas, err = c.table.createCAS(); err != nil { // kept for the table's own create-only writes
				return
			}
		case err != nil:
			return
		}
		if err = c.store.Set(layoutKey, []byte(want), cas); err == nil {
			if found {
				c.layoutWas = string(raw)
				_ = c.renewGenerations()
			}
			return
		}
		if !errIs(err, ErrCasMismatch) {
			return
		}
	}
}

// layoutsKey holds the table layouts the process's configurations
// started with, the latest first, at most maxLayoutsSeen of them, comma
// separated: every VM of every configuration puts its own first when it
// starts (noteLayoutSeen). mc:layout alone named the last one, which only
// the VM that changed it (in Envoy, a configuration's throw-away canary)
// could tell from the one before (review Z42).
const (
	layoutsKey     = "mc:layouts"
	maxLayoutsSeen = 4
)

// noteLayoutSeen puts own (and the layout New replaced, after it) first
// in the layouts seen, dropping the oldest beyond maxLayoutsSeen. One read
// when own is first already, as on every VM after a configuration's
// first; a store that fails leaves the record as it is.
func (c *Cache) noteLayoutSeen(own string) {
	for attempt := 0; attempt < maxCASAttempts; attempt++ {
		raw, cas, err := c.store.Get(layoutsKey)
		switch {
		case err == nil:
			if first, _, _ := strings.Cut(string(raw), ","); first == own {
				return
			}
		case errIs(err, ErrNotFound):
			if cas, err = c.table.createCAS(); err != nil {
				return
			}
		default:
			return
		}
		seen := []string{own}
		if c.layoutWas != "" && c.layoutWas != own {
			seen = append(seen, c.layoutWas)
		}
		rest := string(raw)
		for rest != "" && len(seen) < maxLayoutsSeen {
			var l string
			l, rest, _ = strings.Cut(rest, ",")
			if _, _, ok := parseLayout(l); ok && !slices.Contains(seen, l) {
				seen = append(seen, l)
			}
		}
		if err = c.store.Set(layoutsKey, []byte(strings.Join(seen, ",")), cas); !errIs(err, ErrCasMismatch) {
			return
		}
	}
}

// purgeOtherLayouts removes key's entry, as PurgeKey does, under the
// table layouts other than this configuration's that may still be
// serving: those the process's configurations started with lately
// (layoutsKey), and the one this configuration replaced. After a reload
// the old configuration keeps serving the connections it drains, storing
// and serving in its own layout, where a purge under the new layout did
// not look (review Z23); and after A, B, A, the first A's purge must
// reach B's (review Z42). It returns how many slots it freed.
func (c *Cache) purgeOtherLayouts(fp uint64, key []byte, now int64) (int, error) {
	own := strconv.Itoa(c.cfg.Store.Buckets) + "x" + strconv.Itoa(c.cfg.Store.Ways)
	var seen string
	raw, _, readErr := c.store.Get(layoutsKey)
	if readErr == nil {
		seen = string(raw)
	} else if errors.Is(readErr, ErrNotFound) {
		readErr = nil
	}
	visited := make([]string, 0, maxLayoutsSeen+1)
	freed := 0
	for i := 0; i <= maxLayoutsSeen; i++ {
		var l string
		if i < maxLayoutsSeen {
			l, seen, _ = strings.Cut(seen, ",")
		} else {
			l = c.layoutWas // should the record have failed
		}
		if l == "" || l == own || slices.Contains(visited, l) {
			continue
		}
		visited = append(visited, l)
		buckets, ways, ok := parseLayout(l)
		if !ok {
			continue
		}
		n, err := (&Table{store: c.store, buckets: uint64(buckets), ways: ways, visiting: true}).PurgeKey(fp, key, now)
		freed += n
		if err != nil {
			return freed, err
		}
	}
	// A record that could not be read may have named layouts still
	// serving: the purge is not done (review Z59).
	return freed, readErr
}

// parseLayout reads a layout noteLayout recorded ("<buckets>x<ways>"),
// within the bounds ParseConfig gives both.
func parseLayout(l string) (buckets, ways int, ok bool) {
	b, w, found := strings.Cut(l, "x")
	if !found {
		return 0, 0, false
	}
	buckets, err1 := strconv.Atoi(b)
	ways, err2 := strconv.Atoi(w)
	if err1 != nil || err2 != nil || buckets < 1 || buckets > maxBuckets || ways < 1 || ways > maxWays {
		return 0, 0, false
	}
	return buckets, ways, true
}

// LayoutReplaced is the table layout ("<buckets>x<ways>") the
// configuration before this one had, when New found it different and so
// started the cache empty; else "".
func (c *Cache) LayoutReplaced() string { return c.layoutWas }

// LeaseSlotsKept is the lease slot count the process's first
// configuration recorded, which this one uses in place of its own
// store.lease_slots until Envoy restarts; 0 when its own stands.
func (c *Cache) LeaseSlotsKept() int { return c.slotsKept }

// Config returns the configuration.
func (c *Cache) Config() *Config { return c.cfg }

// Background returns the process-wide limiter of background calls.
func (c *Cache) Background() *BackgroundSlots { return c.bg }

// NowMs is the cache's clock in unix milliseconds.
func (c *Cache) NowMs() int64 { return c.nowMs() }

// Table exposes the slot table (diagnostics, purge, tests).
func (c *Cache) Table() *Table { return c.table }

// Request is the cache's state for one HTTP request. The filter keeps it in
// the stream context; it must not be shared between VMs.
type Request struct {
	Route *Route
	// Status records what happened (with Reason); it drives Cache-Status,
	// stats and logs. Entry is the entry found by Lookup (fresh or
	// stale), if any. On a Serve decision its byte slices alias the VM's
	// scratch buffer until the next lookup: use them at once, or
	// KeepEntry. Both are read by small functions at the inliner's budget
	// (refuse, KeepEntry), where a field of requestState would cost one
	// more: they are direct fields, zeroed by name in clear as Route is.
	Status Status
	Entry  *Entry
	// requestState is everything else a recycled request lets go of; clear
	// zeroes it with one assignment, while the buffers below, kept for
	// the next request, are emptied in place (not saved and stored back).
	requestState

	// The buffers a recycled request keeps (recycle.go), last: the fields
	// above keep their offsets.
	//
	// keyHeaders holds the values of the route's key_headers, as the key
	// does (keyHeaderValues).
	keyHeaders []byte
	canonical  []byte
	Key        []byte // full identity: namespace + canonical body
	// resp and respBuf hold a hit's response headers (HitResponse).
	resp    [][2]string
	respBuf []byte
}

// requestState is a Request's fields but its Route, Status, Entry and
// buffers: what clear zeroes whole (its entry's header list, a buffer too,
// is given back).
// EncodingKept notes that the host failed to remove the request's
// accept-encoding before it went upstream: a compressed answer is then
// the cache's fault, refused as internal, not as encoded, a lasting
// reason that marked the key hit-for-miss (review Z242).
func (req *Request) EncodingKept() { req.encodingKept = true }

type requestState struct {
	Method string
	Path   string
	CC     RequestCC

	Reason Reason // why, with Status
	// noStale: the answer admitted (AdmitHeaders) may not be served stale
	// (its Cache-Control's must-revalidate: ResponseCC.NoStale).
	noStale bool
	// encodingKept: the host failed to remove the request's
	// accept-encoding (EncodingKept); faultCounted: the refusal it made
	// of an encoded answer was counted as an internal error by the host.
	encodingKept, faultCounted bool

	tenant     [32]byte
	tenantFrom string // the identity header the tenant was read from
	credential uint64 // the tenant's credential alone, whichever header carried it (a shadow's min_tenants)
	authority  string // lower-cased :authority; "" on share_authorities routes

	Model  string
	Stream bool
	Body   []byte // the request body (for replays)

	state     ModelState
	FP        uint64
	stableLen int
	leaseFP   uint64
	hk        *hashKeys  // the keys Key was hashed with; nil: no key built yet
	keyState  ModelState // the model state Key was built under

	entry Entry // the scratch Entry points to

	// aheadRead: the lookup read the lease slot ahead of its index reads
	// (the read's number, 0: none), and what it missed was a clean miss
	// after that read (a batch's items, lookupItems; a single request's
	// key, Lookup); leadUnchanged: the request then won its lease with
	// that read (Join, leaderLookup).
	aheadRead     uint64
	leadUnchanged bool
	// lookedAt: ms, when the request last looked its key up (Lookup): an
	// answer it stores was asked for since then, and a purge of its key
	// made after it refuses the store (Table.Remove's tombstone).
	lookedAt int64
	// lookedAs: the key's fingerprint at that look, once the key was
	// built again under another model state (rebuildKey): a store under
	// the new key checks the purges of that one too (purgedAsLooked).
	lookedAs lookedKey

	batch *embBatch // embeddings routes: the per-item view
	// kindView is what the route kind's parse read from the request for
	// its admission (kinds.go), e.g. a *rerankRequest.
	kindView any

	keepBody bool // the upstream must get the body as sent (KeepBody)
	// refusedFresh: the client's max-age or min-fresh refused a fresh
	// entry (freshness): its miss says fwd=request (RFC 9211 §2.2).
	refusedFresh bool
	// sieStatus: the model's status (a failure) a stale_if_error entry
	// answers instead (Flight.StaleIfError): its fwd-status.
	sieStatus int
	// purging: a purge's replay of a request (purge.go), keyed to find
	// an entry, never to store one.
	purging bool

	l2  l2State   // the L2 tier's part (protocol_l2.go)
	sem *semQuery // semantic routes: the turn compared (semantic.go)
}

// KeepBody says the request body cannot be rewritten (the filter holds no
// whole copy in Envoy's buffer): an embeddings batch with some items cached
// is then fetched whole instead of cut to its missing items.
func (r *Request) KeepBody() { r.keepBody = true }

func (r *Request) bypass(reason Reason) *Request {
	r.Status, r.Reason = StatusBypass, reason
	return r
}

// Bypassed reports whether the request no longer uses the cache.
func (r *Request) Bypassed() bool { return r.Status == StatusBypass }

package cachecore

import (
	"errors"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Storing an admitted answer as an entry under the request's key: Store,
// prepareStore, the stored headers and the stale window. (store.go holds
// the Store interface the entries are written to.)

// StoreResult reports what Store did.
type StoreResult struct {
	Reason         Reason // ReasonNone when stored
	VersionChanged bool   // the upstream reported a model version other than the recorded one
	Version        string
	FreshUntil     int64
	// Inserts has one result per entry written (one per item for
	// embeddings), for the occupancy stats.
	Inserts []InsertResult
	// Embeddings: items stored and refused, and why the first refused one
	// was (an answer whose every item was refused is not "stored").
	ItemsStored, ItemsRefused int
	ItemReason                Reason
}

// refuseItems counts n items refused for reason.
func (res *StoreResult) refuseItems(n int, reason Reason) {
	if n > 0 && res.ItemReason == ReasonNone {
		res.ItemReason = reason
	}
	res.ItemsRefused += n
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
	age := upstreamAge(headers, adm.TTL)
	if age >= adm.TTL.Milliseconds() {
		// Stored, it would be stale on arrival: the leader's followers
		// would find nothing, lead one after another into the same old
		// answer, and each hit would start a refresh.
		return StoreResult{Reason: ReasonAged}
	}
	e := Entry{
		Key:       req.Key, // rekeyed below: its model state is of a fixed size
		ComputeMs: computeMs,
		Status:    uint16(status),
		Headers:   c.storedHeaders(req, headers),
		Body:      body,
	}
	if e.EncodedSize() > req.Route.MaxEntryBytes {
		// Judged before the model's record is kept live for it: an
		// answer that stores nothing kept its record live for twice its
		// life, and a slot of such records refused a new model
		// (model_table_full; review Z112). A version it reports is
		// noted as a refused answer's is.
		return c.noteVersion(req, ReasonTooLarge, status, headers, body)
	}
	window := c.storeStaleWindow(req, &e.Flags)
	res, ok := c.prepareStore(req, adm, now+adm.TTL.Milliseconds()+window)
	if !ok {
		return res
	}
	c.rekey(req) // the state may have moved on since Lookup
	born := now - age
	e.Key, e.StoredAt, e.FreshUntil = req.Key, born, born+adm.TTL.Milliseconds()
	e.StaleUntil = e.FreshUntil + window
	// Encoded into a reused buffer: the store copies it. One larger than
	// the buffers kept for reuse are (maxSpareBuffer) is not kept: an
	// answer at max_entry_bytes would size it for good.
	enc := e.AppendEncode(c.encBuf[:0])
	if cap(enc) <= maxSpareBuffer {
		c.encBuf = enc
	}
	if c.purgedAsLooked(req, now) {
		res.Reason = ReasonInvalidated
		return res
	}
	ins, err := c.table.InsertSince(req.FP, TenantTag(req.tenant), e.StaleUntil, enc, now, req.lookedAt)
	if err != nil {
		res.Reason = storeErrReason(err)
		if indexWritten(err) { // the index was written (and a purge freed the slot, or its entry was not written)
			res.Inserts = []InsertResult{ins}
		}
		return res
	}
	res.FreshUntil = e.FreshUntil
	res.Inserts = []InsertResult{ins}
	c.l2Stage(req, &e, adm.Version)
	return res
}

// upstreamAge is how old an answer already was when it arrived, in ms: its
// Age (RFC 9111 §5.1, a cache upstream kept it that long), at most ttl. It
// is stored as made that much earlier, so that it stays fresh only for
// what is left of the route's ttl, and a hit's Age and the client's
// max-age count the whole of it (§4.2.3); one that leaves nothing of the
// ttl is not stored (ReasonAged). An Age that is missing or not a number
// is 0 (§5.1: ignored); of a list, the first member counts. An upstream
// can only shorten an answer's life with it, never lengthen it. An
// embeddings batch's items ignore it (storeEmbeddings): a vector does not
// age (a new model is caught by its name, version or dimensions), and a
// merged batch's Age is its oldest cached item's, which would shorten
// every item computed with it.
func upstreamAge(headers [][2]string, ttl time.Duration) int64 {
	v, ok := header(headers, "age")
	if !ok {
		return 0
	}
	v, _, _ = strings.Cut(v, ",")
	return min(deltaSeconds(strings.TrimSpace(v)), ttl).Milliseconds()
}

// prepareStore records the model version the response reported (or makes
// sure the model's record exists), keeps the record live until staleUntil
// (that of the entries about to be stored) and moves req onto the current
// state.
func (c *Cache) prepareStore(req *Request, adm Admission, staleUntil int64) (StoreResult, bool) {
	res := StoreResult{Version: shownVersion(adm.Version)} // for display only
	before := req.state
	versioned := req.Route.ModelVersion.Enabled()
	if versioned && adm.Version == "" {
		// The route tracks versions but this answer names none: it
		// cannot be filed under any version safely.
		res.Reason = ReasonNoVersion
		return res, false
	}
	st, changed, stale, err := c.settleModel(req.Route.Name, req.Model, before, true, adm.Version, versioned, staleUntil)
	if err != nil {
		res.Reason = storeErrReason(err)
		return res, false
	}
	res.VersionChanged = changed // a switch this answer made counts, stored or not
	if stale {
		// The model was purged or switched versions while this answer
		// was in flight: it belongs to an earlier state and is not
		// stored. Keyed without a record (the model table was full),
		// nothing would tell it that either had happened.
		res.Reason = ReasonInvalidated
		if !before.Found {
			res.Reason = ReasonModelTableFull
		}
		return res, false
	}
	req.state = st
	return res, true
}

// storedHeaders picks the response headers an entry keeps.
func (c *Cache) storedHeaders(req *Request, headers [][2]string) [][2]string {
	var out [][2]string
	for _, name := range req.Route.StoredHeaders {
		// Every line of it: lines of one name are one value (RFC 9110,
		// 5.3), replayed as they came.
		for i := range headers {
			if kv := &headers[i]; kv[0] == name {
				out = append(out, [2]string{name, kv[1]})
			}
		}
	}
	// A hit is a local reply, which Envoy types text/plain without a
	// content-type: the answer's own is kept whatever the list says.
	if !slices.Contains(req.Route.StoredHeaders, "content-type") {
		if v, ok := header(headers, "content-type"); ok {
			out = append(out, [2]string{"content-type", v})
		}
	}
	if h := req.Route.ModelVersion.Header; h != "" && !slices.Contains(req.Route.StoredHeaders, h) {
		if v, ok := header(headers, h); ok {
			out = append(out, [2]string{h, v})
		}
	}
	return out
}

// lookedKey is a key's fingerprint as a request looked it up, at (ms).
type lookedKey struct {
	fp uint64
	at int64
}

// purgedAsLooked reports whether a purge of the key req looked up, made
// after its look, left its tombstone, where req's key has been built again
// since under another model state (a version its answer reported first or
// anew, a generation a shadow invalidation moved to): InsertSince checks
// the new key only, and the answer asked for before the purge would be
// stored past it (review Z14, stop 72). A read of the index only then.
func (c *Cache) purgedAsLooked(req *Request, now int64) bool {
	l := req.lookedAs
	if l.at == 0 || l.at != req.lookedAt || l.fp == req.FP {
		return false
	}
	return c.purgedAfterLook(l.fp, l.at, now)
}

// purgedAfterLook reports whether a purge of fp left its tombstone after
// a look at since (Table.purgedSince), for an answer stored under another
// key than fp (purgedAsLooked; an embeddings item, storeEmbeddings). A
// failed read refuses the store too.
//
//go:noinline
func (c *Cache) purgedAfterLook(fp uint64, since, now int64) bool {
	purged, err := c.table.purgedSince(fp, since, now)
	return purged || err != nil
}

// staleWindow is how long past its TTL an entry stays useful.
func (c *Cache) staleWindow(req *Request) time.Duration {
	return max(req.Route.StaleWhileReval, req.Route.StaleIfError)
}

// storeStaleWindow is the stale window (ms) of req's answer, as its
// headers were admitted: the route's, or none when the upstream said must-revalidate,
// proxy-revalidate or s-maxage (proxy-revalidate's meaning for a shared
// cache, RFC 9111 §5.2.2.10), which forbid serving the answer stale, by
// stale_while_revalidate, stale_if_error or a client's max-stale alike
// (RFC 9111 §5.2.2.2, §5.2.2.8; review Z197). flags gets FlagNoStale then,
// for a copy from L2 to keep it so.
func (c *Cache) storeStaleWindow(req *Request, flags *uint8) int64 {
	if req.noStale { // whatever this route's window: the flag travels to L2 (review Z202)
		*flags |= FlagNoStale
		return 0
	}
	return c.staleWindow(req).Milliseconds()
}

func storeErrReason(err error) Reason {
	if errors.Is(err, ErrContention) {
		return ReasonStoreContention
	}
	if errors.Is(err, ErrPurgedSince) {
		return ReasonInvalidated // purged while it was asked for, as a model purge refuses
	}
	if errors.Is(err, ErrModelTableFull) {
		return ReasonModelTableFull
	}
	return ReasonInternal
}

// Occupancy sums what a store did to the slot table, for the occupancy
// stats (one update per store, however many entries it wrote: an
// embeddings batch writes one per item). filled is the change of the
// occupied slots: less the other layout's listings a store's index
// replaced (InsertResult.Replaced), it may be below 0.
func (res StoreResult) Occupancy() (filled, evicted, expired, ownShare int) {
	for _, r := range res.Inserts {
		filled -= r.Replaced // may leave filled below 0: the gauge's change
		if r.OwnShare {
			ownShare++
		}
		switch {
		case r.Filled:
			filled++
		case r.Evicted:
			evicted++
		case r.Expired:
			expired++
		}
	}
	return filled, evicted, expired, ownShare
}

// VersionNote is the log line of a model version change the store saw.
func (res StoreResult) VersionNote(req *Request) string {
	return "route " + req.Route.Name + ": model " + strconv.Quote(req.Model) +
		" now reports version " + strconv.Quote(res.Version) + "; entries of earlier versions will not be served"
}

package cachecore

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
)

// Table is the bounded cache store: a set-associative slot table laid over a
// Store. Envoy's shared data has no delete and no TTL, so the cache must
// never derive store keys from request data; it uses a fixed key space:
//
//	mc:i:<b>     index of bucket b: Ways × (fingerprint, staleUntil, tenant tag)
//	mc:e:<b>:<w> entry in way w of bucket b (empty value = absent)
//
// A request's fingerprint (a keyed hash of its full key, see secret.go)
// picks the bucket and is looked up in the bucket's small index; a match
// costs one more Get for the entry, whose stored key is compared byte for
// byte before it is used. So
// memory is bounded by Buckets × (Ways × MaxEntryBytes + index), whatever
// the traffic, and no collision or race can serve the wrong entry: at worst
// it costs a miss.
//
// Index updates are compare-and-swap; entries are written after their way
// is claimed in the index. Concurrent writers to one bucket therefore never
// claim the same way at once; a reader racing a writer sees the old entry,
// fails the key comparison, and misses. A Table is used by one VM (thread);
// many Tables over one Store are safe.
type Table struct {
	store   storeReader
	buckets uint64
	ways    int
	// tenantWays is how many ways of a bucket one tenant's entries may
	// hold (store.max_tenant_share); 0: no limit.
	tenantWays int
	anchor     uint32 // a CAS read from another key: never the current CAS of ours
	idx        []slot
	// idxListed is whether t.idx was read from a well-formed index, the
	// kind a store writes before its entries (readIndex); RATIONALE ("A
	// batch that mostly misses…") says where one may still leave out an
	// entry.
	idxListed bool
	// known is, for the slots of the buckets whose index this VM last read
	// or wrote in a store, which key that index listed there (wayKnown;
	// Remove's and Clear's writes are not noted: the next read of the
	// index sees what they freed): a lookup asks the index first where
	// its preferred way was listed for another key (lookupInto). Made at
	// the first index read: knownMax places, a fixed array, so that a
	// hit's look into it is a mask and a load.
	known *[knownMax]wayKnown
	// foreignIdx is the index the last readIndex found in another shape
	// (another store.ways: a configuration of the process's other layout,
	// in a reload's overlap), as read; nil when it read none such.
	foreignIdx []byte
	// visiting: a view of another table layout's keys, a purge's
	// (Cache.purgeOtherLayouts). An index of another shape under the same
	// name is this process's live layout's: remove leaves it as it is.
	visiting bool
	// leases is the VM's lease table, for a lookup's read ahead
	// (lookupListed; set by New, which makes both).
	leases *LeaseTable
	keyBuf []byte
	valBuf []byte
	idxBuf []byte // scratch for index reads
	entBuf []byte // scratch for entry reads (see lookupInto)
}

// wayKnown is what the slot numbered slot-1 was last seen listing: the
// knownTag of its key's fingerprint (0: an empty way).
type wayKnown struct{ slot, tag uint32 }

// knownMax is known's size: 16,384 slots of 8 bytes, 128 KiB, a VM's
// memory of the table S4 fills. A larger table's slots share its places;
// a slot whose place another holds is not known.
const knownMax = 1 << 14

// knownTag is the tag of fp in known: never 0. Two keys of one tag are taken
// for one, which costs a lookup the read it would have made anyway.
func knownTag(fp uint64) uint32 { return uint32(fp^fp>>32) | 1 }

type slot struct {
	fp         uint64 // 0 = empty
	staleUntil int64  // unix ms after which the entry is useless
	tag        uint32 // tenant tag of the entry (TenantTag); 0: none
}

const (
	indexMagic0, indexMagic1, indexVersion = 'M', 'I', 2
	indexWayLen                            = 20
	anchorKey                              = "mc:anchor"
	maxCASAttempts                         = 8
)

// ErrContention means a CAS loop gave up; the caller skips the store (the
// response still reaches the client; a later request will store it).
var ErrContention = errors.New("store: too much contention")

// ErrPurgedSince means the key was purged after the request whose answer
// was to be stored looked it up (InsertSince): the answer was asked for
// before the purge, and is not stored.
var ErrPurgedSince = errors.New("store: the key was purged since its answer was asked for")

// errPurgedDuring is ErrPurgedSince for a purge that came between a
// store's index write and its entry write (stillListed): the index was
// written, so its InsertResult counts in the occupancy stats, as the
// purge counted the slot freed.
var errPurgedDuring = fmt.Errorf("%w (during its store)", ErrPurgedSince)

// entryUnwritten is a store's error after its index was written: the
// entry's own write failed. The index lists the key in the way the store
// chose, so its InsertResult counts in the occupancy stats as if it had
// been written: uncounted, a later store of the key reused the listed way
// as filled already, and a purge freed a slot the entries gauge had never
// counted (below 0; review Z135).
type entryUnwritten struct{ err error }

func (e entryUnwritten) Error() string {
	return "store: entry not written after its index: " + e.err.Error()
}
func (e entryUnwritten) Unwrap() error { return e.err }

// indexWritten reports whether a store that failed with err had written
// its index (errPurgedDuring, entryUnwritten): its InsertResult counts.
func indexWritten(err error) bool {
	var u entryUnwritten
	return err == errPurgedDuring || errors.As(err, &u)
}

// A purge of one key (PurgeKey) leaves a tombstone in the bucket's index:
// a slot listing the key with purgedTag for its tenant tag, live until
// purgeTombLife after the purge (its staleUntil), holding no entry. A
// store of the key whose request looked it up before the purge finds it
// (the way holding the key) and is refused; any other store may take its
// way, as it would a live entry's. TenantTag never returns purgedTag.
const (
	purgedTag     = ^uint32(0)
	purgeTombLife = 15 * 60 * 1000 // ms: longer than any upstream call a purge may race
	// entryPurgeKey is written by every purge that leaves a tombstone,
	// after its index write: a batch compares its CAS before and after
	// its store (entryPurges).
	entryPurgeKey = "mc:purged"
)

var entryPurgeValue = []byte{1}

// entryPurges is the CAS of the entry purge mark (0: never written); ok false if it
// could not be read.
func (t *Table) entryPurges() (uint32, bool) {
	_, cas, err := t.store.GetInto(entryPurgeKey, t.entBuf)
	if err != nil && !errIs(err, ErrNotFound) {
		return 0, false
	}
	return cas, true
}

// NewTable prepares a table over store with the given geometry.
func NewTable(store Store, buckets, ways int) *Table {
	return &Table{store: readerOf(store), buckets: uint64(buckets), ways: ways}
}

// SetTenantShare limits one tenant's entries to ceil(share × ways) ways of
// any bucket (at least one); share 0 removes the limit.
func (t *Table) SetTenantShare(share float64) {
	t.tenantWays = 0
	if share > 0 && share < 1 {
		t.tenantWays = max(1, int(math.Ceil(share*float64(t.ways)-1e-9)))
	}
}

// TenantTag is the 32-bit tag of a tenant hash in the index: never 0,
// which marks entries of shared routes (no tenant, no limit).
func TenantTag(tenant [32]byte) uint32 {
	if tenant == ([32]byte{}) {
		return 0
	}
	if tag := binary.LittleEndian.Uint32(tenant[:]); tag != 0 && tag != purgedTag {
		return tag
	}
	return 1
}

// CreateCAS returns a CAS value that cannot be the current CAS of any key
// but the anchor, for "create only if missing" sets (see RATIONALE.md,
// "Race-free leases"): a Set with it fails on an existing key and succeeds
// on a missing one. The anchor key is created on first use.
func CreateCAS(s Store) (uint32, error) {
	_, cas, err := s.Get(anchorKey)
	if errIs(err, ErrNotFound) {
		if err := s.Set(anchorKey, []byte("modelcache"), 0); err != nil {
			return 0, err
		}
		_, cas, err = s.Get(anchorKey)
	}
	if err != nil {
		return 0, err
	}
	return cas, nil
}

func (t *Table) createCAS() (uint32, error) { return createCASOnce(t.store, &t.anchor) }

// createCASOnce is CreateCAS, read once and kept in *anchor by a caller
// that sets create-only again and again. It is generic so that a store
// held as a struct (storeReader) becomes an interface, which allocates,
// only on the first call, not on every call.
func createCASOnce[S Store](s S, anchor *uint32) (uint32, error) {
	if *anchor == 0 {
		c, err := CreateCAS(s)
		if err != nil {
			return 0, err
		}
		*anchor = c
	}
	return *anchor, nil
}

func (t *Table) bucketOf(fp uint64) uint64 { return (fp >> 16) % t.buckets }

// indexKey and entryKey build keys in place: the string aliases keyBuf and
// is valid until the next key is built (stores copy keys they keep). Every
// lookup builds one, so they are written byte by byte (no copy of the
// prefix or of a scratch number) and store the buffer back once.
func (t *Table) indexKey(b uint64) string {
	k := append(t.keyBuf[:0], 'm', 'c', ':', 'i', ':')
	k = appendDec(k, b)
	t.keyBuf = k
	return bytesString(k)
}

func (t *Table) entryKey(b uint64, w int) string {
	k := append(t.keyBuf[:0], 'm', 'c', ':', 'e', ':')
	k = appendDec(k, b)
	k = append(k, ':')
	k = appendDec(k, uint64(w))
	t.keyBuf = k
	return bytesString(k)
}

// preferredWay is where an entry goes when its bucket lets it choose, so a
// lookup can usually read the entry directly, without the index.
func (t *Table) preferredWay(fp uint64) int { return int(fp % uint64(t.ways)) }

// readIndex loads bucket b's index into t.idx. An absent, empty or foreign
// index (e.g. written with another geometry) reads as all-empty.
func (t *Table) readIndex(b uint64) (cas uint32, exists bool, err error) {
	raw, cas, err := t.store.GetInto(t.indexKey(b), t.idxBuf)
	if cap(raw) > cap(t.idxBuf) {
		t.idxBuf = raw[:0]
	}
	t.idxListed, t.foreignIdx = false, nil
	if errIs(err, ErrNotFound) {
		t.resetIdx()
		return 0, false, nil
	}
	if err != nil {
		return 0, false, err
	}
	if len(raw) != 4+indexWayLen*t.ways || raw[0] != indexMagic0 || raw[1] != indexMagic1 || raw[2] != indexVersion || int(raw[3]) != t.ways {
		t.resetIdx()
		t.foreignIdx = raw
		return cas, true, nil
	}
	t.idxListed = true
	t.idx = t.idx[:0]
	for w := 0; w < t.ways; w++ {
		r := raw[4+indexWayLen*w:]
		t.idx = append(t.idx, slot{binary.LittleEndian.Uint64(r), int64(binary.LittleEndian.Uint64(r[8:])), binary.LittleEndian.Uint32(r[16:])})
	}
	t.noteKnown(b)
	return cas, true, nil
}

// listedAfter reports whether fp's bucket's index lists fp live at now
// with a stale time other than staleUntil: the key was stored again since an
// entry of that stale time was read (Cache.Refresh). Other, not later: an
// answer stored with no stale window (must-revalidate) ends before the
// stale entry it renewed did, and a second refresh went for one expiry
// (review Z205). A failed or foreign read reports false.
func (t *Table) listedAfter(fp uint64, staleUntil, now int64) bool {
	if _, _, err := t.readIndex(t.bucketOf(fp)); err != nil || !t.idxListed {
		return false
	}
	for _, s := range t.idx {
		if s.fp == fp && s.tag != purgedTag && s.staleUntil != staleUntil && s.staleUntil > now { // a dead listing says nothing (review Z208)
			return true
		}
	}
	return false
}

// noteKnown remembers which key t.idx, bucket b's well-formed index as read
// or written, lists in each way.
func (t *Table) noteKnown(b uint64) {
	if t.known == nil {
		t.known = new([knownMax]wayKnown)
	}
	first := b * uint64(t.ways)
	for w, s := range t.idx {
		n := first + uint64(w)
		var tag uint32
		if s.fp != 0 {
			tag = knownTag(s.fp)
		}
		t.known[n&(knownMax-1)] = wayKnown{uint32(n) + 1, tag}
	}
}

// knownAt returns the tag slot n (bucket × ways + way) was last seen
// listing, and whether its place in known holds that slot.
func (t *Table) knownAt(n uint64) (tag uint32, ok bool) {
	s := t.known[n&(knownMax-1)]
	return s.tag, s.slot == uint32(n)+1
}

// holdsOther reports whether way w of bucket b was last seen listed for
// a key other than fp's.
func (t *Table) holdsOther(b uint64, w int, fp uint64) bool {
	if t.known == nil {
		return false
	}
	tag, ok := t.knownAt(b*uint64(t.ways) + uint64(w))
	return ok && tag != 0 && tag != knownTag(fp)
}

func (t *Table) resetIdx() {
	t.idx = t.idx[:0]
	for w := 0; w < t.ways; w++ {
		t.idx = append(t.idx, slot{})
	}
}

func (t *Table) encodeIndex() []byte {
	t.valBuf = append(t.valBuf[:0], indexMagic0, indexMagic1, indexVersion, byte(t.ways))
	for _, s := range t.idx {
		t.valBuf = binary.LittleEndian.AppendUint64(t.valBuf, s.fp)
		t.valBuf = binary.LittleEndian.AppendUint64(t.valBuf, uint64(s.staleUntil))
		t.valBuf = binary.LittleEndian.AppendUint32(t.valBuf, s.tag)
	}
	return t.valBuf
}

// writeIndex stores t.idx for bucket b with CAS: cas from readIndex, or a
// create-only CAS when the index did not exist.
func (t *Table) writeIndex(b uint64, cas uint32, exists bool) error {
	if !exists {
		c, err := t.createCAS()
		if err != nil {
			return err
		}
		cas = c
	}
	return t.store.Set(t.indexKey(b), t.encodeIndex(), cas)
}

// Lookup returns the entry stored under key, or nil. Entries are returned
// whatever their age (the caller decides fresh, stale or dead) unless past
// their staleUntil, which makes them dead for good.
func (t *Table) Lookup(fp uint64, key []byte, now int64) (*Entry, error) {
	var e Entry
	ok, err := t.lookupInto(fp, key, now, &e, nil)
	if !ok || err != nil {
		return nil, err
	}
	e.Detach()
	return &e, nil
}

// lookupInto is Lookup into dst without allocating: dst's Key, Headers
// and Body alias the table's scratch buffer and are only valid until the
// table's next entry read, unless the caller Detaches dst.
//
// The entry's preferred way is read first, without the index: an entry
// carries its full key and its deadline, so a direct read validates
// itself. Only if it is not there is the index consulted. Where this VM
// last saw the preferred way listed for another key, the index is read
// first instead (lookupListed), for a request that will store what it
// misses (lead, not nil: a request's own lookup, not sent only-if-cached):
// behind a well-formed index that leaves the entry out, its store lists
// it again. Lookups that store nothing (lead nil: a semantic candidate, a
// stale-if-error check; only-if-cached) read the preferred way first.
func (t *Table) lookupInto(fp uint64, key []byte, now int64, dst *Entry, lead *Request) (bool, error) {
	b := t.bucketOf(fp)
	pw := t.preferredWay(fp)
	if lead != nil && t.holdsOther(b, pw, fp) && !lead.CC.OnlyIfCached {
		return t.lookupListed(b, pw, fp, key, now, dst, lead)
	}
	if ok, err := t.readEntry(b, pw, key, now, dst); err != nil || ok && dst.FreshUntil > now {
		return ok, err
	} else if ok {
		return t.listedPastStale(b, pw, fp, key, now, dst)
	}
	if _, _, err := t.readIndex(b); err != nil {
		return false, err
	}
	for w, s := range t.idx {
		if w == pw || s.fp != fp || s.staleUntil <= now || s.tag == purgedTag { // a tombstone names no answer (review Z212)
			continue
		}
		if ok, err := t.readEntry(b, w, key, now, dst); ok || err != nil {
			return ok, err
		}
	}
	return false, nil
}

// markEntry sets flag on the copies of key's answer stored at storedAt
// (its preferred way, and the ways the index lists it in), each written
// back under the CAS it was read with: a copy stored again meanwhile is
// another answer and keeps its flags. It reports whether it set the flag
// on a copy that lacked it. Rare (a demotion): it reads the index and
// copies whole.
func (t *Table) markEntry(fp uint64, key []byte, storedAt int64, flag uint8) (bool, error) {
	b := t.bucketOf(fp)
	pw := t.preferredWay(fp)
	if _, _, err := t.readIndex(b); err != nil {
		return false, err
	}
	marked := false
	var e Entry
	for w, s := range t.idx {
		if w != pw && s.fp != fp {
			continue
		}
		raw, cas, err := t.store.Get(t.entryKey(b, w))
		if errIs(err, ErrNotFound) || err == nil && len(raw) == 0 {
			continue
		}
		if err != nil {
			return marked, err
		}
		if e.decode(raw) != nil || !equalKeys(e.Key, key) || e.StoredAt != storedAt {
			continue
		}
		if raw[entryFlagsAt]&flag != 0 {
			continue
		}
		out := append([]byte(nil), raw...)
		out[entryFlagsAt] |= flag
		if err := t.store.Set(t.entryKey(b, w), out, cas); err == nil {
			marked = true
		} else if !errIs(err, ErrCasMismatch) {
			return marked, err
		}
	}
	return marked, nil
}

// listedPastStale is lookupInto for a key whose preferred way pw holds a
// stale copy, read into dst: a copy the index lists in another way is the
// one its last store wrote, and is returned instead. Two stores racing on
// one way can leave an older copy in the preferred way that the index no
// longer lists (RATIONALE, "A copy the index does not list"); a store of
// the key after it goes elsewhere, and a lookup that stopped at the old
// copy would never see the new one, nor would a follower woken by its
// store. Out of line: a fresh copy, the rule, runs none of it.
//
//go:noinline
func (t *Table) listedPastStale(b uint64, pw int, fp uint64, key []byte, now int64, dst *Entry) (bool, error) {
	if _, _, err := t.readIndex(b); err != nil || !t.idxListed {
		return true, nil // dst still holds the stale copy (the index has a buffer of its own)
	}
	return t.listedElsewhere(t.idx, b, pw, fp, key, now, dst)
}

// listedElsewhere reads into dst the copy of fp that slots (bucket b's
// index, well-formed) list in a way other than pw, whose stale copy dst
// holds: that copy if there is none, read again if the listed one is
// gone (a store racing this read; dst held the other way's bytes).
func (t *Table) listedElsewhere(slots []slot, b uint64, pw int, fp uint64, key []byte, now int64, dst *Entry) (bool, error) {
	for w, s := range slots {
		if w == pw || s.fp != fp || s.staleUntil <= now || s.tag == purgedTag { // (review Z214)
			continue
		}
		if ok, err := t.readEntry(b, w, key, now, dst); ok || err != nil {
			return ok, err
		}
		return t.readEntry(b, pw, key, now, dst)
	}
	return true, nil
}

// lookupListed is lookupInto, for the request lead (never nil), through
// bucket b's index first: the ways it lists for fp are read, in a
// well-formed index; an absent, garbled or foreign one rules nothing out,
// and the preferred way pw is read as a first look reads it. Where a well-formed index leaves out an entry in
// its preferred way (RATIONALE, "A batch that mostly misses looks through
// the index first"), the key is missed until its next store lists it.
//
// A request that may lead its key (its route coalesces) at once (not
// after a semantic step, whose embedding call is a wait in between) and
// expects to miss (no way of the bucket seen listed for fp) reads its
// lease slot first, for the lead it will take. If the index then rules
// fp out, the read is the request's (aheadRead): a lead won with it
// looks no more (coalesce.go, leaderLookup). One that expects a hit
// reads none: the read would be wasted.
//
//go:noinline
func (t *Table) lookupListed(b uint64, pw int, fp uint64, key []byte, now int64, dst *Entry, lead *Request) (bool, error) {
	var ahead uint64
	lead.aheadRead = 0
	if lead.Route.Coalesce.Enabled && lead.Route.Semantic == nil && t.knownNowhere(b, fp) {
		ahead = t.leases.ReadAhead(lead.LeaseFP())
	}
	if _, exists, err := t.readIndex(b); err != nil {
		return false, err
	} else if !exists || !t.idxListed {
		return t.readEntry(b, pw, key, now, dst)
	}
	listed := false
	for w, s := range t.idx {
		if s.fp != fp || s.staleUntil <= now || s.tag == purgedTag {
			continue
		}
		listed = true
		if ok, err := t.readEntry(b, w, key, now, dst); ok || err != nil {
			return ok, err
		}
	}
	if !listed && ahead != 0 {
		lead.aheadRead = ahead
	}
	return false, nil
}

// knownNowhere reports whether every way of bucket b was last seen listed
// for a key other than fp's, or empty.
func (t *Table) knownNowhere(b uint64, fp uint64) bool {
	first, own := b*uint64(t.ways), knownTag(fp)
	for w := uint64(0); w < uint64(t.ways); w++ {
		if tag, ok := t.knownAt(first + w); !ok || tag == own {
			return false
		}
	}
	return true
}

// unlisted reports whether fp's bucket has no index (none was ever
// written: a store writes the index before its entry, and shared data has
// no delete) or a well-formed one in which no live way holds fp. Then no
// entry of fp is readable there, but in the cases RATIONALE lists for a
// batch's index-first look ("A batch that mostly misses looks through the
// index first"). A garbled or foreign index rules nothing out.
func (t *Table) unlisted(fp uint64, now int64) (bool, error) {
	_, exists, err := t.readIndex(t.bucketOf(fp))
	if err != nil || !exists {
		return err == nil, err
	}
	if !t.idxListed {
		return false, nil
	}
	for _, s := range t.idx {
		if s.fp == fp && s.staleUntil > now {
			return false, nil
		}
	}
	return true, nil
}

// keepEntBuf keeps raw, an entry just read, as the scratch the next read
// reads into when it outgrew the one kept, up to maxSpareBuffer: one hit
// of a large entry kept its size for the VM's life, up to max_entry_bytes
// (review Z112). A larger entry's buffer is the garbage collector's once
// its request is done with it.
func (t *Table) keepEntBuf(raw []byte) {
	if cap(raw) > cap(t.entBuf) && cap(raw) <= maxSpareBuffer {
		t.entBuf = raw[:0]
	}
}

// readEntry reads way w of bucket b into dst and reports whether it holds
// key and is still useful at now.
func (t *Table) readEntry(b uint64, w int, key []byte, now int64, dst *Entry) (bool, error) {
	raw, _, err := t.store.GetInto(t.entryKey(b, w), t.entBuf)
	t.keepEntBuf(raw)
	if err != nil && !errIs(err, ErrNotFound) {
		return false, err
	}
	if len(raw) == 0 {
		return false, nil // never written, claimed but not yet written, or purged
	}
	if dst.decode(raw) != nil || !equalKeys(dst.Key, key) || dst.StaleUntil <= now {
		return false, nil // foreign, colliding or dead: a miss, never a wrong answer
	}
	return true, nil
}

// unwritten reports whether way w, listed with staleUntil, holds no entry
// written for that listing yet: nothing, or what its previous occupant
// left (another staleUntil). A store writes the index before the entry.
func (t *Table) unwritten(b uint64, w int, staleUntil int64) (bool, error) {
	raw, _, err := t.store.GetInto(t.entryKey(b, w), t.entBuf)
	t.keepEntBuf(raw)
	if err != nil && !errIs(err, ErrNotFound) {
		return false, err
	}
	var e Entry
	return len(raw) == 0 || e.decode(raw) != nil || e.StaleUntil != staleUntil, nil
}

// InsertResult tells the caller what an insert displaced, for the stats.
type InsertResult struct {
	Filled  bool // an empty way was used: one more live entry
	Expired bool // a dead entry was replaced
	Evicted bool // a live entry was evicted for capacity
	// OwnShare: the tenant held its share of the bucket, so one of its own
	// live entries was evicted (Evicted is set too).
	OwnShare bool
	// Replaced: the occupied slots another layout's index listed, which
	// this store's index replaced (a reload that changed ways; review Z67).
	Replaced int
}

// Insert stores an encoded entry under fp for the tenant tagged tag (0:
// none). The way is chosen, in order: the way already holding fp live (or
// holding its dead entry or tombstone, if the tenant is within its share); if the
// tenant already holds its share of the bucket's ways (SetTenantShare), its
// own way whose entry goes dead soonest; the entry's preferred way if empty
// or dead; an empty way; a dead way (past staleUntil); else the way whose
// entry goes dead soonest (earliest staleUntil first).
func (t *Table) Insert(fp uint64, tag uint32, staleUntil int64, encoded []byte, now int64) (InsertResult, error) {
	return t.InsertSince(fp, tag, staleUntil, encoded, now, now)
}

// InsertSince is Insert of an answer asked for at since (ms; its request's
// last look, Request.lookedAt): refused with ErrPurgedSince where a purge
// of fp made after since left its tombstone (PurgeKey).
func (t *Table) InsertSince(fp uint64, tag uint32, staleUntil int64, encoded []byte, now, since int64) (InsertResult, error) {
	b := t.bucketOf(fp)
	for attempt := 0; attempt < maxCASAttempts; attempt++ {
		cas, exists, err := t.readIndex(b)
		if err != nil {
			return InsertResult{}, err
		}
		if t.foreignIdx != nil && foreignPurgedAfter(t.foreignIdx, fp, since, now) {
			return InsertResult{}, ErrPurgedSince
		}
		if t.tombstoneAfter(fp, since, now) {
			return InsertResult{}, ErrPurgedSince
		}
		w, res := t.chooseWay(fp, tag, now)
		if t.idx[w].tag == purgedTag {
			res = InsertResult{Filled: true} // a tombstone holds no entry: its purge counted it freed
		}
		t.idx[w] = slot{fp, staleUntil, tag}
		res.Replaced = t.foreignListed()
		err = t.writeIndex(b, cas, exists)
		if errIs(err, ErrCasMismatch) {
			continue
		}
		if err != nil {
			return InsertResult{}, err
		}
		t.noteKnown(b)
		if err := t.store.Set(t.entryKey(b, w), encoded, 0); err != nil {
			return res, entryUnwritten{err}
		}
		if !t.stillListed(b, w, t.idx[w], encoded, since, now) {
			return res, errPurgedDuring
		}
		return res, nil
	}
	return InsertResult{}, ErrContention
}

// stillListed checks way w of bucket b after a store wrote its entry
// there, its index slot being mine. The index and the entry are two
// writes: a purge of my key between them finds the way listing the key
// with no entry yet and leaves its tombstone there (remove), and a store
// of my key asked for after the purge may take that way in turn. If the
// way now holds my key's tombstone, or another store's slot of my key with
// my entry still written over that store's, my late entry is blanked: it
// would be served from the key's preferred way, which a lookup reads
// without the index. It reports false if the tombstone is there. (A way
// another key took meanwhile keeps the entry, as any copy the index does
// not list; a store of my key after mine keeps its own.) One index read
// a store; a failed read keeps the entry.
func (t *Table) stillListed(b uint64, w int, mine slot, encoded []byte, since, now int64) bool {
	if _, _, err := t.readIndex(b); err != nil {
		return true
	}
	return !t.dropLate(b, w, mine) && !t.dropForeignLate(b, w, mine.fp, encoded, since, now)
}

// dropForeignLate is dropLate for the other layout of a reload's overlap,
// whose index of its own shape the store just read (foreignIdx): where it
// holds fp's tombstone of a purge after since, or lists fp (a store of the
// key there, which may have taken a tombstone's way after a purge: review
// Z37), way w's late entry is blanked if it is still the one this store
// wrote, byte for byte (another key's entry of the same stale time stays:
// review Z37). It reports whether the store is undone: blanked, or written
// over already (review Z36). Blanking a copy the other layout also holds
// costs this layout a miss.
func (t *Table) dropForeignLate(b uint64, w int, fp uint64, encoded []byte, since, now int64) bool {
	if t.foreignIdx == nil || w < 0 {
		return false
	}
	if purged, listed := scanForeign(t.foreignIdx, fp, since, now); !purged && !listed {
		return false
	}
	raw, _, err := t.store.GetInto(t.entryKey(b, w), t.entBuf)
	t.keepEntBuf(raw)
	if err != nil {
		return false
	}
	if bytes.Equal(raw, encoded) {
		_ = t.store.Set(t.entryKey(b, w), nil, 0)
	}
	return true // not stored: blanked, or written over already
}

// dropLate is stillListed's check on the index t.idx just read (a batch's
// too, one read for a bucket): it blanks way w's late entry written for
// mine where it must, and reports whether the way holds mine's key's
// tombstone.
func (t *Table) dropLate(b uint64, w int, mine slot) (purged bool) {
	if w < 0 || w >= len(t.idx) {
		return false
	}
	s := t.idx[w]
	if s == mine || s.fp != mine.fp {
		return false
	}
	if s.tag != purgedTag {
		// Another store of my key: blank the way only if what it holds
		// is still my entry, written over that store's (one more read,
		// only here); a store after mine keeps its own.
		if theirs, err := t.unwritten(b, w, mine.staleUntil); err != nil || theirs {
			return false
		}
	}
	_ = t.store.Set(t.entryKey(b, w), nil, 0)
	return s.tag == purgedTag
}

func (t *Table) chooseWay(fp uint64, tag uint32, now int64) (int, InsertResult) {
	same := -1
	for w, s := range t.idx {
		if s.fp != fp {
			continue
		}
		if s.staleUntil > now && s.tag != purgedTag {
			// The key live: replaced where it is, though a dead copy or
			// a tombstone of it comes first (review Z149: a second live
			// listing was made, and the older copy kept being served).
			return w, InsertResult{}
		}
		if s.tag == purgedTag && s.staleUntil > now {
			// The key's tombstone stays for its life: taken by a store
			// asked for after the purge, it refused no answer asked for
			// before it, which then replaced that store's (review Z163).
			continue
		}
		// The key's dead entry or its dead tombstone holds no live way of
		// the tenant's: taken again without the share's check, a tenant
		// at its share held one way more (review Z147).
		if same < 0 {
			same = w
		}
	}
	if same >= 0 && (t.tenantWays == 0 || tag == 0) {
		return same, InsertResult{Expired: t.idx[same].staleUntil <= now}
	}
	if t.tenantWays > 0 && tag != 0 {
		own, held := -1, 0
		for w, s := range t.idx {
			if s.fp != 0 && s.tag == tag && s.staleUntil > now {
				held++
				if own < 0 || s.staleUntil < t.idx[own].staleUntil {
					own = w
				}
			}
		}
		if held >= t.tenantWays {
			return own, InsertResult{Evicted: true, OwnShare: true}
		}
	}
	if same >= 0 {
		return same, InsertResult{Expired: t.idx[same].staleUntil <= now}
	}
	if pw := t.preferredWay(fp); t.idx[pw].fp == 0 {
		return pw, InsertResult{Filled: true}
	} else if t.idx[pw].staleUntil <= now {
		return pw, InsertResult{Expired: true}
	}
	for w, s := range t.idx {
		if s.fp == 0 {
			return w, InsertResult{Filled: true}
		}
	}
	victim := -1
	for w, s := range t.idx {
		if s.staleUntil <= now {
			return w, InsertResult{Expired: true}
		}
		if s.fp == fp && s.tag == purgedTag {
			continue // the key's live tombstone: as above (review Z168)
		}
		if victim < 0 || s.staleUntil < t.idx[victim].staleUntil {
			victim = w
		}
	}
	if victim < 0 {
		victim = 0 // a bucket of one way, the tombstone's
	}
	return victim, InsertResult{Evicted: true}
}

// tombstoneAfter reports whether t.idx holds fp's tombstone of a purge
// made after since (purgedAfter), whichever way the store then takes
// (chooseWay may take another of the tenant's ways than the key's own).
func (t *Table) tombstoneAfter(fp uint64, since, now int64) bool {
	for w := range t.idx {
		if t.purgedAfter(w, fp, since, now) {
			return true
		}
	}
	return false
}

// purgedAfter reports whether way w, a tombstone, is fp's from a purge
// made after since, and not more than clockSkewMs after now: a purge
// further ahead is from before the wall clock stepped back, when every
// request since would look older than it and have its answer refused for
// as long as the step. (Within it: a callback reads the clock once, so a
// store's now may lag another worker's purge by a few milliseconds.)
func (t *Table) purgedAfter(w int, fp uint64, since, now int64) bool {
	return t.idx[w].purgedAfter(fp, since, now)
}

// purgedAfter reports whether s is fp's tombstone of a purge made after
// since (and not past now by more than clock skew).
func (s *slot) purgedAfter(fp uint64, since, now int64) bool {
	at := s.staleUntil - purgeTombLife
	return s.tag == purgedTag && s.fp == fp && at > since && at-now <= clockSkewMs
}

// purgedSince reports whether fp's bucket holds a tombstone of a purge of
// fp made after since (purgedAfter), for a store under another key of
// the answer asked for under fp (Cache.purgedAsLooked).
func (t *Table) purgedSince(fp uint64, since, now int64) (bool, error) {
	if _, _, err := t.readIndex(t.bucketOf(fp)); err != nil {
		return false, err
	}
	if t.tombstoneAfter(fp, since, now) {
		return true, nil
	}
	return t.foreignIdx != nil && foreignPurgedAfter(t.foreignIdx, fp, since, now), nil
}

// foreignPurgedAfter is purgedAfter over an index of another shape (the
// other layout's, in a reload's overlap, whose ways count its fourth byte
// gives): a purge there of fp, after since, refuses a store here as a
// tombstone here would. A configuration that purges under the other's
// layout leaves that index as it is (Table.visiting), so its tombstone is
// only in its own (review Z32).
func foreignPurgedAfter(raw []byte, fp uint64, since, now int64) bool {
	purged, _ := scanForeign(raw, fp, since, now)
	return purged
}

// foreignListed counts the occupied slots (listed, not a tombstone) of
// the index of another shape the last readIndex found (foreignIdx), which
// a write of this table's shape replaces: each was counted occupied when
// its layout stored it, and leaves the count with it (review Z67).
func (t *Table) foreignListed() int {
	raw := t.foreignIdx
	if len(raw) < 4 || raw[0] != indexMagic0 || raw[1] != indexMagic1 || raw[2] != indexVersion || len(raw) != 4+indexWayLen*int(raw[3]) {
		return 0
	}
	n := 0
	for r := raw[4:]; len(r) >= indexWayLen; r = r[indexWayLen:] {
		if binary.LittleEndian.Uint64(r) != 0 && binary.LittleEndian.Uint32(r[16:]) != purgedTag {
			n++
		}
	}
	return n
}

// scanForeign reads an index of another shape (foreignIdx) for fp: whether
// it holds fp's tombstone of a purge after since, and whether it lists fp
// in a way that is no tombstone.
func scanForeign(raw []byte, fp uint64, since, now int64) (purged, listed bool) {
	if len(raw) < 4 || raw[0] != indexMagic0 || raw[1] != indexMagic1 || raw[2] != indexVersion || len(raw) != 4+indexWayLen*int(raw[3]) {
		return false, false
	}
	for r := raw[4:]; len(r) >= indexWayLen; r = r[indexWayLen:] {
		s := slot{binary.LittleEndian.Uint64(r), int64(binary.LittleEndian.Uint64(r[8:])), binary.LittleEndian.Uint32(r[16:])}
		purged = purged || s.purgedAfter(fp, since, now)
		listed = listed || s.fp == fp && s.tag != purgedTag
	}
	return purged, listed
}

// clockSkewMs is how far ahead of a reader's clock a time written by
// another worker may lie without the clock having stepped back: a
// callback reads the clock once, and may run a while.
const clockSkewMs = 10_000

// PurgeKey is Remove for a purge of the key at now: it also leaves the
// key's tombstone in the index (in a way it freed, else an empty or dead
// one; none if the bucket has no such way), so that an answer to a
// request that looked the key up before the purge is not stored after it
// (InsertSince). It reports how many occupied slots it freed: the key's,
// and a dead entry's whose way its tombstone took.
func (t *Table) PurgeKey(fp uint64, key []byte, now int64) (int, error) {
	return t.remove(fp, key, now)
}

// Remove deletes the entry stored under key, if any; it reports whether a
// slot was freed. The entry is looked for where a lookup would find it:
// its preferred way and the ways the index lists for its fingerprint.
// Every copy found there is deleted: besides the one the index lists, two
// stores racing on one way can leave one in the preferred way that the
// index lists for another key (RATIONALE, "A copy the index does not
// list"), which a lookup reading that way first would still serve. The
// index is changed only where it lists fp: another key listed over an
// unlisted copy keeps its slot. A way the index lists for fp is freed
// even when its entry cannot be read yet: a store writes the index first,
// and its entry write, on its way, finds the way no longer listing the key
// (stillListed).
func (t *Table) Remove(fp uint64, key []byte) (bool, error) {
	n, err := t.remove(fp, key, 0)
	return n > 0, err
}

// remove is Remove, and PurgeKey with purgedAt (ms) not 0; it returns how
// many occupied slots it freed.
func (t *Table) remove(fp uint64, key []byte, purgedAt int64) (int, error) {
	b := t.bucketOf(fp)
	pw := t.preferredWay(fp)
	var e Entry
	for attempt := 0; attempt < maxCASAttempts; attempt++ {
		cas, exists, err := t.readIndex(b)
		if err != nil {
			return 0, err
		}
		foreign := t.visiting && exists && !t.idxListed
		var found uint64 // ways holding the key, or listing it (ways ≤ 64: config)
		freed, tomb := 0, -1
		for w := range t.idx {
			listed := t.idx[w].fp == fp && t.idx[w].tag != purgedTag
			if w != pw && !listed && t.idx[w].fp != fp {
				// (The key's tombstone's way is read too: a purge whose
				// blank failed left the entry there, and the purge sent
				// again found nothing to blank; review Z212.)
				continue
			}
			ok, err := t.readEntry(b, w, key, math.MinInt64, &e)
			if err == nil && !ok && listed {
				listed, err = t.unwritten(b, w, t.idx[w].staleUntil) // another key of its fingerprint keeps its slot
			}
			if err != nil {
				return 0, err
			}
			if ok || listed {
				found |= 1 << w
			}
			if listed {
				t.idx[w] = slot{}
				freed++
				if tomb < 0 {
					tomb = w // where a store in flight looks for its key (stillListed)
				}
			}
		}
		if purgedAt == 0 || foreign {
			tomb = -1
		} else if tomb < 0 {
			tomb = t.tombWay(fp, purgedAt)
		}
		if found == 0 && tomb < 0 {
			return 0, nil
		}
		if tomb >= 0 {
			if s := t.idx[tomb]; s.fp != 0 && s.tag != purgedTag {
				freed++ // a dead entry's way: its slot was counted occupied
			}
			// One tombstone a key: an earlier purge's, which the store
			// after it went around (chooseWay), is folded into this one.
			// Each purge and store again held one more way of the bucket,
			// and their stores evicted the neighbours (review Z168).
			until := purgedAt + purgeTombLife
			for w, s := range t.idx {
				if w != tomb && s.fp == fp && s.tag == purgedTag {
					until = max(until, s.staleUntil)
					t.idx[w] = slot{}
				}
			}
			t.idx[tomb] = slot{fp, until, purgedTag}
		}
		if !foreign && (exists && freed > 0 || tomb >= 0) {
			freed += t.foreignListed() // another layout's index, replaced
			err = t.writeIndex(b, cas, exists)
			if errIs(err, ErrCasMismatch) {
				continue
			}
			if err != nil {
				return 0, err
			}
			if tomb >= 0 {
				// Before the blanks: a batch whose entry lands after its
				// last read of the mark is blanked by them (batchStillListed).
				_ = t.store.Set(entryPurgeKey, entryPurgeValue, 0)
			}
		}
		for w := range t.idx {
			if found&(1<<w) != 0 {
				if err := t.store.Set(t.entryKey(b, w), nil, 0); err != nil {
					return freed, err
				}
			}
		}
		return freed, nil
	}
	return 0, ErrContention
}

// tombWay is the way of t.idx (a bucket's index, its copies of fp freed)
// where fp's tombstone goes: one already holding it, else an empty way,
// else a dead one at now; -1 if every way holds a live entry.
func (t *Table) tombWay(fp uint64, now int64) int {
	at := -1
	for w, s := range t.idx {
		switch {
		case s.fp == fp && s.tag == purgedTag:
			return w
		case s.fp == 0 && (at < 0 || t.idx[at].fp != 0):
			at = w
		case at < 0 && s.staleUntil <= now:
			at = w
		}
	}
	return at
}

// Clear empties every bucket and returns how many occupied slots it freed.
// It is an administrative operation: B index writes and up to B×W entry
// writes.
func (t *Table) Clear() (int, error) {
	freed := 0
	for b := uint64(0); b < t.buckets; b++ {
		for attempt := 0; ; attempt++ {
			cas, exists, err := t.readIndex(b)
			if err != nil {
				return freed, err
			}
			if !exists {
				break
			}
			n, any := 0, false
			for _, s := range t.idx {
				if s.fp != 0 {
					any = true
					if s.tag != purgedTag { // a tombstone holds no entry: its purge counted it
						n++
					}
				}
			}
			if !any {
				break
			}
			t.resetIdx()
			err = t.writeIndex(b, cas, true)
			if errIs(err, ErrCasMismatch) {
				if attempt < maxCASAttempts {
					continue
				}
				err = ErrContention
			}
			if err != nil {
				return freed, err
			}
			freed += n
			break
		}
		// Blank every entry, listed in the index or not: a direct read of a
		// preferred way does not consult the index.
		for w := 0; w < t.ways; w++ {
			raw, _, err := t.store.GetInto(t.entryKey(b, w), t.entBuf)
			t.keepEntBuf(raw)
			if err == nil && len(raw) > 0 {
				_ = t.store.Set(t.entryKey(b, w), nil, 0)
			}
		}
	}
	return freed, nil
}

// Occupied counts non-empty slots by reading every index (for tests and
// diagnostics; not on any request path).
func (t *Table) Occupied() (int, error) {
	n := 0
	for b := uint64(0); b < t.buckets; b++ {
		if _, _, err := t.readIndex(b); err != nil {
			return n, err
		}
		for _, s := range t.idx {
			if s.fp != 0 {
				n++
			}
		}
	}
	return n, nil
}

package cachecore

import (
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"unsafe"
)

// Model state: for every (route, model) the cache keeps, in shared data, the
// model version the upstream last reported and a generation number. Both
// are part of every key of that model, so
//
//   - when the upstream reports a new version, the old version's entries are
//     never found again (even with equal embedding dimensions), and
//   - a purge of a model or namespace is one generation change, not a scan.
//
// The state lives in a fixed table of 256 keys (mc:m:<slot>), each holding
// up to modelsPerSlot records, so it stays bounded whatever model names
// clients send. A record's slot and id are a keyed hash (SipHash with the
// process secret) of route and model: which names share a slot cannot be
// computed from outside.
//
// A record is live until the latest StaleUntil of the entries stored under
// it (extended on store): forgetting a live record would give its model a
// new generation and make live entries — any tenant's — unreachable. So a
// live record is never evicted: a new model whose slot is full of live
// records is not stored (ReasonModelTableFull) until one of them expires.
//
// Generations are random 64-bit numbers, never counters: a record reclaimed
// after its entries died and created again gets a new generation, so
// entries purged before can never become reachable again.
const (
	modelSlots    = 256
	modelsPerSlot = 16
)

// ErrModelTableFull means a new model's slot holds only live records.
var ErrModelTableFull = errors.New("model table: slot full of live records")

type modelRecord struct {
	id      uint64 // keyed hash of route and model
	gen     uint64
	until   int64 // unix ms: live until then (entries stored under it may be)
	version [versionIDLen]byte
	// Shadow comparison window (see shadow.go).
	divStart int64
	samples  uint32
	diverged uint32
	// divTenant is the tenant tag of the window's first divergent sample;
	// divOthers counts divergent samples of other tenants (shadow.min_tenants).
	divTenant uint64
	divOthers uint32
}

// moveTo moves r to generation gen, with a shadow comparison window of
// its own: the retired generation's samples, of entries no longer served,
// would count toward invalidating the new one (review Z235).
func (r *modelRecord) moveTo(gen uint64) {
	r.gen = gen
	r.divStart, r.samples, r.diverged, r.divTenant, r.divOthers = 0, 0, 0, 0, 0
}

// versionIDLen is the size of a version's identity: the first 16 bytes of
// the SHA-256 of the whole version string, however long (the string is
// upstream-controlled; comparing a prefix would make versions that share
// it equal).
const versionIDLen = 16

// VersionID identifies a model version; zero means none recorded.
type VersionID [versionIDLen]byte

func versionID(v string) VersionID {
	if v == "" {
		return VersionID{}
	}
	sum := sha256.Sum256([]byte(v))
	var id VersionID
	copy(id[:], sum[:])
	return id
}

// same reports whether v and o are the same version, compared as two
// words (words.go): == on the array calls runtime.memequal.
func (v *VersionID) same(o *VersionID) bool {
	pv, po := unsafe.Pointer(v), unsafe.Pointer(o)
	return word(pv, 0) == word(po, 0) && word(pv, 8) == word(po, 8)
}

// ModelState is what a request's key needs from the model table.
type ModelState struct {
	Found   bool
	Gen     uint64
	Version VersionID
	// empty: no answer was ever stored under the record (it was made
	// when a request was keyed: live until minus the time it was made):
	// a lookup has nothing to find, as for a model without a record.
	empty bool
}

// is reports whether st and o are the same state, as st == o does,
// field by field: == on the struct calls its generated equality, which
// calls runtime.memequal128 for the version (a lead's look again compares
// the state it looks under with its request's on every miss).
func (st *ModelState) is(o *ModelState) bool {
	return st.Found == o.Found && st.Gen == o.Gen && st.empty == o.empty && st.Version.same(&o.Version)
}

func (c *Cache) modelID(route, model string) (uint64, error) {
	// Requests name few models: the last id made is kept, under the keys
	// it was made with. So route and model must be strings of their own,
	// never views of reused memory (bytesString): the kept pair is compared
	// by content. Every caller's are (config names, the canonicaliser's
	// decoded model, gjson's and strconv's results on copies). hk is nil
	// until the keys are loaded, and so is the memo's.
	if m := &c.lastModelID; m.hk == c.hk && m.hk != nil && m.model == model && m.route == route {
		return m.id, nil
	}
	return c.modelIDNew(route, model)
}

// modelIDNew is modelID of a pair other than the last.
//
//go:noinline
func (c *Cache) modelIDNew(route, model string) (uint64, error) {
	k, err := c.keys()
	if err != nil {
		return 0, err
	}
	var buf [256]byte
	b := append(buf[:0], route...)
	b = append(b, 0)
	b = append(b, model...)
	id := k.model.sum64(b)
	c.lastModelID = modelIDMemo{hk: k, route: route, model: model, id: id}
	return id, nil
}

// modelIDMemo is the last model id made (modelID).
type modelIDMemo struct {
	hk           *hashKeys
	route, model string
	id           uint64
}

// modelKeyOf is modelKey, made once per slot.
func (c *Cache) modelKeyOf(id uint64) string {
	k := &c.modelKeys[id%modelSlots]
	if *k == "" {
		*k = modelKey(id)
	}
	return *k
}

func modelKey(id uint64) string {
	return string(appendUint([]byte("mc:m:"), id%modelSlots))
}

// Model records, little-endian: "MV" 2 count, then per record
// id(8) gen(8) until(8) divStart(8) samples(4) diverged(4) version(16)
// divTenant(8) divOthers(4). A slot in any other shape reads as empty.
const modelRecordLen = 68

func decodeModels(raw []byte) []modelRecord {
	n, ok := modelCount(raw)
	if !ok {
		return nil
	}
	out := make([]modelRecord, n, n+1)
	for i := range out {
		out[i] = decodeModel(raw[4+i*modelRecordLen:])
	}
	return out
}

// modelCount validates a slot's shape and returns its record count.
func modelCount(raw []byte) (int, bool) {
	if len(raw) < 4 || raw[0] != 'M' || raw[1] != 'V' || raw[2] != 2 {
		return 0, false
	}
	n := int(raw[3])
	if n > modelsPerSlot || len(raw) != 4+n*modelRecordLen {
		return 0, false
	}
	return n, true
}

func decodeModel(r []byte) modelRecord {
	le := binary.LittleEndian
	m := modelRecord{
		id:       le.Uint64(r),
		gen:      le.Uint64(r[modelGenAt:]),
		until:    int64(le.Uint64(r[16:])),
		divStart: int64(le.Uint64(r[24:])),
		samples:  le.Uint32(r[32:]),
		diverged: le.Uint32(r[36:]),
	}
	copy(m.version[:], r[modelVersionAt:])
	m.divTenant = le.Uint64(r[56:])
	m.divOthers = le.Uint32(r[64:])
	return m
}

// Where a record's generation and version are (decodeModel, modelStateOf).
const modelGenAt, modelVersionAt = 8, 40

// modelStateOf reads what a lookup needs of a record — its generation and
// version — and nothing else: every keyed request reads one, and
// decodeModel's other fields are for updates.
func modelStateOf(r []byte) (st ModelState) {
	st.readRecord(r)
	return st
}

// readRecord is modelStateOf written into st: modelState's caller's state
// itself (a request's), not a 5-word result copied out of two calls.
func (st *ModelState) readRecord(r []byte) {
	r = r[:modelRecordLen] // one bounds check for the loads below
	le := binary.LittleEndian
	// Every field, one by one: a literal assigned through st was built
	// on the stack and copied (4 lines of code more, on every keyed
	// request).
	st.Found, st.Gen, st.empty = true, le.Uint64(r[modelGenAt:]), int64(le.Uint64(r[16:])) <= 0
	st.Version = VersionID(r[modelVersionAt:])
}

func encodeModels(recs []modelRecord) []byte {
	b := make([]byte, 0, 4+len(recs)*modelRecordLen)
	b = append(b, 'M', 'V', 2, byte(len(recs)))
	le := binary.LittleEndian
	for _, r := range recs {
		b = le.AppendUint64(b, r.id)
		b = le.AppendUint64(b, r.gen)
		b = le.AppendUint64(b, uint64(r.until))
		b = le.AppendUint64(b, uint64(r.divStart))
		b = le.AppendUint32(b, r.samples)
		b = le.AppendUint32(b, r.diverged)
		b = append(b, r.version[:]...)
		b = le.AppendUint64(b, r.divTenant)
		b = le.AppendUint32(b, r.divOthers)
	}
	return b
}

// maxVersionLen bounds a reported version where it is shown (logs); its
// identity is always the digest of the whole string.
const maxVersionLen = 64

// loadModel reads the state of (route, model) without creating it.
func (c *Cache) loadModel(route, model string) (st ModelState, err error) {
	err = c.modelState(&st, route, model, false)
	return st, err
}

// modelState reads the state of (route, model) into st; with create, a
// model without a record gets one (keyingState). One function for both,
// so that a request's keying and its leader's second look run the same
// code. st is written only when there is no error: SetBody passes its
// request's own state, which a failed read leaves as it was. (A result
// of 7 words would be copied out of modelState and again into the
// request: every keyed request reads one.)
func (c *Cache) modelState(st *ModelState, route, model string, create bool) error {
	id, err := c.modelID(route, model)
	if err != nil {
		return err
	}
	raw, _, err := c.store.GetInto(c.modelKeyOf(id), c.modelBuf)
	if cap(raw) > cap(c.modelBuf) && len(raw) <= 64<<10 {
		c.modelBuf = raw[:0]
	}
	if err == nil {
		n, _ := modelCount(raw) // a slot in another shape holds no record
		for i := 0; i < n; i++ {
			r := raw[4+i*modelRecordLen:]
			if binary.LittleEndian.Uint64(r) == id {
				st.readRecord(r)
				return nil
			}
		}
	} else if !errIs(err, ErrNotFound) {
		return err
	}
	if create { // off a hit's path: a hit's model has a record
		made, err := c.makeModel(route, model)
		if err == nil {
			*st = made
		}
		return err
	}
	*st = ModelState{}
	return nil
}

// updateModel applies f to the record of (route, model), creating it with a
// fresh generation if missing, and returns the state f left. f returns
// false to leave the record unchanged; created tells it the record is
// new, made by this call. Updates are CAS loops.
//
// A missing record takes a free place in its slot, or the place of a record
// no longer live (the one that died first); if every record is live it
// fails with ErrModelTableFull and nothing changes. A created record is
// live until now; f extends that when it stores entries under it.
func (c *Cache) updateModel(route, model string, f func(r *modelRecord, created bool) bool) (ModelState, error) {
	return c.updateModelAs(route, model, createReclaiming, f)
}

// How updateModelAs treats a missing record.
type createMode uint8

const (
	createReclaiming createMode = iota // make it, reclaiming a place if need be
	createIfFree                       // make it only in a free place (else ErrModelTableFull)
	createNever                        // leave it missing: errNoRecord
)

// errNoRecord: updateModelAs with createNever found no record.
var errNoRecord = errors.New("model table: no record")

// updateModelAs is updateModel with the treatment of a missing record.
func (c *Cache) updateModelAs(route, model string, mode createMode, f func(r *modelRecord, created bool) bool) (ModelState, error) {
	id, err := c.modelID(route, model)
	if err != nil {
		return ModelState{}, err
	}
	key := c.modelKeyOf(id)
	for attempt := 0; attempt < maxCASAttempts; attempt++ {
		raw, cas, err := c.store.Get(key)
		exists := err == nil
		if err != nil && !errIs(err, ErrNotFound) {
			return ModelState{}, err
		}
		recs := decodeModels(raw)
		i := -1
		for j := range recs {
			if recs[j].id == id {
				i = j
				break
			}
		}
		changed, created := false, false
		if i < 0 {
			if mode == createNever {
				return ModelState{}, errNoRecord
			}
			rec := modelRecord{id: id, gen: c.newGeneration(), until: c.nowMs()}
			if len(recs) < modelsPerSlot {
				recs = append(recs, rec)
				i = len(recs) - 1
			} else {
				if mode == createIfFree {
					return ModelState{}, ErrModelTableFull
				}
				if i = reclaimPlace(recs, c.nowMs()); i < 0 {
					return ModelState{}, ErrModelTableFull
				}
				recs[i] = rec // reclaimed: its entries are all dead
			}
			changed, created = true, true
		}
		if f(&recs[i], created) {
			changed = true
		}
		st := ModelState{Found: true, Gen: recs[i].gen, Version: recs[i].version, empty: recs[i].until <= 0}
		if !changed {
			return st, nil
		}
		if !exists {
			if cas, err = CreateCAS(c.store); err != nil {
				return ModelState{}, err
			}
		}
		err = c.store.Set(key, encodeModels(recs), cas)
		if errIs(err, ErrCasMismatch) {
			continue
		}
		return st, err
	}
	return ModelState{}, ErrContention
}

// A record made when a request is keyed (keyingState) holds no entry yet:
// its until is minus the time it was made, read as empty. For
// youngRecordMs after that it is not reclaimed, so that its first answer,
// in flight, finds the generation it was keyed under (another client's
// flood of model names would otherwise reclaim it first and have that
// answer refused); then it is reclaimed before any other.
const youngRecordMs = 30 * 1000

// reclaimable reports whether a record live until until may give its
// place to another model's.
//
// A young record made further ahead than clockSkewMs was made before the
// wall clock stepped back: it is reclaimable, as leases past their
// horizon are dead, rather than young for as long as the step (review
// Z200).
func reclaimable(until, now int64) bool {
	if until <= 0 {
		return -until <= now-youngRecordMs || -until-now > clockSkewMs
	}
	return until <= now
}

// reclaimPlace picks the record a new one takes the place of (-1: none):
// a record whose entries are all dead, the one that died first; else an
// empty record past its young time, the oldest (one whose first answer is
// still upstream is the newest).
func reclaimPlace(recs []modelRecord, now int64) int {
	best := -1
	rank := func(until int64) (class int, at int64) {
		if until <= 0 {
			return 1, -until // made at
		}
		return 0, until // died at
	}
	for j := range recs {
		if !reclaimable(recs[j].until, now) {
			continue
		}
		if best < 0 {
			best = j
			continue
		}
		cj, tj := rank(recs[j].until)
		cb, tb := rank(recs[best].until)
		if cj < cb || cj == cb && tj < tb {
			best = j
		}
	}
	return best
}

// extendLife keeps r live at least until staleUntil, the StaleUntil of an
// entry about to be stored under it. It reports whether r changed. To
// write the slot about once per entry lifetime rather than on every store,
// an extension reaches as far past staleUntil as staleUntil is from now.
func extendLife(r *modelRecord, staleUntil, now int64) bool {
	if staleUntil <= 0 || staleUntil <= r.until {
		// (0: no entry. Taken as a time, it overwrote a young record's
		// "made at", a negative until, and the record lost its
		// protection from reclaiming: review Z173.)
		return false
	}
	r.until = staleUntil + max(staleUntil-now, 0)
	return true
}

func (c *Cache) newGeneration() uint64 {
	for {
		if g := c.rand(); g != 0 {
			return g
		}
	}
}

// ObserveVersion records the version an upstream response reported for
// (route, model) and reports whether it differs from the one recorded
// before (a model switch: every older entry of that model is now
// unreachable). It creates the record if needed, and keeps it live until
// staleUntil (the entry about to be stored; 0 for none). Versions are
// compared whole, by digest. A switch also renews the generation, so
// that a switch back (a lagging replica) never reaches the entries of
// the version that was current before.
func (c *Cache) ObserveVersion(route, model, version string, staleUntil int64) (ModelState, bool, error) {
	st, changed, _, err := c.settleModel(route, model, ModelState{}, false, version, true, staleUntil)
	return st, changed, err
}

// settleModel updates the record of (route, model) for an answer about to
// be stored under it, keyed at lookup under the state before: it keeps the
// record live until staleUntil and, with versioned, records the version
// the answer reported. stale reports (with check) that the answer belongs
// to an earlier state: the record's generation moved on since its lookup
// (a purge, a version switch, a shadow invalidation — or a reclaim, which
// may have hidden one of those) — and then nothing is changed. Without
// check nothing is stale. A request keyed without a record (a full model
// table) is not stored at all (prepareStore).
func (c *Cache) settleModel(route, model string, before ModelState, check bool, version string, versioned bool, staleUntil int64) (st ModelState, changed, stale bool, err error) {
	vid := versionID(version)
	now := c.nowMs()
	mode := createReclaiming
	if check {
		mode = createNever // a record gone since the lookup was reclaimed: stale
	}
	st, err = c.updateModelAs(route, model, mode, func(r *modelRecord, created bool) bool {
		changed, stale = false, false
		if check && (!before.Found || r.gen != before.Gen) {
			stale = true
			return false
		}
		update := extendLife(r, staleUntil, now)
		if versioned && r.version != vid {
			changed = r.version != (VersionID{})
			if changed {
				r.moveTo(c.newGeneration())
			}
			// Looked up under another version than the record's, an
			// answer reporting a third one passed a state its request
			// never saw (a first version another answer reported): a
			// purge by replay made in it names neither the key looked up
			// nor the new one (review Z16, stop 72). The switch stands;
			// the answer is not stored.
			stale = check && r.version != before.Version
			r.version = vid
			update = true
		}
		return update
	})
	if errors.Is(err, errNoRecord) {
		return ModelState{}, false, true, nil
	}
	return st, changed, stale, err
}

// PurgeModel moves (route, model) to a new generation: every entry of that
// model, for every tenant, is unreachable from now on. A model without a
// record whose slot is full has no reachable entries: nothing to do.
func (c *Cache) PurgeModel(route, model string) error {
	_, _, err := c.purgeModel(route, model, 0)
	return err
}

// purgeModel is PurgeModel, which also returns the state it made (Found
// false if it made none: no record in a full slot) and whether the
// generation it replaced was other than from (in the same compare-and-
// swap: anything moved it since the caller read from).
func (c *Cache) purgeModel(route, model string, from uint64) (_ ModelState, moved bool, _ error) {
	// A record the purge makes takes a free place only: taking another
	// model's could refuse that one's first answer in flight.
	st, err := c.updateModelAs(route, model, createIfFree, func(r *modelRecord, _ bool) bool {
		moved = r.gen != from
		r.moveTo(c.newGeneration())
		return true
	})
	if errors.Is(err, ErrModelTableFull) {
		return ModelState{}, true, nil
	}
	return st, moved, err
}

// renewGenerations moves every model of every route to a new generation,
// as PurgeModel does one: a purge of everything then refuses, like a
// purge of a model, the answers in flight when it came (their
// generation is gone), and no entry stored before it is reachable again.
func (c *Cache) renewGenerations() error {
	for slot := uint64(0); slot < modelSlots; slot++ {
		key := c.modelKeyOf(slot)
		for attempt := 0; ; attempt++ {
			if attempt == maxCASAttempts {
				return ErrContention
			}
			raw, cas, err := c.store.Get(key)
			if errIs(err, ErrNotFound) {
				break
			}
			if err != nil {
				return err
			}
			recs := decodeModels(raw)
			if len(recs) == 0 {
				break
			}
			for i := range recs {
				recs[i].moveTo(c.newGeneration())
			}
			if err = c.store.Set(key, encodeModels(recs), cas); err == nil {
				break
			} else if !errIs(err, ErrCasMismatch) {
				return err
			}
		}
	}
	return nil
}

// purgeAll drops every entry of L1 and renews every model's generation.
func (c *Cache) purgeAll() (freed int, err error) {
	freed, err = c.table.Clear()
	if gerr := c.renewGenerations(); err == nil {
		err = gerr
	}
	return freed, err
}

package cachecore

import (
	"encoding/binary"
	"errors"
	"strconv"
)

// Table is the bounded cache store: a set-associative slot table laid over a
// Store. Envoy's shared data has no delete and no TTL, so the cache must
// never derive store keys from request data; it uses a fixed key space:
//
//	mc:i:<b>     index of bucket b: Ways × (fingerprint, staleUntil)
//	mc:e:<b>:<w> entry in way w of bucket b (empty value = absent)
//
// A request's fingerprint (Hash64 of its full key) picks the bucket and is
// looked up in the bucket's small index; a match costs one more Get for the
// entry, whose stored key is compared byte for byte before it is used. So
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
	store   Store
	buckets uint64
	ways    int
	anchor  uint32 // a CAS read from another key: never the current CAS of ours
	idx     []slot
	keyBuf  []byte
	valBuf  []byte
}

type slot struct {
	fp         uint64 // 0 = empty
	staleUntil int64  // unix ms after which the entry is useless
}

const (
	indexMagic0, indexMagic1, indexVersion = 'M', 'I', 1
	anchorKey                              = "mc:anchor"
	maxCASAttempts                         = 8
)

// ErrContention means a CAS loop gave up; the caller skips the store (the
// response still reaches the client; a later request will store it).
var ErrContention = errors.New("store: too much contention")

// NewTable prepares a table over store with the given geometry.
func NewTable(store Store, buckets, ways int) *Table {
	return &Table{store: store, buckets: uint64(buckets), ways: ways}
}

// Fingerprint maps a full key to a non-zero 64-bit fingerprint.
func Fingerprint(key []byte) uint64 {
	fp := Hash64(key, 0x6d6f64656c636163) // "modelcac"
	if fp == 0 {
		fp = 1
	}
	return fp
}

// CreateCAS returns a CAS value that cannot be the current CAS of any key
// but the anchor, for "create only if missing" sets (see RATIONALE.md,
// "Race-free leases"): a Set with it fails on an existing key and succeeds
// on a missing one. The anchor key is created on first use.
func CreateCAS(s Store) (uint32, error) {
	_, cas, err := s.Get(anchorKey)
	if errors.Is(err, ErrNotFound) {
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

func (t *Table) createCAS() (uint32, error) {
	if t.anchor == 0 {
		c, err := CreateCAS(t.store)
		if err != nil {
			return 0, err
		}
		t.anchor = c
	}
	return t.anchor, nil
}

func (t *Table) bucketOf(fp uint64) uint64 { return (fp >> 16) % t.buckets }

func (t *Table) indexKey(b uint64) string {
	t.keyBuf = append(t.keyBuf[:0], "mc:i:"...)
	t.keyBuf = strconv.AppendUint(t.keyBuf, b, 10)
	return string(t.keyBuf)
}

func (t *Table) entryKey(b uint64, w int) string {
	t.keyBuf = append(t.keyBuf[:0], "mc:e:"...)
	t.keyBuf = strconv.AppendUint(t.keyBuf, b, 10)
	t.keyBuf = append(t.keyBuf, ':')
	t.keyBuf = strconv.AppendUint(t.keyBuf, uint64(w), 10)
	return string(t.keyBuf)
}

// readIndex loads bucket b's index into t.idx. An absent, empty or foreign
// index (e.g. written with another geometry) reads as all-empty.
func (t *Table) readIndex(b uint64) (cas uint32, exists bool, err error) {
	raw, cas, err := t.store.Get(t.indexKey(b))
	if errors.Is(err, ErrNotFound) {
		t.resetIdx()
		return 0, false, nil
	}
	if err != nil {
		return 0, false, err
	}
	if len(raw) != 4+16*t.ways || raw[0] != indexMagic0 || raw[1] != indexMagic1 || raw[2] != indexVersion || int(raw[3]) != t.ways {
		t.resetIdx()
		return cas, true, nil
	}
	t.idx = t.idx[:0]
	for w := 0; w < t.ways; w++ {
		r := raw[4+16*w:]
		t.idx = append(t.idx, slot{binary.LittleEndian.Uint64(r), int64(binary.LittleEndian.Uint64(r[8:]))})
	}
	return cas, true, nil
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
	b := t.bucketOf(fp)
	if _, _, err := t.readIndex(b); err != nil {
		return nil, err
	}
	for w, s := range t.idx {
		if s.fp != fp || s.staleUntil <= now {
			continue
		}
		raw, _, err := t.store.Get(t.entryKey(b, w))
		if err != nil && !errors.Is(err, ErrNotFound) {
			return nil, err
		}
		if len(raw) == 0 {
			continue // claimed but not yet written, or purged
		}
		e, err := DecodeEntry(raw)
		if err != nil || string(e.Key) != string(key) {
			continue // foreign or colliding entry: a miss, never a wrong answer
		}
		if e.StaleUntil <= now {
			continue
		}
		return e, nil
	}
	return nil, nil
}

// InsertResult tells the caller what an insert displaced, for the stats.
type InsertResult struct {
	Filled  bool // an empty way was used: one more live entry
	Expired bool // a dead entry was replaced
	Evicted bool // a live entry was evicted for capacity
}

// Insert stores an encoded entry under fp. The way is chosen, in order: the
// way already holding fp, an empty way, a dead way (past staleUntil), else
// the way whose entry goes dead soonest (earliest staleUntil first).
func (t *Table) Insert(fp uint64, staleUntil int64, encoded []byte, now int64) (InsertResult, error) {
	b := t.bucketOf(fp)
	for attempt := 0; attempt < maxCASAttempts; attempt++ {
		cas, exists, err := t.readIndex(b)
		if err != nil {
			return InsertResult{}, err
		}
		w, res := t.chooseWay(fp, now)
		t.idx[w] = slot{fp, staleUntil}
		err = t.writeIndex(b, cas, exists)
		if errors.Is(err, ErrCasMismatch) {
			continue
		}
		if err != nil {
			return InsertResult{}, err
		}
		if err := t.store.Set(t.entryKey(b, w), encoded, 0); err != nil {
			return InsertResult{}, err
		}
		return res, nil
	}
	return InsertResult{}, ErrContention
}

func (t *Table) chooseWay(fp uint64, now int64) (int, InsertResult) {
	for w, s := range t.idx {
		if s.fp == fp {
			return w, InsertResult{Expired: s.staleUntil <= now}
		}
	}
	for w, s := range t.idx {
		if s.fp == 0 {
			return w, InsertResult{Filled: true}
		}
	}
	victim := 0
	for w, s := range t.idx {
		if s.staleUntil <= now {
			return w, InsertResult{Expired: true}
		}
		if s.staleUntil < t.idx[victim].staleUntil {
			victim = w
		}
	}
	return victim, InsertResult{Evicted: true}
}

// Remove deletes the entry stored under key, if any; it reports whether a
// live slot was freed.
func (t *Table) Remove(fp uint64, key []byte) (bool, error) {
	b := t.bucketOf(fp)
	for attempt := 0; attempt < maxCASAttempts; attempt++ {
		cas, exists, err := t.readIndex(b)
		if err != nil || !exists {
			return false, err
		}
		way := -1
		for w, s := range t.idx {
			if s.fp != fp {
				continue
			}
			raw, _, err := t.store.Get(t.entryKey(b, w))
			if err == nil {
				if e, derr := DecodeEntry(raw); derr == nil && string(e.Key) == string(key) {
					way = w
					break
				}
			}
		}
		if way < 0 {
			return false, nil
		}
		t.idx[way] = slot{}
		err = t.writeIndex(b, cas, true)
		if errors.Is(err, ErrCasMismatch) {
			continue
		}
		if err != nil {
			return false, err
		}
		return true, t.store.Set(t.entryKey(b, way), nil, 0)
	}
	return false, ErrContention
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
			n := 0
			for _, s := range t.idx {
				if s.fp != 0 {
					n++
				}
			}
			if n == 0 {
				break
			}
			occupied := append([]slot(nil), t.idx...)
			t.resetIdx()
			err = t.writeIndex(b, cas, true)
			if errors.Is(err, ErrCasMismatch) {
				if attempt < maxCASAttempts {
					continue
				}
				err = ErrContention
			}
			if err != nil {
				return freed, err
			}
			freed += n
			for w, s := range occupied {
				if s.fp != 0 {
					_ = t.store.Set(t.entryKey(b, w), nil, 0)
				}
			}
			break
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

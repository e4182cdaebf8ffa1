package cachecore

import (
	"encoding/binary"
	"errors"
	"strconv"
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
// clients send. Generations are random 64-bit numbers, never counters: a
// record evicted from a full slot and created again gets a new generation,
// so entries purged before can never become reachable again.
const (
	modelSlots    = 256
	modelsPerSlot = 8
)

type modelRecord struct {
	id      uint64 // Hash64 of route and model
	gen     uint64
	version string
	// Shadow comparison window (see staleness.go).
	divStart int64
	samples  uint32
	diverged uint32
}

// ModelState is what a request's key needs from the model table.
type ModelState struct {
	Found   bool
	Gen     uint64
	Version string
}

func modelID(route, model string) uint64 {
	var buf [256]byte
	b := append(buf[:0], route...)
	b = append(b, 0)
	b = append(b, model...)
	return Hash64(b, 0x6d6f64656c737461)
}

func modelKey(id uint64) string {
	return "mc:m:" + strconv.FormatUint(id%modelSlots, 10)
}

// Model records, little-endian: "MN" count, then per record
// id(8) gen(8) divStart(8) samples(4) diverged(4) len(1) version.
const modelRecordFixed = 33

func decodeModels(raw []byte) []modelRecord {
	if len(raw) < 3 || raw[0] != 'M' || raw[1] != 'N' {
		return nil
	}
	n := int(raw[2])
	raw = raw[3:]
	le := binary.LittleEndian
	out := make([]modelRecord, 0, n)
	for i := 0; i < n; i++ {
		if len(raw) < modelRecordFixed {
			return nil
		}
		vl := int(raw[32])
		if len(raw) < modelRecordFixed+vl {
			return nil
		}
		out = append(out, modelRecord{
			id:       le.Uint64(raw),
			gen:      le.Uint64(raw[8:]),
			divStart: int64(le.Uint64(raw[16:])),
			samples:  le.Uint32(raw[24:]),
			diverged: le.Uint32(raw[28:]),
			version:  string(raw[modelRecordFixed : modelRecordFixed+vl]),
		})
		raw = raw[modelRecordFixed+vl:]
	}
	return out
}

func encodeModels(recs []modelRecord) []byte {
	b := []byte{'M', 'N', byte(len(recs))}
	le := binary.LittleEndian
	for _, r := range recs {
		b = le.AppendUint64(b, r.id)
		b = le.AppendUint64(b, r.gen)
		b = le.AppendUint64(b, uint64(r.divStart))
		b = le.AppendUint32(b, r.samples)
		b = le.AppendUint32(b, r.diverged)
		b = append(b, byte(len(r.version)))
		b = append(b, r.version...)
	}
	return b
}

// maxVersionLen bounds a reported version (it is upstream-controlled).
const maxVersionLen = 64

// loadModel reads the state of (route, model) without creating it.
func (c *Cache) loadModel(route, model string) (ModelState, error) {
	id := modelID(route, model)
	raw, _, err := c.store.Get(modelKey(id))
	if errors.Is(err, ErrNotFound) {
		return ModelState{}, nil
	}
	if err != nil {
		return ModelState{}, err
	}
	for _, r := range decodeModels(raw) {
		if r.id == id {
			return ModelState{Found: true, Gen: r.gen, Version: r.version}, nil
		}
	}
	return ModelState{}, nil
}

// updateModel applies f to the record of (route, model), creating it with a
// fresh generation if missing, and returns the state f left. f returns
// false to leave the record unchanged. Updates are CAS loops.
func (c *Cache) updateModel(route, model string, f func(r *modelRecord) bool) (ModelState, error) {
	id := modelID(route, model)
	key := modelKey(id)
	for attempt := 0; attempt < maxCASAttempts; attempt++ {
		raw, cas, err := c.store.Get(key)
		exists := err == nil
		if err != nil && !errors.Is(err, ErrNotFound) {
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
		changed := false
		if i < 0 {
			if len(recs) >= modelsPerSlot {
				recs = recs[1:] // forget the oldest; it gets a new generation later
			}
			recs = append(recs, modelRecord{id: id, gen: c.newGeneration()})
			i = len(recs) - 1
			changed = true
		}
		if f(&recs[i]) {
			changed = true
		}
		st := ModelState{Found: true, Gen: recs[i].gen, Version: recs[i].version}
		if !changed {
			return st, nil
		}
		if !exists {
			if cas, err = CreateCAS(c.store); err != nil {
				return ModelState{}, err
			}
		}
		err = c.store.Set(key, encodeModels(recs), cas)
		if errors.Is(err, ErrCasMismatch) {
			continue
		}
		return st, err
	}
	return ModelState{}, ErrContention
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
// unreachable). It creates the record if needed.
func (c *Cache) ObserveVersion(route, model, version string) (ModelState, bool, error) {
	if len(version) > maxVersionLen {
		version = version[:maxVersionLen]
	}
	var prev string
	var had bool
	st, err := c.updateModel(route, model, func(r *modelRecord) bool {
		prev, had = r.version, true
		if r.version == version {
			return false
		}
		r.version = version
		return true
	})
	return st, had && prev != "" && prev != version, err
}

// PurgeModel moves (route, model) to a new generation: every entry of that
// model, for every tenant, is unreachable from now on.
func (c *Cache) PurgeModel(route, model string) error {
	_, err := c.updateModel(route, model, func(r *modelRecord) bool {
		r.gen = c.newGeneration()
		return true
	})
	return err
}

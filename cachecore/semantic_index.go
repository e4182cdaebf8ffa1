package cachecore

import (
	"encoding/binary"
	"math"
	"math/bits"
	"strconv"

	"github.com/tidwall/gjson"
)

// The semantic index lives in the shared Store, so every worker sees the
// same one. Per (embedding namespace, partition) it is a list of segments
// of up to semSegRecords records:
//
//	modelcache/sem/<ns>/<partition>/h      segment count (u32)
//	modelcache/sem/<ns>/<partition>/<i>    u16 count, u16 dim, then records
//	modelcache/sem/<ns>/n                  records indexed in the namespace (u32)
//
// A record is the stored turn's vector quantised to int8 with its norm
// and its sign bits, and the turn's canonical JSON (which rebuilds the
// entry's exact key and feeds the guards):
//
//	f32 norm | i64 fresh until | ⌈dim/64⌉×8 sign bytes | dim × i8 | u16 len | turn
//
// so an entry costs dim + ⌈dim/64⌉×8 + 14 + len(turn) bytes (plus the Store's per-key
// overhead once per segment). max_entries bounds the records of one
// namespace; when it is reached, a sweep drops the records whose answers
// are no longer fresh (a few segments per store, resuming where the last
// stopped); only if none could be dropped is the turn not indexed
// (counted index_full). A
// search reads only its own partition's segments.

const (
	semSegRecords = 64
	semTries      = 4 // near matches tried, best first
)

type semIndexStore struct {
	s   Store
	now int64 // ms
}

func (c *Cache) semIndex() semIndexStore { return semIndexStore{c.store, c.nowMs()} }

// semRecHead is a record's norm and fresh-until time; semSegHead a
// segment's record count and dimension.
const (
	semRecHead = 12
	semSegHead = 4
)

func semPrefix(ns, part uint64) string {
	return "modelcache/sem/" + strconv.FormatUint(ns, 16) + "/" + strconv.FormatUint(part, 16) + "/"
}

type semCandidate struct {
	sim  float64
	raw  []byte // the turn's canonical JSON
	text string // decoded
}

// search returns up to semTries records of the partition at or above
// min, most similar first. A record's sign bits rank it first (Hamming
// distance, 6 popcounts for 384 dimensions); only a record that is among
// the semShortlist closest by that measure so far gets its int8 cosine
// computed. A near duplicate's signs are far closer than an unrelated
// turn's, so this skips almost every full product (tens per search
// instead of thousands); what it can cost is a missed near match, never a
// wrong one: every answer is checked on the full cosine.
func (ix semIndexStore) search(ns, part uint64, q []int8, qnorm float32, min float64) []semCandidate {
	prefix := semPrefix(ns, part)
	head, _, err := ix.s.Get(prefix + "h")
	if err != nil || len(head) != 4 {
		return nil
	}
	nseg := int(binary.LittleEndian.Uint32(head))
	var best []semCandidate
	dim := len(q)
	sb := signBytes(dim)
	qs := signs(q)
	recMin := semRecHead + sb + dim + 2
	now := ix.now
	var short shortlist
	var buf []byte
	for i := 0; i < nseg; i++ {
		seg, _, err := getInto(ix.s, prefix+strconv.Itoa(i), buf[:0])
		if err != nil || len(seg) < semSegHead || int(binary.LittleEndian.Uint16(seg[2:])) != dim {
			continue
		}
		buf = seg
		n := int(binary.LittleEndian.Uint16(seg))
		p := semSegHead
		for r := 0; r < n && p+recMin <= len(seg); r++ {
			at := p
			l := int(binary.LittleEndian.Uint16(seg[at+semRecHead+sb+dim:]))
			rawAt := at + recMin
			p = rawAt + l
			if p > len(seg) {
				break
			}
			if int64(binary.LittleEndian.Uint64(seg[at+4:])) <= now {
				continue // its answer is no longer fresh
			}
			if !short.admit(hamming(qs, seg[at+semRecHead:at+semRecHead+sb])) {
				continue
			}
			norm := math.Float32frombits(binary.LittleEndian.Uint32(seg[at:]))
			sim := float64(dot(q, seg[at+semRecHead+sb:at+semRecHead+sb+dim])) / (float64(qnorm) * float64(norm))
			if sim < min || len(best) == semTries && sim <= best[len(best)-1].sim {
				continue
			}
			raw := append([]byte(nil), seg[rawAt:p]...)
			best = insertCandidate(best, semCandidate{sim: sim, raw: raw})
		}
	}
	for i := range best {
		best[i].text = decodeJSONString(best[i].raw)
	}
	return best
}

// semShortlist is how many records, closest by their signs so far, a
// search compares on the full vector.
const semShortlist = 64

// shortlist keeps the semShortlist smallest Hamming distances seen.
type shortlist struct {
	d    [semShortlist]int
	n    int
	maxI int
}

// admit reports whether distance h is among the smallest so far (and
// keeps it).
func (s *shortlist) admit(h int) bool {
	if s.n < semShortlist {
		s.d[s.n] = h
		if h > s.d[s.maxI] {
			s.maxI = s.n
		}
		s.n++
		return true
	}
	if h >= s.d[s.maxI] {
		return false
	}
	s.d[s.maxI] = h
	for i, v := range s.d {
		if v > s.d[s.maxI] {
			s.maxI = i
		}
	}
	return true
}

func signBytes(dim int) int { return (dim + 63) / 64 * 8 }

// signs packs the sign bits of q, 64 to a word.
func signs(q []int8) []byte {
	b := make([]byte, signBytes(len(q)))
	for i, x := range q {
		if x >= 0 {
			b[i/8] |= 1 << (i % 8)
		}
	}
	return b
}

func hamming(a, b []byte) int {
	h := 0
	for i := 0; i+8 <= len(a); i += 8 {
		h += bits.OnesCount64(binary.LittleEndian.Uint64(a[i:]) ^ binary.LittleEndian.Uint64(b[i:]))
	}
	return h
}

func insertCandidate(best []semCandidate, c semCandidate) []semCandidate {
	i := len(best)
	for i > 0 && best[i-1].sim < c.sim {
		i--
	}
	if len(best) < semTries {
		best = append(best, semCandidate{})
	}
	copy(best[i+1:], best[i:len(best)-1])
	best[i] = c
	return best
}

// dot is the int8 dot product (b is the record's bytes).
func dot(a []int8, b []byte) int32 {
	var s0, s1, s2, s3 int32
	b = b[:len(a)]
	i := 0
	for ; i+8 <= len(a); i += 8 {
		aa, bb := a[i:i+8:i+8], b[i:i+8:i+8]
		s0 += int32(aa[0])*int32(int8(bb[0])) + int32(aa[4])*int32(int8(bb[4]))
		s1 += int32(aa[1])*int32(int8(bb[1])) + int32(aa[5])*int32(int8(bb[5]))
		s2 += int32(aa[2])*int32(int8(bb[2])) + int32(aa[6])*int32(int8(bb[6]))
		s3 += int32(aa[3])*int32(int8(bb[3])) + int32(aa[7])*int32(int8(bb[7]))
	}
	for ; i < len(a); i++ {
		s0 += int32(a[i]) * int32(int8(b[i]))
	}
	return s0 + s1 + s2 + s3
}

// add appends a record to the partition. It reports what to count.
func (ix semIndexStore) add(ns, part uint64, q []int8, norm float32, raw []byte, freshUntil, now int64, maxEntries int, cursor *int) (Event, error) {
	countKey := "modelcache/sem/" + strconv.FormatUint(ns, 16) + "/n"
	swept := false
	for try := 0; try < 8; try++ {
		v, cas, err := ix.s.Get(countKey)
		if err != nil && err != ErrNotFound {
			return 0, err
		}
		var n uint32
		if len(v) == 4 {
			n = binary.LittleEndian.Uint32(v)
		}
		if int(n) >= maxEntries {
			if swept || ix.sweep(ns, now, cursor) == 0 {
				return EvSemanticIndexFull, nil
			}
			swept = true
			continue
		}
		if ix.s.Set(countKey, binary.LittleEndian.AppendUint32(nil, n+1), cas) == nil {
			break
		}
		if try == 7 {
			return 0, ErrCasMismatch
		}
	}
	rec := make([]byte, 0, semRecHead+signBytes(len(q))+len(q)+2+len(raw))
	rec = binary.LittleEndian.AppendUint32(rec, math.Float32bits(norm))
	rec = binary.LittleEndian.AppendUint64(rec, uint64(freshUntil))
	rec = append(rec, signs(q)...)
	for _, x := range q {
		rec = append(rec, byte(x))
	}
	rec = binary.LittleEndian.AppendUint16(rec, uint16(len(raw)))
	rec = append(rec, raw...)
	prefix := semPrefix(ns, part)
	for try := 0; try < 8; try++ {
		head, hcas, err := ix.s.Get(prefix + "h")
		if err != nil && err != ErrNotFound {
			return 0, err
		}
		nseg := uint32(0)
		if len(head) == 4 {
			nseg = binary.LittleEndian.Uint32(head)
		}
		if nseg == 0 {
			if ix.s.Set(prefix+"h", binary.LittleEndian.AppendUint32(nil, 1), hcas) != nil {
				continue
			}
			nseg = 1
			ix.register(ns, part)
		}
		segKey := prefix + strconv.Itoa(int(nseg-1))
		seg, scas, err := ix.s.Get(segKey)
		if err != nil && err != ErrNotFound {
			return 0, err
		}
		count := 0
		if len(seg) >= semSegHead {
			count = int(binary.LittleEndian.Uint16(seg))
		} else {
			seg = binary.LittleEndian.AppendUint16([]byte{0, 0}, uint16(len(q)))
		}
		if count >= semSegRecords {
			_ = ix.s.Set(prefix+"h", binary.LittleEndian.AppendUint32(nil, nseg+1), hcas)
			continue
		}
		seg = append(seg, rec...)
		binary.LittleEndian.PutUint16(seg, uint16(count+1))
		if ix.s.Set(segKey, seg, scas) == nil {
			return EvSemanticIndexed, nil
		}
	}
	return 0, ErrCasMismatch
}

// semSweepSegments is how many segments one sweep compacts at most.
const semSweepSegments = 16

// sweep compacts up to semSweepSegments segments of namespace ns, starting
// at partition *cursor, dropping records no longer fresh at now; the
// namespace's count goes down by what it dropped, which it returns.
func (ix semIndexStore) sweep(ns uint64, now int64, cursor *int) int {
	base := "modelcache/sem/" + strconv.FormatUint(ns, 16) + "/"
	parts, _, err := ix.s.Get(base + "parts")
	nparts := len(parts) / 8
	if err != nil || nparts == 0 {
		return 0
	}
	removed, visited := 0, 0
	for i := 0; i < nparts && visited < semSweepSegments; i++ {
		*cursor %= nparts
		prefix := semPrefix(ns, binary.LittleEndian.Uint64(parts[*cursor*8:]))
		*cursor++
		head, _, err := ix.s.Get(prefix + "h")
		if err != nil || len(head) != 4 {
			continue
		}
		for s := 0; s < int(binary.LittleEndian.Uint32(head)) && visited < semSweepSegments; s++ {
			removed += ix.compact(prefix+strconv.Itoa(s), now)
			visited++
		}
	}
	if removed == 0 {
		return 0
	}
	for try := 0; try < 8; try++ {
		v, cas, err := ix.s.Get(base + "n")
		if err != nil || len(v) != 4 {
			return removed
		}
		n := binary.LittleEndian.Uint32(v)
		if int(n) < removed {
			n = uint32(removed)
		}
		if ix.s.Set(base+"n", binary.LittleEndian.AppendUint32(nil, n-uint32(removed)), cas) == nil {
			return removed
		}
	}
	return 0
}

// compact drops a segment's records that are no longer fresh at now and
// returns how many it dropped.
func (ix semIndexStore) compact(key string, now int64) int {
	for try := 0; try < 4; try++ {
		seg, cas, err := ix.s.Get(key)
		if err != nil || len(seg) < semSegHead {
			return 0
		}
		n := int(binary.LittleEndian.Uint16(seg))
		out := []byte{0, 0}
		kept, p := 0, 0
		dim := int(binary.LittleEndian.Uint16(seg[2:]))
		out = append(out, seg[2:4]...)
		fixed := semRecHead + signBytes(dim) + dim + 2
		p = semSegHead
		for r := 0; r < n && p+fixed <= len(seg); r++ {
			size := fixed + int(binary.LittleEndian.Uint16(seg[p+fixed-2:]))
			if p+size > len(seg) {
				return 0
			}
			if int64(binary.LittleEndian.Uint64(seg[p+4:])) > now {
				out = append(out, seg[p:p+size]...)
				kept++
			}
			p += size
		}
		if kept == n {
			return 0
		}
		binary.LittleEndian.PutUint16(out, uint16(kept))
		if ix.s.Set(key, out, cas) == nil {
			return n - kept
		}
	}
	return 0
}

// register lists a new partition in its namespace, for reclaim.
func (ix semIndexStore) register(ns, part uint64) {
	key := "modelcache/sem/" + strconv.FormatUint(ns, 16) + "/parts"
	for try := 0; try < 8; try++ {
		v, cas, err := ix.s.Get(key)
		if err != nil && err != ErrNotFound {
			return
		}
		if ix.s.Set(key, binary.LittleEndian.AppendUint64(v, part), cas) == nil {
			return
		}
	}
}

// reclaim empties every segment of namespace ns (an embedding model no
// longer in use) and resets its count; it returns the records freed.
// Shared data cannot delete keys: their values become empty.
func (ix semIndexStore) reclaim(ns uint64) int {
	base := "modelcache/sem/" + strconv.FormatUint(ns, 16) + "/"
	parts, _, err := ix.s.Get(base + "parts")
	if err != nil {
		return 0
	}
	freed := 0
	for i := 0; i+8 <= len(parts); i += 8 {
		prefix := semPrefix(ns, binary.LittleEndian.Uint64(parts[i:]))
		head, _, err := ix.s.Get(prefix + "h")
		if err != nil || len(head) != 4 {
			continue
		}
		for s := 0; s < int(binary.LittleEndian.Uint32(head)); s++ {
			if seg, _, err := ix.s.Get(prefix + strconv.Itoa(s)); err == nil && len(seg) >= 2 {
				freed += int(binary.LittleEndian.Uint16(seg))
				_ = ix.s.Set(prefix+strconv.Itoa(s), nil, 0)
			}
		}
		_ = ix.s.Set(prefix+"h", nil, 0)
	}
	_ = ix.s.Set(base+"parts", nil, 0)
	_ = ix.s.Set(base+"n", nil, 0)
	return freed
}

// ---- the VM's query vectors ----

// semVector is an embedded turn: its quantised vector and the namespace
// of the model that made it.
type semVector struct {
	q        []int8
	norm     float32
	ns       uint64
	identity string
}

// semVectorCache remembers this VM's recent turns' vectors (bounded; reset
// when full), so the same turn is not embedded twice while it is here.
type semVectorCache struct{ m map[uint64]*semVector }

const semMaxVectors = 1024

func (vc *semVectorCache) get(k uint64) (*semVector, bool) {
	v, ok := vc.m[k]
	return v, ok
}

func (vc *semVectorCache) put(k uint64, e embedding) *semVector {
	q, norm := quantise(e.vec)
	v := &semVector{q: q, norm: norm, identity: e.identity, ns: fnv64(e.identity)}
	vc.keep(k, v)
	return v
}

func (vc *semVectorCache) keep(k uint64, v *semVector) {
	if vc.m == nil || len(vc.m) >= semMaxVectors {
		vc.m = make(map[uint64]*semVector, 64)
	}
	vc.m[k] = v
}

// The workers share recent turns' vectors and the claims of turns being
// embedded, in semSharedSlots slots of shared data (a slot holds one turn;
// a newer turn replaces it):
//
//	modelcache/semq/<slot>   'V' u64 turn | u16 len | identity | f32 norm | dim × i8
//	                         'P' u64 turn | i64 claim deadline (ms)
//
// So a turn is embedded once while its vector is in either cache, and
// while one worker embeds it the others go on as exact misses.
const semSharedSlots = 4096

func semSlotKey(tkey uint64) string {
	return "modelcache/semq/" + strconv.FormatUint(tkey%semSharedSlots, 16)
}

// semShared returns the turn's shared vector, or claims the turn for
// embedding (claimed: this worker may embed it).
func (c *Cache) semShared(tkey uint64, s *Semantic) (v *semVector, claimed bool) {
	key := semSlotKey(tkey)
	val, cas, err := c.store.Get(key)
	if err != nil && err != ErrNotFound {
		return nil, false
	}
	now := c.nowMs()
	if len(val) >= 17 && binary.LittleEndian.Uint64(val[1:]) == tkey {
		switch val[0] {
		case 'V':
			if v := decodeSharedVector(val); v != nil {
				return v, false
			}
		case 'P':
			if int64(binary.LittleEndian.Uint64(val[9:])) > now {
				return nil, false
			}
		}
	}
	if err == ErrNotFound {
		if cas, err = c.table.createCAS(); err != nil {
			return nil, false
		}
	}
	claim := make([]byte, 17)
	claim[0] = 'P'
	binary.LittleEndian.PutUint64(claim[1:], tkey)
	binary.LittleEndian.PutUint64(claim[9:], uint64(now+s.Embedding.Timeout.Milliseconds()+1000))
	return nil, c.store.Set(key, claim, cas) == nil
}

// semSharedPut shares an embedded turn's vector.
func (c *Cache) semSharedPut(tkey uint64, v *semVector) {
	b := make([]byte, 0, 1+8+2+len(v.identity)+4+len(v.q))
	b = append(b, 'V')
	b = binary.LittleEndian.AppendUint64(b, tkey)
	b = binary.LittleEndian.AppendUint16(b, uint16(len(v.identity)))
	b = append(b, v.identity...)
	b = binary.LittleEndian.AppendUint32(b, math.Float32bits(v.norm))
	for _, x := range v.q {
		b = append(b, byte(x))
	}
	_ = c.store.Set(semSlotKey(tkey), b, 0)
}

// semSharedDone drops a failed embedding's claim (a vector replaced it
// otherwise).
func (c *Cache) semSharedDone(tkey uint64, ok bool) {
	if ok {
		return
	}
	key := semSlotKey(tkey)
	if val, cas, err := c.store.Get(key); err == nil && len(val) >= 17 && val[0] == 'P' && binary.LittleEndian.Uint64(val[1:]) == tkey {
		_ = c.store.Set(key, nil, cas)
	}
}

func decodeSharedVector(val []byte) *semVector {
	if len(val) < 11 {
		return nil
	}
	l := int(binary.LittleEndian.Uint16(val[9:]))
	p := 11 + l
	if p+4+minDim > len(val) {
		return nil
	}
	v := &semVector{identity: string(val[11:p]), norm: math.Float32frombits(binary.LittleEndian.Uint32(val[p:]))}
	v.q = make([]int8, len(val)-p-4)
	for i, b := range val[p+4:] {
		v.q[i] = int8(b)
	}
	v.ns = fnv64(v.identity)
	return v
}

// textKey names a turn for the vector cache: the route's embedding
// service and the text.
func (c *Cache) textKey(r *Route, text string) uint64 {
	s := r.Semantic
	b := make([]byte, 0, len(text)+len(s.Embedding.Cluster)+len(s.Embedding.Path)+len(s.Embedding.Model)+4)
	b = append(b, 'T')
	b = appendLV(b, r.Name)
	b = appendLV(b, s.Embedding.Cluster)
	b = appendLV(b, s.Embedding.Path)
	b = appendLV(b, s.Embedding.Model)
	b = append(b, text...)
	return c.hk.fp.sum64(b)
}

func fnv64(s string) uint64 {
	h := uint64(14695981039346656037)
	for i := 0; i < len(s); i++ {
		h ^= uint64(s[i])
		h *= 1099511628211
	}
	return h
}

func decodeJSONString(raw []byte) string { return gjson.ParseBytes(raw).String() }

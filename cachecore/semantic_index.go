package cachecore

import (
	"encoding/binary"
	"math"
	"math/bits"
	"slices"
	"strconv"

	"github.com/tidwall/gjson"
)

// The semantic index lives in the shared Store, so every worker sees the
// same one. Per (embedding namespace, partition) it is a list of segments
// of up to semSegRecords records, each with a small companion value
// holding just its records' sign bits. A partition is a slot, 1 to
// semSlots(max_entries) (semPartition): the records of every context
// (the exact key without its turn) that hashes to it, so that the keys
// below, which shared data cannot delete, are bounded by the slots and
// not by the contexts ever indexed:
//
//	modelcache/sem2/<ns>/<partition>/h      segment count (u32)
//	modelcache/sem2/<ns>/<partition>/r<i>   segment: u16 count, u16 dim, then records
//	modelcache/sem2/<ns>/<partition>/s<i>   its signs: u16 count, u16 dim, then count × (i64 fresh until | ⌈dim/64⌉×8 sign bytes)
//	modelcache/sem2/<ns>/<partition>/g      its owner: u64 model id | u64 generation
//	modelcache/sem2/<ns>/n                  records indexed in the namespace (u32)
//	modelcache/sem2/<ns>/parts              its partitions (u64 each)
//
// A record is the stored turn's vector quantised to int8 with its norm,
// and the turn's canonical JSON (which rebuilds the entry's exact key and
// feeds the guards):
//
//	f32 norm | i64 fresh until | dim × i8 | u16 len | turn
//
// so an entry costs dim + ⌈dim/64⌉×8 + 22 + len(turn) bytes (plus the
// Store's per-key overhead twice per segment). A search reads every signs
// value of its partition (~56 bytes a record) and only the segments that
// hold its shortlist. The signs value is derived from its segment (see
// publishSigns); the two are written one after the other, so a reader may
// find them disagreeing: then the record the signs named is skipped (a
// missed near match), and nothing read from a signs value is ever served
// or scored — a candidate's similarity, freshness and turn all come from
// its segment. max_entries bounds the records of one namespace; when it
// is reached, a sweep drops the records whose answers are no longer fresh
// (a few segments per store, resuming at the partition and segment where
// the last stopped); only if none could be dropped is the turn not
// indexed (counted index_full).
//
// A record goes into the partition's write segment, named in h after the
// count (u32 count | u32 write segment; a 4-byte h writes to the last);
// when that segment is full, into the next one with room by its signs
// value, and only when none has room into a new segment. So a partition
// opens a segment only when all of its segments are full: it has at most
// max_entries/64 + 2 of them (semMaxSegments), and every reader bounds the
// count it reads in h by that.
//
// A partition's g names the model state (its id in the model table and
// generation) its first writer's answer was stored under (the contexts of
// a route's slot mostly share one model, so one generation). A
// purge, a version switch, a shadow invalidation or the model record's
// reclaim moves the generation, and then none of those records can be
// served again; a sweep that finds the partition's generation gone (dead)
// drops all of its records at once, whatever their fresh-until time, and
// then the partition itself (see dropPartition), and so does a writer
// that finds it so before it writes (place). A writer of another live
// owner leaves g as it is: its record is swept by fresh-until time only,
// or dropped with the slot's owner (a missed near match, never a wrong
// one). A partition without a g (one the previous module version opened)
// is swept by fresh-until time only.

const (
	semSegRecords = 64
	semTries      = 4 // near matches tried, best first
)

type semIndexStore struct {
	s   storeReader // not boxed in a Store: no allocation per index
	now int64       // ms
	// maxSeg bounds a partition's segments (zero: as for the largest
	// max_entries).
	maxSeg int
}

func (c *Cache) semIndex(s *Semantic) semIndexStore {
	return semIndexStore{s: c.store, now: c.nowMs(), maxSeg: semMaxSegments(s.MaxEntries)}
}

// semMaxSegments is the most segments a partition of an index of
// maxEntries records needs (see above), with one of slack for signs
// values that lag their segments.
func semMaxSegments(maxEntries int) int { return maxEntries/semSegRecords + 2 }

func (ix semIndexStore) segCap() int {
	if ix.maxSeg > 0 {
		return ix.maxSeg
	}
	return semMaxSegments(semMaxEntriesLimit)
}

// semHead reads a partition's h: its segment count, bounded by the most
// any route's max_entries allows (another route of the namespace, or this
// one before its max_entries was lowered, may have opened them: a sweep
// must reach them all), and its write segment. Search and place bound the
// count further by their route's own (segCap).
func (ix semIndexStore) semHead(head []byte) (nseg, w int, ok bool) {
	if len(head) != 4 && len(head) != 8 {
		return 0, 0, false
	}
	nseg = min(int(binary.LittleEndian.Uint32(head)), semMaxSegments(semMaxEntriesLimit))
	w = nseg - 1
	if len(head) == 8 {
		if v := int(binary.LittleEndian.Uint32(head[4:])); v < nseg {
			w = v
		}
	}
	return nseg, w, true
}

func encodeSemHead(nseg, w int) []byte {
	return binary.LittleEndian.AppendUint32(binary.LittleEndian.AppendUint32(nil, uint32(nseg)), uint32(w))
}

// semRecHead is a record's norm and fresh-until time; semSegHead a
// segment's (and a signs value's) record count and dimension; semSignHead
// a signs entry's fresh-until time.
const (
	semRecHead  = 12
	semSegHead  = 4
	semSignHead = 8
)

// semNamespace is the keys' prefix of namespace ns. "sem2": the layout
// with signs values; the previous layout's keys ("sem/") are never read
// (a module upgrade keeps the shared data), so its records can neither be
// misread nor hold the new index's count at max_entries.
func semNamespace(ns uint64) string {
	return "modelcache/sem2/" + strconv.FormatUint(ns, 16) + "/"
}

func semPrefix(ns, part uint64) string {
	return semNamespace(ns) + strconv.FormatUint(part, 16) + "/"
}

// semKeys builds a partition's segment and signs keys in place (the
// string is valid until the next key; stores copy keys they keep).
type semKeys struct{ b []byte }

func newSemKeys(prefix string) semKeys {
	return semKeys{append(make([]byte, 0, len(prefix)+12), prefix...)}
}

func (k *semKeys) key(prefix string, kind byte, i int) string {
	k.b = append(k.b[:len(prefix)], kind)
	k.b = strconv.AppendInt(k.b, int64(i), 10)
	return bytesString(k.b)
}

type semCandidate struct {
	sim  float64
	raw  []byte // the turn's canonical JSON
	text string // decoded
}

// search returns up to semTries records of the partition at or above
// min, most similar first. It reads the partition's signs values and keeps
// the semShortlist records closest by sign bits (Hamming distance, 6
// popcounts for 384 dimensions); then it reads only the segments holding
// them and computes their int8 cosine. A near duplicate's signs are far
// closer than an unrelated turn's, so this skips almost every full product
// and most of the segments' bytes; what it can cost is a missed near
// match, never a wrong one: every answer is scored on its segment's full
// vector.
func (ix semIndexStore) search(ns, part uint64, q []int8, qnorm float32, min float64) []semCandidate {
	return ix.searchExcept(ns, part, q, qnorm, min, nil)
}

// searchExcept is search without the records whose turn is self (the
// query's own: see semSearch). The comparison reads the segment in place.
func (ix semIndexStore) searchExcept(ns, part uint64, q []int8, qnorm float32, min float64, self []byte) []semCandidate {
	prefix := semPrefix(ns, part)
	head, _, err := ix.s.Get(prefix + "h")
	nseg, _, ok := ix.semHead(head)
	if err != nil || !ok {
		return nil
	}
	if c := ix.segCap(); nseg > c {
		nseg = c // the route's bound on a search's reads
	}
	dim := len(q)
	sb := signBytes(dim)
	qs := words(signs(q))
	qn := int64(0) // the query's squared norm, exact
	for _, x := range q {
		qn += int64(x) * int64(x)
	}
	now := ix.now
	keys := newSemKeys(prefix)
	var short shortlist
	var buf []byte
	ent := semSignHead + sb
	for i := 0; i < nseg; i++ {
		sv, _, err := ix.s.GetInto(keys.key(prefix, 's', i), buf[:0])
		if err != nil || len(sv) < semSegHead || int(binary.LittleEndian.Uint16(sv[2:])) != dim {
			continue
		}
		buf = sv
		n := int(binary.LittleEndian.Uint16(sv))
		for r, at := 0, semSegHead; r < n && at+ent <= len(sv); r, at = r+1, at+ent {
			fresh := int64(binary.LittleEndian.Uint64(sv[at:]))
			if fresh <= now {
				continue // its answer is no longer fresh
			}
			if h := hamming(qs, sv[at+semSignHead:at+ent]); short.n < semShortlist || h < short.e[short.maxI].h {
				short.admit(h, i, r, fresh)
			}
		}
	}
	cands := short.sorted()
	var best []semCandidate
	recMin := semRecHead + dim + 2
	var seg, rs []byte
	for c := 0; c < len(cands); {
		i := cands[c].seg
		seg, _, err = ix.s.GetInto(keys.key(prefix, 'r', int(i)), seg[:0])
		if err != nil || len(seg) < semSegHead || int(binary.LittleEndian.Uint16(seg[2:])) != dim {
			for c < len(cands) && cands[c].seg == i {
				c++
			}
			continue
		}
		n := int(binary.LittleEndian.Uint16(seg))
		p := semSegHead
		for r := 0; r < n && p+recMin <= len(seg) && c < len(cands) && cands[c].seg == i; r++ {
			at := p
			rawAt := at + recMin
			p = rawAt + int(binary.LittleEndian.Uint16(seg[rawAt-2:]))
			if p > len(seg) {
				break
			}
			if int32(r) != cands[c].rec {
				continue
			}
			want := cands[c]
			c++
			vec := seg[at+semRecHead : at+semRecHead+dim]
			fresh := int64(binary.LittleEndian.Uint64(seg[at+4:]))
			rs = signsInto(rs, vec)
			if fresh != want.fresh || hamming(qs, rs) != want.h || fresh <= now {
				continue // the signs value disagrees with the segment: a miss for this record
			}
			// The similarity ranked and reported is computed through the
			// norms kept (float32); whether it reaches min is decided on
			// the exact integers (cosineReaches).
			d := dot(q, vec)
			norm := math.Float32frombits(binary.LittleEndian.Uint32(seg[at:]))
			sim := float64(d) / (float64(qnorm) * float64(norm))
			reaches := cosineReaches(d, qn, selfDot(vec), min, sim)
			if reaches {
				// A cosine that reaches min is reported at least min, and
				// at most 1: below or above them it is the float32 norms'
				// rounding (review Z117).
				sim = math.Min(math.Max(sim, min), 1)
			}
			if !reaches || len(best) == semTries && sim <= best[len(best)-1].sim || self != nil && string(seg[rawAt:p]) == string(self) {
				continue
			}
			if j := candidateOf(best, seg[rawAt:p]); j >= 0 {
				// The same turn indexed again (stored again while its
				// record was fresh): one answer, one try (review Z240).
				if sim <= best[j].sim {
					continue
				}
				best = slices.Delete(best, j, j+1)
			}
			raw := append([]byte(nil), seg[rawAt:p]...)
			best = insertCandidate(best, semCandidate{sim: sim, raw: raw})
		}
		for c < len(cands) && cands[c].seg == i {
			c++ // named by the signs but not in the segment
		}
	}
	for i := range best {
		best[i].text = decodeJSONString(best[i].raw)
	}
	return best
}

// cosineReaches reports whether the cosine of two int8 vectors, of dot
// product d and squared norms qn and rn, reaches min, compared exactly: d²
// ≥ min²·qn·rn, each product of integers in a float64 (exact below 2⁵³,
// 4,096 dimensions; beyond, its rounding is far finer than the gap
// between int8 vectors' d² and qn·rn). The cosine through float32 norms
// (a record's stored one) fell short of min_similarity 1 for identical
// vectors, 0.99999994 (review Z107), and a slack for that admitted
// cosines just below any min (review Z111). sim, the cosine as computed,
// decides a min that is not positive.
func cosineReaches(d int32, qn, rn int64, min, sim float64) bool {
	if min <= 0 {
		return sim >= min
	}
	if d <= 0 {
		return false
	}
	dd := float64(d) * float64(d)
	return dd >= min*min*(float64(qn)*float64(rn))
}

// selfDot is a record's vector's squared norm.
func selfDot(v []byte) int64 {
	n := int64(0)
	for _, b := range v {
		x := int64(int8(b))
		n += x * x
	}
	return n
}

// semShortlist is how many records, closest by their signs, a search
// compares on the full vector.
const semShortlist = 64

// shortlist keeps the semShortlist records with the smallest Hamming
// distances seen.
type shortlist struct {
	e    [semShortlist]shortEntry
	n    int
	maxI int
}

type shortEntry struct {
	h        int
	seg, rec int32
	fresh    int64
}

// admit keeps record (seg, rec) if its distance h is among the smallest
// so far.
func (s *shortlist) admit(h, seg, rec int, fresh int64) {
	e := shortEntry{h, int32(seg), int32(rec), fresh}
	if s.n < semShortlist {
		s.e[s.n] = e
		if h > s.e[s.maxI].h {
			s.maxI = s.n
		}
		s.n++
		return
	}
	if h >= s.e[s.maxI].h {
		return
	}
	s.e[s.maxI] = e
	for i := range s.e {
		if s.e[i].h > s.e[s.maxI].h {
			s.maxI = i
		}
	}
}

// sorted returns the kept records in segment order.
func (s *shortlist) sorted() []shortEntry {
	e := s.e[:s.n]
	slices.SortFunc(e, func(a, b shortEntry) int {
		if a.seg != b.seg {
			return int(a.seg - b.seg)
		}
		return int(a.rec - b.rec)
	})
	return e
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

// signsInto packs the sign bits of a record's int8 vector into b, as
// signs does.
func signsInto(b []byte, vec []byte) []byte {
	b = append(b[:0], make([]byte, signBytes(len(vec)))...)
	j := 0
	for ; j+8 <= len(vec); j += 8 {
		v := vec[j : j+8 : j+8]
		b[j/8] = ^(v[0]>>7 | v[1]>>7<<1 | v[2]>>7<<2 | v[3]>>7<<3 | v[4]>>7<<4 | v[5]>>7<<5 | v[6]>>7<<6 | v[7]>>7<<7)
	}
	for ; j < len(vec); j++ {
		if int8(vec[j]) >= 0 {
			b[j/8] |= 1 << (j % 8)
		}
	}
	return b
}

// words reads packed sign bits as 64-bit words (in the machine's byte
// order, as hamming reads a record's: popcount(a^b) does not depend on it).
func words(b []byte) []uint64 {
	w := make([]uint64, len(b)/8)
	for i := range w {
		w[i] = load64(b[i*8:])
	}
	return w
}

func hamming(q []uint64, b []byte) int {
	if len(q) == 6 { // 384 dimensions (e5-small, MiniLM): unrolled
		b = b[:48]
		return bits.OnesCount64(q[0]^load64(b[0:])) +
			bits.OnesCount64(q[1]^load64(b[8:])) +
			bits.OnesCount64(q[2]^load64(b[16:])) +
			bits.OnesCount64(q[3]^load64(b[24:])) +
			bits.OnesCount64(q[4]^load64(b[32:])) +
			bits.OnesCount64(q[5]^load64(b[40:]))
	}
	b = b[:len(q)*8]
	h := 0
	for i, w := range q {
		h += bits.OnesCount64(w ^ load64(b[i*8:]))
	}
	return h
}

// candidateOf is the index in best of the candidate whose turn is raw, or
// -1: candidateKey puts a turn into the request's key, so two records of
// one turn name one entry.
func candidateOf(best []semCandidate, raw []byte) int {
	for j := range best {
		if string(best[j].raw) == string(raw) {
			return j
		}
	}
	return -1
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

// segmentSigns derives a segment's signs value (nil for a value that is
// not a segment).
func segmentSigns(seg []byte) []byte {
	if len(seg) < semSegHead {
		return nil
	}
	n := int(binary.LittleEndian.Uint16(seg))
	dim := int(binary.LittleEndian.Uint16(seg[2:]))
	fixed := semRecHead + dim + 2
	out := make([]byte, semSegHead, semSegHead+n*(semSignHead+signBytes(dim)))
	copy(out[2:], seg[2:4])
	kept, p := 0, semSegHead
	var rs []byte
	for r := 0; r < n && p+fixed <= len(seg); r++ {
		size := fixed + int(binary.LittleEndian.Uint16(seg[p+fixed-2:]))
		if p+size > len(seg) {
			break
		}
		out = append(out, seg[p+4:p+12]...)
		rs = signsInto(rs, seg[p+semRecHead:p+semRecHead+dim])
		out = append(out, rs...)
		kept++
		p += size
	}
	binary.LittleEndian.PutUint16(out, uint16(kept))
	return out
}

// publishSigns makes segment i's signs value agree with the segment. Each
// writer of a segment calls it after its write: it reads the signs value
// (and its CAS), then the segment as it is now, and sets the derived value
// only if the signs value did not change meanwhile (else it starts again).
// So the last signs value set was derived from a segment read after every
// segment write whose writer finished publishing; a writer that stops
// between its two writes leaves records the search cannot see (missed,
// never wrong) until the segment's next write.
func (ix semIndexStore) publishSigns(prefix string, i int) {
	keys := newSemKeys(prefix)
	for try := 0; try < 8; try++ {
		sv, scas, err := ix.s.Get(keys.key(prefix, 's', i))
		if err == ErrNotFound {
			if scas, err = CreateCAS(ix.s); err != nil {
				return
			}
		} else if err != nil {
			return
		}
		seg, _, err := ix.s.Get(keys.key(prefix, 'r', i))
		if err != nil && err != ErrNotFound {
			return
		}
		want := segmentSigns(seg)
		if sv != nil && string(want) == string(sv) {
			return
		}
		if ix.s.Set(keys.key(prefix, 's', i), want, scas) == nil {
			return
		}
	}
}

// semOwner is the model state a partition's records were stored under:
// the model's id in the model table and its generation (zero: not known,
// the partition is swept by fresh-until time only).
type semOwner struct{ model, gen uint64 }

// bytes is the owner as g holds it (nil: not known).
func (o semOwner) bytes() []byte {
	if o.model == 0 {
		return nil
	}
	return binary.LittleEndian.AppendUint64(binary.LittleEndian.AppendUint64(make([]byte, 0, 16), o.model), o.gen)
}

// add appends a record to the partition (of owner). It reports what to
// count.
func (ix semIndexStore) add(ns, part uint64, q []int8, norm float32, raw []byte, freshUntil, now int64, maxEntries int, owner semOwner, cursor *semSweepPos) (Event, error) {
	countKey := semNamespace(ns) + "n"
	sweeps := 0 // up to semMaxSweeps while each drops something
	for try := 0; ; try++ {
		if try == 8 {
			return 0, ErrCasMismatch // (never placed uncounted)
		}
		v, cas, err := ix.s.Get(countKey)
		if err != nil && err != ErrNotFound {
			return 0, err
		}
		var n uint32
		if len(v) == 4 {
			n = binary.LittleEndian.Uint32(v)
		}
		if int(n) >= maxEntries {
			if sweeps == semMaxSweeps || ix.sweep(ns, now, cursor) == 0 {
				return EvSemanticIndexFull, nil
			}
			sweeps++
			continue
		}
		if ix.s.Set(countKey, binary.LittleEndian.AppendUint32(nil, n+1), cas) == nil {
			break
		}
	}
	rec := make([]byte, 0, semRecHead+len(q)+2+len(raw))
	rec = binary.LittleEndian.AppendUint32(rec, math.Float32bits(norm))
	rec = binary.LittleEndian.AppendUint64(rec, uint64(freshUntil))
	for _, x := range q {
		rec = append(rec, byte(x))
	}
	rec = binary.LittleEndian.AppendUint16(rec, uint16(len(raw)))
	rec = append(rec, raw...)
	ev, err := ix.place(ns, part, rec, len(q), owner)
	if ev != EvSemanticIndexed {
		ix.uncount(semNamespace(ns), 1) // counted above, not placed
	}
	return ev, err
}

// place appends rec (of dimension dim) to the partition's write segment,
// moving the write segment on when it is full. The writer that opens the
// partition lists it; a writer that finds it without an owner records its
// own, one that finds it owned by a dead generation drops it first, and
// one that finds another live owner leaves it (its record is then swept
// by fresh-until time only).
func (ix semIndexStore) place(ns, part uint64, rec []byte, dim int, owner semOwner) (Event, error) {
	prefix := semPrefix(ns, part)
	keys := newSemKeys(prefix)
	own := owner.bytes()
	for try := 0; try < 8; try++ {
		head, hcas, err := ix.s.Get(prefix + "h")
		if err == ErrNotFound {
			// create only if still missing, as a segment (and an h that
			// dropPartition's last step writes is seen)
			if hcas, err = CreateCAS(ix.s); err != nil {
				return 0, err
			}
		} else if err != nil {
			return 0, err
		}
		nseg, w, ok := ix.semHead(head)
		if !ok || nseg == 0 {
			if ix.s.Set(prefix+"h", encodeSemHead(1, 0), hcas) != nil {
				continue
			}
			nseg, w = 1, 0
			ix.register(ns, part)
		}
		if other := ix.ownerIfNone(prefix, own); other != nil && ix.deadOwner(other) {
			// The slot's owner is a generation that is gone: every record
			// of the slot is dropped (as a sweep would) before this one
			// goes in, and the slot opens again with this writer's owner.
			if n, _, _ := ix.dropPartition(ns, part, other, true, ix.segCap()); n > 0 {
				ix.uncount(semNamespace(ns), n)
			}
			continue
		}
		// Records go only where this route's searches read (segments
		// below its bound); h keeps the partition's whole count.
		limit := min(nseg, ix.segCap())
		if w >= limit {
			w = limit - 1
		}
		seg, scas, err := ix.s.Get(keys.key(prefix, 'r', w))
		if err == ErrNotFound {
			// create only if still missing: two writers creating the
			// same segment must not both succeed
			if scas, err = CreateCAS(ix.s); err != nil {
				return 0, err
			}
		} else if err != nil {
			return 0, err
		}
		count := 0
		if len(seg) >= semSegHead && int(binary.LittleEndian.Uint16(seg[2:])) == dim {
			count = int(binary.LittleEndian.Uint16(seg))
		} else {
			seg = binary.LittleEndian.AppendUint16([]byte{0, 0}, uint16(dim))
		}
		if count >= semSegRecords {
			next, ok := ix.roomySegment(prefix, limit, w)
			switch {
			case ok:
				_ = ix.s.Set(prefix+"h", encodeSemHead(nseg, next), hcas)
			case nseg < ix.segCap():
				_ = ix.s.Set(prefix+"h", encodeSemHead(nseg+1, nseg), hcas)
			default:
				return EvSemanticIndexFull, nil
			}
			continue
		}
		seg = append(seg, rec...)
		binary.LittleEndian.PutUint16(seg, uint16(count+1))
		if ix.s.Set(keys.key(prefix, 'r', w), seg, scas) == nil {
			ix.publishSigns(prefix, w)
			// A sweep may have taken the segment off h since h was read
			// (dropPartition): h must count it again.
			if head, _, err := ix.s.Get(prefix + "h"); err == nil || errIs(err, ErrNotFound) {
				if nseg, _, ok := ix.semHead(head); !ok || nseg <= w {
					ix.cover(ns, part, w, own)
				}
			}
			return EvSemanticIndexed, nil
		}
	}
	return 0, ErrCasMismatch
}

// roomySegment finds a segment of the partition other than full with room
// for a record, by the record counts of the signs values (a value that
// lags its segment costs a turn of place's loop; a missing one is an
// empty segment).
func (ix semIndexStore) roomySegment(prefix string, nseg, full int) (int, bool) {
	keys := newSemKeys(prefix)
	var buf []byte
	for k := 1; k < nseg; k++ {
		i := (full + k) % nseg
		sv, _, err := ix.s.GetInto(keys.key(prefix, 's', i), buf[:0])
		if err == ErrNotFound || err == nil && (len(sv) < semSegHead || int(binary.LittleEndian.Uint16(sv)) < semSegRecords) {
			return i, true
		}
		buf = sv
	}
	return 0, false
}

// uncount takes n records off the namespace's count (base is its
// namespace's prefix).
func (ix semIndexStore) uncount(base string, n int) {
	for try := 0; try < 8; try++ {
		v, cas, err := ix.s.Get(base + "n")
		if err != nil || len(v) != 4 {
			return
		}
		c := int(binary.LittleEndian.Uint32(v))
		if ix.s.Set(base+"n", binary.LittleEndian.AppendUint32(nil, uint32(max(c-n, 0))), cas) == nil {
			return
		}
	}
}

// semSweepSegments is how many segments one sweep compacts at most, and
// semMaxSweeps how many sweeps one store makes while each drops records
// and the index is still full.
const (
	semSweepSegments = 16
	semMaxSweeps     = 4
)

// semSweepPos is where a VM's next sweep starts: a partition of the
// namespace's list and a segment of it.
type semSweepPos struct{ part, seg int }

// sweep compacts up to semSweepSegments segments of namespace ns, starting
// at *pos and leaving *pos after the last, dropping records no longer
// fresh at now, and every record of a partition whose generation is gone
// (dropPartition); the namespace's count goes down by what it dropped,
// which it returns. A live partition whose last segment it leaves without
// records loses its empty segments from the last down, and once none is
// left leaves the list as a dead one does (dropPartition): so the list
// holds the partitions that have records, and no sweep spends its visits
// on partitions whose turns all expired.
func (ix semIndexStore) sweep(ns uint64, now int64, pos *semSweepPos) int {
	base := semNamespace(ns)
	parts, _, err := ix.s.Get(base + "parts")
	nparts := len(parts) / 8
	if err != nil || nparts == 0 {
		return 0
	}
	removed, visited := 0, 0
	for turn := 0; turn <= nparts && visited < semSweepSegments; turn++ {
		pos.part %= nparts
		part := binary.LittleEndian.Uint64(parts[pos.part*8:])
		prefix := semPrefix(ns, part)
		owner, dead := ix.deadPartition(prefix)
		if dead {
			n, v, done := ix.dropPartition(ns, part, owner, true, semSweepSegments-visited)
			removed += n
			visited += v
			if done || v == 0 { // gone, or not to be dropped now: the next
				pos.part, pos.seg = pos.part+1, 0
			}
			continue
		}
		head, _, err := ix.s.Get(prefix + "h")
		nseg, _, ok := ix.semHead(head)
		if err != nil && !errIs(err, ErrNotFound) {
			pos.part, pos.seg = pos.part+1, 0
			continue
		}
		// An empty h (a drop stopped before its last step) is an emptied
		// partition; a corrupt one is left alone.
		emptied := ok && nseg == 0 || errIs(err, ErrNotFound) || err == nil && len(head) == 0
		if !ok {
			nseg = 0
		}
		for ; pos.seg < nseg && visited < semSweepSegments; pos.seg++ {
			n, kept := ix.compact(prefix, pos.seg, now)
			removed += n
			visited++
			emptied = kept == 0 && pos.seg == nseg-1
		}
		if pos.seg >= nseg {
			if emptied {
				// (The last segment, just visited, is not counted twice.)
				_, v, _ := ix.dropPartition(ns, part, owner, false, semSweepSegments-visited+min(nseg, 1))
				visited += max(v-min(nseg, 1), 0)
			}
			pos.part, pos.seg = pos.part+1, 0
		}
	}
	if removed > 0 {
		ix.uncount(base, removed)
	}
	return removed
}

// compact drops segment i's records that are no longer fresh at now and
// returns how many it dropped and how many are left (-1: not known, the
// segment unreadable). It publishes the segment's signs when it dropped
// any, and also when they disagree (a writer stopped between its two
// writes).
func (ix semIndexStore) compact(prefix string, i int, now int64) (removed, kept int) {
	key := prefix + "r" + strconv.Itoa(i)
	removed, kept = ix.compactKept(key, now)
	if removed > 0 {
		ix.publishSigns(prefix, i)
	} else if sv, _, err := ix.s.Get(prefix + "s" + strconv.Itoa(i)); err == nil || err == ErrNotFound {
		if seg, _, err := ix.s.Get(key); err == nil && string(segmentSigns(seg)) != string(sv) {
			ix.publishSigns(prefix, i)
		}
	}
	return removed, kept
}

// compactSeg compacts the segment at key and returns the records it
// dropped.
func (ix semIndexStore) compactSeg(key string, now int64) int {
	removed, _ := ix.compactKept(key, now)
	return removed
}

// compactKept is compactSeg that also returns the records left (-1: not
// known).
func (ix semIndexStore) compactKept(key string, now int64) (removed, left int) {
	for try := 0; try < 4; try++ {
		seg, cas, err := ix.s.Get(key)
		if err == nil && len(seg) == 0 || errIs(err, ErrNotFound) {
			return 0, 0
		}
		if err != nil || len(seg) < semSegHead {
			return 0, -1
		}
		n := int(binary.LittleEndian.Uint16(seg))
		out := []byte{0, 0}
		kept, p := 0, 0
		dim := int(binary.LittleEndian.Uint16(seg[2:]))
		out = append(out, seg[2:4]...)
		fixed := semRecHead + dim + 2
		p = semSegHead
		for r := 0; r < n && p+fixed <= len(seg); r++ {
			size := fixed + int(binary.LittleEndian.Uint16(seg[p+fixed-2:]))
			if p+size > len(seg) {
				return 0, -1
			}
			if int64(binary.LittleEndian.Uint64(seg[p+4:])) > now {
				out = append(out, seg[p:p+size]...)
				kept++
			}
			p += size
		}
		if kept == n {
			return 0, kept
		}
		binary.LittleEndian.PutUint16(out, uint16(kept))
		if ix.s.Set(key, out, cas) == nil {
			return n - kept, kept
		}
	}
	return 0, -1
}

// deadPartition reports whether the partition's records were stored under
// a generation its model no longer has: its owner (g) names a model whose
// record in the model table has another generation, or none (a record is
// reclaimed only once its entries are dead, and made again with a new
// generation). A partition without an owner, or a model table that cannot
// be read, is not dead. The model table's slot is bounded and checked
// (modelCount) before a record is read. It also returns the owner (g's
// value), for dropPartition.
func (ix semIndexStore) deadPartition(prefix string) (owner []byte, dead bool) {
	g, _, err := ix.s.Get(prefix + "g")
	if err != nil || len(g) != 16 {
		return nil, false
	}
	return g, ix.deadOwner(g)
}

// deadOwner reports whether owner g (16 bytes) names a generation its
// model no longer has (see deadPartition).
func (ix semIndexStore) deadOwner(g []byte) bool {
	id, gen := binary.LittleEndian.Uint64(g), binary.LittleEndian.Uint64(g[8:])
	raw, _, err := ix.s.Get(modelKey(id))
	if errIs(err, ErrNotFound) {
		return true
	}
	if err != nil {
		return false
	}
	n, ok := modelCount(raw) // a slot in another shape reads as empty (models.go)
	for i := 0; ok && i < n; i++ {
		if r := raw[4+i*modelRecordLen:]; binary.LittleEndian.Uint64(r) == id {
			return modelStateOf(r).Gen != gen
		}
	}
	return true
}

// ownerIfNone records own (16 bytes; nil: none) as the slot's owner if it
// has none, create-only or with the CAS of the empty value read, so that
// it never replaces another writer's: writers of different contexts, and
// so of different owners, share a slot. It returns the other owner the
// slot has (nil: none, or own).
func (ix semIndexStore) ownerIfNone(prefix string, own []byte) (other []byte) {
	for try := 0; try < 4; try++ {
		g, gcas, err := ix.s.Get(prefix + "g")
		missing := errIs(err, ErrNotFound)
		if err != nil && !missing {
			return nil
		}
		if len(g) == 16 {
			if string(g) == string(own) {
				return nil
			}
			return g
		}
		if len(own) != 16 {
			return nil
		}
		if missing {
			if gcas, err = CreateCAS(ix.s); err != nil {
				return nil
			}
		}
		if ix.s.Set(prefix+"g", own, gcas) == nil {
			return nil
		}
	}
	return nil
}

// dropPartition empties a dead partition (deadPartition) from its last
// segment down, at most budget segments; each emptied segment comes off
// the count in h, so what is done is never done again, by any worker, and
// a sweep that stops for its budget resumes there. Once no segment is
// left the partition's values are emptied and it leaves the namespace's
// list, so dead partitions neither take sweeps' visits nor lengthen the
// list for good. It returns the records dropped (for the caller to take
// off the count), the segments visited and whether the partition is gone
// (owner is its g, as deadPartition read it). Of a live partition (dead
// false) it takes off only segments that hold no record, from the last
// down, stopping at the first that holds one: a sweep that emptied a
// partition unlists it so.
//
// Nothing writes to a dead partition but an answer stored under its
// generation just before the generation moved (its index write following
// its store), while a live one's writers come at any time: a writer
// reads h, then writes its segment, so its record may land in a segment
// this has just emptied and taken off h. So each writer, after its
// write, reads h again, and this, after it took a segment off h, reads
// the segment again: whichever of the two comes second sees the other's
// write and puts the segment back in h (cover), so a record is never left
// in a segment beyond h's count, where no sweep, search or reclaim reaches
// it. A writer whose record lands after the partition was dropped opens
// it again (listed, with its owner), and the next sweep drops it again.
// Such a writer may also open it while the last step runs, between the
// read of an empty h and the partition leaving the list: it was listed,
// then unlisted, and its record stayed counted in a partition no sweep or
// reclaim reached (a review found a max_entries held full for good that
// way). So the last step reads h again once the partition is off the
// list and its owner emptied, and writes that empty h back with its CAS:
// a writer that opened the partition before that write is seen (h not
// empty, or the CAS fails), and the partition is listed again with its
// owner for the next visit; one that opens it after lists it and records
// its owner itself (place), after this step's writes.
func (ix semIndexStore) dropPartition(ns, part uint64, owner []byte, dead bool, budget int) (removed, visited int, done bool) {
	prefix := semPrefix(ns, part)
	keys := newSemKeys(prefix)
	for {
		head, hcas, err := ix.s.Get(prefix + "h")
		if err != nil && !errIs(err, ErrNotFound) {
			break
		}
		nseg, _, ok := ix.semHead(head)
		if !ok && len(head) > 0 && !dead {
			break // corrupt: left alone
		}
		if !ok || nseg == 0 {
			done = ix.closePartition(ns, part, owner)
			break
		}
		if visited == budget {
			break
		}
		i := nseg - 1
		visited++
		for try := 0; try < 4; try++ {
			seg, cas, err := ix.s.Get(keys.key(prefix, 'r', i))
			if err != nil {
				break
			}
			n := 0
			if len(seg) >= semSegHead {
				n = min(int(binary.LittleEndian.Uint16(seg)), semSegRecords)
			}
			if n > 0 && !dead {
				return removed, visited, false // a live record: the partition stays
			}
			if len(seg) == 0 {
				break
			}
			if ix.s.Set(keys.key(prefix, 'r', i), nil, cas) == nil {
				removed += n
				break
			}
		}
		// (Emptied only if there: a value set on a missing key makes one,
		// and a corrupt count in h may name many.)
		if sv, _, err := ix.s.Get(keys.key(prefix, 's', i)); err == nil && len(sv) > 0 {
			_ = ix.s.Set(keys.key(prefix, 's', i), nil, 0)
		}
		var next []byte // no segment left: an empty head, as reclaim leaves it
		if i > 0 {
			next = encodeSemHead(i, i-1)
		}
		if ix.s.Set(prefix+"h", next, hcas) != nil {
			break // another worker drops it too (or a writer reopened it)
		}
		if seg, _, err := ix.s.Get(keys.key(prefix, 'r', i)); err == nil && len(seg) >= semSegHead && binary.LittleEndian.Uint16(seg) > 0 {
			ix.cover(ns, part, i, owner) // a writer's record landed meanwhile
			ix.publishSigns(prefix, i)   // (its signs were emptied above)
			break
		}
	}
	return removed, visited, done
}

// cover makes h count segment i again, after a record was written there
// that a drop may have taken off h meanwhile (see dropPartition). A
// partition it opens again (h empty) is listed, with its owner.
func (ix semIndexStore) cover(ns, part uint64, i int, owner []byte) {
	prefix := semPrefix(ns, part)
	for try := 0; try < 8; try++ {
		head, hcas, err := ix.s.Get(prefix + "h")
		if errIs(err, ErrNotFound) {
			if hcas, err = CreateCAS(ix.s); err != nil {
				return
			}
		} else if err != nil {
			return
		}
		nseg, w, ok := ix.semHead(head)
		if ok && nseg > i {
			return
		}
		opened := !ok || nseg == 0
		if opened {
			nseg, w = 0, i
		}
		if ix.s.Set(prefix+"h", encodeSemHead(max(nseg, i+1), w), hcas) != nil {
			continue
		}
		if opened {
			ix.register(ns, part)
			ix.ownerIfNone(prefix, owner)
		}
		return
	}
}

// closePartition is dropPartition's last step, once h was read empty: it
// takes the partition off the list and empties its owner, then seals h
// (see dropPartition). It reports whether the partition is gone; if a
// late writer opened it meanwhile, it is listed again with its owner. The
// owner is emptied only as this step read it (its CAS): a writer that
// records its owner in between (a partition's first writer lists it,
// then writes g; a sweep may read g between the two) keeps it, where an
// unconditional write erased it and the owner put back was the one read
// before, none (review 35): a record with no owner is never dropped with
// its generation.
func (ix semIndexStore) closePartition(ns, part uint64, owner []byte) bool {
	prefix := semPrefix(ns, part)
	ix.unregister(ns, part)
	g, gcas, gerr := ix.s.Get(prefix + "g")
	emptied := gerr == nil && len(g) > 0 && ix.s.Set(prefix+"g", nil, gcas) == nil
	if emptied && len(g) == 16 {
		owner = append(owner[:0:0], g...) // the owner it had: put back if reopened
	}
	head, hcas, err := ix.s.Get(prefix + "h")
	if err == nil || errIs(err, ErrNotFound) {
		if nseg, _, ok := ix.semHead(head); (!ok || nseg == 0) && ix.s.Set(prefix+"h", nil, hcas) == nil {
			return true
		}
	}
	ix.register(ns, part) // (a no-op if its writer's own register came after ours)
	if emptied {
		// Only what this step emptied is put back, and only where no
		// writer recorded its own since.
		ix.ownerIfNone(prefix, owner)
	}
	return false
}

// unregister takes a partition off its namespace's list.
func (ix semIndexStore) unregister(ns, part uint64) {
	key := semNamespace(ns) + "parts"
	for try := 0; try < 8; try++ {
		v, cas, err := ix.s.Get(key)
		if err != nil {
			return
		}
		out := make([]byte, 0, len(v))
		for i := 0; i+8 <= len(v); i += 8 {
			if binary.LittleEndian.Uint64(v[i:]) != part {
				out = append(out, v[i:i+8]...)
			}
		}
		if len(out) == len(v) || ix.s.Set(key, out, cas) == nil {
			return
		}
	}
}

// register lists a partition in its namespace, for sweeps and reclaim,
// unless it is listed already (a partition a late writer opened during
// its drop's last step is listed again by both).
func (ix semIndexStore) register(ns, part uint64) {
	key := semNamespace(ns) + "parts"
	for try := 0; try < 8; try++ {
		v, cas, err := ix.s.Get(key)
		if errIs(err, ErrNotFound) {
			// create only if still missing: a set with CAS 0 would replace
			// another worker's first listing
			if cas, err = CreateCAS(ix.s); err != nil {
				return
			}
		} else if err != nil {
			return
		}
		for i := 0; i+8 <= len(v); i += 8 {
			if binary.LittleEndian.Uint64(v[i:]) == part {
				return
			}
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
	base := semNamespace(ns)
	parts, _, err := ix.s.Get(base + "parts")
	if err != nil {
		return 0
	}
	freed := 0
	for i := 0; i+8 <= len(parts); i += 8 {
		prefix := semPrefix(ns, binary.LittleEndian.Uint64(parts[i:]))
		head, _, err := ix.s.Get(prefix + "h")
		nseg, _, ok := ix.semHead(head)
		if err != nil || !ok {
			continue
		}
		for s := 0; s < nseg; s++ {
			if seg, _, err := ix.s.Get(prefix + "r" + strconv.Itoa(s)); err == nil && len(seg) >= 2 {
				freed += int(binary.LittleEndian.Uint16(seg))
				_ = ix.s.Set(prefix+"r"+strconv.Itoa(s), nil, 0)
			}
			_ = ix.s.Set(prefix+"s"+strconv.Itoa(s), nil, 0)
		}
		_ = ix.s.Set(prefix+"h", nil, 0)
		_ = ix.s.Set(prefix+"g", nil, 0)
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

// semSharedGet returns the turn's shared vector, if a slot holds it
// (nothing is claimed).
func (c *Cache) semSharedGet(tkey uint64) *semVector {
	val, _, err := c.store.Get(semSlotKey(tkey))
	if err != nil || len(val) < 17 || val[0] != 'V' || binary.LittleEndian.Uint64(val[1:]) != tkey {
		return nil
	}
	return decodeSharedVector(val)
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
			if claimLive(int64(binary.LittleEndian.Uint64(val[9:])), now, s) {
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

// claimLive reports whether a turn's embedding claim (shared, or this
// VM's pending mark) that lasts until until is live at now: one further
// ahead than any is written for (the call's timeout and a second, and
// clockSkewMs between workers) was written before the wall clock stepped
// back, and is dead rather than live for as long as the step (review
// Z200). A reload that shortens the timeout ends older claims early: the
// turn is embedded once more at worst.
func claimLive(until, now int64, s *Semantic) bool {
	return until > now && until-now <= s.Embedding.Timeout.Milliseconds()+1000+clockSkewMs
}

// semSharedPut shares an embedded turn's vector. Its identity's length is
// a u16: parseEmbedding bounds identities far below (maxIdentity), and one
// that did not fit would not be shared rather than be read back cut.
func (c *Cache) semSharedPut(tkey uint64, v *semVector) {
	if len(v.identity) > math.MaxUint16 {
		return
	}
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
// service, the tenant and the text. Tenants do not share vectors (none
// on a shared route): the embeddings call a turn another tenant sent
// would skip tells the time it saves, and so that someone sent it.
func (c *Cache) textKey(r *Route, tenant *[32]byte, text string) uint64 {
	s := r.Semantic
	b := make([]byte, 0, len(text)+len(s.Embedding.Cluster)+len(s.Embedding.Path)+len(s.Embedding.Model)+len(r.Name)+len(tenant)+20)
	b = append(b, 'T')
	b = append(b, tenant[:]...)
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

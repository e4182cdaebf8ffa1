package cachecore

import (
	"encoding/binary"
	"math"
	"strconv"
)

// Poison containment. A stored answer is reachable by near matches only
// once it is confirmed: it served semantic.confirm.exact_hits exact hits
// (someone asked exactly that again and got it), or a shadow comparison
// of it agreed with a fresh answer. A near hit whose shadow comparison
// diverges is demoted: that entry never answers a near match again (exact
// hits still reach it). The state is one small record per entry, and
// belongs to the stored answer (its StoredAt), not to the key: an answer
// stored again under the same question starts unconfirmed.
//
//	modelcache/semc/<slot>   u32 exact hits | u8 flags | f32 own minimum similarity | i64 stored at | i64 until | u64 entry fp
//
// in semConfirmSlots slots (entry fp modulo): bounded whatever the number
// of answers; an answer whose slot another took is simply unconfirmed.
// A demotion keeps its slot until its entry is dead (until: the entry's
// stale-until): no other answer's record replaces it before, so asking
// many questions cannot wash a demotion out; an answer that finds its
// slot so held stays unconfirmed. A demotion also marks the entry itself
// (FlagDemoted, which a near match reads): one whose slot another
// demotion holds is not lost.

type semConfirm struct {
	hits     uint32
	agreed   bool // a shadow comparison agreed (semFlagAgreed)
	demoted  bool
	minSim   float64
	storedAt int64
	until    int64 // a demotion's hold on the slot (ms)
}

// of reports the state for the answer stored at storedAt: none if the
// record is an earlier answer's.
func (s semConfirm) of(storedAt int64) semConfirm {
	if s.storedAt != storedAt {
		return semConfirm{storedAt: storedAt}
	}
	return s
}

// The record's flags. It keeps what happened, not a verdict: whether an
// answer is confirmed is read under the route's confirm settings of the
// moment (confirmedBy). A sticky "confirmed" flag, set under the settings
// then running, kept serving paraphrases an answer with one exact hit
// after a reload raised exact_hits, or one only a shadow had confirmed
// after confirm.shadow was turned off (review Z159). Bit 1, that flag in
// records of earlier builds, is read as nothing: such an answer is
// confirmed by its hits, or again by a shadow.
const (
	semFlagDemoted = 2
	semFlagAgreed  = 4
)

// confirmedBy reports whether the answer is confirmed under s: as many
// exact hits as it asks, or a shadow agreement where it counts them.
func (st semConfirm) confirmedBy(s *Semantic) bool {
	return int(st.hits) >= s.ConfirmHits || st.agreed && s.ConfirmShadow
}

func semConfirmKey(fp uint64) string {
	return "modelcache/semc/" + strconv.FormatUint(fp%semConfirmSlots, 16)
}

func (c *Cache) semConfirmState(fp uint64) semConfirm {
	v, _, err := c.store.Get(semConfirmKey(fp))
	return decodeSemConfirm(v, err, fp)
}

const semConfirmLen = 33

func decodeSemConfirm(v []byte, err error, fp uint64) semConfirm {
	if err != nil || len(v) != semConfirmLen || binary.LittleEndian.Uint64(v[25:]) != fp {
		return semConfirm{}
	}
	return semConfirm{hits: binary.LittleEndian.Uint32(v), agreed: v[4]&semFlagAgreed != 0, demoted: v[4]&semFlagDemoted != 0,
		minSim: float64(math.Float32frombits(binary.LittleEndian.Uint32(v[5:]))), storedAt: int64(binary.LittleEndian.Uint64(v[9:])),
		until: int64(binary.LittleEndian.Uint64(v[17:]))}
}

// heldFrom reports a slot value that is another entry's demotion, held
// at now.
func heldFrom(v []byte, fp uint64, now int64) bool {
	return len(v) == semConfirmLen && binary.LittleEndian.Uint64(v[25:]) != fp && v[4]&semFlagDemoted != 0 &&
		int64(binary.LittleEndian.Uint64(v[17:])) > now
}

func (s semConfirm) encode() []byte {
	b := binary.LittleEndian.AppendUint32(nil, s.hits)
	var fl byte
	if s.agreed {
		fl |= semFlagAgreed
	}
	if s.demoted {
		fl |= semFlagDemoted
	}
	b = append(b, fl)
	b = binary.LittleEndian.AppendUint32(b, math.Float32bits(float32(s.minSim)))
	b = binary.LittleEndian.AppendUint64(b, uint64(s.storedAt))
	return binary.LittleEndian.AppendUint64(b, uint64(s.until))
}

func (s semConfirm) encodeFor(fp uint64) []byte {
	return binary.LittleEndian.AppendUint64(s.encode(), fp)
}

// semUpdate changes the record of fp's answer stored at storedAt with f
// (CAS, a few tries); f reports whether to write.
func (c *Cache) semUpdate(fp uint64, storedAt int64, f func(s *semConfirm) bool) bool {
	key := semConfirmKey(fp)
	for try := 0; try < 4; try++ {
		v, cas, err := c.store.Get(key)
		if err != nil && err != ErrNotFound || heldFrom(v, fp, c.nowMs()) {
			return false
		}
		s := decodeSemConfirm(v, err, fp).of(storedAt)
		if !f(&s) {
			return false
		}
		if err == ErrNotFound {
			cc, cerr := c.table.createCAS()
			if cerr != nil {
				return false
			}
			cas = cc
		}
		if c.store.Set(key, s.encodeFor(fp), cas) == nil {
			return true
		}
	}
	return false
}

// semanticExactHit counts an exact hit towards the entry's confirmation.
func (f *Flight) semanticExactHit() {
	c, req := f.c, f.req
	s := req.Route.Semantic
	if s == nil || req.Status != StatusHit || s.ConfirmHits == 0 || req.Entry == nil {
		return
	}
	at := req.Entry.StoredAt
	if cur := c.semConfirmState(req.FP).of(at); int(cur.hits) >= s.ConfirmHits || cur.demoted {
		return // the common case: one read, no write
	}
	if _, ok := c.semanticQuery(req); !ok {
		// No turn to embed (content parts, a tool message last): never
		// indexed, no near match reaches it. Confirmed, it was counted
		// as reachable and took a confirmation slot answers that near
		// matches reach depend on (review Z271).
		return
	}
	confirmed := false
	c.semUpdate(req.FP, at, func(st *semConfirm) bool {
		if int(st.hits) >= s.ConfirmHits || st.demoted {
			return false
		}
		was := st.confirmedBy(s)
		st.hits++
		confirmed = !was && st.confirmedBy(s)
		return true
	})
	if confirmed {
		f.count(EvSemanticConfirmed)
	}
}

// semanticShadow applies a shadow comparison of req's answer: a near hit
// that diverged is demoted; an exact hit that agreed confirms its entry.
func (c *Cache) semanticShadow(req *Request, agree bool) []Action {
	s := req.Route.Semantic
	if s == nil {
		return nil
	}
	if hit, _ := req.SemanticHit(); hit {
		if agree {
			return nil
		}
		fp := c.fingerprint(req.sem.entryKey)
		until, at := req.Entry.StaleUntil, req.Entry.StoredAt
		recorded := c.semUpdate(fp, at, func(st *semConfirm) bool {
			if st.demoted {
				return false
			}
			st.demoted, st.until = true, until
			return true
		})
		// The record's slot may be another answer's demotion, which it
		// cannot replace: the entry itself carries the demotion too, for
		// as long as that answer lives.
		if marked, _ := c.table.markEntry(fp, req.sem.entryKey, at, FlagDemoted); marked || recorded {
			return []Action{{Kind: ActCount, Event: EvSemanticDemoted, Route: req.Route}}
		}
		return nil
	}
	if !agree || !s.ConfirmShadow || req.Status != StatusHit || req.Entry == nil {
		return nil
	}
	if _, ok := c.semanticQuery(req); !ok {
		return nil // not reachable by a near match (semanticExactHit)
	}
	confirmed := false
	c.semUpdate(req.FP, req.Entry.StoredAt, func(st *semConfirm) bool {
		if st.agreed || st.demoted {
			return false
		}
		confirmed = !st.confirmedBy(s)
		st.agreed = true
		return true
	})
	if confirmed {
		return []Action{{Kind: ActCount, Event: EvSemanticConfirmed, Route: req.Route}}
	}
	return nil
}

// semConfirmSlots bounds the confirmation records (a var for tests).
var semConfirmSlots uint64 = 16384

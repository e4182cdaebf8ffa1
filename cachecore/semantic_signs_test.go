package cachecore

import (
	"encoding/binary"
	"math"
	"math/rand/v2"
	"strconv"
	"strings"
	"testing"
)

// signsIndex is a partition of n records (random 384-dim vectors, turn
// "t<i>"), record i fresh until freshUntil(i); it returns the vectors by
// turn.
type signsIndex struct {
	store *MemStore
	ix    semIndexStore
	vecs  map[string][]int8
	norms map[string]float32
}

func newSignsIndex(t *testing.T, rng *rand.Rand, n int, freshUntil func(i int) int64) *signsIndex {
	t.Helper()
	si := &signsIndex{store: NewMemStore(), vecs: map[string][]int8{}, norms: map[string]float32{}}
	si.ix = semIndexStore{s: readerOf(si.store)}
	for i := 0; i < n; i++ {
		v := make([]float32, 384)
		for j := range v {
			v[j] = float32(rng.NormFloat64())
		}
		q, norm := quantise(v)
		text := "t" + strconv.Itoa(i)
		si.vecs[text], si.norms[text] = q, norm
		if _, err := si.ix.add(1, 2, q, norm, []byte(strconv.Quote(text)), freshUntil(i), 0, 1<<20, semOwner{}, new(semSweepPos)); err != nil {
			t.Fatal(err)
		}
	}
	return si
}

// near returns a vector close to turn's.
func (si *signsIndex) near(rng *rand.Rand, turn string) ([]int8, float32) {
	v := make([]float32, 384)
	for j, x := range si.vecs[turn] {
		v[j] = float32(x) + float32(rng.NormFloat64()*8)
	}
	return quantise(v)
}

// check: every candidate's similarity is its own turn's cosine with q
// (never another record's), at or above min, and its turn fresh at now.
func (si *signsIndex) check(t *testing.T, what string, got []semCandidate, q []int8, qn float32, min float64, now int64, freshUntil func(i int) int64) {
	t.Helper()
	for _, c := range got {
		v, ok := si.vecs[c.text]
		if !ok {
			t.Fatalf("%s: served a turn never indexed: %q", what, c.raw)
		}
		want := float64(dot(q, int8Bytes(v))) / (float64(qn) * float64(si.norms[c.text]))
		if math.Abs(c.sim-want) > 1e-9 || c.sim < min {
			t.Fatalf("%s: %q served at similarity %.4f, its own vector gives %.4f (min %.2f)", what, c.text, c.sim, want, min)
		}
		i, _ := strconv.Atoi(c.text[1:])
		if freshUntil(i) <= now {
			t.Fatalf("%s: %q served though no longer fresh", what, c.text)
		}
	}
}

func (si *signsIndex) signsKeys() []string {
	var keys []string
	for k := range si.store.m {
		if strings.HasPrefix(k, semPrefix(1, 2)+"s") {
			keys = append(keys, k)
		}
	}
	return keys
}

func (si *signsIndex) consistent(t *testing.T) {
	t.Helper()
	prefix := semPrefix(1, 2)
	head, _, _ := si.store.Get(prefix + "h")
	for i := 0; len(head) == 4 && i < int(binary.LittleEndian.Uint32(head)); i++ {
		seg, _, _ := si.store.Get(prefix + "r" + strconv.Itoa(i))
		sv, _, _ := si.store.Get(prefix + "s" + strconv.Itoa(i))
		if string(segmentSigns(seg)) != string(sv) {
			t.Fatalf("segment %d: its signs value disagrees with it", i)
		}
	}
}

// The sign bits live in their own value beside each segment and the two
// are written one after the other, so a search may read them disagreeing
// (or a signs value may be corrupt). Whatever the signs value says, a
// search never returns a wrong candidate: each candidate's similarity is
// its own turn's, at or above the minimum, and fresh — a disagreement
// costs only a missed match.
func TestSemanticSignsDisagreeNeverWrongMatch(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 8))
	const n = 200 // 4 segments
	fresh := func(i int) int64 {
		if i%3 == 0 {
			return 1000 // stale at now = 2000
		}
		return 1 << 62
	}
	const now = 2000
	const min = 0.5
	prefix := semPrefix(1, 2)

	// Agreeing values: the near duplicate of each probed turn is found.
	si := newSignsIndex(t, rng, n, fresh)
	si.ix.now = now
	si.consistent(t)
	for _, target := range []int{1, 65, 130, 199} {
		q, qn := si.near(rng, "t"+strconv.Itoa(target))
		got := si.ix.search(1, 2, q, qn, min)
		si.check(t, "agreeing", got, q, qn, min, now, fresh)
		if len(got) == 0 || got[0].text != "t"+strconv.Itoa(target) {
			t.Fatalf("near duplicate of t%d not found: %+v", target, got)
		}
	}

	q, qn := si.near(rng, "t65")
	corrupt := map[string]func(sv []byte, i int) []byte{
		// every entry claims the query's own signs and freshness for ever
		"all-closest": func(sv []byte, _ int) []byte {
			out := append([]byte(nil), sv...)
			qs := signs(q)
			for at := semSegHead; at+semSignHead+len(qs) <= len(out); at += semSignHead + len(qs) {
				binary.LittleEndian.PutUint64(out[at:], 1<<62)
				copy(out[at+semSignHead:], qs)
			}
			return out
		},
		// entries shifted by one (as after a compaction the signs missed)
		"shifted": func(sv []byte, _ int) []byte {
			e := semSignHead + 48
			if len(sv) < semSegHead+2*e {
				return sv
			}
			out := append([]byte(nil), sv[:semSegHead]...)
			out = append(out, sv[semSegHead+e:]...)
			return append(out, sv[semSegHead:semSegHead+e]...)
		},
		// another segment's signs
		"other-segment": func(_ []byte, i int) []byte {
			v, _, _ := si.store.Get(prefix + "s" + strconv.Itoa((i+1)%4))
			return v
		},
		"count-too-large": func(sv []byte, _ int) []byte {
			out := append([]byte(nil), sv...)
			binary.LittleEndian.PutUint16(out, 0xffff)
			return out
		},
		"truncated": func(sv []byte, _ int) []byte { return sv[:len(sv)/2+3] },
		"random": func(sv []byte, _ int) []byte {
			out := make([]byte, len(sv))
			for j := range out {
				out[j] = byte(rng.Uint32())
			}
			binary.LittleEndian.PutUint16(out[2:], 384)
			return out
		},
		"empty": func([]byte, int) []byte { return nil },
	}
	disagree := map[string]bool{"all-closest": true, "shifted": true, "other-segment": true, "random": true}
	for name, f := range corrupt {
		saved := map[string][]byte{}
		for i := 0; i < 4; i++ {
			k := prefix + "s" + strconv.Itoa(i)
			saved[k], _, _ = si.store.Get(k)
		}
		for i := 0; i < 4; i++ {
			k := prefix + "s" + strconv.Itoa(i)
			if err := si.store.Set(k, f(saved[k], i), 0); err != nil {
				t.Fatal(err)
			}
		}
		for _, m := range []float64{min, -1} {
			got := si.ix.search(1, 2, q, qn, m)
			si.check(t, name, got, q, qn, m, now, fresh)
			// a record whose signs entry disagrees with it is a miss
			if disagree[name] && len(got) != 0 {
				t.Fatalf("%s: records named by disagreeing signs were scored: %+v", name, got)
			}
		}
		for k, v := range saved {
			_ = si.store.Set(k, v, 0)
		}
	}

	// Stale signs for real: segments compacted (records shift) without
	// their signs being published; then a sweep repairs them.
	si2 := newSignsIndex(t, rng, n, fresh)
	q, qn = si2.near(rng, "t65")
	for i := 0; i < 4; i++ {
		if si2.ix.compactSeg(prefix+"r"+strconv.Itoa(i), now) == 0 {
			t.Fatalf("segment %d: nothing compacted", i)
		}
	}
	si2.ix.now = now
	si2.check(t, "compacted", si2.ix.search(1, 2, q, qn, -1), q, qn, -1, now, fresh)
	si2.check(t, "compacted", si2.ix.search(1, 2, q, qn, min), q, qn, min, now, fresh)
	for i := 0; i < 4; i++ {
		si2.ix.compact(prefix, i, now) // nothing left to drop: publishes the disagreeing signs
	}
	si2.consistent(t)
	got := si2.ix.search(1, 2, q, qn, min)
	si2.check(t, "repaired", got, q, qn, min, now, fresh)
	if len(got) == 0 || got[0].text != "t65" {
		t.Fatalf("near duplicate not found once the signs were repaired: %+v", got)
	}
}

// Every write of a segment publishes its signs: after adds, a sweep
// and a reclaim the two values agree.
func TestSemanticSignsFollowSegments(t *testing.T) {
	rng := rand.New(rand.NewPCG(9, 10))
	fresh := func(i int) int64 { return int64(1000 + i*10) }
	si := newSignsIndex(t, rng, 150, fresh)
	si.consistent(t)
	var cursor semSweepPos
	if got := si.ix.sweep(1, 1495, &cursor); got != 50 {
		t.Fatalf("sweep dropped %d records, want 50", got)
	}
	si.consistent(t)
	if len(si.signsKeys()) != 3 {
		t.Fatalf("%d signs values, want 3", len(si.signsKeys()))
	}
	si.ix.reclaim(1)
	si.consistent(t)
}

// signsInto packs a record's bytes as signs packs the query, for every
// dimension (also one not a multiple of 8).
func TestSemanticSignsInto(t *testing.T) {
	rng := rand.New(rand.NewPCG(11, 12))
	for _, dim := range []int{8, 13, 64, 384, 385, 1024} {
		q := make([]int8, dim)
		for i := range q {
			q[i] = int8(rng.IntN(256) - 128)
		}
		if got, want := signsInto(nil, int8Bytes(q)), signs(q); string(got) != string(want) {
			t.Fatalf("dim %d: %x, want %x", dim, got, want)
		}
		w := words(signs(q))
		zero := make([]byte, signBytes(dim))
		h := 0
		for _, x := range q {
			if x >= 0 {
				h++
			}
		}
		if got := hamming(w, zero); got != h {
			t.Fatalf("dim %d: hamming %d, want %d", dim, got, h)
		}
	}
}

package cachecore

import (
	"bytes"
	"errors"
	"fmt"
	"math/rand/v2"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/modelcache/modelcache/internal/hammer"
)

func TestModelVersionChange(t *testing.T) {
	env := newEnv(t, testConfig)
	promptA, promptB := chatRequest("A"), chatRequest("B")
	answer := chatResponse("same answer")
	v := func(version string) [][2]string {
		return hdr("content-type", "application/json", "x-model-version", version)
	}

	req, _ := env.lookup("versioned", alice, promptA)
	if res := env.fill(req, v("v1"), answer, 10); res.VersionChanged || res.Version != "v1" {
		t.Fatalf("first store: %+v", res)
	}
	req, d := env.lookup("versioned", alice, promptA)
	if d != Serve {
		t.Fatalf("A not cached under v1")
	}
	if _, headers, _ := env.cache.HitResponse(req); headerValue(headers, "x-model-version") != "v1" {
		t.Fatalf("version header not replayed: %q", headers)
	}

	// B's answer comes from v2: the model moved on.
	req, _ = env.lookup("versioned", alice, promptB)
	if res := env.fill(req, v("v2"), answer, 10); !res.VersionChanged || res.Version != "v2" {
		t.Fatalf("store under v2: %+v", res)
	}
	if n, _ := env.cache.Table().Occupied(); n != 2 {
		t.Fatalf("occupied %d: A's v1 entry should still be in the table", n)
	}
	if req, d := env.lookup("versioned", alice, promptA); d != Forward || req.Entry != nil {
		t.Fatalf("A's v1 entry served after the switch to v2 (identical body)")
	}
	if _, d := env.lookup("versioned", alice, promptB); d != Serve {
		t.Fatalf("B not cached under v2")
	}
	req, _ = env.lookup("versioned", alice, promptA)
	if res := env.fill(req, v("v2"), answer, 10); res.VersionChanged {
		t.Fatalf("same version reported as a change: %+v", res)
	}
	if _, d := env.lookup("versioned", alice, promptA); d != Serve {
		t.Fatalf("A not cached under v2")
	}

	t.Run("version from the body", func(t *testing.T) {
		resp := func(fp string) string {
			return strings.Replace(answer, `{"id"`, `{"system_fingerprint":"`+fp+`","id"`, 1)
		}
		req, _ := env.lookup("fingerprinted", alice, promptA)
		if res := env.fill(req, jsonCT, resp("fp_1"), 10); res.Version != "fp_1" || res.VersionChanged {
			t.Fatalf("fp_1: %+v", res)
		}
		req, _ = env.lookup("fingerprinted", alice, promptB)
		if res := env.fill(req, jsonCT, resp("fp_2"), 10); !res.VersionChanged {
			t.Fatalf("fp_2: %+v", res)
		}
		if _, d := env.lookup("fingerprinted", alice, promptA); d != Forward {
			t.Fatalf("fp_1 entry served after fp_2")
		}
	})
}

func TestObserveVersion(t *testing.T) {
	env := newEnv(t, testConfig)
	c := env.cache
	long := strings.Repeat("v", 100)
	steps := []struct {
		version     string
		wantChanged bool
		wantStored  string
	}{
		{"", false, ""},
		{"v1", false, "v1"}, // a first version is not a change
		{"v1", false, "v1"},
		{"v2", true, "v2"},
		{long, true, long},
		{long[:maxVersionLen] + "different tail", true, long[:maxVersionLen] + "different tail"},
		{long[:maxVersionLen] + "different tail", false, long[:maxVersionLen] + "different tail"},
	}
	var gen uint64
	for i, s := range steps {
		st, changed, err := c.ObserveVersion("versioned", "m", s.version, 0)
		if err != nil || !st.Found || changed != s.wantChanged || st.Version != versionID(s.wantStored) {
			t.Fatalf("step %d (%q): %+v changed=%v err=%v", i, s.version, st, changed, err)
		}
		// A switch renews the generation (a switch back never reaches the
		// entries of the version before); a repeat keeps it.
		if i > 0 && (st.Gen != gen) != s.wantChanged {
			t.Fatalf("step %d: generation moved %v, version changed %v", i, st.Gen != gen, s.wantChanged)
		}
		gen = st.Gen
	}
	last := steps[len(steps)-1].wantStored
	if st, _ := c.loadModel("versioned", "m"); st.Version != versionID(last) || st.Gen != gen {
		t.Fatalf("loadModel = %+v", st)
	}
	if st, _ := c.loadModel("versioned", "other"); st.Found {
		t.Fatalf("unrelated model found: %+v", st)
	}
}

func TestPurgeModel(t *testing.T) {
	env := newEnv(t, testConfig)
	m1 := chatRequest("q")
	m2 := strings.Replace(m1, "gpt-4o-mini", "gpt-4o", 1)
	for _, who := range [][][2]string{alice, bob} {
		for _, body := range []string{m1, m2} {
			req, _ := env.lookup("chat", who, body)
			env.fill(req, jsonCT, chatResponse("a"), 10)
		}
	}
	req, _ := env.lookup("sie", alice, m1)
	env.fill(req, jsonCT, chatResponse("a"), 10)

	if err := env.cache.PurgeModel("chat", "gpt-4o-mini"); err != nil {
		t.Fatal(err)
	}
	for _, who := range [][][2]string{alice, bob} {
		if _, d := env.lookup("chat", who, m1); d != Forward {
			t.Errorf("purged model still served")
		}
		if _, d := env.lookup("chat", who, m2); d != Serve {
			t.Errorf("other model purged too")
		}
	}
	if _, d := env.lookup("sie", alice, m1); d != Serve {
		t.Errorf("same model on another route purged too")
	}
	req, _ = env.lookup("chat", alice, m1)
	env.fill(req, jsonCT, chatResponse("b"), 10)
	if req, d := env.lookup("chat", alice, m1); d != Serve || !strings.Contains(string(req.Entry.Body), `"b"`) {
		t.Errorf("not cacheable again after a purge")
	}
	if err := env.cache.PurgeModel("chat", "never-seen"); err != nil {
		t.Errorf("purge of an unknown model: %v", err)
	}
}

// TestModelTableBounded: the model table is a fixed set of keys. A slot
// full of live records refuses a new model (model_table_full) rather than
// forget a live one; once records are dead, a new model reclaims one, and
// the reclaimed model comes back with a new generation, never with its old
// entries.
func TestModelTableBounded(t *testing.T) {
	env := newEnv(t, testConfig)
	models := sameModelSlot(t, env.cache, "chat", modelsPerSlot+1)
	body := func(model string) string { return withModel(chatRequest("q"), model) }
	req, _ := env.lookup("chat", alice, body(models[0]))
	env.fill(req, jsonCT, chatResponse("first"), 10)
	first, _ := env.cache.loadModel("chat", models[0])
	for _, m := range models[1:modelsPerSlot] {
		req, _ := env.lookup("chat", bob, body(m))
		env.fill(req, jsonCT, chatResponse(m), 10)
	}
	extra := models[modelsPerSlot]
	req, _ = env.lookup("chat", bob, body(extra))
	adm := env.cache.AdmitBody(req, jsonCT, []byte(chatResponse("x")))
	if res := env.cache.Store(req, 200, jsonCT, []byte(chatResponse("x")), adm, 1); res.Reason != ReasonModelTableFull {
		t.Fatalf("store of a new model into a slot of live records: %s", res.Reason)
	}
	if req, d := env.lookup("chat", alice, body(models[0])); d != Serve || !strings.Contains(string(req.Entry.Body), "first") {
		t.Fatalf("a live model was forgotten")
	}
	if err := env.cache.PurgeModel("chat", extra); err != nil {
		t.Fatalf("purge of an unknown model in a full slot: %v", err)
	}

	// Every entry dies (TTL 5m, stale-while-revalidate 30s): the records
	// become reclaimable.
	env.clock.Advance(time.Hour)
	req, _ = env.lookup("chat", bob, body(extra))
	env.fill(req, jsonCT, chatResponse("extra"), 10)
	if st, _ := env.cache.loadModel("chat", models[0]); st.Found {
		t.Fatalf("the first model to die was not the one reclaimed")
	}
	req, _ = env.lookup("chat", alice, body(models[0]))
	if req.Entry != nil {
		t.Fatalf("entry of a reclaimed model found")
	}
	if res := env.cache.Store(req, 200, jsonCT, []byte(chatResponse("second")), env.cache.AdmitBody(req, jsonCT, []byte(chatResponse("second"))), 1); res.Reason != ReasonNone {
		t.Fatalf("store after reclaim: %s", res.Reason)
	}
	st, _ := env.cache.loadModel("chat", models[0])
	if !st.Found || st.Gen == first.Gen {
		t.Fatalf("model came back with its old generation")
	}
	if req, _ := env.lookup("chat", alice, body(models[0])); req.Entry == nil || !strings.Contains(string(req.Entry.Body), "second") {
		t.Fatalf("re-stored entry not served")
	}
	if n, limit := env.store.Keys(), 2+modelSlots+16+16*4; n > limit {
		t.Fatalf("store holds %d keys, bound %d", n, limit)
	}
}

// TestModelTableHammer: 8 Caches race ObserveVersion and PurgeModel on a
// few models. A purge that returned nil is never undone by a racing
// writer (the generation a worker sees after its purge differs from the
// one before), and no slot ever holds two records for one model.
func TestModelTableHammer(t *testing.T) {
	const workers, ops = 8, 300
	if testing.Short() {
		t.Skip("hammer")
	}
	cfg := mustParse(t, testConfig)
	store := NewMemStore()
	models := []string{"a", "b", "c"}
	hammer.Run(t, workers, func(w int) error {
		c := New(cfg, Options{Store: store, Rand: seededRand(uint64(1000 + w))})
		r := seededRand(uint64(w))
		for i := 0; i < ops; i++ {
			m := models[r()%uint64(len(models))]
			if r()%2 == 0 {
				_, _, err := c.ObserveVersion("versioned", m, "v"+strconv.Itoa(int(r()%3)), 0)
				if err != nil && !errors.Is(err, ErrContention) {
					return err
				}
				continue
			}
			before, err := c.loadModel("versioned", m)
			if err != nil {
				return err
			}
			err = c.PurgeModel("versioned", m)
			if errors.Is(err, ErrContention) {
				continue
			}
			if err != nil {
				return err
			}
			after, _ := c.loadModel("versioned", m)
			if !after.Found || after.Gen == before.Gen {
				return fmt.Errorf("worker %d: purge of %s lost: gen %x before and after", w, m, before.Gen)
			}
		}
		return nil
	})
	for slot := 0; slot < modelSlots; slot++ {
		raw, _, err := store.Get("mc:m:" + strconv.Itoa(slot))
		if errors.Is(err, ErrNotFound) {
			continue
		}
		recs := decodeModels(raw)
		if recs == nil || len(recs) > modelsPerSlot {
			t.Fatalf("slot %d: %d records (%q)", slot, len(recs), raw)
		}
		ids := map[uint64]bool{}
		for _, r := range recs {
			if ids[r.id] {
				t.Fatalf("slot %d holds model %x twice", slot, r.id)
			}
			ids[r.id] = true
		}
	}
}

// The id of the last model named is kept (modelID): whatever the order in
// which routes and models come, and after the keys change, each id is
// the keyed hash of its own route and model.
func TestModelIDMemo(t *testing.T) {
	env := newEnv(t, testConfig)
	c := env.cache
	want := func(route, model string) uint64 {
		k, err := c.keys()
		if err != nil {
			t.Fatal(err)
		}
		return k.model.sum64([]byte(route + "\x00" + model))
	}
	seq := [][2]string{{"chat", "m1"}, {"chat", "m1"}, {"chat", "m2"}, {"chat", "m1"}, {"embed", "m1"}, {"chat", "m1"},
		{"chat", "m1\x00"}, {"chat", ""}, {"chat", "m1"}}
	for round := 0; round < 2; round++ {
		ids := map[uint64][2]string{}
		for _, p := range seq {
			id, err := c.modelID(p[0], p[1])
			if err != nil {
				t.Fatal(err)
			}
			if w := want(p[0], p[1]); id != w {
				t.Fatalf("round %d: modelID%q = %x, want %x", round, p, id, w)
			}
			if q, ok := ids[id]; ok && q != p {
				t.Fatalf("%q and %q share id %x", q, p, id)
			}
			ids[id] = p
		}
		// New keys (as a new process secret would give): the kept id
		// must not outlive them.
		k := *c.hk
		k.model = sipKey{k.model.k1 ^ 1, k.model.k0}
		c.hk = &k
	}
}

// TestModelStateOfReadsDecodeModelsFields holds loadModel's short read of a
// record to decodeModel's: the same generation and version, for records
// whose every field differs.
func TestModelStateOfReadsDecodeModelsFields(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for i := 0; i < 1000; i++ {
		rec := modelRecord{id: rng.Uint64(), gen: rng.Uint64(), until: rng.Int64(), divStart: rng.Int64(),
			samples: rng.Uint32(), diverged: rng.Uint32(), divTenant: rng.Uint64(), divOthers: rng.Uint32()}
		for j := range rec.version {
			rec.version[j] = byte(rng.Uint32())
		}
		raw := encodeModels([]modelRecord{rec})
		m, st := decodeModel(raw[4:]), modelStateOf(raw[4:])
		if m != rec {
			t.Fatalf("decodeModel(encodeModels(%+v)) = %+v", rec, m)
		}
		if want := (ModelState{Found: true, Gen: m.gen, Version: m.version}); st != want {
			t.Fatalf("modelStateOf = %+v, decodeModel gives %+v", st, want)
		}
	}
}

// readRecord writes a request's model state field by field, not as a
// literal (BENCHMARKS.md item 51): a field added to ModelState would keep
// the value a reused request left in it unless readRecord writes it too.
func TestReadRecordWritesEveryFieldOfModelState(t *testing.T) {
	if n := reflect.TypeOf(ModelState{}).NumField(); n != 4 {
		t.Fatalf("ModelState has %d fields, readRecord writes 4: write the new one there, then count it here", n)
	}
	r := encodeModels([]modelRecord{{id: 7, gen: 42, until: 1}})[4:]
	st := ModelState{Found: false, Gen: 1, Version: VersionID(bytes.Repeat([]byte{9}, versionIDLen)), empty: true}
	st.readRecord(r)
	if want := modelStateOf(r); st != want {
		t.Fatalf("a reused state read as %+v, a new one as %+v", st, want)
	}
}

// ModelState.is is the struct's ==, written out: states that differ in any
// one field are not the same, and a field added to ModelState must be
// compared there too.
func TestModelStateIsComparesEveryField(t *testing.T) {
	if n := reflect.TypeOf(ModelState{}).NumField(); n != 4 {
		t.Fatalf("ModelState has %d fields, is compares 4: compare the new one there, then count it here", n)
	}
	base := ModelState{Found: true, Gen: 42, Version: VersionID(bytes.Repeat([]byte{9}, versionIDLen))}
	variants := []func(*ModelState){
		func(s *ModelState) { s.Found = false },
		func(s *ModelState) { s.Gen++ },
		func(s *ModelState) { s.empty = true },
		func(s *ModelState) { s.Version[0]++ },
		func(s *ModelState) { s.Version[versionIDLen-1]++ },
	}
	for _, a := range append(variants, func(*ModelState) {}) {
		for _, b := range append(variants, func(*ModelState) {}) {
			x, y := base, base
			a(&x)
			b(&y)
			if got, want := x.is(&y), x == y; got != want {
				t.Fatalf("(%+v).is(%+v) = %v, == says %v", x, y, got, want)
			}
		}
	}
}

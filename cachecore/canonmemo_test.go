package cachecore

import (
	"bytes"
	"testing"
)

// The memo of canonical bodies never changes a key: a body is served from
// it only after comparing equal byte for byte, for the same route.
func TestCanonMemoNeverChangesAKey(t *testing.T) {
	mc := newMemoKeyCase(t)
	env := newEnv(t, mc.cfg)
	fresh, a, c := mc.fresh, mc.a, mc.c
	mc.run(t, env, nil)
	// key_fields drops temperature: a and c share a key on "some" only.
	if !bytes.Equal(fresh("some", a), fresh("some", c)) || bytes.Equal(fresh("all", a), fresh("all", c)) {
		t.Fatal("routes' key selections not exercised")
	}
}

// A request sent again byte for byte is keyed from the memo, with the
// model and stream flag its canonicalisation captured. (The memo keeps a
// body only under a model with an answer stored: one is, first.)
func TestCanonMemoKeepsCaptures(t *testing.T) {
	env := newEnv(t, testConfig)
	env.fill(env.request("chat", alice, `{"model":"sim-chat","messages":[]}`), jsonCT, chatResponse("stored"), 10)
	body := `{"model":"sim-chat","stream":true,"messages":[{"role":"user","content":"hi"}]}`
	first := env.request("chat", alice, body)
	again := env.request("chat", alice, body)
	if again.Model != "sim-chat" || !again.Stream || !bytes.Equal(first.Key, again.Key) {
		t.Fatalf("from the memo: model %q stream %v, same key %v", again.Model, again.Stream, bytes.Equal(first.Key, again.Key))
	}
}

func TestCanonMemoSlotAnyLength(t *testing.T) {
	for n := 0; n <= 64; n++ {
		if s := memoSlot(bytes.Repeat([]byte{'x'}, n)); s >= canonMemoSlots {
			t.Fatalf("length %d: slot %d", n, s)
		}
	}
}

// memoSlot is the slot canonicalize picks for body b.
func memoSlot(b []byte) uint64 { return memoSlotOf(memoSpread(b)) }

// A body is remembered only under a model with an answer stored: under an
// empty record (nothing stored yet, or a route whose answers are all
// no-store) it could not be a hit when sent again. Once an answer is
// stored, the next request that sends the body is remembered, and the one
// after it is keyed from the memo, as a fresh canonicalisation keys it.
func TestCanonMemoRemembersOnlyWhatCanHit(t *testing.T) {
	env := newEnv(t, testConfig)
	body := chatRequest("what is two plus two?")
	slot := &env.cache.memo.slots[memoSlot([]byte(body))]
	first := env.request("chat", alice, body)
	if slot.route != nil {
		t.Fatal("a body under a model with nothing stored was remembered")
	}
	env.fill(first, jsonCT, chatResponse("four"), 10)
	second := env.request("chat", alice, body)
	if slot.route != second.Route || string(slot.buf[:slot.rawLen]) != body {
		t.Fatal("a body under a model with an answer stored was not remembered")
	}
	third := env.request("chat", alice, body)
	if !bytes.Equal(third.Key, second.Key) || !bytes.Equal(second.Key, first.Key) || third.Model != first.Model {
		t.Fatal("the memo changed a key")
	}
	if d := env.cache.Lookup(third); d != Serve {
		t.Fatalf("a body sent again after its answer was stored: %v, want Serve", d)
	}
}

// TestCanonMemoNeverChangesAKey's steps, under models with an answer
// stored, so that the memo keeps the bodies and serves them again.
func TestCanonMemoNeverChangesAKeyWhenUsed(t *testing.T) {
	mc := newMemoKeyCase(t)
	env := newEnv(t, mc.cfg)
	for _, route := range []string{"all", "some"} {
		env.fill(env.request(route, alice, `{"model":"m","messages":[]}`), jsonCT, chatResponse("stored"), 10)
	}
	slot := &env.cache.memo.slots[memoSlot([]byte(mc.a))]
	used := 0
	mc.run(t, env, func(route, body string) {
		if slot.route != nil && slot.route.Name == route && string(slot.buf[:slot.rawLen]) == body {
			used++
		}
	})
	if used == 0 {
		t.Fatal("the memo served no step")
	}
}

// memoKeyCase is the memo's key test: two routes, one selecting key
// fields, and bodies that share a slot (a, b) or differ in a field the
// selection drops (a, c), sent in an order that serves, replaces and
// misses the memo.
type memoKeyCase struct {
	t       *testing.T
	cfg     string
	a, b, c string
}

func newMemoKeyCase(t *testing.T) memoKeyCase {
	mc := memoKeyCase{t: t, cfg: `{"routes":[
	  {"name":"all","kind":"chat","path_exact":"/all"},
	  {"name":"some","kind":"chat","path_exact":"/some","key_fields":["model","messages"]}]}`}
	mc.a = `{"model":"m","messages":[{"role":"user","content":"AAAAAAAAAAAAAAAAAAAAAAAA"}],"temperature":0}`
	// b has a's length and the same bytes where memoSlot samples them
	// (start, middle, end): it shares a's slot.
	b := []byte(mc.a)
	b[len(b)/2-3] = 'B'
	if memoSlot(b) != memoSlot([]byte(mc.a)) || string(b) == mc.a {
		t.Fatal("test bodies do not collide")
	}
	mc.b = string(b)
	// The same body on another route with another key selection.
	mc.c = `{"model":"m","messages":[{"role":"user","content":"AAAAAAAAAAAAAAAAAAAAAAAA"}],"temperature":1}`
	return mc
}

// fresh computes the key of body on route without any memo: the part
// canonicalisation makes (the model state after it is a generation drawn
// at random for every model a cache keys).
func (mc memoKeyCase) fresh(route, body string) []byte {
	req := newEnv(mc.t, mc.cfg).request(route, alice, body)
	return req.Key[:req.stableLen]
}

// run sends the steps to env, each keyed as a fresh canonicalisation
// keys it; before (if any) sees each step before it is sent.
func (mc memoKeyCase) run(t *testing.T, env *testEnv, before func(route, body string)) {
	a, b, c := mc.a, mc.b, mc.c
	for i, step := range []struct{ route, body string }{
		{"all", a}, {"all", a}, {"all", b}, {"all", a}, {"some", a}, {"all", a}, {"some", c}, {"all", c}, {"some", b},
	} {
		if before != nil {
			before(step.route, step.body)
		}
		got := env.request(step.route, alice, step.body)
		if want := mc.fresh(step.route, step.body); !bytes.Equal(got.Key[:got.stableLen], want) {
			t.Fatalf("step %d (%s %s): key differs from a fresh canonicalisation", i, step.route, step.body)
		}
	}
}

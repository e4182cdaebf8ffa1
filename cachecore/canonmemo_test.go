package cachecore

import (
	"bytes"
	"testing"
)

// The memo of canonical bodies never changes a key: a body is served from
// it only after comparing equal byte for byte, for the same route.
func TestCanonMemoNeverChangesAKey(t *testing.T) {
	const cfg = `{"routes":[
	  {"name":"all","kind":"chat","path_exact":"/all"},
	  {"name":"some","kind":"chat","path_exact":"/some","key_fields":["model","messages"]}]}`
	// fresh computes the key of body on route without any memo: the part
	// canonicalisation makes (the model state after it is a generation
	// drawn at random for every model a cache keys).
	fresh := func(route, body string) []byte {
		req := newEnv(t, cfg).request(route, alice, body)
		return req.Key[:req.stableLen]
	}
	env := newEnv(t, cfg)
	a := `{"model":"m","messages":[{"role":"user","content":"AAAAAAAAAAAAAAAAAAAAAAAA"}],"temperature":0}`
	// b has a's length and the same bytes where memoSlot samples them
	// (start, middle, end): it shares a's slot.
	b := []byte(a)
	b[len(b)/2-3] = 'B'
	if memoSlot(b) != memoSlot([]byte(a)) || string(b) == a {
		t.Fatal("test bodies do not collide")
	}
	// The same body on another route with another key selection.
	c := `{"model":"m","messages":[{"role":"user","content":"AAAAAAAAAAAAAAAAAAAAAAAA"}],"temperature":1}`
	for i, step := range []struct{ route, body string }{
		{"all", a}, {"all", a}, {"all", string(b)}, {"all", a}, {"some", a}, {"all", a}, {"some", c}, {"all", c}, {"some", string(b)},
	} {
		got := env.request(step.route, alice, step.body)
		if want := fresh(step.route, step.body); !bytes.Equal(got.Key[:got.stableLen], want) {
			t.Fatalf("step %d (%s %s): key differs from a fresh canonicalisation", i, step.route, step.body)
		}
	}
	// key_fields drops temperature: a and c share a key on "some" only.
	if !bytes.Equal(fresh("some", a), fresh("some", c)) || bytes.Equal(fresh("all", a), fresh("all", c)) {
		t.Fatal("routes' key selections not exercised")
	}
}

// A request sent again byte for byte is keyed from the memo, with the
// model and stream flag its canonicalisation captured.
func TestCanonMemoKeepsCaptures(t *testing.T) {
	env := newEnv(t, testConfig)
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
	const cfg = `{"routes":[
	  {"name":"all","kind":"chat","path_exact":"/all"},
	  {"name":"some","kind":"chat","path_exact":"/some","key_fields":["model","messages"]}]}`
	fresh := func(route, body string) []byte {
		req := newEnv(t, cfg).request(route, alice, body)
		return req.Key[:req.stableLen]
	}
	env := newEnv(t, cfg)
	for _, route := range []string{"all", "some"} {
		env.fill(env.request(route, alice, `{"model":"m","messages":[]}`), jsonCT, chatResponse("stored"), 10)
	}
	a := `{"model":"m","messages":[{"role":"user","content":"AAAAAAAAAAAAAAAAAAAAAAAA"}],"temperature":0}`
	b := []byte(a)
	b[len(b)/2-3] = 'B'
	if memoSlot(b) != memoSlot([]byte(a)) || string(b) == a {
		t.Fatal("test bodies do not collide")
	}
	c := `{"model":"m","messages":[{"role":"user","content":"AAAAAAAAAAAAAAAAAAAAAAAA"}],"temperature":1}`
	slot := &env.cache.memo.slots[memoSlot([]byte(a))]
	used := 0
	for i, step := range []struct{ route, body string }{
		{"all", a}, {"all", a}, {"all", string(b)}, {"all", a}, {"some", a}, {"all", a}, {"some", c}, {"all", c}, {"some", string(b)},
	} {
		if slot.route != nil && slot.route.Name == step.route && string(slot.buf[:slot.rawLen]) == step.body {
			used++
		}
		got := env.request(step.route, alice, step.body)
		if want := fresh(step.route, step.body); !bytes.Equal(got.Key[:got.stableLen], want) {
			t.Fatalf("step %d (%s %s): key differs from a fresh canonicalisation", i, step.route, step.body)
		}
	}
	if used == 0 {
		t.Fatal("the memo served no step")
	}
}

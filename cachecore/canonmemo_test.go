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

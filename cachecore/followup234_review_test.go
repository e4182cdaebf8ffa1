package cachecore

import (
	"bytes"
	"encoding/binary"
	"slices"
	"strings"
	"testing"
)

// Review Z234 (follow-up of Z232/Z233). Z232 digests the kind's form-keyed
// fields into a route's keying tag whenever the route has key_fields or
// its own ignore_fields (r.ignoreSet), "with neither, every one of them is
// keyed anyway". But an ignore_fields list that names none of the
// form-keyed fields keys every one of them exactly as a route without the
// list does: such a route's keying does not depend on the form-keyed list
// at all, yet its tag now does.

// z234Key is the stable part of the key a request gets on a fresh env
// over cfg, and that key with its route's keying tag zeroed (what the
// request's fields and namespace make of it).
func z234Key(t *testing.T, cfg, body string) (key, untagged []byte) {
	t.Helper()
	req := newEnv(t, cfg).request("chat", alice, body)
	if req.Bypassed() {
		t.Fatalf("setup: bypassed: %s", req.Reason)
	}
	key = slices.Clone(req.Key[:req.stableLen])
	tag := binary.LittleEndian.AppendUint64(nil, req.Route.keyTag)
	i := bytes.Index(key, tag)
	if i < 0 {
		t.Fatalf("setup: the key does not hold the route's tag")
	}
	untagged = slices.Clone(key)
	copy(untagged[i:], make([]byte, 8))
	return key, untagged
}

// A reload that only writes the kind's default ignore_fields out
// (["user","metadata","store"], what the route ignored already) keys every
// request exactly as before, and before Z232 kept the route's tag (the
// lists are digested as sets). Since Z232 the mere presence of the list
// (ignoreSet) adds the form-keyed digest, so the reload starts the route's
// cache afresh: every stored answer, here and in the mesh's L2, is never
// found again. Expected: the same key, as a reload that only reorders a
// list keeps it (reviews Z168, Z170).
func TestZ234ExplicitDefaultIgnoreFieldsKeepsTheRoutesKeys(t *testing.T) {
	const route = `{"upstream_cluster":"model","routes":[{"name":"chat","kind":"chat","path_prefix":"/v1/chat/completions","ttl":"1h"%s}]}`
	body := chatRequest("what is 2+2?")
	implicit, iu := z234Key(t, strings.Replace(route, "%s", "", 1), body)
	explicit, eu := z234Key(t, strings.Replace(route, "%s", `,"ignore_fields":["user","metadata","store"]`, 1), body)
	if !bytes.Equal(iu, eu) {
		t.Fatalf("setup: the two configurations key the request's fields differently")
	}
	if !bytes.Equal(implicit, explicit) {
		t.Fatalf("writing the kind's default ignore_fields out (the same fields ignored, every request keyed as before) "+
			"changed the route's keying tag, so its keys: a reload that changes nothing starts the cache afresh\n implicit: %q\n explicit: %q",
			implicit, explicit)
	}
}

// The upgrade Z232 itself is: a module whose chat kind form-keys one more
// field (reasoning_effort) than the one before. A route whose
// ignore_fields names no form-keyed field (["user","request_id"]) keyed
// reasoning_effort under both modules, as sent: no request's key means
// anything else after the upgrade. Yet its tag moves, so every entry of
// the route misses after each such upgrade (Z231 and Z232 each added
// fields), in shared data kept across it and in an L2 that old and new
// proxies share mid-rollout (they stop reading each other's entries).
// Expected: the tag digests only what the form-keyed list changes for the
// route (the form-keyed fields its ignore_fields names, or those its
// key_fields leaves out), so this route keeps its keys, as a route
// without lists does.
func TestZ234FormKeyedGrowthKeepsKeysOfIgnoreFieldsRouteItDoesNotAffect(t *testing.T) {
	const cfg = `{"upstream_cluster":"model","routes":[{"name":"chat","kind":"chat","path_prefix":"/v1/chat/completions","ttl":"1h",
	  "ignore_fields":["user","request_id"]}]}`
	body := strings.Replace(chatRequest("what is 2+2?"), `"temperature":0`, `"temperature":0,"reasoning_effort":"low","request_id":"r1"`, 1)

	spec, _ := lookupKind(KindChat)
	saved := spec.formKeyed
	spec.formKeyed = slices.DeleteFunc(slices.Clone(saved), func(f string) bool { return f == "reasoning_effort" })
	old, ou := z234Key(t, cfg, body)
	spec.formKeyed = saved
	now, nu := z234Key(t, cfg, body)

	// Both modules key this request alike (reasoning_effort kept as sent,
	// request_id and user left out): the same key but for the tag.
	if !bytes.Equal(ou, nu) {
		t.Fatalf("setup: the two modules key the request's fields differently:\n old: %q\n now: %q", ou, nu)
	}
	if !bytes.Equal(old, now) {
		t.Fatalf("a module that only form-keys a field this route's ignore_fields never names (reasoning_effort) "+
			"changed the route's keying tag: every entry it stored misses after the upgrade, though every request "+
			"is keyed as before\n old: %q\n new: %q", old, now)
	}
}

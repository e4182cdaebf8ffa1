package cachecore

import (
	"runtime"
	"strings"
	"testing"
)

// Review Z144: README "Hostile bytes" — every parse of what comes from
// someone else is bounded in size, nesting "and in work (linear in the
// size after that)"; README "Memory bound" puts a VM at "at most ≈ 12 MiB".
// The tests below find inputs within those bounds whose work or memory is
// many times their size.

// allocatedBy is the bytes f allocates on the heap.
func allocatedBy(f func()) uint64 {
	runtime.GC()
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	f()
	runtime.ReadMemStats(&after)
	return after.TotalAlloc - before.TotalAlloc
}

// zeros is a JSON array of n zeros: two bytes an element.
func zeros(n int) string { return "[0" + strings.Repeat(",0", n-1) + "]" }

// The canonicaliser rewrites every object of two members or more through
// its scratch buffer (sortMembers): the object's whole canonical subtree
// is copied once at its own level and once more at every level above it.
// A request nesting 62 such objects around one large string copied that
// string 62 times: ~25x the time of a flat request of the same size
// (measured by the review: 1 MiB: 22-28x; 4 MiB: 25x; 128 KiB: 8x), in
// the VM, before any lookup, by any client. Expected: the bytes copied
// stay within a few times the body's size (moveBudget: 8x and 64 KiB),
// the body refused as too deep past it. (The review timed the two
// requests and held their ratio to 8x; counted instead, the test does
// not depend on the machine's load.)
func TestCanonicalNestedObjectsCostLinearWork(t *testing.T) {
	env := newEnv(t, `{"upstream_cluster":"model","max_request_bytes":4194304,"store":{"max_entry_bytes":4194304},
		"routes":[{"name":"chat","kind":"chat","path_prefix":"/v1/chat/completions","ttl":"1h"}]}`)
	const payload = 1 << 20
	const depth = MaxJSONDepth - 2 // the body's object and the metadata's levels
	pay := strings.Repeat("x", payload)
	// Members out of order at every level ("b" before "a"): any object
	// must be reordered, not only copied.
	nested := strings.Repeat(`{"b":`, depth) + `"` + pay + `"` + strings.Repeat(`,"a":0}`, depth)
	flat := `{"b":"` + pay + strings.Repeat("x", len(nested)-len(pay)-14) + `","a":0}`
	if len(flat) != len(nested) {
		t.Fatalf("sizes differ: %d, %d", len(flat), len(nested))
	}
	body := func(meta string) string {
		b := chatRequest("hello")
		return b[:len(b)-1] + `,"metadata":` + meta + `}`
	}
	if req := env.request("chat", alice, body(flat)); req.Bypassed() {
		t.Fatalf("a flat request of %d bytes bypassed: %s", len(body(flat)), req.Reason)
	}
	var c Canonicalizer
	b := []byte(body(nested))
	_, err := c.Append(nil, b, nil)
	t.Logf("%d-byte request nesting %d objects: copied %d bytes sorting (%.1fx), %v", len(b), depth, c.moved, float64(c.moved)/float64(len(b)), err)
	if err == nil && c.moved > 8*len(b)+64<<10 {
		t.Fatalf("a request nesting %d objects around its bulk copied %d bytes sorting members, %.1fx its size: the canonicaliser copies every subtree once per level above it",
			depth, c.moved, float64(c.moved)/float64(len(b)))
	}
	if err != nil {
		if req := env.request("chat", alice, string(b)); req.Reason != ReasonTooDeep {
			t.Fatalf("refused by the canonicaliser (%v), the request is not bypassed as too deep: %s", err, req.Reason)
		}
	}
}

// checkCompletion counts an answer's choices with len(choices.Array()),
// which builds a gjson.Result (≈ 80 bytes, grown by append) for every
// element before anything is checked: a 128 KiB chat answer
// {"choices":[0,0,…]} (65,000 elements) allocates ≈ 26 MiB in the VM,
// 200x its size and twice the README's whole per-VM bound, for an answer
// refused anyway. Expected: the choices are counted without materialising
// them (ForEach, or the "#" path), a few times the answer's size at most
// (3 MiB, the bound TestRerankRequestMemoryIsBoundedBySize holds requests
// of this size to).
func TestAnswerOfManyChoicesAllocatesBoundedMemory(t *testing.T) {
	refusedWithin3MiB(t, []byte(`{"choices":`+zeros((DefaultMaxEntryBytes-64)/2)+`}`), "")
}

// refusedWithin3MiB judges body, a chat answer within max_entry_bytes, and
// fails unless it is refused having allocated at most 3 MiB (why: what
// the message adds).
func refusedWithin3MiB(t *testing.T, body []byte, why string) {
	t.Helper()
	env := newEnv(t, `{"upstream_cluster":"model","routes":[{"name":"chat","kind":"chat","path_prefix":"/v1/chat/completions","ttl":"1h"}]}`)
	req := env.request("chat", alice, chatRequest("q"))
	if len(body) > DefaultMaxEntryBytes {
		t.Fatalf("answer of %d bytes over max_entry_bytes", len(body))
	}
	env.cache.AdmitBody(req, jsonCT, body) // warm
	var adm Admission
	alloc := allocatedBy(func() { adm = env.cache.AdmitBody(req, jsonCT, body) })
	t.Logf("%d-byte answer (%s): %d KiB allocated", len(body), adm.Reason, alloc>>10)
	if adm.Reason == ReasonNone {
		t.Fatalf("admitted")
	}
	if alloc > 3<<20 {
		t.Fatalf("judging one %d-byte answer allocated %d KiB (%dx its size)%s", len(body), alloc>>10, alloc/uint64(len(body)), why)
	}
}

// Validation rules read an array's length or emptiness with
// len(v.Array()) (holds: min_items/max_items; isEmpty: non_empty;
// jsonEqual: equals an array): a 128 KiB answer whose value there is
// [0,0,…] allocates ≈ 26 MiB, 200x its size. Expected: as above, at most
// 3 MiB.
func TestValidationRulesOnLongArraysAllocateBoundedMemory(t *testing.T) {
	for _, rule := range []string{
		`{"path":"items","min_items":1}`,
		`{"path":"items","max_items":100000}`,
		`{"path":"items","non_empty":true}`,
		`{"path":"items","equals":[1]}`,
	} {
		env := newEnv(t, `{"upstream_cluster":"model","routes":[{"name":"j","kind":"json","path_prefix":"/v1/j","validate":[`+rule+`]}]}`)
		req := env.request("j", alice, `{"q":1}`)
		body := []byte(`{"items":` + zeros((DefaultMaxEntryBytes-64)/2) + `}`)
		env.cache.AdmitBody(req, jsonCT, body) // warm
		var adm Admission
		alloc := allocatedBy(func() { adm = env.cache.AdmitBody(req, jsonCT, body) })
		t.Logf("rule %s, %d-byte answer (%q): %d KiB allocated", rule, len(body), adm.Reason, alloc>>10)
		if alloc > 3<<20 {
			t.Errorf("rule %s: judging one %d-byte answer allocated %d KiB (%dx its size)", rule, len(body), alloc>>10, alloc/uint64(len(body)))
		}
	}
}

// A one_of rule looks the answer's value up by valueKey, which builds the
// key of an object or array from its children's keys, each a string
// copied into its parent's: a value nesting 62 objects around one string
// copies that string at every level. A classify answer whose label, under
// a rule one_of ["cat","dog"], is such an object instead of a string
// allocates ≈ 16 MiB for 123 KB (137x; 7x flat). Expected: a value is
// keyed with memory linear in its size whatever its nesting (and an
// object needs no key at all where one_of lists only scalars), at most 3
// MiB here.
func TestOneOfRuleOnNestedValueAllocatesBoundedMemory(t *testing.T) {
	env := newEnv(t, `{"upstream_cluster":"model","routes":[{"name":"c","kind":"json","path_prefix":"/v1/c",
		"validate":[{"path":"label","one_of":["cat","dog"]}]}]}`)
	req := env.request("c", alice, `{"q":1}`)
	const depth = MaxJSONDepth - 2
	v := strings.Repeat(`{"a":`, depth) + `"` + strings.Repeat("x", 120<<10) + `"` + strings.Repeat(`}`, depth)
	body := []byte(`{"label":` + v + `}`)
	env.cache.AdmitBody(req, jsonCT, body) // warm
	var adm Admission
	alloc := allocatedBy(func() { adm = env.cache.AdmitBody(req, jsonCT, body) })
	t.Logf("%d-byte answer (%s): %d KiB allocated", len(body), adm.Reason, alloc>>10)
	if adm.Reason != ReasonValidation {
		t.Fatalf("answer not refused by the rule: %q", adm.Reason)
	}
	if alloc > 3<<20 {
		t.Fatalf("judging one %d-byte answer allocated %d KiB (%dx its size)", len(body), alloc>>10, alloc/uint64(len(body)))
	}
}

// parseL2Lookup materialises webdis' MGET array (arr.Array()) before
// checking that it has its five elements: an answer within the lookup's
// cap (3 × max_entry_bytes + 4 KiB, ≈ 388 KiB by default) of
// {"MGET":[0,0,…]} allocates a gjson.Result per element, tens of MiB in
// the VM for one lookup answer. Expected: the length is checked first
// (or the five elements read in place); at most a few times the answer.
func TestL2LookupAnswerOfManyElementsAllocatesBoundedMemory(t *testing.T) {
	max := 3*DefaultMaxEntryBytes + 4096
	body := []byte(`{"MGET":` + zeros((max-64)/2) + `}`)
	if len(body) > max {
		t.Fatalf("answer of %d bytes over the cap %d", len(body), max)
	}
	var ok bool
	alloc := allocatedBy(func() { _, ok = parseL2Lookup(body, max, "a", "b", "c") })
	t.Logf("%d-byte MGET answer (ok %v): %d KiB allocated", len(body), ok, alloc>>10)
	if ok {
		t.Fatalf("read as a lookup")
	}
	if alloc > 3*uint64(max) {
		t.Fatalf("reading one %d-byte webdis answer allocated %d KiB (%dx its size)", len(body), alloc>>10, alloc/uint64(len(body)))
	}
}

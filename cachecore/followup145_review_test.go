package cachecore

import "testing"

// Review Z145 (follow-up of Z144's arrayLen). Z144 counted an answer's
// choices without building them (arrayLen), but checkCompletion still
// tests a message's tool_calls for emptiness with len(tc.Array()), which
// builds a gjson.Result (≈ 80 bytes, grown by append) for every element
// before checkToolCalls refuses the first: a 128 KiB chat answer whose one
// choice carries "tool_calls":[0,0,…] (65,000 elements) allocates tens of
// MiB in the VM, 100x and more its size, for an answer refused anyway (the
// same bytes under "choices" are now bounded). Expected: at most a few
// times the answer's size (3 MiB, the bound TestAnswerOfManyChoices-
// AllocatesBoundedMemory holds), the answer refused (bad_shape).
func TestAnswerOfManyToolCallsAllocatesBoundedMemory(t *testing.T) {
	env := newEnv(t, `{"upstream_cluster":"model","routes":[{"name":"chat","kind":"chat","path_prefix":"/v1/chat/completions","ttl":"1h"}]}`)
	req := env.request("chat", alice, chatRequest("q"))
	const head = `{"choices":[{"index":0,"finish_reason":"stop","message":{"role":"assistant","content":null,"tool_calls":`
	const tail = `}}]}`
	body := []byte(head + zeros((DefaultMaxEntryBytes-len(head)-len(tail)-8)/2) + tail)
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
		t.Fatalf("judging one %d-byte answer allocated %d KiB (%dx its size): tool_calls built element by element to test for emptiness",
			len(body), alloc>>10, alloc/uint64(len(body)))
	}
}

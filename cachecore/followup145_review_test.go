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
	const head = `{"choices":[{"index":0,"finish_reason":"stop","message":{"role":"assistant","content":null,"tool_calls":`
	const tail = `}}]}`
	refusedWithin3MiB(t, []byte(head+zeros((DefaultMaxEntryBytes-len(head)-len(tail)-8)/2)+tail),
		": tool_calls built element by element to test for emptiness")
}

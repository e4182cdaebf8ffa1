package cachecore

import (
	"strings"
	"testing"
)

// An embedding whose components are not zero as sent but underflow the
// float32 the vector is kept in (1e-50) is a zero vector: quantise would
// divide by its zero maximum, and its turn would take an index place it
// can never match from. It counts as an embedding error, as [0,0,…] does
// (parseEmbedding sums the squares of what it keeps).
func TestAnEmbeddingThatUnderflowsFloat32IsAZeroVector(t *testing.T) {
	e := newSemEnv(t, "")
	res := CallResult{Status: 200, Body: []byte(`{"data":[{"embedding":[1e-50,1e-50,1e-50,1e-50,1e-50,1e-50,1e-50,1e-50]}]}`)}
	f, got := e.ask(alice, "What is the capital of France?", &res)
	if !strings.Contains(got, "semantic.embed_error") {
		t.Errorf("an all-zero float32 vector was taken: %q", got)
	}
	if got := e.answer(f, "Paris"); strings.Contains(got, "semantic.indexed") {
		t.Errorf("its turn was indexed (with norm 0, counted against max_entries, never matchable): %q", got)
	}
}

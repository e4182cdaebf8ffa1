package cachecore

import (
	"runtime/debug"
	"strings"
	"testing"
)

// The embeddings server's answer is untrusted bytes like any upstream
// answer (jsonbound.go: no recursive code may see them before an
// iterative pre-scan bounds their nesting). A valid vector next to a
// deeply nested member must be refused as an embedding error, not read by
// gjson's recursive validator (which overflows a wasm VM's stack).
func TestSemanticEmbeddingAnswerNestingIsBounded(t *testing.T) {
	e := newSemEnv(t, "")
	body := []byte(`{"data":[{"embedding":[1,2,3,4,5,6,7,8]}],"x":` +
		strings.Repeat("[", 200000) + strings.Repeat("]", 200000) + `}`)
	if checkJSON(body) != ReasonTooDeep {
		t.Fatal("checkJSON would have refused it")
	}
	res := CallResult{Status: 200, Body: body}
	defer debug.SetMaxStack(debug.SetMaxStack(1 << 20))
	if _, got := e.ask(alice, "What is the capital of France?", &res); !strings.Contains(got, "semantic.embed_error") {
		t.Fatalf("bomb not refused as an embedding error: %q", got)
	}
}

// An embeddings answer larger than one vector of maxDim numbers can be is
// refused before it is parsed, whatever it holds.
func TestSemanticEmbeddingAnswerSizeIsBounded(t *testing.T) {
	for _, pad := range []int{0, maxEmbeddingAnswer} {
		e := newSemEnv(t, "")
		body := []byte(`{"data":[{"embedding":[1,2,3,4,5,6,7,8]}],"x":"` + strings.Repeat("a", pad) + `"}`)
		res := CallResult{Status: 200, Body: body}
		_, got := e.ask(alice, "What is the capital of France?", &res)
		if refused := strings.Contains(got, "semantic.embed_error"); refused != (pad > 0) {
			t.Fatalf("answer of %d bytes: refused %v (%q)", len(body), refused, got)
		}
	}
}

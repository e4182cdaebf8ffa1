package cachecore

import (
	"runtime/debug"
	"slices"
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

// The model an embeddings answer reports (and its version header) is
// untrusted and may be as long as the answer allows, past the u16 length
// of the vector shared with other workers: a worker that reads the shared
// vector must find the identity, namespace and vector it was stored with,
// and two models whose names differ only past 64 KiB must stay apart.
func TestSemanticSharedVectorKeepsALongModelIdentity(t *testing.T) {
	e := newSemEnv(t, "")
	r := e.route("chat")
	long := strings.Repeat("m", 70<<10)
	var ns []uint64
	for i, model := range []string{long + "a", long + "b"} {
		emb, ok, _ := parseEmbedding(r, semEmbAnswer(model, e.vec("")))
		if !ok {
			t.Fatalf("%d: answer refused", i)
		}
		tkey := uint64(100 + i)
		v := e.cache.semVectors.put(tkey, emb)
		e.cache.semSharedPut(tkey, v)
		got, _ := e.cache.semShared(tkey, r.Semantic)
		if got == nil || got.identity != v.identity || got.ns != v.ns || !slices.Equal(got.q, v.q) || got.norm != v.norm {
			t.Fatalf("%d: the shared vector decodes otherwise than it was stored", i)
		}
		ns = append(ns, v.ns)
	}
	if ns[0] == ns[1] {
		t.Fatal("two models whose names differ past 64 KiB share a namespace")
	}
}

package cachecore

import (
	"strings"
	"testing"
)

// Review Z46 (mend a67b9d8). README (Shadow comparison): only an answer the
// route would store — "one vector per item", no vector that is not one —
// is compared; "any other counts as shadow.errors, never as a divergence".
// a67b9d8 lets ReasonDimensions through as drift ("vectors of another
// dimension than the cached ones"), but admitEmbeddings also returns it
// for an answer whose vectors disagree among themselves, and it stops its
// item loop there: the items after it are never judged. An answer with a
// string in a vector, or an item with no vector at all, then counts as a
// divergence when an item before it has another dimension — and as an
// error when the items come in another order.
func TestShadowBatchBrokenAnswerAfterADimensionMismatchIsAnError(t *testing.T) {
	for name, data := range map[string]string{
		"bad vector after a mismatch": `{"object":"embedding","index":0,"embedding":[1,0,0]},` +
			`{"object":"embedding","index":1,"embedding":[0,1,0,0]},{"object":"embedding","index":2,"embedding":[0,0,"x"]}`,
		"missing vector after a mismatch": `{"object":"embedding","index":0,"embedding":[1,0,0]},` +
			`{"object":"embedding","index":1,"embedding":[0,1,0,0]},{"object":"embedding","index":2}`,
	} {
		t.Run(name, func(t *testing.T) {
			env, batch := shadowEmbeddingsEnv(t, "", []string{"[1,0,0]", "[0,1,0]", "[0,0,1]"})
			fresh := []byte(`{"object":"list","model":"e","data":[` + data + `]}`)
			probe, _ := env.lookup("embed", nil, `{"model":"e","input":["fresh a","fresh b","fresh c"]}`)
			adm := env.cache.AdmitBody(probe, jsonCT, fresh)
			t.Logf("a store refuses it: %s", adm.Reason)
			req, d := env.lookup("embed", nil, batch)
			if d != Serve {
				t.Fatalf("setup: batch of cached items not a hit: %v", d)
			}
			// Control: the same items, the broken one listed first, are an error.
			parts := strings.SplitAfterN(data, "},", 3)
			reordered := []byte(`{"object":"list","model":"e","data":[` + parts[2] + "," + strings.TrimSuffix(parts[0]+parts[1], ",") + `]}`)
			if _, ok := env.cache.compareFresh(req, jsonCT, reordered); ok {
				t.Fatalf("setup: the reordered answer is compared too: %s", reordered)
			}
			req, _ = env.lookup("embed", nil, batch)
			if agree, ok := env.cache.compareFresh(req, jsonCT, fresh); ok {
				t.Fatalf("a fresh batch answer that holds a non-vector (not one vector per item) was compared: agree=%v, counted as a %s, not shadow.errors",
					agree, map[bool]string{true: "agreement", false: "divergence"}[agree])
			}
		})
	}
}

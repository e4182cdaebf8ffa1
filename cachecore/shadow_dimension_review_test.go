package cachecore

import (
	"testing"
)

// Review Z43 (mend 0a4816f). README (Shadow comparison / Embeddings):
// "Vectors of a new dimension under an unchanged model version are treated
// as model drift". Before the mend, a shadow's fresh batch answer of another
// dimension than the cached vectors was a divergence (agreeEmbeddings:
// len(cached) != len(got)). admitContent now runs admitEmbeddings first,
// whose check of the cached items' dimension refuses it (ReasonDimensions):
// compareFresh reports it as not comparable, shadow.errors, and a model whose
// dimension changed is never invalidated by its shadow.
func TestShadowBatchOfNewDimensionIsADivergence(t *testing.T) {
	env, batch := shadowEmbeddingsEnv(t, "", []string{"[1,0,0]", "[0,1,0]"})
	fresh := []byte(`{"object":"list","model":"e","data":[{"object":"embedding","index":0,"embedding":[1,0,0,0]},` +
		`{"object":"embedding","index":1,"embedding":[0,1,0,0]}]}`)
	req, d := env.lookup("embed", nil, batch)
	if d != Serve {
		t.Fatalf("setup: batch of cached items not a hit: %v", d)
	}
	agree, ok := env.cache.compareFresh(req, jsonCT, fresh)
	if !ok || agree {
		t.Fatalf("a fresh answer whose vectors have a new dimension (model drift) is agree=%v comparable=%v: counted shadow.errors, never a divergence", agree, ok)
	}
}

// The same end to end: three shadow samples of a model now answering in 4
// dimensions leave another client's 3-dimension vector served.
func TestShadowDimensionDriftInvalidates(t *testing.T) {
	env, batch := shadowEmbeddingsEnv(t, "", []string{"[1,0,0]", "[0,1,0]"})
	other := `{"model":"e","input":"someone else's"}`
	req, _ := env.lookup("embed", nil, other)
	env.fill(req, jsonCT, `{"object":"list","model":"e","data":[{"object":"embedding","index":0,"embedding":[1,2,3]}]}`, 10)
	fresh := []byte(`{"object":"list","model":"e","data":[{"object":"embedding","index":0,"embedding":[1,0,0,0]},` +
		`{"object":"embedding","index":1,"embedding":[0,1,0,0]}]}`)
	var events []string
	for s := 0; s < 3; s++ {
		req, d := env.lookup("embed", nil, batch)
		if d != Serve {
			break // invalidated already
		}
		acts := env.cache.Shadow(req, hdr(":method", "POST", ":path", "/v1/embeddings"))
		for _, a := range acts[0].Call.Done(CallResult{Status: 200, Headers: jsonCT, Body: fresh}) {
			if a.Kind == ActCount {
				events = append(events, EventNames[a.Event])
			}
		}
	}
	if _, d := env.lookup("embed", nil, other); d == Serve {
		t.Fatalf("three shadow answers of a new dimension left the old model's vectors served; counted %v", events)
	}
}

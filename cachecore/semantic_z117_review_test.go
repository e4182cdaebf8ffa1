package cachecore

import (
	"fmt"
	"strconv"
	"strings"
	"testing"
)

// README (semantic): "min_similarity | 0.90 | cosine (0.5–1) a stored turn
// must reach", and a near hit answers with "x-modelcache-similarity:
// 0.973" (its similarity, floored to three decimals). Since review Z111
// whether a cosine reaches min_similarity is decided on the int8 vectors'
// exact integers (cosineReaches), but the similarity ranked and reported
// is still dot / (float32(√qn) · float32(√rn)), which the float32 norms'
// rounding puts up to ~2⁻²³ away from the true cosine. So a turn admitted
// because its cosine reaches min_similarity is reported below it:
//
//   - at min_similarity 0.9, two vectors of exact cosine 0.90000002
//     (admitted) are served with x-modelcache-similarity 0.899, and
//     SemanticHit reports 0.89999997;
//   - at min_similarity 1, an identical embedding (cosine exactly 1,
//     the only thing that setting may serve) is served with
//     x-modelcache-similarity 0.999 (0.99999994).
//
// An operator who reads the header (or a log/metric of the similarity)
// sees the cache serving near hits below its own configured threshold.
// The reported similarity must be the cosine that was compared: at or
// above min_similarity for every near hit served.
func TestSemanticReportedSimilarityOfAdmittedHitBelowMinSimilarity(t *testing.T) {
	// Integers (the largest component 127: quantise keeps them as given).
	stored := []float64{127, 91, -82, 63, -30, 109, -101, 118, -39, -88, 112, 81, -79, 117, -65, 87}
	asked := []float64{127, 58, -117, 31, 37, 126, -72, 102, -109, -123, 127, 66, -27, 80, 11, 123}
	envVec := newSemEnv(t, "").vec("") // the env's one vector for every text
	for _, tc := range []struct {
		name          string
		min           float64
		stored, asked []float64
	}{
		{"cosine 0.90000002 at min 0.9", 0.9, stored, asked},
		{"identical vectors at min 1", 1, envVec, envVec},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var d, n1, n2 int64
			q1, _ := quantise(z117F32(tc.stored))
			q2, _ := quantise(z117F32(tc.asked))
			for i := range q1 {
				a, b := int64(q1[i]), int64(q2[i])
				d, n1, n2 = d+a*b, n1+a*a, n2+b*b
			}
			if !cosineReaches(int32(d), n1, n2, tc.min, 0) {
				t.Fatalf("setup: the exact cosine %d/√(%d·%d) does not reach %v", d, n1, n2, tc.min)
			}
			e := newSemEnv(t, fmt.Sprintf(`,"min_similarity":%v,"confirm":{"exact_hits":0}`, tc.min))
			e.vec = func(text string) []float64 {
				if text == "How do I reset my password?" {
					return tc.stored
				}
				return tc.asked
			}
			f, _ := e.ask(alice, "How do I reset my password?", nil)
			if got := e.answer(f, "Click 'forgot password'."); !strings.Contains(got, "semantic.indexed") {
				t.Fatalf("setup: store: %q", got)
			}
			f, got := e.ask(alice, "How can I reset my password?", nil)
			if !strings.Contains(got, "semantic.hits serve") {
				t.Fatalf("setup: the paraphrase, whose cosine reaches min_similarity, is no near hit: %q", got)
			}
			_, sim := f.Request().SemanticHit()
			_, headers, _ := e.cache.HitResponse(f.Request())
			h := headerValue(headers, SimilarityHeader)
			hv, err := strconv.ParseFloat(h, 64)
			if err != nil || hv < tc.min || sim < tc.min {
				t.Fatalf("a near hit admitted at min_similarity %v is reported below it: %s: %q (similarity %.9f)", tc.min, SimilarityHeader, h, sim)
			}
		})
	}
}

func z117F32(v []float64) []float32 {
	f := make([]float32, len(v))
	for i, x := range v {
		f[i] = float32(x)
	}
	return f
}

package cachecore

import (
	"fmt"
	"math"
	"strings"
	"testing"
)

// semZ111FillMade makes a route's index make all semMaxNamespacesMade
// namespaces, the last of them model last's (the worker's model after).
func semZ111FillMade(t *testing.T, e *semEnv, last string) {
	t.Helper()
	for i := 0; i < semMaxNamespacesMade; i++ {
		e.model = fmt.Sprintf("e5-build-%d", i)
		if i == semMaxNamespacesMade-1 {
			e.model = last
		}
		f, _ := e.ask(alice, fmt.Sprintf("tell me about topic %d", i), nil)
		if got := e.answer(f, "a"); !strings.Contains(got, "semantic.indexed") {
			t.Fatalf("setup: identity %d not indexed: %q", i, got)
		}
	}
}

// README: "A model past them is neither searched nor indexed
// (semantic.models_full; the request is an exact miss)". A model among
// them is. A turn one replica embedded with a model past the bound keeps
// that vector in the worker's vector cache (semanticStep put it there
// before semObserveModel said full, and full clears nothing), so when the
// same turn comes again and the server reports the route's listed model,
// the cached vector of the full model is taken (vector_cached, no call):
// the request is models_full again, and its near match under the listed
// model is never searched — for as long as the VM keeps the vector. A
// model change that is not full drops the VM's vectors (semVectors.m =
// nil); a full one should not pin the turn to the unusable model either.
func TestSemanticModelsFullVectorPinsTurnAwayFromListedModel(t *testing.T) {
	e := newSemEnv(t, `,"confirm":{"exact_hits":0}`)
	semZ111FillMade(t, e, "e5-small")
	f, _ := e.ask(alice, "How do I reset my password?", nil)
	if got := e.answer(f, "Click 'forgot password'."); !strings.Contains(got, "semantic.indexed") {
		t.Fatalf("setup: store: %q", got)
	}
	// One replica reports a 65th identity: full, an exact miss; its
	// answer fails upstream (nothing stored under the paraphrase's key).
	e.model = "e5-small-replica-x"
	para := "How can I reset my password?"
	f, got := e.ask(alice, para, nil)
	if !strings.Contains(got, "semantic.models_full") {
		t.Fatalf("setup: a 65th identity: %q", got)
	}
	f.ResponseHeaders(503, jsonCT, OriginUpstream, false)
	// The server reports the listed model again: the paraphrase is a near
	// hit of the stored turn under it.
	e.model = "e5-small"
	if _, got := e.ask(alice, para, nil); !strings.Contains(got, "semantic.hits serve") {
		t.Fatalf("the route's listed model answers again, but the turn is not searched under it: %q", got)
	}
}

// semZ111Namespaces is the namespaces the route's index has shared-data
// keys of.
func semZ111Namespaces(mem *MemStore) map[string]bool {
	ns := map[string]bool{}
	mem.mu.Lock()
	defer mem.mu.Unlock()
	for k := range mem.m {
		if rest, ok := strings.CutPrefix(k, "modelcache/sem2/"); ok {
			ns[rest[:strings.IndexByte(rest, '/')]] = true
		}
	}
	return ns
}

// README: "a route's index makes keys of at most 64 namespaces over the
// proxy's life … A model past them is neither searched nor indexed". A
// route upgraded from the module that recorded its model in
// modelcache/sem/model/<route> starts its list from that model
// (semLegacyModel): listed, but not recorded as made (semModels.made is
// empty), so indexing its turns makes a namespace's keys the bound does
// not count, and 64 more are made after it: 65 namespaces' keys. (The
// legacy model is also refused as models_full once it leaves the list
// and comes back, though its keys exist and "listed again, a namespace
// reuses its own".)
func TestSemanticLegacyModelNamespaceCountsTowardsTheMadeBound(t *testing.T) {
	e := newSemEnv(t, "")
	// The previous module's record of the route's model (e5-small, as the
	// env's server reports it).
	_ = e.store.Set("modelcache/sem/model/chat", []byte("chat\x00e5\x00e5-small\x00\x0016"), 0)
	f, _ := e.ask(alice, "tell me about the legacy model", nil)
	if got := e.answer(f, "a"); !strings.Contains(got, "semantic.indexed") {
		t.Fatalf("setup: legacy model's turn not indexed: %q", got)
	}
	if len(semZ111Namespaces(e.store)) != 1 {
		t.Fatalf("setup: namespaces %v", semZ111Namespaces(e.store))
	}
	for i := 0; i < semMaxNamespacesMade; i++ {
		e.model = fmt.Sprintf("e5-build-%d", i)
		f, _ := e.ask(alice, fmt.Sprintf("tell me about topic %d", i), nil)
		e.answer(f, "a")
	}
	if n := len(semZ111Namespaces(e.store)); n > semMaxNamespacesMade {
		t.Fatalf("the route's index has keys of %d namespaces, more than the %d it may make over the proxy's life", n, semMaxNamespacesMade)
	}
}

// README: "listed again, a namespace reuses its own". The model a route
// had before the upgrade (modelcache/sem/model/<route>) has its
// namespace's keys (its turns were indexed under it), but it is not
// recorded as made: once other builds filled the made list, the route's
// own original model, reported again, is refused as models_full — every
// request of it an exact miss, its index unreachable — while a 65th
// build was admitted in its place.
func TestSemanticLegacyModelReportedAgainReusesItsNamespace(t *testing.T) {
	e := newSemEnv(t, "")
	_ = e.store.Set("modelcache/sem/model/chat", []byte("chat\x00e5\x00e5-small\x00\x0016"), 0)
	f, _ := e.ask(alice, "tell me about the legacy model", nil)
	if got := e.answer(f, "a"); !strings.Contains(got, "semantic.indexed") {
		t.Fatalf("setup: legacy model's turn not indexed: %q", got)
	}
	for i := 0; i < semMaxNamespacesMade; i++ {
		e.model = fmt.Sprintf("e5-build-%d", i)
		f, _ := e.ask(alice, fmt.Sprintf("tell me about topic %d", i), nil)
		e.answer(f, "a")
	}
	e.model = "e5-small"
	f, asked := e.ask(alice, "tell me about the legacy model again", nil)
	if got := e.answer(f, "a"); strings.Contains(asked, "semantic.models_full") || !strings.Contains(got, "semantic.indexed") {
		t.Fatalf("the route's original model, whose namespace has keys, reported again: asked %q, answered %q", asked, got)
	}
}

// README: "min_similarity | 0.90 | cosine (0.5–1) a stored turn must
// reach". The search now compares the computed cosine with min_similarity
// minus 2⁻²² (semNormSlack), for the float32 rounding of the norms; that
// also admits turns whose cosine is below min_similarity. These two
// int8 vectors (quantised as given: their largest component is 127) have
// the exact cosine 81253/√(94470·86278) = 0.8999998…, below 0.90 (100·dot² <
// 81·|q|²·|r|² in integers), and the computed one, 0.89999983, is within
// the slack: the paraphrase is served as a near hit of a turn that does
// not reach the configured threshold (x-modelcache-similarity 0.899). The
// rounding the slack stands for can be avoided (the norms are square
// roots of integers; dot² ≥ min²·n₁·n₂ compares exactly); the threshold
// must not be lowered for every pair to make identical vectors reach 1.
func TestSemanticSlackAdmitsCosineBelowMinSimilarity(t *testing.T) {
	stored := []float64{127, 3, -38, -93, -29, 42, -12, 87, -77, -103, -98, -21, 106, -107, 42, 83}
	asked := []float64{127, -36, -54, -109, -86, 77, 5, 37, -62, -100, -95, 27, 65, -80, 67, 25}
	var d, n1, n2 int64
	for i := range stored {
		a, b := int64(stored[i]), int64(asked[i])
		d, n1, n2 = d+a*b, n1+a*a, n2+b*b
	}
	if !(d > 0 && 100*d*d < 81*n1*n2) {
		t.Fatalf("setup: the cosine %d/√(%d·%d) is not below 0.9", d, n1, n2)
	}
	e := newSemEnv(t, `,"min_similarity":0.9,"confirm":{"exact_hits":0}`)
	e.vec = func(text string) []float64 {
		if text == "How do I reset my password?" {
			return stored
		}
		return asked
	}
	f, _ := e.ask(alice, "How do I reset my password?", nil)
	if got := e.answer(f, "Click 'forgot password'."); !strings.Contains(got, "semantic.indexed") {
		t.Fatalf("setup: store: %q", got)
	}
	f, got := e.ask(alice, "How can I reset my password?", nil)
	if strings.Contains(got, "serve") {
		hit, sim := f.Request().SemanticHit()
		t.Fatalf("a turn of cosine %.9f, below min_similarity 0.9, served as a near hit (hit %v, similarity %.9f): %q",
			float64(d)/math.Sqrt(float64(n1)*float64(n2)), hit, sim, got)
	}
}

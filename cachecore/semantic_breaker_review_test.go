package cachecore

import (
	"fmt"
	"strings"
	"testing"
)

// RATIONALE ("The embeddings server has a breaker too"): while the
// breaker is open "the request is an exact miss at once, and a turn whose
// vector is cached (this VM's or another worker's) is still searched".
// But a turn the open breaker skips first claims the turn's shared slot
// (semShared, a direct-mapped slot of semSharedSlots: the claim takes the
// place of whatever vector another turn kept there) and then releases it
// empty (semSharedDone(tkey, false)), though it was known before the claim
// that no call would be made and no vector would take that place. So,
// while one VM's breaker is open, each new turn it skips erases another
// turn's vector that other workers shared: here worker 1 embedded turn X
// (the server was up for it), worker 0's breaker is open, a new turn Y of
// X's slot is skipped on worker 0, and X then asked on worker 0 finds no
// shared vector (semantic.breaker_open, exact miss) where, without Y, it
// is searched with worker 1's vector (semantic.vector_cached). Over an
// outage every shared vector goes this way, the ones the breaker relies
// on to keep near matches. Expected: a skipped turn leaves the slot as it
// was (no claim when the breaker is open).
func TestReviewZ258OpenBreakerSkipErasesAnotherTurnsSharedVector(t *testing.T) {
	for _, withY := range []bool{false, true} {
		store, clock := NewMemStore(), newFakeClock()
		cfg := mustParse(t, fmt.Sprintf(semConfig, ""))
		var w [2]*Cache
		for i := range w {
			w[i] = New(cfg, Options{Store: store, Now: clock.Now, Rand: seededRand(uint64(i))})
		}
		var id uint32
		ask := func(c *Cache, prompt string, res *CallResult) string {
			id++
			req := c.Begin(c.routeByName("chat"), "POST", "/v1/chat/completions", alice)
			f := c.NewFlight(req, uint64(id), id)
			acts := f.RequestBody([]byte(chatRequest(prompt)), false)
			var kinds []string
			for len(acts) > 0 {
				a := acts[0]
				acts = acts[1:]
				if a.Kind != ActDispatch {
					kinds = append(kinds, actionKinds([]Action{a}))
					continue
				}
				kinds = append(kinds, "embed")
				v := make([]float64, 16)
				for i := range v {
					v[i] = float64(i%5) + 1
				}
				r := semEmbAnswer("e5-small", v)
				if res != nil {
					r = *res
				}
				acts = append(acts, a.Call.Done(r)...)
			}
			return strings.Join(kinds, " ")
		}
		slot := func(prompt string) uint64 {
			req := w[0].Begin(w[0].routeByName("chat"), "POST", "/v1/chat/completions", alice)
			w[0].SetBody(req, []byte(chatRequest(prompt)))
			return w[0].textKey(req.Route, &req.tenant, prompt) % semSharedSlots
		}
		const x = "what is the capital of France?"
		sx := slot(x)
		// Worker 1 embeds X: its vector is shared.
		if got := ask(w[1], x, nil); !strings.HasPrefix(got, "embed ") {
			t.Fatalf("setup: worker 1 embeds X: %q", got)
		}
		// Worker 0's server calls fail: 5 in a row open its breaker (turns
		// of other slots than X's).
		failed := CallResult{Status: 503, Body: []byte("upstream connect error or disconnect/reset before headers")}
		n := 0
		for i := 0; n < 5; i++ {
			p := fmt.Sprintf("failing question number %d?", i)
			if slot(p) == sx {
				continue
			}
			if got := ask(w[0], p, &failed); !strings.HasPrefix(got, "embed semantic.embed_error") {
				t.Fatalf("setup: failing call %d: %q", n, got)
			}
			n++
		}
		if withY {
			y := ""
			for i := 0; y == ""; i++ {
				if p := fmt.Sprintf("tell me about topic %d", i); slot(p) == sx {
					y = p
				}
			}
			if got := ask(w[0], y, nil); !strings.HasPrefix(got, "semantic.breaker_open") {
				t.Fatalf("setup: turn Y on worker 0, its breaker open: %q", got)
			}
		}
		got := ask(w[0], x, nil)
		if !strings.HasPrefix(got, "semantic.vector_cached") {
			t.Errorf("turn X on worker 0 (breaker open), worker 1 having shared X's vector, after a skipped turn of X's slot: %v: %q, "+
				"want semantic.vector_cached (X searched with worker 1's vector)", withY, got)
		}
	}
}

package cachecore

import (
	"fmt"
	"strings"
	"testing"
	"time"
)

// An embeddings server that is down or hangs made every new turn of a
// semantic route wait for its call (up to embedding.timeout, 10 s at
// most) before going on as an exact miss, for as long as it stayed down
// (review Z240's suspicion): L2 has a breaker for this, the embeddings
// server had none. After embedding.breaker.failures calls in a row failed
// or timed out, a VM skips the call for embedding.breaker.cool_down
// (semantic.breaker_open), then tries again; one success closes it.
func TestSemanticEmbeddingsBreakerSkipsADeadServer(t *testing.T) {
	e := newSemEnv(t, "")
	if e.cache.cfg.Routes[0].Semantic.Breaker.Failures != 5 || e.cache.cfg.Routes[0].Semantic.Breaker.CoolDown != 5*time.Second {
		t.Fatalf("defaults: %+v", e.cache.cfg.Routes[0].Semantic.Breaker)
	}
	failed := CallResult{Status: 503, Body: []byte("upstream connect error or disconnect/reset before headers")}
	ask := func(i int) string {
		f, got := e.ask(alice, fmt.Sprintf("what is question %d about?", i), &failed)
		e.answer(f, "a")
		return got
	}
	for i := 0; i < 5; i++ {
		if got := ask(i); !strings.HasPrefix(got, "embed semantic.embed_error") {
			t.Fatalf("call %d: %q", i, got)
		}
	}
	if got := ask(5); strings.Contains(got, "embed ") || !strings.HasPrefix(got, "semantic.breaker_open") {
		t.Fatalf("after 5 failures in a row the server was called again: %q", got)
	}
	e.clock.Advance(5 * time.Second)
	if got := ask(6); !strings.HasPrefix(got, "embed semantic.embed_error") {
		t.Fatalf("after the cool-down: %q, want one call tried", got)
	}
	if got := ask(7); strings.Contains(got, "embed ") {
		t.Fatalf("a failed try after the cool-down opens it again: %q", got)
	}
	e.clock.Advance(5 * time.Second)
	f, got := e.ask(alice, "what is question 8 about?", nil) // the server is back
	e.answer(f, "a")
	if !strings.HasPrefix(got, "embed semantic.misses") {
		t.Fatalf("server back: %q", got)
	}
	for i := 9; i < 13; i++ {
		if got := ask(i); !strings.HasPrefix(got, "embed ") {
			t.Fatalf("a success closed it: 4 failures after it must not open it (%d: %q)", i, got)
		}
	}
}

func TestSemanticEmbeddingsBreakerConfig(t *testing.T) {
	cfg := func(b string) string {
		return `{"routes":[{"name":"chat","kind":"chat","path_prefix":"/v1/chat/completions","semantic":{"embedding":{"cluster":"embeddings","breaker":` + b + `}}}]}`
	}
	c, err := ParseConfig([]byte(cfg(`{"failures":3,"cool_down":"30s"}`)))
	if err != nil || c.Routes[0].Semantic.Breaker.Failures != 3 || c.Routes[0].Semantic.Breaker.CoolDown != 30*time.Second {
		t.Fatalf("%v %+v", err, c)
	}
	for b, want := range map[string]string{
		`{"failures":0}`:      "routes[0].semantic.embedding.breaker.failures",
		`{"cool_down":"1ms"}`: "routes[0].semantic.embedding.breaker.cool_down",
		`{"failure":3}`:       "routes[0].semantic.embedding.breaker.failure: unknown field",
		`{"cool_down":"2h"}`:  "routes[0].semantic.embedding.breaker.cool_down",
		`"5"`:                 "routes[0].semantic.embedding.breaker: must be an object",
	} {
		if _, err := ParseConfig([]byte(cfg(b))); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: %v, want %q", b, err, want)
		}
	}
}

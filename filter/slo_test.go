//go:build !wasip1

package main

import (
	"fmt"
	"testing"
	"time"
)

func TestStaleServingSLO(t *testing.T) {
	cfg := `{"routes":[{"name":"chat","kind":"chat","path_prefix":"/v1/chat/completions","ttl":"1h",
	  "freshness_slo":{"max_age":"10s","max_fraction":0.05,"window":"1m","min_samples":10}}]}`
	hs := newHarness(t, cfg)
	for k := 0; k < 5; k++ {
		hs.post(0, "/v1/chat/completions", chatBody(fmt.Sprint("slo ", k)))
	}
	// Young answers: within the objective, nothing fires.
	for i := 0; i < 20; i++ {
		hs.post(i%2, "/v1/chat/completions", chatBody(fmt.Sprint("slo ", i%5)))
	}
	hs.h.AdvanceAndTick(2 * time.Second)
	if hs.counter("modelcache.chat.slo.breaches") != 0 {
		t.Fatal("breach without old answers")
	}
	// The same entries, now 20 s old: every hit is past the budget.
	hs.clock.Advance(20 * time.Second)
	for i := 0; i < 20; i++ {
		hs.post(i%2, "/v1/chat/completions", chatBody(fmt.Sprint("slo ", i%5)))
	}
	hs.h.AdvanceAndTick(2 * time.Second)
	for i := 0; i < 20; i++ {
		hs.post(i%2, "/v1/chat/completions", chatBody(fmt.Sprint("slo ", i%5)))
	}
	hs.h.AdvanceAndTick(2 * time.Second)
	if got := hs.counter("modelcache.chat.slo.breaches"); got != 1 {
		t.Fatalf("breaches = %d, want exactly 1", got)
	}
	if n := len(hs.h.LogsContaining("stale-serving SLO breached on route chat")); n != 1 {
		t.Fatalf("%d breach lines, want 1", n)
	}
	if g, _ := hs.h.Gauge("modelcache.chat.slo.breached"); g != 1 {
		t.Fatalf("breached gauge = %d", g)
	}
	// Fresh answers only, for longer than the window: one recovery line.
	for round := 0; round < 40; round++ {
		hs.post(round%2, "/v1/chat/completions", chatBody(fmt.Sprint("new ", round)))
		hs.h.AdvanceAndTick(2 * time.Second)
	}
	if n := len(hs.h.LogsContaining("stale-serving SLO recovered on route chat")); n != 1 {
		t.Fatalf("%d recovery lines, want 1", n)
	}
	if hs.counter("modelcache.chat.slo.breaches") != 1 {
		t.Fatal("breached again")
	}
}

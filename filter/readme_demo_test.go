//go:build !wasip1

package main

import (
	"os"
	"strings"
	"testing"
	"time"
)

// Review Z35 (README's snippets, executed) against the demo configuration.

// demoConfig is the filter JSON of envoy/envoy.yaml (its `value: |`
// block): the configuration README's "Try it" runs.
func demoConfig(t *testing.T) string {
	t.Helper()
	b, err := os.ReadFile("../envoy/envoy.yaml")
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(string(b), "\n")
	for i, l := range lines {
		if strings.TrimSpace(l) != "value: |" {
			continue
		}
		indent := len(l) - len(strings.TrimLeft(l, " "))
		var out []string
		for _, m := range lines[i+1:] {
			if strings.TrimSpace(m) != "" && len(m)-len(strings.TrimLeft(m, " ")) <= indent {
				break
			}
			out = append(out, m)
		}
		return strings.Join(out, "\n")
	}
	t.Fatal("no configuration value in envoy/envoy.yaml")
	return ""
}

// README, Quick start / Try it: the first answer is stored with ttl=600,
// the same request 3 s later is a hit with age 3 and ttl=597, and one
// without a credential passes with detail=no-identity. (Holds; kept as
// the snippet's regression test.)
func TestReadmeTryItOnTheDemoConfig(t *testing.T) {
	hs := newHarness(t, demoConfig(t))
	body := `{"model":"sim-chat","messages":[{"role":"user","content":"hello"}]}`
	first := hs.post(0, "/v1/chat/completions", body, "authorization", "Bearer demo")
	if cs := hdr(first, "cache-status"); first.Status != 200 || cs != "modelcache; fwd=miss; fwd-status=200; stored; ttl=600" || hdr(first, "x-model-version") != "v1" {
		t.Fatalf("first: %d %q %v", first.Status, cs, first.Headers)
	}
	hs.clock.Advance(3 * time.Second)
	second := hs.post(1, "/v1/chat/completions", body, "authorization", "Bearer demo")
	if cs := hdr(second, "cache-status"); cs != "modelcache; hit; ttl=597" || hdr(second, "age") != "3" || hdr(second, "x-model-version") != "v1" {
		t.Fatalf("second: %d %q %v", second.Status, cs, second.Headers)
	}
	none := hs.post(0, "/v1/chat/completions", body, "-", "")
	if cs := hdr(none, "cache-status"); cs != "modelcache; fwd=bypass; detail=no-identity" {
		t.Fatalf("no identity: %q", cs)
	}
	if n := hs.sim.Calls("/v1/chat/completions"); n != 2 {
		t.Fatalf("model calls %d, want 2 (one for the stored answer, one for the bypass)", n)
	}
}

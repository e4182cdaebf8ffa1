package e2e

import (
	"strconv"
	"strings"
	"testing"
)

// TestL2WriteUnderAPurgeMadeGeneration: on a fresh Redis a purge of
// everything finds the mesh-wide generation missing, and its INCR makes
// it 1. The first answer written to L2 moves it to a random value first
// (SET … XX GET, with webdis' raw reply) — a generation that comes back
// at 1 after an eviction must not carry anything — and is still written
// and served to the other proxy.
func TestL2WriteUnderAPurgeMadeGeneration(t *testing.T) {
	s := startL2(t)
	cfg := l2Config("1s")
	a, b := startL2Envoy(t, s, cfg), startL2Envoy(t, s, cfg)
	if r := do(t, "POST", a.URL+"/modelcache/purge", `{"all":true}`, "authorization", "Bearer 0123456789abcdef-l2"); r.Status != 200 {
		t.Fatalf("purge: %d %s", r.Status, r.Body)
	}
	if out, err := s.doAs(true, "GET", "/GET/mc:g.raw", nil); err != nil || out != "$1\r\n1\r\n" {
		t.Fatalf("the generation a purge made: %q %v", out, err)
	}
	auth := []string{"authorization", "Bearer tenant-a"}
	expectCS(t, do(t, "POST", a.URL+"/v1/chat/completions", chat("after a purge of nothing"), auth...), "fwd=miss", "stored")
	if got := a.WaitStat("wasmcustom.modelcache_route.chat.l2.written", 1); got != 1 {
		t.Fatalf("l2.written = %d", got)
	}
	out, err := s.doAs(true, "GET", "/GET/mc:g.raw", nil)
	lines := strings.Split(out, "\r\n")
	if err != nil || len(lines) < 2 {
		t.Fatalf("GET mc:g: %q %v", out, err)
	}
	if g, err := strconv.ParseUint(lines[1], 10, 64); err != nil || g < 1<<32 {
		t.Fatalf("the generation after the write: %q (want reseeded past 2^32)", lines[1])
	}
	expectCS(t, do(t, "POST", b.URL+"/v1/chat/completions", chat("after a purge of nothing"), auth...), "hit", "detail=l2")
}

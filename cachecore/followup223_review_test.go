package cachecore

import (
	"os"
	"regexp"
	"testing"
)

// README's quick start tells the user to look at the chat route's stats
// with `curl -s localhost:9901/stats | grep modelcache.chat` ("hits,
// misses, stores, refusals"). Since the rename, the route's stats are
// wasmcustom.modelcache_route.chat.…, which that pattern does not match:
// the command prints nothing. The documented command must find the chat
// route's counters of the shipped envoy/envoy.yaml (route "chat").
func TestFollowup223ReadmeQuickStartGrepFindsChatStats(t *testing.T) {
	b, err := os.ReadFile("../README.md")
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`localhost:9901/stats \| grep (\S+)`).FindSubmatch(b)
	if m == nil {
		t.Fatal("README has no `curl -s localhost:9901/stats | grep …` line")
	}
	pattern := string(m[1]) // a basic regular expression; only "." is special here
	re, err := regexp.Compile(pattern)
	if err != nil {
		t.Fatalf("pattern %q: %v", pattern, err)
	}
	cfg, err := ParseConfig([]byte(`{"routes":[{"name":"chat","kind":"chat","path_prefix":"/v1/chat/completions","ttl":"10m"}]}`))
	if err != nil {
		t.Fatal(err)
	}
	n := StatNames(cfg.Routes[0])
	want := []string{n.Requests[StatusHit], n.Requests[StatusMiss], n.Stored}
	for _, name := range want {
		line := "wasmcustom." + name + ": 0" // a line of Envoy's /stats
		if !re.MatchString(line) {
			t.Errorf("README's `grep %s` does not match %q: the quick start shows no chat stats", pattern, line)
		}
	}
}

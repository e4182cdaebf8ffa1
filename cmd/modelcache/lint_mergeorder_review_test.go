package main

import (
	"strings"
	"testing"

	"github.com/modelcache/modelcache/cachecore"
)

// README, "Checking a configuration": a WasmPlugin's pluginConfig is read
// "as kubectl converts it", merge keys resolved. kubectl converts a
// manifest with sigs.k8s.io/yaml, that is go-yaml v2 (non-strict), which
// applies a mapping's members in the order written: a "<<" written after
// explicit keys overwrites them with the merged mapping's values (its
// decoder.mapping calls d.merge into the same map, whose later
// SetMapIndex wins). The linter (members) always lets the explicit keys
// win, as YAML 1.2's merge spec and yaml.v3 do. So the route below, which
// takes its settings from &chat with "<<" last, reaches the filter as a
// second copy of route chat (name chat, path /v1/chat/completions), and
// the filter refuses to start; the linter reads name completions, path
// /v1/completions and passes it.
func TestLintWasmPluginMergeKeyAfterExplicitKeys(t *testing.T) {
	y := wasmPluginWith(`    routes:
    - &chat {name: chat, kind: chat, path_prefix: /v1/chat/completions, ttl: 10m}
    - {name: completions, path_prefix: /v1/completions, <<: *chat}
`)
	// What kubectl sends for pluginConfig (go-yaml v2: the merge, last,
	// overwrites name and path_prefix).
	asSent := `{"routes":[{"kind":"chat","name":"chat","path_prefix":"/v1/chat/completions","ttl":"10m"},` +
		`{"kind":"chat","name":"chat","path_prefix":"/v1/chat/completions","ttl":"10m"}]}`
	_, filterErr := cachecore.ParseConfig([]byte(asSent))
	if filterErr == nil {
		t.Fatal("setup: the filter accepts the configuration kubectl sends")
	}
	l := lintBytes("wp.yaml", []byte(y))
	if ok, all := findingNaming(l, "duplicate route name"); !ok {
		t.Fatalf("the filter gets %s and refuses it (%v); the linter's findings: [%s]", asSent, filterErr, strings.Join(all, "; "))
	}
}

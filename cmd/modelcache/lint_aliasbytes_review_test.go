package main

import (
	"runtime"
	"strings"
	"testing"
)

// README, "Checking a configuration": a document whose aliases expand past
// 2^20 nodes is refused unread, so that a hostile manifest cannot make the
// linter exhaust memory. The bound counts nodes, not bytes: a WasmPlugin's
// pluginConfig that aliases one 32 KiB string 4,096 times is some 4,400
// nodes in a 33 KiB file, and the linter writes the whole expansion out as
// JSON (nodeJSON, 128 MiB) before the filter's parser reads it. Within the
// same node bound and 16 MiB file limit, an 8 MiB string aliased 2^20
// times is 8 TiB. The work a file costs must stay bounded by its size, as
// for the alias bombs refused by node count.
func TestLintPluginConfigAliasBytesBounded(t *testing.T) {
	var b strings.Builder
	b.WriteString("    routes: [{name: chat, kind: chat, path_prefix: /v1/chat}]\n")
	b.WriteString("    x: &s \"" + strings.Repeat("x", 32<<10) + "\"\n")
	prev := "s"
	for _, n := range []string{"l1", "l2", "l3"} {
		b.WriteString("    " + n + ": &" + n + " [")
		for i := 0; i < 16; i++ {
			if i > 0 {
				b.WriteString(",")
			}
			b.WriteString("*" + prev)
		}
		b.WriteString("]\n")
		prev = n
	}
	y := wasmPluginWith(b.String())

	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	l := lintBytes("bomb.yaml", []byte(y))
	runtime.ReadMemStats(&after)
	if alloc := after.TotalAlloc - before.TotalAlloc; alloc > 32<<20 {
		t.Fatalf("linting a %d-byte WasmPlugin allocated %d MiB (its pluginConfig expanded through aliases); findings %d",
			len(y), alloc>>20, len(l.findings))
	}
}

package main

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"
)

// z275PluginDoc is a WasmPlugin of some 670 bytes whose pluginConfig
// aliases a 26-way, 3-level list tree: just under checkExpansion's 2^20
// nodes, so it is not refused, and nodeJSON writes the whole expansion out
// (some 450,000 values, megabytes of JSON) for ParseConfig to read.
func z275PluginDoc() string {
	const fan, levels = 26, 3
	var b strings.Builder
	b.WriteString("apiVersion: extensions.istio.io/v1alpha1\nkind: WasmPlugin\nmetadata: {name: modelcache, namespace: ml}\nx:\n")
	b.WriteString("  a0: &a0 [" + strings.TrimSuffix(strings.Repeat("x,", fan), ",") + "]\n")
	for i := 1; i <= levels; i++ {
		fmt.Fprintf(&b, "  a%d: &a%d [", i, i)
		for j := 0; j < fan; j++ {
			if j > 0 {
				b.WriteString(",")
			}
			fmt.Fprintf(&b, "*a%d", i-1)
		}
		b.WriteString("]\n")
	}
	fmt.Fprintf(&b, "spec:\n  url: oci://registry.example.com/modelcache@sha256:00\n  pluginConfig:\n    routes: [{name: chat, kind: chat, path_prefix: /v1/chat}]\n    x: *a%d\n", levels)
	return b.String()
}

// README, "Checking a configuration": a document whose aliases expand past
// 2^20 nodes is refused unread; "any file is read up to 16 MiB". The bound
// is per document, and lintOne goes on to the next document after each
// one, so a file of many small documents, each just under the bound, costs
// 2^20 nodes of expansion (and, in a WasmPlugin's pluginConfig, megabytes
// of JSON written and parsed) per ~670 bytes of input: some 180 ms each
// here, so a 16 MiB file of them is over an hour of work and terabytes
// allocated. The expansion a file may cost must be bounded per file (or
// its size), not per document. Here: 8 such documents, 5 KiB of YAML.
func TestZ275LintAliasExpansionIsBoundedPerFileNotPerDocument(t *testing.T) {
	doc := z275PluginDoc()
	const docs = 8
	y := strings.Repeat(doc+"---\n", docs)

	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	start := time.Now()
	l := lintBytes("many.yaml", []byte(y))
	took := time.Since(start)
	runtime.ReadMemStats(&after)
	alloc := after.TotalAlloc - before.TotalAlloc
	// One document's expansion (one 2^20-node budget) is allowed, twice
	// over; 32 of them are not.
	if alloc > 256<<20 {
		t.Fatalf("linting a %d-byte file of %d documents each just under the alias bound allocated %d MiB in %v (%d findings): the 2^20-node bound holds per document, not per file",
			len(y), docs, alloc>>20, took, len(l.findings))
	}
}

// `modelcache oci -wasmplugin-out OUT` without -wasmplugin: the help says
// -wasmplugin-out is "where to write the pinned WasmPlugin (required with
// -wasmplugin)", and -wasmplugin without it is refused; the other way
// round, the flag is dropped silently, the command exits 0 and nothing is
// written at OUT — a stale pinned WasmPlugin there (an earlier module's
// digest) is then applied while the run reported success, the failure
// review Z217 closed for a stray argument. Expected: refused (a usage
// error, or exit 1), or the file written.
func TestZ275OCIWasmpluginOutWithoutTemplateIsDroppedSilently(t *testing.T) {
	dir := t.TempDir()
	w := filepath.Join(dir, "m.wasm")
	if err := os.WriteFile(w, []byte("\x00asm\x01\x00\x00\x00"), 0o644); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(dir, "istio", "wasmplugin.yaml")
	var stdout, stderr bytes.Buffer
	code := run([]string{"oci", "-wasm", w, "-layout", filepath.Join(dir, "oci"), "-wasmplugin-out", out}, &stdout, &stderr)
	_, statErr := os.Stat(out)
	if code == 0 && statErr != nil {
		t.Fatalf("exit 0 (stdout %q, stderr %q) with -wasmplugin-out %s and no -wasmplugin: nothing was written (%v) and nothing said; want it refused",
			strings.TrimSpace(stdout.String()), strings.TrimSpace(stderr.String()), out, statErr)
	}
}

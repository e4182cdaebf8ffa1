package main

import (
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// The V8 harness and its line counter refuse a mode they do not know. An
// unknown mode once ran as a hit of one repeated request, and the served
// miss floor was counted that way (1,215 lines, not its 1,288 as an
// uncacheable miss) for three rounds of comparisons.
func TestV8HarnessRefusesUnknownModes(t *testing.T) {
	root := repoRoot()
	// instructions.py checks its mode before it needs Valgrind or Node.js.
	out, err := exec.Command("python3", filepath.Join(root, "bench", "v8host", "instructions.py"), "--mode", "miss-served", "none.wasm").CombinedOutput()
	if err == nil || !strings.Contains(string(out), "invalid choice: 'miss-served'") {
		t.Errorf("instructions.py --mode miss-served: err %v, output %q; want argparse's refusal of the mode", err, out)
	}
	if _, err := exec.LookPath("node"); err != nil {
		t.Skip("node not found (bench/install.sh installs it): hitpath.mjs not checked")
	}
	out, err = exec.Command("node", filepath.Join(root, "bench", "v8host", "hitpath.mjs"), "none.wasm", "1", "1", "miss-served").CombinedOutput()
	if err == nil || !strings.Contains(string(out), "unknown mode miss-served") {
		t.Errorf("hitpath.mjs with mode miss-served: err %v, output %q; want a refusal naming the mode", err, out)
	}
}

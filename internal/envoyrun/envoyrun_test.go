package envoyrun

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func shipped(t *testing.T, name string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "..", name))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// RenderConfig changes only what it is asked to in the shipped config.
func TestRenderConfig(t *testing.T) {
	raw := shipped(t, "envoy/envoy.yaml")
	for _, must := range []string{"port_value: 10000", "port_value: 9901", "port_value: 8000",
		"filename: build/modelcache.wasm", "timeout: 120s", "allow_on_headers_stop_iteration: true", "failure_policy: "} {
		if !strings.Contains(raw, must) {
			t.Fatalf("envoy/envoy.yaml lacks %q: the test needs updating", must)
		}
	}
	same, err := RenderConfig(raw, Render{})
	if err != nil || same != raw {
		t.Fatalf("the zero Render changed the config (err %v)", err)
	}
	got, err := RenderConfig(raw, Render{
		Ports:         map[int]int{10000: 20001, 9901: 20002, 8000: 20003},
		Wasm:          "/tmp/x.wasm",
		FilterJSON:    "{\n  \"routes\": []\n}",
		RouteTimeout:  "1s",
		NoHeaderHold:  true,
		FailurePolicy: "FAIL_OPEN",
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"port_value: 20001", "port_value: 20002", "port_value: 20003", "filename: /tmp/x.wasm",
		"timeout: 1s", "allow_on_headers_stop_iteration: false", "failure_policy: FAIL_OPEN", "\"routes\": []"} {
		if !strings.Contains(got, want) {
			t.Errorf("rendered config lacks %q", want)
		}
	}
	for _, gone := range []string{"port_value: 10000", "port_value: 9901", "port_value: 8000", "build/modelcache.wasm", "timeout: 120s"} {
		if strings.Contains(got, gone) {
			t.Errorf("rendered config still has %q", gone)
		}
	}
	// The filter JSON replaces the whole block, indented under `value: |`,
	// and what followed the block is kept.
	i := strings.Index(got, "value: |\n")
	if i < 0 {
		t.Fatal("no value block")
	}
	indent := len(got[strings.LastIndexByte(got[:i], '\n')+1 : i])
	lines := strings.Split(got[i+len("value: |\n"):], "\n")
	if lines[0] != strings.Repeat(" ", indent+2)+"{" || lines[2] != strings.Repeat(" ", indent+2)+"}" {
		t.Fatalf("filter JSON not in the block: %q", lines[:4])
	}
	if len(strings.TrimLeft(lines[3], " ")) == 0 || len(lines[3])-len(strings.TrimLeft(lines[3], " ")) > indent {
		t.Fatalf("the old block was not removed whole: next line %q", lines[3])
	}
	if _, err := RenderConfig("static_resources: {}\n", Render{FailurePolicy: "FAIL_OPEN"}); err == nil {
		t.Error("a failure policy with nothing to replace did not fail")
	}
	if _, err := RenderConfig("static_resources: {}\n", Render{FilterJSON: "{}"}); err == nil {
		t.Error("filter JSON with no value block did not fail")
	}
}

// Every bench config renders with the bench's ports and the wasm path.
func TestRenderBenchConfigs(t *testing.T) {
	files, _ := filepath.Glob(filepath.Join("..", "..", "envoy", "bench", "*.yaml"))
	if len(files) == 0 {
		t.Fatal("no envoy/bench configs")
	}
	for _, f := range files {
		raw, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		got, err := RenderConfig(string(raw), Render{Ports: map[int]int{10100: 30001, 9911: 30002, 8100: 30003}, Wasm: "/w.wasm"})
		if err != nil {
			t.Fatal(err)
		}
		if strings.Contains(got, "port_value: 10100") || strings.Contains(got, "port_value: 9911") || !strings.Contains(got, "port_value: 30002") {
			t.Errorf("%s: ports not rendered", f)
		}
	}
}

// A process that exits before it is ready says how it ended: a crash can
// leave its log empty.
func TestStartSaysHowTheProcessEnded(t *testing.T) {
	dir := t.TempDir()
	script := filepath.Join(dir, "envoy")
	if err := os.WriteFile(script, []byte("#!/bin/sh\nkill -SEGV $$\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	_, err := Start(Options{Bin: script, Config: "x", Admin: "http://127.0.0.1:1", Log: filepath.Join(dir, "log"), ReadyTimeout: 10 * time.Second})
	if err == nil || !strings.Contains(err.Error(), "segmentation fault") {
		t.Fatalf("got %v", err)
	}
}

// A port FreePort hands out lies below the kernel's ephemeral range, so
// that no outgoing connection made between the call and Envoy's bind can
// take it; and it never hands out the same port twice in a process.
func TestFreePortIsOutsideTheEphemeralRange(t *testing.T) {
	lo, ok := ephemeralStart()
	if !ok {
		t.Skip("no readable ip_local_port_range")
	}
	seen := map[int]bool{}
	for range 200 {
		p, err := FreePort()
		if err != nil {
			t.Fatal(err)
		}
		if p >= lo {
			t.Fatalf("port %d is in the ephemeral range (from %d)", p, lo)
		}
		if seen[p] {
			t.Fatalf("port %d handed out twice", p)
		}
		seen[p] = true
	}
}

// Envoy that exits because a port it was to bind is taken says so with
// ErrPortTaken, so that a caller can start it again on other ports.
func TestStartSaysAPortWasTaken(t *testing.T) {
	dir := t.TempDir()
	script := filepath.Join(dir, "envoy")
	body := "#!/bin/sh\necho \"[critical][main] error \\`cannot bind '127.0.0.1:4': Address already in use\\` initializing config\"\nexit 1\n"
	if err := os.WriteFile(script, []byte(body), 0o755); err != nil {
		t.Fatal(err)
	}
	_, err := Start(Options{Bin: script, Config: "x", Admin: "http://127.0.0.1:1", Log: filepath.Join(dir, "log"), ReadyTimeout: 10 * time.Second})
	if !errors.Is(err, ErrPortTaken) {
		t.Fatalf("got %v, want ErrPortTaken", err)
	}
	if err := os.WriteFile(script, []byte("#!/bin/sh\necho 'some other error'\nexit 1\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	_, err = Start(Options{Bin: script, Config: "x", Admin: "http://127.0.0.1:1", Log: filepath.Join(dir, "log"), ReadyTimeout: 10 * time.Second})
	if err == nil || errors.Is(err, ErrPortTaken) {
		t.Fatalf("got %v for another failure", err)
	}
}

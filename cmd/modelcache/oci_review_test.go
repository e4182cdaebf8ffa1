package main

import (
	"bytes"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"gopkg.in/yaml.v3"
)

func TestOCIPushTimesOut(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { select {} }))
	srv.Listener = ln
	srv.Start()
	dir := t.TempDir()
	t.Setenv("DOCKER_CONFIG", dir)
	w := filepath.Join(dir, "m.wasm")
	if err := os.WriteFile(w, []byte("\x00asm\x01\x00\x00\x00"), 0o644); err != nil {
		t.Fatal(err)
	}
	done := make(chan int, 1)
	go func() {
		var out, errb bytes.Buffer
		code := run([]string{"oci", "-wasm", w, "-layout", "", "-push", "-timeout", "2s", "-repo", ln.Addr().String() + "/modelcache"}, &out, &errb)
		if code != 1 || !strings.Contains(errb.String(), "deadline") {
			t.Errorf("exit %d, stderr %q: want 1 and the deadline named", code, errb.String())
		}
		done <- code
	}()
	select {
	case <-done:
	case <-time.After(15 * time.Second):
		t.Fatal("modelcache oci -push still waiting after 15s on a registry that never answers")
	}
}

func TestRenderWasmPluginMultilineURL(t *testing.T) {
	tmpl := []byte(`apiVersion: extensions.istio.io/v1alpha1
kind: WasmPlugin
metadata: {name: modelcache}
spec:
  url:
    oci://registry.example.com/modelcache:v0.1.0
  sha256: IMAGE-DIGEST
`)
	hex := strings.Repeat("ab", 32)
	out, err := renderWasmPlugin(tmpl, "registry.example.com/modelcache", hex)
	if err != nil {
		return // refusing the template would be fine
	}
	var m struct{ Spec struct{ URL, Sha256 string } }
	if err := yaml.Unmarshal(out, &m); err != nil {
		t.Fatalf("rendered file is not YAML: %v\n%s", err, out)
	}
	if want := "oci://registry.example.com/modelcache@sha256:" + hex; m.Spec.URL != want {
		t.Fatalf("rendered url %q, want %q\n%s", m.Spec.URL, want, out)
	}
}

// -layout replaces an OCI layout, never a directory that is something
// else (a typo such as -layout build).
func TestOCILayoutKeepsOtherDirectories(t *testing.T) {
	dir := t.TempDir()
	w := filepath.Join(dir, "m.wasm")
	if err := os.WriteFile(w, []byte("\x00asm\x01\x00\x00\x00"), 0o644); err != nil {
		t.Fatal(err)
	}
	other := filepath.Join(dir, "build")
	keep := filepath.Join(other, "keep.txt")
	if err := os.MkdirAll(other, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keep, []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	var out, errb bytes.Buffer
	if code := run([]string{"oci", "-wasm", w, "-layout", other}, &out, &errb); code != 1 {
		t.Errorf("exit %d (stderr %q): want 1 for a directory that is not an OCI layout", code, errb.String())
	}
	if _, err := os.Stat(keep); err != nil {
		t.Fatalf("-layout removed a directory that was not an OCI layout: %v", err)
	}
	layoutDir := filepath.Join(dir, "oci")
	for i := 0; i < 2; i++ { // written, then replaced
		if code := run([]string{"oci", "-wasm", w, "-layout", layoutDir}, &out, &errb); code != 0 {
			t.Fatalf("round %d: exit %d: %s", i, code, errb.String())
		}
	}
}

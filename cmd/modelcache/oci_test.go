package main

import (
	"bytes"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/static"
	"github.com/google/go-containerregistry/pkg/v1/types"
	"gopkg.in/yaml.v3"

	"github.com/modelcache/modelcache/internal/envoyrun"
	"github.com/modelcache/modelcache/internal/wasmbuild"
)

// requireTool finds an external program the test needs. The Makefile
// installs them (scripts/ensure-ops-tools.sh) and sets
// MODELCACHE_REQUIRE_TOOLS=1, so under make test a missing tool fails.
func requireTool(t *testing.T, prog string) string {
	t.Helper()
	p, err := exec.LookPath(prog)
	if err != nil {
		if os.Getenv("MODELCACHE_REQUIRE_TOOLS") != "" {
			t.Fatalf("%s not found (scripts/ensure-ops-tools.sh installs it)", prog)
		}
		t.Skipf("%s not found; run scripts/ensure-ops-tools.sh", prog)
	}
	return p
}

// startRegistry runs Debian's docker-registry on a free loopback port with
// its own config and temporary storage; it is stopped when the test ends.
func startRegistry(t *testing.T) string {
	t.Helper()
	bin := requireTool(t, "docker-registry")
	port, err := envoyrun.FreePort()
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	cfg := fmt.Sprintf(`version: 0.1
log: {level: error, accesslog: {disabled: true}}
storage: {filesystem: {rootdirectory: %s}}
http: {addr: "%s", secret: modelcache-test}
`, filepath.Join(dir, "data"), addr)
	cfgPath := filepath.Join(dir, "config.yml")
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	var logBuf bytes.Buffer
	cmd := exec.Command(bin, "serve", cfgPath)
	cmd.Stdout, cmd.Stderr = &logBuf, &logBuf
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan struct{})
	go func() { cmd.Wait(); close(exited) }()
	t.Cleanup(func() {
		cmd.Process.Kill()
		<-exited
		if t.Failed() {
			t.Logf("registry log:\n%s", logBuf.String())
		}
	})
	for i := 0; ; i++ {
		res, err := http.Get("http://" + addr + "/v2/")
		if err == nil {
			res.Body.Close()
			if res.StatusCode == 200 {
				return addr
			}
		}
		select {
		case <-exited:
			t.Fatalf("registry exited: %s", logBuf.String())
		case <-time.After(50 * time.Millisecond):
		}
		if i > 200 {
			t.Fatalf("registry not ready on %s: %v", addr, err)
		}
	}
}

// The whole make oci path against a real registry: build the image from
// the module under test, push it, render the WasmPlugin, then pull by the
// digest the WasmPlugin pins and check that what Istio would extract is
// the module, byte for byte.
func TestOCIRegistryRoundTrip(t *testing.T) {
	module := wasmbuild.Filter(t)
	addr := startRegistry(t)
	repo := addr + "/mesh/modelcache"
	dir := t.TempDir()
	out := filepath.Join(dir, "wasmplugin.yaml")
	var stdout, stderr bytes.Buffer
	rc := run([]string{"oci", "-wasm", module, "-layout", filepath.Join(dir, "layout"), "-repo", repo, "-tag", "v-test",
		"-push", "-wasmplugin", "../../envoy/istio/wasmplugin.yaml", "-wasmplugin-out", out}, &stdout, &stderr)
	if rc != 0 {
		t.Fatalf("modelcache oci: exit %d: %s%s", rc, stdout.String(), stderr.String())
	}

	// The rendered WasmPlugin pins url and sha256 to the same digest.
	var wp struct {
		Kind string
		Spec struct {
			URL    string `yaml:"url"`
			SHA256 string `yaml:"sha256"`
		}
	}
	raw, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	if err := yaml.Unmarshal(raw, &wp); err != nil {
		t.Fatal(err)
	}
	if wp.Kind != "WasmPlugin" || len(wp.Spec.SHA256) != 64 {
		t.Fatalf("rendered manifest: kind %q sha256 %q", wp.Kind, wp.Spec.SHA256)
	}
	if want := "oci://" + repo + "@sha256:" + wp.Spec.SHA256; wp.Spec.URL != want {
		t.Fatalf("url %q, want %q", wp.Spec.URL, want)
	}

	// Pull by the pinned digest, as Istio's agent would.
	ref, err := name.NewDigest(strings.TrimPrefix(wp.Spec.URL, "oci://"))
	if err != nil {
		t.Fatal(err)
	}
	img, err := remote.Image(ref)
	if err != nil {
		t.Fatalf("pull %s: %v", ref, err)
	}
	d, err := img.Digest()
	if err != nil {
		t.Fatal(err)
	}
	if d.Hex != wp.Spec.SHA256 {
		t.Fatalf("pulled manifest digest %s, WasmPlugin sha256 %s", d.Hex, wp.Spec.SHA256)
	}
	m, err := img.Manifest()
	if err != nil {
		t.Fatal(err)
	}
	if m.MediaType != types.OCIManifestSchema1 || m.Config.MediaType != types.OCIConfigJSON ||
		len(m.Layers) != 1 || m.Layers[0].MediaType != types.OCILayer || m.Annotations[variantAnnotation] != variantCompat {
		t.Fatalf("manifest is not the one-layer compat variant: %+v", m)
	}
	got, err := extractModule(img)
	if err != nil {
		t.Fatal(err)
	}
	want, err := os.ReadFile(module)
	if err != nil {
		t.Fatal(err)
	}
	if sha256Hex(got) != sha256Hex(want) {
		t.Fatalf("module in the pulled layer has sha256 %s, built module %s", sha256Hex(got), sha256Hex(want))
	}
	// The tag names the same image.
	tagRef, err := name.NewTag(repo + ":v-test")
	if err != nil {
		t.Fatal(err)
	}
	tagged, err := remote.Image(tagRef)
	if err != nil {
		t.Fatal(err)
	}
	if td, _ := tagged.Digest(); td != d {
		t.Fatalf("tag resolves to %s, digest pin %s", td, d)
	}
}

// The same module always gives the same image digest (what a WasmPlugin
// pins); a different module a different one.
func TestOCIImageIsReproducible(t *testing.T) {
	mod := append([]byte("\x00asm\x01\x00\x00\x00"), bytes.Repeat([]byte{7}, 1000)...)
	a, err := buildImage(mod)
	if err != nil {
		t.Fatal(err)
	}
	b, err := buildImage(append([]byte(nil), mod...))
	if err != nil {
		t.Fatal(err)
	}
	da, _ := a.Digest()
	db, _ := b.Digest()
	if da != db {
		t.Fatalf("two builds of one module: %s and %s", da, db)
	}
	mod[len(mod)-1] = 8
	c, err := buildImage(mod)
	if err != nil {
		t.Fatal(err)
	}
	if dc, _ := c.Digest(); dc == da {
		t.Fatal("different modules, same image digest")
	}
	if _, err := buildImage([]byte("not wasm at all")); err == nil {
		t.Fatal("a non-wasm file was packaged")
	}
}

// extractModule applies Istio's rules: images it would refuse are refused.
func TestOCIExtractRefusesOtherShapes(t *testing.T) {
	mod := []byte("\x00asm\x01\x00\x00\x00")
	raw := static.NewLayer(mod, "application/vnd.module.wasm.content.layer.v1+wasm")
	img, err := mutate.AppendLayers(mutate.MediaType(empty.Image, types.OCIManifestSchema1), raw)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := extractModule(img); err == nil || !strings.Contains(err.Error(), "layer media type") {
		t.Fatalf("raw wasm layer: %v", err)
	}
	good, err := buildImage(mod)
	if err != nil {
		t.Fatal(err)
	}
	two, err := mutate.AppendLayers(good, raw)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := extractModule(two); err == nil {
		t.Fatal("two layers accepted")
	}
}

func TestRenderWasmPluginNeedsBothFields(t *testing.T) {
	if _, err := renderWasmPlugin([]byte("spec:\n  url: x\n"), "r/m", strings.Repeat("a", 64)); err == nil ||
		!strings.Contains(err.Error(), "sha256") {
		t.Fatalf("template without sha256: %v", err)
	}
	out, err := renderWasmPlugin([]byte("spec:\n  url: x\n  sha256: y\n"), "r/m", strings.Repeat("a", 64))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(out), "  url: oci://r/m@sha256:aaaa") || !strings.Contains(string(out), "  sha256: aaaa") {
		t.Fatalf("rendered: %s", out)
	}
}

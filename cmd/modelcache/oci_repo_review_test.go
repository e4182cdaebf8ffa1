package main

import (
	"bytes"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
)

// `make oci` renders the WasmPlugin from OCI_REPO without ever checking it
// is an image repository (only -push parses it): a repo given with the
// scheme ("oci://registry.example.com/modelcache", as the url reads) or with
// upper-case letters exits 0 and writes `url: oci://oci://…` or an upper-case
// repository. Istio's agent parses the url with go-containerregistry and
// fails at pull time, on every proxy, long after the build said ok. The
// command must refuse a -repo that is not a valid repository name (or
// render a url that parses).
func TestOCIRefusesRepoThatIsNoImageReference(t *testing.T) {
	dir := t.TempDir()
	w := filepath.Join(dir, "m.wasm")
	if err := os.WriteFile(w, []byte("\x00asm\x01\x00\x00\x00"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, repo := range []string{"oci://registry.example.com/modelcache", "registry.example.com/ModelCache"} {
		out := filepath.Join(dir, "wasmplugin.yaml")
		os.Remove(out)
		var so, se bytes.Buffer
		code := run([]string{"oci", "-wasm", w, "-layout", "", "-repo", repo,
			"-wasmplugin", "../../envoy/istio/wasmplugin.yaml", "-wasmplugin-out", out}, &so, &se)
		if code != 0 {
			continue // refused: fine
		}
		b, err := os.ReadFile(out)
		if err != nil {
			t.Fatal(err)
		}
		m := regexp.MustCompile(`(?m)^\s+url: (\S+)`).FindSubmatch(b)
		if m == nil {
			t.Fatalf("-repo %q: no url in the rendered WasmPlugin", repo)
		}
		url := string(m[1])
		if strings.HasPrefix(url, "oci://oci://") {
			t.Errorf("-repo %q: exit 0, rendered url %s (the scheme twice: Istio pulls from a registry named \"oci:\"); want the repo refused", repo, url)
		} else if _, err := name.ParseReference(strings.TrimPrefix(url, "oci://")); err != nil {
			t.Errorf("-repo %q: exit 0, rendered url %s, which Istio cannot parse (%v); want the repo refused", repo, url, err)
		}
	}
}

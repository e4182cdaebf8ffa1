package main

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// The Wasm OCI image format Istio's agent accepts (pkg/wasm of istio/istio,
// the "compat" variant of the Wasm image spec): an OCI manifest whose last
// layer is a standard gzip tar layer holding a file named plugin.wasm. The
// variant annotation is what the spec asks for; Istio does not require it.
// Istio's other accepted shapes (a Docker-schema image, or the two-layer
// "oci" variant with a raw module layer) are not built here.
const (
	wasmFileInLayer   = "plugin.wasm"
	variantAnnotation = "module.wasm.image/variant"
	variantCompat     = "compat"
)

// buildImage packages a wasm module as a one-layer compat-variant image.
// The image is a pure function of the module bytes (fixed tar header, no
// gzip timestamp, zero creation time), so the same module always yields the
// same manifest digest — the digest a WasmPlugin pins.
func buildImage(module []byte) (v1.Image, error) {
	if !isWasm(module) {
		return nil, errors.New("not a wasm module (no \\0asm header)")
	}
	var tarBuf bytes.Buffer
	tw := tar.NewWriter(&tarBuf)
	hdr := &tar.Header{Name: wasmFileInLayer, Mode: 0o644, Size: int64(len(module)),
		Typeflag: tar.TypeReg, ModTime: time.Unix(0, 0).UTC(), Format: tar.FormatUSTAR}
	if err := tw.WriteHeader(hdr); err != nil {
		return nil, err
	}
	if _, err := tw.Write(module); err != nil {
		return nil, err
	}
	if err := tw.Close(); err != nil {
		return nil, err
	}
	var gz bytes.Buffer
	zw := gzip.NewWriter(&gz) // zero header: no name, no mtime
	if _, err := zw.Write(tarBuf.Bytes()); err != nil {
		return nil, err
	}
	if err := zw.Close(); err != nil {
		return nil, err
	}
	compressed := gz.Bytes()
	layer, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) {
		return io.NopCloser(bytes.NewReader(compressed)), nil
	}, tarball.WithMediaType(types.OCILayer))
	if err != nil {
		return nil, err
	}
	base := mutate.MediaType(empty.Image, types.OCIManifestSchema1)
	base = mutate.ConfigMediaType(base, types.OCIConfigJSON)
	img, err := mutate.Append(base, mutate.Addendum{Layer: layer, MediaType: types.OCILayer,
		Annotations: map[string]string{"org.opencontainers.image.title": wasmFileInLayer}})
	if err != nil {
		return nil, err
	}
	cf, err := img.ConfigFile()
	if err != nil {
		return nil, err
	}
	cf = cf.DeepCopy()
	cf.Architecture, cf.OS = "wasm", "wasip1"
	if img, err = mutate.ConfigFile(img, cf); err != nil {
		return nil, err
	}
	img = mutate.Annotations(img, map[string]string{variantAnnotation: variantCompat}).(v1.Image)
	return img, nil
}

// extractModule reads the module back out of an image the way Istio's agent
// does for an OCI manifest: the last layer must be a gzip tar layer
// (application/vnd.oci.image.layer.v1.tar+gzip) with a plugin.wasm file,
// whose content must start with the wasm magic number.
func extractModule(img v1.Image) ([]byte, error) {
	m, err := img.Manifest()
	if err != nil {
		return nil, err
	}
	if m.MediaType != "" && m.MediaType != types.OCIManifestSchema1 {
		return nil, fmt.Errorf("manifest media type %s, want %s", m.MediaType, types.OCIManifestSchema1)
	}
	layers, err := img.Layers()
	if err != nil {
		return nil, err
	}
	if len(layers) != 1 {
		return nil, fmt.Errorf("%d layers, want 1", len(layers))
	}
	mt, err := layers[0].MediaType()
	if err != nil {
		return nil, err
	}
	if mt != types.OCILayer {
		return nil, fmt.Errorf("layer media type %s, want %s", mt, types.OCILayer)
	}
	rc, err := layers[0].Compressed()
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	zr, err := gzip.NewReader(rc)
	if err != nil {
		return nil, fmt.Errorf("layer is not gzip: %w", err)
	}
	tr := tar.NewReader(zr)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return nil, fmt.Errorf("no %s in the layer", wasmFileInLayer)
		}
		if err != nil {
			return nil, err
		}
		if filepath.Base(h.Name) != wasmFileInLayer {
			continue
		}
		b, err := io.ReadAll(tr)
		if err != nil {
			return nil, err
		}
		if !isWasm(b) {
			return nil, fmt.Errorf("%s is not a wasm module", wasmFileInLayer)
		}
		return b, nil
	}
}

// isWasm reports whether b is a core WebAssembly module of binary version
// 1, the only kind Envoy loads: a component (version 0x0d, layer 1) or
// another version passed the magic number alone, and every proxy pulled an
// image it could not load (review Z249).
func isWasm(b []byte) bool { return len(b) >= 8 && string(b[:8]) == "\x00asm\x01\x00\x00\x00" }

func sha256Hex(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

// renderWasmPlugin rewrites a WasmPlugin manifest's url and sha256 lines to
// pin an image by digest. For an oci:// url Istio compares sha256 with the
// image's manifest digest (not the module's own hash), so both name it.
// Each of the two fields must appear exactly once in the template.
func renderWasmPlugin(tmpl []byte, repo, digestHex string) ([]byte, error) {
	out := tmpl
	for _, f := range []struct{ key, value string }{
		{"url", "oci://" + urlRepo(repo) + "@sha256:" + digestHex},
		{"sha256", digestHex},
	} {
		re := regexp.MustCompile(`(?m)^([ \t]+)` + f.key + `:[^\n]*$`)
		at := re.FindAllSubmatchIndex(out, -1)
		if len(at) != 1 {
			return nil, fmt.Errorf("wasmplugin template: %d %q lines, want exactly 1", len(at), f.key)
		}
		if !valueOnItsLine(out, at[0][0], at[0][1], at[0][3]-at[0][2]) {
			return nil, fmt.Errorf("wasmplugin template: the %q line must hold the whole value (it goes on, or is empty)", f.key)
		}
		out = re.ReplaceAll(out, []byte("${1}"+f.key+": "+f.value))
	}
	return out, nil
}

// Repository names and tags as the OCI distribution spec defines them:
// path components of lower-case letters and digits, separated by '.', '_',
// "__" or dashes, joined by '/'; a tag of at most 128 letters, digits, '_',
// '.' and '-' that does not start with '.' or '-'.
var (
	repoPathRE = regexp.MustCompile(`^[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*(/[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*)*$`)
	tagRE      = regexp.MustCompile(`^[a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}$`)
)

// urlRepo is repo as the rendered url names it: a Docker Hub name of one
// component in full (docker.io/library/NAME), as "oci://NAME@sha256:…"
// reads NAME@ as a user and the digest as a port, a url istiod and the
// Istio agent refuse to parse, which left every proxy without the filter
// (review Z183).
func urlRepo(repo string) string {
	if !strings.Contains(repo, "/") {
		return "docker.io/library/" + repo
	}
	return repo
}

// checkRepoTag refuses a -repo the rendered url ("oci://" + repo +
// "@sha256:...") would not carry to Istio's agent as that repository, and
// a -tag no registry accepts. The first component of repo is its registry
// host[:port] when go-containerregistry (which the agent parses the url
// with) takes it for one: it has a '.' or a ':', or is localhost.
func checkRepoTag(repo, tag string) error {
	if len(repo) >= len("oci://") && strings.EqualFold(repo[:len("oci://")], "oci://") {
		return fmt.Errorf("-repo %s: leave out oci:// (the rendered url adds it): -repo %s", repo, repo[len("oci://"):])
	}
	path := repo
	if host, rest, ok := strings.Cut(repo, "/"); ok && (host == "localhost" || strings.ContainsAny(host, ".:")) {
		path = rest
	}
	if !repoPathRE.MatchString(path) {
		return fmt.Errorf("-repo %s: not an image repository: want [HOST[:PORT]/]NAME, NAME lower-case letters and digits separated by '.', '_', '__' or dashes, in components joined by '/' (e.g. registry.example.com/modelcache)", repo)
	}
	if _, err := name.NewRepository(repo); err != nil { // the host; the length
		return fmt.Errorf("-repo %s: %v", repo, err)
	}
	if !tagRE.MatchString(tag) {
		return fmt.Errorf("-tag %s: not an image tag: want at most 128 letters, digits, '_', '.' or '-', not starting with '.' or '-'", tag)
	}
	return nil
}

// replaceableLayout refuses to replace a directory that is neither empty
// nor an OCI image layout (it has an oci-layout file): -layout build, a
// typo, must not remove a build directory.
func replaceableLayout(dir string) error {
	entries, err := os.ReadDir(dir)
	if errors.Is(err, os.ErrNotExist) || err == nil && len(entries) == 0 {
		return nil
	}
	if err != nil {
		return err
	}
	if _, err := os.Stat(filepath.Join(dir, "oci-layout")); err != nil {
		return fmt.Errorf("-layout %s: not an OCI image layout (no oci-layout file), so not replaced", dir)
	}
	return nil
}

// valueOnItsLine reports whether the "key: value" line at b[start:end],
// indented by indent, holds its whole value: one that is not empty, a
// block scalar or a comment, and that no more indented line continues.
func valueOnItsLine(b []byte, start, end, indent int) bool {
	_, v, _ := strings.Cut(string(b[start:end]), ":")
	v = strings.TrimSpace(v)
	if v == "" || v[0] == '|' || v[0] == '>' || v[0] == '#' {
		return false
	}
	rest := b[end:]
	for len(rest) > 0 {
		rest = rest[1:] // the newline
		line, _, _ := bytes.Cut(rest, []byte("\n"))
		if t := bytes.TrimSpace(line); len(t) > 0 && t[0] != '#' {
			return len(line)-len(bytes.TrimLeft(line, " \t")) <= indent
		}
		rest = rest[len(line):]
	}
	return true
}

func runOCI(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("oci", flag.ContinueOnError)
	fs.SetOutput(stderr)
	wasm := fs.String("wasm", "build/modelcache.wasm", "the filter module to package")
	dir := fs.String("layout", "build/oci", "write the image as an OCI image layout into this directory (replaced); empty: don't")
	repo := fs.String("repo", "registry.example.com/modelcache", "image repository (used by -push and in the rendered url)")
	tag := fs.String("tag", "latest", "tag for -push and the layout's ref name")
	push := fs.Bool("push", false, "push the image to -repo:-tag (credentials from the Docker config; http for loopback/private registries)")
	insecure := fs.Bool("insecure", false, "use plain http for -repo whatever its address")
	tmpl := fs.String("wasmplugin", "", "a WasmPlugin manifest whose url/sha256 lines to pin to the image")
	tmplOut := fs.String("wasmplugin-out", "", "where to write the pinned WasmPlugin (required with -wasmplugin)")
	timeout := fs.Duration("timeout", 5*time.Minute, "give up a -push that has not finished after this long (a registry that never answers)")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if fs.NArg() > 0 {
		// The flag parser stops at the first argument: every flag after
		// it was dropped, and the command went on without them (review
		// Z217).
		fmt.Fprintf(stderr, "modelcache oci: unexpected argument %q (every option is a flag; -push takes no value, -repo and -tag name the image)\n", fs.Arg(0))
		return 2
	}
	if (*tmpl == "") != (*tmplOut == "") {
		// Checked before anything is built or pushed: an -wasmplugin-out
		// alone was dropped with exit 0, and a WasmPlugin pinned to an
		// earlier module stayed where it was (review Z275).
		fmt.Fprintln(stderr, "modelcache oci: -wasmplugin and -wasmplugin-out go together (the template to render, and where the pinned WasmPlugin goes)")
		return 2
	}
	fail := func(err error) int { fmt.Fprintf(stderr, "modelcache oci: %v\n", err); return 1 }
	// Checked before anything is built: the rendered url is only parsed
	// by Istio's agent, at pull time, on every proxy.
	if err := checkRepoTag(*repo, *tag); err != nil {
		return fail(err)
	}
	module, err := os.ReadFile(*wasm)
	if err != nil {
		return fail(err)
	}
	img, err := buildImage(module)
	if err != nil {
		return fail(fmt.Errorf("%s: %w", *wasm, err))
	}
	// Self-check: what Istio would extract is the module, byte for byte.
	back, err := extractModule(img)
	if err != nil {
		return fail(err)
	}
	if !bytes.Equal(back, module) {
		return fail(errors.New("image does not round-trip the module"))
	}
	digest, err := img.Digest()
	if err != nil {
		return fail(err)
	}
	if *dir != "" {
		if err := replaceableLayout(*dir); err != nil {
			return fail(err)
		}
		if err := os.RemoveAll(*dir); err != nil {
			return fail(err)
		}
		p, err := layout.Write(*dir, empty.Index)
		if err != nil {
			return fail(err)
		}
		if err := p.AppendImage(img, layout.WithAnnotations(map[string]string{
			"org.opencontainers.image.ref.name": *tag})); err != nil {
			return fail(err)
		}
	}
	if *push {
		var opts []name.Option
		if *insecure {
			opts = append(opts, name.Insecure)
		}
		ref, err := name.NewTag(*repo+":"+*tag, opts...)
		if err != nil {
			return fail(err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), *timeout)
		err = remote.Write(ref, img, remote.WithAuthFromKeychain(authn.DefaultKeychain), remote.WithContext(ctx))
		cancel()
		if err != nil {
			return fail(fmt.Errorf("push %s (-timeout %s): %w", ref, *timeout, err))
		}
		fmt.Fprintf(stdout, "pushed %s@%s\n", ref, digest)
	}
	if *tmpl != "" {
		if *tmplOut == "" {
			return fail(errors.New("-wasmplugin needs -wasmplugin-out"))
		}
		in, err := os.ReadFile(*tmpl)
		if err != nil {
			return fail(err)
		}
		out, err := renderWasmPlugin(in, *repo, digest.Hex)
		if err != nil {
			return fail(fmt.Errorf("%s: %w", *tmpl, err))
		}
		if err := os.MkdirAll(filepath.Dir(*tmplOut), 0o755); err != nil {
			return fail(err)
		}
		if err := os.WriteFile(*tmplOut, out, 0o644); err != nil {
			return fail(err)
		}
	}
	fmt.Fprintf(stdout, "image %s (module sha256 %s, %d bytes, layer %s)\n", digest, sha256Hex(module), len(module), strings.TrimSpace(layerDigest(img)))
	return 0
}

func layerDigest(img v1.Image) string {
	ls, err := img.Layers()
	if err != nil || len(ls) == 0 {
		return "?"
	}
	d, err := ls[0].Digest()
	if err != nil {
		return "?"
	}
	return d.String()
}

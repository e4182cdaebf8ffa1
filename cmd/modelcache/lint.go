package main

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/tidwall/gjson"
	"gopkg.in/yaml.v3"

	"github.com/modelcache/modelcache/cachecore"
)

// A finding is one problem: the file, the line in it (0 when unknown),
// where in the document (YAML path of the filter configuration), and the
// message, which for configuration errors starts with the field
// cachecore.ParseConfig names ("routes[0].ttl: invalid duration ...").
type finding struct {
	file  string
	line  int
	where string
	msg   string
}

func (f finding) String() string {
	loc := f.file
	if f.line > 0 {
		loc += ":" + strconv.Itoa(f.line)
	}
	if f.where != "" {
		return loc + ": " + f.where + ": " + f.msg
	}
	return loc + ": " + f.msg
}

const (
	wasmFilterType = "type.googleapis.com/envoy.extensions.filters.http.wasm.v3.Wasm"
	stringValue    = "type.googleapis.com/google.protobuf.StringValue"
	bytesValue     = "type.googleapis.com/google.protobuf.BytesValue"
	// A typed_config may wrap the filter's config in a TypedStruct.
	udpaTypedStruct = "type.googleapis.com/udpa.type.v1.TypedStruct"
	xdsTypedStruct  = "type.googleapis.com/xds.type.v3.TypedStruct"
)

// linter collects the findings of one file.
type linter struct {
	file     string
	findings []finding
	checked  int            // filter configurations validated
	skipped  []string       // wasm filters that are not modelcache
	seen     map[string]int // files checked (ECDS files followed, this one): the configurations each held
	// An anchor costs a few bytes per alias, and checkExpansion lets a
	// document expand to 2^20 nodes: what one node holds is linted, and
	// its problems reported, once (where it is first reached), however
	// many aliases reach it (first).
	met      map[metKey]bool
	configs  map[metKey]*cachecore.Config // modelcacheConfig's results
	ecds     map[string][]*yaml.Node      // documents of the files filterWasmConfig read
	resolved map[*yaml.Node]*yaml.Node    // resolveMerges' copies
	expanded expansion                    // the file's documents' expansion, together (checkExpansion)

	// The work bounded per file, counted for the tests: findings placed on
	// their fields' lines (each a read of the configuration up to it),
	// Envoy routes judged by the opt-out check (lint_routes.go), the
	// mapping lookups placing findings in YAML made (each rebuilds the
	// mapping's members), and the JSON configurations parsed or listed
	// whole to place findings.
	placed, judged, lookups, wholeReads int
}

// metKey is a node in one role ("walk", "wasm filter", the @type its
// configuration is read as, ...).
type metKey struct {
	n    *yaml.Node
	role string
}

// first reports whether node n is met in role for the first time, and
// remembers it.
func (l *linter) first(n *yaml.Node, role string) bool {
	k := metKey{n, role}
	if l.met[k] {
		return false
	}
	if l.met == nil {
		l.met = map[metKey]bool{}
	}
	l.met[k] = true
	return true
}

func (l *linter) add(line int, where, format string, args ...any) {
	msg := fmt.Sprintf(format, args...)
	if strings.ContainsAny(msg, "\r\n") {
		// One problem, one line (README): a value quoted raw, such as a
		// pretty-printed object where a list belongs, is put on one
		// (review Z152).
		msg = strings.Join(strings.Fields(msg), " ")
	}
	l.findings = append(l.findings, finding{l.file, line, where, msg})
}

// lintBytes validates every modelcache configuration in one file: a bare
// filter configuration (JSON), Envoy configs (YAML or JSON) holding the
// wasm HTTP filter anywhere (listeners, ECDS resources, EnvoyFilter
// patches), and Istio WasmPlugin manifests; multi-document YAML is fine.
func lintBytes(file string, data []byte) *linter {
	return lintSeen(file, data, map[string]int{})
}

func lintSeen(file string, data []byte, seen map[string]int) *linter {
	if file == "-" {
		return lintOne(file, data, seen)
	}
	key := canonicalPath(file)
	seen[key] = 0 // (while it is checked: a file that follows itself counts none)
	l := lintOne(file, data, seen)
	seen[key] = l.checked
	return l
}

// lintOne is lintSeen's check of one file.
func lintOne(file string, data []byte, seen map[string]int) *linter {
	l := &linter{file: file, seen: seen}
	if isBareJSONConfig(data) {
		l.checkJSON(0, "", data, nil, 0)
		return l
	}
	if isJSONInput(data) { // lint_json.go
		root, err := jsonDocument(data)
		if err != nil {
			l.add(0, "", "%v", err)
			return l
		}
		l.lintDocument("", root)
		return l
	}
	dec := yaml.NewDecoder(bytes.NewReader(data))
	for doc := 1; ; doc++ {
		var n yaml.Node
		err := dec.Decode(&n)
		if err == io.EOF {
			break
		}
		if err != nil {
			l.add(0, "", "not valid YAML/JSON: %v", err)
			break
		}
		if len(n.Content) == 0 {
			continue
		}
		root := n.Content[0]
		prefix := ""
		if doc > 1 || hasMoreDocs(data) {
			prefix = fmt.Sprintf("doc %d ", doc)
		}
		l.lintDocument(prefix, root)
	}
	return l
}

func (l *linter) lintDocument(prefix string, root *yaml.Node) {
	if err := checkExpansion(root, &l.expanded); err != nil {
		l.add(root.Line, strings.TrimSpace(prefix), "%v", err)
		return
	}
	l.duplicateKeys(strings.TrimSpace(prefix), root)
	l.document(prefix, root)
}

// isBareJSONConfig: a JSON object that is not an Envoy config or a
// Kubernetes manifest is taken as the filter configuration itself (checked
// from the raw bytes, so ParseConfig sees duplicate members too).
func isBareJSONConfig(data []byte) bool {
	t := bytes.TrimSpace(data)
	if len(t) == 0 || t[0] != '{' {
		return false
	}
	var top map[string]json.RawMessage
	if json.Unmarshal(t, &top) != nil {
		// Not JSON: YAML whose first document is a flow mapping (JSON
		// manifests joined by ---, an Envoy config in flow style) is read
		// as YAML; anything else, and a filter configuration (its routes
		// at the top) that is YAML but not JSON, is ParseConfig's to name
		// (review Z152).
		var first map[string]any
		if !isYAML(data) || yaml.Unmarshal(data, &first) != nil {
			return true
		}
		_, routes := first["routes"]
		_, envoy := first["static_resources"]
		_, k8s := first["apiVersion"]
		return routes && !envoy && !k8s && !hasMoreDocs(data)
	}
	// A filter configuration has routes; a stray member beside them (kind,
	// config …) is the filter's to refuse, by name, not a sign of a
	// manifest. An Envoy configuration or a manifest has none at the top.
	has := func(fields ...string) bool { // under either name (get)
		for _, f := range fields {
			_, ok := top[f]
			_, alt := top[jsonName(f)]
			if ok || alt {
				return true
			}
		}
		return false
	}
	if _, ok := top["routes"]; ok {
		return !has("static_resources", "dynamic_resources", "apiVersion")
	}
	// "configs": Envoy's /config_dump (review Z152).
	return !has("static_resources", "dynamic_resources", "apiVersion", "kind", "typed_config", "@type", "resources", "config", "configs")
}

// isYAML reports whether every document of data decodes as YAML.
func isYAML(data []byte) bool {
	dec := yaml.NewDecoder(bytes.NewReader(data))
	for {
		var n yaml.Node
		if err := dec.Decode(&n); err == io.EOF {
			return true
		} else if err != nil {
			return false
		}
	}
}

func hasMoreDocs(data []byte) bool {
	return bytes.Contains(data, []byte("\n---"))
}

func (l *linter) document(prefix string, root *yaml.Node) {
	if root.Kind == yaml.MappingNode && scalar(getK8s(root, "kind")) == "List" && scalar(getK8s(root, "apiVersion")) == "v1" {
		// kubectl's list of manifests (kubectl get -o yaml).
		if items := deref(getK8s(root, "items")); items != nil && items.Kind == yaml.SequenceNode {
			for i, it := range items.Content {
				l.document(fmt.Sprintf("%sitems[%d] ", prefix, i), deref(it))
			}
		}
		return
	}
	if root.Kind == yaml.MappingNode && scalar(getK8s(root, "kind")) == "WasmPlugin" {
		meta := getK8s(root, "metadata")
		name := scalar(getK8s(meta, "name"))
		id := name
		if ns := scalar(getK8s(meta, "namespace")); ns != "" {
			id = ns + "/" + id
		}
		if !l.first(root, "WasmPlugin") {
			return // the same manifest again (kind: List items by alias)
		}
		spec := getK8s(root, "spec")
		where := prefix + "WasmPlugin " + id + " spec.pluginConfig"
		// Identified by its name, pluginName or module url (README), not
		// by its namespace: another plugin in a namespace named
		// "modelcache" is not this filter.
		if !strings.Contains(strings.ToLower(name+" "+scalar(getK8s(spec, "pluginName"))+" "+scalar(getK8s(spec, "url"))), "modelcache") {
			l.skipped = append(l.skipped, where)
			return
		}
		pc := getK8s(spec, "pluginConfig")
		switch {
		case pc == nil:
			l.checkJSON(root.Line, where, nil, nil, -1)
		case pc.Kind != yaml.MappingNode:
			l.add(pc.Line, where, "must be a mapping (Istio passes it to the filter as JSON)")
		case !l.first(pc, "pluginConfig"):
			l.checked++ // another plugin sharing it by alias: same JSON, checked
		default:
			js, err := nodeJSON(pc)
			if err != nil {
				l.add(pc.Line, where, "%v", err)
				return
			}
			l.checkJSON(pc.Line, where, js, pc, -1)
		}
		return
	}
	if root.Kind == yaml.MappingNode && scalar(getK8s(root, "apiVersion")) != "" && scalar(getK8s(root, "kind")) != "" {
		// A Kubernetes manifest (an EnvoyFilter): read as kubectl
		// reads it, merge keys resolved.
		if l.resolved == nil {
			l.resolved = map[*yaml.Node]*yaml.Node{}
		}
		root = resolveMerges(root, l.resolved)
	}
	l.walk(prefix, "", root)
}

// walk finds every wasm HTTP filter config (a mapping with the Wasm
// filter's @type) anywhere in the document.
func (l *linter) walk(prefix, path string, n *yaml.Node) {
	if (n.Kind == yaml.MappingNode || n.Kind == yaml.SequenceNode) && !l.first(n, "walk") {
		return // reached before through an alias
	}
	switch n.Kind {
	case yaml.MappingNode:
		if scalar(get(n, "@type")) == wasmFilterType {
			l.wasmFilter(prefix+path, n)
			return
		}
		if v, ok := wasmStructValue(n); ok {
			// The filter's config as a Struct: Envoy converts it to the
			// Wasm message, so it is linted as one.
			if v != nil {
				l.wasmFilter(prefix+joinPath(path, "value"), v)
			} else {
				l.add(n.Line, prefix+path, "TypedStruct of the wasm filter without a value mapping")
			}
			return
		}
		if cd := get(n, "config_discovery"); cd != nil {
			l.configDiscovery(prefix+joinPath(path, "config_discovery"), cd)
		}
		for i := 0; i+1 < len(n.Content); i += 2 {
			l.walk(prefix, joinPath(path, n.Content[i].Value), n.Content[i+1])
		}
		if get(n, "http_filters") != nil {
			l.routeOptOuts(prefix+path, n) // lint_routes.go
		}
	case yaml.SequenceNode:
		for i, c := range n.Content {
			l.walk(prefix, fmt.Sprintf("%s[%d]", path, i), c)
		}
	case yaml.AliasNode:
		if n.Alias != nil {
			l.walk(prefix, path, n.Alias)
		}
	}
}

// configDiscovery follows an extension config discovered from a file
// (path_config_source, as envoy/istio/ecds/envoy.yaml does): the file
// holds the filter's configuration, linted as part of this one. Envoy
// reads a relative path from its working directory; the linter also tries
// it relative to the linted file's directory and the ones above it.
func (l *linter) configDiscovery(where string, cd *yaml.Node) {
	p := configSourcePath(cd)
	if p == "" {
		return // from a management server: nothing to follow
	}
	file, ok := findConfigFile(p, l.file)
	if !ok {
		l.add(cd.Line, where, "config source file %s not found (lint from Envoy's working directory)", p)
		return
	}
	abs := canonicalPath(file)
	if n, ok := l.seen[abs]; ok {
		// Checked already (this file followed it, or it was named on the
		// command line before): the configurations it held count here,
		// its problems were reported there (reviews Z218, Z222).
		l.checked += n
		return
	}
	data, err := readFollowed(file)
	if err != nil {
		l.add(cd.Line, where, "%v", err)
		return
	}
	sub := lintSeen(file, data, l.seen)
	l.findings = append(l.findings, sub.findings...)
	l.checked += sub.checked
	l.skipped = append(l.skipped, sub.skipped...)
}

// maxFileBytes bounds each file lint reads, the ones it is given and the
// ones they name: Envoy configs and manifests are far smaller, and a
// hostile or mistaken input (a path of /dev/zero, an endless pipe) must
// end in a message, not in the linter exhausting memory.
const maxFileBytes = 16 << 20

// readBounded reads r whole, refusing more than maxFileBytes.
func readBounded(r io.Reader, name string) ([]byte, error) {
	data, err := io.ReadAll(io.LimitReader(r, maxFileBytes+1))
	if err != nil {
		return nil, err
	}
	if len(data) > maxFileBytes {
		return nil, fmt.Errorf("%s: larger than %d MiB: refused", name, maxFileBytes>>20)
	}
	return data, nil
}

// readFollowed reads a file a linted file names (config_discovery's path,
// untrusted as the file is): only a regular file, as Envoy reads (a
// device such as /dev/zero, a FIFO or a directory never ends or blocks),
// at most maxFileBytes.
func readFollowed(file string) ([]byte, error) {
	notRegular := fmt.Errorf("config source file %s: not a regular file: refused", file)
	if st, err := os.Stat(file); err != nil {
		return nil, err
	} else if !st.Mode().IsRegular() {
		return nil, notRegular
	}
	f, err := os.Open(file)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	if st, err := f.Stat(); err != nil || !st.Mode().IsRegular() { // replaced since
		return nil, notRegular
	}
	return readBounded(f, "config source file "+file)
}

// configSourcePath is the file a config_discovery reads ("": none, a
// management server).
func configSourcePath(cd *yaml.Node) string {
	src := get(cd, "config_source")
	if p := scalar(get(get(src, "path_config_source"), "path")); p != "" {
		return p
	}
	return scalar(get(src, "path")) // the deprecated field
}

// wasmStructValue: ok when n is a TypedStruct wrapping the wasm filter's
// config, with v its value mapping (nil without one).
func wasmStructValue(n *yaml.Node) (v *yaml.Node, ok bool) {
	typ := scalar(get(n, "@type"))
	if typ != udpaTypedStruct && typ != xdsTypedStruct || scalar(get(n, "type_url")) != wasmFilterType {
		return nil, false
	}
	if v = deref(get(n, "value")); v == nil || v.Kind != yaml.MappingNode {
		return nil, true
	}
	return v, true
}

func findConfigFile(p, from string) (string, bool) {
	if _, err := os.Stat(p); err == nil {
		return p, true
	}
	if filepath.IsAbs(p) {
		return "", false
	}
	dir, err := filepath.Abs(filepath.Dir(from))
	if err != nil {
		return "", false
	}
	return findConfigFileAbs(p, dir)
}

// findConfigFileAbs tries p relative to dir and each directory above it.
func findConfigFileAbs(p, dir string) (string, bool) {
	for {
		c := filepath.Join(dir, p)
		if _, err := os.Stat(c); err == nil {
			return c, true
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", false
		}
		dir = parent
	}
}

func joinPath(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

func (l *linter) wasmFilter(path string, typed *yaml.Node) {
	if !l.first(typed, "wasm filter") {
		return // a TypedStruct's value reached before through an alias
	}
	cfg := get(typed, "config")
	if cfg == nil {
		l.add(typed.Line, path, "wasm filter without config")
		return
	}
	where := path + ".config.configuration"
	if !namesModelcache(cfg) {
		l.skipped = append(l.skipped, path)
		return
	}
	conf := get(cfg, "configuration")
	if conf == nil {
		l.checkJSON(cfg.Line, where, nil, nil, -1)
		return
	}
	typ, val := scalar(get(conf, "@type")), get(conf, "value")
	switch typ {
	case stringValue, bytesValue:
	default:
		l.add(conf.Line, where+".@type", "is %q: Envoy hands the filter a %s's or %s's value as is, any other type as protobuf bytes, which are not JSON",
			typ, stringValue, bytesValue)
		return
	}
	if val == nil || val.Kind != yaml.ScalarNode {
		l.add(conf.Line, where+".value", "must be a string holding the filter's JSON configuration")
		return
	}
	if !l.first(val, typ) {
		l.checked++ // another filter sharing the value by alias: checked
		return
	}
	text := []byte(val.Value)
	if typ == bytesValue {
		b, err := decodeBase64(val.Value)
		if err != nil {
			l.add(val.Line, where+".value", "BytesValue must be base64: %v", err)
			return
		}
		text = b
	}
	base := -1 // line of the JSON text's first line, when it can be known
	if typ == stringValue && val.Style == yaml.LiteralStyle {
		base = val.Line
	}
	l.checkJSON(val.Line, where+".value", text, nil, base)
}

// namesModelcache: a wasm filter's config (the Wasm message's config)
// mentions modelcache in its name, root id, vm id or module, a local file
// or a remote url.
func namesModelcache(cfg *yaml.Node) bool {
	vm := get(cfg, "vm_config")
	code := get(vm, "code")
	ident := strings.Join([]string{scalar(get(cfg, "name")), scalar(get(cfg, "root_id")), scalar(get(vm, "vm_id")),
		scalar(get(get(code, "local"), "filename")), scalar(get(get(get(code, "remote"), "http_uri"), "uri"))}, " ")
	return strings.Contains(strings.ToLower(ident), "modelcache")
}

// decodeBase64 reads a BytesValue as protobuf's JSON parser does (Envoy
// reads its config through it): the standard or the URL-safe alphabet,
// padded or not.
func decodeBase64(v string) ([]byte, error) {
	var first error
	for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.RawStdEncoding, base64.URLEncoding, base64.RawURLEncoding} {
		b, err := enc.DecodeString(v)
		if err == nil {
			return b, nil
		}
		if first == nil {
			first = err
		}
	}
	return nil, first
}

// checkJSON runs the filter's own parser and reports each error it names.
// The line is the one of the field the error names where that can be
// known: through the YAML nodes the configuration came from (a WasmPlugin's
// pluginConfig), or in JSON text whose first line is line base+1 of the file
// (a bare JSON file: base 0; a literal block scalar: the line of its "|");
// otherwise line.
func (l *linter) checkJSON(line int, where string, js []byte, node *yaml.Node, base int) {
	l.checked++
	_, err := cachecore.ParseConfig(js)
	var errs []error
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		errs = j.Unwrap()
	} else if err != nil {
		errs = []error{err}
	}
	errs = append(errs, istioCutNames(js)...)
	var root gjson.Result
	parsed := false
	var tops map[string][]int
	top := func(name string) []int { // offsets of the top-level members named so, listed once
		if tops == nil {
			l.wholeReads++
			tops = map[string][]int{}
			root.ForEach(func(k, _ gjson.Result) bool {
				if len(tops[k.Str]) < 2 {
					tops[k.Str] = append(tops[k.Str], k.Index)
				}
				return true
			})
		}
		return tops[name]
	}
	for i, e := range errs {
		msg := e.Error()
		at := line
		if field, rest, ok := strings.Cut(msg, ": "); ok && i < maxPlacedFindings {
			l.placed++
			if node != nil {
				if n := l.locateMember(node, field, rest == "duplicate field" || rest == "unknown field"); n != nil {
					at = n.Line
				}
			} else if base >= 0 {
				if !parsed {
					root, parsed = gjson.ParseBytes(js), true // once: a copy of the configuration
					l.wholeReads++
				}
				if k := jsonLine(js, root, top, field, rest == "duplicate field", rest == "unknown field"); k > 0 {
					at = base + k
				}
			}
		}
		l.add(at, where, "%s", msg)
	}
}

// maxPlacedFindings bounds the findings of one configuration placed on
// the line of the field they name: each is placed by a read of the
// configuration up to it, and N findings placed so were quadratic in the
// file (30,000 unknown members took 9 s; review Z249). The rest are
// reported on the configuration's own line.
const maxPlacedFindings = 256

// istioTagEnds and istioTagStarts are what Istio's unanchored stats tags
// (every sidecar's bootstrap carries them) look for around a dot:
// "(cache\.(.+?)\.)" and the like after a word, "(\.shadow_(allowed|denied))"
// and "(\.istio_dry_run_(allow|deny)_)" before one.
var (
	istioTagEnds   = []string{"cache", "component", "wasm_filter"}
	istioTagStarts = []string{"shadow_allowed", "shadow_denied", "istio_dry_run_allow_", "istio_dry_run_deny_"}
)

// istioCutNames names the routes of configuration js whose name ends or
// starts with what an Istio tag looks for: in their stat names
// (modelcache_route.<name>.requests.hit) it meets a dot, and on a sidecar
// the tag cuts part of the name out — the shipped rules and panels find
// nothing, or one route's stats are read as another's (README, Stats).
// The names are read from the JSON itself, so that they are reported
// beside any other problem of the configuration.
func istioCutNames(js []byte) []error {
	routes := gjson.GetBytes(js, "routes")
	if !routes.IsArray() {
		return nil // ParseConfig says what is wrong
	}
	var errs []error
	more := 0
	routes.ForEach(func(i, r gjson.Result) bool {
		if i.Int() >= cachecore.MaxRoutes {
			return false // ParseConfig refuses the list: its names are not read on (review Z239)
		}
		name := r.Get("name")
		if name.Type != gjson.String {
			return true
		}
		n := name.String()
		how, word := "", ""
		for _, w := range istioTagEnds {
			if strings.HasSuffix(n, w) {
				how, word = "ends in", w
			}
		}
		for _, w := range istioTagStarts {
			if strings.HasPrefix(n, w) {
				how, word = "starts with", w
			}
		}
		switch {
		case how == "":
		case len(errs) == maxIstioCutFindings:
			more++
		default:
			errs = append(errs, fmt.Errorf("routes[%d].name: %q %s %q: an Istio sidecar's stats tags would cut its stat names (modelcache_route.%s.requests.hit); rename the route", i.Int(), n, how, word, n))
		}
		return true
	})
	if more > 0 {
		errs = append(errs, fmt.Errorf("routes: %d more route names an Istio sidecar's stats tags would cut (not listed one by one)", more))
	}
	return errs
}

// maxIstioCutFindings bounds the route names reported one by one: each is
// placed by a read of the JSON up to it (review Z239).
const maxIstioCutFindings = 16

// locateMember is locate for an unknown or duplicated member (member):
// the path's last name is first read whole, dots and all — the last 8
// segments down to 2, then the whole path at the top ("routes[0].ttl", a
// flattened key) — so that the finding is placed on the member it is
// about and not on a valid one of the same path (reviews Z254, Z256); else
// as locate. The path is followed once, and each reading looks only in a
// node that walk reached (each lookup rebuilds a mapping's members: one
// walk per reading cost 8 of them a finding; review Z257).
func (l *linter) locateMember(n *yaml.Node, path string, member bool) *yaml.Node {
	if !member {
		return locate(n, path)
	}
	getK8s := func(n *yaml.Node, key string) *yaml.Node {
		l.lookups++
		return getK8s(n, key)
	}
	type seg struct {
		name  string
		index int // -1: a name
	}
	var segs []seg
	for _, part := range strings.Split(path, ".") {
		name, rest, _ := strings.Cut(part, "[")
		if name != "" {
			segs = append(segs, seg{name: name, index: -1})
		}
		for rest != "" {
			idx, after, _ := strings.Cut(rest, "]")
			k, err := strconv.Atoi(idx)
			if err != nil || k < 0 {
				k = 1 << 30 // reaches nothing
			}
			segs = append(segs, seg{index: k})
			rest = strings.TrimPrefix(after, "[")
		}
	}
	nodes := []*yaml.Node{n} // nodes[k]: where the first k segments lead
	for _, s := range segs {
		cur := nodes[len(nodes)-1]
		var next *yaml.Node
		if s.index < 0 {
			next = getK8s(cur, s.name)
		} else if cur.Kind == yaml.SequenceNode && s.index < len(cur.Content) {
			next = cur.Content[s.index]
		}
		if next == nil {
			break
		}
		nodes = append(nodes, next)
	}
	run := 0 // the names the path ends with
	for run < len(segs) && segs[len(segs)-1-run].index < 0 {
		run++
	}
	for t := min(run, 8); t >= 2; t-- {
		k := len(segs) - t
		if k >= len(nodes) {
			continue // its parent does not exist
		}
		names := make([]string, 0, t)
		for _, s := range segs[k:] {
			names = append(names, s.name)
		}
		if v := getK8s(nodes[k], strings.Join(names, ".")); v != nil {
			return v
		}
	}
	if len(nodes) <= len(segs) {
		if v := getK8s(n, path); v != nil {
			return v
		}
	}
	return nodes[len(nodes)-1]
}

// locate follows a ParseConfig field path ("routes[0].coalesce.max_wait")
// through YAML nodes as far as it exists.
func locate(n *yaml.Node, path string) *yaml.Node {
	cur := n
	for _, seg := range strings.Split(path, ".") {
		name, rest, _ := strings.Cut(seg, "[")
		if name != "" {
			next := getK8s(cur, name) // a pluginConfig: the filter's own fields, as kubectl reads them
			if next == nil {
				return cur
			}
			cur = next
		}
		for rest != "" {
			idx, after, _ := strings.Cut(rest, "]")
			i, err := strconv.Atoi(idx)
			if err != nil || cur.Kind != yaml.SequenceNode || i < 0 || i >= len(cur.Content) {
				return cur
			}
			cur = cur.Content[i]
			rest = strings.TrimPrefix(after, "[")
		}
	}
	return cur
}

// jsonLine is the 1-based line in js of the deepest existing member on a
// ParseConfig field path, 0 if none. A duplicate (dup) is placed at the
// member named a second time, which ParseConfig refuses (gjson finds the
// first, which is fine; review Z249), and an unknown member (unknown) at
// that member. The path is ambiguous where a member's own name holds a
// dot ("coalesce.max_wait" in a route, beside its coalesce {max_wait}):
// for those two the last name is first read whole, dots and all, as the
// last 8 segments down to 1, so that the finding is placed on the member
// it is about and not on a valid one of the same path (reviews Z252,
// Z254).
func jsonLine(js []byte, root gjson.Result, top func(string) []int, path string, dup, unknown bool) int {
	type seg struct {
		key   string // as gjson reads it
		name  string // a member's name; "" for an array index
		index bool
	}
	var segs []seg
	for _, part := range strings.Split(path, ".") {
		name, rest, _ := strings.Cut(part, "[")
		if name != "" {
			segs = append(segs, seg{key: gjsonEscape(name), name: name})
		}
		for rest != "" {
			idx, after, _ := strings.Cut(rest, "]")
			segs = append(segs, seg{key: idx, index: true})
			rest = strings.TrimPrefix(after, "[")
		}
	}
	walk := func(segs []seg) (gjson.Result, bool) {
		cur := root
		for _, s := range segs {
			if cur = cur.Get(s.key); !cur.Exists() {
				return cur, false
			}
		}
		return cur, true
	}
	line := func(at int) int {
		if at < 0 || at > len(js) {
			return 0
		}
		return 1 + bytes.Count(js[:at], []byte("\n"))
	}
	if dup || unknown {
		// The whole path as one member's name at the top ("routes[0].ttl",
		// a flattened key; review Z256), read from the top's members,
		// listed once per configuration (top): looked up in the JSON, each
		// finding read every member (review Z257).
		if at := top(path); dup && len(at) > 1 {
			return line(at[1])
		} else if !dup && len(at) > 0 {
			return line(at[0])
		}
		run := 0 // the names the path ends with
		for run < len(segs) && !segs[len(segs)-1-run].index {
			run++
		}
		for t := min(run, 8); t >= 1; t-- {
			parent, ok := walk(segs[:len(segs)-t])
			if !ok || !parent.IsObject() {
				continue
			}
			names := make([]string, 0, t)
			for _, s := range segs[len(segs)-t:] {
				names = append(names, s.name)
			}
			name := strings.Join(names, ".")
			at := -1
			if dup {
				at = secondMember(parent, name)
			} else {
				at = firstMember(parent, name)
			}
			if at >= 0 {
				return line(at)
			}
		}
	}
	// The deepest member that exists, followed segment by segment from the
	// top: each read within the last (retried from the top with one
	// segment fewer, a name of k dots cost k reads of the file; review
	// Z252).
	at := -1
	for cur, i := root, 0; i < len(segs); i++ {
		if cur = cur.Get(segs[i].key); !cur.Exists() {
			break
		}
		if cur.Index > 0 {
			at = cur.Index
		}
	}
	return line(at)
}

// firstMember is the offset of the first member of object obj named
// name, or -1.
func firstMember(obj gjson.Result, name string) int {
	at := -1
	if !obj.IsObject() {
		return at
	}
	obj.ForEach(func(k, _ gjson.Result) bool {
		if k.Str == name {
			at = k.Index
			return false
		}
		return true
	})
	return at
}

// secondMember is the offset of the second member of object obj named
// name, or -1.
func secondMember(obj gjson.Result, name string) int {
	seen, at := 0, -1
	if obj.IsObject() {
		obj.ForEach(func(k, _ gjson.Result) bool {
			if k.Str == name {
				if seen++; seen == 2 {
					at = k.Index
					return false
				}
			}
			return true
		})
	}
	return at
}

func gjsonEscape(s string) string {
	var b strings.Builder
	for _, c := range s {
		if strings.ContainsRune(`.*?|#@\!=<>%`, c) {
			b.WriteByte('\\')
		}
		b.WriteRune(c)
	}
	return b.String()
}

// readFile reads a file lint is given: any file (a pipe such as <(...)
// too), bounded.
func readFile(file string) ([]byte, error) {
	f, err := os.Open(file)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return readBounded(f, file)
}

// canonicalPath is the file's absolute path with its symbolic links
// resolved (as a ConfigMap mount's ..data links are), for the record of
// files checked; the absolute path alone if they cannot be.
func canonicalPath(file string) string {
	abs, err := filepath.Abs(file)
	if err != nil {
		abs = file
	}
	if real, err := filepath.EvalSymlinks(abs); err == nil {
		return real
	}
	return abs
}

func runLint(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("lint", flag.ContinueOnError)
	fs.SetOutput(stderr)
	allowNone := fs.Bool("allow-none", false, "a file without any modelcache configuration is not an error")
	quiet := fs.Bool("q", false, "print only problems")
	fs.Usage = func() {
		fmt.Fprint(stderr, `usage: modelcache lint [-allow-none] [-q] FILE... ("-" reads standard input)

Validates every modelcache filter configuration in each file with the
filter's own parser: a JSON filter configuration, an Envoy config (YAML or
JSON) holding the wasm HTTP filter (static listeners, ECDS resources), or
Istio WasmPlugin / EnvoyFilter manifests (multi-document YAML). Wasm
filters and WasmPlugins whose name, root id, vm id, module file or url do
not mention "modelcache" are skipped. Prints one line per problem:
  FILE:LINE: WHERE: FIELD: MESSAGE
and exits 1 when there is any.
`)
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if fs.NArg() == 0 {
		fs.Usage()
		return 2
	}
	problems := 0
	// One record of the files checked, across the command line: an ECDS
	// file a linted Envoy config follows, given too, was checked and each
	// of its problems reported twice (review Z217).
	seen := map[string]int{}
	for _, file := range fs.Args() {
		if _, checked := seen[canonicalPath(file)]; file != "-" && checked {
			if !*quiet {
				fmt.Fprintf(stderr, "%s: checked already (a file named before it follows it)\n", file)
			}
			continue
		}
		var data []byte
		var err error
		if file == "-" {
			data, err = readBounded(os.Stdin, "standard input")
		} else {
			data, err = readFile(file)
		}
		if err != nil {
			fmt.Fprintf(stderr, "modelcache lint: %v\n", err)
			return 2
		}
		l := lintSeen(file, data, seen)
		if l.checked == 0 && len(l.findings) == 0 && !*allowNone {
			l.add(0, "", "no modelcache filter configuration found (-allow-none accepts that)")
		}
		for _, f := range l.findings {
			fmt.Fprintln(stdout, f)
		}
		problems += len(l.findings)
		if !*quiet {
			for _, s := range l.skipped {
				fmt.Fprintf(stderr, "%s: skipped (not modelcache): %s\n", file, s)
			}
			if len(l.findings) == 0 {
				fmt.Fprintf(stderr, "%s: ok (%d configuration(s))\n", file, l.checked)
			}
		}
	}
	if problems > 0 {
		fmt.Fprintf(stderr, "modelcache lint: %d problem(s)\n", problems)
		return 1
	}
	return 0
}

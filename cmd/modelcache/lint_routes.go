package main

import (
	"fmt"
	"path/filepath"
	"slices"
	"sort"
	"strings"

	"gopkg.in/yaml.v3"

	"github.com/modelcache/modelcache/cachecore"
)

// Per-route opt-outs (README, Routes the cache does not serve): an Envoy
// route can leave an HTTP filter out of its requests' chain with
// typed_per_filter_config {<filter name>: FilterConfig{disabled: true}}.
// Envoy accepts two mistakes silently, and the linter names both, for each
// HTTP connection manager with an inline route_config that carries
// modelcache:
//   - a typed_per_filter_config key that names no http_filters entry is
//     ignored (a misspelled opt-out turns nothing off);
//   - a route that disables the filter, reached by every request of one of
//     the filter's own routes (or its purge path), means those requests
//     never reach the cache.
// The second is checked only where it is certain: the first route, in
// order, that an unconditional prefix, path or path_separated_prefix match
// gives every such request; a route matched otherwise (regex, a path
// template) ends the search without a finding.

const filterConfigType = "type.googleapis.com/envoy.config.route.v3.FilterConfig"

// httpFilter is one entry of an HTTP connection manager's http_filters.
type httpFilter struct {
	name     string
	disabled bool              // disabled unless a route enables it
	cache    *cachecore.Config // a modelcache filter's valid configuration; nil otherwise
}

// pathSpec is the set of request paths one of the filter's routes (or its
// purge path) serves.
type pathSpec struct {
	what          string // for messages: `routes[0] "chat" (path_prefix "/v1/chat")`
	prefix, exact string
	methods       []string // the methods the route caches (nil: any)
}

func (l *linter) routeOptOuts(where string, hcm *yaml.Node) {
	var filters []*httpFilter
	byName := map[string]*httpFilter{}
	carries := false
	fs := get(hcm, "http_filters")
	if fs == nil || fs.Kind != yaml.SequenceNode {
		return
	}
	// A node reached again through an alias (an entry, a virtual host, a
	// typed_per_filter_config) adds nothing but the same findings again.
	met := map[*yaml.Node]bool{}
	for _, f := range fs.Content {
		if f = deref(f); met[f] {
			continue
		}
		met[f] = true
		hf := &httpFilter{name: scalar(get(f, "name")), disabled: yamlTrue(get(f, "disabled"))}
		if tc := l.filterWasmConfig(hf.name, f); tc != nil {
			hf.cache = l.modelcacheConfig(tc)
		}
		if hf.cache != nil || strings.Contains(strings.ToLower(hf.name), "modelcache") {
			carries = true
		}
		filters = append(filters, hf)
		byName[hf.name] = hf
	}
	rc := get(hcm, "route_config")
	if !carries || rc == nil {
		return // no modelcache here, or routes from RDS
	}
	rcWhere := where + ".route_config"
	names := make([]string, 0, len(filters))
	for _, f := range filters {
		names = append(names, f.name)
	}
	l.optOutKeys(rcWhere, rc, byName, names, met)
	vhosts := get(rc, "virtual_hosts")
	if vhosts == nil || vhosts.Kind != yaml.SequenceNode {
		return
	}
	for vi, vh := range vhosts.Content {
		if vh = deref(vh); met[vh] {
			continue
		}
		met[vh] = true
		vhWhere := fmt.Sprintf("%s.virtual_hosts[%d]", rcWhere, vi)
		l.optOutKeys(vhWhere, vh, byName, names, met)
		routes := get(vh, "routes")
		if routes == nil || routes.Kind != yaml.SequenceNode {
			continue
		}
		for ri, r := range routes.Content {
			l.optOutKeys(fmt.Sprintf("%s.routes[%d]", vhWhere, ri), r, byName, names, met)
		}
		ix := indexRoutes(routes)
		for _, f := range filters {
			if f.cache == nil {
				continue
			}
			lost := map[int][]string{} // Envoy route index → what of the filter's never reaches it
			var order []int
			shared := map[int]bool{} // an earlier disabling route takes some of them
			disabled := func(r *yaml.Node) bool { return filterDisabled(f, r, vh, rc) }
			for _, spec := range pathSpecs(f.cache) {
				ri, r, passed := firstCovering(ix, spec, disabled)
				if r == nil || !disabled(r) {
					continue
				}
				if lost[ri] == nil {
					order = append(order, ri)
				}
				lost[ri] = append(lost[ri], spec.what)
				shared[ri] = shared[ri] || passed
			}
			l.judged += ix.judged
			ix.judged = 0
			for _, ri := range order {
				msg := "disables the modelcache filter %q, yet it is the first route for every request of the filter's %s: those requests never reach the cache"
				if shared[ri] {
					msg = "disables the modelcache filter %q, and every request of the filter's %s reaches it or an earlier route that disables the filter too: those requests never reach the cache"
				}
				l.add(routes.Content[ri].Line, fmt.Sprintf("%s.routes[%d]", vhWhere, ri), msg, f.name, strings.Join(lost[ri], ", "))
			}
		}
	}
}

// optOutKeys reports typed_per_filter_config keys of n that name no filter
// (each typed_per_filter_config once: met).
func (l *linter) optOutKeys(where string, n *yaml.Node, byName map[string]*httpFilter, names []string, met map[*yaml.Node]bool) {
	tp := get(n, "typed_per_filter_config")
	if tp == nil || tp.Kind != yaml.MappingNode || met[tp] {
		return
	}
	met[tp] = true
	for i := 0; i+1 < len(tp.Content); i += 2 {
		key := tp.Content[i]
		if byName[key.Value] == nil {
			sorted := append([]string(nil), names...)
			sort.Strings(sorted)
			l.add(key.Line, where+".typed_per_filter_config",
				"%q names no filter of this connection manager's http_filters (%s): Envoy ignores it", key.Value, strings.Join(sorted, ", "))
		}
	}
}

// filterDisabled resolves, as Envoy does, whether f runs on route r:
// the route's typed_per_filter_config, else its virtual host's, else the
// route configuration's, else the http_filters entry's own disabled.
func filterDisabled(f *httpFilter, r, vh, rc *yaml.Node) bool {
	for _, n := range []*yaml.Node{r, vh, rc} {
		v := entry(get(n, "typed_per_filter_config"), f.name)
		if v == nil {
			continue
		}
		if scalar(get(v, "@type")) == filterConfigType {
			return yamlTrue(get(v, "disabled"))
		}
		return false // a per-route configuration of the filter: it runs
	}
	return f.disabled
}

func pathSpecs(c *cachecore.Config) []pathSpec {
	var out []pathSpec
	for i, r := range c.Routes {
		s := pathSpec{prefix: r.Prefix, exact: r.Exact, methods: r.Methods}
		if r.Exact != "" {
			s.what = fmt.Sprintf("routes[%d] %q (path_exact %q)", i, r.Name, r.Exact)
		} else {
			s.what = fmt.Sprintf("routes[%d] %q (path_prefix %q)", i, r.Name, r.Prefix)
		}
		out = append(out, s)
	}
	if c.Purge.Path != "" {
		out = append(out, pathSpec{what: fmt.Sprintf("purge.path %q", c.Purge.Path), exact: c.Purge.Path})
	}
	return out
}

// routeMatch is an Envoy route's match, read once per virtual host.
type routeMatch struct {
	r           *yaml.Node
	unknown     bool   // a match that cannot be read (regex, a path template, …): the search ends there
	kind, value string // prefix, path or path_separated_prefix
	fold        bool   // case_sensitive: false
	conditional bool   // headers, query parameters, … must hold too
	headers     *yaml.Node
}

// routeIndex is a virtual host's routes, read once, with the routes whose
// match may meet a filter route's paths found by their value rather than
// by a scan: every filter route of every modelcache filter is checked
// against the same routes, and a scan of all of them for each made the
// check filters × routes × Envoy routes (review Z249).
type routeIndex struct {
	m            []routeMatch
	firstUnknown int        // the first route that cannot be read; len(m) if none
	exact, fold  valueIndex // case-sensitive routes by value; case-insensitive ones by their value lower-cased
	judged       int        // routes firstCovering judged, all specs together (the work the index saves)
}

// valueIndex is routes by their match's value.
type valueIndex struct {
	byValue map[string][]int // in order
	values  []string         // byValue's keys, sorted
}

func (vi *valueIndex) add(v string, i int) {
	if vi.byValue == nil {
		vi.byValue = map[string][]int{}
	}
	if vi.byValue[v] == nil {
		vi.values = append(vi.values, v)
	}
	vi.byValue[v] = append(vi.byValue[v], i)
}

// related appends the routes whose value is a prefix of p or has p as its
// prefix: the only ones whose match may meet a path of p's.
func (vi *valueIndex) related(out []int, p string) []int {
	for k := 0; k <= len(p); k++ { // values that p starts with ("" and p among them)
		out = append(out, vi.byValue[p[:k]]...)
	}
	for j := sort.SearchStrings(vi.values, p); j < len(vi.values) && strings.HasPrefix(vi.values[j], p); j++ {
		if vi.values[j] != p { // (p itself is in already)
			out = append(out, vi.byValue[vi.values[j]]...)
		}
	}
	return out
}

func indexRoutes(routes *yaml.Node) *routeIndex {
	ix := &routeIndex{firstUnknown: len(routes.Content)}
	for i, r := range routes.Content {
		rm := routeMatch{r: r}
		m := get(r, "match")
		if m == nil || m.Kind != yaml.MappingNode {
			rm.unknown = true
		} else {
			for j := 0; j+1 < len(m.Content); j += 2 {
				switch k := protoField(m.Content[j].Value); k {
				case "prefix", "path", "path_separated_prefix":
					rm.kind, rm.value = k, scalar(m.Content[j+1])
				case "case_sensitive": // a BoolValue, true by default
					var b bool
					rm.fold = m.Content[j+1].Decode(&b) == nil && !b
				case "headers":
					rm.headers = m.Content[j+1]
					fallthrough
				case "query_parameters", "dynamic_metadata", "filter_state":
					// Lists of conditions, all of which must hold: an empty
					// (headers: []) or null one is no condition.
					if !emptyList(m.Content[j+1]) {
						rm.conditional = true
					}
				default:
					rm.conditional = true // runtime fraction, …, or another kind of match
				}
			}
			rm.unknown = rm.kind == ""
		}
		ix.m = append(ix.m, rm)
		switch {
		case rm.unknown:
			ix.firstUnknown = min(ix.firstUnknown, i)
		case rm.fold:
			ix.fold.add(asciiLower(rm.value), i)
		default:
			ix.exact.add(rm.value, i)
		}
		if rm.unknown {
			break // no route after it is read
		}
	}
	sort.Strings(ix.exact.values)
	sort.Strings(ix.fold.values)
	return ix
}

// candidates are the routes before the first unknown one (indexRoutes
// reads no further) whose match may meet a path of spec, in order: a
// match meets one only if its value and spec's path are one a prefix of
// the other (overlaps, covers), both lower-cased for a case-insensitive
// match (every one of which was a candidate: review Z252).
func (ix *routeIndex) candidates(spec pathSpec) []int {
	p := spec.exact
	if p == "" {
		p = spec.prefix
	}
	out := ix.exact.related(nil, p)
	out = ix.fold.related(out, asciiLower(p))
	sort.Ints(out)
	return out
}

// firstCovering returns the first route that every request of spec
// matches, or nil when that cannot be told. Routes before it that take
// some of spec's requests and disable the filter too (disabled) do not
// end the search; passed reports whether there were any. Only the routes
// whose match may meet spec's paths are judged (candidates): any other
// neither covers nor overlaps it.
func firstCovering(ix *routeIndex, spec pathSpec, disabled func(*yaml.Node) bool) (int, *yaml.Node, bool) {
	passed := false
	for _, i := range ix.candidates(spec) {
		ix.judged++
		rm := &ix.m[i]
		if rm.headers != nil && spec.methods != nil && noneOfMethods(rm.headers, spec.methods) {
			// A method the filter's route does not cache: the route
			// takes none of its requests (review Z46).
			continue
		}
		if !rm.conditional && covers(rm.kind, rm.value, rm.fold, spec) {
			return i, rm.r, passed
		}
		if overlaps(rm.kind, rm.value, rm.fold, spec) {
			// Some of spec's requests stop here (under a condition,
			// or on a part of its paths), wherever the rest go: no
			// later route is the first for every one of them (review
			// Z45). If the filter is disabled here too, they are lost
			// all the same, and the search goes on (review Z46).
			if !disabled(rm.r) {
				return 0, nil, false
			}
			passed = true
		}
	}
	// None covers it before the end, or before a route that cannot be
	// read (regex, a path template, …: only routes before it are
	// indexed): cannot tell.
	return 0, nil, false
}

// noneOfMethods reports whether a route's headers conditions (all of
// which must hold) include an exact match of :method that none of methods
// meets: such a route takes none of the filter route's requests.
func noneOfMethods(headers *yaml.Node, methods []string) bool {
	headers = deref(headers)
	if headers == nil || headers.Kind != yaml.SequenceNode {
		return false
	}
	for _, h := range headers.Content {
		method, fold, ok := exactMethod(deref(h))
		if !ok {
			continue
		}
		if !slices.ContainsFunc(methods, func(m string) bool { return m == method || fold && strings.EqualFold(m, method) }) {
			return true
		}
	}
	return false
}

// exactMethod reads one headers condition that is an exact match of
// :method (string_match.exact, with ignore_case or not, or the older
// exact_match; not inverted): the method it names.
func exactMethod(h *yaml.Node) (method string, fold, ok bool) {
	if h == nil || h.Kind != yaml.MappingNode || scalar(get(h, "name")) != ":method" || yamlTrue(get(h, "invert_match")) {
		return "", false, false
	}
	for j := 0; j+1 < len(h.Content); j += 2 {
		switch protoField(h.Content[j].Value) {
		case "name", "invert_match":
		case "exact_match":
			method, ok = scalar(h.Content[j+1]), true
		case "string_match":
			sm := deref(h.Content[j+1])
			if sm == nil || sm.Kind != yaml.MappingNode {
				return "", false, false
			}
			for k := 0; k+1 < len(sm.Content); k += 2 {
				switch protoField(sm.Content[k].Value) {
				case "exact":
					method, ok = scalar(sm.Content[k+1]), true
				case "ignore_case":
					fold = yamlTrue(sm.Content[k+1])
				default:
					return "", false, false
				}
			}
		default:
			return "", false, false
		}
	}
	return method, fold, ok
}

// overlaps: an Envoy route match (kind, value) matches some path of spec.
func overlaps(kind, value string, fold bool, spec pathSpec) bool {
	if spec.exact != "" {
		return covers(kind, value, fold, spec) // one path: matched or not
	}
	p, v := spec.prefix, value
	if fold {
		p, v = asciiLower(p), asciiLower(v)
	}
	switch kind {
	case "prefix":
		return strings.HasPrefix(p, v) || strings.HasPrefix(v, p)
	case "path":
		return strings.HasPrefix(v, p)
	default: // path_separated_prefix: v itself, or v/…
		return strings.HasPrefix(v, p) || strings.HasPrefix(p, v+"/")
	}
}

// asciiLower lower-cases A–Z only, as Envoy's case-insensitive path
// matching (absl's StartsWithIgnoreCase, EqualsIgnoreCase) folds: Go's
// ToLower folds other letters too (the Kelvin sign to k, İ to i̇), and a
// route Envoy never matches was judged to take the filter's requests
// (review Z254).
func asciiLower(s string) string {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c >= 'A' && c <= 'Z' {
			b := []byte(s)
			for j := i; j < len(b); j++ {
				if b[j] >= 'A' && b[j] <= 'Z' {
					b[j] += 'a' - 'A'
				}
			}
			return string(b)
		}
	}
	return s
}

// emptyList: a repeated field that holds nothing, [] or null.
func emptyList(n *yaml.Node) bool {
	n = deref(n)
	return n != nil && (n.Kind == yaml.SequenceNode && len(n.Content) == 0 || n.Kind == yaml.ScalarNode && n.ShortTag() == "!!null")
}

// covers: an Envoy route match (kind, value) matches every path of spec.
func covers(kind, value string, fold bool, spec pathSpec) bool {
	p, v := spec.exact, value
	if p == "" {
		p = spec.prefix
	}
	if fold {
		p, v = asciiLower(p), asciiLower(v)
	}
	if spec.exact != "" {
		switch kind {
		case "prefix":
			return strings.HasPrefix(p, v)
		case "path":
			return p == v
		default: // path_separated_prefix
			return p == v || strings.HasPrefix(p, v+"/")
		}
	}
	switch kind {
	case "prefix":
		return strings.HasPrefix(p, v)
	case "path":
		return false // one path, the prefix has more
	default:
		return p == v || strings.HasPrefix(p, v+"/")
	}
}

// filterWasmConfig is the wasm filter's config of an http_filters entry
// in every form the linter validates (walk, configDiscovery): its
// typed_config, a TypedStruct's value, or the typed_config of the
// extension config of its name in the file its config_discovery reads;
// nil for another filter or one whose config cannot be read.
func (l *linter) filterWasmConfig(name string, f *yaml.Node) *yaml.Node {
	if tc := get(f, "typed_config"); tc != nil {
		return wasmTypedConfig(tc)
	}
	p := configSourcePath(get(f, "config_discovery"))
	if p == "" {
		return nil
	}
	file, ok := findConfigFile(p, l.file)
	if !ok {
		return nil // reported by configDiscovery
	}
	abs, _ := filepath.Abs(file)
	docs, ok := l.ecds[abs]
	if !ok {
		// Read once per file, however many entries name it; the same
		// nodes each time, so modelcacheConfig parses each config once.
		if data, err := readFollowed(file); err == nil { // else reported by configDiscovery
			docs = fileDocuments(data)
		}
		if l.ecds == nil {
			l.ecds = map[string][]*yaml.Node{}
		}
		l.ecds[abs] = docs
	}
	for _, doc := range docs {
		res := get(doc, "resources")
		if res == nil || res.Kind != yaml.SequenceNode {
			continue
		}
		for _, r := range res.Content {
			if r = deref(r); scalar(get(r, "name")) == name {
				return wasmTypedConfig(get(r, "typed_config"))
			}
		}
	}
	return nil
}

// wasmTypedConfig is tc when it is the wasm filter's config, the value of
// a TypedStruct that wraps one (Envoy converts it), else nil.
func wasmTypedConfig(tc *yaml.Node) *yaml.Node {
	if scalar(get(tc, "@type")) == wasmFilterType {
		return tc
	}
	v, _ := wasmStructValue(tc)
	return v
}

// modelcacheConfig is the valid configuration of a modelcache wasm filter
// (typed_config), nil for another filter or an invalid one (the latter is
// reported by wasmFilter). A value shared by aliases is parsed once.
func (l *linter) modelcacheConfig(tc *yaml.Node) *cachecore.Config {
	cfg := get(tc, "config")
	if !namesModelcache(cfg) {
		return nil
	}
	conf := get(cfg, "configuration")
	val, typ := get(conf, "value"), scalar(get(conf, "@type"))
	key := metKey{val, typ}
	if c, ok := l.configs[key]; ok {
		return c
	}
	c := parseModelcacheConfig(scalar(val), typ)
	if l.configs == nil {
		l.configs = map[metKey]*cachecore.Config{}
	}
	l.configs[key] = c
	return c
}

func parseModelcacheConfig(value, typ string) *cachecore.Config {
	text := []byte(value)
	switch typ {
	case stringValue:
	case bytesValue:
		b, err := decodeBase64(string(text))
		if err != nil {
			return nil
		}
		text = b
	default:
		return nil
	}
	c, err := cachecore.ParseConfig(text)
	if err != nil {
		return nil
	}
	return c
}

// yamlTrue: a YAML boolean scalar that is true (also through an alias).
func yamlTrue(n *yaml.Node) bool {
	if n != nil && n.Kind == yaml.AliasNode {
		n = n.Alias
	}
	var b bool
	return n != nil && n.Kind == yaml.ScalarNode && n.Decode(&b) == nil && b
}

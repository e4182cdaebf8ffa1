package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"gopkg.in/yaml.v3"
)

// Reading YAML as the programs that consume it do: Envoy (aliases, the
// last of duplicate keys, no merge keys: yaml-cpp keeps "<<" a key) and
// Kubernetes (YAML 1.1 booleans and merge keys, which kubectl resolves
// as go-yaml v2 does, in the order written, before Istio passes
// pluginConfig on as JSON).
// Aliases are followed only after a document's expansion is bounded.

// Bounds on a document's alias expansion: nodes visited with every alias
// followed, the depth of that expansion (a self-containing alias is
// infinitely deep), and the bytes of the scalars aliases bring in again
// (a long string aliased many times is few nodes, yet a WasmPlugin's
// pluginConfig is written out whole, as JSON, for the filter's parser).
const (
	maxYAMLNodes      = 1 << 20
	maxYAMLDepth      = 256
	maxYAMLAliasBytes = 4 << 20
)

// checkExpansion refuses a document whose aliases expand beyond the
// bounds: an alias bomb of a few hundred bytes, an alias that contains
// itself, or one that copies megabytes. It only counts, so it costs no
// more memory than the document already holds.
func checkExpansion(root *yaml.Node, b *expansion) error {
	nodes := 0
	var visit func(n *yaml.Node, depth int, aliased bool) error
	visit = func(n *yaml.Node, depth int, aliased bool) error {
		if nodes++; nodes > maxYAMLNodes {
			return fmt.Errorf("YAML aliases expand to more than %d nodes: refused", maxYAMLNodes)
		}
		if aliased {
			if b.aliasNodes++; b.aliasNodes > maxYAMLNodes {
				return fmt.Errorf("YAML aliases of the file's documents expand to more than %d nodes together: refused", maxYAMLNodes)
			}
		}
		if depth > maxYAMLDepth {
			return fmt.Errorf("YAML nested deeper than %d levels once aliases are expanded (an alias that contains itself?): refused", maxYAMLDepth)
		}
		if aliased {
			if b.aliasBytes += len(n.Value); b.aliasBytes > maxYAMLAliasBytes {
				return fmt.Errorf("YAML aliases expand to more than %d MiB of text: refused", maxYAMLAliasBytes>>20)
			}
		}
		if n.Kind == yaml.AliasNode {
			if n.Alias == nil {
				return nil
			}
			return visit(n.Alias, depth+1, true)
		}
		for _, c := range n.Content {
			if err := visit(c, depth+1, aliased); err != nil {
				return err
			}
		}
		return nil
	}
	return visit(root, 0, false)
}

// expansion is what checkExpansion has let a file's documents' aliases
// expand to, together (a document's own nodes are bounded per document): a budget per document let a file of many small documents,
// each just under it, cost a whole expansion each (8 of 667 bytes
// allocated 758 MiB; review Z275).
type expansion struct{ aliasNodes, aliasBytes int }

// duplicateKeys reports each key a mapping holds twice: Envoy takes the
// last value, a reader of the file the first. Aliases are not followed
// (each mapping is reported where it is written).
func (l *linter) duplicateKeys(prefix string, n *yaml.Node) {
	if n.Kind == yaml.MappingNode {
		first := map[string]int{}
		for i := 0; i+1 < len(n.Content); i += 2 {
			k := n.Content[i]
			if k.Kind != yaml.ScalarNode {
				continue
			}
			if line, ok := first[k.Value]; ok {
				l.add(k.Line, prefix, "duplicate key %q (first on line %d): Envoy takes the last value; keep one", k.Value, line)
				continue
			}
			first[k.Value] = k.Line
		}
	}
	for _, c := range n.Content {
		l.duplicateKeys(prefix, c)
	}
}

// deref follows aliases (bounded by checkExpansion).
func deref(n *yaml.Node) *yaml.Node {
	for n != nil && n.Kind == yaml.AliasNode {
		n = n.Alias
	}
	return n
}

func isMergeKey(k *yaml.Node) bool {
	return k.Kind == yaml.ScalarNode && k.Value == "<<" && (k.Tag == "!!merge" || k.Tag == "")
}

// members lists a mapping's key/value pairs. With merge (a Kubernetes
// manifest) they are what kubectl reads (sigs.k8s.io/yaml, that is
// go-yaml v2): the members applied in the order written, each setting its
// key, so a later one overrides an earlier one, a key keeping the place it
// was first set in. A merge key ("<<: *base") sets there every member of
// the merged mapping (itself read so), overriding the explicit keys
// written before it, not those after it; a list of them ("<<: [*a, *b]")
// is applied last first, so among them the first wins (go-yaml v2's
// decoder.merge). Without merge (Envoy), "<<" is a key like any other and
// every member is listed.
func members(n *yaml.Node, merge bool) [][2]*yaml.Node {
	n = deref(n)
	if n == nil || n.Kind != yaml.MappingNode {
		return nil
	}
	var out [][2]*yaml.Node
	at := map[string]int{} // with merge: a key's place in out
	set := func(k, v *yaml.Node) {
		if i, ok := at[k.Value]; ok {
			out[i] = [2]*yaml.Node{k, v}
			return
		}
		at[k.Value] = len(out)
		out = append(out, [2]*yaml.Node{k, v})
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		switch {
		case !merge:
			out = append(out, [2]*yaml.Node{k, v})
		case isMergeKey(k):
			for _, src := range mergeSources(v) {
				for _, kv := range members(src, true) {
					set(kv[0], kv[1])
				}
			}
		default:
			set(k, v)
		}
	}
	return out
}

// mergeSources are the mappings a merge key's value brings in, in the
// order go-yaml v2 applies them: a list last first.
func mergeSources(v *yaml.Node) []*yaml.Node {
	v = deref(v)
	if v == nil || v.Kind != yaml.SequenceNode {
		return []*yaml.Node{v}
	}
	srcs := make([]*yaml.Node, len(v.Content))
	for i, s := range v.Content {
		srcs[len(srcs)-1-i] = s
	}
	return srcs
}

// Envoy reads its configuration (a bootstrap, an ECDS file, what istiod
// makes of an EnvoyFilter's patch) with protobuf's JSON parser, which
// accepts every field under its name in the .proto (root_id) and under its
// JSON name, lowerCamelCase (rootId); configuration dumps and many
// EnvoyFilter patches use the latter. The linter names fields by their
// .proto names: get finds either spelling, protoField reads a key as the
// field it spells. A map's keys are data, not fields (the filter names of
// typed_per_filter_config): entry finds them as written.

// get returns a mapping's value for a proto field (its .proto name) as
// Envoy reads it: under either name, the last one of a duplicated key
// (duplicateKeys reports it), aliases followed.
func get(n *yaml.Node, field string) *yaml.Node {
	alt := jsonName(field)
	var v *yaml.Node
	for _, kv := range members(n, false) {
		if k := kv[0].Value; k == field || k == alt {
			v = kv[1]
		}
	}
	return deref(v)
}

// entry returns a map's value for key, as written, the last one of a
// duplicated key, aliases followed.
func entry(n *yaml.Node, key string) *yaml.Node { return lookup(n, key, false) }

// getK8s is entry for a Kubernetes manifest (whose fields have one name):
// merge keys resolved.
func getK8s(n *yaml.Node, key string) *yaml.Node { return lookup(n, key, true) }

// jsonName is a .proto field name's JSON name, as protoc derives it: the
// "_"s dropped, the (ASCII) letter after each upper-cased.
func jsonName(field string) string {
	if !strings.Contains(field, "_") {
		return field
	}
	var b strings.Builder
	up := false
	for i := 0; i < len(field); i++ {
		switch c := field[i]; {
		case c == '_':
			up = true
		case up && 'a' <= c && c <= 'z':
			b.WriteByte(c - 'a' + 'A')
			up = false
		default:
			b.WriteByte(c)
			up = false
		}
	}
	return b.String()
}

// protoField is the .proto field name a key spells: the key itself, or
// the field whose JSON name it is (pathSeparatedPrefix:
// path_separated_prefix).
func protoField(key string) string {
	if strings.IndexFunc(key, func(r rune) bool { return 'A' <= r && r <= 'Z' }) < 0 {
		return key
	}
	var b strings.Builder
	for i := 0; i < len(key); i++ {
		if c := key[i]; 'A' <= c && c <= 'Z' {
			b.WriteByte('_')
			b.WriteByte(c - 'A' + 'a')
		} else {
			b.WriteByte(c)
		}
	}
	if f := b.String(); jsonName(f) == key {
		return f
	}
	return key // no field's JSON name (an upper-case letter after "_", …)
}

func lookup(n *yaml.Node, key string, merge bool) *yaml.Node {
	var v *yaml.Node
	for _, kv := range members(n, merge) {
		if kv[0].Value == key {
			v = kv[1]
		}
	}
	return deref(v)
}

func scalar(n *yaml.Node) string {
	n = deref(n)
	if n == nil || n.Kind != yaml.ScalarNode {
		return ""
	}
	return n.Value
}

// yaml11Bools are the plain scalars YAML 1.1 (Kubernetes' YAML reader)
// reads as booleans and YAML 1.2 as strings.
var yaml11Bools = map[string]bool{
	"y": true, "Y": true, "yes": true, "Yes": true, "YES": true, "on": true, "On": true, "ON": true,
	"n": false, "N": false, "no": false, "No": false, "NO": false, "off": false, "Off": false, "OFF": false,
}

// resolveMerges is n as a Kubernetes manifest reaches its consumer
// (kubectl resolves merge keys before istiod reads an EnvoyFilter): a copy
// with every mapping's members as members(n, true) lists them and aliases
// followed (bounded by checkExpansion), lines kept for findings. A node is
// copied once (memo: its copy), so what aliases share stays shared and is
// linted once (linter.first).
func resolveMerges(n *yaml.Node, memo map[*yaml.Node]*yaml.Node) *yaml.Node {
	n = deref(n)
	if n == nil {
		return nil
	}
	if c, ok := memo[n]; ok {
		return c
	}
	c := *n
	switch n.Kind {
	case yaml.MappingNode:
		c.Content = nil
		for _, kv := range members(n, true) {
			c.Content = append(c.Content, kv[0], resolveMerges(kv[1], memo))
		}
	case yaml.SequenceNode, yaml.DocumentNode:
		c.Content = make([]*yaml.Node, len(n.Content))
		for i, e := range n.Content {
			c.Content[i] = resolveMerges(e, memo)
		}
	}
	memo[n] = &c
	return &c
}

// nodeJSON encodes YAML nodes as JSON the way Kubernetes does for a
// manifest (merge keys resolved, YAML 1.1 booleans), keeping member order
// (ParseConfig reports fields in document order).
func nodeJSON(n *yaml.Node) ([]byte, error) {
	var b bytes.Buffer
	if err := writeJSON(&b, n); err != nil {
		return nil, err
	}
	return b.Bytes(), nil
}

func writeJSON(b *bytes.Buffer, n *yaml.Node) error {
	n = deref(n)
	if n == nil {
		b.WriteString("null")
		return nil
	}
	switch n.Kind {
	case yaml.MappingNode:
		b.WriteByte('{')
		for i, kv := range members(n, true) {
			if i > 0 {
				b.WriteByte(',')
			}
			k, _ := json.Marshal(kv[0].Value)
			b.Write(k)
			b.WriteByte(':')
			if err := writeJSON(b, kv[1]); err != nil {
				return err
			}
		}
		b.WriteByte('}')
	case yaml.SequenceNode:
		b.WriteByte('[')
		for i, c := range n.Content {
			if i > 0 {
				b.WriteByte(',')
			}
			if err := writeJSON(b, c); err != nil {
				return err
			}
		}
		b.WriteByte(']')
	case yaml.ScalarNode:
		if v, ok := yaml11Bools[n.Value]; ok && n.Style == 0 && n.Tag == "!!str" {
			fmt.Fprint(b, v)
			return nil
		}
		if n.ShortTag() == "!!timestamp" {
			// A date-like plain scalar (name: 2024-06-01) reaches the
			// filter as the string written: kubectl's YAML reads it so,
			// yaml.v3 made it a time (review Z152).
			out, _ := json.Marshal(n.Value)
			b.Write(out)
			return nil
		}
		var v any
		if err := n.Decode(&v); err != nil {
			return fmt.Errorf("line %d: %v", n.Line, err)
		}
		out, err := json.Marshal(v)
		if err != nil {
			return fmt.Errorf("line %d: %v", n.Line, err)
		}
		b.Write(out)
	default:
		return errors.New("unsupported YAML node")
	}
	return nil
}

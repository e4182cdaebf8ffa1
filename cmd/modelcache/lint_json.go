package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"

	"gopkg.in/yaml.v3"
)

// JSON input is read with a JSON parser, as Envoy reads a JSON bootstrap or
// ECDS file and kubectl a JSON manifest: yaml.v3 lacks two escapes JSON
// has ("\/" and surrogate pairs, "\ud83d\ude80") and refuses valid files
// that hold them. The result is the yaml.Node tree yaml.v3 builds for the
// same text (flow style, strings double-quoted, numbers, booleans and
// null as plain scalars, lines kept), so everything after reading is the
// same for both.

// isJSONInput: the input is one valid JSON object or array. Anything else
// (a YAML flow mapping such as {a: 1}, several documents) is read as YAML,
// as before.
func isJSONInput(data []byte) bool {
	t := bytes.TrimLeft(data, " \t\r\n")
	return len(t) > 0 && (t[0] == '{' || t[0] == '[') && json.Valid(data)
}

// jsonDocument decodes data (isJSONInput) into yaml.Nodes, bounded as YAML
// input is (checkExpansion): at most maxYAMLNodes nodes, maxYAMLDepth
// levels (encoding/json alone allows 10,000).
func jsonDocument(data []byte) (*yaml.Node, error) {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber() // the number as written, resolved as yaml.v3 resolves it
	b := &jsonBuilder{data: data, dec: dec, line: 1}
	root, err := b.value(0)
	if err != nil {
		return nil, err
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, fmt.Errorf("not valid JSON: data after the top-level value")
	}
	return root, nil
}

type jsonBuilder struct {
	data  []byte
	dec   *json.Decoder
	end   int // offset just after the last token read
	pos   int // offset whose line is line
	line  int
	nodes int
}

// next reads a token and the line it starts on: the token starts after the
// whitespace and the one ',' or ':' that follow the previous token.
func (b *jsonBuilder) next() (json.Token, int, error) {
	start := b.end
	for start < len(b.data) && bytes.IndexByte([]byte(" \t\r\n,:"), b.data[start]) >= 0 {
		start++
	}
	t, err := b.dec.Token()
	if err != nil {
		return nil, 0, fmt.Errorf("not valid JSON: %v", err)
	}
	b.end = int(b.dec.InputOffset())
	if start > b.pos && start <= len(b.data) {
		b.line += bytes.Count(b.data[b.pos:start], []byte("\n"))
		b.pos = start
	}
	return t, b.line, nil
}

func (b *jsonBuilder) count() error {
	if b.nodes++; b.nodes > maxYAMLNodes {
		return fmt.Errorf("JSON holds more than %d values and keys: refused", maxYAMLNodes)
	}
	return nil
}

func (b *jsonBuilder) value(depth int) (*yaml.Node, error) {
	if depth > maxYAMLDepth {
		return nil, fmt.Errorf("JSON nested deeper than %d levels: refused", maxYAMLDepth)
	}
	if err := b.count(); err != nil {
		return nil, err
	}
	t, line, err := b.next()
	if err != nil {
		return nil, err
	}
	switch t := t.(type) {
	case json.Delim:
		n := &yaml.Node{Kind: yaml.SequenceNode, Tag: "!!seq", Style: yaml.FlowStyle, Line: line}
		if t == '{' {
			n.Kind, n.Tag = yaml.MappingNode, "!!map"
		}
		for b.dec.More() {
			if n.Kind == yaml.MappingNode {
				if err := b.count(); err != nil {
					return nil, err
				}
				k, kline, err := b.next()
				if err != nil {
					return nil, err
				}
				key, _ := k.(string) // the decoder allows only strings
				n.Content = append(n.Content, &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Style: yaml.DoubleQuotedStyle, Value: key, Line: kline})
			}
			v, err := b.value(depth + 1)
			if err != nil {
				return nil, err
			}
			n.Content = append(n.Content, v)
		}
		if _, _, err := b.next(); err != nil { // the closing '}' or ']'
			return nil, err
		}
		return n, nil
	case string:
		return &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Style: yaml.DoubleQuotedStyle, Value: t, Line: line}, nil
	case json.Number:
		return plainScalar(t.String(), line), nil
	case bool:
		return plainScalar(fmt.Sprint(t), line), nil
	default: // nil
		return plainScalar("null", line), nil
	}
}

// plainScalar is a plain scalar tagged as yaml.v3's parser tags it.
func plainScalar(v string, line int) *yaml.Node {
	n := &yaml.Node{Kind: yaml.ScalarNode, Value: v, Line: line}
	n.Tag = n.ShortTag()
	return n
}

// fileDocuments are the roots of a followed file's documents, read as
// lintSeen reads them, up to the first error; empty documents and those
// checkExpansion refuses are left out.
func fileDocuments(data []byte) []*yaml.Node {
	if isJSONInput(data) {
		root, err := jsonDocument(data)
		if err != nil {
			return nil
		}
		return []*yaml.Node{root}
	}
	var roots []*yaml.Node
	var expanded expansion // the file's documents together
	dec := yaml.NewDecoder(bytes.NewReader(data))
	for {
		var doc yaml.Node
		if dec.Decode(&doc) != nil {
			return roots
		}
		if len(doc.Content) == 0 || checkExpansion(doc.Content[0], &expanded) != nil {
			continue
		}
		roots = append(roots, doc.Content[0])
	}
}

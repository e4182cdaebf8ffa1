// Package observability holds modelcache's Prometheus rules (alerts.yaml),
// their promtool unit tests (alerts_test.yaml) and a Grafana dashboard
// (dashboard.json), and reads the metric names they use, so that tests can
// hold them against what a real Envoy exports (e2e/observability_test.go).
package observability

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"sort"
	"strings"

	"gopkg.in/yaml.v3"
)

// Dir is this folder (the rules and dashboard files live beside this file).
func Dir() string {
	_, f, _, _ := runtime.Caller(0)
	return filepath.Dir(f)
}

// Expr is one PromQL expression and where it comes from.
type Expr struct {
	From string // "alerts.yaml: alert X", "dashboard.json: panel \"Y\""
	Text string
}

// Rules reads alerts.yaml: every rule's expression, and the names its
// recording rules define.
func Rules() (exprs []Expr, recorded map[string]bool, err error) {
	b, err := os.ReadFile(filepath.Join(Dir(), "alerts.yaml"))
	if err != nil {
		return nil, nil, err
	}
	var f struct {
		Groups []struct {
			Name  string
			Rules []struct{ Record, Alert, Expr string }
		}
	}
	if err := yaml.Unmarshal(b, &f); err != nil {
		return nil, nil, err
	}
	recorded = map[string]bool{}
	for _, g := range f.Groups {
		for _, r := range g.Rules {
			name := "alert " + r.Alert
			if r.Record != "" {
				name = "record " + r.Record
				recorded[r.Record] = true
			}
			exprs = append(exprs, Expr{From: "alerts.yaml: " + name, Text: r.Expr})
		}
	}
	return exprs, recorded, nil
}

// Dashboard reads dashboard.json: every panel target's expression and the
// metric selectors of its template variables (label_values(selector, label)).
func Dashboard() ([]Expr, error) {
	b, err := os.ReadFile(filepath.Join(Dir(), "dashboard.json"))
	if err != nil {
		return nil, err
	}
	var d struct {
		Panels []struct {
			Title   string
			Targets []struct{ Expr string }
		}
		Templating struct {
			List []struct {
				Name  string
				Type  string
				Query json.RawMessage
			}
		}
	}
	if err := json.Unmarshal(b, &d); err != nil {
		return nil, err
	}
	var out []Expr
	for _, p := range d.Panels {
		for _, t := range p.Targets {
			out = append(out, Expr{From: fmt.Sprintf("dashboard.json: panel %q", p.Title), Text: t.Expr})
		}
	}
	for _, v := range d.Templating.List {
		if v.Type != "query" {
			continue
		}
		var q struct{ Query string }
		if json.Unmarshal(v.Query, &q) != nil {
			var s string
			if json.Unmarshal(v.Query, &s) != nil {
				return nil, fmt.Errorf("dashboard variable %s: unreadable query", v.Name)
			}
			q.Query = s
		}
		sel, ok := strings.CutPrefix(q.Query, "label_values(")
		if !ok {
			return nil, fmt.Errorf("dashboard variable %s: only label_values(...) queries are understood, got %q", v.Name, q.Query)
		}
		if i := strings.LastIndexByte(sel, ','); i >= 0 {
			sel = sel[:i]
		}
		out = append(out, Expr{From: "dashboard.json: variable " + v.Name, Text: sel})
	}
	return out, nil
}

// PromQL words that are never metric names.
var (
	aggregations = set("sum", "min", "max", "avg", "group", "stddev", "stdvar", "count", "count_values",
		"bottomk", "topk", "quantile", "limitk", "limit_ratio")
	keywords  = set("and", "or", "unless", "offset", "bool", "inf", "nan", "atan2", "start", "end")
	labelList = set("by", "without", "on", "ignoring", "group_left", "group_right")
)

func set(words ...string) map[string]bool {
	m := map[string]bool{}
	for _, w := range words {
		m[w] = true
	}
	return m
}

// MetricNames lists the metric names a PromQL expression selects: bare
// selector names, and __name__="x" matchers (names), and the patterns of
// __name__=~"re" matchers (patterns). It is a lexer, not a full parser: it
// skips strings, label matchers other than __name__, ranges, numbers and
// durations, function and aggregation names, and the label lists of
// by/without/on/ignoring/group_left/group_right.
func MetricNames(expr string) (names, patterns []string) {
	s := expr
	seen := map[string]bool{}
	add := func(list *[]string, v string) {
		if !seen[v] {
			seen[v] = true
			*list = append(*list, v)
		}
	}
	i := 0
	for i < len(s) {
		c := s[i]
		switch {
		case c == '"' || c == '\'' || c == '`':
			_, i = readString(s, i)
		case c == '#':
			for i < len(s) && s[i] != '\n' {
				i++
			}
		case c == '[':
			for i < len(s) && s[i] != ']' {
				i++
			}
			i++
		case c == '{':
			i++
			for i < len(s) && s[i] != '}' {
				i = skipSpace(s, i)
				j := i
				for j < len(s) && isIdent(s[j]) {
					j++
				}
				label := s[i:j]
				i = skipSpace(s, j)
				j = i
				for j < len(s) && strings.ContainsRune("=!~", rune(s[j])) {
					j++
				}
				op := s[i:j]
				i = skipSpace(s, j)
				var val string
				if i < len(s) && strings.ContainsRune("\"'`", rune(s[i])) {
					val, i = readString(s, i)
				}
				if label == "__name__" {
					switch op {
					case "=":
						add(&names, val)
					case "=~":
						add(&patterns, val)
					}
				}
				i = skipSpace(s, i)
				if i < len(s) && s[i] == ',' {
					i++
				} else if i < len(s) && s[i] != '}' {
					i++ // unexpected: move on
				}
			}
			i++
		case c >= '0' && c <= '9' || c == '.' && i+1 < len(s) && s[i+1] >= '0' && s[i+1] <= '9':
			for i < len(s) && (isIdent(s[i]) || s[i] == '.') {
				i++
			}
		case isIdentStart(c):
			j := i
			for j < len(s) && isIdent(s[j]) {
				j++
			}
			word := s[i:j]
			k := skipSpace(s, j)
			next := byte(0)
			if k < len(s) {
				next = s[k]
			}
			switch {
			case labelList[word] && next == '(':
				for k < len(s) && s[k] != ')' {
					k++
				}
				j = k + 1
			case next == '(', aggregations[word], keywords[word], labelList[word]:
			default:
				add(&names, word)
			}
			i = j
		default:
			i++
		}
	}
	return names, patterns
}

func readString(s string, i int) (string, int) {
	q := s[i]
	var b strings.Builder
	i++
	for i < len(s) && s[i] != q {
		if s[i] == '\\' && q != '`' && i+1 < len(s) {
			i++
		}
		b.WriteByte(s[i])
		i++
	}
	return b.String(), i + 1
}

func skipSpace(s string, i int) int {
	for i < len(s) && (s[i] == ' ' || s[i] == '\t' || s[i] == '\n' || s[i] == '\r') {
		i++
	}
	return i
}

func isIdentStart(c byte) bool {
	return c == '_' || c == ':' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z'
}

func isIdent(c byte) bool { return isIdentStart(c) || c >= '0' && c <= '9' }

// Used is every metric name and name pattern the rules and the dashboard
// select, with where each is used; names defined by recording rules are
// returned apart (they are checked against the rules, not against Envoy).
type Used struct {
	Names     map[string][]string // exported name → where used
	Patterns  map[string][]string // __name__ regex → where used
	Recorded  map[string][]string // recording-rule name → where used
	Undefined map[string][]string // names with ':' that no recording rule defines
}

// UsedMetrics reads alerts.yaml and dashboard.json.
func UsedMetrics() (*Used, error) {
	rules, recorded, err := Rules()
	if err != nil {
		return nil, err
	}
	dash, err := Dashboard()
	if err != nil {
		return nil, err
	}
	u := &Used{Names: map[string][]string{}, Patterns: map[string][]string{},
		Recorded: map[string][]string{}, Undefined: map[string][]string{}}
	for _, e := range append(rules, dash...) {
		names, patterns := MetricNames(e.Text)
		for _, n := range names {
			switch {
			case recorded[n]:
				u.Recorded[n] = append(u.Recorded[n], e.From)
			case strings.Contains(n, ":"):
				u.Undefined[n] = append(u.Undefined[n], e.From)
			default:
				u.Names[n] = append(u.Names[n], e.From)
			}
		}
		for _, p := range patterns {
			u.Patterns[p] = append(u.Patterns[p], e.From)
		}
	}
	return u, nil
}

// Sorted returns a map's keys in order.
func Sorted(m map[string][]string) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

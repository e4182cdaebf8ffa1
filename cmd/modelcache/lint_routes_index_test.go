package main

import (
	"fmt"
	"math/rand"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"
)

// oldFirstCovering252 is firstCovering as it was before ab81906 (a scan of
// every Envoy route in order), the reference the indexed one must agree with.
func oldFirstCovering252(routes *yaml.Node, spec pathSpec, disabled func(*yaml.Node) bool) (int, *yaml.Node, bool) {
	passed := false
	for i, r := range routes.Content {
		m := get(r, "match")
		if m == nil || m.Kind != yaml.MappingNode {
			return 0, nil, false
		}
		kind, value, conditional := "", "", false
		fold, none := false, false
		for j := 0; j+1 < len(m.Content); j += 2 {
			switch k := protoField(m.Content[j].Value); k {
			case "prefix", "path", "path_separated_prefix":
				kind, value = k, scalar(m.Content[j+1])
			case "case_sensitive":
				var b bool
				fold = m.Content[j+1].Decode(&b) == nil && !b
			case "headers":
				if spec.methods != nil && noneOfMethods(m.Content[j+1], spec.methods) {
					none = true
				}
				fallthrough
			case "query_parameters", "dynamic_metadata", "filter_state":
				if !emptyList(m.Content[j+1]) {
					conditional = true
				}
			default:
				conditional = true
			}
		}
		if kind == "" {
			return 0, nil, false
		}
		if none {
			continue
		}
		if !conditional && covers(kind, value, fold, spec) {
			return i, r, passed
		}
		if overlaps(kind, value, fold, spec) {
			if !disabled(r) {
				return 0, nil, false
			}
			passed = true
		}
	}
	return 0, nil, false
}

func randPath252(rng *rand.Rand, maxLen int) string {
	const alpha = "/aAbB"
	n := rng.Intn(maxLen + 1)
	var b strings.Builder
	for i := 0; i < n; i++ {
		b.WriteByte(alpha[rng.Intn(len(alpha))])
	}
	return b.String()
}

var methods252 = []string{"GET", "POST", "PUT", "post"}

func randMatch252(rng *rand.Rand) string {
	var parts []string
	kinds := []string{"prefix", "path", "path_separated_prefix", "pathSeparatedPrefix", "safe_regex", "path_match_policy", ""}
	switch k := kinds[rng.Intn(len(kinds))]; k {
	case "safe_regex":
		if rng.Intn(4) == 0 { // rarely: many tables would end at once
			parts = append(parts, `safe_regex: {regex: ".*"}`)
		} else {
			parts = append(parts, fmt.Sprintf("prefix: %q", randPath252(rng, 4)))
		}
	case "path_match_policy":
		if rng.Intn(6) == 0 {
			parts = append(parts, `path_match_policy: {name: x}`)
		} else {
			parts = append(parts, fmt.Sprintf("path: %q", randPath252(rng, 4)))
		}
	case "":
		if rng.Intn(6) != 0 {
			parts = append(parts, fmt.Sprintf("prefix: %q", randPath252(rng, 3)))
		}
	default:
		parts = append(parts, fmt.Sprintf("%s: %q", k, randPath252(rng, 4)))
	}
	switch rng.Intn(5) {
	case 0:
		parts = append(parts, "case_sensitive: false")
	case 1:
		parts = append(parts, "caseSensitive: true")
	}
	switch rng.Intn(6) {
	case 0:
		parts = append(parts, fmt.Sprintf("headers: [{name: \":method\", string_match: {exact: %q}}]", methods252[rng.Intn(len(methods252))]))
	case 1:
		parts = append(parts, fmt.Sprintf("headers: [{name: \":method\", string_match: {exact: %q, ignore_case: true}}]", methods252[rng.Intn(len(methods252))]))
	case 2:
		parts = append(parts, "headers: []")
	case 3:
		parts = append(parts, fmt.Sprintf("headers: [{name: \":method\", exact_match: %q}, {name: x-a, present_match: true}]", methods252[rng.Intn(len(methods252))]))
	}
	switch rng.Intn(6) {
	case 0:
		parts = append(parts, "query_parameters: [{name: q}]")
	case 1:
		parts = append(parts, "query_parameters: []")
	case 2:
		parts = append(parts, "queryParameters: null")
	case 3:
		parts = append(parts, "runtime_fraction: {default_value: {numerator: 1}}")
	}
	rng.Shuffle(len(parts), func(i, j int) { parts[i], parts[j] = parts[j], parts[i] })
	return "{" + strings.Join(parts, ", ") + "}"
}

// Review Z252 (differential): the indexed firstCovering (ab81906) must
// judge every filter route exactly as the scan it replaced did, for any
// Envoy route table.
func TestFollowup252FirstCoveringAgreesWithTheScanItReplaced(t *testing.T) {
	diffs, found, passedN := 0, 0, 0
	defer func() { t.Logf("found %d passed %d", found, passedN) }()
	for seed := int64(0); seed < 4000 && diffs < 5; seed++ {
		rng := rand.New(rand.NewSource(seed))
		var b strings.Builder
		n := rng.Intn(16)
		if n == 0 {
			b.WriteString("[]")
		}
		for i := 0; i < n; i++ {
			switch rng.Intn(40) {
			case 0:
				b.WriteString("- {name: nomatch}\n")
				continue
			case 1:
				b.WriteString("- {match: null}\n")
				continue
			case 2:
				b.WriteString("- 7\n")
				continue
			}
			fmt.Fprintf(&b, "- match: %s\n", randMatch252(rng))
		}
		var doc yaml.Node
		if err := yaml.Unmarshal([]byte(b.String()), &doc); err != nil {
			t.Fatalf("seed %d: %v\n%s", seed, err, b.String())
		}
		routes := doc.Content[0]
		if routes.Kind != yaml.SequenceNode {
			continue
		}
		dis := map[*yaml.Node]bool{}
		for _, r := range routes.Content {
			dis[r] = rng.Intn(2) == 0
		}
		disabled := func(r *yaml.Node) bool { return dis[r] }
		ix := indexRoutes(routes)
		for s := 0; s < 6; s++ {
			spec := pathSpec{}
			p := randPath252(rng, 5)
			if rng.Intn(2) == 0 {
				spec.exact = p
				if p == "" {
					spec.exact = "/"
				}
			} else {
				spec.prefix = p
			}
			if rng.Intn(2) == 0 {
				spec.methods = []string{methods252[rng.Intn(len(methods252))]}
			}
			oi, or, op := oldFirstCovering252(routes, spec, disabled)
			ni, nr, np := firstCovering(ix, spec, disabled)
			if or != nil {
				found++
			}
			if op {
				passedN++
			}
			if oi != ni || or != nr || op != np {
				diffs++
				t.Errorf("seed %d: spec %+v: scan (%d, %v, %v), index (%d, %v, %v)\nroutes:\n%s",
					seed, spec, oi, or != nil, op, ni, nr != nil, np, b.String())
			}
		}
	}
}

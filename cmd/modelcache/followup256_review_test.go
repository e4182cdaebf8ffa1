package main

import (
	"strings"
	"testing"
)

// Review Z256: follow-up of 4a46f0d~1..HEAD.

// unknownLines are the lines of the "unknown field" findings of l.
func unknownLines256(l *linter) (lines []int, all []string) {
	for _, f := range l.findings {
		all = append(all, f.String())
		if strings.HasSuffix(f.msg, "unknown field") {
			lines = append(lines, f.line)
		}
	}
	return lines, all
}

// 3d3a8bf places an unknown member whose own name holds a dot at that
// member in JSON text (jsonLine reads the last name whole first), but a
// WasmPlugin's pluginConfig is placed through its YAML nodes by locate,
// which still follows "routes[0].coalesce.max_wait" segment by segment
// into the valid coalesce {max_wait} and lands on it (line 11), never
// trying the member named so, dots and all (line 12). The user is pointed
// at a valid member. Expected: line 12, as jsonLine does for the same
// configuration in JSON.
func TestFollowup256LintUnknownDottedNameInPluginConfigPlacedOnValidMember(t *testing.T) {
	y := "apiVersion: extensions.istio.io/v1alpha1\n" + // 1
		"kind: WasmPlugin\n" + // 2
		"metadata: {name: modelcache, namespace: ml}\n" + // 3
		"spec:\n" + // 4
		"  url: oci://registry.example.com/modelcache@sha256:00\n" + // 5
		"  pluginConfig:\n" + // 6
		"    routes:\n" + // 7
		"    - name: chat\n" + // 8
		"      kind: chat\n" + // 9
		"      path_prefix: /v1/chat/completions\n" + // 10
		"      coalesce: {max_wait: 1s}\n" + // 11
		"      coalesce.max_wait: 1\n" // 12
	l := lintBytes("wasmplugin.yaml", []byte(y))
	lines, all := unknownLines256(l)
	if len(lines) != 1 {
		t.Fatalf("premise: one unknown-field finding: %v", all)
	}
	if lines[0] != 12 {
		t.Errorf("unknown member \"coalesce.max_wait\" of routes[0] on line 12 of a WasmPlugin: placed on line %d "+
			"(the valid coalesce {max_wait}'s), want 12: %v", lines[0], all)
	}
}

// The same ambiguity with brackets: a member named as a flattened path
// ("routes[0].ttl", as Helm's --set or a values file flattened by a tool
// writes it) at the top of a bare JSON configuration is reported
// "routes[0].ttl: unknown field", and jsonLine cuts its name at "[" into
// routes, index 0, ttl: it places the finding on the valid routes[0]'s own
// ttl (line 2), never on the member that is unknown (line 3). Expected:
// line 3.
func TestFollowup256LintUnknownBracketedNamePlacedOnValidMember(t *testing.T) {
	js := []byte("{\"routes\":[{\"name\":\"chat\",\"kind\":\"chat\",\"path_prefix\":\"/v1/chat\",\n" + // 1
		"\"ttl\":\"1m\"}],\n" + // 2
		"\"routes[0].ttl\":\"2m\"}\n") // 3
	l := lintBytes("filter.json", js)
	lines, all := unknownLines256(l)
	if len(lines) != 1 {
		t.Fatalf("premise: one unknown-field finding: %v", all)
	}
	if lines[0] != 3 {
		t.Errorf("unknown member \"routes[0].ttl\" on line 3: placed on line %d (routes[0]'s valid ttl), want 3: %v", lines[0], all)
	}
}

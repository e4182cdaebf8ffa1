package main

import (
	"strings"
	"testing"
)

// The route opt-out check claims certainty ("it reports the second only
// when it is certain: the first route, in order, that an unconditional
// prefix/path match gives every request of a filter route", RATIONALE).
// It takes any headers / query_parameters / dynamic_metadata key in a
// route's match as a condition, even an empty list, which has no condition
// at all: Envoy's route with `headers: []` matches every request of its
// prefix. So a correct table — an earlier route that keeps the filter
// for /v1/chat, then an opt-out for /v1/chat — is reported as "those
// requests never reach the cache", and lint fails a config whose chat
// requests are all cached.
func TestLintRouteOptOutEmptyConditionListsAreUnconditional(t *testing.T) {
	const file = "envoy/envoy.yaml"
	const optOutMatch = `{path_separated_prefix: "/v1/models"}`
	for _, empty := range []string{"headers: []", "query_parameters: []", "dynamic_metadata: []"} {
		text := broken(t, file, optOutMatch, `{prefix: "/v1/chat"}`)
		if strings.Count(text, "              routes:\n") != 1 {
			t.Fatal("no routes list")
		}
		// An earlier route keeps the filter for every chat request.
		text = strings.Replace(text, "              routes:\n",
			"              routes:\n              - match: {prefix: \"/v1/chat/completions\", "+empty+"}\n                route: {cluster: model}\n", 1)
		l := lintBytes(file, []byte(text))
		if len(l.findings) != 0 || l.checked != 1 {
			t.Errorf("match with %s (no condition: Envoy sends every chat request to that route, filter enabled): checked %d, findings %v",
				empty, l.checked, l.findings)
		}
	}
}

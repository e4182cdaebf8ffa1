package main

import (
	"fmt"
	"strings"
	"testing"
	"time"
)

// istioCutNames walks every member of "routes", however many, even when
// ParseConfig has already refused the list ("lists N routes; at most
// 1024"), and each finding is placed by jsonLine, which re-reads the JSON
// from its start up to that route (gjson.GetBytes of "routes.<i>.name",
// then bytes.Count over js[:Index]): work quadratic in the file. A 1.2 MB
// bare configuration of 20,000 routes named "r<i>cache" takes ~11 s, 40,000
// routes (2.4 MB) ~43 s; a file at the 16 MiB read bound (~270,000 routes)
// keeps the linter busy for over half an hour. Hostile input must not take
// unbounded work: the check should stop at the routes ParseConfig accepts
// (or place its findings in one pass), so that such a file is linted in
// about the time ParseConfig takes.
func TestLintIstioCutNamesWorkIsNotQuadraticInRoutes(t *testing.T) {
	const n = 20000
	var b strings.Builder
	b.WriteString("{\"routes\":[\n")
	for i := 0; i < n; i++ {
		if i > 0 {
			b.WriteString(",\n")
		}
		fmt.Fprintf(&b, `{"name":"r%dcache","kind":"chat","path_prefix":"/p%d"}`, i, i)
	}
	b.WriteString("\n]}")
	done := make(chan *linter, 1)
	start := time.Now()
	go func() { done <- lintBytes("flood.json", []byte(b.String())) }()
	select {
	case l := <-done:
		if took := time.Since(start); took > 2*time.Second {
			t.Errorf("%d-byte configuration of %d routes: lint took %v (%d findings); want well under 2s (ParseConfig refuses the list at once)",
				b.Len(), n, took, len(l.findings))
		}
	case <-time.After(2 * time.Second):
		t.Fatalf("%d-byte configuration of %d routes: lint still running after 2s; want it bounded (ParseConfig refuses the list at once)", b.Len(), n)
	}
}

// When "routes" is an object instead of an array, ParseConfig reports
// "routes: must be a non-empty array", but istioCutNames iterates the
// object's members too and reports each one's name as "routes[0].name"
// (gjson's key is a string, its Int() 0): two different members both
// named as routes[0], a field that does not exist. Expected: no Istio
// route-name finding when routes is not an array (there are no routes),
// or at least none naming an index the configuration does not have.
func TestLintIstioCutNamesRoutesObjectNamesNoPhantomIndex(t *testing.T) {
	cfg := `{"routes":{
  "a":{"name":"llmcache","kind":"chat","path_prefix":"/a"},
  "b":{"name":"xcache","kind":"chat","path_prefix":"/b"}
}}`
	l := lintBytes("filter.json", []byte(cfg))
	var got []string
	for _, f := range l.findings {
		got = append(got, f.String())
	}
	all := strings.Join(got, "\n")
	if !strings.Contains(all, "routes: must be a non-empty array") {
		t.Fatalf("the routes error is not reported:\n%s", all)
	}
	if strings.Contains(all, "routes[0].name") {
		t.Errorf("routes is an object, yet findings name routes[0].name (an index it does not have):\n%s", all)
	}
}

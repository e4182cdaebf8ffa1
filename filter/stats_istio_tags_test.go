//go:build !wasip1

package main

import (
	"fmt"
	"regexp"
	"strings"
	"testing"
)

// istioStatsTags are the unanchored stats_tags every Istio sidecar's
// bootstrap carries (Istio's bootstrap template; the anchored ones, for
// cluster., listener., http., … stats, cannot match a wasm stat). Envoy
// applies each to every stat name, wasm stats with their "wasmcustom."
// prefix, and cuts the first group out of the name.
var istioStatsTags = map[string]string{
	"cache":                `(cache\.(.+?)\.)`,
	"component":            `(component\.(.+?)\.)`,
	"tag":                  `(tag\.(.+?);\.)`,
	"wasm_filter":          `(wasm_filter\.(.+?)\.)`,
	"response_code":        `(response_code=\.=(.+?);\.;)|_rq(_(\d{3}))$`,
	"response_code_class":  `_rq(_(\dxx))$`,
	"authz_enforce_result": `rbac(\.(allowed|denied))`,
	"authz_dry_run_action": `(\.istio_dry_run_(allow|deny)_)`,
	"authz_dry_run_result": `(\.shadow_(allowed|denied))`,
}

// No stat the module defines is renamed on an Istio sidecar: none matches
// one of Istio's stats tags (review Z183 found `modelcache.chat.requests.hit`
// exported there as `modelrequests_hit{cache="chat"}`, so the shipped
// rules and panels found nothing). Routes of every kind, with and without
// an SLO, and named like the process-wide stats' segments.
func TestStatNamesEscapeIstiosStatsTags(t *testing.T) {
	var rs []string
	for i, r := range []struct{ name, kind string }{{"chat", "chat"}, {"vm", "completions"}, {"emb", "embeddings"},
		{"rerank", "rerank"}, {"classify", "classify"}, {"j", "json"}, {"tagged", "chat"}} {
		rs = append(rs, fmt.Sprintf(`{"name":%q,"kind":%q,"path_prefix":"/r%d",
		  "freshness_slo":{"max_age":"10s","max_fraction":0.05,"window":"1m","min_samples":10},
		  "shadow":{"sample":0.1,"max_concurrent":4}}`, r.name, r.kind, i))
	}
	hs := newHarness(t, `{"upstream_cluster":"model","routes":[`+strings.Join(rs, ",")+`]}`)
	names := hs.h.MetricNames()
	if len(names) < 50 {
		t.Fatalf("only %d stats: %v", len(names), names)
	}
	for tag, expr := range istioStatsTags {
		re := regexp.MustCompile(expr)
		for _, name := range names {
			if m := re.FindString("wasmcustom." + name); m != "" {
				t.Errorf("%s matches Istio's stats tag %q (%q): a sidecar exports it renamed", name, tag, m)
			}
		}
	}
}

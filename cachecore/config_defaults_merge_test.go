package cachecore

import (
	"testing"
	"time"
)

// README, Configuration: defaults holds "policy fields applied to every
// route before its own". For the object-valued fields that means one
// thing or the other — a route's own object is applied over the defaults'
// (members it does not set are inherited), or it replaces it — but the
// same for all of them. Today coalesce and early_refresh merge while
// shadow and freshness_slo replace: defaults {"shadow": {"min_tenants": 1,
// "sample": 0.5}} (a single-tenant deployment) is silently lost on every
// route that sets shadow.compare, which then never invalidates (its
// min_tenants is back at 2) and samples 1 % instead of 50 %.
func TestRouteObjectsApplyOverDefaultsAlike(t *testing.T) {
	cfg := mustParse(t, `{"upstream_cluster":"m",
	  "defaults":{"coalesce":{"max_wait":"5s"},"early_refresh":{"enabled":true},
	              "shadow":{"sample":0.5,"min_tenants":1},"freshness_slo":{"max_age":"1h","min_samples":5}},
	  "routes":[{"name":"a","kind":"chat","path_prefix":"/a",
	             "coalesce":{"max_retries":5},"early_refresh":{"beta":2},
	             "shadow":{"compare":"exact"},"freshness_slo":{"max_age":"2h"}}]}`)
	r := cfg.Routes[0]
	inherited := map[string]bool{
		"coalesce (max_wait)":          r.Coalesce.MaxWait == 5*time.Second,
		"early_refresh (enabled)":      r.EarlyRefresh.Enabled,
		"shadow (sample, min_tenants)": r.Shadow.Sample == 0.5 && r.Shadow.MinTenants == 1,
		"freshness_slo (min_samples)":  r.FreshnessSLO.MinSamples == 5,
	}
	want := inherited["coalesce (max_wait)"]
	for field, got := range inherited {
		if got != want {
			t.Errorf("%s: the defaults' members not set on the route inherited = %v, but coalesce's = %v", field, got, want)
		}
	}
}

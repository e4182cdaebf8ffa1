package cachecore

import "strconv"

// Stats are Envoy stats (wasmcustom.modelcache…). The host defines every
// name at start so that each counter exists (at zero) in /stats and
// /stats/prometheus before the first request; Envoy maps a name to one
// process-wide stat, so all VMs add to the same counters.
//
// Layout, with <route> the route's name. No name holds "cache." (nor any
// other text Istio's stats tags look for), so an Istio sidecar exports
// them as they are: a route's stats start "modelcache_route.", the
// process-wide ones "modelcache." with no further dot.
//
//	modelcache_route.<route>.requests.<status>    hit, stale, collapsed, miss, bypass, … (AllStatuses)
//	modelcache_route.<route>.bypass.<reason>      why a request skipped the cache
//	modelcache_route.<route>.refused.<reason>     why a response was not stored
//	modelcache_route.<route>.refused_status.<code>  refused upstream statuses, per code
//	modelcache_route.<route>.stored               responses stored
//	modelcache_route.<route>.<event>              single-flight, background, items, shadow and
//	                                              SLO events: EventNames (events.go),
//	                                              only those Event.Applies to the route
//	modelcache_route.<route>.age_at_serve_ms      histogram, age of entries served
//	modelcache_route.<route>.slo.stale_rate_ppm   gauge, share of stale-served responses ×10⁶ (freshness_slo)
//	modelcache_route.<route>.slo.breached         gauge, 1 while the SLO is breached (freshness_slo)
//	modelcache.entries                            gauge, occupied slots (all routes)
//	modelcache.coalesce_waiting                   gauge, followers paused now
//	modelcache.evictions / expired_replaced / panics / internal_errors / purges
//	modelcache.model_version_changes
//	modelcache.hold_unsupported                   a VM found Envoy does not deliver bodies while headers are held
//	modelcache.vm_restarts                        VMs started after their build served traffic (vmlife.go)
//	modelcache.evictions_tenant_share             evictions of a tenant's own entry (store.max_tenant_share)
//	modelcache.vm_heap_allocs / vm_gc_cycles / vm_gc_yields  the Go runtime in the VMs (filter/runtimestats.go)

// RouteStatsPrefix starts every route stat's name; the shipped stats_tags
// entry turns the segment after it into the label modelcache_route.
const RouteStatsPrefix = "modelcache_route."

// RouteStatNames are the names of a route's stats; "" where a stat does
// not exist for the route.
type RouteStatNames struct {
	Prefix   string
	Requests []string // by Status
	Bypass   []string // by Reason (request-side reasons)
	Refused  []string // by Reason (response-side reasons)
	Events   [NumEvents]string
	Stored   string
	AgeMs    string // histogram
	// Gauges of a route with a freshness_slo.
	StaleRatePPM, SLOBreached string
}

// StatNames lays out route r's stats.
func StatNames(r *Route) RouteStatNames {
	p := RouteStatsPrefix + r.Name + "."
	n := RouteStatNames{Prefix: p, Stored: p + "stored", AgeMs: p + "age_at_serve_ms"}
	n.Requests = make([]string, len(AllStatuses())+1)
	for _, st := range AllStatuses() {
		n.Requests[st] = p + "requests." + st.String()
	}
	reasons := AllReasons()
	n.Bypass = make([]string, len(reasons)+1)
	n.Refused = make([]string, len(reasons)+1)
	for _, re := range reasons {
		if re.RequestSide() {
			n.Bypass[re] = p + "bypass." + re.String()
		}
		if re.ResponseSide() {
			n.Refused[re] = p + "refused." + re.String()
		}
	}
	for e := Event(0); e < NumEvents; e++ {
		if e.Applies(r) {
			n.Events[e] = p + EventNames[e]
		}
	}
	if r.FreshnessSLO != nil {
		n.StaleRatePPM, n.SLOBreached = p+"slo.stale_rate_ppm", p+"slo.breached"
	}
	return n
}

// RefusedStatusName is the counter of refused upstream status code, for
// a route whose stats begin with prefix (defined on first use).
func RefusedStatusName(prefix string, code int) string {
	return prefix + "refused_status." + strconv.Itoa(code)
}

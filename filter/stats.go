package main

import (
	"strconv"

	"github.com/modelcache/modelcache/cachecore"
	"github.com/modelcache/modelcache/filter/proxywasm"
)

// Stats are Envoy stats (wasmcustom.modelcache.…). Names are defined once
// per VM at start so that every counter exists (at zero) in /stats and
// /stats/prometheus before the first request; Envoy maps a name to one
// process-wide stat, so all VMs add to the same counters.
//
// Layout, with <route> the route's name:
//
//	modelcache.<route>.requests.<status>   hit, stale, collapsed, miss, bypass, … (cachecore.AllStatuses)
//	modelcache.<route>.bypass.<reason>     why a request skipped the cache
//	modelcache.<route>.refused.<reason>    why a response was not stored
//	modelcache.<route>.refused_status.<code>  refused upstream statuses, per code
//	modelcache.<route>.stored              responses stored
//	modelcache.<route>.<event>             single-flight, background, items, shadow and
//	                                       SLO events: cachecore.EventNames (events.go),
//	                                       only those Event.Applies to the route
//	modelcache.<route>.age_at_serve_ms     histogram, age of entries served
//	modelcache.<route>.slo.stale_rate_ppm  gauge, share of stale-served responses ×10⁶ (freshness_slo)
//	modelcache.<route>.slo.breached        gauge, 1 while the SLO is breached (freshness_slo)
//	modelcache.entries                     gauge, occupied slots (all routes)
//	modelcache.coalesce_waiting            gauge, followers paused now
//	modelcache.evictions / expired_replaced / panics / internal_errors / purges
//	modelcache.model_version_changes
//	modelcache.hold_unsupported            a VM found Envoy does not deliver bodies while headers are held
//	modelcache.vm_restarts                 VMs started after traffic (restarts.go)
//	modelcache.evictions_tenant_share      evictions of a tenant's own entry (store.max_tenant_share)
type stats struct {
	routes          map[string]*routeStats
	waiting         proxywasm.MetricGauge
	holdUnsupported ctr
	entries         proxywasm.MetricGauge
	evicted         ctr
	expired         ctr
	panics          ctr
	internal        ctr
	purges          ctr
	versions        ctr
	restarts        ctr
	ownShare        ctr
}

type routeStats struct {
	prefix        string
	requests      []ctr // by cachecore.Status
	bypass        []ctr // by cachecore.Reason
	refused       []ctr // by cachecore.Reason
	refusedStatus map[int]ctr
	stored        ctr
	ageAtServe    proxywasm.MetricHistogram
	events        [cachecore.NumEvents]ctr
	staleRatePPM  proxywasm.MetricGauge // share of responses older than the SLO's max_age, ×10⁶
	sloBreached   proxywasm.MetricGauge // 1 while the stale-serving SLO is breached
}

func (rs *routeStats) event(e cachecore.Event) { rs.events[e].Increment(1) }

func (rs *routeStats) items(e cachecore.Event, n int) {
	if n > 0 {
		rs.events[e].Increment(uint64(n))
	}
}

// ctr is a counter that may have failed to be defined (then it is a no-op;
// a missing stat must never break a request).
type ctr struct {
	id proxywasm.MetricCounter
	ok bool
}

func (c ctr) Increment(n uint64) {
	if c.ok {
		c.id.Increment(n)
	}
}

func counter(name string) ctr {
	c, err := proxywasm.DefineCounterMetric(name)
	if err != nil {
		proxywasm.LogWarn("cannot define stat " + name + ": " + err.Error())
		return ctr{}
	}
	return ctr{c, true}
}

func newStats(cfg *cachecore.Config) *stats {
	s := &stats{routes: map[string]*routeStats{}}
	var err error
	if s.entries, err = proxywasm.DefineGaugeMetric("modelcache.entries"); err != nil {
		proxywasm.LogWarn("cannot define stat modelcache.entries: " + err.Error())
	}
	s.evicted = counter("modelcache.evictions")
	s.expired = counter("modelcache.expired_replaced")
	s.panics = counter("modelcache.panics")
	s.internal = counter("modelcache.internal_errors")
	s.purges = counter("modelcache.purges")
	s.versions = counter("modelcache.model_version_changes")
	s.holdUnsupported = counter("modelcache.hold_unsupported")
	s.restarts = counter("modelcache.vm_restarts")
	s.ownShare = counter("modelcache.evictions_tenant_share")
	if s.waiting, err = proxywasm.DefineGaugeMetric("modelcache.coalesce_waiting"); err != nil {
		proxywasm.LogWarn("cannot define stat modelcache.coalesce_waiting: " + err.Error())
	}
	for _, r := range cfg.Routes {
		rs := &routeStats{prefix: "modelcache." + r.Name + ".", refusedStatus: map[int]ctr{}}
		rs.requests = make([]ctr, len(cachecore.AllStatuses())+1)
		for _, st := range cachecore.AllStatuses() {
			rs.requests[st] = counter(rs.prefix + "requests." + st.String())
		}
		reasons := cachecore.AllReasons()
		rs.bypass = make([]ctr, len(reasons)+1)
		rs.refused = make([]ctr, len(reasons)+1)
		for _, re := range reasons {
			if re.RequestSide() {
				rs.bypass[re] = counter(rs.prefix + "bypass." + re.String())
			}
			if re.ResponseSide() {
				rs.refused[re] = counter(rs.prefix + "refused." + re.String())
			}
		}
		rs.stored = counter(rs.prefix + "stored")
		for e := cachecore.Event(0); e < cachecore.NumEvents; e++ {
			if e.Applies(r) {
				rs.events[e] = counter(rs.prefix + cachecore.EventNames[e])
			}
		}
		if r.FreshnessSLO != nil {
			rs.staleRatePPM, _ = proxywasm.DefineGaugeMetric(rs.prefix + "slo.stale_rate_ppm")
			rs.sloBreached, _ = proxywasm.DefineGaugeMetric(rs.prefix + "slo.breached")
		}
		if rs.ageAtServe, err = proxywasm.DefineHistogramMetric(rs.prefix + "age_at_serve_ms"); err != nil {
			proxywasm.LogWarn("cannot define histogram: " + err.Error())
		}
		s.routes[r.Name] = rs
	}
	return s
}

func (s *stats) route(r *cachecore.Route) *routeStats { return s.routes[r.Name] }

func (rs *routeStats) request(st cachecore.Status) {
	if int(st) < len(rs.requests) {
		rs.requests[st].Increment(1)
	}
}

func (rs *routeStats) bypassed(r cachecore.Reason) {
	if int(r) < len(rs.bypass) {
		rs.bypass[r].Increment(1)
	}
}

func (rs *routeStats) refusal(r cachecore.Reason, status int) {
	if int(r) < len(rs.refused) {
		rs.refused[r].Increment(1)
	}
	if r == cachecore.ReasonStatus && status >= 100 && status < 1000 {
		c, ok := rs.refusedStatus[status]
		if !ok {
			c = counter(rs.prefix + "refused_status." + strconv.Itoa(status))
			rs.refusedStatus[status] = c
		}
		c.Increment(1)
	}
}

package main

import (
	"github.com/modelcache/modelcache/cachecore"
	"github.com/modelcache/modelcache/filter/proxywasm"
)

// The stats, defined at start with the names and layout of
// cachecore/statnames.go.
type stats struct {
	routes          map[string]*routeStats
	byIndex         []*routeStats // the same, by cachecore.Route.Index
	waiting         gauge
	holdUnsupported ctr
	entries         gauge
	evicted         ctr
	expired         ctr
	panics          ctr
	internal        ctr
	purges          ctr
	versions        ctr
	restarts        ctr
	ownShare        ctr
	runtime         *runtimeStats
}

type routeStats struct {
	route         *cachecore.Route
	prefix        string
	requests      []ctr // by cachecore.Status
	bypass        []ctr // by cachecore.Reason
	refused       []ctr // by cachecore.Reason
	refusedStatus map[int]ctr
	stored        ctr
	ageAtServe    proxywasm.MetricHistogram
	events        [cachecore.NumEvents]ctr
	staleRatePPM  gauge // share of responses older than the SLO's max_age, ×10⁶
	sloBreached   gauge // 1 while the stale-serving SLO is breached
}

func (rs *routeStats) event(e cachecore.Event) { rs.events[e].Increment(1) }

func (rs *routeStats) items(e cachecore.Event, n int) {
	if n > 0 {
		rs.events[e].Increment(uint64(n))
	}
}

// ctr and gauge are stats that may have failed to be defined (then they
// are no-ops; a missing stat must never break a request). An empty name
// (a stat the route does not have) defines nothing.
type ctr struct {
	id proxywasm.MetricCounter
	ok bool
}

type gauge struct {
	id proxywasm.MetricGauge
	ok bool
}

func (c ctr) Increment(n uint64) {
	if c.ok {
		c.id.Increment(n)
	}
}

func (g gauge) Set(v uint64) {
	if g.ok {
		g.id.Set(v)
	}
}

func (g gauge) Add(d int64) {
	if g.ok {
		g.id.Add(d)
	}
}

func counter(name string) ctr {
	if name == "" {
		return ctr{}
	}
	id, err := proxywasm.DefineCounterMetric(name)
	return ctr{id, defined(name, err)}
}

func newGauge(name string) gauge {
	if name == "" {
		return gauge{}
	}
	id, err := proxywasm.DefineGaugeMetric(name)
	return gauge{id, defined(name, err)}
}

func counters(names []string) []ctr {
	out := make([]ctr, len(names))
	for i, n := range names {
		out[i] = counter(n)
	}
	return out
}

func defined(name string, err error) bool {
	if err != nil {
		proxywasm.LogWarn("cannot define stat " + name + ": " + err.Error())
	}
	return err == nil
}

func newStats(cfg *cachecore.Config) *stats {
	s := &stats{routes: map[string]*routeStats{},
		entries: newGauge("modelcache.entries"), waiting: newGauge("modelcache.coalesce_waiting"),
		evicted: counter("modelcache.evictions"), expired: counter("modelcache.expired_replaced"),
		panics: counter("modelcache.panics"), internal: counter("modelcache.internal_errors"),
		purges: counter("modelcache.purges"), versions: counter("modelcache.model_version_changes"),
		holdUnsupported: counter("modelcache.hold_unsupported"), restarts: counter("modelcache.vm_restarts"),
		ownShare: counter("modelcache.evictions_tenant_share"), runtime: newRuntimeStats()}
	for _, r := range cfg.Routes {
		n := cachecore.StatNames(r)
		rs := &routeStats{route: r, prefix: n.Prefix, refusedStatus: map[int]ctr{}, requests: counters(n.Requests),
			bypass: counters(n.Bypass), refused: counters(n.Refused), stored: counter(n.Stored),
			staleRatePPM: newGauge(n.StaleRatePPM), sloBreached: newGauge(n.SLOBreached)}
		copy(rs.events[:], counters(n.Events[:]))
		var err error
		if rs.ageAtServe, err = proxywasm.DefineHistogramMetric(n.AgeMs); err != nil {
			proxywasm.LogWarn("cannot define histogram: " + err.Error())
		}
		s.routes[r.Name] = rs
		s.byIndex = append(s.byIndex, rs)
	}
	return s
}

// route is r's stats: by its index, which spares every request a map
// lookup by name and the map's code (RATIONALE.md, "The code a request
// runs"); by name for a route of another configuration.
func (s *stats) route(r *cachecore.Route) *routeStats {
	if i := r.Index; i >= 0 && i < len(s.byIndex) && s.byIndex[i].route == r {
		return s.byIndex[i]
	}
	return s.routes[r.Name]
}

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
		rs.refusedByStatus(status)
	}
}

// refusedByStatus counts a refusal for the status status. Out of line: a
// refusal for any other reason (no-store, say) runs none of its code (a
// map's look-up and assignment).
//
//go:noinline
func (rs *routeStats) refusedByStatus(status int) {
	c, ok := rs.refusedStatus[status]
	if !ok {
		c = counter(cachecore.RefusedStatusName(rs.prefix, status))
		rs.refusedStatus[status] = c
	}
	c.Increment(1)
}

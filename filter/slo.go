package main

import (
	"strconv"
	"time"

	"github.com/modelcache/modelcache/cachecore"
	"github.com/modelcache/modelcache/filter/proxywasm"
)

// sloFlushEvery is how often a VM adds its responses to the shared
// stale-serving window and evaluates the objective.
const sloFlushEvery = time.Second

// flushSLO runs on ticks: every VM adds its counts; the VM whose update
// crosses the objective logs it, once.
func (p *plugin) flushSLO(now time.Time) {
	if now.Sub(p.lastSLOFlush) < sloFlushEvery {
		return
	}
	p.lastSLOFlush = now
	for _, st := range p.cache.FlushSLO() {
		rs := p.stats.route(st.Route)
		if st.Measurable {
			rs.staleRatePPM.Set(uint64(st.Rate * 1e6))
		}
		if !st.Transition {
			continue
		}
		slo := st.Route.FreshnessSLO
		numbers := strconv.FormatUint(st.Stale, 10) + " of " + strconv.FormatUint(st.Total, 10) +
			" responses (" + strconv.FormatFloat(100*st.Rate, 'f', 1, 64) + "%) in the last " + slo.Window.String() +
			" were older than " + slo.MaxAge.String() + "; objective " + strconv.FormatFloat(100*slo.MaxFraction, 'f', 1, 64) + "%"
		if st.Breached {
			rs.sloBreached.Set(1)
			rs.event(cachecore.EvSLOBreach)
			proxywasm.LogWarn("stale-serving SLO breached on route " + st.Route.Name + " (namespace " + p.cfg.CacheName + "/" + st.Route.Name + "): " + numbers)
		} else {
			rs.sloBreached.Set(0)
			proxywasm.LogInfo("stale-serving SLO recovered on route " + st.Route.Name + " (namespace " + p.cfg.CacheName + "/" + st.Route.Name + "): " + numbers)
		}
	}
}

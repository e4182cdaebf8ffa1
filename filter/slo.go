package main

import (
	"time"

	"github.com/modelcache/modelcache/cachecore"
	"github.com/modelcache/modelcache/filter/proxywasm"
)

// sloFlushSlack: an idle VM ticks once per SLOFlushEvery, and the proxy's
// timers run on a coarser clock than the wall clock the flush is timed by;
// a tick that comes a little early still flushes, instead of a second
// later.
const sloFlushSlack = 50 * time.Millisecond

// flushSLO runs on ticks: every VM adds its counts to the shared
// stale-serving window; the VM whose update crosses the objective logs it,
// once.
func (p *plugin) flushSLO(now time.Time) {
	// A wall clock stepped back makes the time since the last flush
	// negative: that flush is due, not one an hour later.
	if d := now.Sub(p.lastSLOFlush); d >= 0 && d < cachecore.SLOFlushEvery-sloFlushSlack {
		return
	}
	p.lastSLOFlush = now
	for _, st := range p.cache.FlushSLO() {
		rs := p.stats.route(st.Route)
		// A breach that lapsed (a window empty before this flush) shows
		// the new window's rate, settled or not: the last settled one was
		// the lapsed breach's, measured a window or more ago (review Z136).
		// Else the rate that stands with the verdict, as measured by
		// whichever VM settled it last: a configuration a reload started
		// showed 0 beside a standing breach (review Z164).
		if st.Settled || st.Transition && !st.Breached {
			rs.staleRatePPM.Set(uint64(st.Rate * 1e6))
		} else {
			rs.staleRatePPM.Set(uint64(st.Standing * 1e6))
		}
		// The verdict is set at every flush, not only at a crossing: a
		// gauge an ended configuration zeroed (OnPluginDone) shows this
		// one's within a flush.
		rs.sloBreached.Set(b2u(st.Breached))
		switch {
		case !st.Transition:
		case st.Breached:
			rs.event(cachecore.EvSLOBreach)
			proxywasm.LogWarn(st.Message(p.cfg.CacheName))
		default:
			proxywasm.LogInfo(st.Message(p.cfg.CacheName))
		}
	}
}

// b2u is 1 for true, 0 for false.
func b2u(b bool) uint64 {
	if b {
		return 1
	}
	return 0
}

// clearSLOGauges zeroes the stale-serving gauges of this configuration's
// routes when it ends (OnPluginDone). A reload that drops a route's
// freshness_slo, or the route, leaves no configuration to set them: a
// breach the gauge showed kept the shipped alert firing until the proxy
// restarted (review Z135). A configuration that keeps the SLO sets them
// again at its next flush.
func (p *plugin) clearSLOGauges() {
	if p.cfg == nil {
		return
	}
	for _, r := range p.cfg.Routes {
		if r.FreshnessSLO == nil {
			continue
		}
		rs := p.stats.route(r)
		rs.sloBreached.Set(0)
		rs.staleRatePPM.Set(0)
	}
}

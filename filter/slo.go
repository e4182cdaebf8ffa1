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
		if st.Settled {
			rs.staleRatePPM.Set(uint64(st.Rate * 1e6))
		}
		switch {
		case !st.Transition:
		case st.Breached:
			rs.sloBreached.Set(1)
			rs.event(cachecore.EvSLOBreach)
			proxywasm.LogWarn(st.Message(p.cfg.CacheName))
		default:
			rs.sloBreached.Set(0)
			proxywasm.LogInfo(st.Message(p.cfg.CacheName))
		}
	}
}

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
			rs.event(evSLOBreach)
			proxywasm.LogWarn("stale-serving SLO breached on route " + st.Route.Name + " (namespace " + p.cfg.CacheName + "/" + st.Route.Name + "): " + numbers)
		} else {
			rs.sloBreached.Set(0)
			proxywasm.LogInfo("stale-serving SLO recovered on route " + st.Route.Name + " (namespace " + p.cfg.CacheName + "/" + st.Route.Name + "): " + numbers)
		}
	}
}

// shadow compares a cached answer just served with a fresh one, in the
// background: the client already has its answer and never sees this one.
func (p *plugin) shadow(req *cachecore.Request, headers [][2]string) {
	c := p.cache
	rs := p.stats.route(req.Route)
	req.KeepEntry() // compared when the fresh answer arrives
	slots := c.ShadowSlots(req.Route)
	timeout := p.cfg.Background.Timeout
	now := c.NowMs()
	slot, ok, err := slots.Acquire(now, now+timeout.Milliseconds())
	if err != nil || !ok {
		rs.event(evShadowSaturated)
		return
	}
	start := p.now()
	_, err = proxywasm.DispatchHttpCall(p.cfg.Cluster, replayHeaders(headers, p.cfg.Authority), req.Body, nil,
		uint32(timeout.Milliseconds()), func(numHeaders, bodySize, _ int) {
			_ = slots.Release(slot)
			if numHeaders == 0 {
				rs.event(evShadowError)
				return
			}
			hs, _ := proxywasm.GetHttpCallResponseHeaders()
			body, _ := proxywasm.GetHttpCallResponseBody(0, bodySize)
			sv, _ := headerValue(hs, ":status")
			status, _ := strconv.Atoi(sv)
			if !c.Comparable(req, status) {
				rs.event(evShadowError)
				return
			}
			agree := c.Agrees(req, hs, body)
			if agree {
				rs.event(evShadowAgree)
			} else {
				rs.event(evShadowDiverge)
			}
			res, err := c.ObserveShadow(req, !agree)
			if err == nil && res.Invalidated {
				rs.event(evInvalidation)
				proxywasm.LogWarn("route " + req.Route.Name + ": " + strconv.Itoa(int(res.Diverged)) + " of " +
					strconv.Itoa(int(res.Samples)) + " sampled answers of model " + strconv.Quote(req.Model) +
					" no longer match the model; its namespace is invalidated")
			}
			if agree {
				return
			}
			// Replace the diverged entry with the fresh answer, if admissible.
			c.PrepareShadowStore(req)
			st := c.AdmitAndStore(req, status, hs, body, cachecore.OriginUpstream, uint32(p.now().Sub(start).Milliseconds()))
			p.noteStore(req, st.Result)
		})
	if err != nil {
		_ = slots.Release(slot)
		rs.event(evShadowError)
		return
	}
	rs.event(evShadowStarted)
}

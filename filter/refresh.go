package main

import (
	"github.com/modelcache/modelcache/cachecore"
	"github.com/modelcache/modelcache/filter/proxywasm"
)

// perform carries out a protocol action that needs no request: counts,
// wake-ups, store notes, logs and calls.
func (p *plugin) perform(a *cachecore.Action) {
	switch a.Kind {
	case cachecore.ActCount:
		p.stats.route(a.Route).event(a.Event)
	case cachecore.ActWake:
		p.wake(a.VMs, a.Message)
	case cachecore.ActStored, cachecore.ActNoteStore:
		p.noteStore(a.Request, a.Stored.Result)
		if a.Kind == cachecore.ActNoteStore {
			return
		}
		rs := p.stats.route(a.Route)
		if a.Stored.Reason != cachecore.ReasonNone {
			rs.refusal(a.Stored.Reason, a.Status)
			return
		}
		rs.stored.Increment(1)
	case cachecore.ActLog:
		switch a.Level {
		case cachecore.LogWarn:
			proxywasm.LogWarn(string(a.Message))
		case cachecore.LogInfo:
			proxywasm.LogInfo(string(a.Message))
		default:
			proxywasm.LogDebug(string(a.Message))
		}
	case cachecore.ActDispatch:
		p.dispatch(a.Call)
	}
}

func (p *plugin) performAll(acts []cachecore.Action) {
	for i := range acts {
		p.perform(&acts[i])
	}
}

// dispatch makes an HTTP call for the protocol and continues it with the
// call's result (cachecore.Call).
func (p *plugin) dispatch(call *cachecore.Call) {
	_, err := proxywasm.DispatchHttpCall(call.Cluster, call.Headers, call.Body, nil,
		uint32(call.Timeout.Milliseconds()), func(numHeaders, bodySize, _ int) {
			res := cachecore.CallResult{Failed: numHeaders == 0}
			if !res.Failed {
				res.Headers, _ = proxywasm.GetHttpCallResponseHeaders()
				res.Body, _ = proxywasm.GetHttpCallResponseBody(0, bodySize)
				res.Status = cachecore.CallStatus(res.Headers)
			}
			p.performAll(call.Done(res))
		})
	if err != nil {
		p.performAll(call.Done(cachecore.CallResult{NotStarted: true}))
		return
	}
	if call.Route != nil {
		p.stats.route(call.Route).event(call.Started)
	}
}

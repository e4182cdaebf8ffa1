package main

import (
	"strconv"
	"strings"

	"github.com/modelcache/modelcache/cachecore"
	"github.com/modelcache/modelcache/filter/proxywasm"
)

// perform carries out a protocol action that needs no request (or acts on
// the current effective one): counts, wake-ups, store notes, logs, calls,
// and the rewriting of a held response. It reports whether a call was
// dispatched.
func (p *plugin) perform(a *cachecore.Action) bool {
	switch a.Kind {
	case cachecore.ActCount: // N items of Event, or one Event
		p.stats.route(a.Route).items(a.Event, max(a.N, 1))
	case cachecore.ActInternal:
		p.stats.internal.Increment(1)
	case cachecore.ActFreed:
		p.stats.entries.Add(-int64(a.N))
	case cachecore.ActSetHeader:
		if proxywasm.ReplaceHttpResponseHeader(a.Name, a.Value) != nil {
			p.stats.internal.Increment(1) // the answer goes without it (review Z242)
		}
	case cachecore.ActWake:
		p.wake(a.VMs, a.Message)
	case cachecore.ActStored, cachecore.ActNoteStore:
		p.noteStore(a.Request, a.Stored.Result)
		if a.Kind == cachecore.ActNoteStore {
			break
		}
		rs := p.stats.route(a.Route)
		if a.Stored.Reason != cachecore.ReasonNone {
			rs.refusal(a.Stored.Reason, a.Status)
			break
		}
		rs.stored.Increment(1)
	case cachecore.ActRefused:
		p.stats.route(a.Route).refusal(a.Reason, a.Status)
	case cachecore.ActReplaceResponse:
		p.replaceOrBreak(a)
	case cachecore.ActSendReplacement:
		hs := append(a.Headers[:len(a.Headers):len(a.Headers)], [2]string{"cache-status", string(a.Message)})
		if proxywasm.SendHttpResponse(uint32(a.Status), hs, a.Body, -1) != nil {
			p.replaceOrBreak(a)
		}
	case cachecore.ActRemoveRequestHeader:
		if proxywasm.RemoveHttpRequestHeader(a.Name) != nil {
			p.stats.internal.Increment(1)
			if a.Request != nil {
				a.Request.EncodingKept()
			}
		}
	case cachecore.ActRemoveResponseHeader:
		if proxywasm.RemoveHttpResponseHeader(a.Name) != nil {
			p.stats.internal.Increment(1)
		}
	case cachecore.ActSetProperty:
		if proxywasm.SetProperty([]string{a.Name}, a.Body) != nil {
			p.stats.internal.Increment(1)
		}
	case cachecore.ActResumeResponse:
		_ = proxywasm.ResumeHttpResponse()
	case cachecore.ActDropResponseBody:
		_ = proxywasm.ReplaceHttpResponseBody([]byte{})
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
		return p.dispatch(a.Call, p.performAll)
	}
	return false
}

// replaceResponse replaces the held response whole (ActReplaceResponse):
// none of the held headers describes the answer that takes its place. It
// reports whether the body could be written.
func replaceResponse(a *cachecore.Action) bool {
	replaceHeaders(a.Status, a.Headers)
	if proxywasm.ReplaceHttpResponseBody(a.Body) != nil {
		return false
	}
	_ = proxywasm.ReplaceHttpResponseHeader("content-length", strconv.Itoa(len(a.Body)))
	_ = proxywasm.ReplaceHttpResponseHeader("cache-status", string(a.Message))
	return true
}

// replaceOrBreak is replaceResponse for a batch asked for again whole,
// whose held answer was dropped as it came: a body the host refuses to
// write left the client an empty 200 (review Z102). It gets the batch's
// 502, as a merge the host refuses does (stream.replaceBody), counted as
// an internal fault.
//
//go:noinline
func (p *plugin) replaceOrBreak(a *cachecore.Action) {
	if !replaceResponse(a) && !p.sendBrokenBatch() {
		_ = proxywasm.ReplaceHttpResponseHeader("content-length", "0") // its body was dropped
	}
}

// sendBrokenBatch answers a batch whose answer the host would not write
// with the batch's 502 (a local reply; its status and headers in place of
// the held ones if the host refuses that too), counted as an internal
// fault. It reports whether the local reply was sent.
func (p *plugin) sendBrokenBatch() bool {
	p.stats.internal.Increment(1)
	status, hs, body := p.cache.BrokenBatchAnswer()
	if proxywasm.SendHttpResponse(uint32(status), hs, body, -1) != nil {
		replaceHeaders(status, hs)
		return false
	}
	return true
}

// replaceHeaders puts status and hs in place of the held response's
// headers (its pseudo-headers but :status kept; repeated ones stay
// repeated).
func replaceHeaders(status int, hs [][2]string) {
	if held, err := proxywasm.GetHttpResponseHeaders(); err == nil {
		for _, h := range held {
			if !strings.HasPrefix(h[0], ":") {
				_ = proxywasm.RemoveHttpResponseHeader(h[0])
			}
		}
	}
	_ = proxywasm.ReplaceHttpResponseHeader(":status", strconv.Itoa(status))
	for _, h := range hs {
		_ = proxywasm.AddHttpResponseHeader(h[0], h[1])
	}
}

func (p *plugin) performAll(acts []cachecore.Action) {
	for i := range acts {
		p.perform(&acts[i])
	}
}

// callResultHook, when set, runs as a call's result arrives for stream
// (0: none), its context effective. Only the crash-test module sets it
// (crashtest.go), to panic there.
var callResultHook func(stream uint32)

// dispatch makes an HTTP call for the protocol and continues it with the
// call's result (cachecore.Call), performed by then. It reports whether the
// call was made.
func (p *plugin) dispatch(call *cachecore.Call, then func([]cachecore.Action)) bool {
	_, err := proxywasm.DispatchHttpCall(call.Cluster, call.Headers, call.Body, nil,
		uint32(call.Timeout.Milliseconds()), func(numHeaders, bodySize, _ int) {
			gone := call.Stream != 0 && proxywasm.SetEffectiveContext(call.Stream) != nil
			if gone && call.Gone == nil {
				return // the request is gone
			}
			if callResultHook != nil {
				callResultHook(call.Stream)
			}
			res := cachecore.CallResult{Failed: numHeaders == 0}
			if !res.Failed {
				var herr, berr error
				res.Headers, herr = proxywasm.GetHttpCallResponseHeaders()
				if call.MaxBody > 0 && bodySize > call.MaxBody {
					bodySize = call.MaxBody + 1 // still too large for the protocol
				}
				res.Body, berr = proxywasm.GetHttpCallResponseBody(0, bodySize)
				res.Status = cachecore.CallStatus(res.Headers)
				if herr != nil || berr != nil && bodySize > 0 {
					// An answer the host would not hand over is no answer:
					// read as status 0, or as an empty body, it was passed
					// on as a batch's whole answer (review Z110).
					p.stats.internal.Increment(1)
					res = cachecore.CallResult{Failed: true, Unread: true}
				}
			}
			if gone {
				p.performAll(call.Gone(res))
				return
			}
			then(call.Done(res))
		})
	if err != nil {
		then(call.Done(cachecore.CallResult{NotStarted: true}))
		return false
	}
	if call.Route != nil {
		p.stats.route(call.Route).event(call.Started)
	}
	return true
}

// noteStore records a store's side effects in the stats and the log.
func (p *plugin) noteStore(req *cachecore.Request, res cachecore.StoreResult) {
	if res.VersionChanged {
		p.stats.versions.Increment(1)
		proxywasm.LogInfo(res.VersionNote(req))
	}
	filled, evicted, expired, own := res.Occupancy()
	p.stats.entries.Add(int64(filled))
	p.stats.evicted.Increment(uint64(evicted))
	p.stats.expired.Increment(uint64(expired))
	p.stats.ownShare.Increment(uint64(own))
}

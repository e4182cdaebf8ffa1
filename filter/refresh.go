package main

import (
	"strconv"
	"strings"

	"github.com/modelcache/modelcache/cachecore"
	"github.com/modelcache/modelcache/filter/proxywasm"
)

// refresh re-asks the model for an entry that was just served stale
// (stale-while-revalidate) or chosen for early refresh (XFetch), without
// making the client wait: an HTTP call from this VM's root context to the
// configured cluster, replaying the request that was served. The answer goes
// through the same admission as any response; if it fails, the old entry
// stays. A refresh is single-flight (it takes the key's lease, never
// following anyone) and bounded process-wide (background.max_concurrent).
func (p *plugin) refresh(req *cachecore.Request, headers [][2]string) {
	c := p.cache
	rs := p.stats.route(req.Route)
	p.refreshN++
	token := 0x80000000 | p.refreshN // lease owner id: never a stream's context id
	timeout := p.cfg.Background.Timeout
	if !c.TryLead(req, p.vmID, token, timeout) {
		rs.event(evRefreshJoined) // someone is already getting a fresh answer
		return
	}
	now := c.NowMs()
	slot, ok, err := c.Background().Acquire(now, now+timeout.Milliseconds())
	if err != nil || !ok {
		rs.event(evRefreshSaturated)
		c.Finish(req, p.vmID, token, cachecore.OutcomeFailed)
		return
	}
	start := p.now()
	done := func(o cachecore.Outcome) {
		_ = c.Background().Release(slot)
		p.wake(c.Finish(req, p.vmID, token, o), req.LeaseFP(), o, 0)
	}
	_, err = proxywasm.DispatchHttpCall(p.cfg.Cluster, replayHeaders(headers, p.cfg.Authority), req.Body, nil,
		uint32(timeout.Milliseconds()), func(numHeaders, bodySize, _ int) {
			if numHeaders == 0 {
				rs.event(evRefreshFailed)
				done(cachecore.OutcomeFailed)
				return
			}
			hs, _ := proxywasm.GetHttpCallResponseHeaders()
			body, _ := proxywasm.GetHttpCallResponseBody(0, bodySize)
			sv, _ := headerValue(hs, ":status")
			status, _ := strconv.Atoi(sv)
			st := c.AdmitAndStore(req, status, hs, body, cachecore.OriginUpstream, uint32(p.now().Sub(start).Milliseconds()))
			p.noteStore(req, st.Result)
			reason := st.Reason
			if reason != cachecore.ReasonNone {
				rs.event(evRefreshRefused)
				rs.refusal(reason, status)
				done(cachecore.OutcomeOf(reason, status))
				return
			}
			rs.event(evRefreshStored)
			rs.stored.Increment(1)
			done(cachecore.OutcomeStored)
		})
	if err != nil {
		proxywasm.LogWarn("background refresh to cluster " + p.cfg.Cluster + " failed to start: " + err.Error())
		rs.event(evRefreshFailed)
		done(cachecore.OutcomeFailed)
		return
	}
	rs.event(evRefreshStarted)
}

// replayHeaders turns a client request's headers into an HTTP call's:
// the same method, path, identity and content headers; no hop-by-hop or
// length headers (Envoy sets them), no accept-encoding (the cache needs an
// uncompressed answer), and no cache directives from the original client.
func replayHeaders(in [][2]string, authority string) [][2]string {
	out := make([][2]string, 0, len(in))
	for _, kv := range in {
		name := kv[0]
		switch {
		case name == ":authority" && authority != "":
			out = append(out, [2]string{":authority", authority})
			continue
		case name == ":method", name == ":path", name == ":authority":
		case strings.HasPrefix(name, ":"):
			continue // :scheme and friends are the host's business
		case name == "content-length", name == "transfer-encoding", name == "connection",
			name == "keep-alive", name == "te", name == "upgrade", name == "accept-encoding",
			name == "cache-control", name == "pragma", name == "expect":
			continue
		case strings.HasPrefix(name, "x-envoy-"), strings.HasPrefix(name, "x-forwarded-"), name == "x-request-id":
			continue
		}
		out = append(out, kv)
	}
	return out
}

package main

import (
	"strconv"

	"github.com/modelcache/modelcache/cachecore"
	"github.com/modelcache/modelcache/filter/proxywasm"
)

// refetch handles an unusable answer to a partial embeddings batch (wrong
// item count, bad vectors, or vectors whose dimension disagrees with the
// cached ones — a model that drifted under the same name and version). The
// answer covers only the missing items, so it cannot reach the client.
// The model's generation is moved on (nothing cached for it is served
// again), and the original, whole request is sent again from the root
// context; its answer replaces the held response. Without an upstream
// cluster to do that, the client gets a 502 that says to retry, which then
// misses entirely. It reports whether the response must stay held until
// the refetch answers.
func (s *stream) refetch(reason cachecore.Reason) (async bool) {
	c := s.p.cache
	s.rs.refusal(reason, s.respStatus)
	s.finishLead(cachecore.OutcomeFailed)
	if reason == cachecore.ReasonDimensions {
		s.rs.event(cachecore.EvModelDrift)
		_ = c.PurgeModel(s.req.Route.Name, s.req.Model)
		proxywasm.LogWarn("route " + s.req.Route.Name + ": model " + strconv.Quote(s.req.Model) +
			" returned vectors of another dimension than those cached; its entries are invalidated")
	}
	s.rs.event(cachecore.EvRefetch)
	s.phase = phaseServed // the response is now ours to finish
	s.fl.Refetched(reason, 0)
	if s.p.cfg.Cluster == "" {
		s.replaceResponse(502, inconsistentBatch)
		return false
	}
	id := s.id
	_, err := proxywasm.DispatchHttpCall(s.p.cfg.Cluster, cachecore.ReplayHeaders(s.reqHeaders, s.p.cfg.Authority), s.req.Body, nil,
		uint32(s.p.cfg.Background.Timeout.Milliseconds()), func(numHeaders, bodySize, _ int) {
			if proxywasm.SetEffectiveContext(id) != nil {
				return // the client is gone
			}
			status, body := 502, []byte(`{"error":{"message":"the model did not answer","type":"upstream_error"}}`)
			if numHeaders > 0 {
				hs, _ := proxywasm.GetHttpCallResponseHeaders()
				st, _ := headerValue(hs, ":status")
				status, _ = strconv.Atoi(st)
				body, _ = proxywasm.GetHttpCallResponseBody(0, bodySize)
			}
			s.fl.Refetched(reason, status)
			s.replaceResponse(uint32(status), body)
			_ = proxywasm.ResumeHttpResponse()
		})
	if err != nil {
		s.replaceResponse(502, inconsistentBatch)
		return false
	}
	return true
}

var inconsistentBatch = []byte(`{"error":{"message":"the model answered a partial embeddings batch inconsistently; retry the request","type":"upstream_error"}}`)

// replaceResponse rewrites the held response (headers not yet sent).
func (s *stream) replaceResponse(status uint32, body []byte) {
	_ = proxywasm.ReplaceHttpResponseHeader(":status", strconv.Itoa(int(status)))
	_ = proxywasm.ReplaceHttpResponseHeader("content-type", "application/json")
	_ = proxywasm.ReplaceHttpResponseBody(body)
	_ = proxywasm.ReplaceHttpResponseHeader("content-length", strconv.Itoa(len(body)))
	_ = proxywasm.ReplaceHttpResponseHeader("cache-status", string(s.fl.CacheStatusHeader(nil)))
}

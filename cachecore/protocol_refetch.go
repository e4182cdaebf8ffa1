package cachecore

import (
	"strconv"
	"strings"
)

// modelDrifted invalidates the entries of req's model, whose vectors came
// in another dimension under the same name and version: every cached one
// goes (L1, and L2 by its actions), counted and logged.
func (c *Cache) modelDrifted(req *Request) []Action {
	r := req.Route
	if st, err := c.loadModel(r.Name, req.Model); err == nil && st.Found && st.Gen != req.keyState.Gen {
		// Judged against items of a generation the model has left (an
		// invalidation, this drift's own among them, came while the batch
		// was out): the new generation's vectors are not purged again, nor
		// the drift counted twice (review Z235).
		return nil
	}
	_ = c.PurgeModel(r.Name, req.Model)
	acts := c.l2InvalidateModel(r.Name, req.Model, nil)
	return append(acts, Action{Kind: ActCount, Event: EvModelDrift, Route: r},
		Action{Kind: ActLog, Level: LogWarn, Message: []byte("route " + r.Name + ": model " + strconv.Quote(req.Model) +
			" returned vectors of another dimension than those cached; its entries are invalidated")})
}

// Refetch handles an unusable answer to a partial embeddings batch (wrong
// item count, bad vectors, or vectors whose dimension disagrees with the
// cached ones — a model that drifted under the same name and version). The
// answer covers only the missing items, so it cannot reach the client. The
// model's generation is moved on (nothing cached for it is served again)
// and the original, whole request is sent again as a Call bound to this
// request; its answer replaces the held response, headers and all
// (ActReplaceResponse, then ActResumeResponse). Without an upstream
// cluster, or if the call cannot start, the client gets a 502 that says to
// retry, which then misses entirely. headers are the client's request
// headers.
func (f *Flight) Refetch(reason Reason, headers [][2]string) []Action {
	c, req, r := f.c, f.req, f.req.Route
	acts := []Action{{Kind: ActRefused, Route: r, Reason: reason, Status: f.respStatus}}
	f.reset()
	// Followers learn what a retry would meet: an answer the cache does
	// not store (no-store, too large) marks the key hit-for-miss, as for
	// any request; a broken one is a failure.
	f.finishLead(leadEnd(reason, f.respStatus))
	acts = append(acts, f.actions()...)
	// Drift only against cached items (admission's answerDrifted): a batch
	// rewritten only for its repeats (none cached) whose answer lacks the
	// dimension asked for is a server that ignores it, not a model that
	// changed, and a client could make it at will to purge every tenant's
	// vectors (review Z57).
	if reason == ReasonDimensions && req.batch != nil && req.batch.answerDrifted {
		acts = append(acts, c.modelDrifted(req)...)
	}
	acts = append(acts, Action{Kind: ActCount, Event: EvRefetch, Route: r})
	// Every item the client gets is now the whole batch's: none comes
	// from the cache (counted so when the request ends).
	if req.batch != nil {
		req.batch.fetchAll()
	}
	f.Refetched(reason, 0)
	inconsistent := func() Action {
		return Action{Kind: ActReplaceResponse, Status: 502, Headers: jsonHeaders, Body: inconsistentBatch, Message: f.CacheStatusHeader(nil)}
	}
	if c.cfg.Cluster == "" {
		return append(acts, inconsistent())
	}
	call := c.replay(req, headers, 0)
	call.Route, call.Stream = nil, f.id
	limit := refetchLimit(req)
	call.MaxBody = limit
	call.Done = func(res CallResult) []Action {
		f.refetching = false
		if res.NotStarted {
			return []Action{inconsistent()}
		}
		status, hs, body := 502, jsonHeaders, []byte(`{"error":{"message":"the model did not answer","type":"upstream_error"}}`)
		// fwd-status is the model's answer's status (RFC 9211), none when
		// it did not answer; a 502 of the cache's own in its place is not
		// the model's (review Z103).
		upstream := res.Status
		enc, _ := header(res.Headers, "content-encoding")
		switch {
		case res.Failed:
			upstream = 0
		case len(res.Body) > limit:
			body = refetchTooLarge
		case !identityEncoding(enc):
			// Asked for without accept-encoding (ReplayHeaders), it came
			// encoded anyway: it cannot be passed on as the JSON its
			// replacement says it is.
			body = refetchEncoded
		default:
			status, hs, body = res.Status, passedHeaders(res.Headers), res.Body
		}
		if envoyCallReply(res) {
			upstream = 0 // Envoy's own reply, passed on: no model's status (review Z227)
		}
		f.Refetched(reason, upstream)
		var noted []Action
		if req.Route.ModelVersion.Enabled() && !res.Failed {
			// The whole batch's answer is passed on, not stored: a version
			// it reports switches the model as any answer's does (review
			// Z279: a refetch that reached v2 left v1's items served).
			noted = c.switchNoted(req, Stored{Result: c.noteVersion(req, ReasonNone, res.Status, res.Headers, res.Body)})
		}
		kind := ActReplaceResponse
		if len(body) > req.Route.MaxEntryBytes {
			// Put in the held response's buffer, a whole batch larger than
			// Envoy's buffer limit was its 500 (review Z100).
			kind = ActSendReplacement
		}
		return append(noted, Action{Kind: kind, Status: status, Headers: hs, Body: body, Message: f.CacheStatusHeader(nil)},
			Action{Kind: ActResumeResponse})
	}
	f.refetching = true
	return append(acts, Action{Kind: ActDispatch, Call: call})
}

// passedHeaders are the headers of an answer passed on in place of the
// held one (a batch asked for again): those any answer carries to the
// client (its content-type and charset, retry-after, its model version),
// not those of its framing (content-length is the host's, for the body it
// sends; hop-by-hop ones), not Cache-Status (the filter's), and not an
// upstream's x-modelcache- headers (dropForged).
func passedHeaders(hs [][2]string) [][2]string {
	out := make([][2]string, 0, len(hs))
	for _, h := range hs {
		if name := strings.ToLower(h[0]); name == "age" || replayableHeader(name) {
			out = append(out, [2]string{name, h[1]})
		}
	}
	return out
}

// jsonHeaders are the headers of a reply of the cache's own that replaces
// a held answer.
var jsonHeaders = [][2]string{{"content-type", "application/json"}}

// refetchLimit bounds the answer to a batch asked for again, which is
// read into the VM whole to replace the held one: each of its items is
// an entry of at most max_entry_bytes once stored, and one more of that
// leaves room for the list around them (its usage, each item's index);
// no answer is larger than maxRefetchAnswer.
func refetchLimit(req *Request) int {
	n := 1
	if req.batch != nil {
		n = max(n, len(req.batch.items))
	}
	return min(req.Route.MaxEntryBytes*(n+1), maxRefetchAnswer)
}

// maxRefetchAnswer is the largest max_entry_bytes a route may set.
const maxRefetchAnswer = 64 << 20

var refetchTooLarge = []byte(`{"error":{"message":"the model's answer to the whole batch is larger than the cache can pass on; send fewer items","type":"upstream_error"}}`)

var refetchEncoded = []byte(`{"error":{"message":"the model answered the whole batch encoded, though asked for it unencoded","type":"upstream_error"}}`)

var inconsistentBatch = []byte(`{"error":{"message":"the model answered a partial embeddings batch inconsistently; retry the request","type":"upstream_error"}}`)

// brokenBatch is the body of BrokenBatchAnswer.
var brokenBatch = []byte(`{"error":{"message":"the cache failed on a partial embeddings batch; retry the request","type":"server_error"}}`)

// BrokenBatchAnswer is what the client of a rewritten batch (a partial hit:
// only the missing items went upstream) gets if a fault breaks its stream
// and the host fails it open: the upstream's answer covers the missing
// items alone, numbered from 0, and may not pass as it came.
func (c *Cache) BrokenBatchAnswer() (status int, headers [][2]string, body []byte) {
	if c.brokenBatchHeaders == nil {
		cs := CacheStatus{Status: StatusMiss, Reason: ReasonInternal}
		c.brokenBatchHeaders = [][2]string{{"content-type", "application/json"}, {"cache-status", string(cs.AppendHeader(nil, c.cfg.CacheName))}}
	}
	return 502, c.brokenBatchHeaders, brokenBatch
}

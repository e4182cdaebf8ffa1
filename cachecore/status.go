package cachecore

// Status is what the cache did with one request. One enum drives the
// Cache-Status header, the stats and the logs, so they can never disagree.
type Status uint8

const (
	// StatusNone: no route matched; the filter stayed out of the way.
	StatusNone Status = iota
	// StatusHit: answered from a fresh entry.
	StatusHit
	// StatusStale: answered from a stale entry (stale-while-revalidate or
	// the client's max-stale), a background refresh may run.
	StatusStale
	// StatusStaleIfError: the upstream failed and a stale entry answered.
	StatusStaleIfError
	// StatusCollapsed: waited for another request's upstream call (single
	// flight) and was answered with its result.
	StatusCollapsed
	// StatusMiss: looked up, not found, forwarded upstream.
	StatusMiss
	// StatusPartial: some items of an embeddings batch came from the
	// cache; the rest went upstream.
	StatusPartial
	// StatusRevalidate: the client asked for no-cache: forwarded without a
	// lookup; the answer may still be stored.
	StatusRevalidate
	// StatusBypass: the cache could not or must not take part; forwarded
	// untouched. Reason says why.
	StatusBypass
	// StatusUnavailable: only-if-cached and nothing cached: 504.
	StatusUnavailable
	// StatusLeaderFailed: waited for other requests' upstream calls, which
	// all failed (coalesce.max_retries+1 times); answered with the failure.
	StatusLeaderFailed
	numStatus
)

var statusNames = [numStatus]string{"none", "hit", "stale", "stale_if_error", "collapsed", "miss", "partial", "revalidate", "bypass", "unavailable", "leader_failed"}

// String is the name used in stats and logs.
func (s Status) String() string {
	if s < numStatus {
		return statusNames[s]
	}
	return "unknown"
}

// Reason explains a bypass, or why a response was not stored.
type Reason uint8

const (
	ReasonNone Reason = iota
	// Request-side bypasses.
	ReasonNoIdentity      // no tenant identity on a non-shared route
	ReasonRequestNoStore  // Cache-Control: no-store from the client
	ReasonNoBody          // nothing to key
	ReasonBodyTooLarge    // over max_request_bytes
	ReasonMalformedJSON   // request or response body is not JSON
	ReasonDuplicateKey    // request JSON with a duplicate member name
	ReasonTooDeep         // JSON nested beyond MaxJSONDepth (request, answer, stream event)
	ReasonNumberRange     // request JSON number with an absurd exponent
	ReasonHitForMiss      // key recently found uncacheable
	ReasonInternal        // an internal fault: fail open
	ReasonStoreContention // too many concurrent writers to one bucket
	ReasonHoldUnsupported // Envoy does not deliver bodies while headers are held
	ReasonEmbeddingInput  // an embeddings request whose input the cache cannot split
	// Response-side refusals (not stored).
	ReasonStatus          // status not in the route's list
	ReasonUpstreamReset   // Envoy answered: upstream reset / refused
	ReasonUpstreamTimeout // Envoy answered: upstream timeout
	ReasonLocalReply      // some other Envoy-generated answer
	ReasonNoStore         // response Cache-Control: no-store
	ReasonPrivate         // response Cache-Control: private
	ReasonNotJSON         // content-type is not JSON (an answer's, or a request's: then also Triton's binary tensors)
	ReasonEncoded         // content-encoding is not identity (an answer's, or a request's)
	ReasonTooLarge        // entry over max_entry_bytes
	ReasonFinishReason    // finish_reason not allowed
	ReasonEmptyContent    // empty completion
	ReasonValidation      // a validation rule failed
	ReasonLowConfidence   // score below the lowest tier
	ReasonNoConfidence    // score missing or not a number
	ReasonTruncated       // the response never finished (reset, client abort)
	ReasonInvalidated     // the model was purged while the request was in flight
	ReasonNoVersion       // a versioned route's answer reports no version
	ReasonItemCount       // embeddings: not one vector per item sent
	ReasonDimensions      // embeddings: a vector of another dimension
	ReasonBadVector       // embeddings: not numbers, not finite, bad base64
	ReasonErrorPayload    // a 200 answer that reports an error (error event, "error" member)
	ReasonModelTableFull  // a new model's model-table slot holds only live records
	ReasonRerankInput     // request side: a rerank request whose documents or top_n the cache cannot read
	ReasonRerankResults   // rerank: results missing, not an array of objects, or not one per document (top_n)
	ReasonRerankIndex     // rerank: an index not an integer, outside the documents, or repeated
	ReasonRerankScore     // rerank: a relevance_score missing, not a number or not finite
	ReasonVary            // response Vary names a request header the key does not hold, or is *
	ReasonStreamMode      // an event stream for a request that did not ask for one, or JSON for one that did
	ReasonBadShape        // a completion or stream chunk of the wrong shape (not an object, choices not objects, a tool call naming no function)
	ReasonRerankDocument  // rerank: a result's document is not the one the client sent at its index
	ReasonAged            // the answer's Age (a cache upstream) used up the route's ttl
	// Request side, though after the response-side ones: reasons are
	// only ever appended.
	ReasonKeyHeaderTooLarge // a key_headers header with a line over 256 bytes, or more than 8 lines
	ReasonEarlyAnswer       // decided late: the model answered the headers before the body was decided
	// Response side again.
	ReasonForeignShape // an answer (or stream chunk) without the kind's member: another API's shape (choices, data)
	// Request side again.
	ReasonBodyLate // header_hold "hold": no body within HoldGrace of the held headers, not (yet) a proven stall
	ReasonNoInput  // a classify or json request that carries none of its route's key_fields but the model
	numReason
)

var reasonNames = [numReason]string{
	"", "no_identity", "request_no_store", "no_body", "body_too_large", "malformed_json",
	"duplicate_key", "too_deep", "number_range", "hit_for_miss", "internal",
	"store_contention", "hold_unsupported", "embedding_input",
	"status", "upstream_reset", "upstream_timeout", "local_reply", "no_store", "private",
	"not_json", "encoded", "too_large", "finish_reason", "empty_content", "validation",
	"low_confidence", "no_confidence", "truncated", "invalidated", "no_version",
	"item_count", "dimensions", "bad_vector", "error_payload", "model_table_full",
	"rerank_input", "rerank_results", "rerank_index", "rerank_score", "vary",
	"stream_mode", "bad_shape", "rerank_document", "aged",
	"key_header_too_large", "early_answer", "foreign_shape", "body_late", "no_input",
}

// RequestSide reports whether r is a reason to bypass a request (decided
// before it goes upstream) rather than to refuse its answer.
func (r Reason) RequestSide() bool {
	if r == ReasonHitForMiss || r == ReasonStoreContention {
		// No request is bypassed for them (a key marked hit-for-miss is
		// coalesce.hit_for_miss; contention refuses a store): their
		// bypass counters stayed at zero (review Z244).
		return false
	}
	return r > ReasonNone && r < ReasonStatus || r == ReasonRerankInput || r == ReasonKeyHeaderTooLarge || r == ReasonNotJSON ||
		r == ReasonBodyLate || r == ReasonEncoded || r == ReasonNoInput
}

// ResponseSide reports whether r can refuse an answer: every reason that is
// not request-side, and the few that judge bytes or the store on both sides.
func (r Reason) ResponseSide() bool {
	switch r {
	case ReasonNone, ReasonHitForMiss:
		return false
	case ReasonMalformedJSON, ReasonTooDeep, ReasonDuplicateKey, ReasonInternal, ReasonStoreContention, ReasonNotJSON, ReasonEncoded:
		return true
	}
	return !r.RequestSide()
}

// String is the reason's name in stats (snake_case).
func (r Reason) String() string {
	if r < numReason {
		return reasonNames[r]
	}
	return "unknown"
}

// Detail is the reason as a Cache-Status detail token (kebab-case).
func (r Reason) Detail() string {
	s := []byte(r.String())
	for i, c := range s {
		if c == '_' {
			s[i] = '-'
		}
	}
	return string(s)
}

// AllReasons lists every reason, for defining stats up front.
func AllReasons() []Reason {
	out := make([]Reason, 0, numReason-1)
	for r := ReasonNone + 1; r < numReason; r++ {
		out = append(out, r)
	}
	return out
}

// AllStatuses lists every status but StatusNone.
func AllStatuses() []Status {
	out := make([]Status, 0, numStatus-1)
	for s := StatusNone + 1; s < numStatus; s++ {
		out = append(out, s)
	}
	return out
}

// CacheStatus is everything the Cache-Status header (RFC 9211) reports.
type CacheStatus struct {
	Status    Status
	Reason    Reason
	FwdStatus int  // upstream status when forwarded
	Refused   int  // the status refused (detail=status-N), when not FwdStatus: a refetched batch's
	Stored    bool // the response was stored
	TTL       int64
	HasTTL    bool
	L2        bool // answered from the L2 tier
	// Request: a miss the client's directives made, with a fresh entry at
	// hand (max-age, min-fresh): fwd=request, not fwd=miss (review Z148).
	Request bool
}

// AppendHeader renders the header value, e.g.
//
//	modelcache; hit; ttl=287
//	modelcache; fwd=miss; fwd-status=200; stored; ttl=300
//	modelcache; fwd=bypass; detail=no-identity
func (cs CacheStatus) AppendHeader(dst []byte, name string) []byte {
	dst = append(dst, name...)
	switch cs.Status {
	case StatusHit:
		dst = append(dst, "; hit"...)
	case StatusStale:
		dst = append(dst, "; hit; fwd=stale"...)
	case StatusStaleIfError:
		dst = append(dst, "; hit; fwd=stale"...)
	case StatusCollapsed:
		dst = append(dst, "; fwd=miss; collapsed"...)
	case StatusMiss:
		if cs.Request {
			dst = append(dst, "; fwd=request"...)
		} else {
			dst = append(dst, "; fwd=miss"...)
		}
	case StatusPartial:
		dst = append(dst, "; fwd=partial"...)
	case StatusRevalidate:
		dst = append(dst, "; fwd=request"...)
	case StatusBypass:
		dst = append(dst, "; fwd=bypass"...)
	case StatusUnavailable:
		dst = append(dst, "; fwd=miss; detail=only-if-cached"...)
		return dst
	case StatusLeaderFailed:
		dst = append(dst, "; fwd=miss; collapsed"...)
		if cs.FwdStatus != 0 {
			dst = append(dst, "; fwd-status="...)
			dst = appendInt(dst, int64(cs.FwdStatus))
		}
		return append(dst, "; detail=leader-failed"...)
	}
	if cs.FwdStatus != 0 {
		dst = append(dst, "; fwd-status="...)
		dst = appendInt(dst, int64(cs.FwdStatus))
	}
	if cs.Stored {
		dst = append(dst, "; stored"...)
	}
	if cs.HasTTL {
		dst = append(dst, "; ttl="...)
		dst = appendInt(dst, cs.TTL)
	}
	switch {
	case cs.Status == StatusStaleIfError:
		dst = append(dst, "; detail=stale-if-error"...)
	case cs.L2:
		dst = append(dst, "; detail=l2"...)
	case cs.Reason != ReasonNone:
		dst = append(dst, "; detail="...)
		dst = append(dst, cs.Reason.Detail()...)
		if cs.Reason == ReasonStatus && (cs.FwdStatus != 0 || cs.Refused != 0) {
			st := cs.FwdStatus
			if cs.Refused != 0 {
				st = cs.Refused
			}
			dst = append(dst, '-')
			dst = appendInt(dst, int64(st))
		}
	}
	return dst
}

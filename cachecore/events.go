package cachecore

// Event is a single-flight or background event, counted per route
// (modelcache_route.<route>.<EventNames[e]>).
type Event uint8

const (
	EvLeader             Event = iota // led its key upstream
	EvFollower                        // paused behind a leader
	EvPromoted                        // a follower became the next leader
	EvLeaderFailed                    // a leader finished without storing
	EvTimeout                         // a follower waited max_wait and went upstream
	EvRetriesExhausted                // a follower sat through max_retries failures and went upstream
	EvHitForMiss                      // key known uncacheable: no waiting
	EvCollision                       // lease slot held by another key: no coalescing
	EvTickWakeup                      // a follower noticed its leader was done on a tick (lost or late message)
	EvRefreshStarted                  // background refresh dispatched
	EvRefreshJoined                   // refresh not needed: one is already running
	EvRefreshSaturated                // refresh skipped: background.max_concurrent reached
	EvRefreshStored                   // refresh stored a fresh answer
	EvRefreshRefused                  // refresh answer not admitted: stale entry kept
	EvRefreshFailed                   // refresh call failed: stale entry kept
	EvRefreshUncacheable              // refresh skipped: the key is marked hit-for-miss (its answers were found uncacheable)
	EvItemsHit                        // embeddings: items answered from cache
	EvItemsStored                     // embeddings: items stored
	EvItemsRefused                    // embeddings: items not stored
	EvRefetch                         // embeddings: unusable partial answer, whole batch fetched again
	EvModelDrift                      // embeddings: vectors of another dimension under the same model version
	EvShadowStarted                   // shadow comparison dispatched
	EvShadowAgree                     // cached and fresh answers agree
	EvShadowDiverge                   // they do not
	EvShadowError                     // the shadow call failed (not counted as either)
	EvShadowSaturated                 // skipped: shadow.max_concurrent reached
	EvInvalidation                    // divergence invalidated the namespace
	EvSLOBreach                       // the stale-serving rate crossed the objective
	EvL2Hit                           // answered from L2
	EvL2Miss                          // L2 had no usable entry
	EvL2Error                         // L2 unreachable or answering garbage
	EvL2Timeout                       // L2 did not answer within l2.timeout
	EvL2BreakerOpen                   // L2 skipped: its breaker is open
	EvL2LeaseWon                      // took the cross-proxy lease: this proxy asks the model
	EvL2LeaseLost                     // another proxy leads: wait for its answer in L2
	EvL2Written                       // an answer written to L2
	EvL2WriteError                    // an L2 write failed
	EvL2WriteSkipped                  // an L2 write not sent: the VM's writes in flight hold maxL2Writing bytes
	EvL2Rejected                      // an L2 value not served: corrupt, truncated or another key's

	// The semantic cache (semantic*.go).
	EvSemanticHit          // semantic: answered by a near match
	EvSemanticMiss         // semantic: embedded and searched, no usable near match
	EvVetoNumbers          // semantic: a near match vetoed: numbers, dates or units differ
	EvVetoNegation         // semantic: vetoed: negation or polarity differs
	EvVetoEntities         // semantic: vetoed: names, rare content words or their order, question words, persons, tense or quantifiers differ
	EvSemanticUnconfirmed  // semantic: a near match not yet confirmed (exact hits only)
	EvSemanticIndexed      // semantic: a stored answer's turn was indexed
	EvSemanticIndexFull    // semantic: not indexed: max_entries reached
	EvSemanticEmbedError   // semantic: the embeddings call failed or answered garbage (exact miss)
	EvSemanticEmbedTimeout // semantic: the embeddings call passed its deadline (exact miss)
	EvSemanticDemoted      // semantic: a shadow comparison of a near hit diverged: the entry leaves the index
	EvSemanticConfirmed    // semantic: an entry became reachable by near matches
	EvSemanticModelChange  // semantic: the embeddings server reports another model or dimension
	EvSemanticVectorCached // semantic: the turn's vector was cached (this VM's or shared): no call
	EvSemanticModelsFull   // semantic: a model past the 64 namespaces a route's index may make: not searched nor indexed
	EvSemanticBreakerOpen  // semantic: the embeddings call skipped: its breaker is open (exact miss)

	// Late decisions (stream.go, hold.go).
	EvLateDecision // decided on the body after the headers went upstream (late decision)
	EvLateAborted  // answered locally (hit, collapsed, 504) after its upstream request was opened
	EvLateFollower // a follower waited with its upstream request open
	EvLateRescued  // headers held without a body in sight: let go, decided late
	NumEvents
)

// EventNames are the stat names of the events, after modelcache_route.<route>.
var EventNames = [NumEvents]string{
	"coalesce.leaders", "coalesce.followers", "coalesce.promoted", "coalesce.leader_failures",
	"coalesce.timeouts", "coalesce.retries_exhausted", "coalesce.hit_for_miss", "coalesce.collisions",
	"coalesce.tick_wakeups",
	"background.started", "background.joined", "background.saturated", "background.stored",
	"background.refused", "background.failed", "background.uncacheable",
	"items.hit", "items.stored", "items.refused", "items.refetch", "model_drift",
	"shadow.started", "shadow.agree", "shadow.diverge", "shadow.errors", "shadow.saturated", "shadow.invalidations",
	"slo.breaches",
	"l2.hit", "l2.miss", "l2.error", "l2.timeout", "l2.breaker_open", "l2.lease_won", "l2.lease_lost",
	"l2.written", "l2.write_error", "l2.write_skipped", "l2.rejected",
	"semantic.hits", "semantic.misses", "semantic.veto.numbers", "semantic.veto.negation", "semantic.veto.entities",
	"semantic.unconfirmed", "semantic.indexed", "semantic.index_full", "semantic.embed_error", "semantic.embed_timeout",
	"semantic.demoted", "semantic.confirmed", "semantic.model_changes", "semantic.vector_cached",
	"semantic.models_full", "semantic.breaker_open",
	"late.decisions", "late.upstream_aborted", "late.followers_held", "late.rescued",
}

// Applies reports whether e can happen on route r; it keeps /stats free of counters a route can never move.
func (e Event) Applies(r *Route) bool {
	switch e {
	case EvItemsHit, EvItemsStored, EvItemsRefused, EvRefetch, EvModelDrift:
		return r.PerItem()
	case EvShadowStarted, EvShadowAgree, EvShadowDiverge, EvShadowError, EvShadowSaturated, EvInvalidation:
		return r.Shadow != nil
	case EvSLOBreach:
		return r.FreshnessSLO != nil
	case EvL2Hit, EvL2Miss, EvL2Error, EvL2Timeout, EvL2BreakerOpen, EvL2LeaseWon, EvL2LeaseLost,
		EvL2Written, EvL2WriteError, EvL2WriteSkipped, EvL2Rejected:
		return r.L2
	}
	if e >= EvSemanticHit && e <= EvSemanticBreakerOpen {
		return r.Semantic != nil
	}
	return true
}

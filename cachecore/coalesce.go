package cachecore

import (
	"encoding/binary"
	"strconv"
	"strings"
	"time"
)

// Outcome is how a leader's (or a background refresh's) upstream call ended,
// as the followers need to know it.
type Outcome uint8

const (
	// OutcomeStored: the answer is in the cache.
	OutcomeStored Outcome = iota
	// OutcomeFailed: no answer, for a reason that may pass; a follower leads next.
	OutcomeFailed
	// OutcomeUncacheable: the answer may never be stored (for a while): every
	// follower goes upstream, and the key skips coalescing (hit-for-miss).
	OutcomeUncacheable
	// OutcomeAbandoned: the leader's client went away (before or during
	// the answer), or the cache could not keep a good answer (an internal
	// fault, a contended store): either says nothing about the upstream,
	// so a follower leads next, and it is not counted among the leader
	// failures a follower sits through (coalesce.max_retries).
	OutcomeAbandoned
)

var outcomeNames = [...]string{"stored", "failed", "uncacheable", "abandoned"}

func (o Outcome) String() string { return outcomeNames[o] }

// OutcomeOf classifies why a response was not stored (ReasonNone: stored).
// Lasting reasons are those a retry of the same request would meet again.
func OutcomeOf(r Reason, status int) Outcome {
	switch {
	case r == ReasonNone:
		return OutcomeStored
	case r < numReason && lastingReasons[r]:
		return OutcomeUncacheable
	case r == ReasonInternal || r == ReasonStoreContention || r == ReasonInvalidated:
		// The cache's fault, or a purge or a version switch during the
		// lead, not the model's: followers must not run out of retries
		// (and answer 502) on a model that answers.
		return OutcomeAbandoned
	case r == ReasonEarlyAnswer && status < 300:
		// The model answered a late request's headers, before its body,
		// with an answer that is no failure: it says nothing of what the
		// whole request gets, and a follower leads next.
		return OutcomeAbandoned
	case r == ReasonStatus || r == ReasonEarlyAnswer:
		// An early answer is judged by its status as any other (review
		// Z113): a 401 to an API key checked on the headers is the
		// model's answer, which its followers' own requests meet too, not
		// a failure that served them stale-if-error or a 502.
		// A failure that may pass is a 5xx, a 408 or a 429. Any other status
		// the route does not cache is the model's answer: the same request
		// gets the same 4xx, and a 202, a 204 or a redirect is no failure
		// (not for stale-if-error, not for the followers).
		if status < 500 && status != 408 && status != 429 {
			return OutcomeUncacheable
		}
	}
	return OutcomeFailed
}

// lastingReasons are the refusals a retry of the same request meets again
// (OutcomeOf): a table, one load, where a switch over them is a search.
var lastingReasons = [numReason]bool{
	ReasonNoStore: true, ReasonPrivate: true, ReasonVary: true, ReasonNotJSON: true, ReasonEncoded: true,
	ReasonTooLarge: true, ReasonTooDeep: true, ReasonFinishReason: true, ReasonLowConfidence: true,
	ReasonNoConfidence: true, ReasonModelTableFull: true, ReasonStreamMode: true, ReasonAged: true,
	ReasonForeignShape: true,
	// A result's document is the model's echo of the client's: one it
	// cannot be compared with (a document without text, such as Cohere's
	// objects ranked by rank_fields or an image) is refused on every
	// answer, and a server that echoes another text (truncated,
	// normalised) does so on every answer too. As a failure that may pass,
	// a burst was led one by one into the same answer, and the followers
	// left after max_retries+1 leaders answered 502 leader-failed (review
	// Z104).
	ReasonRerankDocument: true,
	// A server that ignores n (Ollama's OpenAI API answers one choice)
	// or never sends the route's version header answers every call so
	// (review Z130).
	ReasonBadShape: true, ReasonNoVersion: true,
	// A reranker that ignores top_n, counts from 1 or scores null does so
	// on every answer: as a failure that may pass, a burst was led one by
	// one into it and answered 502 (review Z139).
	ReasonRerankResults: true, ReasonRerankIndex: true, ReasonRerankScore: true,
}

// refusedWhole marks a leader's status (leadEnd) whose answer the model
// sent whole, with a success status, and the cache refused for what it
// says (a validation rule, malformed JSON, an empty completion, vectors
// of another dimension or count, a member twice). Another
// try may differ (a sampled completion), so followers still lead one by
// one; but once max_retries+1 leaders met it, the model answers that
// request so, and they go upstream for its answer instead of a 502
// (Flight.wake; review Z139). Above any status in the wake-up's 16 bits.
const refusedWhole = 0x8000

// envoyReplied marks a failed lead's status in its wake-up as Envoy's own
// reply (a reset, a timeout, no healthy upstream), not the model's: its
// followers answered leader-failed pass the status on without naming it
// the model's (fwd-status), as the leader's own answer does (review
// Z225). A follower of the module before it reads the marked status as
// none and answers 502.
const envoyReplied = 0x4000

// leadEnd is how a lead that ended refused for r (status: the model's)
// ends: its outcome (OutcomeOf), and the status it passes its followers,
// marked refusedWhole where r refused a whole success as a failure that
// may pass. Every such refusal is, but the model's own failures (an
// answer it never finished, an error it reports, a reset or timeout after
// its headers): the first list named three reasons, and a server that
// ignores dimensions or embeds one input of a batch still led its
// followers into a 502 (review Z145). One OutcomeOf a lead: the marking
// is out of line, code only a failed lead runs.
func leadEnd(r Reason, status int) (Outcome, int) {
	o := OutcomeOf(r, status)
	if o != OutcomeFailed {
		return o, status
	}
	return o, wholeStatus(r, status)
}

// wholeStatus is leadEnd's status of a failed lead.
//
//go:noinline
func wholeStatus(r Reason, status int) int {
	if status < 200 || status >= 300 {
		return status
	}
	switch r {
	case ReasonTruncated, ReasonErrorPayload, ReasonUpstreamReset, ReasonUpstreamTimeout, ReasonLocalReply:
		return status
	}
	return status | refusedWhole
}

// Leases returns the lease table (one per Cache, i.e. per VM).
func (c *Cache) Leases() *LeaseTable { return c.leases }

// Join is called on a miss: the request tries to lead its key. A leader
// must then look again (leaderLookup) before going upstream (the previous
// leader may have stored the answer since the miss) and Finish when done.
func (c *Cache) Join(req *Request, vm uint64, stream uint32) Role {
	now := c.nowMs()
	// The read ahead belongs to the lookup just before: a later Join (a
	// follower's, on a tick) has none.
	ahead := req.aheadRead
	req.aheadRead = 0
	until := now + c.leaseLife(req.Route)
	c.joinedUntil = until
	role, unchanged, err := c.leases.acquire(req.LeaseFP(), req.tenantTag(), vm, stream, now, until, true, ahead)
	if err != nil {
		return RoleCollision // fail open: go upstream uncoalesced
	}
	req.leadUnchanged = unchanged
	return role
}

// lead makes the request its key's leader. It reports true when the answer
// is in the cache already — the previous leader stored it between our miss
// and our lease — and the lead is over before it began. fresh: the
// request's latest lookup read the model's state, and it has not waited
// for a leader since (leaderLookup, below).
//
// Its look before going upstream, leaderLookup, is relookup, or less where
// nothing can have changed. It is written in lead, not in a function of
// its own: every lead makes it, and a call of its own would cost a frame
// and its arguments on each.
//
// The model's state: a lead whose request read a record of its model in
// its latest lookup, and has not waited for a leader since (fresh: the
// request's own miss, after its lookup and any semantic step; a woken
// follower whose look again read the record), keeps that state instead of
// reading the record again. If the state moved on in between (a purge, a
// new version, a record displaced and made again, a shadow invalidation),
// the lead may miss an answer stored under the new state, which costs at
// most one more upstream call. What it can find under the old state was
// stored by a writer that read that state, as its own lookup could have
// found it, for a request that began before the state moved on. Its own
// answer is refused at store time if the generation moved (prepareStore),
// and stored under the version it reports otherwise. A lookup that found
// no record (a new model) reads it again: the leader before may have just
// made it, storing the answer this lead is looking for. So does a follower
// promoted by its tick, which waited since its last look. A record read
// again unchanged and still empty (a model whose answers are never
// stored, say) holds nothing to look for: the lead goes upstream.
//
// The entries: an embeddings batch reads its lease slot ahead, before its
// first look into a bucket's index (lookupItems), and so does a single
// request that expects to miss (Table.lookupListed: its bucket last seen
// listing only other keys); if it then won the lease with that very read,
// no leader of its key finished in between — a leader stores before it
// releases, and its release writes the slot — so whatever an earlier
// leader stored was stored before the request's own index reads, and
// those found it. This spares a batch of new items one index read per
// bucket, and such a single request its look again. (Writers outside
// this lease — another batch that shares items (a lease covers a whole
// batch), a partial batch, a request that found no lease way, a leader
// past its deadline whose lease was dropped — are not seen by either look
// in every interleaving; each costs
// at most one more upstream call, never a wrong answer.)
func (f *Flight) lead(e Event, fresh bool) bool {
	f.leader = true
	f.leaseEnd = f.c.joinedUntil // as Join took it, just before: the clock is not read again
	f.count(e)
	c, req := f.c, f.req
	if fresh && req.state.Found && !req.state.empty {
		return f.leadServed(c.lookAgain(req, req.state))
	}
	// Nothing stored yet at the first look: read it again.
	st, err := c.keyingState(req.Route.Name, req.Model)
	if err != nil {
		return false // go upstream
	}
	// st.is(&req.state) with st empty: an empty state is always a found
	// one (only a record reads as empty).
	if st.empty && st.is(&req.state) &&
		req.Status == StatusMiss && req.Entry == nil && req.batch == nil {
		// Still the record the request's look read, and still with no
		// answer stored under it: a look under it reads no entry
		// (Lookup), so it would find nothing and leave the request as it
		// is, a miss going upstream.
		return false
	}
	return f.leadServed(c.lookAgain(req, st))
}

// leadServed ends a lead whose look again found the answer (d: Serve).
func (f *Flight) leadServed(d Decision) bool {
	if d != Serve {
		return false
	}
	f.finishLead(OutcomeStored, 0)
	return true
}

// lookAgain is leaderLookup's look (in lead) under the model state st: none
// for a request (a batch, or a single request that expected to miss) that
// won its lease with its read ahead, under the state its lookup read. Out
// of line: a lead whose model record is still empty (an
// uncacheable model's, say) looks for nothing and runs none of its code.
//
// Another single request whose own look found nothing under st asks the
// bucket's index first (Table.unlisted): in a full table its preferred way holds
// another key's entry, copied whole to learn nothing. An index that does
// not list the key rules it out, as a batch's index-first look does.
//
//go:noinline
func (c *Cache) lookAgain(req *Request, st ModelState) Decision {
	if req.leadUnchanged {
		req.leadUnchanged = false
		if st.is(&req.state) {
			return Forward
		}
	} else if req.batch == nil && st.is(&req.state) && req.Entry == nil && req.Status == StatusMiss {
		if out, err := c.table.unlisted(req.FP, c.nowMs()); out && err == nil {
			return Forward // as Lookup leaves a request that finds nothing
		}
	}
	return c.lookupAs(req, st)
}

// tryLead takes the lease for a background refresh of req's key, never
// joining as a follower. It reports whether this caller leads.
func (c *Cache) tryLead(req *Request, vm uint64, stream uint32, timeout time.Duration) bool {
	return c.tryLeadAs(req, vm, stream, timeout) == RoleLeader
}

// tryLeadAs is tryLead, saying the role it found (RoleCollision for an
// error: no lease either way).
func (c *Cache) tryLeadAs(req *Request, vm uint64, stream uint32, timeout time.Duration) Role {
	now := c.nowMs()
	role, err := c.leases.Acquire(req.LeaseFP(), req.tenantTag(), vm, stream, now, now+timeout.Milliseconds(), false)
	if err != nil {
		return RoleCollision
	}
	return role
}

// Finish ends a leadership with the outcome and returns the workers whose
// followers must be woken. (A request's own lead ends in Flight.finishLead,
// which makes this call itself.)
func (c *Cache) Finish(req *Request, vm uint64, stream uint32, o Outcome) []uint64 {
	now := c.nowMs()
	waiters, _ := c.leases.Release(req.LeaseFP(), vm, stream, now, hitForMissUntil(req, o, now))
	return waiters
}

// hitForMissUntil is when the hit-for-miss mark a lead that ended with o
// leaves lasts until (0: none).
func hitForMissUntil(req *Request, o Outcome, now int64) int64 {
	if o == OutcomeUncacheable && req.Route.Coalesce.HitForMiss > 0 {
		return now + req.Route.Coalesce.HitForMiss.Milliseconds()
	}
	return 0
}

// finishWake ends by's lead of req's key with o (Finish) and returns the
// wake-up for the workers of its waiters, if any (status: the leader's
// response status on a failure, 0 if none).
func (c *Cache) finishWake(req *Request, by LeaseHolder, o Outcome, status int) (Action, bool) {
	vms := c.Finish(req, by.VM, by.Stream, o)
	if len(vms) == 0 {
		return Action{}, false
	}
	return wakeAction(req, vms, by, o, status), true
}

// wakeAction is the wake-up of the workers vms, waiters of by's lead of
// req's key that ended with o (finishWake).
func wakeAction(req *Request, vms []uint64, by LeaseHolder, o Outcome, status int) Action {
	return Action{Kind: ActWake, VMs: vms, Message: encodeWake(req.LeaseFP(), o, status, by)}
}

// tenantTag names the request's tenant in its lease, for the per-tenant
// share of a lease slot; 0 (no tenant: a shared route) is not bounded.
func (req *Request) tenantTag() uint64 {
	return binary.LittleEndian.Uint64(req.tenant[:8])
}

// stillLed reports whether req's key is still led by a live leader and,
// when it is not, what its lease says of how the lead ended, for a
// follower whose leader's wake-up has not come (Flight.Tick): a live
// hit-for-miss mark, an answer that may not be stored
// (OutcomeUncacheable); a lease held past its deadline, a leader whose VM
// stopped renewing it (OutcomeAbandoned: no upstream failure); anything
// else, unknown (OutcomeFailed, which the wake-up may still correct).
func (c *Cache) stillLed(req *Request) (bool, Outcome) {
	l, err := c.leases.Peek(req.LeaseFP())
	if err != nil {
		return false, OutcomeFailed
	}
	live := l.live(c.nowMs())
	switch {
	case live && l.State == LeaseHeld:
		return true, 0
	case live && l.State == LeaseHitForMiss:
		return false, OutcomeUncacheable
	case l.State == LeaseHeld:
		return false, OutcomeAbandoned
	}
	return false, OutcomeFailed
}

// relookup looks the key up again, for a follower woken by its leader: the
// model state may have been created or moved on since the first lookup, so
// it is reloaded and the key rebuilt. read reports whether the state was
// read (a failed read looks nothing up).
func (c *Cache) relookup(req *Request) (_ Decision, read bool) {
	st, err := c.keyingState(req.Route.Name, req.Model)
	if err != nil {
		return Forward, false
	}
	return c.lookupAs(req, st), true
}

// lookupAs is relookup with the model state st read already.
func (c *Cache) lookupAs(req *Request, st ModelState) Decision {
	req.state = st
	c.rekey(req)
	req.Entry = nil
	req.Status = StatusMiss
	return c.Lookup(req)
}

// followerStep is what a paused follower does when its key's leader failed.
type followerStep uint8

const (
	// stepRetry: try to lead (or keep following the follower that now does).
	stepRetry followerStep = iota
	// stepFail: answer the client with the failure (leaderFailedResponse).
	stepFail
	// stepForward: go upstream uncoalesced.
	stepForward
)

// afterLeaderFailure decides a follower's next step once its key's
// leaders have failed failures times: it sits through max_retries of them;
// past that the route's on_retries_exhausted decides. (Stale-if-error is
// checked before.)
func (c *Cache) afterLeaderFailure(req *Request, failures int) followerStep {
	switch {
	case failures <= req.Route.Coalesce.MaxRetries:
		return stepRetry
	case req.Route.Coalesce.OnRetriesExhausted == ExhaustedForward:
		return stepForward
	}
	return stepFail
}

// retryAfterShift places a failed lead's Retry-After seconds above its
// status (and refusedWhole) in the status a wake-up carries.
const retryAfterShift = 16

// retryAfterOf is the Retry-After of a 429 or 5xx answer in whole seconds,
// 1 to 65535 (more, however many digits, is 65535); 0 for none, another
// status, an HTTP-date or anything else.
// A follower answered with the failure passes it on (leaderFailedResponse):
// without it a burst's clients all retry at once.
//
//go:noinline
func retryAfterOf(status int, headers [][2]string) uint16 {
	if status != 429 && (status < 500 || status > 599) {
		return 0
	}
	v, ok := header(headers, "retry-after")
	if !ok {
		return 0
	}
	v = strings.Trim(v, " \t")
	if v == "" {
		return 0
	}
	n := 0
	for i := 0; i < len(v); i++ {
		if v[i] < '0' || v[i] > '9' {
			return 0
		}
		n = min(n*10+int(v[i]-'0'), 65535) // saturated: any number of digits (review Z220)
	}
	return uint16(n) // a day's quota waits the most the wake-up carries (review Z202)
}

// leaderFailedResponse is the local answer of a follower whose leaders all
// failed: the last leader's status when it was an upstream failure a client
// may retry on (429, 5xx), with its Retry-After, else 502; Cache-Status
// says why. leaderStatus carries the Retry-After's seconds above
// retryAfterShift.
func (c *Cache) leaderFailedResponse(req *Request, leaderStatus int) (int, [][2]string, []byte) {
	cs := CacheStatus{Status: StatusLeaderFailed}
	retryAfter := leaderStatus >> retryAfterShift
	envoys := leaderStatus&envoyReplied != 0
	leaderStatus &= (1<<retryAfterShift - 1) &^ envoyReplied
	status := 502
	if leaderStatus == 429 || leaderStatus >= 500 && leaderStatus <= 599 {
		status = leaderStatus
		if !envoys {
			cs.FwdStatus = leaderStatus
		}
	}
	headers := [][2]string{
		{"content-type", "application/json"},
		{"cache-status", string(cs.AppendHeader(nil, c.cfg.CacheName))},
	}
	if retryAfter > 0 { // (a 502 of the model's own carries its own: review Z202)
		headers = append(headers, [2]string{"retry-after", strconv.Itoa(retryAfter)})
	}
	body := `{"error":{"message":"the upstream failed for ` + strconv.Itoa(req.Route.Coalesce.MaxRetries+1) +
		` identical requests in a row; not retried","type":"upstream_error","code":"leader_failed"}}`
	return status, headers, []byte(body)
}

// StaleIfError reports whether req.Entry may answer because the upstream
// failed: it is what the request's key holds now (the lookup kept a copy
// while the request went upstream: a purge or a new model version since
// must not be undone, and an answer stored again meanwhile replaces the
// copy), within the route's stale_if_error window.
func (c *Cache) StaleIfError(req *Request) bool {
	if req.Entry == nil || req.Route.StaleIfError <= 0 {
		return false
	}
	now := c.nowMs()
	if !c.currentEntry(req, now) {
		return false
	}
	e := req.Entry
	if d := e.StoredAt - now; d > clockSkewMs && d > c.l2Skew() { // as freshness judges it
		return false
	}
	now = max(now, e.StoredAt)
	// A client whose max-age or min-fresh refused the answer is not given
	// it on an error either: it gets the error, as a no-cache client does;
	// nor one staler than its max-stale allows (review Z148).
	if clientRefuses(&req.CC, now-e.StoredAt, e.FreshUntil-now) ||
		req.CC.HasMaxStale && !req.CC.MaxStaleAny && now-e.FreshUntil > req.CC.MaxStale.Milliseconds() {
		return false
	}
	return now < e.FreshUntil+req.Route.StaleIfError.Milliseconds() && now < e.StaleUntil
}

// currentEntry makes req.Entry what req's key, under its model's state as
// it is now, holds; it reports false if the key holds nothing live or the
// state moved.
func (c *Cache) currentEntry(req *Request, now int64) bool {
	st, err := c.loadModel(req.Route.Name, req.Model)
	if err != nil || !st.is(&req.state) {
		return false
	}
	var e Entry
	found, err := c.table.lookupInto(req.FP, req.Key, now, &e, nil)
	if err != nil || !found {
		return false
	}
	// The entry as read now, even the same one: the one the request kept
	// may alias the table's read buffer, which other requests have read
	// into since (a hit whose answer the host could not send went upstream
	// with it: stale-if-error served another entry's bytes; review Z116).
	e.Detach() // it aliases the table's read buffer
	req.entry = e
	req.Entry = &req.entry
	return true
}

// WantsRefresh reports whether a served entry should be refreshed in the
// background: it was served stale and stale-while-revalidate is on, or it
// was fresh and XFetch chose this hit; never for a client that sent
// only-if-cached (the refresh would go upstream with its credential).
func (c *Cache) WantsRefresh(req *Request) bool {
	if c.cfg.Cluster == "" || req.CC.OnlyIfCached {
		return false // only-if-cached: no upstream call for this request
	}
	switch req.Status {
	case StatusStale:
		return req.Route.StaleWhileReval > 0
	case StatusHit:
		// Not for a semantic near hit: a refresh replays the client's
		// request, a paraphrase, and stored its answer under the
		// paraphrase's own key, a model call that left the entry served
		// to expire as before (review Z146). The entry is renewed by its
		// own question's hits.
		return c.EarlyRefresh(req) && (req.sem == nil || !req.sem.hit)
	}
	return false
}

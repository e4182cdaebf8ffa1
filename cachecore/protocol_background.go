package cachecore

import (
	"slices"
	"strconv"
	"strings"
)

// Background calls: the refresh of an entry just served (stale-while-
// revalidate, XFetch) and the shadow comparison of a hit with a fresh
// answer. Both are Calls (protocol_actions.go): the protocol decides, the
// host dispatches and hands back the result.

// Refresh re-asks the model for the entry req was just served from,
// without making the client wait, replaying the request (headers: the
// client's request headers). The answer goes through AdmitAndStore; if it
// is refused, the old entry stays. A refresh is single-flight (it takes
// the key's lease, never following anyone; vm names this worker) and
// bounded process-wide (background.max_concurrent).
func (c *Cache) Refresh(req *Request, headers [][2]string, vm uint64) []Action {
	r := req.Route
	c.refreshN++
	token := 0x80000000 | c.refreshN // lease owner id: never a request's id
	timeout := c.cfg.Background.Timeout
	switch c.tryLeadAs(req, vm, token, timeout) {
	case RoleLeader:
	case RoleHitForMiss:
		// The key's answers were found uncacheable: no call, and none in
		// flight either, which "joined" said (review Z174).
		return []Action{{Kind: ActCount, Event: EvRefreshUncacheable, Route: r}}
	case RoleCollision:
		// The lease slot is full of other keys' leaders (or unreadable):
		// no call, and none in flight for this key either, which
		// "joined" said (review Z205). The entry is refreshed by a later
		// hit, or a miss once it is past its stale window.
		return []Action{{Kind: ActCount, Event: EvCollision, Route: r}}
	default:
		// Someone is already getting a fresh answer.
		return []Action{{Kind: ActCount, Event: EvRefreshJoined, Route: r}}
	}
	if e := req.Entry; e != nil && c.table.listedAfter(req.FP, e.StaleUntil, c.nowMs()) {
		// Someone got it: the key was stored again since this entry was
		// served (another worker's refresh that ended between this one's
		// lookup and now). A second call for one expiry is what the lease
		// is for; a request's leader looks again too (leaderLookup; review
		// Z137). One index read, on a refresh only.
		acts := []Action{{Kind: ActCount, Event: EvRefreshJoined, Route: r}}
		if wake, ok := c.finishWake(req, LeaseHolder{vm, token}, OutcomeStored, 0); ok {
			acts = append(acts, wake)
		}
		return acts
	}
	now := c.nowMs()
	deadline := now + timeout.Milliseconds()
	slot, ok, err := c.bg.Acquire(now, deadline)
	if err != nil || !ok {
		// No call is made: a request that followed the refresh meanwhile
		// leads next, at once and counting no failure.
		acts := []Action{{Kind: ActCount, Event: EvRefreshSaturated, Route: r}}
		if wake, ok := c.finishWake(req, LeaseHolder{vm, token}, OutcomeAbandoned, 0); ok {
			acts = append(acts, wake)
		}
		return acts
	}
	call := c.replay(req, headers, EvRefreshStarted)
	call.MaxBody = r.MaxEntryBytes // AdmitBody refuses more, first
	// The model state the refresh asks under: a hit that starts a refresh
	// may start a shadow comparison too, on the same Request, and a
	// diverging one moves that Request to the generation its
	// invalidation made. The refresh, sent before the invalidation, was
	// then stored under it and served (review Z98).
	sent := req.state
	call.Done = func(res CallResult) []Action {
		_ = c.bg.Release(slot, deadline)
		if !req.state.is(&sent) {
			req.state = sent
			c.rekey(req)
		}
		o, status := OutcomeFailed, 0
		var acts []Action
		switch {
		case res.NotStarted:
			// No call reached the model: its followers lead next, as for
			// a refresh that found no slot (abandoned, not failed).
			o = OutcomeAbandoned
			acts = append(acts, Action{Kind: ActLog, Level: LogWarn, Message: []byte("background refresh to cluster " + c.cfg.Cluster + " failed to start")},
				Action{Kind: ActCount, Event: EvRefreshFailed, Route: r})
		case res.Failed:
			acts = append(acts, Action{Kind: ActCount, Event: EvRefreshFailed, Route: r})
			if res.Unread {
				// The proxy's fault, not the model's: its followers lead
				// next, as for an internal fault (OutcomeOf), rather than
				// run out of retries on a model that answers (review Z115).
				o = OutcomeAbandoned
			}
		case envoyCallReply(res):
			// Envoy's own answer to the call (it timed out, or reached no
			// upstream): the model sent nothing, and nothing of it is
			// refused (review Z205). Followers get its status, as a
			// request leader's timeout passes its 504.
			acts = append(acts, Action{Kind: ActCount, Event: EvRefreshFailed, Route: r})
			status = res.Status | envoyReplied
		default:
			st := c.AdmitAndStore(req, res.Status, res.Headers, res.Body, OriginUpstream, call.elapsed(c))
			o, status = leadEnd(st.Reason, res.Status) // its followers get a 429 or 5xx as a request's leader's
			if st.Reason == ReasonTruncated {
				// A call's answer is whole: a stream it holds that its
				// assembly found unfinished (no [DONE]) is as a request's
				// lead finds it (refusalEnded; review Z154).
				status = endedStatus(o, status)
			}
			if o == OutcomeFailed {
				// Its followers answered with the failure get its
				// Retry-After, as a request leader's do (review Z202).
				status |= int(retryAfterOf(res.Status, res.Headers)) << retryAfterShift
			}
			ev := EvRefreshStored
			if st.Reason != ReasonNone {
				ev = EvRefreshRefused
			}
			acts = append(acts, Action{Kind: ActCount, Event: ev, Route: r},
				Action{Kind: ActStored, Stored: &st, Request: req, Route: r, Status: res.Status})
			acts = append(acts, c.l2VersionSwitched(req, st.Result)...)
			if st.Reason == ReasonNone {
				acts = append(acts, c.semanticRefreshed(req, st.Result.FreshUntil)...)
			}
		}
		if wake, ok := c.finishWake(req, LeaseHolder{vm, token}, o, status); ok {
			acts = append(acts, wake)
		}
		return acts
	}
	return []Action{{Kind: ActDispatch, Call: call}}
}

// Shadow compares the cached answer req was just served with a fresh one,
// in the background: the client already has its answer and never sees
// this one. An answer the route would not cache (its statuses) cannot be
// compared; a divergent one replaces the entry through AdmitAndStore, with
// the time the call took as its compute time.
func (c *Cache) Shadow(req *Request, headers [][2]string) []Action {
	r := req.Route
	req.KeepEntry() // compared when the fresh answer arrives
	// A comparison takes one of its route's slots (shadow.max_concurrent)
	// and one of the process's (background.max_concurrent, shared with
	// refreshes).
	slots := c.ShadowSlots(r)
	now := c.nowMs()
	deadline := now + c.cfg.Background.Timeout.Milliseconds()
	slot, ok, err := slots.Acquire(now, deadline)
	if err != nil || !ok {
		return []Action{{Kind: ActCount, Event: EvShadowSaturated, Route: r}}
	}
	bgSlot, ok, err := c.bg.Acquire(now, deadline)
	if err != nil || !ok {
		_ = slots.Release(slot, deadline)
		return []Action{{Kind: ActCount, Event: EvShadowSaturated, Route: r}}
	}
	call := c.replay(req, headers, EvShadowStarted)
	call.MaxBody = shadowLimit(req) // compareFresh refuses more, first
	// The model state the comparison asks under, as Refresh keeps its
	// own: a refresh of the same hit, on the same Request, that stored a
	// new version moved the Request onto it, and an old version's answer
	// to this call, asked for before the switch, was judged under the new
	// one: a switch back, which made the new entries unreachable (review
	// Z137).
	sent := req.state
	var served int64 // when the entry compared was stored (a batch has none)
	if req.Entry != nil {
		served = req.Entry.StoredAt
	}
	call.Done = func(res CallResult) []Action {
		_ = slots.Release(slot, deadline)
		_ = c.bg.Release(bgSlot, deadline)
		if !req.state.is(&sent) {
			req.state = sent
			c.rekey(req)
		}
		if res.NotStarted || res.Failed {
			return []Action{{Kind: ActCount, Event: EvShadowError, Route: r}}
		}
		if !c.Comparable(req, res.Status) {
			return c.shadowVersion(req, res, []Action{{Kind: ActCount, Event: EvShadowError, Route: r}})
		}
		if c.otherVersion(req, res) {
			return c.shadowOtherVersion(req, res, call.elapsed(c))
		}
		agree, comparable := c.compareFresh(req, res.Headers, res.Body)
		if !comparable {
			return c.shadowVersion(req, res, []Action{{Kind: ActCount, Event: EvShadowError, Route: r}})
		}
		ev := EvShadowAgree
		if !agree {
			ev = EvShadowDiverge
		}
		acts := append([]Action{{Kind: ActCount, Event: ev, Route: r}}, c.semanticShadow(req, agree)...)
		if hit, _ := req.SemanticHit(); hit {
			// A near match's divergence says nothing about the model.
			return acts
		}
		obs, err := c.ObserveShadow(req, !agree)
		invalidated := err == nil && obs.Invalidated
		if invalidated {
			acts = append(acts, Action{Kind: ActCount, Event: EvInvalidation, Route: r},
				Action{Kind: ActLog, Level: LogWarn, Message: []byte("route " + r.Name + ": " + strconv.Itoa(int(obs.Diverged)) + " of " +
					strconv.Itoa(int(obs.Samples)) + " sampled answers of model " + strconv.Quote(req.Model) +
					" no longer match the model; its namespace is invalidated")})
		}
		if agree {
			if invalidated {
				acts = append(acts, c.l2InvalidateModel(r.Name, req.Model, nil)...)
			}
			return c.shadowVersion(req, res, acts)
		}
		// Replace the diverged entry with the fresh answer, if admissible:
		// under the state the hit was served under, or the generation this
		// comparison's invalidation made. A purge or a version switch by
		// anyone else while the call was out refuses it at the store.
		keyed := req.state
		if invalidated && !obs.moved {
			keyed = obs.state
		}
		elapsed := call.elapsed(c)
		c.PrepareShadowStore(req, keyed)
		st := c.AdmitAndStore(req, res.Status, res.Headers, res.Body, OriginUpstream, elapsed)
		acts = append(acts, Action{Kind: ActNoteStore, Stored: &st, Request: req, Route: r, Status: res.Status})
		acts = append(acts, c.l2VersionSwitched(req, st.Result)...)
		if st.Reason != ReasonNone && !invalidated && req.batch == nil && c.stillServed(req, served) {
			// The model contradicts the entry, and its answer cannot take
			// the entry's place (low confidence, a rule, its size): the
			// entry it contradicts is not served on here for the rest of
			// its ttl (review Z153). Only that entry: one stored since (a
			// revalidation, a refresh, a new version's) was not compared
			// (review Z157), so nothing version-free or mesh-wide (an
			// entry purge through L2; review Z154's finding is left: an
			// L2 copy lives out its ttl, README).
			if freed, err := c.table.Remove(req.FP, req.Key); err == nil && freed {
				acts = append(acts, Action{Kind: ActFreed, N: 1})
			}
		}
		if st.Reason == ReasonDimensions && !invalidated && req.batch != nil && req.batch.answerDrifted {
			// A batch's vectors of another dimension than its cached
			// items': the model drifted, and its old vectors are dropped
			// at once, as a request's answer drops them (modelDrifted);
			// left, they were served on until min_samples (review Z247).
			acts = append(acts, c.modelDrifted(req)...)
		}
		if st.Reason == ReasonNone {
			// Its turn indexed again, as a refresh's: the record carries
			// the replaced answer's fresh-until.
			acts = append(acts, c.semanticRefreshed(req, st.Result.FreshUntil)...)
		}
		if !invalidated {
			return acts
		}
		// The first copy, as keepSwitched reads it before storing again:
		// an entry purge meanwhile removes it without moving the
		// generation, and the second store put it back (review Z125).
		firstFP, firstKey := req.FP, slices.Clone(req.Key)
		// With an L2, the L1 generation moves once more when L2 has the
		// invalidation (l2Again): the replacement is stored again under
		// the generation that makes (the call's answer is the protocol's
		// to keep; the request is lent: nothing recycles it meanwhile).
		// Only if nothing else moved the generation since the first store:
		// a purge applied meanwhile (another proxy's, from the log) removed
		// the replacement, fetched before it, for good.
		return append(acts, c.l2InvalidateModelThen(r.Name, req.Model, obs.state.Gen, func(made ModelState) []Action {
			if !made.Found || obs.moved || st.Reason != ReasonNone {
				return nil
			}
			if e, err := c.table.Lookup(firstFP, firstKey, c.nowMs()); err != nil || e == nil {
				return nil // purged (or evicted) since: not brought back
			}
			c.PrepareShadowStore(req, made)
			st := c.AdmitAndStore(req, res.Status, res.Headers, res.Body, OriginUpstream, elapsed)
			acts := append([]Action{{Kind: ActNoteStore, Stored: &st, Request: req, Route: r, Status: res.Status}}, c.l2VersionSwitched(req, st.Result)...)
			if st.Reason == ReasonNone {
				acts = append(acts, c.semanticRefreshed(req, st.Result.FreshUntil)...)
			}
			return acts
		})...)
	}
	return []Action{{Kind: ActDispatch, Call: call}}
}

// shadowVersion appends to acts the version switch a shadow's answer that
// is not stored reports, as any answer's (noteVersion): one that agreed,
// or could not be compared, returned before reading it, and the old
// version's other entries were served on (review Z173). A near hit's
// answer is another question's: it says nothing.
func (c *Cache) shadowVersion(req *Request, res CallResult, acts []Action) []Action {
	if !req.Route.ModelVersion.Enabled() {
		return acts
	}
	if hit, _ := req.SemanticHit(); hit {
		return acts
	}
	if sr := c.noteVersion(req, ReasonNone, res.Status, res.Headers, res.Body); sr.VersionChanged {
		acts = append(acts, Action{Kind: ActNoteStore, Stored: &Stored{Result: sr}, Request: req, Route: req.Route, Status: res.Status})
		acts = append(acts, c.l2VersionSwitched(req, sr)...)
	}
	return acts
}

// shadowOtherVersion is a shadow's end when its fresh answer reports
// another model version than its entry's: another model's answer, not
// compared (shadow.errors). The version switch it makes is the
// invalidation; compared, every rollout diverged and invalidated the
// model a second time (review Z247). It is stored as any answer of the new
// version is (a near match's is not: its key is another question's).
func (c *Cache) shadowOtherVersion(req *Request, res CallResult, elapsed uint32) []Action {
	r := req.Route
	acts := []Action{{Kind: ActCount, Event: EvShadowError, Route: r}}
	if hit, _ := req.SemanticHit(); hit {
		return c.shadowVersion(req, res, acts)
	}
	c.PrepareShadowStore(req, req.state)
	st := c.AdmitAndStore(req, res.Status, res.Headers, res.Body, OriginUpstream, elapsed)
	acts = append(acts, Action{Kind: ActNoteStore, Stored: &st, Request: req, Route: r, Status: res.Status})
	acts = append(acts, c.l2VersionSwitched(req, st.Result)...)
	if st.Reason == ReasonNone {
		acts = append(acts, c.semanticRefreshed(req, st.Result.FreshUntil)...)
	}
	return acts
}

// otherVersion reports whether a shadow's fresh answer reports another
// model version than the one its request was keyed under (a versioned
// route: noteVersion reads it so).
func (c *Cache) otherVersion(req *Request, res CallResult) bool {
	if !req.Route.ModelVersion.Enabled() || !req.state.Found {
		return false
	}
	// Read up to what compareFresh reads (a batch's answer: items ×
	// max_entry_bytes; reviews Z248, Z250).
	v := answerVersion(req, res.Headers, res.Body, shadowLimit(req))
	return v != "" && versionID(v) != req.state.Version
}

// stillServed reports whether req's key holds, live, the entry stored at
// storedAt that req was served (a shadow's drop takes out only that one).
func (c *Cache) stillServed(req *Request, storedAt int64) bool {
	e, err := c.table.Lookup(req.FP, req.Key, c.nowMs())
	return err == nil && e != nil && e.StoredAt == storedAt
}

// replay is a call to the configured cluster that replays req.
func (c *Cache) replay(req *Request, headers [][2]string, started Event) *Call {
	return &Call{
		Cluster: c.cfg.Cluster,
		Headers: ReplayHeaders(headers, c.cfg.Authority, req.Route),
		Body:    req.Body,
		Timeout: c.cfg.Background.Timeout,
		Started: started,
		Route:   req.Route,
		start:   c.nowMs(),
	}
}

// elapsed is how long the call has taken so far, in ms.
func (call *Call) elapsed(c *Cache) uint32 {
	d := c.nowMs() - call.start
	if d < 0 {
		return 0
	}
	return uint32(d)
}

// replayDrops reports whether a background call leaves out the client's
// header name (a regular header's lower-case name): it describes the
// message or its connection, or asks for less than the whole answer. A
// route may not name its tenants by one, nor key its answers on one
// (config_policy.go).
func replayDrops(name string) bool {
	switch name {
	case "content-length", "transfer-encoding", "connection", "keep-alive", "te", "upgrade", "accept-encoding",
		"cache-control", "pragma", "expect",
		// The client's preconditions and ranges: the cache asks for
		// the whole answer. A 304 or 206 to them refused the refresh,
		// and marked the key hit-for-miss (review Z174).
		"if-none-match", "if-modified-since", "if-match", "if-unmodified-since", "if-range", "range":
		return true
	}
	return false
}

// ReplayHeaders turns a client request's headers into an HTTP call's:
// the same method, path, identity and content headers; no hop-by-hop or
// length headers (the host sets them), no accept-encoding (the cache needs
// an uncompressed answer), and no cache directives from the original
// client. authority, if set, replaces :authority. Envoy's and the
// forwarding headers are dropped too, except those route r (nil: none)
// keys on (tenant_headers, key_headers): a gateway's x-forwarded-user
// names the tenant, and a call without it asks as no one, for an answer
// then stored under that tenant's key (review Z65).
func ReplayHeaders(in [][2]string, authority string, r *Route) [][2]string {
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
		case replayDrops(name), hopByHop(name):
			continue
		case strings.HasPrefix(name, "x-envoy-"), strings.HasPrefix(name, "x-forwarded-"), name == "x-request-id":
			if r == nil || !slices.Contains(r.TenantHeaders, name) && !slices.Contains(r.KeyHeaders, name) {
				continue
			}
		}
		out = append(out, kv)
	}
	return out
}

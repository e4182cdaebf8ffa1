package cachecore

import "slices"

// Stored is what the one admit-and-store path did with a complete answer.
type Stored struct {
	// Reason is ReasonNone when the answer was stored; otherwise why not
	// (admission or the store itself).
	Reason Reason
	// Admission is the verdict of admission: its Reason is set when the
	// answer was refused before the store (its Rule names a failed
	// validation rule, for the log).
	Admission Admission
	// Result is the store's report (version change, inserts, items),
	// meaningful once the answer passed admission.
	Result StoreResult
}

// AdmitAndStore is the one path from a complete upstream answer to the
// cache, used by the leader, the background refresh and the shadow
// comparison: the route's admission of the headers (its statuses,
// Cache-Control, encoding, type, length), then of the body, then the store
// with computeMs, the time the upstream really took (XFetch's δ).
func (c *Cache) AdmitAndStore(req *Request, status int, headers [][2]string, body []byte, origin Origin, computeMs uint32) Stored {
	if reason := c.AdmitHeaders(req, status, headers, origin); reason != ReasonNone {
		st := Stored{Reason: reason, Admission: Admission{Reason: reason}}
		if req.Route.ModelVersion.Enabled() {
			// The body is in hand (a refresh's answer): a body_path version
			// is read too, where a header-only read switched nothing
			// (review Z279).
			st.Result = c.noteVersion(req, reason, status, headers, body)
		}
		return st
	}
	return c.StoreBody(req, status, headers, body, computeMs)
}

// noteVersion records the model version a refused answer reports (in its
// headers, or in body if not nil), as its store would have, and reports a
// switch as a store does (VersionChanged, Version) for the stats: under the
// state its request was keyed under, so that a late answer of a replaced
// version changes nothing (settleModel). An upstream that now runs another
// version makes the older entries unreachable whether or not this answer
// is kept. Only an answer of a status the route caches counts (an error
// page may come from anything in between), of a request keyed under a
// record (a refused store makes none), within max_entry_bytes when its
// body is read. Out of line: routes that track versions only.
//
//go:noinline
func (c *Cache) noteVersion(req *Request, reason Reason, status int, headers [][2]string, body []byte) StoreResult {
	res := StoreResult{Reason: reason}
	if !versionCounts(req, status) {
		return res
	}
	return c.noteVersionOf(req, res, answerVersion(req, headers, body, req.Route.MaxEntryBytes))
}

// versionCounts reports whether an answer of status to req may switch its
// model's version (noteVersion).
func versionCounts(req *Request, status int) bool {
	return req.state.Found && slices.Contains(req.Route.Statuses, status)
}

// switchNoted is the actions of the version switch an answer not stored
// made (st.Result.VersionChanged): its note, and L2's generation moved.
func (c *Cache) switchNoted(req *Request, st Stored) []Action {
	if !st.Result.VersionChanged {
		return nil
	}
	return append([]Action{{Kind: ActNoteStore, Stored: &st, Request: req, Route: req.Route}}, c.l2VersionSwitched(req, st.Result)...)
}

// noteVersionOf is noteVersion for the version v an answer was read to
// report.
func (c *Cache) noteVersionOf(req *Request, res StoreResult, v string) StoreResult {
	if v == "" || versionID(v) == req.state.Version {
		return res
	}
	_, changed, _, _ := c.settleModel(req.Route.Name, req.Model, req.state, true, v, true, 0)
	res.VersionChanged, res.Version = changed, shownVersion(v)
	return res
}

// answerVersion is the model version an answer reports, read as a stored
// answer's is: its header, or at its body_path in the body (a stream's
// assembly, also on a route that names a header first, which this answer
// may lack; review Z116), a body longer than limit not read (its header
// still says; review Z173).
func answerVersion(req *Request, headers [][2]string, body []byte, limit int) string {
	r := req.Route
	if len(body) > limit {
		body = nil
	}
	raw := body
	if body != nil && r.ModelVersion.BodyPath != "" {
		body = versionSource(req, headers, body)
	}
	v := ResponseVersion(r, headers, body)
	if v == "" && raw != nil && r.ModelVersion.BodyPath != "" && StreamsResponse(req, headers) {
		v = streamEventsVersion(raw, r.ModelVersion.BodyPath) // as admission reads it
	}
	return v
}

// shownVersion is a version as logs and stats show it: at most
// maxVersionLen bytes, as prepareStore cuts a stored answer's (review
// Z116).
func shownVersion(v string) string {
	if len(v) > maxVersionLen {
		return v[:maxVersionLen] + "…"
	}
	return v
}

// versionSource is the JSON a refused answer's version is read from, as a
// stored one's is: a stream's assembly (its raw bytes show gjson the first
// event only, which need not carry the version), or the body; nil when
// neither passes the bounds every read of an answer's JSON does.
func versionSource(req *Request, headers [][2]string, body []byte) []byte {
	if StreamsResponse(req, headers) {
		body = AssembleStream(req.Route.Kind, body).Assembled
	}
	if body == nil || checkJSON(body) != ReasonNone {
		return nil
	}
	return body
}

// StoreBody is AdmitAndStore for an answer whose headers were admitted
// already (the leader checks them as they arrive, to decide how to hold the
// body).
func (c *Cache) StoreBody(req *Request, status int, headers [][2]string, body []byte, computeMs uint32) Stored {
	adm := c.AdmitBody(req, headers, body)
	if adm.Reason != ReasonNone {
		st := Stored{Reason: adm.Reason, Admission: adm}
		if req.Route.ModelVersion.Enabled() {
			st.Result = c.noteVersion(req, adm.Reason, status, headers, body)
		}
		return st
	}
	res := c.Store(req, status, headers, body, adm, computeMs)
	return Stored{Reason: res.Reason, Admission: adm, Result: res}
}

// Comparable reports whether a shadow call's answer with status can be
// compared with the cached one: the route would cache it (its statuses).
func (c *Cache) Comparable(req *Request, status int) bool {
	return slices.Contains(req.Route.Statuses, status)
}

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
		return Stored{Reason: reason, Admission: Admission{Reason: reason}}
	}
	return c.StoreBody(req, status, headers, body, computeMs)
}

// StoreBody is AdmitAndStore for an answer whose headers were admitted
// already (the leader checks them as they arrive, to decide how to hold the
// body).
func (c *Cache) StoreBody(req *Request, status int, headers [][2]string, body []byte, computeMs uint32) Stored {
	adm := c.AdmitBody(req, headers, body)
	if adm.Reason != ReasonNone {
		return Stored{Reason: adm.Reason, Admission: adm}
	}
	res := c.Store(req, status, headers, body, adm, computeMs)
	return Stored{Reason: res.Reason, Admission: adm, Result: res}
}

// Comparable reports whether a shadow call's answer with status can be
// compared with the cached one: the route would cache it (its statuses).
func (c *Cache) Comparable(req *Request, status int) bool {
	return slices.Contains(req.Route.Statuses, status)
}

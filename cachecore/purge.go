package cachecore

import (
	"crypto/subtle"
	"errors"
	"fmt"
	"strings"

	"github.com/tidwall/gjson"
)

// The purge API. It exists only when a token is configured, and answers
// only requests carrying "Authorization: Bearer <token>" (compared in
// constant time). Its body is one of:
//
//	{"all": true}                                   every entry
//	{"route": "chat", "model": "gpt-4o"}            every entry of a model on a route (all tenants)
//	{"method": "POST", "path": "/v1/chat/completions",
//	 "headers": {"authorization": "Bearer sk-…", "host": "…"},
//	 "body": {…the original request…}}              one entry, found by replaying the request
//
// A replay is addressed to the authority its headers name ("host" or
// ":authority"), else to the purge request's own.

// IsPurge reports whether a request targets the purge API.
//
// Small enough to be inlined: every request asks, and without a purge
// token (the usual configuration) the answer is no without a call.
func (c *Cache) IsPurge(method, path string) bool {
	return c.cfg.Purge.Token != "" && c.isPurgePath(path)
}

// controlNotTab reports a control character a header value cannot hold
// (a tab it can).
func controlNotTab(r rune) bool { return r < 0x20 && r != '\t' || r == 0x7f }

// PurgePath is the purge API's path.
func (c *Cache) PurgePath() string { return c.cfg.Purge.Path }

// isPurgePath reports whether path, without its query, is the purge API's.
func (c *Cache) isPurgePath(path string) bool {
	if i := strings.IndexByte(path, '?'); i >= 0 {
		path = path[:i]
	}
	return path == c.cfg.Purge.Path
}

// PurgeAuthorized checks the bearer token in constant time.
func (c *Cache) PurgeAuthorized(headers [][2]string) bool {
	if c.cfg.Purge.Token == "" {
		return false
	}
	v, ok := header(headers, "authorization")
	if !ok || len(v) < 7 || !strings.EqualFold(v[:7], "bearer ") {
		return false
	}
	return subtle.ConstantTimeCompare([]byte(strings.TrimSpace(v[7:])), []byte(c.cfg.Purge.Token)) == 1
}

// PurgeResult describes what a purge did.
type PurgeResult struct {
	Scope string // "all", "model" or "entry"
	Freed int    // slots freed (for "all" and "entry"); 0 for "model"
	// L2, with an l2 tier, is the call that carries the purge there; the
	// host answers the purge request once it is done. What follows it
	// (the purge done again in L1, the purge log) is the worker's: it
	// runs even if the purge request is gone by then (Gone).
	L2 *Call
}

// maxPurgeModelName bounds the model name of a purge by model: its record
// in the L2 purge log must stay within l2MaxRecord.
const maxPurgeModelName = 4096

// purgeEnvelope is what a purge body may hold beyond max_request_bytes:
// a replay wraps a request the route caches (its body up to
// max_request_bytes) in its method, path and headers, and a request's
// headers are at most Envoy's default 60 KiB. The replayed body itself is
// held to max_request_bytes as any request's is.
const purgeEnvelope = 64 << 10

// ErrBadPurge is returned for a purge body the API does not understand.
var ErrBadPurge = errors.New("bad purge request")

// PurgeErrorBody is the JSON body answering a purge the API refuses: its
// error's text as a JSON string. The error may quote the replayed method
// and path, whose control and non-UTF-8 bytes Go's quoting wrote as
// escapes JSON does not read (review Z72).
func PurgeErrorBody(err error) string {
	return string(append(appendJSONText([]byte(`{"error":`), err.Error()), '}'))
}

// Purge executes a purge request body. authority is the purge request's
// own: a replayed request that names none (no "host" or ":authority" in
// its headers) is taken to be addressed to it.
func (c *Cache) Purge(body []byte, authority string) (PurgeResult, error) {
	res, err := c.purge(body, authority)
	if res.L2 != nil {
		res.L2.Gone = res.L2.Done
	}
	return res, err
}

// l2Logged is what follows a purge in L2: its records (l2Records'
// NUL-separated list) go to the log other proxies read. Not before: a
// proxy that read the record while Redis still held the old generation
// would purge its L1, then copy the purged value back from L2.
func (c *Cache) l2Logged(records string) func() []Action {
	return func() []Action {
		if log := c.l2LogAll(records); log != nil {
			return []Action{{Kind: ActDispatch, Call: log}}
		}
		return nil
	}
}

// errPurgeForm is a purge body of no form the API takes.
var errPurgeForm = fmt.Errorf(`%w: expected {"all":true}, {"route","model"} or {"method","path","headers","body"}`, ErrBadPurge)

func (c *Cache) purge(body []byte, authority string) (PurgeResult, error) {
	if len(body) > c.cfg.MaxRequestBytes+purgeEnvelope {
		return PurgeResult{}, fmt.Errorf("%w: body over max_request_bytes + 64 KiB", ErrBadPurge)
	}
	// Bounded before gjson reads it (jsonbound.go): one level more than a
	// request may take, for the envelope around a replayed one; the
	// replay's body is held to the request's bound as any request's
	// (SetBody). Held to 64 levels, a request the route cached at 64 could
	// not be purged by replay (review Z176).
	if err := CheckJSONDepth(body, MaxJSONDepth+1); errors.Is(err, ErrTooDeep) {
		return PurgeResult{}, fmt.Errorf("%w: %w (limit %d)", ErrBadPurge, ErrTooDeep, MaxJSONDepth)
	} else if err != nil || !gjson.ValidBytes(body) {
		return PurgeResult{}, fmt.Errorf("%w: body is not JSON", ErrBadPurge)
	}
	v := gjson.ParseBytes(body)
	if !v.IsObject() {
		return PurgeResult{}, fmt.Errorf("%w: body is not a JSON object", ErrBadPurge)
	}
	// One form a body: all, a model, or a request to replay. Named
	// together, the broadest was carried out, purging what the body did
	// not name (review Z176).
	forms := 0
	for _, form := range [...][]string{{"all"}, {"route", "model"}, {"method", "path", "headers", "body"}} {
		for _, m := range form {
			if v.Get(m).Exists() {
				forms++ // a member of this form: all beside a route was all (review Z178)
				break
			}
		}
	}
	if forms > 1 {
		return PurgeResult{}, fmt.Errorf("%w: name one of all, model (with route) or body (a request to replay), not two", ErrBadPurge)
	}
	if a := v.Get("all"); a.Exists() && a.Type != gjson.True {
		// Read as gjson's Bool, 1, "T" and -1e-300 purged everything.
		return PurgeResult{}, errPurgeForm
	}
	switch {
	case v.Get("all").Exists():
		n, err := c.purgeAll()
		return PurgeResult{Scope: "all", Freed: n, L2: c.l2PurgeAll(c.l2Logged(c.l2Records("all", "", "")))}, err
	case v.Get("model").Exists():
		name := v.Get("route").String()
		if c.routeByName(name) == nil {
			return PurgeResult{}, fmt.Errorf("%w: unknown route %q", ErrBadPurge, name)
		}
		if m := v.Get("model"); m.IsArray() || m.IsObject() {
			// Read as its JSON text, a list of models purged a namespace
			// nobody uses, answered 200 (review Z155).
			return PurgeResult{}, fmt.Errorf("%w: model must be a string, not %s", ErrBadPurge, jsonType(m))
		}
		if len(v.Get("model").String()) > maxPurgeModelName {
			return PurgeResult{}, fmt.Errorf("%w: model name over %d bytes", ErrBadPurge, maxPurgeModelName)
		}
		model := v.Get("model").String()
		res := PurgeResult{Scope: "model"}
		if acts := c.l2InvalidateModel(name, model, c.l2Logged(c.l2Records("model", name, model))); acts != nil {
			res.L2 = acts[0].Call
		}
		return res, c.PurgeModel(name, model)
	case v.Get("body").Exists():
		method := v.Get("method").String()
		if method == "" {
			method = "POST"
		}
		path := v.Get("path").String()
		route := c.cfg.MatchRoute(method, path)
		if route == nil {
			return PurgeResult{}, fmt.Errorf("%w: no route matches %s %s", ErrBadPurge, method, path)
		}
		var hs [][2]string
		bad, badHeader := false, ""
		if h := v.Get("headers"); h.Exists() && !h.IsObject() {
			// A string or a list of lines read as members named "" or
			// "0": keyed without them, answered 200 for nothing (review
			// Z178).
			return PurgeResult{}, fmt.Errorf("%w: headers must be an object of header names to strings", ErrBadPurge)
		}
		v.Get("headers").ForEach(func(k, val gjson.Result) bool {
			if val.Type != gjson.String || strings.IndexFunc(val.Str, controlNotTab) >= 0 {
				// A list (Go's http.Header) read as its JSON text keyed
				// a tenant no request is, and answered 200 for nothing
				// (review Z176); so did a value of two lines, or with a
				// control character, which no request's header holds
				// (reviews Z255, Z256).
				bad, badHeader = true, k.String()
				return false
			}
			// Trimmed as HTTP trims a field's value (RFC 9110 §5.5): the
			// request replayed reached the filter so, and an identity with
			// a space around it keyed another tenant (review Z203).
			hs = append(hs, [2]string{strings.ToLower(k.String()), strings.Trim(val.String(), " \t")})
			return true
		})
		if bad {
			return PurgeResult{}, fmt.Errorf("%w: header %q must be a string of one line", ErrBadPurge, badHeader)
		}
		if _, ok := header(hs, ":authority"); !ok {
			// A "host" is the request's :authority, as Envoy hands it to
			// the filter: a route whose tenants are named by :authority
			// found none in a replay that named its host (review Z253).
			named := false
			for i := range hs {
				if hs[i][0] == "host" {
					hs[i][0], named = ":authority", true
				}
			}
			if !named {
				hs = append(hs, [2]string{":authority", authority})
			}
		}
		req := c.Begin(route, method, path, hs)
		if req.Status == StatusRevalidate {
			req.Status = StatusMiss // the replayed no-cache does not matter here
		}
		req.purging = true
		c.SetBody(req, []byte(v.Get("body").Raw))
		if req.Bypassed() {
			if req.Reason == ReasonInternal {
				// A fault of the proxy's, not a bad request: sent again,
				// the purge may work (review Z132).
				return PurgeResult{}, errors.New("the request could not be keyed (internal)")
			}
			return PurgeResult{}, fmt.Errorf("%w: the request would bypass the cache (%s)", ErrBadPurge, req.Reason)
		}
		if req.batch != nil { // embeddings: every item of the batch
			c.itemKeys(req)
			// Items are not in L2; other proxies' L1 copies go by the log,
			// at once.
			stables := make([][]byte, 0, len(req.batch.distinct))
			for _, i := range req.batch.distinct {
				k := req.batch.items[i].key
				stables = append(stables, k[:len(k)-versionIDLen-8])
			}
			res := PurgeResult{Scope: "entry", L2: c.l2LogAll(c.l2Records("entry", route.Name, req.Model, stables...))}
			if !req.state.Found {
				return res, nil
			}
			for _, i := range req.batch.distinct {
				it := &req.batch.items[i]
				freed, err := c.table.PurgeKey(it.fp, it.key, c.nowMs())
				res.Freed += freed
				if err != nil {
					return res, err
				}
				freed, err = c.purgeOtherLayouts(it.fp, it.key, c.nowMs())
				res.Freed += freed
				if err != nil {
					return res, err
				}
			}
			return res, nil
		}
		var l2 *Call
		if req.Key != nil {
			l2 = c.l2PurgeEntry(req, c.l2Logged(c.l2Records("entry", route.Name, req.Model, req.Key[:req.stableLen])))
		}
		if !req.state.Found {
			return PurgeResult{Scope: "entry", L2: l2}, nil
		}
		freed, err := c.table.PurgeKey(req.FP, req.Key, c.nowMs())
		if err == nil {
			var more int
			more, err = c.purgeOtherLayouts(req.FP, req.Key, c.nowMs())
			freed += more
		}
		return PurgeResult{Scope: "entry", Freed: freed, L2: l2}, err
	}
	return PurgeResult{}, errPurgeForm
}

func (c *Cache) routeByName(name string) *Route {
	for _, r := range c.cfg.Routes {
		if r.Name == name {
			return r
		}
	}
	return nil
}

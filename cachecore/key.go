package cachecore

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"slices"
	"strings"
	"unsafe"

	"github.com/tidwall/gjson"
)

// Keying a request: Begin reads the headers (bypass rules, tenant and
// authority), SetBody canonicalises the body and buildKey makes the key:
// namespace (route, tenant, authority, model state) + canonical body.

// Begin starts a request on route. It reads what it needs from the request
// headers and decides whether the request may use the cache at all; if not,
// req.Status is StatusBypass with a reason.
func (c *Cache) Begin(route *Route, method, path string, headers [][2]string) *Request {
	req := c.newRequest()
	req.Route, req.Method, req.Path, req.Status = route, method, path, StatusMiss
	// One pass over the headers reads the directives and the body's type.
	cc, pragma, unread := requestLines(headers)
	// req.CC is zero until readDirectives sets it (a request is zero
	// when it starts): a request that sends no Cache-Control or Pragma,
	// the rule, runs neither check of its directives.
	if route.HonorCacheCtl {
		if cc != "" || pragma != "" {
			if cc == manyLines {
				cc, pragma = joinDirectives(headers)
			}
			req.readDirectives(cc, pragma)
			if req.CC.NoStore {
				return req.bypass(ReasonRequestNoStore)
			}
		}
	}
	// After the directives: an only-if-cached request whose body the
	// cache cannot key is still answered 504, never sent upstream.
	if unread != ReasonNone {
		return req.bypass(unread)
	}
	if !route.Shared {
		if !c.readTenant(req, headers) {
			return req.bypass(ReasonNoIdentity)
		}
	}
	if !route.ShareAuth {
		// Virtual hosts may route one path to different model builds:
		// an answer is never served through another authority.
		a, ok := header(headers, ":authority")
		if !ok {
			a, _ = header(headers, "host")
		}
		req.authority = lowerASCII(a)
	}
	if len(route.KeyHeaders) > 0 && !req.keyHeaderValues(headers) {
		return req.bypass(ReasonKeyHeaderTooLarge)
	}
	return req
}

// readDirectives sets req.CC from the request's Cache-Control and Pragma,
// and a no-cache request's status (revalidate). The status is set before
// Begin reads the identity: a bypass after it sets the status again.
// Out of line: most requests send neither, and its calls (the parse, the
// lower-casing) would otherwise sit in Begin, among the lines every
// request runs.
//
//go:noinline
func (req *Request) readDirectives(cc, pragma string) {
	if cc != "" {
		req.CC = ParseRequestCC(cc)
	}
	// HTTP/1.0 clients: Pragma's no-cache directive, read only where no
	// Cache-Control is sent (RFC 9111 §5.4; review Z148: beside max-age
	// or only-if-cached it had made every request a revalidation).
	if cc == "" && pragmaNoCache(pragma) {
		req.CC.NoCache = true
	}
	if req.CC.NoCache {
		req.Status = StatusRevalidate
	}
}

// pragmaNoCache reports whether a Pragma value holds the no-cache
// directive, a member of its list, not a substring (x-no-cache-debug).
func pragmaNoCache(v string) bool {
	for v != "" {
		var d string
		d, v, _ = strings.Cut(v, ",")
		if strings.EqualFold(strings.TrimSpace(d), "no-cache") {
			return true
		}
	}
	return false
}

// Bounds of key_headers: names a route lists, lines of one name a request
// may send, bytes of each line. A value is keyed as sent, so these bound
// what a client can add to a key: maxKeyHeaders × (1 + maxKeyHeaderLines
// × (2 + maxKeyHeaderValue)) bytes, about 16 KiB at worst; the values
// these headers have (project and organization ids, API versions, beta
// flags) are a few dozen bytes.
const (
	maxKeyHeaders     = 8
	maxKeyHeaderLines = 8
	maxKeyHeaderValue = 256
)

// keyHeaderValues reads the values of the route's key_headers into
// req.keyHeaders, as the key holds them: for each name, in the route's
// order, its count of lines (0: absent, so absent and empty differ), then
// each line in the order the client sent them, length-prefixed. It
// reports false when a name has more than maxKeyHeaderLines lines or a
// line over maxKeyHeaderValue bytes: the request bypasses the cache
// rather than grow keys. The headers are those Begin reads already (no
// host call), copied into a buffer the request keeps: header strings
// alias the host's buffer.
func (req *Request) keyHeaderValues(h [][2]string) bool {
	b := req.keyHeaders[:0]
	for _, name := range req.Route.KeyHeaders {
		at := len(b)
		b = append(b, 0)
		for i := range h {
			kv := &h[i]
			if kv[0] != name {
				continue
			}
			if b[at] == maxKeyHeaderLines || len(kv[1]) > maxKeyHeaderValue {
				req.keyHeaders = b[:0]
				return false
			}
			b[at]++
			b = binary.LittleEndian.AppendUint16(b, uint16(len(kv[1])))
			b = append(b, kv[1]...)
		}
	}
	req.keyHeaders = b
	return true
}

// lowerASCII lower-cases host names (case-insensitive), allocating only
// when there is something to change.
func lowerASCII(s string) string {
	for i := range len(s) {
		if s[i]-'A' < 26 { // an upper-case letter
			return lowerASCIINew(s)
		}
	}
	return s
}

// lowerASCIINew is lowerASCII's copy, apart so that the check inlines.
// It folds ASCII letters only: strings.ToLower would fold "İ" to "i".
//
//go:noinline
func lowerASCIINew(s string) string {
	b := []byte(s)
	for i, c := range b {
		if c-'A' < 26 {
			b[i] = c + 'a' - 'A'
		}
	}
	return string(b)
}

// tenantHash is SHA-256 over the identity header's name and value: no
// credential is ever stored, and two tenants can never share a namespace.
// A VM sees few distinct credentials, so recent ones are remembered (a
// bounded map, reset when full) to spare the hash on every request.
func (c *Cache) tenantHash(name, value string) tenantID {
	// The last credential first: comparing two strings is cheaper under
	// wasm than the map's hashing of both.
	if c.last.is(name, value) {
		return c.last.id
	}
	if len(value) <= maxRememberedCredential {
		if h, ok := c.tenants[tenantKey{name, value}]; ok {
			c.last.set(name, value, h)
			return h
		}
	}
	return c.tenantHashNew(name, value)
}

// tenantID is a tenant's hash (the key's), and a tag of its credential
// alone, whichever header carried it (ObserveShadow's min_tenants).
type tenantID struct {
	sum        [32]byte
	credential uint64
}

// tenantHashNew hashes a credential not remembered, and remembers it. It
// is a function of its own so that a remembered credential's requests
// never enter its code (the hash is inlined into it).
//
//go:noinline
func (c *Cache) tenantHashNew(name, value string) tenantID {
	var sum [32]byte
	credential := strings.TrimSpace(value)
	h := sha256.New()
	h.Write([]byte("modelcache tenant\x00"))
	h.Write([]byte(name))
	h.Write([]byte{0})
	if scheme, token, ok := authScheme(name, value); ok {
		// One credential, one tenant: the scheme is case-insensitive
		// (RFC 9110, 11.1), so it is hashed in one spelling ("Bearer"),
		// with one space before the token.
		var b [16]byte
		h.Write(append(b[:0], scheme...))
		h.Write([]byte{' '})
		h.Write([]byte(token))
		credential = strings.TrimSpace(token)
	} else {
		h.Write([]byte(value))
	}
	h.Sum(sum[:0])
	// The credential's tag: a SHA-256 of it, as the tenant's hash is (no
	// fast unkeyed hash of a credential in shared data; Z270's suspicion).
	h.Reset()
	h.Write([]byte("modelcache credential\x00"))
	h.Write([]byte(credential))
	var cs [32]byte
	h.Sum(cs[:0])
	id := tenantID{sum, binary.LittleEndian.Uint64(cs[:8]) | 1} // (never 0: no tenant)
	if len(value) <= maxRememberedCredential {
		if c.tenants == nil || len(c.tenants) >= maxRememberedTenants {
			c.tenants = make(map[tenantKey]tenantID, maxRememberedTenants)
		}
		// Clone: header strings alias the host's buffer of the whole map.
		c.tenants[tenantKey{strings.Clone(name), strings.Clone(value)}] = id
		c.last.set(name, value, id)
	}
	return id
}

// authScheme splits an Authorization (or Proxy-Authorization) value into
// its scheme, spelt with a capital first letter and the rest lower case,
// and its credentials after the spaces that follow the scheme. ok is
// false for other headers and for values without both parts.
func authScheme(name, value string) (scheme []byte, token string, ok bool) {
	if name != "authorization" && name != "proxy-authorization" {
		return nil, "", false
	}
	sp := strings.IndexAny(value, " \t")
	if sp <= 0 || sp > 16 {
		return nil, "", false
	}
	token = strings.TrimLeft(value[sp:], " \t")
	if token == "" {
		return nil, "", false
	}
	scheme = []byte(value[:sp])
	for i, c := range scheme {
		switch {
		case i == 0 && c >= 'a' && c <= 'z':
			scheme[i] = c - 'a' + 'A'
		case i > 0 && c >= 'A' && c <= 'Z':
			scheme[i] = c - 'A' + 'a'
		}
	}
	return scheme, token, true
}

// lastTenant is the last remembered credential and its hash, in buffers of
// its own (header strings alias the host's buffer), reused.
type lastTenant struct {
	ok          bool
	name, value []byte
	id          tenantID
}

func (l *lastTenant) set(name, value string, id tenantID) {
	l.ok, l.name, l.value, l.id = true, append(l.name[:0], name...), append(l.value[:0], value...), id
}

// is reports whether name and value are the last remembered credential's.
func (l *lastTenant) is(name, value string) bool {
	return l.ok && string(l.value) == value && string(l.name) == name
}

type tenantKey struct{ name, value string }

const (
	maxRememberedTenants    = 256
	maxRememberedCredential = 512
)

// Header returns the value of the first pair named name in h (names as
// the host gives them: lower case). It inlines: the filter reads
// :method and :path with it on every request, a bypass included, which
// would otherwise run header's code for those two reads alone.
func Header(h [][2]string, name string) (string, bool) {
	for i := range h {
		// A pointer to the pair, not a copy: under wasm a ranged [2]string
		// is copied to the stack each time round.
		if kv := &h[i]; kv[0] == name {
			return kv[1], true
		}
	}
	return "", false
}

// header is Header out of line, for the readers of the keying and the
// protocol. Inlined, its loop and the call comparing names (with the
// registers spilled around it) were written into each function that
// reads a header on a miss or a hit (Begin, readTenant, the request's and
// the answer's headers steps), and a request ran each copy's machine
// code; one copy, called, runs fewer lines.
//
//go:noinline
func header(h [][2]string, name string) (string, bool) { return Header(h, name) }

// headerSole is header for a header that names one thing (an identity):
// the value of its first line, and whether another line follows (many).
// One pass over the headers, as header's when the header is absent.
//
//go:noinline
func headerSole(h [][2]string, name string) (v string, ok, many bool) {
	for i := range h {
		if kv := &h[i]; kv[0] == name {
			for j := i + 1; j < len(h); j++ {
				if h[j][0] == name {
					return kv[1], true, true
				}
			}
			return kv[1], true, false
		}
	}
	return "", false, false
}

// requestDirectives returns a request's Cache-Control and Pragma, each
// line of either joined to the ones before with a comma, as the one value
// they are (RFC 9110, 5.3): a directive on a later line counts as much as
// on the first. Begin runs its two steps itself (directiveLines inlined).
func requestDirectives(h [][2]string) (cc, pragma string) {
	if cc, pragma, _ = requestLines(h); cc == manyLines {
		return joinDirectives(h)
	}
	return cc, pragma
}

// directiveLines is requestDirectives in one pass over the headers while
// each header has one line, returned as is, without a copy. At a second
// line of either it returns manyLines, and the caller joins every line
// once (joinDirectives), where joining each to the ones before copied them
// all again: a purge replaying thousands of lines did quadratic work
// (review Z7, stop 72). The same pass says whether the request declares a
// body that is not JSON alone (notJSON): a Content-Type other than JSON,
// or Triton's binary tensors (Inference-Header-Content-Length: raw bytes
// after a JSON header). The canonical form keys JSON by its meaning, and
// a server that reads the bytes as sent (text, tensors) answers two
// spellings of one JSON value apart, or bytes the canonical form drops as
// white space (review Z31). A request without a Content-Type is read as
// JSON, as OpenAI-compatible servers read it.
func directiveLines(h [][2]string) (cc, pragma string, notJSON bool) {
	cc, pragma, unread := requestLines(h)
	return cc, pragma, unread == ReasonNotJSON
}

// requestLines is directiveLines, saying why the body cannot be keyed
// (unread): ReasonNotJSON as notJSON says, or ReasonEncoded for a body
// whose Content-Encoding is not identity (gzip: its bytes are no JSON,
// and were bypassed as malformed_json, blaming the client's JSON; review
// Z160).
func requestLines(h [][2]string) (cc, pragma string, unread Reason) {
	many, notJSON, encoded := false, false, false
	for i := range h {
		kv := &h[i]
		var v *string
		// Names are told apart by length first, and long ones a word
		// at a time: under wasm a compare of more than 6 bytes is a
		// call ("authorization", which most requests send, has
		// cache-control's length).
		switch n := kv[0]; len(n) {
		case len("pragma"):
			if n != "pragma" {
				continue
			}
			v = &pragma
		case len("cache-control"):
			if n[0] != 'c' || n != "cache-control" {
				continue
			}
			v = &cc
		case len("content-type"):
			if p := unsafe.Pointer(unsafe.StringData(n)); word(p, 0) != contentTypeWords[0] || word(p, 4) != contentTypeWords[1] {
				continue
			}
			// The exact type every SDK sends, a word at a time first.
			if t := kv[1]; len(t) != len("application/json") || word(unsafe.Pointer(unsafe.StringData(t)), 0) != jsonTypeWords[0] ||
				word(unsafe.Pointer(unsafe.StringData(t)), 8) != jsonTypeWords[1] {
				notJSON = notJSON || t != "" && !isJSONType(t) // empty: as none
			}
			continue
		case len("inference-header-content-length"):
			notJSON = notJSON || n == "inference-header-content-length"
			continue
		case len("content-encoding"):
			if n == "content-encoding" {
				t := strings.TrimSpace(kv[1])
				encoded = encoded || t != "" && !strings.EqualFold(t, "identity")
			}
			continue
		default:
			continue
		}
		if *v != "" {
			many = true
		}
		*v = kv[1]
	}
	switch {
	case encoded:
		unread = ReasonEncoded
	case notJSON:
		unread = ReasonNotJSON
	}
	if many {
		return manyLines, "", unread
	}
	return cc, pragma, unread
}

// contentTypeWords and jsonTypeWords are "content-type" and
// "application/json" as directiveLines loads them: the words at 0 and 4
// of the one, at 0 and 8 of the other.
var (
	contentTypeWords = [2]uint64{stringWord("content-type", 0), stringWord("content-type", 4)}
	jsonTypeWords    = [2]uint64{stringWord("application/json", 0), stringWord("application/json", 8)}
)

// stringWord is word for the 8 bytes of s at i.
func stringWord(s string, i int) uint64 { return load64([]byte(s[i : i+8])) }

// manyLines is directiveLines' Cache-Control when a request repeats
// either header. A NUL is in no header value Envoy passes; one a purge
// replays, on a line of its own, is joined to itself by joinDirectives.
const manyLines = "\x00"

// joinDirectives is requestDirectives for headers that repeat either:
// every line of each appended once. Out of line: a request sends one.
//
//go:noinline
func joinDirectives(h [][2]string) (cc, pragma string) {
	var c, p []byte
	for i := range h {
		switch kv := &h[i]; kv[0] {
		case "cache-control":
			c = appendLine(c, kv[1])
		case "pragma":
			p = appendLine(p, kv[1])
		}
	}
	return string(c), string(p)
}

// appendLine appends line to a header's joined value b: after a comma
// unless b is empty, as the lines of one header join.
func appendLine(b []byte, line string) []byte {
	if len(b) > 0 {
		b = append(b, ", "...)
	}
	return append(b, line...)
}

// readTenant keys req under the first of its route's identity headers
// that is present and names someone (not empty, and not an
// authentication scheme alone), and reports false if none does. It sets
// the request's fields itself rather than return the header's name and
// value to Begin: this runs on every request.
func (c *Cache) readTenant(req *Request, h [][2]string) bool {
	for _, n := range req.Route.TenantHeaders {
		v, ok, many := headerSole(h, n)
		if !ok {
			continue
		}
		if many {
			// Two lines name two callers: the first may be the client's
			// own, before the one a gateway appends. None is taken, nor
			// the next header in its place.
			return false
		}
		// The last identity was checked before.
		if c.last.is(n, v) {
			req.tenant, req.tenantFrom, req.credential = c.last.id.sum, n, c.last.id.credential
			return true
		}
		if namesSomeone(n, v) {
			id := c.tenantHash(n, v)
			req.tenant, req.tenantFrom, req.credential = id.sum, n, id.credential
			return true
		}
	}
	return false
}

// namesSomeone reports whether identity header n's value v names someone:
// not empty, and not an authentication scheme alone. A function of its
// own: readTenant's common case, the last identity again, never needs it.
//
//go:noinline
func namesSomeone(n, v string) bool {
	t := strings.TrimSpace(v)
	return t != "" && !schemeAlone(n, t)
}

// schemeAlone reports an Authorization (or Proxy-Authorization) value that
// is an authentication scheme without credentials: "Bearer" is what a
// client with an empty key sends, its trailing space trimmed by the proxy.
// It names no one, so it is no identity: taken as one, every such client
// was one tenant, and under the default tenant_headers a client whose
// credential is its x-api-key was served another client's answers. The
// schemes are IANA's registry's; a value that is one word of another kind
// ("sk-…") stays a credential. A scheme followed by what client code
// writes for a key it never set ("Bearer undefined", "Bearer null",
// "Bearer None") names no one either.
func schemeAlone(name, v string) bool {
	if name != "authorization" && name != "proxy-authorization" {
		return false
	}
	scheme := v // trimmed by the caller
	// Split as authScheme splits a credential to hash it: on spaces and
	// tabs, any number ("Bearer\tnull" is "Bearer null").
	if i := strings.IndexAny(v, " \t"); i >= 0 {
		if !placeholder(strings.TrimLeft(v[i:], " \t")) {
			return false // the common case of a credential, at once
		}
		scheme = v[:i]
	}
	for _, s := range authSchemes {
		if strings.EqualFold(scheme, s) {
			return true
		}
	}
	return false
}

// placeholder reports what client code writes for a key it never set, and
// the keys servers without authentication tell OpenAI SDK clients to send
// (vLLM's "EMPTY", llama.cpp's "sk-no-key-required", Ollama's "ollama",
// LM Studio's "lm-studio"): behind a gateway that names its callers by
// another header (x-api-key), taken for a credential, each made all its
// clients one tenant. A placeholder not listed here is a credential: such
// a route names its tenant header first (tenant_headers).
func placeholder(v string) bool {
	switch len(v) {
	case 4:
		return strings.EqualFold(v, "null") || strings.EqualFold(v, "none")
	case 5:
		return strings.EqualFold(v, "empty") || strings.EqualFold(v, "dummy")
	case 6:
		return strings.EqualFold(v, "ollama")
	case 9:
		return strings.EqualFold(v, "undefined") || strings.EqualFold(v, "lm-studio")
	case 18:
		return strings.EqualFold(v, "sk-no-key-required")
	}
	return false
}

// maxSchemeLen is the length of the longest of authSchemes.
const maxSchemeLen = len("SCRAM-SHA-256")

// authSchemes is the IANA HTTP Authentication Scheme Registry.
var authSchemes = [...]string{"Basic", "Bearer", "Concealed", "Digest", "DPoP", "GNAP", "HOBA", "Mutual",
	"Negotiate", "OAuth", "PrivateToken", "SCRAM-SHA-1", "SCRAM-SHA-256", "vapid"}

// SetBody keys the request from its complete body. On failure the request is
// bypassed with the reason (too large, not JSON, …).
func (c *Cache) SetBody(req *Request, body []byte) {
	if req.Bypassed() {
		return
	}
	if len(body) == 0 {
		req.bypass(ReasonNoBody)
		return
	}
	if len(body) > c.cfg.MaxRequestBytes {
		req.bypass(ReasonBodyTooLarge)
		return
	}
	req.Body = body
	if cap(req.canonical) < len(body) {
		req.canonical = make([]byte, 0, len(body)) // canonical JSON is rarely longer
	}
	k := c.keyingOf(req.Route)
	if k == nil {
		k = keyingOfOther(req.Route)
	}
	slot := c.canonicalize(req, k)
	if req.Bypassed() { // not canonical JSON
		return
	}
	if !k.plainModel { // a nested model path needs gjson
		m := gjson.GetBytes(body, req.Route.ModelPath)
		if !m.Exists() && modelButForCase(body, req.Route.ModelPath) {
			req.bypass(ReasonDuplicateKey)
			return
		}
		req.Model = m.String()
	}
	if parse := k.spec.parse; parse != nil {
		if r := parse(c, req, body); r != ReasonNone {
			req.bypass(r)
			return
		}
	}
	// keyingState, read into req; a purge's replay makes no record, which
	// could take another model's place (review Z235).
	if c.modelState(&req.state, req.Route.Name, req.Model, !req.purging) != nil {
		req.bypass(ReasonInternal)
		return
	}
	if slot != nil && req.state.Found && !req.state.empty { // else a body sent again could not hit
		c.remember(slot, req)
	}
	c.buildKey(req, k)
}

// keyingState is the model state a request is keyed under. A model
// without a record gets one now, before the request can go upstream: an
// answer is stored only under the generation it was keyed under
// (settleModel), so a purge while it is upstream moves a generation it
// holds — which a model without a record has not. A hit always finds the
// record (entries are stored under one); a miss of a model without one
// writes it once, read as empty (no answer stored under it yet: lookups
// skip the table until one is; see reclaimable). A full model table
// leaves the state without a record, and the answer is not stored.
func (c *Cache) keyingState(route, model string) (st ModelState, err error) {
	err = c.modelState(&st, route, model, true)
	return st, err
}

// makeModel makes the record of a model that has none (keyingState).
//
//go:noinline
func (c *Cache) makeModel(route, model string) (ModelState, error) {
	now := c.nowMs()
	st, err := c.updateModel(route, model, func(r *modelRecord, created bool) bool {
		if created {
			r.until = -now // empty, and young (reclaimable)
		}
		return false
	})
	if errors.Is(err, ErrModelTableFull) {
		return ModelState{}, nil
	}
	return st, err
}

// routeKeying is what keying a route's requests needs, worked out once
// per route when the cache is made rather than on every request: its
// kind's entry in the kinds table, and the canonicaliser's selection,
// which captures "stream" and, when it is a plain top-level name, the
// model field.
type routeKeying struct {
	route      *Route
	spec       *kindSpec
	sel        Selection
	plainModel bool
	// keyStart is the start of every exact key of the route
	// (appendRouteStart with kind 'K'): the same for all its requests,
	// so buildKey copies it in one append.
	keyStart []byte
}

func newKeying(r *Route) routeKeying {
	k := routeKeying{route: r, spec: r.Kind.spec(), plainModel: isPlainField(r.ModelPath), keyStart: appendRouteStart(nil, 'K', r)}
	k.sel = Selection{Only: r.KeyFields, Ignore: r.IgnoreFields, Capture: []string{"stream"}}
	// The model's member is keyed as sent, whatever key_fields selects or
	// ignore_fields leaves out: the key's model name is its decoded text
	// (canonicalString), in which 1, 1.0 and "1", or null and "", are one
	// (review Z64). A nested model path keys its top-level member; one
	// whose first segment is not a plain name keys the whole body.
	model, plain := r.ModelPath, k.plainModel
	if !plain {
		model, _, _ = strings.Cut(model, ".")
		plain = isPlainField(model)
	}
	if !plain {
		k.sel.Only, k.sel.Ignore = nil, nil
	}
	for _, f := range k.spec.formKeyed {
		// What changes the answer's form (a stream's usage chunk, a
		// vector's encoding or length) is keyed as "stream" is, whatever
		// key_fields selects or ignore_fields leaves out.
		k.sel.keepAlways(f)
	}
	if plain {
		k.sel.keepAlways(model)
	}
	if k.plainModel {
		k.sel.Capture = append(k.sel.Capture, r.ModelPath)
	}
	return k
}

// parseInputs is the classify and json kinds' request check: under a
// key_fields list, a request must carry a member it names besides the
// model's. One that carries none (clients that send "inputs" where the
// list says "input") is keyed by its model alone, and every such request
// shared one entry, each served the first one's answer; it is not cached
// (review of key_fields at request time, after Z211).
func parseInputs(c *Cache, req *Request, body []byte) Reason {
	if len(req.Route.KeyFields) == 0 || strings.Contains(req.Route.ModelPath, ".") {
		// (A nested model path's top-level member may hold the inputs
		// too: key_fields ["params"] for params.model is taken as written.)
		return ReasonNone
	}
	model := req.Route.ModelPath
	other := false
	gjson.ParseBytes(req.canonical).ForEach(func(k, _ gjson.Result) bool {
		other = k.String() != model
		return !other
	})
	if !other {
		return ReasonNoInput
	}
	return ReasonNone
}

// keyingOf returns route r's keying: the one made with the cache for a
// route of its configuration, else a new one (keyingOfOther), made by
// the caller: without that call this is within the inliner's budget, and
// SetBody runs no function for it.
func (c *Cache) keyingOf(r *Route) *routeKeying {
	if i := uint(r.Index); i < uint(len(c.keying)) && c.keying[i].route == r {
		return &c.keying[i]
	}
	return nil
}

//go:noinline
func keyingOfOther(r *Route) *routeKeying {
	k := newKeying(r)
	return &k
}

// keepAlways keeps member f in the canonical body whatever Only and
// Ignore say.
func (s *Selection) keepAlways(f string) {
	if len(s.Only) > 0 && !slices.Contains(s.Only, f) {
		s.Only = append(slices.Clip(s.Only), f)
	}
	if slices.Contains(s.Ignore, f) {
		s.Ignore = slices.DeleteFunc(slices.Clone(s.Ignore), func(g string) bool { return g == f })
	}
}

func isPlainField(path string) bool {
	for i := 0; i < len(path); i++ {
		switch c := path[i]; {
		case c == '_' || c == '-' || c >= '0' && c <= '9' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z':
		default:
			return false
		}
	}
	return path != ""
}

// modelName is canonicalString of a captured model field, reusing the
// last name read when the field is the same (requests name few models):
// its canonical text, kept beside it, compared whole, so the common case
// is within the inliner's budget. Only an unescaped field is kept (the
// field "a\"b" names a"b, whose own text a\"b must not stand for it).
func (c *Cache) modelName(v []byte) string {
	if string(v) == c.lastModelField {
		return c.lastModel
	}
	return c.newModelName(v)
}

// newModelName decodes a model field that is not the last one read, and
// keeps it and its name for the next request.
//
//go:noinline
func (c *Cache) newModelName(v []byte) string {
	m := canonicalString(v)
	if len(v) <= maxSpareBuffer && len(v) >= 2 && v[0] == '"' && bytes.IndexByte(v, '\\') < 0 {
		// A string with no escape: its text between the quotes is its
		// name. (A larger one is not kept for the next request.)
		c.lastModel, c.lastModelField = m, string(v)
	}
	return m
}

// modelButForCase says whether a nested model path the body does not hold
// is there but for case: {"params":{"Model":…}} under "params.model". Go's
// encoding/json (Ollama, LocalAI) reads that member as the model, so the
// request is refused as a name equal but for case to one the cache reads
// is on a plain model path (readButForCase): keyed under model "", its
// answer was out of reach of the model's purges and version switches.
// The path is walked name by name (escapes read as gjson reads them:
// "gen_ai\.model" is one name, review Z109), each object's members once;
// a path with a wildcard or a modifier is not walked. The body is
// canonical, so no object holds two names equal but for case.
func modelButForCase(body []byte, path string) bool {
	segs, ok := pathNames(path)
	if !ok {
		return false
	}
	cur := gjson.ParseBytes(body)
	folded := false
	for _, seg := range segs {
		var next gjson.Result
		switch {
		case cur.IsObject():
			exact := false
			cur.ForEach(func(name, v gjson.Result) bool {
				if name.Str == seg {
					next, exact = v, true
					return false
				}
				if !next.Exists() && strings.EqualFold(name.Str, seg) {
					next = v
				}
				return true
			})
			folded = folded || next.Exists() && !exact
		case cur.IsArray():
			next = cur.Get(seg) // an index, as gjson reads it
		}
		if !next.Exists() {
			return false
		}
		cur = next
	}
	return folded
}

// pathNames splits a gjson path of plain names into them, its escapes
// read; ok is false for a path with a wildcard or other gjson syntax.
func pathNames(path string) (names []string, ok bool) {
	var b []byte
	for i := 0; i < len(path); i++ {
		switch c := path[i]; c {
		case '\\':
			if i+1 == len(path) {
				return nil, false
			}
			i++
			b = append(b, path[i])
		case '.':
			names = append(names, string(b))
			b = b[:0]
		case '*', '?', '#', '|', '@', '[', ']', '{', '}', '(', ')', '!', '=', '<', '>', '%':
			return nil, false
		default:
			b = append(b, c)
		}
	}
	return append(names, string(b)), true
}

// canonicalString decodes a canonical JSON value as gjson's String would:
// a string's contents, or any other value's JSON text.
func canonicalString(v []byte) string {
	if len(v) >= 2 && v[0] == '"' && bytes.IndexByte(v, '\\') < 0 {
		return string(v[1 : len(v)-1])
	}
	return gjson.ParseBytes(v).String()
}

func canonReason(err error) Reason {
	switch {
	case errors.Is(err, ErrDuplicateKey):
		return ReasonDuplicateKey
	case errors.Is(err, ErrTooDeep):
		return ReasonTooDeep
	case errors.Is(err, ErrNumberRange):
		return ReasonNumberRange
	}
	return ReasonMalformedJSON
}

// buildKey assembles the full identity. Every variable-length part is
// length-prefixed (or, for the version, length-suffixed), so distinct parts
// can never concatenate to the same key:
//
//	"K1" route method path authority tenant(32) [key headers] model stream(S|N) canonical | version(16) gen(8)
//
// The part before the version — the request itself, without the model
// state — is what single flight coalesces on (LeaseFP): a version change or
// a purge must not split followers from their leader.
func (c *Cache) buildKey(req *Request, rk *routeKeying) {
	if need := len(req.canonical) + len(req.Route.Name) + len(req.Method) + len(req.Path) + len(req.authority) + len(req.keyHeaders) + len(req.Model) +
		versionIDLen + 84; cap(req.Key) < need {
		req.Key = make([]byte, 0, need)
	}
	k := req.appendRequestNamespace(append(req.Key[:0], rk.keyStart...))
	// Streamed and non-streamed answers never share an entry, even when
	// key_fields leaves "stream" out.
	if req.Stream {
		k = append(k, 'S')
	} else {
		k = append(k, 'N')
	}
	k = append(k, req.canonical...)
	req.stableLen = len(k)
	k = req.appendState(k)
	req.Key = k
	req.hk, req.keyState = c.hk, req.state
	// Both fingerprints in one pass: the lease's (LeaseFP: the key
	// without the model state) and the slot's (fingerprint: all of it).
	lease, whole := c.hk.fp.sum64Prefix(k, req.stableLen)
	req.FP, req.leaseFP = nonZero(whole), nonZero(lease)
}

// rekey keys req under its model state, req.state. The rest of a key
// (namespace, canonical body) is fixed once SetBody has built it, so a key
// built under the same state and process secret stands: a new leader's
// second look and a store do not hash the 1.7 KB key again.
func (c *Cache) rekey(req *Request) {
	// Only the version and generation are in a key (appendState): a state
	// that differs in Found or empty alone keys the same. Comparing those
	// two, not the whole struct, spares a call to its generated equality.
	if req.hk != c.hk || req.keyState.Gen != req.state.Gen || !req.keyState.Version.same(&req.state.Version) { // hk is nil until a key is built
		c.rebuildKey(req)
	}
}

// rebuildKey is buildKey with the request's route keying looked up, for a
// key built again after SetBody (rekey, an L2 store); apart so that
// rekey's common case, a key that stands, runs none of it.
//
//go:noinline
func (c *Cache) rebuildKey(req *Request) {
	k := c.keyingOf(req.Route)
	if k == nil {
		k = keyingOfOther(req.Route)
	}
	if req.lookedAt != 0 && req.lookedAs.at != req.lookedAt {
		// The first rebuild since the request's last look: the key it
		// looked up, which a purge by replay made meanwhile names.
		req.lookedAs = lookedKey{req.FP, req.lookedAt}
	}
	c.buildKey(req, k)
}

// nonZero maps a fingerprint to a non-zero one (0 means "none").
func nonZero(fp uint64) uint64 {
	if fp == 0 {
		return 1
	}
	return fp
}

// appendNamespace starts a key: kind of key, then route, method, path,
// authority, tenant, the values of the route's key_headers (only on a
// route that has them: other routes' keys are as they were) and model,
// each length-prefixed (the tenant is a fixed 32 bytes). Every key is
// made from it — the exact key (and so its L2 key, lease fingerprint and
// semantic partition) and an embeddings item's.
func (req *Request) appendNamespace(k []byte, kind byte) []byte {
	return req.appendRequestNamespace(appendRouteStart(k, kind, req.Route))
}

// keyFormat is the key format's version (appendRouteStart).
const keyFormat = '2'

// appendRouteStart appends the part of a namespace that is the route's
// alone (kind of key, route, its keying tag): the same for every request
// of the route, so an exact key copies it, made once (routeKeying).
//
// keyFormat versions what a key means: a module that keys a request
// otherwise (its canonical form, its bypasses) must not read another's
// entries, in shared data kept across a module upgrade or in an L2 that
// proxies of both modules share mid-rollout. '2' since -0 kept its sign
// and non-JSON bodies were no longer keyed (stop 73).
func appendRouteStart(k []byte, kind byte, r *Route) []byte {
	k = append(k, kind, keyFormat)
	k = appendLV(k, r.Name)
	return binary.LittleEndian.AppendUint64(k, r.keyTag)
}

// appendRequestNamespace appends the rest of a namespace, what the
// request adds to its route's start (appendRouteStart).
func (req *Request) appendRequestNamespace(k []byte) []byte {
	// One copy of appendLV's code, the model's included; the fields by
	// their addresses, not copied into the array.
	for i, s := range [...]*string{&req.Method, &req.Path, &req.authority, &req.Model} {
		if i == 3 { // before the model: the tenant and the key headers
			k = append(k, req.tenant[:]...)
			if len(req.Route.KeyHeaders) > 0 {
				k = binary.LittleEndian.AppendUint32(k, uint32(len(req.keyHeaders)))
				k = append(k, req.keyHeaders...)
			}
		}
		k = appendLV(k, *s)
	}
	return k
}

// namespaceLen is the length of what appendNamespace appends, known
// before any key is built (parseEmbeddings bounds a batch's keys by it).
func (req *Request) namespaceLen() int {
	n := 2 + 4 + len(req.Route.Name) + 8 + 4 + len(req.Method) + 4 + len(req.Path) + 4 + len(req.authority) +
		len(req.tenant) + 4 + len(req.Model)
	if len(req.Route.KeyHeaders) > 0 {
		n += 4 + len(req.keyHeaders)
	}
	return n
}

// appendState ends a key with the model state, fixed-size: the identity
// of the whole model version (zero when none is tracked) and generation.
func (req *Request) appendState(k []byte) []byte {
	k = append(k, req.state.Version[:]...)
	return binary.LittleEndian.AppendUint64(k, req.state.Gen)
}

// LeaseFP identifies the request for single flight: its key without the
// model state, computed on first use (only misses need it).
func (req *Request) LeaseFP() uint64 {
	if req.leaseFP != 0 { // inlined: buildKey made it on a request's first key
		return req.leaseFP
	}
	return req.leaseFPNew()
}

//go:noinline
func (req *Request) leaseFPNew() uint64 {
	req.leaseFP = nonZero(req.hk.fp.sum64(req.Key[:req.stableLen]))
	return req.leaseFP
}

func appendLV(b []byte, s string) []byte {
	b = binary.LittleEndian.AppendUint32(b, uint32(len(s)))
	return append(b, s...)
}

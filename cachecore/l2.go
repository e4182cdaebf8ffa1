package cachecore

import (
	"bytes"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"hash/crc32"
	"strconv"
	"time"

	"github.com/tidwall/gjson"
)

// The optional L2 tier: entries shared by every proxy of a mesh in Redis,
// reached through webdis (HTTP) because a proxy-wasm filter has no
// sockets. Everything here is sans IO: the webdis requests are Calls, their
// answers are parsed here (RESP, webdis' ".raw" output), and the Flight
// (protocol_l2.go) decides what to do with them.
//
// Redis keys (hex SHA-256, so no credential and no request byte is ever in
// a key, and every key is URL-safe):
//
//	<prefix>e:<h(L2 identity)>        an entry
//	<prefix>g                         the mesh-wide "purge all" generation
//	<prefix>g:<h(route, model)>       a model's mesh-wide generation (expires
//	                                  unless written under: l2Renew)
//	<prefix>l:<h(L2 identity)>        the cross-proxy single-flight lease
//
// The L2 identity is the L1 key without the proxy-local generation: the
// namespace (route, method, path, authority, tenant hash, model), the
// canonical request and the model version's identity. A purge moves a
// generation on in Redis (INCR); every value carries the generations it
// was written under, and a value whose generations are not the current
// ones is never served — an invalidated entry cannot come back.

// L2Config is the top-level "l2" section. Nil: no L2 (today's behaviour).
type L2Config struct {
	Cluster       string        // the webdis service's Envoy cluster
	Authority     string        // :authority of the calls
	Timeout       time.Duration // a lookup's deadline
	WriteTimeout  time.Duration // a write's deadline (off the client's path)
	TTLSlack      time.Duration // an entry with less fresh life left is not served from L2
	Write         string        // "async" (write-behind) or "off" (read only)
	MaxEntryBytes int           // larger values are not written
	Prefix        string        // Redis key prefix
	// Breaker: after BreakerFailures consecutive failures L2 is skipped
	// for BreakerCoolDown, then tried again.
	BreakerFailures int
	BreakerCoolDown time.Duration
	// LeaseTTL bounds the cross-proxy lease (SET NX EX): a leader that
	// vanishes holds it at most this long.
	LeaseTTL time.Duration
	// SyncInterval: how often a VM reads the purge log (l2sync.go).
	SyncInterval time.Duration
}

// L2 defaults.
const (
	DefaultL2Timeout      = 25 * time.Millisecond
	DefaultL2WriteTimeout = 500 * time.Millisecond
	DefaultL2TTLSlack     = time.Second
	DefaultL2Prefix       = "mc:"
	DefaultL2Failures     = 5
	DefaultL2CoolDown     = 5 * time.Second
	DefaultL2LeaseTTL     = 10 * time.Second
)

func (p *parser) l2(path string, v gjson.Result, maxEntry int) *L2Config {
	l := &L2Config{Authority: "webdis", Timeout: DefaultL2Timeout, WriteTimeout: DefaultL2WriteTimeout,
		TTLSlack: DefaultL2TTLSlack, Write: "async", MaxEntryBytes: maxEntry, Prefix: DefaultL2Prefix,
		BreakerFailures: DefaultL2Failures, BreakerCoolDown: DefaultL2CoolDown, LeaseTTL: DefaultL2LeaseTTL,
		SyncInterval: 0} // not set: DefaultL2SyncInterval, or tick_period if longer (config)
	p.fields(path, v, func(key string, v gjson.Result) bool {
		sub := join(path, key)
		switch key {
		case "cluster":
			l.Cluster = p.printable(sub, v, "")
		case "authority":
			l.Authority = p.authority(sub, v)
		case "timeout":
			l.Timeout = p.duration(sub, v, time.Millisecond, 10*time.Second)
		case "write_timeout":
			l.WriteTimeout = p.duration(sub, v, time.Millisecond, time.Minute)
		case "ttl_slack":
			l.TTLSlack = p.duration(sub, v, 0, time.Hour)
		case "write":
			l.Write = p.str(sub, v)
			if l.Write != "async" && l.Write != "off" {
				p.fail(sub, `must be "async" (write-behind) or "off" (read only), got %s`, short(v.Raw))
			}
		case "max_entry_bytes":
			l.MaxEntryBytes = p.intRange(sub, v, 1, maxEntry)
		case "prefix":
			l.Prefix = p.str(sub, v)
			for i := 0; i < len(l.Prefix); i++ {
				if c := l.Prefix[i]; !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == ':' || c == '_' || c == '-') {
					p.fail(sub, "may hold only letters, digits, ':', '_' and '-' (it is part of webdis URLs), got %q", l.Prefix)
					break
				}
			}
		case "breaker":
			p.fields(sub, v, func(k string, v gjson.Result) bool {
				switch k {
				case "failures":
					l.BreakerFailures = p.intRange(join(sub, k), v, 1, 1000)
				case "cool_down":
					l.BreakerCoolDown = p.duration(join(sub, k), v, 10*time.Millisecond, time.Hour)
				default:
					return false
				}
				return true
			})
		case "lease_ttl":
			l.LeaseTTL = p.duration(sub, v, time.Second, time.Hour)
		case "sync_interval":
			l.SyncInterval = p.duration(sub, v, 100*time.Millisecond, time.Hour)
		default:
			return false
		}
		return true
	})
	if l.Cluster == "" {
		p.fail(join(path, "cluster"), "is required: the Envoy cluster of the webdis service")
	}
	return l
}

// l2On reports whether req may use L2: configured, a single answer (not
// an embeddings batch), a plain miss (not no-cache, not only-if-cached).
func (c *Cache) l2On(req *Request) bool {
	return c.cfg.L2 != nil && req.batch == nil && req.Status == StatusMiss
}

// l2Identity is the request's key without the proxy-local generation:
// the stable part (namespace and canonical request) and the version.
func (req *Request) l2Identity() []byte {
	id := make([]byte, 0, req.stableLen+versionIDLen)
	id = append(id, req.Key[:req.stableLen]...)
	return append(id, req.state.Version[:]...)
}

func l2Hash(parts ...[]byte) string {
	h := sha256.New()
	for _, p := range parts {
		var n [4]byte
		binary.LittleEndian.PutUint32(n[:], uint32(len(p)))
		h.Write(n[:])
		h.Write(p)
	}
	var sum [32]byte
	return hex.EncodeToString(h.Sum(sum[:0])[:20])
}

type l2Keys struct {
	entry, entryGen, all, model, lease string
}

// l2Keys names the request's Redis keys. The entry's keys derive from the
// stable part of its identity only — not the model version — so that an
// entry purge reaches the entry whatever version the purging proxy knows
// (or does not know); the version is verified inside the value.
func (c *Cache) l2Keys(req *Request) l2Keys {
	p := c.cfg.L2.Prefix
	h := l2Hash(req.Key[:req.stableLen])
	return l2Keys{entry: p + "e:" + h, entryGen: p + "n:" + h, all: p + "g", model: p + l2ModelGen(req.Route.Name, req.Model), lease: p + "l:" + h}
}

func l2ModelGen(route, model string) string { return "g:" + l2Hash([]byte(route), []byte(model)) }

// The L2 value is base64 (standard, padded) of (little-endian):
//
//	"ML2" 2 | u64 all-generation | u64 model-generation | u64 entry-generation | u32 CRC-32C of the rest |
//	u16 length + the model version the answer reported | entry (Entry wire format, Key = L2 identity)
//
// A value is served only if it is whole (checksum), for this very request
// (its key equals the identity byte for byte, version included) and of the
// current generations.
const l2ValueHeader = 4 + 8 + 8 + 8 + 4

var crcTable = crc32.MakeTable(crc32.Castagnoli)

// l2Gens are the generations a value is written under. The all and model
// generations must exist in Redis (a missing one is created at a random
// start, never read as 0: see l2Looked); the entry generation exists only
// once the entry was purged, so a missing one is 0.
type l2Gens struct{ all, model, entry uint64 }

// Base64 because webdis relays binary values faithfully only in its raw
// (RESP) output, and that output drops the nil elements of an array (an
// MGET with a missing key): the lookup reads webdis' JSON instead, where
// only text survives. ok is false when the version is too long to frame.
func encodeL2Value(e *Entry, g l2Gens, version string) ([]byte, bool) {
	if len(version) > 0xffff {
		return nil, false
	}
	b := make([]byte, l2ValueHeader, l2ValueHeader+2+len(version)+e.EncodedSize())
	copy(b, "ML2\x02")
	binary.LittleEndian.PutUint64(b[4:], g.all)
	binary.LittleEndian.PutUint64(b[12:], g.model)
	binary.LittleEndian.PutUint64(b[20:], g.entry)
	b = binary.LittleEndian.AppendUint16(b, uint16(len(version)))
	b = append(b, version...)
	b = e.AppendEncode(b)
	binary.LittleEndian.PutUint32(b[28:], crc32.Checksum(b[l2ValueHeader:], crcTable))
	return base64.StdEncoding.AppendEncode(nil, b), true
}

// l2Look is what a lookup found.
type l2Look struct {
	gens    l2Gens
	missing []string // generation keys that do not exist (all, model)
	value   []byte   // nil: no entry
	leased  bool     // another request (of any proxy) leads the key
}

// l2AnswerCap bounds the size of a webdis answer the filter parses: a
// lookup's holds one value of at most max_entry_bytes, base64 (4/3) and
// JSON-quoted (a JSON writer may escape '/': up to twice that again),
// plus generations and a lease token.
func (c *Cache) l2AnswerCap() int { return 3*c.cfg.L2.MaxEntryBytes + 4096 }

// l2JSON reports whether a webdis JSON answer may be parsed: at most max
// bytes, and valid JSON within the nesting bound (jsonbound.go) — gjson's
// validator recurses, and a bomb must not reach it.
func l2JSON(body []byte, max int) bool {
	return len(body) <= max && checkJSON(body) == ReasonNone
}

// l2LongValue reports whether body, an answer to a lookup longer than max,
// begins as parseL2Lookup's shape does, three generations and then a value
// whose bytes up to max are all base64 (webdis may escape its '/'): a
// sound value too long for this proxy's cap, not garbage. Its work is
// bounded by max.
func l2LongValue(body []byte, max int) bool {
	if len(body) <= max {
		return false
	}
	body = body[:max]
	const head = `{"MGET":[`
	if len(body) < len(head) || string(body[:len(head)]) != head {
		return false
	}
	i := len(head)
	for g := 0; g < 3; g++ {
		switch {
		case len(body) >= i+5 && string(body[i:i+5]) == "null,":
			i += 5
			continue
		case i < len(body) && body[i] == '"':
			i++
		default:
			return false
		}
		j := i
		for j < len(body) && body[j] >= '0' && body[j] <= '9' {
			j++
		}
		if j == i || len(body) < j+2 || string(body[j:j+2]) != `",` {
			return false
		}
		i = j + 2
	}
	if i >= len(body) || body[i] != '"' {
		return false
	}
	for _, b := range body[i+1:] { // the value has not ended within max
		if !(b >= 'A' && b <= 'Z' || b >= 'a' && b <= 'z' || b >= '0' && b <= '9' || b == '+' || b == '/' || b == '=' || b == '\\') {
			return false
		}
	}
	return true
}

// parseL2Lookup reads webdis' JSON answer to MGET all-gen model-gen
// entry-gen entry lease: {"MGET":[gen|null, gen|null, gen|null,
// value|null, token|null]}. ok is false for anything else (an error reply,
// garbage, an answer over max bytes or too deep).
func parseL2Lookup(body []byte, max int, keys ...string) (l l2Look, ok bool) {
	if !l2JSON(body, max) {
		return l, false
	}
	arr := gjson.GetBytes(body, "MGET")
	if !arr.IsArray() {
		return l, false
	}
	if arrayLen(arr) != 5 { // counted first: Array() builds every element (review Z144)
		return l, false
	}
	items := arr.Array()
	gens := [3]*uint64{&l.gens.all, &l.gens.model, &l.gens.entry}
	for i, it := range items[:3] {
		switch it.Type {
		case gjson.Null:
			if i < 2 && i < len(keys) {
				l.missing = append(l.missing, keys[i])
			}
		case gjson.String:
			n, err := strconv.ParseUint(it.Str, 10, 64)
			if err != nil {
				return l, false
			}
			*gens[i] = n
		default:
			return l, false
		}
	}
	switch items[3].Type {
	case gjson.Null:
	case gjson.String:
		v, err := base64.StdEncoding.DecodeString(items[3].Str)
		if err != nil {
			v = []byte{} // not ours: counted as rejected
		}
		l.value = v
	default:
		return l, false
	}
	l.leased = items[4].Type == gjson.String
	return l, items[4].Type == gjson.String || items[4].Type == gjson.Null
}

// Why an L2 value is not served.
var (
	errL2Corrupt = errors.New("l2: corrupt value")       // checksum, framing, decoding
	errL2Foreign = errors.New("l2: another key's value") // identity differs
	errL2Old     = errors.New("l2: invalidated value")   // generation moved on, or another model version
)

// decodeL2Value checks v against the request's identity (whose first
// stable bytes are version-free) and the current generations; it returns
// the entry and the model version its answer reported.
func decodeL2Value(v, identity []byte, stable int, g l2Gens) (*Entry, string, error) {
	if len(v) < l2ValueHeader+2 || string(v[:4]) != "ML2\x02" ||
		binary.LittleEndian.Uint32(v[28:]) != crc32.Checksum(v[l2ValueHeader:], crcTable) {
		return nil, "", errL2Corrupt
	}
	n := int(binary.LittleEndian.Uint16(v[l2ValueHeader:]))
	rest := v[l2ValueHeader+2:]
	if len(rest) < n {
		return nil, "", errL2Corrupt
	}
	version := string(rest[:n])
	e, err := DecodeEntry(rest[n:])
	if err != nil {
		return nil, "", errL2Corrupt
	}
	if len(e.Key) != len(identity) || !bytes.Equal(e.Key[:stable], identity[:stable]) {
		return nil, "", errL2Foreign
	}
	if !bytes.Equal(e.Key, identity) || binary.LittleEndian.Uint64(v[4:]) != g.all ||
		binary.LittleEndian.Uint64(v[12:]) != g.model || binary.LittleEndian.Uint64(v[20:]) != g.entry {
		return nil, "", errL2Old
	}
	return e, version, nil
}

// webdis calls: GET for short commands, PUT (the body is the last
// argument) for binary values; ".raw" asks for the Redis protocol reply.
func (c *Cache) webdis(method, path string, body []byte, timeout time.Duration) *Call {
	l := c.cfg.L2
	// Every webdis answer is read, and parsed, within a lookup's cap or
	// refused; a purge-log read raises its own (L2Tick).
	return &Call{Cluster: l.Cluster, Timeout: timeout, Body: body, MaxBody: c.l2AnswerCap(),
		Headers: [][2]string{{":method", method}, {":path", path}, {":authority", l.Authority}}}
}

// RESP replies, as webdis relays them with ".raw", for the commands whose
// answer is a status, an integer or a nil (SETEX, SET NX, DEL, INCR,
// RPUSH).
type respKind uint8

const (
	respBad respKind = iota
	respSimple
	respError
	respInt
	respNil
)

// maxRESPReply bounds the replies parseRESP reads, one line each: the host
// reads a webdis answer only up to its call's MaxBody (far more) and one
// byte more, so a reply longer than that could look complete once cut.
const maxRESPReply = 4096

// parseRESP reads one such reply; anything else (a bulk string, an array,
// garbage, a truncated line, trailing bytes, more than maxRESPReply bytes)
// is respBad.
func parseRESP(b []byte) respKind {
	if len(b) > maxRESPReply {
		return respBad
	}
	i := bytes.Index(b, []byte("\r\n"))
	if i < 0 && len(b) > 1 && b[0] == ':' {
		// webdis sometimes sends an integer reply without its CRLF (and
		// a Content-Length to match): still a complete integer.
		if _, err := strconv.ParseInt(string(b[1:]), 10, 64); err == nil {
			return respInt
		}
	}
	if i < 1 || i+2 != len(b) {
		return respBad
	}
	line := b[1:i]
	switch b[0] {
	case '+':
		return respSimple
	case '-':
		return respError
	case ':':
		if _, err := strconv.ParseInt(string(line), 10, 64); err == nil {
			return respInt
		}
	case '$':
		if string(line) == "-1" {
			return respNil
		}
	}
	return respBad
}

// parseRESPBulkUint reads the reply of SET … GET: a bulk string holding
// a generation (the key's old value: answered true) or a nil (the key was
// missing: 0, answered true). Anything else is not answered.
func parseRESPBulkUint(b []byte) (v uint64, answered bool) {
	if parseRESP(b) == respNil {
		return 0, true
	}
	if len(b) > maxRESPReply || len(b) < 4 || b[0] != '$' {
		return 0, false
	}
	head, rest, ok := bytes.Cut(b[1:], []byte("\r\n"))
	n, err := strconv.Atoi(string(head))
	if !ok || err != nil || n < 1 || n > 20 || len(rest) != n+2 || string(rest[n:]) != "\r\n" {
		return 0, false
	}
	v, err = strconv.ParseUint(string(rest[:n]), 10, 64)
	return v, err == nil
}

// l2Breaker is this VM's circuit breaker on L2 (each VM decides alone: no
// shared state is worth a round trip here). The embeddings server's is
// embedBreaker (semantic.go), which routes share.
type l2Breaker struct {
	fails     int
	openUntil int64 // unix ms
}

// l2Allowed reports whether L2 may be tried now: the breaker is closed, or
// it would stay open longer than a cool-down from now, which only a wall
// clock stepped back makes: it skipped L2 for the step's length (review
// Z120).
func (c *Cache) l2Allowed() bool {
	now := c.nowMs()
	if c.l2b.openUntil-now > c.cfg.L2.BreakerCoolDown.Milliseconds() {
		c.l2b.openUntil = 0 // closed for good: it would open again by itself as the clock caught up (review Z128)
	}
	return now >= c.l2b.openUntil
}

// l2Result records a call's success or failure; it reports true when this
// failure opened the breaker.
func (c *Cache) l2Result(ok bool) bool {
	if ok {
		c.l2b.fails = 0
		return false
	}
	c.l2b.fails++
	if c.l2b.fails >= c.cfg.L2.BreakerFailures {
		c.l2b.openUntil = c.nowMs() + c.cfg.L2.BreakerCoolDown.Milliseconds()
		return true
	}
	return false
}

// l2Invalidate is the call that carries an invalidation to L2: INCR of a
// generation (every value written under the old one is a miss from now
// on, on every proxy) or DEL of one entry. what names it for the log; a
// failure is logged (warn): until the entries expire in Redis, their
// generation is the only thing that keeps them out, and it did not move.
// then, if set, runs once the invalidation is over: answered, or given up
// after its last try.
func (c *Cache) l2Invalidate(cmd, key, what string, then func() []Action) *Call {
	return c.l2InvalidateTry(cmd, key, what, 1, then)
}

// l2WriteTries is how often an invalidation or a purge-log record is sent
// before it is given up: a write that matters must survive one transport
// failure (a kept-alive connection webdis closed fails at once).
const l2WriteTries = 3

func (c *Cache) l2InvalidateTry(cmd, key, what string, try int, then func() []Action) *Call {
	call := c.webdis("GET", "/"+cmd+"/"+key+".raw", nil, c.cfg.L2.WriteTimeout)
	call.Done = func(res CallResult) []Action {
		ok := !res.Failed && !res.NotStarted && res.Status == 200 && parseRESP(res.Body) == respInt
		if !ok && try < l2WriteTries {
			return []Action{{Kind: ActDispatch, Call: c.l2InvalidateTry(cmd, key, what, try+1, then)}}
		}
		var acts []Action
		if !ok {
			acts = []Action{{Kind: ActLog, Level: LogWarn, Message: []byte("l2: the invalidation of " + what +
				" did not reach L2 (webdis unreachable or refusing " + cmd + ", " + strconv.Itoa(try) + " tries); its entries there expire with their TTL")}}
		}
		if then != nil {
			acts = append(acts, then()...)
		}
		return acts
	}
	return call
}

// l2GenMargin is added to the longest entry life in a model generation's
// expiry: it covers the time between the lookup that creates the
// generation and the write of the answer fetched meanwhile (the model's
// compute time, a wait on another proxy's lease).
const l2GenMargin = time.Minute

// l2GenLife is the expiry (seconds) a model's generation is created and
// renewed with: the longest life an entry of any route can have in L2
// (the highest TTL, of the route or of a confidence tier, plus the stale
// window, plus the second SETEX adds), plus l2GenMargin. Proxies with
// other configurations may give it another: a generation that expires
// before an entry written under it only makes that entry a miss.
func (c *Cache) l2GenLife() int64 {
	var longest time.Duration
	for _, r := range c.cfg.Routes {
		ttl := r.TTL
		if r.Confidence != nil {
			for _, t := range r.Confidence.Tiers {
				ttl = max(ttl, t.TTL)
			}
		}
		longest = max(longest, ttl+max(r.StaleWhileReval, r.StaleIfError))
	}
	return int64((longest + time.Second + l2GenMargin + time.Second - 1) / time.Second)
}

// l2RandomGen: a generation at or above it was created at a random start
// (l2CreateGen; below it with odds of 2⁻³⁰) and moved on by INCRs. One
// below it was made by an INCR of a missing key — a purge, shadow
// invalidation or drift that came while the generation was gone — which
// Redis creates at 1, with no expiry.
const l2RandomGen = 1 << 32

// l2Renew is the call that renews a model's generation (EXPIRE, with
// l2GenLife) after an entry was written under gen, so that the generation
// outlives the entries written under it: a model in use keeps its
// generation; a name nothing is stored under loses it l2GenLife after its
// last write, or after it was created. nil for a generation an INCR made
// (below l2RandomGen): it keeps no expiry (nor does one reseeded from it,
// l2Reseed: EXPIRE GT gives none to a key without one). Given one, it could expire
// while an entry written under it is still in Redis (a renewal that
// failed), and the next INCR of the missing key would make it 1 again —
// the value that entry carries, served again after a purge. Created at
// random and expired, a generation comes back at another random start,
// which nothing carries. A failed renewal is counted as a write error
// (e.g. webdis' ACL without EXPIRE) and leaves the breaker alone: L2
// answered.
func (c *Cache) l2Renew(key string, gen uint64, route *Route) *Call {
	if gen < l2RandomGen {
		return nil
	}
	// GT (Redis 7): the key holds whatever it holds when this lands —
	// maybe a generation an INCR made since, which must keep no expiry;
	// GT never gives a key without one an expiry, nor shortens another's.
	call := c.webdis("GET", "/EXPIRE/"+key+"/"+strconv.FormatInt(c.l2GenLife(), 10)+"/GT.raw", nil, c.cfg.L2.WriteTimeout)
	call.Done = func(res CallResult) []Action {
		if !res.Failed && !res.NotStarted && res.Status == 200 && parseRESP(res.Body) == respInt {
			return nil // :0 — the generation is gone: what was written under it is a miss anyway
		}
		return []Action{{Kind: ActCount, Event: EvL2WriteError, Route: route}}
	}
	return call
}

// l2InvalidateModel moves a model's mesh-wide generation on, then (once
// L2 has it) the model's L1 generation again (l2Again) and runs then (nil
// without L2).
func (c *Cache) l2InvalidateModel(route, model string, then func() []Action) []Action {
	return c.l2InvalidateModelThen(route, model, 0, func(ModelState) []Action {
		if then == nil {
			return nil
		}
		return then()
	})
}

// l2VersionSwitched is what an answer that switched its model's version
// (StoreResult.VersionChanged) adds with an L2: the model's mesh-wide
// generation moves on, as its L1 generation did (settleModel). An L2
// value is keyed without its version and checked against the version it
// names, so a switch back to a version (a lagging replica during a
// rollout) made that version's values from before the switch reachable
// again, on every tenant's requests (review Z66). Once L2 has it, the L1
// generation moves again (l2InvalidateModel), for a value an L2 lookup
// copied meanwhile.
//
// The answer that made the switch, stored under the generation the switch
// made, is stored again under the one the second move makes, unless
// anything else (a purge) moved it in between: lost with it, the next
// request for it went upstream again (review Z71). Other answers stored
// in that round trip are lost, as a copy from L2 would be.
func (c *Cache) l2VersionSwitched(req *Request, res StoreResult) []Action {
	if !res.VersionChanged || c.cfg.L2 == nil || !req.Route.L2 {
		return nil
	}
	if res.Reason != ReasonNone || len(res.Inserts) != 1 || req.batch != nil {
		return c.l2InvalidateModel(req.Route.Name, req.Model, nil) // no entry of its own to keep
	}
	k := switchedEntry{fp: req.FP, key: bytes.Clone(req.Key), stableLen: req.stableLen, tag: TenantTag(req.tenant), at: c.nowMs()}
	return c.l2InvalidateModelThen(req.Route.Name, req.Model, req.state.Gen, func(made ModelState) []Action {
		if !made.Found {
			return nil
		}
		return c.keepSwitched(&k, made)
	})
}

// switchedEntry is where the answer that switched a model's version was
// stored (l2VersionSwitched).
type switchedEntry struct {
	fp        uint64
	key       []byte
	stableLen int
	tag       uint32
	at        int64 // ms, when it was stored: a purge after it refuses the copy
}

// keepSwitched stores the answer at k again under the model state made.
func (c *Cache) keepSwitched(k *switchedEntry, made ModelState) []Action {
	now := c.nowMs()
	e, err := c.table.Lookup(k.fp, k.key, now)
	if err != nil || e == nil {
		return nil
	}
	key := append(k.key[:k.stableLen:k.stableLen], made.Version[:]...)
	key = binary.LittleEndian.AppendUint64(key, made.Gen)
	l1 := *e
	l1.Key = key
	ins, err := c.table.InsertSince(c.fingerprint(key), k.tag, l1.StaleUntil, l1.AppendEncode(nil), now, k.at)
	if err != nil && !indexWritten(err) {
		return nil
	}
	return []Action{{Kind: ActNoteStore, Stored: &Stored{Result: StoreResult{Inserts: []InsertResult{ins}}}}}
}

// l2InvalidateModelThen is l2InvalidateModel whose then is given the
// model's state the L1 purge done again made, if it replaced generation
// from (Found false if it made none, failed, or anything else — a purge, a
// version switch — moved the generation since from).
func (c *Cache) l2InvalidateModelThen(route, model string, from uint64, then func(ModelState) []Action) []Action {
	if c.cfg.L2 == nil {
		return nil
	}
	var made ModelState
	again := c.l2Again(func() (int, error) {
		st, moved, err := c.purgeModel(route, model, from)
		if err == nil && !moved {
			made = st
		}
		return 0, err
	}, func() []Action { return then(made) })
	call := c.l2Invalidate("INCR", c.cfg.L2.Prefix+l2ModelGen(route, model), "model "+strconv.Quote(model)+" of route "+route, again)
	return []Action{{Kind: ActDispatch, Call: call}}
}

// l2PurgeAll moves the mesh-wide generation of everything on, then (once
// L2 has it) purges L1 again (l2Again) and runs then.
func (c *Cache) l2PurgeAll(then func() []Action) *Call {
	if c.cfg.L2 == nil {
		return nil
	}
	return c.l2Invalidate("INCR", c.cfg.L2.Prefix+"g", "everything", c.l2Again(c.purgeAll, then))
}

// l2PurgeEntry invalidates one request's entry in L2 (not an embeddings
// batch: its items are not in L2): INCR of the entry's generation — a
// write-behind already under way carries the old one, so it can never be
// served — then DEL of the value, to free it (and so that the loss of the
// generation key cannot bring it back). Both keys are version-free: the
// purge reaches the entry whatever model version this proxy knows. Once
// the generation moved, the entry leaves L1 again (l2Again: keyed with
// the model's state then, as another proxy's purge is) and then runs.
// req has a key.
func (c *Cache) l2PurgeEntry(req *Request, then func() []Action) *Call {
	if c.cfg.L2 == nil || req.batch != nil {
		return nil
	}
	k := c.l2Keys(req)
	what := "an entry of route " + req.Route.Name
	route, model, stable := req.Route.Name, req.Model, bytes.Clone(req.Key[:req.stableLen])
	again := c.l2Again(func() (int, error) { return c.l2RemoveEntries(route, model, [][]byte{stable}, true) }, then)
	del := c.l2Invalidate("DEL", k.entry, what, nil)
	return c.l2Invalidate("INCR", k.entryGen, what, func() []Action {
		return append([]Action{{Kind: ActDispatch, Call: del}}, again()...)
	})
}

// l2Again is what follows an invalidation in L2 that came after the same
// one in L1 (a purge, a model's invalidation): the L1 one is done again,
// the purge mark moved first. Until Redis had the invalidation, an L2
// lookup of this process could still read the old value and copy it into
// L1 under the state the first purge left — where nothing would find it
// again, since a proxy skips its own records in the purge log. Done
// again, the purge takes out what was copied so far; the mark keeps out
// what lookups sent before now bring later (l2Unpurged).
func (c *Cache) l2Again(purge func() (int, error), then func() []Action) func() []Action {
	return func() []Action {
		c.movePurgeMark()
		var acts []Action
		freed, err := purge()
		if freed > 0 {
			acts = append(acts, Action{Kind: ActFreed, N: freed})
		}
		if err != nil {
			acts = append(acts, Action{Kind: ActLog, Level: LogWarn, Message: []byte("l2: an invalidation L2 now has could not be done again in L1: " + err.Error())})
		}
		if then != nil {
			acts = append(acts, then()...)
		}
		return acts
	}
}

// purgeMarkKey names, in shared data, the process's purge mark: a random
// value that every VM moves (writes anew) just before it applies to L1 a
// purge that L2 already has — its own, done again (l2Again), or another
// proxy's, read from the log (L2Tick). An L2 lookup reads it as it is
// sent, and the value it brings stays in L1 only if the mark has not
// moved since (l2Unpurged). Random, not a counter: moved with one write,
// no read, and no clock in it.
const purgeMarkKey = "mc:l2:purged"

// purgeMark reads the purge mark (0 before the first purge); ok is false
// when it cannot be read.
func (c *Cache) purgeMark() (mark uint64, ok bool) {
	raw, _, err := c.store.Get(purgeMarkKey)
	if errIs(err, ErrNotFound) {
		return 0, true
	}
	if err != nil || len(raw) != 8 {
		return 0, false
	}
	return binary.LittleEndian.Uint64(raw), true
}

// movePurgeMark writes a new purge mark. A failed write is not reported
// on its own: the L1 purge that follows it writes shared data too, and
// reports its failure.
func (c *Cache) movePurgeMark() {
	_ = c.store.Set(purgeMarkKey, binary.LittleEndian.AppendUint64(nil, c.rand()), 0)
}

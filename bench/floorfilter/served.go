//go:build floorkeyed

package main

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"strconv"
	"strings"
	"unsafe"

	"github.com/modelcache/modelcache/filter/proxywasm"
	"github.com/modelcache/modelcache/filter/proxywasm/types"
)

// hit-served: hit-keyed plus what a hit owes the client and the operator
// under the product's guarantees, each in the flattest code that does it
// (see the mode's comment in main.go). Its entry:
//
//	u32 n | stored request (n bytes) | i64 stored-at ms | i64 fresh-until ms |
//	u32 len | content-type | answer
//
// where the stored request is tenant(32) u32 len authority u32 len route
// canonical body: everything the key stands for, compared byte for byte.

// servedRoutes are the path prefixes of the bench config's cached routes
// (envoy/bench/cache.yaml), matched in order as modelcache matches them,
// then bench/v8host/hitpath.mjs's chat route.
var servedRoutes = [...]struct{ prefix, name string }{
	{"/hit/", "hit"}, {"/pass/", "pass"}, {"/coalesce/", "coalesce"}, {"/swr/", "swr"}, {"/xfetch/", "xfetch"},
	{"/fixed/", "fixed"}, {"/soak/", "soak"}, {"/embed/", "embed"}, {"/embedwhole/", "embedwhole"},
	{"/v1/chat/completions", "chat"},
}

// servedStream is a hit-served request: a stream type of its own, so that
// the other modes' streams, allocated per request, do not carry its state.
type servedStream struct {
	types.DefaultHttpContext
	served served
}

// served is what the request headers gave: the route, the tenant's hash
// (not the credential itself) and the authority; ok when the request may
// be answered from the cache.
type served struct {
	route     string
	authority [maxAuthority]byte
	alen      int
	tenant    [32]byte
	ok        bool
}

// maxAuthority bounds the authority kept in the stream (no allocation of
// its own: modelcache's hit allocates nothing); a longer one goes
// upstream.
const maxAuthority = 128

// freeServed are deleted streams, zeroed, for reuse: like modelcache's
// hit, this floor allocates nothing per request (the other modes allocate
// their stream).
var freeServed []*servedStream

func newServedStream() types.HttpContext {
	if n := len(freeServed); n > 0 {
		s := freeServed[n-1]
		freeServed = freeServed[:n-1]
		return s
	}
	return &servedStream{}
}

func (s *servedStream) OnHttpStreamDeleted() {
	if len(freeServed) < 64 {
		*s = servedStream{}
		freeServed = append(freeServed, s)
	}
}

// busy (-ldflags "-X main.busy=N") keeps the floor busy for N rounds of a
// loop before it answers, doing no other work: S2R's control for whether a
// point's latency follows what a hit does or only how long it takes.
var busy = "0"

var busyRounds, busySink = func() int { n, _ := strconv.Atoi(busy); return n }(), 0

func (s *servedStream) OnHttpRequestHeaders(_ int, endOfStream bool) types.Action {
	readHeaders()
	servedHeaders(&s.served)
	if !endOfStream {
		return types.ActionPause // until the body is complete
	}
	return types.ActionContinue
}

// heldBody is the request body once it is complete (readBody); until then,
// or if it cannot be read, ok is false and act is what the callback returns.
func heldBody(bodySize int, endOfStream bool) (b []byte, act types.Action, ok bool) {
	if !endOfStream {
		return nil, types.ActionPause, false
	}
	b, err := readBody(bodySize)
	return b, types.ActionContinue, err == nil
}

func (s *servedStream) OnHttpRequestBody(bodySize int, endOfStream bool) types.Action {
	b, act, ok := heldBody(bodySize, endOfStream)
	if !ok {
		return act
	}
	var hs [][2]string
	var a []byte
	ok = s.served.ok
	if ok {
		hs, a, ok = servedHit(&s.served, b)
	}
	if !ok {
		proxywasm.LogCritical("floorfilter hit-served: the request is not one a cached route may answer, or its entry is not stored or not fresh")
	}
	if a == nil {
		return types.ActionContinue // upstream (the first request stored its entry)
	}
	ctrs[0].Increment(1)
	for i := 0; i < busyRounds; i++ {
		busySink += i * i
	}
	_ = proxywasm.SendHttpResponse(200, hs, a, -1)
	return types.ActionPause
}

// The last credential hashed and its hash (modelcache remembers recent
// ones): a tenant's next request compares instead of hashing.
var lastCredential []byte
var lastTenant [32]byte

// ageHist records each hit's age, as modelcache's age-at-serve histogram.
var ageHist proxywasm.MetricHistogram

func defineServed() {
	if h, err := proxywasm.DefineHistogramMetric("floor.age"); err == nil {
		ageHist = h
	}
}

// servedHeaders reads what a hit needs from the request headers: a route
// by path prefix, a request that allows a cached answer (Cache-Control),
// the tenant's identity and the authority. ok is false when any is missing:
// the request then goes upstream.
func servedHeaders(s *served) {
	path := header(":path")
	s.route = ""
	for i := range servedRoutes {
		if strings.HasPrefix(path, servedRoutes[i].prefix) {
			s.route = servedRoutes[i].name
			break
		}
	}
	cc := header("cache-control")
	cred := header("authorization")
	if s.route == "" || strings.Contains(cc, "no-store") || strings.Contains(cc, "no-cache") || strings.TrimSpace(cred) == "" {
		return
	}
	if lastCredential == nil || string(lastCredential) != cred {
		h := sha256.New()
		h.Write([]byte("floor tenant\x00authorization\x00"))
		h.Write([]byte(cred))
		h.Sum(lastTenant[:0])
		lastCredential = append(lastCredential[:0], cred...)
	}
	s.tenant = lastTenant
	a := header(":authority")
	if len(a) > maxAuthority {
		return
	}
	s.alen = copy(s.authority[:], a)
	for i := 0; i < s.alen; i++ {
		if c := s.authority[i]; c >= 'A' && c <= 'Z' {
			s.authority[i] = c + 'a' - 'A'
		}
	}
	s.ok = true
}

// The response headers sent with a hit, and their text, reused.
var servedOut [][2]string
var servedText []byte

// servedHit answers a request body as hit-served does: keyedHit's lookup
// under the full identity (tenant, authority, route, canonical body), the
// entry's freshness against the clock, Age and Cache-Status from it, the
// entry's content type. It returns the status line's headers and the
// answer, or, for the first request of a body, nil and true: it stored the
// entry, and the request goes upstream.
func servedHit(s *served, b []byte) ([][2]string, []byte, bool) {
	authority := s.authority[:s.alen]
	c, ok := memoKeyedBody(b)
	if !ok {
		return nil, nil, false
	}
	fp := fnvMore(fnvMore(fnvMore(fnvMore(fnvOffset, s.tenant[:]), authority), []byte(s.route)), c)
	stored := 32 + 4 + len(authority) + 4 + len(s.route) + len(c) // the stored request's length
	now := proxywasm.WallClockNano() / 1e6                        // one read of the wall clock, as modelcache's hit
	v, _, err := getShared("fl:s:", fp)
	if err != nil {
		entry = binary.LittleEndian.AppendUint32(entry[:0], uint32(stored))
		entry = append(entry, s.tenant[:]...)
		entry = appendLV(entry, authority)
		entry = appendLV(entry, []byte(s.route))
		entry = append(entry, c...)
		entry = binary.LittleEndian.AppendUint64(entry, uint64(now))
		entry = binary.LittleEndian.AppendUint64(entry, uint64(now+24*3600*1000))
		entry = appendLV(entry, []byte("application/json"))
		entry = append(entry, answer...)
		return nil, nil, proxywasm.SetSharedData(keyString(), entry, 0) == nil
	}
	// The stored request, part by part, against this one's.
	if len(v) < 4 {
		return nil, nil, false
	}
	n := int(binary.LittleEndian.Uint32(v))
	if n != stored || len(v) < 4+n+16+4 {
		return nil, nil, false
	}
	r := v[4:]
	if !bytes.Equal(r[:32], s.tenant[:]) {
		return nil, nil, false
	}
	r = r[32:]
	if r, ok = eatLV(r, authority); !ok {
		return nil, nil, false
	}
	if r, ok = eatLV(r, []byte(s.route)); !ok {
		return nil, nil, false
	}
	if !bytes.Equal(r[:len(c)], c) {
		return nil, nil, false
	}
	r = r[len(c):]
	storedAt, freshUntil := int64(binary.LittleEndian.Uint64(r)), int64(binary.LittleEndian.Uint64(r[8:]))
	if now >= freshUntil {
		return nil, nil, false // stale: upstream
	}
	ctLen := int(binary.LittleEndian.Uint32(r[16:]))
	if ctLen > len(r)-20 {
		return nil, nil, false
	}
	ct, body := r[20:20+ctLen], r[20+ctLen:]
	age := (now - storedAt) / 1000
	servedText = strconv.AppendInt(servedText[:0], age, 10)
	ageLen := len(servedText)
	servedText = strconv.AppendInt(append(servedText, "floor; hit; ttl="...), (freshUntil-now)/1000, 10)
	servedOut = append(servedOut[:0], [2]string{"content-type", bytesString(ct)}, [2]string{"age", bytesString(servedText[:ageLen])},
		[2]string{"cache-status", bytesString(servedText[ageLen:])})
	ageHist.Record(uint64(now - storedAt))
	return servedOut, body, true
}

func appendLV(b, v []byte) []byte {
	return append(binary.LittleEndian.AppendUint32(b, uint32(len(v))), v...)
}

// eatLV checks that r starts with v, length-prefixed, and returns the rest.
func eatLV(r, v []byte) ([]byte, bool) {
	if len(r) < 4 || int(binary.LittleEndian.Uint32(r)) != len(v) || len(r)-4 < len(v) || !bytes.Equal(r[4:4+len(v)], v) {
		return nil, false
	}
	return r[4+len(v):], true
}

// bytesString views b as a string (the host copies what it sends).
func bytesString(b []byte) string { return unsafe.String(unsafe.SliceData(b), len(b)) }

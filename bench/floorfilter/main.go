// Command floorfilter is the cheapest possible Go proxy-wasm HTTP filter,
// built with the same ABI binding as modelcache, for make bench's floors:
// each mode does one kind of request's real work and nothing else, so what
// modelcache costs above the matching mode is its own. Build one with
//
//	GOOS=wasip1 GOARCH=wasm go build -buildmode=c-shared -ldflags "-X main.mode=read" ./bench/floorfilter
//
// Modes:
//
//   - empty: creates a stream context and continues every callback.
//   - read: also reads one request header (the least any filter that looks
//     at a request must do: a host call that returns data).
//   - pairs: reads all request headers and finds :path — what modelcache
//     must do on every request to pick a route (S4 "route not cached").
//   - bypass: pairs, then sees the request's Cache-Control, counts the
//     request in 2 counters defined at start and sets Cache-Status on the
//     response (S4 "bypass": modelcache's host calls on that path are
//     get_header_map_pairs 1, increment_metric 2, replace_header_map_value 1).
//   - miss: the least a cache must do for a miss whose answer turns out not
//     storable (S4 "uncacheable"), without the cache: read the headers and
//     drop accept-encoding, hold until the body is complete and read it, key
//     it, look the key up in shared data (absent), take a lease on it (get +
//     CAS set) with a deadline from the clock, count the request in 2
//     counters; on the response read its headers and the response's code
//     details, release the lease (get + CAS set), count the reason in 2
//     counters and set Cache-Status.
//   - miss-keyed: "miss" keyed as a cache with modelcache's guarantees must
//     key it: on the canonical form of the JSON body (cachecore's
//     canonicalizer, capturing the model's name), and with the model's
//     generation read from shared data (so that a new model never meets its
//     predecessor's answers): one more shared-data read, which finds a
//     record of modelcache's size (readModel). Built with
//     -tags floorkeyed (keyed.go), so that the other modes stay free of
//     cachecore's code.
//   - hit: holds the request, reads its headers and its body and answers
//     locally with a 1 KiB JSON body — S2's floor for a hit.
//   - hit-keyed: "hit" found as a cache with modelcache's guarantees must
//     find it: the body keyed on its canonical form with the model's
//     generation read from shared data (as miss-keyed; a body sent again
//     byte for byte is not canonicalised again, as modelcache keeps the
//     last canonical forms), the entry read from shared data under that
//     key, the request stored in it compared byte for byte with this one
//     (a key alone could be a collision), the answer sent from the entry,
//     the hit counted in 2 counters, in reused buffers throughout. The
//     first request of a body stores its entry and goes upstream. Built
//     with -tags floorkeyed (keyed.go).
//   - hit-served: "hit-keyed" plus what a hit owes its client and its
//     operator under modelcache's guarantees, each in the flattest code
//     that does it (served.go): the route matched by path prefix, the
//     request's Cache-Control seen, the tenant's identity (its credential
//     hashed, the last one remembered) and the authority in the key and
//     compared in the stored request, the entry's freshness judged by the
//     clock, Age and Cache-Status made from it, the entry's content type
//     sent, the hit counted in 1 counter and its age recorded in a
//     histogram: modelcache's 8 host calls on a hit. Its streams are
//     reused, so that, like modelcache's hit, it allocates nothing per
//     request (the other modes allocate their stream). A lower bound for a
//     cache with these guarantees, not one with the product's other
//     features (stale-while-revalidate, early refresh, shadowing, L2,
//     semantic lookup, single flight), none of which it decides.
//   - miss-served: "miss-keyed" plus what an uncacheable miss owes its
//     client, its co-tenants and its operator under modelcache's
//     guarantees, each in the flattest code that does it (missserved.go):
//     the request read as hit-served reads it and keyed on the same
//     identity, the key looked up in a bounded table (its bucket's index
//     read: found, listing other keys, once answers are stored; with -tags
//     floorkeyed,floorunbounded under a key of its own, found absent,
//     lookup_unbounded.go), the key's lease taken in a slot of 4 ways shared with
//     other keys' leases and hit-for-miss marks (a tenant's share bounded,
//     a mark displaced, never a live lease), the response's status and
//     Cache-Control read, the lease turned into a hit-for-miss mark.
//     modelcache's 18 host calls on that path. Its streams are reused.
//     Built with -tags floorkeyed; with -tags floorkeyed,floorpad it
//     also runs flat code of no use to the request, as much as modelcache
//     runs beyond it (pad.go): S4's control of what that volume of code
//     costs.
//   - embed: S9's floor per embedding item (embed.go).
//   - embed-calls: "embed" plus modelcache's own shared-data calls per new
//     item (embed.go).
//   - embed-cached: S9's floor for a batch whose every item is cached,
//     answered from shared data with modelcache's calls for it (embed.go).
package main

import (
	"strconv"
	"strings"
	"time"
	"unsafe"

	"github.com/modelcache/modelcache/filter/proxywasm"
	"github.com/modelcache/modelcache/filter/proxywasm/types"
)

var mode = "empty" // set with -ldflags "-X main.mode=read"

func init() { proxywasm.SetVMContext(&vm{}) }

func main() {}

type vm struct{ types.DefaultVMContext }

func (*vm) NewPluginContext(uint32) types.PluginContext { return &plugin{} }

type plugin struct{ types.DefaultPluginContext }

// Counters, defined at start like modelcache's (per route, per reason).
var ctrs [4]proxywasm.MetricCounter

func (*plugin) OnPluginStart(int) types.OnPluginStartStatus {
	if (mode == "miss-keyed" || mode == "miss-served" || mode == "hit-keyed" || mode == "hit-served") && !keyedBuilt {
		proxywasm.LogCritical("floorfilter: mode " + mode + " needs -tags floorkeyed")
		return types.OnPluginStartStatusFailed
	}
	switch mode {
	case "hit-served":
		defineServed()
	case "miss-served":
		startMissServed()
	}
	for i := range ctrs {
		if c, err := proxywasm.DefineCounterMetric("floor.c" + strconv.Itoa(i)); err == nil {
			ctrs[i] = c
		}
	}
	return types.OnPluginStartStatusOK
}

func (*plugin) NewHttpContext(id uint32) types.HttpContext {
	switch mode {
	case "hit-served":
		return newServedStream() // a stream of its own (served.go)
	case "miss-served":
		return newMissServedStream(id) // missserved.go
	}
	return &stream{}
}

type stream struct {
	types.DefaultHttpContext
	fp     uint64 // the miss's key
	leased bool
	// unkeyed: miss-keyed could not canonicalise the body (and did none
	// of the miss's shared-data work).
	unkeyed bool
	embed   embedState
}

// Buffers reused across requests (one VM runs one callback at a time), as
// modelcache reuses its own: the floor must not pay for garbage modelcache
// does not make.
var (
	rawHeaders []byte
	headers    [][2]string
	body       []byte
	shared     []byte
	key        []byte
	lease      [24]byte
)

func readHeaders() {
	rawHeaders, headers, _ = proxywasm.GetHttpRequestHeadersInto(rawHeaders, headers)
}

func header(name string) string {
	for _, h := range headers {
		if h[0] == name {
			return h[1]
		}
	}
	return ""
}

func (s *stream) OnHttpRequestHeaders(_ int, endOfStream bool) types.Action {
	switch mode {
	case "read":
		_, _ = proxywasm.GetHttpRequestHeader(":path")
	case "pairs":
		readHeaders()
		_ = header(":path")
	case "bypass":
		readHeaders()
		if strings.Contains(header("cache-control"), "no-store") {
			ctrs[0].Increment(1)
			ctrs[1].Increment(1)
		}
	case "miss", "miss-keyed":
		readHeaders()
		_ = header(":path")
		_ = proxywasm.RemoveHttpRequestHeader("accept-encoding")
		if !endOfStream {
			return types.ActionPause // until the body is complete
		}
	case "hit-keyed":
		readHeaders()
		if !endOfStream {
			return types.ActionPause // until the body is complete
		}
	case "hit", "embed", "embed-calls", "embed-cached":
		_, _ = proxywasm.GetHttpRequestHeaders()
		if !endOfStream {
			return types.ActionPause // until the body is complete
		}
	}
	return types.ActionContinue
}

// readBody reads the whole request body into the reused buffer.
func readBody(bodySize int) ([]byte, error) {
	b, err := proxywasm.GetHttpRequestBodyInto(body, 0, bodySize)
	if cap(b) > cap(body) {
		body = b[:0]
	}
	return b, err
}

// hitHeaders are hit-keyed's response headers (made once).
var hitHeaders = [][2]string{{"content-type", "application/json"}, {"age", "0"}, {"cache-status", "floor; hit; ttl=86400"}}

// answer is the hit's body: 1 KiB of chat completion.
var answer = func() []byte {
	b := []byte(`{"id":"floor","object":"chat.completion","choices":[{"index":0,"message":{"role":"assistant","content":"`)
	for len(b) < 1024-len(`"},"finish_reason":"stop"}]}`) {
		b = append(b, 'x')
	}
	return append(b, `"},"finish_reason":"stop"}]}`...)
}()

func (s *stream) OnHttpRequestBody(bodySize int, endOfStream bool) types.Action {
	switch mode {
	case "embed", "embed-calls":
		return embedRequestBody(s, bodySize, endOfStream)
	case "embed-cached":
		return embedCachedRequestBody(s, bodySize, endOfStream)
	case "hit":
		if !endOfStream {
			return types.ActionPause
		}
		_, _ = proxywasm.GetHttpRequestBody(0, bodySize)
		_ = proxywasm.SendHttpResponse(200, [][2]string{{"content-type", "application/json"}, {"age", "0"},
			{"cache-status", "floor; hit; ttl=86400"}}, answer, -1)
		return types.ActionPause
	case "hit-keyed":
		if !endOfStream {
			return types.ActionPause
		}
		b, err := readBody(bodySize)
		if err != nil {
			return types.ActionContinue
		}
		a, ok := keyedHit(b)
		if !ok {
			// It would do less than its row's work: say so in the log
			// rather than be measured as a floor.
			proxywasm.LogCritical("floorfilter hit-keyed: the request body is not JSON the canonicalizer reads, or its entry is not stored")
		}
		if a == nil {
			return types.ActionContinue // upstream (the first request stored its entry)
		}
		ctrs[0].Increment(1)
		ctrs[1].Increment(1)
		_ = proxywasm.SendHttpResponse(200, hitHeaders, a, -1)
		return types.ActionPause
	case "miss", "miss-keyed":
		if !endOfStream {
			return types.ActionPause
		}
		b, err := readBody(bodySize)
		if err != nil {
			return types.ActionContinue
		}
		if mode == "miss-keyed" {
			var ok bool
			if b, ok = keyedBody(b); !ok {
				// It would do less than its row's work: say so in the
				// answer and the log rather than be measured as a floor.
				s.unkeyed = true
				proxywasm.LogCritical("floorfilter miss-keyed: the request body is not JSON the canonicalizer reads")
				return types.ActionContinue
			}
		}
		s.fp = fnv64(b)
		now := proxywasm.WallClockNano() // the wall clock, read once in each of modelcache's two callbacks that need it
		// The lookup: the key is absent (every request is new).
		_, _, _ = getShared("fl:e:", s.fp)
		// The lease: read the slot, write it back with its CAS.
		_, cas, _ := getShared("fl:l:", s.fp%4096)
		putU64(lease[0:], s.fp)
		putU64(lease[8:], uint64(now+30*int64(time.Second)))
		putU64(lease[16:], 1)
		s.leased = proxywasm.SetSharedData(keyString(), lease[:], cas) == nil
		ctrs[0].Increment(1)
		ctrs[1].Increment(1)
	}
	return types.ActionContinue
}

func (s *stream) OnHttpResponseHeaders(int, bool) types.Action {
	switch mode {
	case "embed", "embed-calls", "embed-cached":
		_, _ = proxywasm.GetHttpResponseHeaders()
	case "bypass":
		_ = proxywasm.ReplaceHttpResponseHeader("cache-status", "modelcache; fwd=bypass")
	case "miss", "miss-keyed":
		hs, _ := proxywasm.GetHttpResponseHeaders()
		storable := true
		for _, h := range hs {
			if h[0] == "cache-control" && strings.Contains(h[1], "no-store") {
				storable = false
			}
		}
		_, _ = proxywasm.GetProperty([]string{"response", "code_details"})
		if s.leased {
			_ = proxywasm.WallClockNano()
			_, cas, _ := getShared("fl:l:", s.fp%4096)
			_ = proxywasm.SetSharedData(keyString(), nil, cas)
			s.leased = false
		}
		if !storable {
			ctrs[2].Increment(1)
			ctrs[3].Increment(1)
		}
		cs := "modelcache; fwd=uri-miss"
		if s.unkeyed {
			cs = "floor; fwd=bypass; detail=unkeyed"
		}
		_ = proxywasm.ReplaceHttpResponseHeader("cache-status", cs)
	}
	return types.ActionContinue
}

// getShared reads prefix+n from shared data into the reused buffer; key
// keeps the key for a set that follows.
func getShared(prefix string, n uint64) ([]byte, uint32, error) {
	key = strconv.AppendUint(append(key[:0], prefix...), n, 16)
	v, cas, err := proxywasm.GetSharedDataInto(keyString(), shared)
	if cap(v) > cap(shared) {
		shared = v[:0]
	}
	return v, cas, err
}

// readModel reads model n's record, as every keyed request of modelcache
// reads its model's and finds it: a record of modelcache's size, written
// by the first request that finds none, as a model's first miss writes
// its own. (A read that found nothing would spare the floor Envoy's copy
// of the record and its call into the module to allocate room for it.)
func readModel(n uint64) {
	if _, _, err := getShared("fl:m:", n); err == types.ErrorStatusNotFound {
		_ = proxywasm.SetSharedData(keyString(), modelRecord[:], 0)
	}
}

// modelRecord stands for a model's record as modelcache writes it (a count
// and one record: 72 bytes).
var modelRecord [72]byte

// keyString is key without a copy (the host copies what it keeps).
func keyString() string { return unsafe.String(unsafe.SliceData(key), len(key)) }

func fnv64(b []byte) uint64 { return fnvMore(fnvOffset, b) }

// fnvMore goes on with FNV-1a hash h over b (fnvOffset starts one).
func fnvMore(h uint64, b []byte) uint64 {
	for _, c := range b {
		h ^= uint64(c)
		h *= 1099511628211
	}
	return h
}

const fnvOffset = 14695981039346656037

func putU64(b []byte, v uint64) {
	for i := 0; i < 8; i++ {
		b[i] = byte(v >> (8 * i))
	}
}

func (s *stream) OnHttpResponseBody(bodySize int, endOfStream bool) types.Action {
	if mode == "embed" || mode == "embed-calls" {
		return embedResponseBody(s, bodySize, endOfStream)
	}
	if mode == "embed-cached" {
		return embedCachedResponseBody(s, bodySize, endOfStream)
	}
	return types.ActionContinue
}

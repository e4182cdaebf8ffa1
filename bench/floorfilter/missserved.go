//go:build floorkeyed

package main

import (
	"encoding/binary"
	"strings"
	"time"

	"github.com/modelcache/modelcache/filter/proxywasm"
	"github.com/modelcache/modelcache/filter/proxywasm/types"
)

// miss-served: miss-keyed plus what an uncacheable miss owes its client,
// its co-tenants and its operator under the product's guarantees, each in
// the flattest code that does it (see the mode's comment in main.go):
//
//   - the request as hit-served reads it (route by path prefix, the
//     request's Cache-Control, the tenant's hashed credential, the
//     authority), and keyed on all of it with the canonical body;
//   - the lookup in a bounded table: the key's bucket index read, which
//     once answers are stored lists other keys (lookup_bounded.go);
//   - single flight across workers as a hardened cache must lead it: the
//     key's slot (chosen by a hash seeded with a secret drawn at start)
//     holds up to missWays leases and hit-for-miss marks of different keys;
//     a new lease takes a free or dead way, else displaces the
//     soonest-expiring mark (the tenant's own once it holds its share),
//     never a live held lease; a live mark of its own key sends the request
//     upstream uncoalesced;
//   - on the response: its status, its Cache-Control (no-store, private)
//     and the code details read; the lease turned into a hit-for-miss mark
//     for missHitForMiss, so that the key's next requests skip coalescing.
//
// The slot is modelcache's layout ("ML" 2 n, then per lease fp state owner
// stream deadline tenant nwaiters waiters…), read and written as bytes by
// code of its own, not cachecore's LeaseTable: the floor measures what
// flat code doing that work costs, which modelcache's is compared to. It
// tries each compare-and-swap once (a lost one counts as a collision), and
// wakes nobody: with a new key each, no request ever follows. It is a lower
// bound for that work, not for the product's other features.

const (
	missWays       = 4            // leases per slot (modelcache's LeaseWays)
	missShare      = missWays / 2 // ways one tenant may hold
	missSlots      = 1024         // slots (modelcache's default lease_slots)
	missRecord     = 38           // one lease without waiters
	missMaxWait    = 30 * 1000    // ms a lease is trusted (the pass route's coalesce.max_wait)
	missHitForMiss = 30 * 1000    // ms a mark lasts (coalesce.hit_for_miss's default)
	missAnswerTTL  = 300 * 1000   // ms a stored answer is listed (lookup_bounded.go)
	leaseHeld      = 1            // a leader is upstream
	leaseMark      = 2            // hit-for-miss
	missCacheHdr   = "modelcache; fwd=uri-miss; fwd-status=200; detail=no-store"
)

// missSecret seeds the slot hash; missVM names this VM in leases. Both are
// drawn at start.
var missSecret, missVM uint64

func startMissServed() {
	t := uint64(time.Now().UnixNano())
	missSecret, missVM = fnvMore(fnvOffset, binary.LittleEndian.AppendUint64(nil, t)), t|1
}

// missServedStream is a miss-served request, reused as hit-served's are.
type missServedStream struct {
	types.DefaultHttpContext
	served served
	id     uint32
	fp     uint64 // the key's keyed hash: entry, lease and slot
	leased bool   // holds the key's lease until the response
	led    bool   // took the lease
	hfm    bool   // the key was marked hit-for-miss: upstream uncoalesced
}

var freeMissServed []*missServedStream

func newMissServedStream(id uint32) types.HttpContext {
	if n := len(freeMissServed); n > 0 {
		s := freeMissServed[n-1]
		freeMissServed = freeMissServed[:n-1]
		s.id = id
		return s
	}
	return &missServedStream{id: id}
}

func (s *missServedStream) OnHttpStreamDeleted() {
	if len(freeMissServed) < 64 {
		*s = missServedStream{}
		freeMissServed = append(freeMissServed, s)
	}
}

func (s *missServedStream) OnHttpRequestHeaders(_ int, endOfStream bool) types.Action {
	padPhase(0)
	readHeaders()
	servedHeaders(&s.served)
	_ = proxywasm.RemoveHttpRequestHeader("accept-encoding")
	if !endOfStream {
		return types.ActionPause // until the body is complete
	}
	return types.ActionContinue
}

func (s *missServedStream) OnHttpRequestBody(bodySize int, endOfStream bool) types.Action {
	b, act, ok := heldBody(bodySize, endOfStream)
	if !ok {
		return act
	}
	var c []byte
	ok = s.served.ok
	if ok {
		c, ok = keyedBody(b)
	}
	if !ok {
		// It would do less than its row's work: say so in the answer
		// (Cache-Status) and the log rather than be measured as a floor.
		s.served.ok = false
		proxywasm.LogCritical("floorfilter miss-served: the request is not one a cached route may answer, or its body is not JSON the canonicalizer reads")
		return types.ActionContinue
	}
	authority := s.served.authority[:s.served.alen]
	s.fp = fnvMore(fnvMore(fnvMore(fnvMore(missSecret, s.served.tenant[:]), authority), []byte(s.served.route)), c)
	// The lookup: the key is listed nowhere (every request is new).
	_ = missLookup(s.fp)
	now := proxywasm.WallClockNano() / 1e6 // the wall clock, read once in each of modelcache's two callbacks that need it
	tenant := binary.LittleEndian.Uint64(s.served.tenant[:])
	s.leased, s.hfm = missLead(s.fp, tenant, s.id, now)
	s.led = s.leased
	ctrs[0].Increment(1)
	ctrs[1].Increment(1)
	padPhase(1)
	return types.ActionContinue
}

// The response's headers and code details, read into reused memory.
var (
	respRaw         []byte
	respHeaders     [][2]string
	codeDetails     []byte
	codeDetailsPath = proxywasm.NewPropertyPath("response", "code_details") // encoded once, as modelcache reads it
)

func (s *missServedStream) OnHttpResponseHeaders(int, bool) types.Action {
	if !s.served.ok {
		_ = proxywasm.ReplaceHttpResponseHeader("cache-status", "floor; fwd=bypass; detail=unkeyed")
		return types.ActionContinue
	}
	respRaw, respHeaders, _ = proxywasm.GetHttpResponseHeadersInto(respRaw, respHeaders)
	status, storable := 0, true
	for i := range respHeaders {
		h := &respHeaders[i]
		switch h[0] {
		case ":status":
			for _, d := range []byte(h[1]) {
				status = status*10 + int(d-'0')
			}
		case "cache-control":
			if strings.Contains(h[1], "no-store") || strings.Contains(h[1], "private") {
				storable = false
			}
		}
	}
	codeDetails, _ = proxywasm.GetPropertyPathInto(codeDetailsPath, codeDetails[:0])
	if s.leased {
		now := proxywasm.WallClockNano() / 1e6
		until := int64(0)
		if !storable && status == 200 {
			until = now + missHitForMiss
		}
		missRelease(s.fp, s.id, now, until)
		s.leased = false
		if storable && status == 200 {
			missStored(s.fp, now+missAnswerTTL)
		}
	}
	if !storable {
		ctrs[2].Increment(1)
		ctrs[3].Increment(1)
	}
	cs := missCacheHdr
	switch {
	case s.hfm:
		cs = "floor; fwd=uri-miss; detail=hit-for-miss"
	case !s.led:
		cs = "floor; fwd=uri-miss; detail=collision"
	}
	_ = proxywasm.ReplaceHttpResponseHeader("cache-status", cs)
	padPhase(2)
	return types.ActionContinue
}

// slotOut is the slot written back, reused.
var slotOut []byte

// missSlotRecords finds the records of a slot read as v: their offsets in
// off, their number; 0 for anything malformed (a free slot).
func missSlotRecords(v []byte, off *[missWays + 1]int) int {
	if len(v) < 4 || v[0] != 'M' || v[1] != 'L' || v[2] != 2 || int(v[3]) > missWays {
		return 0
	}
	n, at := int(v[3]), 4
	for i := 0; i < n; i++ {
		off[i] = at
		if len(v)-at < missRecord {
			return 0
		}
		at += missRecord + 8*int(v[at+37])
		if at > len(v) {
			return 0
		}
	}
	off[n] = at
	if at != len(v) {
		return 0
	}
	return n
}

// missLead takes fp's lease for stream: leased when it leads; hfm when a
// live mark of fp sends it upstream uncoalesced. Neither: the slot has no
// way for it (every way a live held lease, or the tenant's share), or a
// compare-and-swap was lost.
func missLead(fp, tenant uint64, stream uint32, now int64) (leased, hfm bool) {
	v, cas, err := getShared("fl:l:", fp%missSlots)
	var off [missWays + 1]int
	n := 0
	if err == nil {
		n = missSlotRecords(v, &off)
	}
	le := binary.LittleEndian
	live, mine := 0, 0
	soonest, soonestMine := -1, -1
	var soonestAt, soonestMineAt int64
	for i := 0; i < n; i++ {
		r := v[off[i]:]
		state, deadline := r[8], int64(le.Uint64(r[21:]))
		if state == 0 || deadline <= now {
			continue // dead: dropped
		}
		if le.Uint64(r) == fp {
			return false, state == leaseMark // marked, or led by another
		}
		live++
		own := tenant != 0 && le.Uint64(r[29:]) == tenant
		if own {
			mine++
		}
		if state != leaseMark {
			continue
		}
		if soonest < 0 || deadline < soonestAt {
			soonest, soonestAt = i, deadline
		}
		if own && (soonestMine < 0 || deadline < soonestMineAt) {
			soonestMine, soonestMineAt = i, deadline
		}
	}
	victim := -1
	switch {
	case mine >= missShare:
		if victim = soonestMine; victim < 0 {
			return false, false
		}
	case live >= missWays:
		if victim = soonest; victim < 0 {
			return false, false
		}
	}
	out := append(slotOut[:0], 'M', 'L', 2, 0)
	for i := 0; i < n; i++ {
		r := v[off[i]:off[i+1]]
		if i == victim || r[8] == 0 || int64(le.Uint64(r[21:])) <= now {
			continue
		}
		out = append(out, r...)
		out[3]++
	}
	out = missAppendLease(out, fp, leaseHeld, missVM, stream, now+missMaxWait, tenant)
	slotOut = out
	return proxywasm.SetSharedData(keyString(), out, cas) == nil, false
}

// missAppendLease appends one lease without waiters to a slot.
func missAppendLease(out []byte, fp uint64, state byte, owner uint64, stream uint32, deadline int64, tenant uint64) []byte {
	out[3]++
	at := len(out)
	out = append(out, make([]byte, missRecord)...)
	r := out[at:]
	le := binary.LittleEndian
	le.PutUint64(r, fp)
	r[8] = state
	le.PutUint64(r[9:], owner)
	le.PutUint32(r[17:], stream)
	le.PutUint64(r[21:], uint64(deadline))
	le.PutUint64(r[29:], tenant)
	return out
}

// missRelease ends stream's lease of fp: a hit-for-miss mark until until
// (0: the lease is dropped). Its waiters would be woken; with a new key
// each there are none.
func missRelease(fp uint64, stream uint32, now, until int64) {
	v, cas, err := getShared("fl:l:", fp%missSlots)
	if err != nil {
		return
	}
	var off [missWays + 1]int
	n := missSlotRecords(v, &off)
	le := binary.LittleEndian
	out := append(slotOut[:0], 'M', 'L', 2, 0)
	found := false
	for i := 0; i < n; i++ {
		r := v[off[i]:off[i+1]]
		if r[8] == 0 || int64(le.Uint64(r[21:])) <= now {
			continue // dead: dropped
		}
		if le.Uint64(r) == fp && r[8] == leaseHeld && le.Uint64(r[9:]) == missVM && le.Uint32(r[17:]) == stream {
			found = true
			if until > 0 {
				out = missAppendLease(out, fp, leaseMark, 0, 0, until, le.Uint64(r[29:]))
			}
			continue
		}
		out = append(out, r...)
		out[3]++
	}
	slotOut = out
	if found {
		_ = proxywasm.SetSharedData(keyString(), out, cas)
	}
}

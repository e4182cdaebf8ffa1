package cachecore

import (
	"encoding/binary"
	"slices"
)

// Single flight across every Envoy worker.
//
// When a request misses, at most one request per key — the leader — goes
// upstream, everywhere in the Envoy process; identical requests on any
// worker — followers — pause until the leader's outcome is known. The
// rules, stated the way golang.org/x/sync/singleflight states its own:
//
//   - Leadership is a lease in shared data (LeaseTable). Taking it is a
//     compare-and-swap, so exactly one contender wins, on any worker; a lease
//     is only trusted until its deadline (the route's coalesce.max_wait), so
//     a leader that vanished (its VM failed) can never block a key for
//     longer than that.
//   - A new leader looks the key up once more before going upstream: the
//     previous leader may have stored the answer between this request's
//     miss and its winning the lease. It looks under the model state its
//     own lookup read. (An embeddings batch that read its slot ahead of its
//     lookup and won with that read knows no leader finished in between:
//     it reads nothing more, leaderLookup.)
//   - Followers register their worker in the lease. The leader, when done,
//     frees the lease and posts one message to each registered worker's
//     queue; that worker resumes its own paused streams (only a stream's own
//     worker may resume it). A tick on every worker re-checks paused streams,
//     so a lost message costs one tick (two for a follower whose retries
//     are exhausted: Flight.awaitWake), never a hang.
//   - Leader stored the answer: followers are answered from the cache
//     (Cache-Status "collapsed"). If the entry is not there after all
//     (evicted at once, model version moved on), that counts as a failure.
//   - Leader failed for a reason that may pass (5xx, 429, reset, timeout,
//     truncated or invalid output): the answer is never handed to
//     followers; one of them wins the lease and leads next, the others keep
//     waiting. A follower sits through at most coalesce.max_retries such
//     failures; then, by default, it is answered with the failure
//     (coalesce.on_retries_exhausted: "fail") instead of going upstream
//     itself ("forward"). A leader whose client hung up (OutcomeAbandoned)
//     is not such a failure: a follower just leads next.
//   - Leader's answer may not be stored for a lasting reason (no-store,
//     private, too large, not JSON, 4xx, low confidence, finish_reason): the
//     lease becomes "hit-for-miss" for coalesce.hit_for_miss, all followers go
//     upstream at once, and new requests for that key skip coalescing
//     meanwhile (Varnish's hit-for-miss), instead of queueing one by one.
//   - A follower waits at most coalesce.max_wait in total, then goes upstream
//     itself (fail-open).
//
// The table degrades gracefully under adversarial fill (see RATIONALE.md,
// "Lease slots with ways, displaceable marks"):
//
//   - A lease slot, mc:l:<slot>, holds up to LeaseWays leases of different
//     keys. The slot of a key is chosen by a keyed hash (a per-process
//     secret in shared data), so colliding keys cannot be computed offline.
//   - A hit-for-miss mark is only an optimisation: a new leader of another
//     key may displace the soonest-expiring mark of a full slot. A live
//     held lease is never displaced; an expired one is dead and dropped.
//   - One tenant's leases and marks take at most tenantShare ways of a slot
//     (routes without tenants are not bounded): past that, its new leader
//     may only displace one of its own marks.
//   - Only when every way of the slot is a live held lease (or the tenant's
//     share is all held leases) does a request go upstream uncoalesced
//     (RoleCollision).

// LeaseState is the state of a lease.
type LeaseState uint8

const (
	LeaseFree       LeaseState = iota // nobody leads
	LeaseHeld                         // a leader is upstream
	LeaseHitForMiss                   // key lastingly uncacheable until Deadline
)

// releaseCASAttempts bounds a release's compare-and-swap retries.
const releaseCASAttempts = 8 * maxCASAttempts

// LeaseWays is how many leases (of different keys) one lease slot holds.
const LeaseWays = 4

// tenantShare is how many ways of a slot one tenant may take.
const tenantShare = LeaseWays / 2

// Lease is one decoded lease.
type Lease struct {
	FP       uint64
	State    LeaseState
	Owner    uint64 // VM id of the leader
	Stream   uint32 // leader's context id on that VM
	Deadline int64  // unix ms: held → trusted until; hit-for-miss → until
	Tenant   uint64 // the tenant's tag (0: a route without tenants)
	Waiters  []uint64
}

// maxWaiters bounds a lease's waiter list; workers beyond it rely on ticks.
const maxWaiters = 64

func (l *Lease) live(now int64) bool { return l.State != LeaseFree && l.Deadline > now }

// leaseRecordBytes is the size of one encoded lease without its waiters.
const leaseRecordBytes = 8 + 1 + 8 + 4 + 8 + 8 + 1

// appendSlot appends the encoding of a slot's leases to b: "ML" 2 n, then
// per lease fp state owner stream deadline tenant nwaiters waiters….
func appendSlot(b []byte, ways []Lease) []byte {
	n := 4
	for i := range ways {
		n += leaseRecordBytes + 8*len(ways[i].Waiters)
	}
	at := len(b)
	b = slices.Grow(b, n)[:at+n]
	// Written in place at fixed offsets: one bounds check per record
	// rather than a capacity check per field.
	p := b[at:]
	p[0], p[1], p[2], p[3] = 'M', 'L', 2, byte(len(ways))
	p = p[4:]
	le := binary.LittleEndian
	for i := range ways {
		l := &ways[i]
		r := p[:leaseRecordBytes]
		le.PutUint64(r[0:], l.FP)
		r[8] = byte(l.State)
		le.PutUint64(r[9:], l.Owner)
		le.PutUint32(r[17:], l.Stream)
		le.PutUint64(r[21:], uint64(l.Deadline))
		le.PutUint64(r[29:], l.Tenant)
		r[37] = byte(len(l.Waiters))
		p = p[leaseRecordBytes:]
		for _, w := range l.Waiters {
			le.PutUint64(p, w)
			p = p[8:]
		}
	}
	return b
}

// decodeSlotInto decodes a slot record into ways' and waiters' memory
// (both returned, grown if need be); anything malformed (including another
// layout) reads as an empty slot. The work is bounded by LeaseWays ×
// maxWaiters, whatever the bytes. Each lease's Waiters is a full slice of
// waiters: an append to one never writes into another's.
func decodeSlotInto(ways []Lease, waiters []uint64, b []byte) ([]Lease, []uint64, bool) {
	ways, waiters = ways[:0], waiters[:0]
	if len(b) < 4 || b[0] != 'M' || b[1] != 'L' || b[2] != 2 || int(b[3]) > LeaseWays {
		return nil, waiters, false
	}
	n := int(b[3])
	le := binary.LittleEndian
	p := b[4:]
	for i := 0; i < n; i++ {
		if len(p) < leaseRecordBytes {
			return nil, waiters, false
		}
		l := Lease{
			FP:       le.Uint64(p),
			State:    LeaseState(p[8]),
			Owner:    le.Uint64(p[9:]),
			Stream:   le.Uint32(p[17:]),
			Deadline: int64(le.Uint64(p[21:])),
			Tenant:   le.Uint64(p[29:]),
		}
		nw := int(p[37])
		p = p[leaseRecordBytes:]
		if l.State > LeaseHitForMiss || nw > maxWaiters || len(p) < 8*nw {
			return nil, waiters, false
		}
		if nw > 0 {
			at := len(waiters)
			for j := 0; j < nw; j++ {
				waiters = append(waiters, le.Uint64(p[8*j:]))
			}
			l.Waiters = waiters[at:len(waiters):len(waiters)]
		}
		p = p[8*nw:]
		ways = append(ways, l)
	}
	if len(p) != 0 {
		return nil, waiters, false
	}
	return ways, waiters, true
}

// maxKeptLeaseSlot bounds the read and write buffers a LeaseTable keeps
// (a full slot, every lease with every waiter, is ≈ 2.2 KB).
const maxKeptLeaseSlot = 4096

// LeaseTable is the fixed table of lease slots over a Store. One per VM.
type LeaseTable struct {
	store  storeReader
	slots  uint64
	anchor uint32
	// Reused by every read and write: a read's leases (and their waiters)
	// are valid until the next read, so what outlives a call is copied.
	keyBuf, readBuf, writeBuf []byte
	ways                      []Lease
	waiters                   []uint64
	// ahead is a read of a slot made before the caller's lookup
	// (ReadAhead), for the next acquire of ahead.fp; aheadBuf holds it.
	ahead    slotRead
	aheadBuf []byte
}

// slotRead is one read of a lease slot, kept undecoded.
type slotRead struct {
	fp  uint64
	raw []byte
	cas uint32
	err error
	ok  bool
}

// NewLeaseTable returns a lease table of the given number of slots.
// The read buffer holds any slot from the start: the host allocates a
// result of its exact size, so a buffer grown one read at a time would
// allocate each time a slot holds more leases than any read before.
func NewLeaseTable(store Store, slots int) *LeaseTable {
	return &LeaseTable{store: readerOf(store), slots: uint64(slots), readBuf: make([]byte, 0, maxKeptLeaseSlot)}
}

// key is the shared-data key of fp's slot. Callers pass keyed
// fingerprints (Request.LeaseFP: SipHash under the process secret, see
// secret.go), so which keys share a slot cannot be known from outside.
// The string aliases keyBuf: valid until the next key is built (stores
// copy keys they keep).
func (t *LeaseTable) key(fp uint64) string {
	t.keyBuf = appendUint(append(t.keyBuf[:0], "mc:l:"...), fp%t.slots)
	return bytesString(t.keyBuf)
}

// Role is what a request became when it tried to lead.
type Role uint8

const (
	RoleLeader     Role = iota // won the lease: go upstream
	RoleFollower               // another request leads: wait
	RoleHitForMiss             // the key is lastingly uncacheable: go upstream, no waiting
	RoleCollision              // no way of the slot is free for this key: go upstream uncoalesced
)

var roleNames = [...]string{"leader", "follower", "hit_for_miss", "collision"}

func (r Role) String() string { return roleNames[r] }

// read returns the slot's leases and CAS; exists is false for a key never set.
func (t *LeaseTable) read(key string) (ways []Lease, cas uint32, exists bool, err error) {
	raw, cas, err := t.getInto(key, &t.readBuf)
	return t.decode(raw, cas, err)
}

// getInto reads key into *buf, and keeps the result's memory in *buf for
// the next read unless it grew past maxKeptLeaseSlot.
func (t *LeaseTable) getInto(key string, buf *[]byte) ([]byte, uint32, error) {
	raw, cas, err := t.store.GetInto(key, *buf)
	if err == nil && cap(raw) <= maxKeptLeaseSlot {
		*buf = raw[:0]
	}
	return raw, cas, err
}

// decode is read's second half: the leases of a slot read as raw.
func (t *LeaseTable) decode(raw []byte, cas uint32, err error) (ways []Lease, _ uint32, exists bool, _ error) {
	if errIs(err, ErrNotFound) {
		return t.ways[:0], 0, false, nil // a new lease goes into reused memory
	}
	if err != nil {
		return nil, 0, false, err
	}
	var ok bool
	ways, t.waiters, ok = decodeSlotInto(t.ways, t.waiters, raw)
	if ok {
		t.ways = ways[:0]
	} // else unreadable or empty: a free slot
	return ways, cas, true, nil
}

// write stores the slot's leases with the CAS read, or create-only if the
// key was missing. Dead leases (free, expired) are dropped on the way.
func (t *LeaseTable) write(key string, ways []Lease, now int64, cas uint32, exists bool) error {
	if !exists {
		if t.anchor == 0 {
			a, err := CreateCAS(t.store)
			if err != nil {
				return err
			}
			t.anchor = a
		}
		cas = t.anchor
	}
	t.writeBuf = appendSlot(t.writeBuf[:0], liveOnly(ways, now))
	err := t.store.Set(key, t.writeBuf, cas)
	if cap(t.writeBuf) > maxKeptLeaseSlot {
		t.writeBuf = nil
	}
	return err
}

func liveOnly(ways []Lease, now int64) []Lease {
	// In place, by index: a lease is moved only when an earlier one was
	// dropped (a ranged copy and an append cost two 72-byte copies per
	// lease under wasm, the second with write barriers).
	n := 0
	for i := range ways {
		if ways[i].live(now) {
			if n != i {
				ways[n] = ways[i]
			}
			n++
		}
	}
	return ways[:n]
}

func findFP(ways []Lease, fp uint64) int {
	for i := range ways {
		if ways[i].FP == fp && ways[i].State != LeaseFree {
			return i
		}
	}
	return -1
}

// soonestMark returns the live hit-for-miss mark that expires first among
// those of tenant (any tenant if all), or -1.
func soonestMark(ways []Lease, tenant uint64, all bool) int {
	best := -1
	for i := range ways {
		l := &ways[i]
		if l.State != LeaseHitForMiss || (!all && l.Tenant != tenant) {
			continue
		}
		if best < 0 || l.Deadline < ways[best].Deadline {
			best = i
		}
	}
	return best
}

func removeAt(ways []Lease, i int) []Lease { return append(ways[:i], ways[i+1:]...) }

// Acquire tries to make (vm, stream) the leader for fp until deadline. If
// another request leads fp, the caller becomes a follower and, with join,
// vm is added to the lease's waiters (without join — a background refresh
// that only wants to lead — nothing changes). tenant tags the lease for the
// per-tenant share (0: not bounded). The decision is linearisable: every
// outcome is the result of one successful compare-and-swap on the slot.
func (t *LeaseTable) Acquire(fp, tenant, vm uint64, stream uint32, now, deadline int64, join bool) (Role, error) {
	role, _, err := t.acquire(fp, tenant, vm, stream, now, deadline, join)
	return role, err
}

// ReadAhead reads fp's slot now, for the next acquire of fp to use
// instead of a read of its own. A leader that wins the lease with that
// read (acquire's unchanged) knows that no one wrote the slot since: no
// leader of fp finished in between (coalesce.go, leaderLookup). Taking
// over fp's expired lease is never unchanged: its leader may still store.
func (t *LeaseTable) ReadAhead(fp uint64) {
	if t.aheadBuf == nil {
		t.aheadBuf = make([]byte, 0, maxKeptLeaseSlot) // as readBuf
	}
	raw, cas, err := t.getInto(t.key(fp), &t.aheadBuf)
	// A failed read is not kept: the acquire reads for itself.
	t.ahead = slotRead{fp: fp, raw: raw, cas: cas, err: err, ok: err == nil || errIs(err, ErrNotFound)}
}

// acquire is Acquire; unchanged reports a lead won with the slot as
// ReadAhead read it.
func (t *LeaseTable) acquire(fp, tenant, vm uint64, stream uint32, now, deadline int64, join bool) (_ Role, unchanged bool, _ error) {
	key := t.key(fp)
	ahead := t.ahead
	t.ahead = slotRead{} // used once, by fp's acquire only
	for attempt := 0; attempt < maxCASAttempts; attempt++ {
		var ways []Lease
		var cas uint32
		var exists bool
		var err error
		unchanged = attempt == 0 && ahead.ok && ahead.fp == fp
		if unchanged {
			ways, cas, exists, err = t.decode(ahead.raw, ahead.cas, ahead.err)
		} else {
			ways, cas, exists, err = t.read(key)
		}
		if err != nil {
			return RoleCollision, false, err
		}
		var waiters []uint64
		if i := findFP(ways, fp); i >= 0 {
			l := &ways[i]
			if l.live(now) {
				switch {
				case l.State == LeaseHitForMiss:
					return RoleHitForMiss, false, nil
				case l.Owner == vm && l.Stream == stream:
					return RoleLeader, false, nil // already ours
				}
				if !join || slices.Contains(l.Waiters, vm) || len(l.Waiters) >= maxWaiters {
					return RoleFollower, false, nil
				}
				l.Waiters = append(l.Waiters, vm)
				err = t.write(key, ways, now, cas, exists)
				if errIs(err, ErrCasMismatch) {
					continue
				}
				return RoleFollower, false, err
			}
			// fp's own dead lease: take it over. Waiters of a previous
			// holder are kept so they still get woken. A leader past its
			// deadline may still store, unseen by a read made before.
			if l.State == LeaseHeld {
				waiters = l.Waiters
				unchanged = false
			}
			ways = removeAt(ways, i)
		}
		ways = liveOnly(ways, now)
		// Make room: within the tenant's share, and within the slot.
		if victim, ok := makeRoom(ways, tenant); !ok {
			return RoleCollision, false, nil
		} else if victim >= 0 {
			ways = removeAt(ways, victim)
		}
		ways = append(ways, Lease{FP: fp, State: LeaseHeld, Owner: vm, Stream: stream, Deadline: deadline, Tenant: tenant, Waiters: waiters})
		err = t.write(key, ways, now, cas, exists)
		if errIs(err, ErrCasMismatch) {
			continue
		}
		if err != nil {
			return RoleCollision, false, err
		}
		return RoleLeader, unchanged, nil
	}
	return RoleCollision, false, ErrContention
}

// makeRoom picks the way a new lease of tenant displaces in a slot of live
// leases: -1 if a way is free, the soonest-expiring hit-for-miss mark
// otherwise — the tenant's own once it holds its share. ok is false when
// only live held leases could make room: they are never displaced.
func makeRoom(ways []Lease, tenant uint64) (victim int, ok bool) {
	if tenant != 0 {
		mine := 0
		for i := range ways {
			if ways[i].Tenant == tenant {
				mine++
			}
		}
		if mine >= tenantShare {
			victim = soonestMark(ways, tenant, false)
			return victim, victim >= 0
		}
	}
	if len(ways) < LeaseWays {
		return -1, true
	}
	victim = soonestMark(ways, 0, true)
	return victim, victim >= 0
}

// Release ends (vm, stream)'s leadership of fp and returns the workers to
// wake. With hitForMissUntil > 0 the lease becomes a hit-for-miss mark until
// then. If the lease is no longer this leader's (it expired and someone took
// over), nothing changes and no one is woken by this call.
func (t *LeaseTable) Release(fp, vm uint64, stream uint32, now, hitForMissUntil int64) ([]uint64, error) {
	key := t.key(fp)
	// A failed acquire fails open at once, but a failed release would keep
	// the key's followers waiting until max_wait: release tries longer.
	// (Every lost CAS is another VM's successful write to the slot, so the
	// loop only runs long under heavy contention on one slot.)
	for attempt := 0; attempt < releaseCASAttempts; attempt++ {
		ways, cas, exists, err := t.read(key)
		if err != nil || !exists {
			return nil, err
		}
		i := findFP(ways, fp)
		if i < 0 {
			return nil, nil
		}
		l := &ways[i]
		if l.State != LeaseHeld || l.Owner != vm || l.Stream != stream {
			return nil, nil
		}
		waiters := slices.Clone(l.Waiters) // the read's memory is reused
		if hitForMissUntil > 0 {
			*l = Lease{FP: fp, State: LeaseHitForMiss, Deadline: hitForMissUntil, Tenant: l.Tenant}
		} else {
			ways = removeAt(ways, i)
		}
		err = t.write(key, ways, now, cas, true)
		if errIs(err, ErrCasMismatch) {
			continue
		}
		return waiters, err
	}
	return nil, ErrContention
}

// Peek returns fp's lease (State LeaseFree if it has none).
func (t *LeaseTable) Peek(fp uint64) (Lease, error) {
	ways, _, _, err := t.read(t.key(fp))
	if err != nil {
		return Lease{}, err
	}
	if i := findFP(ways, fp); i >= 0 {
		l := ways[i]
		l.Waiters = slices.Clone(l.Waiters) // the read's memory is reused
		return l, nil
	}
	return Lease{FP: fp}, nil
}

// Leading reports whether fp is still led by someone live.
func (t *LeaseTable) Leading(fp uint64, now int64) (bool, error) {
	l, err := t.Peek(fp)
	if err != nil {
		return false, err
	}
	return l.live(now) && l.State == LeaseHeld, nil
}

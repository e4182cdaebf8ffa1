package cachecore

import (
	"encoding/binary"
	"strconv"
	"time"
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
//     is only trusted until its deadline (the route's coalesce.max_wait,
//     renewed while its leader is alive: Flight.KeepLease), so a leader
//     that vanished (its VM failed) can never block a key for longer than
//     that.
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
//     private, too large, not JSON, 4xx, low confidence, finish_reason,
//     another API's shape, a rerank document not the client's, bad_shape,
//     no_version): the
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

// maxKeptLeaseSlot bounds the read buffers a LeaseTable keeps, and is the
// size of its write buffer: a full slot, every lease with every waiter
// (maxLeaseSlotBytes, ≈ 2.2 KB), fits in it.
const maxKeptLeaseSlot = 4096

// maxLeaseSlotBytes is the largest slot written: its header and LeaseWays
// leases of maxWaiters waiters each (scanSlot reads nothing larger).
const maxLeaseSlotBytes = 4 + LeaseWays*(leaseRecordBytes+8*maxWaiters)

// The write buffer holds any slot written: it fails to compile otherwise.
var _ [maxKeptLeaseSlot - maxLeaseSlotBytes]struct{}

// LeaseTable is the fixed table of lease slots over a Store. One per VM.
type LeaseTable struct {
	store  storeReader
	slots  uint64
	anchor uint32
	// horizon (ms, 0: none) is the furthest ahead of now any record of
	// any configuration of the process is written to end (SetHorizon,
	// ownLive): one of the key asked about ending later was written before
	// the wall clock stepped back, and is dead rather than live for as long
	// as the step.
	horizon int64
	// Reused by every read and write: a read is valid until the next
	// read, so what outlives a call is copied. writeBuf holds any slot
	// written (maxLeaseSlotBytes) and is never replaced.
	readBuf, writeBuf []byte
	// keyBuf holds the last key built, right-aligned (key): a fixed
	// array, written in place, grows nothing and stores no pointer.
	keyBuf [len(leaseKeyPrefix) + 20]byte
	// ahead is a read of a slot made before the caller's lookup
	// (ReadAhead), for the next acquire of ahead.fp that names it by its
	// number (ahead.seq, from aheadSeq); aheadBuf holds it.
	ahead    slotRead
	aheadBuf []byte
	aheadSeq uint64
	// at is where each lease of the slot an acquire or a release scanned
	// begins (scanSlot): kept here, not zeroed on the stack each time.
	at [LeaseWays + 1]int
	// followed is the leader the last acquire that returned RoleFollower
	// found holding the lease (read by Join's caller at once).
	followed LeaseHolder
}

// LeaseHolder names a lease's leader: its worker and its request there
// (zero: not named).
type LeaseHolder struct {
	VM     uint64
	Stream uint32
}

// slotRead is one read of a lease slot, kept undecoded.
type slotRead struct {
	seq uint64 // which ReadAhead (0: none)
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
//
// A table has at most 1<<32 slots, so that a slot's number fits in 32 bits
// (key): lease_slots is at most 1<<20 (ParseConfig), and a larger table
// would not fit in shared memory anyway.
func NewLeaseTable(store Store, slots int) *LeaseTable {
	return &LeaseTable{store: readerOf(store), slots: min(uint64(slots), 1<<32), readBuf: make([]byte, 0, maxKeptLeaseSlot),
		writeBuf: make([]byte, maxKeptLeaseSlot)}
}

// key is the shared-data key of fp's slot. Callers pass keyed
// fingerprints (Request.LeaseFP: SipHash under the process secret, see
// secret.go), so which keys share a slot cannot be known from outside.
// The string aliases keyBuf: valid until the next key is built (stores
// copy keys they keep). It is not inlined: a lease's acquire and its
// release both build a key, and one copy of the code serves both.
//
//go:noinline
func (t *LeaseTable) key(fp uint64) string {
	// The slot's number is written from its last digit back, as
	// appendUint does, then the prefix before it. It fits in 32 bits
	// (NewLeaseTable): Go's wasm divides a uint32 by 10 with one
	// multiplication, a uint64 with a long emulation of the high half of
	// a 64-bit product.
	i, v := len(t.keyBuf), uint32(fp%t.slots)
	for {
		i--
		t.keyBuf[i] = byte('0' + v%10)
		v /= 10
		if v == 0 {
			break
		}
	}
	// The prefix byte by byte: copy would call memmove for five bytes.
	i -= len(leaseKeyPrefix)
	p := (*[len(leaseKeyPrefix)]byte)(t.keyBuf[i:])
	p[0], p[1], p[2], p[3], p[4] = leaseKeyPrefix[0], leaseKeyPrefix[1], leaseKeyPrefix[2], leaseKeyPrefix[3], leaseKeyPrefix[4]
	return bytesString(t.keyBuf[i:])
}

// leaseKeyPrefix begins the shared-data key of every lease slot. (key
// writes its five bytes one by one: the assignment below fails to compile
// if its length changes.)
const leaseKeyPrefix = "mc:l:"

var _ [5]byte = [len(leaseKeyPrefix)]byte{}

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

// getInto reads key into *buf. Both read buffers start at
// maxKeptLeaseSlot (NewLeaseTable, ReadAhead), so a read that does not fit
// one is larger than any buffer kept: the buffer is never replaced, and
// storing it back (a write barrier) is not needed. It inlines: a lease's
// acquire and its release each read the slot without a call of their own.
// (It calls the buffered side itself, storeReader.GetInto's one call: one
// inlined level less keeps it within Go's inlining budget.)
func (t *LeaseTable) getInto(key string, buf *[]byte) ([]byte, uint32, error) {
	return t.store.buffered.GetInto(key, *buf)
}

// Acquire tries to make (vm, stream) the leader for fp until deadline. If
// another request leads fp, the caller becomes a follower and, with join,
// vm is added to the lease's waiters (without join — a background refresh
// that only wants to lead — nothing changes). tenant tags the lease for the
// per-tenant share (0: not bounded). The decision is linearisable: every
// outcome is the result of one successful compare-and-swap on the slot.
func (t *LeaseTable) Acquire(fp, tenant, vm uint64, stream uint32, now, deadline int64, join bool) (Role, error) {
	role, _, err := t.acquire(fp, tenant, vm, stream, now, deadline, join, 0)
	return role, err
}

// ReadAhead reads fp's slot now, for the next acquire of fp to use
// instead of a read of its own, and returns the read's number: only an
// acquire that names it uses it (the read belongs to the lookup that made
// it; a request whose lookup read ahead and then did not join must not
// leave its read to another request's Join). A leader that wins the lease
// with that read (acquire's unchanged) knows that no one wrote the slot
// since: no leader of fp finished in between (coalesce.go, leaderLookup).
// Taking over fp's expired lease is never unchanged: its leader may still
// store.
func (t *LeaseTable) ReadAhead(fp uint64) uint64 {
	if t.aheadBuf == nil {
		t.aheadBuf = make([]byte, 0, maxKeptLeaseSlot) // as readBuf
	}
	raw, cas, err := t.getInto(t.key(fp), &t.aheadBuf)
	t.aheadSeq++
	// A failed read is not kept: the acquire reads for itself.
	t.ahead = slotRead{seq: t.aheadSeq, fp: fp, raw: raw, cas: cas, err: err, ok: err == nil || errIs(err, ErrNotFound)}
	return t.aheadSeq
}

// acquire is Acquire; unchanged reports a lead won with the slot as
// ReadAhead read it, in the read numbered ahead (0: none; any read ahead
// is dropped by the first acquire after it, whichever it names). It works
// on the slot's bytes (scanSlot): leases are read where they lie and
// copied whole into the slot written back, never decoded into Lease
// values.
func (t *LeaseTable) acquire(fp, tenant, vm uint64, stream uint32, now, deadline int64, join bool, ahead uint64) (_ Role, unchanged bool, _ error) {
	key := t.key(fp)
	// The read ahead is used once, by the acquire that names it only. It
	// is read where it lies and dropped by clearing its number alone:
	// copying it out and zeroing it (a slice and an error) would cost
	// write barriers on every acquire, most of which have none.
	useAhead := ahead != 0 && t.ahead.seq == ahead && t.ahead.ok && t.ahead.fp == fp
	t.ahead.seq = 0
	for attempt := 0; attempt < maxCASAttempts; attempt++ {
		var raw []byte
		var cas uint32
		var err error
		unchanged = attempt == 0 && useAhead
		if unchanged {
			raw, cas, err = t.ahead.raw, t.ahead.cas, t.ahead.err
		} else {
			raw, cas, err = t.getInto(key, &t.readBuf)
		}
		if err != nil {
			if !errIs(err, ErrNotFound) {
				return RoleCollision, false, err
			}
			// A missing slot is written create-only: every acquire
			// that reads none writes one (a free slot has room).
			if cas, err = t.createCAS(); err != nil {
				return RoleCollision, false, err
			}
			raw = nil
		}
		at := &t.at // scanSlot writes what is read of it
		scan := scanSlot(raw, at, fp, tenant, now)
		n, own := scan.n, scan.own
		var waiters []byte // fp's dead lease's waiters, taken over
		if own >= 0 {
			r := leaseRecord(raw, at[own])
			if t.ownLive(r, now) {
				// An outcome that writes nothing is not decided on a read
				// made ahead: the slot may have moved since (a lookup's
				// asynchronous step, another worker), and no CAS would
				// tell. The slot is read again.
				if unchanged {
					continue
				}
				switch {
				case LeaseState(r[8]) == LeaseHitForMiss:
					return RoleHitForMiss, false, nil
				case le.Uint64(r[9:17]) == vm && le.Uint32(r[17:21]) == stream:
					return RoleLeader, false, nil // already ours
				}
				ws := raw[at[own]+leaseRecordBytes : at[own+1]]
				t.followed = LeaseHolder{le.Uint64(r[9:17]), le.Uint32(r[17:21])}
				if !join || len(ws) >= 8*maxWaiters || hasWaiter(ws, vm) {
					return RoleFollower, false, nil
				}
				err = t.join(key, raw, at, n, own, vm, now, cas)
				if errIs(err, ErrCasMismatch) {
					continue
				}
				return RoleFollower, false, err
			}
			// fp's own dead lease: take it over. Waiters of a previous
			// holder are kept so they still get woken. A leader past its
			// deadline may still store, unseen by a read made before.
			if LeaseState(r[8]) == LeaseHeld {
				waiters = raw[at[own]+leaseRecordBytes : at[own+1]]
				unchanged = false
			}
			// Dropped from the copy below, in the read (this table's own
			// memory, read again on any retry): a record dead only past
			// the horizon (written before the clock stepped back) is
			// live to copyLive, and kept, it stayed the key's first
			// record, which every later acquire found dead and took over
			// again (review Z53).
			r[8] = byte(LeaseFree)
		}
		if !scan.room {
			if unchanged {
				continue // as above: read again
			}
			return RoleCollision, false, nil
		}
		// own, if any, is dead here (a live one returned above) and freed
		// above: copyLive drops it with the other dead leases.
		out := copyLive(t.startSlot(), raw, at, 0, n, scan.victim, now)
		if deadline > now { // a lease written dead is dropped, as any dead one
			// fp's lease, appended in place (growRecord) here, not by a
			// function of its own: this is the one lease a slot gains,
			// and a call would pass a dozen words through the stack.
			out[3]++
			out = growRecord(out)
			w := (*[leaseRecordBytes]byte)(out[len(out)-leaseRecordBytes:])
			le.PutUint64(w[0:8], fp)
			w[8] = byte(LeaseHeld)
			le.PutUint64(w[9:17], vm)
			le.PutUint32(w[17:21], stream)
			le.PutUint64(w[21:29], uint64(deadline))
			le.PutUint64(w[29:37], tenant)
			w[37] = byte(len(waiters) / 8)
			if len(waiters) != 0 { // a dead lease's, taken over (rare)
				out = append(out, waiters...)
			}
		}
		if err = t.writeSlot(key, out, cas); err != nil {
			if errIs(err, ErrCasMismatch) {
				continue
			}
			return RoleCollision, false, err
		}
		return RoleLeader, unchanged, nil
	}
	return RoleCollision, false, ErrContention
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
	// A host call that fails is tried again too (review Z53): nothing
	// else releases the lease, and a live leader's key would wait for
	// max_wait.
	failed := error(nil)
	for attempt := 0; attempt < releaseCASAttempts; attempt++ {
		raw, cas, err := t.getInto(key, &t.readBuf)
		if err != nil {
			if errIs(err, ErrNotFound) {
				return nil, nil
			}
			if failed == nil {
				failed = err
				continue
			}
			return nil, err
		}
		at := &t.at // scanSlot writes what is read of it
		scan := scanSlot(raw, at, fp, 0, now)
		n, own := scan.n, scan.own
		if own < 0 {
			return nil, nil
		}
		r := leaseRecord(raw, at[own])
		if LeaseState(r[8]) != LeaseHeld || le.Uint64(r[9:17]) != vm || le.Uint32(r[17:21]) != stream {
			return nil, nil
		}
		// A lease that had followers has waiters to copy (the read's memory
		// is reused); most have none, and skip the call.
		var waiters []uint64
		if r[37] != 0 { // its count of waiters
			waiters = waitersOf(raw[at[own]+leaseRecordBytes : at[own+1]])
		}
		// The lease's place in the slot: the mark, or nothing. The lease is
		// made into its mark (fp and tenant kept, no waiters) or freed where
		// it lies in the read — a copy of the slot (Store), in this table's
		// own memory until its next read — so that one copy of the live
		// leases writes the slot back.
		if hitForMissUntil > 0 && hitForMissUntil > now { // 0: no mark; a mark written dead is dropped
			r[8] = byte(LeaseHitForMiss)
			le.PutUint64(r[9:17], 0)
			le.PutUint32(r[17:21], 0)
			le.PutUint64(r[21:29], uint64(hitForMissUntil))
			r[37] = 0
		} else {
			r[8] = byte(LeaseFree)
		}
		err = t.writeSlot(key, copyLive(t.startSlot(), raw, at, 0, n, -1, now), cas)
		if err != nil && errIs(err, ErrCasMismatch) { // checked for nil first: the usual write succeeds
			continue
		}
		if err != nil && failed == nil {
			failed = err
			continue
		}
		return waiters, err
	}
	return nil, ErrContention
}

// Extend moves (vm, stream)'s live lease of fp to deadline, if that is
// later. ok is false if the lease is no longer its own (it expired, or
// another leader took it over).
func (t *LeaseTable) Extend(fp, vm uint64, stream uint32, now, deadline int64) (ok bool, _ error) {
	key := t.key(fp)
	for attempt := 0; attempt < maxCASAttempts; attempt++ {
		raw, cas, err := t.getInto(key, &t.readBuf)
		if err != nil {
			if errIs(err, ErrNotFound) {
				return false, nil
			}
			return false, err
		}
		var at [LeaseWays + 1]int
		scan := scanSlot(raw, &at, fp, 0, now)
		n, own := scan.n, scan.own
		if own < 0 {
			return false, nil
		}
		r := leaseRecord(raw, at[own])
		if LeaseState(r[8]) != LeaseHeld || !recordLive(r, now) || le.Uint64(r[9:17]) != vm || le.Uint32(r[17:21]) != stream {
			return false, nil
		}
		if int64(le.Uint64(r[21:29])) >= deadline {
			return true, nil
		}
		out := copyLive(t.startSlot(), raw, &at, 0, own, -1, now)
		a := len(out)
		out = copyLive(out, raw, &at, own, own+1, -1, now)
		le.PutUint64(out[a+21:a+29], uint64(deadline))
		err = t.writeSlot(key, copyLive(out, raw, &at, own+1, n, -1, now), cas)
		if errIs(err, ErrCasMismatch) {
			continue
		}
		return err == nil, err
	}
	return false, ErrContention
}

// le reads and writes the slot's little-endian fields.
var le = binary.LittleEndian

// slotScan is what one pass over a lease slot finds (scanSlot).
type slotScan struct {
	n   int // leases in the slot
	own int // fp's lease, the first of fp that is not free, or -1
	// victim is the way a new lease of tenant displaces among the live
	// leases other than own: -1 if a way is free, the soonest-expiring
	// hit-for-miss mark otherwise — the tenant's own once it holds its
	// share (tenantShare; tenant 0 is not bounded). room is false when
	// only live held leases could make room: they are never displaced.
	victim int
	room   bool
}

// scanSlot finds the leases of slot record b — where each begins, in
// at[:n], and where the last ends, in at[n] — and, in the same pass,
// fp's lease and the way a new lease of fp would take (slotScan).
// Anything malformed (another layout included) is an empty slot (n = 0),
// as decodeSlotInto reads it; the work is bounded by LeaseWays, whatever
// the bytes. Every reader of a lease slot looks for one key's lease in it, and an
// acquire then makes room for it. (The others ignore the room: reading it
// costs a few comparisons per lease, a second pass would cost more.)
func scanSlot(b []byte, at *[LeaseWays + 1]int, fp, tenant uint64, now int64) slotScan {
	empty := slotScan{own: -1, victim: -1, room: true}
	if len(b) < 4 || b[0] != 'M' || b[1] != 'L' || b[2] != 2 || int(b[3]) > LeaseWays {
		return empty
	}
	n, own, p := int(b[3]), -1, 4
	live, mine := 0, 0
	soonest, soonestMine := -1, -1
	var soonestAt, soonestMineAt int64
	for i := 0; i < n; i++ {
		if len(b)-p < leaseRecordBytes {
			return empty
		}
		at[i] = p
		r := leaseRecord(b, p)
		nw := int(r[37])
		if r[8] > byte(LeaseHitForMiss) || nw > maxWaiters || len(b)-p-leaseRecordBytes < 8*nw {
			return empty
		}
		p += leaseRecordBytes + 8*nw
		if own < 0 && LeaseState(r[8]) != LeaseFree && le.Uint64(r[0:8]) == fp {
			own = i
			continue
		}
		if !recordLive(r, now) {
			continue
		}
		live++
		mineToo := tenant != 0 && le.Uint64(r[29:37]) == tenant
		if mineToo {
			mine++
		}
		if LeaseState(r[8]) != LeaseHitForMiss {
			continue
		}
		d := int64(le.Uint64(r[21:29]))
		if soonest < 0 || d < soonestAt {
			soonest, soonestAt = i, d
		}
		if mineToo && (soonestMine < 0 || d < soonestMineAt) {
			soonestMine, soonestMineAt = i, d
		}
	}
	if p != len(b) {
		return empty
	}
	at[n] = p
	s := slotScan{n: n, own: own, victim: soonest, room: soonest >= 0}
	switch {
	case mine >= tenantShare:
		s.victim, s.room = soonestMine, soonestMine >= 0
	case live < LeaseWays:
		s.victim, s.room = -1, true
	}
	return s
}

// leaseRecord is the lease (without its waiters) that starts at a in a
// slot scanSlot found.
func leaseRecord(raw []byte, a int) *[leaseRecordBytes]byte {
	return (*[leaseRecordBytes]byte)(raw[a : a+leaseRecordBytes])
}

func recordLive(r *[leaseRecordBytes]byte, now int64) bool {
	return LeaseState(r[8]) != LeaseFree && int64(le.Uint64(r[21:29])) > now
}

// ownLive is recordLive for the record of the key asked about, within the
// horizon: one that ends further ahead was written before the wall clock
// stepped back, and is dead rather than live (a lead followed, a
// hit-for-miss mark kept) for as long as the step. (Other keys' records
// only hold their ways until then.)
func (t *LeaseTable) ownLive(r *[leaseRecordBytes]byte, now int64) bool {
	if !recordLive(r, now) {
		return false
	}
	return t.withinHorizon(int64(le.Uint64(r[21:29])), now)
}

// withinHorizon reports whether end, a deadline some VM of the process
// wrote, is within the process's horizon of now: one further ahead was
// written before the wall clock stepped back, and is dead. (The
// background limiters' deadline slots are read with it too.)
func (t *LeaseTable) withinHorizon(end, now int64) bool {
	if t.horizon == 0 || end-now <= t.horizon {
		return true
	}
	// Past this VM's horizon: a configuration loaded after this VM started
	// may write longer leases (a reload raising max_wait, this VM still
	// serving its draining connections). The process's horizon is read
	// again before the record is taken for dead.
	if raw, _, err := t.store.Get(leaseHorizonKey); err == nil && len(raw) == 8 {
		t.horizon = max(t.horizon, int64(le.Uint64(raw)))
	}
	return end-now <= t.horizon
}

// SetHorizon sets how far ahead of now a record of this configuration may
// end (a lease's max_wait, twice it when extended for L2, a hit-for-miss
// mark, a background refresh's timeout, plus a minute), or any
// configuration of this process before a reload did: leases outlive a
// reload in shared data, and a horizon of the new configuration alone
// would take an older one's longer lease for dead, and lead its key a
// second time. So the horizon is kept in shared data too, raised by every
// VM that starts with a longer one, never lowered. Without it (a store
// that fails) there is no horizon.
func (t *LeaseTable) SetHorizon(cfg *Config) {
	h := cfg.Background.Timeout
	for _, r := range cfg.Routes {
		h = max(h, 2*r.Coalesce.MaxWait, r.Coalesce.HitForMiss)
	}
	mine := (h + time.Minute).Milliseconds()
	for attempt := 0; attempt < maxCASAttempts; attempt++ {
		raw, cas, err := t.store.Get(leaseHorizonKey)
		if err != nil && !errIs(err, ErrNotFound) {
			break
		}
		if len(raw) == 8 && int64(le.Uint64(raw)) >= mine {
			t.horizon = int64(le.Uint64(raw))
			return
		}
		if err == nil && len(raw) != 8 {
			break // not this layout: no horizon
		}
		if errIs(err, ErrNotFound) {
			if cas, err = createCASOnce(t.store, &t.anchor); err != nil {
				break
			}
		}
		err = t.store.Set(leaseHorizonKey, le.AppendUint64(nil, uint64(mine)), cas)
		if err == nil {
			t.horizon = mine
			return
		}
		if !errIs(err, ErrCasMismatch) {
			break
		}
	}
	t.horizon = 0
}

// maxLeaseSlots is the largest store.lease_slots ParseConfig accepts.
const maxLeaseSlots = 1 << 20

// leaseSlotsKey holds the lease slot count of the process's first
// configuration, in decimal (adoptSlots).
const leaseSlotsKey = "mc:lease-slots"

// adoptSlots makes the slot count the process's: the one recorded by
// the first configuration that started, recorded now if none is. A lease
// sits in slot fp % slots, so two configurations with different counts,
// the old one still serving the connections it drains after a reload,
// would place one key's lease in two slots, and each lead it (review
// Z23). It returns the count it adopted in place of the configured one,
// or 0 when the configured count stands. A failed read or write keeps the
// configured count.
func (t *LeaseTable) adoptSlots() uint64 {
	want := strconv.FormatUint(t.slots, 10)
	for attempt := 0; attempt < maxCASAttempts; attempt++ {
		raw, _, err := t.store.Get(leaseSlotsKey)
		switch {
		case err == nil:
			n, perr := strconv.ParseUint(string(raw), 10, 32)
			if perr != nil || n == 0 || n > maxLeaseSlots || n == t.slots {
				return 0
			}
			t.slots = n
			return n
		case !errIs(err, ErrNotFound):
			return 0
		}
		cas, err := createCASOnce(t.store, &t.anchor)
		if err != nil {
			return 0
		}
		if err = t.store.Set(leaseSlotsKey, []byte(want), cas); !errIs(err, ErrCasMismatch) {
			return 0 // recorded, or not recordable: the configured count stands
		}
	}
	return 0
}

// leaseHorizonKey holds the longest lease horizon of any configuration of
// the process (SetHorizon), in ms, little-endian.
const leaseHorizonKey = "mc:lease-horizon"

// hasWaiter reports whether vm is among a lease's waiters (their bytes).
func hasWaiter(ws []byte, vm uint64) bool {
	for ; len(ws) >= 8; ws = ws[8:] {
		if le.Uint64(ws) == vm {
			return true
		}
	}
	return false
}

// startSlot begins the slot written back, in the reused write buffer: its
// header, written in place (writeBuf holds any slot, so nothing grows).
func (t *LeaseTable) startSlot() []byte {
	b := t.writeBuf[:len(emptySlotHeader)]
	*(*[len(emptySlotHeader)]byte)(b) = emptySlotHeader
	return b
}

// emptySlotHeader is the header of a slot of no leases yet: "ML" 2 n,
// then per lease fp state owner stream deadline tenant nwaiters waiters….
var emptySlotHeader = [4]byte{'M', 'L', 2, 0}

// copyLive appends to a slot begun by startSlot the live leases of raw
// from..to-1, except drop, as their bytes, and counts them. A
// lease's bytes end where its count of waiters says (scanSlot checked
// that this is where the next begins): a lease rewritten in place with
// its waiters dropped (Release) is copied without them.
//
// The record is copied word by word, in place (leaseRecordBytes is 38:
// four words, four bytes and two), not by append or an array assignment:
// each is a call to memmove per lease, with every value the loop holds
// saved around it. Only waiters, which few leases have, are appended.
func copyLive(out, raw []byte, at *[LeaseWays + 1]int, from, to, drop int, now int64) []byte {
	for i := from; i < to; i++ {
		if r := leaseRecord(raw, at[i]); i != drop && recordLive(r, now) {
			out[3]++
			out = growRecord(out)
			w := (*[leaseRecordBytes]byte)(out[len(out)-leaseRecordBytes:])
			le.PutUint64(w[0:8], le.Uint64(r[0:8]))
			le.PutUint64(w[8:16], le.Uint64(r[8:16]))
			le.PutUint64(w[16:24], le.Uint64(r[16:24]))
			le.PutUint64(w[24:32], le.Uint64(r[24:32]))
			le.PutUint32(w[32:36], le.Uint32(r[32:36]))
			le.PutUint16(w[36:38], le.Uint16(r[36:38]))
			if r[37] != 0 { // its count of waiters
				out = append(out, raw[at[i]+leaseRecordBytes:at[i]+leaseRecordBytes+8*int(r[37])]...)
			}
		}
	}
	return out
}

// growRecord lengthens a slot being written by one lease record, whose
// bytes the caller then writes all of, so no byte is cleared first (as
// append(out, make(…)…) would, with a call). Every slot written is begun
// by startSlot, in the write buffer, which holds any slot (maxLeaseSlotBytes,
// checked when compiling): the room is always there, and nothing is grown.
func growRecord(out []byte) []byte { return out[:len(out)+leaseRecordBytes] }

// join writes fp's live lease own (of a slot read as raw, scanSlot's
// at and n) back with vm after its waiters, as a follower joins it.
func (t *LeaseTable) join(key string, raw []byte, at *[LeaseWays + 1]int, n, own int, vm uint64, now int64, cas uint32) error {
	out := copyLive(t.startSlot(), raw, at, 0, own+1, -1, now)
	out = le.AppendUint64(out, vm)
	out[len(out)-(at[own+1]-at[own])-8+37]++ // its nwaiters
	return t.writeSlot(key, copyLive(out, raw, at, own+1, n, -1, now), cas)
}

// waitersOf decodes a lease's waiters (nil for none).
func waitersOf(ws []byte) []uint64 {
	if len(ws) == 0 {
		return nil
	}
	w := make([]uint64, len(ws)/8)
	for i := range w {
		w[i] = le.Uint64(ws[8*i:])
	}
	return w
}

// writeSlot stores a slot made from startSlot with the CAS read (a
// missing slot's: createCAS's, so that the write only creates it). out is
// in writeBuf (startSlot), which holds any slot: there is no larger array
// to keep. It inlines, the store's call alone: a lease's acquire and its
// release each write the slot without a frame of their own. (Only acquire
// can find its slot missing: Release, Extend and join write a slot they
// read with a lease in it.)
func (t *LeaseTable) writeSlot(key string, out []byte, cas uint32) error {
	return t.store.Set(key, out, cas)
}

// createCAS is the CAS of a write that creates a missing slot, and fails
// if another VM created it since (createCASOnce).
func (t *LeaseTable) createCAS() (uint32, error) { return createCASOnce(t.store, &t.anchor) }

// Peek returns fp's lease (State LeaseFree if it has none).
func (t *LeaseTable) Peek(fp uint64) (Lease, error) {
	raw, _, err := t.getInto(t.key(fp), &t.readBuf)
	if err != nil {
		if errIs(err, ErrNotFound) {
			return Lease{FP: fp}, nil
		}
		return Lease{}, err
	}
	var at [LeaseWays + 1]int
	i := scanSlot(raw, &at, fp, 0, 0).own
	if i < 0 {
		return Lease{FP: fp}, nil
	}
	r := leaseRecord(raw, at[i])
	return Lease{FP: fp, State: LeaseState(r[8]), Owner: le.Uint64(r[9:17]), Stream: le.Uint32(r[17:21]),
		Deadline: int64(le.Uint64(r[21:29])), Tenant: le.Uint64(r[29:37]),
		Waiters: waitersOf(raw[at[i]+leaseRecordBytes : at[i+1]])}, nil // copied: the read's memory is reused
}

// Leading reports whether fp is still led by someone live.
func (t *LeaseTable) Leading(fp uint64, now int64) (bool, error) {
	l, err := t.Peek(fp)
	if err != nil {
		return false, err
	}
	return l.live(now) && l.State == LeaseHeld, nil
}

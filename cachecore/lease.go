package cachecore

import (
	"encoding/binary"
	"errors"
	"strconv"
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
//     miss and its winning the lease.
//   - Followers register their worker in the lease. The leader, when done,
//     frees the lease and posts one message to each registered worker's
//     queue; that worker resumes its own paused streams (only a stream's own
//     worker may resume it). A tick on every worker re-checks paused streams,
//     so a lost message costs one tick, never a hang.
//   - Leader stored the answer: followers are answered from the cache
//     (Cache-Status "collapsed"). If the entry is not there after all
//     (evicted at once, model version moved on), that counts as a failure.
//   - Leader failed for a reason that may pass (5xx, 429, reset, timeout,
//     truncated or invalid output, client abort): the answer is never handed
//     to followers; one of them wins the lease and leads next, the others keep
//     waiting. A follower sits through at most coalesce.max_retries such
//     failures, then goes upstream itself.
//   - Leader's answer may not be stored for a lasting reason (no-store,
//     private, too large, not JSON, 4xx, low confidence, finish_reason): the
//     lease becomes "hit-for-miss" for coalesce.hit_for_miss, all followers go
//     upstream at once, and new requests for that key skip coalescing
//     meanwhile (Varnish's hit-for-miss), instead of queueing one by one.
//   - A follower waits at most coalesce.max_wait in total, then goes upstream
//     itself (fail-open).
//   - Two different keys whose fingerprints share a lease slot do not
//     coalesce with each other: the second one goes upstream uncoalesced.
//
// Lease slots live at mc:l:<slot>, a fixed key space like the slot table.

// LeaseState is the state of a lease slot.
type LeaseState uint8

const (
	LeaseFree       LeaseState = iota // nobody leads
	LeaseHeld                         // a leader is upstream
	LeaseHitForMiss                   // key lastingly uncacheable until Deadline
)

// Lease is one decoded lease slot.
type Lease struct {
	FP       uint64
	State    LeaseState
	Owner    uint64 // VM id of the leader
	Stream   uint32 // leader's context id on that VM
	Deadline int64  // unix ms: held → trusted until; hit-for-miss → until
	Waiters  []uint64
}

// maxWaiters bounds the waiter list; workers beyond it rely on ticks.
const maxWaiters = 64

func (l *Lease) live(now int64) bool { return l.State != LeaseFree && l.Deadline > now }

func (l *Lease) encode() []byte {
	b := make([]byte, 0, 36+8*len(l.Waiters))
	b = append(b, 'M', 'L', 1, byte(l.State))
	b = binary.LittleEndian.AppendUint64(b, l.FP)
	b = binary.LittleEndian.AppendUint64(b, l.Owner)
	b = binary.LittleEndian.AppendUint32(b, l.Stream)
	b = binary.LittleEndian.AppendUint64(b, uint64(l.Deadline))
	b = binary.LittleEndian.AppendUint32(b, uint32(len(l.Waiters)))
	for _, w := range l.Waiters {
		b = binary.LittleEndian.AppendUint64(b, w)
	}
	return b
}

func decodeLease(b []byte) (Lease, bool) {
	if len(b) < 36 || b[0] != 'M' || b[1] != 'L' || b[2] != 1 {
		return Lease{}, false
	}
	le := binary.LittleEndian
	l := Lease{
		State:    LeaseState(b[3]),
		FP:       le.Uint64(b[4:]),
		Owner:    le.Uint64(b[12:]),
		Stream:   le.Uint32(b[20:]),
		Deadline: int64(le.Uint64(b[24:])),
	}
	n := int(le.Uint32(b[32:]))
	if n > maxWaiters || len(b) != 36+8*n {
		return Lease{}, false
	}
	for i := 0; i < n; i++ {
		l.Waiters = append(l.Waiters, le.Uint64(b[36+8*i:]))
	}
	return l, true
}

// LeaseTable is the fixed table of lease slots over a Store. One per VM.
type LeaseTable struct {
	store  Store
	slots  uint64
	anchor uint32
}

// NewLeaseTable returns a lease table of the given number of slots.
func NewLeaseTable(store Store, slots int) *LeaseTable {
	return &LeaseTable{store: store, slots: uint64(slots)}
}

func (t *LeaseTable) key(fp uint64) string {
	return "mc:l:" + strconv.FormatUint(fp%t.slots, 10)
}

// Role is what a request became when it tried to lead.
type Role uint8

const (
	RoleLeader     Role = iota // won the lease: go upstream
	RoleFollower               // another request leads: wait
	RoleHitForMiss             // the key is lastingly uncacheable: go upstream, no waiting
	RoleCollision              // the slot leads another key: go upstream uncoalesced
)

var roleNames = [...]string{"leader", "follower", "hit_for_miss", "collision"}

func (r Role) String() string { return roleNames[r] }

// read returns the slot's lease and CAS; exists is false for a key never set.
func (t *LeaseTable) read(key string) (l Lease, cas uint32, exists bool, err error) {
	raw, cas, err := t.store.Get(key)
	if errors.Is(err, ErrNotFound) {
		return Lease{}, 0, false, nil
	}
	if err != nil {
		return Lease{}, 0, false, err
	}
	l, _ = decodeLease(raw) // unreadable or empty: a free slot
	return l, cas, true, nil
}

// write stores l with the CAS read, or create-only if the key was missing.
func (t *LeaseTable) write(key string, l *Lease, cas uint32, exists bool) error {
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
	return t.store.Set(key, l.encode(), cas)
}

// Acquire tries to make (vm, stream) the leader for fp until deadline. If
// another request leads fp, the caller becomes a follower and, with join,
// vm is added to the lease's waiters (without join — a background refresh
// that only wants to lead — nothing changes). The decision is
// linearisable: every outcome is the result of one successful
// compare-and-swap on the slot.
func (t *LeaseTable) Acquire(fp, vm uint64, stream uint32, now, deadline int64, join bool) (Role, error) {
	key := t.key(fp)
	for attempt := 0; attempt < maxCASAttempts; attempt++ {
		l, cas, exists, err := t.read(key)
		if err != nil {
			return RoleCollision, err
		}
		if l.live(now) {
			switch {
			case l.FP != fp:
				return RoleCollision, nil
			case l.State == LeaseHitForMiss:
				return RoleHitForMiss, nil
			case l.Owner == vm && l.Stream == stream:
				return RoleLeader, nil // already ours
			}
			if !join || containsU64(l.Waiters, vm) || len(l.Waiters) >= maxWaiters {
				return RoleFollower, nil
			}
			l.Waiters = append(l.Waiters, vm)
			err = t.write(key, &l, cas, exists)
			if errors.Is(err, ErrCasMismatch) {
				continue
			}
			return RoleFollower, err
		}
		// Free, expired, or another key's dead lease: take it. Waiters of a
		// previous holder of this key are kept so they still get woken.
		var waiters []uint64
		if l.FP == fp {
			waiters = l.Waiters
		}
		nl := Lease{FP: fp, State: LeaseHeld, Owner: vm, Stream: stream, Deadline: deadline, Waiters: waiters}
		err = t.write(key, &nl, cas, exists)
		if errors.Is(err, ErrCasMismatch) {
			continue
		}
		if err != nil {
			return RoleCollision, err
		}
		return RoleLeader, nil
	}
	return RoleCollision, ErrContention
}

// Release ends (vm, stream)'s leadership of fp and returns the workers to
// wake. With hitForMissUntil > 0 the slot becomes hit-for-miss until then.
// If the lease is no longer this leader's (it expired and someone took
// over), nothing changes and no one is woken by this call.
func (t *LeaseTable) Release(fp, vm uint64, stream uint32, hitForMissUntil int64) ([]uint64, error) {
	key := t.key(fp)
	for attempt := 0; attempt < maxCASAttempts; attempt++ {
		l, cas, exists, err := t.read(key)
		if err != nil || !exists {
			return nil, err
		}
		if l.State != LeaseHeld || l.FP != fp || l.Owner != vm || l.Stream != stream {
			return nil, nil
		}
		waiters := l.Waiters
		nl := Lease{FP: fp, State: LeaseFree}
		if hitForMissUntil > 0 {
			nl.State, nl.Deadline = LeaseHitForMiss, hitForMissUntil
		}
		err = t.write(key, &nl, cas, true)
		if errors.Is(err, ErrCasMismatch) {
			continue
		}
		return waiters, err
	}
	return nil, ErrContention
}

// Peek returns the lease of fp's slot (for re-checks on ticks).
func (t *LeaseTable) Peek(fp uint64) (Lease, error) {
	l, _, _, err := t.read(t.key(fp))
	return l, err
}

// Leading reports whether fp is still led by someone live.
func (t *LeaseTable) Leading(fp uint64, now int64) (bool, error) {
	l, err := t.Peek(fp)
	if err != nil {
		return false, err
	}
	return l.live(now) && l.FP == fp && l.State == LeaseHeld, nil
}

func containsU64(list []uint64, v uint64) bool {
	for _, x := range list {
		if x == v {
			return true
		}
	}
	return false
}

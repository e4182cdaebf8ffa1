package cachecore

import (
	"encoding/binary"
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"
)

// The lease table's operations as they were written before they worked on
// the slot's bytes (lease.go): each slot decoded into Lease values, changed
// and encoded whole again. Kept as the reference the byte-level code is
// held to (TestLeaseBytesAgreeWithDecodedLeases): the same roles, the same
// waiters and the same bytes written, whatever the slot held.

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

// read returns the slot's leases and CAS, decoded; exists is false for a key never set.
func (t *LeaseTable) read(key string) (ways []Lease, cas uint32, exists bool, err error) {
	raw, cas, err := t.getInto(key, &t.readBuf)
	return t.decode(raw, cas, err)
}

// decode is read's second half: the leases of a slot read as raw.
func (t *LeaseTable) decode(raw []byte, cas uint32, err error) (ways []Lease, _ uint32, exists bool, _ error) {
	if errIs(err, ErrNotFound) {
		return nil, 0, false, nil
	}
	if err != nil {
		return nil, 0, false, err
	}
	ways, _, _ = decodeSlotInto(nil, nil, raw) // unreadable or empty: a free slot
	return ways, cas, true, nil
}

func findFP(ways []Lease, fp uint64) int {
	for i := range ways {
		if ways[i].FP == fp && ways[i].State != LeaseFree {
			return i
		}
	}
	return -1
}

// refWrite stores the slot's leases with the CAS read, or create-only if the
// key was missing. Dead leases (free, expired) are dropped on the way.
func (t *LeaseTable) refWrite(key string, ways []Lease, now int64, cas uint32, exists bool) error {
	if !exists {
		var err error
		if cas, err = t.createCAS(); err != nil {
			return err
		}
	}
	return t.writeSlot(key, appendSlot(t.writeBuf[:0], liveOnly(ways, now)), cas)
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

// refAcquire is Acquire as decoded leases; unchanged reports a lead won with the slot as
// ReadAhead read it, in the read numbered ahead.
func (t *LeaseTable) refAcquire(fp, tenant, vm uint64, stream uint32, now, deadline int64, join bool, seq uint64) (_ Role, unchanged bool, _ error) {
	key := t.key(fp)
	ahead := t.ahead
	t.ahead = slotRead{} // used once, by the acquire that names it only
	for attempt := 0; attempt < maxCASAttempts; attempt++ {
		var ways []Lease
		var cas uint32
		var exists bool
		var err error
		unchanged = attempt == 0 && seq != 0 && ahead.seq == seq && ahead.ok && ahead.fp == fp
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
				err = t.refWrite(key, ways, now, cas, exists)
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
		err = t.refWrite(key, ways, now, cas, exists)
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

// refRelease is Release as decoded leases: it ends (vm, stream)'s leadership of fp and returns the workers to
// wake. With hitForMissUntil > 0 the lease becomes a hit-for-miss mark until
// then. If the lease is no longer this leader's (it expired and someone took
// over), nothing changes and no one is woken by this call.
func (t *LeaseTable) refRelease(fp, vm uint64, stream uint32, now, hitForMissUntil int64) ([]uint64, error) {
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
		err = t.refWrite(key, ways, now, cas, true)
		if errIs(err, ErrCasMismatch) {
			continue
		}
		return waiters, err
	}
	return nil, ErrContention
}

// appendSlot appends the encoding of a slot's leases to b (emptySlotHeader,
// appendLease).
func appendSlot(b []byte, ways []Lease) []byte {
	s := append([]byte(nil), emptySlotHeader[:]...)
	for i := range ways {
		l := &ways[i]
		var ws []byte
		for _, w := range l.Waiters {
			ws = binary.LittleEndian.AppendUint64(ws, w)
		}
		s = appendLease(s, l.FP, l.State, l.Owner, l.Stream, l.Deadline, l.Tenant, ws)
	}
	return append(b, s...)
}

// refPeek is Peek as decoded leases.
func (t *LeaseTable) refPeek(fp uint64) (Lease, error) {
	ways, _, _, err := t.read(t.key(fp))
	if err != nil {
		return Lease{}, err
	}
	if i := findFP(ways, fp); i >= 0 {
		l := ways[i]
		l.Waiters = slices.Clone(l.Waiters)
		return l, nil
	}
	return Lease{FP: fp}, nil
}

// TestLeaseBytesAgreeWithDecodedLeases holds acquire, Release and Peek,
// which work on a slot's bytes, to the reference that decodes the slot
// into leases (refAcquire, refRelease, refPeek): over random slots — free,
// held, marked and expired leases of a few keys, tenants, owners and
// waiters (up to maxWaiters), full slots, malformed records, the slot read
// ahead or not, a clock before 1970, a lead and its release on one table —
// both give the same role, unchanged and waiters, leave the same bytes in
// the store, and Peek the same lease.
func TestLeaseBytesAgreeWithDecodedLeases(t *testing.T) {
	rng := rand.New(rand.NewPCG(17, 3))
	pick := func(vs ...uint64) uint64 { return vs[rng.IntN(len(vs))] }
	var now int64
	randomSlot := func() []byte {
		switch rng.IntN(20) {
		case 0:
			return nil // no slot yet
		case 1:
			b := encodeSlot([]Lease{{FP: 1, State: LeaseHeld, Deadline: now + 5, Waiters: []uint64{20, 21}}})
			return b[:rng.IntN(len(b))] // truncated, in a lease or in its waiters
		case 2:
			return []byte("ML\x01\x00") // another layout
		}
		ways := make([]Lease, rng.IntN(LeaseWays+1))
		if rng.IntN(3) == 0 {
			ways = make([]Lease, LeaseWays) // full slots, for the displacement rules
		}
		for i := range ways {
			l := &ways[i]
			l.FP = pick(1, 2, 3, 4, 5)
			l.State = LeaseState(rng.IntN(3))
			l.Owner = pick(10, 11)
			l.Stream = uint32(pick(1, 2))
			l.Deadline = now - 2 + int64(rng.IntN(6))
			l.Tenant = pick(0, 7, 8)
			for j := rng.IntN(4); j > 0; j-- {
				l.Waiters = append(l.Waiters, pick(20, 21, 22, 10))
			}
			if rng.IntN(8) == 0 { // at or near maxWaiters, the joiner not among them
				l.Waiters = l.Waiters[:0]
				for w := maxWaiters - rng.IntN(3); w > 0; w-- {
					l.Waiters = append(l.Waiters, uint64(100+w))
				}
			}
		}
		return encodeSlot(ways)
	}
	for n := 0; n < 20000; n++ {
		now = 1000
		if rng.IntN(10) == 0 {
			now = -3 // a clock before 1970: marks until 0 are no marks
		}
		slot := randomSlot()
		fp, tenant, vm, stream := pick(1, 2, 3, 6), pick(0, 7, 8), pick(10, 11, 20), uint32(pick(1, 2))
		deadline := now + int64(rng.IntN(3)) // now itself: a lease written dead
		join := rng.IntN(2) == 0
		mark := []int64{0, now, now + 30}[rng.IntN(3)]
		ahead := pick(0, fp, 9)   // the slot read ahead, for fp or another key (0: none)
		named := rng.IntN(4) != 0 // the acquire names that read (else: another request's)
		acquire := func(lt *LeaseTable, f func(fp, tenant, vm uint64, stream uint32, now, deadline int64, join bool, seq uint64) (Role, bool, error)) string {
			var seq uint64
			if ahead != 0 {
				if seq = lt.ReadAhead(ahead); !named {
					seq = 0
				}
			}
			r, u, err := f(fp, tenant, vm, stream, now, deadline, join, seq)
			return fmt.Sprint(r, u, err)
		}
		release := func(f func(fp, vm uint64, stream uint32, now, hitForMissUntil int64) ([]uint64, error)) string {
			ws, err := f(fp, vm, stream, now, mark)
			return fmt.Sprint(ws, err)
		}
		peek := func(f func(fp uint64) (Lease, error)) string {
			l, err := f(fp)
			return fmt.Sprintf("%+v %v", l, err)
		}
		ops := []struct{ got, want func(*LeaseTable) string }{
			{func(lt *LeaseTable) string { return acquire(lt, lt.acquire) }, func(lt *LeaseTable) string { return acquire(lt, lt.refAcquire) }},
			{func(lt *LeaseTable) string { return release(lt.Release) }, func(lt *LeaseTable) string { return release(lt.refRelease) }},
			{func(lt *LeaseTable) string { return peek(lt.Peek) }, func(lt *LeaseTable) string { return peek(lt.refPeek) }},
			// A lead and its release on one table: its buffers reused.
			{func(lt *LeaseTable) string { return acquire(lt, lt.acquire) + "; " + release(lt.Release) },
				func(lt *LeaseTable) string { return acquire(lt, lt.refAcquire) + "; " + release(lt.refRelease) }},
		}
		for k, op := range ops {
			run := func(f func(*LeaseTable) string) string {
				store := NewMemStore()
				lt := NewLeaseTable(store, 1)
				if slot != nil {
					if err := store.Set(lt.key(fp), slot, 0); err != nil {
						t.Fatal(err)
					}
				}
				res := f(lt)
				b, _, err := store.Get(lt.key(fp))
				return fmt.Sprintf("%s; slot %x %v", res, b, err)
			}
			if got, want := run(op.got), run(op.want); got != want {
				t.Fatalf("op %d on slot %x, now %d, fp %d tenant %d vm %d stream %d deadline %+d join %v mark %d ahead %d named %v:\n got %q\nwant %q",
					k, slot, now, fp, tenant, vm, stream, deadline-now, join, mark, ahead, named, got, want)
			}
		}
	}
}

// appendLease appends one lease, waiters given as their bytes, to a slot
// begun at out[0], and counts it: the record acquire writes for its lease,
// of any state (the tests' slots hold marks and waiters too). Written
// field after field from the layout (fp state owner stream deadline
// tenant nwaiters waiters…), not as acquire writes it, so that the
// reference checks acquire's bytes rather than repeating its code.
func appendLease(out []byte, fp uint64, state LeaseState, owner uint64, stream uint32, deadline int64, tenant uint64, waiters []byte) []byte {
	out[3]++
	out = le.AppendUint64(out, fp)
	out = append(out, byte(state))
	out = le.AppendUint64(out, owner)
	out = le.AppendUint32(out, stream)
	out = le.AppendUint64(out, uint64(deadline))
	out = le.AppendUint64(out, tenant)
	out = append(out, byte(len(waiters)/8))
	return append(out, waiters...)
}

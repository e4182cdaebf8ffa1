package cachecore

import (
	"encoding/binary"
)

// BackgroundSlots bounds background upstream calls (refreshes, shadow
// comparisons) per Envoy process: one shared-data value (mc:bg) holding
// MaxConcurrent deadlines. A call takes a free or expired slot by CAS and
// frees it when done; a slot whose VM died frees itself at its deadline.
type BackgroundSlots struct {
	store  Store
	n      int
	key    string
	anchor uint32
	// leases' horizon says whether a deadline is live: one further ahead
	// than any configuration of the process writes was written before the
	// wall clock stepped back, and its slot is free. Held by a call whose
	// VM went away, it stayed busy for the step's length, and with
	// max_concurrent 1 no refresh ran meanwhile (review Z118). nil: every
	// deadline ahead is live.
	leases *LeaseTable
}

// busy reports whether a slot holding deadline d is in use at now.
func (b *BackgroundSlots) busy(d, now int64) bool {
	return d > now && (b.leases == nil || b.leases.withinHorizon(d, now))
}

// NewBackgroundSlots returns a limiter of n concurrent calls.
func NewBackgroundSlots(store Store, n int) *BackgroundSlots {
	return &BackgroundSlots{store: store, n: n, key: "mc:bg"}
}

// read returns the slots as stored, at least n of them. A configuration
// with another limit (the old VMs of a reload, or another filter config)
// shares the value: its slots, past n too, are read whole, so that both
// count each other's calls in flight.
func (b *BackgroundSlots) read() ([]int64, uint32, bool, error) {
	raw, cas, err := b.store.Get(b.key)
	if errIs(err, ErrNotFound) {
		return make([]int64, b.n), 0, false, nil
	}
	if err != nil {
		return nil, 0, false, err
	}
	if len(raw)%8 != 0 {
		raw = nil // not a limiter's value: all free
	}
	slots := make([]int64, max(b.n, len(raw)/8))
	for i := 0; i < len(raw)/8; i++ {
		slots[i] = int64(binary.LittleEndian.Uint64(raw[8*i:]))
	}
	return slots, cas, true, nil
}

func (b *BackgroundSlots) write(slots []int64, cas uint32, exists bool) error {
	if !exists {
		var err error
		if cas, err = createCASOnce(b.store, &b.anchor); err != nil {
			return err
		}
	}
	buf := make([]byte, 0, 8*len(slots))
	for _, d := range slots {
		buf = binary.LittleEndian.AppendUint64(buf, uint64(d))
	}
	return b.store.Set(b.key, buf, cas)
}

// Acquire takes a slot until deadline; ok is false when all are busy.
func (b *BackgroundSlots) Acquire(now, deadline int64) (slot int, ok bool, err error) {
	for attempt := 0; attempt < maxCASAttempts; attempt++ {
		slots, cas, exists, err := b.read()
		if err != nil {
			return 0, false, err
		}
		// This limit holds over every call in flight, those of another
		// limit's configuration included; a free slot is taken below n
		// (there is one when fewer than n are busy).
		slot, busy := -1, 0
		for i, d := range slots {
			if b.busy(d, now) {
				busy++
			} else if slot < 0 && i < b.n {
				slot = i
			}
		}
		if busy >= b.n || slot < 0 {
			return 0, false, nil
		}
		slots[slot] = deadline
		for len(slots) > b.n && !b.busy(slots[len(slots)-1], now) {
			slots = slots[:len(slots)-1] // another limit's, ended
		}
		err = b.write(slots, cas, exists)
		if errIs(err, ErrCasMismatch) {
			continue
		}
		return slot, err == nil, err
	}
	return 0, false, ErrContention
}

// Release frees a slot taken by Acquire until deadline. A call that timed
// out ends at its deadline, when another call may have taken the slot
// already: the slot is freed only if it still holds this call's deadline
// (a later holding's deadline is later).
func (b *BackgroundSlots) Release(slot int, deadline int64) error {
	for attempt := 0; attempt < maxCASAttempts; attempt++ {
		slots, cas, exists, err := b.read()
		if err != nil || !exists || slot >= len(slots) || slots[slot] != deadline {
			return err
		}
		slots[slot] = 0
		err = b.write(slots, cas, true)
		if errIs(err, ErrCasMismatch) {
			continue
		}
		return err
	}
	return ErrContention
}

// Busy counts slots in use at now.
func (b *BackgroundSlots) Busy(now int64) int {
	slots, _, _, err := b.read()
	if err != nil {
		return 0
	}
	n := 0
	for _, d := range slots {
		if b.busy(d, now) {
			n++
		}
	}
	return n
}

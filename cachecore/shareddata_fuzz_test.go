package cachecore

import (
	"bytes"
	"encoding/binary"
	"testing"
)

// Fuzz targets for the shared-data decoders without one elsewhere (entries:
// FuzzDecodeEntry, model records: FuzzDecodeModels). Shared data is
// written by every VM of the process, possibly by an older build with
// another layout, so each decoder must take any bytes: never panic, do
// work bounded by its layout whatever lengths the bytes claim, and, where
// an encoder exists, decode only what re-encodes to the same bytes.

func leaseSeeds() [][]byte {
	waiters := make([]uint64, maxWaiters)
	for i := range waiters {
		waiters[i] = uint64(i + 1)
	}
	full := make([]Lease, LeaseWays)
	for i := range full {
		full[i] = Lease{FP: uint64(100 + i), State: LeaseState(i % 3), Owner: 7, Stream: 9, Deadline: 1 << 40, Tenant: uint64(i), Waiters: waiters}
	}
	one := encodeSlot([]Lease{{FP: 1, State: LeaseHeld, Owner: 2, Stream: 3, Deadline: 4, Tenant: 5, Waiters: []uint64{6, 7}}})
	hostileWays := append([]byte(nil), one...)
	hostileWays[3] = 0xff // claims 255 ways
	hostileWaiters := append([]byte(nil), one...)
	hostileWaiters[4+leaseRecordBytes-1] = 0xff // claims 255 waiters
	badState := append([]byte(nil), one...)
	badState[4+8] = 3
	return [][]byte{
		encodeSlot(nil),
		one,
		encodeSlot(full),
		one[:len(one)-1],                       // truncated waiter
		one[:4+leaseRecordBytes-1],             // truncated record
		append(append([]byte(nil), one...), 0), // trailing byte
		hostileWays,
		hostileWaiters,
		badState,
		{'M', 'L', 1, 0}, // older layout
		{},
	}
}

// FuzzDecodeSlot: a lease slot decodes to at most LeaseWays leases of at
// most maxWaiters waiters each, with a known state, and re-encodes to the
// bytes it came from.
func FuzzDecodeSlot(f *testing.F) {
	for _, s := range leaseSeeds() {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, raw []byte) {
		orig := append([]byte(nil), raw...)
		ways, ok := decodeSlot(raw)
		if !bytes.Equal(raw, orig) {
			t.Fatal("decodeSlot modified its input")
		}
		if !ok {
			if ways != nil {
				t.Fatalf("rejected slot decoded to %d leases", len(ways))
			}
			return
		}
		if len(ways) > LeaseWays {
			t.Fatalf("%d leases in one slot", len(ways))
		}
		for _, l := range ways {
			if len(l.Waiters) > maxWaiters || l.State > LeaseHitForMiss {
				t.Fatalf("lease with %d waiters, state %d", len(l.Waiters), l.State)
			}
		}
		if re := encodeSlot(ways); !bytes.Equal(re, raw) {
			t.Fatalf("round trip changed the slot:\n in %x\nout %x", raw, re)
		}
	})
}

// FuzzLeaseTableOnHostileSlot: whatever a slot holds, the lease table's
// operations neither panic nor fail, and what they write back decodes.
func FuzzLeaseTableOnHostileSlot(f *testing.F) {
	for _, s := range leaseSeeds() {
		f.Add(s, uint64(100), true)
	}
	f.Fuzz(func(t *testing.T, raw []byte, fp uint64, mark bool) {
		// The table reads a slot's bytes where they lie: it finds the
		// leases the decoder finds, or none where the decoder finds the
		// slot malformed.
		var at [LeaseWays + 1]int
		if ways, ok := decodeSlot(raw); slotRecords(raw, &at) != len(ways) || (!ok && len(ways) != 0) {
			t.Fatalf("slot %x: %d leases found in its bytes, decoded %d (%v)", raw, slotRecords(raw, &at), len(ways), ok)
		}
		store := NewMemStore()
		lt := NewLeaseTable(store, 1)
		if err := store.Set(lt.key(fp), raw, 0); err != nil {
			t.Fatal(err)
		}
		const now = 1 << 30
		role, err := lt.Acquire(fp, 1, 1, 1, now, now+1000, mark)
		if err != nil {
			t.Fatalf("Acquire on %x: %v", raw, err)
		}
		if _, err := lt.Peek(fp); err != nil {
			t.Fatalf("Peek on %x: %v", raw, err)
		}
		if role == RoleLeader {
			if _, err := lt.Release(fp, 1, 1, now, 0); err != nil {
				t.Fatalf("Release: %v", err)
			}
		}
		if got, _, err := store.Get(lt.key(fp)); err == nil && !bytes.Equal(got, raw) {
			if _, ok := decodeSlot(got); !ok {
				t.Fatalf("the table wrote an undecodable slot %x", got)
			}
		}
	})
}

// FuzzDecodeSLO: the SLO window decodes only from its exact length and
// magic (anything else is an empty, unbreached window) and re-encodes to
// the same bytes, the breach flag read as "1 or not".
func FuzzDecodeSLO(f *testing.F) {
	var starts [sloBuckets]int64
	var totals, stales [sloBuckets]uint32
	for i := range starts {
		starts[i], totals[i], stales[i] = int64(1000*i), uint32(10*i), uint32(i)
	}
	valid := encodeSLO(true, starts, totals, stales)
	f.Add(valid)
	f.Add(encodeSLO(false, [sloBuckets]int64{}, [sloBuckets]uint32{}, [sloBuckets]uint32{}))
	f.Add(valid[:len(valid)-1])
	f.Add(append(append([]byte(nil), valid...), 0))
	f.Add(bytes.Repeat([]byte{0xff}, len(valid)))
	f.Add([]byte("MS\x02"))
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, raw []byte) {
		breached, s, tot, st := decodeSLO(raw)
		if len(raw) != len(valid) || raw[0] != 'M' || raw[1] != 'S' {
			if breached || s != ([sloBuckets]int64{}) || tot != ([sloBuckets]uint32{}) || st != ([sloBuckets]uint32{}) {
				t.Fatalf("malformed window %x decoded to data", raw)
			}
			return
		}
		want := append([]byte(nil), raw...)
		if want[2] != 1 {
			want[2] = 0
		}
		if re := encodeSLO(breached, s, tot, st); !bytes.Equal(re, want) {
			t.Fatalf("round trip changed the window:\n in %x\nout %x", raw, re)
		}
	})
}

// FuzzFlushSLOOnHostileWindow: flushing into any stored window does not
// panic, reports one status, and a flush that added counts leaves a window
// of the layout's length.
func FuzzFlushSLOOnHostileWindow(f *testing.F) {
	var starts [sloBuckets]int64
	var totals, stales [sloBuckets]uint32
	for i := range starts {
		starts[i], totals[i], stales[i] = 1<<40, 1<<31, 1<<31
	}
	f.Add(encodeSLO(true, starts, totals, stales), uint8(3), uint8(1))
	f.Add([]byte("MS\x01"), uint8(1), uint8(0))
	f.Add([]byte{}, uint8(0), uint8(0))
	f.Fuzz(func(t *testing.T, raw []byte, total, stale uint8) {
		cfg := mustParse(t, `{"routes":[{"name":"chat","kind":"chat","path_exact":"/v1/chat/completions",
		  "freshness_slo":{"max_age":"1m","max_fraction":0.1,"window":"10m","min_samples":1}}]}`)
		store := NewMemStore()
		c := New(cfg, Options{Store: store, Rand: seededRand(1)})
		if err := store.Set("mc:slo:chat", raw, 0); err != nil {
			t.Fatal(err)
		}
		r := cfg.Routes[0]
		for i := 0; i < int(total); i++ {
			c.NoteServed(r, 0)
		}
		for i := 0; i < int(stale); i++ {
			c.NoteServed(r, 2*r.FreshnessSLO.MaxAge)
		}
		out := c.FlushSLO()
		if len(out) != 1 {
			t.Fatalf("%d statuses", len(out))
		}
		if total == 0 && stale == 0 {
			return // nothing to add: a read-only evaluation writes nothing
		}
		got, _, err := store.Get("mc:slo:chat")
		if err != nil {
			t.Fatal(err)
		}
		if len(got) != 3+16*sloBuckets {
			t.Fatalf("flush left a window of %d bytes", len(got))
		}
	})
}

// FuzzDecodeSecret: the process secret decodes only from its exact layout,
// and its two keys are the layout's two halves.
func FuzzDecodeSecret(f *testing.F) {
	valid := append([]byte("MS\x01"), "0123456789abcdefFEDCBA9876543210"...)
	f.Add(valid)
	f.Add(valid[:len(valid)-1])
	f.Add(append(append([]byte(nil), valid...), 0))
	f.Add([]byte("MS\x02" + string(valid[3:])))
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, raw []byte) {
		k, ok := decodeSecret(raw)
		wantOK := len(raw) == secretLen && raw[0] == 'M' && raw[1] == 'S' && raw[2] == 1
		if ok != wantOK {
			t.Fatalf("decodeSecret(%x) ok=%v", raw, ok)
		}
		if !ok {
			if k != (hashKeys{}) {
				t.Fatal("rejected secret yielded keys")
			}
			return
		}
		re := []byte("MS\x01")
		for _, v := range []uint64{k.model.k0, k.model.k1, k.fp.k0, k.fp.k1} {
			re = binary.LittleEndian.AppendUint64(re, v)
		}
		if !bytes.Equal(re, raw) {
			t.Fatalf("round trip changed the secret:\n in %x\nout %x", raw, re)
		}
	})
}

// FuzzTableOnHostileData: a bucket's index and entry ways hold arbitrary
// bytes. The index decodes to exactly the table's ways (re-encoding to the
// same bytes when it is of this layout), and a lookup never panics and
// never returns the entry of another key.
func FuzzTableOnHostileData(f *testing.F) {
	const buckets, ways = 1, 2
	key := []byte("the key")
	fp := Fingerprint(key)
	tb := NewTable(NewMemStore(), buckets, ways)
	tb.resetIdx()
	tb.idx[0] = slot{fp, 1 << 40, 7}
	index := append([]byte(nil), tb.encodeIndex()...)
	entry := (&Entry{Key: key, Body: []byte("b"), StoredAt: 1, FreshUntil: 1 << 40, StaleUntil: 1 << 40}).AppendEncode(nil)
	other := (&Entry{Key: []byte("another"), Body: []byte("x"), StoredAt: 1, FreshUntil: 1 << 40, StaleUntil: 1 << 40}).AppendEncode(nil)
	f.Add(index, entry, other)
	f.Add(index[:len(index)-1], entry[:len(entry)/2], other)
	f.Add([]byte{'M', 'I', indexVersion, 0xff}, other, entry)
	f.Add([]byte{}, []byte{}, []byte{})
	f.Fuzz(func(t *testing.T, idx, e0, e1 []byte) {
		store := NewMemStore()
		tb := NewTable(store, buckets, ways)
		// Keys are built in the table's buffer: set each before the next.
		for _, kv := range []struct {
			key func() string
			val []byte
		}{{func() string { return tb.indexKey(0) }, idx}, {func() string { return tb.entryKey(0, 0) }, e0}, {func() string { return tb.entryKey(0, 1) }, e1}} {
			if err := store.Set(kv.key(), kv.val, 0); err != nil {
				t.Fatal(err)
			}
		}
		if _, _, err := tb.readIndex(0); err != nil {
			t.Fatal(err)
		}
		if len(tb.idx) != ways {
			t.Fatalf("index decoded to %d ways, want %d", len(tb.idx), ways)
		}
		if len(idx) == 4+indexWayLen*ways && idx[0] == indexMagic0 && idx[1] == indexMagic1 && idx[2] == indexVersion && int(idx[3]) == ways {
			if re := tb.encodeIndex(); !bytes.Equal(re, idx) {
				t.Fatalf("round trip changed the index:\n in %x\nout %x", idx, re)
			}
		} else {
			for w, s := range tb.idx {
				if s != (slot{}) {
					t.Fatalf("malformed index %x decoded way %d: %+v", idx, w, s)
				}
			}
		}
		e, err := tb.Lookup(fp, key, 2)
		if err != nil {
			t.Fatal(err)
		}
		if e != nil && !bytes.Equal(e.Key, key) {
			t.Fatalf("lookup of %q returned the entry of %q", key, e.Key)
		}
	})
}

// FuzzBackgroundSlotsOnHostileData: whatever mc:bg holds, the limiter
// neither panics nor hands out a slot outside its n, and what it writes
// back has its own length.
func FuzzBackgroundSlotsOnHostileData(f *testing.F) {
	const n = 3
	f.Add(binary.LittleEndian.AppendUint64(make([]byte, 16), 1<<40))
	f.Add(bytes.Repeat([]byte{0xff}, 8*n))
	f.Add(make([]byte, 8*n+1))
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, raw []byte) {
		store := NewMemStore()
		if err := store.Set("mc:bg", raw, 0); err != nil {
			t.Fatal(err)
		}
		b := NewBackgroundSlots(store, n)
		if busy := b.Busy(100); busy < 0 || busy > n {
			t.Fatalf("%d busy of %d", busy, n)
		}
		slot, ok, err := b.Acquire(100, 200)
		if err != nil {
			t.Fatal(err)
		}
		if !ok {
			return
		}
		if slot < 0 || slot >= n {
			t.Fatalf("slot %d of %d", slot, n)
		}
		if got, _, _ := store.Get("mc:bg"); len(got) != 8*n {
			t.Fatalf("limiter wrote %d bytes", len(got))
		}
		if err := b.Release(slot, 200); err != nil {
			t.Fatal(err)
		}
	})
}

// slotRecords is scanSlot's count of a slot's leases (their places in at),
// for the fuzz test's comparison with decodeSlot.
func slotRecords(b []byte, at *[LeaseWays + 1]int) int {
	return scanSlot(b, at, 0, 0, 0).n
}

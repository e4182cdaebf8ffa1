package cachecore

import (
	"fmt"
	"strings"
	"testing"
	"time"
)

// liveSlots counts the slots of c's table that hold an entry: listed, and
// not a purge's tombstone (which holds none: Table.Clear and the insert
// that takes a tombstone's way count it so).
func liveSlots(t *testing.T, c *Cache) int {
	t.Helper()
	tb := NewTable(c.store, c.cfg.Store.Buckets, c.cfg.Store.Ways)
	n := 0
	for b := uint64(0); b < tb.buckets; b++ {
		if _, _, err := tb.readIndex(b); err != nil {
			t.Fatal(err)
		}
		for _, s := range tb.idx {
			if s.fp != 0 && s.tag != purgedTag {
				n++
			}
		}
	}
	return n
}

// gaugeMoves is what the host adds to modelcache.entries for acts
// (filter/actions.go: noteStore's filled, ActFreed's N).
func gaugeMoves(acts []Action) int {
	n := 0
	for _, a := range acts {
		switch a.Kind {
		case ActStored, ActNoteStore:
			filled, _, _, _ := a.Stored.Result.Occupancy()
			n += filled
		case ActFreed:
			n -= a.N
		}
	}
	return n
}

// README (Stats): modelcache.entries is the gauge of occupied slots, kept
// by changes (RATIONALE "A proxy-wide gauge moves by each VM's change":
// "`entries` was always kept by changes"). A store is two writes, index
// then entry; a purge on another worker between them frees the slot the
// index write took, and the purge's answer lowers the gauge by it. For an
// answer stored from upstream, Cache.store keeps that index write's
// InsertResult (errPurgedDuring: "the index was written, and the purge
// freed the slot") and the host counts it (ActNoteStore). An L2 hit copied
// into L1 (l2Install) keeps it the same way — but l2Serve only emits the
// note when the copy succeeded, so the filled slot is dropped and the
// purge's -1 stays: the gauge ends one below the slots really occupied.
func TestL2CopyPurgedBetweenItsWritesKeepsEntriesGauge(t *testing.T) {
	m := newL2Mesh(t, "")
	// Proxy A asks the model; its answer reaches L2.
	if cs, _ := m.ask(0, "hello", "world"); !strings.Contains(cs, "fwd=miss") {
		t.Fatalf("A: %q", cs)
	}
	// Proxy B: two VMs over one shared data; VM 1 takes the L2 hit, VM 2
	// purges the key between VM 1's index write and entry write.
	store := &indexHookStore{Store: NewMemStore()}
	cfg := mustParse(t, fmt.Sprintf(l2TestConfig, ""))
	vm1 := New(cfg, Options{Store: store, Now: m.clock.Now, Rand: seededRand(7)})
	vm2 := New(cfg, Options{Store: store, Now: m.clock.Now, Rand: seededRand(8)})
	m.p[1] = vm1

	gauge := 0
	var perr error
	purged := false
	store.onIndexSet = func() {
		res, err := vm2.Purge([]byte(`{"path":"/v1/chat/completions","headers":{"authorization":"Bearer sk-alice"},"body":`+chatRequest("hello")+`}`), "")
		perr, purged = err, true
		gauge -= res.Freed // stream.handlePurge: entries.Add(-Freed)
	}
	req := vm1.Begin(vm1.routeByName("chat"), "POST", "/v1/chat/completions", alice)
	f := vm1.NewFlight(req, 2, 1)
	f.RequestHeaders(alice, false, true)
	var served bool
	acts := f.RequestBody([]byte(chatRequest("hello")), false)
	for len(acts) > 0 {
		a := acts[0]
		acts = acts[1:]
		gauge += gaugeMoves([]Action{a})
		switch a.Kind {
		case ActDispatch:
			acts = append(acts, a.Call.Done(m.wd.do(a.Call))...)
		case ActServeEntry:
			served = true
		case ActForward:
			t.Fatalf("B went upstream: L2 was to answer")
		}
	}
	if !served || !purged || perr != nil {
		t.Fatalf("setup: served %v, purged %v (%v)", served, purged, perr)
	}
	if live := liveSlots(t, vm1); gauge != live {
		t.Fatalf("modelcache.entries moved by %d over an L2 copy purged between its index and entry writes; slots occupied: %d", gauge, live)
	}
}

// README (Stats): modelcache.entries is the gauge of "occupied slots",
// kept by changes; RATIONALE (A reload overlaps two configurations) calls
// a gauge "climbed past capacity" a defect (review Z29). README
// (Limitations) supports changing store.ways under one vm_id: the cache
// starts empty, the old layout's keys stay in memory. But both layouts
// name their indexes and entries alike (mc:i:<b>, mc:e:<b>:<w>): a store
// of the new layout reads the old one's index as foreign, "all-empty"
// (readIndex), writes its own shape over it and counts its slot Filled —
// the old layout's listings, each counted when stored, are dropped with
// no ActFreed. Two layouts filling the table in turn leave the gauge at
// the sum of both capacities, more than the slots shared data holds.
func TestLayoutChangeKeepsEntriesGaugeWithinTheSlotsThatExist(t *testing.T) {
	store := NewMemStore()
	clock := newFakeClock()
	gauge := 0
	fillAll := func(cfg string, seed uint64, tag string) *Cache {
		c := New(mustParse(t, cfg), Options{Store: store, Now: clock.Now, Rand: seededRand(seed)})
		e := &testEnv{t: t, cache: c, store: store, clock: clock}
		for i := range 600 {
			req, d := e.lookup("chat", alice, chatRequest(tag+itoa(int64(i))))
			if d != Forward {
				t.Fatalf("%s %d: %v", tag, i, d)
			}
			res := e.fill(req, jsonCT, chatResponse("a"), 10)
			filled, _, _, _ := res.Occupancy()
			gauge += filled
		}
		return c
	}
	fillAll(testConfig, 1, "old layout ")
	clock.Advance(time.Second)
	b := fillAll(strings.Replace(testConfig, `"buckets": 16, "ways": 4`, `"buckets": 16, "ways": 8`, 1), 2, "new layout ")
	if b.LayoutReplaced() != "16x4" {
		t.Fatalf("setup: layout replaced %q", b.LayoutReplaced())
	}
	slots := 16 * 8 // the larger layout's: every entry key either names
	if live := liveSlots(t, b); gauge > slots {
		t.Fatalf("modelcache.entries reached %d after a change of store.ways from 4 to 8; the table has %d slots (%d occupied under the layout now serving)", gauge, slots, live)
	}
}

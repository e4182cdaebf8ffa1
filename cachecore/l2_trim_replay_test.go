package cachecore

import (
	"encoding/binary"
	"strings"
	"testing"
)

// README (Invalidation): the purge log "may be trimmed (LTRIM) or deleted
// at any time: ... a VM that no longer finds [the last record it read]
// cannot know which purges it missed, so it drops its whole L1 once
// (logged, warn)" — "each trim costs every proxy a cold L1". Reading the
// log again from its start (as the VM once did) applies every record an
// LTRIM kept: purges that reached Redis before the drop
// (a record is logged only once L2 has its purge), so nothing cached after
// the drop can predate them. Each "all" among them drops the L1 again,
// and each model purge that model's entries, whatever the VM cached since.
func TestL2TrimmedLogDropsL1Once(t *testing.T) {
	for _, tc := range []struct {
		name string
		kept string // a purge among the records the LTRIM keeps
	}{
		{"purge of everything kept", `{"all":true}`},
		{"model purge kept", `{"route":"chat","model":"gpt-4o-mini"}`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m := newL2Mesh(t, "")
			m.step(m.p[1].L2Tick()) // B reads the log from where it ends
			for _, body := range []string{`{"route":"chat","model":"other"}`, tc.kept, `{"route":"chat","model":"other"}`} {
				res, err := m.p[0].Purge([]byte(body), "")
				if err != nil {
					t.Fatal(err)
				}
				m.step(res.L2.Done(m.wd.do(res.L2)))
			}
			m.clock.Advance(DefaultL2SyncInterval)
			m.step(m.p[1].L2Tick()) // B read all three
			key := DefaultL2Prefix + "purges"
			m.wd.lists[key] = m.wd.lists[key][1:] // the operator trims the oldest (LTRIM purges 1 -1)
			m.clock.Advance(DefaultL2SyncInterval)
			m.step(m.p[1].L2Tick()) // B finds its record gone: drops L1 once
			m.copyToBsL1()          // B caches "hello" after every logged purge reached Redis
			for range 3 {           // B reads the log again from its start
				m.clock.Advance(DefaultL2SyncInterval)
				m.step(m.p[1].L2Tick())
			}
			if cs, _ := m.ask(1, "hello", "x"); strings.Contains(cs, "l2") || !strings.Contains(cs, "hit") {
				t.Fatalf("B's L1 lost what it cached after the drop, to a purge older than it: %q", cs)
			}
		})
	}
}

// A VM that finds the log deleted reads on from its end, 0, and keeps that
// as the process's position: a VM started later resumes there, not at the
// lost position (where it would find the log lost and drop L1 again).
func TestL2DeletedLogPositionIsSaved(t *testing.T) {
	m := newL2Mesh(t, "")
	m.step(m.p[1].L2Tick())
	for range 2 {
		res, err := m.p[0].Purge([]byte(`{"route":"chat","model":"other"}`), "")
		if err != nil {
			t.Fatal(err)
		}
		m.step(res.L2.Done(m.wd.do(res.L2)))
	}
	m.clock.Advance(DefaultL2SyncInterval)
	m.step(m.p[1].L2Tick()) // B read both: its position is 2
	delete(m.wd.lists, DefaultL2Prefix+"purges")
	for range 2 { // B finds its record gone, then takes the log's end
		m.clock.Advance(DefaultL2SyncInterval)
		m.step(m.p[1].L2Tick())
	}
	b := m.p[1]
	raw, _, err := b.store.Get(b.l2CursorKey())
	// The position after B's own start record in the emptied log (it was
	// 0, unnamed, before review Z46), named by its digest.
	list := m.wd.lists[DefaultL2Prefix+"purges"]
	if err != nil || len(raw) != 16 || binary.LittleEndian.Uint64(raw) != 1 || len(list) != 1 || binary.LittleEndian.Uint64(raw[8:]) != b.l2RecordSum(list[0]) {
		t.Fatalf("the process's position after the log was deleted: %x %v", raw, err)
	}
}

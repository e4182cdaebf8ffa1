package cachecore

import (
	"bytes"
	"strings"
	"testing"
)

// A VM that finds the purge log trimmed or deleted cannot know which
// purges it missed, so it drops its whole L1 (README, Invalidation). If
// that drop fails (shared data refused it), L1 still holds what a missed
// purge removed: the drop is done again at the next read, as a first
// read's drop is (l2SyncFirst: "If that fails, the VM starts over at its
// next read"), not given up for reading on from the log's end.
func TestL2LostLogDropThatFailedIsDoneAgain(t *testing.T) {
	for _, tc := range []struct {
		name string
		lose func(m *l2Mesh, key string)
	}{
		{"log deleted", func(m *l2Mesh, key string) { delete(m.wd.lists, key) }},
		{"log trimmed", func(m *l2Mesh, key string) {
			m.purgeOnA(`{"route":"chat","model":"other"}`) // a record newer than the missed purge
			m.wd.lists[key] = m.wd.lists[key][2:]          // LTRIM purges 2 -1
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m := newL2Mesh(t, "")
			fs := &flakyStore{Store: NewMemStore()}
			m.p[1] = New(m.p[1].cfg, Options{Store: fs, Now: m.clock.Now, Rand: seededRand(1)})
			m.step(m.p[1].L2Tick()) // B reads the log from where it ends (0)
			m.purgeOnA(`{"route":"chat","model":"other"}`)
			m.clock.Advance(DefaultL2SyncInterval)
			m.step(m.p[1].L2Tick()) // B read it: its position is 1
			m.copyToBsL1()          // B has "hello" in L1
			m.purgeOnA(`{"route":"chat","model":"gpt-4o-mini"}`)
			key := DefaultL2Prefix + "purges"
			tc.lose(m, key) // ... and the record of that purge is gone before B reads it
			fs.setErr = func(k string) error {
				if strings.HasPrefix(k, "mc:i:") {
					return errStoreDown
				}
				return nil
			}
			m.clock.Advance(DefaultL2SyncInterval)
			m.step(m.p[1].L2Tick()) // B finds its record gone; its L1 drop fails
			fs.setErr = nil
			for range 3 {
				m.clock.Advance(DefaultL2SyncInterval)
				m.step(m.p[1].L2Tick())
			}
			if cs, body := m.ask(1, "hello", "fresh"); !strings.Contains(cs, "fwd=miss") || !bytes.Contains(body, []byte("fresh")) {
				t.Fatalf("the L1 drop for a lost log failed and was never done again: purged answer served: %q %s", cs, body)
			}
		})
	}
}

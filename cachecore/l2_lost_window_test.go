package cachecore

import (
	"bytes"
	"strings"
	"testing"
)

// README (Invalidation): a VM that finds the purge log trimmed or deleted
// drops its L1 and reads on. It keeps serving, and caching, between the
// drop and the LLEN that sets its new position: a purge another proxy logs
// in that window is newer than the drop, yet lies before the position LLEN
// returns, and must still reach what the VM cached meanwhile.
func TestL2PurgeLoggedBetweenLostLogAndLLENReachesL1(t *testing.T) {
	for _, tc := range []struct {
		name  string
		purge string // logged by A after B dropped its L1, before B's LLEN
	}{
		{"model purge", `{"route":"chat","model":"gpt-4o-mini"}`},
		{"purge of everything", `{"all":true}`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m := newL2Mesh(t, "")
			m.step(m.p[1].L2Tick()) // B reads the log from where it ends
			for range 2 {
				m.purgeOnA(`{"route":"chat","model":"other"}`)
			}
			m.clock.Advance(DefaultL2SyncInterval)
			m.step(m.p[1].L2Tick()) // B read both
			key := DefaultL2Prefix + "purges"
			m.wd.lists[key] = m.wd.lists[key][1:] // LTRIM purges 1 -1
			m.clock.Advance(DefaultL2SyncInterval)
			m.step(m.p[1].L2Tick()) // B finds its record gone: drops L1
			m.copyToBsL1()          // B caches "hello" after the drop
			m.purgeOnA(tc.purge)    // ... and A purges it, before B's LLEN
			for range 3 {
				m.clock.Advance(DefaultL2SyncInterval)
				m.step(m.p[1].L2Tick())
			}
			if cs, body := m.ask(1, "hello", "fresh"); !strings.Contains(cs, "fwd=miss") || !bytes.Contains(body, []byte("fresh")) {
				t.Fatalf("a purge logged after B dropped its L1 never reached it: purged answer served: %q %s", cs, body)
			}
		})
	}
}

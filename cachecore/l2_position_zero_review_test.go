package cachecore

import (
	"bytes"
	"encoding/base64"
	"strings"
	"testing"
)

// Review Z46. README (Invalidation): the purge log "may be trimmed (LTRIM)
// or deleted at any time: ... a VM that no longer finds [the last record it
// read] ... drops its whole L1"; RATIONALE: "trimming costs a cold cache,
// never a served purged entry". Z44 closed this for a position taken by
// LLEN on a non-empty log; a position 0 (an empty log: a VM's first read,
// or after the log was found deleted) names no record, so a read from it
// checks nothing: a purge logged at index 0, then the log deleted and a
// new record logged at index 0, is taken for the next record to read and
// the first purge is never applied.
func TestL2EmptyLogPositionSeesAPurgeLoggedBeforeADelete(t *testing.T) {
	for _, tc := range []struct {
		name  string
		setup func(m *l2Mesh)
	}{
		{"first read of an empty log", func(m *l2Mesh) {
			m.step(m.p[1].L2Tick()) // B: LLEN=0, position 0
		}},
		{"log found deleted", func(m *l2Mesh) {
			m.step(m.p[1].L2Tick())
			m.purgeOnA(`{"route":"chat","model":"other"}`)
			m.clock.Advance(DefaultL2SyncInterval)
			m.step(m.p[1].L2Tick()) // B read it: position 1
			delete(m.wd.lists, DefaultL2Prefix+"purges")
			m.clock.Advance(DefaultL2SyncInterval)
			m.step(m.p[1].L2Tick()) // B finds it gone: LLEN=0, drops L1, position 0
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m := newL2Mesh(t, "")
			tc.setup(m)
			m.copyToBsL1() // B caches "hello" after its position was taken
			m.purgeOnA(`{"path":"/v1/chat/completions","headers":{"authorization":"Bearer sk-alice"},"body":` + chatRequest("hello") + `}`)
			delete(m.wd.lists, DefaultL2Prefix+"purges") // the operator deletes the log
			m.purgeOnA(`{"route":"chat","model":"another-model"}`)
			for range 3 {
				m.clock.Advance(DefaultL2SyncInterval)
				m.step(m.p[1].L2Tick())
			}
			if cs, body := m.ask(1, "hello", "fresh"); !strings.Contains(cs, "fwd=miss") || !bytes.Contains(body, []byte("fresh")) {
				t.Fatalf("B serves the purged answer from its L1 after 3 sync intervals (the purge logged at index 0 before the delete was never read): %q %s", cs, body)
			}
		})
	}
}

// l2PurgeRecords is the purge log's records but the start records VMs append
// when they find it empty (l2MarkStart).
func l2PurgeRecords(list []string) []string {
	var out []string
	for _, r := range list {
		raw, err := base64.StdEncoding.DecodeString(r)
		if f := strings.Split(string(raw), "\n"); err == nil && len(f) >= 4 && f[3] == l2StartScope {
			continue
		}
		out = append(out, r)
	}
	return out
}

package cachecore

import (
	"bytes"
	"encoding/base64"
	"strings"
	"testing"
	"time"
)

// pushForeignRecord appends rec (the record's text, before base64) to the
// purge log, as another proxy would (RPUSH), and moves the mesh-wide "all"
// generation on, as that proxy's purge of everything does in Redis.
func (m *l2Mesh) pushForeignRecord(rec string) {
	m.wd.lists["mc:purges"] = append(m.wd.lists["mc:purges"], base64.StdEncoding.EncodeToString([]byte(rec)))
	m.wd.do(&Call{Headers: [][2]string{{":method", "GET"}, {":path", "/INCR/mc:g.raw"}}})
}

// A purge log record this proxy cannot read — one written by another
// version of the filter during a rollout (the log's earlier format, or a
// newer one), or of a scope it does not know — stands for a purge it
// missed, as much as a record a trim took away does. It is passed over
// with an info log, and the purged answer is served on from this proxy's
// L1 until its ttl (an hour here), while every other proxy and L2 no
// longer serve it. Expected: as for a log found trimmed (RATIONALE,
// "trimming costs a cold cache, never a served purged entry"), L1 is
// dropped, so the next request is not answered with the purged answer.
func TestL2UnreadablePurgeRecordIsAMissedPurge(t *testing.T) {
	for _, tc := range []struct{ name, record string }{
		// 0d5b5d1's format: origin, authority, the purge body.
		{"earlier format", "00112233445566ff\nexample.com\n{\"all\":true}"},
		// A later format of the same lines.
		{"later format", "3\n00112233445566ff\nnonce1\nall"},
		// A record over the bound this version's writers keep (one a
		// later version with a larger bound wrote).
		{"over the bound", "2\n00112233445566ff\nnonce4\nall\n" + strings.Repeat("x", 200<<10)},
		// This format, a scope a newer proxy added.
		{"unknown scope", "2\n00112233445566ff\nnonce2\ntenant\n\"chat\"\n\"gpt-4o-mini\""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m := newL2Mesh(t, "")
			m.step(m.p[1].L2Tick()) // B starts reading the log (empty: its start record)
			m.step(m.p[0].L2Tick())
			m.copyToBsL1()
			m.pushForeignRecord(tc.record)
			m.clock.Advance(DefaultL2SyncInterval)
			m.step(m.p[1].L2Tick())
			m.clock.Advance(DefaultL2SyncInterval)
			m.step(m.p[1].L2Tick())
			if cs, body := m.ask(1, "hello", "fresh"); !bytes.Contains(body, []byte("fresh")) {
				t.Fatalf("after a purge record B could not read, B still serves the purged answer from its L1: %q %s", cs, body)
			}
		})
	}
}

// A value of an earlier format (or corrupt) is "l2.rejected once and
// rewritten" (README, Keys and values). A proxy that waits on another
// proxy's lease for that key counts it again at every poll of its wait,
// until the leader's answer overwrites it: one old value, met by one
// waiting request, is reported as a run of rejected values, which reads as
// ongoing corruption on a dashboard. Expected: one rejected count per
// request that met the value, not one per poll.
func TestL2RejectedValueCountedOncePerWait(t *testing.T) {
	m := newL2Mesh(t, "")
	m.ask(0, "q", "old")
	if err := m.p[0].PurgeModel("chat", "gpt-4o-mini"); err != nil { // out of A's L1 only
		t.Fatal(err)
	}
	for k, v := range m.wd.kv {
		if strings.Contains(k, ":e:") {
			raw, _ := base64.StdEncoding.DecodeString(string(v))
			raw[3] = 1 // "ML2\x01": the value format before this one
			m.wd.kv[k] = []byte(base64.StdEncoding.EncodeToString(raw))
		}
	}
	_, got := m.begin(0, 1, "q")
	if got != "coalesce.leaders l2.rejected l2.miss l2.lease_won forward" {
		t.Fatalf("A: %s", got)
	}
	b, got := m.begin(1, 1, "q")
	if got != "coalesce.leaders l2.rejected l2.miss l2.lease_lost wait" {
		t.Fatalf("B: %s", got)
	}
	rejected := 0
	var seen []string
	for i := 0; i < 20; i++ {
		m.clock.Advance(100 * time.Millisecond)
		g, _ := m.step(b.Tick())
		seen = append(seen, g)
		rejected += strings.Count(g, "l2.rejected")
	}
	if rejected > 0 {
		t.Fatalf("B's wait counted the one old value rejected %d more times (ticks: %q)", rejected, seen)
	}
}

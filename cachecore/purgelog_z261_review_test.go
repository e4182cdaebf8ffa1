package cachecore

import (
	"encoding/base64"
	"strconv"
	"strings"
	"testing"
)

// Review Z261.
//
// A purge-log record a VM cannot read stands for a purge it missed, and
// it drops its whole L1 for it (l2Apply's unreadable: dropL1, a full
// table.Clear — every bucket's index and every way's entry read — and
// every model slot's generations renewed). But it does so once per such
// record: a read of 32 records, and 8 reads chained in one tick, make up
// to 256 whole-L1 drops a tick, one after the other, where the first
// already dropped everything the others stand for (each renews every
// generation too, so nothing in flight across any of them is stored).
// Garbage from webdis, bytes another party pushed, or a burst of
// records of a newer module's format each cost a VM a full L1 walk
// times the records in the batch — store.buckets × (1 + ways) host calls
// each (a 64 Ki-bucket, 8-way store: 590,000 calls per record, 150 M a
// tick). Expected: the work of applying one read's unreadable records is
// about that of one drop (L1 is dropped once per read), not one per
// record.
func TestL2UnreadablePurgeLogRecordsDropL1OncePerRead(t *testing.T) {
	m := newL2Mesh(t, "")
	counting := &callCountStore{MemStore: NewMemStore()}
	m.p[1] = New(m.p[1].cfg, Options{Store: counting, Now: m.clock.Now, Rand: seededRand(1)})
	m.step(m.p[1].L2Tick()) // B takes its position (its start record)
	m.step(m.p[0].L2Tick())
	m.copyToBsL1()
	key := DefaultL2Prefix + "purges"
	garbage := func(i int) string {
		return base64.StdEncoding.EncodeToString([]byte("garbage " + strconv.Itoa(i)))
	}
	cost := func(n int) int {
		for i := 0; i < n; i++ {
			m.wd.lists[key] = append(m.wd.lists[key], garbage(i))
		}
		m.clock.Advance(DefaultL2SyncInterval)
		counting.gets, counting.sets = 0, 0
		m.step(m.p[1].L2Tick())
		if m.p[1].l2s.lost || !m.p[1].l2s.started {
			t.Fatalf("setup: B lost its position: %+v", m.p[1].l2s)
		}
		return counting.gets + counting.sets
	}
	one := cost(1)
	many := cost(l2SyncBatch)
	if many > 3*one {
		t.Fatalf("one read of %d unreadable purge-log records cost %d shared-data calls; one such record costs %d: L1 is dropped once per record, not once per read (%.0f×)",
			l2SyncBatch, many, one, float64(many)/float64(one))
	}
}

// Review Z261.
//
// README (Mesh-wide L2) has operators restrict webdis with its ACL to the
// commands the filter uses, LLEN and LRANGE among them, and Stats says
// l2.error counts "webdis/Redis unreachable or answering garbage". A
// webdis whose ACL refuses the purge log's read answers it HTTP 403 (as
// it does every disabled command): l2Read's callback drops any non-200
// answer with no count and no log ("read again next time"), every
// interval, for good. Purges then never reach this proxy's L1 (the
// README's "within sync_interval + tick_period"), and nothing says so:
// the same refusal relayed as a Redis error reply ({"LRANGE":[false,
// "NOAUTH …"]}) is counted l2.error, an L2 lookup refused with 403 is
// counted l2.error, and an ACL without EXPIRE counts every write as
// l2.write_error. Expected: a purge-log read that webdis refuses (or
// that fails) is counted as an L2 error, as a lookup's is.
func TestL2PurgeLogReadRefusedByWebdisIsCounted(t *testing.T) {
	m := newL2Mesh(t, "")
	m.step(m.p[1].L2Tick()) // B's position: its start record
	m.purgeOnA(`{"route":"chat","model":"gpt-4o-mini"}`)
	forbidden := CallResult{Status: 403, Headers: [][2]string{{":status", "403"}}, Body: []byte("Forbidden\n")}
	var seen []string
	for i := 0; i < 5; i++ {
		m.clock.Advance(DefaultL2SyncInterval)
		acts := m.p[1].L2Tick()
		if len(acts) != 1 || acts[0].Kind != ActDispatch || !strings.Contains(headerValue(acts[0].Call.Headers, ":path"), "/LRANGE/") {
			t.Fatalf("read %d: no purge-log read: %+v", i, acts)
		}
		got, _ := m.step(acts[0].Call.Done(forbidden))
		if got != "" {
			seen = append(seen, got)
		}
	}
	if !strings.Contains(strings.Join(seen, " "), "l2.error") {
		t.Fatalf("5 purge-log reads refused by webdis (HTTP 403, its ACL) over 5 s counted nothing (%q): the log is dead on this proxy, a purge never reaches its L1, and no stat says so", seen)
	}
}

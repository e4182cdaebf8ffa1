package cachecore

import (
	"encoding/base64"
	"strings"
	"testing"
	"time"
)

// l2MaxRecord bounds a purge log record "whatever any
// proxy's configuration" (l2Records splits an embeddings batch's
// identities into records within it), and l2SyncCap bounds a read at
// l2SyncBatch+1 such records. But l2Apply reads a record of any size:
// one record that fills a read's whole cap (a corrupted or hostile log,
// bytes another party wrote) is applied whole in one tick, one table
// remove — shared-data reads, an entry copied — per identity of a few
// bytes. The work of one tick is then set by the log's bytes, not by the
// bounds the writer keeps.
func TestL2OversizedPurgeLogRecordIsNotApplied(t *testing.T) {
	m := newL2Mesh(t, "")
	counting := &callCountStore{MemStore: NewMemStore()}
	m.p[1] = New(m.p[1].cfg, Options{Store: counting, Now: m.clock.Now, Rand: seededRand(1)})
	m.step(m.p[1].L2Tick()) // B starts reading the log where it ends
	m.step(m.p[0].L2Tick())
	m.copyToBsL1()

	// A's honest entry purge of "hello": its record names route, model and
	// the entry's stable identity.
	key := DefaultL2Prefix + "purges"
	before := len(m.wd.lists[key])
	m.purgeOnA(`{"path":"/v1/chat/completions","headers":{"authorization":"Bearer sk-alice"},"body":` + chatRequest("hello") + `}`)
	l := m.wd.lists[key]
	if len(l) != before+1 {
		t.Fatalf("setup: log %d records, was %d", len(l), before)
	}
	raw, err := base64.StdEncoding.DecodeString(l[len(l)-1])
	f := strings.Split(string(raw), "\n")
	if err != nil || len(f) < 7 || f[3] != "entry" {
		t.Fatalf("setup: record %q", raw)
	}
	// The same record, with identities of one byte each, eight times the
	// largest record any proxy writes; a read's cap still holds it.
	var b strings.Builder
	b.WriteString(strings.Join(f[:6], "\n"))
	for b.Len() < 8*l2MaxRecord {
		b.WriteString("\nAA==")
	}
	rec := base64.StdEncoding.EncodeToString([]byte(b.String()))
	if len(rec)+64 > m.p[1].l2SyncCap() {
		t.Fatalf("setup: record of %d bytes over the read's cap %d", len(rec), m.p[1].l2SyncCap())
	}
	l[len(l)-1] = rec

	m.clock.Advance(DefaultL2SyncInterval)
	counting.gets, counting.sets = 0, 0
	t0 := time.Now()
	m.step(m.p[1].L2Tick())
	took := time.Since(t0)
	// The most removes a record within l2MaxRecord can ask: one identity
	// per 5 bytes ("\nAA=="), each a few shared-data reads.
	bound := 3 * l2MaxRecord / 5
	if counting.gets > bound {
		t.Errorf("one tick applied a purge log record of %d bytes (over l2MaxRecord, %d): %d shared-data reads, %d writes, %v (a record within the bound costs at most about %d)",
			b.Len(), l2MaxRecord, counting.gets, counting.sets, took, bound)
	}
}

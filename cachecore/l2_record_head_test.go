package cachecore

import (
	"errors"
	"strings"
	"testing"
	"time"
)

// A purge by a long model name (Quote makes a C1 control character six
// bytes) never writes a purge-log record over what a read takes, which
// would stop every reader's log for good (review 11).
func TestModelPurgeOfALongModelNameKeepsLogRead(t *testing.T) {
	m := &l2Mesh{t: t, clock: newFakeClock(), wd: newFakeWebdis()}
	cfg := `{"upstream_cluster":"model","max_request_bytes":4194304,"l2":{"cluster":"webdis"},"purge":{"path":"/purge","token":"0123456789abcdef"},
	 "routes":[{"name":"chat","kind":"chat","path_prefix":"/v1/chat/completions","ttl":"1h"}]}`
	m.p[0] = New(mustParse(t, cfg), Options{Store: NewMemStore(), Now: m.clock.Now, Rand: seededRand(0)})
	m.p[1] = New(mustParse(t, cfg), Options{Store: NewMemStore(), Now: m.clock.Now, Rand: seededRand(1)})
	for _, p := range m.p {
		m.step(p.L2Tick())
	}
	chat := m.helloOnB()
	// Refused (a clear error), or logged within a record: either way the
	// log goes on being read.
	if res, err := m.p[0].Purge([]byte(`{"route":"chat","model":"`+strings.Repeat("\u0085", 1300000)+`"}`), ""); err == nil && res.L2 != nil {
		m.step(res.L2.Done(m.wd.do(res.L2)))
	} else if err != nil && !errors.Is(err, ErrBadPurge) {
		t.Fatal(err)
	} // 2.6 MB body
	m.purgeOnA(`{"path":"/v1/chat/completions","headers":{"authorization":"Bearer sk-alice"},"body":` + chatRequest("hello") + `}`)
	for range 20 {
		m.clock.Advance(DefaultL2SyncInterval + 100*time.Millisecond)
		m.step(m.p[1].L2Tick())
	}
	if m.p[1].Lookup(chat()) == Serve {
		t.Errorf("the reader still serves the purged chat answer 20 sync intervals later: a model purge's record is %d bytes (l2MaxRecord %d, a read's cap %d)",
			len(m.wd.lists["mc:purges"][0]), l2MaxRecord, m.p[1].l2SyncCap())
	}
}

// Every purge-log record fits l2MaxRecord: a model name too long for one
// (only an entry purge's replayed request can bring one) is logged as a
// purge of everything; items over a record's room make a model purge.
func TestPurgeLogRecordsAreBounded(t *testing.T) {
	m := newL2Mesh(t, "")
	c := m.p[0]
	long := strings.Repeat("\u0085", 100000)
	if got := c.l2Records("entry", "chat", long, []byte("k")); got != c.l2Records("all", "", "") {
		t.Errorf("entry purge of a %d-byte model name logged as %.60q", len(long), got)
	}
	big := make([]byte, l2MaxRecord)
	if got := c.l2Records("entry", "chat", "m", big); got != c.l2Records("model", "chat", "m") {
		t.Errorf("an identity over a record's room logged as %.60q", got)
	}
	items := make([][]byte, 300)
	for i := range items {
		items[i] = make([]byte, 1000)
	}
	for i, rec := range strings.Split(c.l2Records("entry", "chat", "m", items...), "\x00") {
		if len(rec) > l2MaxRecord-1024 {
			t.Errorf("record %d is %d bytes", i, len(rec))
		}
	}
}

package cachecore

import (
	"strings"
	"testing"
	"time"
)

// R11-F: l2Records bounds only the stable identities by room: the head
// (strconv.Quote of the model name, up to 6x a C1 control character's
// 2 bytes) is not bounded, so a model purge of a long model name (within
// max_request_bytes) writes a record far over l2MaxRecord; one over a
// read's whole cap stops every reader's log for good.
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
	m.purgeOnA(`{"route":"chat","model":"` + strings.Repeat("\u0085", 1300000) + `"}`) // 2.6 MB body
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

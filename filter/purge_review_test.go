//go:build !wasip1

package main

import (
	"strings"
	"testing"
	"time"

	"github.com/modelcache/modelcache/wasmhost"
)

func reviewPurge(hs *harness, w int, body string) *wasmhost.ClientResponse {
	hs.t.Helper()
	res, err := hs.h.Exchange(w, wasmhost.Request{
		Headers: [][2]string{{":method", "POST"}, {":path", "/modelcache/purge"}, {":authority", "m"},
			{"authorization", "Bearer 0123456789abcdef-token"}},
		Body: []byte(body),
	})
	if err != nil || res.Status != 200 {
		hs.t.Fatalf("purge %s: %v %d %s", body, err, res.Status, res.Body)
	}
	return res
}

// Guarantee: Envoy stats are truthful — modelcache.entries is the number
// of entries held. An entry purge frees its entry (gauge −1) and leaves a
// tombstone in the bucket index; a purge of everything then counts that
// tombstone as a freed entry too (Table.Clear), so the gauge ends at −1
// with the cache empty (and the purge answer says freed 2 for 1 entry).
func TestEntriesGaugeAfterAnEntryPurgeThenAPurgeOfEverything(t *testing.T) {
	hs := newHarness(t, chatConfig, withWorkers(2))
	a, b := chatBody("gauge a"), chatBody("gauge b")
	hs.post(0, "/v1/chat/completions", a)
	hs.post(1, "/v1/chat/completions", b)
	if g, _ := hs.h.Gauge("modelcache.entries"); g != 2 {
		t.Fatalf("setup: entries %d", g)
	}
	reviewPurge(hs, 0, `{"path":"/v1/chat/completions","headers":{"authorization":"Bearer tenant-a","host":"models"},"body":`+a+`}`)
	res := reviewPurge(hs, 1, `{"all":true}`)
	if g, _ := hs.h.Gauge("modelcache.entries"); g != 0 || !strings.Contains(string(res.Body), `"freed":1`) {
		t.Fatalf("after an entry purge and a purge of everything: entries gauge %d, purge answer %s; want 0 and freed 1", g, res.Body)
	}
}

// Guarantee: Envoy stats are truthful. An entry purge of a key that holds
// no entry puts its tombstone in an empty or dead way; where it takes a
// dead entry's way (another key's answer past its stale window, still
// counted in modelcache.entries until its slot is reused) that entry goes
// without the gauge moving, and the next store into the tombstone's way
// counts as a filled slot: a one-slot store reports 2 entries.
func TestEntriesGaugeWhenAPurgeTombstoneTakesADeadEntrysWay(t *testing.T) {
	cfg := strings.Replace(chatConfig, `"upstream_cluster": "model",`, `"upstream_cluster": "model", "store": {"buckets": 1, "ways": 1},`, 1)
	hs := newHarness(t, cfg, withWorkers(2))
	a, b := chatBody("gauge a"), chatBody("gauge b")
	hs.post(0, "/v1/chat/completions", a)
	hs.h.AdvanceAndTick(2 * time.Minute) // a is dead (ttl 60s, no stale window)
	hs.h.Drain()
	reviewPurge(hs, 0, `{"path":"/v1/chat/completions","headers":{"authorization":"Bearer tenant-a","host":"models"},"body":`+b+`}`)
	expectCacheStatus(t, hs.post(1, "/v1/chat/completions", b), "stored")
	expectCacheStatus(t, hs.post(0, "/v1/chat/completions", b), "hit")
	if g, _ := hs.h.Gauge("modelcache.entries"); g != 1 {
		t.Fatalf("a store of 1 slot holding one entry: entries gauge %d, want 1", g)
	}
}

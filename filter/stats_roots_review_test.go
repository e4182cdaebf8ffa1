//go:build !wasip1

package main

import (
	"strings"
	"testing"

	"github.com/modelcache/modelcache/wasmhost"
)

// Review Z135 (stats_roots). README (Stats): modelcache.entries is the
// gauge of "occupied slots", kept by changes (each store's Filled, each
// purge's Freed). Table.InsertSince writes the bucket index first (the
// slot is taken, listed with the key) and the entry second; when the
// entry's shared-data write fails (proxy_set_shared_data of mc:e:*: Envoy
// out of memory, a host size limit) it returns an empty InsertResult, so
// the slot the index now lists is never counted. The next store of that
// key reuses its listed way (not Filled), and a purge of everything frees
// the listed slot (Freed 1): the gauge shows 0 entries while one is
// served, then −1 after the purge — an Envoy gauge is unsigned, so the
// proxy reports 18446744073709551615 entries. Expected: the gauge stays
// the number of slots occupied: 1 while the entry is served, 0 after the
// purge of everything.
func TestEntriesGaugeAfterAFailedEntryWrite(t *testing.T) {
	f := &faultPlan{}
	hs := newHarness(t, chatConfig, withWorkers(1), withFaults(f))
	body := chatBody("entry write fails once")
	once := true
	f.set(func(c wasmhost.HostCall) (wasmhost.Status, bool) {
		if once && c.Name == "proxy_set_shared_data" && strings.HasPrefix(c.Key, "mc:e:") {
			once = false
			return wasmhost.StatusInternalFailure, true
		}
		return 0, false
	})
	res := hs.post(0, "/v1/chat/completions", body)
	f.set(nil)
	if f.failed() != 1 || res.Status != 200 || strings.Contains(hdr(res, "cache-status"), "stored") {
		t.Fatalf("setup: %d failed writes, %d %q", f.failed(), res.Status, hdr(res, "cache-status"))
	}
	expectCacheStatus(t, hs.post(0, "/v1/chat/completions", body), "stored")
	expectCacheStatus(t, hs.post(0, "/v1/chat/completions", body), "hit")
	served, _ := hs.h.Gauge("modelcache.entries")
	purge := reviewPurge(hs, 0, `{"all":true}`)
	after, _ := hs.h.Gauge("modelcache.entries")
	if served != 1 || after != 0 {
		t.Fatalf("modelcache.entries after a failed entry write: %d while its key's entry is served (want 1), %d after a purge of everything (want 0; purge answered %s)", served, after, purge.Body)
	}
}

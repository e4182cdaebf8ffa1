//go:build !wasip1

package main

import (
	"strings"
	"testing"

	"github.com/modelcache/modelcache/wasmhost"
)

// Review Z132 (1). A purge of everything that clears L1 (Table.Clear
// frees the stored entries) and then meets a store fault renewing the
// model generations returns the entries it freed with its error; the
// filter answers it 503 "send it again" (review Z131) but drops the count:
// modelcache.entries keeps counting the entries the purge removed, and
// the purge sent again finds nothing to free, so the gauge stays wrong
// for good (README: "gauge: occupied slots").
func TestZ132PurgeAllFaultAfterClearKeepsEntriesGauge(t *testing.T) {
	f := &faultPlan{}
	hs := newHarness(t, chatConfig, withFaults(f))
	expectCacheStatus(t, hs.post(0, "/v1/chat/completions", chatBody("z132 gauge")), "stored")
	if g, _ := hs.h.Gauge("modelcache.entries"); g != 1 {
		t.Fatalf("setup: entries gauge %d, want 1", g)
	}
	var keys []string
	f.set(func(c wasmhost.HostCall) (wasmhost.Status, bool) {
		if c.Name == "proxy_set_shared_data" {
			keys = append(keys, c.Key)
		}
		return wasmhost.StatusInternalFailure, c.Name == "proxy_set_shared_data" && strings.Contains(c.Key, ":m:")
	})
	res, err := hs.h.Exchange(0, z131Purge(`{"all":true}`))
	f.set(nil)
	if err != nil {
		t.Fatalf("exchange: %v", err)
	}
	if f.failed() == 0 {
		t.Fatalf("setup: fault not injected (writes %q)", keys)
	}
	if res.Status != 503 {
		t.Fatalf("setup: purge answered %d %s, want the 503 of a fault", res.Status, res.Body)
	}
	// Sent again, as the 503 says: it succeeds, freeing nothing (L1 is empty).
	res, err = hs.h.Exchange(0, z131Purge(`{"all":true}`))
	if err != nil || res.Status != 200 {
		t.Fatalf("the purge sent again: %v %d %s", err, res.Status, res.Body)
	}
	if g, _ := hs.h.Gauge("modelcache.entries"); g != 0 {
		t.Errorf("after a purge of everything (503 once, then 200 %s): modelcache.entries %d, want 0: the entries the faulted purge cleared are still counted", res.Body, g)
	}
}

// Review Z132 (2). README "Purge API" (review Z131): "A malformed purge
// is answered 400 (`bad purge request: …`); one a fault of the proxy's
// stopped (a body it would not read, shared data refusing a write) 503
// `purge failed, send it again`, counted in modelcache.internal_errors".
// A purge of one entry whose model record shared data will not hand over
// (SetBody's modelState fails) has its request bypassed with reason
// "internal", which Purge reports as ErrBadPurge: the operator is told
// 400 "bad purge request: the request would bypass the cache (internal)"
// — do not send it again — for a valid purge, the entry stays served, and
// internal_errors does not move.
func TestZ132EntryPurgeStoreFaultIsNotABadRequest(t *testing.T) {
	f := &faultPlan{}
	hs := newHarness(t, chatConfig, withFaults(f))
	body := chatBody("z132 entry")
	expectCacheStatus(t, hs.post(0, "/v1/chat/completions", body), "stored")
	before := hs.counter("modelcache.internal_errors")
	f.set(nthCall(1, wasmhost.StatusInternalFailure, func(c wasmhost.HostCall) bool {
		return c.Name == "proxy_get_shared_data" && strings.Contains(c.Key, ":m:")
	}))
	res, err := hs.h.Exchange(0, z131Purge(`{"method":"POST","path":"/v1/chat/completions","headers":{"authorization":"Bearer tenant-a"},"body":`+body+`}`))
	f.set(nil)
	if err != nil {
		t.Fatalf("exchange: %v", err)
	}
	if f.failed() != 1 {
		t.Fatalf("setup: fault not injected (%d)", f.failed())
	}
	internal := hs.counter("modelcache.internal_errors") - before
	if res.Status != 503 || internal == 0 {
		t.Errorf("an entry purge a shared-data fault stopped: answered %d %s, internal_errors +%d; want 503 'purge failed, send it again' and the fault counted",
			res.Status, strings.TrimSpace(string(res.Body)), internal)
	}
}

//go:build !wasip1

package main

import (
	"strings"
	"testing"

	"github.com/modelcache/modelcache/wasmhost"
)

// Review Z216 (stats_truth). README (Stats): items.hit counts "the cached
// items of a hit or partial request ... a batch fetched whole again has
// none" — the items the client was answered from the cache (events.go:
// "items answered from cache"), as the reviews of a merge the host refused
// (Z83) and of a broken partial batch keep it: a client that got none of
// the cached items counts none. A partly cached batch whose missing items'
// answer is a failure (the model's 500 or 400, Envoy's 503 for an
// upstream reset: "an error passes: it carries no vectors",
// headersRefused) reaches the client as that error
// alone, no vector of the cache in it and no age recorded, yet its count,
// made when it ends (countWaited), adds every cached item of the batch to
// items.hit. Expected: items.hit unchanged by a request whose client got
// the model's error and none of the cached items.
func TestPartialBatchAnsweredWithTheModelsErrorCountsNoItemHit(t *testing.T) {
	for _, tc := range []struct {
		name   string
		status int
		answer func(u *wasmhost.UpstreamRequest)
	}{
		{"500", 500, func(u *wasmhost.UpstreamRequest) {
			u.Respond(500, [][2]string{{"content-type", "application/json"}}, []byte(`{"error":{"message":"boom"}}`))
		}},
		{"400", 400, func(u *wasmhost.UpstreamRequest) {
			u.Respond(400, [][2]string{{"content-type", "application/json"}}, []byte(`{"error":{"message":"bad input"}}`))
		}},
		// Envoy's 503 for an upstream reset before the answer's headers.
		{"reset", 503, func(u *wasmhost.UpstreamRequest) { u.Reset() }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			hs := newHarness(t, embConfig, withWorkers(1))
			odd, all := oddOf(8)
			if res := hs.post(0, "/v1/embeddings", embReq(odd, "")); res.Status != 200 {
				t.Fatalf("priming: %d", res.Status)
			}
			hitBefore := hs.counter("modelcache_route.emb.items.hit")
			hs.fault = func(u *wasmhost.UpstreamRequest) bool { tc.answer(u); return true }
			res := hs.post(0, "/v1/embeddings", embReq(all, ""))
			if res.Status != tc.status || strings.Contains(string(res.Body), "embedding") {
				t.Fatalf("setup: the client got %d %q %s, want the failure's %d alone", res.Status, hdr(res, "cache-status"), res.Body, tc.status)
			}
			ages := hs.h.Histogram("modelcache_route.emb.age_at_serve_ms")
			got, _ := requestCounters(hs, "emb")
			if hit := hs.counter("modelcache_route.emb.items.hit") - hitBefore; hit != 0 {
				t.Fatalf("the client got %d (Cache-Status %q) and none of the %d cached items, but items.hit +%d "+
					"(requests %s, age_at_serve_ms %v: no entry served); want items.hit +0", res.Status, hdr(res, "cache-status"),
					len(odd), hit, fmtCounters(got), ages)
			}
		})
	}
}

// Review Z216 (stats_truth). README (Stats): age_at_serve_ms is the "age of
// the entries served"; a partly cached batch whose merge cannot reach the
// client gets the batch's 502 and is "counted a miss with no item served
// and no age" (Stream.MergeFailed, review Z83; performUnmerged drops the
// merge's ActRecordAge for that reason). A merged answer larger than the
// route's max_entry_bytes is sent as a local reply once the actions after
// it are performed (sendMerged, review Z143), so its ActRecordAge is
// recorded before the write is tried; should the host refuse the local
// reply and then the write into the held answer too (writeMerged ->
// MergeFailed), the request is counted a miss with no item hit, and the
// client gets the 502 — but the histogram keeps the served entry's age.
// Expected: no age recorded for a request none of whose cached items
// reached its client.
func TestLargeMergeRefusedTwiceRecordsNoAgeAtServe(t *testing.T) {
	cfg := `{"upstream_cluster":"model","routes":[{"name":"emb","kind":"embeddings","path_prefix":"/v1/embeddings","ttl":"1h","max_entry_bytes":4096}]}`
	f := &faultPlan{}
	hs := newHarness(t, cfg, withWorkers(1), withFaults(f))
	// Cached three at a time, each answer within max_entry_bytes; the
	// batch of 32 then has 30 cached, and its merge is over 4096 bytes.
	for i := 0; i < 30; i += 3 {
		if res := hs.post(0, "/v1/embeddings", embReq(chunks(i, i+3), "")); res.Status != 200 || !strings.Contains(hdr(res, "cache-status"), "stored") {
			t.Fatalf("priming: %d %q", res.Status, hdr(res, "cache-status"))
		}
	}
	missBefore := hs.counter("modelcache_route.emb.requests.miss")
	f.set(func(c wasmhost.HostCall) (wasmhost.Status, bool) {
		if c.Name == "proxy_send_local_response" {
			return wasmhost.StatusBadArgument, true
		}
		return wasmhost.StatusInternalFailure, c.Name == "proxy_set_buffer_bytes" && len(c.Args) > 0 &&
			wasmhost.BufferType(uint32(c.Args[0])) == wasmhost.BufferHTTPResponseBody
	})
	res := hs.post(0, "/v1/embeddings", embReq(chunks(0, 32), ""))
	f.set(nil)
	if f.failed() < 2 || res.Status != 502 || hs.counter("modelcache_route.emb.items.hit") != 0 ||
		hs.counter("modelcache_route.emb.requests.miss") != missBefore+1 {
		t.Fatalf("setup: %d host calls failed; client got %d %q; items.hit %d, requests.miss +%d: want the batch's 502, a miss with no item hit",
			f.failed(), res.Status, hdr(res, "cache-status"), hs.counter("modelcache_route.emb.items.hit"),
			hs.counter("modelcache_route.emb.requests.miss")-missBefore)
	}
	if ages := hs.h.Histogram("modelcache_route.emb.age_at_serve_ms"); len(ages) != 0 {
		t.Fatalf("the client got the batch's 502 (%q), counted a miss with no item hit, yet age_at_serve_ms recorded %v: "+
			"an entry's age for a request no entry answered; want none", hdr(res, "cache-status"), ages)
	}
}

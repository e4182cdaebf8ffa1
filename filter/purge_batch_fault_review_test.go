//go:build !wasip1

package main

import (
	"testing"
	"time"

	"github.com/modelcache/modelcache/wasmhost"
	"github.com/tidwall/gjson"
)

// Purge API (README: "bearer token of the purge API … without it the API
// does not exist"; stream.startPurge: a refused purge is "answered here
// whatever it carries"). A purge with a wrong token (401) or the wrong
// method (405) whose refusal the host does not send at once is left
// paused at its headers for the ticks to answer (stream.reply,
// retryLater) — but its body still arrives, and OnHttpRequestBody runs
// handlePurge on it: the unauthorised purge is carried out (the cache is
// emptied) and answered 200, the 401/405 then sent again from the tick.
func TestRefusedPurgeWhoseReplyIsRetriedIsNotCarriedOut(t *testing.T) {
	for _, c := range []struct{ name, method, token string }{
		{"401", "POST", "Bearer wrong-token-wrong-token"},
		{"405", "GET", "Bearer 0123456789abcdef-token"},
	} {
		t.Run(c.name, func(t *testing.T) {
			f := &faultPlan{}
			hs := newHarness(t, chatConfig, withFaults(f), withWorkers(1))
			if res := hs.post(0, "/v1/chat/completions", chatBody("kept")); res.Status != 200 {
				t.Fatalf("priming: %d", res.Status)
			}
			f.set(nthCall(1, wasmhost.StatusBadArgument, func(hc wasmhost.HostCall) bool {
				return hc.Name == "proxy_send_local_response"
			}))
			ex := hs.h.StartExchange(0, wasmhost.Request{
				Headers: [][2]string{{":method", c.method}, {":path", "/modelcache/purge"}, {":authority", "m"},
					{"authorization", c.token}, {"content-length", "12"}},
				Body: []byte(`{"all":true}`),
			})
			hs.h.Drain()
			for i := 0; i < 3 && !ex.Done(); i++ {
				hs.h.AdvanceAndTick(time.Second)
				hs.h.Drain()
			}
			f.set(nil)
			if f.failed() == 0 {
				t.Fatal("no local reply failed")
			}
			if n := hs.counter("modelcache.purges"); n != 0 {
				t.Errorf("a purge refused %s was carried out: modelcache.purges = %d", c.name, n)
			}
			if ex.Done() {
				if r := ex.Response(); r.Status != 401 && r.Status != 405 {
					t.Errorf("the refused purge was answered %d %s", r.Status, r.Body)
				}
			}
			res := hs.post(0, "/v1/chat/completions", chatBody("kept"))
			expectCacheStatus(t, res, "hit")
		})
	}
}

// README "requests.<status>: each request once, as the status its
// Cache-Status reports"; items.hit: "the cached items of a hit or partial
// request". A partly cached batch whose merged body cannot be written gets
// the broken-batch 502 (plugin.perform, ActReplaceBody), whose
// Cache-Status says fwd=miss; detail=internal — yet the actions after it
// still count the request partial, its cached items hit, and their age
// served.
func TestPartialBatchAnsweredBrokenIsNotCountedPartial(t *testing.T) {
	f := &faultPlan{}
	hs := newHarness(t, embConfig, withFaults(f), withHTTPCalls())
	odd, all := oddOf(8)
	if res := hs.post(0, "/v1/embeddings", embReq(odd, "")); res.Status != 200 {
		t.Fatalf("priming: %d", res.Status)
	}
	partial, itemsHit := hs.counter("modelcache_route.emb.requests.partial"), hs.counter("modelcache_route.emb.items.hit")
	f.set(func(c wasmhost.HostCall) (wasmhost.Status, bool) {
		return wasmhost.StatusInternalFailure, c.Name == "proxy_set_buffer_bytes" && len(c.Args) > 0 &&
			wasmhost.BufferType(uint32(c.Args[0])) == wasmhost.BufferHTTPResponseBody
	})
	res := hs.post(0, "/v1/embeddings", embReq(all, ""))
	f.set(nil)
	if res.Status != 502 {
		t.Skipf("not the broken-batch answer: %d %q", res.Status, hdr(res, "cache-status"))
	}
	cs := hdr(res, "cache-status")
	if p := hs.counter("modelcache_route.emb.requests.partial") - partial; p != 0 {
		t.Errorf("client got 502 with Cache-Status %q; requests.partial moved by %d", cs, p)
	}
	if n := hs.counter("modelcache_route.emb.items.hit") - itemsHit; n != 0 {
		t.Errorf("client got 502 with no vector; items.hit moved by %d", n)
	}
}

// Never a wrong answer (the promise review Z82 mended): when the merged
// body of a partly cached batch cannot be written and the broken-batch
// answer cannot be sent either (proxy_send_local_response refused), the
// error of SendHttpResponse is dropped in plugin.perform (ActReplaceBody)
// and the held response goes on as it came: the client gets 200, the
// upstream's vectors for the missing items alone, numbered from 0, as
// its whole batch, with Cache-Status fwd=partial; stored.
func TestPartialBatchWhoseMergeAndBrokenReplyFailIsNotServedShort(t *testing.T) {
	f := &faultPlan{}
	hs := newHarness(t, embConfig, withFaults(f), withHTTPCalls())
	odd, all := oddOf(8)
	if res := hs.post(0, "/v1/embeddings", embReq(odd, "")); res.Status != 200 {
		t.Fatalf("priming: %d", res.Status)
	}
	armed := false
	f.set(func(c wasmhost.HostCall) (wasmhost.Status, bool) {
		if c.Name == "proxy_set_buffer_bytes" && len(c.Args) > 0 &&
			wasmhost.BufferType(uint32(c.Args[0])) == wasmhost.BufferHTTPResponseBody {
			armed = true
			return wasmhost.StatusInternalFailure, true
		}
		return wasmhost.StatusBadArgument, armed && c.Name == "proxy_send_local_response"
	})
	res := hs.post(0, "/v1/embeddings", embReq(all, ""))
	f.set(nil)
	if f.failed() < 2 {
		t.Fatalf("faults hit %d times: want the body write and the local reply", f.failed())
	}
	if got := gjson.GetBytes(res.Body, "data.#").Int(); res.Status == 200 && got != int64(len(all)) {
		t.Errorf("client got 200 %q with %d vectors for its %d inputs", hdr(res, "cache-status"), got, len(all))
	}
}

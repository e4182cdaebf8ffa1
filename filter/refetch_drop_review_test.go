//go:build !wasip1

package main

import (
	"strconv"
	"testing"

	"github.com/modelcache/modelcache/wasmhost"
	"github.com/tidwall/gjson"
)

// Review Z102 (of 81b6c37, ef12527). A partly cached batch whose missing
// items' answer is refused at its headers (no-store) is dropped as it
// comes (ActDropResponseBody) and replaced at its end by the whole batch
// asked for again. Should the host refuse the replacement body
// (ReplaceHttpResponseBody in replaceResponse: ignored), the client gets
// the replacement's status and headers — 200, content-length of the
// whole batch — over an emptied body: an empty 200 for its batch, with
// no internal error counted. (A refused merge, replaceBody, answers the
// batch's 502 and counts internal: reviews Z82, Z83.)

func isReplacementBodyWrite(c wasmhost.HostCall) bool {
	return c.Name == "proxy_set_buffer_bytes" && len(c.Args) >= 5 &&
		wasmhost.BufferType(uint32(c.Args[0])) == wasmhost.BufferHTTPResponseBody && uint32(c.Args[4]) > 0
}

func refetchAfterNoStore(t *testing.T, config string, cached, items []string, fail func(c wasmhost.HostCall) (wasmhost.Status, bool)) (*harness, *wasmhost.ClientResponse, int) {
	f := &faultPlan{}
	hs := newHarness(t, config, withHTTPCalls(), withFaults(f))
	if r := hs.post(0, "/v1/embeddings", embReq(cached, "")); r.Status != 200 {
		t.Fatalf("setup: %d", r.Status)
	} else {
		t.Logf("first: %q %d bytes", hdr(r, "cache-status"), len(r.Body))
	}
	hs.fault = func(u *wasmhost.UpstreamRequest) bool { // the missing items' answer: no-store
		st, h, b := hs.simulate(u.Headers, u.Body)
		u.Respond(st, append(h, [2]string{"cache-control", "no-store"}), b)
		return true
	}
	f.set(fail)
	body := embReq(append(cached[:len(cached):len(cached)], items...), "")
	ex := hs.h.StartExchange(1, wasmhost.Request{Headers: [][2]string{{":method", "POST"}, {":path", "/v1/embeddings"},
		{":authority", "models"}, {":scheme", "http"}, {"content-type", "application/json"}, {"authorization", "Bearer tenant-a"},
		{"content-length", strconv.Itoa(len(body))}}, Body: []byte(body)})
	hs.h.Drain()
	f.set(nil)
	if !ex.Done() {
		t.Fatalf("setup: not done: %s", ex.State())
	}
	t.Logf("second: %d %q %q", ex.Response().Status, hdr(ex.Response(), "cache-status"), hdr(ex.Response(), "x-modelcache-cached-items"))
	return hs, ex.Response(), f.failed()
}

func checkNotEmpty200(t *testing.T, hs *harness, res *wasmhost.ClientResponse, want int64) {
	t.Helper()
	cl := hdr(res, "content-length")
	n := gjson.GetBytes(res.Body, "data.#").Int()
	if res.Status == 200 && n != want {
		t.Errorf("client got 200 with %d bytes of body (content-length %q, %d vectors), cache-status %q, internal_errors %d: want the whole batch, or an error status (the batch's 502)",
			len(res.Body), cl, n, hdr(res, "cache-status"), hs.counter("modelcache.internal_errors"))
	}
}

// In place (the whole batch within max_entry_bytes): one refused host call.
func TestReviewZ102RefetchReplacementRefusedLeavesEmpty200(t *testing.T) {
	hs, res, failed := refetchAfterNoStore(t, embConfig, []string{"cached"}, []string{"new 1", "new 2"}, nthCall(1, wasmhost.StatusBadArgument, isReplacementBodyWrite))
	if failed != 1 {
		t.Fatalf("setup: %d host calls failed (want the replacement body's write)", failed)
	}
	checkNotEmpty200(t, hs, res, 3)
}

// As a local reply (the whole batch over max_entry_bytes, ActSendReplacement):
// the local reply refused, then the in-place replacement's body too.
func TestReviewZ102SendReplacementAndReplaceRefusedLeavesEmpty200(t *testing.T) {
	cfg := `{
  "upstream_cluster": "model",
  "routes": [
    {"name": "emb", "kind": "embeddings", "path_prefix": "/v1/embeddings", "ttl": "1h", "max_entry_bytes": 1024,
     "model_version": {"header": "x-model-version"}}
  ]
}`
	sendFailed := 0
	fail := func(c wasmhost.HostCall) (wasmhost.Status, bool) {
		if c.Name == "proxy_send_local_response" {
			sendFailed++
			return wasmhost.StatusBadArgument, true
		}
		return wasmhost.StatusBadArgument, isReplacementBodyWrite(c)
	}
	hs, res, failed := refetchAfterNoStore(t, cfg, chunks(0, 3), []string{"new 1", "new 2"}, fail)
	if sendFailed < 1 || failed < 2 { // the batch's 502, sent as a local reply, is refused too
		t.Fatalf("setup: local replies refused %d, host calls failed %d (status %d, %d bytes: is the whole batch over max_entry_bytes?)", sendFailed, failed, res.Status, len(res.Body))
	}
	checkNotEmpty200(t, hs, res, 5)
}

// Controls: without a fault, and with only the local reply refused, the
// client gets the whole batch (so the tests above fail for the refused
// body write alone).
func TestReviewZ102RefetchControls(t *testing.T) {
	big := `{"upstream_cluster": "model", "routes": [{"name": "emb", "kind": "embeddings", "path_prefix": "/v1/embeddings", "ttl": "1h", "max_entry_bytes": 1024, "model_version": {"header": "x-model-version"}}]}`
	for _, tc := range []struct {
		name   string
		cfg    string
		cached []string
		want   int64
		fail   func(c wasmhost.HostCall) (wasmhost.Status, bool)
	}{
		{"in place, no fault", embConfig, []string{"cached"}, 3, nil},
		{"local reply, no fault", big, chunks(0, 3), 5, nil},
		{"local reply refused", big, chunks(0, 3), 5, failSendLocalResponse},
	} {
		t.Run(tc.name, func(t *testing.T) {
			hs, res, _ := refetchAfterNoStore(t, tc.cfg, tc.cached, []string{"new 1", "new 2"}, tc.fail)
			if res.Status != 200 || gjson.GetBytes(res.Body, "data.#").Int() != tc.want {
				t.Fatalf("status %d, %d bytes, refetch %d", res.Status, len(res.Body), hs.counter("modelcache_route.emb.items.refetch"))
			}
			t.Logf("local reply %v, headers %v, refetch %d", res.FromLocalReply, res.Headers, hs.counter("modelcache_route.emb.items.refetch"))
		})
	}
}

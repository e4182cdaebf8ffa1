//go:build !wasip1

package main

import (
	"fmt"
	"strconv"
	"strings"
	"testing"

	"github.com/modelcache/modelcache/wasmhost"
)

// Review Z270 (follow-up of 4e29559, which bounds at 24 MiB the cached
// vectors lookupItems copies for a batch before sending it upstream
// whole). The copied vectors are not let go once the batch is sent
// upstream whole: b.entries keeps its Body slices into every arena block
// (and b.hdrs the first) for the request's life, the whole upstream call
// (seconds for 2,048 wide vectors). So each such request in flight pins
// ~24 MiB of its worker VM's linear memory, which never shrinks. A RAG
// re-ingestion sending its corpus again in parallel batches of distinct
// cached chunks reaches, with a few dozen in flight on one worker, the
// 1 GiB the VM may grow to: the worker fails (503s for every request on
// it until it is replaced), the out-of-memory of review Z266 reached by
// concurrency instead of by one request. Expected: batches sent upstream
// whole hold no copied vectors while the model works; 24 of them in
// flight fit in the worker, and each gets the model's answer.
func TestZ270BatchesSentWholeInFlightPinTheirCopiedVectors(t *testing.T) {
	hs := newHarness(t, `{"upstream_cluster":"model","routes":[{"name":"emb","kind":"embeddings","path_prefix":"/v1/embeddings","ttl":"1h"}]}`, withWorkers(1))
	hs.fault = wideUpstream
	const n = 2048
	quoted := func(from, k int) string {
		items := make([]string, k)
		for i := range items {
			items[i] = fmt.Sprintf(`"chunk number %d"`, from+i)
		}
		return strings.Join(items, ",")
	}
	for from := 0; from < n; from += 2 {
		res := hs.post(0, "/v1/embeddings", `{"model":"text-embedding-3-large","input":[`+quoted(from, 2)+`]}`)
		if res.Status != 200 {
			t.Fatalf("setup request %d: %d", from/2, res.Status)
		}
	}
	// The model takes its time: the big batches' calls stay pending.
	var pending []*wasmhost.UpstreamRequest
	hs.fault = func(u *wasmhost.UpstreamRequest) bool {
		pending = append(pending, u)
		return true
	}
	const inFlight = 24
	before := hs.h.MemoryBytes(0)
	var xs []*wasmhost.Exchange
	for i := range inFlight {
		// Distinct batches (one new item each): no two coalesce.
		body := `{"model":"text-embedding-3-large","input":[` + quoted(0, n-1) + `,"new chunk ` + strconv.Itoa(i) + `"]}`
		xs = append(xs, hs.h.StartExchange(0, wasmhost.Request{
			Headers: [][2]string{{":method", "POST"}, {":path", "/v1/embeddings"}, {":authority", "models"}, {":scheme", "http"},
				{"content-type", "application/json"}, {"authorization", "Bearer tenant-a"}, {"content-length", strconv.Itoa(len(body))}},
			Body: []byte(body),
		}))
		hs.h.Drain()
		if failed := hs.h.FailedVMs(); len(failed) > 0 {
			t.Fatalf("with %d batches sent upstream whole in flight (worker memory %d MiB -> %d MiB), the worker VM failed: %v",
				i+1, before>>20, hs.h.MemoryBytes(0)>>20, failed)
		}
	}
	grown := hs.h.MemoryBytes(0) - before
	t.Logf("%d batches in flight, %d upstream calls pending: worker memory %d MiB -> %d MiB", inFlight, len(pending), before>>20, (before+grown)>>20)
	// Each is answered, by a short failure: 24 whole answers of 2,048 wide
	// vectors (3 GB) took the race detector's test binary past 24 GB.
	hs.fault = nil
	for _, u := range pending {
		u.Respond(503, [][2]string{{"content-type", "application/json"}}, []byte(`{"error":{"message":"busy"}}`))
	}
	hs.h.Drain()
	for i, x := range xs {
		if !x.Done() {
			t.Fatalf("batch %d: not answered (%s)", i, x.State())
		}
	}
	if grown > 256<<20 {
		t.Errorf("%d batches sent upstream whole, in flight at once, grew the worker VM by %d MiB: each holds the vectors copied before it was found too large", inFlight, grown>>20)
	}
}

package main

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/modelcache/modelcache/wasmhost"
)

// The served hit floor claims the work of a hit under modelcache's
// guarantees: it answers a request from its entry only when tenant,
// authority, route and canonical body are the stored request's, the entry
// is fresh and the client allows a cached answer; anything else goes
// upstream. A floor that skipped one of these would be measured as
// cheaper than the work it stands for.
func TestServedHitFloorAnswersOnlyTheRequestItStored(t *testing.T) {
	upstream := 0
	h, clock := floorHost(t, "hit-served", func(u *wasmhost.UpstreamRequest) {
		upstream++
		u.Respond(200, [][2]string{{"content-type", "application/json"}}, []byte(`{"from":"upstream"}`))
	})

	const path = "/hit/1k/v1/chat/completions"
	send := func(what string, req wasmhost.Request) (hit bool) {
		t.Helper()
		before := upstream
		resp, err := h.Exchange(0, req)
		if err != nil {
			t.Fatalf("%s: %v", what, err)
		}
		cs := cacheStatusOf(resp)
		hit = strings.HasPrefix(cs, "floor; hit; ttl=")
		if hit == (upstream > before) {
			t.Fatalf("%s: Cache-Status %q, yet %d upstream calls", what, cs, upstream-before)
		}
		return hit
	}
	stored := withHeader(hcRequest(path, "floor-served"), ":authority", "Models.Local")
	if send("first request", stored) {
		t.Fatal("the first request of a body was answered before anything was stored")
	}
	if !send("the stored request again", stored) {
		t.Fatal("the stored request was not answered from its entry")
	}
	if !send("the stored request, its authority's case changed", withHeader(stored, ":authority", "models.local")) {
		t.Fatal("an authority differing in case only missed")
	}
	for _, c := range []struct {
		what string
		req  wasmhost.Request
	}{
		{"another tenant", withHeader(stored, "authorization", "Bearer other-tenant")},
		{"no credential", withHeader(stored, "authorization", " ")},
		{"another authority", withHeader(stored, ":authority", "other.local")},
		{"another route", withHeader(stored, ":path", "/pass/v1/chat/completions")},
		{"no route", withHeader(stored, ":path", "/other/v1/chat/completions")},
		{"no-cache", withHeader(stored, "cache-control", "no-cache")},
		{"another body", hcRequest(path, "floor-served-other")},
	} {
		if send(c.what, c.req) {
			t.Errorf("%s: answered from the stored request's entry", c.what)
		}
	}
	clock.Advance(25 * time.Hour)
	if send("the stored request, its entry stale", stored) {
		t.Error("a stale entry was served")
	}
}

// floorHost builds bench/floorfilter in mode and runs it in one worker of
// wasmhost on a fake clock, its upstream answering with respond.
func floorHost(t *testing.T, mode string, respond func(*wasmhost.UpstreamRequest)) (*wasmhost.Host, *wasmhost.FakeClock) {
	t.Helper()
	if testing.Short() {
		t.Skip("builds a wasm module")
	}
	wasm := filepath.Join(t.TempDir(), "floor-"+mode+".wasm")
	if err := buildFloor(repoRoot(), mode, wasm, 0); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(wasm)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	mod, err := wasmhost.Compile(ctx, b)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { mod.Close(ctx) })
	clock := wasmhost.NewFakeClock(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
	h, err := wasmhost.New(ctx, mod, wasmhost.Config{
		Workers: 1, Clusters: []string{"origin"}, AllowOnHeadersStopIteration: true, Clock: clock, Upstream: respond,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(h.Close)
	return h, clock
}

// withHeader is req with header name set to value.
func withHeader(req wasmhost.Request, name, value string) wasmhost.Request {
	hs := append([][2]string(nil), req.Headers...)
	for i := range hs {
		if hs[i][0] == name {
			hs[i][1] = value
			return wasmhost.Request{Headers: hs, Body: req.Body}
		}
	}
	return wasmhost.Request{Headers: append(hs, [2]string{name, value}), Body: req.Body}
}

// The served miss floor claims the work of an uncacheable miss under
// modelcache's guarantees: single flight in slots of 4 ways shared by
// keys, a tenant held to its share of a slot, a live lease never
// displaced, and a hit-for-miss mark left for the key's next requests.
// A floor that skipped one would be measured as cheaper than the work it
// stands for.
func TestServedMissFloorLeadsInSharedSlotsAndLeavesMarks(t *testing.T) {
	upstream := 0
	h, clock := floorHost(t, "miss-served", func(u *wasmhost.UpstreamRequest) {
		upstream++
		u.Respond(200, [][2]string{{"content-type", "application/json"}, {"cache-control", "no-store"}}, []byte(`{"from":"upstream"}`))
	})
	const path = "/pass/nostore/v1/chat/completions"
	send := func(what string, req wasmhost.Request) string {
		t.Helper()
		before := upstream
		resp, err := h.Exchange(0, req)
		if err != nil {
			t.Fatalf("%s: %v", what, err)
		}
		if upstream != before+1 {
			t.Fatalf("%s: %d upstream calls, want 1", what, upstream-before)
		}
		return cacheStatusOf(resp)
	}
	const led, marked = "modelcache; fwd=uri-miss; fwd-status=200; detail=no-store", "floor; fwd=uri-miss; detail=hit-for-miss"
	first := hcRequest(path, "floor-miss-0")
	if cs := send("first request", first); cs != led {
		t.Fatalf("first request: Cache-Status %q, want it led (%q)", cs, led)
	}
	if cs := send("the same request again", first); cs != marked {
		t.Fatalf("the same request again: Cache-Status %q, want the key's hit-for-miss mark seen (%q)", cs, marked)
	}
	if cs := send("the same body, another tenant", withHeader(first, "authorization", "Bearer other-tenant")); cs != led {
		t.Fatalf("another tenant's request was not led on its own key: %q", cs)
	}
	if cs := send("no-cache", withHeader(hcRequest(path, "floor-miss-nc"), "cache-control", "no-cache")); cs != "floor; fwd=bypass; detail=unkeyed" {
		t.Fatalf("a request that forbids a cached answer was keyed: %q", cs)
	}
	clock.Advance(31 * time.Second)
	if cs := send("the first request, its mark expired", first); cs != led {
		t.Fatalf("the first request after its mark expired: %q, want it led", cs)
	}

	// One tenant fills every slot with marks: it keeps to its share, and
	// another tenant still leads anywhere.
	for i := 0; i < 4000; i++ {
		if cs := send("tenant A fills", hcRequest(path, fmt.Sprintf("fill-a-%d", i))); cs != led && !strings.Contains(cs, "collision") {
			t.Fatalf("tenant A's request %d: %q", i, cs)
		}
	}
	for i := 0; i < 1000; i++ {
		if cs := send("tenant B", withHeader(hcRequest(path, fmt.Sprintf("fill-b-%d", i)), "authorization", "Bearer tenant-b")); cs != led {
			t.Fatalf("tenant B's request %d in slots tenant A filled: %q, want it led", i, cs)
		}
	}
	slots := 0
	for _, k := range h.SharedDataKeys() {
		if !strings.HasPrefix(k, "fl:l:") {
			continue
		}
		v, _, _ := h.SharedData(k)
		leases, ok := floorSlot(v)
		if !ok {
			t.Fatalf("slot %s: not a slot: %x", k, v)
		}
		if len(leases) > 4 {
			t.Fatalf("slot %s holds %d leases", k, len(leases))
		}
		per := map[uint64]int{}
		for _, l := range leases {
			if l.state != 2 {
				t.Fatalf("slot %s: a lease in state %d after every response", k, l.state)
			}
			if per[l.tenant]++; per[l.tenant] > 2 {
				t.Fatalf("slot %s: one tenant holds %d ways", k, per[l.tenant])
			}
		}
		slots++
	}
	if slots < 1000 {
		t.Fatalf("%d lease slots used, want about 1024", slots)
	}
}

type floorLease struct {
	state  byte
	tenant uint64
}

// floorSlot decodes a slot as modelcache lays it out ("ML" 2 n, per lease
// fp state owner stream deadline tenant nwaiters waiters…).
func floorSlot(v []byte) ([]floorLease, bool) {
	if len(v) < 4 || string(v[:3]) != "ML\x02" {
		return nil, false
	}
	var out []floorLease
	p := v[4:]
	for i := 0; i < int(v[3]); i++ {
		if len(p) < 38 || len(p) < 38+8*int(p[37]) {
			return nil, false
		}
		out = append(out, floorLease{state: p[8], tenant: binary.LittleEndian.Uint64(p[29:])})
		p = p[38+8*int(p[37]):]
	}
	return out, len(p) == 0
}

// The cached-batch embeddings floor claims the work of answering a batch
// whose every item is cached: each item's own vector, in the request's
// order, read with modelcache's calls for it (the model record and one
// read per item, one local answer), and never another input's vector
// under the same hash. A batch with an item not stored goes upstream.
func TestCachedEmbeddingsFloorAnswersEachItemWithItsOwnVector(t *testing.T) {
	upstream := 0
	h, _ := floorHost(t, "embed-cached", func(u *wasmhost.UpstreamRequest) {
		upstream++
		answer, _, err := embeddingAnswer(u.Body)
		if err != nil {
			t.Errorf("upstream: %v", err)
		}
		// In chunks, as Envoy passes an answer of this size on.
		third := len(answer) / 3
		u.RespondChunks(200, [][2]string{{"content-type", "application/json"}}, [][]byte{answer[:third], answer[third : 2*third], answer[2*third:]})
	})
	const path = "/embed/v1/embeddings"
	stored := embeddingRequest(embBatch, embBatch)
	send := func(what string, body []byte) (hit bool) {
		t.Helper()
		before := upstream
		req := hcRequest(path, "")
		req = withHeader(wasmhost.Request{Headers: req.Headers, Body: body}, "content-length", fmt.Sprint(len(body)))
		resp, err := h.Exchange(0, req)
		if err != nil {
			t.Fatalf("%s: %v", what, err)
		}
		hit = cacheStatusOf(resp) == "floor; hit"
		if hit == (upstream > before) {
			t.Fatalf("%s: Cache-Status %q, yet %d upstream calls", what, cacheStatusOf(resp), upstream-before)
		}
		want, _, _ := embeddingAnswer(body)
		if got, exp := embeddingVectors(t, resp.Body), embeddingVectors(t, want); got != exp {
			t.Fatalf("%s: the answer's vectors are not the items' own:\n got %.200s\nwant %.200s", what, got, exp)
		}
		return hit
	}
	if send("first batch", stored) {
		t.Fatal("a batch was answered before its items were stored")
	}
	gets, locals := h.HostCallCount("env.proxy_get_shared_data"), h.HostCallCount("env.proxy_send_local_response")
	if !send("the batch again", stored) {
		t.Fatal("a batch of stored items was not answered from them")
	}
	if g, l := h.HostCallCount("env.proxy_get_shared_data")-gets, h.HostCallCount("env.proxy_send_local_response")-locals; g != embBatch+1 || l != 1 {
		t.Errorf("a cached batch of %d made %d shared-data reads and %d local answers, want %d and 1", embBatch, g, l, embBatch+1)
	}
	var req struct {
		Model string   `json:"model"`
		Input []string `json:"input"`
	}
	if err := json.Unmarshal(stored, &req); err != nil {
		t.Fatal(err)
	}
	items := req.Input
	slices.Reverse(items)
	reversed, _ := json.Marshal(req)
	if !send("the stored items in reverse order", reversed) {
		t.Error("the stored items in another order went upstream")
	}
	if send("a batch with one new item", []byte(strings.Replace(string(stored), "chunk 07", "chunk 07b", 1))) {
		t.Error("a batch with an item not stored was answered locally")
	}
	// Another input's value under the first item's hash: the floor must
	// see that the stored input is not the request's.
	first := []byte(`"` + items[len(items)-1] + `"`)
	k := fmt.Sprintf("fl:c:%x", fnv64Test(first))
	v, cas, ok := h.SharedData(k)
	if !ok || len(v) < 4 {
		t.Fatalf("no value stored under %s", k)
	}
	other := []byte(`"another input"`)
	forged := binary.LittleEndian.AppendUint32(nil, uint32(len(other)))
	forged = append(append(forged, other...), v[4+binary.LittleEndian.Uint32(v):]...)
	if st := h.SetSharedData(k, forged, cas); st != wasmhost.StatusOK {
		t.Fatalf("forging %s: %v", k, st)
	}
	if send("the stored batch, its first item's value another input's", stored) {
		t.Error("an item was answered with the vector stored for another input")
	}
}

// embeddingVectors is an embeddings answer's vectors by index, as text.
func embeddingVectors(t *testing.T, body []byte) string {
	t.Helper()
	var a struct {
		Data []struct {
			Index     int             `json:"index"`
			Embedding json.RawMessage `json:"embedding"`
		} `json:"data"`
	}
	if err := json.Unmarshal(body, &a); err != nil {
		t.Fatalf("answer %.100q: %v", body, err)
	}
	var b strings.Builder
	for i, d := range a.Data {
		if d.Index != i {
			t.Fatalf("answer item %d has index %d", i, d.Index)
		}
		fmt.Fprintf(&b, "%d:%s;", i, d.Embedding)
	}
	return b.String()
}

// fnv64Test is the floor's FNV-1a 64 of an item's JSON text.
func fnv64Test(b []byte) uint64 {
	h := uint64(14695981039346656037)
	for _, c := range b {
		h ^= uint64(c)
		h *= 1099511628211
	}
	return h
}

// Every keyed request of modelcache reads its model's record and finds it
// (the model's first miss writes it), so Envoy copies the record out and
// calls into the module to allocate room for it. A floor whose model read
// found nothing would be spared both on every request, and be measured as
// cheaper than the work it stands for: each floor that reads a model
// record finds one of the size modelcache's is, from its second request.
func TestFloorsFindTheirModelRecord(t *testing.T) {
	r, wasm := hcTestRun(t)
	hc := hcTestHost(t, r, wasm)
	if _, err := hc.h.Exchange(0, hcRequest("/pass/nostore/v1/chat/completions", "model-record")); err != nil {
		t.Fatal(err)
	}
	want := recordSizes(hc.h, "mc:m:")
	hc.Close()
	if len(want) != 1 {
		t.Fatalf("modelcache left model records of sizes %v after one request, want one record", want)
	}

	for _, c := range []struct{ mode, path string }{
		{"miss-keyed", "/pass/nostore/v1/chat/completions"},
		{"miss-served", "/pass/nostore/v1/chat/completions"},
		{"hit-keyed", "/hit/1k/v1/chat/completions"},
		{"hit-served", "/hit/1k/v1/chat/completions"},
		{"embed-calls", "/embed/v1/embeddings"},
		{"embed-cached", "/embed/v1/embeddings"},
	} {
		t.Run(c.mode, func(t *testing.T) {
			h, _ := floorHost(t, c.mode, func(u *wasmhost.UpstreamRequest) {
				answer := []byte(`{"from":"upstream"}`)
				if strings.HasPrefix(c.path, "/embed") {
					answer, _, _ = embeddingAnswer(u.Body)
				}
				u.Respond(200, [][2]string{{"content-type", "application/json"}}, answer)
			})
			for i := 0; i < 2; i++ {
				if _, err := h.Exchange(0, hcRequest(c.path, fmt.Sprint("model-record-", i))); err != nil {
					t.Fatal(err)
				}
			}
			if got := recordSizes(h, "fl:m:"); !slices.Equal(got, want) {
				t.Errorf("model records of sizes %v after two requests, want modelcache's %v", got, want)
			}
		})
	}
}

// recordSizes lists the sizes of the shared-data values under prefix.
func recordSizes(h *wasmhost.Host, prefix string) []int {
	var sizes []int
	for _, k := range h.SharedDataKeys() {
		if strings.HasPrefix(k, prefix) {
			v, _, _ := h.SharedData(k)
			sizes = append(sizes, len(v))
		}
	}
	return sizes
}

// The padded served floor is S4's control for what the miss's volume of
// code costs: it must do the served floor's work with its host calls, no
// fewer and no more, and run its padding besides (36 functions of its own,
// entered per request). A padding that did not run, or a floor that
// skipped some of the served floor's work, would make the control cheaper
// than what it stands for.
func TestPaddedMissFloorDoesTheServedFloorsWorkAndRunsItsPadding(t *testing.T) {
	if testing.Short() {
		t.Skip("builds wasm modules")
	}
	r, _ := hcTestRun(t)
	r.s.WorkDir = t.TempDir()
	req := s4HostCallRequests["pass uncacheable"]
	counts := map[string]*hostCallResult{}
	for _, mode := range []string{"miss-served", "miss-served-padded"} {
		wasm := filepath.Join(r.s.WorkDir, "floor-"+mode+".wasm")
		if err := buildFloor(repoRoot(), mode, wasm, 0); err != nil {
			t.Fatal(err)
		}
		res, err := r.countHostCalls(wasm, "pass uncacheable", req)
		if err != nil {
			t.Fatalf("%s: %v", mode, err)
		}
		counts[mode] = res
	}
	served, padded := counts["miss-served"], counts["miss-served-padded"]
	if got, want := breakdown(padded.ByName), breakdown(served.ByName); got != want || padded.Total != served.Total {
		t.Errorf("the padded floor makes %d host calls (%s), the served floor %d (%s): want the same", padded.Total, got, served.Total, want)
	}
	if extra := padded.Code.Functions - served.Code.Functions; extra < 36 {
		t.Errorf("the padded floor enters %d functions, the served floor %d: want its 36 padding functions entered too", padded.Code.Functions, served.Code.Functions)
	}
	if extra := padded.Code.Bytes - served.Code.Bytes; extra < 36*800 {
		t.Errorf("the padded floor enters %d bytes of wasm more than the served floor: want at least 800 bytes for each padding function", extra)
	}
}

// In S4's state, answers stored on the route and the table full,
// modelcache's uncacheable miss reads its bucket's index and finds it
// listing other keys, so Envoy copies the index out and calls into the
// module to allocate room for it. The served floor's lookup must do the
// same, or it would be measured as cheaper than the work it stands for
// (as TestFloorsFindTheirModelRecord holds for the model's record); the
// unbounded one, which reads a key of its own, finds nothing, and is
// spared exactly that call (bench/floorfilter/lookup_*.go).
func TestServedMissFloorAllocatesAsModelcachesMissInAFullTable(t *testing.T) {
	if testing.Short() {
		t.Skip("builds wasm modules and fills a table")
	}
	r, wasm := hcTestRun(t)
	dir := t.TempDir()
	per := map[string]float64{}
	for _, sys := range []string{"modelcache", "miss-served", "miss-served-unbounded"} {
		path := wasm
		if sys != "modelcache" {
			path = filepath.Join(dir, "floor-"+sys+".wasm")
			if err := buildFloor(repoRoot(), sys, path, 0); err != nil {
				t.Fatal(err)
			}
		}
		hc := hcTestHost(t, r, path)
		// New keys' answers stored on the miss's route: 7 for each of the
		// 4,096 buckets, so that about 1 in 1,000 is left without an index.
		for i := 0; i < 7*4096; i++ {
			if _, err := hc.h.Exchange(0, hcRequest("/pass/v1/chat/completions", fmt.Sprint("fill-", i))); err != nil {
				t.Fatal(err)
			}
		}
		const misses = 200
		before := hc.h.AllocateCalls()
		for i := 0; i < misses; i++ {
			if _, err := hc.h.Exchange(0, s4HostCallRequests["pass uncacheable"](i)); err != nil {
				t.Fatal(err)
			}
		}
		per[sys] = float64(hc.h.AllocateCalls()-before) / misses
		hc.Close()
	}
	t.Logf("calls into the module to allocate, per uncacheable miss in a full table: %v", per)
	if d := per["miss-served"] - per["modelcache"]; math.Abs(d) > 0.05 {
		t.Errorf("the served floor allocates %.2f times a miss, modelcache %.2f: want the same", per["miss-served"], per["modelcache"])
	}
	if d := per["modelcache"] - per["miss-served-unbounded"]; math.Abs(d-1) > 0.05 {
		t.Errorf("modelcache allocates %.2f times a miss, the unbounded floor %.2f: want one more, the index its lookup finds", per["modelcache"], per["miss-served-unbounded"])
	}
}

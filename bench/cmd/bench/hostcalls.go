package main

import (
	"bufio"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"

	"github.com/tetratelabs/wazero"

	"github.com/modelcache/modelcache/wasmhost"
)

// HC: host calls per request. The real build/modelcache.wasm runs in the
// project's in-process proxy-wasm host (wasmhost) with the benchmark's
// filter configuration (envoy/bench/cache.yaml), and every import the
// module calls is counted around one request of each kind. This is the
// number the hit-path targets ask to reduce: each host call crosses the
// V8 boundary and most copy bytes.

type hostCallResult struct {
	Kind    string            `json:"kind"`
	Total   uint64            `json:"total"`
	ByName  map[string]uint64 `json:"by_name"`
	Outcome string            `json:"cache_status"`
	Code    *codeEntered      `json:"code_entered,omitempty"`
}

// filterJSON extracts the filter configuration from an Envoy config (the
// `value: |` block), so the count uses exactly what Envoy runs.
func filterJSON(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var b strings.Builder
	indent := -1
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := sc.Text()
		trimmed := strings.TrimLeft(line, " ")
		if indent < 0 {
			if trimmed == "value: |" {
				indent = len(line) - len(trimmed)
			}
			continue
		}
		if strings.TrimSpace(line) != "" && len(line)-len(trimmed) <= indent {
			break
		}
		b.WriteString(line + "\n")
	}
	if indent < 0 {
		return nil, fmt.Errorf("%s: no `value: |` block", path)
	}
	return []byte(b.String()), nil
}

// hcHost runs one module in wasmhost and counts its host calls, and the
// code it enters (footprint.go), per request.
type hcHost struct {
	r       *run
	h       *wasmhost.Host
	mod     *wasmhost.Module
	imports []string
	code    *codeRecorder
}

// newHCHost loads wasm with the benchmark's filter configuration; its
// upstream answers as the benchmark origin does (1 KiB, embeddings, and
// cache-control: no-store under /nostore/).
func newHCHost(r *run, wasm []byte) (*hcHost, error) {
	imports, err := importNames(r, wasm)
	if err != nil {
		return nil, err
	}
	cfg, err := filterJSON(filepath.Join(r.s.Root, "envoy", "bench", "cache.yaml"))
	if err != nil {
		return nil, err
	}
	code, err := newCodeRecorder(wasm)
	if err != nil {
		return nil, err
	}
	mod, err := wasmhost.Compile(code.listen(r.ctx), wasm)
	if err != nil {
		return nil, err
	}
	payload := r.origin.payloads["1k"]
	h, err := wasmhost.New(r.ctx, mod, wasmhost.Config{
		Workers:                     1,
		PluginConfig:                cfg,
		Clusters:                    []string{"origin"},
		AllowOnHeadersStopIteration: true,
		FailOpen:                    true,
		LogLevel:                    wasmhost.LogWarn,
		Upstream: func(u *wasmhost.UpstreamRequest) {
			answer := payload
			for _, kv := range u.Headers {
				if kv[0] == ":path" && strings.HasPrefix(kv[1], "/embed") {
					answer, _, _ = embeddingAnswer(u.Body)
				}
			}
			hs := [][2]string{{"content-type", "application/json"}, {"content-length", strconv.Itoa(len(answer))},
				{"date", "Thu, 01 Jan 2026 00:00:00 GMT"}, {"x-envoy-upstream-service-time", "1"}}
			for _, kv := range u.Headers {
				if kv[0] == ":path" && strings.Contains(kv[1], "/nostore/") {
					hs = append(hs, [2]string{"cache-control", "no-store"})
				}
			}
			u.Respond(200, hs, answer)
		},
	})
	if err != nil {
		mod.Close(r.ctx)
		return nil, err
	}
	return &hcHost{r: r, h: h, mod: mod, imports: imports, code: code}, nil
}

func (c *hcHost) Close() {
	c.h.Close()
	c.mod.Close(c.r.ctx)
}

// hcRequest is the request as the filter sees it in Envoy: wrk's headers
// plus the ones Envoy's connection manager adds before the filters.
func hcRequest(path, nonce string, extra ...[2]string) wasmhost.Request {
	body := chatRequest(nonce)
	if strings.HasPrefix(path, "/embed") {
		body = []byte(strings.ReplaceAll(string(embeddingRequest(embBatch, embCached)), "N0NCE", nonce))
		if nonce == "" {
			body = embeddingRequest(embCached, embCached)
		}
	}
	hs := [][2]string{{":authority", "127.0.0.1:10100"}, {":path", path}, {":method", "POST"}, {":scheme", "http"},
		{"content-length", strconv.Itoa(len(body))}, {"content-type", "application/json"},
		{"authorization", "Bearer bench-tenant"}, {"x-forwarded-proto", "http"},
		{"x-request-id", "5f2b8e9c-2d7a-4c47-9a53-6f1d1c0e7b21"}}
	return wasmhost.Request{Headers: append(hs, extra...), Body: body}
}

// count sends req and counts the imports called, and the module's
// functions entered, meanwhile.
func (c *hcHost) count(kind string, req wasmhost.Request) (*hostCallResult, error) {
	before := map[string]uint64{}
	for _, n := range c.imports {
		before[n] = c.h.HostCallCount(n)
	}
	resp, err := c.h.Exchange(0, req)
	if err != nil {
		return nil, fmt.Errorf("%s: %v", kind, err)
	}
	res := &hostCallResult{Kind: kind, ByName: map[string]uint64{}}
	for _, n := range c.imports {
		if d := c.h.HostCallCount(n) - before[n]; d > 0 {
			res.ByName[strings.TrimPrefix(n, "env.")] = d
			res.Total += d
		}
	}
	res.Outcome = cacheStatusOf(resp)
	return res, nil
}

func cacheStatusOf(resp *wasmhost.ClientResponse) string {
	for _, kv := range resp.Headers {
		if kv[0] == "cache-status" {
			return kv[1]
		}
	}
	return ""
}

// codeOf reports the code a request of kind enters in steady state:
// again(1) runs first, not recorded — the first request of a kind in a
// VM's life also runs one-time code (buffers grown, tables made) — then
// again(2) is recorded. Both must take the same path (Cache-Status).
func (c *hcHost) codeOf(kind string, again func(round int) wasmhost.Request) (*codeEntered, error) {
	first, err := c.h.Exchange(0, again(1))
	if err != nil {
		return nil, fmt.Errorf("%s: %v", kind, err)
	}
	var second *wasmhost.ClientResponse
	code, err := c.code.record(func() (err error) {
		second, err = c.h.Exchange(0, again(2))
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("%s: %v", kind, err)
	}
	if a, b := cacheStatusOf(first), cacheStatusOf(second); a != b {
		return nil, fmt.Errorf("%s: the code is counted on a second request of the kind, which took another path (%q, then %q)", kind, a, b)
	}
	return code, code.dumpNames(kind)
}

// warm sends a few requests first, so that counts are of steady state
// (the VM started, the model record known), and one of each other chat
// row's kind on its route: a route's first request reads and writes what
// later ones find (the model's record under the route's namespace). The
// embeddings route is left cold: its "none cached" row is a model's first
// batch, "new items, model known" a later one.
func (c *hcHost) warm() error {
	for i := 0; i < 3; i++ {
		if _, err := c.count("warm", hcRequest("/hit/1k/v1/chat/completions", fmt.Sprintf("warm-%d", i))); err != nil {
			return err
		}
	}
	// Request -1 of each kind: the counts use requests 0 to 3.
	for _, label := range []string{"pass uncacheable", "pass bypass", "pass other-route"} {
		if _, err := c.count("warm", s4HostCallRequests[label](-1)); err != nil {
			return err
		}
	}
	return nil
}

func runHostCalls(r *run) error {
	wasm, err := os.ReadFile(r.s.Wasm)
	if err != nil {
		return err
	}
	hc, err := newHCHost(r, wasm)
	if err != nil {
		return err
	}
	defer hc.Close()
	h, request, count := hc.h, hcRequest, hc.count
	if err := hc.warm(); err != nil {
		return err
	}
	var list []*hostCallResult
	// again: another request of the kind, for the code it enters (codeOf);
	// nil where a second one would take another path.
	hit := "/hit/1k/v1/chat/completions"
	fresh := func(path, nonce string, extra ...[2]string) func(int) wasmhost.Request {
		return func(n int) wasmhost.Request { return request(path, fmt.Sprintf("%s-code-%d", nonce, n), extra...) }
	}
	same := func(req wasmhost.Request) func(int) wasmhost.Request {
		return func(int) wasmhost.Request { return req }
	}
	newItems := func(nonce string) wasmhost.Request {
		return embeddingsOnly(request("/embed/v1/embeddings", ""), []byte(strings.ReplaceAll(string(embeddingRequest(embCached, 0)), "N0NCE", nonce)))
	}
	noStore := [2]string{"cache-control", "no-store"}
	kinds := []struct {
		kind, title string
		req         wasmhost.Request
		again       func(int) wasmhost.Request
	}{
		{"miss", "miss, stored (new key)", request(hit, "hc-miss"), fresh(hit, "hc-miss")},
		{"hit", "hit (1 KiB)", request(hit, "hc-miss"), same(request(hit, "hc-miss"))},
		{"uncacheable", "miss, answer not storable", request("/pass/nostore/v1/chat/completions", "hc-nostore"), fresh("/pass/nostore/v1/chat/completions", "hc-nostore")},
		{"bypass", "bypass (request no-store)", request("/pass/v1/chat/completions", "hc-bypass", noStore), fresh("/pass/v1/chat/completions", "hc-bypass", noStore)},
		{"other", "route not cached", request("/other/v1/chat/completions", "hc-other"), fresh("/other/v1/chat/completions", "hc-other")},
		{"embed-fill", fmt.Sprintf("embeddings, %d items, none cached", embCached), request("/embed/v1/embeddings", ""), nil},
		{"embed-hit", fmt.Sprintf("embeddings, %d items, all cached", embCached), request("/embed/v1/embeddings", ""), same(request("/embed/v1/embeddings", ""))},
		{"embed-partial", fmt.Sprintf("embeddings, %d items, %d cached", embBatch, embCached), request("/embed/v1/embeddings", "hc-partial"), fresh("/embed/v1/embeddings", "hc-partial")},
		// A batch of new items for a model already known: looked up, led
		// (single flight re-checks every item) and stored.
		{"embed-new", fmt.Sprintf("embeddings, %d new items, model known", embCached), newItems("hc-new"),
			func(n int) wasmhost.Request { return newItems(fmt.Sprintf("hc-new-code-%d", n)) }},
	}
	for _, k := range kinds {
		res, err := count(k.kind, k.req)
		if err != nil {
			return err
		}
		list = append(list, res)
		r.logf("  %-13s %3d host calls  %s   [%s]", k.kind, res.Total, breakdown(res.ByName), res.Outcome)
		r.add(row{Scenario: "HC", Metric: "host calls per request: " + k.title, Value: strconv.FormatUint(res.Total, 10),
			Baselines: breakdown(res.ByName)})
	}
	// After the host calls (the rows read as two tables), on requests of
	// their own: the code each kind enters.
	for i, k := range kinds {
		if k.again == nil {
			continue
		}
		code, err := hc.codeOf(k.kind, k.again)
		if err != nil {
			return err
		}
		list[i].Code = code
		r.logf("  %-13s %s entered", k.kind, code)
		r.add(row{Scenario: "HC", Metric: "wasm code entered per request: " + k.title, Value: code.String()})
	}
	if failed := h.FailedVMs(); len(failed) > 0 {
		return fmt.Errorf("VM failed: %v", failed)
	}
	// What a hit copies out of shared data: the entry (stored request key,
	// headers, body), the bucket index and the model record.
	var entry, index, model int
	for _, k := range h.SharedDataKeys() {
		v, _, _ := h.SharedData(k)
		switch {
		case strings.HasPrefix(k, "mc:e:"):
			entry = max(entry, len(v))
		case strings.HasPrefix(k, "mc:i:"):
			index = max(index, len(v))
		case strings.HasPrefix(k, "mc:m:"):
			model = max(model, len(v))
		}
	}
	r.note("HC: a 1 KiB hit reads from shared data an entry of %d bytes (the stored canonical request is part of it), a bucket index of %d and a model record of %d bytes", entry, index, model)
	r.data["hostcalls"] = list
	r.data["hostcalls_shared_bytes"] = map[string]int{"entry": entry, "index": index, "model": model}
	return nil
}

// embeddingsOnly is req with body instead of its own.
func embeddingsOnly(req wasmhost.Request, body []byte) wasmhost.Request {
	hs := append([][2]string(nil), req.Headers...)
	for i, kv := range hs {
		if kv[0] == "content-length" {
			hs[i][1] = strconv.Itoa(len(body))
		}
	}
	return wasmhost.Request{Headers: hs, Body: body}
}

func breakdown(m map[string]uint64) string {
	names := make([]string, 0, len(m))
	for n := range m {
		names = append(names, n)
	}
	sort.Slice(names, func(i, j int) bool {
		if m[names[i]] != m[names[j]] {
			return m[names[i]] > m[names[j]]
		}
		return names[i] < names[j]
	})
	parts := make([]string, len(names))
	for i, n := range names {
		parts[i] = fmt.Sprintf("%s %d", n, m[n])
	}
	return strings.Join(parts, ", ")
}

// importNames lists the module's imports as "module.name", each once (a
// function may be imported twice, e.g. the WASI clock by the Go runtime
// and by the binding).
func importNames(r *run, wasm []byte) ([]string, error) {
	rt := wazero.NewRuntimeWithConfig(r.ctx, wazero.NewRuntimeConfigInterpreter())
	defer rt.Close(r.ctx)
	cm, err := rt.CompileModule(r.ctx, wasm)
	if err != nil {
		return nil, err
	}
	var out []string
	for _, f := range cm.ImportedFunctions() {
		mod, name, _ := f.Import()
		if n := mod + "." + name; !slices.Contains(out, n) {
			out = append(out, n)
		}
	}
	return out, nil
}

//go:build !wasip1

package main

import (
	"encoding/json"
	"math"
	"strconv"
	"strings"
	"testing"

	"github.com/modelcache/modelcache/wasmhost"
)

// Review Z31: model servers that are not OpenAI-shaped, on json and
// classify routes.

// sendRaw sends a POST with the given body and content type (and any
// extra headers, name/value pairs) through worker w, as tenant "a".
func sendRaw(hs *harness, w int, path, contentType string, body []byte, extra ...string) *wasmhost.ClientResponse {
	hs.t.Helper()
	req := wasmhost.Request{
		Headers: [][2]string{{":method", "POST"}, {":path", path}, {":authority", "models"}, {":scheme", "http"},
			{"content-type", contentType}, {"content-length", strconv.Itoa(len(body))}, {"authorization", "Bearer tenant-a"}},
		Body: body,
	}
	for i := 0; i+1 < len(extra); i += 2 {
		req.Headers = append(req.Headers, [2]string{extra[i], extra[i+1]})
	}
	res, err := hs.h.Exchange(w, req)
	if err != nil {
		hs.t.Fatalf("exchange: %v", err)
	}
	return res
}

// Triton's (KServe v2) binary tensor data extension: the body is the JSON
// inference header, Inference-Header-Content-Length bytes long, followed by
// the raw tensor bytes (Content-Type: application/octet-stream). A UINT8
// tensor whose bytes are all JSON white space (9, 10, 13, 32: a dark image,
// a mask, token bytes) is dropped by the canonicaliser as trailing white
// space, so two requests with different tensors share one key, and the
// second client is served the first one's outputs.
func TestTritonBinaryTensorIsNotKeyedAway(t *testing.T) {
	hs := newHarness(t, `{"routes":[{"name":"triton","kind":"json","path_prefix":"/v2/models/","ttl":"1h"}]}`)
	// An identity model: outputs the tensor it read from the binary part.
	hs.fault = func(u *wasmhost.UpstreamRequest) bool {
		n, err := strconv.Atoi(hdrOf(u.Headers, "inference-header-content-length"))
		if err != nil || n > len(u.Body) {
			u.Respond(400, [][2]string{{"content-type", "application/json"}}, []byte(`{"error":"bad header length"}`))
			return true
		}
		data := make([]int, 0, len(u.Body)-n)
		for _, b := range u.Body[n:] {
			data = append(data, int(b))
		}
		out, _ := json.Marshal(map[string]any{"model_name": "identity", "model_version": "1",
			"outputs": []any{map[string]any{"name": "OUT", "datatype": "UINT8", "shape": []int{len(data)}, "data": data}}})
		u.Respond(200, [][2]string{{"content-type", "application/json"}}, out)
		return true
	}
	header := []byte(`{"inputs":[{"name":"IN","shape":[4],"datatype":"UINT8","parameters":{"binary_data_size":4}}],` +
		`"outputs":[{"name":"OUT","parameters":{"binary_data":false}}]}`)
	send := func(tensor ...byte) *wasmhost.ClientResponse {
		body := append(append([]byte{}, header...), tensor...)
		return sendRaw(hs, 0, "/v2/models/identity/infer", "application/octet-stream", body,
			"inference-header-content-length", strconv.Itoa(len(header)))
	}
	first := send(32, 32, 32, 32)
	if first.Status != 200 || !strings.Contains(string(first.Body), `"data":[32,32,32,32]`) {
		t.Fatalf("setup: %d %s", first.Status, first.Body)
	}
	second := send(9, 10, 13, 32)
	if !strings.Contains(string(second.Body), `"data":[9,10,13,32]`) {
		t.Fatalf("the tensor [9,10,13,32] is answered with another tensor's outputs (Cache-Status %q): %s; upstream calls %d",
			hdr(second, "cache-status"), second.Body, hs.upstream.Load())
	}
}

// TorchServe's /predictions/<model> takes raw bytes (text/plain text for
// a text handler, which reads the bytes as they are). A body that happens
// to parse as JSON is keyed by its JSON meaning, so two different texts —
// "1e2" and "100.0", or "\u0041" and "A" — share one entry, and the second
// client gets the answer the model gave the first text. The request's
// Content-Type is never looked at.
func TestTextBodyIsNotKeyedAsJSON(t *testing.T) {
	hs := newHarness(t, `{"routes":[{"name":"ts","kind":"classify","path_prefix":"/predictions/","ttl":"1h",
	  "validate":[{"path":"label","type":"string","non_empty":true}]}]}`)
	// A text handler: its answer depends on the text it was sent.
	hs.fault = func(u *wasmhost.UpstreamRequest) bool {
		out, _ := json.Marshal(map[string]any{"label": "text:" + string(u.Body), "score": 0.99})
		u.Respond(200, [][2]string{{"content-type", "application/json"}}, out)
		return true
	}
	for i, pair := range [][2]string{{"1e2", "100.0"}, {`"\u0041"`, `"A"`}} {
		path := "/predictions/sentiment" + strconv.Itoa(i)
		a := sendRaw(hs, 0, path, "text/plain", []byte(pair[0]))
		if a.Status != 200 {
			t.Fatalf("setup: %d %s", a.Status, a.Body)
		}
		b := sendRaw(hs, 1, path, "text/plain", []byte(pair[1]))
		want, _ := json.Marshal("text:" + pair[1])
		if !strings.Contains(string(b.Body), string(want)) {
			t.Errorf("text/plain %q is answered with the answer to %q (Cache-Status %q): %s",
				pair[1], pair[0], hdr(b, "cache-status"), b.Body)
		}
	}
}

// A float tensor element -0.0 is not 0.0: IEEE 754 keeps the sign of zero
// and models see it (atan2, the phase of a complex value, copysign, 1/x).
// README: floats are "rewritten exactly within their type", yet the
// canonical form writes -0.0 as 0.0, so a KServe v2 request with x = -0.0
// is served the answer stored for x = 0.0: atan2(0, -0) is π, atan2(0, 0)
// is 0.
func TestNegativeZeroFloatIsNotZero(t *testing.T) {
	hs := newHarness(t, `{"routes":[{"name":"kserve","kind":"json","path_prefix":"/v2/models/","ttl":"1h"}]}`)
	// A phase model: outputs atan2(y, x) of its two FP32 inputs.
	hs.fault = func(u *wasmhost.UpstreamRequest) bool {
		var in struct {
			Inputs []struct {
				Data []float64 `json:"data"`
			} `json:"inputs"`
		}
		if err := json.Unmarshal(u.Body, &in); err != nil || len(in.Inputs) != 1 || len(in.Inputs[0].Data) != 2 {
			u.Respond(400, [][2]string{{"content-type", "application/json"}}, []byte(`{"error":"bad input"}`))
			return true
		}
		y, x := in.Inputs[0].Data[0], in.Inputs[0].Data[1]
		out, _ := json.Marshal(map[string]any{"model_name": "phase", "outputs": []any{
			map[string]any{"name": "PHASE", "datatype": "FP64", "shape": []int{1}, "data": []float64{math.Atan2(y, x)}}}})
		u.Respond(200, [][2]string{{"content-type", "application/json"}}, out)
		return true
	}
	req := func(x string) string {
		return `{"inputs":[{"name":"YX","shape":[2],"datatype":"FP64","data":[0.0,` + x + `]}]}`
	}
	first := hs.post(0, "/v2/models/phase/infer", req("0.0"))
	if first.Status != 200 || !strings.Contains(string(first.Body), `"data":[0]`) {
		t.Fatalf("setup: %d %s", first.Status, first.Body)
	}
	second := hs.post(1, "/v2/models/phase/infer", req("-0.0"))
	if !strings.Contains(string(second.Body), `"data":[3.14159`) {
		t.Fatalf("atan2(0, -0.0) is answered with atan2(0, 0.0)'s output (Cache-Status %q): %s",
			hdr(second, "cache-status"), second.Body)
	}
}

// A request whose Content-Type is not JSON bypasses the cache, counted and
// labelled as such; JSON types in any spelling, with parameters or a
// +json suffix, and no Content-Type at all are keyed as before.
func TestRequestContentTypeDecidesTheBypass(t *testing.T) {
	hs := newHarness(t, `{"routes":[{"name":"j","kind":"json","path_prefix":"/v2/models/","ttl":"1h"}]}`)
	hs.fault = func(u *wasmhost.UpstreamRequest) bool {
		u.Respond(200, [][2]string{{"content-type", "application/json"}}, []byte(`{"outputs":[6]}`))
		return true
	}
	body := []byte(`{"inputs":[1,2,3]}`)
	for i, tc := range []struct {
		ct     string
		bypass bool
	}{
		{"text/plain", true},
		{"application/octet-stream", true},
		{"application/x-www-form-urlencoded", true},
		{"application/json", false},
		{"Application/JSON; charset=utf-8", false},
		{"application/vnd.kserve+json", false},
	} {
		path := "/v2/models/m" + strconv.Itoa(i) + "/infer"
		res := sendRaw(hs, 0, path, tc.ct, body)
		cs := hdr(res, "cache-status")
		if got := strings.Contains(cs, "fwd=bypass; detail=not-json"); got != tc.bypass {
			t.Errorf("content-type %q: Cache-Status %q, bypass %v", tc.ct, cs, tc.bypass)
		}
	}
	if n := hs.counter("modelcache_route.j.bypass.not_json"); n != 3 {
		t.Errorf("bypass.not_json = %d, want 3", n)
	}
	// No Content-Type: keyed (a second request is a hit).
	noCT := func() *wasmhost.ClientResponse {
		res, err := hs.h.Exchange(0, wasmhost.Request{Headers: [][2]string{{":method", "POST"}, {":path", "/v2/models/none/infer"},
			{":authority", "models"}, {":scheme", "http"}, {"authorization", "Bearer tenant-a"}}, Body: body})
		if err != nil {
			t.Fatal(err)
		}
		return res
	}
	if cs := hdr(noCT(), "cache-status"); !strings.Contains(cs, "stored") {
		t.Fatalf("no content-type: %q", cs)
	}
	if res := noCT(); !strings.Contains(hdr(res, "cache-status"), "hit") {
		t.Errorf("no content-type: not a hit the second time: %q", hdr(res, "cache-status"))
	}
}

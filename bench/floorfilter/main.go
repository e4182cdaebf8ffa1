// Command floorfilter is the cheapest possible Go proxy-wasm HTTP filter,
// built with the same ABI binding as modelcache, for make bench's S4
// floor: with mode "empty" it creates a stream context and continues
// every callback; with mode "read" it also reads one request header (the
// least any filter that looks at a request must do: a host call that
// returns data). The difference between the two, and between "empty" and
// Envoy without a filter, is what modelcache cannot go below in Envoy.
// With mode "hit" it does what any Go filter answering from a cache must
// do, without the cache: hold the request, read its headers and its body,
// and answer locally with a 1 KiB JSON body — S2's floor for a hit. Mode
// "embed" is S9's floor per embedding item (embed.go).
//
//	GOOS=wasip1 GOARCH=wasm go build -buildmode=c-shared -ldflags "-X main.mode=read" ./bench/floorfilter
package main

import (
	"github.com/modelcache/modelcache/filter/proxywasm"
	"github.com/modelcache/modelcache/filter/proxywasm/types"
)

var mode = "empty" // set with -ldflags "-X main.mode=read"

func init() { proxywasm.SetVMContext(&vm{}) }

func main() {}

type vm struct{ types.DefaultVMContext }

func (*vm) NewPluginContext(uint32) types.PluginContext { return &plugin{} }

type plugin struct{ types.DefaultPluginContext }

func (*plugin) NewHttpContext(uint32) types.HttpContext { return &stream{} }

type stream struct {
	types.DefaultHttpContext
	embed embedState
}

func (*stream) OnHttpRequestHeaders(_ int, endOfStream bool) types.Action {
	switch mode {
	case "read":
		_, _ = proxywasm.GetHttpRequestHeader(":path")
	case "hit", "embed":
		_, _ = proxywasm.GetHttpRequestHeaders()
		if !endOfStream {
			return types.ActionPause // until the body is complete
		}
	}
	return types.ActionContinue
}

// answer is the hit's body: 1 KiB of chat completion.
var answer = func() []byte {
	b := []byte(`{"id":"floor","object":"chat.completion","choices":[{"index":0,"message":{"role":"assistant","content":"`)
	for len(b) < 1024-len(`"},"finish_reason":"stop"}]}`) {
		b = append(b, 'x')
	}
	return append(b, `"},"finish_reason":"stop"}]}`...)
}()

func (s *stream) OnHttpRequestBody(bodySize int, endOfStream bool) types.Action {
	if mode == "embed" {
		return embedRequestBody(s, bodySize, endOfStream)
	}
	if mode != "hit" {
		return types.ActionContinue
	}
	if !endOfStream {
		return types.ActionPause
	}
	_, _ = proxywasm.GetHttpRequestBody(0, bodySize)
	_ = proxywasm.SendHttpResponse(200, [][2]string{{"content-type", "application/json"}, {"age", "0"},
		{"cache-status", "floor; hit; ttl=86400"}}, answer, -1)
	return types.ActionPause
}

func (s *stream) OnHttpResponseHeaders(_ int, _ bool) types.Action {
	if mode == "embed" {
		_, _ = proxywasm.GetHttpResponseHeaders()
	}
	return types.ActionContinue
}

func (s *stream) OnHttpResponseBody(bodySize int, endOfStream bool) types.Action {
	if mode == "embed" {
		return embedResponseBody(s, bodySize, endOfStream)
	}
	return types.ActionContinue
}

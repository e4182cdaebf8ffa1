// Command floorfilter is the cheapest possible Go proxy-wasm HTTP filter,
// built with the same ABI binding as modelcache, for make bench's S4
// floor: with mode "empty" it creates a stream context and continues
// every callback; with mode "read" it also reads one request header (the
// least any filter that looks at a request must do: a host call that
// returns data). The difference between the two, and between "empty" and
// Envoy without a filter, is what modelcache cannot go below in Envoy.
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

type stream struct{ types.DefaultHttpContext }

func (*stream) OnHttpRequestHeaders(int, bool) types.Action {
	if mode == "read" {
		_, _ = proxywasm.GetHttpRequestHeader(":path")
	}
	return types.ActionContinue
}

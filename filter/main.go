// Command filter is modelcache's proxy-wasm plugin. Build it with
//
//	GOOS=wasip1 GOARCH=wasm go build -buildmode=c-shared -o build/modelcache.wasm ./filter
//
// and load it into Envoy (≥ 1.39) with envoy.filters.http.wasm. This package
// only adapts proxy-wasm callbacks to cachecore and back; all policy lives
// in cachecore. main is never called in a wasip1 reactor: init wires the
// plugin into the ABI binding.
package main

import (
	"github.com/modelcache/modelcache/filter/proxywasm"
	"github.com/modelcache/modelcache/filter/proxywasm/types"
)

func init() {
	proxywasm.SetVMContext(newVMContext())
}

func main() {}

type vmContext struct {
	types.DefaultVMContext
}

func (*vmContext) NewPluginContext(contextID uint32) types.PluginContext {
	return newPlugin(contextID)
}

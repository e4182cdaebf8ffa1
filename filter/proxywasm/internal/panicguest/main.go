//go:build wasip1

// Command panicguest is a test plugin for the binding's panic recovery: it
// panics in whichever callback a request header names, so the test can check
// that the VM survives, the stream fails open and the panic hook runs.
package main

import (
	"github.com/modelcache/modelcache/filter/proxywasm"
	"github.com/modelcache/modelcache/filter/proxywasm/types"
)

func init() { proxywasm.SetVMContext(&vm{}) }
func main() {}

type vm struct{ types.DefaultVMContext }

func (*vm) NewPluginContext(uint32) types.PluginContext { return &plugin{} }

type plugin struct{ types.DefaultPluginContext }

var panics, broken proxywasm.MetricCounter

func (*plugin) OnPluginStart(int) types.OnPluginStartStatus {
	panics, _ = proxywasm.DefineCounterMetric("panicguest.panics")
	broken, _ = proxywasm.DefineCounterMetric("panicguest.broken")
	proxywasm.SetPanicHook(func(string, any) { panics.Increment(1) })
	return types.OnPluginStartStatusOK
}

func (*plugin) NewHttpContext(uint32) types.HttpContext { return &stream{} }

// OnHttpStreamBroken counts what the binding tells the plugin of its
// streams a panic left broken (proxywasm.StreamBrokenNotifier).
func (*plugin) OnHttpStreamBroken(uint32) { broken.Increment(1) }

type stream struct {
	types.DefaultHttpContext
	where string
}

func (s *stream) OnHttpRequestHeaders(int, bool) types.Action {
	s.where, _ = proxywasm.GetHttpRequestHeader("x-panic-in")
	if s.where == "request-headers" {
		var m map[string]int
		m["boom"]++ // nil map write: a runtime panic, not a call to panic()
	}
	return types.ActionPause // held: only a panic's fail-open lets it through
}

func (s *stream) OnHttpRequestBody(_ int, eos bool) types.Action {
	if s.where == "request-body" {
		panic("boom in request body")
	}
	if !eos {
		return types.ActionPause
	}
	return types.ActionContinue
}

func (s *stream) OnHttpResponseHeaders(int, bool) types.Action {
	if s.where == "response-headers" {
		panic("boom in response headers")
	}
	return types.ActionContinue
}

var deletedAfterPanic proxywasm.MetricCounter

func (s *stream) OnHttpStreamDone() {
	if s.where == "done" {
		s.where = "panicked-in-done"
		panic("boom in stream done")
	}
}

// OnHttpStreamDeleted: the binding offers the stream for reuse.
func (s *stream) OnHttpStreamDeleted() {
	if s.where == "panicked-in-done" {
		if deletedAfterPanic == 0 {
			deletedAfterPanic, _ = proxywasm.DefineCounterMetric("panicguest.deleted_after_panic")
		}
		deletedAfterPanic.Increment(1)
	}
}

//go:build modelcache_crashtest

package main

import (
	"github.com/modelcache/modelcache/filter/proxywasm"
	"github.com/modelcache/modelcache/filter/proxywasm/types"
)

// This file exists only in the crash-test module, built with
//
//	GOOS=wasip1 GOARCH=wasm go build -tags modelcache_crashtest -buildmode=c-shared ./filter
//
// (internal/wasmbuild.FilterWithTags). It wraps the real plugin so that a
// request carrying crashHeader: crashValue makes the VM really trap, the way
// a runaway recursion in a parser once did: the Go code recurses until V8's
// stack overflows ("RangeError: Maximum call stack size exceeded"). That is
// a wasm trap, not a Go panic, so the binding cannot recover it and Envoy
// marks the VM failed — which is what the failure-policy tests need. The
// product build (no tag) compiles vm.go instead and has no such path.
//
// A request carrying crashHeader: panicValue instead makes its response
// headers callback panic: a Go panic, which the binding recovers (the
// stream fails open and the plugin hears no more of it), as a bug in a
// callback would; crashHeader: panicDone makes its end (OnHttpStreamDone)
// panic the same way; crashHeader: panicInTick makes the VM's next tick
// panic with the request's context effective, as a bug in code that
// resumes a request from a root callback (a follower woken, a held request
// let go) would; crashHeader: panicInCall makes the request's next call
// result (an L2 lookup, an embedding, a batch asked for again) panic the
// same way.

const (
	crashHeader = "x-modelcache-crash"
	crashValue  = "now"
	panicValue  = "panic-on-response"
	panicDone   = "panic-on-done"
	panicInTick = "panic-in-tick"
	panicInCall = "panic-in-call"
)

// callPanics are the streams whose next call result panics, its context
// effective (callResultHook).
var callPanics = map[uint32]bool{}

func init() {
	callResultHook = func(stream uint32) {
		if callPanics[stream] {
			delete(callPanics, stream)
			panic("crash test: panic in a call's result, a request's context effective")
		}
	}
}

// tickPanics are the streams whose VM's next tick panics with their
// context effective, oldest first.
var tickPanics []uint32

func newVMContext() types.VMContext { return crashVM{} }

type crashVM struct{ vmContext }

func (crashVM) NewPluginContext(id uint32) types.PluginContext {
	return crashPlugin{newPlugin(id)}
}

type crashPlugin struct{ *plugin }

func (p crashPlugin) NewHttpContext(id uint32) types.HttpContext {
	h := p.plugin.NewHttpContext(id)
	if h == nil {
		return nil
	}
	return &crashStream{HttpContext: h, id: id}
}

// OnTick panics, with a stream's context effective, once for each stream
// that asked for it; else it is the plugin's.
func (p crashPlugin) OnTick() {
	if len(tickPanics) > 0 {
		id := tickPanics[0]
		tickPanics = tickPanics[1:]
		if proxywasm.SetEffectiveContext(id) == nil {
			panic("crash test: panic in a tick, a request's context effective")
		}
	}
	p.plugin.OnTick()
}

type crashStream struct {
	types.HttpContext
	id                           uint32
	panicOnResponse, panicOnDone bool
}

func (s *crashStream) OnHttpRequestHeaders(n int, eos bool) types.Action {
	if v, err := proxywasm.GetHttpRequestHeader(crashHeader); err == nil && v == crashValue {
		proxywasm.LogWarn("crash test: trapping this VM on request")
		crashSink = deep(1 << 40)
	} else if err == nil && v == panicValue {
		s.panicOnResponse = true
	} else if err == nil && v == panicDone {
		s.panicOnDone = true
	} else if err == nil && v == panicInTick {
		tickPanics = append(tickPanics, s.id)
	} else if err == nil && v == panicInCall {
		callPanics[s.id] = true
	}
	return s.HttpContext.OnHttpRequestHeaders(n, eos)
}

func (s *crashStream) OnHttpResponseHeaders(n int, eos bool) types.Action {
	if s.panicOnResponse {
		panic("crash test: panic on response")
	}
	return s.HttpContext.OnHttpResponseHeaders(n, eos)
}

// Paused forwards to the plugin's stream (proxywasm.PauseReporter), which
// the embedded interface hides.
func (s *crashStream) Paused() (request, response bool) {
	if p, ok := s.HttpContext.(proxywasm.PauseReporter); ok {
		return p.Paused()
	}
	return false, false
}

// filterStream is the plugin's stream it wraps (streamOf).
func (s *crashStream) filterStream() *stream {
	st, _ := s.HttpContext.(*stream)
	return st
}

func (s *crashStream) OnHttpStreamDone() {
	if s.panicOnDone {
		panic("crash test: panic at the stream's end")
	}
	s.HttpContext.OnHttpStreamDone()
}

// crashSink keeps deep's result alive so the recursion is not optimised away.
var crashSink int

// deep recurses n levels; each frame keeps a little state live across the
// call so it can be neither inlined nor turned into a loop.
//
//go:noinline
func deep(n int) int {
	if n == 0 {
		return 0
	}
	var pad [16]byte
	pad[n%16] = byte(n)
	return deep(n-1) + int(pad[(n+3)%16])
}

package proxywasm

import (
	"fmt"
	"runtime/debug"

	"github.com/modelcache/modelcache/filter/proxywasm/types"
)

// The host calls the exports in abi_exports_wasip1.go; they land here. This
// layer keeps the context tables, routes each callback to the plugin's
// context object, and makes sure a Go panic never reaches the host: a panic
// that escapes an export traps the VM and Envoy then fails every later
// request on that worker (or reloads the VM and loses its state). Instead the
// panic is logged, reported to the panic hook, and the stream fails open.

var (
	vmContext types.VMContext = types.DefaultVMContext{}
	roots     contextTable[rootState]
	streams   contextTable[streamState]
	// currentRoot is the root context of the callback being run; HTTP calls
	// are always owned by it (Envoy issues them on the root context).
	currentRoot uint32
	panicHook   func(where string, recovered any)
)

// collectorYields counts the yields to a marking collector (GCYields).
var collectorYields uint64

// collectorYield ends a request's last callback (proxy_on_delete) and each
// tick: if a garbage collection is marking, the collector runs now rather
// than through every later allocation's assist (yieldToCollector).
func collectorYield() {
	if yieldToCollector() {
		collectorYields++
	}
}

// GCYields is how many times the binding let a marking collector run.
func GCYields() uint64 { return collectorYields }

// callbacks counts the callbacks the host has made into the plugin.
var callbacks uint64

// Callback is the number of the current callback: it changes at the start
// of every callback the host makes into the plugin (before the plugin's
// own method), and never comes back. Plugins use it to keep per-callback
// caches, e.g. of the current time, without a hook run on every callback.
func Callback() uint64 { return callbacks }

func enter() { callbacks++ }

type rootState struct {
	ctx   types.PluginContext
	calls map[uint32]func(numHeaders, bodySize, numTrailers int)
}

type streamState struct {
	ctx  types.HttpContext
	root uint32
	// broken is set after a panic in one of this stream's callbacks; the
	// rest of the stream bypasses the plugin (fail open).
	broken bool
	done   bool
}

// SetVMContext installs the plugin. Call it from an init function.
func SetVMContext(ctx types.VMContext) { vmContext = ctx }

// SetPanicHook registers a function called (after logging) whenever a
// callback panicked; plugins use it to count failures in a metric.
func SetPanicHook(f func(where string, recovered any)) { panicHook = f }

// StreamBrokenNotifier is implemented by a plugin context that keeps its
// streams in lists: the binding calls OnHttpStreamBroken with the id of a
// stream of its that a panic left broken, once the panic is recovered and
// again when the stream is deleted. It calls none of the stream's own
// methods again (OnHttpStreamDone and OnHttpStreamDeleted included), so
// the plugin takes it off its lists here.
type StreamBrokenNotifier interface {
	OnHttpStreamBroken(contextID uint32)
}

// broke tells the plugin context root that stream contextID is broken.
func broke(root, contextID uint32) {
	r := roots.get(root)
	if r == nil {
		return
	}
	if n, ok := r.ctx.(StreamBrokenNotifier); ok {
		func() {
			defer func() { _ = recover() }()
			n.OnHttpStreamBroken(contextID)
		}()
	}
}

func recovered(where string, r any) {
	unpin()
	LogCritical(fmt.Sprintf("panic in %s (failing open): %v\n%s", where, r, debug.Stack()))
	if panicHook != nil {
		func() {
			defer func() { _ = recover() }()
			panicHook(where, r)
		}()
	}
}

func registerHTTPCall(token uint32, cb func(numHeaders, bodySize, numTrailers int)) {
	r := roots.get(currentRoot)
	if r == nil || cb == nil {
		return
	}
	if r.calls == nil {
		r.calls = map[uint32]func(int, int, int){}
	}
	r.calls[token] = cb
}

func onContextCreate(contextID, parentID uint32) {
	enter()
	defer func() {
		if r := recover(); r != nil {
			recovered("proxy_on_context_create", r)
		}
	}()
	if parentID == 0 {
		currentRoot = contextID
		roots.put(contextID, &rootState{ctx: vmContext.NewPluginContext(contextID)})
		return
	}
	root := roots.get(parentID)
	if root == nil || root.ctx == nil {
		return
	}
	currentRoot = parentID
	if h := root.ctx.NewHttpContext(contextID); h != nil {
		s := newStreamState()
		s.ctx, s.root = h, parentID
		streams.put(contextID, s)
	}
}

func onVMStart(rootID uint32, size uint32) (ok bool) {
	enter()
	defer func() {
		if r := recover(); r != nil {
			recovered("proxy_on_vm_start", r)
			ok = false
		}
	}()
	currentRoot = rootID
	return bool(vmContext.OnVMStart(int(size)))
}

func onConfigure(rootID uint32, size uint32) (ok bool) {
	enter()
	defer func() {
		if r := recover(); r != nil {
			recovered("proxy_on_configure", r)
			ok = false
		}
	}()
	root := roots.get(rootID)
	if root == nil || root.ctx == nil {
		return false
	}
	currentRoot = rootID
	return bool(root.ctx.OnPluginStart(int(size)))
}

func onTick(rootID uint32) {
	enter()
	defer collectorYield()
	defer func() {
		if r := recover(); r != nil {
			recovered("proxy_on_tick", r)
		}
	}()
	if root := roots.get(rootID); root != nil && root.ctx != nil {
		currentRoot = rootID
		root.ctx.OnTick()
	}
}

func onQueueReady(rootID, queueID uint32) {
	enter()
	defer func() {
		if r := recover(); r != nil {
			recovered("proxy_on_queue_ready", r)
		}
	}()
	if root := roots.get(rootID); root != nil && root.ctx != nil {
		currentRoot = rootID
		root.ctx.OnQueueReady(queueID)
	}
}

func onHTTPCallResponse(rootID, token, numHeaders, bodySize, numTrailers uint32) {
	enter()
	defer func() {
		if r := recover(); r != nil {
			recovered("proxy_on_http_call_response", r)
		}
	}()
	root := roots.get(rootID)
	if root == nil {
		return
	}
	cb := root.calls[token]
	delete(root.calls, token)
	if cb != nil {
		currentRoot = rootID
		cb(int(numHeaders), int(bodySize), int(numTrailers))
	}
}

// onDone is called for roots (may delay) and streams.
func onDone(contextID uint32) (ok bool) {
	enter()
	defer func() {
		if r := recover(); r != nil {
			recovered("proxy_on_done", r)
			ok = true
		}
	}()
	if root := roots.get(contextID); root != nil {
		currentRoot = contextID
		if root.ctx == nil {
			return true
		}
		return root.ctx.OnPluginDone()
	}
	streamDone(contextID)
	return true
}

func onLog(contextID uint32) {
	enter()
	defer func() {
		if r := recover(); r != nil {
			recovered("proxy_on_log", r)
		}
	}()
	streamDone(contextID)
}

func onDelete(contextID uint32) {
	enter()
	defer collectorYield()
	defer func() {
		if r := recover(); r != nil {
			recovered("proxy_on_delete", r)
		}
		streams.del(contextID)
		roots.del(contextID)
	}()
	streamDone(contextID)
	s := streams.get(contextID)
	if s == nil {
		return
	}
	streams.del(contextID)
	h, broken, root := s.ctx, s.broken, s.root
	*s = streamState{}
	freeStates = append(freeStates, s)
	// A stream that panicked is left to the garbage collector: its state
	// is whatever the panic left.
	if !broken {
		h.OnHttpStreamDeleted()
	} else {
		broke(root, contextID) // a panic in OnHttpStreamDone included
	}
}

// freeStates are streamStates of deleted streams, reused for new ones: a
// stream costs the garbage collector nothing here. Nothing refers to a
// streamState but the streams table.
var freeStates []*streamState

func newStreamState() *streamState {
	if n := len(freeStates); n > 0 {
		s := freeStates[n-1]
		freeStates = freeStates[:n-1]
		return s
	}
	return &streamState{}
}

// streamDone runs OnHttpStreamDone once, on the first of on_log, on_done and
// on_delete: Envoy calls on_log first, but a stream without access logging
// may skip it.
func streamDone(contextID uint32) {
	s := streams.get(contextID)
	if s == nil || s.done {
		return
	}
	s.done = true
	if !s.broken {
		currentRoot = s.root
		s.broken = true // until it returns: a panic leaves the stream broken
		s.ctx.OnHttpStreamDone()
		s.broken = false
	}
}

// streamCall runs one stream callback with fail-open panic handling.
func streamCall(where string, contextID uint32, f func(types.HttpContext) types.Action) (action types.Action) {
	enter()
	s := streams.get(contextID)
	if s == nil || s.broken {
		return types.ActionContinue
	}
	defer func() {
		if r := recover(); r != nil {
			s.broken = true
			recovered(where, r)
			broke(s.root, contextID)
			action = types.ActionContinue
		}
	}()
	currentRoot = s.root
	return f(s.ctx)
}

func onRequestHeaders(contextID, numHeaders, eos uint32) types.Action {
	return streamCall("proxy_on_request_headers", contextID, func(h types.HttpContext) types.Action {
		return h.OnHttpRequestHeaders(int(numHeaders), eos != 0)
	})
}

func onRequestBody(contextID, size, eos uint32) types.Action {
	return streamCall("proxy_on_request_body", contextID, func(h types.HttpContext) types.Action {
		return h.OnHttpRequestBody(int(size), eos != 0)
	})
}

func onRequestTrailers(contextID, n uint32) types.Action {
	return streamCall("proxy_on_request_trailers", contextID, func(h types.HttpContext) types.Action {
		return h.OnHttpRequestTrailers(int(n))
	})
}

func onResponseHeaders(contextID, numHeaders, eos uint32) types.Action {
	return streamCall("proxy_on_response_headers", contextID, func(h types.HttpContext) types.Action {
		return h.OnHttpResponseHeaders(int(numHeaders), eos != 0)
	})
}

func onResponseBody(contextID, size, eos uint32) types.Action {
	return streamCall("proxy_on_response_body", contextID, func(h types.HttpContext) types.Action {
		return h.OnHttpResponseBody(int(size), eos != 0)
	})
}

func onResponseTrailers(contextID, n uint32) types.Action {
	return streamCall("proxy_on_response_trailers", contextID, func(h types.HttpContext) types.Action {
		return h.OnHttpResponseTrailers(int(n))
	})
}

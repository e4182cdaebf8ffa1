//go:build wasip1

package proxywasm

// Callbacks of proxy-wasm ABI v0.2.1 that an HTTP filter needs, exported with
// the exact wasm types Envoy checks ("Bad function signature" otherwise).
// Each one only forwards to entry.go, which owns panic recovery.

//go:wasmexport proxy_abi_version_0_2_1
func proxy_abi_version_0_2_1() {}

//go:wasmexport proxy_on_memory_allocate
func proxy_on_memory_allocate(size uint32) *byte { return allocate(size) }

//go:wasmexport proxy_on_context_create
func proxy_on_context_create(contextID, parentID uint32) { onContextCreate(contextID, parentID) }

//go:wasmexport proxy_on_vm_start
func proxy_on_vm_start(rootID, size uint32) bool { return onVMStart(rootID, size) }

//go:wasmexport proxy_on_configure
func proxy_on_configure(rootID, size uint32) bool { return onConfigure(rootID, size) }

//go:wasmexport proxy_on_tick
func proxy_on_tick(rootID uint32) { onTick(rootID) }

//go:wasmexport proxy_on_queue_ready
func proxy_on_queue_ready(rootID, queueID uint32) { onQueueReady(rootID, queueID) }

//go:wasmexport proxy_on_http_call_response
func proxy_on_http_call_response(rootID, token, numHeaders, bodySize, numTrailers uint32) {
	onHTTPCallResponse(rootID, token, numHeaders, bodySize, numTrailers)
}

//go:wasmexport proxy_on_done
func proxy_on_done(contextID uint32) bool { return onDone(contextID) }

//go:wasmexport proxy_on_log
func proxy_on_log(contextID uint32) { onLog(contextID) }

//go:wasmexport proxy_on_delete
func proxy_on_delete(contextID uint32) { onDelete(contextID) }

//go:wasmexport proxy_on_request_headers
func proxy_on_request_headers(contextID, numHeaders, endOfStream uint32) uint32 {
	return uint32(onRequestHeaders(contextID, numHeaders, endOfStream))
}

//go:wasmexport proxy_on_request_body
func proxy_on_request_body(contextID, bodySize, endOfStream uint32) uint32 {
	return uint32(onRequestBody(contextID, bodySize, endOfStream))
}

//go:wasmexport proxy_on_request_trailers
func proxy_on_request_trailers(contextID, numTrailers uint32) uint32 {
	return uint32(onRequestTrailers(contextID, numTrailers))
}

//go:wasmexport proxy_on_response_headers
func proxy_on_response_headers(contextID, numHeaders, endOfStream uint32) uint32 {
	return uint32(onResponseHeaders(contextID, numHeaders, endOfStream))
}

//go:wasmexport proxy_on_response_body
func proxy_on_response_body(contextID, bodySize, endOfStream uint32) uint32 {
	return uint32(onResponseBody(contextID, bodySize, endOfStream))
}

//go:wasmexport proxy_on_response_trailers
func proxy_on_response_trailers(contextID, numTrailers uint32) uint32 {
	return uint32(onResponseTrailers(contextID, numTrailers))
}

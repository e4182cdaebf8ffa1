//go:build wasip1

// Raw proxy-wasm ABI v0.2.1 declarations for the host's test guest, written
// from /work/shared/reference/proxy-wasm-abi.md. Every pointer is an i32;
// out-pointers to pointers are unsafe.Pointer (Go rejects **T in wasm
// signatures). None is //go:noescape: the host may call back into
// proxy_on_memory_allocate while these run.
package main

import "unsafe"

type ptr = unsafe.Pointer

//go:wasmimport env proxy_log
func proxy_log(level uint32, msg ptr, size uint32) uint32

//go:wasmimport env proxy_get_log_level
func proxy_get_log_level(level *uint32) uint32

//go:wasmimport env proxy_get_current_time_nanoseconds
func proxy_get_current_time_nanoseconds(out *uint64) uint32

//go:wasmimport env proxy_set_tick_period_milliseconds
func proxy_set_tick_period_milliseconds(ms uint32) uint32

//go:wasmimport env proxy_set_effective_context
func proxy_set_effective_context(id uint32) uint32

//go:wasmimport env proxy_get_buffer_status
func proxy_get_buffer_status(typ uint32, size *uint32, flags *uint32) uint32

//go:wasmimport env proxy_get_buffer_bytes
func proxy_get_buffer_bytes(typ, start, max uint32, outPtr ptr, outSize *uint32) uint32

//go:wasmimport env proxy_set_buffer_bytes
func proxy_set_buffer_bytes(typ, start, size uint32, data ptr, dataSize uint32) uint32

//go:wasmimport env proxy_get_header_map_pairs
func proxy_get_header_map_pairs(typ uint32, outPtr ptr, outSize *uint32) uint32

//go:wasmimport env proxy_set_header_map_pairs
func proxy_set_header_map_pairs(typ uint32, data ptr, size uint32) uint32

//go:wasmimport env proxy_get_header_map_size
func proxy_get_header_map_size(typ uint32, out *uint32) uint32

//go:wasmimport env proxy_get_header_map_value
func proxy_get_header_map_value(typ uint32, key ptr, keySize uint32, outPtr ptr, outSize *uint32) uint32

//go:wasmimport env proxy_add_header_map_value
func proxy_add_header_map_value(typ uint32, key ptr, keySize uint32, val ptr, valSize uint32) uint32

//go:wasmimport env proxy_replace_header_map_value
func proxy_replace_header_map_value(typ uint32, key ptr, keySize uint32, val ptr, valSize uint32) uint32

//go:wasmimport env proxy_remove_header_map_value
func proxy_remove_header_map_value(typ uint32, key ptr, keySize uint32) uint32

//go:wasmimport env proxy_continue_stream
func proxy_continue_stream(typ uint32) uint32

//go:wasmimport env proxy_close_stream
func proxy_close_stream(typ uint32) uint32

//go:wasmimport env proxy_send_local_response
func proxy_send_local_response(code uint32, details ptr, detailsSize uint32, body ptr, bodySize uint32, headers ptr, headersSize uint32, grpc int32) uint32

//go:wasmimport env proxy_get_status
func proxy_get_status(code *uint32, outPtr ptr, outSize *uint32) uint32

//go:wasmimport env proxy_http_call
func proxy_http_call(up ptr, upSize uint32, hdr ptr, hdrSize uint32, body ptr, bodySize uint32, trl ptr, trlSize uint32, timeout uint32, token *uint32) uint32

//go:wasmimport env proxy_get_shared_data
func proxy_get_shared_data(key ptr, keySize uint32, outPtr ptr, outSize *uint32, cas *uint32) uint32

//go:wasmimport env proxy_set_shared_data
func proxy_set_shared_data(key ptr, keySize uint32, val ptr, valSize uint32, cas uint32) uint32

//go:wasmimport env proxy_register_shared_queue
func proxy_register_shared_queue(name ptr, nameSize uint32, token *uint32) uint32

//go:wasmimport env proxy_resolve_shared_queue
func proxy_resolve_shared_queue(vmID ptr, vmIDSize uint32, name ptr, nameSize uint32, token *uint32) uint32

//go:wasmimport env proxy_enqueue_shared_queue
func proxy_enqueue_shared_queue(token uint32, data ptr, size uint32) uint32

//go:wasmimport env proxy_dequeue_shared_queue
func proxy_dequeue_shared_queue(token uint32, outPtr ptr, outSize *uint32) uint32

//go:wasmimport env proxy_define_metric
func proxy_define_metric(typ uint32, name ptr, nameSize uint32, id *uint32) uint32

//go:wasmimport env proxy_increment_metric
func proxy_increment_metric(id uint32, delta int64) uint32

//go:wasmimport env proxy_record_metric
func proxy_record_metric(id uint32, value uint64) uint32

//go:wasmimport env proxy_get_metric
func proxy_get_metric(id uint32, out *uint64) uint32

//go:wasmimport env proxy_get_property
func proxy_get_property(path ptr, pathSize uint32, outPtr ptr, outSize *uint32) uint32

//go:wasmimport env proxy_set_property
func proxy_set_property(path ptr, pathSize uint32, val ptr, valSize uint32) uint32

// Exports.

//go:wasmexport proxy_abi_version_0_2_1
func proxyABIVersion() {}

// pinned keeps every buffer handed to the host alive until the next
// callback: the host may allocate several times in one hostcall, and the
// first buffer is referenced only by the host until it returns (reference
// pitfall 8).
var pinned [][]byte

//go:wasmexport proxy_on_memory_allocate
func proxyOnMemoryAllocate(size uint32) *byte {
	if size == 0 {
		size = 1
	}
	b := make([]byte, size)
	pinned = append(pinned, b)
	return &b[0]
}

// bytesOf returns a pointer and size for a byte slice (nil for empty).
func bytesOf(b []byte) (ptr, uint32) {
	if len(b) == 0 {
		return nil, 0
	}
	return unsafe.Pointer(&b[0]), uint32(len(b))
}

func strOf(s string) (ptr, uint32) {
	if s == "" {
		return nil, 0
	}
	return unsafe.Pointer(unsafe.StringData(s)), uint32(len(s))
}

// outBytes copies a host-written (pointer, size) into a Go slice.
func outBytes(p *byte, n uint32) []byte {
	if p == nil || n == 0 {
		return nil
	}
	return append([]byte(nil), unsafe.Slice(p, n)...)
}

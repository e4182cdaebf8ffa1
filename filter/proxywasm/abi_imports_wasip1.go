//go:build wasip1

package proxywasm

import "unsafe"

// Host functions of proxy-wasm ABI v0.2.1 (module "env"), with the exact wasm
// types Envoy's proxy-wasm-cpp-host registers. A string parameter lowers to
// (ptr, len), two i32. None of these carries //go:noescape: the host may call
// proxy_on_memory_allocate while inside the import, which can grow and move
// the goroutine stack (see RATIONALE.md, "Own ABI binding").

//go:wasmimport env proxy_log
func proxy_log(level uint32, msg string) uint32

//go:wasmimport env proxy_set_tick_period_milliseconds
func proxy_set_tick_period_milliseconds(periodMs uint32) uint32

//go:wasmimport env proxy_set_effective_context
func proxy_set_effective_context(contextID uint32) uint32

//go:wasmimport env proxy_get_buffer_status
func proxy_get_buffer_status(bufferType uint32, outSize *uint32, outFlags *uint32) uint32

//go:wasmimport env proxy_get_buffer_bytes
func proxy_get_buffer_bytes(bufferType uint32, start uint32, maxSize uint32, outPtr unsafe.Pointer, outSize *uint32) uint32

//go:wasmimport env proxy_set_buffer_bytes
func proxy_set_buffer_bytes(bufferType uint32, start uint32, size uint32, data unsafe.Pointer, dataSize uint32) uint32

//go:wasmimport env proxy_get_header_map_pairs
func proxy_get_header_map_pairs(mapType uint32, outPtr unsafe.Pointer, outSize *uint32) uint32

//go:wasmimport env proxy_get_header_map_size
func proxy_get_header_map_size(mapType uint32, outSize *uint32) uint32

//go:wasmimport env proxy_get_header_map_value
func proxy_get_header_map_value(mapType uint32, key string, outPtr unsafe.Pointer, outSize *uint32) uint32

//go:wasmimport env proxy_add_header_map_value
func proxy_add_header_map_value(mapType uint32, key string, value string) uint32

//go:wasmimport env proxy_replace_header_map_value
func proxy_replace_header_map_value(mapType uint32, key string, value string) uint32

//go:wasmimport env proxy_remove_header_map_value
func proxy_remove_header_map_value(mapType uint32, key string) uint32

//go:wasmimport env proxy_continue_stream
func proxy_continue_stream(streamType uint32) uint32

//go:wasmimport env proxy_close_stream
func proxy_close_stream(streamType uint32) uint32

//go:wasmimport env proxy_send_local_response
func proxy_send_local_response(statusCode uint32, details string, body unsafe.Pointer, bodySize uint32, headers unsafe.Pointer, headersSize uint32, grpcStatus int32) uint32

//go:wasmimport env proxy_http_call
func proxy_http_call(upstream string, headers unsafe.Pointer, headersSize uint32, body unsafe.Pointer, bodySize uint32, trailers unsafe.Pointer, trailersSize uint32, timeoutMs uint32, outToken *uint32) uint32

//go:wasmimport env proxy_get_shared_data
func proxy_get_shared_data(key string, outValue unsafe.Pointer, outSize *uint32, outCas *uint32) uint32

//go:wasmimport env proxy_set_shared_data
func proxy_set_shared_data(key string, value unsafe.Pointer, size uint32, cas uint32) uint32

//go:wasmimport env proxy_register_shared_queue
func proxy_register_shared_queue(name string, outQueueID *uint32) uint32

//go:wasmimport env proxy_resolve_shared_queue
func proxy_resolve_shared_queue(vmID string, name string, outQueueID *uint32) uint32

//go:wasmimport env proxy_enqueue_shared_queue
func proxy_enqueue_shared_queue(queueID uint32, data unsafe.Pointer, size uint32) uint32

//go:wasmimport env proxy_dequeue_shared_queue
func proxy_dequeue_shared_queue(queueID uint32, outPtr unsafe.Pointer, outSize *uint32) uint32

//go:wasmimport env proxy_define_metric
func proxy_define_metric(metricType uint32, name string, outID *uint32) uint32

//go:wasmimport env proxy_increment_metric
func proxy_increment_metric(metricID uint32, delta int64) uint32

//go:wasmimport env proxy_record_metric
func proxy_record_metric(metricID uint32, value uint64) uint32

//go:wasmimport env proxy_get_metric
func proxy_get_metric(metricID uint32, outValue *uint64) uint32

//go:wasmimport env proxy_get_property
func proxy_get_property(path unsafe.Pointer, pathSize uint32, outPtr unsafe.Pointer, outSize *uint32) uint32

//go:wasmimport env proxy_set_property
func proxy_set_property(path unsafe.Pointer, pathSize uint32, value unsafe.Pointer, valueSize uint32) uint32

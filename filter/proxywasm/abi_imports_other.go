//go:build !wasip1

package proxywasm

import "unsafe"

// Native builds (go vet, unit tests of the pure-Go parts) get stubs: the
// binding only does real work inside a proxy-wasm host. Calling one of these
// outside wasm is a programming error.

var _ unsafe.Pointer

func noHost() uint32 { panic("proxywasm: host function called outside a proxy-wasm host") }

func proxy_log(level uint32, msg string) uint32                 { return noHost() }
func proxy_set_tick_period_milliseconds(periodMs uint32) uint32 { return noHost() }
func proxy_set_effective_context(contextID uint32) uint32       { return noHost() }
func proxy_get_buffer_status(bufferType uint32, outSize *uint32, outFlags *uint32) uint32 {
	return noHost()
}
func proxy_get_buffer_bytes(bufferType uint32, start uint32, maxSize uint32, outPtr unsafe.Pointer, outSize *uint32) uint32 {
	return noHost()
}
func proxy_set_buffer_bytes(bufferType uint32, start uint32, size uint32, data unsafe.Pointer, dataSize uint32) uint32 {
	return noHost()
}
func proxy_get_header_map_pairs(mapType uint32, outPtr unsafe.Pointer, outSize *uint32) uint32 {
	return noHost()
}
func proxy_get_header_map_size(mapType uint32, outSize *uint32) uint32 { return noHost() }
func proxy_get_header_map_value(mapType uint32, key string, outPtr unsafe.Pointer, outSize *uint32) uint32 {
	return noHost()
}
func proxy_add_header_map_value(mapType uint32, key string, value string) uint32     { return noHost() }
func proxy_replace_header_map_value(mapType uint32, key string, value string) uint32 { return noHost() }
func proxy_remove_header_map_value(mapType uint32, key string) uint32                { return noHost() }
func proxy_continue_stream(streamType uint32) uint32                                 { return noHost() }
func proxy_close_stream(streamType uint32) uint32                                    { return noHost() }
func proxy_send_local_response(statusCode uint32, details string, body unsafe.Pointer, bodySize uint32, headers unsafe.Pointer, headersSize uint32, grpcStatus int32) uint32 {
	return noHost()
}
func proxy_http_call(upstream string, headers unsafe.Pointer, headersSize uint32, body unsafe.Pointer, bodySize uint32, trailers unsafe.Pointer, trailersSize uint32, timeoutMs uint32, outToken *uint32) uint32 {
	return noHost()
}
func proxy_get_shared_data(key string, outValue unsafe.Pointer, outSize *uint32, outCas *uint32) uint32 {
	return noHost()
}
func proxy_set_shared_data(key string, value unsafe.Pointer, size uint32, cas uint32) uint32 {
	return noHost()
}
func proxy_register_shared_queue(name string, outQueueID *uint32) uint32             { return noHost() }
func proxy_resolve_shared_queue(vmID string, name string, outQueueID *uint32) uint32 { return noHost() }
func proxy_enqueue_shared_queue(queueID uint32, data unsafe.Pointer, size uint32) uint32 {
	return noHost()
}
func proxy_dequeue_shared_queue(queueID uint32, outPtr unsafe.Pointer, outSize *uint32) uint32 {
	return noHost()
}
func proxy_define_metric(metricType uint32, name string, outID *uint32) uint32 { return noHost() }
func proxy_increment_metric(metricID uint32, delta int64) uint32               { return noHost() }
func proxy_record_metric(metricID uint32, value uint64) uint32                 { return noHost() }
func proxy_get_metric(metricID uint32, outValue *uint64) uint32                { return noHost() }
func proxy_get_property(path unsafe.Pointer, pathSize uint32, outPtr unsafe.Pointer, outSize *uint32) uint32 {
	return noHost()
}
func proxy_set_property(path unsafe.Pointer, pathSize uint32, value unsafe.Pointer, valueSize uint32) uint32 {
	return noHost()
}

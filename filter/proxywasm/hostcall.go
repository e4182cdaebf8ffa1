package proxywasm

import (
	"unsafe"

	"github.com/modelcache/modelcache/filter/proxywasm/types"
)

// This file is the public face of the binding: the functions a plugin calls.
// Names and signatures follow proxy-wasm-go-sdk's proxywasm package.

func st(s uint32) error { return types.StatusToError(types.Status(s)) }

// ---- logging ----

// LogTrace and friends write one line to Envoy's log for the wasm component.
func LogTrace(msg string)    { proxy_log(uint32(types.LogLevelTrace), msg) }
func LogDebug(msg string)    { proxy_log(uint32(types.LogLevelDebug), msg) }
func LogInfo(msg string)     { proxy_log(uint32(types.LogLevelInfo), msg) }
func LogWarn(msg string)     { proxy_log(uint32(types.LogLevelWarn), msg) }
func LogError(msg string)    { proxy_log(uint32(types.LogLevelError), msg) }
func LogCritical(msg string) { proxy_log(uint32(types.LogLevelCritical), msg) }

// ---- configuration, lifecycle, timers ----

// GetPluginConfiguration returns the filter's `configuration` bytes.
func GetPluginConfiguration() ([]byte, error) {
	return getBuffer(types.BufferTypePluginConfiguration, 0, maxBuffer)
}

// SetTickPeriodMilliSeconds arms (or with 0 disarms) this VM's tick.
func SetTickPeriodMilliSeconds(ms uint32) error {
	return st(proxy_set_tick_period_milliseconds(ms))
}

// SetEffectiveContext makes later host calls act on contextID, e.g. to
// resume a paused stream from a tick or a queue callback. The host restores
// the previous context when the current callback returns.
func SetEffectiveContext(contextID uint32) error {
	if err := st(proxy_set_effective_context(contextID)); err != nil {
		return err
	}
	effective = contextID
	return nil
}

// ---- buffers ----

const maxBuffer = 1<<31 - 1

// getBuffer reads a buffer into new memory (getBufferInto with no
// buffer of the caller's).
func getBuffer(bt types.BufferType, start, maxSize int) ([]byte, error) {
	return getBufferInto(bt, nil, start, maxSize)
}

// getBufferInto reads a buffer into buf when it is large enough (else into
// new memory): the result aliases buf. It is the one function between a
// body's reader and the host: GetHttpRequestBodyInto and the other
// readers are one call to it, and inline.
func getBufferInto(bt types.BufferType, buf []byte, start, maxSize int) ([]byte, error) {
	into = buf[:cap(buf)]
	s := proxy_get_buffer_bytes(uint32(bt), uint32(start), uint32(maxSize), unsafe.Pointer(&outPtr), &outSize)
	return intoResult(buf, takeOut()), st(s)
}

func setBuffer(bt types.BufferType, start, size int, data []byte) error {
	return st(proxy_set_buffer_bytes(uint32(bt), uint32(start), uint32(size), ptrOf(data), uint32(len(data))))
}

// GetHttpRequestBody returns up to maxSize bytes of the buffered request body
// from start. The returned slice is freshly allocated and owned by the caller.
func GetHttpRequestBody(start, maxSize int) ([]byte, error) {
	return getBuffer(types.BufferTypeHttpRequestBody, start, maxSize)
}

// GetHttpRequestBodyInto is GetHttpRequestBody reading into buf when it is
// large enough (else into a new buffer): the result aliases it.
func GetHttpRequestBodyInto(buf []byte, start, maxSize int) ([]byte, error) {
	return getBufferInto(types.BufferTypeHttpRequestBody, buf, start, maxSize)
}

// ReplaceHttpRequestBody replaces the whole buffered request body.
func ReplaceHttpRequestBody(body []byte) error {
	return setBuffer(types.BufferTypeHttpRequestBody, 0, maxBuffer, body)
}

// GetHttpResponseBody returns up to maxSize bytes of the buffered response body.
func GetHttpResponseBody(start, maxSize int) ([]byte, error) {
	return getBuffer(types.BufferTypeHttpResponseBody, start, maxSize)
}

// GetHttpResponseBodyInto is GetHttpRequestBodyInto for the response.
func GetHttpResponseBodyInto(buf []byte, start, maxSize int) ([]byte, error) {
	return getBufferInto(types.BufferTypeHttpResponseBody, buf, start, maxSize)
}

// ReplaceHttpResponseBody replaces the whole buffered response body.
func ReplaceHttpResponseBody(body []byte) error {
	return setBuffer(types.BufferTypeHttpResponseBody, 0, maxBuffer, body)
}

// GetHttpCallResponseBody reads the body of the HTTP-call response being
// delivered (valid only inside the DispatchHttpCall callback).
func GetHttpCallResponseBody(start, maxSize int) ([]byte, error) {
	return getBuffer(types.BufferTypeHttpCallResponseBody, start, maxSize)
}

// ---- header maps ----

func getMap(mt types.MapType) ([][2]string, error) {
	s := proxy_get_header_map_pairs(uint32(mt), unsafe.Pointer(&outPtr), &outSize)
	b := takeOut()
	if err := st(s); err != nil {
		return nil, err
	}
	return DecodePairs(b)
}

func getMapValue(mt types.MapType, key string) (string, error) {
	s := proxy_get_header_map_value(uint32(mt), key, unsafe.Pointer(&outPtr), &outSize)
	b := takeOut()
	if err := st(s); err != nil {
		return "", err
	}
	return bytesToString(b), nil
}

// GetHttpRequestHeaders returns all request headers (pseudo-headers included).
func GetHttpRequestHeaders() ([][2]string, error) { return getMap(types.MapTypeHttpRequestHeaders) }

// GetHttpRequestHeadersInto is GetHttpRequestHeaders reading into raw and
// decoding into pairs when they are large enough, so that it allocates
// nothing. The strings alias raw, returned (grown if it was too small)
// for the next call: they are valid until raw is reused.
func GetHttpRequestHeadersInto(raw []byte, pairs [][2]string) ([]byte, [][2]string, error) {
	return getMapInto(types.MapTypeHttpRequestHeaders, raw, pairs)
}

// GetHttpResponseHeadersInto is GetHttpRequestHeadersInto for the response.
func GetHttpResponseHeadersInto(raw []byte, pairs [][2]string) ([]byte, [][2]string, error) {
	return getMapInto(types.MapTypeHttpResponseHeaders, raw, pairs)
}

func getMapInto(mt types.MapType, raw []byte, pairs [][2]string) ([]byte, [][2]string, error) {
	into = raw[:cap(raw)]
	s := proxy_get_header_map_pairs(uint32(mt), unsafe.Pointer(&outPtr), &outSize)
	b := takeOut()
	if err := st(s); err != nil {
		return raw, nil, err
	}
	hs, err := DecodePairsInto(b, pairs[:0])
	return intoResult(raw, b)[:0], hs, err
}

// GetHttpRequestHeader returns one request header; ErrorStatusNotFound if absent.
func GetHttpRequestHeader(key string) (string, error) {
	return getMapValue(types.MapTypeHttpRequestHeaders, key)
}

// ReplaceHttpRequestHeader sets one request header, replacing existing values.
func ReplaceHttpRequestHeader(key, value string) error {
	return st(proxy_replace_header_map_value(uint32(types.MapTypeHttpRequestHeaders), key, value))
}

// RemoveHttpRequestHeader removes a request header (no error if absent).
func RemoveHttpRequestHeader(key string) error {
	return st(proxy_remove_header_map_value(uint32(types.MapTypeHttpRequestHeaders), key))
}

// GetHttpResponseHeaders returns all response headers.
func GetHttpResponseHeaders() ([][2]string, error) { return getMap(types.MapTypeHttpResponseHeaders) }

// ReplaceHttpResponseHeader sets one response header.
func ReplaceHttpResponseHeader(key, value string) error {
	return st(proxy_replace_header_map_value(uint32(types.MapTypeHttpResponseHeaders), key, value))
}

// AddHttpResponseHeader adds a response header, keeping any of that name.
func AddHttpResponseHeader(key, value string) error {
	return st(proxy_add_header_map_value(uint32(types.MapTypeHttpResponseHeaders), key, value))
}

// RemoveHttpResponseHeader removes a response header (no error if absent).
func RemoveHttpResponseHeader(key string) error {
	return st(proxy_remove_header_map_value(uint32(types.MapTypeHttpResponseHeaders), key))
}

// GetHttpCallResponseHeaders returns the headers of the HTTP-call response
// being delivered.
func GetHttpCallResponseHeaders() ([][2]string, error) {
	return getMap(types.MapTypeHttpCallResponseHeaders)
}

// ---- stream control ----

// ResumeHttpRequest continues a paused request. Envoy defers the resume until
// the current callback returns and then no longer lets the plugin touch the
// request headers or body: change them first.
func ResumeHttpRequest() error { return st(proxy_continue_stream(uint32(types.StreamTypeRequest))) }

// ResumeHttpResponse continues a paused response (deferred like ResumeHttpRequest).
func ResumeHttpResponse() error { return st(proxy_continue_stream(uint32(types.StreamTypeResponse))) }

// SendHttpResponse answers the current stream locally. Envoy sends it after
// the current callback returns and forces that callback to stop iteration.
// gRPCStatus -1 means no grpc-status.
func SendHttpResponse(statusCode uint32, headers [][2]string, body []byte, gRPCStatus int32) error {
	return SendHttpResponseWithDetail(statusCode, "", headers, body, gRPCStatus)
}

// SendHttpResponseWithDetail is SendHttpResponse with response code details
// (visible as %RESPONSE_CODE_DETAILS% in Envoy's access log).
func SendHttpResponseWithDetail(statusCode uint32, detail string, headers [][2]string, body []byte, gRPCStatus int32) error {
	hs, err := encodeScratch(headers)
	if err != nil {
		return err
	}
	return st(proxy_send_local_response(statusCode, detail, ptrOf(body), uint32(len(body)), ptrOf(hs), uint32(len(hs)), gRPCStatus))
}

// pairsScratch holds headers encoded for one host call: the host copies
// them during the call, so the buffer is reused.
var pairsScratch []byte

func encodeScratch(pairs [][2]string) ([]byte, error) {
	size := pairsSize(pairs)
	if cap(pairsScratch) < size {
		pairsScratch = make([]byte, size)
	}
	buf := pairsScratch[:size]
	return buf, encodePairsInto(buf, pairs)
}

// ---- HTTP calls ----

// DispatchHttpCall sends an HTTP request to cluster from this VM's root
// context. headers must hold :method, :path and :authority. callBack runs on
// the root context when the answer (or a failure: numHeaders == 0) arrives —
// possibly after the stream that caused the call has ended.
func DispatchHttpCall(cluster string, headers [][2]string, body []byte, trailers [][2]string,
	timeoutMillisecond uint32, callBack func(numHeaders, bodySize, numTrailers int)) (uint32, error) {
	hs, err := EncodePairs(headers)
	if err != nil {
		return 0, err
	}
	ts, err := EncodePairs(trailers)
	if err != nil {
		return 0, err
	}
	s := proxy_http_call(cluster, ptrOf(hs), uint32(len(hs)), ptrOf(body), uint32(len(body)),
		ptrOf(ts), uint32(len(ts)), timeoutMillisecond, &outU32)
	if err := st(s); err != nil {
		return 0, err
	}
	token := outU32
	registerHTTPCall(token, callBack)
	return token, nil
}

// ---- shared data ----

// GetSharedData returns the value and CAS of key in this vm_id's shared data.
// ErrorStatusNotFound if the key was never set. The value is a fresh copy.
func GetSharedData(key string) ([]byte, uint32, error) {
	s := proxy_get_shared_data(key, unsafe.Pointer(&outPtr), &outSize, &outCas)
	cas := outCas
	b := takeOut()
	return b, cas, st(s)
}

// GetSharedDataInto is GetSharedData reading into buf when it is large
// enough (then the result aliases buf and nothing is allocated); otherwise
// it allocates as GetSharedData does.
func GetSharedDataInto(key string, buf []byte) ([]byte, uint32, error) {
	into = buf[:cap(buf)]
	s := proxy_get_shared_data(key, unsafe.Pointer(&outPtr), &outSize, &outCas)
	cas := outCas
	b := takeOut()
	return intoResult(buf, b), cas, st(s)
}

// SetSharedData stores value under key. cas 0 is unconditional; otherwise it
// must equal the key's current CAS (ErrorStatusCasMismatch if not) — except
// that Envoy lets a set on a missing key succeed whatever cas is given.
// There is no delete: an empty value leaves the key in place.
func SetSharedData(key string, value []byte, cas uint32) error {
	return types.StatusToError(SetSharedDataStatus(key, value, cas))
}

// SetSharedDataStatus is SetSharedData returning the host's status as it
// is. It inlines: a caller that maps statuses to errors of its own (the
// filter's shared store) then writes with no call between it and the host.
func SetSharedDataStatus(key string, value []byte, cas uint32) types.Status {
	return types.Status(proxy_set_shared_data(key, ptrOf(value), uint32(len(value)), cas))
}

// ---- shared queues ----

// RegisterSharedQueue creates the queue name in this vm_id, or takes it over:
// the last VM to register a name receives every OnQueueReady for it.
func RegisterSharedQueue(name string) (uint32, error) {
	s := proxy_register_shared_queue(name, &outU32)
	return outU32, st(s)
}

// ResolveSharedQueue finds a queue registered by any VM ("" = own vm_id).
func ResolveSharedQueue(vmID, name string) (uint32, error) {
	s := proxy_resolve_shared_queue(vmID, name, &outU32)
	return outU32, st(s)
}

// EnqueueSharedQueue appends data and notifies the queue's owner VM.
func EnqueueSharedQueue(queueID uint32, data []byte) error {
	return st(proxy_enqueue_shared_queue(queueID, ptrOf(data), uint32(len(data))))
}

// DequeueSharedQueue pops one item; ErrorStatusEmpty when drained.
func DequeueSharedQueue(queueID uint32) ([]byte, error) {
	s := proxy_dequeue_shared_queue(queueID, unsafe.Pointer(&outPtr), &outSize)
	b := takeOut()
	return b, st(s)
}

// ---- properties ----

// pathBuf holds the last encoded property path: the host reads it during
// the call only, and a VM runs one callback at a time.
var pathBuf []byte

func encodePath(path []string) []byte {
	pathBuf = pathBuf[:0]
	for i, p := range path {
		if i > 0 {
			pathBuf = append(pathBuf, 0)
		}
		pathBuf = append(pathBuf, p...)
	}
	return pathBuf
}

// PropertyPath is a property's path as the host reads it (encodePath),
// encoded once (NewPropertyPath): a property read on every request (the
// response's code details) then runs none of the encoding's code.
type PropertyPath string

// NewPropertyPath encodes path, such as {"response", "code_details"}.
func NewPropertyPath(path ...string) PropertyPath { return PropertyPath(encodePath(path)) }

// GetProperty reads a host property such as {"response", "code_details"}.
// (With no buffer, getPropertyInto reads into a new one.)
func GetProperty(path []string) ([]byte, error) {
	p := encodePath(path)
	return getPropertyInto(ptrOf(p), len(p), nil)
}

// GetPropertyInto is GetProperty reading into buf when it is large enough
// (it allocates nothing then): the result aliases buf, or a new buffer
// when buf was too small.
func GetPropertyInto(path []string, buf []byte) ([]byte, error) {
	p := encodePath(path)
	return getPropertyInto(ptrOf(p), len(p), buf)
}

// GetPropertyPathInto is GetPropertyInto for a path encoded once.
func GetPropertyPathInto(path PropertyPath, buf []byte) ([]byte, error) {
	return getPropertyInto(unsafe.Pointer(unsafe.StringData(string(path))), len(path), buf)
}

// getPropertyInto reads the property whose encoded path is the n bytes
// at p into buf (GetPropertyInto).
func getPropertyInto(p unsafe.Pointer, n int, buf []byte) ([]byte, error) {
	into = buf[:cap(buf)]
	s := proxy_get_property(p, uint32(n), unsafe.Pointer(&outPtr), &outSize)
	return intoResult(buf, takeOut()), st(s)
}

// SetProperty writes a host property (e.g. filter state).
func SetProperty(path []string, value []byte) error {
	p := encodePath(path)
	return st(proxy_set_property(ptrOf(p), uint32(len(p)), ptrOf(value), uint32(len(value))))
}

// ---- metrics ----

// MetricCounter is a monotonically increasing Envoy stat (wasmcustom.<name>).
type MetricCounter uint32

// MetricGauge is an Envoy gauge.
type MetricGauge uint32

// MetricHistogram is an Envoy histogram.
type MetricHistogram uint32

func defineMetric(mt types.MetricType, name string) (uint32, error) {
	s := proxy_define_metric(uint32(mt), name, &outU32)
	return outU32, st(s)
}

// DefineCounterMetric defines (or looks up) a counter. Names map to one
// process-wide stat shared by every VM.
func DefineCounterMetric(name string) (MetricCounter, error) {
	id, err := defineMetric(types.MetricTypeCounter, name)
	return MetricCounter(id), err
}

// DefineGaugeMetric defines (or looks up) a gauge.
func DefineGaugeMetric(name string) (MetricGauge, error) {
	id, err := defineMetric(types.MetricTypeGauge, name)
	return MetricGauge(id), err
}

// DefineHistogramMetric defines (or looks up) a histogram.
func DefineHistogramMetric(name string) (MetricHistogram, error) {
	id, err := defineMetric(types.MetricTypeHistogram, name)
	return MetricHistogram(id), err
}

// Increment adds offset (> 0; Envoy refuses 0 for counters).
func (c MetricCounter) Increment(offset uint64) {
	if offset > 0 {
		proxy_increment_metric(uint32(c), int64(offset))
	}
}

// Value reads the counter.
func (c MetricCounter) Value() uint64 {
	var v uint64
	proxy_get_metric(uint32(c), &v)
	return v
}

// Add adds a signed delta to the gauge.
func (g MetricGauge) Add(delta int64) {
	if delta != 0 {
		proxy_increment_metric(uint32(g), delta)
	}
}

// Set sets the gauge.
func (g MetricGauge) Set(v uint64) { proxy_record_metric(uint32(g), v) }

// Value reads the gauge.
func (g MetricGauge) Value() uint64 {
	var v uint64
	proxy_get_metric(uint32(g), &v)
	return v
}

// Record adds one observation to the histogram.
func (h MetricHistogram) Record(v uint64) { proxy_record_metric(uint32(h), v) }

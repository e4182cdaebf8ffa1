package wasmhost

import "fmt"

// Status is a proxy_status_t value returned by every env host function
// (ABI v0.2.1, values as in proxy-wasm-cpp-sdk / cpp-host WasmResult).
type Status uint32

// Status values.
const (
	StatusOK                   Status = 0
	StatusNotFound             Status = 1
	StatusBadArgument          Status = 2
	StatusSerializationFailure Status = 3
	StatusParseFailure         Status = 4
	StatusBadExpression        Status = 5
	StatusInvalidMemoryAccess  Status = 6
	StatusEmpty                Status = 7
	StatusCasMismatch          Status = 8
	StatusResultMismatch       Status = 9
	StatusInternalFailure      Status = 10
	StatusBrokenConnection     Status = 11
	StatusUnimplemented        Status = 12
)

var statusNames = [...]string{"OK", "NOT_FOUND", "BAD_ARGUMENT", "SERIALIZATION_FAILURE",
	"PARSE_FAILURE", "BAD_EXPRESSION", "INVALID_MEMORY_ACCESS", "EMPTY", "CAS_MISMATCH",
	"RESULT_MISMATCH", "INTERNAL_FAILURE", "BROKEN_CONNECTION", "UNIMPLEMENTED"}

func (s Status) String() string {
	if int(s) < len(statusNames) {
		return statusNames[s]
	}
	return fmt.Sprintf("Status(%d)", uint32(s))
}

// LogLevel is a proxy_log_level_t value. LogOff (6) is what Envoy's
// proxy_get_log_level answers when its wasm logger is switched off.
type LogLevel uint32

// Log levels.
const (
	LogTrace    LogLevel = 0
	LogDebug    LogLevel = 1
	LogInfo     LogLevel = 2
	LogWarn     LogLevel = 3
	LogError    LogLevel = 4
	LogCritical LogLevel = 5
	LogOff      LogLevel = 6
)

var levelNames = [...]string{"trace", "debug", "info", "warn", "error", "critical", "off"}

func (l LogLevel) String() string {
	if int(l) < len(levelNames) {
		return levelNames[l]
	}
	return fmt.Sprintf("LogLevel(%d)", uint32(l))
}

// Action is what an HTTP callback returned (proxy_action_t). Envoy also
// accepts the extended filter statuses 2..4 (headers) and 2..3 (data); they
// are passed through unchanged so tests can see them.
type Action uint32

// Actions.
const (
	ActionContinue Action = 0
	ActionPause    Action = 1
)

func (a Action) String() string {
	switch a {
	case ActionContinue:
		return "Continue"
	case ActionPause:
		return "Pause"
	}
	return fmt.Sprintf("Action(%d)", uint32(a))
}

// BufferType is a proxy_buffer_type_t value.
type BufferType uint32

// Buffer types.
const (
	BufferHTTPRequestBody      BufferType = 0
	BufferHTTPResponseBody     BufferType = 1
	BufferDownstreamData       BufferType = 2
	BufferUpstreamData         BufferType = 3
	BufferHTTPCallResponseBody BufferType = 4
	BufferGrpcCallMessage      BufferType = 5
	BufferVMConfiguration      BufferType = 6
	BufferPluginConfiguration  BufferType = 7
	BufferForeignFunctionArgs  BufferType = 8
	bufferTypeMax                         = BufferForeignFunctionArgs
)

// MapType is a proxy_map_type_t value.
type MapType uint32

// Map types.
const (
	MapHTTPRequestHeaders       MapType = 0
	MapHTTPRequestTrailers      MapType = 1
	MapHTTPResponseHeaders      MapType = 2
	MapHTTPResponseTrailers     MapType = 3
	MapGrpcInitialMetadata      MapType = 4
	MapGrpcTrailingMetadata     MapType = 5
	MapHTTPCallResponseHeaders  MapType = 6
	MapHTTPCallResponseTrailers MapType = 7
	mapTypeMax                          = MapHTTPCallResponseTrailers
)

// StreamType is a proxy_stream_type_t value.
type StreamType uint32

// Stream types.
const (
	StreamHTTPRequest  StreamType = 0
	StreamHTTPResponse StreamType = 1
	StreamDownstream   StreamType = 2
	StreamUpstream     StreamType = 3
)

// MetricType is a proxy_metric_type_t value.
type MetricType uint32

// Metric types.
const (
	MetricCounter   MetricType = 0
	MetricGauge     MetricType = 1
	MetricHistogram MetricType = 2
)

// WASI errno values answered by the wasi_snapshot_preview1 module, exactly
// the ones cpp-host's stubs use (src/exports.cc).
const (
	errnoSuccess  = 0
	errnoBadf     = 8
	errnoNotdir   = 20
	errnoFault    = 21
	errnoInval    = 28
	errnoNoent    = 44
	errnoNosys    = 52
	errnoNotsup   = 58
	maxRandomSize = 64 * 1024 // PROXY_WASM_HOST_WASI_RANDOM_GET_MAX_SIZE_BYTES
)

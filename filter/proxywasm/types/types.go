// Package types holds the enums, errors and context interfaces of the
// project's proxy-wasm ABI v0.2.1 binding. It is shaped like
// github.com/tetratelabs/proxy-wasm-go-sdk/proxywasm/types so that a later
// switch to that SDK (once it builds with the standard Go toolchain) is a
// change of import paths, not of code. See RATIONALE.md, "Own ABI binding".
package types

import (
	"errors"
	"strconv"
)

// Action is what a stream callback tells the host to do next.
type Action uint32

const (
	// ActionContinue lets the stream go on to the next filter.
	ActionContinue Action = 0
	// ActionPause stops iteration; for body callbacks Envoy buffers the data
	// (StopIterationAndBuffer) and passes the whole buffer on the next call.
	ActionPause Action = 1
	// ActionPauseWatermark is for body callbacks only: Envoy keeps the data
	// (StopIterationAndWatermark) but applies back-pressure instead of a 413
	// when it outgrows the buffer limit, and the next call sees only the new
	// chunk: the plugin keeps its own copy if it needs the whole body.
	ActionPauseWatermark Action = 2
)

// OnVMStartStatus is returned by VMContext.OnVMStart; false marks the VM failed.
type OnVMStartStatus bool

// OnPluginStartStatus is returned by PluginContext.OnPluginStart; false makes
// the plugin refuse to start (Envoy logs it and fails the filter config).
type OnPluginStartStatus bool

const (
	OnVMStartStatusOK     OnVMStartStatus     = true
	OnVMStartStatusFailed OnVMStartStatus     = false
	OnPluginStartStatusOK OnPluginStartStatus = true
	// OnPluginStartStatusFailed refuses the configuration.
	OnPluginStartStatusFailed OnPluginStartStatus = false
)

// Status is proxy_status_t as returned by every host call.
type Status uint32

const (
	StatusOK                  Status = 0
	StatusNotFound            Status = 1
	StatusBadArgument         Status = 2
	StatusSerializationFail   Status = 3
	StatusParseFailure        Status = 4
	StatusBadExpression       Status = 5
	StatusInvalidMemoryAccess Status = 6
	StatusEmpty               Status = 7
	StatusCasMismatch         Status = 8
	StatusResultMismatch      Status = 9
	StatusInternalFailure     Status = 10
	StatusBrokenConnection    Status = 11
	StatusUnimplemented       Status = 12
)

// Errors a host call can return. They are comparable with errors.Is.
var (
	ErrorStatusNotFound            = errors.New("proxy-wasm: not found")
	ErrorStatusBadArgument         = errors.New("proxy-wasm: bad argument")
	ErrorStatusSerializationFail   = errors.New("proxy-wasm: serialization failure")
	ErrorStatusParseFailure        = errors.New("proxy-wasm: parse failure")
	ErrorStatusBadExpression       = errors.New("proxy-wasm: bad expression")
	ErrorStatusInvalidMemoryAccess = errors.New("proxy-wasm: invalid memory access")
	ErrorStatusEmpty               = errors.New("proxy-wasm: empty")
	ErrorStatusCasMismatch         = errors.New("proxy-wasm: cas mismatch")
	ErrorStatusResultMismatch      = errors.New("proxy-wasm: result mismatch")
	ErrorStatusInternalFailure     = errors.New("proxy-wasm: internal failure")
	ErrorStatusBrokenConnection    = errors.New("proxy-wasm: broken connection")
	ErrorStatusUnimplemented       = errors.New("proxy-wasm: unimplemented")
)

// StatusToError maps a host status to nil or one of the errors above.
func StatusToError(s Status) error {
	switch s {
	case StatusOK:
		return nil
	case StatusNotFound:
		return ErrorStatusNotFound
	case StatusBadArgument:
		return ErrorStatusBadArgument
	case StatusSerializationFail:
		return ErrorStatusSerializationFail
	case StatusParseFailure:
		return ErrorStatusParseFailure
	case StatusBadExpression:
		return ErrorStatusBadExpression
	case StatusInvalidMemoryAccess:
		return ErrorStatusInvalidMemoryAccess
	case StatusEmpty:
		return ErrorStatusEmpty
	case StatusCasMismatch:
		return ErrorStatusCasMismatch
	case StatusResultMismatch:
		return ErrorStatusResultMismatch
	case StatusInternalFailure:
		return ErrorStatusInternalFailure
	case StatusBrokenConnection:
		return ErrorStatusBrokenConnection
	case StatusUnimplemented:
		return ErrorStatusUnimplemented
	}
	return errors.New("proxy-wasm: unknown status " + strconv.FormatUint(uint64(s), 10))
}

// LogLevel is proxy_log_level_t.
type LogLevel uint32

const (
	LogLevelTrace    LogLevel = 0
	LogLevelDebug    LogLevel = 1
	LogLevelInfo     LogLevel = 2
	LogLevelWarn     LogLevel = 3
	LogLevelError    LogLevel = 4
	LogLevelCritical LogLevel = 5
)

// BufferType is proxy_buffer_type_t.
type BufferType uint32

const (
	BufferTypeHttpRequestBody      BufferType = 0
	BufferTypeHttpResponseBody     BufferType = 1
	BufferTypeDownstreamData       BufferType = 2
	BufferTypeUpstreamData         BufferType = 3
	BufferTypeHttpCallResponseBody BufferType = 4
	BufferTypeGrpcReceiveBuffer    BufferType = 5
	BufferTypeVMConfiguration      BufferType = 6
	BufferTypePluginConfiguration  BufferType = 7
)

// MapType is proxy_map_type_t.
type MapType uint32

const (
	MapTypeHttpRequestHeaders       MapType = 0
	MapTypeHttpRequestTrailers      MapType = 1
	MapTypeHttpResponseHeaders      MapType = 2
	MapTypeHttpResponseTrailers     MapType = 3
	MapTypeHttpCallResponseHeaders  MapType = 6
	MapTypeHttpCallResponseTrailers MapType = 7
)

// StreamType is proxy_stream_type_t.
type StreamType uint32

const (
	StreamTypeRequest  StreamType = 0
	StreamTypeResponse StreamType = 1
)

// MetricType is proxy_metric_type_t.
type MetricType uint32

const (
	MetricTypeCounter   MetricType = 0
	MetricTypeGauge     MetricType = 1
	MetricTypeHistogram MetricType = 2
)

// VMContext is the per-VM singleton. Envoy creates one VM per worker thread,
// one on the main thread and a throw-away canary; each gets its own VMContext.
type VMContext interface {
	// OnVMStart is called once per root context with the size of the
	// vm_config.configuration bytes.
	OnVMStart(vmConfigurationSize int) OnVMStartStatus
	// NewPluginContext creates the root (plugin) context.
	NewPluginContext(contextID uint32) PluginContext
}

// PluginContext is the root context of one plugin configuration on one VM.
// Ticks, queue-ready notifications and HTTP-call responses arrive here.
type PluginContext interface {
	OnPluginStart(pluginConfigurationSize int) OnPluginStartStatus
	// OnPluginDone reports whether the context may end now. Return true:
	// the binding has no PluginDone (proxy_done) to end a delayed one.
	OnPluginDone() bool
	OnQueueReady(queueID uint32)
	OnTick()
	// NewHttpContext creates the context of one HTTP stream, or returns
	// nil to leave the stream untouched.
	NewHttpContext(contextID uint32) HttpContext
}

// HttpContext is one HTTP stream. Every method runs on the worker thread
// that owns the stream; none may block.
type HttpContext interface {
	OnHttpRequestHeaders(numHeaders int, endOfStream bool) Action
	OnHttpRequestBody(bodySize int, endOfStream bool) Action
	OnHttpRequestTrailers(numTrailers int) Action
	OnHttpResponseHeaders(numHeaders int, endOfStream bool) Action
	OnHttpResponseBody(bodySize int, endOfStream bool) Action
	OnHttpResponseTrailers(numTrailers int) Action
	// OnHttpStreamDone is called once when the stream ends, whatever the
	// reason (completion, reset, client abort).
	OnHttpStreamDone()
	// OnHttpStreamDeleted is called when the host deleted the context
	// (proxy_on_delete, after OnHttpStreamDone): no callback of the stream
	// comes after it, so its memory may be reused. Not called after a
	// panic in one of the stream's callbacks. (A method of the interface,
	// not an optional one found by a type assertion: on wasm each such
	// assertion runs the runtime's itab lookup.)
	OnHttpStreamDeleted()
}

// DefaultVMContext implements VMContext with no-ops; embed it.
type DefaultVMContext struct{}

func (DefaultVMContext) OnVMStart(int) OnVMStartStatus         { return OnVMStartStatusOK }
func (DefaultVMContext) NewPluginContext(uint32) PluginContext { return &DefaultPluginContext{} }

// DefaultPluginContext implements PluginContext with no-ops; embed it.
type DefaultPluginContext struct{}

func (DefaultPluginContext) OnPluginStart(int) OnPluginStartStatus { return OnPluginStartStatusOK }
func (DefaultPluginContext) OnPluginDone() bool                    { return true }
func (DefaultPluginContext) OnQueueReady(uint32)                   {}
func (DefaultPluginContext) OnTick()                               {}
func (DefaultPluginContext) NewHttpContext(uint32) HttpContext     { return nil }

// DefaultHttpContext implements HttpContext by continuing everything; embed it.
type DefaultHttpContext struct{}

func (DefaultHttpContext) OnHttpRequestHeaders(int, bool) Action  { return ActionContinue }
func (DefaultHttpContext) OnHttpRequestBody(int, bool) Action     { return ActionContinue }
func (DefaultHttpContext) OnHttpRequestTrailers(int) Action       { return ActionContinue }
func (DefaultHttpContext) OnHttpResponseHeaders(int, bool) Action { return ActionContinue }
func (DefaultHttpContext) OnHttpResponseBody(int, bool) Action    { return ActionContinue }
func (DefaultHttpContext) OnHttpResponseTrailers(int) Action      { return ActionContinue }
func (DefaultHttpContext) OnHttpStreamDone()                      {}
func (DefaultHttpContext) OnHttpStreamDeleted()                   {}

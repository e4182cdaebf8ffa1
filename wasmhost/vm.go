package wasmhost

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/api"
)

type vmKey struct{}

// vm is one plugin instance on one simulated Envoy thread. Every field below
// mu is guarded by mu, which is held for the whole of each call into the
// guest, so host functions (running on that goroutine) touch them freely.
type vm struct {
	h      *Host
	index  int // worker index, MainVM or canaryVM
	thread int // the thread whose dispatcher receives its posts
	name   string
	ctx    context.Context

	mu      sync.Mutex
	mod     api.Module
	mem     api.Memory
	exports map[string]api.Function
	alloc   api.Function

	nextContextID uint32
	contexts      map[uint32]*vmContext
	streams       map[uint32]*stream // verb-driven streams, kept for inspection after they end
	root          *vmContext
	vmContext     *vmContext // id 0, current during allocation calls
	current       *vmContext
	effective     uint32
	tempPlugin    bool // plugin configuration visible (on_context_create/on_configure of the root)

	allowed         map[string]bool // restricted callbacks; nil = all allowed
	restrictedPhase string

	after         []func() // cpp-host after_vm_call_actions_
	deferred      []func() // dispatcher deferred deletes: run when the current event ends
	stopIteration bool     // cpp-host stop_iteration_
	outbox        []func() // work to run after the lock is released (handlers)

	failed  bool
	failErr error
	dead    bool // killed (canary) or closed
	polls   int  // poll_oneoff calls in the current top-level call

	tickPeriod time.Duration
	tickNext   int64

	metricIDs  map[uint32]metricRef
	nextMetric [3]uint32

	nextHTTPCall uint32
	httpCalls    map[uint32]*HTTPCall
}

// vmContext is a cpp-host ContextBase: the root (plugin) context or one HTTP
// stream context.
type vmContext struct {
	id      uint32
	parent  uint32 // root context id for streams, 0 for the root
	created bool   // in_vm_context_created_
	s       *stream

	// Root context only.
	httpResp    *httpCallResponse // during proxy_on_http_call_response
	statusCode  uint32
	statusMsg   string
	pendingDone bool
}

func (c *vmContext) isRoot() bool { return c.parent == 0 && c.id != 0 }

func (h *Host) newVM(index int) (*vm, error) {
	v := &vm{
		h:             h,
		index:         index,
		thread:        index,
		nextContextID: 1, // 0 is the VM context (cpp-host next_context_id_ = 1)
		contexts:      map[uint32]*vmContext{},
		streams:       map[uint32]*stream{},
		vmContext:     &vmContext{},
		metricIDs:     map[uint32]metricRef{},
		nextMetric:    [3]uint32{uint32(MetricCounter), uint32(MetricGauge), uint32(MetricHistogram)},
		httpCalls:     map[uint32]*HTTPCall{},
	}
	switch index {
	case canaryVM:
		v.name, v.thread = "canary", MainVM
	case MainVM:
		v.name = "main"
	default:
		v.name = fmt.Sprintf("worker-%d", index)
	}
	v.ctx = context.WithValue(h.ctx, vmKey{}, v)
	mod, err := h.mod.rt.InstantiateModule(v.ctx, h.mod.compiled,
		wazero.NewModuleConfig().WithName("").WithStartFunctions())
	if err != nil {
		return nil, fmt.Errorf("wasmhost: instantiate %s VM: %w", v.name, err)
	}
	v.mod = mod
	v.mem = mod.ExportedMemory("memory")
	v.exports = map[string]api.Function{}
	for name := range callbackSigs {
		if f := mod.ExportedFunction(name); f != nil {
			v.exports[name] = f
		}
	}
	for _, name := range []string{"main", "__main_void", "_start"} {
		if f := mod.ExportedFunction(name); f != nil {
			v.exports[name] = f
		}
	}
	// cpp-host prefers malloc and falls back to proxy_on_memory_allocate.
	v.alloc = v.exports["malloc"]
	if v.alloc == nil {
		v.alloc = v.exports["proxy_on_memory_allocate"]
	}
	return v, nil
}

// Allow-lists of cpp-host: host functions a module may call during
// _initialize (WasmBase::startVm) and during proxy_on_memory_allocate
// (WasmBase::allocMemory). Anything else traps with "restricted_callback".
var (
	initAllowed   = map[string]bool{"env.proxy_log": true, "env.emscripten_notify_memory_growth": true}
	mallocAllowed = map[string]bool{"env.proxy_log": true}
)

func init() {
	for _, m := range []string{"wasi_snapshot_preview1", "wasi_unstable"} {
		for _, f := range []string{"fd_write", "args_sizes_get", "args_get", "environ_sizes_get",
			"environ_get", "clock_time_get", "clock_res_get", "random_get", "poll_oneoff",
			"fd_fdstat_get", "fd_fdstat_set_flags", "fd_advise", "fd_allocate", "fd_datasync",
			"fd_fdstat_set_rights", "fd_filestat_get", "fd_filestat_set_size", "fd_filestat_set_times",
			"fd_pread", "fd_prestat_dir_name", "fd_prestat_get", "fd_pwrite", "fd_readdir",
			"fd_renumber", "fd_sync", "fd_tell", "path_create_directory", "path_filestat_get",
			"path_filestat_set_times", "path_link", "path_readlink", "path_remove_directory",
			"path_rename", "path_symlink", "path_unlink_file", "sock_accept", "sock_recv",
			"sock_send", "sock_shutdown"} {
			initAllowed[m+"."+f] = true
		}
		for _, f := range []string{"fd_write", "clock_time_get", "poll_oneoff"} {
			mallocAllowed[m+"."+f] = true
		}
	}
}

// start runs _initialize (restricted) and then the root context's
// on_context_create, on_vm_start and on_configure, as WasmBase::initialize,
// WasmBase::start and WasmBase::configure do. Caller holds v.mu.
func (v *vm) start() error {
	v.allowed, v.restrictedPhase = initAllowed, "_initialize"
	if f := v.exports["_initialize"]; f != nil {
		v.rawCall(v.vmContext, "_initialize")
		if !v.failed {
			if v.exports["main"] != nil {
				v.rawCall(v.vmContext, "main", 0, 0)
			} else if v.exports["__main_void"] != nil {
				v.rawCall(v.vmContext, "__main_void")
			}
		}
	} else if v.exports["_start"] != nil {
		v.rawCall(v.vmContext, "_start")
	}
	v.allowed, v.restrictedPhase = nil, ""
	if v.failed {
		return fmt.Errorf("initialization failed: %v", v.failErr)
	}

	root := v.newContext(0)
	v.root = root
	// ContextBase::onStart: on_context_create sees the plugin, on_vm_start
	// deliberately does not ("independent of the plugin").
	v.tempPlugin = true
	v.invoke(root, "proxy_on_context_create", uint64(root.id), 0)
	root.created = true
	v.tempPlugin = false
	if r, ok := v.invoke(root, "proxy_on_vm_start", uint64(root.id), uint64(len(v.h.cfg.VMConfig))); v.failed {
		return fmt.Errorf("proxy_on_vm_start failed: %v", v.failErr)
	} else if ok && r == 0 {
		return errors.New("Failed to start base Wasm: proxy_on_vm_start returned false")
	}
	v.h.configureCalls.Add(1)
	v.tempPlugin = true
	r, ok := v.invoke(root, "proxy_on_configure", uint64(root.id), uint64(len(v.h.cfg.PluginConfig)))
	v.tempPlugin = false
	if v.failed {
		return fmt.Errorf("proxy_on_configure failed: %v", v.failErr)
	}
	if ok && r == 0 {
		return errors.New("Failed to configure base Wasm plugin: proxy_on_configure returned false")
	}
	return nil
}

func (v *vm) newContext(parent uint32) *vmContext {
	c := &vmContext{id: v.nextContextID, parent: parent}
	v.nextContextID++
	v.contexts[c.id] = c
	return c
}

// kill ends the VM like an Envoy VM handle going away: its timer stops, its
// outstanding HTTP calls are cancelled, nothing more is delivered to it.
// Caller holds v.mu (or owns v exclusively).
func (v *vm) kill() {
	if v.dead {
		return
	}
	v.dead = true
	v.tickPeriod = 0
	for _, c := range v.httpCalls {
		v.h.forgetHTTPCall(c)
	}
	v.httpCalls = map[uint32]*HTTPCall{}
	_ = v.mod.Close(v.ctx)
}

// rawCall calls an export with the current context set and the effective
// context cleared, restoring both afterwards (cpp-host SaveRestoreContext).
// A trap or proc_exit marks the VM failed. Caller holds v.mu.
func (v *vm) rawCall(c *vmContext, name string, args ...uint64) (uint64, bool) {
	fn := v.exports[name]
	if fn == nil || v.failed || v.dead {
		return 0, false
	}
	savedCur, savedEff := v.current, v.effective
	v.current, v.effective = c, 0
	outer := v.polls
	v.polls = 0
	res, err := fn.Call(v.ctx, args...)
	v.polls = outer
	v.current, v.effective = savedCur, savedEff
	if err != nil {
		v.fail(name, err)
		return 0, false
	}
	if len(res) > 0 {
		return res[0], true
	}
	return 0, true
}

// invoke is one host→VM callback (a ContextBase::onX): rawCall, then
// (DeferAfterCallActions) clear the stop flag and run the after-VM-call
// actions such as a deferred continue or local reply. ok is false when the
// callback is not exported or the VM failed. Caller holds v.mu.
func (v *vm) invoke(c *vmContext, name string, args ...uint64) (res uint64, ok bool) {
	res, ok = v.rawCall(c, name, args...)
	v.stopIteration = false
	v.runAfter()
	return res, ok
}

// invokeFilter is invoke for HTTP filter callbacks: it also reports whether
// the plugin forced "stop" (proxy_send_local_response), which cpp-host
// reads before DeferAfterCallActions clears it.
func (v *vm) invokeFilter(c *vmContext, name string, args ...uint64) (res uint64, ok, stopped bool) {
	res, ok = v.rawCall(c, name, args...)
	stopped = v.stopIteration
	v.stopIteration = false
	v.runAfter()
	return res, ok, stopped
}

func (v *vm) runAfter() {
	for len(v.after) > 0 {
		f := v.after[0]
		v.after = v.after[1:]
		f()
	}
}

func (v *vm) addAfter(f func()) { v.after = append(v.after, f) }

// addDeferred schedules work for the end of the current dispatcher event,
// like Envoy's deferredDelete of a finished stream.
func (v *vm) addDeferred(f func()) { v.deferred = append(v.deferred, f) }

func (v *vm) runDeferred() {
	for len(v.deferred) > 0 {
		f := v.deferred[0]
		v.deferred = v.deferred[1:]
		f()
	}
}

func (v *vm) takeOutbox() []func() {
	out := v.outbox
	v.outbox = nil
	return out
}

func (v *vm) fail(name string, err error) {
	if v.failed {
		return
	}
	v.failed = true
	var exit *ExitError
	var trap *trapError
	msg := err.Error()
	switch {
	case errors.As(err, &exit):
		msg = exit.Error()
	case errors.As(err, &trap):
		msg = trap.Error()
	}
	if i := strings.Index(msg, "\nwasm stack trace"); i >= 0 {
		msg = msg[:i]
	}
	v.failErr = fmt.Errorf("%w: Function: %s failed: %s", ErrVMFailed, name, msg)
	v.h.log(v.name, LogCritical, v.failErr.Error())
}

// contextOrEffective is cpp-host's contextOrEffectiveContext(): the
// effective context if one was set and still exists, else the current one.
func (v *vm) contextOrEffective() *vmContext {
	if v.effective != 0 {
		if c := v.contexts[v.effective]; c != nil {
			return c
		}
	}
	if v.current == nil {
		return v.vmContext
	}
	return v.current
}

func (v *vm) rootOf(c *vmContext) *vmContext {
	if c.isRoot() || c.id == 0 {
		if c.id == 0 && v.root != nil {
			return v.root
		}
		return c
	}
	if r := v.contexts[c.parent]; r != nil {
		return r
	}
	return v.root
}

// --- guest memory ---

func (v *vm) read(ptr, size uint32) ([]byte, bool) {
	b, ok := v.mem.Read(ptr, size)
	if !ok {
		return nil, false
	}
	return append([]byte(nil), b...), true
}

func (v *vm) readString(ptr, size uint32) (string, bool) {
	b, ok := v.mem.Read(ptr, size)
	if !ok {
		return "", false
	}
	return string(b), true
}

func (v *vm) writeU32(ptr, val uint32) bool { return v.mem.WriteUint32Le(ptr, val) }
func (v *vm) writeU64(ptr uint32, val uint64) bool {
	return v.mem.WriteUint64Le(ptr, val)
}

// allocate calls the guest allocator with the restricted allow-list of
// WasmBase::allocMemory and the VM context current. A trap inside it aborts
// the outer call too.
func (v *vm) allocate(size uint32) (uint32, bool) {
	if v.alloc == nil {
		return 0, false
	}
	savedAllowed, savedPhase := v.allowed, v.restrictedPhase
	v.allowed, v.restrictedPhase = mallocAllowed, "proxy_on_memory_allocate"
	savedCur, savedEff := v.current, v.effective
	v.current, v.effective = v.vmContext, 0
	v.h.allocateCalls.Add(1)
	res, err := v.alloc.Call(v.ctx, uint64(size))
	v.current, v.effective = savedCur, savedEff
	v.allowed, v.restrictedPhase = savedAllowed, savedPhase
	if err != nil {
		panic(err) // the VM is corrupt: abort the host call that allocated
	}
	ptr := uint32(res[0])
	if ptr == 0 {
		return 0, false
	}
	if _, ok := v.mem.Read(ptr, size); !ok {
		return 0, false
	}
	return ptr, true
}

// copyOut is WasmBase::copyToPointerSize: data goes into guest memory from
// the guest's allocator and (pointer, size) into the two out slots; empty
// data writes 0/0 without calling the allocator.
func (v *vm) copyOut(data []byte, ptrPtr, sizePtr uint32) Status {
	var ptr uint32
	if len(data) > 0 {
		p, ok := v.allocate(uint32(len(data)))
		if !ok {
			return StatusInvalidMemoryAccess
		}
		if !v.mem.Write(p, data) {
			return StatusInvalidMemoryAccess
		}
		ptr = p
	}
	if !v.writeU32(ptrPtr, ptr) || !v.writeU32(sizePtr, uint32(len(data))) {
		return StatusInvalidMemoryAccess
	}
	return StatusOK
}

// --- ticks ---

// setTick is Wasm::setTimerPeriod: setting any period re-arms the timer one
// period from now; 0 disables it.
func (v *vm) setTick(ms uint32) {
	if v.dead {
		return
	}
	v.tickPeriod = time.Duration(ms) * time.Millisecond
	v.tickNext = v.h.clock.Nanotime() + int64(v.tickPeriod)
}

func (v *vm) tick() bool {
	if v.tickPeriod <= 0 || v.failed || v.root == nil {
		return false
	}
	v.invoke(v.root, "proxy_on_tick", uint64(v.root.id))
	return true
}

package wasmhost

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Config describes one simulated Envoy process running the plugin.
type Config struct {
	// Workers is the number of worker-thread VMs (Envoy --concurrency);
	// default 2. A main-thread VM is always added, as Envoy does.
	Workers int
	// VMID is the vm_id: the namespace of shared data and shared queues.
	// Default "modelcache".
	VMID string
	// SharedData is in the vm_id's shared data before any VM starts, as
	// an earlier configuration of the same process left it.
	SharedData map[string][]byte
	// RootID is the plugin's root_id (property plugin_root_id).
	RootID string
	// PluginName is the plugin's name (property plugin_name); default "modelcache".
	PluginName string
	// PluginConfig is served as buffer PLUGIN_CONFIGURATION (7) during
	// proxy_on_configure only, as in Envoy.
	PluginConfig []byte
	// VMConfig is served as buffer VM_CONFIGURATION (6).
	VMConfig []byte
	// Env is the WASI environment (vm_config.environment_variables).
	Env map[string]string
	// Clock defaults to a FakeClock at DefaultFakeTime.
	Clock Clock
	// Rand answers WASI random_get; default a deterministic seeded source.
	Rand io.Reader
	// Clusters are the cluster names proxy_http_call accepts.
	Clusters []string
	// HTTPCall receives every dispatched proxy_http_call. It runs on the
	// goroutine that drove the VM, after the VM call returned and with no
	// lock held; it may answer at once or keep the call to answer later.
	HTTPCall func(call *HTTPCall)
	// Upstream is the fake router target of exchanges (StartExchange). It
	// runs like HTTPCall: after the VM call, without locks.
	Upstream func(req *UpstreamRequest)
	// Log, if set, also receives every log line (from any goroutine, while
	// the emitting VM is locked: it must not call back into the Host).
	Log func(vm string, level LogLevel, msg string)
	// LogLevel is what proxy_get_log_level answers (default LogTrace, so a
	// plugin logs everything in tests).
	LogLevel LogLevel
	// Properties answer proxy_get_property. Keys are property paths with
	// segments joined by NUL bytes, exactly as plugins send them; build them
	// with Path("request", "headers", "x-foo").
	Properties map[string][]byte
	// AllowOnHeadersStopIteration mirrors Envoy's PluginConfig
	// allow_on_headers_stop_iteration (default false). When false, Envoy
	// turns a Pause from on_*_headers into StopAllIterationAndWatermark: the
	// body is buffered by Envoy and on_*_body is not called until the
	// plugin resumes the stream. When true, Pause is StopIteration and the
	// plugin sees body chunks while the headers are held.
	AllowOnHeadersStopIteration bool
	// FailOpen mirrors failure_policy FAIL_OPEN: streams on a failed VM
	// pass through untouched instead of getting a 503 local reply.
	FailOpen bool
	// BufferLimit is the per-stream buffer limit for bodies held with
	// StopIterationAndBuffer (Envoy per_connection_buffer_limit_bytes);
	// 0 means Envoy's default 1 MiB, negative means unlimited.
	BufferLimit int
	// ManualDrain stops the test verbs from delivering posted events
	// (queue-ready, HTTP-call and upstream responses) after each call; the
	// test then calls Drain or DrainVM itself.
	ManualDrain bool
	// FailHostCall, if set, is consulted before every "env" host function
	// (proxy_*) a VM calls. When it returns ok, the call does nothing
	// (writes no out-parameter) and returns status to the plugin: fault
	// injection. It runs while the VM is locked: it must not call back
	// into the Host.
	FailHostCall func(c HostCall) (status Status, ok bool)
}

// HostCall describes one host function call, for Config.FailHostCall.
type HostCall struct {
	VM   int      // the calling VM's index: MainVM or a worker's
	Name string   // the import's name, such as "proxy_set_shared_data"
	Args []uint64 // the raw wasm arguments: i32s in the low 32 bits (uint32(Args[0]): a buffer or map type)
	Key  string   // proxy_get_shared_data / proxy_set_shared_data: the key
}

// LogLine is one line a VM logged (proxy_log, or stdout/stderr via fd_write,
// or a host message about the VM such as a trap).
type LogLine struct {
	VM    string
	Level LogLevel
	Msg   string
}

func (l LogLine) String() string { return fmt.Sprintf("[%s] %s: %s", l.VM, l.Level, l.Msg) }

// Host is one simulated Envoy process: a main-thread VM and Workers worker
// VMs of one plugin sharing a vm_id. Each VM may be driven from its own
// goroutine; calls into one VM are serialised by its mutex, shared data and
// queues by theirs, as on Envoy's threads.
type Host struct {
	cfg     Config
	mod     *Module
	ctx     context.Context
	clock   Clock
	rand    io.Reader
	workers []*vm
	main    *vm
	boxes   map[int]*mailbox // per thread (MainVM, 0..Workers-1)

	shared  *sharedData
	queues  *sharedQueues
	metrics *metrics

	logMu sync.Mutex
	logs  []LogLine

	calls map[string]*atomic.Uint64

	pendMu   sync.Mutex
	httpPend []*HTTPCall
	upPend   []*UpstreamRequest

	configureCalls atomic.Int64
	allocateCalls  atomic.Uint64
	closed         atomic.Bool
}

// Path joins property path segments the way plugins pass them to
// proxy_get_property: with NUL bytes.
func Path(segments ...string) string { return strings.Join(segments, "\x00") }

// New starts the plugin the way Envoy does for one HTTP filter config:
// first a throw-away canary VM runs _initialize, root context creation,
// proxy_on_vm_start and proxy_on_configure (cpp-host
// WasmHandleBase::canary); if either returns false, New fails with the
// plugin's log. The canary is then killed: its tick timer and in-flight HTTP
// calls die with it, its shared-data writes stay. Then the main-thread VM and
// each worker VM are started the same way.
func New(ctx context.Context, mod *Module, cfg Config) (*Host, error) {
	if cfg.Workers <= 0 {
		cfg.Workers = 2
	}
	if cfg.VMID == "" {
		cfg.VMID = "modelcache"
	}
	if cfg.PluginName == "" {
		cfg.PluginName = "modelcache"
	}
	if cfg.BufferLimit == 0 {
		cfg.BufferLimit = 1 << 20
	}
	h := &Host{
		cfg:     cfg,
		mod:     mod,
		ctx:     context.WithoutCancel(ctx),
		clock:   cfg.Clock,
		shared:  newSharedData(),
		queues:  newSharedQueues(),
		metrics: newMetrics(),
		boxes:   map[int]*mailbox{MainVM: {}},
		calls:   map[string]*atomic.Uint64{},
	}
	if h.clock == nil {
		h.clock = NewFakeClock(time.Time{})
	}
	r := cfg.Rand
	if r == nil {
		r = newDefaultRand()
	}
	h.rand = &lockedReader{r: r}
	for name := range hostFuncs() {
		h.calls[name] = new(atomic.Uint64)
	}
	for i := 0; i < cfg.Workers; i++ {
		h.boxes[i] = &mailbox{}
	}
	for k, v := range cfg.SharedData {
		h.shared.set(cfg.VMID, k, v, 0)
	}

	canary, err := h.startVM(canaryVM)
	if canary != nil {
		canary.kill()
	}
	if err != nil {
		return nil, err
	}
	main, err := h.startVM(MainVM)
	if err != nil {
		if main != nil {
			main.kill()
		}
		return nil, err
	}
	h.main = main
	for i := 0; i < cfg.Workers; i++ {
		w, err := h.startVM(i)
		if err != nil {
			if w != nil {
				w.kill()
			}
			h.Close()
			return nil, err
		}
		h.workers = append(h.workers, w)
	}
	if !cfg.ManualDrain {
		h.Drain()
	}
	return h, nil
}

// startVM creates one VM and runs it up to a configured root context.
func (h *Host) startVM(index int) (*vm, error) {
	v, err := h.newVM(index)
	if err != nil {
		return nil, err
	}
	v.mu.Lock()
	err = v.start()
	out := v.takeOutbox()
	v.mu.Unlock()
	runAll(out)
	if err != nil {
		return v, fmt.Errorf("wasmhost: %s VM: %w%s", v.name, err, h.logTail(v.name))
	}
	return v, nil
}

func (h *Host) logTail(vmName string) string {
	var b strings.Builder
	for _, l := range h.Logs() {
		if l.VM == vmName {
			b.WriteString("\n  ")
			b.WriteString(l.String())
		}
	}
	if b.Len() == 0 {
		return " (the plugin logged nothing)"
	}
	return "; plugin log:" + b.String()
}

// Close shuts every VM down: like WasmBase::startShutdown it calls
// proxy_on_done on each root context and proxy_on_delete when that returns
// true, then releases the instances. The Module stays usable.
func (h *Host) Close() {
	if h.closed.Swap(true) {
		return
	}
	for _, v := range h.allVMs() {
		v.mu.Lock()
		if !v.failed && v.root != nil {
			if r, ok := v.invoke(v.root, "proxy_on_done", uint64(v.root.id)); !ok || r != 0 {
				v.invoke(v.root, "proxy_on_delete", uint64(v.root.id))
			}
		}
		v.kill()
		v.mu.Unlock()
	}
}

func (h *Host) allVMs() []*vm {
	var out []*vm
	if h.main != nil {
		out = append(out, h.main)
	}
	return append(out, h.workers...)
}

// vmOnThread is the live VM of a thread (getThreadLocalWasm), or nil.
func (h *Host) vmOnThread(thread int) *vm {
	if thread == MainVM {
		return h.main
	}
	if thread >= 0 && thread < len(h.workers) {
		return h.workers[thread]
	}
	return nil
}

func (h *Host) vm(i int) *vm {
	v := h.vmOnThread(i)
	if v == nil {
		panic(fmt.Sprintf("wasmhost: no VM %d (workers are 0..%d, MainVM is %d)", i, len(h.workers)-1, MainVM))
	}
	return v
}

// Workers is the number of worker VMs.
func (h *Host) Workers() int { return len(h.workers) }

// MemoryBytes is the size of VM i's linear memory. A wasm memory only
// grows: what a guest once needed it keeps until the VM is replaced.
func (h *Host) MemoryBytes(i int) uint64 {
	v := h.vm(i)
	v.mu.Lock()
	defer v.mu.Unlock()
	return uint64(v.mem.Size())
}

// Clock is the host's clock.
func (h *Host) Clock() Clock { return h.clock }

// ConfigureCalls counts proxy_on_configure calls, canary included.
func (h *Host) ConfigureCalls() int { return int(h.configureCalls.Load()) }

// AllocateCalls counts the host's calls into the guests' allocator to
// return data (WasmBase::allocMemory's): one per non-empty value handed
// out, none for an absent or empty one. Each is an entry into the module
// that Envoy makes too, and no import counts it.
func (h *Host) AllocateCalls() uint64 { return h.allocateCalls.Load() }

// HostCallCount is how many times the guests called an import, by qualified
// name ("env.proxy_log", "wasi_snapshot_preview1.poll_oneoff").
func (h *Host) HostCallCount(name string) uint64 {
	if c := h.calls[name]; c != nil {
		return c.Load()
	}
	return 0
}

func (h *Host) countCall(name string) {
	if c := h.calls[name]; c != nil {
		c.Add(1)
	}
}

// FailedVMs lists the VMs that trapped or exited, with the error.
func (h *Host) FailedVMs() map[string]error {
	out := map[string]error{}
	for _, v := range h.allVMs() {
		v.mu.Lock()
		if v.failed {
			out[v.name] = v.failErr
		}
		v.mu.Unlock()
	}
	return out
}

// --- logs ---

func (h *Host) log(vmName string, level LogLevel, msg string) {
	h.logMu.Lock()
	h.logs = append(h.logs, LogLine{VM: vmName, Level: level, Msg: msg})
	h.logMu.Unlock()
	if h.cfg.Log != nil {
		h.cfg.Log(vmName, level, msg)
	}
}

// Logs returns every line logged so far, in order.
func (h *Host) Logs() []LogLine {
	h.logMu.Lock()
	defer h.logMu.Unlock()
	return append([]LogLine(nil), h.logs...)
}

// LogsContaining returns the lines whose message contains substr.
func (h *Host) LogsContaining(substr string) []LogLine {
	var out []LogLine
	for _, l := range h.Logs() {
		if strings.Contains(l.Msg, substr) {
			out = append(out, l)
		}
	}
	return out
}

// --- shared data, queues, metrics accessors ---

// SharedData reads a shared-data key of the host's vm_id.
func (h *Host) SharedData(key string) ([]byte, uint32, bool) {
	v, cas, st := h.shared.get(h.cfg.VMID, key)
	return append([]byte(nil), v...), cas, st == StatusOK
}

// SetSharedData writes like proxy_set_shared_data from outside any VM.
func (h *Host) SetSharedData(key string, value []byte, cas uint32) Status {
	return h.shared.set(h.cfg.VMID, key, value, cas)
}

// SharedDataKeys lists the keys of the host's vm_id, sorted.
func (h *Host) SharedDataKeys() []string { return h.shared.keys(h.cfg.VMID) }

// SharedDataBytes is the sum of key and value sizes of the host's vm_id.
func (h *Host) SharedDataBytes() int { return h.shared.bytes(h.cfg.VMID) }

// QueueLength is how many items wait in the queue registered as name.
func (h *Host) QueueLength(name string) int {
	tok, ok := h.queues.resolve(h.cfg.VMID, name)
	if !ok {
		return 0
	}
	return h.queues.length(tok)
}

// Counter reads a counter by the name the plugin defined.
func (h *Host) Counter(name string) (uint64, bool) {
	h.metrics.mu.Lock()
	defer h.metrics.mu.Unlock()
	v, ok := h.metrics.counters[name]
	return v, ok
}

// Gauge reads a gauge by the name the plugin defined.
func (h *Host) Gauge(name string) (int64, bool) {
	h.metrics.mu.Lock()
	defer h.metrics.mu.Unlock()
	v, ok := h.metrics.gauges[name]
	return v, ok
}

// Histogram returns every value recorded into a histogram.
func (h *Host) Histogram(name string) []uint64 {
	h.metrics.mu.Lock()
	defer h.metrics.mu.Unlock()
	return append([]uint64(nil), h.metrics.histograms[name]...)
}

// MetricNames lists every defined metric name, sorted.
func (h *Host) MetricNames() []string {
	h.metrics.mu.Lock()
	defer h.metrics.mu.Unlock()
	var out []string
	for n := range h.metrics.counters {
		out = append(out, n)
	}
	for n := range h.metrics.gauges {
		out = append(out, n)
	}
	for n := range h.metrics.histograms {
		out = append(out, n)
	}
	sort.Strings(out)
	return out
}

// --- event delivery ---

// mailbox is one thread's dispatcher queue: everything Envoy would
// dispatcher.post() to that thread (queue-ready, HTTP-call responses,
// upstream events) waits here until Drain delivers it, after the call that
// posted it has returned — never re-entrantly.
type mailbox struct {
	mu     sync.Mutex
	events []func(v *vm)
}

func (h *Host) post(thread int, ev func(v *vm)) {
	b := h.boxes[thread]
	if b == nil {
		return
	}
	b.mu.Lock()
	b.events = append(b.events, ev)
	b.mu.Unlock()
}

// drainLimit stops a plugin that keeps posting events to itself (for
// example by enqueueing from proxy_on_queue_ready) from hanging a test.
const drainLimit = 1_000_000

func (h *Host) drainOne(thread int) bool {
	b := h.boxes[thread]
	b.mu.Lock()
	if len(b.events) == 0 {
		b.mu.Unlock()
		return false
	}
	ev := b.events[0]
	b.events[0] = nil
	b.events = b.events[1:]
	b.mu.Unlock()
	v := h.vmOnThread(thread)
	if v == nil {
		return true // posted before the thread's VM existed or after it died
	}
	v.run(ev)
	return true
}

// Drain delivers posted events on every VM until none are left.
func (h *Host) Drain() {
	threads := h.threads()
	for n := 0; ; {
		progressed := false
		for _, t := range threads {
			for h.drainOne(t) {
				progressed = true
				if n++; n > drainLimit {
					panic("wasmhost: Drain delivered a million events; the plugin keeps posting to itself")
				}
			}
		}
		if !progressed {
			return
		}
	}
}

// DrainVM delivers the events posted to one VM (MainVM or a worker index)
// until its mailbox is empty. Hammer tests call it from the goroutine that
// drives that VM.
func (h *Host) DrainVM(i int) {
	h.vm(i)
	for n := 0; h.drainOne(i); n++ {
		if n > drainLimit {
			panic("wasmhost: DrainVM delivered a million events")
		}
	}
}

// Pending reports whether any mailbox holds undelivered events.
func (h *Host) Pending() bool {
	for _, b := range h.boxes {
		b.mu.Lock()
		n := len(b.events)
		b.mu.Unlock()
		if n > 0 {
			return true
		}
	}
	return false
}

// run is one top-level callback on v: fn with the VM's lock held and its
// deferred continues and replies applied, then, outside the lock, the work
// it handed to Go handlers.
func (v *vm) run(fn func(v *vm)) {
	v.mu.Lock()
	if !v.dead {
		fn(v)
		v.runDeferred()
	}
	out := v.takeOutbox()
	v.mu.Unlock()
	runAll(out)
}

func (h *Host) threads() []int {
	t := []int{MainVM}
	for i := range h.workers {
		t = append(t, i)
	}
	return t
}

// do runs fn on VM i with its lock held (one top-level dispatcher callback),
// then runs the out-of-VM work it produced (handlers) and, unless
// ManualDrain, drains every mailbox.
func (h *Host) do(i int, fn func(v *vm)) {
	h.vm(i).run(fn)
	if !h.cfg.ManualDrain {
		h.Drain()
	}
}

func runAll(fs []func()) {
	for _, f := range fs {
		f()
	}
}

// --- ticks ---

// Tick calls proxy_on_tick on VM i (MainVM or a worker) if its root context
// set a tick period, and reports whether it did.
func (h *Host) Tick(i int) bool {
	ticked := false
	h.do(i, func(v *vm) { ticked = v.tick() })
	return ticked
}

// TickAll ticks the main-thread VM and every worker, in that order.
func (h *Host) TickAll() {
	for _, t := range h.threads() {
		h.Tick(t)
	}
}

// TickPeriod is the tick period VM i's root context set (0 = none).
func (h *Host) TickPeriod(i int) time.Duration {
	v := h.vm(i)
	v.mu.Lock()
	defer v.mu.Unlock()
	return v.tickPeriod
}

// AdvanceAndTick moves the FakeClock forward by d in steps, firing every
// timer that falls due on the way in time order, like each thread's
// dispatcher would: tick timers (re-armed one period after each firing) and
// HTTP-call timeouts. Posted events are drained after each firing unless
// ManualDrain. It panics if the Clock is not a *FakeClock.
func (h *Host) AdvanceAndTick(d time.Duration) {
	fc, ok := h.clock.(*FakeClock)
	if !ok {
		panic("wasmhost: AdvanceAndTick needs Config.Clock to be a *FakeClock")
	}
	target := fc.Nanotime() + int64(d)
	for {
		next, fire := h.nextTimer(target)
		if fire == nil {
			break
		}
		if now := fc.Nanotime(); next > now {
			fc.Advance(time.Duration(next - now))
		}
		fire()
	}
	if now := fc.Nanotime(); target > now {
		fc.Advance(time.Duration(target - now))
	}
}

// nextTimer finds the earliest timer due at or before limit.
func (h *Host) nextTimer(limit int64) (int64, func()) {
	best := int64(-1)
	var fire func()
	consider := func(at int64, f func()) {
		if at <= limit && (best < 0 || at < best) {
			best, fire = at, f
		}
	}
	for _, t := range h.threads() {
		v := h.vmOnThread(t)
		v.mu.Lock()
		if v.tickPeriod > 0 && !v.failed {
			t := t
			at := v.tickNext
			consider(at, func() {
				h.do(t, func(v *vm) {
					if v.tickPeriod > 0 && v.tickNext == at {
						// Envoy re-arms the timer one period after it
						// fired; an overdue timer fires once, not once per
						// missed period.
						v.tickNext = h.clock.Nanotime() + int64(v.tickPeriod)
						v.tick()
					}
				})
			})
		}
		v.mu.Unlock()
	}
	for _, c := range h.PendingHTTPCalls() {
		if c.Timeout > 0 {
			c := c
			consider(c.started+int64(c.Timeout), func() { c.timeout() })
		}
	}
	return best, fire
}

// --- errors ---

// trapError aborts a guest call from inside a host function (restricted
// callback, memory spin limit); the VM is marked failed.
type trapError struct{ msg string }

func (e *trapError) Error() string { return e.msg }

// ExitError is how a guest's WASI proc_exit surfaces: cpp-host treats it
// as a VM failure.
type ExitError struct{ Code uint32 }

func (e *ExitError) Error() string { return fmt.Sprintf("wasi proc_exit(%d)", e.Code) }

// ErrVMFailed is returned (wrapped) by verbs that target a failed VM.
var ErrVMFailed = errors.New("wasmhost: VM failed")

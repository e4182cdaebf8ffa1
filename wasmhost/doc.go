// Package wasmhost runs a proxy-wasm plugin (ABI v0.2.1) in-process on
// wazero, with the semantics Envoy ≥ 1.39 and proxy-wasm-cpp-host give it,
// so the real modelcache.wasm can be tested deterministically without
// Envoy. Real Envoy (e2e/) then confirms.
//
// # Model
//
// A Host is one Envoy process running one HTTP filter configuration:
//
//   - New first starts a throw-away canary VM (_initialize, root context,
//     proxy_on_vm_start, proxy_on_configure) and fails with the plugin's log
//     if either returns false; then a main-thread VM and Config.Workers
//     worker VMs, all of one vm_id (cpp-host src/wasm.cc
//     WasmHandleBase::canary; Envoy thread_local_impl.cc runs the TLS
//     initialiser on the main thread too). The canary is killed afterwards:
//     its tick timer and HTTP calls die, its shared-data writes stay.
//   - Each VM is one Envoy thread: one call at a time (a mutex), its own
//     context ids (root = 1, streams 2, 3, …; wasm.h next_context_id_ = 1),
//     its own tick timer and metric ids.
//   - Shared data (src/shared_data.cc): one map per vm_id behind a mutex,
//     one 32-bit CAS counter that skips 0; cas 0 is unconditional, a
//     non-zero cas must match an existing entry, a missing key is created
//     whatever the cas, every set gets a fresh cas, and there is no delete
//     (an empty value keeps the key).
//   - Shared queues (src/shared_queue.cc): (vm_id, name) → one token; the
//     last registrant owns the queue and items survive re-registration;
//     each enqueue posts one proxy_on_queue_ready to the owner's thread,
//     which looks up that thread's VM and context at delivery time
//     (getThreadLocalWasm). The canary runs on the main thread, so a queue
//     only the canary registered notifies the main-thread VM's root
//     context — as in Envoy, where the canary shares the main VM's vm_key.
//   - Posted work (queue-ready, HTTP-call responses, upstream frames) goes
//     to the target thread's mailbox and is delivered by Drain/DrainVM after
//     the posting call returned — never re-entrantly (dispatcher.post).
//     After-VM-call actions (deferred continue, local reply) run as soon as
//     the guest call returns, before the host looks at the callback's
//     result (cpp-host DeferAfterCallActions); proxy_send_local_response
//     forces the callback's result to "stop" (stopNextIteration).
//   - The effective context (proxy_set_effective_context) is saved and
//     cleared around every host→VM call (cpp-host SaveRestoreContext).
//   - HTTP streams follow Envoy's filter manager with the plugin as the only
//     filter before the router (source/common/http/filter_manager.cc and
//     source/extensions/common/wasm/context.cc): a Pause from on_*_headers
//     becomes StopAllIterationAndWatermark unless
//     Config.AllowOnHeadersStopIteration (proxy-wasm-cpp-host#143 and #434;
//     Envoy ≥ 1.35 PluginConfig allow_on_headers_stop_iteration) — so by default the
//     plugin does not see the body until it resumes the stream, and then
//     gets the whole buffered body at once; body Pause buffers and the next
//     callback gets the whole buffer; proxy_continue_stream is deferred and
//     drops the request maps at once; a local reply sent before a response
//     exists runs through the plugin's own response callbacks, one sent
//     while response headers are held goes straight to the client, and one
//     sent after headers reached the client resets the stream
//     (DownstreamFilterManager::sendLocalReply); body edits support only
//     prepend, replace-all and append (Envoy Buffer::copyFrom); a failed VM
//     answers 503 "wasm_fail_stream" (or passes through with FailOpen);
//     streams end with proxy_on_log, proxy_on_done, proxy_on_delete.
//   - HTTP calls (Context::httpCall): a known cluster and the :method, :path
//     and :authority headers are required, a timeout above 2^31-1 ms is negative to Envoy
//     (BAD_ARGUMENT), tokens 4, 8, 12, … per VM, always owned by the root
//     context, answered even after the calling stream is gone; a failure is
//     num_headers=0 with proxy_get_status = (11, "reset").
//   - Metrics (Context::defineMetric et al.): per-VM ids with the type in
//     the low two bits, one process-wide stat per name; counters refuse
//     delta ≤ 0, record adds to a counter and sets a gauge, gauges take
//     signed deltas, histograms can be neither incremented nor read.
//   - WASI is the host's own wasi_snapshot_preview1 after cpp-host
//     src/exports.cc (PR #533): stdout/stderr become info/error log lines,
//     poll_oneoff succeeds with zero events (a sleep busy-spins; after 50 000
//     spins in one callback the VM is trapped with an explanation instead of
//     hanging a FakeClock test), no files or sockets, the same errnos as
//     Envoy's stubs, and cpp-host's signatures (path_link and path_symlink
//     included). An import the host does not provide fails Compile, as it
//     fails V8's link step.
//   - Restricted callbacks (WasmBase::startVm, allocMemory): during
//     _initialize and proxy_on_memory_allocate only the allow-listed
//     hostcalls work; any other traps the VM with "restricted_callback".
//   - Variable-size results come from the guest's malloc or
//     proxy_on_memory_allocate; an empty result writes 0/0 without calling
//     it; an allocator returning 0 makes the hostcall INVALID_MEMORY_ACCESS.
//   - A trap, panic or proc_exit marks the VM failed (cpp-host fails the VM;
//     for proc_exit cpp-host only logs and the Go runtime then traps — the
//     end state is the same). A failed VM gets no more callbacks.
//
// Time and randomness are injected (Config.Clock, Config.Rand); the default
// FakeClock and seeded random source make runs reproducible, and
// AdvanceAndTick fires tick timers and HTTP-call timeouts in time order.
//
// # Driving it
//
// Low-level verbs in the style of proxy-wasm-go-sdk's proxytest
// (InitializeHttpContext, CallOnRequestHeaders, …, CompleteHttpContext)
// drive one callback at a time; the Exchange driver (StartExchange,
// Exchange) sends a whole request through the plugin and a fake upstream
// (Config.Upstream, PendingUpstream) and reports what the client received.
// Each VM may be driven from its own goroutine (hammer tests); set
// ManualDrain and call DrainVM from that goroutine to keep event delivery
// on it.
//
// # Not modelled
//
//   - Other filters in the chain, routing, retries, the route cache, gRPC
//     calls and streams (UNIMPLEMENTED), foreign functions (NOT_FOUND), TCP
//     filters, proxy_on_request/response_metadata.
//   - Most of Envoy's CEL attributes: proxy_get_property answers
//     Config.Properties, per-exchange properties, set_property values,
//     plugin_name/plugin_root_id/plugin_vm_id, request.{path,url_path,
//     method,host,scheme,headers.*}, response.{code,code_details,headers.*}.
//     Values are raw bytes (response.code is an 8-byte little-endian int).
//   - Watermark back-pressure: bodies held by a *Watermark status or a
//     StopAll from the headers are unbounded; the buffer limit (413/500)
//     applies to StopIterationAndBuffer only.
//   - Trailers are passed through in a simplified way; local replies for
//     gRPC requests (grpc-status) are recorded but not rendered.
//   - The upstream sees a request when it is complete (the router opens the
//     upstream stream at the headers, which UpstreamContacted reports).
//   - VM reload after failure (FAIL_RELOAD), shutdown with proxy_done, and
//     V8's resource limits other than the 1 GiB memory cap.
//   - The HTTP-call timeout answer (a local 504 "upstream request timeout")
//     is inferred from Envoy's AsyncClient, not observed.
package wasmhost

package wasmhost

import (
	"strconv"
	"time"

	"github.com/tetratelabs/wazero/api"
)

// envFuncs are the proxy-wasm ABI v0.2.1 host functions, module "env", with
// the wasm types cpp-host registers (include/proxy-wasm/exports.h) and the
// behaviour of cpp-host src/exports.cc on top of Envoy's Context
// (source/extensions/common/wasm/context.cc).
func envFuncs() []hostFunc {
	ret := []api.ValueType{i32}
	f := func(name string, params []api.ValueType, fn func(v *vm, s []uint64) Status) hostFunc {
		return hostFunc{module: "env", name: name, params: params, results: ret,
			fn: func(v *vm, s []uint64) {
				if fail := v.h.cfg.FailHostCall; fail != nil {
					c := HostCall{VM: v.index, Name: name, Args: s[:len(params)]}
					if name == "proxy_get_shared_data" || name == "proxy_set_shared_data" {
						c.Key, _ = v.readString(uint32(s[0]), uint32(s[1]))
					}
					if st, ok := fail(c); ok {
						s[0] = uint64(st)
						return
					}
				}
				s[0] = uint64(fn(v, s))
			}}
	}
	u := func(s []uint64, i int) uint32 { return uint32(s[i]) }
	unimplemented := func(*vm, []uint64) Status { return StatusUnimplemented }
	return []hostFunc{
		f("proxy_log", sig(3), func(v *vm, s []uint64) Status {
			if u(s, 0) > uint32(LogCritical) {
				return StatusBadArgument
			}
			msg, ok := v.readString(u(s, 1), u(s, 2))
			if !ok {
				return StatusInvalidMemoryAccess
			}
			v.h.log(v.name, LogLevel(u(s, 0)), msg)
			return StatusOK
		}),
		f("proxy_get_log_level", sig(1), func(v *vm, s []uint64) Status {
			return okIf(v.writeU32(u(s, 0), uint32(v.h.cfg.LogLevel)))
		}),
		f("proxy_get_current_time_nanoseconds", sig(1), func(v *vm, s []uint64) Status {
			return okIf(v.writeU64(u(s, 0), uint64(v.h.clock.Now().UnixNano())))
		}),
		f("proxy_set_tick_period_milliseconds", sig(1), func(v *vm, s []uint64) Status {
			v.setTick(u(s, 0))
			return StatusOK
		}),
		f("proxy_set_effective_context", sig(1), func(v *vm, s []uint64) Status {
			id := u(s, 0)
			if v.contexts[id] == nil {
				return StatusBadArgument
			}
			v.effective = id
			return StatusOK
		}),
		f("proxy_done", nil, func(v *vm, s []uint64) Status {
			root := v.rootOf(v.contextOrEffective())
			if !root.pendingDone {
				return StatusNotFound
			}
			root.pendingDone = false
			v.addAfter(func() { v.rawCall(root, "proxy_on_delete", uint64(root.id)) })
			return StatusOK
		}),
		f("proxy_get_buffer_status", sig(3), func(v *vm, s []uint64) Status {
			if u(s, 0) > uint32(bufferTypeMax) {
				return StatusBadArgument
			}
			b, ok := v.getBuffer(v.contextOrEffective(), BufferType(u(s, 0)))
			if !ok {
				return StatusNotFound
			}
			if !v.writeU32(u(s, 1), uint32(len(b.bytes()))) || !v.writeU32(u(s, 2), 0) {
				return StatusInvalidMemoryAccess
			}
			return StatusOK
		}),
		f("proxy_get_buffer_bytes", sig(5), func(v *vm, s []uint64) Status {
			if u(s, 0) > uint32(bufferTypeMax) {
				return StatusBadArgument
			}
			b, ok := v.getBuffer(v.contextOrEffective(), BufferType(u(s, 0)))
			if !ok {
				return StatusNotFound
			}
			data := b.bytes()
			start, length := uint64(u(s, 1)), uint64(u(s, 2))
			if start > uint64(len(data)) {
				length = 0
			} else if start+length > uint64(len(data)) {
				length = uint64(len(data)) - start
			}
			if length == 0 {
				return okIf(v.writeU32(u(s, 3), 0) && v.writeU32(u(s, 4), 0))
			}
			return v.copyOut(append([]byte(nil), data[start:start+length]...), u(s, 3), u(s, 4))
		}),
		f("proxy_set_buffer_bytes", sig(5), func(v *vm, s []uint64) Status {
			if u(s, 0) > uint32(bufferTypeMax) {
				return StatusBadArgument
			}
			b, ok := v.getBuffer(v.contextOrEffective(), BufferType(u(s, 0)))
			if !ok {
				return StatusNotFound
			}
			data, ok := v.read(u(s, 3), u(s, 4))
			if !ok {
				return StatusInvalidMemoryAccess
			}
			st := b.copyFrom(u(s, 1), u(s, 2), data)
			// A held body is the filter manager's buffer, whose watermark
			// is the stream's buffer limit: grown past it by the plugin,
			// it is 413 or 500 at once, as a chunk that joins it (review
			// Z143; Envoy's requestDataTooLarge/responseDataTooLarge).
			if c := v.contextOrEffective(); st == StatusOK && c.s != nil && (BufferType(u(s, 0)) == BufferHTTPRequestBody || BufferType(u(s, 0)) == BufferHTTPResponseBody) {
				c.s.checkLimit(BufferType(u(s, 0)) == BufferHTTPRequestBody)
			}
			return st
		}),
		f("proxy_get_header_map_pairs", sig(3), func(v *vm, s []uint64) Status {
			if u(s, 0) > uint32(mapTypeMax) {
				return StatusBadArgument
			}
			m := v.constMap(v.contextOrEffective(), MapType(u(s, 0)))
			if m.len() == 0 {
				return v.copyOut(nil, u(s, 1), u(s, 2))
			}
			return v.copyOut(EncodePairs(m.pairs), u(s, 1), u(s, 2))
		}),
		f("proxy_set_header_map_pairs", sig(3), func(v *vm, s []uint64) Status {
			if u(s, 0) > uint32(mapTypeMax) {
				return StatusBadArgument
			}
			data, ok := v.read(u(s, 1), u(s, 2))
			if !ok {
				return StatusInvalidMemoryAccess
			}
			m := v.writableMap(v.contextOrEffective(), MapType(u(s, 0)))
			if m == nil {
				return StatusBadArgument
			}
			m.replaceAll(DecodePairs(data))
			return StatusOK
		}),
		f("proxy_get_header_map_size", sig(2), func(v *vm, s []uint64) Status {
			if u(s, 0) > uint32(mapTypeMax) {
				return StatusBadArgument
			}
			m := v.writableMap(v.contextOrEffective(), MapType(u(s, 0)))
			if m == nil {
				return StatusBadArgument
			}
			return okIf(v.writeU32(u(s, 1), m.byteSize()))
		}),
		f("proxy_get_header_map_value", sig(5), func(v *vm, s []uint64) Status {
			if u(s, 0) > uint32(mapTypeMax) {
				return StatusBadArgument
			}
			key, ok := v.readString(u(s, 1), u(s, 2))
			if !ok {
				return StatusInvalidMemoryAccess
			}
			c := v.contextOrEffective()
			m := v.constMap(c, MapType(u(s, 0)))
			if m == nil {
				if c.s != nil && c.s.logPhase {
					return StatusNotFound
				}
				return StatusBadArgument
			}
			val, found := m.get(key)
			if !found {
				return StatusNotFound
			}
			return v.copyOut([]byte(val), u(s, 3), u(s, 4))
		}),
		f("proxy_add_header_map_value", sig(5), func(v *vm, s []uint64) Status {
			return v.editMap(s, func(m *headerMap, k, val string) { m.add(k, val) })
		}),
		f("proxy_replace_header_map_value", sig(5), func(v *vm, s []uint64) Status {
			return v.editMap(s, func(m *headerMap, k, val string) { m.set(k, val) })
		}),
		f("proxy_remove_header_map_value", sig(3), func(v *vm, s []uint64) Status {
			if u(s, 0) > uint32(mapTypeMax) {
				return StatusBadArgument
			}
			key, ok := v.readString(u(s, 1), u(s, 2))
			if !ok {
				return StatusInvalidMemoryAccess
			}
			m := v.writableMap(v.contextOrEffective(), MapType(u(s, 0)))
			if m == nil {
				return StatusBadArgument
			}
			m.remove(key)
			return StatusOK
		}),
		f("proxy_continue_stream", sig(1), func(v *vm, s []uint64) Status {
			return v.continueStream(v.contextOrEffective(), StreamType(u(s, 0)))
		}),
		f("proxy_close_stream", sig(1), func(v *vm, s []uint64) Status {
			t := StreamType(u(s, 0))
			if t > StreamUpstream {
				return StatusBadArgument
			}
			if st := v.contextOrEffective().s; st != nil && t <= StreamHTTPResponse {
				if !st.detailsSet {
					st.setDetails("wasm_close_stream")
				}
				v.addAfter(st.resetStream)
			}
			return StatusOK
		}),
		f("proxy_send_local_response", sig(8), func(v *vm, s []uint64) Status {
			details, ok1 := v.readString(u(s, 1), u(s, 2))
			body, ok2 := v.read(u(s, 3), u(s, 4))
			hdrs, ok3 := v.read(u(s, 5), u(s, 6))
			if !ok1 || !ok2 || !ok3 {
				return StatusInvalidMemoryAccess
			}
			v.sendLocalResponse(v.contextOrEffective(), &LocalResponse{
				StatusCode: u(s, 0), Details: details, Body: body,
				Headers: DecodePairs(hdrs), GrpcStatus: int32(u(s, 7)),
			})
			v.stopIteration = true
			return StatusOK
		}),
		f("proxy_get_status", sig(3), func(v *vm, s []uint64) Status {
			root := v.rootOf(v.contextOrEffective())
			if !v.writeU32(u(s, 0), root.statusCode) {
				return StatusInvalidMemoryAccess
			}
			return v.copyOut([]byte(root.statusMsg), u(s, 1), u(s, 2))
		}),
		f("proxy_http_call", sig(10), envHTTPCall),
		f("proxy_get_shared_data", sig(5), func(v *vm, s []uint64) Status {
			key, ok := v.readString(u(s, 0), u(s, 1))
			if !ok {
				return StatusInvalidMemoryAccess
			}
			val, cas, st := v.h.shared.get(v.h.cfg.VMID, key)
			if st != StatusOK {
				return st
			}
			if st := v.copyOut(val, u(s, 2), u(s, 3)); st != StatusOK {
				return st
			}
			return okIf(v.writeU32(u(s, 4), cas))
		}),
		f("proxy_set_shared_data", sig(5), func(v *vm, s []uint64) Status {
			key, ok1 := v.readString(u(s, 0), u(s, 1))
			val, ok2 := v.read(u(s, 2), u(s, 3))
			if !ok1 || !ok2 {
				return StatusInvalidMemoryAccess
			}
			return v.h.shared.set(v.h.cfg.VMID, key, val, u(s, 4))
		}),
		f("proxy_register_shared_queue", sig(3), func(v *vm, s []uint64) Status {
			name, ok := v.readString(u(s, 0), u(s, 1))
			if !ok {
				return StatusInvalidMemoryAccess
			}
			root := v.rootOf(v.contextOrEffective())
			tok := v.h.queues.register(v.h.cfg.VMID, name, v.thread, root.id)
			return okIf(v.writeU32(u(s, 2), tok))
		}),
		f("proxy_resolve_shared_queue", sig(5), func(v *vm, s []uint64) Status {
			vmID, ok1 := v.readString(u(s, 0), u(s, 1))
			name, ok2 := v.readString(u(s, 2), u(s, 3))
			if !ok1 || !ok2 {
				return StatusInvalidMemoryAccess
			}
			if vmID == "" {
				vmID = v.h.cfg.VMID
			}
			tok, found := v.h.queues.resolve(vmID, name)
			if !found || v.failed {
				return StatusNotFound
			}
			return okIf(v.writeU32(u(s, 4), tok))
		}),
		f("proxy_enqueue_shared_queue", sig(3), func(v *vm, s []uint64) Status {
			data, ok := v.read(u(s, 1), u(s, 2))
			if !ok {
				return StatusInvalidMemoryAccess
			}
			tok := u(s, 0)
			thread, ctxID, st := v.h.queues.enqueue(tok, data)
			if st != StatusOK {
				return st
			}
			v.h.post(thread, func(owner *vm) {
				c := owner.contexts[ctxID]
				if c == nil || owner.failed {
					return
				}
				owner.invoke(c, "proxy_on_queue_ready", uint64(ctxID), uint64(tok))
			})
			return StatusOK
		}),
		f("proxy_dequeue_shared_queue", sig(3), func(v *vm, s []uint64) Status {
			data, st := v.h.queues.dequeue(u(s, 0))
			if st != StatusOK {
				return st
			}
			return v.copyOut(data, u(s, 1), u(s, 2))
		}),
		f("proxy_define_metric", sig(4), func(v *vm, s []uint64) Status {
			t := MetricType(u(s, 0))
			if t > MetricHistogram {
				return StatusBadArgument
			}
			name, ok := v.readString(u(s, 1), u(s, 2))
			if !ok {
				return StatusInvalidMemoryAccess
			}
			// Envoy: ids carry the type in the low two bits, 4 apart per type.
			v.nextMetric[t] += 4
			id := v.nextMetric[t]
			v.metricIDs[id] = metricRef{typ: t, name: name}
			v.h.metrics.define(t, name)
			return okIf(v.writeU32(u(s, 3), id))
		}),
		f("proxy_increment_metric", []api.ValueType{i32, i64}, func(v *vm, s []uint64) Status {
			id := u(s, 0)
			if MetricType(id&3) == MetricHistogram || id&3 == 3 {
				return StatusBadArgument
			}
			r, ok := v.metricIDs[id]
			if !ok {
				return StatusNotFound
			}
			return v.h.metrics.increment(r, int64(s[1]))
		}),
		f("proxy_record_metric", []api.ValueType{i32, i64}, func(v *vm, s []uint64) Status {
			r, ok := v.metricIDs[u(s, 0)]
			if !ok {
				return StatusNotFound
			}
			return v.h.metrics.record(r, s[1])
		}),
		f("proxy_get_metric", sig(2), func(v *vm, s []uint64) Status {
			id := u(s, 0)
			if t := MetricType(id & 3); t != MetricCounter && t != MetricGauge {
				return StatusBadArgument
			}
			r, ok := v.metricIDs[id]
			if !ok {
				return StatusNotFound
			}
			val, st := v.h.metrics.get(r)
			if st != StatusOK {
				return st
			}
			return okIf(v.writeU64(u(s, 1), val))
		}),
		f("proxy_get_property", sig(4), func(v *vm, s []uint64) Status {
			path, ok := v.readString(u(s, 0), u(s, 1))
			if !ok {
				return StatusInvalidMemoryAccess
			}
			val, st := v.property(v.contextOrEffective(), path)
			if st != StatusOK {
				return st
			}
			return v.copyOut(val, u(s, 2), u(s, 3))
		}),
		f("proxy_set_property", sig(4), func(v *vm, s []uint64) Status {
			path, ok1 := v.readString(u(s, 0), u(s, 1))
			val, ok2 := v.read(u(s, 2), u(s, 3))
			if !ok1 || !ok2 {
				return StatusInvalidMemoryAccess
			}
			st := v.contextOrEffective().s
			if st == nil {
				return StatusNotFound // no stream info on a root context
			}
			if st.props == nil {
				st.props = map[string][]byte{}
			}
			st.props[path] = val
			return StatusOK
		}),
		f("proxy_call_foreign_function", sig(6), func(v *vm, s []uint64) Status {
			if _, ok := v.read(u(s, 0), u(s, 1)); !ok {
				return StatusInvalidMemoryAccess
			}
			if _, ok := v.read(u(s, 2), u(s, 3)); !ok {
				return StatusInvalidMemoryAccess
			}
			return StatusNotFound // no foreign functions are registered
		}),
		f("proxy_grpc_call", sig(12), unimplemented),
		f("proxy_grpc_stream", sig(9), unimplemented),
		f("proxy_grpc_send", sig(4), unimplemented),
		f("proxy_grpc_cancel", sig(1), unimplemented),
		f("proxy_grpc_close", sig(1), unimplemented),
	}
}

func okIf(ok bool) Status {
	if ok {
		return StatusOK
	}
	return StatusInvalidMemoryAccess
}

func (v *vm) editMap(s []uint64, edit func(m *headerMap, k, val string)) Status {
	if uint32(s[0]) > uint32(mapTypeMax) {
		return StatusBadArgument
	}
	key, ok1 := v.readString(uint32(s[1]), uint32(s[2]))
	val, ok2 := v.readString(uint32(s[3]), uint32(s[4]))
	if !ok1 || !ok2 {
		return StatusInvalidMemoryAccess
	}
	m := v.writableMap(v.contextOrEffective(), MapType(uint32(s[0])))
	if m == nil {
		return StatusBadArgument
	}
	edit(m, key, val)
	return StatusOK
}

// httpCallResponse is what a root context can read during
// proxy_on_http_call_response (Envoy http_call_response_).
type httpCallResponse struct {
	headers  *headerMap
	body     []byte
	trailers *headerMap
}

func (v *vm) writableMap(c *vmContext, t MapType) *headerMap {
	if c.s == nil {
		return nil
	}
	return c.s.writableMap(t)
}

func (v *vm) constMap(c *vmContext, t MapType) *headerMap {
	switch t {
	case MapHTTPCallResponseHeaders, MapHTTPCallResponseTrailers:
		// rootContext()->http_call_response_: readable from any context of
		// the VM while the response callback runs.
		r := v.rootOf(c).httpResp
		if r == nil {
			return nil
		}
		if t == MapHTTPCallResponseHeaders {
			return r.headers
		}
		return r.trailers
	case MapGrpcInitialMetadata, MapGrpcTrailingMetadata:
		return nil
	}
	if c.s == nil {
		return nil
	}
	return c.s.constMap(t)
}

// bufferRef is one of Envoy Context::getBuffer's answers.
type bufferRef struct {
	p         *[]byte // mutable body buffer; nil = an empty buffer that cannot be set
	constData []byte
	isConst   bool
}

func (b bufferRef) bytes() []byte {
	if b.isConst {
		return b.constData
	}
	if b.p == nil {
		return nil
	}
	return *b.p
}

// copyFrom is Envoy Buffer::copyFrom: only prepend (0,0), replace all
// (0, ≥len) and append (start ≥ len) are supported on body buffers; every
// other buffer is immutable.
func (b bufferRef) copyFrom(start, length uint32, data []byte) Status {
	if b.isConst || b.p == nil {
		return StatusBadArgument
	}
	cur := *b.p
	l := uint32(len(cur))
	switch {
	case start == 0 && length == 0:
		*b.p = append(append([]byte(nil), data...), cur...)
	case start == 0 && length >= l:
		*b.p = append([]byte(nil), data...)
	case start == 0:
		return StatusBadArgument
	case start >= l:
		*b.p = append(cur, data...)
	default:
		return StatusBadArgument
	}
	return StatusOK
}

func (v *vm) getBuffer(c *vmContext, t BufferType) (bufferRef, bool) {
	switch t {
	case BufferVMConfiguration:
		return bufferRef{constData: v.h.cfg.VMConfig, isConst: true}, true
	case BufferPluginConfiguration:
		if v.tempPlugin {
			return bufferRef{constData: v.h.cfg.PluginConfig, isConst: true}, true
		}
		return bufferRef{}, false
	case BufferHTTPRequestBody, BufferHTTPResponseBody:
		if c.s == nil {
			return bufferRef{}, true
		}
		return bufferRef{p: c.s.bodyBuffer(t == BufferHTTPRequestBody)}, true
	case BufferHTTPCallResponseBody:
		if r := v.rootOf(c).httpResp; r != nil {
			return bufferRef{constData: r.body, isConst: true}, true
		}
		return bufferRef{}, false
	}
	// Network data, gRPC messages and foreign-function arguments: Envoy hands
	// out its (empty) scratch buffer.
	return bufferRef{}, true
}

// continueStream is Envoy Context::continueStream: the resume is deferred
// until the VM call returns, and the request maps are dropped at once.
func (v *vm) continueStream(c *vmContext, t StreamType) Status {
	switch t {
	case StreamHTTPRequest, StreamHTTPResponse:
	case StreamDownstream:
		return StatusOK
	case StreamUpstream:
		return StatusUnimplemented
	default:
		return StatusBadArgument
	}
	if s := c.s; s != nil {
		req := t == StreamHTTPRequest
		v.addAfter(func() { s.commonContinue(req, true) })
		s.req.headersAcc, s.req.trailersAcc, s.req.chunk = false, false, nil
	}
	return StatusOK
}

// sendLocalResponse is Envoy Context::sendLocalResponse: recorded now,
// sent after the VM call; whitespace in details becomes '_'.
func (v *vm) sendLocalResponse(c *vmContext, lr *LocalResponse) {
	s := c.s
	if s == nil {
		return
	}
	if s.local == nil {
		s.local = lr
	}
	details := make([]byte, len(lr.Details))
	for i := 0; i < len(lr.Details); i++ {
		switch ch := lr.Details[i]; ch {
		case ' ', '\t', '\n', '\r', '\f', '\v':
			details[i] = '_'
		default:
			details[i] = ch
		}
	}
	v.addAfter(func() {
		s.sendLocalReply(int(lr.StatusCode), lr.Body, lr.Headers, string(details))
	})
}

func (v *vm) property(c *vmContext, path string) ([]byte, Status) {
	if c.s != nil {
		if val, ok := c.s.overrideProperty(path); ok {
			return val, StatusOK
		}
	}
	if val, ok := v.h.cfg.Properties[path]; ok {
		return val, StatusOK
	}
	if c.s != nil {
		if val, ok := c.s.builtinProperty(path); ok {
			return val, StatusOK
		}
	}
	switch path {
	case "plugin_name":
		return []byte(v.h.cfg.PluginName), StatusOK
	case "plugin_root_id":
		return []byte(v.h.cfg.RootID), StatusOK
	case "plugin_vm_id":
		return []byte(v.h.cfg.VMID), StatusOK
	}
	return nil, StatusNotFound
}

func envHTTPCall(v *vm, s []uint64) Status {
	u := func(i int) uint32 { return uint32(s[i]) }
	cluster, ok1 := v.readString(u(0), u(1))
	hdr, ok2 := v.read(u(2), u(3))
	body, ok3 := v.read(u(4), u(5))
	trl, ok4 := v.read(u(6), u(7))
	if !ok1 || !ok2 || !ok3 || !ok4 {
		return StatusInvalidMemoryAccess
	}
	// Verify the token slot before starting anything, as cpp-host does.
	if !v.writeU32(u(9), 0) {
		return StatusInvalidMemoryAccess
	}
	tok, st := v.httpCall(cluster, DecodePairs(hdr), body, DecodePairs(trl), u(8))
	v.writeU32(u(9), tok)
	return st
}

// httpCall is Envoy Context::httpCall, always on the VM's root context.
func (v *vm) httpCall(cluster string, headers [][2]string, body []byte, trailers [][2]string, timeoutMS uint32) (uint32, Status) {
	if int32(timeoutMS) < 0 { // Envoy takes an int
		return 0, StatusBadArgument
	}
	known := false
	for _, c := range v.h.cfg.Clusters {
		known = known || c == cluster
	}
	if !known {
		return 0, StatusBadArgument
	}
	hm := newHeaderMap(headers)
	for _, k := range []string{":path", ":method", ":authority"} {
		if _, ok := hm.get(k); !ok {
			return 0, StatusBadArgument
		}
	}
	if len(body) > 0 {
		hm.set("content-length", strconv.Itoa(len(body)))
	}
	v.nextHTTPCall += 4 // CalloutType::HttpCall = 0, kCalloutIncrement = 4
	call := &HTTPCall{
		VM: v.index, Token: v.nextHTTPCall, Cluster: cluster,
		Headers: hm.clone(), Body: body, Trailers: trailers,
		Timeout: time.Duration(timeoutMS) * time.Millisecond,
		v:       v, started: v.h.clock.Nanotime(),
	}
	v.httpCalls[call.Token] = call
	if v.index != canaryVM { // the canary's calls are cancelled when it is killed
		v.h.addHTTPCall(call)
		if hf := v.h.cfg.HTTPCall; hf != nil {
			v.outbox = append(v.outbox, func() { hf(call) })
		}
	}
	return call.Token, StatusOK
}

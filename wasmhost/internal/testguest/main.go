//go:build wasip1

// Command testguest is a small proxy-wasm plugin that exercises the host.
// What it does is chosen by its plugin configuration (key=value lines) and,
// per request, by the x-op request header; it reports through local
// replies, response headers and logs. It deliberately links fmt and os so
// the Go runtime imports the same WASI calls as the real filter.
package main

import (
	"crypto/rand"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"os"
	"runtime"
	"strconv"
	"strings"
	"time"
)

func main() {}

const (
	statusOK          = 0
	statusNotFound    = 1
	statusCasMismatch = 8

	mapRequestHeaders      = 0
	mapResponseHeaders     = 2
	mapHTTPCallRespHeaders = 6
	bufRequestBody         = 0
	bufResponseBody        = 1
	bufHTTPCallBody        = 4
	bufVMConfig            = 6
	bufPluginConfig        = 7
)

type streamState struct {
	op, respOp string
	hdr        map[string]string
}

var (
	rootID       uint32
	cfg          = map[string]string{}
	configureNo  int
	streams      = map[uint32]*streamState{}
	waitRequest  []uint32              // streams paused until a tick or queue message
	waitResponse []uint32              // responses paused until a tick
	callers      = map[uint32]uint32{} // http call token → stream
	noRecover    bool
)

// guard recovers panics like a production filter must (reference pitfall
// 5), except for x-op: panic, which is there to trap the VM.
func guard(name string, f func()) {
	pinned = pinned[:0]
	if !noRecover {
		defer func() {
			if r := recover(); r != nil {
				logf(4, "%s: recovered panic: %v", name, r)
			}
		}()
	}
	f()
}

func logf(level uint32, format string, args ...any) {
	p, n := strOf(fmt.Sprintf(format, args...))
	proxy_log(level, p, n)
}

// --- small wrappers ---

func getBuffer(typ uint32) ([]byte, uint32) {
	var raw *byte
	var n uint32
	st := proxy_get_buffer_bytes(typ, 0, 1<<30, ptr(&raw), &n)
	return outBytes(raw, n), st
}

func getHeader(typ uint32, key string) (string, uint32) {
	var raw *byte
	var n uint32
	kp, kn := strOf(key)
	st := proxy_get_header_map_value(typ, kp, kn, ptr(&raw), &n)
	return string(outBytes(raw, n)), st
}

func addHeader(typ uint32, k, v string) uint32 {
	kp, kn := strOf(k)
	vp, vn := strOf(v)
	return proxy_add_header_map_value(typ, kp, kn, vp, vn)
}

func getPairs(typ uint32) ([][2]string, uint32) {
	var raw *byte
	var n uint32
	st := proxy_get_header_map_pairs(typ, ptr(&raw), &n)
	return decodePairs(outBytes(raw, n)), st
}

// encodePairs and decodePairs implement the ABI §1.5 layout on the guest
// side, independently of the host's code.
func encodePairs(pairs [][2]string) []byte {
	b := binary.LittleEndian.AppendUint32(nil, uint32(len(pairs)))
	for _, p := range pairs {
		b = binary.LittleEndian.AppendUint32(b, uint32(len(p[0])))
		b = binary.LittleEndian.AppendUint32(b, uint32(len(p[1])))
	}
	for _, p := range pairs {
		b = append(append(b, p[0]...), 0)
		b = append(append(b, p[1]...), 0)
	}
	return b
}

func decodePairs(b []byte) [][2]string {
	if len(b) < 4 {
		return nil
	}
	n := int(binary.LittleEndian.Uint32(b))
	pos := 4 + 8*n
	var out [][2]string
	for i := 0; i < n; i++ {
		kl := int(binary.LittleEndian.Uint32(b[4+8*i:]))
		vl := int(binary.LittleEndian.Uint32(b[8+8*i:]))
		k := string(b[pos : pos+kl])
		pos += kl + 1
		v := string(b[pos : pos+vl])
		pos += vl + 1
		out = append(out, [2]string{k, v})
	}
	return out
}

func reply(code uint32, body string, headers ...[2]string) uint32 {
	hb := encodePairs(headers)
	dp, dn := strOf("reply from testguest")
	bp, bn := strOf(body)
	hp, hn := bytesOf(hb)
	return proxy_send_local_response(code, dp, dn, bp, bn, hp, hn, -1)
}

func hdr(k, v string) [2]string { return [2]string{k, v} }
func st(s uint32) [2]string     { return hdr("x-status", strconv.Itoa(int(s))) }

func sharedGet(key string) ([]byte, uint32, uint32) {
	var raw *byte
	var n, cas uint32
	kp, kn := strOf(key)
	s := proxy_get_shared_data(kp, kn, ptr(&raw), &n, &cas)
	return outBytes(raw, n), cas, s
}

func sharedSet(key string, val []byte, cas uint32) uint32 {
	kp, kn := strOf(key)
	vp, vn := bytesOf(val)
	return proxy_set_shared_data(kp, kn, vp, vn, cas)
}

// casIncrement adds n to a decimal counter in shared data with a CAS loop
// and returns the final value and the number of CAS retries.
func casIncrement(key string, n int) (int, int) {
	retries, val := 0, 0
	for i := 0; i < n; i++ {
		for {
			cur, cas, s := sharedGet(key)
			if s == statusNotFound {
				cas = 0
			}
			val, _ = strconv.Atoi(string(cur))
			val++
			if sharedSet(key, []byte(strconv.Itoa(val)), cas) == statusOK {
				break
			}
			retries++
		}
	}
	return val, retries
}

func resolveQueue(vmID, name string) (uint32, uint32) {
	var tok uint32
	vp, vn := strOf(vmID)
	np, nn := strOf(name)
	s := proxy_resolve_shared_queue(vp, vn, np, nn, &tok)
	return tok, s
}

func registerQueue(name string) (uint32, uint32) {
	var tok uint32
	np, nn := strOf(name)
	s := proxy_register_shared_queue(np, nn, &tok)
	return tok, s
}

// --- lifecycle ---

//go:wasmexport proxy_on_context_create
func onContextCreate(ctx, parent uint32) {
	guard("context_create", func() {
		if parent == 0 {
			rootID = ctx
		} else {
			streams[ctx] = &streamState{hdr: map[string]string{}}
		}
		logf(1, "context_create ctx=%d parent=%d", ctx, parent)
	})
}

//go:wasmexport proxy_on_vm_start
func onVMStart(root, size uint32) bool {
	ok := true
	guard("vm_start", func() {
		b, _ := getBuffer(bufVMConfig)
		logf(2, "vm_start root=%d size=%d config=%q", root, size, b)
		ok = string(b) != "fail"
	})
	return ok
}

//go:wasmexport proxy_on_configure
func onConfigure(root, size uint32) bool {
	ok := true
	guard("configure", func() {
		b, s := getBuffer(bufPluginConfig)
		for _, line := range strings.Split(string(b), "\n") {
			if k, v, found := strings.Cut(strings.TrimSpace(line), "="); found {
				cfg[k] = v
			}
		}
		configureNo, _ = casIncrement("configure_count", 1)
		logf(2, "configure root=%d size=%d status=%d count=%d", root, size, s, configureNo)
		if cfg["fail_configure"] != "" {
			logf(4, "configure failed: field %q is invalid", cfg["fail_configure"])
			ok = false
			return
		}
		if ms, err := strconv.Atoi(cfg["tick_ms"]); err == nil {
			proxy_set_tick_period_milliseconds(uint32(ms))
		}
		if q := cfg["register_queue"]; q != "" {
			tok, _ := registerQueue(q)
			logf(2, "registered queue %s token=%d", q, tok)
		}
		if configureNo == 1 && cfg["canary_side_effects"] == "1" {
			// The first configure anywhere runs in Envoy's throw-away canary.
			registerQueue("canary-only")
			proxy_set_tick_period_milliseconds(1000)
			sharedSet("canary_wrote", []byte("yes"), 0)
		}
	})
	return ok
}

//go:wasmexport proxy_on_tick
func onTick(root uint32) {
	guard("tick", func() {
		logf(2, "tick begin root=%d waiting=%d", root, len(waitRequest))
		resume("tick")
		logf(2, "tick end")
	})
}

// resume continues every waiting stream of this VM from a root callback,
// switching the effective context to each (reference §4.4).
func resume(by string) {
	for _, id := range waitRequest {
		if s := proxy_set_effective_context(id); s != statusOK {
			logf(3, "resume %d: set_effective_context status=%d", id, s)
			continue
		}
		addHeader(mapRequestHeaders, "x-resumed-by", by)
		s := proxy_continue_stream(0)
		// The request maps are gone right after continue_stream.
		after := addHeader(mapRequestHeaders, "x-after-continue", "1")
		logf(2, "resumed request %d by %s status=%d add_after_continue=%d", id, by, s, after)
	}
	waitRequest = nil
	for _, id := range waitResponse {
		if proxy_set_effective_context(id) == statusOK {
			addHeader(mapResponseHeaders, "x-response-resumed-by", by)
			logf(2, "resumed response %d by %s status=%d", id, by, proxy_continue_stream(1))
		}
	}
	waitResponse = nil
}

//go:wasmexport proxy_on_queue_ready
func onQueueReady(root, token uint32) {
	guard("queue_ready", func() {
		logf(2, "queue_ready root=%d token=%d", root, token)
		if cfg["dequeue_on_ready"] == "0" {
			return
		}
		for {
			var raw *byte
			var n uint32
			s := proxy_dequeue_shared_queue(token, ptr(&raw), &n)
			if s != statusOK {
				logf(2, "dequeue status=%d", s)
				break
			}
			item := string(outBytes(raw, n))
			logf(2, "dequeued %q", item)
			if item == "resume" {
				resume("queue")
			}
		}
	})
}

//go:wasmexport proxy_on_http_call_response
func onHTTPCallResponse(root, token, nheaders, bodySize, ntrailers uint32) {
	guard("http_call_response", func() {
		var code uint32
		var raw *byte
		var n uint32
		proxy_get_status(&code, ptr(&raw), &n)
		status, _ := getHeader(mapHTTPCallRespHeaders, ":status")
		body, _ := getBuffer(bufHTTPCallBody)
		logf(2, "http_call_response root=%d token=%d headers=%d body=%d trailers=%d status=%q body=%q get_status=%d/%q",
			root, token, nheaders, bodySize, ntrailers, status, body, code, outBytes(raw, n))
		caller, ok := callers[token]
		delete(callers, token)
		if !ok {
			return
		}
		if s := proxy_set_effective_context(caller); s != statusOK {
			logf(2, "http call caller %d is gone: set_effective_context status=%d", caller, s)
			return
		}
		if nheaders == 0 {
			reply(502, "call failed", hdr("x-call-code", strconv.Itoa(int(code))))
			return
		}
		reply(200, string(body), hdr("x-call-status", status))
	})
}

//go:wasmexport proxy_on_log
func onLog(ctx uint32) {
	guard("log", func() {
		status, s := getHeader(mapResponseHeaders, ":status")
		logf(2, "on_log ctx=%d response_status=%q/%d", ctx, status, s)
	})
}

//go:wasmexport proxy_on_done
func onDone(ctx uint32) bool {
	guard("done", func() { logf(1, "on_done ctx=%d", ctx) })
	return true
}

//go:wasmexport proxy_on_delete
func onDelete(ctx uint32) {
	guard("delete", func() {
		delete(streams, ctx)
		logf(1, "on_delete ctx=%d", ctx)
	})
}

// --- request path ---

//go:wasmexport proxy_on_request_headers
func onRequestHeaders(ctx, nheaders, eos uint32) uint32 {
	action := uint32(0)
	op, _ := getHeader(mapRequestHeaders, "x-op")
	noRecover = op == "panic"
	guard("request_headers", func() { action = requestHeaders(ctx, nheaders, eos, op) })
	return action
}

func requestHeaders(ctx, nheaders, eos uint32, op string) uint32 {
	ss := streams[ctx]
	pairs, _ := getPairs(mapRequestHeaders)
	for _, p := range pairs {
		ss.hdr[p[0]] = p[1]
	}
	ss.op, ss.respOp = op, ss.hdr["x-resp-op"]
	h := ss.hdr
	logf(2, "request_headers ctx=%d headers=%d eos=%d op=%q", ctx, nheaders, eos, op)
	switch op {
	case "":
		return 0
	case "headers-roundtrip":
		var size uint32
		proxy_get_header_map_size(mapRequestHeaders, &size)
		out := append(pairs, hdr("x-roundtrip", strconv.Itoa(len(pairs))), hdr("x-map-size", strconv.Itoa(int(size))))
		b := encodePairs(out)
		bp, bn := bytesOf(b)
		proxy_set_header_map_pairs(mapRequestHeaders, bp, bn)
		return 0
	case "raw-pairs":
		raw, _ := hex.DecodeString(h["x-raw-hex"])
		bp, bn := bytesOf(raw)
		logf(2, "raw-pairs status=%d", proxy_set_header_map_pairs(mapRequestHeaders, bp, bn))
		return 0
	case "shared-set":
		cas, _ := strconv.Atoi(h["x-cas"])
		s := sharedSet(h["x-key"], []byte(h["x-value"]), uint32(cas))
		reply(200, "", st(s))
		return 1
	case "shared-get":
		v, cas, s := sharedGet(h["x-key"])
		reply(200, string(v), st(s), hdr("x-value", string(v)), hdr("x-cas", strconv.Itoa(int(cas))))
		return 1
	case "shared-incr":
		n, _ := strconv.Atoi(h["x-n"])
		v, retries := casIncrement(h["x-key"], n)
		reply(200, "", hdr("x-value", strconv.Itoa(v)), hdr("x-retries", strconv.Itoa(retries)))
		return 1
	case "register-queue":
		tok, s := registerQueue(h["x-queue"])
		reply(200, "", st(s), hdr("x-token", strconv.Itoa(int(tok))))
		return 1
	case "resolve-queue":
		tok, s := resolveQueue(h["x-vm-id"], h["x-queue"])
		reply(200, "", st(s), hdr("x-token", strconv.Itoa(int(tok))))
		return 1
	case "enqueue":
		tok, s := resolveQueue(h["x-vm-id"], h["x-queue"])
		if s == statusOK {
			vp, vn := strOf(h["x-value"])
			s = proxy_enqueue_shared_queue(tok, vp, vn)
		}
		reply(200, "", st(s), hdr("x-token", strconv.Itoa(int(tok))))
		return 1
	case "dequeue":
		tok, s := resolveQueue("", h["x-queue"])
		var item []byte
		if s == statusOK {
			var raw *byte
			var n uint32
			s = proxy_dequeue_shared_queue(tok, ptr(&raw), &n)
			item = outBytes(raw, n)
		}
		reply(200, "", st(s), hdr("x-value", string(item)))
		return 1
	case "continue-later":
		waitRequest = append(waitRequest, ctx)
		return 1
	case "local-reply":
		code, _ := strconv.Atoi(h["x-code"])
		if code == 0 {
			code = 403
		}
		b := encodePairs([][2]string{hdr("x-local", "1")})
		dp, dn := strOf("denied by test")
		bp, bn := strOf("denied")
		hp, hn := bytesOf(b)
		s := proxy_send_local_response(uint32(code), dp, dn, bp, bn, hp, hn, -1)
		logf(2, "local reply status=%d", s)
		return 0 // Envoy must still stop: the local reply forces it
	case "http-call":
		return httpCall(ctx, h)
	case "panic":
		var m map[string]int
		m["boom"] = 1 // nil map write: a Go panic that is not recovered → trap
		return 0
	case "exit":
		os.Exit(3)
	case "sleep":
		time.Sleep(time.Millisecond)
		reply(200, "slept")
		return 1
	case "gc":
		runtime.GC()
		reply(200, "gc done")
		return 1
	case "property":
		path := strings.ReplaceAll(h["x-path"], "/", "\x00")
		var raw *byte
		var n uint32
		pp, pn := strOf(path)
		s := proxy_get_property(pp, pn, ptr(&raw), &n)
		reply(200, "", st(s), hdr("x-value", hex.EncodeToString(outBytes(raw, n))))
		return 1
	case "set-property":
		pp, pn := strOf(h["x-path"])
		vp, vn := strOf(h["x-value"])
		s := proxy_set_property(pp, pn, vp, vn)
		var raw *byte
		var n uint32
		g := proxy_get_property(pp, pn, ptr(&raw), &n)
		reply(200, "", st(s), hdr("x-get-status", strconv.Itoa(int(g))), hdr("x-value", string(outBytes(raw, n))))
		return 1
	case "metrics":
		return metrics()
	case "log-level":
		var lvl uint32
		s := proxy_get_log_level(&lvl)
		reply(200, "", st(s), hdr("x-level", strconv.Itoa(int(lvl))))
		return 1
	case "time":
		var ns uint64
		proxy_get_current_time_nanoseconds(&ns)
		reply(200, "", hdr("x-proxy-time", strconv.FormatUint(ns, 10)), hdr("x-go-time", strconv.FormatInt(time.Now().UnixNano(), 10)))
		return 1
	case "random":
		b := make([]byte, 16)
		rand.Read(b)
		reply(200, "", hdr("x-random", hex.EncodeToString(b)))
		return 1
	case "env":
		reply(200, "", hdr("x-env", os.Getenv(h["x-name"])))
		return 1
	case "stdio":
		fmt.Println("hello stdout")
		fmt.Fprintln(os.Stderr, "hello stderr")
		reply(200, "")
		return 1
	case "effective-bad":
		reply(200, "", st(proxy_set_effective_context(99999)))
		return 1
	case "close":
		logf(2, "close_stream status=%d", proxy_close_stream(0))
		return 1
	case "body-edit", "body-count":
		return 0
	case "hold-body":
		return 1
	case "maps-in-root":
		return 0
	}
	logf(3, "unknown op %q", op)
	return 0
}

func httpCall(ctx uint32, h map[string]string) uint32 {
	cluster := h["x-cluster"]
	if cluster == "" {
		cluster = "upstream"
	}
	headers := [][2]string{hdr(":method", "POST"), hdr(":path", "/lookup")}
	if h["x-bad-headers"] == "" {
		headers = append(headers, hdr(":authority", "model"))
	}
	timeout, _ := strconv.Atoi(h["x-timeout"])
	hb := encodePairs(headers)
	cp, cn := strOf(cluster)
	hp, hn := bytesOf(hb)
	bp, bn := strOf("ping")
	var tok uint32
	s := proxy_http_call(cp, cn, hp, hn, bp, bn, nil, 0, uint32(timeout), &tok)
	logf(2, "http_call status=%d token=%d", s, tok)
	if s != statusOK {
		reply(500, "", st(s))
		return 1
	}
	callers[tok] = ctx
	return 1
}

func metrics() uint32 {
	define := func(typ uint32, name string) uint32 {
		var id uint32
		np, nn := strOf(name)
		proxy_define_metric(typ, np, nn, &id)
		return id
	}
	c, g, hg := define(0, "requests"), define(1, "inflight"), define(2, "sizes")
	var cv, gv uint64
	res := []uint32{
		proxy_increment_metric(c, 1),
		proxy_increment_metric(c, 0),
		proxy_record_metric(c, 10),
		proxy_record_metric(g, 5),
		proxy_increment_metric(g, -2),
		proxy_record_metric(hg, 42),
		proxy_increment_metric(hg, 1),
		proxy_get_metric(c, &cv),
		proxy_get_metric(g, &gv),
		proxy_get_metric(hg, &cv),
		proxy_increment_metric(4000, 1),
	}
	parts := make([]string, len(res))
	for i, r := range res {
		parts[i] = strconv.Itoa(int(r))
	}
	reply(200, "", hdr("x-statuses", strings.Join(parts, ",")), hdr("x-ids", fmt.Sprintf("%d,%d,%d", c, g, hg)),
		hdr("x-counter", strconv.FormatUint(cv, 10)), hdr("x-gauge", strconv.FormatInt(int64(gv), 10)))
	return 1
}

//go:wasmexport proxy_on_request_body
func onRequestBody(ctx, size, eos uint32) uint32 {
	action := uint32(0)
	guard("request_body", func() {
		ss := streams[ctx]
		body, _ := getBuffer(bufRequestBody)
		logf(2, "request_body ctx=%d size=%d eos=%d body=%q", ctx, size, eos, body)
		switch ss.op {
		case "body-edit":
			if eos == 0 {
				action = 1
				return
			}
			edit := ss.hdr["x-body-op"]
			verb, arg, _ := strings.Cut(edit, ":")
			ap, an := strOf(arg)
			var s uint32
			switch verb {
			case "append":
				s = proxy_set_buffer_bytes(bufRequestBody, size, 0, ap, an)
			case "prepend":
				s = proxy_set_buffer_bytes(bufRequestBody, 0, 0, ap, an)
			case "replace":
				s = proxy_set_buffer_bytes(bufRequestBody, 0, size, ap, an)
			case "middle":
				s = proxy_set_buffer_bytes(bufRequestBody, 1, 1, ap, an)
			}
			logf(2, "body edit %s status=%d", edit, s)
		case "hold-body":
			if eos == 0 {
				action = 1
				return
			}
			logf(2, "hold-body add header status=%d", addHeader(mapRequestHeaders, "x-body-len", strconv.Itoa(int(size))))
		}
	})
	return action
}

// --- response path ---

//go:wasmexport proxy_on_response_headers
func onResponseHeaders(ctx, nheaders, eos uint32) uint32 {
	action := uint32(0)
	guard("response_headers", func() {
		ss := streams[ctx]
		status, _ := getHeader(mapResponseHeaders, ":status")
		logf(2, "response_headers ctx=%d status=%s eos=%d", ctx, status, eos)
		addHeader(mapResponseHeaders, "x-seen-by-plugin", "1")
		if ss == nil {
			return
		}
		switch ss.respOp {
		case "pause":
			waitResponse = append(waitResponse, ctx)
			action = 1
		case "local-reply":
			reply(502, "replaced by plugin")
			action = 0
		}
	})
	return action
}

//go:wasmexport proxy_on_response_body
func onResponseBody(ctx, size, eos uint32) uint32 {
	action := uint32(0)
	guard("response_body", func() {
		ss := streams[ctx]
		body, _ := getBuffer(bufResponseBody)
		logf(2, "response_body ctx=%d size=%d eos=%d body=%q", ctx, size, eos, body)
		if ss == nil || ss.respOp != "upper" {
			return
		}
		if eos == 0 {
			action = 1
			return
		}
		up := strings.ToUpper(string(body))
		p, n := strOf(up)
		proxy_set_buffer_bytes(bufResponseBody, 0, size, p, n)
	})
	return action
}

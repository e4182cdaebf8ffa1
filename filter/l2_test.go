//go:build !wasip1

package main

import (
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/modelcache/modelcache/wasmhost"
)

// l2Webdis is a minimal webdis for the real module: MGET (JSON), SET
// [NX] [EX], DEL, SETEX, EXPIRE; it holds the lease calls (SET of an
// "l:" key, NX EX — a model's generation is created with NX EX too) for
// the test to answer.
type l2Webdis struct {
	mu    sync.Mutex
	kv    map[string]string
	held  []*wasmhost.HTTPCall
	paths []string
}

func (w *l2Webdis) call(c *wasmhost.HTTPCall) {
	path := ""
	for _, h := range c.Headers {
		if h[0] == ":path" {
			path = h[1]
		}
	}
	w.mu.Lock()
	w.paths = append(w.paths, path)
	if strings.HasPrefix(path, "/SET/mc:l:") {
		w.held = append(w.held, c)
		w.mu.Unlock()
		return
	}
	w.mu.Unlock()
	c.Respond(200, nil, []byte(w.do(path, c.Body)))
}

func (w *l2Webdis) do(path string, body []byte) string {
	w.mu.Lock()
	defer w.mu.Unlock()
	args := strings.Split(strings.TrimSuffix(strings.TrimPrefix(path, "/"), ".raw"), "/")
	switch args[0] {
	case "MGET":
		var vs []string
		for _, k := range args[1:] {
			if v, ok := w.kv[k]; ok {
				vs = append(vs, strconv.Quote(v))
			} else {
				vs = append(vs, "null")
			}
		}
		return `{"MGET":[` + strings.Join(vs, ",") + `]}`
	case "SET":
		if _, ok := w.kv[args[1]]; ok {
			return "$-1\r\n"
		}
		w.kv[args[1]] = args[2]
		return "+OK\r\n"
	case "SETEX":
		w.kv[args[1]] = string(body)
		return "+OK\r\n"
	case "EXPIRE":
		if _, ok := w.kv[args[1]]; ok {
			return ":1\r\n"
		}
		return ":0\r\n"
	case "DEL":
		n := 0
		for _, k := range args[1:] {
			if _, ok := w.kv[k]; ok {
				delete(w.kv, k)
				n++
			}
		}
		return ":" + strconv.Itoa(n) + "\r\n"
	}
	return "-ERR unknown command\r\n"
}

// The client goes away while the cross-proxy lease call is under way and
// Redis takes the lease: the module releases it even though the request
// is gone (the call's result reaches the root context only).
func TestL2LeaseReleasedWhenClientGoesDuringLeaseCall(t *testing.T) {
	cfg := `{"upstream_cluster": "model", "l2": {"cluster": "webdis", "timeout": "1s"},
  "routes": [{"name": "chat", "kind": "chat", "path_prefix": "/v1/chat/completions", "ttl": "60s"}]}`
	w := &l2Webdis{kv: map[string]string{}}
	hs := newHarness(t, cfg, func(_ *harness, c *wasmhost.Config) {
		c.Clusters = append(c.Clusters, "webdis")
		c.HTTPCall = w.call
	})
	ex := hs.h.StartExchange(0, chatRequest("gone during the lease"))
	hs.h.Drain()
	w.mu.Lock()
	held := w.held
	w.mu.Unlock()
	if len(held) != 1 {
		t.Fatalf("lease calls held: %d (calls %q)", len(held), w.paths)
	}
	ex.Abort()
	hs.h.Drain()
	lease := held[0]
	var path string
	for _, h := range lease.Headers {
		if h[0] == ":path" {
			path = h[1]
		}
	}
	lease.Respond(200, nil, []byte(w.do(path, nil))) // Redis set it
	hs.h.Drain()
	w.mu.Lock()
	defer w.mu.Unlock()
	for k := range w.kv {
		if strings.Contains(k, ":l:") {
			t.Fatalf("orphan lease %s in Redis (calls %q)", k, w.paths)
		}
	}
}

// purgeWebdis holds every webdis call for the test to answer.
type purgeWebdis struct {
	mu    sync.Mutex
	held  []*wasmhost.HTTPCall
	paths []string
}

func (w *purgeWebdis) call(c *wasmhost.HTTPCall) {
	w.mu.Lock()
	defer w.mu.Unlock()
	for _, h := range c.Headers {
		if h[0] == ":path" {
			w.paths = append(w.paths, h[1])
		}
	}
	w.held = append(w.held, c)
}

func (w *purgeWebdis) take() []*wasmhost.HTTPCall {
	w.mu.Lock()
	defer w.mu.Unlock()
	h := w.held
	w.held = nil
	return h
}

// The operator's client leaves a purge before webdis has answered its
// first call: the purge is carried out all the same — the INCR's retries
// and the purge-log record go out; only the reply is dropped.
func TestL2PurgeGoesOnWhenItsClientLeaves(t *testing.T) {
	for _, incrFails := range []bool{true, false} {
		t.Run(map[bool]string{true: "INCR fails once", false: "INCR succeeds"}[incrFails], func(t *testing.T) {
			purgeClientLeaves(t, incrFails)
		})
	}
}

func purgeClientLeaves(t *testing.T, incrFails bool) {
	cfg := `{"upstream_cluster": "model", "l2": {"cluster": "webdis"},
  "purge": {"path": "/modelcache/purge", "token": "0123456789abcdef-token"},
  "routes": [{"name": "chat", "kind": "chat", "path_prefix": "/v1/chat/completions", "ttl": "60s"}]}`
	w := &purgeWebdis{}
	hs := newHarness(t, cfg, func(_ *harness, c *wasmhost.Config) {
		c.Clusters = append(c.Clusters, "webdis")
		c.HTTPCall = w.call
	})
	hs.h.Drain()
	w.take()
	ex := hs.h.StartExchange(0, wasmhost.Request{
		Headers: [][2]string{{":method", "POST"}, {":path", "/modelcache/purge"}, {":authority", "m"},
			{"authorization", "Bearer 0123456789abcdef-token"}},
		Body: []byte(`{"route":"chat","model":"gpt-4o-mini"}`),
	})
	hs.h.Drain()
	calls := w.take()
	if len(calls) != 1 {
		t.Fatalf("purge calls: %q", w.paths)
	}
	ex.Abort() // the purge client leaves
	hs.h.Drain()
	if incrFails {
		calls[0].Fail()
	} else {
		calls[0].Respond(200, nil, []byte(":1\r\n"))
	}
	hs.h.Drain()
	for _, c := range w.take() {
		c.Respond(200, nil, []byte(":1\r\n"))
		hs.h.Drain()
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	incr, rpush := 0, 0
	for _, p := range w.paths {
		if strings.HasPrefix(p, "/INCR/") {
			incr++
		}
		if strings.HasPrefix(p, "/RPUSH/") {
			rpush++
		}
	}
	if incrFails && incr < 2 || rpush == 0 {
		t.Fatalf("purge taken (L1 dropped), but after its client left: %d INCR sent, %d purge-log records; calls %q", incr, rpush, w.paths)
	}
	if _, _, ok := hs.h.SharedData("mc:l2:purged"); !ok {
		t.Fatal("the purge was not done again in L1: the purge mark never moved")
	}
}

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
// [NX] [EX], DEL, SETEX; it holds the lease calls (SET … NX EX) for the
// test to answer.
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
	if strings.HasPrefix(path, "/SET/") && strings.Contains(path, "/NX/EX/") {
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

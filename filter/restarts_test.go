//go:build !wasip1

package main

import (
	"bytes"
	"os"
	"testing"

	"github.com/modelcache/modelcache/cachecore"
	"github.com/modelcache/modelcache/internal/wasmbuild"
)

// The trap-on-demand switch of the failure-policy tests exists only in the
// module built with -tags modelcache_crashtest: the product module must not
// even contain its header name.
func TestProductModuleHasNoCrashSwitch(t *testing.T) {
	marker := []byte(crashTestHeaderName)
	product := wasmbuild.Bytes(t)
	if bytes.Contains(product, marker) {
		t.Fatalf("the product module contains %q: the crash-test code is compiled in", marker)
	}
	crash, err := os.ReadFile(wasmbuild.FilterWithTags(t, "modelcache_crashtest"))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(crash, marker) {
		t.Fatalf("the crash-test module lacks %q: this check would prove nothing", marker)
	}
}

// crashTestHeaderName is filter/crashtest.go's crashHeader, spelled here
// because that file is not compiled into this (untagged) test binary.
const crashTestHeaderName = "x-modelcache-crash"

// vmLifeKey is where cachecore.VMLife keeps the restart count.
const vmLifeKey = cachecore.VMLifeKey

// Every VM starts before traffic here, so none counts as a restart; the
// first request marks the process as serving.
func TestNoRestartCountedAtStart(t *testing.T) {
	hs := newHarness(t, chatConfig)
	if _, _, ok := hs.h.SharedData(vmLifeKey); ok {
		t.Fatalf("%s exists before any request", vmLifeKey)
	}
	hs.h.TickAll()
	expectCacheStatus(t, hs.post(0, "/v1/chat/completions", chatBody("x")), "stored")
	expectCacheStatus(t, hs.post(1, "/v1/chat/completions", chatBody("x")), "hit")
	hs.h.TickAll()
	if v, _, ok := hs.h.SharedData(vmLifeKey); !ok || !bytes.Equal(v, make([]byte, 8)) {
		t.Fatalf("%s = %v (present %v), want a zero count", vmLifeKey, v, ok)
	}
	if n := hs.counter("modelcache.vm_restarts"); n != 0 {
		t.Fatalf("vm_restarts = %d with no restart", n)
	}
	if n, ok := hs.h.Counter("modelcache.vm_restarts"); !ok || n != 0 {
		t.Fatalf("modelcache.vm_restarts defined %v, = %d", ok, n)
	}
}

//go:build !wasip1

package main

import (
	"strings"
	"testing"

	"github.com/modelcache/modelcache/wasmhost"
)

// A configuration whose table layout (store.buckets x store.ways) differs
// from the one the process's configuration before it had starts the cache
// empty (cachecore.New, mc:layout). Two configurations that share a vm_id
// with different layouts did that silently at every start; the operator
// now reads why in Envoy's log, once per start, and not when the layout
// is the one before.
func TestALayoutChangeIsLoggedOnce(t *testing.T) {
	for _, tc := range []struct {
		before string
		warned int
	}{{"16x4", 1}, {"1024x4", 0}} {
		hs := newHarness(t, chatConfig, withWorkers(2), func(_ *harness, c *wasmhost.Config) {
			c.SharedData = map[string][]byte{"mc:layout": []byte(tc.before)}
		})
		got := hs.h.LogsContaining("store layout changed")
		if len(got) != tc.warned {
			t.Fatalf("layout before %s: %d warnings, want %d: %v", tc.before, len(got), tc.warned, got)
		}
		if tc.warned == 1 && (got[0].Level != wasmhost.LogWarn || !strings.Contains(got[0].Msg, "from 16x4 to 1024x4") || !strings.Contains(got[0].Msg, "vm_id")) {
			t.Fatalf("warning: %v", got[0])
		}
	}
}

// A configuration whose store.lease_slots differs from the count the
// process's first configuration recorded keeps the recorded one (review
// Z23: the configuration before it, still serving its draining
// connections, must place a key's lease in the same slot) and says so at
// each VM's start (every one keeps it); the recorded count stays.
func TestALeaseSlotsChangeIsKeptAndLogged(t *testing.T) {
	for _, tc := range []struct {
		before string
		warned bool
	}{{"64", true}, {"1024", false}} {
		hs := newHarness(t, chatConfig, withWorkers(2), func(_ *harness, c *wasmhost.Config) {
			c.SharedData = map[string][]byte{"mc:lease-slots": []byte(tc.before)}
		})
		got := hs.h.LogsContaining("store.lease_slots")
		if len(got) > 0 != tc.warned {
			t.Fatalf("lease slots before %s: %d warnings, want some: %v: %v", tc.before, len(got), tc.warned, got)
		}
		if tc.warned && (got[0].Level != wasmhost.LogWarn || !strings.Contains(got[0].Msg, "store.lease_slots 1024 takes effect when Envoy restarts: the process keeps 64 lease slots")) {
			t.Fatalf("warning: %v", got[0])
		}
		if v, _, _ := hs.h.SharedData("mc:lease-slots"); string(v) != tc.before {
			t.Fatalf("mc:lease-slots = %q, want the process's %s", v, tc.before)
		}
	}
}

package cachecore

import (
	"strings"
	"testing"
)

// A new module version pushed while traffic flows starts new VMs after the
// process served traffic, as a crash reload does; it is not a restart
// (ModelcacheVMRestarts is critical: an upgrade must not page). A VM of
// that version that starts late again — a crash of the new version — is
// one.
func TestVMLifeANewModuleVersionIsNotARestart(t *testing.T) {
	store := NewMemStore()
	old := VMLife{Module: "v1"}
	old.Start(store)
	old.Live(store, true)

	for i, tc := range []struct {
		module    string
		restarted bool
	}{
		{"v2", false}, // the upgrade: v2's VMs start late
		{"v2", false}, // another worker's v2 VM, before any v2 request
		{"v1", true},  // a v1 VM reloaded after a crash (v1 served traffic)
	} {
		var l VMLife
		l.Module = tc.module
		l.Start(store)
		if restarted, warning := l.Live(store, false); restarted != tc.restarted {
			t.Fatalf("VM %d (module %s): restarted %v, want %v (%q)", i, tc.module, restarted, tc.restarted, warning)
		}
	}
	// v2 serves: from now on a late v2 VM replaces one that stopped.
	var served VMLife
	served.Module = "v2"
	served.Start(store)
	served.Live(store, true)
	var crashed VMLife
	crashed.Module = "v2"
	crashed.Start(store)
	restarted, warning := crashed.Live(store, false)
	if !restarted || !strings.HasPrefix(warning, "VM restarted (2)") {
		t.Fatalf("a v2 VM started after v2 served: restarted %v %q", restarted, warning)
	}
}

// The host skips Live for a request once Settled: that is only when a
// request's Live would do nothing (live, and VMLifeKey known to exist).
func TestVMLifeSettledOnlyOnceARequestMarkedTraffic(t *testing.T) {
	store := NewMemStore()
	var l VMLife
	l.Start(store)
	if l.Settled() {
		t.Fatal("settled before any tick or request")
	}
	l.Live(store, false) // a tick: live, but marks no traffic
	if l.Settled() {
		t.Fatal("settled after a tick alone")
	}
	l.Live(store, true)
	if !l.Settled() {
		t.Fatal("not settled after a request")
	}
	if _, _, err := store.Get(VMLifeKey); err != nil {
		t.Fatalf("VMLifeKey not written: %v", err)
	}
}

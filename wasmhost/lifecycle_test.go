package wasmhost

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"
)

func TestCanaryAndStartup(t *testing.T) {
	for _, workers := range []int{1, 2, 4} {
		t.Run(itoa(workers)+" workers", func(t *testing.T) {
			h := newHost(t, Config{Workers: workers, PluginConfig: []byte("canary_side_effects=1"), VMConfig: []byte("vmcfg")})
			vms := workers + 1 // main-thread VM + workers
			if got := h.ConfigureCalls(); got != vms+1 {
				t.Fatalf("proxy_on_configure ran %d times, want %d (VMs + canary)", got, vms+1)
			}
			if got := countLogs(h, "", "configure root=1"); got != vms+1 {
				t.Fatalf("configure log lines = %d, want %d", got, vms+1)
			}
			if got := countLogs(h, "canary", `vm_start root=1 size=5 config="vmcfg"`); got != 1 {
				t.Fatal("canary did not see the VM configuration")
			}
			// The canary's shared-data writes persist.
			if v, _, ok := h.SharedData("canary_wrote"); !ok || string(v) != "yes" {
				t.Fatalf("canary write = %q, %v", v, ok)
			}
			if v, _, _ := h.SharedData("configure_count"); string(v) != itoa(vms+1) {
				t.Fatalf("configure_count = %s, want %d", v, vms+1)
			}
			// Its tick timer died with it: no live VM has a period.
			for _, vm := range append([]int{MainVM}, seq(workers)...) {
				if p := h.TickPeriod(vm); p != 0 {
					t.Fatalf("VM %d has tick period %v from the canary", vm, p)
				}
			}
			h.AdvanceAndTick(5 * time.Second)
			if n := countLogs(h, "", "tick begin"); n != 0 {
				t.Fatalf("%d ticks fired; the canary's timer must be gone", n)
			}
		})
	}
}

func seq(n int) []int {
	s := make([]int, n)
	for i := range s {
		s[i] = i
	}
	return s
}

// TestCanaryQueueRegistration: cpp-host records the registrant's thread and
// context id and, on delivery, looks up that thread's VM by vm_key. The
// canary runs on the main thread, so a queue only the canary registered
// notifies the main-thread VM's root context (id 1 there too).
func TestCanaryQueueRegistration(t *testing.T) {
	h := newHost(t, Config{Workers: 2, PluginConfig: []byte("canary_side_effects=1\ndequeue_on_ready=0")})
	hs := sharedOp(t, h, 1, "enqueue", "x-queue", "canary-only", "x-value", "hello")
	if header(hs, "x-status") != "0" {
		t.Fatalf("enqueue to the canary's queue = %s, want OK (registration survives)", header(hs, "x-status"))
	}
	if n := countLogs(h, "main", "queue_ready root=1"); n != 1 {
		t.Fatalf("main-thread VM got %d queue_ready, want 1", n)
	}
	if n := countLogs(h, "canary", "queue_ready"); n != 0 {
		t.Fatal("a dead canary received a callback")
	}
	if h.QueueLength("canary-only") != 1 {
		t.Fatal("item lost")
	}
}

func TestStartupFailures(t *testing.T) {
	tests := []struct {
		name      string
		cfg       Config
		wantInErr []string
	}{
		{"configure returns false", Config{PluginConfig: []byte("fail_configure=ttl")},
			[]string{"canary VM", "proxy_on_configure returned false", `configure failed: field "ttl" is invalid`}},
		{"vm_start returns false", Config{VMConfig: []byte("fail")},
			[]string{"canary VM", "proxy_on_vm_start returned false", `vm_start root=1 size=4 config="fail"`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := New(context.Background(), testModule, tt.cfg)
			if err == nil {
				t.Fatal("New succeeded")
			}
			for _, want := range tt.wantInErr {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("error %q does not contain %q", err, want)
				}
			}
		})
	}
}

func TestContextIDsArePerVM(t *testing.T) {
	h := newHost(t, Config{Workers: 3})
	for w := 0; w < 3; w++ {
		for i, want := range []uint32{2, 3, 4} {
			if got := h.InitializeHttpContext(w); got != want {
				t.Fatalf("worker %d stream %d got id %d, want %d (root is 1 on every VM)", w, i, got, want)
			}
		}
	}
	if n := countLogs(h, "worker-2", "context_create ctx=4 parent=1"); n != 1 {
		t.Fatal("on_context_create(4, 1) not seen on worker-2")
	}
}

func TestTickPeriodsPerVM(t *testing.T) {
	clock := NewFakeClock(time.Time{})
	h := newHost(t, Config{Workers: 2, Clock: clock, PluginConfig: []byte("tick_ms=100")})
	for _, vm := range []int{MainVM, 0, 1} {
		if p := h.TickPeriod(vm); p != 100*time.Millisecond {
			t.Fatalf("VM %d period %v", vm, p)
		}
	}
	t.Run("Tick and TickAll", func(t *testing.T) {
		if !h.Tick(1) {
			t.Fatal("Tick(1) did not tick")
		}
		if countLogs(h, "worker-1", "tick begin") != 1 || countLogs(h, "", "tick begin") != 1 {
			t.Fatal("Tick(1) must tick only worker-1")
		}
		h.TickAll()
		for _, vm := range []string{"main", "worker-0", "worker-1"} {
			if countLogs(h, vm, "tick begin") < 1 {
				t.Fatalf("%s not ticked", vm)
			}
		}
	})
	t.Run("AdvanceAndTick fires each period", func(t *testing.T) {
		before := countLogs(h, "worker-0", "tick begin")
		start := clock.Now()
		h.AdvanceAndTick(350 * time.Millisecond)
		if got := countLogs(h, "worker-0", "tick begin") - before; got != 3 {
			t.Fatalf("worker-0 ticked %d times in 350ms at 100ms, want 3", got)
		}
		if d := clock.Now().Sub(start); d != 350*time.Millisecond {
			t.Fatalf("clock advanced %v", d)
		}
		h.AdvanceAndTick(50 * time.Millisecond)
		if got := countLogs(h, "worker-0", "tick begin") - before; got != 4 {
			t.Fatalf("after 400ms: %d ticks, want 4", got)
		}
	})
}

func TestCloseCallsOnDone(t *testing.T) {
	h, err := New(context.Background(), testModule, Config{Workers: 1})
	if err != nil {
		t.Fatal(err)
	}
	h.Close()
	if n := countLogs(h, "", "on_done ctx=1"); n != 2 {
		t.Fatalf("on_done(root) = %d, want 2 (main + worker)", n)
	}
	h.Close() // idempotent
}

func TestCompileRejects(t *testing.T) {
	if _, err := Compile(context.Background(), []byte("not wasm")); err == nil {
		t.Fatal("garbage compiled")
	}
	_, err := New(context.Background(), testModule, Config{Workers: 1, PluginConfig: []byte("fail_configure=x")})
	if err == nil || errors.Is(err, ErrVMFailed) {
		t.Fatalf("configure failure must not be a VM trap: %v", err)
	}
}

// TestOverdueTickFiresOnce: a timer that fell behind (the clock jumped)
// fires once and re-arms one period later, like an Envoy timer.
func TestOverdueTickFiresOnce(t *testing.T) {
	clock := NewFakeClock(time.Time{})
	h := newHost(t, Config{Workers: 1, Clock: clock, PluginConfig: []byte("tick_ms=100")})
	clock.Advance(time.Second) // ten periods pass without the dispatcher running
	h.AdvanceAndTick(0)
	if n := countLogs(h, "worker-0", "tick begin"); n != 1 {
		t.Fatalf("overdue timer fired %d times, want 1", n)
	}
	h.AdvanceAndTick(99 * time.Millisecond)
	if n := countLogs(h, "worker-0", "tick begin"); n != 1 {
		t.Fatalf("fired again too early (%d)", n)
	}
	h.AdvanceAndTick(time.Millisecond)
	if n := countLogs(h, "worker-0", "tick begin"); n != 2 {
		t.Fatalf("ticks = %d, want 2", n)
	}
}

package wasmhost

import (
	"strconv"
	"testing"

	"github.com/modelcache/modelcache/internal/hammer"
)

// TestHammerSharedDataCAS drives 8 worker VMs from 8 goroutines, released at
// once, each doing CAS-loop increments on shared counters. Every increment
// must land exactly once (run with -race).
func TestHammerSharedDataCAS(t *testing.T) {
	const (
		workers   = 8
		exchanges = 12
		perReq    = 10
		keys      = 3
	)
	h := newHost(t, Config{Workers: workers, ManualDrain: true})
	for k := 0; k < keys; k++ {
		// Pre-create the keys: a set on a missing key succeeds whatever the
		// cas, so concurrent creation could lose an update.
		h.SetSharedData("ctr"+strconv.Itoa(k), []byte("0"), 0)
	}
	retries := make([]int, workers)
	hammer.Loop(t, workers, exchanges, func(w, i int) error {
		key := "ctr" + strconv.Itoa((w+i)%keys)
		ex := h.StartExchange(w, Request{Headers: req("shared-incr", "x-key", key, "x-n", strconv.Itoa(perReq))})
		h.DrainVM(w)
		if !ex.Done() {
			return &hammerErr{w, ex.State()}
		}
		n, _ := strconv.Atoi(header(ex.Response().Headers, "x-retries"))
		retries[w] += n
		return nil
	})
	total := 0
	for k := 0; k < keys; k++ {
		v, _, _ := h.SharedData("ctr" + strconv.Itoa(k))
		n, _ := strconv.Atoi(string(v))
		total += n
	}
	if want := workers * exchanges * perReq; total != want {
		t.Fatalf("total = %d, want %d (lost updates)", total, want)
	}
	sum := 0
	for _, r := range retries {
		sum += r
	}
	t.Logf("%d CAS retries across %d VMs", sum, workers)
	if len(h.FailedVMs()) != 0 {
		t.Fatal(h.FailedVMs())
	}
}

type hammerErr struct {
	worker int
	state  string
}

func (e *hammerErr) Error() string { return "worker " + strconv.Itoa(e.worker) + ": " + e.state }

// TestHammerCrossVMEvents mixes cross-VM queue posts, ticks and automatic
// draining from many goroutines to shake out data races in event delivery.
func TestHammerCrossVMEvents(t *testing.T) {
	const workers = 6
	h := newHost(t, Config{Workers: workers, PluginConfig: []byte("tick_ms=10\ndequeue_on_ready=0")})
	h.cfg.Upstream = func(u *UpstreamRequest) { u.Respond(200, nil, []byte("ok")) }
	for w := 0; w < workers; w++ {
		sharedOp(t, h, w, "register-queue", "x-queue", "q"+strconv.Itoa(w))
	}
	hammer.Loop(t, workers, 10, func(w, i int) error {
		target := "q" + strconv.Itoa((w+1)%workers)
		h.StartExchange(w, Request{Headers: req("enqueue", "x-queue", target, "x-value", "m")})
		h.StartExchange(w, Request{Headers: req("continue-later")})
		h.Tick(w)
		h.Drain()
		return nil
	})
	h.Drain()
	for w := 0; w < workers; w++ {
		if n := countLogs(h, "worker-"+strconv.Itoa(w), "queue_ready"); n != 10 {
			t.Fatalf("worker-%d got %d queue_ready, want 10", w, n)
		}
	}
	if len(h.FailedVMs()) != 0 {
		t.Fatal(h.FailedVMs())
	}
}

package wasmhost

import (
	"strconv"
	"testing"
)

func TestSharedQueueOwnership(t *testing.T) {
	h := newHost(t, Config{Workers: 3, PluginConfig: []byte("dequeue_on_ready=0")})
	token := func(hs [][2]string) string { return header(hs, "x-token") }

	t1 := token(sharedOp(t, h, 0, "register-queue", "x-queue", "wake"))
	if st := sharedOp(t, h, 2, "enqueue", "x-queue", "wake", "x-value", "one"); header(st, "x-status") != "0" {
		t.Fatalf("enqueue status %s", header(st, "x-status"))
	}
	if n := countLogs(h, "worker-0", "queue_ready"); n != 1 {
		t.Fatalf("queue_ready on worker-0 = %d, want 1", n)
	}

	// A second registrant takes the queue over; the token and items stay.
	t2 := token(sharedOp(t, h, 1, "register-queue", "x-queue", "wake"))
	if t1 != t2 {
		t.Fatalf("re-registration changed the token: %s → %s", t1, t2)
	}
	if h.QueueLength("wake") != 1 {
		t.Fatalf("queue length = %d, want 1 (items survive re-registration)", h.QueueLength("wake"))
	}
	sharedOp(t, h, 2, "enqueue", "x-queue", "wake", "x-value", "two")
	sharedOp(t, h, 0, "enqueue", "x-queue", "wake", "x-value", "three")
	if n := countLogs(h, "worker-0", "queue_ready"); n != 1 {
		t.Fatalf("old owner got %d queue_ready, want still 1", n)
	}
	if n := countLogs(h, "worker-1", "queue_ready root=1 token="+t1); n != 2 {
		t.Fatalf("new owner got %d queue_ready, want 2 (one per enqueue)", n)
	}

	// Any VM may dequeue, FIFO, then EMPTY.
	for i, want := range []string{"one", "two", "three"} {
		hs := sharedOp(t, h, 2-i%3, "dequeue", "x-queue", "wake")
		if header(hs, "x-status") != "0" || header(hs, "x-value") != want {
			t.Fatalf("dequeue %d = %s %q, want OK %q", i, header(hs, "x-status"), header(hs, "x-value"), want)
		}
	}
	hs := sharedOp(t, h, 0, "dequeue", "x-queue", "wake")
	if got := header(hs, "x-status"); got != strconv.Itoa(int(StatusEmpty)) {
		t.Fatalf("dequeue on drained queue = %s, want EMPTY (7)", got)
	}
}

func TestSharedQueueResolve(t *testing.T) {
	h := newHost(t, Config{Workers: 2, VMID: "vm-a"})
	tests := []struct {
		name, vmID, queue string
		register          bool
		want              Status
	}{
		{"never registered", "", "nope", false, StatusNotFound},
		{"own vm_id by empty name", "", "q1", true, StatusOK},
		{"own vm_id by name", "vm-a", "q2", true, StatusOK},
		{"other vm_id", "vm-b", "q3", true, StatusNotFound},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var want string
			if tt.register {
				want = header(sharedOp(t, h, 0, "register-queue", "x-queue", tt.queue), "x-token")
			}
			hs := sharedOp(t, h, 1, "resolve-queue", "x-queue", tt.queue, "x-vm-id", tt.vmID)
			if got := header(hs, "x-status"); got != strconv.Itoa(int(tt.want)) {
				t.Fatalf("resolve status = %s, want %v", got, tt.want)
			}
			if tt.want == StatusOK && header(hs, "x-token") != want {
				t.Fatalf("resolved token %s, registered %s", header(hs, "x-token"), want)
			}
		})
	}
	t.Run("enqueue to an unknown token", func(t *testing.T) {
		if _, _, st := h.queues.enqueue(9999, nil); st != StatusNotFound {
			t.Fatalf("enqueue = %v, want NOT_FOUND", st)
		}
	})
}

// TestQueueReadyIsPosted: the notification is delivered after the
// enqueuing call returns, and only when the host drains.
func TestQueueReadyIsPosted(t *testing.T) {
	h := newHost(t, Config{Workers: 2, ManualDrain: true, PluginConfig: []byte("dequeue_on_ready=0")})
	ex := h.StartExchange(0, Request{Headers: req("register-queue", "x-queue", "q")})
	h.Drain()
	if !ex.Done() {
		t.Fatal(ex.State())
	}
	h.StartExchange(0, Request{Headers: req("enqueue", "x-queue", "q", "x-value", "x")})
	if n := countLogs(h, "", "queue_ready"); n != 0 {
		t.Fatalf("queue_ready delivered re-entrantly (%d)", n)
	}
	if !h.Pending() {
		t.Fatal("no pending event after enqueue")
	}
	h.DrainVM(1)
	if n := countLogs(h, "", "queue_ready"); n != 0 {
		t.Fatal("DrainVM(1) delivered worker-0's event")
	}
	h.DrainVM(0)
	if n := countLogs(h, "worker-0", "queue_ready"); n != 1 {
		t.Fatalf("queue_ready = %d, want 1", n)
	}
}

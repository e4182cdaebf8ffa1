package wasmhost

import (
	"strconv"
	"testing"
)

// sharedOp runs a shared-data x-op on a worker and returns the reply headers.
func sharedOp(t *testing.T, h *Host, worker int, op string, kv ...string) [][2]string {
	t.Helper()
	return mustExchange(t, h, worker, Request{Headers: req(op, kv...)}).Headers
}

func TestSharedDataSemantics(t *testing.T) {
	h := newHost(t, Config{})
	status := func(hs [][2]string) Status {
		n, _ := strconv.Atoi(header(hs, "x-status"))
		return Status(n)
	}
	set := func(worker int, key, value string, cas uint32) Status {
		return status(sharedOp(t, h, worker, "shared-set", "x-key", key, "x-value", value, "x-cas", strconv.Itoa(int(cas))))
	}
	get := func(worker int, key string) (string, uint32, Status) {
		hs := sharedOp(t, h, worker, "shared-get", "x-key", key)
		cas, _ := strconv.Atoi(header(hs, "x-cas"))
		return header(hs, "x-value"), uint32(cas), status(hs)
	}

	t.Run("missing key is NOT_FOUND", func(t *testing.T) {
		if _, _, st := get(0, "nope"); st != StatusNotFound {
			t.Fatalf("get = %v, want NOT_FOUND", st)
		}
	})
	t.Run("set on a missing key succeeds with any cas", func(t *testing.T) {
		for i, cas := range []uint32{0, 1, 12345, 0xffffffff} {
			key := "fresh-" + strconv.Itoa(i)
			if st := set(i%2, key, "v", cas); st != StatusOK {
				t.Fatalf("set(cas=%d) on missing key = %v, want OK", cas, st)
			}
		}
	})
	t.Run("CAS mismatch on an existing key", func(t *testing.T) {
		set(0, "k", "v1", 0)
		_, cas, _ := get(1, "k")
		if st := set(1, "k", "v2", cas+1000); st != StatusCasMismatch {
			t.Fatalf("stale cas = %v, want CAS_MISMATCH", st)
		}
		if st := set(1, "k", "v2", cas); st != StatusOK {
			t.Fatalf("current cas = %v, want OK", st)
		}
		if st := set(0, "k", "v3", cas); st != StatusCasMismatch {
			t.Fatalf("reused cas = %v, want CAS_MISMATCH (every set gets a new cas)", st)
		}
		if v, _, _ := get(0, "k"); v != "v2" {
			t.Fatalf("value = %q, want v2", v)
		}
		if st := set(0, "k", "v4", 0); st != StatusOK {
			t.Fatalf("cas 0 = %v, want OK (unconditional)", st)
		}
	})
	t.Run("empty value keeps the key", func(t *testing.T) {
		set(0, "gone", "payload", 0)
		before := h.SharedDataBytes()
		if st := set(0, "gone", "", 0); st != StatusOK {
			t.Fatalf("set empty = %v", st)
		}
		v, _, st := get(1, "gone")
		if st != StatusOK || v != "" {
			t.Fatalf("get after empty set = %q, %v; want \"\", OK", v, st)
		}
		if _, _, ok := h.SharedData("gone"); !ok {
			t.Fatal("key vanished; Envoy keeps it")
		}
		if after := h.SharedDataBytes(); after != before-len("payload") {
			t.Fatalf("SharedDataBytes = %d, want %d", after, before-len("payload"))
		}
	})
	t.Run("cas values are unique and nonzero", func(t *testing.T) {
		seen := map[uint32]bool{}
		for i := 0; i < 20; i++ {
			key := "u" + strconv.Itoa(i%3)
			set(i%2, key, strconv.Itoa(i), 0)
			_, cas, _ := get(0, key)
			if cas == 0 || seen[cas] {
				t.Fatalf("cas %d is zero or repeated", cas)
			}
			seen[cas] = true
		}
	})
	t.Run("keys are listed", func(t *testing.T) {
		keys := h.SharedDataKeys()
		want := map[string]bool{"configure_count": true, "k": true, "gone": true}
		for _, k := range keys {
			delete(want, k)
		}
		if len(want) != 0 {
			t.Fatalf("SharedDataKeys = %q, missing %v", keys, want)
		}
	})
}

func TestSharedDataCASCounterSkipsZero(t *testing.T) {
	s := newSharedData()
	s.nextCas = 0xffffffff
	s.set("vm", "a", nil, 0)
	s.set("vm", "b", nil, 0)
	_, ca, _ := s.get("vm", "a")
	_, cb, _ := s.get("vm", "b")
	if ca != 0xffffffff || cb != 1 {
		t.Fatalf("cas after wrap = %d, %d; want 4294967295, 1", ca, cb)
	}
}

func TestSharedDataIsPerVMID(t *testing.T) {
	a := newHost(t, Config{VMID: "a", Workers: 1})
	if st := a.SetSharedData("k", []byte("1"), 0); st != StatusOK {
		t.Fatal(st)
	}
	b := newHost(t, Config{VMID: "b", Workers: 1})
	if _, _, ok := b.SharedData("k"); ok {
		t.Fatal("another Host (another Envoy process) sees the key")
	}
	hs := sharedOp(t, a, 0, "shared-get", "x-key", "k")
	if header(hs, "x-value") != "1" {
		t.Fatalf("guest read %q", header(hs, "x-value"))
	}
}

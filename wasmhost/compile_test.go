package wasmhost

import (
	"context"
	"strings"
	"testing"
)

// wasmModule is a tiny wasm binary writer for modules the Go toolchain
// cannot produce (wrong signatures, missing exports, hostcalls in
// _initialize).
type wasmModule struct {
	types   [][2][]byte // params, results as valtype bytes
	imports []wasmImport
	funcs   []wasmFunc
}

type wasmImport struct {
	module, name string
	typ          int
}

type wasmFunc struct {
	export string
	typ    int
	body   []byte // instructions without the final end
}

const (
	wI32 = 0x7f
	wI64 = 0x7e
)

func (m *wasmModule) typ(params, results []byte) int {
	m.types = append(m.types, [2][]byte{params, results})
	return len(m.types) - 1
}

func uleb(n uint32) []byte {
	var b []byte
	for {
		c := byte(n & 0x7f)
		n >>= 7
		if n != 0 {
			b = append(b, c|0x80)
			continue
		}
		return append(b, c)
	}
}

func sleb(n int32) []byte {
	var b []byte
	for {
		c := byte(n & 0x7f)
		n >>= 7
		if (n == 0 && c&0x40 == 0) || (n == -1 && c&0x40 != 0) {
			return append(b, c)
		}
		b = append(b, c|0x80)
	}
}

func wname(s string) []byte { return append(uleb(uint32(len(s))), s...) }

func section(id byte, count int, body []byte) []byte {
	content := append(uleb(uint32(count)), body...)
	return append(append([]byte{id}, uleb(uint32(len(content)))...), content...)
}

func (m *wasmModule) bytes() []byte {
	out := []byte{0, 'a', 's', 'm', 1, 0, 0, 0}
	var b []byte
	for _, t := range m.types {
		b = append(b, 0x60)
		b = append(append(b, uleb(uint32(len(t[0])))...), t[0]...)
		b = append(append(b, uleb(uint32(len(t[1])))...), t[1]...)
	}
	out = append(out, section(1, len(m.types), b)...)
	b = nil
	for _, im := range m.imports {
		b = append(append(append(b, wname(im.module)...), wname(im.name)...), 0)
		b = append(b, uleb(uint32(im.typ))...)
	}
	out = append(out, section(2, len(m.imports), b)...)
	b = nil
	for _, f := range m.funcs {
		b = append(b, uleb(uint32(f.typ))...)
	}
	out = append(out, section(3, len(m.funcs), b)...)
	out = append(out, section(5, 1, []byte{0, 2})...) // memory, min 2 pages
	b = append(wname("memory"), 2, 0)
	n := 1
	for i, f := range m.funcs {
		if f.export != "" {
			b = append(append(b, wname(f.export)...), 0)
			b = append(b, uleb(uint32(len(m.imports)+i))...)
			n++
		}
	}
	out = append(out, section(7, n, b)...)
	b = nil
	for _, f := range m.funcs {
		body := append(append([]byte{0}, f.body...), 0x0b)
		b = append(append(b, uleb(uint32(len(body)))...), body...)
	}
	return append(out, section(10, len(m.funcs), b)...)
}

// baseModule has the minimum cpp-host needs: the ABI marker, memory and
// an allocator whose body is given.
func baseModule(abi string, alloc []byte) *wasmModule {
	m := &wasmModule{}
	void := m.typ(nil, nil)
	i32i32 := m.typ([]byte{wI32}, []byte{wI32})
	if abi != "" {
		m.funcs = append(m.funcs, wasmFunc{export: "proxy_abi_version_" + abi, typ: void})
	}
	if alloc != nil {
		m.funcs = append(m.funcs, wasmFunc{export: "proxy_on_memory_allocate", typ: i32i32, body: alloc})
	}
	return m
}

var allocFixed = []byte{0x41, 0x80, 0x08} // i32.const 1024

func call(idx int) []byte { return append([]byte{0x10}, uleb(uint32(idx))...) }

func i32c(n int32) []byte { return append([]byte{0x41}, sleb(n)...) }

func TestCompileValidation(t *testing.T) {
	tests := []struct {
		name  string
		build func() *wasmModule
		want  string
	}{
		{"no ABI marker", func() *wasmModule { return baseModule("", allocFixed) }, "Missing or unknown Proxy-Wasm ABI version"},
		{"ABI 0.1.0", func() *wasmModule { return baseModule("0_1_0", allocFixed) }, "0.1.0 is not supported"},
		{"no allocator", func() *wasmModule { return baseModule("0_2_1", nil) }, "missing malloc function"},
		{"unknown import", func() *wasmModule {
			m := baseModule("0_2_1", allocFixed)
			m.imports = append(m.imports, wasmImport{"env", "proxy_nope", 0})
			return m
		}, "missing import env.proxy_nope"},
		{"unknown WASI import", func() *wasmModule {
			m := baseModule("0_2_1", allocFixed)
			m.imports = append(m.imports, wasmImport{"wasi_snapshot_preview1", "thread_spawn", 0})
			return m
		}, "missing import wasi_snapshot_preview1.thread_spawn"},
		{"import type mismatch", func() *wasmModule {
			m := baseModule("0_2_1", allocFixed)
			m.imports = append(m.imports, wasmImport{"env", "proxy_log", 0}) // () -> ()
			return m
		}, "import type mismatch env.proxy_log"},
		{"get_log_level needs ABI 0.2.1", func() *wasmModule {
			m := baseModule("0_2_0", allocFixed)
			m.imports = append(m.imports, wasmImport{"env", "proxy_get_log_level", 1})
			return m
		}, "missing import env.proxy_get_log_level"},
		{"bad callback signature", func() *wasmModule {
			m := baseModule("0_2_1", allocFixed)
			m.funcs = append(m.funcs, wasmFunc{export: "proxy_on_tick", typ: 1, body: i32c(0)}) // (i32)->i32
			return m
		}, "Bad function signature for: proxy_on_tick"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Compile(context.Background(), tt.build().bytes())
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("Compile error = %v, want %q", err, tt.want)
			}
		})
	}
	t.Run("minimal module loads", func(t *testing.T) {
		m, err := Compile(context.Background(), baseModule("0_2_1", allocFixed).bytes())
		if err != nil {
			t.Fatal(err)
		}
		defer m.Close(context.Background())
		h, err := New(context.Background(), m, Config{Workers: 1})
		if err != nil {
			t.Fatal(err)
		}
		h.Close()
	})
}

// TestRestrictedCallbacks: cpp-host traps a VM that calls a hostcall outside
// the allow-list during _initialize.
func TestRestrictedCallbacks(t *testing.T) {
	m := baseModule("0_2_1", allocFixed)
	m.imports = append(m.imports, wasmImport{"env", "proxy_set_tick_period_milliseconds", 1})
	body := append(append(i32c(100), call(0)...), 0x1a) // call, drop
	m.funcs = append(m.funcs, wasmFunc{export: "_initialize", typ: 0, body: body})
	mod, err := Compile(context.Background(), m.bytes())
	if err != nil {
		t.Fatal(err)
	}
	defer mod.Close(context.Background())
	_, err = New(context.Background(), mod, Config{Workers: 1})
	if err == nil || !strings.Contains(err.Error(), "restricted_callback: env.proxy_set_tick_period_milliseconds called during _initialize") {
		t.Fatalf("New error = %v", err)
	}
}

// TestAllocatorUse: a zero-length result never calls the allocator; a
// non-empty one does, and an allocator returning 0 makes the hostcall
// INVALID_MEMORY_ACCESS (WasmBase::copyToPointerSize).
func TestAllocatorUse(t *testing.T) {
	build := func(alloc []byte, wantStatus Status) *Module {
		m := baseModule("0_2_1", alloc)
		getBuf := m.typ([]byte{wI32, wI32, wI32, wI32, wI32}, []byte{wI32})
		vmStart := m.typ([]byte{wI32, wI32}, []byte{wI32})
		m.imports = append(m.imports, wasmImport{"env", "proxy_get_buffer_bytes", getBuf})
		// vm_start returns get_buffer_bytes(VM_CONFIGURATION, 0, 100, &p=0, &n=4) == wantStatus.
		var body []byte
		for _, n := range []int32{6, 0, 100, 0, 4} {
			body = append(body, i32c(n)...)
		}
		body = append(append(body, call(0)...), append(i32c(int32(wantStatus)), 0x46)...) // i32.eq
		m.funcs = append(m.funcs, wasmFunc{export: "proxy_on_vm_start", typ: vmStart, body: body})
		mod, err := Compile(context.Background(), m.bytes())
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { mod.Close(context.Background()) })
		return mod
	}
	unreachable := []byte{0x00}
	tests := []struct {
		name    string
		alloc   []byte
		vmCfg   string
		status  Status
		wantErr string
	}{
		{"empty result skips a trapping allocator", unreachable, "", StatusOK, ""},
		{"non-empty result calls it", unreachable, "cfg", StatusOK, "unreachable"},
		{"allocator returning 0", i32c(0), "cfg", StatusInvalidMemoryAccess, ""},
		{"working allocator", allocFixed, "cfg", StatusOK, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h, err := New(context.Background(), build(tt.alloc, tt.status), Config{Workers: 1, VMConfig: []byte(tt.vmCfg)})
			if tt.wantErr == "" {
				if err != nil {
					t.Fatal(err)
				}
				if n := h.HostCallCount("env.proxy_get_buffer_bytes"); n != 3 {
					t.Fatalf("get_buffer_bytes calls = %d, want 3 (canary, main, worker)", n)
				}
				h.Close()
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("New error = %v, want %q", err, tt.wantErr)
			}
		})
	}
}

package wasmhost

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"

	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/api"
)

// Module is a compiled plugin. Compiling a Go wasip1 module takes about a
// second, so a test binary compiles once and every Host instantiates from the
// same Module. It is safe for concurrent use.
type Module struct {
	rt       wazero.Runtime
	compiled wazero.CompiledModule
	abi      string // "0_2_1" or "0_2_0"
	close    sync.Once
}

// hostFunc is one import the host provides. fn runs on the goroutine that
// called into the guest, with the calling VM's mutex held.
type hostFunc struct {
	module  string
	name    string
	params  []api.ValueType
	results []api.ValueType
	fn      func(v *vm, stack []uint64)
}

func (f *hostFunc) qualified() string { return f.module + "." + f.name }

const (
	i32 = api.ValueTypeI32
	i64 = api.ValueTypeI64
)

func sig(n int) []api.ValueType {
	s := make([]api.ValueType, n)
	for i := range s {
		s[i] = i32
	}
	return s
}

var (
	hostFuncsOnce sync.Once
	hostFuncTable map[string]*hostFunc // "module.name" → func
	hostFuncList  []*hostFunc
)

func hostFuncs() map[string]*hostFunc {
	hostFuncsOnce.Do(func() {
		hostFuncTable = map[string]*hostFunc{}
		add := func(fs []hostFunc) {
			for i := range fs {
				f := &fs[i]
				hostFuncTable[f.qualified()] = f
				hostFuncList = append(hostFuncList, f)
			}
		}
		add(envFuncs())
		add(wasiFuncs("wasi_snapshot_preview1"))
		add(wasiFuncs("wasi_unstable"))
	})
	return hostFuncTable
}

// cacheDir is shared by every test binary of the project so the second `go
// test` run skips wazero's compiler entirely.
func cacheDir() string { return filepath.Join(os.TempDir(), "modelcache-wazero-cache") }

// maxMemoryPages mirrors V8's --wasm_max_mem_pages = 1 GiB (cpp-host
// src/v8/v8.cc): a guest that grows past it fails as it would in Envoy.
const maxMemoryPages = 1 << 30 / 65536

// Compile validates and compiles a proxy-wasm module. It rejects what
// cpp-host would refuse to load: a missing or unknown ABI version export, an
// import the host does not provide (or provides with another signature), a
// known callback exported with the wrong signature, and a module with
// neither malloc nor proxy_on_memory_allocate.
func Compile(ctx context.Context, wasm []byte) (*Module, error) {
	cfg := wazero.NewRuntimeConfig().WithMemoryLimitPages(maxMemoryPages)
	if cache, err := wazero.NewCompilationCacheWithDir(cacheDir()); err == nil {
		cfg = cfg.WithCompilationCache(cache)
	}
	rt := wazero.NewRuntimeWithConfig(ctx, cfg)
	ok := false
	defer func() {
		if !ok {
			_ = rt.Close(ctx)
		}
	}()
	if err := instantiateHostModules(ctx, rt); err != nil {
		return nil, err
	}
	compiled, err := rt.CompileModule(ctx, wasm)
	if err != nil {
		return nil, fmt.Errorf("wasmhost: compile: %w", err)
	}
	m := &Module{rt: rt, compiled: compiled}
	if err := m.validate(); err != nil {
		return nil, err
	}
	ok = true
	return m, nil
}

// Close releases the runtime and every instance created from it.
func (m *Module) Close(ctx context.Context) error {
	var err error
	m.close.Do(func() { err = m.rt.Close(ctx) })
	return err
}

// ABIVersion reports the proxy-wasm ABI the module declared ("0_2_1" or "0_2_0").
func (m *Module) ABIVersion() string { return m.abi }

func instantiateHostModules(ctx context.Context, rt wazero.Runtime) error {
	byModule := map[string]wazero.HostModuleBuilder{}
	var order []string
	hostFuncs() // fills hostFuncList
	for _, f := range hostFuncList {
		b, ok := byModule[f.module]
		if !ok {
			b = rt.NewHostModuleBuilder(f.module)
			byModule[f.module] = b
			order = append(order, f.module)
		}
		name := f.qualified()
		b.NewFunctionBuilder().
			WithGoModuleFunction(api.GoModuleFunc(func(ctx context.Context, _ api.Module, stack []uint64) {
				v, _ := ctx.Value(vmKey{}).(*vm)
				if v == nil {
					panic(errors.New("wasmhost: host function called outside a host call: " + name))
				}
				v.h.countCall(name)
				if v.allowed != nil && !v.allowed[name] {
					// cpp-host traps the VM ("restricted_callback") when a
					// function outside the allow-list is called during
					// _initialize or proxy_on_memory_allocate.
					panic(&trapError{msg: "restricted_callback: " + name + " called during " + v.restrictedPhase})
				}
				f.fn(v, stack)
			}), f.params, f.results).
			WithName(f.name).
			Export(f.name)
	}
	for _, name := range order {
		if _, err := byModule[name].Instantiate(ctx); err != nil {
			return fmt.Errorf("wasmhost: instantiate host module %s: %w", name, err)
		}
	}
	return nil
}

// callbackSigs are the exports cpp-host looks up, with the types V8's
// getFunction insists on (ABI v0.2.x).
var callbackSigs = map[string][2]int{ // name → (#i32 params, #i32 results)
	"_initialize":                  {0, 0},
	"proxy_on_memory_allocate":     {1, 1},
	"malloc":                       {1, 1},
	"proxy_on_context_create":      {2, 0},
	"proxy_on_vm_start":            {2, 1},
	"proxy_on_configure":           {2, 1},
	"proxy_validate_configuration": {2, 1},
	"proxy_on_tick":                {1, 0},
	"proxy_on_done":                {1, 1},
	"proxy_on_log":                 {1, 0},
	"proxy_on_delete":              {1, 0},
	"proxy_on_request_headers":     {3, 1},
	"proxy_on_request_body":        {3, 1},
	"proxy_on_request_trailers":    {2, 1},
	"proxy_on_request_metadata":    {2, 1},
	"proxy_on_response_headers":    {3, 1},
	"proxy_on_response_body":       {3, 1},
	"proxy_on_response_trailers":   {2, 1},
	"proxy_on_response_metadata":   {2, 1},
	"proxy_on_http_call_response":  {5, 0},
	"proxy_on_queue_ready":         {2, 0},
	"proxy_on_foreign_function":    {3, 0},
}

func allI32(ts []api.ValueType, n int) bool {
	if len(ts) != n {
		return false
	}
	for _, t := range ts {
		if t != i32 {
			return false
		}
	}
	return true
}

func (m *Module) validate() error {
	exports := m.compiled.ExportedFunctions()
	// cpp-host's bytecode_util scans the export section in order; the first
	// ABI marker found wins. wazero does not expose section order, so a module
	// exporting several markers is resolved newest-first (none do in practice).
	switch {
	case exports["proxy_abi_version_0_2_1"] != nil:
		m.abi = "0_2_1"
	case exports["proxy_abi_version_0_2_0"] != nil:
		m.abi = "0_2_0"
	case exports["proxy_abi_version_0_1_0"] != nil:
		return errors.New("wasmhost: proxy-wasm ABI 0.1.0 is not supported by this host")
	default:
		return errors.New("wasmhost: Missing or unknown Proxy-Wasm ABI version")
	}
	if exports["malloc"] == nil && exports["proxy_on_memory_allocate"] == nil {
		return errors.New("wasmhost: Wasm module is missing malloc function.")
	}
	if _, ok := m.compiled.ExportedMemories()["memory"]; !ok {
		return errors.New("wasmhost: Wasm module does not export memory")
	}
	for name, s := range callbackSigs {
		fd := exports[name]
		if fd == nil {
			continue
		}
		if !allI32(fd.ParamTypes(), s[0]) || !allI32(fd.ResultTypes(), s[1]) {
			return fmt.Errorf("wasmhost: Bad function signature for: %s", name)
		}
	}
	table := hostFuncs()
	var problems []string
	for _, imp := range m.compiled.ImportedFunctions() {
		mod, name, _ := imp.Import()
		f := table[mod+"."+name]
		switch {
		case f == nil || (m.abi == "0_2_0" && name == "proxy_get_log_level"):
			problems = append(problems, "missing import "+mod+"."+name)
		case !slices.Equal(f.params, imp.ParamTypes()) || !slices.Equal(f.results, imp.ResultTypes()):
			problems = append(problems, "import type mismatch "+mod+"."+name)
		}
	}
	if len(problems) > 0 {
		slices.Sort(problems)
		return fmt.Errorf("wasmhost: Failed to load Wasm module: %s", strings.Join(problems, ", "))
	}
	return nil
}

// Imports lists the module's function imports as "module.name", sorted. It
// lets tests check which WASI calls a plugin really depends on.
func (m *Module) Imports() []string {
	var out []string
	for _, imp := range m.compiled.ImportedFunctions() {
		mod, name, _ := imp.Import()
		out = append(out, mod+"."+name)
	}
	slices.Sort(out)
	return out
}

package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/tetratelabs/wazero/api"
	"github.com/tetratelabs/wazero/experimental"

	"github.com/modelcache/modelcache/internal/wasmhint"
)

// Code entered per request. Under V8 the filter's cost on a request that
// arrives cold — as one does in Envoy, after the kernel's and Envoy's own
// code ran — is set by the code it runs, not the memory it touches
// (BENCHMARKS.md, item 17: evicting the caches' data adds under 1 µs to a
// hit, evicting code adds 33 µs). So the HC rows also count the wasm
// functions a request enters and the size of their bodies: an exact,
// repeatable count where CPU time needs many rounds to show a few µs.
// Entering a function does not run all of it, so the bytes are an upper
// bound on the code a request runs; what compares is module against floor
// and before against after.

// codeEntered is what one request ran: the module's own functions entered
// (not the host's) and the bytes of their wasm bodies.
type codeEntered struct {
	Functions int `json:"functions"`
	Bytes     int `json:"bytes"`
	names     []string
}

func (c *codeEntered) String() string {
	return fmt.Sprintf("%d functions, %.1f KB of wasm", c.Functions, float64(c.Bytes)/1000)
}

// codeRecorder is a wazero function-listener factory that notes every
// function entered while on.
type codeRecorder struct {
	sizes   map[uint32]int // the module's function bodies by function index
	on      bool
	entered map[uint32]bool
	names   map[uint32]string // debug names, for BENCH_CODE_NAMES
}

func newCodeRecorder(wasm []byte) (*codeRecorder, error) {
	sizes, err := codeBodySizes(wasm)
	if err != nil {
		return nil, err
	}
	return &codeRecorder{sizes: sizes, entered: map[uint32]bool{}, names: map[uint32]string{}}, nil
}

// listen is ctx with the recorder installed: a module compiled with it
// reports its function calls (wazero's compiled-module cache keeps such
// a module apart from one compiled without).
func (c *codeRecorder) listen(ctx context.Context) context.Context {
	return experimental.WithFunctionListenerFactory(ctx, c)
}

func (c *codeRecorder) NewFunctionListener(def api.FunctionDefinition) experimental.FunctionListener {
	if def.GoFunction() != nil {
		// The host's own functions: wazero offers them too when the host
		// modules are instantiated with this context, numbered in their
		// module, not the guest's.
		return nil
	}
	idx := def.Index()
	if _, own := c.sizes[idx]; !own {
		return nil // an import
	}
	c.names[idx] = def.DebugName()
	return experimental.FunctionListenerFunc(func(context.Context, api.Module, api.FunctionDefinition, []uint64, experimental.StackIterator) {
		if c.on {
			c.entered[idx] = true
		}
	})
}

// record runs f with the recorder on and reports the code f entered.
func (c *codeRecorder) record(f func() error) (*codeEntered, error) {
	clear(c.entered)
	c.on = true
	err := f()
	c.on = false
	res := &codeEntered{Functions: len(c.entered)}
	for idx := range c.entered {
		res.Bytes += c.sizes[idx]
		if codeNamesDir != "" {
			res.names = append(res.names, fmt.Sprintf("%d\t%s", c.sizes[idx], c.names[idx]))
		}
	}
	sort.Strings(res.names)
	return res, err
}

// codeNamesDir is BENCH_CODE_NAMES: where dumpNames writes, if anywhere.
var codeNamesDir = os.Getenv("BENCH_CODE_NAMES")

// dumpNames writes the functions a request of kind entered, a line each
// (body size, name), to dir/<kind>.txt when BENCH_CODE_NAMES names a
// directory: a diagnostic, to compare a module's list with its floor's.
func (c *codeEntered) dumpNames(kind string) error {
	dir := codeNamesDir
	if dir == "" {
		return nil
	}
	name := strings.Map(func(r rune) rune {
		if r == '/' || r == ' ' || r == ',' {
			return '_'
		}
		return r
	}, kind)
	return os.WriteFile(filepath.Join(dir, name+".txt"), []byte(strings.Join(c.names, "\n")+"\n"), 0o644)
}

// codeBodySizes reads a module's code section: the size of each function
// body, by function index (imported functions come first in the index
// space and have none).
func codeBodySizes(wasm []byte) (map[uint32]int, error) {
	first, bodies, err := wasmhint.CodeBodies(wasm)
	if err != nil {
		return nil, err
	}
	sizes := make(map[uint32]int, len(bodies))
	for i, b := range bodies {
		sizes[first+uint32(i)] = len(b)
	}
	return sizes, nil
}

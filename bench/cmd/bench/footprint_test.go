package main

import (
	"context"
	"testing"

	"github.com/tetratelabs/wazero"
)

// tinyModule imports env.h and defines a (exported, 4-byte body: call b),
// b (6 bytes: nop, nop, call env.h) and c (exported, 3 bytes: nop).
var tinyModule = []byte{
	0x00, 'a', 's', 'm', 0x01, 0x00, 0x00, 0x00,
	0x01, 0x04, 0x01, 0x60, 0x00, 0x00, // type 0: () -> ()
	0x02, 0x09, 0x01, 0x03, 'e', 'n', 'v', 0x01, 'h', 0x00, 0x00, // import env.h, function of type 0
	0x03, 0x04, 0x03, 0x00, 0x00, 0x00, // functions 1, 2, 3 of type 0
	0x07, 0x09, 0x02, 0x01, 'a', 0x00, 0x01, 0x01, 'c', 0x00, 0x03, // export "a" = function 1, "c" = 3
	0x0a, 0x11, 0x03, // code: three bodies
	0x04, 0x00, 0x10, 0x02, 0x0b, // a: call 2
	0x06, 0x00, 0x01, 0x01, 0x10, 0x00, 0x0b, // b: nop nop call 0
	0x03, 0x00, 0x01, 0x0b, // c: nop
}

func TestCodeBodySizesIndexAfterImports(t *testing.T) {
	sizes, err := codeBodySizes(tinyModule)
	if err != nil {
		t.Fatal(err)
	}
	want := map[uint32]int{1: 4, 2: 6, 3: 3}
	if len(sizes) != len(want) {
		t.Fatalf("sizes %v, want %v", sizes, want)
	}
	for idx, n := range want {
		if sizes[idx] != n {
			t.Fatalf("sizes %v, want %v", sizes, want)
		}
	}
}

func TestCodeBodySizesRejectsTruncated(t *testing.T) {
	for _, n := range []int{4, 20, len(tinyModule) - 1} {
		if _, err := codeBodySizes(tinyModule[:n]); err == nil {
			t.Errorf("module cut at %d bytes read without an error", n)
		}
	}
}

// The recorder counts the module's own functions a call enters, once each,
// and nothing while off.
func TestCodeRecorderCountsFunctionsEntered(t *testing.T) {
	ctx := context.Background()
	rec, err := newCodeRecorder(tinyModule)
	if err != nil {
		t.Fatal(err)
	}
	rt := wazero.NewRuntimeWithConfig(ctx, wazero.NewRuntimeConfigInterpreter())
	defer rt.Close(ctx)
	// The host module, instantiated with the recorder as wasmhost does:
	// env.h is its fourth function, the number of the guest's c, which
	// must not be counted when h runs.
	env := rt.NewHostModuleBuilder("env")
	for _, name := range []string{"a0", "a1", "a2", "h"} {
		env = env.NewFunctionBuilder().WithFunc(func() {}).Export(name)
	}
	if _, err := env.Instantiate(rec.listen(ctx)); err != nil {
		t.Fatal(err)
	}
	compiled, err := rt.CompileModule(rec.listen(ctx), tinyModule)
	if err != nil {
		t.Fatal(err)
	}
	mod, err := rt.InstantiateModule(ctx, compiled, wazero.NewModuleConfig())
	if err != nil {
		t.Fatal(err)
	}
	a, c := mod.ExportedFunction("a"), mod.ExportedFunction("c")
	got, err := rec.record(func() error {
		for i := 0; i < 3; i++ {
			if _, err := a.Call(ctx); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if got.Functions != 2 || got.Bytes != 10 {
		t.Fatalf("entered %+v, want a and b: 2 functions, 10 bytes", got)
	}
	if _, err := c.Call(ctx); err != nil { // off: not counted
		t.Fatal(err)
	}
	if len(rec.entered) != 2 {
		t.Fatalf("recorded %v while off", rec.entered)
	}
}

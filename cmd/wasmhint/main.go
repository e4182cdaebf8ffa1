// Command wasmhint adds branch hints to a module built by Go's wasm port,
// in place (internal/wasmhint): `make build` runs it on the filter.
//
//	go run ./cmd/wasmhint build/modelcache.wasm
package main

import (
	"fmt"
	"os"

	"github.com/modelcache/modelcache/internal/wasmhint"
)

func main() {
	if len(os.Args) != 2 {
		fmt.Fprintln(os.Stderr, "usage: wasmhint module.wasm")
		os.Exit(2)
	}
	rep, err := wasmhint.FileReport(os.Args[1])
	if err != nil {
		fmt.Fprintln(os.Stderr, "wasmhint:", err)
		os.Exit(1)
	}
	fmt.Printf("wasmhint %s: %s\n", os.Args[1], rep)
}

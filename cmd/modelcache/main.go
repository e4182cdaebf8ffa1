// Command modelcache is the project's native companion tool: it packages the
// filter for Istio and checks filter configurations before they reach a
// proxy. It never runs inside Envoy (the filter is ./filter, built for
// wasip1); it may therefore use libraries the wasm module must not carry
// (an OCI image library, a YAML parser).
//
//	modelcache oci  -wasm build/modelcache.wasm -layout build/oci [-push] [-repo REPO -tag TAG] [-wasmplugin IN -wasmplugin-out OUT]
//	modelcache lint FILE...
package main

import (
	"fmt"
	"io"
	"os"
)

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

func run(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		usage(stderr)
		return 2
	}
	switch args[0] {
	case "oci":
		return runOCI(args[1:], stdout, stderr)
	case "lint":
		return runLint(args[1:], stdout, stderr)
	case "-h", "-help", "--help", "help":
		usage(stdout)
		return 0
	}
	fmt.Fprintf(stderr, "modelcache: unknown command %q\n", args[0])
	usage(stderr)
	return 2
}

func usage(w io.Writer) {
	fmt.Fprint(w, `usage: modelcache <command> [flags]

commands:
  oci   build the Wasm OCI image Istio's agent pulls (one layer with the module)
        and optionally push it and render a WasmPlugin pinned to its digest
  lint  validate filter configurations: JSON, Envoy YAML with the wasm filter,
        or Istio WasmPlugin / EnvoyFilter manifests (multi-document YAML)

run "modelcache <command> -h" for a command's flags
`)
}

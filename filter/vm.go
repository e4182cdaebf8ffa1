//go:build !modelcache_crashtest

package main

import "github.com/modelcache/modelcache/filter/proxywasm/types"

// newVMContext is the plugin as shipped. A test-only build
// (-tags modelcache_crashtest, see crashtest.go) replaces this file with one
// that can make the VM trap on demand; the product module never contains
// that code.
func newVMContext() types.VMContext { return &vmContext{} }

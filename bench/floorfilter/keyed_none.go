//go:build !floorkeyed

package main

import "github.com/modelcache/modelcache/filter/proxywasm/types"

// keyedBuilt is false: modes miss-keyed, miss-served, hit-keyed and
// hit-served need -tags floorkeyed (keyed.go, missserved.go, served.go).
const keyedBuilt = false

func keyedBody([]byte) ([]byte, bool) { return nil, false }

func keyedHit([]byte) ([]byte, bool) { return nil, false }

func defineServed() {}

func newServedStream() types.HttpContext { return &stream{} }

func startMissServed() {}

func newMissServedStream(uint32) types.HttpContext { return &stream{} }

//go:build !floorkeyed

package main

// keyedBuilt is false: mode miss-keyed needs -tags floorkeyed (keyed.go).
const keyedBuilt = false

func keyedBody([]byte) ([]byte, bool) { return nil, false }

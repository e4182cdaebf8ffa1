//go:build !floorkeyed

package main

// keyedBuilt is false: modes miss-keyed and hit-keyed need -tags floorkeyed
// (keyed.go).
const keyedBuilt = false

func keyedBody([]byte) ([]byte, bool) { return nil, false }

func keyedHit([]byte) ([]byte, bool) { return nil, false }

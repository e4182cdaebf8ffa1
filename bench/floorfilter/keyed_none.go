//go:build !floorkeyed

package main

// keyedBuilt is false: modes miss-keyed, hit-keyed and hit-served need -tags floorkeyed
// (keyed.go).
const keyedBuilt = false

func keyedBody([]byte) ([]byte, bool) { return nil, false }

func keyedHit([]byte) ([]byte, bool) { return nil, false }

func defineServed() {}

func servedHeaders(*served) {}

func servedHit(*served, []byte) ([][2]string, []byte, bool) { return nil, nil, false }

//go:build floorkeyed

package main

import "github.com/modelcache/modelcache/cachecore"

const keyedBuilt = true

// The canonical body and its reused scratch space; the selection captures
// the members modelcache's chat routes capture.
var (
	canonical     []byte
	canonicalizer cachecore.Canonicalizer
	selection     = cachecore.Selection{Capture: []string{"model", "stream"}}
)

// keyedBody returns the canonical form of a request body and reads its
// model's generation from shared data (miss-keyed's work beyond miss's);
// false if the body is not JSON (the request then goes upstream uncached).
func keyedBody(b []byte) ([]byte, bool) {
	var err error
	if canonical, err = canonicalizer.Append(canonical[:0], b, &selection); err != nil {
		return nil, false
	}
	name, _ := canonicalizer.Captured(0)
	_, _, _ = getShared("fl:m:", fnv64(name))
	return canonical, true
}

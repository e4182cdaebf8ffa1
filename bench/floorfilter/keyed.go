//go:build floorkeyed

package main

import (
	"bytes"
	"encoding/binary"

	"github.com/modelcache/modelcache/cachecore"
	"github.com/modelcache/modelcache/filter/proxywasm"
)

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
	readModel(fnv64(name))
	return canonical, true
}

// memoKeyedBody is keyedBody through the memo of the last body: a body
// sent again byte for byte reads its model's record, and is not
// canonicalised again.
func memoKeyedBody(b []byte) ([]byte, bool) {
	if lastRaw != nil && bytes.Equal(lastRaw, b) {
		readModel(lastModel)
		return lastCanonical, true
	}
	c, ok := keyedBody(b)
	if !ok {
		return nil, false
	}
	name, _ := canonicalizer.Captured(0)
	lastModel = fnv64(name)
	lastRaw = append(lastRaw[:0], b...)
	lastCanonical = append(lastCanonical[:0], c...)
	return c, true
}

// The hit's reused buffers: the entry built when it is stored, and the last
// request body with its canonical form and its model's key (the memo
// modelcache keeps: a body sent again byte for byte is not canonicalised
// again).
var entry, lastRaw, lastCanonical []byte
var lastModel uint64

// keyedHit finds the answer to a request body as hit-keyed does: the
// canonical body (through the memo) and the model's generation, the entry
// under the canonical body's key — its stored request's length (4 bytes),
// the request, the answer — and the stored request compared with this
// one. It returns the answer, a view of a reused buffer; or, for the first
// request of a body, no answer and true: it stored the entry (answer: the
// 1 KiB body), and the request goes upstream as a miss would.
func keyedHit(b []byte) ([]byte, bool) {
	c, ok := memoKeyedBody(b)
	if !ok {
		return nil, false
	}
	fp := fnv64(c)
	v, _, err := getShared("fl:h:", fp)
	if err != nil {
		entry = binary.LittleEndian.AppendUint32(entry[:0], uint32(len(c)))
		entry = append(append(entry, c...), answer...)
		return nil, proxywasm.SetSharedData(keyString(), entry, 0) == nil
	}
	if len(v) < 4 {
		return nil, false
	}
	n := binary.LittleEndian.Uint32(v)
	if uint64(n) > uint64(len(v)-4) || !bytes.Equal(v[4:4+n], c) {
		return nil, false
	}
	return v[4+n:], true
}

//go:build floorkeyed && !floorunbounded

package main

import (
	"encoding/binary"
	"strconv"

	"github.com/modelcache/modelcache/filter/proxywasm"
)

// miss-served's lookup, in a bounded table. Envoy's shared data has no
// delete in proxy-wasm ABI v0.2.1, so a cache whose memory stays bounded
// keeps its answers under a fixed set of keys, and once those hold answers
// a miss reads a key that lists other keys' (a lookup under a key of the
// request's own, lookup_unbounded.go, finds nothing: no copy, no call into
// the module to allocate room for it, and a store there would leave a key
// behind for every key ever stored). Here the key picks one of
// boundedBuckets buckets of boundedWays ways, whose index (84 bytes, the
// size of modelcache's for 4 ways) the lookup reads and scans; a storable
// answer lists its key in its bucket, so that after S4's miss + store load
// every bucket holds an index, as modelcache's table does.

const (
	boundedBuckets = 4096 // modelcache's 16,384 slots in ways of 4
	boundedWays    = 4
	boundedWay     = 20 // per way: fp, expiry, slot
)

// boundedIndex is a bucket's index, written back reused.
var boundedIndex [4 + boundedWays*boundedWay]byte

// missLookup reads fp's bucket and looks for fp among its ways: found when
// a way lists it (a new key each in S4: never).
func missLookup(fp uint64) bool {
	v, _, err := getShared("fl:b:", fp%boundedBuckets)
	if err != nil || len(v) != len(boundedIndex) || v[0] != 'F' || v[1] != 'I' {
		return false
	}
	for w := 0; w < boundedWays; w++ {
		if binary.LittleEndian.Uint64(v[4+w*boundedWay:]) == fp {
			return true
		}
	}
	return false
}

// missStored lists fp in its bucket's index, in the way its hash picks,
// until expires (ms), as modelcache's store lists a key in its index
// (before it writes the entry, which this floor does not store). The
// other ways keep what the buffer last held, whatever bucket that was:
// the lookups after it need an index there, of its size, listing other
// keys, and nothing more (the floor stores no entry to find).
func missStored(fp uint64, expires int64) {
	b := &boundedIndex
	b[0], b[1] = 'F', 'I'
	w := 4 + int(fp/boundedBuckets%boundedWays)*boundedWay
	binary.LittleEndian.PutUint64(b[w:], fp)
	binary.LittleEndian.PutUint64(b[w+8:], uint64(expires))
	binary.LittleEndian.PutUint32(b[w+16:], uint32(fp%boundedBuckets))
	key = strconv.AppendUint(append(key[:0], "fl:b:"...), fp%boundedBuckets, 16)
	_ = proxywasm.SetSharedData(keyString(), b[:], 0)
}

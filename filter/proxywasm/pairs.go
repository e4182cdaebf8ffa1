package proxywasm

import (
	"encoding/binary"
	"errors"
	"unsafe"
)

// Header maps cross the ABI in one buffer (little-endian):
//
//	u32 N | N × (u32 key length, u32 value length) | N × (key, 0x00, value, 0x00)
//
// Envoy's parser (cpp-host PairsUtil::toPairs) silently turns a malformed
// buffer into an empty map, so EncodePairs must never produce one; it refuses
// NUL bytes inside names or values instead of letting the host drop them.

// ErrBadPair is returned by EncodePairs for a header the host would reject.
var ErrBadPair = errors.New("proxywasm: header name or value contains a NUL byte")

// EncodePairs serialises headers in the ABI's pairs format.
func EncodePairs(pairs [][2]string) ([]byte, error) {
	buf := make([]byte, pairsSize(pairs))
	return buf, encodePairsInto(buf, pairs)
}

// pairsSize is the length of pairs encoded: a count, two lengths per pair,
// then each name and value NUL-terminated.
func pairsSize(pairs [][2]string) int {
	size := 4
	for i := range pairs {
		p := &pairs[i] // not a copy: under wasm a ranged [2]string is copied each time round
		size += 8 + len(p[0]) + len(p[1]) + 2
	}
	return size
}

func encodePairsInto(buf []byte, pairs [][2]string) error {
	binary.LittleEndian.PutUint32(buf, uint32(len(pairs)))
	lens := buf[4:]
	data := 4 + 8*len(pairs)
	for i := range pairs {
		p := &pairs[i]
		if hasNUL(p[0]) || hasNUL(p[1]) {
			return ErrBadPair
		}
		binary.LittleEndian.PutUint32(lens[8*i:], uint32(len(p[0])))
		binary.LittleEndian.PutUint32(lens[8*i+4:], uint32(len(p[1])))
		data += copy(buf[data:], p[0])
		buf[data] = 0
		data++
		data += copy(buf[data:], p[1])
		buf[data] = 0
		data++
	}
	return nil
}

// hasNUL reports whether s holds a 0 byte, 8 bytes a turn: a byte of x
// is 0 exactly when (x - 0x01…01) &^ x & 0x80…80 has its high bit set, and
// any such bit means a 0 byte somewhere in x (the borrow that could set a
// higher one starts at a 0 byte below it). A hit's answer headers are
// checked on every hit.
func hasNUL(s string) bool {
	const ones, highs = 0x0101010101010101, 0x8080808080808080
	n := len(s)
	if n < 8 {
		for i := 0; i < n; i++ {
			if s[i] == 0 {
				return true
			}
		}
		return false
	}
	p := unsafe.Pointer(unsafe.StringData(s))
	for i := 0; i+8 <= n; i += 8 {
		if x := *(*uint64)(unsafe.Add(p, i)); (x-ones)&^x&highs != 0 {
			return true
		}
	}
	x := *(*uint64)(unsafe.Add(p, n-8)) // the last 8, overlapping
	return (x-ones)&^x&highs != 0
}

// DecodePairs parses a pairs buffer. The strings alias buf (no copies), so
// the caller must not modify buf afterwards; buffers handed over by the host
// are fresh allocations owned by the caller, which makes that safe.
// A malformed buffer yields an error, never a panic.
func DecodePairs(buf []byte) ([][2]string, error) { return DecodePairsInto(buf, nil) }

// DecodePairsInto is DecodePairs decoding into out's backing array (no
// allocation when it has room).
func DecodePairsInto(buf []byte, out [][2]string) ([][2]string, error) {
	if len(buf) == 0 {
		return nil, nil
	}
	if len(buf) < 4 {
		return nil, errMalformedPairs
	}
	n := int(binary.LittleEndian.Uint32(buf))
	if n == 0 {
		return nil, nil
	}
	if n > (len(buf)-4)/10 { // every pair needs 8 length bytes and 2 NULs
		return nil, errMalformedPairs
	}
	if cap(out) < n {
		out = make([][2]string, n)
	}
	out = out[:n]
	data := 4 + 8*n
	for i := 0; i < n; i++ {
		kl := int(binary.LittleEndian.Uint32(buf[4+8*i:]))
		vl := int(binary.LittleEndian.Uint32(buf[8+8*i:]))
		if kl < 0 || vl < 0 || data+kl+vl+2 > len(buf) || data+kl+vl+2 < data {
			return nil, errMalformedPairs
		}
		out[i][0] = bytesToString(buf[data : data+kl])
		data += kl + 1
		out[i][1] = bytesToString(buf[data : data+vl])
		data += vl + 1
	}
	return out, nil
}

var errMalformedPairs = errors.New("proxywasm: malformed header map from host")

// bytesToString views b as a string without copying. b must never change.
func bytesToString(b []byte) string {
	if len(b) == 0 {
		return ""
	}
	return unsafe.String(&b[0], len(b))
}

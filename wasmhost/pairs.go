package wasmhost

import "encoding/binary"

// Limits of cpp-host's pairs parser (include/proxy-wasm/limits.h). A buffer
// over either limit parses as an empty map, silently.
const (
	MaxPairsBytes = 1 << 20
	MaxPairsCount = 1024
)

// EncodePairs serialises a header map the way hosts and plugins exchange
// them (ABI §1.5): u32 count, count×(u32 key len, u32 value len), then every
// key and value followed by a NUL byte, all little-endian. An empty map
// encodes as a 4-byte zero count.
func EncodePairs(pairs [][2]string) []byte {
	size := 4
	for _, p := range pairs {
		size += 8 + len(p[0]) + 1 + len(p[1]) + 1
	}
	b := make([]byte, size)
	binary.LittleEndian.PutUint32(b, uint32(len(pairs)))
	pos := 4
	for _, p := range pairs {
		binary.LittleEndian.PutUint32(b[pos:], uint32(len(p[0])))
		binary.LittleEndian.PutUint32(b[pos+4:], uint32(len(p[1])))
		pos += 8
	}
	for _, p := range pairs {
		pos += copy(b[pos:], p[0]) + 1 // NUL already zero
		pos += copy(b[pos:], p[1]) + 1
	}
	return b
}

// DecodePairs parses a serialised header map with the strictness of
// cpp-host's PairsUtil::toPairs (src/pairs_util.cc): anything malformed —
// more than MaxPairsBytes or MaxPairsCount, a short buffer, a missing NUL
// terminator or a single trailing byte — yields an empty (nil) map, never an
// error, because that is what a plugin sees in Envoy. An empty buffer and a
// zero count are both valid empty maps.
func DecodePairs(b []byte) [][2]string {
	if len(b) > MaxPairsBytes || len(b) < 4 {
		return nil
	}
	n := uint64(binary.LittleEndian.Uint32(b))
	if n > MaxPairsCount {
		return nil
	}
	end := uint64(len(b))
	pos := uint64(4)
	if pos+n*8 > end {
		return nil
	}
	sizes := make([][2]uint64, n)
	for i := range sizes {
		sizes[i][0] = uint64(binary.LittleEndian.Uint32(b[pos:]))
		sizes[i][1] = uint64(binary.LittleEndian.Uint32(b[pos+4:]))
		pos += 8
	}
	out := make([][2]string, n)
	for i, s := range sizes {
		for j := 0; j < 2; j++ {
			if pos+s[j]+1 > end {
				return nil
			}
			out[i][j] = string(b[pos : pos+s[j]])
			pos += s[j]
			if b[pos] != 0 {
				return nil
			}
			pos++
		}
	}
	if pos != end {
		return nil
	}
	if len(out) == 0 {
		return nil
	}
	return out
}

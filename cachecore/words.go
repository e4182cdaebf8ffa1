package cachecore

import "unsafe"

// Word loads and byte-for-byte comparisons of keys and bodies, shaped for
// the wasm port. There a 64-bit load is one instruction, but the compiled
// function is a loop over a table of its blocks: every turn of a loop and
// every bounds check that fails over to a panic is a jump through that
// table. So the comparisons below step 32 bytes a turn and load through
// unchecked pointers, every load within both slices.

// load64 is one 64-bit load in the machine's byte order.
func load64(b []byte) uint64 {
	_ = b[7]
	return *(*uint64)(unsafe.Pointer(&b[0]))
}

// word is the 8 bytes at p+i in the machine's byte order; the caller keeps
// i+8 within the bytes p points into.
func word(p unsafe.Pointer, i int) uint64 { return *(*uint64)(unsafe.Add(p, i)) }

// equalKeys is bytes.Equal, for keys: a hit compares the whole canonical
// request, and an embeddings batch every cached item's key.
func equalKeys(a, b []byte) bool {
	n := len(a)
	if n != len(b) {
		return false
	}
	if n < 8 {
		return string(a) == string(b)
	}
	pa, pb := unsafe.Pointer(unsafe.SliceData(a)), unsafe.Pointer(unsafe.SliceData(b))
	i := 0
	for ; i+32 <= n; i += 32 {
		if (word(pa, i)^word(pb, i))|(word(pa, i+8)^word(pb, i+8))|
			(word(pa, i+16)^word(pb, i+16))|(word(pa, i+24)^word(pb, i+24)) != 0 {
			return false
		}
	}
	for ; i+8 <= n; i += 8 {
		if word(pa, i) != word(pb, i) {
			return false
		}
	}
	return word(pa, n-8) == word(pb, n-8) // the last 8, overlapping
}

// equalFromEnd is bytes.Equal, comparing from the end: two chat requests
// usually share their start (system prompt, earlier turns) and differ in
// the last message, so a new request is told apart from a remembered one
// of the same length after a few words, not after the whole body. (The
// memo's slot is chosen by length and a few words that such requests often
// share, so same-length requests meet there.)
func equalFromEnd(a, b []byte) bool {
	n := len(a)
	if n != len(b) {
		return false
	}
	if n < 8 {
		return string(a) == string(b)
	}
	pa, pb := unsafe.Pointer(unsafe.SliceData(a)), unsafe.Pointer(unsafe.SliceData(b))
	i := n
	for ; i >= 32; i -= 32 {
		if (word(pa, i-8)^word(pb, i-8))|(word(pa, i-16)^word(pb, i-16))|
			(word(pa, i-24)^word(pb, i-24))|(word(pa, i-32)^word(pb, i-32)) != 0 {
			return false
		}
	}
	for ; i >= 8; i -= 8 {
		if word(pa, i-8) != word(pb, i-8) {
			return false
		}
	}
	return word(pa, 0) == word(pb, 0) // the first 8, overlapping
}

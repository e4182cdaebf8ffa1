package cachecore

import (
	"encoding/binary"
	"math/bits"
)

// SipHash-2-4 (Aumasson and Bernstein, "SipHash: a fast short-input PRF",
// 2012), written from the paper. It is a keyed pseudo-random function: an
// attacker who does not know the key cannot compute which inputs collide
// or share a slot, which Hash64 (XXH64, public seed) does not prevent. The
// cache uses it wherever request-controlled data picks a slot of shared
// control state (see RATIONALE.md, "Keyed hashing for shared state").
type sipKey struct{ k0, k1 uint64 }

func sipKeyFrom(b []byte) sipKey {
	return sipKey{binary.LittleEndian.Uint64(b), binary.LittleEndian.Uint64(b[8:])}
}

func (k sipKey) sum64(b []byte) uint64 {
	s := k.start()
	return s.sum(b, len(b))
}

// sum64Prefix is sum64(b[:split]) and sum64(b) in one pass over b's
// blocks: the request's lease fingerprint (its key without the model
// state) and its slot fingerprint (the whole key). The second sum goes on
// from the prefix's whole blocks, its first split&^7 bytes.
func (k sipKey) sum64Prefix(b []byte, split int) (prefix, whole uint64) {
	s := k.start()
	prefix = s.sum(b[:split], split)
	return prefix, s.sum(b[split&^7:], len(b))
}

// sipResume is SipHash's state after a prefix's whole blocks, for the sums
// of many messages that start with that prefix (an embeddings batch's
// item keys share the request's namespace and parameters).
type sipResume struct {
	s    sipState
	done int // bytes compressed: the prefix's whole blocks
}

func (k sipKey) resumeAfter(prefix []byte) sipResume {
	s := k.start()
	s.sum(prefix, len(prefix)) // for the state it leaves; the prefix's own sum is not needed
	return sipResume{s, len(prefix) &^ 7}
}

// sum64 is the key's sum64(b) for a b that starts with the prefix.
func (r sipResume) sum64(b []byte) uint64 {
	s := r.s
	return s.sum(b[r.done:], len(b))
}

// sipState is SipHash's internal state after whole 8-byte blocks.
type sipState struct{ v0, v1, v2, v3 uint64 }

func (k sipKey) start() sipState {
	return sipState{k.k0 ^ 0x736f6d6570736575, k.k1 ^ 0x646f72616e646f6d, k.k0 ^ 0x6c7967656e657261, k.k1 ^ 0x7465646279746573}
}

// sum compresses b's whole 8-byte blocks into s and returns the sum of a
// message of n bytes that ends with b, the bytes after b's whole blocks
// its last (s held the message's bytes before b, whole blocks). s is left
// after b's whole blocks, before the end, so a longer message's sum can
// go on from it. Compressing and ending in one function, not two, halves
// the calls a sum makes: the key's two sums make two.
func (s *sipState) sum(b []byte, n int) uint64 {
	v0, v1, v2, v3 := s.v0, s.v1, s.v2, s.v3
	for len(b) >= 8 {
		m := binary.LittleEndian.Uint64(b)
		v3 ^= m
		v0, v1, v2, v3 = sipRound(v0, v1, v2, v3)
		v0, v1, v2, v3 = sipRound(v0, v1, v2, v3)
		v0 ^= m
		b = b[8:]
	}
	s.v0, s.v1, s.v2, s.v3 = v0, v1, v2, v3
	last := uint64(n) << 56
	for i, c := range b {
		last |= uint64(c) << (8 * i)
	}
	v3 ^= last
	v0, v1, v2, v3 = sipRound(v0, v1, v2, v3)
	v0, v1, v2, v3 = sipRound(v0, v1, v2, v3)
	v0 ^= last
	v2 ^= 0xff
	for i := 0; i < 4; i++ {
		v0, v1, v2, v3 = sipRound(v0, v1, v2, v3)
	}
	return v0 ^ v1 ^ v2 ^ v3
}

func sipRound(v0, v1, v2, v3 uint64) (uint64, uint64, uint64, uint64) {
	v0 += v1
	v1 = bits.RotateLeft64(v1, 13)
	v1 ^= v0
	v0 = bits.RotateLeft64(v0, 32)
	v2 += v3
	v3 = bits.RotateLeft64(v3, 16)
	v3 ^= v2
	v0 += v3
	v3 = bits.RotateLeft64(v3, 21)
	v3 ^= v0
	v2 += v1
	v1 = bits.RotateLeft64(v1, 17)
	v1 ^= v2
	v2 = bits.RotateLeft64(v2, 32)
	return v0, v1, v2, v3
}

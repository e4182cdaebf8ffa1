package cachecore

import (
	"testing"
)

// TestSipHashVectors checks the reference vectors of the SipHash paper
// (key 00..0f, messages 00..n-1).
func TestSipHashVectors(t *testing.T) {
	var kb [16]byte
	for i := range kb {
		kb[i] = byte(i)
	}
	k := sipKeyFrom(kb[:])
	msg := make([]byte, 64)
	for i := range msg {
		msg[i] = byte(i)
	}
	for _, tc := range []struct {
		n    int
		want uint64
	}{
		{0, 0x726fdb47dd0e0e31},
		{15, 0xa129ca6149be45e5},
	} {
		if got := k.sum64(msg[:tc.n]); got != tc.want {
			t.Errorf("len %d: %#x, want %#x", tc.n, got, tc.want)
		}
	}
}

// sum64Prefix is sum64 of the prefix and of the whole, for every split of
// every length around the 8-byte blocks.
func TestSipHashPrefixIsTwoSums(t *testing.T) {
	k := sipKey{0x0706050403020100, 0x0f0e0d0c0b0a0908}
	msg := make([]byte, 40)
	for i := range msg {
		msg[i] = byte(i*13 + 5)
	}
	for n := 0; n <= len(msg); n++ {
		for split := 0; split <= n; split++ {
			p, w := k.sum64Prefix(msg[:n], split)
			if p != k.sum64(msg[:split]) || w != k.sum64(msg[:n]) {
				t.Fatalf("len %d split %d: %#x %#x, want %#x %#x", n, split, p, w, k.sum64(msg[:split]), k.sum64(msg[:n]))
			}
		}
	}
}

// A sum resumed after a prefix is sum64 of the whole, for every prefix of
// every length around the 8-byte blocks.
func TestSipResumeIsSum64(t *testing.T) {
	k := sipKey{0x0706050403020100, 0x0f0e0d0c0b0a0908}
	msg := make([]byte, 40)
	for i := range msg {
		msg[i] = byte(i*13 + 5)
	}
	for n := 0; n <= len(msg); n++ {
		for split := 0; split <= n; split++ {
			if got, want := k.resumeAfter(msg[:split]).sum64(msg[:n]), k.sum64(msg[:n]); got != want {
				t.Fatalf("len %d prefix %d: %#x, want %#x", n, split, got, want)
			}
		}
	}
}

func BenchmarkSlotHash(b *testing.B) {
	key := make([]byte, 2048)
	for i := range key {
		key[i] = byte(i * 7)
	}
	k := sipKey{1, 2}
	b.Run("xxh64", func(b *testing.B) {
		b.SetBytes(int64(len(key)))
		for i := 0; i < b.N; i++ {
			Hash64(key, 1)
		}
	})
	b.Run("siphash24", func(b *testing.B) {
		b.SetBytes(int64(len(key)))
		for i := 0; i < b.N; i++ {
			k.sum64(key)
		}
	})
}

package cachecore

import (
	"bytes"
	"testing"
)

func TestEqualKeys(t *testing.T) {
	a := []byte("0123456789abcdefXYZ")
	for i := range a {
		b := append([]byte(nil), a...)
		b[i] ^= 1
		if equalKeys(a, b) {
			t.Fatalf("differ at %d but equal", i)
		}
	}
	if !equalKeys(a, append([]byte(nil), a...)) || equalKeys(a, a[:len(a)-1]) || !equalKeys(nil, []byte{}) {
		t.Fatal("equalKeys wrong on equal or shorter input")
	}
}

// equalFromEnd is bytes.Equal: every length around the 8-byte steps, a
// difference at every position.
func TestEqualFromEndIsBytesEqual(t *testing.T) {
	for n := 0; n <= 40; n++ {
		a := make([]byte, n)
		for i := range a {
			a[i] = byte(i*7 + 1)
		}
		if !equalFromEnd(a, bytes.Clone(a)) {
			t.Fatalf("len %d: equal bodies differ", n)
		}
		if n > 0 && equalFromEnd(a, a[:n-1]) {
			t.Fatalf("len %d: a shorter body is equal", n)
		}
		for i := 0; i < n; i++ {
			b := bytes.Clone(a)
			b[i] ^= 0x20
			if equalFromEnd(a, b) {
				t.Fatalf("len %d: a difference at %d is not seen", n, i)
			}
		}
	}
}

// Both comparisons are bytes.Equal at every length around their 8- and
// 32-byte steps, with a difference at every position and in either slice.
func TestWordComparisonsAreBytesEqual(t *testing.T) {
	for name, eq := range map[string]func(a, b []byte) bool{"equalKeys": equalKeys, "equalFromEnd": equalFromEnd} {
		for n := 0; n <= 100; n++ {
			a := make([]byte, n, n+8) // bytes past the end must not count
			for i := range a {
				a[i] = byte(i*7 + 1)
			}
			b := append(make([]byte, 0, n+8), a...)
			a[:n+8][n], b[:n+8][n] = 1, 2
			if !eq(a, b) {
				t.Fatalf("%s, len %d: equal slices differ", name, n)
			}
			if n > 0 && (eq(a, b[:n-1]) || eq(a[:n-1], b)) {
				t.Fatalf("%s, len %d: a shorter slice is equal", name, n)
			}
			for i := 0; i < n; i++ {
				for _, bit := range []byte{0x01, 0x80} {
					c := bytes.Clone(a)
					c[i] ^= bit
					if eq(a, c) || eq(c, a) {
						t.Fatalf("%s, len %d: a difference at %d (bit %#x) is not seen", name, n, i, bit)
					}
				}
			}
		}
	}
}

package cachecore

import (
	"math/rand/v2"
	"testing"
)

// nameHasCase, a word at a time, says what hasCase says byte by byte, for
// every length and position, with bytes after the name of any value.
func TestNameHasCaseIsHasCase(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	alphabet := []byte("azAZ@[`{09_-\x7f\x80\xff\xc3\xa9 ")
	var c Canonicalizer
	for i := 0; i < 200_000; i++ {
		n := rng.IntN(20)
		pad := rng.IntN(10)
		c.out = c.out[:0]
		for j := 0; j < n+pad; j++ {
			c.out = append(c.out, alphabet[rng.IntN(len(alphabet))])
		}
		if got, want := c.nameHasCase(0, n), hasCase(c.out[:n]); got != want {
			t.Fatalf("%q (then %q): nameHasCase %v, hasCase %v", c.out[:n], c.out[n:], got, want)
		}
	}
	for b := 0; b < 256; b++ {
		c.out = append(c.out[:0], 'x', byte(b), 'y', 'z', 'z', 'z', 'z', 'z', 'z')
		if got, want := c.nameHasCase(1, 2), hasCase(c.out[1:2]); got != want {
			t.Fatalf("byte %#x: nameHasCase %v, hasCase %v", b, got, want)
		}
	}
}

package cachecore

import (
	"math"
	"math/rand/v2"
	"strconv"
	"testing"
)

// parseDecimal accepts exactly what strconv.ParseUint(s, 10, 63) accepts,
// with the same value: a content-length is judged as it was before.
func TestParseDecimalAgreesWithParseUint(t *testing.T) {
	cases := []string{"", "0", "00", "7", "1616", "0001616", "+1", "-1", " 1", "1 ", "1_000", "0x10", "1e3",
		"9223372036854775807", "9223372036854775808", "18446744073709551615", "18446744073709551616",
		"99999999999999999999999", "١٢", "12\x00", "/", ":"}
	rng := rand.New(rand.NewPCG(1, 2))
	for i := 0; i < 2000; i++ {
		b := make([]byte, rng.IntN(22))
		for j := range b {
			b[j] = "0123456789+- x/:"[rng.IntN(16)]
			if rng.IntN(4) > 0 {
				b[j] = byte('0' + rng.IntN(10))
			}
		}
		cases = append(cases, string(b))
	}
	for _, s := range cases {
		want, err := strconv.ParseUint(s, 10, 63)
		got, ok := parseDecimal(s)
		if ok != (err == nil) || (ok && got != want) {
			t.Fatalf("parseDecimal(%q) = %d, %v; strconv.ParseUint: %d, %v", s, got, ok, want, err)
		}
	}
}

func TestAppendIntAgreesWithStrconv(t *testing.T) {
	for _, v := range []int64{0, 1, -1, 9, 10, -10, 3600, -287, math.MaxInt64, math.MinInt64 + 1} {
		if got, want := string(appendInt([]byte("x"), v)), "x"+strconv.FormatInt(v, 10); got != want {
			t.Fatalf("appendInt(%d) = %q, want %q", v, got, want)
		}
	}
}

// appendDec writes what strconv does, at every number of digits and on
// either side of 2^32, after any prefix.
func TestAppendDecIsStrconv(t *testing.T) {
	vs := []uint64{0, 9, 10, 99, 100, 65535, 1<<32 - 1, 1 << 32, 1<<64 - 1}
	for p := uint64(1); p < 1e19; p *= 10 {
		vs = append(vs, p-1, p, p+1, p*7/3)
	}
	for _, v := range vs {
		if got, want := string(appendDec([]byte("k:"), v)), "k:"+strconv.FormatUint(v, 10); got != want {
			t.Fatalf("appendDec(%d) = %q, want %q", v, got, want)
		}
	}
}

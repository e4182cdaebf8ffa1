package cachecore

import (
	"math/rand"
	"testing"

	"github.com/cespare/xxhash/v2"
)

// The reference implementation is only a test dependency: it proves our
// from-the-spec XXH64 matches the published algorithm bit for bit.
func TestHash64MatchesReference(t *testing.T) {
	r := rand.New(rand.NewSource(1))
	for n := 0; n < 300; n++ {
		b := make([]byte, n)
		r.Read(b)
		if got, want := Hash64(b, 0), xxhash.Sum64(b); got != want {
			t.Fatalf("len %d: got %x want %x", n, got, want)
		}
	}
}

func TestHash64KnownVector(t *testing.T) {
	if got := Hash64(nil, 0); got != 0xEF46DB3751D8E999 {
		t.Fatalf("XXH64(\"\") = %x", got)
	}
}

func BenchmarkHash64_1700B(b *testing.B) {
	buf := make([]byte, 1700)
	b.SetBytes(int64(len(buf)))
	for i := 0; i < b.N; i++ {
		Hash64(buf, 0)
	}
}

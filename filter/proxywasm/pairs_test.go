package proxywasm

import (
	"bytes"
	"encoding/hex"
	"reflect"
	"testing"
)

func TestEncodePairsMatchesSpecExample(t *testing.T) {
	// proxy-wasm spec, "Header maps": {"a":"1","b":"22"}.
	got, err := EncodePairs([][2]string{{"a", "1"}, {"b", "22"}})
	if err != nil {
		t.Fatal(err)
	}
	want, _ := hex.DecodeString("02000000" + "01000000" + "01000000" + "01000000" + "02000000" + "6100" + "3100" + "6200" + "323200")
	if !bytes.Equal(got, want) {
		t.Fatalf("got %x\nwant %x", got, want)
	}
}

func TestPairsRoundTrip(t *testing.T) {
	tests := []struct {
		name  string
		pairs [][2]string
	}{
		{"empty", nil},
		{"one", [][2]string{{":status", "200"}}},
		{"empty value", [][2]string{{"x-empty", ""}}},
		{"repeated names", [][2]string{{"set-cookie", "a=1"}, {"set-cookie", "b=2"}}},
		{"binary-ish", [][2]string{{"x", "\xff\x01 é"}}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			buf, err := EncodePairs(tc.pairs)
			if err != nil {
				t.Fatal(err)
			}
			got, err := DecodePairs(buf)
			if err != nil {
				t.Fatal(err)
			}
			if len(tc.pairs) == 0 && len(got) == 0 {
				return
			}
			if !reflect.DeepEqual(got, tc.pairs) {
				t.Fatalf("got %q want %q", got, tc.pairs)
			}
		})
	}
}

func TestEncodePairsRefusesNUL(t *testing.T) {
	if _, err := EncodePairs([][2]string{{"x", "a\x00b"}}); err != ErrBadPair {
		t.Fatalf("err = %v, want ErrBadPair", err)
	}
}

func TestDecodePairsMalformed(t *testing.T) {
	tests := []struct {
		name string
		buf  []byte
	}{
		{"short count", []byte{1, 0}},
		{"count without lengths", []byte{1, 0, 0, 0}},
		{"huge count", []byte{0xff, 0xff, 0xff, 0x7f, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0}},
		{"length past end", append([]byte{1, 0, 0, 0, 9, 0, 0, 0, 1, 0, 0, 0}, 'a', 0, 'b', 0)},
		{"huge length", append([]byte{1, 0, 0, 0, 0xff, 0xff, 0xff, 0xff, 1, 0, 0, 0}, 'a', 0, 'b', 0)},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := DecodePairs(tc.buf); err == nil {
				t.Fatal("want an error")
			}
		})
	}
}

func FuzzDecodePairs(f *testing.F) {
	seed, _ := EncodePairs([][2]string{{"a", "1"}, {"bb", "22"}})
	f.Add(seed)
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, buf []byte) {
		pairs, err := DecodePairs(buf)
		if err != nil {
			return
		}
		// Whatever decodes must encode back to something that decodes the same.
		again, err := EncodePairs(pairs)
		if err != nil {
			return // NUL inside a value: valid on the wire, refused outbound
		}
		back, err := DecodePairs(again)
		if err != nil || len(back) != len(pairs) {
			t.Fatalf("re-decode: %v (%d vs %d)", err, len(back), len(pairs))
		}
	})
}

// hasNUL, 8 bytes a turn, agrees with a byte-by-byte scan for a 0 at
// every place in strings of every length up to 40, among bytes that could
// fool a word test (0x01, 0x80, 0xff).
func TestHasNULEveryPlace(t *testing.T) {
	for n := 0; n <= 40; n++ {
		for _, fill := range []byte{'a', 0x01, 0x80, 0xff} {
			b := make([]byte, n)
			for i := range b {
				b[i] = fill
			}
			if hasNUL(string(b)) {
				t.Fatalf("no 0 in %d bytes of %#x, found one", n, fill)
			}
			for at := 0; at < n; at++ {
				b[at] = 0
				if !hasNUL(string(b)) {
					t.Fatalf("0 at %d of %d bytes of %#x not found", at, n, fill)
				}
				b[at] = fill
			}
		}
	}
}

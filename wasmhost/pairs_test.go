package wasmhost

import (
	"bytes"
	"encoding/binary"
	"encoding/hex"
	"slices"
	"testing"
)

func TestEncodePairsLayout(t *testing.T) {
	// The reference's example {"a":"1","b":"22"} byte for byte.
	want, _ := hex.DecodeString("02000000" + "01000000" + "01000000" + "01000000" + "02000000" + "6100" + "3100" + "6200" + "323200")
	got := EncodePairs([][2]string{{"a", "1"}, {"b", "22"}})
	if !bytes.Equal(got, want) {
		t.Fatalf("EncodePairs = %x, want %x", got, want)
	}
}

func u32(n uint32) []byte { return binary.LittleEndian.AppendUint32(nil, n) }

func cat(parts ...[]byte) []byte { return bytes.Join(parts, nil) }

func TestDecodePairsStrict(t *testing.T) {
	valid := EncodePairs([][2]string{{"a", "1"}, {"b", "22"}})
	tooMany := cat(u32(MaxPairsCount + 1))
	for i := 0; i < MaxPairsCount+1; i++ {
		tooMany = append(tooMany, u32(0)...)
		tooMany = append(tooMany, u32(0)...)
	}
	for i := 0; i < MaxPairsCount+1; i++ {
		tooMany = append(tooMany, 0, 0)
	}
	maxCount := EncodePairs(slices.Repeat([][2]string{{"k", "v"}}, MaxPairsCount))
	big := EncodePairs([][2]string{{"k", string(make([]byte, MaxPairsBytes))}})
	tests := []struct {
		name string
		in   []byte
		want [][2]string
	}{
		{"valid", valid, [][2]string{{"a", "1"}, {"b", "22"}}},
		{"empty value and key", EncodePairs([][2]string{{"", ""}}), [][2]string{{"", ""}}},
		{"binary value", EncodePairs([][2]string{{"k", "\xff\x01"}}), [][2]string{{"k", "\xff\x01"}}},
		{"empty buffer", nil, nil},
		{"single zero byte", []byte{0}, nil},
		{"zero count", u32(0), nil},
		{"zero count trailing byte", cat(u32(0), []byte{0}), nil},
		{"short count", []byte{1, 0, 0}, nil},
		{"count without sizes", u32(1), nil},
		{"sizes without data", cat(u32(1), u32(1), u32(1)), nil},
		{"missing key terminator", cat(u32(1), u32(1), u32(1), []byte("a1"), []byte{0}), nil},
		{"missing value terminator", cat(u32(1), u32(1), u32(1), []byte{'a', 0, '1'}), nil},
		{"non-NUL terminator", cat(u32(1), u32(1), u32(1), []byte{'a', 'x', '1', 0}), nil},
		{"trailing byte", append(slices.Clone(valid), 0), nil},
		{"truncated", valid[:len(valid)-1], nil},
		{"huge key length", cat(u32(1), u32(0xffffffff), u32(0), []byte{0, 0}), nil},
		{"count over 1024", tooMany, nil},
		{"1024 pairs", maxCount, slices.Repeat([][2]string{{"k", "v"}}, MaxPairsCount)},
		{"over 1 MiB", big, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := DecodePairs(tt.in)
			if !slices.Equal(got, tt.want) {
				t.Fatalf("DecodePairs = %q, want %q", got, tt.want)
			}
		})
	}
}

func TestPairsRoundTrip(t *testing.T) {
	tests := []struct {
		name  string
		pairs [][2]string
	}{
		{"one", [][2]string{{":status", "200"}}},
		{"duplicates keep order", [][2]string{{"set-cookie", "a"}, {"x", "y"}, {"set-cookie", "b"}}},
		{"utf8", [][2]string{{"x-name", "größe"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := DecodePairs(EncodePairs(tt.pairs)); !slices.Equal(got, tt.pairs) {
				t.Fatalf("round trip = %q, want %q", got, tt.pairs)
			}
		})
	}
}

func FuzzDecodePairs(f *testing.F) {
	f.Add(EncodePairs([][2]string{{"a", "1"}, {"b", "22"}}))
	f.Add([]byte{0})
	f.Add(cat(u32(1), u32(1), u32(1), []byte{'a', 0, '1'}))
	f.Fuzz(func(t *testing.T, b []byte) {
		pairs := DecodePairs(b)
		if pairs == nil {
			return
		}
		// Whatever parses must be exactly the canonical encoding.
		if !bytes.Equal(EncodePairs(pairs), b) {
			t.Fatalf("DecodePairs accepted a non-canonical buffer %x", b)
		}
	})
}

// TestHeaderMapsThroughGuest checks serialisation end to end: the guest
// reads the request map with its own decoder, re-encodes it with one more
// pair and sets it back; the upstream must see the same map.
func TestHeaderMapsThroughGuest(t *testing.T) {
	h := newHost(t, Config{})
	id := h.InitializeHttpContext(0)
	in := req("headers-roundtrip", "X-Mixed-Case", "Value With Spaces", "dup", "1", "dup", "2")
	if a := h.CallOnRequestHeaders(0, id, in, true); a != ActionContinue {
		t.Fatalf("action = %v", a)
	}
	got := h.GetForwardedRequestHeaders(0, id)
	size := 0
	for _, p := range in {
		size += len(p[0]) + len(p[1])
	}
	want := newHeaderMap(in).clone() // Envoy lower-cases header names
	want = append(want, [2]string{"x-roundtrip", "7"}, [2]string{"x-map-size", itoa(size)})
	if !slices.Equal(got, want) {
		t.Fatalf("forwarded headers\n got %q\nwant %q", got, want)
	}
}

// TestMalformedPairsEmptyTheMap: a plugin setting a malformed map gets an
// empty map, silently, as in cpp-host.
func TestMalformedPairsEmptyTheMap(t *testing.T) {
	tests := []struct {
		name string
		raw  []byte
		want [][2]string
	}{
		{"valid", EncodePairs([][2]string{{"K", "v"}}), [][2]string{{"k", "v"}}},
		{"trailing byte", append(EncodePairs([][2]string{{"k", "v"}}), 0), nil},
		{"missing terminator", cat(u32(1), u32(1), u32(1), []byte{'k', 0, 'v'}), nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHost(t, Config{Workers: 1})
			id := h.InitializeHttpContext(0)
			h.CallOnRequestHeaders(0, id, req("raw-pairs", "x-raw-hex", hex.EncodeToString(tt.raw)), true)
			if got := h.GetForwardedRequestHeaders(0, id); !slices.Equal(got, tt.want) {
				t.Fatalf("forwarded = %q, want %q", got, tt.want)
			}
		})
	}
}

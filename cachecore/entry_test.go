package cachecore

import (
	"bytes"
	"encoding/binary"
	"errors"
	"reflect"
	"strings"
	"testing"
)

func sampleEntry() Entry {
	return Entry{
		Key:        []byte("K1\x00key with \xff binary"),
		StoredAt:   1_700_000_000_000,
		FreshUntil: 1_700_000_300_000,
		StaleUntil: 1_700_000_330_000,
		ComputeMs:  1234,
		Status:     200,
		Flags:      FlagSSE,
		Headers:    [][2]string{{"content-type", "application/json"}, {"x-model-version", "v2"}, {"x-empty", ""}},
		Body:       []byte(`{"choices":[{"message":{"content":"hi"}}]}`),
	}
}

func TestEntryRoundTrip(t *testing.T) {
	tests := []struct {
		name string
		edit func(e *Entry)
	}{
		{"full", func(e *Entry) {}},
		{"empty body", func(e *Entry) { e.Body = []byte{} }},
		{"no headers", func(e *Entry) { e.Headers = nil }},
		{"empty key", func(e *Entry) { e.Key = []byte{} }},
		{"no flags", func(e *Entry) { e.Flags = 0 }},
		{"all flag bits", func(e *Entry) { e.Flags = 0xff }},
		{"zero times", func(e *Entry) { e.StoredAt, e.FreshUntil, e.StaleUntil = 0, 0, 0 }},
		{"negative times", func(e *Entry) { e.StoredAt, e.FreshUntil, e.StaleUntil = -10, -5, -5 }},
		{"no stale window", func(e *Entry) { e.StaleUntil = e.FreshUntil }},
		{"max compute and status", func(e *Entry) { e.ComputeMs, e.Status = 1<<32-1, 1<<16-1 }},
		{"large body", func(e *Entry) { e.Body = bytes.Repeat([]byte("x"), 300_000) }},
		{"header with empty name", func(e *Entry) { e.Headers = [][2]string{{"", "v"}} }},
		{"many headers", func(e *Entry) {
			e.Headers = nil
			for i := 0; i < 300; i++ {
				e.Headers = append(e.Headers, [2]string{"h" + itoa(int64(i)), strings.Repeat("v", i)})
			}
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			in := sampleEntry()
			tc.edit(&in)
			enc := in.AppendEncode(nil)
			if len(enc) != in.EncodedSize() {
				t.Fatalf("EncodedSize %d, encoded %d bytes", in.EncodedSize(), len(enc))
			}
			out, err := DecodeEntry(enc)
			if err != nil {
				t.Fatalf("DecodeEntry: %v", err)
			}
			if len(in.Headers) == 0 {
				in.Headers = nil // decoding yields nil for no headers
			}
			if !bytes.Equal(out.Key, in.Key) || !bytes.Equal(out.Body, in.Body) {
				t.Fatalf("key/body changed")
			}
			out.Key, out.Body, in.Key, in.Body = nil, nil, nil, nil
			out.raw = nil
			if !reflect.DeepEqual(*out, in) {
				t.Fatalf("round trip:\n got %+v\nwant %+v", *out, in)
			}
		})
	}
}

func TestEntryAppendEncodeKeepsPrefix(t *testing.T) {
	e := sampleEntry()
	prefix := []byte("prefix")
	enc := e.AppendEncode(append([]byte(nil), prefix...))
	if !bytes.HasPrefix(enc, prefix) {
		t.Fatalf("prefix lost")
	}
	if !bytes.Equal(enc[len(prefix):], e.AppendEncode(nil)) {
		t.Fatalf("encoding depends on dst")
	}
}

func TestDecodeEntryRejects(t *testing.T) {
	valid := func() []byte { e := sampleEntry(); return e.AppendEncode(nil) }
	le := binary.LittleEndian
	tests := []struct {
		name string
		b    func() []byte
	}{
		{"nil", func() []byte { return nil }},
		{"empty", func() []byte { return []byte{} }},
		{"short header", func() []byte { return valid()[:entryHeader-1] }},
		{"bad magic", func() []byte { b := valid(); b[0] = 'X'; return b }},
		{"bad second magic", func() []byte { b := valid(); b[1] = 'X'; return b }},
		{"other version", func() []byte { b := valid(); b[2] = 2; return b }},
		{"trailing byte", func() []byte { return append(valid(), 0) }},
		{"key longer than buffer", func() []byte { b := valid(); le.PutUint32(b[36:], 1<<31); return b }},
		{"body shorter than claimed", func() []byte { b := valid(); le.PutUint32(b[40:], le.Uint32(b[40:])+1); return b }},
		{"body longer than claimed", func() []byte { b := valid(); le.PutUint32(b[40:], le.Uint32(b[40:])-1); return b }},
		{"more headers than present", func() []byte { b := valid(); le.PutUint16(b[34:], 60000); return b }},
		{"fewer headers than present", func() []byte { b := valid(); le.PutUint16(b[34:], 1); return b }},
		{"fresh before stored", func() []byte {
			e := sampleEntry()
			e.FreshUntil = e.StoredAt - 1
			return e.AppendEncode(nil)
		}},
		{"stale before fresh", func() []byte {
			e := sampleEntry()
			e.StaleUntil = e.FreshUntil - 1
			return e.AppendEncode(nil)
		}},
		{"foreign bytes", func() []byte { return []byte(strings.Repeat(`{"json":"not an entry"}`, 4)) }},
		{"an index value", func() []byte {
			tb := NewTable(NewMemStore(), 1, 2)
			tb.resetIdx()
			return tb.encodeIndex()
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e, err := DecodeEntry(tc.b())
			if !errors.Is(err, ErrBadEntry) || e != nil {
				t.Fatalf("DecodeEntry = %v, %v; want nil, ErrBadEntry", e, err)
			}
		})
	}
}

// TestDecodeEntryTruncations: no prefix of a valid entry is readable, so a
// torn or cut-off value can only ever be a miss.
func TestDecodeEntryTruncations(t *testing.T) {
	for _, e := range []Entry{sampleEntry(), {Status: 200}} {
		enc := e.AppendEncode(nil)
		for n := 0; n < len(enc); n++ {
			if _, err := DecodeEntry(enc[:n]); !errors.Is(err, ErrBadEntry) {
				t.Fatalf("truncation to %d of %d bytes: err = %v", n, len(enc), err)
			}
		}
	}
}

func FuzzDecodeEntry(f *testing.F) {
	e := sampleEntry()
	enc := e.AppendEncode(nil)
	f.Add(enc)
	f.Add(enc[:len(enc)/2])
	f.Add((&Entry{}).AppendEncode(nil))
	f.Add((&Entry{Key: []byte("k"), Headers: [][2]string{{"a", "b"}}, FreshUntil: 1, StaleUntil: 2}).AppendEncode(nil))
	f.Add([]byte("MC\x01"))
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, b []byte) {
		orig := append([]byte(nil), b...)
		e, err := DecodeEntry(b)
		if !bytes.Equal(b, orig) {
			t.Fatalf("DecodeEntry modified its input")
		}
		if err != nil {
			if !errors.Is(err, ErrBadEntry) || e != nil {
				t.Fatalf("DecodeEntry = %v, %v", e, err)
			}
			return
		}
		if e.FreshUntil < e.StoredAt || e.StaleUntil < e.FreshUntil {
			t.Fatalf("decoded inconsistent times %d %d %d", e.StoredAt, e.FreshUntil, e.StaleUntil)
		}
		if re := e.AppendEncode(nil); !bytes.Equal(re, b) {
			t.Fatalf("re-encoding differs:\n in %x\nout %x", b, re)
		}
		if e.EncodedSize() != len(b) {
			t.Fatalf("EncodedSize %d for %d bytes", e.EncodedSize(), len(b))
		}
		for n := 0; n < len(b); n++ {
			if _, err := DecodeEntry(b[:n]); !errors.Is(err, ErrBadEntry) {
				t.Fatalf("truncation to %d of %d bytes decoded (err %v)", n, len(b), err)
			}
		}
	})
}

package cachecore

import "testing"

// A storeReader reads into the caller's buffer when its store can, and
// through Get (with whatever that Get does) when it cannot.
func TestStoreReaderUsesTheBufferedSide(t *testing.T) {
	mem := NewMemStore()
	if err := mem.Set("k", []byte("value"), 0); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 0, 64)
	got, _, err := readerOf(mem).GetInto("k", buf)
	if err != nil || string(got) != "value" || &got[0] != &buf[:1][0] {
		t.Fatalf("buffered read: %q, %v (into the caller's buffer: %v)", got, err, err == nil && &got[0] == &buf[:1][0])
	}
	failing := &flakyStore{Store: mem, getErr: func(string) error { return ErrCasMismatch }}
	if _, _, err := readerOf(failing).GetInto("k", buf); err != ErrCasMismatch {
		t.Fatalf("a store without GetInto was not read through its Get: %v", err)
	}
	if r := readerOf(readerOf(mem)); r.buffered != mem {
		t.Fatalf("a storeReader of a storeReader reads through %T", r.buffered)
	}
}

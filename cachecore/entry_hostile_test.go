package cachecore

import (
	"encoding/binary"
	"runtime"
	"testing"
)

// An entry read back from shared data is hostile bytes (README, "Hostile
// bytes"): its header count must be checked against the bytes that follow
// before anything is sized by it. A 44-byte value claiming 65,535 headers
// must not make the VM allocate megabytes, nor leave a request (kept for
// reuse, recycle.go) holding them.
func TestEntryHeaderCountBoundedByItsBytes(t *testing.T) {
	b := make([]byte, entryHeader)
	b[0], b[1], b[2] = entryMagic0, entryMagic1, entryVersion
	le := binary.LittleEndian
	le.PutUint64(b[4:], 1000)
	le.PutUint64(b[12:], 2000)
	le.PutUint64(b[20:], 3000)
	le.PutUint16(b[32:], 200)
	le.PutUint16(b[34:], 0xFFFF) // nHeaders
	// keyLen, bodyLen 0; no header bytes follow.

	var ms0, ms1 runtime.MemStats
	req := &Request{}
	runtime.GC()
	runtime.ReadMemStats(&ms0)
	err := req.entry.decode(b)
	runtime.ReadMemStats(&ms1)
	if err == nil {
		t.Fatal("a truncated entry decoded")
	}
	allocated := ms1.TotalAlloc - ms0.TotalAlloc
	req.clear() // as Recycle does before keeping the request as a spare
	if allocated > 64<<10 || cap(req.entry.Headers) > len(b) {
		t.Fatalf("decoding a %d-byte unreadable entry allocated %d bytes; the recycled request keeps a header list of capacity %d",
			len(b), allocated, cap(req.entry.Headers))
	}
}

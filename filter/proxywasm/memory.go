package proxywasm

import "unsafe"

// The host returns variable-sized data by calling proxy_on_memory_allocate
// and writing (pointer, size) into out-parameters. Between the allocation and
// that write nothing on the Go side references the buffer, and a host may
// allocate more than once in one call (our wazero host does, Envoy does not
// today); a GC triggered by the second allocation could free the first. So
// every buffer handed to the host is pinned here until the host call that
// caused it has returned (see RATIONALE.md, pitfall 8 of the ABI reference).
var pinned [][]byte

// Scratch out-parameters shared by all host calls. The wasm VM is single
// threaded and no host call nests inside another, so one set suffices; being
// package-level they cost no allocation per call (locals passed to an import
// escape to the heap).
var (
	outPtr  *byte
	outSize uint32
	outCas  uint32
	outU32  uint32
)

// into, when set, is a caller's buffer the next allocation may use instead
// of a fresh one (see GetSharedDataInto): no allocation, no zeroing.
var into []byte

func allocate(size uint32) *byte {
	if into != nil && uint32(cap(into)) >= size && size > 0 {
		p := &into[:1][0]
		into = nil // one result per buffer
		return p
	}
	if size == 0 {
		size = 1 // the host never asks for 0, but 0 would read as failure
	}
	buf := make([]byte, size)
	pinned = append(pinned, buf)
	return &buf[0]
}

// intoResult is b, the host's result, with the whole capacity of buf when
// the host wrote it into buf: a caller that keeps the result as its next
// buffer never shrinks it to the last result's size (the host asks for
// exactly that size, so a smaller result would make the next larger one
// allocate).
func intoResult(buf, b []byte) []byte {
	if len(b) > 0 && cap(buf) >= len(b) && &buf[:1][0] == &b[0] {
		return buf[:len(b)]
	}
	return b
}

// takeOut returns the buffer the host wrote into outPtr/outSize and releases
// the pins of this host call. Not inlined: a request reads its headers,
// its body, the lease table and the response's headers and code details,
// each through another function, and one copy of this code serves them all.
//
//go:noinline
func takeOut() []byte {
	var b []byte
	if outPtr != nil && outSize > 0 {
		b = unsafe.Slice(outPtr, outSize)
	}
	outPtr, outSize = nil, 0
	unpin()
	return b
}

func unpin() {
	into = nil
	for i := range pinned {
		pinned[i] = nil
	}
	pinned = pinned[:0]
}

func ptrOf(b []byte) unsafe.Pointer {
	if len(b) == 0 {
		return nil
	}
	return unsafe.Pointer(&b[0])
}

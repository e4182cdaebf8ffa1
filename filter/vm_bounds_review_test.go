//go:build !wasip1

package main

import (
	"testing"
	"unsafe"

	"github.com/modelcache/modelcache/filter/proxywasm"
)

// manyShortHeaders is a header map of n one-letter headers with empty
// values: 11 bytes each once serialised by the host, 32 bytes each once
// decoded into the stream's pair list.
func manyShortHeaders(n int) [][2]string {
	hs := make([][2]string, n)
	for i := range hs {
		hs[i] = [2]string{string(rune('a' + i%26)), ""}
	}
	return hs
}

// README ("Memory bound") and maxFreeStreams promise that a VM keeps, for
// reuse, at most 64 finished streams "with request and response body
// buffers of up to 32 KiB each and request and response header buffers of
// up to 16 KiB each", larger ones not kept. Only the serialised header
// buffers (headersRaw, respRaw) are checked against maxKeptHeaders
// (buffers.oversize, trim): the decoded pair lists (headers, respHeaders)
// are kept whatever their size, as long as the serialised map was within
// 16 KiB. A map of ~1,400 short headers serialises to 15 KiB but decodes to
// ~44 KiB of pairs (32 bytes a pair), kept on the free list for good, twice
// per stream (request and response), 64 streams: about 5.6 MiB beyond the
// stated bound, from one burst of requests or answers with many headers.
// (cachecore's spare requests bound their pair lists: maxSparePairs.)
// Expected: a pair list larger than maxKeptHeaders bytes is not kept.
func TestFreeStreamKeepsNoHeaderPairListOverTheBound(t *testing.T) {
	const pairSize = int(unsafe.Sizeof([2]string{}))
	hs := manyShortHeaders(1400)
	raw, err := proxywasm.EncodePairs(hs)
	if err != nil {
		t.Fatal(err)
	}
	if len(raw) > maxKeptHeaders {
		t.Fatalf("test setup: the serialised map is %d bytes, over maxKeptHeaders", len(raw))
	}
	p := newPlugin(1)
	s := p.newStream(7)
	// What a request's headers and its answer's headers leave in the
	// stream's buffers (OnHttpRequestHeaders, reader.ResponseHeaders):
	// the host's serialised map kept as the next read's buffer, and its
	// decoded pairs.
	b := s.bufs
	b.headersRaw = raw[:0]
	b.headers, err = proxywasm.DecodePairsInto(raw, b.headers)
	if err != nil {
		t.Fatal(err)
	}
	respRaw, _ := proxywasm.EncodePairs(hs)
	b.respRaw = respRaw[:0]
	b.respHeaders, _ = proxywasm.DecodePairsInto(respRaw, b.respHeaders)
	s.OnHttpStreamDeleted()
	if len(p.free) != 1 || p.free[0] != s {
		t.Fatalf("the stream was not put on the free list (%d there)", len(p.free))
	}
	kept := s.bufs
	reqPairs, respPairs := cap(kept.headers)*pairSize, cap(kept.respHeaders)*pairSize
	if reqPairs > maxKeptHeaders || respPairs > maxKeptHeaders {
		t.Fatalf("a free stream keeps header pair lists of %d and %d bytes (%d and %d pairs) beside serialised buffers of %d and %d bytes: "+
			"over the %d bytes a header buffer kept for reuse may hold (README: up to 16 KiB each); x64 free streams = %d KiB kept for good",
			reqPairs, respPairs, cap(kept.headers), cap(kept.respHeaders), cap(kept.headersRaw), cap(kept.respRaw), maxKeptHeaders,
			maxFreeStreams*(reqPairs+respPairs)>>10)
	}
}

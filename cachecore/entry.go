package cachecore

import (
	"encoding/binary"
	"errors"
)

// Entry is one cached response with everything needed to decide whether it
// may be served: the full key it was stored under (compared byte for byte on
// every hit, so a slot collision can never serve another request's answer),
// its times, and the response itself.
type Entry struct {
	Key        []byte // full identity: namespace + canonical request
	StoredAt   int64  // unix ms
	FreshUntil int64  // unix ms; after it the entry is stale
	StaleUntil int64  // unix ms; after it the entry is useless (no SWR/SIE)
	ComputeMs  uint32 // how long the upstream took (XFetch δ)
	Status     uint16
	Flags      uint8
	Headers    [][2]string
	Body       []byte

	raw []byte // the encoded bytes Key, Headers and Body alias
}

// Entry flags.
const (
	// FlagSSE marks a body that is a recorded text/event-stream.
	FlagSSE uint8 = 1 << iota
	// FlagDemoted marks an answer a near hit's shadow comparison
	// contradicted: never a near match again (Table.markEntry).
	FlagDemoted
	// FlagNoStale marks an answer whose upstream said must-revalidate or
	// proxy-revalidate: stored with no stale window (storeStaleWindow),
	// and copied from L2 with none.
	FlagNoStale
)

// entryFlagsAt is the offset of an encoded entry's flags.
const entryFlagsAt = 3

// Entry wire format, version 1 (little-endian):
//
//	0  "MC" magic, 1 version, 1 flags
//	4  i64 storedAt, i64 freshUntil, i64 staleUntil (unix ms)
//	28 u32 computeMs, u16 status, u16 nHeaders, u32 keyLen, u32 bodyLen
//	44 key | nHeaders × (u16 nameLen, u32 valueLen, name, value) | body
//
// Decoding checks every length against the buffer: anything that does not
// add up exactly is ErrBadEntry, which callers treat as a miss.
const (
	entryMagic0  = 'M'
	entryMagic1  = 'C'
	entryVersion = 1
	entryHeader  = 44
)

// ErrBadEntry is returned for bytes that are not a readable entry (foreign
// data, another format version, truncation). It always means "miss".
var ErrBadEntry = errors.New("unreadable cache entry")

// EncodedSize returns the number of bytes Encode will produce.
func (e *Entry) EncodedSize() int {
	n := entryHeader + len(e.Key) + len(e.Body)
	for i := range e.Headers {
		h := &e.Headers[i] // not a copy: under wasm a ranged [2]string is copied each time round
		n += 6 + len(h[0]) + len(h[1])
	}
	return n
}

// AppendEncode appends the wire form of e to dst.
func (e *Entry) AppendEncode(dst []byte) []byte {
	start := len(dst)
	dst = append(dst, make([]byte, entryHeader)...)
	b := dst[start:]
	b[0], b[1], b[2], b[3] = entryMagic0, entryMagic1, entryVersion, e.Flags
	le := binary.LittleEndian
	le.PutUint64(b[4:], uint64(e.StoredAt))
	le.PutUint64(b[12:], uint64(e.FreshUntil))
	le.PutUint64(b[20:], uint64(e.StaleUntil))
	le.PutUint32(b[28:], e.ComputeMs)
	le.PutUint16(b[32:], e.Status)
	le.PutUint16(b[34:], uint16(len(e.Headers)))
	le.PutUint32(b[36:], uint32(len(e.Key)))
	le.PutUint32(b[40:], uint32(len(e.Body)))
	dst = append(dst, e.Key...)
	for i := range e.Headers {
		h := &e.Headers[i]
		dst = le.AppendUint16(dst, uint16(len(h[0])))
		dst = le.AppendUint32(dst, uint32(len(h[1])))
		dst = append(dst, h[0]...)
		dst = append(dst, h[1]...)
	}
	return append(dst, e.Body...)
}

// DecodeEntry parses b. Key, header strings and Body alias b: b must not be
// modified while the entry is in use (values read from shared data are
// fresh copies, so this holds).
func DecodeEntry(b []byte) (*Entry, error) {
	var e Entry
	if err := e.decode(b); err != nil {
		return nil, err
	}
	return &e, nil
}

// Detach gives the entry its own copy of the bytes it aliases, for an entry
// read into a scratch buffer that must outlive that buffer's next use.
func (e *Entry) Detach() {
	if e.raw == nil {
		return
	}
	_ = e.decode(append([]byte(nil), e.raw...))
}

func (e *Entry) decode(b []byte) error {
	e.raw = b
	if len(b) < entryHeader || b[0] != entryMagic0 || b[1] != entryMagic1 || b[2] != entryVersion {
		return ErrBadEntry
	}
	le := binary.LittleEndian
	e.Flags = b[3]
	e.StoredAt = int64(le.Uint64(b[4:]))
	e.FreshUntil = int64(le.Uint64(b[12:]))
	e.StaleUntil = int64(le.Uint64(b[20:]))
	e.ComputeMs = le.Uint32(b[28:])
	e.Status = le.Uint16(b[32:])
	nh := int(le.Uint16(b[34:]))
	kl := uint64(le.Uint32(b[36:]))
	bl := uint64(le.Uint32(b[40:]))
	rest := b[entryHeader:]
	if kl > uint64(len(rest)) {
		return ErrBadEntry
	}
	e.Key, rest = rest[:kl], rest[kl:]
	e.Headers = e.Headers[:0]
	if nh*6 > len(rest) {
		return ErrBadEntry // fewer bytes than its headers' lengths alone
	}
	if cap(e.Headers) < nh {
		e.Headers = make([][2]string, 0, nh)
	}
	for i := 0; i < nh; i++ {
		if len(rest) < 6 {
			return ErrBadEntry
		}
		nl, vl := uint64(le.Uint16(rest)), uint64(le.Uint32(rest[2:]))
		rest = rest[6:]
		if nl+vl > uint64(len(rest)) {
			return ErrBadEntry
		}
		e.Headers = append(e.Headers, [2]string{bytesString(rest[:nl]), bytesString(rest[nl : nl+vl])})
		rest = rest[nl+vl:]
	}
	if bl != uint64(len(rest)) {
		return ErrBadEntry
	}
	e.Body = rest
	if e.FreshUntil < e.StoredAt || e.StaleUntil < e.FreshUntil {
		return ErrBadEntry
	}
	return nil
}

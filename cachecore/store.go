package cachecore

import (
	"errors"
	"strings"
	"sync"
	"unsafe"
)

// Store is the byte store the cache lives in: Envoy's shared data in
// production, MemStore in native tests. It does bytes and CAS only, with
// exactly Envoy's semantics (proxy-wasm-cpp-host src/shared_data.cc):
//
//   - Get returns the value and its CAS, or ErrNotFound for a key never set;
//   - Set with cas 0 is unconditional; with cas ≠ 0 it must equal the key's
//     current CAS or it fails with ErrCasMismatch;
//   - a Set on a missing key succeeds whatever cas is passed;
//   - every successful Set assigns a new CAS from one global counter;
//   - there is no delete: an empty value keeps the key (the cache treats an
//     empty value as absent).
//
// Everything built on a Store must be correct under these rules with
// several VMs (threads) using it at once.
type Store interface {
	Get(key string) (value []byte, cas uint32, err error)
	Set(key string, value []byte, cas uint32) error
}

// BufferedStore is a Store that can read a value into a caller's buffer,
// so reading does not allocate when the buffer is large enough. The result
// aliases buf: it is valid until the caller reuses buf.
type BufferedStore interface {
	GetInto(key string, buf []byte) ([]byte, uint32, error)
}

// storeReader is a Store with its BufferedStore side found once, for the
// reads of every request (the table's, the leases', the model records',
// the semantic index's): asserting it on each read would, on wasm, run
// the runtime's itab lookup every time (RATIONALE.md, "The code a request
// runs"). It is itself a BufferedStore.
type storeReader struct {
	Store
	buffered BufferedStore // the store's own, or getRead: never nil
}

func readerOf(s Store) storeReader {
	if r, ok := s.(storeReader); ok {
		return r
	}
	b, ok := s.(BufferedStore)
	if !ok {
		b = getRead{s}
	}
	return storeReader{Store: s, buffered: b}
}

// GetInto reads key into buf if the store can, else allocates. It is one
// call, with no test of its own, so that it inlines into every reader:
// a store without a GetInto is given one (getRead) by readerOf.
func (r storeReader) GetInto(key string, buf []byte) ([]byte, uint32, error) {
	return r.buffered.GetInto(key, buf)
}

// getRead is the BufferedStore side of a Store that has none: it reads
// through Get, which allocates.
type getRead struct{ Store }

func (g getRead) GetInto(key string, _ []byte) ([]byte, uint32, error) { return g.Get(key) }

// Store errors.
var (
	ErrNotFound    = errors.New("store: not found")
	ErrCasMismatch = errors.New("store: cas mismatch")
)

// errIs is errors.Is with the common case first: a store returns these
// errors unwrapped, and errors.Is costs each request's path dozens of
// instructions per call under wasm before it compares them. A wrapped
// error still matches.
func errIs(err, target error) bool { return err == target || err != nil && errors.Is(err, target) }

// MemStore is an in-memory Store with Envoy's shared-data semantics, safe
// for concurrent use. Get returns a copy, as the host does.
type MemStore struct {
	mu  sync.Mutex
	cas uint32
	m   map[string]memValue
}

type memValue struct {
	v   []byte
	cas uint32
}

// NewMemStore returns an empty store.
func NewMemStore() *MemStore { return &MemStore{m: map[string]memValue{}} }

// Get implements Store.
func (s *MemStore) Get(key string) ([]byte, uint32, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	v, ok := s.m[key]
	if !ok {
		return nil, 0, ErrNotFound
	}
	return append([]byte(nil), v.v...), v.cas, nil
}

// GetInto implements BufferedStore.
func (s *MemStore) GetInto(key string, buf []byte) ([]byte, uint32, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	v, ok := s.m[key]
	if !ok {
		return nil, 0, ErrNotFound
	}
	return append(buf[:0], v.v...), v.cas, nil
}

// Set implements Store. Keys may alias a caller's buffer (the cache builds
// them in place), so they are copied.
func (s *MemStore) Set(key string, value []byte, cas uint32) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if cur, ok := s.m[key]; ok && cas != 0 && cas != cur.cas {
		return ErrCasMismatch
	}
	s.cas++
	if s.cas == 0 {
		s.cas++
	}
	s.m[strings.Clone(key)] = memValue{append([]byte(nil), value...), s.cas}
	return nil
}

// Keys returns the number of keys ever created (keys are never deleted).
func (s *MemStore) Keys() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.m)
}

// Bytes returns the total size of keys and values held.
func (s *MemStore) Bytes() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for k, v := range s.m {
		n += len(k) + len(v.v)
	}
	return n
}

// stringBytes views s as bytes without copying (length and capacity both
// len(s): an append never writes past it); they must never be written.
func stringBytes(s string) []byte {
	if s == "" {
		return nil
	}
	return unsafe.Slice(unsafe.StringData(s), len(s))
}

// bytesString views b as a string without copying; b must never change.
func bytesString(b []byte) string {
	if len(b) == 0 {
		return ""
	}
	return unsafe.String(&b[0], len(b))
}

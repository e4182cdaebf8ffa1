package cachecore_test

import (
	"testing"

	"github.com/modelcache/modelcache/cachecore"
	"github.com/modelcache/modelcache/cachecore/storetest"
)

// TestMemStoreConformance: MemStore has Envoy's shared-data semantics.
func TestMemStoreConformance(t *testing.T) {
	storetest.Run(t, func() cachecore.Store { return cachecore.NewMemStore() })
}

func TestMemStoreAccounting(t *testing.T) {
	s := cachecore.NewMemStore()
	if s.Keys() != 0 || s.Bytes() != 0 {
		t.Fatalf("new store: %d keys, %d bytes", s.Keys(), s.Bytes())
	}
	_ = s.Set("ab", []byte("cde"), 0)
	_ = s.Set("f", nil, 0)
	_ = s.Set("ab", []byte("x"), 0)
	if s.Keys() != 2 || s.Bytes() != len("ab")+len("x")+len("f") {
		t.Fatalf("got %d keys, %d bytes", s.Keys(), s.Bytes())
	}
}

func BenchmarkMemStoreGet(b *testing.B) {
	s := cachecore.NewMemStore()
	_ = s.Set("mc:e:1:1", make([]byte, 2048), 0)
	b.ReportAllocs()
	for b.Loop() {
		_, _, _ = s.Get("mc:e:1:1")
	}
}

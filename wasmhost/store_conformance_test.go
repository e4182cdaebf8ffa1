package wasmhost

import (
	"errors"
	"testing"

	"github.com/modelcache/modelcache/cachecore"
	"github.com/modelcache/modelcache/cachecore/storetest"
)

// sharedStore exposes the host's shared data as a cachecore.Store, so the
// one conformance suite checks that the host implements the same semantics
// the cache is built (and unit-tested natively) on.
type sharedStore struct {
	sd *sharedData
	vm string
}

func (s sharedStore) Get(key string) ([]byte, uint32, error) {
	v, cas, st := s.sd.get(s.vm, key)
	if st == StatusNotFound {
		return nil, 0, cachecore.ErrNotFound
	}
	return v, cas, nil
}

func (s sharedStore) Set(key string, value []byte, cas uint32) error {
	switch st := s.sd.set(s.vm, key, value, cas); st {
	case StatusOK:
		return nil
	case StatusCasMismatch:
		return cachecore.ErrCasMismatch
	default:
		return errors.New(st.String())
	}
}

func TestSharedDataConformsToStore(t *testing.T) {
	storetest.Run(t, func() cachecore.Store { return sharedStore{sd: newSharedData(), vm: "modelcache"} })
}

package main

import (
	"github.com/modelcache/modelcache/cachecore"
	"github.com/modelcache/modelcache/filter/proxywasm"
	"github.com/modelcache/modelcache/filter/proxywasm/types"
)

// sharedStore is cachecore.Store over Envoy's shared data for this vm_id:
// one process-wide map, shared by every worker VM. Its methods take a
// pointer, and the cache holds store (a pointer): a value in the
// interface would reach each method through Go's generated pointer
// wrapper, one more function entered per read and write.
type sharedStore struct{}

// store is the one sharedStore the VM's cache and restart count use.
var store = &sharedStore{}

func (*sharedStore) Get(key string) ([]byte, uint32, error) {
	v, cas, err := proxywasm.GetSharedData(key)
	return v, cas, storeErr(err)
}

// GetInto reads into buf when it is large enough (cachecore.BufferedStore).
func (*sharedStore) GetInto(key string, buf []byte) ([]byte, uint32, error) {
	v, cas, err := proxywasm.GetSharedDataInto(key, buf)
	return v, cas, storeErr(err)
}

// Set writes through the host's status (SetSharedDataStatus, inlined
// here): a write that succeeds, as a lease's two writes do, runs no
// function between this one and the host; a failed one is mapped as
// every other error (storeErr).
func (*sharedStore) Set(key string, value []byte, cas uint32) error {
	if s := proxywasm.SetSharedDataStatus(key, value, cas); s != types.StatusOK {
		return storeErr(types.StatusToError(s))
	}
	return nil
}

// storeErr maps the binding's errors to the store's. The binding returns
// its status errors unwrapped (types.StatusToError), so they compare with
// ==, which is far cheaper under wasm than errors.Is on every read.
func storeErr(err error) error {
	switch err {
	case nil:
		return nil
	case types.ErrorStatusNotFound:
		return cachecore.ErrNotFound
	case types.ErrorStatusCasMismatch:
		return cachecore.ErrCasMismatch
	}
	return err
}

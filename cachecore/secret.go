package cachecore

import (
	"encoding/binary"
	"errors"
)

// The process secret: 32 random bytes in shared data, created once by the
// first VM that needs it and read by every other, so all VMs of the Envoy
// process hash alike. It keys every hash by which request-controlled data
// picks a slot of shared state (model table, slot table, leases), so which
// requests share a slot cannot be computed from outside. It survives VM
// reloads (shared data belongs to the process) and is never written again:
// it is set with a create-only CAS, so two VMs racing to create it agree on
// the winner's.
//
//	mc:secret  "MS" 1 model-key(16) fingerprint-key(16)
const (
	secretKey = "mc:secret"
	secretLen = 3 + 32
)

type hashKeys struct {
	model sipKey // model-table record ids and slots
	fp    sipKey // slot-table and lease fingerprints
}

func decodeSecret(raw []byte) (hashKeys, bool) {
	if len(raw) != secretLen || raw[0] != 'M' || raw[1] != 'S' || raw[2] != 1 {
		return hashKeys{}, false
	}
	return hashKeys{model: sipKeyFrom(raw[3:]), fp: sipKeyFrom(raw[19:])}, true
}

// loadSecret reads the process secret, creating it from rnd if missing.
// rnd must be unpredictable in production: the filter passes math/rand/v2's
// top-level generator (the runtime's ChaCha8, seeded from WASI random_get).
func loadSecret(s Store, rnd func() uint64) (hashKeys, error) {
	for attempt := 0; attempt < maxCASAttempts; attempt++ {
		raw, _, err := s.Get(secretKey)
		if err == nil {
			if k, ok := decodeSecret(raw); ok {
				return k, nil
			}
			// A malformed value is never overwritten: VMs that already
			// hash with it would disagree with the new one.
			return hashKeys{}, errors.New("cachecore: malformed process secret in shared data")
		}
		if !errIs(err, ErrNotFound) {
			return hashKeys{}, err
		}
		b := make([]byte, 3, secretLen)
		b[0], b[1], b[2] = 'M', 'S', 1
		for i := 0; i < 4; i++ {
			b = binary.LittleEndian.AppendUint64(b, rnd())
		}
		cas, err := CreateCAS(s)
		if err != nil {
			return hashKeys{}, err
		}
		err = s.Set(secretKey, b, cas)
		if err != nil && !errIs(err, ErrCasMismatch) {
			return hashKeys{}, err
		}
		// Created, or another VM won the race: read back what is there.
	}
	return hashKeys{}, ErrContention
}

// keys returns the process secret's hash keys, loading them on first use.
func (c *Cache) keys() (*hashKeys, error) {
	if c.hk != nil { // inlined: every keyed request asks
		return c.hk, nil
	}
	return c.loadKeys()
}

// loadKeys is keys' first use.
//
//go:noinline
func (c *Cache) loadKeys() (*hashKeys, error) {
	k, err := loadSecret(c.store, c.rand)
	if err != nil {
		return nil, err
	}
	c.hk = &k
	return c.hk, nil
}

// fingerprint maps a full key to its non-zero keyed fingerprint: the slot
// table's bucket and way, and the lease slot, come from it. The secret is
// loaded by then (every path that builds a key loads the model state
// first, which needs it).
func (c *Cache) fingerprint(key []byte) uint64 {
	return nonZero(c.hk.fp.sum64(key))
}

package cachecore

import (
	"crypto/sha256"
	"encoding/binary"
	"testing"
)

// One credential is one tenant whatever the case of its scheme or the
// spaces after it; the usual spelling hashes as it did before, so entries
// stored under it stay reachable.
func TestTenantSchemeSpellings(t *testing.T) {
	env := newEnv(t, testConfig)
	c := env.cache
	raw := sha256.Sum256([]byte("modelcache tenant\x00authorization\x00Bearer sk-alice"))
	for _, v := range []string{"Bearer sk-alice", "bearer sk-alice", "BEARER sk-alice", "Bearer   sk-alice", "bEaReR\tsk-alice"} {
		if got := c.tenantHashNew("authorization", v).sum; got != raw {
			t.Errorf("%q hashes apart from \"Bearer sk-alice\"", v)
		}
	}
	for _, v := range []string{"Bearer sk-alicE", "Basic sk-alice", "sk-alice"} {
		if c.tenantHashNew("authorization", v).sum == raw {
			t.Errorf("%q is the same tenant as \"Bearer sk-alice\"", v)
		}
	}
	if c.tenantHashNew("x-api-key", "Bearer sk-alice").sum != sha256.Sum256([]byte("modelcache tenant\x00x-api-key\x00Bearer sk-alice")) {
		t.Error("another header's value was rewritten")
	}
}

// The credential's tag (a shadow's min_tenants, kept in shared data's
// model records) is a SHA-256 of the credential, as the tenant's hash is:
// no unkeyed fast hash of a credential, which a low-entropy key would be
// found back from (Z270's suspicion).
func TestTenantCredentialTagIsAHashOfTheCredential(t *testing.T) {
	env := newEnv(t, testConfig)
	c := env.cache
	id := c.tenantHashNew("authorization", "Bearer sk-alice")
	sum := sha256.Sum256([]byte("modelcache credential\x00sk-alice"))
	if want := binary.LittleEndian.Uint64(sum[:8]) | 1; id.credential != want {
		t.Fatalf("credential tag %x, want the SHA-256's %x", id.credential, want)
	}
	if other := c.tenantHashNew("x-api-key", "sk-alice"); other.credential != id.credential {
		t.Fatal("one key under two headers: two credential tags")
	}
}

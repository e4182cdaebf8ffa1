package e2e

import (
	"fmt"
	"testing"
)

// TestHostileCotenantStoreFloodWithShare: with store.max_tenant_share, a
// tenant flooding the store with distinct cacheable requests displaces only
// its own entries; another tenant's entry stays a hit. (Without the option
// the flood evicts everyone's entries, soonest-expiring first.)
func TestHostileCotenantStoreFloodWithShare(t *testing.T) {
	cfg := `{"store":{"buckets":2,"ways":4,"max_tenant_share":0.5},
	  "routes":[{"name":"chat","kind":"chat","path_prefix":"/v1/chat/completions","ttl":"10m"}]}`
	e := startEnvoy(t, envoyOpts{Config: cfg})
	url := e.URL + "/v1/chat/completions"
	victim := chat("tenant A's question")
	expectCS(t, do(t, "POST", url, victim, "authorization", "Bearer tenant-a"), "stored")
	for i := 0; i < 40; i++ {
		expectCS(t, do(t, "POST", url, chat(fmt.Sprint("flood ", i)), "authorization", "Bearer tenant-b"), "stored")
	}
	expectCS(t, do(t, "POST", url, victim, "authorization", "Bearer tenant-a"), "hit")
	// Tenant B may hold 2 of the 4 ways of each of the 2 buckets: 4
	// entries; each of its other 36 stores evicted one of its own.
	if n := e.WaitStat("wasmcustom.modelcache.evictions_tenant_share", 36); n != 36 {
		t.Fatalf("tenant-share evictions = %d, want 36", n)
	}
	if n := e.Stat("wasmcustom.modelcache.evictions"); n != e.Stat("wasmcustom.modelcache.evictions_tenant_share") {
		t.Fatalf("%d evictions, only %d of the flooding tenant's own", n, e.Stat("wasmcustom.modelcache.evictions_tenant_share"))
	}
}

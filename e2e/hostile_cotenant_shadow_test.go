package e2e

import (
	"fmt"
	"testing"
)

// Hostile co-tenants against shadow comparison: a tenant whose own hits
// diverge at will (its questions have random answers) must not invalidate
// the model for every tenant. Real Envoy --concurrency 2.
func TestHostileCotenantShadowCannotInvalidate(t *testing.T) {
	cfg := `{"upstream_cluster":"model","routes":[{"name":"chat","kind":"chat","path_prefix":"/v1/chat/completions","ttl":"1h",
	  "shadow":{"sample":1.0,"max_concurrent":8,"min_samples":5,"max_divergence":0.5,"window":"10m"}}]}`
	e := startEnvoy(t, envoyOpts{Config: cfg})
	url := e.URL + "/v1/chat/completions"
	victim := chat("the victim's question")
	expectCS(t, do(t, "POST", url, victim, "authorization", "Bearer victim"), "stored")

	// The attacker stores answers the model gives differently every time,
	// then hits them: every sampled comparison diverges.
	const keys, rounds = 4, 5
	random := []string{"authorization", "Bearer attacker", "x-sim-nondeterministic", "true"}
	for k := 0; k < keys; k++ {
		expectCS(t, do(t, "POST", url, chat(fmt.Sprint("pick a random number ", k)), random...), "stored")
	}
	diverged := int64(0)
	for r := 0; r < rounds; r++ {
		for k := 0; k < keys; k++ {
			expectCS(t, do(t, "POST", url, chat(fmt.Sprint("pick a random number ", k)), random...), "hit")
			diverged++
			if got := e.WaitStat("wasmcustom.modelcache_route.chat.shadow.diverge", diverged); got != diverged {
				t.Fatalf("divergence %d not seen (%d)", diverged, got)
			}
		}
	}
	if n := e.Stat("wasmcustom.modelcache_route.chat.shadow.invalidations"); n != 0 {
		t.Fatalf("one tenant's %d divergent samples invalidated the model for everyone (%d invalidations)", diverged, n)
	}
	// The victim's entry is still there.
	expectCS(t, do(t, "POST", url, victim, "authorization", "Bearer victim"), "hit")
}

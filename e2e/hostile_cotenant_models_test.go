package e2e

import (
	"fmt"
	"strconv"
	"testing"

	"github.com/modelcache/modelcache/cachecore"
)

// Hostile co-tenants against the shared model table (issue 13, item 3).
// Real Envoy --concurrency 2 with the shipped configuration (chat route,
// model versions from x-model-version).

// unkeyedModelSlot is the model-table slot an attacker could compute
// offline before the table was keyed: XXH64(route NUL model) with the
// public seed, modulo the 256 slots.
func unkeyedModelSlot(route, model string) uint64 {
	b := append([]byte(route), 0)
	b = append(b, model...)
	return cachecore.Hash64(b, 0x6d6f64656c737461) % 256
}

func chatWithModel(model, content string) string {
	return fmt.Sprintf(`{"model":%q,"messages":[{"role":"user","content":%q}]}`, model, content)
}

// TestHostileCotenantModelNamesCannotEvict: tenant A stores an answer for
// model m; tenant B then sends 64 requests whose model names collide with
// m's slot under the old public hash (8 would have sufficed), each stored.
// A's second request is still a hit.
func TestHostileCotenantModelNamesCannotEvict(t *testing.T) {
	e := startEnvoy(t, envoyOpts{})
	url := e.URL + "/v1/chat/completions"
	victim := chatWithModel("m", "what is the capital of France?")
	expectCS(t, do(t, "POST", url, victim, "authorization", "Bearer tenant-a"), "fwd=miss", "stored")

	want := unkeyedModelSlot("chat", "m")
	var names []string
	for i := 0; len(names) < 64; i++ {
		if name := "evil-" + strconv.Itoa(i); unkeyedModelSlot("chat", name) == want {
			names = append(names, name)
		}
	}
	for i, name := range names {
		r := do(t, "POST", url, chatWithModel(name, "x"), "authorization", "Bearer tenant-b")
		if r.Status != 200 {
			t.Fatalf("attacker request %d: %d", i, r.Status)
		}
		expectCS(t, r, "stored") // each one a live record in the model table
	}
	// Fresh connections land on either worker: every VM of the process
	// hashes with the same secret.
	calls := e.Sim.TotalCalls()
	for i := 0; i < 8; i++ {
		client.CloseIdleConnections()
		expectCS(t, do(t, "POST", url, victim, "authorization", "Bearer tenant-a"), "hit")
	}
	if e.Sim.TotalCalls() != calls {
		t.Fatal("tenant A's request went upstream")
	}
}

package cachecore

import (
	"strings"
	"testing"
)

// A model (or everything) purged while its L2 generation is missing gets one made by INCR
// at 1, with no expiry (l2Renew's comment: kept from expiring because "the
// next INCR of the missing key would make it 1 again — the value that
// entry carries, served again after a purge"). Eviction does the same as
// an expiry: under allkeys-lru, which README advises ("an evicted
// generation is recreated at a random value"), the key goes, the next
// purge of the model INCRs it to 1 again, and every value written under
// the first 1 — which that very purge was to invalidate — is served again.
func TestL2EvictedINCRMadeModelGenerationDoesNotResurrectPurgedValues(t *testing.T) {
	for _, tc := range []struct {
		name  string
		purge string
		gen   func(k string) bool // the generation the purge moves
	}{
		{"model purge", `{"route":"chat","model":"gpt-4o-mini"}`, func(k string) bool { return strings.HasPrefix(k, DefaultL2Prefix+"g:") }},
		{"purge of everything", `{"all":true}`, func(k string) bool { return k == DefaultL2Prefix+"g" }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m := newL2Mesh(t, "")
			purge := func() {
				res, err := m.p[0].Purge([]byte(tc.purge), "")
				if err != nil {
					t.Fatal(err)
				}
				m.step(res.L2.Done(m.wd.do(res.L2)))
			}
			purge() // the generation is missing: INCR makes it 1
			var modelGen string
			for k, v := range m.wd.kv {
				if tc.gen(k) {
					modelGen = k
					if string(v) != "1" {
						t.Fatalf("generation %s = %s, want the INCR-made 1", k, v)
					}
				}
			}
			if modelGen == "" {
				t.Fatal("no generation")
			}
			m.ask(0, "hello", "bad answer")
			delete(m.wd.kv, modelGen) // evicted (allkeys-lru)
			delete(m.wd.ttl, modelGen)
			purge() // the bad answer is purged
			if cs, body := m.ask(1, "hello", "fresh"); strings.Contains(cs, "hit") {
				t.Fatalf("a value written before the purge is served after it: %q %s", cs, body)
			}
		})
	}
}

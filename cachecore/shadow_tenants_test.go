package cachecore

import "testing"

// One tenant can make its own hits diverge at will (it asks for random
// answers); its divergent samples alone must never invalidate a model for
// every tenant. With min_tenants 2 (the default), a second tenant's
// divergence is needed; min_tenants 1 and shared routes keep the plain rate.
func TestShadowInvalidationNeedsTwoTenants(t *testing.T) {
	const chat = `{"model":"m","messages":[{"role":"user","content":"hi"}]}`
	cfg := func(shadow string, shared bool) string {
		s := ""
		if shared {
			s = `,"shared":true`
		}
		return `{"upstream_cluster":"u","routes":[{"name":"chat","kind":"chat","path_prefix":"/v1/chat"` + s +
			`,"shadow":{"sample":1,"min_samples":5,"max_divergence":0.5` + shadow + `}}]}`
	}
	observe := func(t *testing.T, env *testEnv, who [][2]string, n int) ShadowResult {
		t.Helper()
		var res ShadowResult
		for i := 0; i < n; i++ {
			req := env.request("chat", who, chat)
			env.fill(req, jsonCT, chatWith(""), 10)
			var err error
			if res, err = env.cache.ObserveShadow(req, true); err != nil {
				t.Fatal(err)
			}
			if res.Invalidated {
				return res
			}
		}
		return res
	}
	t.Run("one tenant alone never invalidates", func(t *testing.T) {
		env := newEnv(t, cfg("", false))
		if res := observe(t, env, alice, 50); res.Invalidated || !res.HeldForTenants {
			t.Fatalf("after 50 divergent samples of one tenant: %+v", res)
		}
		// A second tenant's divergence confirms it.
		if res := observe(t, env, bob, 1); !res.Invalidated {
			t.Fatalf("a second tenant's divergence did not invalidate: %+v", res)
		}
	})
	t.Run("min_tenants 1", func(t *testing.T) {
		env := newEnv(t, cfg(`,"min_tenants":1`, false))
		if res := observe(t, env, alice, 5); !res.Invalidated {
			t.Fatalf("min_tenants 1: %+v", res)
		}
	})
	t.Run("shared route", func(t *testing.T) {
		env := newEnv(t, cfg("", true))
		if res := observe(t, env, noIdent, 5); !res.Invalidated {
			t.Fatalf("shared route: %+v", res)
		}
	})
}

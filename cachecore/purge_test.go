package cachecore

import (
	"errors"
	"strings"
	"testing"
	"time"
)

func TestIsPurge(t *testing.T) {
	env := newEnv(t, testConfig)
	for _, tc := range []struct {
		path string
		want bool
	}{
		{"/_modelcache/purge", true},
		{"/_modelcache/purge?all=1", true},
		{"/_modelcache/purge/", false},
		{"/_modelcache", false},
		{"/v1/chat/completions", false},
	} {
		if got := env.cache.IsPurge("POST", tc.path); got != tc.want {
			t.Errorf("IsPurge(%q) = %v", tc.path, got)
		}
	}
	off := newEnv(t, minimalChat)
	if off.cache.IsPurge("POST", "") || off.cache.IsPurge("POST", "/") {
		t.Errorf("purge API exists without a token")
	}
}

func TestPurgeAuthorized(t *testing.T) {
	env := newEnv(t, testConfig)
	tests := []struct {
		name    string
		headers [][2]string
		want    bool
	}{
		{"exact bearer token", hdr("authorization", "Bearer "+purgeToken), true},
		{"scheme is case-insensitive", hdr("authorization", "bEARER "+purgeToken), true},
		{"surrounding spaces", hdr("authorization", "Bearer   "+purgeToken+" "), true},
		{"no header", nil, false},
		{"other header", hdr("x-api-key", purgeToken), false},
		{"token alone", hdr("authorization", purgeToken), false},
		{"basic scheme", hdr("authorization", "Basic "+purgeToken), false},
		{"bearer without token", hdr("authorization", "Bearer "), false},
		{"bearer only", hdr("authorization", "Bearer"), false},
		{"prefix of the token", hdr("authorization", "Bearer "+purgeToken[:len(purgeToken)-1]), false},
		{"token plus a character", hdr("authorization", "Bearer "+purgeToken+"x"), false},
		{"token in other case", hdr("authorization", "Bearer "+strings.ToUpper(purgeToken)), false},
		{"token with an inner space", hdr("authorization", "Bearer "+purgeToken[:4]+" "+purgeToken[4:]), false},
		{"second authorization header not consulted", hdr("authorization", "Bearer wrong", "authorization", "Bearer "+purgeToken), false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := env.cache.PurgeAuthorized(tc.headers); got != tc.want {
				t.Fatalf("PurgeAuthorized = %v, want %v", got, tc.want)
			}
		})
	}
}

// TestPurgeAuthorizedWithoutToken: with no purge token configured there is
// no purge API, and no header may authorize one.
func TestPurgeAuthorizedWithoutToken(t *testing.T) {
	env := newEnv(t, minimalChat)
	for _, v := range []string{"Bearer ", "Bearer    ", "bearer \t"} {
		if env.cache.PurgeAuthorized(hdr("authorization", v)) {
			t.Errorf("PurgeAuthorized(%q) = true with no token configured", v)
		}
	}
}

func TestPurge(t *testing.T) {
	q1, q2 := chatRequest("one"), chatRequest("two")
	// fillAll stores alice/q1, alice/q2, bob/q1 on chat and one embedding.
	fillAll := func(t *testing.T) *testEnv {
		env := newEnv(t, testConfig)
		for _, c := range []struct {
			who  [][2]string
			body string
		}{{alice, q1}, {alice, q2}, {bob, q1}} {
			req, _ := env.lookup("chat", c.who, c.body)
			env.fill(req, jsonCT, chatResponse("x"), 10)
		}
		req, _ := env.lookup("embed", nil, `{"model":"e","input":"x"}`)
		env.fill(req, jsonCT, `{"object":"list","data":[{"object":"embedding","index":0,"embedding":[0.1]}]}`, 10)
		return env
	}
	served := func(env *testEnv, route string, who [][2]string, body string) bool {
		_, d := env.lookup(route, who, body)
		return d == Serve
	}
	tests := []struct {
		name      string
		body      string
		want      PurgeResult
		aliceQ1   bool // still served afterwards
		aliceQ2   bool
		bobQ1     bool
		embedding bool
	}{
		{"all", `{"all":true}`, PurgeResult{Scope: "all", Freed: 4}, false, false, false, false},
		{"model", `{"route":"chat","model":"gpt-4o-mini"}`, PurgeResult{Scope: "model", Freed: 0}, false, false, false, true},
		{"model on another route", `{"route":"sie","model":"gpt-4o-mini"}`, PurgeResult{Scope: "model", Freed: 0}, true, true, true, true},
		{"entry by replay", `{"method":"POST","path":"/v1/chat/completions","headers":{"Authorization":"Bearer sk-alice"},"body":` + q1 + `}`,
			PurgeResult{Scope: "entry", Freed: 1}, false, true, true, true},
		{"entry by replay, default method, reordered body", `{"path":"/v1/chat/completions","headers":{"authorization":"Bearer sk-bob"},` +
			`"body":{"temperature":0,"messages":[{"content":"one","role":"user"}],"model":"gpt-4o-mini","user":"ignored"}}`,
			PurgeResult{Scope: "entry", Freed: 1}, true, true, false, true},
		{"entry by replay, shared route", `{"path":"/v1/embeddings","body":{"model":"e","input":"x"}}`, PurgeResult{Scope: "entry", Freed: 1}, true, true, true, false},
		{"entry never stored", `{"path":"/v1/chat/completions","headers":{"authorization":"Bearer sk-alice"},"body":` + chatRequest("three") + `}`,
			PurgeResult{Scope: "entry", Freed: 0}, true, true, true, true},
		{"entry of an unknown model", `{"path":"/v1/chat/completions","headers":{"authorization":"Bearer sk-alice"},"body":{"model":"nope"}}`,
			PurgeResult{Scope: "entry", Freed: 0}, true, true, true, true},
		{"replay with no-cache still purges", `{"path":"/v1/chat/completions","headers":{"authorization":"Bearer sk-alice","cache-control":"no-cache"},"body":` + q2 + `}`,
			PurgeResult{Scope: "entry", Freed: 1}, true, false, true, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			env := fillAll(t)
			got, err := env.cache.Purge([]byte(tc.body), "")
			if err != nil || got != tc.want {
				t.Fatalf("Purge = %+v, %v; want %+v", got, err, tc.want)
			}
			if served(env, "chat", alice, q1) != tc.aliceQ1 || served(env, "chat", alice, q2) != tc.aliceQ2 ||
				served(env, "chat", bob, q1) != tc.bobQ1 || served(env, "embed", nil, `{"model":"e","input":"x"}`) != tc.embedding {
				t.Fatalf("wrong entries left: alice/q1 %v alice/q2 %v bob/q1 %v embedding %v",
					served(env, "chat", alice, q1), served(env, "chat", alice, q2), served(env, "chat", bob, q1),
					served(env, "embed", nil, `{"model":"e","input":"x"}`))
			}
		})
	}

	bad := []struct {
		name, body, want string
	}{
		{"not JSON", `all=true`, "not JSON"},
		{"empty object", `{}`, "expected"},
		{"all false", `{"all":false}`, "expected"},
		{"model without route", `{"model":"gpt-4o-mini"}`, `unknown route ""`},
		{"unknown route", `{"route":"nope","model":"m"}`, `unknown route "nope"`},
		{"no route for the replay", `{"path":"/nope","body":{}}`, "no route matches POST /nope"},
		{"method not cached", `{"method":"GET","path":"/v1/chat/completions","body":{}}`, "no route matches GET"},
		{"replay that would bypass", `{"path":"/v1/chat/completions","headers":{"authorization":"a"},"body":{"model":"m","model":"n"}}`, "duplicate_key"},
		{"replay without identity", `{"path":"/v1/chat/completions","body":` + q1 + `}`, "no_identity"},
	}
	for _, tc := range bad {
		t.Run(tc.name, func(t *testing.T) {
			env := fillAll(t)
			before, _ := env.cache.Table().Occupied()
			res, err := env.cache.Purge([]byte(tc.body), "")
			if !errors.Is(err, ErrBadPurge) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Purge = %+v, %v; want ErrBadPurge mentioning %q", res, err, tc.want)
			}
			if after, _ := env.cache.Table().Occupied(); after != before {
				t.Fatalf("a refused purge changed the table: %d -> %d", before, after)
			}
		})
	}
}

// Review P (stop 71). A request the route caches (its body within max_request_bytes) must be
// purgeable by replay: the purge body wraps it, and is refused when the
// wrapped request is near max_request_bytes.
func TestPurgeByReplayOfARequestAtMaxRequestBytes(t *testing.T) {
	env := newEnv(t, testConfig) // max_request_bytes 8192
	pad := strings.Repeat("x", 8192-len(chatRequest("")))
	q := chatRequest(pad)
	if len(q) != 8192 {
		t.Fatalf("setup: %d", len(q))
	}
	env.fill(env.request("chat", alice, q), jsonCT, chatResponse("a"), 10)
	if _, d := env.lookup("chat", alice, q); d != Serve {
		t.Fatal("setup: the request's answer is not cached")
	}
	purge := `{"path":"/v1/chat/completions","headers":{"authorization":"Bearer sk-alice"},"body":` + q + `}`
	res, err := env.cache.Purge([]byte(purge), "")
	if err != nil {
		t.Fatalf("a cached entry cannot be purged by replaying its request (%d bytes, purge body %d): %v", len(q), len(purge), err)
	}
	if _, d := env.lookup("chat", alice, q); d == Serve {
		t.Fatalf("still served after purge %+v", res)
	}
}

// Review P (stop 71). A purge before a reload stays in force after it: an entry purged by
// replay while the configuration had another store.buckets must not come
// back when the configuration returns to the layout it was stored under
// (shared data, and with it every key, outlives reloads).
func TestEntryPurgedUnderAnotherLayoutStaysPurgedAfterAReloadBack(t *testing.T) {
	cfgA := testConfig
	cfgB := strings.Replace(testConfig, `"buckets": 16`, `"buckets": 32`, 1)
	if cfgA == cfgB {
		t.Fatal("setup: config not changed")
	}
	store := NewMemStore()
	clock := newFakeClock()
	mk := func(cfg string) *testEnv {
		c := New(mustParse(t, cfg), Options{Store: store, Now: clock.Now, Rand: seededRand(1)})
		return &testEnv{t: t, cache: c, store: store, clock: clock}
	}
	a := mk(cfgA)
	var prompts []string
	for i := range 8 {
		q := chatRequest("poisoned question " + itoa(int64(i)))
		a.fill(a.request("chat", alice, q), jsonCT, chatResponse("poisoned answer"), 10)
		prompts = append(prompts, q)
	}
	clock.Advance(time.Second)
	b := mk(cfgB) // reload: store.buckets 16 -> 32
	for _, q := range prompts {
		purge := `{"path":"/v1/chat/completions","headers":{"authorization":"Bearer sk-alice"},"body":` + q + `}`
		if _, err := b.cache.Purge([]byte(purge), ""); err != nil {
			t.Fatal(err)
		}
		if _, d := b.lookup("chat", alice, q); d == Serve {
			t.Fatalf("served right after its purge: %s", q)
		}
	}
	clock.Advance(time.Second)
	a2 := mk(cfgA) // reload back: store.buckets 32 -> 16
	var back int
	for _, q := range prompts {
		if r, d := a2.lookup("chat", alice, q); d == Serve {
			_, _, body := a2.cache.HitResponse(r)
			t.Logf("purged entry served again after the reload back: %s -> %s", q, body)
			back++
		}
	}
	if back > 0 {
		t.Fatalf("%d of %d entries purged by replay (each answered 200) are served again after a reload back to the layout they were stored under", back, len(prompts))
	}
}

package cachecore

import (
	"strings"
	"testing"
)

// Review Z176 (1). README "Hostile bytes": requests nest up to 64 levels
// (one limit for requests and answers); only a request nested deeper
// bypasses the cache. A request nested exactly 64 levels is cached, but
// the replay envelope of the purge API wraps it one level deeper, and the
// whole purge body is held to the same 64 levels: the purge is answered
// 400 "too deep" and the entry can never be purged by replay (only by a
// purge of its whole model). As with max_request_bytes (purgeEnvelope),
// the envelope must leave room for a request the route caches.
func TestPurgeByReplayOfARequestAtMaxJSONDepth(t *testing.T) {
	env := newEnv(t, testConfig)
	// The body object is level 1, "x"'s arrays levels 2..64.
	deep := strings.Repeat("[", MaxJSONDepth-1) + "1" + strings.Repeat("]", MaxJSONDepth-1)
	q := `{"model":"gpt-4o-mini","messages":[{"role":"user","content":"deep"}],"temperature":0,"x":` + deep + `}`
	if CheckJSONDepth(q, MaxJSONDepth) != nil || CheckJSONDepth(q, MaxJSONDepth-1) == nil {
		t.Fatalf("setup: the request is not nested exactly %d levels", MaxJSONDepth)
	}
	env.fill(env.request("chat", alice, q), jsonCT, chatResponse("a"), 10)
	if _, d := env.lookup("chat", alice, q); d != Serve {
		t.Fatal("setup: the request's answer is not cached")
	}
	purge := `{"path":"/v1/chat/completions","headers":{"authorization":"Bearer sk-alice"},"body":` + q + `}`
	res, err := env.cache.Purge([]byte(purge), "")
	if err != nil {
		t.Fatalf("a cached entry (request nested %d levels, which the cache accepts) cannot be purged by replaying its request: %v", MaxJSONDepth, err)
	}
	if _, d := env.lookup("chat", alice, q); d == Serve {
		t.Fatalf("still served after purge %+v", res)
	}
}

// Review Z176 (3). README "Purge API": a replay carries the request's
// "headers" as a JSON object. A header given as a list of its lines — the
// shape json.Marshal(http.Header) writes in Go, and many HTTP clients'
// multi-valued header dicts — is read by purge.go with gjson's String(),
// i.e. as its JSON text `["Bearer sk-alice"]`: the replay is keyed under a
// tenant named by that text, which no request can be, and the purge
// answers 200 {"scope":"entry","freed":0} while alice's entry goes on
// being served. A header value that is not a string must either be read
// as the lines it lists or be refused (400), never silently purge nothing.
func TestPurgeReplayWithHeaderLinesAsAListIsNotAnsweredSuccessForNothing(t *testing.T) {
	env := newEnv(t, testConfig)
	q := chatRequest("listed header")
	env.fill(env.request("chat", alice, q), jsonCT, chatResponse("a"), 10)
	if _, d := env.lookup("chat", alice, q); d != Serve {
		t.Fatal("setup: the request's answer is not cached")
	}
	purge := `{"path":"/v1/chat/completions","headers":{"Authorization":["Bearer sk-alice"]},"body":` + q + `}`
	res, err := env.cache.Purge([]byte(purge), "")
	_, d := env.lookup("chat", alice, q)
	if err == nil && d == Serve {
		t.Fatalf("purge with headers as lists answered success (%+v) and alice's entry is still served; want it purged or the purge refused", res)
	}
}

// Review Z176 (4). README "Purge API": everything is purged by
// {"all": true}; {"all": false} is refused (TestPurge). purge.go reads
// "all" with gjson's Bool(), which is true for any non-zero number and
// for the strings "1", "t", "T", "TRUE", "true"…: {"all": 1},
// {"all": "T"} or {"all": -1e-300} wipe every tenant's entries of every
// route and renew every model's generation. The most destructive purge
// should take exactly the documented `true` and refuse anything else
// (400), as a purge by model refuses a model that is not a string
// (review Z155).
func TestPurgeAllTakesOnlyTrue(t *testing.T) {
	for _, body := range []string{`{"all":1}`, `{"all":"T"}`, `{"all":-1e-300}`, `{"all":"true"}`} {
		t.Run(body, func(t *testing.T) {
			env := newEnv(t, testConfig)
			q := chatRequest("kept")
			env.fill(env.request("chat", alice, q), jsonCT, chatResponse("a"), 10)
			res, err := env.cache.Purge([]byte(body), "")
			if err == nil {
				_, d := env.lookup("chat", alice, q)
				t.Fatalf("purge body %s accepted as a purge of everything (%+v, alice's entry served %v); want 400", body, res, d == Serve)
			}
		})
	}
}

// Review Z176 (5). README "Purge API": a purge body is *one of* the three
// forms. A body naming two — a replay of alice's one request that also
// carries "route" and "model" (a tool that adds them for its own log), or
// {"route","model"} beside "all": true — is not refused: purge.go takes
// the broadest form it finds first, and the replay's single entry becomes
// a purge of the model for every tenant (bob's entry of another request
// is gone too), answered 200 {"scope":"model"}. An ambiguous body must be
// refused (400), not resolved to more than the entry it names.
func TestPurgeBodyNamingTwoFormsIsRefused(t *testing.T) {
	q1, q2 := chatRequest("mine"), chatRequest("bob's")
	for _, tc := range []struct{ name, body string }{
		{"replay plus route and model", `{"route":"chat","model":"gpt-4o-mini","path":"/v1/chat/completions","headers":{"authorization":"Bearer sk-alice"},"body":` + q1 + `}`},
		{"all plus route and model", `{"all":true,"route":"chat","model":"gpt-4o-mini"}`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			env := newEnv(t, testConfig)
			env.fill(env.request("chat", alice, q1), jsonCT, chatResponse("a"), 10)
			env.fill(env.request("chat", bob, q2), jsonCT, chatResponse("b"), 10)
			res, err := env.cache.Purge([]byte(tc.body), "")
			if err == nil {
				_, d := env.lookup("chat", bob, q2)
				t.Fatalf("a purge body naming two forms was carried out as %+v (bob's unnamed entry still served: %v); want 400", res, d == Serve)
			}
		})
	}
}

package cachecore

import (
	"testing"
	"time"
)

// An answer that arrives with an Age (a cache upstream kept it that long,
// RFC 9111 §5.1) is that much older when stored: it stays fresh only for
// what is left of the route's ttl, and a hit reports the whole age (§4.2.3).
// The Age was ignored: an answer 250 s old was stored fresh for the full
// 300 s, and a hit 100 s later said "age: 100" of a 350 s old answer. An
// invalid Age is ignored (§5.1); one at or past the ttl stores an answer
// that is stale at once (served only within stale_while_revalidate).
func TestUpstreamAgeCountsTowardFreshness(t *testing.T) {
	for _, tc := range []struct {
		age       string
		freshFor  time.Duration // after the store
		hitAgeSec string        // 100 s after the store, if still fresh
	}{
		{"250", 50 * time.Second, ""},
		{"60", 240 * time.Second, "160"},
		{"60, 120", 240 * time.Second, "160"}, // the first member counts (§5.1)
		{"0", 300 * time.Second, "100"},
		{"-5", 300 * time.Second, "100"},
		{"abc", 300 * time.Second, "100"},
		{"99999999999999999999", 0, ""},
		{"300", 0, ""},
	} {
		t.Run(tc.age, func(t *testing.T) {
			env := newEnv(t, testConfig)
			body := chatRequest("how old is this answer")
			req, _ := env.lookup("chat", alice, body)
			res := env.fill(req, hdr("content-type", "application/json", "age", tc.age), chatResponse("old"), 10)
			if want := env.clock.Now().Add(tc.freshFor).UnixMilli(); res.FreshUntil != want {
				t.Fatalf("Age %q: fresh until %v after the store, want %v", tc.age,
					time.Duration(res.FreshUntil-env.clock.Now().UnixMilli())*time.Millisecond, tc.freshFor)
			}
			env.clock.Advance(100 * time.Second)
			req, d := env.lookup("chat", alice, body)
			if tc.hitAgeSec == "" {
				if req.Status == StatusHit {
					t.Fatalf("Age %q: a hit 100 s later", tc.age)
				}
				return
			}
			if d != Serve || req.Status != StatusHit {
				t.Fatalf("Age %q: %v %s 100 s later", tc.age, d, req.Status)
			}
			if _, headers, _ := env.cache.HitResponse(req); headerValue(headers, "age") != tc.hitAgeSec {
				t.Fatalf("Age %q: the hit says age %q, want %s", tc.age, headerValue(headers, "age"), tc.hitAgeSec)
			}
		})
	}
}

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
// invalid Age is ignored (§5.1). One at or past the ttl leaves the answer
// no freshness: it is not stored (refused "aged", an answer the same
// request would get again, so its followers go upstream rather than lead
// one at a time into the same old answer).
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
			headers := hdr("content-type", "application/json", "age", tc.age)
			if tc.freshFor == 0 {
				adm := env.cache.AdmitBody(req, headers, []byte(chatResponse("old")))
				if res := env.cache.Store(req, 200, headers, []byte(chatResponse("old")), adm, 10); res.Reason != ReasonAged {
					t.Fatalf("Age %q (the whole ttl): stored, reason %q", tc.age, res.Reason)
				}
				if o := OutcomeOf(ReasonAged, 200); o != OutcomeUncacheable {
					t.Fatalf("an aged answer's outcome is %s", o)
				}
				return
			}
			res := env.fill(req, headers, chatResponse("old"), 10)
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

// An embeddings batch's items ignore the answer's Age: a vector does not
// age, and the Age of a merged batch from a cache upstream is its oldest
// cached item's, which would shorten (or refuse) every item computed with
// it.
func TestEmbeddingItemsIgnoreUpstreamAge(t *testing.T) {
	c, r := newEmbCache(t)
	headers := [][2]string{{"content-type", "application/json"}, {"age", "86400"}}
	req := embRequest(c, r, `{"model":"e","input":["aa","bbbb"]}`)
	c.Lookup(req)
	ans := embAnswer([]string{"aa", "bbbb"})
	adm := c.AdmitBody(req, headers, ans)
	res := c.Store(req, 200, headers, ans, adm, 1)
	if res.Reason != ReasonNone || res.ItemsStored != 2 || res.FreshUntil != c.nowMs()+adm.TTL.Milliseconds() {
		t.Fatalf("a batch with Age 86400: %+v (ttl %v)", res, adm.TTL)
	}
}

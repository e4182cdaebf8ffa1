package cachecore

import (
	"strings"
	"testing"
	"time"
)

// Guarantee: Cache-Status is truthful (RFC 9211 ttl= is the freshness that
// remains; README "hit; ttl=N: N seconds of freshness left") and an entry is
// fresh for at most the route's ttl. After the wall clock steps back (NTP)
// an entry looks stored in the future: its Age is clamped to 0 (README), but
// freshness and ttl= still count from the stepped-back clock to the old
// FreshUntil, so a 300 s route's hit claims ttl=3900 and the entry stays
// "fresh" an hour longer than the route allows.
func TestHitTTLNeverExceedsRouteTTLAfterClockStepsBack(t *testing.T) {
	env := newEnv(t, testConfig)
	body := chatRequest("future entry")
	req, _ := env.lookup("sie", alice, body)
	env.fill(req, jsonCT, chatResponse("ok"), 10)
	routeTTL := int64(env.route("sie").TTL / time.Second)

	env.clock.Set(env.clock.Now().Add(-time.Hour)) // NTP steps the wall clock back
	req, d := env.lookup("sie", alice, body)
	if d != Serve {
		return // not served at all: no overclaim
	}
	_, headers, _ := env.cache.HitResponse(req)
	cs := headerValue(headers, "cache-status")
	i := strings.Index(cs, "ttl=")
	if i < 0 {
		t.Fatalf("no ttl= in %q", cs)
	}
	var ttl int64
	for _, ch := range cs[i+4:] {
		if ch < '0' || ch > '9' {
			break
		}
		ttl = ttl*10 + int64(ch-'0')
	}
	if ttl > routeTTL {
		t.Fatalf("hit after a 1h wall-clock step back: Cache-Status %q (Age %q) claims ttl=%d, more than the route's whole ttl (%d s)",
			cs, headerValue(headers, "age"), ttl, routeTTL)
	}
}

// Guarantee: one request per key reaches the model; a hit-for-miss mark
// only lets a lastingly uncacheable key skip coalescing for
// coalesce.hit_for_miss (30 s by default). The mark's end is a wall-clock
// instant: after NTP steps the clock back an hour, the mark lasts an hour
// and 30 s, and for that hour every burst of identical requests for the key
// goes upstream uncoalesced, even once its answers are cacheable again.
func TestHitForMissMarkLastsAtMostHitForMissAfterClockStepsBack(t *testing.T) {
	env := newEnv(t, testConfig)
	body := chatRequest("uncacheable for a while")
	req, _ := env.lookup("chat", alice, body)
	if role := env.cache.Join(req, 1, 1); role != RoleLeader {
		t.Fatalf("first Join = %v, want leader", role)
	}
	env.cache.Finish(req, 1, 1, OutcomeUncacheable) // leaves a 30 s mark
	hfm := env.route("chat").Coalesce.HitForMiss

	env.clock.Set(env.clock.Now().Add(-time.Hour)) // NTP steps the wall clock back
	env.clock.Advance(hfm + time.Second)           // the mark's whole life has passed
	req, _ = env.lookup("chat", alice, body)
	if role := env.cache.Join(req, 2, 2); role == RoleHitForMiss {
		t.Fatalf("Join %v after the clock stepped back 1h: a %v hit-for-miss mark still skips coalescing %v after it was set",
			role, hfm, hfm+time.Second)
	}
}

// Guarantee: a shadow invalidation (a model's whole namespace dropped) is
// decided on the divergence seen within shadow.window. The window restarts
// when now-divStart exceeds it; after NTP steps the wall clock back an hour
// that difference is negative, so the window does not restart for an hour:
// divergent samples from well over a window ago are added to new ones, and
// a model whose divergence within any one window stays under min_samples
// is invalidated anyway.
func TestShadowWindowRestartsAfterClockStepsBack(t *testing.T) {
	const chat = `{"model":"m","messages":[{"role":"user","content":"hi"}]}`
	env := newEnv(t, `{"upstream_cluster":"u","routes":[{"name":"chat","kind":"chat","path_prefix":"/v1/chat","shared":true,`+
		`"shadow":{"sample":1,"min_samples":4,"max_divergence":0.5,"window":"10s"}}]}`)
	observe := func(n int) (res ShadowResult) {
		for i := 0; i < n; i++ {
			req := env.request("chat", alice, chat)
			env.fill(req, jsonCT, chatWith(""), 10)
			res, _ = env.cache.ObserveShadow(req, true)
		}
		return res
	}
	if res := observe(2); res.Invalidated { // under min_samples
		t.Fatalf("setup: %+v", res)
	}
	env.clock.Set(env.clock.Now().Add(-time.Hour)) // NTP steps the wall clock back
	env.clock.Advance(30 * time.Second)            // three windows pass
	if res := observe(2); res.Invalidated {
		t.Fatalf("invalidated with %d samples (%d diverged) in a 10s window: samples from 30s (three windows) earlier still counted after a 1h wall-clock step back",
			res.Samples, res.Diverged)
	}
}

// Guarantee: an entry purge refuses only answers asked for before it
// (RATIONALE "A purge of one entry leaves a tombstone": "A request that
// looked it up in the purge's millisecond or after stores"). The tombstone
// compares the purge's wall-clock time with the request's lookedAt: after
// NTP steps the clock back an hour, every request made after the purge
// looks "before" it, so for an hour no answer for the purged key is stored
// (refused as invalidated, an outcome its followers count as a leader
// failure), although the purge was long over when they were asked.
func TestEntryPurgeRefusesNothingAskedAfterItAcrossClockStepBack(t *testing.T) {
	purge := `{"path":"/v1/chat/completions","headers":{"authorization":"Bearer sk-alice"},"body":` + chatRequest("q") + `}`
	env := newEnv(t, testConfig)
	env.fill(env.request("chat", alice, chatRequest("q")), jsonCT, chatResponse("old"), 10)
	if _, err := env.cache.Purge([]byte(purge), ""); err != nil {
		t.Fatal(err)
	}
	env.clock.Advance(time.Second)                 // the purge is over
	env.clock.Set(env.clock.Now().Add(-time.Hour)) // NTP steps the wall clock back
	env.clock.Advance(time.Minute)                 // a minute after the purge, a new request
	req, d := env.lookup("chat", alice, chatRequest("q"))
	if d != Forward {
		t.Fatalf("setup: %v", d)
	}
	st := env.cache.AdmitAndStore(req, 200, jsonCT, []byte(chatResponse("new")), OriginUpstream, 10)
	if st.Reason != ReasonNone {
		t.Fatalf("an answer asked for a minute after the entry purge was refused (%s) because the wall clock stepped back 1h", st.Reason)
	}
}

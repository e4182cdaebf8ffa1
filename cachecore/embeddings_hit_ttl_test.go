package cachecore

import (
	"strings"
	"testing"
	"time"
)

// cacheStatusTTL reads the ttl= parameter of a Cache-Status value.
func cacheStatusTTL(t *testing.T, cs string) int64 {
	t.Helper()
	i := strings.Index(cs, "ttl=")
	if i < 0 {
		t.Fatalf("no ttl= in %q", cs)
	}
	neg := false
	s := cs[i+4:]
	if strings.HasPrefix(s, "-") {
		neg, s = true, s[1:]
	}
	var n int64
	for _, ch := range s {
		if ch < '0' || ch > '9' {
			break
		}
		n = n*10 + int64(ch-'0')
	}
	if neg {
		n = -n
	}
	return n
}

// Guarantee (RATIONALE, clock: "one within 10 s is judged as just stored,
// never fresher than its ttl"; README: "hit; ttl=N: N seconds of freshness
// left"). A plain hit on an entry that looks stored a few seconds ahead
// (another worker's clock read later, or a small step back) reports at most
// the route's ttl (HitResponse clamps now to StoredAt). A wholly cached
// embeddings batch does not: embeddingHit counts ttl= from the raw clock.
func TestEmbeddingsHitTTLNeverExceedsRouteTTL(t *testing.T) {
	cfg := mustParse(t, embConfig)
	clock := newFakeClock()
	c := New(cfg, Options{Store: NewMemStore(), Now: clock.Now, Rand: seededRand(3)})
	r := cfg.Routes[0]
	jsonHdr := [][2]string{{"content-type", "application/json"}}
	body := `{"model":"e","input":["aa","bbbb"]}`

	first := embRequest(c, r, body)
	if c.Lookup(first) != Forward {
		t.Fatalf("first lookup: %s", first.Status)
	}
	ans := embAnswer([]string{"aa", "bbbb"})
	adm := c.AdmitBody(first, jsonHdr, ans)
	if res := c.Store(first, 200, jsonHdr, ans, adm, 1); res.Reason != ReasonNone || res.ItemsStored != 2 {
		t.Fatalf("store: %+v", res)
	}

	// This worker's clock reads 8 s behind the one that stored (within
	// clockSkewMs: judged as just stored).
	clock.Set(clock.Now().Add(-8 * time.Second))
	req := embRequest(c, r, body)
	if d := c.Lookup(req); d != Serve {
		t.Fatalf("lookup within the skew: %v %s, want a hit", d, req.Status)
	}
	_, hs, _ := c.HitResponse(req)
	cs := headerValue(hs, "cache-status")
	routeTTL := int64(r.TTL / time.Second)
	if got := cacheStatusTTL(t, cs); got > routeTTL {
		t.Fatalf("embeddings hit on items stored 8 s \"ahead\": Cache-Status %q (Age %q) claims ttl=%d, more than the route's whole ttl (%d s)",
			cs, headerValue(hs, "age"), got, routeTTL)
	}
}

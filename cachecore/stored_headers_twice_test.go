package cachecore

import (
	"strings"
	"testing"
)

// Review H2 (stop 71): response headers stored and replayed.

// stored_headers naming one header twice (or in two cases, which the
// parser lower-cases into one name) is accepted, and every hit then
// replays each line of that header twice: a singleton such as
// content-type reaches every client of the entry as
// "application/json, application/json", which the client that missed
// never saw (key_headers refuses a duplicate; stored_headers must too, or
// keep each line once).
func TestStoredHeadersListedTwiceAreAConfigError(t *testing.T) {
	cfg := `{"routes":[{"name":"chat","kind":"chat","path_exact":"/v1/chat/completions",
	  "stored_headers":["Content-Type","content-type","x-trace-tier","x-trace-tier"]}]}`
	mustRefuseNaming(t, cfg, "stored_headers[1]")
	mustRefuseNaming(t, strings.Replace(cfg, `"Content-Type","content-type",`, "", 1), "stored_headers[1]")
	// Listed once, one line each way.
	cfg = strings.Replace(cfg, `"Content-Type","content-type","x-trace-tier","x-trace-tier"`, `"content-type","x-trace-tier"`, 1)
	env := newEnv(t, cfg)
	body := chatRequest("duplicate stored header")
	req, d := env.lookup("chat", alice, body)
	if d != Forward {
		t.Fatalf("first lookup: %v", d)
	}
	env.fill(req, hdr("content-type", "application/json", "x-trace-tier", "gold"), chatResponse("4"), 10)

	req, d = env.lookup("chat", alice, body)
	if d != Serve {
		t.Fatalf("second lookup: %v %s", d, req.Status)
	}
	_, hs, _ := env.cache.HitResponse(req)
	count := map[string]int{}
	for _, h := range hs {
		count[h[0]]++
	}
	if count["content-type"] != 1 || count["x-trace-tier"] != 1 {
		t.Fatalf("upstream sent one content-type and one x-trace-tier line; the hit replays %d and %d: %q",
			count["content-type"], count["x-trace-tier"], hs)
	}
}

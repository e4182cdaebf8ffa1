package cachecore

import (
	"fmt"
	"strings"
	"testing"
)

// Review Z116 (the table's entry read scratch, keepEntBuf): a hit's
// req.Entry aliases the table's scratch (lookupInto) and is not detached.
// When the host cannot send the hit (SendFailed) the request goes upstream
// with req.Entry still set (countsLater: it may answer a failure within
// stale_if_error). Meanwhile other requests of the VM read entries: one
// overwrites the scratch the hit was decoded from, and one larger (still
// within maxSpareBuffer) makes the table read into, and keep, a new
// scratch array. The upstream then fails: StaleIfError reads the key again
// (currentEntry) into the new array, finds the same StoredAt and keeps
// req.Entry as it was, aliasing the old array, which holds another
// request's entry. The client is served another key's bytes, under the
// hit's headers.
func TestZ116StaleIfErrorAfterSendFailedServesItsOwnEntry(t *testing.T) {
	env := newEnv(t, `{"upstream_cluster":"model","routes":[{"name":"chat","kind":"chat","path_prefix":"/v1/chat/completions",
		"ttl":"1h","stale_if_error":"1h"}]}`)
	mine := chatResponse("mine: " + strings.Repeat("m", 301))
	theirs := chatResponse("THEIRS " + strings.Repeat("t", 300))
	if len(mine) != len(theirs) {
		t.Fatalf("setup: answers of %d and %d bytes", len(mine), len(theirs))
	}
	env.fill(env.request("chat", alice, chatRequest("mine")), jsonCT, mine, 10)
	env.fill(env.request("chat", alice, chatRequest("theirs")), jsonCT, theirs, 10)

	// The hit, which the host cannot send: it goes upstream.
	var s Stream
	body := chatRequest("mine")
	hs := append(append([][2]string{}, alice...), [2]string{"content-length", fmt.Sprint(len(body))})
	if _, acts := s.Begin(env.cache, env.route("chat"), "POST", "/v1/chat/completions", hs, false, true, 1, 1); len(acts) != 0 {
		t.Fatalf("setup: headers: %s", streamActs(acts))
	}
	_, acts := s.RequestBody(len(body), true, &fakeReader{reqBody: []byte(body)}, &HoldState{Setting: HoldHeaders})
	if got := streamActs(acts); got != "serve(200)" {
		t.Fatalf("setup: not a hit: %s", got)
	}
	if got := streamActs(s.SendFailed()); !strings.Contains(got, "forward") {
		t.Fatalf("setup: SendFailed: %s", got)
	}

	// Other requests of the VM meanwhile: a hit of the same size, then one
	// of a larger entry (within maxSpareBuffer).
	if _, d := env.lookup("chat", alice, chatRequest("theirs")); d != Serve {
		t.Fatalf("setup: theirs not a hit: %v", d)
	}
	large := chatResponse(strings.Repeat("L", 8000))
	env.fill(env.request("chat", bob, chatRequest("large")), jsonCT, large, 10)
	if _, d := env.lookup("chat", bob, chatRequest("large")); d != Serve {
		t.Fatalf("setup: large not a hit: %v", d)
	}

	// The upstream fails: the entry answers within stale_if_error.
	rd := &fakeReader{respHeaders: append([][2]string{{":status", "503"}}, jsonCT...), respBody: []byte(`{"error":"down"}`)}
	_, acts = s.ResponseHeaders(false, rd)
	var served *Action
	for i := range acts {
		if acts[i].Kind == ActServeEntry {
			served = &acts[i]
		}
	}
	if served == nil {
		t.Fatalf("setup: the 503 was not answered with the entry: %s", streamActs(acts))
	}
	if string(served.Body) != mine {
		t.Errorf("stale-if-error served another entry's bytes:\n got %.80s…\nwant %.80s…", served.Body, mine)
	}
}

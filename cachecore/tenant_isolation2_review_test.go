package cachecore

import "testing"

// Review Z203 (low severity). A purge by replay keys its request from the
// headers written in the purge body, taken as written, while Envoy hands
// the filter header values without surrounding whitespace (and namesSomeone
// already reads the identity trimmed). The identity hash is made from the
// untrimmed value, so a replay whose tenant header carries a trailing space
// ("Bearer sk-alice ") keys another tenant: the purge answers 200
// {"scope":"entry","freed":0} and alice's entry goes on being served.
// Expected: the identity value is hashed as namesSomeone reads it (trimmed
// of surrounding white space), so the replay purges alice's entry.
func TestPurgeReplayIdentityWithSurroundingSpaceStillPurgesTheEntry(t *testing.T) {
	env := newEnv(t, testConfig)
	q := chatRequest("what is the capital of France?")
	env.fill(env.request("chat", alice, q), jsonCT, chatResponse("Paris"), 10)
	if _, d := env.lookup("chat", alice, q); d != Serve {
		t.Fatal("setup: alice's answer is not cached")
	}
	purge := `{"path":"/v1/chat/completions","headers":{"authorization":"Bearer sk-alice "},"body":` + q + `}`
	res, err := env.cache.Purge([]byte(purge), "")
	if err != nil {
		t.Fatalf("purge refused: %v", err)
	}
	if _, d := env.lookup("chat", alice, q); d == Serve {
		t.Fatalf("alice's entry still served after a replay of her request (purge %+v): the identity was hashed with its trailing space", res)
	}
}

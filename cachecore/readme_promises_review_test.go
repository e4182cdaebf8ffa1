package cachecore

import (
	"errors"
	"testing"
)

// README, Purge API: `{"route": "chat", "model": "gpt-4o"}` purges every
// entry of one model, and "a malformed purge is answered 400 (bad purge
// request: …)". A model that is not a JSON string — a list of models, an
// object — names no model any request is keyed under; Purge reads its raw
// JSON text as the model name (`["gpt-4o-mini"]`), moves the generation of
// that made-up namespace and reports success (scope "model", 200), while
// every entry of gpt-4o-mini is still served. An operator's tool that sends
// the list believes the model purged. Expected: ErrBadPurge (400), as for
// any other body the API does not understand.
func TestPurgeByModelRefusesAModelThatIsNotAString(t *testing.T) {
	for _, body := range []string{
		`{"route":"chat","model":["gpt-4o-mini"]}`,
		`{"route":"chat","model":{"name":"gpt-4o-mini"}}`,
	} {
		t.Run(body, func(t *testing.T) {
			env := newEnv(t, testConfig)
			req, _ := env.lookup("chat", alice, chatRequest("one"))
			env.fill(req, jsonCT, chatResponse("x"), 10)
			res, err := env.cache.Purge([]byte(body), "")
			_, d := env.lookup("chat", alice, chatRequest("one"))
			if !errors.Is(err, ErrBadPurge) {
				t.Fatalf("Purge(%s) = %+v, %v (gpt-4o-mini's entry still served: %v); want ErrBadPurge: the model is not a string",
					body, res, err, d == Serve)
			}
		})
	}
}

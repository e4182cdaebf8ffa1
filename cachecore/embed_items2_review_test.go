package cachecore

import (
	"testing"

	"github.com/tidwall/gjson"
)

// Voyage's and Mistral's embeddings APIs (whose output_dtype the cache
// already reads: README, bypass.embedding_input) ask for a vector's length
// with "output_dimension", their spelling of OpenAI's "dimensions".
// RATIONALE ("Embeddings: an entry per item"): the fields that change an
// answer's form are keyed whatever ignore_fields says, and review Z69 made
// "dimensions" one after a route that ignored it served a vector of
// another dimension. "output_dimension" is not: a route that lists it in
// ignore_fields (accepted without a word) answers a request for 2
// dimensions from cache with the 4-d vector stored for another request.
// Expected: either the config is refused, or output_dimension stays keyed
// as dimensions does.
func TestEmbedItems2IgnoredOutputDimensionServesAnotherDimension(t *testing.T) {
	cfg, err := ParseConfig([]byte(`{"routes":[{"name":"emb","kind":"embeddings","path_prefix":"/v1/embeddings","ttl":"1h","ignore_fields":["user","output_dimension"]}]}`))
	if err != nil {
		return // a clear config error at start is a correct outcome
	}
	c := New(cfg, Options{Store: NewMemStore(), Now: newFakeClock().Now, Rand: seededRand(1)})
	r := cfg.Routes[0]
	embReviewStore(t, c, r, `{"model":"voyage-3","input":["x"],"output_dimension":4}`, embReview4)
	req := embRequest(c, r, `{"model":"voyage-3","input":["x"],"output_dimension":2}`)
	if c.Lookup(req) != Serve {
		return
	}
	_, _, body := c.HitResponse(req)
	if n := len(gjson.GetBytes(body, "data.0.embedding").Array()); n != 2 {
		t.Fatalf("a request for output_dimension 2 was answered from cache with a %d-d vector: %s", n, body)
	}
}

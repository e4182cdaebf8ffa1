package cachecore

import (
	"testing"

	"github.com/tidwall/gjson"
)

// embReviewStore runs one embeddings request through lookup, admission and
// store, as the filter does for an upstream answer.
func embReviewStore(t *testing.T, c *Cache, r *Route, body, answer string) {
	t.Helper()
	jsonHdr := [][2]string{{"content-type", "application/json"}}
	req := embRequest(c, r, body)
	if req.Bypassed() {
		t.Fatalf("%s bypassed: %s", body, req.Reason)
	}
	c.Lookup(req)
	adm := c.AdmitBody(req, jsonHdr, []byte(answer))
	if adm.Reason != ReasonNone {
		t.Fatalf("%s: admission refused %s", body, adm.Reason)
	}
	if res := c.Store(req, 200, jsonHdr, []byte(answer), adm, 1); res.Reason != ReasonNone || res.ItemsStored != 1 {
		t.Fatalf("%s: store %+v", body, res)
	}
}

const (
	embReview4 = `{"object":"list","data":[{"object":"embedding","index":0,"embedding":[0.5,0.5,0.5,0.5]}],"model":"e","usage":{"prompt_tokens":1,"total_tokens":1}}`
	embReview2 = `{"object":"list","data":[{"object":"embedding","index":0,"embedding":[0.5,0.5]}],"model":"e","usage":{"prompt_tokens":1,"total_tokens":1}}`
)

// Guarantee: a batch never includes another encoding_format's or
// dimension's vector; RATIONALE: "float and base64 can never be confused
// because the encoding is part of the key". The encoding and dimensions
// reach the item key only through the request's canonical params, which
// honour the route's ignore_fields: a route that lists encoding_format
// (accepted without a word at start) serves a float vector as the answer
// to a base64 request. Either the config is refused, or the encodings stay
// apart.
func TestEmbedReviewIgnoredEncodingFormatNeverMixesEncodings(t *testing.T) {
	cfg, err := ParseConfig([]byte(`{"routes":[{"name":"emb","kind":"embeddings","path_prefix":"/v1/embeddings","ttl":"1h","ignore_fields":["user","encoding_format"]}]}`))
	if err != nil {
		return // a clear config error at start is a correct outcome
	}
	c := New(cfg, Options{Store: NewMemStore(), Now: newFakeClock().Now, Rand: seededRand(1)})
	r := cfg.Routes[0]
	embReviewStore(t, c, r, `{"model":"e","input":["x"]}`, embReview4)
	req := embRequest(c, r, `{"model":"e","input":["x"],"encoding_format":"base64"}`)
	if c.Lookup(req) != Serve {
		return
	}
	_, _, body := c.HitResponse(req)
	if v := gjson.GetBytes(body, "data.0.embedding"); v.Type != gjson.String {
		t.Fatalf("a base64 request was answered with a cached float vector %s: %s", v.Raw, body)
	}
}

// Same guarantee for "dimensions": with it in ignore_fields, a request for
// 2 dimensions is answered from cache with the 4-d vector stored for a
// request without dimensions.
func TestEmbedReviewIgnoredDimensionsNeverServesAnotherDimension(t *testing.T) {
	cfg, err := ParseConfig([]byte(`{"routes":[{"name":"emb","kind":"embeddings","path_prefix":"/v1/embeddings","ttl":"1h","ignore_fields":["user","dimensions"]}]}`))
	if err != nil {
		return // a clear config error at start is a correct outcome
	}
	c := New(cfg, Options{Store: NewMemStore(), Now: newFakeClock().Now, Rand: seededRand(1)})
	r := cfg.Routes[0]
	embReviewStore(t, c, r, `{"model":"e","input":["x"]}`, embReview4)
	req := embRequest(c, r, `{"model":"e","input":["x"],"dimensions":2}`)
	if c.Lookup(req) != Serve {
		return
	}
	_, _, body := c.HitResponse(req)
	if n := len(gjson.GetBytes(body, "data.0.embedding").Array()); n != 2 {
		t.Fatalf("a request for 2 dimensions was answered from cache with a %d-d vector: %s", n, body)
	}
}

// Guarantee: never serve invalid output; README "vectors of a new dimension
// under an unchanged version are treated the same way (model_drift)" and
// RATIONALE ("a client would get the old model's vectors, of the old
// dimension … the one failure the cache must not have"). A model whose
// dimension changes under the same name (no version tracked) is only
// detected when a *partial* batch meets a cached item; answers to batches
// with nothing cached are stored unchecked. So item x (4-d, old model) and
// item y (2-d, new model) both sit in the cache, and the batch [x, y] is
// answered wholly from cache with vectors of two dimensions in one answer.
func TestEmbedReviewDimensionChangeNeverMixesDimensionsInAHit(t *testing.T) {
	c, r := newEmbCache(t)
	embReviewStore(t, c, r, `{"model":"e","input":["x"]}`, embReview4)
	// The model now answers 2-d vectors under the same name.
	embReviewStore(t, c, r, `{"model":"e","input":["y"]}`, embReview2)

	req := embRequest(c, r, `{"model":"e","input":["x","y"]}`)
	if c.Lookup(req) != Serve {
		return // sent upstream: nothing mixed is served
	}
	_, _, body := c.HitResponse(req)
	dims := map[int]bool{}
	for _, v := range gjson.GetBytes(body, "data.#.embedding").Array() {
		dims[len(v.Array())] = true
	}
	if len(dims) != 1 {
		t.Fatalf("a wholly cached batch was answered with vectors of %d different dimensions (old and drifted model mixed): %s", len(dims), body)
	}
}

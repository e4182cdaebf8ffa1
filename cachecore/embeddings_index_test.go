package cachecore

import "testing"

// An answer's "index" must name one of the request's items. A huge
// number (which a native int conversion turns negative), a fraction or an
// infinite one is refused as a wrong item count, never indexed with; a
// whole number written with a fraction part is that number.
func TestEmbeddingsAnswerIndexMustBeAnItem(t *testing.T) {
	c, r := newEmbCache(t)
	jsonHdr := [][2]string{{"content-type", "application/json"}}
	one, two := `{"model":"e","input":["a"]}`, `{"model":"e","input":["a","b"]}`
	for _, tc := range []struct {
		body, answer string
		want         Reason
	}{
		{one, `{"data":[{"index":1e20,"embedding":[1,2]}]}`, ReasonItemCount},
		{one, `{"data":[{"index":-1e20,"embedding":[1,2]}]}`, ReasonItemCount},
		{one, `{"data":[{"index":1.8446744073709552e19,"embedding":[1,2]}]}`, ReasonItemCount},
		{one, `{"data":[{"index":0.5,"embedding":[1,2]}]}`, ReasonItemCount},
		{one, `{"data":[{"index":-0.5,"embedding":[1,2]}]}`, ReasonItemCount},
		{one, `{"data":[{"index":0.0,"embedding":[1,2]}]}`, ReasonNone},
		{two, `{"data":[{"index":0,"embedding":[1,2]},{"index":1e400,"embedding":[1,2]}]}`, ReasonItemCount},
		{two, `{"data":[{"index":0,"embedding":[1,2]},{"index":1.0,"embedding":[1,2]}]}`, ReasonNone},
	} {
		req := embRequest(c, r, tc.body)
		c.Lookup(req)
		if adm := c.AdmitBody(req, jsonHdr, []byte(tc.answer)); adm.Reason != tc.want {
			t.Errorf("%s: reason %s, want %s", tc.answer, adm.Reason, tc.want)
		}
	}
}

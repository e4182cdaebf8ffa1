package cachecore

import (
	"strings"
	"testing"
)

// The one-pass reader of an embeddings answer (answerscan.go, the path
// every float embeddings answer takes in production) compares member
// names exactly, so it admits an answer that names a member twice but for
// case ("index" and "Index", "embedding" and "Embedding", "data" and
// "Data"). The general checks it stands in for refuse such an answer as
// duplicate_key (caseTwins: Go's encoding/json reads the two as one, and
// keeps the last), and README promises that refusal for "an answer ...
// with a duplicate member name anywhere". Admitted, the item is stored
// under the "index"/"embedding" gjson reads first, while a Go client of
// the miss placed the vector at "Index" 2 (or read the other vector): the
// hit and the miss give that client different answers. Expected: the one
// pass refuses each of these as duplicate_key, as the general checks do.
func TestOnePassEmbeddingsScanRefusesCaseTwinMembers(t *testing.T) {
	c, r := newEmbCache(t)
	good := string(embAnswer([]string{"a", "bb", "ccc"}))
	hdrs := [][2]string{{"content-type", "application/json"}}
	for _, body := range []string{
		strings.Replace(good, `"index":0,"embedding":[1,1.5]`, `"index":0,"embedding":[1,1.5],"Index":2`, 1),
		strings.Replace(good, `"index":0,"embedding":[1,1.5]`, `"index":0,"embedding":[1,1.5],"Embedding":[9,9.5]`, 1),
		strings.Replace(good, `"object":"list"`, `"object":"list","Data":[]`, 1),
		strings.Replace(good, `"model":"e-1"`, `"model":"e-1","Model":"e-2"`, 1),
	} {
		admit := func(onePass bool) Reason {
			embeddingItemsInOnePass = onePass
			defer func() { embeddingItemsInOnePass = true }()
			req := embRequest(c, r, `{"model":"e","input":["a","bb","ccc"]}`)
			c.Lookup(req)
			return c.AdmitBody(req, hdrs, []byte(body)).Reason
		}
		general, onePass := admit(false), admit(true)
		if general != ReasonDuplicateKey {
			t.Fatalf("setup: the general checks gave %q for %s", general, body)
		}
		if onePass != ReasonDuplicateKey {
			t.Errorf("one-pass admission of an answer with case-twin members gave %q (stored), want duplicate_key as the general checks: %s", onePass, body)
		}
	}
}

package cachecore

import (
	"testing"
	"time"
)

// Review V (stop 71). A hit reproduces what the first client got. A whole-request hit
// replays "the stored status, headers and body" (HitResponse); a route may
// cache any 2xx status it lists (README `statuses`). An embeddings batch
// answered 203 by the model is stored with Status 203 in each item's
// entry, and the first client got 203; the fully cached batch is answered
// 200 whatever its entries hold (embeddingHit hard-codes it).
func TestEmbeddingsHitReplaysTheStoredStatus(t *testing.T) {
	hdr := [][2]string{{"content-type", "application/json"}}
	cfg := mustParse(t, `{"routes":[{"name":"emb","kind":"embeddings","path_prefix":"/v1/embeddings","ttl":"1h","statuses":[200,203]}]}`)
	c := New(cfg, Options{Store: NewMemStore(), Now: func() time.Time { return time.Unix(1e9, 0) }, Rand: seededRand(1)})
	r := cfg.Routes[0]
	body := `{"model":"m","input":["x"]}`
	req := embRequest(c, r, body)
	c.Lookup(req)
	ans := []byte(`{"object":"list","data":[{"object":"embedding","index":0,"embedding":[1,2]}],"model":"m","usage":{"prompt_tokens":1,"total_tokens":1}}`)
	adm := c.AdmitBody(req, hdr, ans)
	if adm.Reason != ReasonNone {
		t.Fatalf("admission refused %s", adm.Reason)
	}
	if res := c.Store(req, 203, hdr, ans, adm, 1); res.Reason != ReasonNone || res.ItemsStored != 1 {
		t.Fatalf("store %+v", res)
	}
	again := embRequest(c, r, body)
	if c.Lookup(again) != Serve {
		t.Fatal("the stored item was not served")
	}
	if st, _, _ := c.HitResponse(again); st != 203 {
		t.Fatalf("the first client got 203; the hit answers %d", st)
	}
}

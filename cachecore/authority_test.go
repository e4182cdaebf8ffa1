package cachecore

import (
	"bytes"
	"testing"
)

// Issue 13 item 7: the authority is part of the key, unless the route
// shares authorities.
func TestAuthorityInKey(t *testing.T) {
	env := newEnv(t, `{
  "routes": [
    {"name": "chat", "kind": "chat", "path_exact": "/v1/chat/completions"},
    {"name": "open", "kind": "chat", "path_exact": "/v1/open", "share_authorities": true}
  ],
  "purge": {"path": "/_modelcache/purge", "token": "`+purgeToken+`"}
}`)
	with := func(authority string) [][2]string {
		return append(hdr(":authority", authority), alice...)
	}
	body := chatRequest("which build?")
	key := func(route string, h [][2]string) []byte {
		req := env.request(route, h, body)
		if req.Bypassed() {
			t.Fatalf("bypassed: %s", req.Reason)
		}
		return req.Key
	}
	a := key("chat", with("a.example"))
	if bytes.Equal(a, key("chat", with("b.example"))) {
		t.Fatal("two authorities share a key")
	}
	if bytes.Equal(a, key("chat", with("a.example:8080"))) {
		t.Fatal("an authority with a port shares the key of the bare host")
	}
	if !bytes.Equal(a, key("chat", with("A.EXAMPLE"))) {
		t.Fatal("host names differing in case do not share a key")
	}
	if !bytes.Equal(a, key("chat", append(hdr("host", "a.example"), alice...))) {
		t.Fatal("a Host header without :authority is not the same authority")
	}
	if !bytes.Equal(key("open", with("a.example")), key("open", with("b.example"))) {
		t.Fatal("share_authorities: authorities do not share a key")
	}

	// Purge by replay finds the entry of the authority it names, or of the
	// purge request's own.
	req, _ := env.lookup("chat", with("a.example"), body)
	env.fill(req, jsonCT, chatResponse("from build A"), 10)
	served := func() bool { _, d := env.lookup("chat", with("a.example"), body); return d == Serve }
	replay := `{"path":"/v1/chat/completions","headers":{"authorization":"Bearer sk-alice"},"body":` + body + `}`
	if res, err := env.cache.Purge([]byte(replay), "b.example"); err != nil || res.Freed != 0 || !served() {
		t.Fatalf("purge at another authority: %+v %v", res, err)
	}
	if res, err := env.cache.Purge([]byte(replay), "a.example"); err != nil || res.Freed != 1 || served() {
		t.Fatalf("purge at the entry's authority: %+v %v", res, err)
	}
	req, _ = env.lookup("chat", with("a.example"), body)
	env.fill(req, jsonCT, chatResponse("from build A"), 10)
	named := `{"path":"/v1/chat/completions","headers":{"authorization":"Bearer sk-alice","Host":"A.example"},"body":` + body + `}`
	if res, err := env.cache.Purge([]byte(named), "admin.example"); err != nil || res.Freed != 1 || served() {
		t.Fatalf("purge naming the authority: %+v %v", res, err)
	}
}

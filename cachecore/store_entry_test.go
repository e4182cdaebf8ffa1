package cachecore

import (
	"fmt"
	"strings"
	"testing"
)

func TestStoreRefusals(t *testing.T) {
	t.Run("entry larger than max_entry_bytes", func(t *testing.T) {
		env := newEnv(t, testConfig)
		req, _ := env.lookup("small", nil, `{"q":1}`)
		body := []byte(`{"x":"` + strings.Repeat("y", 1000) + `"}`) // admitted: under 1024 bytes
		adm := env.cache.AdmitBody(req, jsonCT, body)
		if adm.Reason != ReasonNone {
			t.Fatalf("AdmitBody: %s", adm.Reason)
		}
		if res := env.cache.Store(req, 200, jsonCT, body, adm, 1); res.Reason != ReasonTooLarge {
			t.Fatalf("Store = %+v, want too_large (key and headers count)", res)
		}
		if n, _ := env.cache.Table().Occupied(); n != 0 {
			t.Fatalf("stored anyway")
		}
	})
	t.Run("index contention", func(t *testing.T) {
		env := newEnv(t, testConfig)
		s := &flakyStore{Store: env.store, setErr: func(k string) error {
			if strings.HasPrefix(k, "mc:i:") {
				return ErrCasMismatch
			}
			return nil
		}}
		c := New(env.cache.cfg, Options{Store: s, Now: env.clock.Now, Rand: seededRand(2)})
		req := c.Begin(env.route("chat"), "POST", "/v1/chat/completions", alice)
		c.SetBody(req, []byte(chatRequest("x")))
		adm := c.AdmitBody(req, jsonCT, []byte(chatResponse("y")))
		if res := c.Store(req, 200, jsonCT, []byte(chatResponse("y")), adm, 1); res.Reason != ReasonStoreContention {
			t.Fatalf("Store = %+v", res)
		}
	})
	t.Run("store down", func(t *testing.T) {
		env := newEnv(t, testConfig)
		s := &flakyStore{Store: env.store, setErr: func(string) error { return errStoreDown }}
		c := New(env.cache.cfg, Options{Store: s, Now: env.clock.Now, Rand: seededRand(2)})
		req := c.Begin(env.route("chat"), "POST", "/v1/chat/completions", alice)
		c.SetBody(req, []byte(chatRequest("x")))
		adm := c.AdmitBody(req, jsonCT, []byte(chatResponse("y")))
		if res := c.Store(req, 200, jsonCT, []byte(chatResponse("y")), adm, 1); res.Reason != ReasonInternal {
			t.Fatalf("Store = %+v", res)
		}
	})
	t.Run("only configured headers are kept", func(t *testing.T) {
		env := newEnv(t, testConfig)
		req, _ := env.lookup("versioned", alice, chatRequest("h"))
		env.fill(req, hdr("set-cookie", "a=b", "content-type", "application/json", "x-model-version", "v1", "x-ratelimit-remaining", "9"), chatResponse("a"), 1)
		req, _ = env.lookup("versioned", alice, chatRequest("h"))
		want := hdr("content-type", "application/json", "x-model-version", "v1")
		if fmt.Sprint(req.Entry.Headers) != fmt.Sprint(want) {
			t.Fatalf("stored headers %q, want %q", req.Entry.Headers, want)
		}
	})
}

package cachecore

import (
	"testing"
	"time"
)

// An upstream that sends its Cache-Control as two field lines (RFC 9110
// §5.3: equivalent to one comma-joined line) forbids storing in the second.
func TestAdmitSecondCacheControlLineNoStore(t *testing.T) {
	env := newEnv(t, testConfig)
	req := env.request("chat", alice, chatRequest("dup cc"))
	h := hdr("content-type", "application/json", "cache-control", "public, max-age=60", "cache-control", "no-store")
	st := env.cache.AdmitAndStore(req, 200, h, []byte(chatResponse("secret")), OriginUpstream, 10)
	if st.Reason == ReasonNone {
		t.Fatalf("answer with a second Cache-Control: no-store line was stored")
	}
}

func TestAdmitSecondCacheControlLinePrivate(t *testing.T) {
	env := newEnv(t, testConfig)
	req := env.request("chat", alice, chatRequest("dup cc private"))
	h := hdr("content-type", "application/json", "cache-control", "no-cache", "cache-control", "private")
	st := env.cache.AdmitAndStore(req, 200, h, []byte(chatResponse("secret")), OriginUpstream, 10)
	if st.Reason == ReasonNone {
		t.Fatalf("answer with a second Cache-Control: private line was stored")
	}
}

// An answer in flight when the operator purges must not be stored: a
// purge of the model refuses it (ReasonInvalidated); {"all":true} must too.
func TestPurgeRefusesAnswersInFlight(t *testing.T) {
	for _, purge := range []string{`{"route":"chat","model":"gpt-4o-mini"}`, `{"all":true}`} {
		t.Run("leader "+purge, func(t *testing.T) {
			env := newEnv(t, testConfig)
			env.fill(env.request("chat", alice, chatRequest("makes the model known")), jsonCT, chatResponse("x"), 10)
			req, d := env.lookup("chat", alice, chatRequest("q"))
			if d != Forward {
				t.Fatal(d)
			}
			// The leader's call is upstream; the operator purges.
			if _, err := env.cache.Purge([]byte(purge), ""); err != nil {
				t.Fatal(err)
			}
			st := env.cache.AdmitAndStore(req, 200, jsonCT, []byte(chatResponse("answered before the purge")), OriginUpstream, 10)
			if st.Reason == ReasonNone {
				t.Fatalf("an answer in flight across purge %s was stored", purge)
			}
		})
		t.Run("refresh "+purge, func(t *testing.T) {
			env := newEnv(t, testConfig)
			c := env.cache
			env.fill(env.request("chat", alice, chatRequest("q")), jsonCT, chatResponse("old"), 10)
			env.clock.Advance(5*time.Minute + 10*time.Second) // stale, within stale_while_revalidate (30s)
			req, d := env.lookup("chat", alice, chatRequest("q"))
			if d != Serve || req.Status != StatusStale || !c.WantsRefresh(req) {
				t.Fatalf("%v %s", d, req.Status)
			}
			acts := c.Refresh(req, hdr(":method", "POST", ":path", "/v1/chat/completions", "authorization", "Bearer sk-alice"), 1)
			if len(acts) != 1 || acts[0].Kind != ActDispatch {
				t.Fatalf("%+v", acts)
			}
			if _, err := c.Purge([]byte(purge), ""); err != nil {
				t.Fatal(err)
			}
			done := acts[0].Call.Done(CallResult{Status: 200, Headers: jsonCT, Body: []byte(chatResponse("refresh begun before the purge"))})
			if done[1].Stored.Reason == ReasonNone {
				t.Fatalf("a refresh in flight across purge %s was stored", purge)
			}
		})
	}
}

// RFC 9111 §4.1: a response whose Vary contains "*" can never be matched
// by a later request, so it must not be stored and served.
func TestAdmitVaryStar(t *testing.T) {
	env := newEnv(t, testConfig)
	body := chatRequest("vary")
	req := env.request("chat", alice, body)
	h := hdr("content-type", "application/json", "vary", "*")
	if st := env.cache.AdmitAndStore(req, 200, h, []byte(chatResponse("varies")), OriginUpstream, 10); st.Reason != ReasonNone {
		return // refused: fine
	}
	if _, d := env.lookup("chat", alice, body); d == Serve {
		t.Fatal("an answer with Vary: * was stored and served from cache")
	}
}

// On a shared route (no tenant in the key) an upstream answer that says it
// varies by the caller's credentials must not be served to other callers.
func TestAdmitVaryAuthorizationOnSharedRoute(t *testing.T) {
	env := newEnv(t, testConfig)
	body := `{"x":1}`
	req := env.request("json", alice, body)
	h := hdr("content-type", "application/json", "vary", "Authorization")
	if st := env.cache.AdmitAndStore(req, 200, h, []byte(`{"balance":"alice: 1000"}`), OriginUpstream, 10); st.Reason != ReasonNone {
		return
	}
	if r, d := env.lookup("json", bob, body); d == Serve {
		t.Fatalf("bob was served alice's answer that varies by Authorization: %s", r.Entry.Body)
	}
}

// A Vary the key already covers is stored: accept-encoding (only identity
// bodies are stored), and on a tenant route the header the identity came
// from; a Vary naming a header the key does not hold, on a tenant route
// too, or listed on a second line, is refused.
func TestAdmitVaryTheKeyHolds(t *testing.T) {
	for _, c := range []struct {
		vary   []string
		stored bool
	}{
		{[]string{"Accept-Encoding"}, true},
		{[]string{"authorization, accept-encoding"}, true},
		{[]string{"Authorization", " "}, true},
		{[]string{"accept-encoding", "origin"}, false},
		{[]string{"x-api-key"}, false},
		{[]string{"accept-encoding, *"}, false},
	} {
		env := newEnv(t, testConfig)
		req := env.request("chat", alice, chatRequest("vary "+c.vary[0]))
		h := hdr("content-type", "application/json")
		for _, v := range c.vary {
			h = append(h, [2]string{"vary", v})
		}
		st := env.cache.AdmitAndStore(req, 200, h, []byte(chatResponse("a")), OriginUpstream, 10)
		if stored := st.Reason == ReasonNone; stored != c.stored {
			t.Errorf("Vary %q: stored %v (%s)", c.vary, stored, st.Reason)
		}
	}
}

// An answer whose Vary names only headers the key holds is stored: on a
// route with key_headers, those headers (in any case, beside
// accept-encoding and the identity header); a header outside them is
// still refused, and so is a key header of another route.
func TestAdmitVaryNamingKeyHeaders(t *testing.T) {
	const cfg = `{"routes":[{"name":"chat","kind":"chat","path_exact":"/v1/chat/completions","key_headers":["openai-project","anthropic-beta"]},
	  {"name":"other","kind":"chat","path_exact":"/v2/chat/completions"}]}`
	for _, c := range []struct {
		route  string
		vary   []string
		stored bool
	}{
		{"chat", []string{"OpenAI-Project"}, true},
		{"chat", []string{"openai-project, Anthropic-Beta"}, true},
		{"chat", []string{"accept-encoding", "anthropic-beta, authorization"}, true},
		{"chat", []string{"openai-project, openai-organization"}, false},
		{"chat", []string{"openai-project", "*"}, false},
		{"other", []string{"OpenAI-Project"}, false},
	} {
		env := newEnv(t, cfg)
		req := env.request(c.route, append(hdr("openai-project", "p"), alice...), chatRequest("vary "+c.vary[0]))
		h := hdr("content-type", "application/json")
		for _, v := range c.vary {
			h = append(h, [2]string{"vary", v})
		}
		st := env.cache.AdmitAndStore(req, 200, h, []byte(chatResponse("a")), OriginUpstream, 10)
		if stored := st.Reason == ReasonNone; stored != c.stored {
			t.Errorf("%s, Vary %q: stored %v (%s)", c.route, c.vary, stored, st.Reason)
		}
	}
}

package cachecore

import "testing"

const streamChatRequest = `{"model":"m","stream":true,"messages":[{"role":"user","content":"hi"}]}`

// storeVerdict sends one request on route and offers the answer for
// storage; it returns why the answer was not stored (ReasonNone: stored).
func storeVerdict(t *testing.T, cfg, route string, h [][2]string, reqBody string, ct [][2]string, ans string) Reason {
	t.Helper()
	env := newEnv(t, cfg)
	req := env.request(route, h, reqBody)
	if req.Bypassed() {
		t.Fatalf("bypassed: %s", req.Reason)
	}
	return env.cache.AdmitAndStore(req, 200, ct, []byte(ans), OriginUpstream, 10).Reason
}

// A route whose key_fields leave out "stream" keys a "stream" that is
// not the literal true as a JSON request; a lenient server streams to
// it. That stream must not be stored where stream:false clients find it.
func TestTruthyStreamDoesNotPoisonTheJSONKey(t *testing.T) {
	for _, v := range []string{`"true"`, `1`} {
		t.Run(v, func(t *testing.T) {
			env := newEnv(t, `{"routes":[{"name":"chat","kind":"chat","path_prefix":"/v1","shared":true,"key_fields":["model","messages"]}]}`)
			atk := env.request("chat", alice, `{"model":"m","messages":[{"role":"user","content":"hi"}],"stream":`+v+`}`)
			if st := env.cache.AdmitAndStore(atk, 200, sseCT, []byte(goodStream("")), OriginUpstream, 10); st.Reason != ReasonNone {
				return
			}
			victim, d := env.lookup("chat", bob, `{"model":"m","messages":[{"role":"user","content":"hi"}],"stream":false}`)
			if d == Serve {
				_, h, _ := env.cache.HitResponse(victim)
				t.Fatalf("stream:false client served the stream stored for stream:%s (content-type %q)", v, headerValue(h, "content-type"))
			}
		})
	}
}

// An answer is stored only in the form its request asked for: an event
// stream for stream:true, JSON otherwise.
func TestAnswerFormMustMatchTheRequest(t *testing.T) {
	plain := `{"model":"m","stream":false,"messages":[{"role":"user","content":"hi"}]}`
	if r := storeVerdict(t, testConfig, "chat", alice, plain, sseCT, goodStream("")); r == ReasonNone {
		t.Errorf("event stream stored for a stream:false request")
	}
	if r := storeVerdict(t, testConfig, "chat", alice, streamChatRequest, jsonCT, chatResponse("hi")); r == ReasonNone {
		t.Errorf("application/json answer stored for a stream:true request")
	}
}

// An answer in the other form than asked for comes again for the same
// request: its followers go upstream themselves, none waits for a retry
// that would meet it again.
func TestStreamModeIsUncacheable(t *testing.T) {
	if o := OutcomeOf(ReasonStreamMode, 200); o != OutcomeUncacheable {
		t.Fatalf("stream_mode is %s", o)
	}
}

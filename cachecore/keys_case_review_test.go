package cachecore

import (
	"bytes"
	"encoding/json"
	"testing"
)

// Review Z87: exact keys. Two requests that need different answers must
// never share a key.

// README (key_fields): "fields that set the answer's form stay keyed
// whatever it says: stream, stream_options, n, …". The other form fields
// are kept as sent (formKeyed); stream is only keyed as the cache reads it
// (literal true: 'S', else 'N'). Under key_fields the member itself leaves
// the key, so "stream": "true" (or 1), which a lenient server (pydantic's
// lax mode, RATIONALE "Streams pass through") streams, keys exactly as a
// request without stream: the JSON answer stored for the one is served to
// the other, a client that asked for (and would have got) an event stream.
// refused.stream_mode guards only what is stored, not what a hit serves.
func TestLenientStreamStaysKeyedUnderKeyFields(t *testing.T) {
	env := newEnv(t, `{"routes":[{"name":"chat","kind":"chat","path_prefix":"/v1","key_fields":["model","messages"]}]}`)
	const msgs = `"messages":[{"role":"user","content":"hi"}]`
	plain := `{"model":"m",` + msgs + `}`
	req, d := env.lookup("chat", alice, plain)
	if d != Forward {
		t.Fatalf("first lookup: %v", d)
	}
	env.fill(req, jsonCT, chatResponse("hello"), 10)
	for _, lenient := range []string{
		`{"model":"m",` + msgs + `,"stream":"true"}`,
		`{"model":"m",` + msgs + `,"stream":1}`,
	} {
		r, d := env.lookup("chat", alice, lenient)
		if r.Bypassed() {
			continue // not served from the cache: fine
		}
		if d == Serve {
			t.Errorf("%s is served the JSON answer stored for %s (keys equal: %v): a lenient server streams it",
				lenient, plain, bytes.Equal(r.Key, req.Key))
		}
	}
}

// Go's encoding/json (Ollama, LocalAI and other Go model servers read
// requests with it) matches a member to a struct field case-insensitively,
// and the last of two such members wins. Under key_fields a member whose
// name is a keyed field's in another case ("Messages") is dropped from the
// key, yet such a server reads it as that field: a request carrying
// another question after the keyed one keys exactly as the question alone.
// On a shared route (or one tenant's own entries) that is cache poisoning:
// the answer to the hidden question is stored under the plain request's
// key. README: key_fields "must keep … the kind's question — messages
// (chat) … or the route is refused" — here the question the model answers
// has left the key.
func TestQuestionInAnotherCaseStaysKeyedUnderKeyFields(t *testing.T) {
	env := newEnv(t, `{"routes":[{"name":"chat","kind":"chat","path_prefix":"/v1","shared":true,"key_fields":["model","messages"]}]}`)
	plain := `{"model":"m","messages":[{"role":"user","content":"What is 2+2?"}]}`
	hidden := `{"model":"m","messages":[{"role":"user","content":"What is 2+2?"}],` +
		`"Messages":[{"role":"user","content":"Say that 2+2 is 5."}]}`

	// What a Go server reads: two different questions.
	type goChat struct {
		Model    string `json:"model"`
		Messages []struct {
			Role, Content string
		} `json:"messages"`
	}
	var a, b goChat
	if json.Unmarshal([]byte(plain), &a) != nil || json.Unmarshal([]byte(hidden), &b) != nil {
		t.Fatal("bodies do not decode")
	}
	if a.Messages[0].Content == b.Messages[0].Content {
		t.Fatalf("setup: encoding/json reads one question (%q)", a.Messages[0].Content)
	}

	ra := env.request("chat", nil, plain)
	rb := env.request("chat", nil, hidden)
	if ra.Bypassed() {
		t.Fatalf("plain request bypassed: %s", ra.Reason)
	}
	if rb.Bypassed() {
		return // not keyed at all: fine
	}
	if bytes.Equal(ra.Key, rb.Key) {
		t.Errorf("a request whose last question (%q, as a Go server reads it) is not the keyed one shares its key with %q",
			b.Messages[0].Content, a.Messages[0].Content)
	}
	// The poisoning itself: the hidden question's answer is stored, and
	// the plain request is served it.
	attacker, d := env.lookup("chat", nil, hidden)
	if d != Forward || attacker.Bypassed() {
		return
	}
	env.fill(attacker, jsonCT, chatResponse("2+2 is 5"), 10)
	if victim, d := env.lookup("chat", nil, plain); d == Serve {
		t.Errorf("the plain question %q is served the answer to the hidden one (status %s)", a.Messages[0].Content, victim.Status)
	}
}

// Without key_fields, every member is keyed, but members are sorted: two
// members whose names a Go server reads as one field ("messages" and
// "Messages") in one order and the other are one key, while the server
// answers whichever came last. (Lower priority: both spellings must be
// sent.)
func TestCaseTwinMembersInEitherOrderDoNotShareAKey(t *testing.T) {
	env := newEnv(t, `{"routes":[{"name":"chat","kind":"chat","path_prefix":"/v1","shared":true}]}`)
	q1 := `[{"role":"user","content":"one"}]`
	q2 := `[{"role":"user","content":"two"}]`
	first := `{"model":"m","messages":` + q1 + `,"Messages":` + q2 + `}`
	second := `{"model":"m","Messages":` + q2 + `,"messages":` + q1 + `}`
	type goChat struct {
		Messages []struct{ Content string } `json:"messages"`
	}
	var a, b goChat
	if json.Unmarshal([]byte(first), &a) != nil || json.Unmarshal([]byte(second), &b) != nil || a.Messages[0].Content == b.Messages[0].Content {
		t.Fatal("setup: encoding/json reads one question")
	}
	ra, rb := env.request("chat", nil, first), env.request("chat", nil, second)
	if ra.Bypassed() || rb.Bypassed() {
		return
	}
	if bytes.Equal(ra.Key, rb.Key) {
		t.Errorf("%s and %s share a key; a Go server answers %q and %q", first, second, a.Messages[0].Content, b.Messages[0].Content)
	}
}

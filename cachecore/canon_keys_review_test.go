package cachecore

import (
	"bytes"
	"encoding/json"
	"testing"
)

// Review Z140: canonical keys of request bodies.

// ignore_fields ["Messages"] on a chat route is accepted, while
// ignore_fields ["messages"] is refused ("must not name "messages", what a
// chat request asks"). Go's encoding/json (Ollama, LocalAI: the servers
// reviews Z87/Z89 guard against) reads a member "Messages" as the
// question, and the cache drops it from the key: every question so
// spelled shares one key, and the first answer stored is served to all.
// Under key_fields the same drop is refused (readButForCase checks a
// dropped member against the kept names but for case); under ignore_fields
// nothing checks the dropped member against the question. Expected: the
// config is refused, or such a request is not keyed without its question
// (bypassed, or keyed apart).
func TestCanonKeysIgnoreFieldsQuestionInAnotherCaseStaysKeyed(t *testing.T) {
	cfg := `{"routes":[{"name":"chat","kind":"chat","path_prefix":"/v1","shared":true,"ignore_fields":["user","Messages"]}]}`
	if _, err := ParseConfig([]byte(cfg)); err != nil {
		return // refused as ignore_fields ["messages"] is: fine
	}
	env := newEnv(t, cfg)
	one := `{"model":"m","Messages":[{"role":"user","content":"What is 2+2?"}]}`
	two := `{"model":"m","Messages":[{"role":"user","content":"Write a poem about the sea."}]}`

	// What a Go server reads: two different questions.
	type goChat struct {
		Messages []struct{ Role, Content string } `json:"messages"`
	}
	var a, b goChat
	if json.Unmarshal([]byte(one), &a) != nil || json.Unmarshal([]byte(two), &b) != nil ||
		len(a.Messages) != 1 || len(b.Messages) != 1 || a.Messages[0].Content == b.Messages[0].Content {
		t.Fatal("setup: encoding/json does not read two questions")
	}

	ra, d := env.lookup("chat", nil, one)
	if ra.Bypassed() || d != Forward {
		return // not keyed without its question: fine
	}
	env.fill(ra, jsonCT, chatResponse("4"), 10)
	rb, d := env.lookup("chat", nil, two)
	if rb.Bypassed() {
		return
	}
	if bytes.Equal(ra.Key, rb.Key) || d == Serve {
		t.Errorf("ignore_fields [\"Messages\"] accepted; %q and %q (two questions to a Go server) share a key (%v); the second is served the first's answer: %v",
			a.Messages[0].Content, b.Messages[0].Content, bytes.Equal(ra.Key, rb.Key), d == Serve)
	}
}

// key_fields refuses a gjson path ("messages.#.content": "a path names no
// member", README), but ignore_fields takes one silently: an operator who
// writes ignore_fields ["metadata.request_id"] (or "messages.#.name") to
// drop a nested field that cannot change the answer gets a route that
// ignores nothing of it (the selection is of top-level names only), with
// no error from the config or the linter, and no hit for requests that
// differ only there. Expected: refused as in key_fields.
func TestCanonKeysIgnoreFieldsPathIsRefused(t *testing.T) {
	cfg := `{"routes":[{"name":"chat","kind":"chat","path_prefix":"/v1","shared":true,"ignore_fields":["user","metadata.request_id"]}]}`
	_, err := ParseConfig([]byte(cfg))
	if err != nil {
		return
	}
	env := newEnv(t, cfg)
	a := env.request("chat", nil, `{"model":"m","messages":[],"metadata":{"request_id":"1"}}`)
	b := env.request("chat", nil, `{"model":"m","messages":[],"metadata":{"request_id":"2"}}`)
	t.Errorf("ignore_fields [\"metadata.request_id\"] (a gjson path) accepted; it ignores nothing: requests differing only there share a key: %v",
		bytes.Equal(a.Key, b.Key))
}

package cachecore

import (
	"testing"
)

// Review Z139. key_fields in defaults, written for the chat routes
// (["model","messages"]), is inherited by every route. On a completions or
// rerank route that leaves out the kind's question and is refused at start
// (TestKeyFieldsWithoutTheQuestionAreRefused); on a classify route it is
// accepted, and keys every classification request to a model alike: the
// first answer stored ("spam") is served for every other input of every
// client of the tenant. Expected: refused at start, or the inputs keyed
// apart (the request's question is in no key_fields field).
func TestClassifyInheritsChatKeyFieldsAndKeysEveryInputAlike(t *testing.T) {
	const cfg = `{"defaults":{"key_fields":["model","messages"]},"routes":[
	  {"name":"chat","kind":"chat","path_prefix":"/v1/chat"},
	  {"name":"cls","kind":"classify","path_exact":"/predict"}]}`
	if _, err := ParseConfig([]byte(cfg)); err != nil {
		return // refused at start: fixed
	}
	env := newEnv(t, cfg)
	spam := env.request("cls", alice, `{"model":"spam-1","inputs":"WIN A FREE CRUISE NOW"}`)
	ham := env.request("cls", alice, `{"model":"spam-1","inputs":"see you at lunch tomorrow"}`)
	if spam.Bypassed() || ham.Bypassed() {
		t.Fatalf("bypassed: %s / %s", spam.Reason, ham.Reason)
	}
	env.fill(spam, jsonCT, `{"label":"spam","score":0.99}`, 5)
	req, dec := env.lookup("cls", alice, `{"model":"spam-1","inputs":"see you at lunch tomorrow"}`)
	if string(spam.Key) == string(ham.Key) || req.Entry != nil {
		t.Fatalf("two classify inputs share one key (decision %v): the answer to %q was served for %q: %s",
			dec, "WIN A FREE CRUISE NOW", "see you at lunch tomorrow", entryBody(req))
	}
}

func entryBody(req *Request) string {
	if req.Entry == nil {
		return "<none>"
	}
	return string(req.Entry.Body)
}

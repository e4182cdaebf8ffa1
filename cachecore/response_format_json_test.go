package cachecore

import "testing"

// A request whose response_format asks for JSON (json_object, json_schema)
// gets a message its client decodes. Content that is not JSON — a reply
// cut short under finish_reason "stop", a model that wrapped its JSON in
// prose — fails every later caller for the entry's life, where a retry
// may well have given JSON: it is not stored (review Z241, a suspicion
// then). A request that asks for text keeps any text.
func TestContentNotJSONForAJSONResponseFormatIsNotStored(t *testing.T) {
	answer := func(content string) string {
		return `{"id":"c1","object":"chat.completion","model":"m","choices":[{"index":0,"message":{"role":"assistant","content":` +
			content + `},"finish_reason":"stop"}]}`
	}
	ask := func(format string) string {
		return `{"model":"gpt-4o-mini","messages":[{"role":"user","content":"list three colours as JSON"}],"response_format":` + format + `}`
	}
	object := ask(`{"type":"json_object"}`)
	schema := ask(`{"type":"json_schema","json_schema":{"name":"colours","schema":{"type":"object"}}}`)
	for _, tc := range []struct {
		name, req, content string
		stored             bool
	}{
		{"json_object, cut short", object, `"{\"colours\": [\"red\", \"gre"`, false},
		{"json_schema, prose around it", schema, `"Sure! {\"colours\": [\"red\"]}"`, false},
		{"json_object, JSON", object, `"{\"colours\": [\"red\", \"green\", \"blue\"]}"`, true},
		{"json_schema, JSON with spaces around it", schema, `"\n {\"colours\": [\"red\"]} \n"`, true},
		{"text", ask(`{"type":"text"}`), `"red, green and blue"`, true},
		{"no response_format", chatRequest("list three colours"), `"red, green and blue"`, true},
	} {
		r := storeVerdict(t, testConfig, "chat", alice, tc.req, jsonCT, answer(tc.content))
		if got := r == ReasonNone; got != tc.stored {
			t.Errorf("%s: reason %q, want stored %v", tc.name, r, tc.stored)
		}
	}
}

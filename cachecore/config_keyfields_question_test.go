package cachecore

import (
	"strings"
	"testing"
)

// key_fields is an allowlist: a chat route's list without "messages" (a
// typo, "message", or one written for another kind and inherited from
// defaults) keys every question to a model alike, and the first answer
// stored is served for all of them. Refused at start, naming the field.
func TestKeyFieldsWithoutTheQuestionAreRefused(t *testing.T) {
	for _, tc := range []struct{ name, cfg, want string }{
		{"chat, a typo", `{"routes":[{"name":"r","kind":"chat","path_prefix":"/v1","key_fields":["model","message"]}]}`,
			`routes[0].key_fields: must include "messages"`},
		{"completions, chat's list inherited", `{"defaults":{"key_fields":["model","messages"]},"routes":[{"name":"r","kind":"completions","path_prefix":"/v1"}]}`,
			`defaults.key_fields: must include "prompt"`},
		{"rerank without the documents", `{"routes":[{"name":"r","kind":"rerank","path_prefix":"/v1","key_fields":["model","query"]}]}`,
			`routes[0].key_fields: must include "documents"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ParseConfig([]byte(tc.cfg))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v, want %q", err, tc.want)
			}
		})
	}
}

package cachecore

import (
	"bytes"
	"testing"
)

// key_fields is an allowlist of top-level request members (README, Policy),
// while model_path, validate and confidence take gjson paths. An entry
// written as a path ("messages.0.content") names no top-level member, so
// the allowlist keeps only the model: every question to that model then
// shares one key, and the first answer stored is served for all of them.
// ParseConfig checks that the model is kept but accepts this; either it
// refuses such an entry (naming it), or the key must still tell the
// questions apart.
func TestKeyFieldsWrittenAsPathsNeverDropTheQuestion(t *testing.T) {
	for _, tc := range []struct{ name, keyFields string }{
		{"dotted path", `["model","messages.0.content"]`},
		{"wildcard path", `["model","messages.#.content"]`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := `{"routes":[{"name":"chat","kind":"chat","path_prefix":"/v1/chat/completions","key_fields":` + tc.keyFields + `}]}`
			if _, err := ParseConfig([]byte(cfg)); err != nil {
				return // refused at start: the operator is told
			}
			env := newEnv(t, cfg)
			a := env.request("chat", alice, chatRequest("What is the capital of France?"))
			b := env.request("chat", alice, chatRequest("How do I delete my account?"))
			if a.Bypassed() || b.Bypassed() {
				t.Fatalf("bypassed: %s / %s", a.Reason, b.Reason)
			}
			if bytes.Equal(a.Key, b.Key) {
				t.Fatalf("key_fields %s accepted, and two different questions share one key (canonical %q): one's answer is served for the other",
					tc.keyFields, a.canonical)
			}
		})
	}
}

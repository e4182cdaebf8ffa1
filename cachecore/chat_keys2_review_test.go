package cachecore

import (
	"strings"
	"testing"
)

// Review Z199: chat keys (README "Keys", key_fields). RATIONALE
// ("Embeddings: an entry per item"): "What a key_fields allowlist may
// leave out is what changes the content of an answer, never its shape";
// the fields that set an answer's form are kept in the key as sent
// (formKeyed), as n (how many choices) and modalities/audio (an audio
// member in the message) are.

// z199ToolsAnswer is a chat answer that calls tools instead of writing
// text: OpenAI (and vLLM) answer a named tool_choice with finish_reason
// "stop" and message.tool_calls, content null.
func z199ToolsAnswer(calls int) string {
	var b strings.Builder
	cities := []string{"Paris", "Rome", "Oslo"}
	for i := range calls {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(`{"id":"call_` + string(rune('a'+i)) + `","type":"function","function":{"name":"get_weather","arguments":"{\"city\":\"` + cities[i%len(cities)] + `\"}"}}`)
	}
	return `{"id":"chatcmpl-1","object":"chat.completion","model":"gpt-4o-mini","choices":[{"index":0,` +
		`"message":{"role":"assistant","content":null,"tool_calls":[` + b.String() + `]},"finish_reason":"stop"}]}`
}

const z199Tools = `"tools":[{"type":"function","function":{"name":"get_weather","parameters":{"type":"object","properties":{"city":{"type":"string"}}}}}]`

// tool_choice sets whether the answer is a tool call or text (OpenAI API
// reference: "none means the model will not call any tool and instead
// generates a message"; a named function "forces the model to call that
// tool"): the answer's shape, message.tool_calls with content null, as
// modalities sets message.audio. On a route keyed on model, messages and
// tools, a request with tool_choice "none" was served the tool call
// stored for a request that forced one: a client asking for text got
// content null. Expected: tool_choice stays in the key as sent, as the
// other form fields do, so the second request misses.
func TestReviewZ199ChatToolChoiceStaysKeyedUnderKeyFields(t *testing.T) {
	env := newEnv(t, `{"upstream_cluster":"model","routes":[{"name":"chat","kind":"chat","path_prefix":"/v1/chat/completions","ttl":"1h",
	  "key_fields":["model","messages","tools"]}]}`)
	forced := strings.Replace(chatRequest("weather in Paris?"), `"temperature":0`,
		`"temperature":0,`+z199Tools+`,"tool_choice":{"type":"function","function":{"name":"get_weather"}}`, 1)
	req, d := env.lookup("chat", alice, forced)
	if req.Bypassed() || d != Forward {
		t.Fatalf("setup: %v %s", d, req.Reason)
	}
	env.fill(req, jsonCT, z199ToolsAnswer(1), 5)
	if _, d := env.lookup("chat", alice, forced); d != Serve {
		t.Fatalf("setup: the same request is not served: %v", d)
	}
	none := strings.Replace(chatRequest("weather in Paris?"), `"temperature":0`, `"temperature":0,`+z199Tools+`,"tool_choice":"none"`, 1)
	if got, d := env.lookup("chat", alice, none); d == Serve {
		t.Fatalf("a request with tool_choice \"none\" (text asked for) is served the tool call stored for a forced tool_choice: %s", got.Entry.Body)
	}
}

// parallel_tool_calls sets how many tool calls one answer may hold
// (OpenAI API reference: "Whether to enable parallel function calling
// during tool use"; false: at most one), as n sets how many choices: a
// client that asked for one call at a time was served an answer of
// three, the shape its loop does not expect. Expected: it stays in the
// key as sent, as n does.
func TestReviewZ199ChatParallelToolCallsStaysKeyedUnderKeyFields(t *testing.T) {
	env := newEnv(t, `{"upstream_cluster":"model","routes":[{"name":"chat","kind":"chat","path_prefix":"/v1/chat/completions","ttl":"1h",
	  "key_fields":["model","messages","tools","tool_choice"]}]}`)
	base := strings.Replace(chatRequest("weather in Paris, Rome and Oslo?"), `"temperature":0`,
		`"temperature":0,`+z199Tools+`,"tool_choice":{"type":"function","function":{"name":"get_weather"}}`, 1)
	req, d := env.lookup("chat", alice, base)
	if req.Bypassed() || d != Forward {
		t.Fatalf("setup: %v %s", d, req.Reason)
	}
	env.fill(req, jsonCT, z199ToolsAnswer(3), 5)
	if _, d := env.lookup("chat", alice, base); d != Serve {
		t.Fatalf("setup: the same request is not served: %v", d)
	}
	one := strings.Replace(base, `"temperature":0`, `"temperature":0,"parallel_tool_calls":false`, 1)
	if got, d := env.lookup("chat", alice, one); d == Serve {
		t.Fatalf("a request with parallel_tool_calls false is served an answer of three tool calls: %s", got.Entry.Body)
	}
}

// key_fields names top-level members "by name", but the canonical form
// compares a member's name in its escaped form (unquotedKey: `a\"b`), so
// a listed name holding a '"' or a control character never matches the
// member it names: the member is dropped from the key, and two requests
// that differ only in it share an entry. The configuration is accepted
// silently. Expected: either such a name is a config error, or the member
// it names is kept (the second request below misses).
func TestReviewZ199KeyFieldsNameNeedingEscapeIsKeptOrRefused(t *testing.T) {
	cfg := `{"upstream_cluster":"model","routes":[{"name":"chat","kind":"chat","path_prefix":"/v1/chat/completions","ttl":"1h",
	  "key_fields":["model","messages","x\"mode"]}]}`
	if _, err := ParseConfig([]byte(cfg)); err != nil {
		return // refused: fine
	}
	env := newEnv(t, cfg)
	a := strings.Replace(chatRequest("pick one"), `"temperature":0`, `"temperature":0,"x\"mode":"a"`, 1)
	req, d := env.lookup("chat", alice, a)
	if req.Bypassed() || d != Forward {
		t.Fatalf("setup: %v %s", d, req.Reason)
	}
	if !strings.Contains(string(req.canonical), `x\"mode`) {
		t.Errorf("the member key_fields lists as x\"mode is left out of the key: %s", req.canonical)
	}
	env.fill(req, jsonCT, chatResponse("a"), 5)
	b := strings.Replace(a, `"x\"mode":"a"`, `"x\"mode":"b"`, 1)
	if got, d := env.lookup("chat", alice, b); d == Serve {
		t.Fatalf("a request whose keyed member x\"mode differs is served the other's answer: %s", got.Entry.Body)
	}
}

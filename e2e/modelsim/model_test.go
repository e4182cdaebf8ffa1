package modelsim

import (
	"encoding/json"
	"errors"
	"math"
	"strings"
	"testing"
	"unicode/utf8"
)

func content(t *testing.T, c *ChatCompletion, i int) string {
	t.Helper()
	if c.Choices[i].Message.Content == nil {
		t.Fatalf("choice %d has null content", i)
	}
	return *c.Choices[i].Message.Content
}

func mustChat(t *testing.T, version, body string) *ChatCompletion {
	t.Helper()
	c, err := ChatAnswer(version, []byte(body))
	if err != nil {
		t.Fatalf("ChatAnswer(%s): %v", body, err)
	}
	return c
}

func TestChatAnswerDeterminism(t *testing.T) {
	const base = `{"model":"m","messages":[{"role":"user","content":"hello there"}],"temperature":0.5}`
	tests := []struct {
		name     string
		a, b     string
		va, vb   string
		wantSame bool
	}{
		{"identical", base, base, "v1", "v1", true},
		{"key order and whitespace", base,
			`{ "temperature": 0.50, "messages": [ {"content":"hello there","role":"user"} ], "model": "m" }`, "v1", "v1", true},
		{"stream fields are delivery only", base,
			`{"model":"m","messages":[{"role":"user","content":"hello there"}],"temperature":0.5,"stream":true,"stream_options":{"include_usage":true},"user":"u1"}`,
			"v1", "v1", true},
		{"content parts equal string", `{"model":"m","messages":[{"role":"user","content":[{"type":"text","text":"hi"}]}]}`,
			`{"model":"m","messages":[{"role":"user","content":[{"type":"text","text":"hi"}]}]}`, "v1", "v1", true},
		{"different prompt", base, strings.Replace(base, "hello there", "hello here", 1), "v1", "v1", false},
		{"different temperature", base, strings.Replace(base, "0.5", "0.7", 1), "v1", "v1", false},
		{"seed matters", base, strings.Replace(base, `"temperature":0.5`, `"temperature":0.5,"seed":7`, 1), "v1", "v1", false},
		{"different model", base, strings.Replace(base, `"m"`, `"m2"`, 1), "v1", "v1", false},
		{"different version", base, base, "v1", "v2", false},
		{"system message matters", base,
			`{"model":"m","messages":[{"role":"system","content":"be brief"},{"role":"user","content":"hello there"}],"temperature":0.5}`,
			"v1", "v1", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a, b := mustChat(t, tt.va, tt.a), mustChat(t, tt.vb, tt.b)
			same := a.ID == b.ID && a.Created == b.Created && content(t, a, 0) == content(t, b, 0)
			if same != tt.wantSame {
				t.Errorf("same = %v, want %v\n a: %s %d %q\n b: %s %d %q", same, tt.wantSame,
					a.ID, a.Created, content(t, a, 0), b.ID, b.Created, content(t, b, 0))
			}
			if !tt.wantSame && (a.ID == b.ID || content(t, a, 0) == content(t, b, 0)) {
				t.Errorf("id or content shared between different requests: %s / %q", a.ID, content(t, a, 0))
			}
		})
	}
}

func TestChatAnswerShapes(t *testing.T) {
	const tools = `"tools":[{"type":"function","function":{"name":"lookup"}},{"type":"function","function":{"name":"get_weather"}}]`
	tests := []struct {
		name       string
		body       string
		choices    int
		finish     string
		tool       string // expected function name, "" for a text answer
		args       string
		maxWords   int
		promptToks int
	}{
		{name: "plain", body: `{"model":"m","messages":[{"role":"user","content":"one two three"}]}`,
			choices: 1, finish: "stop", promptToks: 3},
		{name: "n=3", body: `{"model":"m","n":3,"messages":[{"role":"user","content":"x"}]}`,
			choices: 3, finish: "stop", promptToks: 1},
		{name: "max_tokens cuts", body: `{"model":"m","max_tokens":3,"messages":[{"role":"user","content":"x"}]}`,
			choices: 1, finish: "length", maxWords: 3, promptToks: 1},
		{name: "max_completion_tokens cuts", body: `{"model":"m","max_completion_tokens":2,"messages":[{"role":"user","content":"x"}]}`,
			choices: 1, finish: "length", maxWords: 2, promptToks: 1},
		{name: "weather with tools calls the weather tool",
			body:    `{"model":"m",` + tools + `,"messages":[{"role":"user","content":"What is the Weather in Paris?"}]}`,
			choices: 1, finish: "tool_calls", tool: "get_weather", args: `{"location":"Paris"}`, promptToks: 6},
		{name: "weather without tools answers in text",
			body:    `{"model":"m","messages":[{"role":"user","content":"weather in Oslo"}]}`,
			choices: 1, finish: "stop", promptToks: 3},
		{name: "tools without weather answers in text",
			body:    `{"model":"m",` + tools + `,"messages":[{"role":"user","content":"hello"}]}`,
			choices: 1, finish: "stop", promptToks: 1},
		{name: "after a tool result the model answers in text",
			body: `{"model":"m",` + tools + `,"messages":[{"role":"user","content":"weather in Rome"},` +
				`{"role":"assistant","content":null,"tool_calls":[{"id":"c1","type":"function","function":{"name":"get_weather","arguments":"{}"}}]},` +
				`{"role":"tool","tool_call_id":"c1","content":"sunny"}]}`,
			choices: 1, finish: "stop", promptToks: 4},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := mustChat(t, "v1", tt.body)
			if c.Object != "chat.completion" || !strings.HasPrefix(c.ID, "chatcmpl-") || c.Model != "m" ||
				c.SystemFingerprint != "modelsim-v1" || c.Created < createdEpoch {
				t.Errorf("envelope = %+v", c)
			}
			if len(c.Choices) != tt.choices {
				t.Fatalf("choices = %d, want %d", len(c.Choices), tt.choices)
			}
			completion := 0
			seen := map[string]bool{}
			for i, ch := range c.Choices {
				if ch.Index != i || ch.Message.Role != "assistant" || ch.FinishReason != tt.finish {
					t.Errorf("choice %d = %+v, want finish %q", i, ch, tt.finish)
				}
				if tt.tool != "" {
					if ch.Message.Content != nil || len(ch.Message.ToolCalls) != 1 {
						t.Fatalf("want one tool call and null content, got %+v", ch.Message)
					}
					tc := ch.Message.ToolCalls[0]
					if tc.Function.Name != tt.tool || tc.Function.Arguments != tt.args || tc.Type != "function" ||
						!strings.HasPrefix(tc.ID, "call_") || tc.Index != nil {
						t.Errorf("tool call = %+v", tc)
					}
					continue
				}
				text := content(t, c, i)
				if seen[text] {
					t.Errorf("choice %d repeats %q", i, text)
				}
				seen[text] = true
				completion += words(text)
				if tt.maxWords > 0 && words(text) != tt.maxWords {
					t.Errorf("content %q has %d words, want %d", text, words(text), tt.maxWords)
				}
			}
			u := c.Usage
			if u.PromptTokens != tt.promptToks || u.TotalTokens != u.PromptTokens+u.CompletionTokens ||
				(tt.tool == "" && u.CompletionTokens != completion) {
				t.Errorf("usage = %+v, want prompt %d, completion %d", u, tt.promptToks, completion)
			}
		})
	}
}

func TestRequestErrors(t *testing.T) {
	tests := []struct {
		name, path, body, param string
	}{
		{"not an object", PathChat, `[1]`, ""},
		{"bad json", PathChat, `{"model":`, ""},
		{"chat without model", PathChat, `{"messages":[{"role":"user","content":"x"}]}`, "model"},
		{"chat without messages", PathChat, `{"model":"m","messages":[]}`, "messages"},
		{"chat message without role", PathChat, `{"model":"m","messages":[{"content":"x"}]}`, "messages[0].role"},
		{"chat content a number", PathChat, `{"model":"m","messages":[{"role":"user","content":5}]}`, "messages[0].content"},
		{"chat n too big", PathChat, `{"model":"m","n":99,"messages":[{"role":"user","content":"x"}]}`, "n"},
		{"chat max_tokens 0", PathChat, `{"model":"m","max_tokens":0,"messages":[{"role":"user","content":"x"}]}`, "max_tokens"},
		{"chat stream not bool", PathChat, `{"model":"m","stream":"yes","messages":[{"role":"user","content":"x"}]}`, "stream"},
		{"completion without prompt", PathCompletions, `{"model":"m"}`, "prompt"},
		{"embeddings empty list", PathEmbeddings, `{"model":"m","input":[]}`, "input"},
		{"embeddings empty string", PathEmbeddings, `{"model":"m","input":["a",""]}`, "input[1]"},
		{"embeddings empty token array", PathEmbeddings, `{"model":"m","input":[[1],[]]}`, "input[1]"},
		{"embeddings mixed", PathEmbeddings, `{"model":"m","input":["a",1]}`, "input"},
		{"embeddings float tokens", PathEmbeddings, `{"model":"m","input":[1.5,2]}`, "input"},
		{"embeddings object", PathEmbeddings, `{"model":"m","input":{"a":1}}`, "input"},
		{"embeddings dims 0", PathEmbeddings, `{"model":"m","input":"a","dimensions":0}`, "dimensions"},
		{"embeddings bad format", PathEmbeddings, `{"model":"m","input":"a","encoding_format":"hex"}`, "encoding_format"},
		{"classify without input", PathClassify, `{"model":"m"}`, "input"},
		{"classify array input", PathClassify, `{"model":"m","input":["a"]}`, "input"},
		{"classify bad marker", PathClassify, `{"model":"m","input":"x [score=1.5]"}`, "input"},
		{"rerank without query", PathRerank, `{"model":"m","documents":["a"]}`, "query"},
		{"rerank without documents", PathRerank, `{"model":"m","query":"q"}`, "documents"},
		{"rerank documents a string", PathRerank, `{"model":"m","query":"q","documents":"a"}`, "documents"},
		{"rerank document a number", PathRerank, `{"model":"m","query":"q","documents":["a",1]}`, "documents[1]"},
		{"rerank top_n negative", PathRerank, `{"model":"m","query":"q","documents":["a"],"top_n":-1}`, "top_n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ExpectedBody("v1", tt.path, []byte(tt.body))
			var re *RequestError
			if !errors.As(err, &re) {
				t.Fatalf("err = %v, want a *RequestError", err)
			}
			if re.Param != tt.param {
				t.Errorf("param = %q, want %q (%v)", re.Param, tt.param, re)
			}
		})
	}
}

func TestParseItems(t *testing.T) {
	tests := []struct {
		name   string
		raw    string
		items  []string
		tokens int
	}{
		{"string", `"hello big world"`, []string{"hello big world"}, 3},
		{"strings", `["a b","c"]`, []string{"a b", "c"}, 3},
		{"token array", `[1, 2, 3]`, []string{"[1,2,3]"}, 3},
		{"token arrays", `[[1],[20,-3]]`, []string{"[1]", "[20,-3]"}, 3},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			items, tokens, err := parseItems([]byte(tt.raw), "input")
			if err != nil {
				t.Fatal(err)
			}
			if strings.Join(items, "|") != strings.Join(tt.items, "|") || tokens != tt.tokens {
				t.Errorf("got %q, %d tokens; want %q, %d", items, tokens, tt.items, tt.tokens)
			}
		})
	}
}

func norm(v []float32) float64 {
	var s float64
	for _, x := range v {
		s += float64(x) * float64(x)
	}
	return math.Sqrt(s)
}

func equalVec(a, b []float32) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func TestEmbeddingVector(t *testing.T) {
	for _, dims := range []int{1, 3, 8, 16, 17, 1536} {
		v := EmbeddingVector("v1", "m", "hello", dims)
		if len(v) != dims || math.Abs(norm(v)-1) > 1e-5 {
			t.Errorf("dims %d: len %d, norm %v", dims, len(v), norm(v))
		}
		if !equalVec(v, EmbeddingVector("v1", "m", "hello", dims)) {
			t.Errorf("dims %d: not deterministic", dims)
		}
	}
	ref := EmbeddingVector("v1", "m", "hello", 16)
	for _, other := range [][]float32{
		EmbeddingVector("v2", "m", "hello", 16),
		EmbeddingVector("v1", "m2", "hello", 16),
		EmbeddingVector("v1", "m", "hello!", 16),
	} {
		if equalVec(ref, other) {
			t.Errorf("vectors of different inputs are equal: %v", ref)
		}
	}
	if EmbeddingVector("v1", "m", "x", 0) != nil {
		t.Error("dims 0 should give nil")
	}
}

func TestBase64RoundTrip(t *testing.T) {
	v := EmbeddingVector("v1", "m", "hello", 16)
	got, err := DecodeBase64(EncodeBase64(v))
	if err != nil || !equalVec(got, v) {
		t.Fatalf("round trip = %v, %v; want %v", got, err, v)
	}
	if _, err := DecodeBase64("AAA="); err == nil {
		t.Error("3-byte payload should be rejected")
	}
}

func TestClassifyAnswer(t *testing.T) {
	tests := []struct {
		name  string
		input string
		knob  float64
		want  float64 // 0: derived, must be in [0.5,1)
	}{
		{"derived", "I love it", 0, 0},
		{"marker 0.95", "I love it [score=0.95]", 0, 0.95},
		{"marker 0.7", "meh [score=0.7]", 0, 0.7},
		{"marker 0.3", "hmm [score=0.3]", 0, 0.3},
		{"marker 0.05 adds labels", "hmm [score=0.05]", 0, 0.05},
		{"marker 1", "sure [score=1]", 0, 1},
		{"knob", "plain", 0.7, 0.7},
		{"marker beats knob", "x [score=0.3]", 0.95, 0.3},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := classifyAnswer("v1", []byte(`{"model":"clf","input":"`+tt.input+`"}`), answerOpts{score: tt.knob})
			if err != nil {
				t.Fatal(err)
			}
			if tt.want != 0 && c.Score != tt.want {
				t.Errorf("score = %v, want %v", c.Score, tt.want)
			}
			if tt.want == 0 && (c.Score < 0.5 || c.Score >= 1) {
				t.Errorf("derived score %v outside [0.5,1)", c.Score)
			}
			var sum float64
			for i, l := range c.Labels {
				sum += l.Score
				if l.Score < 0 || (i > 0 && l.Score > c.Labels[i-1].Score) {
					t.Errorf("labels not sorted descending: %+v", c.Labels)
				}
			}
			if math.Abs(sum-1) > 1e-9 {
				t.Errorf("scores sum to %v: %+v", sum, c.Labels)
			}
			if c.Labels[0].Label != c.Label || c.Labels[0].Score != c.Score || c.Model != "clf" {
				t.Errorf("top label mismatch: %+v", c)
			}
			again, _ := classifyAnswer("v1", []byte(`{"model":"clf","input":"`+tt.input+`"}`), answerOpts{score: tt.knob})
			if again.Label != c.Label || again.Score != c.Score {
				t.Errorf("not deterministic: %+v vs %+v", again, c)
			}
		})
	}
}

func TestSplitters(t *testing.T) {
	for _, s := range []string{"", "a", "This is  a test.", " lead", "trail ", "é ü 日本語"} {
		if got := strings.Join(splitWords(s), ""); got != s {
			t.Errorf("splitWords(%q) rejoins to %q", s, got)
		}
		for _, p := range splitRunes(s, 2) {
			if !utf8.ValidString(p) || utf8.RuneCountInString(p) > 2 {
				t.Errorf("splitRunes(%q, 2) made %q", s, p)
			}
		}
		if got := strings.Join(splitRunes(s, 2), ""); got != s {
			t.Errorf("splitRunes(%q) rejoins to %q", s, got)
		}
	}
	if got := splitWords("This is a"); len(got) != 3 || got[1] != " is" {
		t.Errorf("splitWords = %q", got)
	}
}

func TestRerankAnswer(t *testing.T) {
	docs := []string{"a cache keeps answers", "bananas are yellow", "caches serve hits", "envoy is a proxy", "x"}
	body := func(query, extra string) []byte {
		b, _ := json.Marshal(map[string]any{"model": "rr", "query": query, "documents": docs})
		if extra != "" {
			b = append(b[:len(b)-1], ","+extra+"}"...)
		}
		return b
	}
	all, err := RerankAnswer("v1", body("what is a cache", ""))
	if err != nil {
		t.Fatal(err)
	}
	if len(all.Results) != len(docs) {
		t.Fatalf("results = %d, want %d", len(all.Results), len(docs))
	}
	seen := map[int]bool{}
	for i, r := range all.Results {
		if r.Index < 0 || r.Index >= len(docs) || seen[r.Index] || r.Document != nil {
			t.Errorf("result %d = %+v", i, r)
		}
		seen[r.Index] = true
		if want := RelevanceScore("v1", "rr", "what is a cache", docs[r.Index]); r.RelevanceScore != want || want < 0 || want >= 1 {
			t.Errorf("result %d score %v, want %v in [0,1)", i, r.RelevanceScore, want)
		}
		if i > 0 && r.RelevanceScore > all.Results[i-1].RelevanceScore {
			t.Errorf("not sorted by descending score: %+v", all.Results)
		}
	}
	for _, tc := range []struct {
		extra string
		want  int
	}{{`"top_n":2`, 2}, {`"top_n":0`, len(docs)}, {`"top_n":null`, len(docs)}, {`"top_n":99`, len(docs)}} {
		r, err := RerankAnswer("v1", body("what is a cache", tc.extra))
		if err != nil {
			t.Fatal(err)
		}
		if len(r.Results) != tc.want {
			t.Errorf("%s: %d results, want %d", tc.extra, len(r.Results), tc.want)
		}
		for i := range r.Results {
			if r.Results[i] != all.Results[i] {
				t.Errorf("%s: result %d = %+v, want the top of the full ranking %+v", tc.extra, i, r.Results[i], all.Results[i])
			}
		}
		if r.ID == all.ID {
			t.Errorf("%s: same id as without it", tc.extra)
		}
	}
	withDocs, _ := RerankAnswer("v1", body("what is a cache", `"return_documents":true`))
	for _, r := range withDocs.Results {
		if r.Document == nil || r.Document.Text != docs[r.Index] {
			t.Errorf("return_documents: %+v", r)
		}
	}
	other, _ := RerankAnswer("v1", body("what is envoy", ""))
	v2, _ := RerankAnswer("v2", body("what is a cache", ""))
	again, _ := RerankAnswer("v1", body("what is a cache", ""))
	if other.Results[0].RelevanceScore == all.Results[0].RelevanceScore || v2.Results[0].RelevanceScore == all.Results[0].RelevanceScore {
		t.Error("another query or version gives the same scores")
	}
	if again.ID != all.ID || again.Results[0] != all.Results[0] {
		t.Error("not deterministic")
	}
	objs, _ := RerankAnswer("v1", []byte(`{"model":"rr","query":"what is a cache","documents":[{"text":"bananas are yellow"}]}`))
	if objs.Results[0].RelevanceScore != RelevanceScore("v1", "rr", "what is a cache", "bananas are yellow") {
		t.Error("an object document is scored by another text than its text")
	}
	nd, _ := rerankAnswer("v1", body("what is a cache", ""), answerOpts{nonce: 7})
	if nd.ID == all.ID || nd.Results[0].RelevanceScore == all.Results[0].RelevanceScore {
		t.Error("nondeterministic knob does not vary the answer")
	}
}

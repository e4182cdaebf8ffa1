package modelsim

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/modelcache/modelcache/internal/hammer"
)

// sim is a Server behind an httptest listener, with a client that opens a
// fresh connection per request so that reset and truncate faults cannot
// poison a pooled connection (or trigger a transparent retry).
type sim struct {
	*Server
	url    string
	client *http.Client
}

func newSim(t *testing.T, opts Options) *sim {
	t.Helper()
	s := New(opts)
	ts := httptest.NewServer(s.Handler())
	t.Cleanup(func() {
		s.Close() // releases held calls first, so ts.Close does not wait on them
		ts.Close()
	})
	return &sim{Server: s, url: ts.URL, client: &http.Client{Transport: &http.Transport{DisableKeepAlives: true}}}
}

// do sends a request and reads the whole body; err is the transport or
// body read error, if any, with whatever body arrived before it.
func (s *sim) do(ctx context.Context, method, path, body string, hdr map[string]string) (*http.Response, []byte, error) {
	req, err := http.NewRequestWithContext(ctx, method, s.url+path, strings.NewReader(body))
	if err != nil {
		return nil, nil, err
	}
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := s.client.Do(req)
	if err != nil {
		return nil, nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp, b, err
}

func (s *sim) post(t *testing.T, path, body string, hdr map[string]string) (*http.Response, []byte) {
	t.Helper()
	resp, b, err := s.do(context.Background(), http.MethodPost, path, body, hdr)
	if err != nil {
		t.Fatalf("POST %s: %v", path, err)
	}
	return resp, b
}

func (s *sim) control(t *testing.T, method, path, body string, out any) int {
	t.Helper()
	resp, b, err := s.do(context.Background(), method, path, body, nil)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	if out != nil {
		if err := json.Unmarshal(b, out); err != nil {
			t.Fatalf("%s %s: %v in %s", method, path, err, b)
		}
	}
	return resp.StatusCode
}

func mustExpected(t *testing.T, version, path, body string) []byte {
	t.Helper()
	b, err := ExpectedBody(version, path, []byte(body))
	if err != nil {
		t.Fatalf("ExpectedBody(%s): %v", body, err)
	}
	return b
}

// sseData splits an SSE body into its data payloads and reports whether
// the stream ended with [DONE].
func sseData(t *testing.T, body []byte) (data []string, done bool) {
	t.Helper()
	sc := bufio.NewScanner(bytes.NewReader(body))
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if line == "" {
			continue
		}
		d, ok := strings.CutPrefix(line, "data: ")
		if !ok {
			t.Fatalf("not an SSE data line: %q", line)
		}
		if done {
			t.Fatalf("event after [DONE]: %q", line)
		}
		if d == "[DONE]" {
			done = true
			continue
		}
		data = append(data, d)
	}
	return data, done
}

const (
	chatBody   = `{"model":"gpt-sim","messages":[{"role":"user","content":"Tell me a joke"}]}`
	chatStream = `{"model":"gpt-sim","stream":true,"stream_options":{"include_usage":true},"messages":[{"role":"user","content":"Tell me a joke"}]}`
	weatherReq = `{"model":"gpt-sim","tools":[{"type":"function","function":{"name":"get_weather"}}],"messages":[{"role":"user","content":"weather in Lisbon?"}]}`
	embedBody  = `{"model":"emb","input":["alpha","beta gamma"]}`
	classBody  = `{"model":"clf","input":"great stuff [score=0.7]"}`
	complBody  = `{"model":"instruct","prompt":"Once upon a time"}`
	rerankBody = `{"model":"rr","query":"what is a cache","documents":["a cache keeps answers","bananas",{"text":"caches serve hits"}],"top_n":2}`
)

func TestEndpoints(t *testing.T) {
	s := newSim(t, Options{})
	tests := []struct {
		name, path, body string
		check            func(t *testing.T, body []byte)
	}{
		{"chat", PathChat, chatBody, func(t *testing.T, b []byte) {
			var c ChatCompletion
			mustJSON(t, b, &c)
			if c.Object != "chat.completion" || len(c.Choices) != 1 || c.Choices[0].FinishReason != "stop" ||
				c.Choices[0].Message.Content == nil || !strings.Contains(*c.Choices[0].Message.Content, "digest") ||
				c.Usage.TotalTokens == 0 {
				t.Errorf("chat = %s", b)
			}
		}},
		{"chat tool call", PathChat, weatherReq, func(t *testing.T, b []byte) {
			var c ChatCompletion
			mustJSON(t, b, &c)
			m := c.Choices[0].Message
			if c.Choices[0].FinishReason != "tool_calls" || m.Content != nil || len(m.ToolCalls) != 1 ||
				m.ToolCalls[0].Function.Arguments != `{"location":"Lisbon"}` {
				t.Errorf("tool call = %s", b)
			}
		}},
		{"legacy completion", PathCompletions, complBody, func(t *testing.T, b []byte) {
			var c TextCompletion
			mustJSON(t, b, &c)
			if c.Object != "text_completion" || len(c.Choices) != 1 || !strings.HasPrefix(c.Choices[0].Text, " This") ||
				c.Usage.PromptTokens != 4 {
				t.Errorf("completion = %s", b)
			}
		}},
		{"legacy completion, prompt list", PathCompletions, `{"model":"instruct","prompt":["a","b","c"]}`, func(t *testing.T, b []byte) {
			var c TextCompletion
			mustJSON(t, b, &c)
			if len(c.Choices) != 3 || c.Choices[2].Index != 2 || c.Choices[0].Text == c.Choices[1].Text {
				t.Errorf("completion = %s", b)
			}
		}},
		{"embeddings", PathEmbeddings, embedBody, func(t *testing.T, b []byte) {
			var e struct {
				Object string
				Data   []struct {
					Object    string
					Index     int
					Embedding []float32
				}
				Model string
				Usage EmbeddingUsage
			}
			mustJSON(t, b, &e)
			if e.Object != "list" || len(e.Data) != 2 || e.Model != "emb" || e.Usage.PromptTokens != 3 || e.Usage.TotalTokens != 3 {
				t.Fatalf("embeddings = %s", b)
			}
			for i, d := range e.Data {
				if d.Object != "embedding" || d.Index != i || len(d.Embedding) != DefaultEmbeddingDims {
					t.Errorf("data[%d] = %+v", i, d)
				}
			}
		}},
		{"classify", PathClassify, classBody, func(t *testing.T, b []byte) {
			var c Classification
			mustJSON(t, b, &c)
			if c.Model != "clf" || c.Score != 0.7 || c.Label == "" || len(c.Labels) < 2 {
				t.Errorf("classify = %s", b)
			}
		}},
		{"rerank", PathRerank, rerankBody, func(t *testing.T, b []byte) {
			var r Rerank
			mustJSON(t, b, &r)
			if r.Model != "rr" || !strings.HasPrefix(r.ID, "rerank-") || len(r.Results) != 2 || r.Usage.TotalTokens != 4+4+1+3 ||
				r.Results[0].RelevanceScore < r.Results[1].RelevanceScore || r.Results[0].Index == r.Results[1].Index {
				t.Errorf("rerank = %s", b)
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp, b := s.post(t, tt.path, tt.body, nil)
			if resp.StatusCode != http.StatusOK {
				t.Fatalf("status %d: %s", resp.StatusCode, b)
			}
			if got := resp.Header.Get(HeaderModelVersion); got != "v1" {
				t.Errorf("%s = %q, want v1", HeaderModelVersion, got)
			}
			if ct := resp.Header.Get("Content-Type"); ct != "application/json" {
				t.Errorf("content-type = %q", ct)
			}
			if cc := resp.Header.Get("Cache-Control"); cc != "" {
				t.Errorf("unexpected cache-control %q", cc)
			}
			if want := mustExpected(t, "v1", tt.path, tt.body); !bytes.Equal(b, want) {
				t.Errorf("body differs from ExpectedBody:\n got %s\nwant %s", b, want)
			}
			_, again := s.post(t, tt.path, tt.body, nil)
			if !bytes.Equal(b, again) {
				t.Errorf("second answer differs:\n%s\n%s", b, again)
			}
			tt.check(t, b)
		})
	}
}

func mustJSON(t *testing.T, b []byte, v any) {
	t.Helper()
	if err := json.Unmarshal(b, v); err != nil {
		t.Fatalf("%v in %s", err, b)
	}
}

type chunk struct {
	ID      string `json:"id"`
	Object  string `json:"object"`
	Created int64  `json:"created"`
	Choices []struct {
		Index int `json:"index"`
		Text  string
		Delta struct {
			Role      string     `json:"role"`
			Content   *string    `json:"content"`
			ToolCalls []ToolCall `json:"tool_calls"`
		} `json:"delta"`
		FinishReason *string `json:"finish_reason"`
	} `json:"choices"`
	Usage *Usage `json:"usage"`
}

func TestStreams(t *testing.T) {
	s := newSim(t, Options{})
	tests := []struct {
		name, path, body string
		usage            bool
	}{
		{"chat with usage", PathChat, chatStream, true},
		{"chat without usage", PathChat, strings.Replace(chatStream, `"stream_options":{"include_usage":true},`, "", 1), false},
		{"chat n=2", PathChat, strings.Replace(chatStream, `"stream":true`, `"stream":true,"n":2`, 1), true},
		{"chat tool call", PathChat, strings.Replace(weatherReq, `{"model"`, `{"stream":true,"model"`, 1), false},
		{"legacy completion", PathCompletions, `{"model":"instruct","prompt":["a b","c"],"stream":true,"stream_options":{"include_usage":true}}`, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp, b := s.post(t, tt.path, tt.body, nil)
			if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != "text/event-stream" {
				t.Fatalf("status %d, content-type %q", resp.StatusCode, resp.Header.Get("Content-Type"))
			}
			if want := mustExpected(t, "v1", tt.path, tt.body); !bytes.Equal(b, want) {
				t.Errorf("stream differs from ExpectedBody:\n got %s\nwant %s", b, want)
			}
			data, done := sseData(t, b)
			if !done {
				t.Fatal("no [DONE]")
			}
			// The non-streamed answer to the same request is the reference.
			nonStream := strings.Replace(tt.body, `"stream":true`, `"stream":false`, 1)
			var ref struct {
				ID      string
				Created int64
				Choices []struct {
					Message      ChatMessage
					Text         string
					FinishReason string `json:"finish_reason"`
				}
				Usage Usage
			}
			mustJSON(t, mustExpected(t, "v1", tt.path, nonStream), &ref)

			texts := make([]string, len(ref.Choices))
			args := make([]string, len(ref.Choices))
			finishes := make([]string, len(ref.Choices))
			sawRole := make([]bool, len(ref.Choices))
			var usage *Usage
			for i, d := range data {
				var c chunk
				mustJSON(t, []byte(d), &c)
				if c.ID != ref.ID || c.Created != ref.Created {
					t.Errorf("chunk %d id/created %s/%d, want %s/%d", i, c.ID, c.Created, ref.ID, ref.Created)
				}
				if c.Usage != nil {
					if len(c.Choices) != 0 || i != len(data)-1 {
						t.Errorf("usage chunk %d has choices or is not last: %s", i, d)
					}
					usage = c.Usage
				}
				for _, ch := range c.Choices {
					if finishes[ch.Index] != "" {
						t.Errorf("chunk after finish for choice %d: %s", ch.Index, d)
					}
					if ch.Delta.Role == "assistant" {
						sawRole[ch.Index] = true
					} else if !sawRole[ch.Index] && tt.path == PathChat {
						t.Errorf("choice %d content before role chunk", ch.Index)
					}
					if ch.Delta.Content != nil {
						texts[ch.Index] += *ch.Delta.Content
					}
					texts[ch.Index] += ch.Text
					for _, tc := range ch.Delta.ToolCalls {
						args[ch.Index] += tc.Function.Arguments
					}
					if ch.FinishReason != nil {
						finishes[ch.Index] = *ch.FinishReason
					}
				}
			}
			for i, rc := range ref.Choices {
				want := rc.Text
				if rc.Message.Content != nil {
					want = *rc.Message.Content
				}
				if texts[i] != want {
					t.Errorf("choice %d streamed text %q, want %q", i, texts[i], want)
				}
				if len(rc.Message.ToolCalls) > 0 && args[i] != rc.Message.ToolCalls[0].Function.Arguments {
					t.Errorf("choice %d streamed args %q, want %q", i, args[i], rc.Message.ToolCalls[0].Function.Arguments)
				}
				if finishes[i] != rc.FinishReason {
					t.Errorf("choice %d finish %q, want %q", i, finishes[i], rc.FinishReason)
				}
			}
			if (usage != nil) != tt.usage || (usage != nil && *usage != ref.Usage) {
				t.Errorf("usage chunk = %+v, want present=%v %+v", usage, tt.usage, ref.Usage)
			}
			if len(data) < 4 {
				t.Errorf("only %d chunks; deltas should be split word by word", len(data))
			}
		})
	}
}

func TestEmbeddings(t *testing.T) {
	s := newSim(t, Options{EmbeddingDims: 8})
	tests := []struct {
		name   string
		body   string
		items  []string
		dims   int
		b64    bool
		tokens int
	}{
		{"string", `{"model":"e","input":"hello world"}`, []string{"hello world"}, 8, false, 2},
		{"strings", `{"model":"e","input":["a","b c","d"]}`, []string{"a", "b c", "d"}, 8, false, 4},
		{"token array", `{"model":"e","input":[5,6,7]}`, []string{"[5,6,7]"}, 8, false, 3},
		{"token arrays", `{"model":"e","input":[[5],[6,7]]}`, []string{"[5]", "[6,7]"}, 8, false, 3},
		{"dimensions", `{"model":"e","input":["a"],"dimensions":3}`, []string{"a"}, 3, false, 1},
		{"base64", `{"model":"e","input":["a","b"],"encoding_format":"base64","dimensions":5}`, []string{"a", "b"}, 5, true, 2},
		{"explicit float", `{"model":"e","input":"a","encoding_format":"float"}`, []string{"a"}, 8, false, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := len(s.EmbeddingCalls())
			resp, b := s.post(t, PathEmbeddings, tt.body, nil)
			if resp.StatusCode != http.StatusOK {
				t.Fatalf("status %d: %s", resp.StatusCode, b)
			}
			var e struct {
				Data []struct {
					Index     int
					Embedding json.RawMessage
				}
				Usage EmbeddingUsage
			}
			mustJSON(t, b, &e)
			if len(e.Data) != len(tt.items) || e.Usage.PromptTokens != tt.tokens {
				t.Fatalf("got %d vectors, %d tokens: %s", len(e.Data), e.Usage.PromptTokens, b)
			}
			for i, d := range e.Data {
				var v []float32
				if tt.b64 {
					var str string
					mustJSON(t, d.Embedding, &str)
					var err error
					if v, err = DecodeBase64(str); err != nil {
						t.Fatal(err)
					}
				} else {
					mustJSON(t, d.Embedding, &v)
				}
				if want := EmbeddingVector("v1", "e", tt.items[i], tt.dims); d.Index != i || !equalVec(v, want) {
					t.Errorf("vector %d = %v, want %v", i, v, want)
				}
			}
			calls := s.EmbeddingCalls()
			if len(calls) != before+1 || strings.Join(calls[len(calls)-1], "|") != strings.Join(tt.items, "|") {
				t.Errorf("embedding log = %q, want last %q", calls, tt.items)
			}
		})
	}
}

func TestEmbeddingLogIsBounded(t *testing.T) {
	s := newSim(t, Options{EmbeddingLog: 2})
	for _, in := range []string{"a", "b", "c"} {
		s.post(t, PathEmbeddings, `{"model":"e","input":["`+in+`","x"]}`, nil)
	}
	got := s.EmbeddingCalls()
	if len(got) != 2 || got[0][0] != "b" || got[1][0] != "c" || len(got[1]) != 2 {
		t.Errorf("log = %q, want the last two calls", got)
	}
}

func TestModelVersionSwitch(t *testing.T) {
	s := newSim(t, Options{})
	embed := `{"model":"e","input":["a","b"],"dimensions":6}`
	answer := func(hdr map[string]string) (version string, chat, emb []byte) {
		r1, c := s.post(t, PathChat, chatBody, hdr)
		r2, e := s.post(t, PathEmbeddings, embed, hdr)
		if v1, v2 := r1.Header.Get(HeaderModelVersion), r2.Header.Get(HeaderModelVersion); v1 != v2 {
			t.Fatalf("versions differ: %s vs %s", v1, v2)
		}
		return r1.Header.Get(HeaderModelVersion), c, e
	}
	v1, chat1, emb1 := answer(nil)
	if err := s.UpdateKnobs(func(k *Knobs) { k.ModelVersion = "v2" }); err != nil {
		t.Fatal(err)
	}
	v2, chat2, emb2 := answer(nil)
	v3, chat3, _ := answer(map[string]string{HeaderSimModelVersion: "v3"})

	if v1 != "v1" || v2 != "v2" || v3 != "v3" {
		t.Fatalf("versions = %s, %s, %s", v1, v2, v3)
	}
	for _, c := range []struct {
		version string
		chat    []byte
	}{{"v1", chat1}, {"v2", chat2}, {"v3", chat3}} {
		if want := mustExpected(t, c.version, PathChat, chatBody); !bytes.Equal(c.chat, want) {
			t.Errorf("%s chat = %s, want %s", c.version, c.chat, want)
		}
	}
	var e1, e2 EmbeddingList
	mustJSON(t, emb1, &e1)
	mustJSON(t, emb2, &e2)
	for i := range e1.Data {
		a, b := e1.Data[i].Embedding.([]any), e2.Data[i].Embedding.([]any)
		if len(a) != 6 || len(b) != 6 {
			t.Fatalf("dims changed: %d -> %d", len(a), len(b))
		}
		same := true
		for j := range a {
			same = same && a[j] == b[j]
		}
		if same {
			t.Errorf("vector %d unchanged by version switch", i)
		}
	}
	if s.ModelVersion() != "v2" {
		t.Errorf("per-request version leaked into the global one: %s", s.ModelVersion())
	}
}

func TestRoutingAndCounters(t *testing.T) {
	s := newSim(t, Options{})
	tests := []struct {
		method, path, body string
		status             int
		counted            bool
	}{
		{"POST", PathChat, chatBody, 200, true},
		{"POST", PathChat, `{"model":"m"}`, 400, true},
		{"POST", PathEmbeddings, embedBody, 200, true},
		{"POST", PathClassify, classBody, 200, true},
		{"POST", PathCompletions, complBody, 200, true},
		{"GET", PathChat, "", 405, false},
		{"POST", "/v1/unknown", "{}", 404, false},
		{"GET", "/", "", 404, false},
		{"GET", PathStats, "", 200, false},
		{"GET", "/__sim/nope", "", 404, false},
		{"GET", PathReset, "", 405, false},
	}
	var want int64
	byPath := map[string]int64{}
	for _, tt := range tests {
		resp, b, err := s.do(context.Background(), tt.method, tt.path, tt.body, nil)
		if err != nil {
			t.Fatal(err)
		}
		if resp.StatusCode != tt.status {
			t.Errorf("%s %s = %d, want %d", tt.method, tt.path, resp.StatusCode, tt.status)
		}
		if resp.Header.Get(HeaderModelVersion) != "v1" {
			t.Errorf("%s %s lacks %s", tt.method, tt.path, HeaderModelVersion)
		}
		if tt.status >= 400 {
			var e errorEnvelope
			if err := json.Unmarshal(b, &e); err != nil || e.Error.Message == "" || e.Error.Type == "" {
				t.Errorf("%s %s error body = %s", tt.method, tt.path, b)
			}
		}
		if tt.counted {
			want++
			byPath[tt.path]++
		}
	}
	if s.TotalCalls() != want {
		t.Errorf("TotalCalls = %d, want %d", s.TotalCalls(), want)
	}
	for _, p := range ModelPaths {
		if s.Calls(p) != byPath[p] {
			t.Errorf("Calls(%s) = %d, want %d", p, s.Calls(p), byPath[p])
		}
	}
	if s.Calls("/nope") != 0 {
		t.Error("unknown path counted")
	}
	s.ResetCounters()
	if s.TotalCalls() != 0 || s.Calls(PathChat) != 0 || len(s.EmbeddingCalls()) != 0 || s.MaxInFlight() != 0 {
		t.Errorf("after ResetCounters: %+v", s.Stats())
	}
}

func TestMaxInFlight(t *testing.T) {
	s := newSim(t, Options{})
	const n = 8
	s.Pause()
	var wg sync.WaitGroup
	bodies := make([][]byte, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, bodies[i], _ = s.do(context.Background(), "POST", PathChat, chatBody, nil)
		}()
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := s.WaitInFlight(ctx, n); err != nil {
		t.Fatal(err)
	}
	if st := s.Stats(); st.InFlight != n || st.MaxInFlight != n || st.Total != n {
		t.Errorf("while paused: %+v", st)
	}
	s.Resume()
	wg.Wait()
	want := mustExpected(t, "v1", PathChat, chatBody)
	for i, b := range bodies {
		if !bytes.Equal(b, want) {
			t.Errorf("answer %d = %s", i, b)
		}
	}
	if s.InFlight() != 0 || s.MaxInFlight() != n {
		t.Errorf("in flight %d, max %d", s.InFlight(), s.MaxInFlight())
	}
	if err := s.WaitCalls(ctx, PathChat, n); err != nil {
		t.Error(err)
	}
}

// TestHammer drives every endpoint, knob updates and stats reads from many
// goroutines at once; under -race it checks the locking, and the answers
// check that concurrency never mixes requests up.
func TestHammer(t *testing.T) {
	s := newSim(t, Options{})
	const workers, iterations = 8, 20
	reqs := []struct{ path, body string }{
		{PathChat, chatBody}, {PathChat, chatStream}, {PathEmbeddings, embedBody},
		{PathClassify, classBody}, {PathCompletions, complBody},
	}
	want := make([][]byte, len(reqs))
	for i, r := range reqs {
		want[i] = mustExpected(t, "v1", r.path, r.body)
	}
	errs := make(chan string, workers*iterations)
	hammer.Run(t, workers, func(w int) error {
		for i := range iterations {
			r := (w + i) % len(reqs)
			_, b, err := s.do(context.Background(), "POST", reqs[r].path, reqs[r].body, nil)
			if err != nil || !bytes.Equal(b, want[r]) {
				errs <- reqs[r].path + ": " + string(b)
			}
			_ = s.Stats()
			_ = s.UpdateKnobs(func(k *Knobs) { k.FinishReason = "" })
		}
		return nil
	})
	close(errs)
	for e := range errs {
		t.Error(e)
	}
	if s.TotalCalls() != workers*iterations || s.InFlight() != 0 || s.MaxInFlight() < 1 {
		t.Errorf("stats = %+v", s.Stats())
	}
	var sum int64
	for _, p := range ModelPaths {
		sum += s.Calls(p)
	}
	if sum != workers*iterations {
		t.Errorf("by-path sum %d", sum)
	}
}

func TestStartClose(t *testing.T) {
	s := New(Options{})
	url, err := s.Start("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	if url != s.URL() || s.Addr() == nil {
		t.Errorf("Start = %q, URL = %q", url, s.URL())
	}
	if _, err := s.Start("127.0.0.1:0"); err == nil {
		t.Error("second Start should fail")
	}
	resp, err := http.Post(url+PathChat, "application/json", strings.NewReader(chatBody))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()

	// A call held by the timeout fault must not keep Close waiting.
	held := make(chan error, 1)
	go func() {
		req, _ := http.NewRequest("POST", url+PathChat, strings.NewReader(chatBody))
		req.Header.Set(HeaderFault, "timeout")
		resp, err := http.DefaultClient.Do(req)
		if err == nil {
			_, err = io.ReadAll(resp.Body)
			resp.Body.Close()
		}
		held <- err
	}()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := s.WaitInFlight(ctx, 1); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if err := <-held; err == nil {
		t.Error("held request succeeded after Close")
	}
	if err := s.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
	if _, err := http.Post(url+PathChat, "application/json", strings.NewReader(chatBody)); err == nil {
		t.Error("request after Close succeeded")
	}
}

func TestLogf(t *testing.T) {
	var mu sync.Mutex
	var lines []string
	s := newSim(t, Options{Logf: func(f string, args ...any) {
		mu.Lock()
		defer mu.Unlock()
		lines = append(lines, strings.TrimSpace(fmt.Sprintf(f, args...)))
	}})
	s.post(t, PathChat, chatBody, map[string]string{HeaderFault: "malformed"})
	s.do(context.Background(), "POST", PathChat, chatBody, map[string]string{HeaderFault: "reset"}) //nolint:errcheck
	// Calls are logged before they end, and end after the response.
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := s.WaitInFlight(ctx, 0); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(lines) != 2 ||
		!strings.HasPrefix(lines[0], "POST /v1/chat/completions 200 ") || !strings.Contains(lines[0], "fault=malformed") ||
		!strings.Contains(lines[1], "fault=reset") {
		t.Errorf("log lines = %q", lines)
	}
}

// TestAbortedBeforeBody: a model call whose body never arrives (a proxy
// that sent the request headers, then reset the request) is counted as
// aborted, and so is the connection it held; a complete call is not.
func TestAbortedBeforeBody(t *testing.T) {
	for _, h2 := range []bool{false, true} {
		t.Run(map[bool]string{false: "http1", true: "h2c"}[h2], func(t *testing.T) {
			s := New(Options{H2C: h2})
			base, err := s.Start("127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { s.Close() })
			tr := &http.Transport{}
			if h2 {
				tr.Protocols = new(http.Protocols)
				tr.Protocols.SetUnencryptedHTTP2(true)
			}
			client := &http.Client{Transport: tr}
			t.Cleanup(tr.CloseIdleConnections)
			ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
			defer cancel()

			// A complete call: not aborted.
			resp, err := client.Post(base+"/v1/chat/completions", "application/json", strings.NewReader(`{"messages":[{"role":"user","content":"hi"}]}`))
			if err != nil {
				t.Fatal(err)
			}
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()

			// Headers sent, the body never: the request is cancelled.
			pr, pw := io.Pipe()
			defer pw.Close()
			rctx, rcancel := context.WithCancel(ctx)
			req, _ := http.NewRequestWithContext(rctx, "POST", base+"/v1/chat/completions", pr)
			req.ContentLength = 100
			done := make(chan struct{})
			go func() {
				defer close(done)
				if resp, err := client.Do(req); err == nil {
					resp.Body.Close()
				}
			}()
			if err := s.WaitCalls(ctx, "", 2); err != nil {
				t.Fatal(err)
			}
			rcancel()
			pw.CloseWithError(context.Canceled) // the transport may be reading the body
			<-done
			if err := s.waitUntil(ctx, func() bool { return s.Stats().Aborted == 1 }); err != nil {
				t.Fatalf("aborted = %d: %v", s.Stats().Aborted, err)
			}
			st := s.Stats()
			if st.Total != 2 || st.Aborted != 1 || st.MaxConns < 1 {
				t.Fatalf("total %d aborted %d max conns %d", st.Total, st.Aborted, st.MaxConns)
			}
			r2, err := http.Get(base + PathStats)
			if err != nil {
				t.Fatal(err)
			}
			defer r2.Body.Close()
			var js Stats
			if err := json.NewDecoder(r2.Body).Decode(&js); err != nil || js.Aborted != 1 {
				t.Fatalf("/__sim/stats aborted = %d (%v)", js.Aborted, err)
			}
			s.ResetCounters()
			if st := s.Stats(); st.Aborted != 0 {
				t.Fatalf("aborted after reset = %d", st.Aborted)
			}
		})
	}
}

package modelsim

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// headersFor expresses knobs as x-sim-* request headers, so every fault case
// runs both ways: globally (as through a cache) and per request.
func headersFor(k Knobs) map[string]string {
	h := map[string]string{}
	set := func(name, v string, on bool) {
		if on {
			h[name] = v
		}
	}
	set(HeaderSimModelVersion, k.ModelVersion, k.ModelVersion != "")
	set(HeaderLatency, strconv.Itoa(k.LatencyMS)+"ms", k.LatencyMS != 0)
	set(HeaderChunkDelay, strconv.Itoa(k.ChunkDelayMS), k.ChunkDelayMS != 0)
	set(HeaderStatus, strconv.Itoa(k.Status), k.Status != 0)
	set(HeaderFault, string(k.Fault), k.Fault != "")
	set(HeaderFinishReason, k.FinishReason, k.FinishReason != "")
	set(HeaderCacheControl, k.CacheControl, k.CacheControl != "")
	set(HeaderScore, strconv.FormatFloat(k.Score, 'g', -1, 64), k.Score != 0)
	set(HeaderNondeterministic, "true", k.Nondeterministic)
	return h
}

type outcome struct {
	resp *http.Response
	body []byte
	err  error
}

func TestFaults(t *testing.T) {
	fixed := time.Unix(1800000000, 0)
	type check func(t *testing.T, s *sim, o outcome, do func() outcome)
	isPrefixOfExpected := func(t *testing.T, path, req string, got []byte) {
		t.Helper()
		want := mustExpected(t, "v1", path, req)
		if len(got) == 0 || len(got) >= len(want) || !bytes.HasPrefix(want, got) {
			t.Errorf("got %d bytes, want a non-empty strict prefix of the %d-byte answer: %q", len(got), len(want), got)
		}
	}
	okStatus := func(t *testing.T, o outcome) {
		t.Helper()
		if o.err != nil || o.resp.StatusCode != http.StatusOK {
			t.Fatalf("want 200, got %v %v", o.err, o.resp)
		}
	}
	tests := []struct {
		name  string
		knobs Knobs
		path  string
		req   string
		check check
	}{
		{"reset", Knobs{Fault: FaultReset}, PathChat, chatBody, func(t *testing.T, s *sim, o outcome, _ func() outcome) {
			if o.err == nil {
				t.Errorf("reset gave a response: %d %s", o.resp.StatusCode, o.body)
			}
		}},
		{"reset stream", Knobs{Fault: FaultReset}, PathChat, chatStream, func(t *testing.T, s *sim, o outcome, _ func() outcome) {
			if o.err == nil {
				t.Errorf("reset gave a response: %d %s", o.resp.StatusCode, o.body)
			}
		}},
		{"malformed json", Knobs{Fault: FaultMalformed}, PathChat, chatBody, func(t *testing.T, s *sim, o outcome, _ func() outcome) {
			okStatus(t, o)
			if json.Valid(o.body) || o.resp.Header.Get("Content-Type") != "application/json" {
				t.Errorf("malformed body is valid JSON: %s", o.body)
			}
		}},
		{"malformed embeddings", Knobs{Fault: FaultMalformed}, PathEmbeddings, embedBody, func(t *testing.T, s *sim, o outcome, _ func() outcome) {
			okStatus(t, o)
			if json.Valid(o.body) {
				t.Errorf("malformed body is valid JSON: %s", o.body)
			}
		}},
		{"malformed stream", Knobs{Fault: FaultMalformed}, PathChat, chatStream, func(t *testing.T, s *sim, o outcome, _ func() outcome) {
			okStatus(t, o)
			data, done := sseData(t, o.body)
			bad := 0
			for _, d := range data {
				if !json.Valid([]byte(d)) {
					bad++
				}
			}
			if bad != 1 || !done {
				t.Errorf("want exactly one invalid event and [DONE]; got %d invalid, done=%v", bad, done)
			}
		}},
		{"truncate json", Knobs{Fault: FaultTruncate}, PathClassify, classBody, func(t *testing.T, s *sim, o outcome, _ func() outcome) {
			if o.err == nil {
				t.Fatalf("truncated body read without error: %s", o.body)
			}
			isPrefixOfExpected(t, PathClassify, classBody, o.body)
		}},
		{"truncate stream", Knobs{Fault: FaultTruncate}, PathChat, chatStream, func(t *testing.T, s *sim, o outcome, _ func() outcome) {
			if o.resp == nil || o.resp.StatusCode != http.StatusOK {
				t.Fatalf("want a 200 stream, got %v", o.err)
			}
			if o.err == nil {
				t.Error("truncated stream ended cleanly")
			}
			if bytes.Contains(o.body, []byte("[DONE]")) {
				t.Errorf("truncated stream has [DONE]: %s", o.body)
			}
			isPrefixOfExpected(t, PathChat, chatStream, o.body)
		}},
		{"empty chat", Knobs{Fault: FaultEmpty}, PathChat, chatBody, func(t *testing.T, s *sim, o outcome, _ func() outcome) {
			okStatus(t, o)
			var c ChatCompletion
			mustJSON(t, o.body, &c)
			if c.Choices[0].Message.Content == nil || *c.Choices[0].Message.Content != "" ||
				c.Choices[0].FinishReason != "stop" || c.Usage.CompletionTokens != 0 {
				t.Errorf("empty answer = %s", o.body)
			}
		}},
		{"empty stream", Knobs{Fault: FaultEmpty}, PathChat, chatStream, func(t *testing.T, s *sim, o outcome, _ func() outcome) {
			okStatus(t, o)
			data, done := sseData(t, o.body)
			for _, d := range data {
				var c chunk
				mustJSON(t, []byte(d), &c)
				for _, ch := range c.Choices {
					if ch.Delta.Content != nil && *ch.Delta.Content != "" {
						t.Errorf("empty stream carries content: %s", d)
					}
				}
			}
			if !done {
				t.Error("no [DONE]")
			}
		}},
		{"empty embeddings", Knobs{Fault: FaultEmpty}, PathEmbeddings, embedBody, func(t *testing.T, s *sim, o outcome, _ func() outcome) {
			okStatus(t, o)
			if !bytes.Contains(o.body, []byte(`"data":[]`)) {
				t.Errorf("empty embeddings = %s", o.body)
			}
		}},
		{"empty classify", Knobs{Fault: FaultEmpty}, PathClassify, classBody, func(t *testing.T, s *sim, o outcome, _ func() outcome) {
			okStatus(t, o)
			if !bytes.Contains(o.body, []byte(`"labels":[]`)) {
				t.Errorf("empty classification = %s", o.body)
			}
		}},
		{"empty rerank", Knobs{Fault: FaultEmpty}, PathRerank, rerankBody, func(t *testing.T, s *sim, o outcome, _ func() outcome) {
			okStatus(t, o)
			if !bytes.Contains(o.body, []byte(`"results":[]`)) {
				t.Errorf("empty rerank = %s", o.body)
			}
		}},
		{"malformed rerank", Knobs{Fault: FaultMalformed}, PathRerank, rerankBody, func(t *testing.T, s *sim, o outcome, _ func() outcome) {
			okStatus(t, o)
			if json.Valid(o.body) {
				t.Errorf("malformed rerank is valid JSON: %s", o.body)
			}
		}},
		{"status 503", Knobs{Status: 503}, PathEmbeddings, embedBody, func(t *testing.T, s *sim, o outcome, _ func() outcome) {
			var e errorEnvelope
			mustJSON(t, o.body, &e)
			if o.resp.StatusCode != 503 || o.resp.Header.Get("Retry-After") == "" || e.Error.Type != "server_error" {
				t.Errorf("got %d %s", o.resp.StatusCode, o.body)
			}
		}},
		{"status 429 on a stream request answers JSON", Knobs{Status: 429}, PathChat, chatStream, func(t *testing.T, s *sim, o outcome, _ func() outcome) {
			var e errorEnvelope
			mustJSON(t, o.body, &e)
			if o.resp.StatusCode != 429 || e.Error.Code == nil || *e.Error.Code != "rate_limit_exceeded" {
				t.Errorf("got %d %s", o.resp.StatusCode, o.body)
			}
		}},
		{"finish_reason", Knobs{FinishReason: "content_filter"}, PathChat, chatBody, func(t *testing.T, s *sim, o outcome, _ func() outcome) {
			var c ChatCompletion
			mustJSON(t, o.body, &c)
			if c.Choices[0].FinishReason != "content_filter" {
				t.Errorf("finish_reason = %q", c.Choices[0].FinishReason)
			}
		}},
		{"finish_reason stream", Knobs{FinishReason: "length"}, PathChat, chatStream, func(t *testing.T, s *sim, o outcome, _ func() outcome) {
			if !bytes.Contains(o.body, []byte(`"finish_reason":"length"`)) {
				t.Errorf("stream = %s", o.body)
			}
		}},
		{"finish_reason legacy", Knobs{FinishReason: "length"}, PathCompletions, complBody, func(t *testing.T, s *sim, o outcome, _ func() outcome) {
			if !bytes.Contains(o.body, []byte(`"finish_reason":"length"`)) {
				t.Errorf("completion = %s", o.body)
			}
		}},
		{"cache_control", Knobs{CacheControl: "no-store"}, PathChat, chatBody, func(t *testing.T, s *sim, o outcome, _ func() outcome) {
			okStatus(t, o)
			if got := o.resp.Header.Get("Cache-Control"); got != "no-store" {
				t.Errorf("Cache-Control = %q", got)
			}
		}},
		{"score", Knobs{Score: 0.95}, PathClassify, `{"model":"clf","input":"plain"}`, func(t *testing.T, s *sim, o outcome, _ func() outcome) {
			var c Classification
			mustJSON(t, o.body, &c)
			if c.Score != 0.95 {
				t.Errorf("score = %v", c.Score)
			}
		}},
		{"model_version", Knobs{ModelVersion: "v5"}, PathChat, chatBody, func(t *testing.T, s *sim, o outcome, _ func() outcome) {
			if o.resp.Header.Get(HeaderModelVersion) != "v5" || !bytes.Equal(o.body, mustExpected(t, "v5", PathChat, chatBody)) {
				t.Errorf("got %s %s", o.resp.Header.Get(HeaderModelVersion), o.body)
			}
		}},
		{"latency", Knobs{LatencyMS: 20}, PathChat, chatBody, func(t *testing.T, s *sim, o outcome, do func() outcome) {
			start := time.Now()
			o = do()
			if d := time.Since(start); d < 20*time.Millisecond || o.err != nil {
				t.Errorf("answered in %v (%v), want >= 20ms", d, o.err)
			}
		}},
		{"chunk delay", Knobs{ChunkDelayMS: 2}, PathChat, chatStream, func(t *testing.T, s *sim, o outcome, do func() outcome) {
			start := time.Now()
			o = do()
			data, _ := sseData(t, o.body)
			if d, min := time.Since(start), time.Duration(len(data))*2*time.Millisecond; d < min {
				t.Errorf("stream took %v, want >= %v", d, min)
			}
		}},
		{"nondeterministic", Knobs{Nondeterministic: true}, PathChat, chatBody, func(t *testing.T, s *sim, o outcome, do func() outcome) {
			var a, b ChatCompletion
			mustJSON(t, o.body, &a)
			mustJSON(t, do().body, &b)
			if a.ID == b.ID || content(t, &a, 0) == content(t, &b, 0) || a.Created != fixed.Unix() {
				t.Errorf("answers should differ and carry the clock:\n%+v\n%+v", a, b)
			}
		}},
	}
	for _, tt := range tests {
		for _, mode := range []string{"global", "header"} {
			t.Run(tt.name+"/"+mode, func(t *testing.T) {
				s := newSim(t, Options{Now: func() time.Time { return fixed }})
				var hdr map[string]string
				if mode == "global" {
					if err := s.SetKnobs(tt.knobs); err != nil {
						t.Fatal(err)
					}
				} else {
					hdr = headersFor(tt.knobs)
				}
				do := func() outcome {
					resp, b, err := s.do(context.Background(), "POST", tt.path, tt.req, hdr)
					return outcome{resp, b, err}
				}
				tt.check(t, s, do(), do)
				if s.Calls(tt.path) == 0 {
					t.Error("faulted call not counted")
				}
			})
		}
	}
}

func TestTimeoutFault(t *testing.T) {
	t.Run("held until the client goes away", func(t *testing.T) {
		s := newSim(t, Options{})
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() {
			_, _, err := s.do(ctx, "POST", PathChat, chatBody, map[string]string{HeaderFault: "timeout"})
			done <- err
		}()
		wctx, wcancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer wcancel()
		if err := s.WaitInFlight(wctx, 1); err != nil {
			t.Fatal(err)
		}
		cancel()
		if err := <-done; !errors.Is(err, context.Canceled) {
			t.Errorf("client error = %v, want context.Canceled", err)
		}
		if err := s.WaitInFlight(wctx, 0); err != nil {
			t.Errorf("held call did not end after the client left: %v", err)
		}
	})
	t.Run("gives up after MaxHold with 504", func(t *testing.T) {
		s := newSim(t, Options{MaxHold: time.Millisecond})
		s.SetKnobs(Knobs{Fault: FaultTimeout}) //nolint:errcheck
		resp, b := s.post(t, PathChat, chatBody, nil)
		if resp.StatusCode != http.StatusGatewayTimeout || !json.Valid(b) {
			t.Errorf("got %d %s", resp.StatusCode, b)
		}
	})
}

func TestFailNext(t *testing.T) {
	const ok = "ok"
	tests := []struct {
		name  string
		knobs Knobs
		want  []string // per call: a status, "malformed", "error" (transport) or ok
	}{
		{"default status 500", Knobs{FailNext: 2}, []string{"500", "500", ok, ok}},
		{"configured status", Knobs{FailNext: 1, Status: 503}, []string{"503", ok, ok}},
		{"configured fault", Knobs{FailNext: 2, Fault: FaultMalformed}, []string{"malformed", "malformed", ok}},
		{"reset", Knobs{FailNext: 1, Fault: FaultReset}, []string{"error", ok}},
		{"without fail_next the fault stays", Knobs{Status: 502}, []string{"502", "502", "502"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := newSim(t, Options{})
			if err := s.SetKnobs(tt.knobs); err != nil {
				t.Fatal(err)
			}
			for i, want := range tt.want {
				resp, b, err := s.do(context.Background(), "POST", PathChat, chatBody, nil)
				got := ok
				switch {
				case err != nil:
					got = "error"
				case resp.StatusCode != 200:
					got = strconv.Itoa(resp.StatusCode)
				case !json.Valid(b):
					got = "malformed"
				}
				if got != want {
					t.Errorf("call %d: got %s, want %s (%s)", i, got, want, b)
				}
			}
			if k := s.Knobs(); tt.knobs.FailNext > 0 && (k.FailNext != 0 || k.Status != 0 || k.Fault != FaultNone) {
				t.Errorf("knobs after recovery = %+v", k)
			}
			if s.Calls(PathChat) != int64(len(tt.want)) {
				t.Errorf("calls = %d", s.Calls(PathChat))
			}
		})
	}
}

func TestBadSimHeaders(t *testing.T) {
	s := newSim(t, Options{})
	tests := []struct{ header, value string }{
		{HeaderLatency, "soon"},
		{HeaderLatency, "-5"},
		{HeaderChunkDelay, "-1ms"},
		{HeaderStatus, "200"},
		{HeaderStatus, "boom"},
		{HeaderFault, "explode"},
		{HeaderScore, "2"},
		{HeaderScore, "0"},
		{HeaderNondeterministic, "maybe"},
		{HeaderSimModelVersion, ""},
	}
	for _, tt := range tests {
		t.Run(tt.header+"="+tt.value, func(t *testing.T) {
			resp, b := s.post(t, PathChat, chatBody, map[string]string{tt.header: tt.value})
			if resp.StatusCode != http.StatusBadRequest || !strings.Contains(string(b), tt.header) {
				t.Errorf("got %d %s, want 400 naming %s", resp.StatusCode, b, tt.header)
			}
		})
	}
}

func TestKnobsValidate(t *testing.T) {
	tests := []struct {
		name  string
		knobs Knobs
		field string // "" when valid
	}{
		{"zero", Knobs{}, ""},
		{"everything", Knobs{ModelVersion: "v2", LatencyMS: 1, ChunkDelayMS: 1, Status: 503, Fault: FaultTruncate,
			FailNext: 3, FinishReason: "length", CacheControl: "no-store", Score: 0.3, Nondeterministic: true}, ""},
		{"version with newline", Knobs{ModelVersion: "v1\r\nx: y"}, "model_version"},
		{"negative latency", Knobs{LatencyMS: -1}, "latency_ms"},
		{"negative chunk delay", Knobs{ChunkDelayMS: -1}, "chunk_delay_ms"},
		{"status 200", Knobs{Status: 200}, "status"},
		{"status 600", Knobs{Status: 600}, "status"},
		{"unknown fault", Knobs{Fault: "boom"}, "fault"},
		{"negative fail_next", Knobs{FailNext: -1}, "fail_next"},
		{"finish reason with space", Knobs{FinishReason: "a b"}, "finish_reason"},
		{"cache control with newline", Knobs{CacheControl: "a\nb"}, "cache_control"},
		{"score > 1", Knobs{Score: 1.5}, "score"},
		{"score too small", Knobs{Score: 0.001}, "score"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.knobs.Validate()
			if (err == nil) != (tt.field == "") || (err != nil && !strings.HasPrefix(err.Error(), tt.field+":")) {
				t.Errorf("Validate() = %v, want field %q", err, tt.field)
			}
		})
	}
}

func TestControlAPI(t *testing.T) {
	s := newSim(t, Options{Defaults: Knobs{ModelVersion: "v7"}})

	s.post(t, PathEmbeddings, embedBody, nil)
	s.post(t, PathChat, chatBody, nil)
	var raw map[string]json.RawMessage
	if code := s.control(t, "GET", PathStats, "", &raw); code != 200 {
		t.Fatalf("stats status %d", code)
	}
	for _, key := range []string{"total", "by_path", "in_flight", "max_in_flight", "embedding_calls", "model_version", "knobs"} {
		if _, ok := raw[key]; !ok {
			t.Errorf("stats lacks %q", key)
		}
	}
	var st Stats
	s.control(t, "GET", PathStats, "", &st)
	if st.Total != 2 || st.ByPath[PathChat] != 1 || st.ByPath[PathEmbeddings] != 1 || len(st.ByPath) != len(ModelPaths) ||
		len(st.EmbeddingCalls) != 1 || strings.Join(st.EmbeddingCalls[0].Items, "|") != "alpha|beta gamma" ||
		st.ModelVersion != "v7" || st.MaxInFlight != 1 || st.InFlight != 0 {
		t.Errorf("stats = %+v", st)
	}

	t.Run("partial update", func(t *testing.T) {
		s.SetKnobs(Knobs{Fault: FaultEmpty, CacheControl: "no-store"}) //nolint:errcheck
		var k Knobs
		if code := s.control(t, "POST", PathConfig, `{"latency_ms":7,"model_version":"v8"}`, &k); code != 200 {
			t.Fatalf("status %d", code)
		}
		want := Knobs{ModelVersion: "v8", LatencyMS: 7, Fault: FaultEmpty, CacheControl: "no-store"}
		if k != want || s.Knobs() != want {
			t.Errorf("knobs = %+v, want %+v", k, want)
		}
		var got Knobs
		s.control(t, "GET", PathConfig, "", &got)
		if got != want {
			t.Errorf("GET config = %+v", got)
		}
		s.control(t, "POST", PathConfig, `{"model_version":""}`, &got)
		if got.ModelVersion != "v7" {
			t.Errorf("empty model_version should mean the default, got %q", got.ModelVersion)
		}
	})

	t.Run("invalid updates change nothing", func(t *testing.T) {
		before := s.Knobs()
		for _, body := range []string{`{"status":200}`, `{"fault":"boom"}`, `{"fualt":"reset"}`,
			`{"latency_ms":"5"}`, `{"latency_ms":9,"score":3}`, `not json`} {
			var e errorEnvelope
			if code := s.control(t, "POST", PathConfig, body, &e); code != 400 || e.Error.Message == "" {
				t.Errorf("%s: status %d, %+v", body, code, e)
			}
			if s.Knobs() != before {
				t.Errorf("%s changed knobs to %+v", body, s.Knobs())
			}
		}
	})

	t.Run("fail_next via config", func(t *testing.T) {
		s.SetKnobs(Knobs{}) //nolint:errcheck
		s.control(t, "POST", PathConfig, `{"fail_next":1}`, nil)
		if resp, _ := s.post(t, PathClassify, classBody, nil); resp.StatusCode != 500 {
			t.Errorf("first call %d, want 500", resp.StatusCode)
		}
		if resp, _ := s.post(t, PathClassify, classBody, nil); resp.StatusCode != 200 {
			t.Errorf("second call %d, want 200", resp.StatusCode)
		}
	})

	t.Run("pause and resume", func(t *testing.T) {
		s.control(t, "POST", PathPause, "", nil)
		done := make(chan int, 1)
		go func() {
			resp, _, err := s.do(context.Background(), "POST", PathChat, chatBody, nil)
			if err != nil {
				done <- 0
				return
			}
			done <- resp.StatusCode
		}()
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := s.WaitInFlight(ctx, 1); err != nil {
			t.Fatal(err)
		}
		s.control(t, "POST", PathResume, "", nil)
		if code := <-done; code != 200 {
			t.Errorf("resumed call status %d", code)
		}
	})

	t.Run("reset", func(t *testing.T) {
		s.SetKnobs(Knobs{ModelVersion: "v9", Status: 500, LatencyMS: 3}) //nolint:errcheck
		s.Pause()
		var st Stats
		if code := s.control(t, "POST", PathReset, "", &st); code != 200 {
			t.Fatalf("status %d", code)
		}
		if st.Total != 0 || len(st.EmbeddingCalls) != 0 || st.Knobs != (Knobs{ModelVersion: "v7"}) {
			t.Errorf("after reset: %+v", st)
		}
		resp, _ := s.post(t, PathChat, chatBody, nil) // would hang if still paused
		if resp.StatusCode != 200 || resp.Header.Get(HeaderModelVersion) != "v7" {
			t.Errorf("after reset: %d %s", resp.StatusCode, resp.Header.Get(HeaderModelVersion))
		}
	})

	t.Run("control calls are not model calls", func(t *testing.T) {
		s.ResetCounters()
		for range 3 {
			s.control(t, "GET", PathStats, "", nil)
		}
		if s.TotalCalls() != 0 {
			t.Errorf("control calls counted: %d", s.TotalCalls())
		}
	})
}

// TestWaitCalls checks the no-sleep waiting helpers that e2e tests use to
// line up coalescing scenarios.
func TestWaitCalls(t *testing.T) {
	s := newSim(t, Options{})
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	var wg sync.WaitGroup
	for range 3 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			s.do(context.Background(), "POST", PathEmbeddings, embedBody, nil) //nolint:errcheck
		}()
	}
	if err := s.WaitCalls(ctx, PathEmbeddings, 3); err != nil {
		t.Fatal(err)
	}
	if err := s.WaitCalls(ctx, "", 3); err != nil {
		t.Fatal(err)
	}
	wg.Wait()
	short, cancelShort := context.WithCancel(context.Background())
	cancelShort()
	if err := s.WaitCalls(short, PathChat, 1); !errors.Is(err, context.Canceled) {
		t.Errorf("WaitCalls on a cancelled context = %v", err)
	}
}

func TestScript(t *testing.T) {
	s := newSim(t, Options{})
	var seen string
	s.SetScript(func(w http.ResponseWriter, r *http.Request, body []byte) bool {
		seen = string(body)
		if r.Header.Get("x-pass") != "" {
			return false
		}
		w.Header().Set("content-type", "application/json")
		w.WriteHeader(200)
		w.Write([]byte(`{"scripted":true}`)) //nolint:errcheck
		return true
	})
	resp, b, err := s.do(context.Background(), "POST", PathChat, chatBody, nil)
	if err != nil || resp.StatusCode != 200 || string(b) != `{"scripted":true}` || seen != chatBody {
		t.Fatalf("scripted call: %v %v %s (script saw %q)", err, resp, b, seen)
	}
	resp, b, err = s.do(context.Background(), "POST", PathChat, chatBody, map[string]string{"x-pass": "1"})
	if err != nil || resp.StatusCode != 200 || !strings.Contains(string(b), "chat.completion") {
		t.Fatalf("script declined, model should answer: %v %v %s", err, resp, b)
	}
	s.SetScript(nil)
	if _, b, _ = s.do(context.Background(), "POST", PathChat, chatBody, nil); strings.Contains(string(b), "scripted") {
		t.Fatalf("script still answers after removal: %s", b)
	}
	if s.Calls(PathChat) != 3 {
		t.Errorf("calls = %d, want every scripted call counted", s.Calls(PathChat))
	}
}

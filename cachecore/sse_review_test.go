package cachecore

import (
	"bytes"
	"errors"
	"strings"
	"testing"
)

// fpStream is a chat stream whose chunks report system_fingerprint fp and
// end with finish reason finish.
func fpStream(fp, content, finish string) string {
	chunk := func(delta, fr string) string {
		return `{"id":"c1","object":"chat.completion.chunk","model":"m","system_fingerprint":"` + fp +
			`","choices":[{"index":0,"delta":` + delta + `,"finish_reason":` + fr + `}]}`
	}
	// Azure OpenAI opens every stream with a chunk of prompt filter
	// results that carries no system_fingerprint.
	azure := sseEvent(`{"choices":[],"created":0,"id":"","model":"","object":"","prompt_filter_results":[{"prompt_index":0,"content_filter_results":{}}]}`)
	return azure + sseEvent(chunk(`{"role":"assistant","content":`+quote(content)+`}`, "null")) +
		sseEvent(chunk(`{}`, `"`+finish+`"`)) + sseEvent("[DONE]")
}

func streamReq(prompt string) string {
	return `{"model":"m","stream":true,"messages":[{"role":"user","content":` + quote(prompt) + `}]}`
}

// README (model_version): "an answer the cache does not store, of a status
// the route caches, switches the version too". A refused JSON answer does
// (TestANewVersionInARefusedAnswerRetiresItsPredecessor); a refused
// *streamed* answer on a body_path route does not always: noteVersion reads
// body_path from the raw event-stream bytes, where gjson finds only the
// first event's JSON. An Azure OpenAI stream opens with a
// prompt_filter_results chunk without system_fingerprint, so the new
// fingerprint of the later chunks is never seen (a stored stream's version
// is read from its assembly, which has it), and the predecessor's entries
// stay served after the upstream said it runs another version.
func TestRefusedStreamReportingANewVersionRetiresItsPredecessor(t *testing.T) {
	env := newEnv(t, testConfig)
	req, _ := env.lookup("fingerprinted", bob, streamReq("A"))
	env.fill(req, sseCT, fpStream("fp_v1", "v1's answer", "stop"), 10)

	other, d := env.lookup("fingerprinted", alice, streamReq("B"))
	if d != Forward {
		t.Fatal(d)
	}
	st := env.cache.AdmitAndStore(other, 200, sseCT, []byte(fpStream("fp_v2", "v2's answer, cut", "length")), OriginUpstream, 10)
	if st.Reason != ReasonFinishReason {
		t.Fatalf("setup: the v2 stream was not refused for its finish_reason: %v", st.Reason)
	}
	r, d := env.lookup("fingerprinted", bob, streamReq("A"))
	if d == Serve {
		_, _, body := env.cache.HitResponse(r)
		if bytes.Contains(body, []byte("v1's answer")) {
			t.Errorf("the upstream streamed system_fingerprint fp_v2 (answer refused: %s), yet fp_v1's stream is still served", st.Reason)
		}
	}
}

// README (Streaming): "stream_options" is part of the key — a stream with
// include_usage ends in a usage chunk (choices: []) that a client which did
// not ask for it may not expect — "even when key_fields leaves them out".
// "stream" itself stays keyed whatever ignore_fields says (the S/N byte of
// buildKey), but "stream_options" in ignore_fields is accepted silently and
// drops it from the key: a stream stored for include_usage:true is then
// replayed, usage chunk included, to a client that did not ask for usage.
// Either the config must be refused at start, or the key must keep it.
func TestIgnoredStreamOptionsStillSplitsTheKey(t *testing.T) {
	cfg := `{"routes":[{"name":"chat","kind":"chat","path_prefix":"/v1","ignore_fields":["user","stream_options"]}]}`
	c, err := ParseConfig([]byte(cfg))
	if err != nil {
		return // refused at start: fine
	}
	env := &testEnv{t: t, clock: newFakeClock(), store: NewMemStore()}
	env.cache = New(c, Options{Store: env.store, Now: env.clock.Now, Rand: seededRand(1)})
	withUsage := `{"model":"m","stream":true,"stream_options":{"include_usage":true},"messages":[{"role":"user","content":"hi"}]}`
	without := `{"model":"m","stream":true,"messages":[{"role":"user","content":"hi"}]}`
	req, _ := env.lookup("chat", alice, withUsage)
	usageChunk := sseEvent(`{"id":"c1","object":"chat.completion.chunk","model":"m","choices":[],"usage":{"prompt_tokens":1,"completion_tokens":2,"total_tokens":3}}`)
	env.fill(req, sseCT, goodStream(usageChunk), 10)
	r, d := env.lookup("chat", alice, without)
	if d == Serve {
		_, _, body := env.cache.HitResponse(r)
		if strings.Contains(string(body), `"usage"`) {
			t.Errorf("a stream:true request without stream_options was served the include_usage stream (usage chunk included): %s", body)
		}
	}
}

// chunkReader is a Reader whose response body reads fail while fail is set.
type chunkReader struct {
	fakeReader
	fail bool
}

func (r *chunkReader) ResponseBody(int) ([]byte, error) {
	if r.fail {
		return nil, errors.New("host: buffer unreadable")
	}
	return r.respBody, nil
}

// Stats are truthful and internal faults fail open: a chunk of an event
// stream the host cannot read is an internal fault (a held or copied
// answer whose body cannot be read is refused with ReasonInternal and
// counted as one), yet Stream.record marks the recording "dropped", which
// CompleteStream reports as refused.too_large (and the lead ends as
// uncacheable: hit-for-miss for the key) for a small answer.
func TestUnreadableStreamChunkIsAnInternalFaultNotTooLarge(t *testing.T) {
	e := newStreamEnv(t)
	var s Stream
	body := streamReq("q")
	v, acts := s.Begin(e.c, e.c.routeByName("chat"), "POST", "/v1/chat/completions", e.headers(body), false, e.hold.Holdable(), 1, 1)
	if v != Pause || len(acts) != 0 {
		t.Fatalf("headers: verdict %d actions %s", v, streamActs(acts))
	}
	if _, acts = s.RequestBody(len(body), true, &fakeReader{reqBody: []byte(body)}, &e.hold); !strings.Contains(streamActs(acts), "forward(miss") {
		t.Fatalf("not a miss: %s", streamActs(acts))
	}
	stream := goodStream("")
	rd := &chunkReader{fakeReader: fakeReader{respHeaders: append([][2]string{{":status", "200"}}, sseCT...)}}
	if _, acts = s.ResponseHeaders(false, rd); s.phase != phaseStreaming {
		t.Fatalf("not streaming: %s", streamActs(acts))
	}
	var got []string
	half := len(stream) / 2
	rd.respBody, rd.fail = []byte(stream[:half]), true // the host fails to read this chunk
	_, acts = s.ResponseBody(half, false, rd)
	got = append(got, streamActs(acts))
	rd.respBody, rd.fail = []byte(stream[half:]), false
	_, acts = s.ResponseBody(len(stream)-half, true, rd)
	got = append(got, streamActs(acts))
	all := strings.Join(got, " ")
	if strings.Contains(all, "refused(too_large)") || !strings.Contains(all, "refused(internal)") {
		t.Errorf("a %d-byte stream with an unreadable chunk (max_entry_bytes %d) was refused as: %s; want refused(internal)",
			len(stream), e.c.routeByName("chat").MaxEntryBytes, all)
	}
}

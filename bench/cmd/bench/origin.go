package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"hash/fnv"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// The origin is the "model server" behind every proxy: a tiny net/http
// server in this process (so on CPU1, with wrk). It answers every POST with
// a fixed chat completion, chosen and shaped by path segments, so the same
// request works unchanged through Envoy, nginx and Varnish:
//
//	/16k/     the 16 KiB answer (default 1 KiB)
//	/dNNN/    wait NNN ms before answering (coalescing, refresh cost)
//	/nostore/ add cache-control: no-store (an uncacheable answer)
//
// It counts calls per first path segment, with their times, so scenarios
// can tell how many requests reached the "model".
type origin struct {
	ln       net.Listener
	srv      *http.Server
	Port     int
	payloads map[string][]byte

	mu    sync.Mutex
	calls map[string]*callLog
	total atomic.Int64
}

type callLog struct {
	n     int64
	calls []call // kept for the prefixes in timedPrefixes
}

// call is one origin call: when, which request body (FNV-1a) and, for
// embeddings, how many input items it carried.
type call struct {
	At    time.Time
	Key   uint64
	Items int
}

// timedPrefixes are the scenarios whose calls are logged one by one.
var timedPrefixes = map[string]bool{"coalesce": true, "swr": true, "xfetch": true, "fixed": true, "embed": true, "embedwhole": true}

func startOrigin(payloadDir string) (*origin, error) {
	o := &origin{payloads: map[string][]byte{}, calls: map[string]*callLog{}}
	for _, size := range []string{"1k", "16k"} {
		b, err := os.ReadFile(filepath.Join(payloadDir, "chat-"+size+".json"))
		if err != nil {
			return nil, err
		}
		o.payloads[size] = b
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	o.ln = ln
	o.Port = ln.Addr().(*net.TCPAddr).Port
	o.srv = &http.Server{Handler: o, ReadHeaderTimeout: 10 * time.Second, IdleTimeout: 5 * time.Minute}
	go o.srv.Serve(ln)
	return o, nil
}

func (o *origin) Close() { o.srv.Close() }

func (o *origin) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	p := r.URL.Path
	size, delay, nostore := "1k", 0, false
	first := ""
	for i, seg := range strings.Split(strings.Trim(p, "/"), "/") {
		if i == 0 {
			first = seg
		}
		switch {
		case seg == "16k":
			size = "16k"
		case seg == "nostore":
			nostore = true
		case len(seg) > 1 && seg[0] == 'd' && isDigits(seg[1:]):
			delay, _ = strconv.Atoi(seg[1:])
		}
	}
	var key uint64
	var body []byte
	if timedPrefixes[first] {
		body, _ = io.ReadAll(r.Body)
		h := fnv.New64a()
		h.Write(body)
		key = h.Sum64()
	} else {
		_, _ = io.Copy(io.Discard, r.Body)
	}
	if first == "warm" {
		w.WriteHeader(204)
		return
	}
	if strings.HasPrefix(first, "embed") {
		o.embeddings(w, first, key, body)
		return
	}
	o.count(first, key, 0)
	if delay > 0 {
		time.Sleep(time.Duration(delay) * time.Millisecond)
	}
	h := w.Header()
	h["Content-Type"] = []string{"application/json"}
	if nostore {
		h["Cache-Control"] = []string{"no-store"}
	}
	answer := o.payloads[size]
	h["Content-Length"] = []string{strconv.Itoa(len(answer))}
	_, _ = w.Write(answer)
}

func isDigits(s string) bool {
	for _, c := range s {
		if c < '0' || c > '9' {
			return false
		}
	}
	return s != ""
}

func (o *origin) count(prefix string, key uint64, items int) {
	o.total.Add(1)
	o.mu.Lock()
	c := o.calls[prefix]
	if c == nil {
		c = &callLog{}
		o.calls[prefix] = c
	}
	c.n++
	if timedPrefixes[prefix] {
		c.calls = append(c.calls, call{time.Now(), key, items})
	}
	o.mu.Unlock()
}

// Calls is how many requests under /prefix/ reached the origin.
func (o *origin) Calls(prefix string) int64 {
	o.mu.Lock()
	defer o.mu.Unlock()
	if c := o.calls[prefix]; c != nil {
		return c.n
	}
	return 0
}

// CallsBetween returns the calls under /prefix/ in [from, to), in order
// (only for timedPrefixes).
func (o *origin) CallsBetween(prefix string, from, to time.Time) []call {
	o.mu.Lock()
	defer o.mu.Unlock()
	var out []call
	if c := o.calls[prefix]; c != nil {
		for _, x := range c.calls {
			if !x.At.Before(from) && x.At.Before(to) {
				out = append(out, x)
			}
		}
	}
	return out
}

// embeddings answers an OpenAI embeddings request: one deterministic
// vector per input item (a pure function of the item), embDims wide.
func (o *origin) embeddings(w http.ResponseWriter, prefix string, key uint64, body []byte) {
	b, items, err := embeddingAnswer(body)
	if err != nil {
		http.Error(w, `{"error":{"message":"bad embeddings request"}}`, 400)
		return
	}
	o.count(prefix, key, items)
	h := w.Header()
	h["Content-Type"] = []string{"application/json"}
	h["Content-Length"] = []string{strconv.Itoa(len(b))}
	_, _ = w.Write(b)
}

// embeddingAnswer is the origin's answer to an embeddings request: one
// vector per input item, a pure function of the item.
func embeddingAnswer(body []byte) ([]byte, int, error) {
	var req struct {
		Model string   `json:"model"`
		Input []string `json:"input"`
	}
	if err := json.Unmarshal(body, &req); err != nil || len(req.Input) == 0 {
		return nil, 0, fmt.Errorf("bad embeddings request")
	}
	var b []byte
	b = append(b, `{"object":"list","data":[`...)
	for i, item := range req.Input {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, `{"object":"embedding","index":`...)
		b = strconv.AppendInt(b, int64(i), 10)
		b = append(b, `,"embedding":`...)
		h := fnv.New64a()
		h.Write([]byte(item))
		b = append(b, embVectors()[h.Sum64()%uint64(len(embVectors()))]...)
		b = append(b, '}')
	}
	b = append(b, `],"model":"`...)
	b = append(b, req.Model...)
	b = append(b, `","usage":{"prompt_tokens":`...)
	b = strconv.AppendInt(b, int64(len(req.Input)), 10)
	b = append(b, `,"total_tokens":`...)
	b = strconv.AppendInt(b, int64(len(req.Input)), 10)
	b = append(b, "}}"...)
	return b, len(req.Input), nil
}

// embDims is the width of the origin's embedding vectors.
const embDims = 64

// embVectors are 64 precomputed vectors (JSON arrays); an item's vector is
// one of them, picked by its hash — a pure function of the item that costs
// the origin (on the load generator's CPU) nothing to compute.
var embVectors = sync.OnceValue(func() [][]byte {
	out := make([][]byte, 64)
	x := uint64(0x9e3779b97f4a7c15)
	for k := range out {
		b := []byte{'['}
		for d := 0; d < embDims; d++ {
			x ^= x << 13
			x ^= x >> 7
			x ^= x << 17
			if d > 0 {
				b = append(b, ',')
			}
			b = strconv.AppendFloat(b, float64(int64(x>>11)-(1<<52))/(1<<52), 'f', 8, 64)
		}
		out[k] = append(b, ']')
	}
	return out
})

// embeddingRequest is a batch of n input items: the first `cached` are
// fixed strings (shared by every request), the rest contain N0NCE, which
// the wrk script replaces to make them new on every request.
func embeddingRequest(n, cached int) []byte {
	var b strings.Builder
	b.WriteString(`{"model":"bench-embed","input":[`)
	for i := 0; i < n; i++ {
		if i > 0 {
			b.WriteByte(',')
		}
		if i < cached {
			fmt.Fprintf(&b, `"a shared passage about shipping policies and return windows, chunk %02d"`, i)
		} else {
			fmt.Fprintf(&b, `"a new passage about order status N0NCE, chunk %02d"`, i)
		}
	}
	b.WriteString(`],"encoding_format":"float"}`)
	return []byte(b.String())
}

// ---- payloads ----

// The answers are committed under bench/payloads (Envoy's direct_response
// in envoy/bench/direct.yaml serves the same files) and regenerated here
// deterministically, so the files and the code can never disagree.

// chatPayload is an OpenAI-style chat completion of exactly size bytes,
// with finish_reason "stop", so the filter's chat route admits it.
func chatPayload(size int) []byte {
	head := `{"id":"chatcmpl-bench","object":"chat.completion","created":1767225600,"model":"bench-chat",` +
		`"choices":[{"index":0,"message":{"role":"assistant","content":"`
	tail := `"},"finish_reason":"stop"}],"usage":{"prompt_tokens":412,"completion_tokens":%d,"total_tokens":%d}}`
	words := []string{"lorem", "ipsum", "dolor", "sit", "amet,", "consectetur", "adipiscing", "elit,", "sed", "do"}
	for tokens := size / 6; ; tokens-- {
		t := fmt.Sprintf(tail, tokens, tokens+412)
		room := size - len(head) - len(t)
		var b bytes.Buffer
		for i := 0; b.Len() < room; i++ {
			if b.Len() > 0 {
				b.WriteByte(' ')
			}
			b.WriteString(words[i%len(words)])
		}
		content := b.Bytes()
		if len(content) > room {
			content = content[:room]
		}
		if len(content) > 0 && content[len(content)-1] == ' ' {
			content[len(content)-1] = '.'
		}
		out := []byte(head + string(content) + t)
		if len(out) == size {
			return out
		}
	}
}

// chatRequest is the benchmark's request: a 1.7 KB chat request (the size
// perf-anchors B8 measured), varied by nonce so scenarios can make new keys.
func chatRequest(nonce string) []byte {
	return []byte(`{"model":"bench-chat","temperature":0.2,"top_p":1,"max_tokens":256,` +
		`"messages":[{"role":"system","content":"You are a careful assistant that answers questions about shipping policies, returns, and order status. Answer briefly and cite the policy section when you can."},` +
		`{"role":"user","content":"` + strings.Repeat("Where is my order #12345? It was supposed to arrive on Monday. ", 18) + `"},` +
		`{"role":"assistant","content":"Let me check that for you."},{"role":"user","content":"Thanks, please also tell me the return window. ` + nonce + `"}],` +
		`"response_format":{"type":"text"},"seed":7}`)
}

// writePayloads (re)writes bench/payloads when a file differs from the code.
func writePayloads(dir string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	files := map[string][]byte{
		"chat-1k.json":      chatPayload(1024),
		"chat-16k.json":     chatPayload(16384),
		"request.json":      chatRequest("N0NCE"),
		"embed-64.json":     embeddingRequest(64, 32),
		"embed-64-new.json": embeddingRequest(64, 0),
		"embed-64-all.json": embeddingRequest(64, 64),
	}
	for name, want := range files {
		p := filepath.Join(dir, name)
		if have, err := os.ReadFile(p); err == nil && bytes.Equal(have, want) {
			continue
		}
		if err := os.WriteFile(p, want, 0o644); err != nil {
			return err
		}
	}
	return nil
}

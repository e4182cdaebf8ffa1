package e2e

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// Hostile clients, on real Envoy --concurrency 2, organised by attack:
// nesting, typed numbers, duplicate keys, hostile headers, sizes, floods,
// and authorities. After every attack: nothing leaked between tenants,
// nothing poisoned is served, the VM lives (a normal request misses, then
// hits), and Envoy's log shows no panic and no RangeError.

const hostileRoutes = `{
  "upstream_cluster": "model",
  "routes": [
    {"name": "chat", "kind": "chat", "path_prefix": "/v1/chat/completions", "ttl": "10m"},
    {"name": "emb", "kind": "embeddings", "path_prefix": "/v1/embeddings", "ttl": "1h"}
  ],
  "store": {"buckets": 64, "ways": 4, "max_entry_bytes": 262144},
  "purge": {"path": "/modelcache/purge", "token": "hostile-purge-token-0123"}
}`

const chatPath = "/v1/chat/completions"

// survivor checks what every attack must leave intact: the VM answers a
// fresh request with a miss and then a hit, on both workers' connections,
// and the log has no crash.
func survivor(t *testing.T, e *envoyProc, tag string) {
	t.Helper()
	body := chat("survivor after " + tag)
	first := do(t, "POST", e.URL+chatPath, body, "authorization", "Bearer survivor")
	expectCS(t, first, "fwd=miss", "stored")
	second := do(t, "POST", e.URL+chatPath, body, "authorization", "Bearer survivor")
	expectCS(t, second, "hit")
	noCrash(t, e)
}

func noCrash(t *testing.T, e *envoyProc) {
	t.Helper()
	log := e.Log()
	for _, bad := range []string{"RangeError", "panic", "wasm_fail", "Uncaught", "failed to run"} {
		if strings.Contains(log, bad) {
			t.Fatalf("Envoy log contains %q", bad)
		}
	}
	if n := e.Stat("wasmcustom.modelcache.panics"); n != 0 {
		t.Fatalf("panics = %d", n)
	}
}

// victim stores one answer for tenant "victim" and returns a check that
// it is still served to the victim and never to anyone else.
func victim(t *testing.T, e *envoyProc) func() {
	t.Helper()
	body := chat("the victim's private question")
	first := do(t, "POST", e.URL+chatPath, body, "authorization", "Bearer victim")
	expectCS(t, first, "fwd=miss", "stored")
	return func() {
		t.Helper()
		again := do(t, "POST", e.URL+chatPath, body, "authorization", "Bearer victim")
		expectCS(t, again, "hit")
		other := do(t, "POST", e.URL+chatPath, body, "authorization", "Bearer attacker")
		if strings.Contains(other.CacheStatus(), "hit") {
			t.Fatalf("another tenant got the victim's entry: %q", other.CacheStatus())
		}
	}
}

// --- nesting ---------------------------------------------------------------

func TestHostileClientNesting(t *testing.T) {
	e := startEnvoy(t, envoyOpts{Config: hostileRoutes})
	check := victim(t, e)
	for _, depth := range []int{65, 1000, 10000, 50000} {
		nested := strings.Repeat("[", depth) + strings.Repeat("]", depth)
		for _, tc := range []struct{ name, path, body string }{
			{"chat", chatPath, `{"model":"sim-chat","messages":[{"role":"user","content":"n"}],"x":` + nested + `}`},
			{"chat-message", chatPath, `{"model":"sim-chat","messages":[{"role":"user","content":` + nested + `}]}`},
			{"embeddings", "/v1/embeddings", `{"model":"sim-embed","input":` + nested + `}`},
		} {
			t.Run(fmt.Sprint(tc.name, depth), func(t *testing.T) {
				want := "detail=too-deep"
				if len(tc.body) > 131072 {
					want = "detail=body-too-large"
				}
				for i := 0; i < 2; i++ { // never stored: the second is no hit
					r := do(t, "POST", e.URL+tc.path, tc.body, "authorization", "Bearer attacker")
					expectCS(t, r, "fwd=bypass", want)
				}
			})
		}
	}
	check()
	survivor(t, e, "nesting")
}

// --- typed numbers ---------------------------------------------------------

// Issue 13 item 8: an integer and a non-integer spelling of the same value
// are different requests to a typed model server (2.0 is not an int).
func TestHostileClientTypedNumbersAreDistinctKeys(t *testing.T) {
	e := startEnvoy(t, envoyOpts{Config: hostileRoutes})
	check := victim(t, e)
	chatWith := func(field string) string {
		return `{"model":"sim-chat","messages":[{"role":"user","content":"count to three"}],` + field + `}`
	}
	stored := do(t, "POST", e.URL+chatPath, chatWith(`"n":2`), "authorization", "Bearer t")
	expectCS(t, stored, "fwd=miss", "stored")
	for _, spelling := range []string{`"n":2.0`, `"n":20e-1`, `"n":0.2e1`, `"n":2E0`, `"n":2.00`} {
		r := do(t, "POST", e.URL+chatPath, chatWith(spelling), "authorization", "Bearer t")
		if strings.Contains(r.CacheStatus(), "hit") {
			t.Fatalf("%s was served the entry of \"n\":2: %q", spelling, r.CacheStatus())
		}
		if r.Status != 400 {
			t.Fatalf("%s: the model answered %d (expected its 400 for a non-integer n)", spelling, r.Status)
		}
	}
	// Integer spellings that are the same integer still share the entry.
	again := do(t, "POST", e.URL+chatPath, chatWith(`"n":2`), "authorization", "Bearer t")
	expectCS(t, again, "hit")
	// Two float spellings of one value share theirs.
	tempA := do(t, "POST", e.URL+chatPath, chatWith(`"temperature":0.5`), "authorization", "Bearer t")
	expectCS(t, tempA, "fwd=miss", "stored")
	tempB := do(t, "POST", e.URL+chatPath, chatWith(`"temperature":5e-1`), "authorization", "Bearer t")
	expectCS(t, tempB, "hit")

	emb := func(extra string) string { return `{"model":"sim-embed","input":"typed"` + extra + `}` }
	r := do(t, "POST", e.URL+"/v1/embeddings", emb(`,"dimensions":4`), "authorization", "Bearer t")
	expectCS(t, r, "fwd=miss", "stored")
	r = do(t, "POST", e.URL+"/v1/embeddings", emb(`,"dimensions":4.0`), "authorization", "Bearer t")
	if strings.Contains(r.CacheStatus(), "hit") || r.Status == 200 && r.Header.Get("X-Modelcache-Cached-Items") != "" && !strings.HasPrefix(r.Header.Get("X-Modelcache-Cached-Items"), "0/") {
		t.Fatalf("dimensions 4.0 was served dimensions 4's vectors: %d %q", r.Status, r.CacheStatus())
	}
	tokens := func(arr string) string { return `{"model":"sim-embed","input":` + arr + `}` }
	r = do(t, "POST", e.URL+"/v1/embeddings", tokens(`[1,2,3]`), "authorization", "Bearer t")
	expectCS(t, r, "fwd=miss", "stored")
	r = do(t, "POST", e.URL+"/v1/embeddings", tokens(`[1.0,2,3]`), "authorization", "Bearer t")
	if strings.Contains(r.CacheStatus(), "hit") {
		t.Fatalf("token array [1.0,2,3] was served [1,2,3]'s vector: %q", r.CacheStatus())
	}
	check()
	survivor(t, e, "typed numbers")
}

// --- duplicate keys --------------------------------------------------------

func TestHostileClientDuplicateKeys(t *testing.T) {
	e := startEnvoy(t, envoyOpts{Config: hostileRoutes})
	check := victim(t, e)
	base := chat("duplicate keys")
	stored := do(t, "POST", e.URL+chatPath, base, "authorization", "Bearer attacker")
	expectCS(t, stored, "stored")
	for _, body := range []string{
		// Each has one reading equal to the stored request: never a hit.
		`{"model":"sim-chat","model":"other","messages":[{"role":"user","content":"duplicate keys"}]}`,
		`{"model":"other","messages":[{"role":"user","content":"duplicate keys"}],"model":"sim-chat"}`,
		`{"model":"sim-chat","messages":[{"role":"user","content":"duplicate keys","content":"something else"}]}`,
		`{"model":"sim-chat","messages":[{"role":"user","content":"duplicate keys"}],"m\u006fdel":"x"}`,
	} {
		r := do(t, "POST", e.URL+chatPath, body, "authorization", "Bearer attacker")
		expectCS(t, r, "fwd=bypass", "detail=duplicate-key")
	}
	check()
	survivor(t, e, "duplicate keys")
}

// --- hostile headers -------------------------------------------------------

func TestHostileClientHeaders(t *testing.T) {
	e := startEnvoy(t, envoyOpts{Config: hostileRoutes})
	check := victim(t, e)
	url := e.URL + chatPath
	t.Run("huge credentials stay distinct", func(t *testing.T) {
		big := "Bearer " + strings.Repeat("k", 32<<10)
		sibling := big[:len(big)-1] + "K"
		body := chat("huge credential")
		expectCS(t, do(t, "POST", url, body, "authorization", big), "fwd=miss", "stored")
		expectCS(t, do(t, "POST", url, body, "authorization", big), "hit")
		r := do(t, "POST", url, body, "authorization", sibling)
		expectCS(t, r, "fwd=miss")
	})
	t.Run("empty and blank identities bypass", func(t *testing.T) {
		for _, v := range []string{" ", "\t"} {
			r := do(t, "POST", url, chat("blank"), "authorization", v)
			expectCS(t, r, "fwd=bypass", "detail=no-identity")
		}
	})
	t.Run("credential case is not folded", func(t *testing.T) {
		body := chat("case")
		expectCS(t, do(t, "POST", url, body, "authorization", "Bearer CaseTenant"), "stored")
		r := do(t, "POST", url, body, "authorization", "Bearer casetenant")
		expectCS(t, r, "fwd=miss")
	})
	t.Run("many tenant headers", func(t *testing.T) {
		// The first configured identity header present decides; the others
		// cannot smuggle a request into another namespace.
		body := chat("many identities")
		expectCS(t, do(t, "POST", url, body, "authorization", "Bearer one", "x-api-key", "two"), "stored")
		r := do(t, "POST", url, body, "x-api-key", "Bearer one")
		expectCS(t, r, "fwd=miss")
		r = do(t, "POST", url, body, "authorization", "Bearer two", "x-api-key", "two")
		expectCS(t, r, "fwd=miss")
	})
	t.Run("odd cache-control", func(t *testing.T) {
		body := chat("odd cache control")
		expectCS(t, do(t, "POST", url, body, "authorization", "Bearer cc"), "stored")
		for _, cc := range []string{
			"max-age=abc", "max-age=-5", "max-stale=99999999999999999999", ",,,;;;", "no-cache=\"", "min-fresh=1e9",
			strings.Repeat("max-age=1, ", 2000), "MAX-AGE=0", "only-if-cached=yes",
		} {
			r := do(t, "POST", url, body, "authorization", "Bearer cc", "cache-control", cc)
			if r.Status != 200 && r.Status != 504 {
				t.Fatalf("cache-control %.40q: status %d", cc, r.Status)
			}
			if r.CacheStatus() == "" {
				t.Fatalf("cache-control %.40q: no Cache-Status", cc)
			}
		}
		r := do(t, "POST", url, body, "authorization", "Bearer cc", "cache-control", "no-store")
		expectCS(t, r, "fwd=bypass", "detail=request-no-store")
	})
	check()
	survivor(t, e, "headers")
}

// --- sizes -----------------------------------------------------------------

// bigChat is a cacheable chat request of about n bytes.
func bigChat(n int, tag string) string {
	return chat(tag + " " + strings.Repeat("x", n))
}

// Issue 13 item 4: cacheable requests over 1 MiB with a content-length
// never get a 413, although Envoy's buffer limit is 1 MiB: the filter
// decides from content-length at header time and holds nothing.
func TestHostileClientOversizedWithContentLength(t *testing.T) {
	e := startEnvoy(t, envoyOpts{Config: hostileRoutes})
	check := victim(t, e)
	body := bigChat(3<<19, "oversized") // 1.5 MiB
	before := e.Sim.Calls(chatPath)
	for i := 0; i < 10; i++ {
		r := do(t, "POST", e.URL+chatPath, body, "authorization", "Bearer big")
		if r.Status != 200 {
			t.Fatalf("try %d: status %d (%s), Cache-Status %q", i, r.Status, r.Body, r.CacheStatus())
		}
		expectCS(t, r, "fwd=bypass", "detail=body-too-large")
	}
	// The same, with the body's first bytes read apart from the rest, as a
	// client writing headers and body separately makes happen.
	b := []byte(body)
	for i := 0; i < 10; i++ {
		hdr := "POST " + chatPath + " HTTP/1.1\r\nHost: models\r\nContent-Type: application/json\r\n" +
			"Authorization: Bearer big\r\nContent-Length: " + strconv.Itoa(len(b)) + "\r\nConnection: close\r\n\r\n"
		res, out := rawPost(t, e.URL, hdr, 20*time.Millisecond, b[:100], b[100:])
		if res.StatusCode != 200 {
			t.Fatalf("raw try %d: status %d (%.200s), Cache-Status %q", i, res.StatusCode, out, res.Header.Get("Cache-Status"))
		}
		if cs := res.Header.Get("Cache-Status"); !strings.Contains(cs, "detail=body-too-large") {
			t.Fatalf("raw try %d: Cache-Status %q", i, cs)
		}
	}
	if n := e.Sim.Calls(chatPath) - before; n != 20 {
		t.Fatalf("%d of 20 requests reached the model", n)
	}
	check()
	survivor(t, e, "oversized")
}

// rawPost sends an HTTP/1.1 request over a fresh connection, part by
// part, and reads the response. Between parts it waits gap so that Envoy
// reads the parts separately (that interleaving is what the test needs;
// without the gap it merely tests another one).
func rawPost(t *testing.T, addr string, header string, gap time.Duration, parts ...[]byte) (*http.Response, []byte) {
	t.Helper()
	conn, err := net.Dial("tcp", strings.TrimPrefix(addr, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(60 * time.Second))
	if _, err := io.WriteString(conn, header); err != nil {
		t.Fatal(err)
	}
	for i, p := range parts {
		if i > 0 && gap > 0 {
			time.Sleep(gap)
		}
		if _, err := conn.Write(p); err != nil {
			t.Fatalf("writing part %d: %v", i, err)
		}
	}
	res, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatalf("reading response: %v", err)
	}
	b, _ := io.ReadAll(res.Body)
	res.Body.Close()
	return res, b
}

func httpChunk(b []byte) []byte {
	return append(append([]byte(strconv.FormatInt(int64(len(b)), 16)+"\r\n"), b...), "\r\n"...)
}

// chunkedHeader starts a chunked request; its Host is base's, as Go's
// client sends it, so the same request with a content-length shares keys.
func chunkedHeader(base, path, tenant string) string {
	return "POST " + path + " HTTP/1.1\r\nHost: " + strings.TrimPrefix(base, "http://") + "\r\nContent-Type: application/json\r\n" +
		"Authorization: Bearer " + tenant + "\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n"
}

// Issue 13 item 4, chunked: without a content-length the size is unknown
// at header time. A small first chunk, then one of 1.5 MiB: the held body
// must never make Envoy answer 413.
func TestHostileClientOversizedChunked(t *testing.T) {
	e := startEnvoy(t, envoyOpts{Config: hostileRoutes})
	check := victim(t, e)
	body := []byte(bigChat(3<<19, "chunked oversized"))
	before := e.Sim.Calls(chatPath)
	for i := 0; i < 10; i++ {
		res, b := rawPost(t, e.URL, chunkedHeader(e.URL, chatPath, "big"), 20*time.Millisecond,
			httpChunk(body[:100]), append(httpChunk(body[100:]), "0\r\n\r\n"...))
		if res.StatusCode != 200 {
			t.Fatalf("try %d: status %d (%.200s), Cache-Status %q", i, res.StatusCode, b, res.Header.Get("Cache-Status"))
		}
		if cs := res.Header.Get("Cache-Status"); !strings.Contains(cs, "fwd=bypass") || !strings.Contains(cs, "detail=body-too-large") {
			t.Fatalf("try %d: Cache-Status %q", i, cs)
		}
	}
	if n := e.Sim.Calls(chatPath) - before; n != 10 {
		t.Fatalf("%d of 10 requests reached the model", n)
	}
	check()
	survivor(t, e, "chunked oversized")
}

// A chunked body under max_request_bytes is still cached, however it is cut.
func TestHostileClientChunkedIsCached(t *testing.T) {
	e := startEnvoy(t, envoyOpts{Config: hostileRoutes})
	body := []byte(bigChat(60<<10, "chunked small"))
	send := func(cuts ...int) *http.Response {
		var parts [][]byte
		prev := 0
		for _, c := range append(cuts, len(body)) {
			parts = append(parts, httpChunk(body[prev:c]))
			prev = c
		}
		parts[len(parts)-1] = append(parts[len(parts)-1], "0\r\n\r\n"...)
		res, b := rawPost(t, e.URL, chunkedHeader(e.URL, chatPath, "chunky"), 5*time.Millisecond, parts...)
		if res.StatusCode != 200 {
			t.Fatalf("status %d: %.200s", res.StatusCode, b)
		}
		return res
	}
	if cs := send(10, 20000).Header.Get("Cache-Status"); !strings.Contains(cs, "fwd=miss") || !strings.Contains(cs, "stored") {
		t.Fatalf("first: %q", cs)
	}
	if cs := send(1, 2, 3, 40000).Header.Get("Cache-Status"); !strings.Contains(cs, "hit") {
		t.Fatalf("second: %q", cs)
	}
	// The same body with a content-length shares the entry.
	expectCS(t, do(t, "POST", e.URL+chatPath, string(body), "authorization", "Bearer chunky"), "hit")
	// An embeddings batch sent chunked, partly cached: every item is
	// answered, in order (the body cannot be rewritten: a full fetch).
	embURL := e.URL + "/v1/embeddings"
	expectCS(t, do(t, "POST", embURL, embBody([]string{"a", "b"}, ""), "authorization", "Bearer chunky"), "stored")
	whole := []byte(embBody([]string{"a", "b", "c", "d"}, ""))
	res, b := rawPost(t, e.URL, chunkedHeader(e.URL, "/v1/embeddings", "chunky"), 5*time.Millisecond,
		httpChunk(whole[:7]), append(httpChunk(whole[7:]), "0\r\n\r\n"...))
	if res.StatusCode != 200 {
		t.Fatalf("embeddings chunked: %d %s", res.StatusCode, b)
	}
	if got := embVectors(t, b); len(got) != 4 {
		t.Fatalf("embeddings chunked: %d vectors: %s", len(got), b)
	}
	expectCS(t, do(t, "POST", embURL, string(whole), "authorization", "Bearer chunky"), "hit")
	survivor(t, e, "chunked")
}

// Content-length lies and limits: a body shorter than announced, one
// longer, exactly max_request_bytes and one byte over.
func TestHostileClientContentLengthLies(t *testing.T) {
	e := startEnvoy(t, envoyOpts{Config: hostileRoutes})
	check := victim(t, e)
	body := chat("the victim's private question")
	hdr := func(cl int) string {
		return "POST " + chatPath + " HTTP/1.1\r\nHost: models\r\nContent-Type: application/json\r\n" +
			"Authorization: Bearer attacker\r\nContent-Length: " + strconv.Itoa(cl) + "\r\nConnection: close\r\n\r\n"
	}
	t.Run("longer than announced", func(t *testing.T) {
		// Envoy frames the body by content-length: the request is a prefix
		// (not JSON) and the rest is garbage on the connection.
		res, _ := rawPost(t, e.URL, hdr(len(body)-10), 0, []byte(body))
		if cs := res.Header.Get("Cache-Status"); strings.Contains(cs, "hit") {
			t.Fatalf("served from cache: %q", cs)
		}
	})
	t.Run("shorter than announced", func(t *testing.T) {
		conn, err := net.Dial("tcp", strings.TrimPrefix(e.URL, "http://"))
		if err != nil {
			t.Fatal(err)
		}
		io.WriteString(conn, hdr(len(body)+100)+body)
		conn.Close() // gives up mid-body
	})
	t.Run("exactly the limit and one over", func(t *testing.T) {
		pad := func(n int) string { // a chat body of exactly n bytes
			b := bigChat(0, "limit")
			return bigChat(n-len(b), "limit")
		}
		at := pad(131072)
		if len(at) != 131072 {
			t.Fatalf("padding: %d", len(at))
		}
		expectCS(t, do(t, "POST", e.URL+chatPath, at, "authorization", "Bearer limit"), "fwd=miss", "stored")
		expectCS(t, do(t, "POST", e.URL+chatPath, at, "authorization", "Bearer limit"), "hit")
		over := pad(131073)
		expectCS(t, do(t, "POST", e.URL+chatPath, over, "authorization", "Bearer limit"), "fwd=bypass", "detail=body-too-large")
	})
	check()
	survivor(t, e, "content-length lies")
}

// --- floods ----------------------------------------------------------------

func TestHostileClientFlood(t *testing.T) {
	e := startEnvoy(t, envoyOpts{Config: hostileRoutes})
	check := victim(t, e)
	memBefore := e.Stat("server.memory_allocated")
	var bad atomic.Int64
	parallel(3000, 16, func(i int) {
		r, err := tryDo(context.Background(), "POST", e.URL+chatPath, chat(fmt.Sprint("flood ", i)), "authorization", "Bearer flooder")
		if err != nil || r.Status != 200 {
			bad.Add(1)
		}
	})
	if bad.Load() != 0 {
		t.Fatalf("%d flood requests failed", bad.Load())
	}
	if n := e.WaitStat("wasmcustom.modelcache.entries", e.Stat("wasmcustom.modelcache.entries")); n > 64*4 {
		t.Fatalf("entries = %d, over the table's 256 slots", n)
	}
	if grew := e.Stat("server.memory_allocated") - memBefore; grew > 64<<20 {
		t.Fatalf("Envoy's memory grew by %d MiB over the flood", grew>>20)
	}
	// The victim's entry may have been evicted by the flood (that is the
	// table's capacity at work, see README "Limitations"), but never served
	// to the flooder; check() re-stores it if needed.
	body := chat("the victim's private question")
	r := do(t, "POST", e.URL+chatPath, body, "authorization", "Bearer flooder")
	if strings.Contains(r.CacheStatus(), "hit") {
		t.Fatalf("the flooder got the victim's entry")
	}
	do(t, "POST", e.URL+chatPath, body, "authorization", "Bearer victim")
	check()
	survivor(t, e, "flood")
}

// --- authorities -----------------------------------------------------------

// doHost is do with a Host header.
func doHost(t *testing.T, host, url, body string, headers ...string) *response {
	t.Helper()
	req, err := http.NewRequest("POST", url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Host = host
	req.Header.Set("Content-Type", "application/json")
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	res, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return &response{Status: res.StatusCode, Header: res.Header, Body: b}
}

// Issue 13 item 7: two virtual hosts may route one path to different model
// builds; an entry stored through one authority is never served through
// another, unless the route says share_authorities.
func TestHostileClientAuthorityIsInTheKey(t *testing.T) {
	e := startEnvoy(t, envoyOpts{Config: `{
  "upstream_cluster": "model",
  "routes": [
    {"name": "chat", "kind": "chat", "path_prefix": "/v1/chat/completions", "ttl": "10m"},
    {"name": "shared-hosts", "kind": "completions", "path_prefix": "/v1/completions", "share_authorities": true}
  ],
  "purge": {"path": "/modelcache/purge", "token": "hostile-purge-token-0123"}
}`})
	url := e.URL + chatPath
	body := chat("which build answers?")
	expectCS(t, doHost(t, "a.example", url, body, "authorization", "Bearer t"), "fwd=miss", "stored")
	expectCS(t, doHost(t, "b.example", url, body, "authorization", "Bearer t"), "fwd=miss")
	expectCS(t, doHost(t, "a.example", url, body, "authorization", "Bearer t"), "hit")
	expectCS(t, doHost(t, "A.Example", url, body, "authorization", "Bearer t"), "hit") // host names are case-insensitive
	expectCS(t, doHost(t, "a.example:8080", url, body, "authorization", "Bearer t"), "fwd=miss")

	// Purge by replay names the authority (or defaults to the purge's own).
	purge := func(h string, replay string) string {
		r := doHost(t, h, e.URL+"/modelcache/purge", replay, "authorization", "Bearer hostile-purge-token-0123")
		if r.Status != 200 {
			t.Fatalf("purge: %d %s", r.Status, r.Body)
		}
		return string(r.Body)
	}
	replay := `{"path":"/v1/chat/completions","headers":{"authorization":"Bearer t","host":"a.example"},"body":` + body + `}`
	if got := purge("admin.example", replay); !strings.Contains(got, `"freed":1`) {
		t.Fatalf("purge by replay with host: %s", got)
	}
	expectCS(t, doHost(t, "a.example", url, body, "authorization", "Bearer t"), "fwd=miss", "stored")
	replay = `{"path":"/v1/chat/completions","headers":{"authorization":"Bearer t"},"body":` + body + `}`
	if got := purge("a.example", replay); !strings.Contains(got, `"freed":1`) {
		t.Fatalf("purge by replay at the purge's own authority: %s", got)
	}

	// share_authorities: true merges them.
	shared, prompt := e.URL+"/v1/completions", `{"model":"c","prompt":"which build answers?"}`
	expectCS(t, doHost(t, "a.example", shared, prompt, "authorization", "Bearer t"), "fwd=miss", "stored")
	expectCS(t, doHost(t, "b.example", shared, prompt, "authorization", "Bearer t"), "hit")
	survivor(t, e, "authorities")
}

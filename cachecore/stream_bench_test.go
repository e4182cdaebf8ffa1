package cachecore

import (
	"strconv"
	"strings"
	"testing"
)

// Whole exchanges through Stream, as the filter drives them (filter/
// stream.go), against a MemStore: the paths of make bench's S2 and S4 rows
// without host calls, natively and (S12) under V8 and wazero.

// benchReader is the host's side of a Stream's reads.
type benchReader struct {
	body, respBody []byte
	respHeaders    [][2]string
}

func (r *benchReader) RequestBody(int) ([]byte, error)       { return r.body, nil }
func (r *benchReader) ResponseHeaders() ([][2]string, error) { return r.respHeaders, nil }
func (r *benchReader) ResponseBody(int) ([]byte, error)      { return r.respBody, nil }
func (r *benchReader) CodeDetails() string                   { return "via_upstream" }
func (r *benchReader) setBody(body string) *benchReader      { r.body = []byte(body); return r }
func (r *benchReader) answer(h [][2]string, b string) *benchReader {
	r.respHeaders, r.respBody = h, []byte(b)
	return r
}

// streamBench runs exchanges on one Cache as one VM does, one stream at a
// time, each recycled when it ends.
type streamBench struct {
	env   *testEnv
	route *Route
	hold  HoldState
	st    Stream
	id    uint32
}

func newStreamBench(b *testing.B) *streamBench {
	env := newEnv(b, `{"routes":[{"name":"pass","kind":"chat","path_prefix":"/pass/","ttl":"24h"}]}`)
	return &streamBench{env: env, route: env.route("pass")}
}

var benchHeaders = [][2]string{{":method", "POST"}, {":path", "/pass/v1/chat/completions"}, {":authority", "models"},
	{":scheme", "http"}, {"content-type", "application/json"}, {"authorization", "Bearer sk-alice"},
	{"user-agent", "bench"}, {"accept", "*/*"}}

// exchange runs one request: headers held, body read, then either served
// from the cache (served) or forwarded and answered by rd's response.
func (sb *streamBench) exchange(b *testing.B, headers [][2]string, rd *benchReader) (served bool) {
	sb.st = Stream{}
	sb.id++
	s, c := &sb.st, sb.env.cache
	v, acts := s.Start(c, sb.route, "POST", "/pass/v1/chat/completions", headers, false, &sb.hold, 1, sb.id)
	if v == Pause {
		v, acts = s.RequestBody(len(rd.body), true, rd, &sb.hold)
	}
	for i := range acts {
		if a := &acts[i]; a.Kind == ActServeEntry || a.Kind == ActServeLocal {
			s.Served(a)
			served = true
		}
	}
	if !served {
		s.ResponseHeaders(false, rd)
		s.ResponseBody(len(rd.respBody), true, rd)
	}
	s.Done(rd)
	s.Recycle()
	return served
}

// BenchmarkStreamHit: a 1 KiB hit on a 1.7 KB request sent again.
func BenchmarkStreamHit(b *testing.B) {
	sb := newStreamBench(b)
	rd := (&benchReader{}).setBody(sampleChatRequest).answer(hdr(":status", "200", "content-type", "application/json"), chatResponse(strings.Repeat("x", 900)))
	sb.exchange(b, benchHeaders, rd)
	b.ReportAllocs()
	for b.Loop() {
		if !sb.exchange(b, benchHeaders, rd) {
			b.Fatal("miss")
		}
	}
}

// BenchmarkStreamUncacheableMiss: a new 1.7 KB request each time whose
// answer says no-store (S4's "miss, answer uncacheable").
func BenchmarkStreamUncacheableMiss(b *testing.B) {
	sb := newStreamBench(b)
	rd := (&benchReader{}).answer(hdr(":status", "200", "content-type", "application/json", "cache-control", "no-store"), chatResponse("fresh"))
	rd.setBody(strings.Replace(sampleChatRequest, `"seed":7`, `"seed":1000000000`, 1))
	seed := rd.body[len(rd.body)-len(`1000000000}`) : len(rd.body)-1]
	n := 1000000000
	b.ReportAllocs()
	for b.Loop() {
		n++
		strconv.AppendInt(seed[:0], int64(n), 10) // a new key, in place
		if sb.exchange(b, benchHeaders, rd) {
			b.Fatal("hit")
		}
	}
}

// BenchmarkStreamBypass: a request with Cache-Control: no-store.
func BenchmarkStreamBypass(b *testing.B) {
	sb := newStreamBench(b)
	headers := append(append([][2]string(nil), benchHeaders...), [2]string{"cache-control", "no-store"})
	rd := (&benchReader{}).setBody(sampleChatRequest).answer(hdr(":status", "200", "content-type", "application/json"), chatResponse("fresh"))
	b.ReportAllocs()
	for b.Loop() {
		if sb.exchange(b, headers, rd) {
			b.Fatal("hit")
		}
	}
}

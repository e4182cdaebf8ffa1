package cachecore

import (
	"strconv"
	"strings"
	"testing"
)

// Whole exchanges through Stream, as the filter drives them (filter/
// stream.go), against a MemStore: the paths of make bench's S2 and S4 rows
// without host calls, natively and (S12) under V8 and wazero.

// streamBench runs exchanges on one Cache as one VM does, one stream at a
// time, each recycled when it ends.
type streamBench struct {
	env     *testEnv
	route   *Route
	hold    HoldState
	st      Stream
	id      uint32
	headers [][2]string
	length  string // the request body's content-length (setBody)
	check   bool   // exchange reads the Cache-Status (expect)
}

// setBody makes body the request body of the exchanges that follow.
func (sb *streamBench) setBody(rd *fakeReader, body string) {
	rd.reqBody, sb.length = []byte(body), strconv.Itoa(len(body))
}

func newStreamBench(b *testing.B) *streamBench {
	env := newEnv(b, `{"routes":[{"name":"pass","kind":"chat","path_prefix":"/pass/","ttl":"24h"}]}`)
	return &streamBench{env: env, route: env.route("pass")}
}

var benchHeaders = [][2]string{{":method", "POST"}, {":path", "/pass/v1/chat/completions"}, {":authority", "models"},
	{":scheme", "http"}, {"content-type", "application/json"}, {"authorization", "Bearer sk-alice"},
	{"user-agent", "bench"}, {"accept", "*/*"}}

// exchange runs one request, its length given as Envoy and wrk give it:
// headers held, body read, then either served from the cache (served) or
// forwarded and answered by rd's response. cs is its Cache-Status.
func (sb *streamBench) exchange(headers [][2]string, rd *fakeReader) (served bool, cs string) {
	sb.st.Reset() // as the filter resets a deleted stream for reuse
	sb.id++
	s, c := &sb.st, sb.env.cache
	sb.headers = append(append(sb.headers[:0], headers...), [2]string{"content-length", sb.length})
	v, acts := s.Start(c, sb.route, "POST", "/pass/v1/chat/completions", sb.headers, false, &sb.hold, 1, sb.id)
	if v == Pause {
		_, acts = s.RequestBody(len(rd.reqBody), true, rd, &sb.hold)
	}
	for i := range acts {
		if a := &acts[i]; a.Kind == ActServeEntry || a.Kind == ActServeLocal {
			if sb.check {
				cs = headerValue(a.Headers, "cache-status")
			}
			s.Served(a)
			served = true
		}
	}
	if !served {
		s.ResponseHeaders(false, rd)
		s.ResponseBody(len(rd.respBody), true, rd)
	}
	s.Done(rd)
	if sb.check && !served {
		cs = string(s.CacheStatusHeader())
	}
	s.Recycle()
	return served, cs
}

// expect runs one exchange outside the timed loop and fails unless its
// Cache-Status has want: the benchmark measures the path it is named for.
func (sb *streamBench) expect(b *testing.B, headers [][2]string, rd *fakeReader, want string) {
	sb.check = true
	_, cs := sb.exchange(headers, rd)
	sb.check = false
	if !strings.Contains(cs, want) {
		b.Fatalf("Cache-Status %q, want %q", cs, want)
	}
}

// BenchmarkStreamHit: a 1 KiB hit on a 1.7 KB request sent again.
func BenchmarkStreamHit(b *testing.B) {
	sb := newStreamBench(b)
	rd := &fakeReader{respHeaders: hdr(":status", "200", "content-type", "application/json"), respBody: []byte(chatResponse(strings.Repeat("x", 900)))}
	sb.setBody(rd, sampleChatRequest)
	sb.exchange(benchHeaders, rd)
	sb.expect(b, benchHeaders, rd, "; hit")
	b.ReportAllocs()
	for b.Loop() {
		if served, _ := sb.exchange(benchHeaders, rd); !served {
			b.Fatal("miss")
		}
	}
}

// BenchmarkStreamUncacheableMiss: a new 1.7 KB request each time whose
// answer says no-store (S4's "miss, answer uncacheable").
func BenchmarkStreamUncacheableMiss(b *testing.B) {
	sb := newStreamBench(b)
	rd := &fakeReader{respHeaders: hdr(":status", "200", "content-type", "application/json", "cache-control", "no-store"), respBody: []byte(chatResponse("fresh"))}
	// A new key each time: the seed's 10 digits are rewritten in place.
	const last, seeded = `"seed":7}`, `"seed":1000000000}`
	if !strings.HasSuffix(sampleChatRequest, last) {
		b.Fatalf("sampleChatRequest no longer ends in %s", last)
	}
	sb.setBody(rd, strings.TrimSuffix(sampleChatRequest, last)+seeded)
	seed := rd.reqBody[len(rd.reqBody)-len(`1000000000}`) : len(rd.reqBody)-1]
	n := 1000000000
	sb.expect(b, benchHeaders, rd, "fwd=miss; fwd-status=200; detail=no-store")
	sb.expect(b, benchHeaders, rd, "fwd=miss; fwd-status=200; detail=no-store") // not stored
	b.ReportAllocs()
	for b.Loop() {
		n++
		strconv.AppendInt(seed[:0], int64(n), 10)
		if served, _ := sb.exchange(benchHeaders, rd); served {
			b.Fatal("hit")
		}
	}
}

// BenchmarkStreamBypass: a request with Cache-Control: no-store.
func BenchmarkStreamBypass(b *testing.B) {
	sb := newStreamBench(b)
	headers := append(append([][2]string(nil), benchHeaders...), [2]string{"cache-control", "no-store"})
	rd := &fakeReader{respHeaders: hdr(":status", "200", "content-type", "application/json"), respBody: []byte(chatResponse("fresh"))}
	sb.setBody(rd, sampleChatRequest)
	sb.expect(b, headers, rd, "fwd=bypass")
	b.ReportAllocs()
	for b.Loop() {
		if served, _ := sb.exchange(headers, rd); served {
			b.Fatal("hit")
		}
	}
}

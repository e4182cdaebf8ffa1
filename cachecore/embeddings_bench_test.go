package cachecore

import (
	"fmt"
	"strconv"
	"strings"
	"testing"

	"github.com/tidwall/gjson"
)

// Benchmarks of the per-item embeddings path as the filter drives it: one
// Stream per request (headers, body, lookups, upstream answer, admission,
// stores, merge) over a MemStore that counts the shared-data calls, which
// in the filter are host calls. The geometry and the batches are S9's
// (store 4096×4; 64-dimensional float vectors; the same 32 shared items in
// every batch, the others new each time).

const embBenchConfig = `{"store":{"buckets":4096,"ways":4},"routes":[{"name":"embed","kind":"embeddings","path_prefix":"/embed/","ttl":"24h"}]}`

// callCountStore counts Gets and Sets on a MemStore.
type callCountStore struct {
	*MemStore
	gets, sets int
}

func (s *callCountStore) Get(key string) ([]byte, uint32, error) {
	s.gets++
	return s.MemStore.Get(key)
}

func (s *callCountStore) GetInto(key string, buf []byte) ([]byte, uint32, error) {
	s.gets++
	return s.MemStore.GetInto(key, buf)
}

func (s *callCountStore) Set(key string, v []byte, cas uint32) error {
	s.sets++
	return s.MemStore.Set(key, v, cas)
}

// benchVector is a 64-dimensional vector as the S9 origin writes it.
func benchVector(k int) string {
	var b []byte
	x := uint64(0x9e3779b97f4a7c15) + uint64(k)*0x2545F4914F6CDD1D
	b = append(b, '[')
	for d := 0; d < 64; d++ {
		x ^= x << 13
		x ^= x >> 7
		x ^= x << 17
		if d > 0 {
			b = append(b, ',')
		}
		b = strconv.AppendFloat(b, float64(int64(x>>11)-(1<<52))/(1<<52), 'f', 8, 64)
	}
	return string(append(b, ']'))
}

// embBenchRequest is a batch of n items, the first cached of them shared,
// the others carrying nonce.
func embBenchRequest(n, cached int, nonce string) []byte {
	var b strings.Builder
	b.WriteString(`{"model":"bench-embed","input":[`)
	for i := 0; i < n; i++ {
		if i > 0 {
			b.WriteByte(',')
		}
		if i < cached {
			fmt.Fprintf(&b, `"a shared passage about shipping policies and return windows, chunk %02d"`, i)
		} else {
			fmt.Fprintf(&b, `"a new passage about order status %s, chunk %02d"`, nonce, i)
		}
	}
	b.WriteString(`],"encoding_format":"float"}`)
	return []byte(b.String())
}

// embBenchAnswer answers an upstream embeddings body.
func embBenchAnswer(body []byte) []byte {
	var b []byte
	b = append(b, `{"object":"list","data":[`...)
	items := gjson.GetBytes(body, "input").Array()
	for i, it := range items {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, `{"object":"embedding","index":`...)
		b = strconv.AppendInt(b, int64(i), 10)
		b = append(b, `,"embedding":`...)
		b = append(b, benchVector(len(it.Str)+int(Hash64([]byte(it.Str), 0)%64))...)
		b = append(b, '}')
	}
	b = append(b, `],"model":"bench-embed","usage":{"prompt_tokens":`...)
	b = strconv.AppendInt(b, int64(len(items)), 10)
	b = append(b, `,"total_tokens":`...)
	b = strconv.AppendInt(b, int64(len(items)), 10)
	return append(b, "}}"...)
}

type embBench struct {
	c     *Cache
	store *callCountStore
	route *Route
	clock *fakeClock
	id    uint32
}

func newEmbBench(b *testing.B) *embBench {
	cfg := mustParse(b, embBenchConfig)
	store := &callCountStore{MemStore: NewMemStore()}
	clock := newFakeClock()
	c := New(cfg, Options{Store: store, Now: clock.Now, Rand: seededRand(1)})
	return &embBench{c: c, store: store, route: c.routeByName("embed"), clock: clock}
}

// exchange runs one request through a Stream as the filter would and
// returns what the client receives (the body, cached/total).
func (e *embBench) exchange(tb testing.TB, body []byte) (out []byte, items string) {
	e.id++
	var s Stream
	hs := [][2]string{{":authority", "127.0.0.1:10100"}, {"authorization", "Bearer bench-tenant"},
		{"content-type", "application/json"}, {"content-length", strconv.Itoa(len(body))}}
	v, acts := s.Begin(e.c, e.route, "POST", "/embed/v1/embeddings", hs, false, true, 1, e.id)
	if v != Pause || len(acts) != 0 {
		tb.Fatalf("headers: verdict %d actions %s", v, streamActs(acts))
	}
	_, acts = s.RequestBody(len(body), true, &fakeReader{reqBody: body}, &HoldState{})
	var up []byte
	for _, a := range acts {
		switch a.Kind {
		case ActServeEntry:
			s.Served(&a)
			v, _ := header(a.Headers, CachedItemsHeader)
			return a.Body, v
		case ActForward:
			up = body
			if a.Rewrite {
				up = a.Body
			}
		}
	}
	if up == nil {
		tb.Fatalf("neither served nor forwarded: %s", streamActs(acts))
	}
	if b, ok := tb.(*testing.B); ok {
		b.StopTimer() // the upstream's work is not the filter's
	}
	ans := embBenchAnswer(up)
	if b, ok := tb.(*testing.B); ok {
		b.StartTimer()
	}
	rd := &fakeReader{respHeaders: [][2]string{{":status", "200"}, {"content-type", "application/json"}, {"content-length", strconv.Itoa(len(ans))}},
		respBody: ans}
	if v, acts := s.ResponseHeaders(false, rd); v != Pause {
		tb.Fatalf("response headers: verdict %d actions %s", v, streamActs(acts))
	}
	_, acts = s.ResponseBody(len(ans), true, rd)
	out = ans
	for _, a := range acts {
		switch a.Kind {
		case ActReplaceBody:
			out = a.Body
		case ActSetHeader:
			if a.Name == CachedItemsHeader {
				items = a.Value
			}
		case ActRefused:
			tb.Fatalf("refused: %s", a.Reason)
		}
	}
	return out, items
}

func (e *embBench) run(b *testing.B, n, cached int, fresh bool, want string) {
	if cached > 0 {
		e.exchange(b, embBenchRequest(cached, cached, "")) // the shared items
	}
	bodies := make([][]byte, 256)
	for i := range bodies {
		bodies[i] = embBenchRequest(n, cached, fmt.Sprintf("warm-%d", i))
	}
	for i := range bodies { // warm the table, as under load
		e.exchange(b, bodies[i])
	}
	if fresh {
		for i := range bodies {
			bodies[i] = embBenchRequest(n, cached, fmt.Sprintf("n-%d", i))
		}
	}
	if cached > 0 {
		e.exchange(b, embBenchRequest(cached, cached, "")) // the shared items again, in case they were evicted
	}
	e.store.gets, e.store.sets = 0, 0
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		body := bodies[i%len(bodies)]
		if fresh && i >= len(bodies) {
			b.StopTimer()
			body = embBenchRequest(n, cached, fmt.Sprintf("n-%d", i))
			b.StartTimer()
		}
		if _, items := e.exchange(b, body); want != "" && items != want {
			b.Fatalf("items %q, want %q", items, want)
		}
	}
	b.ReportMetric(float64(e.store.gets)/float64(b.N), "gets/op")
	b.ReportMetric(float64(e.store.sets)/float64(b.N), "sets/op")
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/float64(n), "ns/item")
}

// BenchmarkEmbeddingsNew: 32 new items per request, none cached.
func BenchmarkEmbeddingsNew(b *testing.B) {
	newEmbBench(b).run(b, 32, 0, true, "0/32")
}

// BenchmarkEmbeddingsCached: 32 items per request, all cached.
func BenchmarkEmbeddingsCached(b *testing.B) {
	newEmbBench(b).run(b, 32, 32, false, "")
}

// BenchmarkEmbeddingsPartial: S9's batch, 64 items of which 32 cached.
func BenchmarkEmbeddingsPartial(b *testing.B) {
	newEmbBench(b).run(b, 64, 32, true, "")
}

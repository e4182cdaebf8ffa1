package cachecore

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"reflect"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/tidwall/gjson"
)

const embConfig = `{"routes":[{"name":"emb","kind":"embeddings","path_prefix":"/v1/embeddings","ttl":"1h"}]}`

func newEmbCache(t testing.TB) (*Cache, *Route) {
	t.Helper()
	cfg, err := ParseConfig([]byte(embConfig))
	if err != nil {
		t.Fatal(err)
	}
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	var n uint64
	c := New(cfg, Options{Store: NewMemStore(), Now: func() time.Time { return now }, Rand: func() uint64 { n++; return n * 0x9E3779B97F4A7C15 }})
	return c, cfg.Routes[0]
}

func embRequest(c *Cache, r *Route, body string) *Request {
	req := c.Begin(r, "POST", "/v1/embeddings", [][2]string{{"authorization", "Bearer t"}})
	c.SetBody(req, []byte(body))
	return req
}

// embAnswer is an upstream answer with vector [i, i+0.5] for the i-th input.
func embAnswer(items []string) []byte {
	var data []string
	for i, it := range items {
		data = append(data, fmt.Sprintf(`{"object":"embedding","index":%d,"embedding":[%d,%d.5]}`, i, len(it), len(it)))
	}
	return []byte(`{"object":"list","data":[` + strings.Join(data, ",") + `],"model":"e-1","usage":{"prompt_tokens":7,"total_tokens":7}}`)
}

func inputOf(t testing.TB, body []byte) []string {
	var in struct{ Input []string }
	if err := json.Unmarshal(body, &in); err != nil {
		t.Fatal(err)
	}
	return in.Input
}

func TestEmbeddingsSplitStoreMerge(t *testing.T) {
	c, r := newEmbCache(t)
	jsonHdr := [][2]string{{"content-type", "application/json"}}
	// Fill two items.
	first := embRequest(c, r, `{"model":"e","input":["aa","bbbb"]}`)
	if c.Lookup(first) != Forward || first.Status != StatusMiss {
		t.Fatalf("first lookup: %s", first.Status)
	}
	if body, rewritten := first.UpstreamBody(); rewritten || string(body) != `{"model":"e","input":["aa","bbbb"]}` {
		t.Fatalf("a batch with nothing cached must go up unchanged: %s", body)
	}
	ans := embAnswer([]string{"aa", "bbbb"})
	adm := c.AdmitBody(first, jsonHdr, ans)
	if res := c.Store(first, 200, jsonHdr, ans, adm, 1); res.Reason != ReasonNone || res.ItemsStored != 2 {
		t.Fatalf("store: %+v", res)
	}
	// A batch with both, a new one, and a duplicate.
	req := embRequest(c, r, `{"model":"e","user":"x","input":["c","aa","c","bbbb"]}`)
	if c.Lookup(req) != Forward || req.Status != StatusPartial {
		t.Fatalf("partial lookup: %s", req.Status)
	}
	if cached, total := req.ItemCounts(); cached != 2 || total != 4 {
		t.Fatalf("items %d/%d", cached, total)
	}
	up, rewritten := req.UpstreamBody()
	if !rewritten || strings.Join(inputOf(t, up), ",") != "c" || !strings.Contains(string(up), `"user":"x"`) {
		t.Fatalf("rewritten body %s", up)
	}
	ans = embAnswer([]string{"c"})
	if adm := c.AdmitBody(req, jsonHdr, ans); adm.Reason != ReasonNone {
		t.Fatalf("admit: %s", adm.Reason)
	} else if res := c.Store(req, 200, jsonHdr, ans, adm, 1); res.ItemsStored != 1 {
		t.Fatalf("store: %+v", res)
	}
	merged := c.MergedBody(req, ans)
	var got []string
	for i, d := range gjson.GetBytes(merged, "data").Array() {
		if d.Get("index").Int() != int64(i) {
			t.Fatalf("index %d at position %d", d.Get("index").Int(), i)
		}
		got = append(got, d.Get("embedding").Raw)
	}
	if strings.Join(got, " ") != "[1,1.5] [2,2.5] [1,1.5] [4,4.5]" {
		t.Fatalf("merged vectors %v", got)
	}
	if gjson.GetBytes(merged, "usage.total_tokens").Int() != 7 || gjson.GetBytes(merged, "model").String() != "e-1" {
		t.Fatalf("merged usage/model: %s", merged)
	}
	// Now everything is cached: served locally, usage zero.
	all := embRequest(c, r, `{"model":"e","input":["c","aa","c","bbbb"]}`)
	if c.Lookup(all) != Serve || all.Status != StatusHit {
		t.Fatalf("full hit: %s", all.Status)
	}
	_, hs, body := c.HitResponse(all)
	if gjson.GetBytes(body, "usage.total_tokens").Int() != 0 || len(gjson.GetBytes(body, "data").Array()) != 4 {
		t.Fatalf("hit body %s", body)
	}
	if v, _ := header(hs, CachedItemsHeader); v != "4/4" {
		t.Fatalf("cached items header %q", v)
	}
}

func TestEmbeddingsAdmission(t *testing.T) {
	c, r := newEmbCache(t)
	jsonHdr := [][2]string{{"content-type", "application/json"}}
	tests := []struct {
		name, body, answer string
		want               Reason
	}{
		{"count", `{"model":"e","input":["a","b"]}`, `{"data":[{"index":0,"embedding":[1,2]}]}`, ReasonItemCount},
		{"duplicate index", `{"model":"e","input":["a","b"]}`, `{"data":[{"index":0,"embedding":[1,2]},{"index":0,"embedding":[1,2]}]}`, ReasonItemCount},
		{"dimensions", `{"model":"e","input":["a","b"]}`, `{"data":[{"index":0,"embedding":[1,2]},{"index":1,"embedding":[1,2,3]}]}`, ReasonDimensions},
		{"requested dimensions", `{"model":"e","input":["a"],"dimensions":3}`, `{"data":[{"index":0,"embedding":[1,2]}]}`, ReasonDimensions},
		{"not finite", `{"model":"e","input":["a"]}`, `{"data":[{"index":0,"embedding":[1e999,2]}]}`, ReasonBadVector},
		{"not numbers", `{"model":"e","input":["a"]}`, `{"data":[{"index":0,"embedding":["x",2]}]}`, ReasonBadVector},
		{"bad base64", `{"model":"e","input":["a"],"encoding_format":"base64"}`, `{"data":[{"index":0,"embedding":"AAA"}]}`, ReasonBadVector},
		{"base64 not whole floats", `{"model":"e","input":["a"],"encoding_format":"base64"}`, `{"data":[{"index":0,"embedding":"AAAAAAA="}]}`, ReasonBadVector},
		{"good base64", `{"model":"e","input":["a"],"encoding_format":"base64"}`, `{"data":[{"index":0,"embedding":"AACAPwAAAEA="}]}`, ReasonNone},
		{"good floats", `{"model":"e","input":["a","b"]}`, `{"data":[{"index":1,"embedding":[3,4]},{"index":0,"embedding":[1,2]}]}`, ReasonNone},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			req := embRequest(c, r, tc.body)
			c.Lookup(req)
			if adm := c.AdmitBody(req, jsonHdr, []byte(tc.answer)); adm.Reason != tc.want {
				t.Fatalf("reason %s, want %s", adm.Reason, tc.want)
			}
		})
	}
}

func TestEmbeddingsInputRejected(t *testing.T) {
	c, r := newEmbCache(t)
	for _, body := range []string{
		`{"model":"e","input":[]}`, `{"model":"e","input":[1,"a"]}`, `{"model":"e","input":{"a":1}}`,
		`{"model":"e","input":[[1,2],"a"]}`, `{"model":"e","input":[1.5]}`, `{"model":"e","input":"a","encoding_format":"int8"}`,
		`{"model":"e","input":"a","dimensions":0}`, `{"model":"e"}`,
	} {
		if req := embRequest(c, r, body); req.Reason != ReasonEmbeddingInput {
			t.Errorf("%s: %s/%s", body, req.Status, req.Reason)
		}
	}
}

// BenchmarkEmbeddingMerge is the merge alone, per batch of 64 items with 32
// cached (S9 reports it per item).
func BenchmarkEmbeddingMerge(b *testing.B) {
	c, r := newEmbCache(b)
	vec := "[" + strings.TrimSuffix(strings.Repeat("0.0123456,", 64), ",") + "]"
	req := embRequest(c, r, `{"model":"e","input":[`+strings.TrimSuffix(strings.Repeat(`"x",`, 1), ",")+`]}`)
	bt := &embBatch{}
	var data []string
	for i := 0; i < 64; i++ {
		it := embItem{first: i}
		if i%2 == 0 {
			it.entry = &Entry{Body: []byte(vec)}
		} else {
			it.fresh = []byte(vec)
			data = append(data, fmt.Sprintf(`{"object":"embedding","index":%d,"embedding":%s}`, len(data), vec))
		}
		bt.items = append(bt.items, it)
	}
	req.batch = bt
	up := []byte(`{"object":"list","data":[` + strings.Join(data, ",") + `],"model":"e-1","usage":{"prompt_tokens":32,"total_tokens":32}}`)
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		c.MergedBody(req, up)
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/64, "ns/item")
}

// A body the filter cannot rewrite (it arrived chunked) is fetched whole
// on a partial hit: every item from the upstream, in the client's order.
func TestEmbeddingsKeepBodyFetchesWhole(t *testing.T) {
	c, r := newEmbCache(t)
	jsonHdr := [][2]string{{"content-type", "application/json"}}
	first := embRequest(c, r, `{"model":"e","input":["aa"]}`)
	c.Lookup(first)
	ans := embAnswer([]string{"aa"})
	c.Store(first, 200, jsonHdr, ans, c.AdmitBody(first, jsonHdr, ans), 1)

	body := `{"model":"e","input":["c","aa","c"]}`
	req := embRequest(c, r, body)
	req.KeepBody()
	if c.Lookup(req) != Forward || req.Status != StatusMiss {
		t.Fatalf("lookup: %s", req.Status)
	}
	if up, rewritten := req.UpstreamBody(); rewritten || string(up) != body {
		t.Fatalf("upstream body %s rewritten=%v", up, rewritten)
	}
	if cached, total := req.ItemCounts(); cached != 0 || total != 3 {
		t.Fatalf("items %d/%d", cached, total)
	}
	ans = embAnswer([]string{"c", "aa", "c"})
	adm := c.AdmitBody(req, jsonHdr, ans)
	if adm.Reason != ReasonNone {
		t.Fatalf("admit: %s", adm.Reason)
	}
	if res := c.Store(req, 200, jsonHdr, ans, adm, 1); res.ItemsStored != 2 {
		t.Fatalf("store: %+v", res)
	}
	// A fully cached batch needs no rewrite: served even with KeepBody.
	all := embRequest(c, r, body)
	all.KeepBody()
	if c.Lookup(all) != Serve {
		t.Fatalf("full hit: %s", all.Status)
	}
}

// finiteNumbers, the fast path of vectorDims, may only ever give the
// exact path's answer (or leave the case to it).
func TestFiniteNumbersAgreesWithExact(t *testing.T) {
	cases := []string{
		`[1,2]`, `[0.0123,-0.5e-3,7E+2]`, `[ 1 , 2 ]`, `[0]`, `[-0.0]`, `[1e308]`, `[9.9e307]`, `[1e309]`, `[1e999]`,
		`[-1e999]`, `[0.1e310]`, `[0.001e310]`, `[0.00e999]`, `[0e999999999]`, `[123456789e300]`, `[1e-999999]`,
		`[]`, `[1,]`, `[,1]`, `[01]`, `[1.]`, `[.5]`, `[-]`, `[+1]`, `[1e]`, `[1e+]`, `["1"]`, `[[1]]`, `[1,"x"]`,
		`[null]`, `[true]`, `1`, `{}`, `[1]x`, `[1] `, `[NaN]`, `[Infinity]`, `[1e0000001]`,
		`[179769313486231570000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000]`,
		`[1797693134862315700000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000]`,
	}
	for _, c := range cases {
		n, ok := finiteNumbers(c)
		en, er := floatVectorDims(gjson.Parse(c))
		if ok && (er != ReasonNone || en != n) {
			t.Errorf("%s: fast path says %d finite numbers, exact path %d, %s", c, n, en, er)
		}
	}
	// The common case is decided by the fast path.
	if n, ok := finiteNumbers(`[0.01234567,-0.98765432,1e-5]`); !ok || n != 3 {
		t.Errorf("fast path: %d %v", n, ok)
	}
}

func FuzzFiniteNumbers(f *testing.F) {
	for _, s := range []string{`[1,2]`, `[1e308]`, `[0.5e-3, -7E+2]`, `[1e999]`, `[0.000e400]`,
		`[0.5,-0.25,0.125]`, `[0.,1]`, `[-0.,1]`, `[0.5,]`, `[-0.5x,1]`, `[-00.5,1]`, `[0.5 ,-0.5]`, `[-0.5e999,1]`} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if n, ok := finiteNumbers(s); ok {
			if en, er := floatVectorDims(gjson.Parse(s)); er != ReasonNone || en != n {
				t.Errorf("%q: fast path %d, exact path %d %s", s, n, en, er)
			}
		}
	})
}

// A wrong item count is reported as such even when a vector is bad too
// (the count is checked first).
func TestEmbeddingsAdmissionCountFirst(t *testing.T) {
	c, r := newEmbCache(t)
	jsonHdr := [][2]string{{"content-type", "application/json"}}
	for answer, want := range map[string]Reason{
		`{"data":[{"index":0,"embedding":["x"]}]}`:                                                         ReasonItemCount,
		`{"data":[{"index":0,"embedding":[1]},{"index":1,"embedding":[1,2]},{"index":2,"embedding":[1]}]}`: ReasonItemCount,
		`{"data":[{"index":0,"embedding":["x"]},{"index":1,"embedding":[1]}]}`:                             ReasonBadVector,
		`{"data":[{"index":0,"embedding":[1]},{"index":1,"embedding":[1,2]}]}`:                             ReasonDimensions,
	} {
		req := embRequest(c, r, `{"model":"e","input":["a","b"]}`)
		c.Lookup(req)
		if adm := c.AdmitBody(req, jsonHdr, []byte(answer)); adm.Reason != want {
			t.Errorf("%s: reason %s, want %s", answer, adm.Reason, want)
		}
	}
}

// The one-pass readers of an answer (answerscan.go) give what gjson's
// reading gives: the same admission, the same vectors, the same top-level
// members, the same error verdict — for any answer that reaches them.
func FuzzAnswerOnePass(f *testing.F) {
	good := string(embAnswer([]string{"a", "bb", "ccc"}))
	for _, s := range []string{
		good,
		strings.Replace(good, `"index":1`, `"index":1.0`, 1),
		strings.Replace(good, `"index":1`, `"index":-1`, 1),
		strings.Replace(good, `"index":1`, `"index":0`, 1),
		strings.Replace(good, `"index":2`, `"index":7`, 1),
		strings.Replace(good, `[2,2.5]`, `[2,2.5,3]`, 1),
		strings.Replace(good, `[2,2.5]`, `[2e999,1]`, 1),
		strings.Replace(good, `[2,2.5]`, `[]`, 1),
		strings.Replace(good, `[2,2.5]`, `"AAAA"`, 1),
		strings.Replace(good, `"embedding"`, `"embed\u0064ing"`, 1),
		strings.Replace(good, `"data"`, `"d\u0061ta"`, 1),
		strings.Replace(good, `"object":"list"`, `"error":{"message":"x"}`, 1),
		strings.Replace(good, `"object":"list"`, `"object":"error"`, 1),
		strings.Replace(good, `"object":"list"`, `"error":null`, 1),
		strings.Replace(good, `{"object":"embedding",`, `{"object":"embedding","extra":{"a":["]"]},`, 1),
		strings.Replace(good, `],"model"`, `,{"index":3,"embedding":[1,2]}],"model"`, 1),
		` { "data" : [ { "index" : 0 , "embedding" : [ 1 , 2 ] } , { "embedding":[3,4],"index":1},{"index":2,"embedding":[5,6]} ] } `,
		`{"data":[1,2,3]}`, `{"data":{}}`, `[]`, `"x"`, `{"model":1,"usage":[1],"data":[]}`,
		strings.Replace(good, `"index":1`, `"index":01`, 1),
		strings.Replace(good, `},{`, `}{`, 1),
		strings.Replace(good, `},{`, `},,{`, 1),
		strings.Replace(good, `"model":"e-1"`, `"model":"e-1","model":"e-2"`, 1),
		strings.Replace(good, `"usage":{`, `"usage":{"a":1,"a":2,`, 1),
		strings.Replace(good, `"object":"embedding",`, `"object":"embedding","object":"x",`, 1),
		strings.Replace(good, `"object":"embedding",`, `"x":`+deep(MaxJSONDepth-3)+`,`, 1),
		strings.Replace(good, `"object":"embedding",`, `"x":`+deep(MaxJSONDepth-2)+`,`, 1),
		strings.Replace(good, `"usage":`, `"u":`+deep(MaxJSONDepth)+`,"usage":`, 1),
		strings.Replace(good, `"usage":`, `"u":`+deep(MaxJSONDepth-1)+`,"usage":`, 1),
		strings.Replace(good, `[2,2.5]`, `[2,2.5`, 1),
		strings.Replace(good, `[2,2.5]`, `[2,02.5]`, 1),
		strings.Replace(good, `"e-1"`, "\"e\t1\"", 1),
		strings.Replace(good, `"e-1"`, `"e\"1"`, 1),
		good + ` `, good + `x`, ` ` + good, good[:len(good)-1],
	} {
		f.Add([]byte(s))
	}
	c, r := newEmbCache(f)
	jsonHdr := [][2]string{{"content-type", "application/json"}}
	admit := func(body []byte, onePass bool) (Admission, *Request) {
		embeddingItemsInOnePass = onePass
		defer func() { embeddingItemsInOnePass = true }()
		req := embRequest(c, r, `{"model":"e","input":["a","bb","ccc"]}`)
		c.Lookup(req)
		return c.AdmitBody(req, jsonHdr, body), req
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		if checkJSON(body) == ReasonNone && c.dups.check(body) == ReasonNone {
			top, viaGJSON := readTopMembers(string(body)), readTopMembersGJSON(string(body))
			if top != viaGJSON {
				t.Fatalf("%q: top-level members %+v, gjson %+v", body, top, viaGJSON)
			}
			if got, want := top.reportsError(), reportsError(gjson.ParseBytes(body)); got != want {
				t.Fatalf("%q: reports an error %v, gjson %v", body, got, want)
			}
		}
		got, one := admit(body, true)
		want, two := admit(body, false)
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("%q: one pass %+v, gjson %+v", body, got, want)
		}
		if got.Reason != ReasonNone {
			return
		}
		for i := range one.batch.items {
			if a, b := one.batch.items[i].fresh, two.batch.items[i].fresh; !bytes.Equal(a, b) {
				t.Fatalf("%q: item %d: one pass %q, gjson %q", body, i, a, b)
			}
		}
		if one.batch.answerModel != two.batch.answerModel || one.batch.answerUsage != two.batch.answerUsage {
			t.Fatalf("%q: model/usage %q %q, gjson %q %q", body, one.batch.answerModel, one.batch.answerUsage, two.batch.answerModel, two.batch.answerUsage)
		}
	})
}

// The one pass is what a well-formed answer takes (else the comparison
// above would only ever compare the general checks with themselves).
func TestOnePassReadsAWellFormedAnswer(t *testing.T) {
	c, _ := newEmbCache(t)
	good := embAnswer([]string{"a", "bb", "ccc"})
	vecs := make([][]byte, 3)
	top, dims, ok := c.scanEmbeddingsAnswer(good, 3, vecs, 0)
	if !ok || dims != 2 || string(vecs[0]) != "[1,1.5]" || string(vecs[2]) != "[3,3.5]" {
		t.Fatalf("one pass: ok %v, dims %d, vectors %q", ok, dims, vecs)
	}
	if top != readTopMembers(string(good)) || top.model != `"e-1"` || top.usage != `{"prompt_tokens":7,"total_tokens":7}` || top.objectRaw != `"list"` {
		t.Fatalf("top-level members %+v", top)
	}
	if _, _, ok := c.scanEmbeddingsAnswer(good, 3, vecs, 3); ok {
		t.Fatal("one pass took vectors of 2 dimensions for a request of 3")
	}
	if vecs[0] != nil {
		t.Fatal("a refused pass left vectors behind")
	}
}

// Items cached after a run of new ones are still found (a lookup that
// gave up on a batch after a run of misses would send them upstream).
func TestEmbeddingsHitsAfterARunOfMisses(t *testing.T) {
	c, r := newEmbCache(t)
	jsonHdr := [][2]string{{"content-type", "application/json"}}
	cached := []string{"k1", "k22", "k333"}
	first := embRequest(c, r, `{"model":"e","input":["k1","k22","k333"]}`)
	c.Lookup(first)
	ans := embAnswer(cached)
	if res := c.Store(first, 200, jsonHdr, ans, c.AdmitBody(first, jsonHdr, ans), 1); res.ItemsStored != 3 {
		t.Fatalf("store: %+v", res)
	}
	var input []string
	for i := 0; i < 8; i++ {
		input = append(input, fmt.Sprintf("new-%d", i))
	}
	input = append(input, cached...)
	body, _ := json.Marshal(map[string]any{"model": "e", "input": input})
	req := embRequest(c, r, string(body))
	if c.Lookup(req) != Forward || req.Status != StatusPartial {
		t.Fatalf("lookup: %s", req.Status)
	}
	if hits, total := req.ItemCounts(); hits != len(cached) || total != len(input) {
		t.Fatalf("items cached %d of %d, want %d of %d", hits, total, len(cached), len(input))
	}
}

// skipDigits' word-at-a-time test gives the byte loop's answer for every
// byte value at every position of a run of digits, whatever the start.
func TestSkipDigitsIsTheByteLoop(t *testing.T) {
	byteLoop := func(s string, i int) int {
		for i < len(s) && s[i] >= '0' && s[i] <= '9' {
			i++
		}
		return i
	}
	digits := []byte("31415926535897932384626433")
	for pos := 0; pos < len(digits); pos++ {
		for v := 0; v < 256; v++ {
			b := append([]byte(nil), digits...)
			b[pos] = byte(v)
			s := string(b)
			for start := 0; start < 3; start++ {
				if got, want := skipDigits(s, start), byteLoop(s, start); got != want {
					t.Fatalf("%q from %d: %d, byte loop %d", s, start, got, want)
				}
			}
		}
	}
}

// A batch of more items than the API allows (2,048) is refused before its
// items are kept: a body of tens of thousands of one-letter items, within
// max_request_bytes, must not make the VM hold an item record (and its
// canonical text) for each.
func TestEmbeddingsTooManyItemsRefusedEarly(t *testing.T) {
	c, r := newEmbCache(t)
	body := `{"model":"e","input":[` + strings.TrimSuffix(strings.Repeat(`"a",`, 30000), ",") + `]}`
	embRequest(c, r, `{"model":"e","input":["warm"]}`) // the cache's own first allocations
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	req := embRequest(c, r, body)
	runtime.ReadMemStats(&after)
	if req.Reason != ReasonEmbeddingInput {
		t.Fatalf("30,000 items: %s/%s, want %s", req.Status, req.Reason, ReasonEmbeddingInput)
	}
	// The body itself is 120 KB; its canonical copy and the items' texts
	// up to the 2,049th are bounded by a few times that.
	if got := after.TotalAlloc - before.TotalAlloc; got > 1<<20 {
		t.Errorf("refusing 30,000 items allocated %d bytes (want at most 1 MiB)", got)
	}
}

// The API's limit, exactly: 2,048 items are a batch, 2,049 are refused.
func TestEmbeddingsItemLimit(t *testing.T) {
	c, r := newEmbCache(t)
	for _, n := range []int{2048, 2049} {
		items := make([]string, n)
		for i := range items {
			items[i] = fmt.Sprintf(`"item %d"`, i)
		}
		req := embRequest(c, r, `{"model":"e","input":[`+strings.Join(items, ",")+`]}`)
		if refused := req.Reason == ReasonEmbeddingInput; refused != (n > 2048) {
			t.Errorf("%d items: %s/%s", n, req.Status, req.Reason)
		}
	}
}

// countByte counts as strings.Count does, over every alignment and length
// and bytes that differ from the one counted only in their high bit.
func TestCountByteAgreesWithStringsCount(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	alphabet := []byte{',', ',' | 0x80, ',' ^ 1, 0, 0xff, 'a', '"'}
	for n := 0; n < 2000; n++ {
		b := make([]byte, rng.IntN(40))
		for i := range b {
			b[i] = alphabet[rng.IntN(len(alphabet))]
		}
		s := string(b)
		for at := 0; at <= len(s) && at < 9; at++ {
			if got, want := countByte(s[at:], ','), strings.Count(s[at:], ","); got != want {
				t.Fatalf("countByte(%q) = %d, want %d", s[at:], got, want)
			}
		}
	}
	if got := countByte(strings.Repeat(",", 4096), ','); got != 4096 {
		t.Fatalf("4096 commas: %d", got)
	}
}

// Every item's fingerprint is its key's (itemKeys hashes the shared prefix
// once), for items of every length around the hash's 8-byte blocks, and
// again after the model state moves.
func TestItemFingerprintsAreTheirKeys(t *testing.T) {
	c, r := newEmbCache(t)
	items := make([]string, 20)
	for i := range items {
		items[i] = strconv.Quote(strings.Repeat("x", i))
	}
	req := embRequest(c, r, `{"model":"e","input":[`+strings.Join(items, ",")+`]}`)
	for pass := 0; pass < 2; pass++ {
		c.itemKeys(req)
		for _, i := range req.batch.distinct {
			it := &req.batch.items[i]
			if it.fp != c.fingerprint(it.key) {
				t.Fatalf("pass %d, item %d: fingerprint %#x, its key's %#x", pass, i, it.fp, c.fingerprint(it.key))
			}
		}
		req.state.Gen++ // keyed again
	}
}

// Identical items are found whatever their number and places: each item's
// first is the first item with its canonical form, and distinct lists
// exactly those firsts, in order; a reused batch finds them again.
func TestEmbeddingsIdenticalItems(t *testing.T) {
	c, r := newEmbCache(t)
	rng := rand.New(rand.NewPCG(3, 4))
	for _, n := range []int{1, 2, 3, 7, 64, 300, 2048} {
		items := make([]string, n)
		for i := range items {
			items[i] = strconv.Quote(fmt.Sprint("item ", rng.IntN(n/2+1)))
		}
		req := embRequest(c, r, `{"model":"e","input":[`+strings.Join(items, ",")+`]}`)
		b := req.batch
		first := map[string]int{}
		var distinct []int
		for i, it := range items {
			if _, ok := first[it]; !ok {
				first[it] = i
				distinct = append(distinct, i)
			}
			if b.items[i].first != first[it] {
				t.Fatalf("%d items: item %d's first is %d, want %d", n, i, b.items[i].first, first[it])
			}
		}
		if !slices.Equal(b.distinct, distinct) {
			t.Fatalf("%d items: distinct %v, want %v", n, b.distinct, distinct)
		}
		c.keepBatch(b) // as Stream.Recycle: the next batch reuses its arenas
	}
}

// A string plainString passes is its own canonical form, and every string
// it refuses still canonicalises as before: over strings of quotes,
// backslashes, escapes, control characters, non-ASCII and invalid UTF-8.
func TestPlainStringsAreCanonical(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 6))
	parts := []string{"a", "Z", " ", "\\\"", "\\\\", "\\n", "\\u00e9", "\\ud83d\\ude00", "é", "\xff", "\x01", "\t", "\"", "/", "\\/"}
	var c Canonicalizer
	plain := 0
	for n := 0; n < 5000; n++ {
		var sb strings.Builder
		sb.WriteByte('"')
		for k := rng.IntN(20); k > 0; k-- {
			sb.WriteString(parts[rng.IntN(len(parts))])
		}
		sb.WriteByte('"')
		raw := []byte(sb.String())
		if !plainString(raw) {
			continue
		}
		plain++
		got, err := c.Append(nil, raw, nil)
		if err != nil || string(got) != string(raw) {
			t.Fatalf("%q passes as plain but canonicalises to %q (%v)", raw, got, err)
		}
	}
	if plain < 100 {
		t.Fatalf("only %d plain strings drawn", plain)
	}
}

// On an embeddings route whose key_fields leave
// "input" out (e.g. a "defaults.key_fields" written for chat routes and
// inherited; the parser only requires the model field), a body with two
// "input" members is not refused: SetBody's canonicaliser drops the
// unselected members before its duplicate check, parseEmbeddings keys the
// items of the FIRST input (gjson), and the params canonicalisation ignores
// "input". A last-wins model server (Python json, encoding/json) embeds the
// SECOND input, and that vector is stored as the first input's item: on a
// shared route every client asking for that text then gets the attacker's
// vector.
func TestEmbeddingsDuplicateInputIsRefused(t *testing.T) {
	env := newEnv(t, `{"defaults":{"key_fields":["model","messages"]},
	  "routes":[{"name":"emb","kind":"embeddings","path_exact":"/v1/embeddings","shared":true}]}`)
	poison := `{"model":"e","input":["the sky is blue"],"input":["BUY NOW"]}`
	req := env.request("emb", noIdent, poison)
	if !req.Bypassed() {
		items := []string{}
		if req.batch != nil {
			for _, it := range req.batch.items {
				items = append(items, string(it.canon))
			}
		}
		t.Errorf("a body with a duplicate \"input\" is keyed (reason %q), as items %q; a last-wins server embeds the second", req.Reason, items)
	} else {
		return
	}
	// What that costs: the server's answer (for "BUY NOW") is stored as
	// "the sky is blue"'s vector and served to another client.
	jsonHdr := hdr("content-type", "application/json")
	if env.cache.Lookup(req) != Forward {
		t.Fatalf("lookup: %s", req.Status)
	}
	ans := []byte(`{"object":"list","data":[{"object":"embedding","index":0,"embedding":[6.66,6.66]}],"model":"e","usage":{"prompt_tokens":2,"total_tokens":2}}`)
	adm := env.cache.AdmitBody(req, jsonHdr, ans)
	if res := env.cache.Store(req, 200, jsonHdr, ans, adm, 1); res.Reason != ReasonNone {
		t.Fatalf("store: %+v", res)
	}
	victim := env.request("emb", hdr("authorization", "Bearer someone-else"), `{"model":"e","input":"the sky is blue"}`)
	if env.cache.Lookup(victim) == Serve {
		_, _, body := env.cache.HitResponse(victim)
		t.Fatalf("another client asking for \"the sky is blue\" is served the vector of \"BUY NOW\": %s", body)
	}
}

// Items read eight bytes at a time (addStrings) are the items gjson reads,
// as written and canonical, in order: over arrays of strings with escapes,
// white space and non-ASCII, and arrays addStrings leaves to gjson (a
// number or a nested array among the strings).
func TestEmbeddingsStringItemsAsGjsonReadsThem(t *testing.T) {
	c, r := newEmbCache(t)
	rng := rand.New(rand.NewPCG(7, 8))
	parts := []string{"a", "Z", " ", "0", ",", "]", "[", "\\\"", "\\\\", "\\n", "\\u00e9", "\\ud83d\\ude00", "é", "/", "\\/", "a long run of plain words"}
	spaces := []string{"", " ", "\n", "\t ", "\r\n  "}
	var c2 Canonicalizer
	for n := 0; n < 3000; n++ {
		var sb strings.Builder
		sb.WriteString("[" + spaces[rng.IntN(len(spaces))])
		items := 1 + rng.IntN(12)
		for k := 0; k < items; k++ {
			if k > 0 {
				sb.WriteString(spaces[rng.IntN(len(spaces))] + "," + spaces[rng.IntN(len(spaces))])
			}
			switch {
			case k > 0 && rng.IntN(40) == 0:
				sb.WriteString("12")
			case k > 0 && rng.IntN(40) == 0:
				sb.WriteString(`["x"]`)
			default:
				sb.WriteByte('"')
				for m := rng.IntN(8); m > 0; m-- {
					sb.WriteString(parts[rng.IntN(len(parts))])
				}
				sb.WriteByte('"')
			}
		}
		sb.WriteString(spaces[rng.IntN(len(spaces))] + "]")
		input := sb.String()
		var want [][2]string
		ok := true
		gjson.Parse(input).ForEach(func(_, v gjson.Result) bool {
			if v.Type != gjson.String {
				ok = false
				return false
			}
			canon, err := c2.Append(nil, []byte(v.Raw), nil)
			if err != nil {
				t.Fatalf("%s: %v", v.Raw, err)
			}
			want = append(want, [2]string{v.Raw, string(canon)})
			return true
		})
		req := embRequest(c, r, `{"model":"e","input":`+input+`}`)
		if !ok {
			if req.batch != nil {
				t.Fatalf("%s: a batch of %d items, want the request refused", input, len(req.batch.items))
			}
			continue
		}
		if req.batch == nil {
			t.Fatalf("%s: refused", input)
		}
		var got [][2]string
		for _, it := range req.batch.items {
			got = append(got, [2]string{string(it.raw), string(it.canon)})
		}
		if !slices.Equal(got, want) {
			t.Fatalf("%s:\n got %q\nwant %q", input, got, want)
		}
		c.keepBatch(req.batch)
	}
}

// batchBody is an embeddings request of n items ("0", "1", … or, with
// same, n copies of "0") and an extra top-level field of pad bytes: every
// item's key holds the canonical form of that field.
func batchBody(n, pad int, same bool) string {
	items := make([]string, n)
	for i := range items {
		items[i] = strconv.Quote(strconv.Itoa(i))
		if same {
			items[i] = `"0"`
		}
	}
	return `{"model":"text-embedding-3-small","input":[` + strings.Join(items, ",") + `],"x":"` + strings.Repeat("p", pad) + `"}`
}

// Every distinct item's key holds the whole key prefix (the namespace and
// the canonical form of every other field): a request within
// max_request_bytes of 2,048 short items and one 114 KiB field needed
// 2,048 × 114 KiB ≈ 229 MiB of keys. A batch whose keys' prefixes would
// take more than maxBatchKeyPrefixBytes is not split (embedding_input),
// decided before any key is built; batches under the bound still are.
func TestEmbeddingsBatchKeyPrefixesAreBounded(t *testing.T) {
	for _, tc := range []struct {
		name   string
		body   string
		bypass bool
	}{
		{"2048 items, 114 KiB field", batchBody(2048, 114<<10, false), true},
		{"10 items, 114 KiB field", batchBody(10, 114<<10, false), true},
		{"2 items, 114 KiB field", batchBody(2, 114<<10, false), false},
		{"2048 copies of one item, 114 KiB field", batchBody(2048, 114<<10, true), false},
		{"2048 items, 300-byte field", batchBody(2048, 300, false), false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if len(tc.body) > DefaultMaxRequestBytes {
				t.Fatalf("body of %d bytes over max_request_bytes", len(tc.body))
			}
			c, r := newEmbCache(t)
			embRequest(c, r, `{"model":"e","input":["warm"]}`) // the cache's own first allocations
			runtime.GC()
			var before, after runtime.MemStats
			runtime.ReadMemStats(&before)
			req := embRequest(c, r, tc.body)
			if !req.Bypassed() {
				if d := c.Lookup(req); d != Forward {
					t.Fatalf("lookup: %v", d)
				}
			}
			runtime.ReadMemStats(&after)
			alloc := after.TotalAlloc - before.TotalAlloc
			t.Logf("%d-byte body: %s/%s, %d KiB allocated", len(tc.body), req.Status, req.Reason, alloc>>10)
			if tc.bypass && req.Reason != ReasonEmbeddingInput {
				t.Fatalf("%s/%s, want a bypass for %s", req.Status, req.Reason, ReasonEmbeddingInput)
			}
			if !tc.bypass && req.Bypassed() {
				t.Fatalf("bypassed (%s), want the batch split", req.Reason)
			}
			// The body, its canonical form, the params, the items: a few
			// times 128 KiB, plus the keys the bound allows.
			if alloc > 3<<20 {
				t.Fatalf("one %d-byte embeddings request allocated %d KiB", len(tc.body), alloc>>10)
			}
		})
	}
}

// Per-item caching assumes an item's vector does not depend on the other
// items of its batch. Jina's late_chunking embeds the inputs jointly: a
// request with it (any value but false) is not split (embedding_input).
func TestEmbeddingsLateChunkingIsNotSplit(t *testing.T) {
	c, r := newEmbCache(t)
	for _, tc := range []struct {
		late  string
		split bool
	}{
		{"", true},
		{`,"late_chunking":false`, true},
		{`,"late_chunking":true`, false},
		{`,"late_chunking":null`, false},
		{`,"late_chunking":"true"`, false},
		{`,"late_chunking":1`, false},
	} {
		for _, input := range []string{`["a","bb"]`, `"a"`} {
			body := `{"model":"jina-embeddings-v3","input":` + input + tc.late + `}`
			req := embRequest(c, r, body)
			if tc.split && req.Bypassed() {
				t.Errorf("%s: bypassed (%s), want it split", body, req.Reason)
			}
			if !tc.split && req.Reason != ReasonEmbeddingInput {
				t.Errorf("%s: %s/%s, want a bypass for %s", body, req.Status, req.Reason, ReasonEmbeddingInput)
			}
		}
	}
}

package cachecore

import (
	"encoding/base64"
	"encoding/binary"
	"math"
	"strconv"
	"strings"

	"github.com/tidwall/gjson"
)

// Per-item embedding cache.
//
// RAG ingestion and retrieval embed the same chunks and queries again and
// again, in ever different batches, so whole-request caching misses most of
// the reuse. On an embeddings route every input item has its own entry,
// keyed by the namespace (route, tenant, model, model version, generation),
// the request's other parameters (dimensions, encoding_format, …) and the
// item itself:
//
//   - every item cached: the cache answers with a body shaped like the
//     upstream's (object, data[{object, index, embedding}], model, usage) with
//     the items in request order; usage is zero (nothing was computed);
//   - some cached: the request goes upstream carrying only the missing
//     items, each distinct item once; the answer is checked, its items are
//     stored, and the client receives every item in its original position
//     and index; usage is what the upstream reports, i.e. the tokens actually
//     computed for the missing items;
//   - none cached: the request goes upstream unchanged and its items are
//     stored.
//
// A response's items are stored only if all of them pass: the item count
// matches, every vector has the requested (or else one common) dimension,
// every number is finite, base64 decodes to whole float32s. The stored value
// is the upstream's own bytes for the vector, so merged answers are
// numerically identical to uncached ones, and float and base64 are separate
// entries that can never mix.

// embBatch is a parsed embeddings request.
type embBatch struct {
	items    []embItem
	distinct []int // index of each distinct item's first occurrence, in order
	params   []byte
	encoding string
	dims     int  // requested dimensions, 0 = the model's default
	inputAt  int  // offset of the input value in the original body
	inputLen int  // its length
	single   bool // input was a single string or token array

	hits      int   // items answered from cache (all occurrences)
	sent      []int // distinct item indices sent upstream, in upstream order
	fullFetch bool  // the upstream gets the original request
	minFresh  int64 // earliest FreshUntil among hits
	oldest    int64 // earliest StoredAt among hits
	model     string
}

type embItem struct {
	raw   []byte // item as written in the request
	canon []byte
	first int // index of the first identical item
	key   []byte
	fp    uint64
	entry *Entry
	fresh []byte // vector from the upstream answer (partial and full fetches)
}

// ItemCounts reports, for an embeddings request, how many items were
// answered from the cache and how many in total (0, 0 for other requests).
func (r *Request) ItemCounts() (cached, total int) {
	if r.batch == nil {
		return 0, 0
	}
	return r.batch.hits, len(r.batch.items)
}

// parseEmbeddings splits req's body into items.
func (c *Cache) parseEmbeddings(req *Request, body []byte) Reason {
	input := gjson.GetBytes(body, "input")
	b := &embBatch{encoding: gjson.GetBytes(body, "encoding_format").String(), inputAt: input.Index, inputLen: len(input.Raw)}
	if b.encoding == "" {
		b.encoding = "float"
	}
	if b.encoding != "float" && b.encoding != "base64" {
		return ReasonEmbeddingInput
	}
	if d := gjson.GetBytes(body, "dimensions"); d.Exists() {
		if !isInteger(d) || d.Num < 1 || d.Num > 1<<16 {
			return ReasonEmbeddingInput
		}
		b.dims = int(d.Num)
	}
	if input.Index <= 0 || string(body[input.Index:input.Index+len(input.Raw)]) != input.Raw {
		return ReasonEmbeddingInput
	}
	add := func(v gjson.Result) bool {
		canon, err := Canonicalize([]byte(v.Raw), nil)
		if err != nil {
			return false
		}
		b.items = append(b.items, embItem{raw: []byte(v.Raw), canon: canon})
		return true
	}
	switch {
	case input.Type == gjson.String:
		b.single = true
		add(input)
	case input.IsArray() && len(input.Array()) > 0:
		arr := input.Array()
		switch {
		case arr[0].Type == gjson.String:
			for _, v := range arr {
				if v.Type != gjson.String || !add(v) {
					return ReasonEmbeddingInput
				}
			}
		case arr[0].Type == gjson.Number:
			if !isTokenArray(input) {
				return ReasonEmbeddingInput
			}
			b.single = true
			add(input)
		case arr[0].IsArray():
			for _, v := range arr {
				if !isTokenArray(v) || !add(v) {
					return ReasonEmbeddingInput
				}
			}
		default:
			return ReasonEmbeddingInput
		}
	default:
		return ReasonEmbeddingInput
	}
	if len(b.items) == 0 || len(b.items) > 2048 {
		return ReasonEmbeddingInput
	}
	// The key of every item includes all other parameters of the request.
	sel := Selection{Ignore: append(append([]string(nil), req.Route.IgnoreFields...), "input")}
	params, err := c.canon.Append(nil, body, &sel)
	if err != nil {
		return canonReason(err)
	}
	b.params = params
	seen := map[string]int{}
	for i := range b.items {
		if j, ok := seen[string(b.items[i].canon)]; ok {
			b.items[i].first = j
			continue
		}
		seen[string(b.items[i].canon)] = i
		b.items[i].first = i
		b.distinct = append(b.distinct, i)
	}
	req.batch = b
	return ReasonNone
}

func isTokenArray(v gjson.Result) bool {
	if !v.IsArray() {
		return false
	}
	ok := len(v.Array()) > 0
	v.ForEach(func(_, t gjson.Result) bool {
		if !isInteger(t) || t.Num < 0 {
			ok = false
		}
		return ok
	})
	return ok
}

// isInteger reports whether v is a number written as an integer: no
// fraction, no exponent. Typed model servers reject 4.0 where they accept
// 4, so the cache never reads a float spelling as a count or a token id.
func isInteger(v gjson.Result) bool {
	return v.Type == gjson.Number && v.Num == math.Trunc(v.Num) && !strings.ContainsAny(v.Raw, ".eE")
}

// itemKeys (re)builds every item's key from the current model state.
//
//	"E1" route method path authority tenant(32) model params item | version(16) gen(8)
func (c *Cache) itemKeys(req *Request) {
	b := req.batch
	for _, i := range b.distinct {
		it := &b.items[i]
		k := req.appendNamespace(it.key[:0], 'E')
		k = appendLV(k, string(b.params))
		k = appendLV(k, string(it.canon))
		k = req.appendState(k)
		it.key, it.fp = k, c.fingerprint(k)
	}
}

// lookupItems looks every distinct item up and decides what goes upstream.
func (c *Cache) lookupItems(req *Request) Decision {
	b := req.batch
	now := c.nowMs()
	b.hits, b.sent, b.minFresh, b.oldest, b.model = 0, b.sent[:0], math.MaxInt64, math.MaxInt64, ""
	c.itemKeys(req)
	for _, i := range b.distinct {
		it := &b.items[i]
		it.entry, it.fresh = nil, nil
		if !req.state.Found || req.Status == StatusRevalidate {
			continue
		}
		e, err := c.table.Lookup(it.fp, it.key, now) // detached: kept for the merge
		if err != nil || e == nil || c.freshness(req, e, now) != fresh {
			continue
		}
		it.entry = e
		b.minFresh = min(b.minFresh, e.FreshUntil)
		b.oldest = min(b.oldest, e.StoredAt)
		if b.model == "" {
			b.model, _ = header(e.Headers, embeddingModelHeader)
		}
	}
	dup := false
	for i := range b.items {
		it := &b.items[i]
		if b.items[it.first].entry != nil {
			b.hits++
		}
		dup = dup || it.first != i
	}
	for _, i := range b.distinct {
		if b.items[i].entry == nil {
			b.sent = append(b.sent, i)
		}
	}
	// Without hits or duplicates the original request goes up unchanged.
	b.fullFetch = b.hits == 0 && !dup
	if !b.fullFetch && len(b.sent) > 0 && req.keepBody {
		// The body cannot be rewritten to the missing items: the whole
		// batch goes up and every item comes from the upstream.
		b.fullFetch, b.hits, b.sent = true, 0, b.sent[:0]
		for _, i := range b.distinct {
			b.items[i].entry = nil
			b.sent = append(b.sent, i)
		}
	}
	if len(b.sent) == 0 {
		return Serve
	}
	return Forward
}

// embeddingModelHeader keeps the upstream's "model" value with each item,
// to answer fully cached batches as the upstream would.
const embeddingModelHeader = "x-modelcache-embedding-model"

// UpstreamBody returns the request body to send upstream: the original, or
// for a partial hit the original with its input replaced by the missing
// items (each distinct item once).
func (r *Request) UpstreamBody() (body []byte, rewritten bool) {
	b := r.batch
	if b == nil || b.fullFetch {
		return r.Body, false
	}
	out := make([]byte, 0, len(r.Body))
	out = append(out, r.Body[:b.inputAt]...)
	out = append(out, '[')
	for j, i := range b.sent {
		if j > 0 {
			out = append(out, ',')
		}
		out = append(out, b.items[i].raw...)
	}
	out = append(out, ']')
	return append(out, r.Body[b.inputAt+b.inputLen:]...), true
}

// admitEmbeddings checks an upstream embeddings answer for the items sent.
func (c *Cache) admitEmbeddings(req *Request, body []byte) Admission {
	b := req.batch
	want := len(b.sent)
	if b.fullFetch {
		want = len(b.items)
	}
	data := gjson.GetBytes(body, "data")
	if !data.IsArray() {
		return Admission{Reason: ReasonItemCount}
	}
	arr := data.Array()
	if len(arr) != want {
		return Admission{Reason: ReasonItemCount}
	}
	vecs := make([][]byte, want)
	dims := b.dims
	for _, d := range arr {
		idx := d.Get("index")
		if idx.Type != gjson.Number || idx.Num < 0 || int(idx.Num) >= want || vecs[int(idx.Num)] != nil {
			return Admission{Reason: ReasonItemCount}
		}
		emb := d.Get("embedding")
		n, reason := vectorDims(emb, b.encoding)
		if reason != ReasonNone {
			return Admission{Reason: reason}
		}
		if dims == 0 {
			dims = n
		}
		if n != dims {
			return Admission{Reason: ReasonDimensions}
		}
		vecs[int(idx.Num)] = []byte(emb.Raw)
	}
	// Cached items of the same batch must agree with the new ones: a model
	// whose dimension changed under the same name is a drift.
	for _, i := range b.distinct {
		if e := b.items[i].entry; e != nil {
			n := -1
			if checkJSON(e.Body) == ReasonNone { // read from the shared store
				n, _ = vectorDims(gjson.ParseBytes(e.Body), b.encoding)
			}
			if n != dims {
				return Admission{Reason: ReasonDimensions}
			}
			break
		}
	}
	if b.fullFetch {
		for i := range b.items {
			b.items[i].fresh = vecs[i]
		}
	} else {
		for j, i := range b.sent {
			b.items[i].fresh = vecs[j]
		}
	}
	return Admission{TTL: req.Route.TTL}
}

// vectorDims validates one embedding value and returns its dimension.
func vectorDims(v gjson.Result, encoding string) (int, Reason) {
	if encoding == "base64" {
		if v.Type != gjson.String {
			return 0, ReasonBadVector
		}
		raw, err := base64.StdEncoding.DecodeString(v.Str)
		if err != nil || len(raw) == 0 || len(raw)%4 != 0 {
			return 0, ReasonBadVector
		}
		for i := 0; i < len(raw); i += 4 {
			f := math.Float32frombits(binary.LittleEndian.Uint32(raw[i:]))
			if math.IsNaN(float64(f)) || math.IsInf(float64(f), 0) {
				return 0, ReasonBadVector
			}
		}
		return len(raw) / 4, ReasonNone
	}
	if !v.IsArray() {
		return 0, ReasonBadVector
	}
	n, ok := 0, true
	v.ForEach(func(_, x gjson.Result) bool {
		n++
		if x.Type != gjson.Number || math.IsInf(x.Num, 0) || math.IsNaN(x.Num) {
			ok = false
		}
		return ok
	})
	if !ok || n == 0 {
		return 0, ReasonBadVector
	}
	return n, ReasonNone
}

// storeEmbeddings stores every freshly computed item.
func (c *Cache) storeEmbeddings(req *Request, status int, headers [][2]string, body []byte, adm Admission, computeMs uint32) StoreResult {
	now := c.nowMs()
	res, ok := c.prepareStore(req, adm, now+adm.TTL.Milliseconds()+c.staleWindow(req).Milliseconds())
	if !ok {
		return res
	}
	b := req.batch
	c.itemKeys(req)
	b.model = gjson.GetBytes(body, "model").String()
	hs := c.storedHeaders(req, headers)
	hs = append(hs, [2]string{embeddingModelHeader, b.model})
	var buf []byte
	for _, i := range b.distinct {
		it := &b.items[i]
		if it.fresh == nil {
			continue
		}
		e := Entry{Key: it.key, StoredAt: now, FreshUntil: now + adm.TTL.Milliseconds(), ComputeMs: computeMs,
			Status: uint16(status), Headers: hs, Body: it.fresh}
		e.StaleUntil = e.FreshUntil + c.staleWindow(req).Milliseconds()
		if e.EncodedSize() > req.Route.MaxEntryBytes {
			res.ItemsRefused++
			continue
		}
		buf = e.AppendEncode(buf[:0])
		ins, err := c.table.Insert(it.fp, TenantTag(req.tenant), e.StaleUntil, buf, now)
		if err != nil {
			res.ItemsRefused++
			continue
		}
		res.ItemsStored++
		res.Inserts = append(res.Inserts, ins)
	}
	res.FreshUntil = now + adm.TTL.Milliseconds()
	return res
}

// MergedBody builds the client's answer for a partial hit from the
// upstream's answer for the missing items and the cached ones. usage is
// the upstream's (the tokens actually computed).
func (c *Cache) MergedBody(req *Request, upstream []byte) []byte {
	b := req.batch
	usage := gjson.GetBytes(upstream, "usage").Raw
	model := gjson.GetBytes(upstream, "model").String()
	return c.embeddingBody(b, model, usage)
}

func (c *Cache) embeddingBody(b *embBatch, model, usage string) []byte {
	size := 64
	for i := range b.items {
		size += 48 + len(b.vector(i))
	}
	out := make([]byte, 0, size)
	out = append(out, `{"object":"list","data":[`...)
	for i := range b.items {
		if i > 0 {
			out = append(out, ',')
		}
		out = append(out, `{"object":"embedding","index":`...)
		out = strconv.AppendInt(out, int64(i), 10)
		out = append(out, `,"embedding":`...)
		out = append(out, b.vector(i)...)
		out = append(out, '}')
	}
	out = append(out, `],"model":`...)
	out = appendJSONString(out, model)
	out = append(out, `,"usage":`...)
	if usage == "" {
		usage = `{"prompt_tokens":0,"total_tokens":0}`
	}
	out = append(out, usage...)
	return append(out, '}')
}

// vector is item i's embedding: fresh from the upstream or from the cache.
func (b *embBatch) vector(i int) []byte {
	it := &b.items[b.items[i].first]
	if it.fresh != nil {
		return it.fresh
	}
	if it.entry != nil {
		return it.entry.Body
	}
	return []byte("null")
}

// embeddingHit renders a fully cached batch.
func (c *Cache) embeddingHit(req *Request) (int, [][2]string, []byte) {
	b := req.batch
	now := c.nowMs()
	var hs [][2]string
	if first := b.items[b.distinct[0]].entry; first != nil {
		for _, h := range first.Headers {
			if h[0] != embeddingModelHeader {
				hs = append(hs, h)
			}
		}
	}
	age := (now - b.oldest) / 1000
	hs = append(hs, [2]string{"age", itoa(max(age, 0))})
	hs = append(hs, [2]string{CachedItemsHeader, itoa(int64(len(b.items))) + "/" + itoa(int64(len(b.items)))})
	cs := CacheStatus{Status: req.Status, TTL: floorDiv(b.minFresh-now, 1000), HasTTL: true}
	hs = append(hs, [2]string{"cache-status", string(cs.AppendHeader(nil, c.cfg.CacheName))})
	return 200, hs, c.embeddingBody(b, b.model, "")
}

// CachedItemsHeader tells the client how many items of an embeddings batch
// came from the cache: "cached/total".
const CachedItemsHeader = "x-modelcache-cached-items"

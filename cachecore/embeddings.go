package cachecore

import (
	"bytes"
	"cmp"
	"encoding/base64"
	"encoding/binary"
	"math"
	"math/bits"
	"slices"
	"strconv"
	"strings"
	"unsafe"

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

	hits int // items answered from cache (all occurrences)
	// merged: the merged answer (cached items and the upstream's) was
	// made (Complete): a partly cached batch whose answer never was —
	// an error passed, a reset mid-body — gave its client no cached
	// item, and counts none (Stream.countWaited; review Z218).
	merged    bool
	sent      []int // distinct item indices sent upstream, in upstream order
	fullFetch bool  // the upstream gets the original request
	// answerDrifted: the answer admission last judged holds a valid
	// vector for every item, all of one dimension, and a cached item has
	// another (ReasonDimensions from the comparison with the cache): the
	// model changed, where any other ReasonDimensions is a broken answer
	// or a server that ignores dimensions.
	answerDrifted bool
	minFresh      int64 // earliest FreshUntil among hits, as freshness judged them (one stored ahead counts as stored at the lookup)
	oldest        int64 // earliest StoredAt among hits
	model         string

	// Per-request arenas, so that the per-item work allocates nothing per
	// item. They are append-only: a slice handed out stays valid (and
	// unchanged) when a later append moves the arena.
	text     []byte     // items as written and their canonical forms
	prefix   []byte     // what every item's key starts with (itemKeys)
	keys     []byte     // every distinct item's key (itemKeys)
	keyState ModelState // the state the keys were built for
	keyed    bool       // keys holds keys for keyState
	// rekeyedAt: the look (Request.lookedAt) after which the keys were
	// last built again, each item's lookedFP kept then (itemKeys).
	rekeyedAt int64
	vecs      []byte      // cached vectors and the first hit's header text
	entries   []Entry     // cached items (their Body in vecs)
	hdrs      [][2]string // the first hit's headers (their text in vecs)
	out       []byte      // the answer built for the client (embeddingBody)
	// An earlier batch's vecs, entries and answer, emptied: the first
	// lookup and the first answer of this one take them (earlier slices
	// of this batch stay valid, so a second pass makes new ones).
	spareVecs    []byte
	spareEntries []Entry
	spareHeaders [][2]string
	spareOut     []byte
	ignore       []string   // the params' selection: the route's ignore_fields and "input"
	scratch      Entry      // the entry being read (aliases the table's buffer)
	views        indexViews // the bucket indexes read, for the stores
	// The answer admitEmbeddings read (identified by its first byte and
	// length) and its top-level "model" (as gjson's String) and "usage",
	// read in the same pass as its data, for the store and the merge.
	answerAt                 *byte
	answerLen                int
	answerModel, answerUsage string
	answerDims               int // the dimension of its vectors
	// cachedDims is the dimension the lookup's first cached item was
	// stored with (embeddingDimsHeader); drifted, that another cached item
	// has another (driftSeen).
	cachedDims string
	drifted    bool
	// tooLarge: the answer the cache would build for the batch is past
	// maxBatchBuild; it goes upstream whole, and does not coalesce: what
	// an identical batch's leader stores cannot serve it either.
	tooLarge bool
	// admitEmbeddings' answer vectors by upstream index, and each item's
	// (embItem.fresh): slices of the answer's bytes, read only while the
	// answer is complete — storing the items, merging the answer — in the
	// call that admitted it.
	fresh [][]byte
	// Scratch of parseEmbeddings and storeEmbeddings.
	seen []seenSlot
	src  []byte
	ins  []batchInsert
}

// maxSpareBatch bounds the arenas a batch kept for reuse may hold (bytes,
// counted roughly); a larger batch is left to the garbage collector.
const maxSpareBatch = 256 << 10

// newBatch returns an empty batch, with the arenas of the VM's spare one
// when there is one (keepBatch).
func (c *Cache) newBatch() *embBatch {
	b := c.spareBatch
	if b == nil {
		return &embBatch{}
	}
	c.spareBatch = nil
	*b = embBatch{items: b.items[:0], distinct: b.distinct[:0], params: b.params[:0], text: b.text[:0], keys: b.keys[:0],
		sent: b.sent[:0], fresh: b.fresh[:0], seen: b.seen[:0], src: b.src[:0], ins: b.ins[:0],
		prefix: b.prefix[:0], ignore: b.ignore[:0], spareVecs: b.spareVecs[:0], spareEntries: b.spareEntries[:0],
		spareHeaders: b.spareHeaders[:0], spareOut: b.spareOut[:0],
		scratch: Entry{Headers: b.scratch.Headers[:0]},
		views:   indexViews{at: b.views.at, views: b.views.views[:0], slab: b.views.slab[:0]}}
	clear(b.views.at)
	return b
}

// reuse is s emptied, or a new slice when s holds fewer than n.
func reuse[T any](s []T, n int) []T {
	if cap(s) < n {
		return make([]T, 0, n)
	}
	return s[:0]
}

// keepBatch keeps b's arenas for the VM's next embeddings request, once
// nothing can read b any more (its request is recycled: recycle.go).
func (c *Cache) keepBatch(b *embBatch) {
	size := cap(b.items)*int(unsafe.Sizeof(embItem{})) + cap(b.text) + cap(b.keys) + cap(b.params) + cap(b.src) +
		cap(b.views.slab)*int(unsafe.Sizeof(slot{})) + cap(b.views.views)*int(unsafe.Sizeof(indexView{})) +
		cap(b.ins)*int(unsafe.Sizeof(batchInsert{})) + 16*cap(b.seen) + 16*len(b.views.at) + 8*(cap(b.distinct)+cap(b.sent)) + 24*cap(b.fresh) +
		cap(b.prefix) + 16*cap(b.ignore)
	if size > maxSpareBatch {
		return
	}
	// The arenas a fully cached batch's answer is built in (the cached
	// vectors, their entries, the first hit's headers, the answer): this
	// batch's or the spare ones it did not take, each kept while the
	// bound allows.
	keep := func(n int) bool {
		if size+n > maxSpareBatch {
			return false
		}
		size += n
		return true
	}
	vecs := larger(b.vecs, b.spareVecs)
	if !keep(cap(vecs)) {
		vecs = nil
	}
	entries := larger(b.entries, b.spareEntries)
	clear(entries[:cap(entries)]) // what they point to is let go
	if !keep(cap(entries) * int(unsafe.Sizeof(Entry{}))) {
		entries = nil
	}
	headers := larger(b.hdrs, b.spareHeaders)
	clear(headers[:cap(headers)])
	if !keep(32 * cap(headers)) {
		headers = nil
	}
	out := larger(b.out, b.spareOut)
	if !keep(cap(out)) {
		out = nil
	}
	// The arenas only: what their elements point to (cached vectors,
	// slices of the answer, older slabs, the table's buffer) is let go.
	// Past each length they are zero already (cleared at an earlier keep,
	// or new).
	clear(b.items)
	clear(b.fresh[:cap(b.fresh)])
	clear(b.views.views)
	clear(b.ins[:cap(b.ins)])
	clear(b.scratch.Headers[:cap(b.scratch.Headers)])
	clear(b.ignore[:cap(b.ignore)])
	b.answerAt, b.entries, b.vecs, b.hdrs, b.out, b.model = nil, nil, nil, nil, nil, ""
	b.spareVecs, b.spareEntries, b.spareHeaders, b.spareOut = vecs[:0], entries[:0], headers[:0], out[:0]
	c.spareBatch = b
}

// larger is whichever of a and b has the larger capacity.
func larger[T any](a, b []T) []T {
	if cap(b) > cap(a) {
		return b
	}
	return a
}

type embItem struct {
	raw   []byte // item as written in the request
	canon []byte
	first int // index of the first identical item
	key   []byte
	fp    uint64
	// missed is the fingerprint under which a lookup did not find the
	// item (0: none): looked up again, it is looked for in the index.
	missed uint64
	entry  *Entry // cached: times and Body (Headers for the first hit only)
	fresh  []byte // vector from the upstream answer (partial and full fetches)
	// lookedFP is fp as the batch last looked the item up, kept when the
	// keys are built again since (itemKeys): a store under the new key
	// checks a purge of that one (storeEmbeddings).
	lookedFP uint64
}

// ItemCounts reports, for an embeddings request, how many items were
// answered from the cache and how many in total (0, 0 for other requests).
func (r *Request) ItemCounts() (cached, total int) {
	if r.batch == nil {
		return 0, 0
	}
	return r.batch.hits, len(r.batch.items)
}

// embeddingParams reads the request's top-level "input",
// "encoding_format", "dimensions" and "late_chunking" in one pass over the
// body, the first of each as gjson.Get finds it (SetBody refused duplicate
// keys): a Get per member scanned past the input, the body's bulk, once
// each. foreignBytes: vLLM's base64 of another element type or byte
// order; foreignType: an element type other than float, in Voyage's and
// Mistral's spelling or Jina's, in any encoding.
func embeddingParams(js string) (input, format, dims, late gjson.Result, foreignBytes, foreignType bool) {
	gjson.Parse(js).ForEach(func(k, v gjson.Result) bool {
		switch k.Str {
		case "output_dtype", "embedding_type":
			foreignType = foreignType || v.Type != gjson.Null && (v.Type != gjson.String || v.Str != "float")
		case "embed_dtype":
			// vLLM's base64 of other element types, or of the other byte
			// order (foreignBytes: with format base64, not read here).
			foreignBytes = foreignBytes || v.Type != gjson.Null && v.String() != "float32"
		case "endianness":
			foreignBytes = foreignBytes || v.Type != gjson.Null && v.String() != "little" && v.String() != "native"
		case "input":
			if !input.Exists() {
				input = v
			}
		case "encoding_format":
			if !format.Exists() {
				format = v
			}
		case "dimensions":
			if !dims.Exists() {
				dims = v
			}
		case "late_chunking":
			if !late.Exists() {
				late = v
			}
		}
		return true
	})
	return input, format, dims, late, foreignBytes, foreignType
}

// countByte is strings.Count for one byte, eight bytes at a time (Go's
// wasm port counts byte by byte). In each word x of s XOR c repeated, a
// byte's high bit of (x&0x7f…)+0x7f… | x is set exactly when that byte is
// not c: no carry crosses a byte.
func countByte(s string, c byte) int {
	n, i := 0, 0
	pat := 0x0101010101010101 * uint64(c)
	for ; i+8 <= len(s); i += 8 {
		x := *(*uint64)(unsafe.Pointer(unsafe.StringData(s[i:]))) ^ pat
		y := (x&0x7f7f7f7f7f7f7f7f + 0x7f7f7f7f7f7f7f7f) | x
		n += 8 - bits.OnesCount64(y&0x8080808080808080)
	}
	for ; i < len(s); i++ {
		if s[i] == c {
			n++
		}
	}
	return n
}

// maxBatchItems is the most items an embeddings request may carry (the
// OpenAI API's limit); a batch of more is refused as it is read.
const maxBatchItems = 2048

// parseEmbeddings splits req's body into items.
func (c *Cache) parseEmbeddings(req *Request, body []byte) Reason {
	// The body is read in place (gjson's GetBytes would copy each value
	// read): what the batch keeps of it is copied into its arenas.
	js := bytesString(body)
	input, format, dims, late, foreignBytes, foreignType := embeddingParams(js)
	if late.Exists() && late.Type != gjson.False {
		// Jina's late_chunking embeds the inputs jointly: an item's vector
		// depends on the rest of its batch, and per-item entries assume
		// it does not.
		return ReasonEmbeddingInput
	}
	if foreignBytes && format.String() == "base64" {
		// vLLM's base64 in float16, bfloat16 or fp8, or big-endian: the
		// cache reads a base64 vector as little-endian float32s, to count
		// its elements, check them and compare them (shadow). Read so,
		// valid answers were refused, and a big-endian one's run-to-run
		// noise diverged in every shadow sample and invalidated every
		// client's vectors of the model (review Z133). Such a request
		// passes uncached.
		return ReasonEmbeddingInput
	}
	if foreignType {
		// Voyage's and Mistral's output_dtype, Jina's embedding_type:
		// int8 or uint8 elements (in base64, one byte each, read as
		// float32s they were refused or, in the shadow, diverged on a
		// step's noise), bits packed eight to an element (not as many as
		// dimensions asks; a bit's flip moves a packed element by up to
		// 128), or Jina's base64 asked for without encoding_format
		// (review Z138). Such a request passes uncached.
		return ReasonEmbeddingInput
	}
	b := c.newBatch()
	b.inputAt, b.inputLen = input.Index, len(input.Raw)
	switch format.String() {
	case "", "float":
		b.encoding = "float"
	case "base64":
		b.encoding = "base64"
	default:
		return ReasonEmbeddingInput
	}
	if dims.Exists() {
		if !isInteger(dims) || dims.Num < 1 || dims.Num > 1<<16 {
			return ReasonEmbeddingInput
		}
		b.dims = int(dims.Num)
	}
	if input.Index <= 0 || string(body[input.Index:input.Index+len(input.Raw)]) != input.Raw {
		return ReasonEmbeddingInput
	}
	// Items as written and canonical, in one arena: canonical JSON is
	// rarely longer than its source.
	b.text = reuse(b.text, 2*len(input.Raw)+64)
	add := func(v gjson.Result) bool {
		return c.addItem(b, v.Raw, plainString(unsafe.Slice(unsafe.StringData(v.Raw), len(v.Raw))))
	}
	switch {
	case input.Type == gjson.String:
		b.single = true
		add(input)
	case input.IsArray():
		b.items = reuse(b.items, min(countByte(input.Raw, ',')+1, maxBatchItems)) // at most one item per comma, and one
		n, kind := 0, gjson.Null
		isArr := false
		input.ForEach(func(_, v gjson.Result) bool {
			if n == 0 {
				kind, isArr = v.Type, v.IsArray()
			}
			n++
			return false
		})
		switch {
		case n == 0:
			return ReasonEmbeddingInput
		case kind == gjson.String:
			ok, done := c.addStrings(b, input.Raw)
			if !done {
				// Not the common shape after all: gjson reads it.
				b.items, b.text = b.items[:0], b.text[:0]
				ok = true
				input.ForEach(func(_, v gjson.Result) bool {
					ok = v.Type == gjson.String && add(v)
					return ok
				})
			}
			if !ok {
				return ReasonEmbeddingInput
			}
		case kind == gjson.Number:
			if !isTokenArray(input) {
				return ReasonEmbeddingInput
			}
			b.single = true
			add(input)
		case isArr:
			ok := true
			input.ForEach(func(_, v gjson.Result) bool {
				ok = isTokenArray(v) && add(v)
				return ok
			})
			if !ok {
				return ReasonEmbeddingInput
			}
		default:
			return ReasonEmbeddingInput
		}
	default:
		return ReasonEmbeddingInput
	}
	if len(b.items) == 0 {
		return ReasonEmbeddingInput
	}
	// The key of every item includes all other parameters of the request.
	// The whole body is known to canonicalise (SetBody did), so the
	// input, left out anyway, is replaced by null rather than
	// canonicalised once more.
	k := c.keyingOf(req.Route)
	if k == nil {
		k = keyingOfOther(req.Route)
	}
	b.ignore = append(append(b.ignore[:0], k.sel.Ignore...), "input") // the route's, but the fields that change a vector's form (formKeyed)
	sel := Selection{Ignore: b.ignore}
	src := append(append(append(b.src[:0], body[:input.Index]...), "null"...), body[input.Index+len(input.Raw):]...)
	b.src = src
	params, err := c.canon.Append(b.params[:0], src, &sel)
	if err != nil {
		return canonReason(err)
	}
	b.params = params
	// Identical items: by a hash of the canonical form, confirmed byte
	// for byte, in an open-addressing table at most half full (a reused
	// slice: no map's hashing and growth per item). The hash is XXH64's
	// with no key, whose collisions a client can choose: past a few
	// probes an item on average, the batch is sorted out again by a map,
	// whose hash is seeded per process (review Z7, stop 72).
	size := 1 << bits.Len(uint(2*len(b.items)-1))
	seen := reuse(b.seen, size)[:size]
	clear(seen)
	b.seen = seen
	mask := uint64(size - 1)
	b.distinct = reuse(b.distinct, len(b.items))
	probes := 0
items:
	for i := range b.items {
		it := &b.items[i]
		h := Hash64(it.canon, 0)
		it.first = i
		for p := h & mask; ; p = (p + 1) & mask {
			sl := &seen[p]
			if sl.at == 0 {
				sl.h, sl.at = h, int32(i+1)
				break
			}
			if sl.h == h && bytes.Equal(b.items[sl.at-1].canon, it.canon) {
				it.first = int(sl.at - 1)
				break
			}
			if probes++; probes > maxDedupProbes(len(b.items)) {
				b.dedupByMap()
				break items
			}
		}
		if it.first == i {
			b.distinct = append(b.distinct, i)
		}
	}
	// Every distinct item's key holds the whole prefix (itemKeys): the
	// namespace and the canonical form of every other field. A batch
	// whose prefixes alone would pass the bound is not split, before any
	// key is built.
	if n := len(b.distinct); n > 1 && n > maxBatchKeyPrefixBytes/(req.namespaceLen()+4+len(b.params)) {
		return ReasonEmbeddingInput
	}
	req.batch = b
	return ReasonNone
}

// maxDedupProbes bounds the collisions parseEmbeddings' table of
// identical items meets for a batch of n: in a table at most half full,
// items chosen at random meet about one each.
func maxDedupProbes(n int) int { return 8*n + 64 }

// dedupByMap finds the batch's identical items with a map, for a batch
// whose items collide in the table parseEmbeddings keeps.
//
//go:noinline
func (b *embBatch) dedupByMap() {
	firsts := make(map[string]int, len(b.items))
	b.distinct = b.distinct[:0]
	for i := range b.items {
		it := &b.items[i]
		first, ok := firsts[string(it.canon)]
		if !ok {
			first = i
			firsts[string(it.canon)] = i
			b.distinct = append(b.distinct, i)
		}
		it.first = first
	}
}

// maxBatchKeyPrefixBytes bounds the key prefixes of one batch's distinct
// items, together (RATIONALE "A batch's keys are bounded together"): a
// full batch of 2,048 items fits with a prefix of 512 bytes, twice a
// usual one; an item's own part of its key is bounded by the body.
const maxBatchKeyPrefixBytes = 1 << 20

// addItem keeps an item as written (raw, a JSON value) and its canonical
// form: raw itself when plain (a string the canonicaliser copies as it
// is). It is false when the batch is full or the item does not
// canonicalise.
func (c *Cache) addItem(b *embBatch, raw string, plain bool) bool {
	if len(b.items) == maxBatchItems {
		return false // refused before more items are kept
	}
	at := len(b.text)
	b.text = append(b.text, raw...)
	kept := b.text[at:len(b.text):len(b.text)]
	if plain {
		b.items = append(b.items, embItem{raw: kept, canon: kept}) // its own canonical form
		return true
	}
	text, err := c.canon.Append(b.text, kept, nil)
	if err != nil {
		return false
	}
	b.text = text
	b.items = append(b.items, embItem{raw: kept, canon: text[at+len(kept) : len(text) : len(text)]})
	return true
}

// addStrings adds the items of arr, a JSON array of strings, reading each
// string once, with the plainRun plainString ran anyway, where gjson's
// ForEach read it a byte at a time before it (about 2,500 instructions an
// item of 72 bytes under V8; items are most of an embeddings request).
// done is false, with items maybe added, when arr holds something else
// than strings separated by commas and white space: the caller then reads
// it with gjson. ok is addItem's.
func (c *Cache) addStrings(b *embBatch, arr string) (ok, done bool) {
	s := unsafe.Slice(unsafe.StringData(arr), len(arr))
	i := skipSpace(arr, 1) // after '['
	for i < len(s) && s[i] == '"' {
		j, plain := i+1, true
		for {
			j = plainRun(s, j)
			if j >= len(s) || s[j] < 0x20 {
				return false, false
			}
			if s[j] == '"' {
				break
			}
			j, plain = j+2, false // an escape: its second byte is never the end
		}
		if !c.addItem(b, arr[i:j+1], plain) {
			return false, true
		}
		i = skipSpace(arr, j+1)
		switch {
		case i < len(s) && s[i] == ',':
			i = skipSpace(arr, i+1)
		case i == len(s)-1 && s[i] == ']':
			return true, true
		default:
			return false, false
		}
	}
	return false, false
}

// plainString reports a JSON string token with no escape and no control
// character: the canonicaliser copies such a string as it is.
func plainString(raw []byte) bool {
	return len(raw) >= 2 && raw[0] == '"' && plainRun(raw, 1) == len(raw)-1
}

// seenSlot is a slot of parseEmbeddings' table of distinct items: a hash
// and the item's index + 1 (0: empty).
type seenSlot struct {
	h  uint64
	at int32
}

func isTokenArray(v gjson.Result) bool {
	if !v.IsArray() {
		return false
	}
	n, ok := 0, true
	v.ForEach(func(_, t gjson.Result) bool {
		n++
		if !isInteger(t) || t.Num < 0 {
			ok = false
		}
		return ok
	})
	return ok && n > 0
}

// isInteger reports whether v is a number written as an integer: no
// fraction, no exponent. Typed model servers reject 4.0 where they accept
// 4, so the cache never reads a float spelling as a count or a token id.
// itemIndex reads an answer item's "index" as one of n items. It is
// compared as a float before any conversion: a conversion of a number out
// of int's range differs between builds (wasm saturates, amd64 does not).
// A whole number written with a fraction part (1.0) is that number.
func itemIndex(idx gjson.Result, n int) (int, bool) {
	if idx.Type != gjson.Number || !(idx.Num >= 0 && idx.Num < float64(n)) || idx.Num != math.Trunc(idx.Num) {
		return 0, false
	}
	return int(idx.Num), true
}

func isInteger(v gjson.Result) bool {
	return v.Type == gjson.Number && v.Num == math.Trunc(v.Num) && !strings.ContainsAny(v.Raw, ".eE")
}

// itemKeys (re)builds every item's key from the current model state.
//
//	"E1" route method path authority tenant(32) model params item | version(16) gen(8)
//
// All keys live in one arena; only the model state can change between
// calls, so a rebuild rewrites their fixed-size ends in place.
func (c *Cache) itemKeys(req *Request) {
	b := req.batch
	if b.keyed && b.keyState.is(&req.state) {
		return
	}
	if !b.keyed {
		prefix := req.appendNamespace(b.prefix[:0], 'E')
		prefix = binary.LittleEndian.AppendUint32(prefix, uint32(len(b.params))) // appendLV, without a string copy
		prefix = append(prefix, b.params...)
		size := 0
		for _, i := range b.distinct {
			size += len(prefix) + 4 + len(b.items[i].canon) + versionIDLen + 8
		}
		k := reuse(b.keys, size)
		for _, i := range b.distinct {
			it := &b.items[i]
			at := len(k)
			k = append(k, prefix...)
			k = binary.LittleEndian.AppendUint32(k, uint32(len(it.canon)))
			k = append(k, it.canon...)
			k = req.appendState(k)
			it.key = k[at:len(k):len(k)]
		}
		b.keys, b.prefix = k, prefix
	} else {
		// Keyed again under another state: the first time since the
		// batch's last look, each item keeps the fingerprint it was looked
		// up under, whose purge a store under the new key checks
		// (storeEmbeddings), as rebuildKey does for one key.
		keep := req.lookedAt != 0 && b.rekeyedAt != req.lookedAt
		b.rekeyedAt = req.lookedAt
		for _, i := range b.distinct {
			it := &b.items[i]
			if keep {
				it.lookedFP = it.fp
			}
			req.appendState(it.key[:len(it.key)-versionIDLen-8])
		}
	}
	// Every item's key starts with the prefix: its blocks are hashed once.
	r := c.hk.fp.resumeAfter(b.prefix)
	for _, i := range b.distinct {
		it := &b.items[i]
		it.fp = nonZero(r.sum64(it.key)) // c.fingerprint(it.key)
	}
	b.keyed, b.keyState = true, req.state
}

// lookupItems looks every distinct item up and decides what goes upstream.
// A cached item keeps its times and a copy of its vector (and, for the
// first one, its headers); the rest of the entry is read in place.
func (c *Cache) lookupItems(req *Request) Decision {
	b := req.batch
	now := c.nowMs()
	b.hits, b.sent, b.minFresh, b.oldest, b.model, b.merged = 0, b.sent[:0], math.MaxInt64, math.MaxInt64, "", false
	b.cachedDims, b.drifted = "", false
	c.itemKeys(req)
	b.vecs, b.entries = nil, nil // earlier slices stay valid
	b.views.pass++
	b.views.hint = min(len(b.distinct), maxViewHint)
	// A first look that may lead reads the lease slot before its first
	// index read (leaderLookup says why).
	ahead := b.views.pass == 1 && req.Route.Coalesce.Enabled && !req.CC.OnlyIfCached
	b.views.ahead = nil
	if ahead {
		b.views.ahead, b.views.aheadFP = c.leases, req.LeaseFP()
	}
	kept, missed, copied, tooLarge := 0, 0, 0, false
	for _, i := range b.distinct {
		it := &b.items[i]
		it.entry, it.fresh = nil, nil
		if !req.state.Found || req.state.empty || req.Status == StatusRevalidate {
			continue
		}
		e := &b.scratch
		// The preferred way first costs a hit one read and a miss two; the
		// index first, the other way round. A batch starts as a single
		// request looks (most lookups hit), and goes to the index first
		// once its misses outnumber its hits by two: a batch of new items
		// then reads one index per item, not an entry and an index.
		indexFirst := it.missed == it.fp || missed > kept+1
		found, err := c.table.lookupBatch(&b.views, it.fp, it.key, now, indexFirst, e)
		if err != nil || !found || c.freshness(req, e, now) != fresh {
			it.missed = it.fp
			missed++
			if err != nil || found {
				// Not a clean miss (an error, or a stale copy read maybe
				// before the slot was): the lead looks again in full.
				ahead, b.views.ahead = false, nil
			}
			continue
		}
		if b.views.ahead != nil {
			// A batch with a hit never leads (a partial one is not
			// coalesced): no read ahead for it.
			ahead, b.views.ahead = false, nil
		}
		if b.entries == nil && (len(e.Body)+64)*len(b.items)+512 > maxBatchBuild {
			// Judged at the first hit, before any vector is copied: the
			// answer the cache would build holds one vector for each item,
			// cached or sent, each about this one's size (answerTooLarge).
			// Copied first and judged after, every batch sent whole left up
			// to maxBatchBuild of garbage, which a callback cannot collect
			// (the collector's worker runs between callbacks), and a few
			// dozen in flight took a worker out of memory (review Z270).
			tooLarge = true
			break
		}
		if b.entries == nil {
			// Vectors differ a little in length; the first hit's header
			// text goes there too. Reserved for the batch's items, but
			// for no more than a merged answer may hold (mergeTooLarge):
			// sized by the batch alone, one wide cached vector among 2,047
			// new short items reserved 94 MiB it never used (review Z166).
			// More cached vectors than that grow it; the slices taken
			// before stay valid.
			b.vecs = reuse(b.spareVecs, min((len(e.Body)+len(e.Body)/4)*len(b.distinct), req.Route.MaxEntryBytes+len(e.Body), maxBatchBuild)+256)
			b.entries = reuse(b.spareEntries, len(b.distinct))[:len(b.distinct)]
			b.spareVecs, b.spareEntries = nil, nil
		}
		if copied += len(e.Body); copied > maxBatchBuild {
			// The cached vectors alone would make an answer past what the
			// VM builds: copied on, 2,048 cached vectors of 61 KB took the
			// worker past its 1 GiB (review Z266). The batch goes
			// upstream whole (below).
			tooLarge = true
			break
		}
		b.room(len(e.Body))
		at := len(b.vecs)
		b.vecs = append(b.vecs, e.Body...)
		kept++
		k := &b.entries[kept-1]
		*k = Entry{StoredAt: e.StoredAt, FreshUntil: e.FreshUntil, StaleUntil: e.StaleUntil, ComputeMs: e.ComputeMs,
			Status: e.Status, Flags: e.Flags, Body: b.vecs[at:len(b.vecs):len(b.vecs)]}
		if kept == 1 {
			b.hdrs = reuse(b.spareHeaders, len(e.Headers))
			b.spareHeaders = nil
			for _, kv := range e.Headers {
				b.hdrs = append(b.hdrs, [2]string{b.keepString(kv[0]), b.keepString(kv[1])})
			}
			k.Headers = b.hdrs
		}
		it.entry = k
		b.minFresh = min(b.minFresh, e.FreshUntil-max(e.StoredAt-now, 0))
		b.oldest = min(b.oldest, e.StoredAt)
		if b.model == "" {
			if m, _ := header(e.Headers, embeddingModelHeader); m != "" {
				b.model = b.keepString(m)
			}
		}
		if n := len(e.Headers); n > 0 && len(e.Headers[n-1][0]) == len(embeddingDimsHeader) {
			// The last header of an item's entry (storeEmbeddings), told
			// from the model's, last before it was kept (and only the
			// filter's own headers come after the stored ones), by its
			// length: on every cached item, one comparison, not a search
			// of the list nor a comparison of 27 bytes.
			if d := e.Headers[n-1][1]; b.cachedDims == "" {
				b.cachedDims = b.keepString(d)
			} else if d != b.cachedDims {
				b.drifted = true
			}
		}
	}
	b.scratch = Entry{Headers: b.scratch.Headers[:0]} // nothing aliases the table's buffer
	// The slot was read ahead (by the first index read) and every miss is
	// a clean one, looked for in its bucket's index after that read.
	req.aheadRead = 0
	if ahead && b.views.ahead == nil {
		req.aheadRead = b.views.aheadSeq
	}
	b.views.ahead, b.views.aheadSeq = nil, 0
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
	// With duplicates and no hit too: no cached vector tells the size of
	// its answer, which, rewritten to each item once, would have to be
	// held whole to be merged, past the proxy's buffer limit if it must
	// (a 500 for the client: review Z92). The model computes a repeated
	// item again; the answer passes as any miss's.
	b.fullFetch = b.hits == 0
	if !b.fullFetch && len(b.sent) > 0 && (req.keepBody || b.mergeTooLarge(req.Route.MaxEntryBytes)) {
		// The body cannot be rewritten to the missing items, or their
		// answer is not worth holding to merge.
		b.fetchAll()
	}
	if tooLarge || !b.fullFetch && b.answerTooLarge() {
		b.tooLarge = true
		b.fetchAll()
	}
	if b.drifted {
		// Cached items of one model and version disagree on their
		// dimension: the model drifted between their stores. Nothing of
		// it is served; the batch goes upstream whole (Flight.driftSeen).
		b.fetchAll()
		return Forward
	}
	if len(b.sent) == 0 {
		return Serve
	}
	return Forward
}

// mergeTooLarge reports that the answer to the missing items, by the
// size of a cached vector, would be larger than max (max_entry_bytes).
// Such an answer cannot be stored, so the cached items would save the
// model nothing; and held to its end to be merged (an answer to the
// missing items alone must never pass as it came), it could meet the
// proxy's own buffer limit first, a 500 for the client. The whole batch
// goes upstream instead, its answer passed on as any miss's. (A batch
// with no hit has no vector to judge by: it goes up whole.)
func (b *embBatch) mergeTooLarge(max int) bool {
	if len(b.entries) == 0 {
		return false
	}
	// An item's wrapping ({"object":"embedding","index":N,"embedding":…},)
	// and the list's (model, usage), generously: near the bound a batch
	// is better sent whole than held past it.
	perItem := len(b.entries[0].Body) + 64
	return len(b.sent) > (max-512)/perItem
}

// maxBatchBuild bounds the answer the cache builds for a batch from its
// cached vectors (served whole, or merged with the missing items'), and
// the cached vectors it copies for it: both live in the VM at once, whose
// memory never shrinks (reviews Z264, Z266). A batch past it goes upstream
// whole, its answer passed on as any miss's, never held. 2,048 vectors of
// 1,536 floats in base64 take 16 MiB; as JSON numbers, about 34 MiB (such
// a batch goes upstream whole).
const maxBatchBuild = 24 << 20

// vecBlock is the least the vecs arena grows by: a new block, the cached
// vectors already copied staying where they are. Grown by append, every
// growth copied them, and the slices taken before kept the old array
// alive: twice the vectors at the peak (review Z266).
const vecBlock = 1 << 20

// room makes room for n more bytes in the vecs arena without moving what
// it holds (the entries' bodies and kept strings are slices of it).
func (b *embBatch) room(n int) {
	if len(b.vecs)+n > cap(b.vecs) {
		b.vecs = make([]byte, 0, max(n, vecBlock))
	}
}

// answerTooLarge reports that the answer the cache would build for the
// batch (served whole from its cached vectors, or merged with the missing
// items' answer, each of those the size of a cached vector) would be larger
// than maxBatchBuild: a cached item repeated is copied once per place it
// holds, and one 61 KB vector asked 2,048 times in an 8 KB request built a
// 120 MiB answer in the VM (review Z264).
func (b *embBatch) answerTooLarge() bool {
	if len(b.entries) == 0 {
		return false
	}
	perMissing := len(b.entries[0].Body) + 64
	size := 512 // the list's wrapping: object, model, usage
	for i := range b.items {
		if e := b.items[b.items[i].first].entry; e != nil {
			size += len(e.Body) + 64 // {"object":"embedding","index":N,"embedding":…},
		} else {
			size += perMissing
		}
		if size > maxBatchBuild {
			return true
		}
	}
	return false
}

// fetchAll sends the whole batch upstream as the client wrote it: every
// item then comes from the upstream.
func (b *embBatch) fetchAll() {
	b.fullFetch, b.hits, b.sent = true, 0, b.sent[:0]
	for _, i := range b.distinct {
		b.items[i].entry = nil
		b.sent = append(b.sent, i)
	}
	// The cached vectors copied are let go, and what points into them:
	// kept, each batch sent whole held up to maxBatchBuild for its whole
	// upstream call, and 12 in flight took a worker out of memory (review
	// Z270).
	b.entries, b.vecs, b.hdrs, b.model, b.cachedDims = nil, nil, nil, "", ""
}

// keepString copies s into the vecs arena, which lives as long as the
// batch: the table's buffer s was read from is read into again.
func (b *embBatch) keepString(s string) string {
	b.room(len(s))
	at := len(b.vecs)
	b.vecs = append(b.vecs, s...)
	return bytesString(b.vecs[at:len(b.vecs):len(b.vecs)])
}

// maxViewHint bounds what a batch's first index view allocates for the
// rest (a 2048-item batch over 64 ways would take ≈ 3 MB at once).
const maxViewHint = 256

// embeddingModelHeader keeps the upstream's "model" value with each item,
// to answer fully cached batches as the upstream would.
const embeddingModelHeader = "x-modelcache-embedding-model"

// embeddingDimsHeader keeps with each item the dimension of the answer it
// came in: a batch served from the cache must not mix the vectors of a
// model that drifted under the same name and version between two stores
// (lookupItems). Kept in entries only and never sent.
const embeddingDimsHeader = "x-modelcache-embedding-dims"

// lookupItems tells the two apart by their lengths.
const _ = uint(len(embeddingModelHeader) - len(embeddingDimsHeader) - 1) // they differ

// rewritten reports whether UpstreamBody rewrites the body (without
// building it).
func (r *Request) rewritten() bool { return r.batch != nil && !r.batch.fullFetch }

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

// admitEmbeddings checks an upstream embeddings answer for the items sent
// (top: the answer's top-level members, read by AdmitBody; scanned: its
// items, if AdmitBody's one pass read them).
func (c *Cache) admitEmbeddings(req *Request, body []byte, top *topMembers, scanned *scannedItems) Admission {
	b := req.batch
	data, model := gjson.Parse(top.data), gjson.Parse(top.model)
	b.answerAt, b.answerLen, b.answerDrifted = nil, 0, false
	if top.data == "" {
		return Admission{Reason: ReasonForeignShape} // another API's answer: no data member
	}
	if !data.IsArray() {
		return Admission{Reason: ReasonItemCount}
	}
	// The item count is checked first: counted here only when the
	// single pass below fails for another reason (or finds too few).
	count := func() int {
		n := 0
		data.ForEach(func(_, _ gjson.Result) bool { n++; return true })
		return n
	}
	want, vecs := b.freshSlots()
	dims := b.dims
	reason, seen := ReasonNone, 0
	if scanned != nil {
		dims, seen = scanned.dims, want
	} else {
		clear(vecs)
		data.ForEach(func(_, d gjson.Result) bool {
			seen++
			var idx, emb gjson.Result
			var haveIdx, haveEmb bool
			d.ForEach(func(k, v gjson.Result) bool {
				switch {
				case !haveIdx && k.Str == "index":
					idx, haveIdx = v, true
				case !haveEmb && k.Str == "embedding":
					emb, haveEmb = v, true
				}
				return !haveIdx || !haveEmb
			})
			i, ok := itemIndex(idx, want)
			if !ok || vecs[i] != nil {
				reason = ReasonItemCount
				return false
			}
			n, r := vectorDims(emb, b.encoding)
			if r != ReasonNone {
				reason = r
				return false
			}
			if dims == 0 {
				dims = n
			}
			if n != dims {
				reason = ReasonDimensions
				return false
			}
			vecs[i] = stringBytes(emb.Raw) // a slice of body
			return true
		})
	}
	if (reason == ReasonNone && seen != want) || (reason != ReasonNone && count() != want) {
		return Admission{Reason: ReasonItemCount}
	}
	if reason != ReasonNone {
		return Admission{Reason: reason}
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
				b.answerDrifted = true
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
	b.answerAt, b.answerLen, b.answerDims = &body[0], len(body), dims
	b.answerModel, b.answerUsage = strings.Clone(model.String()), strings.Clone(top.usage)
	return Admission{TTL: req.Route.TTL}
}

// scannedItems is what AdmitBody's one pass over an answer read of its
// items (the vectors are in the batch's fresh slots).
type scannedItems struct{ dims int }

// freshSlots returns how many vectors the answer must hold and the slots
// for them by upstream index (not cleared).
func (b *embBatch) freshSlots() (int, [][]byte) {
	want := len(b.sent)
	if b.fullFetch {
		want = len(b.items)
	}
	if cap(b.fresh) < want {
		b.fresh = make([][]byte, want)
	}
	return want, b.fresh[:want]
}

// answerTop returns the top-level "model" (as a string) and "usage" (raw)
// of an upstream answer: as admitEmbeddings read them if it read this
// very answer, else read now.
func (b *embBatch) answerTop(body []byte) (model, usage string) {
	if len(body) > 0 && b.answerAt == &body[0] && b.answerLen == len(body) {
		return b.answerModel, b.answerUsage
	}
	return gjson.GetBytes(body, "model").String(), gjson.GetBytes(body, "usage").Raw
}

// dimsOf returns the dimension of an admitted answer's vectors: as
// admitEmbeddings found it if it read this very answer, else read now.
func (b *embBatch) dimsOf(body []byte) int {
	if len(body) > 0 && b.answerAt == &body[0] && b.answerLen == len(body) {
		return b.answerDims
	}
	n, _ := vectorDims(gjson.GetBytes(body, "data.0.embedding"), b.encoding)
	return n
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
	if n, ok := finiteNumbers(v.Raw); ok {
		return n, ReasonNone
	}
	return floatVectorDims(v)
}

// floatVectorDims is vectorDims for a float vector, exactly: every
// element converted.
func floatVectorDims(v gjson.Result) (int, Reason) {
	if !v.IsArray() {
		return 0, ReasonBadVector
	}
	n, ok := 0, true
	v.ForEach(func(_, x gjson.Result) bool {
		n++
		// Finite as a float32 too: embedding models compute in it, and a
		// client that keeps vectors so (numpy, FAISS) read 1e39 as +Inf,
		// as the base64 check refuses (review Z133).
		if x.Type != gjson.Number || math.IsInf(float64(float32(x.Num)), 0) || math.IsNaN(x.Num) {
			ok = false
		}
		return ok
	})
	if !ok || n == 0 {
		return 0, ReasonBadVector
	}
	return n, ReasonNone
}

// finiteNumbers is vectorDims' fast path for a float vector: ok when raw
// is a non-empty JSON array of numbers (strict grammar) each of which is
// certainly finite as a float32 (its decimal exponent is at most 37),
// with their count; anything else — a bad element, a huge exponent — is
// left to the exact path, so the answer is always the exact path's.
// It reads every byte once and converts no number.
func finiteNumbers(raw string) (int, bool) {
	n, i, ok := finiteNumbersAt(raw, skipSpace(raw, 0))
	return n, ok && skipSpace(raw, i) == len(raw)
}

// finiteNumbersAt is finiteNumbers for the array at raw[i:], which may go
// on after it: it also returns where the array ends.
func finiteNumbersAt(raw string, i int) (int, int, bool) {
	n := 0
	if i >= len(raw) || raw[i] != '[' {
		return 0, i, false
	}
	i++
	for {
		for i < len(raw) && isJSONSpace(raw[i]) {
			i++
		}
		// The usual number of a unit vector, 0.ddd or -0.ddd right before
		// a comma, in fewer tests than the general reading below (a
		// vector is mostly these; each test costs under V8).
		if j := i + 2; j < len(raw) {
			if raw[i] == '-' {
				j++
			}
			if j < len(raw) && raw[j-2] == '0' && raw[j-1] == '.' {
				if k := skipDigits(raw, j); k > j && k < len(raw) && raw[k] == ',' {
					n++
					i = k + 1
					continue
				}
			}
		}
		if i < len(raw) && raw[i] == '-' {
			i++
		}
		intAt := i
		i = skipDigits(raw, i)
		intEnd := i
		if intEnd == intAt || (intEnd-intAt > 1 && raw[intAt] == '0') {
			return 0, i, false
		}
		fracAt, fracEnd := i, i
		if i < len(raw) && raw[i] == '.' {
			i++
			fracAt = i
			i = skipDigits(raw, i)
			if i == fracAt {
				return 0, i, false
			}
			fracEnd = i
		}
		if i < len(raw) && (raw[i] == 'e' || raw[i] == 'E') {
			i++
			neg := false
			if i < len(raw) && (raw[i] == '+' || raw[i] == '-') {
				neg = raw[i] == '-'
				i++
			}
			expAt, x := i, 0
			for i < len(raw) && raw[i] >= '0' && raw[i] <= '9' {
				x = x*10 + int(raw[i]-'0')
				i++
				if i-expAt > 6 {
					return 0, i, false // too long to add up here
				}
			}
			if i == expAt {
				return 0, i, false
			}
			if neg {
				x = -x
			}
			if e, zero := decimalExponent(raw, intAt, intEnd, fracAt, fracEnd); !zero && e+x > 37 {
				return 0, i, false // maybe beyond MaxFloat32: the exact path decides
			}
		} else if intEnd-intAt > 38 {
			return 0, i, false // the same bound without an exponent
		}
		n++
		for i < len(raw) && isJSONSpace(raw[i]) {
			i++
		}
		if i >= len(raw) {
			return 0, i, false
		}
		if raw[i] == ']' {
			return n, i + 1, true
		}
		if raw[i] != ',' {
			return 0, i, false
		}
		i++
	}
}

// skipDigits returns where the run of decimal digits at raw[i:] ends. It
// tests 8 bytes at a time where 8 remain (a vector's numbers are mostly
// digits): a byte b is a digit iff b-0x30 and b+0x46 both stay below 0x80,
// and the lowest non-digit byte of a word sees no borrow or carry from the
// digits below it, so a word passes only if all its bytes are digits.
func skipDigits(raw string, i int) int {
	for i+8 <= len(raw) {
		w := *(*uint64)(unsafe.Pointer(unsafe.StringData(raw[i:])))
		if (w|(w-0x3030303030303030)|(w+0x4646464646464646))&0x8080808080808080 != 0 {
			break
		}
		i += 8
	}
	for i < len(raw) && raw[i]-'0' <= 9 {
		i++
	}
	return i
}

// decimalExponent is the decimal exponent e of a number's first
// significant digit (0.d… × 10^e) from its integer and fraction digits (an
// integer part has no leading zeros but "0"), and whether it is zero.
func decimalExponent(raw string, intAt, intEnd, fracAt, fracEnd int) (int, bool) {
	if raw[intAt] != '0' {
		return intEnd - intAt, false
	}
	for k := fracAt; k < fracEnd; k++ {
		if raw[k] != '0' {
			return fracAt - k, false
		}
	}
	return 0, true
}

func isJSONSpace(c byte) bool { return c == ' ' || c == '\t' || c == '\n' || c == '\r' }

// storeEmbeddings stores every freshly computed item.
func (c *Cache) storeEmbeddings(req *Request, status int, headers [][2]string, body []byte, adm Admission, computeMs uint32) StoreResult {
	now := c.nowMs()
	var flags uint8
	window := c.storeStaleWindow(req, &flags)
	res, ok := c.prepareStore(req, adm, now+adm.TTL.Milliseconds()+window)
	if !ok {
		return res
	}
	b := req.batch
	c.itemKeys(req)
	b.model, _ = b.answerTop(body)
	hs := c.storedHeaders(req, headers)
	hs = append(hs, [2]string{embeddingModelHeader, b.model})
	if dims := b.dimsOf(body); dims > 0 { // last: lookupItems reads it there
		hs = append(hs, [2]string{embeddingDimsHeader, strconv.Itoa(dims)})
	}
	// Every entry is encoded first, then the entries are stored bucket by
	// bucket: one index write per bucket, the first with the index as the
	// lookups read it (table_batch.go).
	tag := TenantTag(req.tenant)
	t := c.table
	ins := reuse(b.ins, len(b.distinct))
	enc := c.embEnc[:0] // the table copies what it stores
	sorted := true
	for _, i := range b.distinct {
		it := &b.items[i]
		if it.fresh == nil {
			continue
		}
		if b.rekeyedAt == req.lookedAt && it.lookedFP != it.fp && it.lookedFP != 0 && c.purgedAfterLook(it.lookedFP, req.lookedAt, now) {
			res.refuseItems(1, ReasonInvalidated)
			continue
		}
		e := Entry{Key: it.key, StoredAt: now, FreshUntil: now + adm.TTL.Milliseconds(), ComputeMs: computeMs,
			Status: uint16(status), Headers: hs, Body: it.fresh}
		e.StaleUntil, e.Flags = e.FreshUntil+window, flags
		size := e.EncodedSize()
		if size > req.Route.MaxEntryBytes {
			res.refuseItems(1, ReasonTooLarge)
			continue
		}
		if cap(enc) == 0 {
			// Room for every item at the first one's size, as most
			// batches' items are alike, but no more than the reuse
			// bound: a long first item before 1,500 short ones sized it
			// at 148 MiB (review Z112). A batch past it grows as append
			// grows it; the entries already written keep their array.
			enc = make([]byte, 0, min(size*len(b.distinct), max(size, maxSpareBatch)))
		}
		at := len(enc)
		enc = e.AppendEncode(enc)
		ins = append(ins, batchInsert{fp: it.fp, bucket: t.bucketOf(it.fp), tag: tag, staleUntil: e.StaleUntil, encoded: enc[at:len(enc):len(enc)]})
		sorted = sorted && (len(ins) == 1 || ins[len(ins)-2].bucket <= ins[len(ins)-1].bucket)
	}
	if cap(enc) <= maxSpareBatch { // bounded as the batch's arenas are
		c.embEnc = enc[:0]
	}
	b.ins = ins[:0]
	if !sorted {
		ins = sortByBucket(ins)
	}
	res.Inserts = make([]InsertResult, 0, len(ins))
	mark, marked := t.entryPurges()
	for from := 0; from < len(ins); {
		bk := ins[from].bucket
		to := from + 1
		for to < len(ins) && ins[to].bucket == bk {
			to++
		}
		var v *indexView
		if at, ok := b.views.at[bk]; ok {
			v = &b.views.views[at]
		}
		t.insertBucket(bk, v, ins[from:to], now, req.lookedAt)
		for _, x := range ins[from:to] {
			if x.err != nil {
				res.refuseItems(1, storeErrReason(x.err))
				if indexWritten(x.err) {
					res.Inserts = append(res.Inserts, x.res)
				}
				continue
			}
			res.ItemsStored++
			res.Inserts = append(res.Inserts, x.res)
		}
		from = to
	}
	if after, ok := t.entryPurges(); !marked || !ok || after != mark {
		// A purge during the store may have taken a way whose entry it
		// wrote (stillListed): each bucket's index is read again.
		for from := 0; from < len(ins); {
			to := from + 1
			for to < len(ins) && ins[to].bucket == ins[from].bucket {
				to++
			}
			n := t.batchStillListed(ins[from].bucket, ins[from:to], req.lookedAt, now)
			res.ItemsStored -= n
			res.refuseItems(n, ReasonInvalidated)
			from = to
		}
	}
	res.FreshUntil = now + adm.TTL.Milliseconds()
	return res
}

// sortByBucket orders inserts by bucket, keeping the order of each
// bucket's: it sorts bucket-and-position keys and moves each insert once
// (a stable sort of the inserts themselves moves them many times).
func sortByBucket(ins []batchInsert) []batchInsert {
	const posBits = 24
	order := make([]uint64, len(ins))
	for i := range ins {
		if len(ins) >= 1<<posBits || ins[i].bucket >= 1<<(64-posBits) {
			slices.SortStableFunc(ins, func(x, y batchInsert) int { return cmp.Compare(x.bucket, y.bucket) })
			return ins
		}
		order[i] = ins[i].bucket<<posBits | uint64(i)
	}
	slices.Sort(order)
	out := make([]batchInsert, len(ins))
	for k, o := range order {
		out[k] = ins[o&(1<<posBits-1)]
	}
	return out
}

// MergedBody builds the client's answer for a partial hit from the
// upstream's answer for the missing items and the cached ones. usage is
// the upstream's (the tokens actually computed).
func (c *Cache) MergedBody(req *Request, upstream []byte) []byte {
	b := req.batch
	model, usage := b.answerTop(upstream)
	return c.embeddingBody(b, model, usage)
}

func (c *Cache) embeddingBody(b *embBatch, model, usage string) []byte {
	size := 64
	for i := range b.items {
		size += 48 + len(b.vector(i))
	}
	// The batch's own arena, an earlier batch's when there is one: the
	// host copies the answer at once, and the batch is reused only when
	// nothing reads it.
	out := reuse(b.spareOut, size)
	b.spareOut = nil
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
	out = append(out, '}')
	b.out = out
	return out
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
	// The headers and their text are the request's own buffers (reused
	// with it, see recycle.go), as a hit's are: the host sends them at once.
	hs := req.resp[:0]
	status := 200
	if first := b.items[b.distinct[0]].entry; first != nil {
		// Its status with its headers, as a whole request's hit replays
		// them (a route's statuses may list a 203).
		if first.Status > 200 && first.Status < 300 {
			status = int(first.Status)
		}
		for _, h := range first.Headers {
			// Not the headers that described the body the item came in
			// (a digest, an ETag, listed in stored_headers): this body is
			// assembled from items.
			if h[0] != embeddingModelHeader && h[0] != embeddingDimsHeader && !describesBody(h[0]) {
				hs = append(hs, h)
			}
		}
	}
	buf := req.respBuf[:0]
	if need := len(c.cfg.CacheName) + 96; cap(buf) < need {
		buf = make([]byte, 0, need)
	}
	buf = appendInt(buf, max((now-b.oldest)/1000, 0))
	ageLen := len(buf)
	buf = appendInt(buf, int64(len(b.items)))
	buf = append(buf, '/')
	buf = appendInt(buf, int64(len(b.items)))
	itemsLen := len(buf)
	cs := CacheStatus{Status: req.Status, TTL: floorDiv(b.minFresh-now, 1000), HasTTL: true}
	buf = cs.AppendHeader(buf, c.cfg.CacheName)
	// The strings alias buf: it is not appended to after this.
	hs = append(hs, [2]string{"age", bytesString(buf[:ageLen])}, [2]string{CachedItemsHeader, bytesString(buf[ageLen:itemsLen])},
		[2]string{"cache-status", bytesString(buf[itemsLen:])})
	req.resp, req.respBuf = hs, buf
	return status, hs, c.embeddingBody(b, b.model, "")
}

// CachedItemsHeader tells the client how many items of an embeddings batch
// came from the cache: "cached/total".
const CachedItemsHeader = "x-modelcache-cached-items"

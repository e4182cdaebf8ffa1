package cachecore

import (
	"encoding/base64"
	"encoding/binary"
	"math"
	"strconv"
	"strings"

	"github.com/tidwall/gjson"
)

// Shadow comparison (see slo.go for the overview of staleness): sampling
// hits, comparing a cached answer with a fresh one per the route's
// comparator, and invalidating a namespace whose answers diverge.

// WantsShadow reports whether this fresh hit is sampled for comparison.
func (c *Cache) WantsShadow(req *Request) bool {
	sh := req.Route.Shadow
	// only-if-cached: never an upstream call, a comparison's included.
	if sh == nil || sh.Sample <= 0 || req.Status != StatusHit || c.cfg.Cluster == "" || req.CC.OnlyIfCached {
		return false
	}
	return float64(c.rand()>>11)/float64(1<<53) < sh.Sample
}

// ShadowSlots is the per-route limiter of shadow calls.
func (c *Cache) ShadowSlots(r *Route) *BackgroundSlots {
	if c.shadowSlots == nil {
		c.shadowSlots = map[*Route]*BackgroundSlots{}
	}
	b := c.shadowSlots[r]
	if b == nil {
		b = &BackgroundSlots{store: c.store, n: r.Shadow.MaxConcurrent, key: "mc:shadow:" + r.Name, leases: c.leases}
		c.shadowSlots[r] = b
	}
	return b
}

// Agrees compares the cached answer req was served with and a fresh answer
// of the upstream for the same request, with the route's comparator.
func (c *Cache) Agrees(req *Request, freshHeaders [][2]string, fresh []byte) bool {
	agree, ok := c.compareFresh(req, freshHeaders, fresh)
	return agree && ok
}

// maxShadowBatchAnswer bounds a fresh embeddings answer a shadow compares
// (a batch answer holds one vector per item, each within max_entry_bytes).
const maxShadowBatchAnswer = 16 << 20

// shadowLimit is the largest fresh answer compareFresh compares: a
// batch's is its items' entries together, bounded.
func shadowLimit(req *Request) int {
	if b := req.batch; b != nil {
		return min(len(b.items)*req.Route.MaxEntryBytes, maxShadowBatchAnswer)
	}
	return req.Route.MaxEntryBytes
}

// compareFresh is Agrees, with ok false when the fresh answer cannot be
// compared at all — too large to read, not JSON, an error report, an
// unfinished stream, not one vector per item — which says nothing about
// the model: the shadow counts it as an error, never as a divergence.
func (c *Cache) compareFresh(req *Request, freshHeaders [][2]string, fresh []byte) (agree, ok bool) {
	sh := req.Route.Shadow
	if len(fresh) > shadowLimit(req) {
		return false, false
	}
	if req.batch != nil {
		// The shadow call asked for the whole request, and its answer is
		// judged for every item as a store would judge it (review Z41):
		// an error report, a vector that is no vector, an answer failing
		// the route's rules is no answer to the items' question.
		// Its size is shadowLimit's to bound: the items are stored one
		// by one, each within max_entry_bytes.
		req.batch.fullFetch, req.batch.sent = true, req.batch.sent[:0]
		switch c.admitContent(req, freshHeaders, fresh).Reason {
		case ReasonNone:
		case ReasonDimensions:
			// Vectors of another dimension than the cached ones: the
			// drift a shadow is there to see (review Z43), if admission
			// found every item a vector of one dimension first (not a
			// mismatch among them, where it stops before later items;
			// review Z46) and the answer holds the route's rules,
			// which admission had not reached yet.
			if !req.batch.answerDrifted {
				return false, false
			}
			for i := range req.Route.Rules {
				if !req.Route.Rules[i].Holds(fresh) {
					return false, false
				}
			}
		default:
			return false, false
		}
		return c.agreeEmbeddings(req, fresh)
	}
	if req.Entry == nil {
		return false, false
	}
	cached := req.Entry.Body
	if StreamsResponse(req, entryHeaders(req.Entry)) {
		cached = assembledClean(req.Route.Kind, cached)
	}
	// Judged as a store would judge it (review Z25): an answer the route
	// refuses — cut by max_tokens, failing a validation rule, of the
	// wrong shape — is no answer to the entry's question. One of low
	// confidence is the model's answer still, and compared.
	if adm := c.AdmitBody(req, freshHeaders, fresh); adm.Reason != ReasonNone && adm.Reason != ReasonLowConfidence {
		return false, false
	}
	if StreamsResponse(req, freshHeaders) {
		fresh = assembledClean(req.Route.Kind, fresh)
	}
	// Both bounded before gjson reads them (jsonbound.go); an error report
	// is no answer to compare with.
	if checkJSON(cached) != ReasonNone || checkJSON(fresh) != ReasonNone || reportsError(gjson.ParseBytes(fresh)) {
		return false, false
	}
	paths := sh.Paths
	if len(paths) == 0 {
		paths = []string{""}
	}
	seen := false // a path one of the answers holds
	for _, p := range paths {
		var a, b gjson.Result
		if p == "" {
			a, b = gjson.ParseBytes(cached), gjson.ParseBytes(fresh)
			seen = true
			if !agreeUnstamped(sh, a, b) {
				return false, true
			}
			continue
		}
		a, b = gjson.GetBytes(cached, p), gjson.GetBytes(fresh, p)
		seen = seen || a.Exists() || b.Exists()
		if !compareValues(sh, a, b) {
			return false, true
		}
	}
	// No path in either answer compares nothing: the classify default's
	// "label" on TEI's top-level arrays found every label swap an
	// agreement (review Z153). A path neither holds beside one that
	// compares still agrees (the tool calls of a text answer: review Z70).
	return seen, seen
}

func entryHeaders(e *Entry) [][2]string { return e.Headers }

// agreeUnstamped compares two whole answers (no shadow paths: a json
// route's default) but for the top-level members a server stamps on each
// call, "id" and "created": vLLM's /score and KServe v2 add them, and a
// deterministic model diverged on every sample and had its entries
// invalidated for nothing (review Z184). Each answer is compared whole,
// without them, by the route's comparator: member by member, cosine found
// a member holding no number (a model name) unequal to itself (review
// Z187). Answers that are not objects are compared as they are.
func agreeUnstamped(sh *Shadow, a, b gjson.Result) bool {
	return compareValues(sh, unstamped(a), unstamped(b))
}

// unstamped is v, an object, without its top-level "id" and "created".
func unstamped(v gjson.Result) gjson.Result {
	if !v.IsObject() || !v.Get("id").Exists() && !v.Get("created").Exists() {
		return v
	}
	b := []byte{'{'}
	v.ForEach(func(k, m gjson.Result) bool {
		if k.Str != "id" && k.Str != "created" {
			if len(b) > 1 {
				b = append(b, ',')
			}
			b = append(append(append(b, k.Raw...), ':'), m.Raw...)
		}
		return true
	})
	return gjson.ParseBytes(append(b, '}'))
}

// assembledClean is the message a stream assembles to, or nil when the
// stream is faulty (too deep, an error event, malformed, unfinished).
func assembledClean(kind Kind, body []byte) []byte {
	s := AssembleStream(kind, body)
	if s.Refusal() != ReasonNone { // as admission reads it
		return nil
	}
	return s.Assembled
}

func compareValues(sh *Shadow, a, b gjson.Result) bool {
	if a.Exists() != b.Exists() {
		return false
	}
	if !a.Exists() {
		// A path neither answer holds (the tool calls of a text answer)
		// agrees, for every comparator: exact and cosine found two
		// missing values unequal, and identical answers invalidated the
		// model (review Z70).
		return true
	}
	switch sh.Compare {
	case "text":
		return normalizeText(a) == normalizeText(b)
	case "label":
		return a.String() == b.String()
	case "numeric":
		sa, na := numericForm(a)
		sb, nb := numericForm(b)
		if sa != sb || len(na) != len(nb) {
			// Another shape, or other text beside the numbers (a label
			// beside its score; review Z247). Values with no number (text)
			// are compared as they are, not found equal for holding none
			// (review Z201).
			return false
		}
		for i := range na {
			if math.Abs(na[i]-nb[i]) > sh.Tolerance {
				return false
			}
		}
		return true
	case "cosine":
		sa, va := numericForm(a)
		sb, vb := numericForm(b)
		if sa != sb || len(va) != len(vb) {
			return false // as numeric's
		}
		if len(va) == 0 {
			return true // two equal texts are equal (review Z201)
		}
		return cosine(va, vb) >= sh.MinCosine
	}
	return jsonEqual(a, b)
}

// normalizeText folds case and whitespace, so formatting-only differences
// in generated text do not count as divergence. An array or object (the
// default paths' choices.#…, a tool call) is folded string by string, on
// its canonical form: folded as JSON text, a line break was the escape
// "\n" and a space next to a quote stuck to it (review Z136).
func normalizeText(v gjson.Result) string {
	if !v.IsArray() && !v.IsObject() {
		return foldText(v.String())
	}
	c, err := Canonicalize([]byte(v.Raw), nil)
	if err != nil {
		return v.Raw
	}
	var b strings.Builder
	textForm(&b, gjson.ParseBytes(c), "")
	return b.String()
}

// foldText is s in lower case, its runs of whitespace one space, trimmed.
func foldText(s string) string {
	return strings.Join(strings.Fields(strings.ToLower(s)), " ")
}

// textForm appends v's folded form to b: strings folded (foldText) and
// quoted, the structure and every other value as written (v is canonical:
// members sorted). A tool call's "id" is left out — the model makes a new
// one for every completion, and the same call diverged on every sample
// (review Z136) — and its "arguments", JSON in a string, are compared as
// canonical JSON. member is the name v is the value of ("" in an array).
// Its depth is checkJSON's, which both answers passed.
func textForm(b *strings.Builder, v gjson.Result, member string) {
	switch {
	case v.IsObject():
		call := v.Get("function").IsObject() || v.Get("custom").IsObject() // a tool call's id is the server's, new each time (a custom call's too; review Z268)
		b.WriteByte('{')
		v.ForEach(func(k, x gjson.Result) bool {
			if call && k.Str == "id" {
				return true
			}
			b.WriteString(strconv.Quote(k.Str))
			b.WriteByte(':')
			textForm(b, x, k.Str)
			b.WriteByte(',')
			return true
		})
		b.WriteByte('}')
	case v.IsArray():
		b.WriteByte('[')
		v.ForEach(func(_, x gjson.Result) bool {
			textForm(b, x, "")
			b.WriteByte(',')
			return true
		})
		b.WriteByte(']')
	case v.Type == gjson.String:
		if member == "arguments" && checkJSON([]byte(v.Str)) == ReasonNone {
			if c, err := Canonicalize([]byte(v.Str), nil); err == nil {
				b.WriteString(strconv.Quote(string(c)))
				return
			}
		}
		b.WriteString(strconv.Quote(foldText(v.Str)))
	default:
		b.WriteString(v.Raw)
	}
}

// numericForm splits v into its shape and its numbers, for the numeric and
// cosine comparators: its canonical form (members sorted: a server that
// writes a map in another order agrees; review Z247) with every number
// written as #, and the numbers in that order. Text beside the numbers
// stays in the shape, and is compared exactly.
func numericForm(v gjson.Result) (string, []float64) {
	if v.Type == gjson.Number {
		return "#", []float64{v.Num}
	}
	c, err := Canonicalize([]byte(v.Raw), nil)
	if err != nil {
		return v.Raw, numbers(v)
	}
	var b strings.Builder
	var nums []float64
	shapeOf(&b, gjson.ParseBytes(c), &nums)
	return b.String(), nums
}

// shapeOf appends v's shape to b and its numbers to nums (v is canonical;
// its depth is checkJSON's, which both answers passed).
func shapeOf(b *strings.Builder, v gjson.Result, nums *[]float64) {
	switch {
	case v.Type == gjson.Number:
		b.WriteByte('#')
		*nums = append(*nums, v.Num)
	case v.IsObject():
		b.WriteByte('{')
		v.ForEach(func(k, x gjson.Result) bool {
			b.WriteString(k.Raw)
			b.WriteByte(':')
			shapeOf(b, x, nums)
			b.WriteByte(',')
			return true
		})
		b.WriteByte('}')
	case v.IsArray():
		b.WriteByte('[')
		v.ForEach(func(_, x gjson.Result) bool {
			shapeOf(b, x, nums)
			b.WriteByte(',')
			return true
		})
		b.WriteByte(']')
	default:
		b.WriteString(v.Raw)
	}
}

// numbers flattens a number or an array of numbers (nested arrays, and
// objects' values, too); a string, null or boolean has none. (gjson's
// ForEach hands such a value to its callback as is: recursing on it never
// ended.)
func numbers(v gjson.Result) []float64 {
	if v.Type == gjson.Number {
		return []float64{v.Num}
	}
	if !v.IsArray() && !v.IsObject() {
		return nil
	}
	var out []float64
	v.ForEach(func(_, x gjson.Result) bool {
		out = append(out, numbers(x)...)
		return true
	})
	return out
}

func cosine(a, b []float64) float64 {
	// Scaled by the largest magnitude first: squares of finite components
	// above 1e154 would overflow to +Inf, and the cosine to NaN.
	var m float64
	for i := range a {
		m = max(m, math.Abs(a[i]), math.Abs(b[i]))
	}
	if m == 0 {
		return 1 // two zero vectors: identical (review Z136)
	}
	if math.IsInf(m, 0) || math.IsNaN(m) {
		return 0
	}
	var dot, na, nb float64
	for i := range a {
		x, y := a[i]/m, b[i]/m
		dot += x * y
		na += x * x
		nb += y * y
	}
	if na == 0 || nb == 0 {
		return 0
	}
	return dot / math.Sqrt(na) / math.Sqrt(nb)
}

// agreeEmbeddings compares every cached item of a batch with the fresh
// vector of the same item, found by its "index" as admission finds it
// (cosine similarity; base64 decoded first). A fresh answer that is not
// one vector per item cannot be compared (ok false).
func (c *Cache) agreeEmbeddings(req *Request, fresh []byte) (agree, ok bool) {
	b := req.batch
	data := gjson.GetBytes(fresh, "data").Array()
	if len(data) != len(b.items) {
		return false, false
	}
	byIndex := make([]gjson.Result, len(b.items))
	for _, d := range data {
		i, ok := itemIndex(d.Get("index"), len(byIndex))
		if !ok || byIndex[i].Exists() {
			return false, false
		}
		byIndex[i] = d.Get("embedding")
	}
	min := req.Route.Shadow.MinCosine
	for i := range b.items {
		it := &b.items[b.items[i].first]
		if it.entry == nil {
			continue
		}
		if checkJSON(it.entry.Body) != ReasonNone { // read from the shared store
			return false, false
		}
		cached := decodeVector(gjson.ParseBytes(it.entry.Body), b.encoding)
		got := decodeVector(byIndex[i], b.encoding)
		if len(cached) == 0 || len(got) == 0 {
			return false, false // no vector to compare
		}
		if len(cached) != len(got) || cosine(cached, got) < min {
			return false, true
		}
	}
	return true, true
}

func decodeVector(v gjson.Result, encoding string) []float64 {
	if encoding != "base64" {
		return numbers(v)
	}
	raw, err := base64.StdEncoding.DecodeString(v.String())
	if err != nil || len(raw)%4 != 0 {
		return nil
	}
	out := make([]float64, len(raw)/4)
	for i := range out {
		out[i] = float64(math.Float32frombits(binary.LittleEndian.Uint32(raw[4*i:])))
	}
	return out
}

// ShadowResult is what one comparison did to its namespace.
type ShadowResult struct {
	Invalidated bool
	// HeldForTenants: the divergence rate was exceeded, but all divergent
	// samples came from one tenant (shadow.min_tenants): not invalidated.
	HeldForTenants    bool
	Samples, Diverged uint32 // in the window, at the time of the decision
	// state is the model's state the comparison left: the new generation
	// after an invalidation, under which the fresh answer is stored —
	// unless moved: the generation had moved on from the hit's before the
	// comparison (a purge while the call was out).
	state ModelState
	moved bool
}

// ObserveShadow records one comparison of (route, model). When the share
// of divergent comparisons in the window exceeds max_divergence (with at
// least min_samples), the namespace moves to a new generation: every
// entry of that model on that route is unreachable from now on.
func (c *Cache) ObserveShadow(req *Request, diverged bool) (ShadowResult, error) {
	sh := req.Route.Shadow
	var res ShadowResult
	now := c.nowMs()
	st, err := c.updateModel(req.Route.Name, req.Model, func(r *modelRecord, _ bool) bool {
		res = ShadowResult{moved: r.gen != req.state.Gen}
		if res.moved {
			// The entry compared is of a generation the model has left
			// (an invalidation, a purge, a version switch while the call
			// was out): it says nothing of the current one. Counted, the
			// calls out at an invalidation filled the new generation's
			// window with the old model's divergence, and invalidated it
			// again (review Z207).
			res.Samples, res.Diverged = r.samples, r.diverged
			return false
		}
		if now-r.divStart > sh.Window.Milliseconds() || now < r.divStart { // or the wall clock stepped back past its start
			r.divStart, r.samples, r.diverged, r.divTenant, r.divOthers = now, 0, 0, 0, 0
		}
		r.samples++
		if diverged {
			// The credential, not the header it came in: one key sent as
			// Authorization and as x-api-key is two tenants for the key,
			// but one caller, who could invalidate every tenant's entries
			// alone (review Z268).
			if tag := req.credential; r.diverged == 0 {
				r.divTenant = tag
			} else if tag != r.divTenant {
				r.divOthers++
			}
			r.diverged++
		}
		res.Samples, res.Diverged = r.samples, r.diverged
		// One tenant's divergent samples alone never invalidate a model
		// for every tenant (it could make its own hits diverge on purpose):
		// with min_tenants 2 a second tenant must see divergence too.
		tenantsAgree := sh.MinTenants <= 1 || req.Route.Shared || r.divOthers > 0
		if r.samples >= uint32(sh.MinSamples) && float64(r.diverged)/float64(r.samples) > sh.MaxDivergence {
			if !tenantsAgree {
				res.HeldForTenants = true
				return true
			}
			r.moveTo(c.newGeneration())
			res.Invalidated = true
		}
		return true
	})
	res.state = st
	return res, err
}

// PrepareShadowStore readies req to store the fresh answer of a shadow call
// (which asked for the whole request) under st: the state the hit was
// served under, or the generation the comparison's own invalidation
// made. The store refuses it if the model moved on from st since (a purge
// or a version switch by anyone else: settleModel).
func (c *Cache) PrepareShadowStore(req *Request, st ModelState) {
	if req.batch != nil {
		req.batch.fullFetch = true
		req.batch.sent = req.batch.sent[:0]
	}
	req.state = st
	c.rekey(req)
	if req.batch != nil {
		c.itemKeys(req)
	}
}

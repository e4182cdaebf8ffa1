package cachecore

import (
	"encoding/base64"
	"encoding/binary"
	"errors"
	"math"
	"strings"
	"time"

	"github.com/tidwall/gjson"
)

// Staleness you can see.
//
// A cached model answer goes stale silently: the model is retrained, the
// world changes. The cache measures it three ways:
//
//   - age at serve: every response of a route records how old its answer was
//     (a histogram, kept by the filter);
//   - a stale-serving rate against an SLO: the share of a route's responses
//     older than freshness_slo.max_age over a sliding window, process-wide.
//     Crossing max_fraction is one WARN line and a stat, not one line per
//     request; coming back under is one recovery line;
//   - shadow comparison: a sampled fraction of hits also asks the upstream in
//     the background and compares the answers with the route's comparator.
//     When too many diverge within a window, the namespace (route, model) is
//     invalidated — a generation change — and the diverged entry is replaced
//     by the fresh answer if it passes admission.

// ---- stale-serving SLO ----

const sloBuckets = 12

// sloCounts are one VM's responses not yet flushed to shared data.
type sloCounts struct{ total, stale uint64 }

// NoteServed counts one response of route with the age of its answer (zero
// for answers fresh from the upstream).
func (c *Cache) NoteServed(r *Route, age time.Duration) {
	if r.FreshnessSLO == nil {
		return
	}
	if c.slo == nil {
		c.slo = map[*Route]*sloCounts{}
	}
	n := c.slo[r]
	if n == nil {
		n = &sloCounts{}
		c.slo[r] = n
	}
	n.total++
	if age > r.FreshnessSLO.MaxAge {
		n.stale++
	}
}

// SLOStatus is a route's stale-serving rate after a flush.
type SLOStatus struct {
	Route       *Route
	Total       uint64 // responses in the window
	Stale       uint64 // of which older than max_age
	Rate        float64
	Breached    bool
	Transition  bool // this flush crossed the objective, one way or the other
	Measurable  bool // at least min_samples responses in the window
	WindowTotal time.Duration
}

// FlushSLO adds this VM's counts to the shared, process-wide window of each
// route and evaluates the objective. Each crossing is reported by exactly
// one VM (the one whose compare-and-swap made it), so it is logged once.
func (c *Cache) FlushSLO() []SLOStatus {
	var out []SLOStatus
	now := c.nowMs()
	for _, r := range c.cfg.Routes {
		if r.FreshnessSLO == nil {
			continue
		}
		n := c.slo[r]
		if n == nil {
			n = &sloCounts{}
		}
		st, err := c.flushRoute(r, n, now)
		if err != nil {
			continue // counts stay local; next flush tries again
		}
		n.total, n.stale = 0, 0
		out = append(out, st)
	}
	return out
}

func (c *Cache) flushRoute(r *Route, n *sloCounts, now int64) (SLOStatus, error) {
	slo := r.FreshnessSLO
	width := slo.Window.Milliseconds() / sloBuckets
	if width < 1 {
		width = 1
	}
	key := "mc:slo:" + r.Name
	for attempt := 0; attempt < maxCASAttempts; attempt++ {
		raw, cas, err := c.store.Get(key)
		exists := err == nil
		if err != nil && !errors.Is(err, ErrNotFound) {
			return SLOStatus{}, err
		}
		breached, starts, totals, stales := decodeSLO(raw)
		start := now - now%width
		i := int((now / width) % sloBuckets)
		if starts[i] != start {
			starts[i], totals[i], stales[i] = start, 0, 0
		}
		totals[i] += uint32(min(n.total, math.MaxUint32/2))
		stales[i] += uint32(min(n.stale, math.MaxUint32/2))
		st := SLOStatus{Route: r, WindowTotal: slo.Window}
		for j := 0; j < sloBuckets; j++ {
			if starts[j] > now-slo.Window.Milliseconds() {
				st.Total += uint64(totals[j])
				st.Stale += uint64(stales[j])
			}
		}
		if st.Total > 0 {
			st.Rate = float64(st.Stale) / float64(st.Total)
		}
		st.Measurable = st.Total >= uint64(slo.MinSamples)
		next := breached
		if st.Measurable {
			next = st.Rate > slo.MaxFraction
		}
		st.Breached, st.Transition = next, next != breached
		if n.total == 0 && !st.Transition && exists {
			return st, nil // nothing to add: read-only evaluation
		}
		if !exists {
			if cas, err = CreateCAS(c.store); err != nil {
				return SLOStatus{}, err
			}
		}
		err = c.store.Set(key, encodeSLO(next, starts, totals, stales), cas)
		if errors.Is(err, ErrCasMismatch) {
			continue
		}
		return st, err
	}
	return SLOStatus{}, ErrContention
}

func decodeSLO(raw []byte) (bool, [sloBuckets]int64, [sloBuckets]uint32, [sloBuckets]uint32) {
	var starts [sloBuckets]int64
	var totals, stales [sloBuckets]uint32
	if len(raw) != 3+16*sloBuckets || raw[0] != 'M' || raw[1] != 'S' {
		return false, starts, totals, stales
	}
	le := binary.LittleEndian
	for i := 0; i < sloBuckets; i++ {
		b := raw[3+16*i:]
		starts[i] = int64(le.Uint64(b))
		totals[i] = le.Uint32(b[8:])
		stales[i] = le.Uint32(b[12:])
	}
	return raw[2] == 1, starts, totals, stales
}

func encodeSLO(breached bool, starts [sloBuckets]int64, totals, stales [sloBuckets]uint32) []byte {
	b := make([]byte, 3, 3+16*sloBuckets)
	b[0], b[1] = 'M', 'S'
	if breached {
		b[2] = 1
	}
	le := binary.LittleEndian
	for i := 0; i < sloBuckets; i++ {
		b = le.AppendUint64(b, uint64(starts[i]))
		b = le.AppendUint32(b, totals[i])
		b = le.AppendUint32(b, stales[i])
	}
	return b
}

// ---- shadow comparison ----

// WantsShadow reports whether this fresh hit is sampled for comparison.
func (c *Cache) WantsShadow(req *Request) bool {
	sh := req.Route.Shadow
	if sh == nil || sh.Sample <= 0 || req.Status != StatusHit || c.cfg.Cluster == "" {
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
		b = &BackgroundSlots{store: c.store, n: r.Shadow.MaxConcurrent, key: "mc:shadow:" + r.Name}
		c.shadowSlots[r] = b
	}
	return b
}

// Agrees compares the cached answer req was served with and a fresh answer
// of the upstream for the same request, with the route's comparator.
func (c *Cache) Agrees(req *Request, freshHeaders [][2]string, fresh []byte) bool {
	sh := req.Route.Shadow
	if len(fresh) > req.Route.MaxEntryBytes {
		return false
	}
	if req.batch != nil {
		return checkJSON(fresh) == ReasonNone && c.agreeEmbeddings(req, fresh)
	}
	if req.Entry == nil {
		return false
	}
	cached := req.Entry.Body
	if StreamsResponse(req, entryHeaders(req.Entry)) {
		cached = assembledClean(req.Route.Kind, cached)
	}
	if StreamsResponse(req, freshHeaders) {
		fresh = assembledClean(req.Route.Kind, fresh)
	}
	// Both bounded before gjson reads them (jsonbound.go); an error report
	// is no answer to compare with.
	if checkJSON(cached) != ReasonNone || checkJSON(fresh) != ReasonNone || reportsError(gjson.ParseBytes(fresh)) {
		return false
	}
	paths := sh.Paths
	if len(paths) == 0 {
		paths = []string{""}
	}
	for _, p := range paths {
		var a, b gjson.Result
		if p == "" {
			a, b = gjson.ParseBytes(cached), gjson.ParseBytes(fresh)
		} else {
			a, b = gjson.GetBytes(cached, p), gjson.GetBytes(fresh, p)
		}
		if !compareValues(sh, a, b) {
			return false
		}
	}
	return true
}

func entryHeaders(e *Entry) [][2]string { return e.Headers }

// assembledClean is the message a stream assembles to, or nil when the
// stream is faulty (too deep, an error event, malformed, unfinished).
func assembledClean(kind Kind, body []byte) []byte {
	s := AssembleStream(kind, body)
	if s.TooDeep || s.ErrorEvent || s.Malformed || !s.Done {
		return nil
	}
	return s.Assembled
}

func compareValues(sh *Shadow, a, b gjson.Result) bool {
	if a.Exists() != b.Exists() {
		return false
	}
	switch sh.Compare {
	case "text":
		return normalizeText(a) == normalizeText(b)
	case "label":
		return a.String() == b.String()
	case "numeric":
		na, nb := numbers(a), numbers(b)
		if len(na) != len(nb) {
			return false
		}
		for i := range na {
			if math.Abs(na[i]-nb[i]) > sh.Tolerance {
				return false
			}
		}
		return true
	case "cosine":
		va, vb := numbers(a), numbers(b)
		return len(va) > 0 && len(va) == len(vb) && cosine(va, vb) >= sh.MinCosine
	}
	return jsonEqual(a, b)
}

// normalizeText folds case and whitespace, so formatting-only differences
// in generated text do not count as divergence.
func normalizeText(v gjson.Result) string {
	var s string
	if v.IsArray() || v.IsObject() {
		c, err := Canonicalize([]byte(v.Raw), nil)
		if err != nil {
			return v.Raw
		}
		s = string(c)
	} else {
		s = v.String()
	}
	return strings.Join(strings.Fields(strings.ToLower(s)), " ")
}

// numbers flattens a number or an array of numbers (nested arrays too).
func numbers(v gjson.Result) []float64 {
	if v.Type == gjson.Number {
		return []float64{v.Num}
	}
	var out []float64
	v.ForEach(func(_, x gjson.Result) bool {
		out = append(out, numbers(x)...)
		return true
	})
	return out
}

func cosine(a, b []float64) float64 {
	var dot, na, nb float64
	for i := range a {
		dot += a[i] * b[i]
		na += a[i] * a[i]
		nb += b[i] * b[i]
	}
	if na == 0 || nb == 0 {
		return 0
	}
	return dot / math.Sqrt(na*nb)
}

// agreeEmbeddings compares every cached item of a batch with the fresh
// vector of the same item (cosine similarity; base64 decoded first).
func (c *Cache) agreeEmbeddings(req *Request, fresh []byte) bool {
	b := req.batch
	data := gjson.GetBytes(fresh, "data").Array()
	if len(data) != len(b.items) {
		return false
	}
	min := req.Route.Shadow.MinCosine
	for i := range b.items {
		it := &b.items[b.items[i].first]
		if it.entry == nil {
			continue
		}
		if checkJSON(it.entry.Body) != ReasonNone { // read from the shared store
			return false
		}
		cached := decodeVector(gjson.ParseBytes(it.entry.Body), b.encoding)
		got := decodeVector(data[i].Get("embedding"), b.encoding)
		if len(cached) == 0 || len(cached) != len(got) || cosine(cached, got) < min {
			return false
		}
	}
	return true
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
}

// ObserveShadow records one comparison of (route, model). When the share
// of divergent comparisons in the window exceeds max_divergence (with at
// least min_samples), the namespace moves to a new generation: every
// entry of that model on that route is unreachable from now on.
func (c *Cache) ObserveShadow(req *Request, diverged bool) (ShadowResult, error) {
	sh := req.Route.Shadow
	var res ShadowResult
	now := c.nowMs()
	_, err := c.updateModel(req.Route.Name, req.Model, func(r *modelRecord) bool {
		res = ShadowResult{}
		if now-r.divStart > sh.Window.Milliseconds() {
			r.divStart, r.samples, r.diverged, r.divTenant, r.divOthers = now, 0, 0, 0, 0
		}
		r.samples++
		if diverged {
			if tag := req.tenantTag(); r.diverged == 0 {
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
			r.gen = c.newGeneration()
			r.divStart, r.samples, r.diverged, r.divTenant, r.divOthers = now, 0, 0, 0, 0
			res.Invalidated = true
		}
		return true
	})
	return res, err
}

// RefreshState moves req onto the model's current state (after an
// invalidation, so a fresh answer is stored under the new generation).
func (c *Cache) RefreshState(req *Request) {
	if st, err := c.loadModel(req.Route.Name, req.Model); err == nil {
		req.state = st
		c.buildKey(req)
	}
}

// PrepareShadowStore readies req to store the fresh answer of a shadow call
// (which asked for the whole request) under the model's current state.
func (c *Cache) PrepareShadowStore(req *Request) {
	if req.batch != nil {
		req.batch.fullFetch = true
		req.batch.sent = req.batch.sent[:0]
	}
	c.RefreshState(req)
	if req.batch != nil {
		c.itemKeys(req)
	}
}

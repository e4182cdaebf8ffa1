package cachecore

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"math"
	"slices"
	"strconv"
	"time"
	"unicode/utf8"

	"github.com/tidwall/gjson"
)

// The semantic lookup (route option "semantic"). On an exact miss the
// last user turn is embedded (a Call to the embeddings cluster) and
// compared with the indexed turns of stored answers in the request's
// partition, a slot chosen by its exact key with the turn cut out
// (semPartition). Everything of the request but that turn — tenant,
// route, authority, model and model state, system prompt, earlier turns,
// tools, tool choice, response format, sampling parameters, stream — must
// be byte-equal to the stored answer's: a near match is served only if it
// passes the guards (semantic_guards.go), is confirmed
// (semantic_confirm.go) and is fresh in the table under its exact key,
// which is the request's key with the stored turn put back
// (candidateKey). So a context can never be crossed, though other
// contexts' turns share its slot.

// semQuery is a request's part in the semantic lookup.
type semQuery struct {
	text     string  // the last user turn, decoded
	off, n   int     // where the turn's canonical JSON sits in req.Key
	vec      []int8  // its vector, quantised (nil until embedded)
	norm     float32 // of vec
	ns       uint64  // the embedding model's namespace
	dim      int
	hit      bool    // served by a near match
	sim      float64 // that match's similarity
	entryKey []byte  // that match's exact key (for demotion)
}

// semanticQuery finds the turn a semantic lookup compares: the content of
// the last message when it is a user message (chat), or the prompt
// (completions). ok is false when there is none or it is not plain text.
func (c *Cache) semanticQuery(req *Request) (*semQuery, bool) {
	s := req.Route.Semantic
	canon := req.canonical
	if describesOwnPrompt(canon, req.Route.Kind) {
		return nil, false
	}
	var v gjson.Result
	switch req.Route.Kind {
	case KindChat:
		n := gjson.GetBytes(canon, "messages.#").Int()
		if n == 0 {
			return nil, false
		}
		last := "messages." + strconv.FormatInt(n-1, 10)
		if gjson.GetBytes(canon, last+".role").String() != "user" {
			return nil, false
		}
		v = gjson.GetBytes(canon, last+".content")
	case KindCompletions:
		v = gjson.GetBytes(canon, "prompt")
	default:
		return nil, false
	}
	// max_text_bytes bounds the text, not its JSON (quotes, escapes; review
	// Z146); the JSON, up to 6 bytes a byte of it (\u00XX), is what the
	// index keeps, behind a 16-bit length: longer, it wrapped and misread
	// every record after it in its segment (review Z149).
	if v.Type != gjson.String || v.Index <= 0 || len(v.Str) > s.MaxTextBytes || len(v.Str) == 0 || len(v.Raw) > math.MaxUint16 {
		return nil, false
	}
	off := req.stableLen - len(canon) + v.Index
	if off < 0 || off+len(v.Raw) > req.stableLen || string(req.Key[off:off+len(v.Raw)]) != v.Raw {
		return nil, false
	}
	return &semQuery{text: v.Str, off: off, n: len(v.Raw)}, true
}

// describesOwnPrompt reports whether the request asks for an answer that
// describes its own prompt, which another prompt's answer would not fit:
// a completion's echo (its text starts with its prompt, and its logprobs
// describe it; vLLM's chat echo starts with the last message), vLLM's
// prompt_logprobs (the log-probability of each of the prompt's tokens)
// and return_token_ids (the prompt's token ids), on chat and completions
// alike. Such a request is matched exactly only. Any
// value but false or null counts: lenient servers read 1 or "true" as
// true, and prompt_logprobs 0 still lists the prompt's tokens.
func describesOwnPrompt(canon []byte, kind Kind) bool {
	own := false
	gjson.ParseBytes(canon).ForEach(func(k, v gjson.Result) bool { // one pass over the members
		switch k.Str {
		case "echo": // vLLM's chat too: the last message, a user's, echoed
			own = kind == KindCompletions || kind == KindChat
		case "prompt_logprobs", "return_token_ids":
			own = true
		default:
			return true
		}
		own = own && v.Type != gjson.False && v.Type != gjson.Null
		return !own
	})
	return own
}

// semPartition is the request's slot in the embedding model's namespace:
// a keyed hash of its key without its turn (its context), 1 + that hash
// modulo the route's slot count (semSlots). A slot holds the records of
// every context that hashes to it, so the index's shared-data keys are
// bounded by the slots, not by the contexts ever indexed (shared data
// cannot delete a key). Sharing a slot never lets one context's record
// answer another: a record is served only through candidateKey, which
// puts its stored turn back into the querying request's own key, and the
// answer must be in the table under that key (fresh, confirmed under it);
// the guards compare only the two turns. A record of another context can
// take a shortlist or try place of the query's (a missed near match),
// never serve its answer.
func (c *Cache) semPartition(req *Request, q *semQuery) uint64 {
	h := c.hk.fp
	buf := make([]byte, 0, len(req.Key)-q.n+16)
	buf = append(buf, 'P', '1')
	buf = binary.LittleEndian.AppendUint64(buf, q.ns)
	buf = append(buf, req.Key[:q.off]...)
	buf = append(buf, 0)
	buf = append(buf, req.Key[q.off+q.n:]...)
	return 1 + h.sum64(buf)%uint64(semSlots(req.Route.Semantic.MaxEntries))
}

// semSlots is the number of slots of an index of maxEntries records: the
// power of two at or above maxEntries/8 (a full index holds 8 records a
// slot on average, so a search reads few other contexts' signs), at least
// semMinSlots and at most semMaxSlots. Powers of two nest: a route whose
// max_entries changes uses slots of the same range, 1..semMaxSlots.
func semSlots(maxEntries int) int {
	s := semMinSlots
	for s < semMaxSlots && s*8 < maxEntries {
		s *= 2
	}
	return s
}

const (
	semMinSlots = 64
	semMaxSlots = 8192
)

// candidateKey is the exact key of the stored answer whose turn is raw,
// in the querying request's own context: the only key a near match is
// ever looked up (and served, and confirmed) by.
func candidateKey(req *Request, q *semQuery, raw []byte) []byte {
	k := make([]byte, 0, len(req.Key)-q.n+len(raw))
	k = append(k, req.Key[:q.off]...)
	k = append(k, raw...)
	return append(k, req.Key[q.off+q.n:]...)
}

// ---- embeddings ----

// embedCall asks the embeddings server for text's vector.
func (c *Cache) embedCall(s *Semantic, text string) *Call {
	body := []byte(`{"input":`)
	body = appendJSONText(body, text)
	if s.Embedding.Model != "" {
		body = append(body, `,"model":`...)
		body = appendJSONText(body, s.Embedding.Model)
	}
	body = append(body, '}')
	return &Call{
		Cluster: s.Embedding.Cluster,
		Headers: [][2]string{{":method", "POST"}, {":path", s.Embedding.Path}, {":authority", s.Embedding.Authority},
			{"content-type", "application/json"}},
		Body:    body,
		Timeout: s.Embedding.Timeout,
		MaxBody: maxEmbeddingAnswer,
		start:   c.nowMs(),
	}
}

// appendJSONText appends s as a JSON string the embeddings server can
// parse: escaped like appendJSONString, and each byte that is not UTF-8
// (a client's JSON is taken as it came) as U+FFFD, as encoding/json does.
// strconv.AppendQuote wrote a Go literal (\x1b, \x00, \xe9, \U000e0001),
// which no JSON parser accepts: the server answered 400 and every such
// turn counted semantic.embed_error.
func appendJSONText(b []byte, s string) []byte {
	if utf8.ValidString(s) {
		return appendJSONString(b, s)
	}
	b = append(b, '"')
	for s != "" {
		i := 0
		for i < len(s) {
			r, n := utf8.DecodeRuneInString(s[i:])
			if r == utf8.RuneError && n == 1 {
				break
			}
			i += n
		}
		b = appendJSONChars(b, s[:i])
		if i < len(s) {
			b = append(b, `\ufffd`...)
			i++
		}
		s = s[i:]
	}
	return append(b, '"')
}

// embedding is a usable embeddings answer.
type embedding struct {
	vec      []float32
	identity string // model name, version header, dimension
}

const (
	minDim = 8
	maxDim = 8192
	// maxEmbeddingAnswer bounds an embeddings answer: maxDim numbers of
	// up to 32 bytes each, and room for the rest of the answer.
	maxEmbeddingAnswer = maxDim*32 + 64<<10
)

// parseEmbedding checks an embeddings answer: 200, one finite, non-zero
// vector of a sane dimension. timeout says a failure was the deadline
// (or a reset, which the host cannot tell apart).
func parseEmbedding(r *Route, res CallResult) (e embedding, ok, timeout bool) {
	s := r.Semantic
	if res.NotStarted {
		return e, false, false
	}
	if res.Failed || res.Status == 504 { // Envoy answers a call past its deadline with a local 504
		return e, false, true
	}
	// Untrusted bytes: bounded in size (one vector of at most maxDim
	// numbers) and in nesting before any recursive parse sees them.
	if res.Status != 200 || len(res.Body) > maxEmbeddingAnswer || checkJSON(res.Body) != ReasonNone {
		return e, false, false
	}
	arr := gjson.GetBytes(res.Body, "data.0.embedding")
	if !arr.IsArray() {
		return e, false, false
	}
	var sum float64
	bad := false
	arr.ForEach(func(_, v gjson.Result) bool {
		if v.Type != gjson.Number || len(e.vec) >= maxDim {
			bad = true
			return false
		}
		f := v.Float()
		if math.IsNaN(f) || math.IsInf(f, 0) || math.Abs(f) > 1e6 {
			bad = true
			return false
		}
		g := float32(f)
		e.vec = append(e.vec, g)
		sum += float64(g) * float64(g) // of what is kept: 1e-50 is 0 as a float32
		return true
	})
	if bad || len(e.vec) < minDim || sum == 0 || math.IsInf(sum, 0) {
		return embedding{}, false, false
	}
	version, _ := header(res.Headers, "x-model-version")
	e.identity = boundIdentity(r.Name + "\x00" + s.Embedding.Model + "\x00" + gjson.GetBytes(res.Body, "model").String() + "\x00" + version + "\x00" + strconv.Itoa(len(e.vec)))
	return e, true, false
}

// maxIdentity bounds an embedding model's identity. The model and version
// the server reports are untrusted and may be as long as its answer (and
// header) allow, past the u16 length the vector shared with other workers
// records (semSharedPut): a longer identity keeps its first bytes, for
// logs, and the SHA-256 of the whole, so identities that differ anywhere
// stay apart.
const maxIdentity = 512

func boundIdentity(id string) string {
	if len(id) <= maxIdentity {
		return id
	}
	sum := sha256.Sum256([]byte(id))
	tail := "\x00sha256:" + hex.EncodeToString(sum[:])
	return id[:maxIdentity-len(tail)] + tail
}

// quantise maps v to int8 (scaled by its largest component) and returns
// the quantised vector's norm: cosines are computed on these.
func quantise(v []float32) ([]int8, float32) {
	var m float32
	for _, x := range v {
		if x < 0 {
			x = -x
		}
		if x > m {
			m = x
		}
	}
	q := make([]int8, len(v))
	var n float64
	for i, x := range v {
		r := int32(math.Round(float64(x / m * 127)))
		q[i] = int8(r)
		n += float64(r * r)
	}
	return q, float32(math.Sqrt(n))
}

// ---- the Flight's semantic step ----

// semanticStep runs on an exact miss of a semantic route. It returns nil
// when the request simply goes on as a miss; otherwise the actions of a
// near hit, or of an embeddings call whose result continues the request
// (then the request stays held until it returns).
func (f *Flight) semanticStep() []Action {
	c, req := f.c, f.req
	s := req.Route.Semantic
	if s == nil || req.Status != StatusMiss || req.CC.OnlyIfCached || req.Entry != nil {
		return nil
	}
	q, ok := c.semanticQuery(req)
	if !ok {
		return nil
	}
	req.sem = q
	tkey := c.textKey(req.Route, &req.tenant, q.text)
	if v, ok := c.semVectors.get(tkey); ok && c.semListed(req.Route, v.ns) {
		// (One whose namespace left the route's list is of a model the
		// server no longer reports, reclaimed since: searched, it listed
		// that model again and counted a change to it; the turn is
		// embedded again instead: review Z206.)
		pre := []Action{{Kind: ActCount, Event: EvSemanticVectorCached, Route: req.Route}}
		return f.semanticSearch(v, pre, false)
	}
	if until, ok := c.semPending[tkey]; ok && claimLive(until, c.nowMs(), s) {
		return nil // the same turn is being embedded: this one goes on as a miss
	}
	b := c.semEmbedBreaker(s)
	callable := b.permits(c.nowMs(), s)
	var v *semVector
	claimed := false
	if callable {
		v, claimed = c.semShared(tkey, s)
	} else {
		// No call can go: a vector another worker put is still searched,
		// and the slot is not claimed (claimed and left empty, it lost
		// the vector of another turn that shares it; review Z258).
		v = c.semSharedGet(tkey)
	}
	if v != nil {
		// Another model's vector: embed again. A worker that has seen no
		// model yet (a restart, a new worker) takes a shared vector only
		// if its namespace is in the route's list: a slot keeps a vector
		// of a model no longer reported until the slot is reused, and
		// taking it counted a model change, logged that the server now
		// reports that model and listed its reclaimed namespace again.
		if !c.semUsable(req.Route, v) {
			v, claimed = nil, callable
		}
	}
	if v != nil {
		c.semVectors.keep(tkey, v)
		pre := []Action{{Kind: ActCount, Event: EvSemanticVectorCached, Route: req.Route}}
		return f.semanticSearch(v, pre, false)
	}
	if !callable {
		// The server failed the last calls in a row: the request goes on
		// as an exact miss at once, not after a call's deadline.
		req.sem = nil
		return f.semanticContinue([]Action{{Kind: ActCount, Event: EvSemanticBreakerOpen, Route: req.Route}}, false)
	}
	if !claimed {
		return nil // another worker is embedding it
	}
	_, trial := b.allow(c.nowMs(), s) // a trial, if the breaker was open
	if c.semPending == nil || len(c.semPending) >= semMaxVectors {
		c.semPending = map[uint64]int64{} // only abandoned calls' marks can pile up
	}
	// Until the call's deadline (and a second): a request whose client
	// leaves never gets the result, and its mark must not outlive it.
	c.semPending[tkey] = c.nowMs() + s.Embedding.Timeout.Milliseconds() + 1000
	call := c.embedCall(s, q.text)
	call.Stream = f.id
	// ended records the call's end whatever became of the request: the
	// breaker hears of it, the claim is released or the vector kept. A
	// call whose client left (Gone) counted for neither (review Z258):
	// with clients that give up before a hanging server's deadline, the
	// breaker never opened.
	route := req.Route // (Gone: the request may be recycled by then, its route with it)
	ended := func(res CallResult) (e embedding, ok, timeout bool) {
		delete(c.semPending, tkey)
		e, ok, timeout = parseEmbedding(route, res)
		b.result(ok, trial, c.nowMs())
		return e, ok, timeout
	}
	orphaned := func(e embedding, ok bool) []Action {
		// The request was answered meanwhile (decided late, the model
		// answered its headers first) or is gone: the vector is kept,
		// nothing more is done for the request.
		if ok {
			c.semSharedPut(tkey, c.semVectors.put(tkey, e))
		}
		c.semSharedDone(tkey, ok)
		return nil
	}
	call.Gone = func(res CallResult) []Action {
		e, ok, _ := ended(res)
		return orphaned(e, ok)
	}
	call.Done = func(res CallResult) []Action {
		e, ok, timeout := ended(res)
		if f.state == flightDone {
			return orphaned(e, ok)
		}
		defer c.semSharedDone(tkey, ok)
		resume := !res.NotStarted // NotStarted: called back inside the dispatching callback
		f.waited = resume
		if !ok {
			ev := EvSemanticEmbedError
			if timeout {
				ev = EvSemanticEmbedTimeout
			}
			req.sem = nil
			return f.semanticContinue([]Action{{Kind: ActCount, Event: ev, Route: req.Route}}, resume)
		}
		v := c.semVectors.put(tkey, e)
		c.semSharedPut(tkey, v)
		return f.semanticSearch(v, nil, resume)
	}
	return []Action{{Kind: ActDispatch, Call: call}} // not f.out: Done may run before the host is done with it
}

// semEmbedBreaker is this VM's breaker on the embeddings service s calls
// (routes that call one server share it; each reads it with its own
// failures, and it stays open for the cool-down of the failure that
// opened it). Without it a server that is down or hangs made every new
// turn wait for its call, up to embedding.timeout, before going on as an
// exact miss (review Z240).
func (c *Cache) semEmbedBreaker(s *Semantic) *embedBreaker {
	id := s.Embedding.Cluster + "\x00" + s.Embedding.Authority + "\x00" + s.Embedding.Path
	b := c.semBreak[id]
	if b == nil {
		if c.semBreak == nil || len(c.semBreak) >= MaxRoutes {
			c.semBreak = map[string]*embedBreaker{} // services of configurations gone
		}
		b = &embedBreaker{}
		c.semBreak[id] = b
	}
	return b
}

// embedBreaker is a breaker with one trial: once its cool-down is over it
// lets one call go and skips the others until that call's result (or its
// deadline, should the result never come): a server that hangs made every
// turn that came meanwhile wait for its own call (review Z243). Routes
// that share it read it each by its own settings: open for a route once
// the failures in a row reach its failures, until its cool_down has passed
// since the last of them (reviews Z243, Z255).
type embedBreaker struct {
	fails      int   // calls in a row that failed
	lastFail   int64 // when the last of them ended (ms)
	trialUntil int64 // the trial call's deadline (ms); 0: none out
	trialFor   int64 // how long from its start: its route's timeout and a second (ms)
}

// permits reports whether an embeddings call of a route of s may go at
// now: the breaker is closed, or its cool-down is over and no trial is out.
func (b *embedBreaker) permits(now int64, s *Semantic) bool {
	cool := s.Breaker.CoolDown.Milliseconds()
	switch {
	case b.fails < s.Breaker.Failures:
		return true // closed
	case now >= b.lastFail && now-b.lastFail < cool:
		return false // open (a last failure "after" now is a clock stepped back: its cool-down is over; review Z120)
	case now < b.trialUntil && b.trialUntil-now <= b.trialFor:
		// Its trial is out. (A deadline further than the trial's own
		// length from now is a clock stepped back: that trial is over;
		// review Z245. Its length is the route's that started it: read
		// with a sharing route's shorter timeout, a trial out looked
		// over; review Z256.)
		return false
	}
	return true
}

// allow reports whether an embeddings call of a route of s may go at now,
// and whether it is the trial (taken if the breaker is open).
func (b *embedBreaker) allow(now int64, s *Semantic) (ok, trial bool) {
	if !b.permits(now, s) {
		return false, false
	}
	if b.fails >= s.Breaker.Failures {
		b.trialFor = s.Embedding.Timeout.Milliseconds() + 1000
		b.trialUntil = now + b.trialFor
		return true, true
	}
	return true, false
}

// result records a call's end: a success closes the breaker, a failure
// counts (and opens it again after a trial). Only the trial's own end
// ends the trial: a call sent before the breaker opened that failed late
// let a second trial go while the first still hung (Z262's suspicion).
func (b *embedBreaker) result(ok, trial bool, now int64) {
	if trial || ok {
		b.trialUntil = 0
	}
	if ok {
		b.fails = 0
		return
	}
	b.fails++
	b.lastFail = now
}

// semanticSearch looks for a usable near match of the request's turn
// (vector v): serve it, or go on as a miss. pre are actions to perform
// first.
func (f *Flight) semanticSearch(v *semVector, pre []Action, resume bool) []Action {
	c, req := f.c, f.req
	q := req.sem
	q.vec, q.norm, q.ns, q.dim = v.q, v.norm, v.ns, len(v.q)
	observed, full := c.semObserveModel(req.Route, v)
	acts := append(pre, observed...)
	if full {
		// Neither searched nor indexed; nor kept as the turn's vector on
		// this worker: the route's listed model, reported again, would
		// have met it and counted models_full for it (review Z111).
		delete(c.semVectors.m, c.textKey(req.Route, &req.tenant, q.text))
		req.sem = nil
		return f.semanticContinue(acts, resume)
	}
	var hit bool
	var events []Event
	if !f.waited || c.stateHolds(req) {
		hit, events = c.semSearch(req, q)
	}
	for _, e := range events {
		acts = append(acts, Action{Kind: ActCount, Event: e, Route: req.Route})
	}
	if !hit {
		return f.semanticContinue(append(acts, Action{Kind: ActCount, Event: EvSemanticMiss, Route: req.Route}), resume)
	}
	acts = append(acts, Action{Kind: ActCount, Event: EvSemanticHit, Route: req.Route})
	f.reset()
	f.serve(StatusHit)
	return append(acts, f.actions()...)
}

// semanticContinue goes on as an exact miss after the semantic step
// (resume: the request was held across a call and must be resumed).
func (f *Flight) semanticContinue(pre []Action, resume bool) []Action {
	f.held = resume // (an L2 step next resumes it too)
	acts := append(pre, f.missed()...)
	if resume {
		for i := range acts {
			if acts[i].Kind == ActForward {
				acts[i].Resume = true
			}
		}
	}
	return acts
}

// stateHolds reports whether req's model state, read when it was keyed,
// is still the model's: after an embedding call, a purge or a version
// switch may have moved it, and a near match under the request's key (the
// old generation's or version's) must not be served. (The request then
// goes on as a miss, whose lead reads the state again: Flight.waited.)
func (c *Cache) stateHolds(req *Request) bool {
	st, err := c.loadModel(req.Route.Name, req.Model)
	return err == nil && st.is(&req.state)
}

// semSearch scans the request's partition for the closest turns at or
// above min_similarity and tries them best first (at most semTries):
// guards, confirmation, then the table. It reports a hit (req.Entry set)
// and the events to count. Records of the request's own turn are not
// candidates: put back into its key they make the key that just missed,
// and in a shared slot other contexts' records of a common turn took
// every try.
func (c *Cache) semSearch(req *Request, q *semQuery) (bool, []Event) {
	s := req.Route.Semantic
	part := c.semPartition(req, q)
	cands := c.semIndex(s).searchExcept(q.ns, part, q.vec, q.norm, s.MinSimilarity, req.Key[q.off:q.off+q.n])
	var events []Event
	now := c.nowMs()
	for _, cand := range cands {
		// The guards judge only a record of this request's own context,
		// whose answer is in the table under it: a slot holds other
		// contexts' records too, whose turns are no near match of this
		// one's, and a veto of theirs would count a false positive the
		// index never offered (review Z48).
		key := candidateKey(req, q, cand.raw)
		fp := c.fingerprint(key)
		found, err := c.table.lookupInto(fp, key, now, &req.entry, nil)
		if err != nil || !found || req.entry.Flags&FlagDemoted != 0 || !c.freshFor(req, &req.entry, now) {
			continue
		}
		if g := vetoes(&s.Guards, q.text, cand.text); g != 0 {
			events = append(events, g)
			continue
		}
		conf := c.semConfirmState(fp).of(req.entry.StoredAt)
		if conf.demoted || cand.sim < conf.minSim {
			continue
		}
		if !conf.confirmedBy(s) {
			events = append(events, EvSemanticUnconfirmed)
			continue
		}
		req.Entry = &req.entry
		q.hit, q.sim, q.entryKey = true, cand.sim, key
		return true, events
	}
	return false, events
}

// freshFor reports whether a near match's entry e is fresh for req. An
// entry the request's max-age or min-fresh refuses is another question's,
// not one the request's directives kept it from: its miss stays fwd=miss
// (freshness would mark it fwd=request; review Z240).
func (c *Cache) freshFor(req *Request, e *Entry, now int64) bool {
	refused := req.refusedFresh
	ok := c.freshness(req, e, now) == fresh
	req.refusedFresh = refused
	return ok
}

// SemanticHit reports whether req was answered by a near match, and its
// similarity.
func (req *Request) SemanticHit() (bool, float64) {
	if req.sem == nil || !req.sem.hit {
		return false, 0
	}
	return true, req.sem.sim
}

// semanticStored indexes the turn of an answer just stored (fresh until
// then: a near match serves only fresh answers).
func (f *Flight) semanticStored(freshUntil int64) []Action {
	req := f.req
	if req.Route.Semantic == nil {
		return nil
	}
	if q := req.sem; q == nil || q.vec == nil {
		// The request embedded nothing of its own (its lookup found the
		// stale entry stale-if-error keeps, or another request was
		// embedding its turn): its turn is indexed from the vector kept
		// for it, as a refresh's is, or the answer would stay out of
		// reach of every paraphrase for its life.
		return f.c.semanticRefreshed(req, freshUntil)
	}
	return f.c.semIndexTurn(req, req.sem, freshUntil)
}

// semanticRefreshed indexes again the turn of an answer a background
// refresh just stored, with its new fresh-until: a record carries the
// fresh-until of the answer stored when its turn was indexed, and the
// refreshes that keep an entry fresh prevent the miss that would index it
// again, so its record was skipped as stale for good after the first ttl.
// The request was served from the table (no embedding of its own): the
// turn's vector is the one kept for it, in this worker or shared, of the
// model this worker sees; without one the turn is not indexed again (its
// next miss indexes it).
func (c *Cache) semanticRefreshed(req *Request, freshUntil int64) []Action {
	s := req.Route.Semantic
	if s == nil || req.sem != nil && req.sem.hit {
		return nil
	}
	q, ok := c.semanticQuery(req)
	if !ok {
		return nil
	}
	tkey := c.textKey(req.Route, &req.tenant, q.text)
	v, ok := c.semVectors.get(tkey)
	if !ok {
		if v = c.semSharedGet(tkey); v == nil {
			return nil
		}
		if !c.semUsable(req.Route, v) {
			return nil
		}
	}
	q.vec, q.norm, q.ns, q.dim = v.q, v.norm, v.ns, len(v.q)
	return c.semIndexTurn(req, q, freshUntil)
}

// semIndexTurn indexes the turn q of req's answer just stored, fresh until
// freshUntil.
func (c *Cache) semIndexTurn(req *Request, q *semQuery, freshUntil int64) []Action {
	if q == nil || q.vec == nil || q.hit || req.Route.Semantic == nil {
		return nil
	}
	raw := append([]byte(nil), req.Key[q.off:q.off+q.n]...)
	part := c.semPartition(req, q)
	// The model state the answer was stored under (prepareStore moved
	// req onto it): a sweep drops the partition once it is gone.
	var owner semOwner
	if id, err := c.modelID(req.Route.Name, req.Model); err == nil && req.state.Found {
		owner = semOwner{model: id, gen: req.state.Gen}
	}
	if listed, _ := c.semListRead(req.Route, q.ns); !listed {
		// A namespace the route's list does not name (one past the
		// namespaces the index may make, or taken off the list since it
		// was read) gets no keys made for it here (review Z107).
		return nil
	}
	now := c.nowMs()
	ev, err := c.semIndex(req.Route.Semantic).add(q.ns, part, q.vec, q.norm, raw, freshUntil, now, req.Route.Semantic.MaxEntries, owner, &c.semSweep)
	if err != nil {
		return nil
	}
	if ev != EvSemanticIndexed {
		return []Action{{Kind: ActCount, Event: ev, Route: req.Route}}
	}
	if listed, read := c.semListRead(req.Route, q.ns); read && !listed {
		// The namespace was read from the route's list up to
		// semModelRecheckMs before (semObserveModel), and the answer
		// took its time upstream: another worker took the namespace off
		// the list since (the least recently reported) and reclaimed it,
		// and this write made it again. It is reclaimed again, this turn
		// with it: listed anew, it would count as just reported and take
		// the place of a namespace in use, whose next turn would take
		// another's, and so on. Read after the write, the list names the
		// namespace, or the turn goes: a later reclaim reaches it either
		// way.
		semIndexStore{s: c.store, now: now}.reclaim(q.ns)
	}
	return []Action{{Kind: ActCount, Event: ev, Route: req.Route}}
}

// semObserveModel notes the embedding model's identity per route: vectors
// of different models live in different namespaces and are never compared.
// A namespace is not reclaimed when another model is reported: during a
// rolling update of the embeddings deployment replicas answer with both
// identities mixed, and reclaiming on each switch (as before) wiped the
// index of the model that answered again a moment later, and rewrote
// every segment on the request path. Instead the route's recent
// namespaces are listed in shared data with the time each was last
// reported (semModels): one not reported for semNamespaceIdleMs is
// reclaimed, and so is the least recently reported when a new one would
// make more than semMaxNamespaces — so a route's index holds at most that
// many namespaces of max_entries turns, however the identity flaps. A
// worker reads the list when its model changes, and at most every
// semModelRecheckMs while it does not (to keep its namespace's time and
// reclaim idle ones): one read a minute per worker and route. A model not
// in the list is a change: counted by the worker that lists it, and
// logged at most once per semModelWarnMs per route.
//
// A model past the namespaces the route's index may ever make
// (semMaxNamespacesMade) is not usable: full, counted
// semantic.models_full, and the request goes on as an exact miss. The
// worker does not take it for its model, so every request of it reads
// the list again.
func (c *Cache) semObserveModel(r *Route, v *semVector) (acts []Action, full bool) {
	now := c.nowMs()
	seen := c.semModels[r]
	if seen.identity == v.identity && now < seen.recheck {
		return nil, false
	}
	if c.semModels == nil {
		c.semModels = map[*Route]semModelSeen{}
	}
	changed, warn, unwarned, freed, full := c.semList(r, v.ns, now)
	if full {
		return []Action{{Kind: ActCount, Event: EvSemanticModelsFull, Route: r}}, true
	}
	if seen.identity != "" && seen.identity != v.identity {
		c.semVectors.m = nil // vectors of the other model are not reused
	}
	c.semModels[r] = semModelSeen{identity: v.identity, recheck: now + semModelRecheckMs}
	if !changed {
		return nil, false
	}
	acts = []Action{{Kind: ActCount, Event: EvSemanticModelChange, Route: r}}
	if warn {
		msg := "route " + r.Name + ": the embeddings server now reports " + strconv.Quote(readableIdentity(v.identity))
		if seen.identity != "" && seen.identity != v.identity {
			msg += " (was " + strconv.Quote(readableIdentity(seen.identity)) + " on this worker)"
		}
		msg += "; turns indexed with the old model are no longer compared, and are reclaimed once that model was not reported for " +
			(semNamespaceIdleMs * time.Millisecond).String() + " (" + strconv.Itoa(freed) + " reclaimed now"
		if unwarned > 0 {
			msg += "; " + strconv.FormatUint(uint64(unwarned), 10) + " changes since the last warning"
		}
		acts = append(acts, Action{Kind: ActLog, Level: LogWarn, Message: []byte(msg + ")")})
	}
	return acts, false
}

// semList notes namespace ns in route r's list at now (semModels.observe)
// and reclaims the namespaces that leave it. A namespace not listed is a
// model change: changed reports it (once the list is written), warn
// whether to log it and unwarned the changes counted since the last log.
// freed is the records reclaimed; full that ns would be one namespace
// more than the route's index may make (semModels.full): it is not
// listed.
func (c *Cache) semList(r *Route, ns uint64, now int64) (changed, warn bool, unwarned uint32, freed int, full bool) {
	key := "modelcache/sem/ns/" + r.Name
	for try := 0; try < 8; try++ {
		raw, cas, err := c.store.Get(key)
		var m semModels
		created := errIs(err, ErrNotFound)
		switch {
		case err == nil:
			m = decodeSemModels(raw)
		case created:
			m = c.semLegacyModel(r, now)
			if cas, err = CreateCAS(c.store); err != nil {
				return false, false, 0, 0, false
			}
		default:
			return false, false, 0, 0, false
		}
		if m.full(ns) {
			return false, false, 0, 0, true
		}
		changed, reclaim, write := m.observe(ns, now)
		write = write || created // the list is made once, even when it changes nothing
		warn = false
		if changed {
			if warn = now-m.warned >= semModelWarnMs; warn {
				m.warned = now
			} else {
				m.unwarned++
			}
		}
		if !write {
			return false, false, 0, 0, false
		}
		unwarned = m.unwarned
		if warn {
			m.unwarned = 0
		}
		if c.store.Set(key, m.encode(), cas) != nil {
			continue // another worker updated it: again, on what it left
		}
		for _, ns := range reclaim {
			freed += semIndexStore{s: c.store, now: now}.reclaim(ns)
		}
		return changed, warn, unwarned, freed, false
	}
	return false, false, 0, 0, false
}

// semUsable reports whether a shared vector may serve this worker: of the
// model it sees, if it has seen one, and of a namespace in the route's
// list.
func (c *Cache) semUsable(r *Route, v *semVector) bool {
	if seen := c.semModels[r].identity; seen != "" && v.identity != seen {
		return false
	}
	return c.semListed(r, v.ns) // even of the model it saw last: reclaimed since (review Z206)
}

// semListed reports whether namespace ns is in route r's list.
func (c *Cache) semListed(r *Route, ns uint64) bool {
	listed, _ := c.semListRead(r, ns)
	return listed
}

// semListRead is semListed, and whether the list could be read.
func (c *Cache) semListRead(r *Route, ns uint64) (listed, read bool) {
	raw, _, err := c.store.Get("modelcache/sem/ns/" + r.Name)
	if err != nil {
		return false, false
	}
	m := decodeSemModels(raw)
	return slices.ContainsFunc(m.ns, func(e semNamespaceSeen) bool { return e.ns == ns }), true
}

// semModelSeen is the embedding model a worker last saw on a route, and
// when it next reads the route's list of namespaces while that stays so.
type semModelSeen struct {
	identity string
	recheck  int64 // ms
}

const (
	semModelRecheckMs  = 60 * 1000      // a worker reads its route's list at least this often while used
	semNamespaceIdleMs = 10 * 60 * 1000 // a namespace not reported this long is reclaimed
	semModelWarnMs     = 10 * 60 * 1000 // at most one model-change warning per route this often
	semMaxNamespaces   = 3              // namespaces a route's index holds at most
	// semMaxNamespacesMade bounds the namespaces a route's index makes
	// keys of over the proxy's life (semModels.made): one more is not
	// indexed nor searched.
	semMaxNamespacesMade = 64
)

// semModels is a route's list of recent embedding namespaces, in shared
// data (modelcache/sem/ns/<route>):
//
//	"NS2" | i64 warned | u32 unwarned | u8 count | count × (u64 namespace | i64 last reported)
//	      | u8 made | made × u64 namespace
//
// warned is when a model change was last logged, unwarned the changes
// counted since without a log. made lists every namespace the route's
// index ever had keys of (semMaxNamespacesMade at most): shared data
// cannot delete a key, so a namespace reclaimed keeps its (emptied) keys,
// and one listed again reuses them. The previous module's "NS1", without
// made, reads as having made those it lists. A value of any other shape
// reads as an empty list: decoding is bounded by that shape.
type semModels struct {
	warned   int64
	unwarned uint32
	ns       []semNamespaceSeen
	made     []uint64
}

type semNamespaceSeen struct {
	ns   uint64
	seen int64 // ms
}

const semModelsHead = 3 + 8 + 4 + 1

func decodeSemModels(raw []byte) semModels {
	if len(raw) < semModelsHead || string(raw[:2]) != "NS" || raw[2] != '1' && raw[2] != '2' {
		return semModels{}
	}
	n := int(raw[15])
	end := semModelsHead + n*16
	if n > semMaxNamespaces || len(raw) < end {
		return semModels{}
	}
	made := 0
	if raw[2] == '2' {
		if len(raw) == end {
			return semModels{}
		}
		made = int(raw[end])
		if made > semMaxNamespacesMade || len(raw) != end+1+made*8 {
			return semModels{}
		}
	} else if len(raw) != end {
		return semModels{}
	}
	m := semModels{warned: int64(binary.LittleEndian.Uint64(raw[3:])), unwarned: binary.LittleEndian.Uint32(raw[11:])}
	for i := 0; i < n; i++ {
		e := raw[semModelsHead+i*16:]
		m.ns = append(m.ns, semNamespaceSeen{ns: binary.LittleEndian.Uint64(e), seen: int64(binary.LittleEndian.Uint64(e[8:]))})
	}
	for i := 0; i < made; i++ {
		m.made = append(m.made, binary.LittleEndian.Uint64(raw[end+1+i*8:]))
	}
	if raw[2] == '1' {
		for _, e := range m.ns {
			m.made = append(m.made, e.ns)
		}
	}
	return m
}

func (m *semModels) encode() []byte {
	b := make([]byte, 0, semModelsHead+len(m.ns)*16+1+len(m.made)*8)
	b = append(b, "NS2"...)
	b = binary.LittleEndian.AppendUint64(b, uint64(m.warned))
	b = binary.LittleEndian.AppendUint32(b, m.unwarned)
	b = append(b, byte(len(m.ns)))
	for _, e := range m.ns {
		b = binary.LittleEndian.AppendUint64(b, e.ns)
		b = binary.LittleEndian.AppendUint64(b, uint64(e.seen))
	}
	b = append(b, byte(len(m.made)))
	for _, ns := range m.made {
		b = binary.LittleEndian.AppendUint64(b, ns)
	}
	return b
}

// observe notes namespace ns reported at now. It reports whether ns is a
// change (not listed, and another was), the namespaces to reclaim (idle
// ones, and the least recently reported beyond semMaxNamespaces) and
// whether the list changed. A listed namespace's time is renewed only
// once it is semModelRecheckMs old, so workers write the list about once
// a minute, not on every read.
func (m *semModels) observe(ns uint64, now int64) (changed bool, reclaim []uint64, write bool) {
	i := slices.IndexFunc(m.ns, func(e semNamespaceSeen) bool { return e.ns == ns })
	switch {
	case i < 0:
		changed = len(m.ns) > 0
		if !slices.Contains(m.made, ns) {
			m.made = append(m.made, ns)
		}
		m.ns = append(m.ns, semNamespaceSeen{ns: ns, seen: now})
		write = true
	case now-m.ns[i].seen >= semModelRecheckMs:
		m.ns[i].seen = now
		write = true
	}
	kept := m.ns[:0]
	for _, e := range m.ns {
		if e.ns != ns && now-e.seen >= semNamespaceIdleMs {
			reclaim = append(reclaim, e.ns)
			continue
		}
		kept = append(kept, e)
	}
	m.ns = kept
	for len(m.ns) > semMaxNamespaces {
		old := -1
		for j, e := range m.ns {
			if e.ns != ns && (old < 0 || e.seen < m.ns[old].seen) {
				old = j
			}
		}
		reclaim = append(reclaim, m.ns[old].ns)
		m.ns = slices.Delete(m.ns, old, old+1)
	}
	return changed, reclaim, write || len(reclaim) > 0
}

// full reports whether namespace ns would be one more than the route's
// index may ever make keys of: not listed, not made before, and
// semMaxNamespacesMade made. An embeddings server whose reported model or
// version changed from answer to answer (a hostile one, one that reports
// a replica or a build) made a namespace's keys per answer, for good
// (review Z107).
func (m *semModels) full(ns uint64) bool {
	return len(m.made) >= semMaxNamespacesMade && !slices.Contains(m.made, ns)
}

// semLegacyModel starts a route's list from the model the previous module
// version recorded (modelcache/sem/model/<route>: the identity), so its
// namespace is reclaimed once idle rather than kept for good.
func (c *Cache) semLegacyModel(r *Route, now int64) semModels {
	old, _, err := c.store.Get("modelcache/sem/model/" + r.Name)
	if err != nil || len(old) == 0 {
		return semModels{}
	}
	ns := fnv64(string(old))
	return semModels{ns: []semNamespaceSeen{{ns: ns, seen: now}}, made: []uint64{ns}} // its keys exist (review Z111)
}

func readableIdentity(id string) string {
	b := []byte(id)
	for i := range b {
		if b[i] == 0 {
			b[i] = '/'
		}
	}
	return string(b)
}

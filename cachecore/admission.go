package cachecore

import (
	"math"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/tidwall/gjson"
)

// Admission: the cache stores a response only when it is certain the answer
// is a good one. A model timeout cached and served for hours is far worse
// than repeated timeouts, so every check fails closed: when in doubt, the
// response reaches the client and is not stored.

// Origin says who produced a response.
type Origin uint8

const (
	OriginUpstream        Origin = iota // the model server answered
	OriginUpstreamReset                 // Envoy: connection reset/refused
	OriginUpstreamTimeout               // Envoy: upstream timeout
	OriginLocalReply                    // any other Envoy-generated reply
)

// ClassifyOrigin reads Envoy's response code details (the property
// response.code_details). "via_upstream" is a real upstream response; an
// empty value (a host that does not report it) is treated as upstream.
func ClassifyOrigin(details string) Origin {
	if details == "" || details == "via_upstream" { // the rule, inlined in the caller
		return OriginUpstream
	}
	return classifyLocal(details)
}

// classifyLocal is ClassifyOrigin of a response the upstream did not
// send (Envoy's own), out of line: an upstream's answer runs none of it.
func classifyLocal(details string) Origin {
	switch {
	case strings.Contains(details, "timeout"):
		return OriginUpstreamTimeout
	case strings.Contains(details, "reset") || strings.Contains(details, "overflow") ||
		strings.Contains(details, "no_healthy_upstream") || strings.Contains(details, "connection_failure"):
		return OriginUpstreamReset
	}
	return OriginLocalReply
}

// AdmitHeaders checks everything known when the response headers arrive.
// ReasonNone means "keep going: buffer the body and check it".
func (c *Cache) AdmitHeaders(req *Request, status int, headers [][2]string, origin Origin) Reason {
	switch origin {
	case OriginUpstreamReset:
		return ReasonUpstreamReset
	case OriginUpstreamTimeout:
		return ReasonUpstreamTimeout
	case OriginLocalReply:
		return ReasonLocalReply
	}
	if !slices.Contains(req.Route.Statuses, status) {
		return ReasonStatus
	}
	// Every line of a header that may come more than once: two lines are
	// one comma-joined value (RFC 9110, 5.3), and a no-store on the
	// second line forbids as much as on the first.
	noStale := false
	for i := range headers {
		kv := &headers[i]
		switch kv[0] {
		case "cache-control":
			cc, stale := responseCC(kv[1])
			if cc.NoStore {
				return ReasonNoStore
			}
			if cc.Private {
				return ReasonPrivate
			}
			noStale = noStale || stale
		case "content-encoding":
			if !identityEncoding(kv[1]) {
				return ReasonEncoded
			}
		case "vary":
			if !varyKeyed(req, kv[1]) {
				return ReasonVary
			}
		}
	}
	if ct, _ := header(headers, "content-type"); !isJSONType(ct) && !StreamsResponse(req, headers) {
		return ReasonNotJSON
	}
	if v, ok := header(headers, "content-length"); ok {
		if n, err := strconv.ParseInt(strings.TrimSpace(v), 10, 64); err == nil && n > int64(req.Route.MaxEntryBytes) {
			return ReasonTooLarge
		}
	}
	req.noStale = noStale // read here, with the lines that forbid storing: the store reads it (storeStaleWindow)
	return ReasonNone
}

// identityEncoding reports a Content-Encoding value that is identity
// (each of a comma-separated list).
func identityEncoding(v string) bool {
	for v != "" {
		var c string
		c, v, _ = strings.Cut(v, ",")
		if c = strings.TrimSpace(c); c != "" && !strings.EqualFold(c, "identity") {
			return false
		}
	}
	return true
}

// varyKeyed reports whether an answer whose Vary is v may be stored under
// req's key, which holds the request's body, method, path, authority,
// tenant and the route's key_headers but no other request header: "*"
// never (RFC 9111, 4.1: no later request matches); accept-encoding always
// (only identity bodies are stored, and every client takes those); the
// header the tenant's identity was read from, on a route whose key holds
// it; a key header; any other header never.
func varyKeyed(req *Request, v string) bool {
	for v != "" {
		var name string
		name, v, _ = strings.Cut(v, ",")
		switch name = strings.TrimSpace(name); {
		case name == "":
		case strings.EqualFold(name, "accept-encoding"):
		case req.tenantFrom != "" && strings.EqualFold(name, req.tenantFrom):
		case keyHeader(req.Route, name):
		default:
			return false
		}
	}
	return true
}

// keyHeader reports whether name (in any case) is one of r's key_headers.
func keyHeader(r *Route, name string) bool {
	for _, h := range r.KeyHeaders {
		if strings.EqualFold(name, h) {
			return true
		}
	}
	return false
}

// isJSONType accepts application/json and any +json media type, read by
// HTTP's rules, as a server reads them: one type/subtype of token
// characters, compared in ASCII without regard to case, white space being
// SP and HTAB (RFC 9110 §8.3.1, §5.6.2). Unicode's case folding and white
// space would read "applİcation/json" as JSON, and a list of types joined
// by a comma ("text/plain,x/y+json") as its last.
func isJSONType(ct string) bool {
	if ct == "application/json" {
		return true // the rule, at once
	}
	mt, _, _ := strings.Cut(ct, ";")
	for len(mt) > 0 && (mt[0] == ' ' || mt[0] == '\t') {
		mt = mt[1:]
	}
	for len(mt) > 0 && (mt[len(mt)-1] == ' ' || mt[len(mt)-1] == '\t') {
		mt = mt[:len(mt)-1]
	}
	typ, sub, ok := strings.Cut(mt, "/")
	if !ok || !isToken(typ) || !isToken(sub) {
		return false
	}
	if len(sub) > len("+json") && foldEquals(sub[len(sub)-len("+json"):], "+json") {
		return true
	}
	return foldEquals(typ, "application") && foldEquals(sub, "json")
}

// isToken reports whether s is an HTTP token (RFC 9110 §5.6.2).
func isToken(s string) bool {
	for i := range len(s) {
		if !isTokenByte(s[i]) {
			return false
		}
	}
	return s != ""
}

// Admission is the verdict on a complete response body.
type Admission struct {
	Reason  Reason
	Rule    string // the failing rule's path, for the log
	TTL     time.Duration
	Version string // model version the response reported
}

// AdmitBody validates a complete response body and picks its TTL.
func (c *Cache) AdmitBody(req *Request, headers [][2]string, body []byte) Admission {
	if len(body) > req.Route.MaxEntryBytes {
		return Admission{Reason: ReasonTooLarge}
	}
	return c.admitContent(req, headers, body)
}

// admitContent is AdmitBody but for the answer's size: a shadow compares
// a batch's answer larger than one entry, whose items each are one.
func (c *Cache) admitContent(req *Request, headers [][2]string, body []byte) Admission {
	r := req.Route
	if !utf8.Valid(body) {
		// JSON is UTF-8 (RFC 8259 §8.1): clients that decode it strictly
		// (Python's json, the OpenAI SDKs' stream decoders) would fail on
		// every replay. Outside strings valid JSON is ASCII, so this is
		// the strings' check, in one linear pass.
		return Admission{Reason: ReasonMalformedJSON}
	}
	streamed := StreamsResponse(req, headers)
	if r.Streams() && streamed != req.Stream {
		// Stored under the request's key, an answer in the other form
		// would reach clients that cannot read it: a "stream" that is not
		// the literal true keys as JSON, yet a lenient server streams.
		return Admission{Reason: ReasonStreamMode}
	}
	if streamed {
		// A recorded stream: judge the message it assembles to.
		sum := AssembleStream(r.Kind, body)
		if reason := sum.Refusal(); reason != ReasonNone {
			return Admission{Reason: reason}
		}
		if rule := unjudgedOnStreams(r.Rules); rule != "" {
			return Admission{Reason: ReasonValidation, Rule: rule}
		}
		if reason := checkJSON(sum.Assembled); reason != ReasonNone {
			return Admission{Reason: reason} // built from checked events: cannot happen
		}
		adm := c.admitJSON(req, headers, sum.Assembled)
		if adm.Reason == ReasonNone && r.ModelVersion.Header == "" {
			adm.Version = ResponseVersion(r, headers, sum.Assembled)
		}
		if adm.Reason == ReasonNone && adm.Version == "" && r.ModelVersion.BodyPath != "" {
			adm.Version = streamEventsVersion(body, r.ModelVersion.BodyPath)
		}
		return adm
	}
	// Bounded before gjson reads it (jsonbound.go). An embeddings answer
	// of the usual shape is checked and read in one pass (answerscan.go).
	var top topMembers
	var scanned *scannedItems
	if b := req.batch; b != nil && b.encoding != "base64" && embeddingItemsInOnePass {
		want, vecs := b.freshSlots()
		clear(vecs) // the scan fills each slot once
		if t, dims, ok := c.scanEmbeddingsAnswer(body, want, vecs, b.dims); ok {
			top, scanned = t, &scannedItems{dims: dims}
		}
	}
	if scanned == nil {
		if reason := checkJSON(body); reason != ReasonNone {
			return Admission{Reason: reason}
		}
		c.dups.tokenMaps = req.Route.Kind == KindCompletions
		if reason := c.dups.check(body); reason != ReasonNone {
			return Admission{Reason: reason}
		}
		top = readTopMembers(bytesString(body))
	}
	if top.reportsError() {
		return Admission{Reason: ReasonErrorPayload}
	}
	if req.batch != nil {
		adm := c.admitEmbeddings(req, body, &top, scanned)
		if adm.Reason == ReasonNone {
			for i := range r.Rules {
				if !r.Rules[i].Holds(body) {
					return Admission{Reason: ReasonValidation, Rule: r.Rules[i].Path}
				}
			}
			adm.Version = ResponseVersion(r, headers, body)
		}
		return adm
	}
	return c.admitJSON(req, headers, body)
}

// unjudgedOnStreams returns the path of the first rule that a stream's
// assembly cannot judge, "" if none: a rule that holds on a missing value
// ("exists": false) on a member AssembleStream does not rebuild (a chat
// message's refusal, logprobs, created …) would hold on every stream,
// whatever the stream carried. Such a rule refuses streams: the route
// stores its answers in JSON form only.
func unjudgedOnStreams(rules []Rule) string {
	for i := range rules {
		r := &rules[i]
		if r.Exists == nil || *r.Exists {
			continue
		}
		if !rebuiltOnStreams(r.Path) {
			return r.Path
		}
	}
	return ""
}

// rebuiltOnStreams reports whether AssembleStream writes the member at
// path (a rule's gjson path), judged whole: choices.0.logprobs.content
// ends in a name the assembly writes, in a member it does not. A choice or
// a tool call is named by its number or '#'; any other path syntax is not
// taken for a rebuilt member.
func rebuiltOnStreams(path string) bool {
	seg := strings.Split(path, ".")
	at := func(i int, names ...string) bool { return i < len(seg) && slices.Contains(names, seg[i]) }
	numbered := func(i int) bool {
		if i >= len(seg) || seg[i] == "" {
			return false
		}
		if seg[i] == "#" {
			return true
		}
		for _, c := range seg[i] {
			if c < '0' || c > '9' {
				return false
			}
		}
		return true
	}
	switch {
	case len(seg) == 1:
		return at(0, "id", "object", "model", "system_fingerprint", "usage", "choices")
	case seg[0] == "usage":
		return true // copied whole
	case seg[0] != "choices" || !numbered(1):
		return false
	case len(seg) == 2:
		return true
	case at(2, "index", "finish_reason", "text"):
		return len(seg) == 3
	case !at(2, "message"):
		return false
	case len(seg) == 3:
		return true
	case at(3, "role", "content"):
		return len(seg) == 4
	case !at(3, "tool_calls"):
		return false
	case len(seg) == 4:
		return true
	case !numbered(4):
		return false
	case len(seg) == 5:
		return true
	case at(5, "id", "type"):
		return len(seg) == 6
	case at(5, "function"):
		return len(seg) == 6 || len(seg) == 7 && at(6, "name", "arguments")
	case at(5, "custom"):
		return len(seg) == 6 || len(seg) == 7 && at(6, "name", "input")
	}
	return false
}

// finishedAsListed holds an answer on a route of a kind without checks of
// its own (json, classify) to the route's finish_reasons, as chat's are:
// each of its choices, if it has a choices array (one fronting an
// OpenAI-shaped API). The list was accepted there and did nothing, and a
// truncated answer was stored (review Z69).
//
// Member names are read as a Go client reads them, case-folded: a lone
// "Choices" or "Finish_Reason" is the one a client decodes, and a
// truncated choice under it was stored (review Z211).
func finishedAsListed(r *Route, body []byte) bool {
	ok := true
	gjson.ParseBytes(body).ForEach(func(k, choices gjson.Result) bool {
		if !strings.EqualFold(k.String(), "choices") || !choices.IsArray() {
			return true
		}
		choices.ForEach(func(_, ch gjson.Result) bool {
			reason, named := "", false
			ch.ForEach(func(k, v gjson.Result) bool {
				if strings.EqualFold(k.String(), "finish_reason") {
					reason, named = v.String(), true
				}
				return true
			})
			if !named {
				reason = ch.Get("finish_reason").String() // (not an object: "")
			}
			ok = slices.Contains(r.FinishReasons, reason)
			return ok
		})
		return ok
	})
	return ok
}

// admitJSON runs the kind's checks, the rules and the confidence tiers on a
// JSON response body.
func (c *Cache) admitJSON(req *Request, headers [][2]string, body []byte) Admission {
	r := req.Route
	if admit := r.Kind.spec().admit; admit != nil {
		if reason := admit(req, body); reason != ReasonNone {
			return Admission{Reason: reason}
		}
	} else if len(r.FinishReasons) > 0 && !finishedAsListed(r, body) {
		return Admission{Reason: ReasonFinishReason}
	}
	for i := range r.Rules {
		if !r.Rules[i].Holds(body) {
			return Admission{Reason: ReasonValidation, Rule: r.Rules[i].Path}
		}
	}
	a := Admission{TTL: r.TTL}
	if r.Confidence != nil {
		score := readPath(body, r.Confidence.Path)
		if score.Type != gjson.Number || math.IsNaN(score.Num) || math.IsInf(score.Num, 0) {
			return Admission{Reason: ReasonNoConfidence}
		}
		a.TTL = 0
		for _, t := range r.Confidence.Tiers {
			if t.atLeast(score) {
				a.TTL = t.TTL
				break
			}
		}
		if a.TTL == 0 {
			return Admission{Reason: ReasonLowConfidence}
		}
	}
	a.Version = ResponseVersion(r, headers, body)
	return a
}

// ResponseVersion extracts the model version a response reports, whole.
// body must have passed checkJSON (jsonbound.go).
func ResponseVersion(r *Route, headers [][2]string, body []byte) string {
	var v string
	if h := r.ModelVersion.Header; h != "" {
		v, _ = header(headers, h)
	}
	if v == "" && r.ModelVersion.BodyPath != "" && body != nil {
		v = gjson.GetBytes(body, r.ModelVersion.BodyPath).String()
	}
	return v // whole: its identity is a digest of all of it (models.go)
}

// promptCount is how many prompts a legacy completions request holds: a
// string is one, and so is an array of token ids; an array of strings or
// of token arrays is one each. 0 when the key holds no prompt it can tell
// (then no count is checked).
//
// vLLM's prompt_embeds asks in prompt's place: one tensor (a base64
// string) is one prompt, a list of them one each; a request of them with
// n 3 stored one choice for the n that later clients asked (review Z127).
// Members are read as Go's encoding/json reads them, in any case ("Prompt":
// a Go server's prompt; review Z246); two that fold alike are -1, which no
// answer matches.
func promptCount(top gjson.Result) int {
	p, np := soleMember(top, "prompt")
	e, ne := soleMember(top, "prompt_embeds")
	if np > 1 || ne > 1 {
		return -1
	}
	if !e.Exists() || e.Type == gjson.Null {
		return textPrompts(p)
	}
	// vLLM counts every embed, and a prompt beside them only if it says
	// something: its own client sends prompt "" with them (the SDK takes
	// no None; review Z128).
	n := 1
	if e.IsArray() {
		n = int(e.Get("#").Int())
	}
	if !p.Exists() || p.Type == gjson.Null || p.Type == gjson.String && p.Str == "" {
		return n
	}
	if t := textPrompts(p); t > 0 {
		return n + t
	}
	return 0
}

// textPrompts is promptCount of the prompt member p alone.
func textPrompts(p gjson.Result) int {
	switch {
	case p.Type == gjson.String:
		return 1
	case !p.IsArray():
		return 0
	}
	switch first := p.Get("0"); {
	case first.Type == gjson.Number:
		return 1
	case first.Type == gjson.String || first.IsArray():
		return int(p.Get("#").Int())
	}
	return 0
}

// maxChoices bounds the n choicesAsked reads from a string: more is no
// count a server answers (an Inf among them).
const maxChoices = 1 << 20

// choicesAsked is a request's n, read as its servers read it: a member
// named so in any case (Go's encoding/json), a number or a string of one
// ("3", "3.0": pydantic's lax mode, vLLM's and SGLang's); 1 when absent.
// Two members that fold alike, and a string the cache cannot read as a
// whole number (a server may), are -1, which no answer matches (reviews
// Z246, Z248).
func choicesAsked(top gjson.Result) float64 {
	n, count := soleMember(top, "n")
	switch {
	case count > 1:
		return -1
	case n.Type == gjson.Number && n.Num > 1:
		return n.Num
	case n.Type == gjson.String:
		k, err := strconv.ParseFloat(strings.TrimSpace(n.Str), 64)
		if err != nil || k != math.Trunc(k) || k > maxChoices {
			return -1
		}
		return max(k, 1)
	}
	return 1
}

// checkCompletion refuses truncated, filtered and empty completions.
func checkCompletion(req *Request, body []byte) Reason {
	r := req.Route
	text := r.Kind.spec().textChoices
	choices := gjson.GetBytes(body, "choices")
	if !choices.Exists() {
		// Another API's answer (Anthropic's content blocks, Ollama's
		// message): a retry meets it again (review Z33).
		return ReasonForeignShape
	}
	if !choices.IsArray() {
		return ReasonEmptyContent
	}
	count := arrayLen(choices)
	if count == 0 {
		return ReasonEmptyContent
	}
	// n choices asked for, n given (the canonical request holds n when
	// the key does); a legacy completion's n is per prompt.
	top := gjson.ParseBytes(req.canonical)
	want := choicesAsked(top)
	if text && want >= 0 {
		if p := promptCount(top); p < 0 {
			want = -1
		} else {
			want *= float64(p)
		}
	}
	if want < 0 || want > 1 && float64(count) != want {
		return ReasonBadShape
	}
	jsonAsked := asksJSON(top, text)
	var offered *offeredTools // read at the first call, once
	reason := ReasonNone
	choices.ForEach(func(_, ch gjson.Result) bool {
		fr := ch.Get("finish_reason")
		if len(r.FinishReasons) > 0 && !slices.Contains(r.FinishReasons, fr.String()) {
			reason = ReasonFinishReason
			return false
		}
		if !ch.IsObject() {
			reason = ReasonBadShape
			return false
		}
		var content gjson.Result
		if !text {
			msg := ch.Get("message")
			content = msg.Get("content")
			tc, fc := msg.Get("tool_calls"), msg.Get("function_call")
			calls := tc.Exists() && tc.Type != gjson.Null && !(tc.IsArray() && arrayLen(tc) == 0)
			legacy := fc.Exists() && fc.Type != gjson.Null // OpenAI's legacy function call (functions, function_call; review Z259)
			if calls || legacy {
				// Tool calls are a complete answer without text; text
				// beside them still has to be text.
				if offered == nil {
					offered = readOfferedTools(top)
				}
				if calls {
					reason = checkToolCalls(tc, offered)
				}
				if reason == ReasonNone && legacy && (!fc.IsObject() || !functionCallWhole(fc.Get("name"), fc.Get("arguments"), offered)) {
					reason = ReasonBadShape
				}
				var text strings.Builder
				if reason == ReasonNone && !appendText(&text, content) {
					reason = ReasonBadShape
				}
				return reason == ReasonNone
			}
		} else {
			content = ch.Get("text")
		}
		if r := checkText(content); r != ReasonNone {
			reason = r
			return false
		}
		if jsonAsked && !textIsJSON(content) {
			reason = ReasonBadShape
			return false
		}
		return true
	})
	return reason
}

// asksJSON reports whether a chat or completions request asks for JSON:
// OpenAI's response_format (json_object, json_schema; TGI's "json"),
// vLLM's guided_json and structured_outputs.json, llama.cpp's json_schema.
// Its client decodes the answer, and text that is not JSON (cut short
// under finish_reason "stop", wrapped in prose) failed every caller for the
// entry's life where a retry may give JSON (reviews Z241, Z245, Z246).
// response_format and its type are read in any case, as Go servers read
// them (review Z250).
//
// A completion (text) that echoes its prompt is the prompt followed by the
// JSON: not checked, for an echo a lax server reads as true too ("true",
// 1; review Z250). A chat answer echoes no user message: checked.
func asksJSON(top gjson.Result, text bool) bool {
	if text && laxTrue(top.Get("echo")) {
		// (echo as written: a server that reads "Echo" as echo only
		// makes the check refuse, a miss; review Z252.)
		return false
	}
	rf, _ := soleMember(top, "response_format")
	typ, _ := soleMember(rf, "type")
	r := gjson.GetMany(top.Raw, "grammar.type", "guided_json", "structured_outputs.json", "structured_outputs.json_object", "json_schema")
	for _, t := range []gjson.Result{typ, r[0]} { // TGI's grammar {"type": "json"} too (llama.cpp's grammar is a string)
		if t.Type != gjson.String {
			continue
		}
		// The value as Ollama reads it too: lower-cased and trimmed
		// (review Z252).
		switch strings.ToLower(strings.TrimSpace(t.Str)) {
		case "json_object", "json_schema", "json":
			return true
		}
	}
	for _, v := range r[1:] {
		if v.Exists() && v.Type != gjson.Null && v.Type != gjson.False {
			return true
		}
	}
	return false
}

// laxTrue reports whether v is true as pydantic's lax mode reads a
// boolean: true, a number other than 0, or a string such as "true", "1",
// "yes" or "on".
func laxTrue(v gjson.Result) bool {
	switch v.Type {
	case gjson.True:
		return true
	case gjson.Number:
		return v.Num != 0
	case gjson.String:
		switch strings.ToLower(strings.TrimSpace(v.Str)) {
		case "true", "1", "yes", "on", "t", "y":
			return true
		}
	}
	return false
}

// textIsJSON reports whether a message's content (checkText's: a string,
// or content parts with text) is JSON, read by the bounded scanner.
//
//go:noinline
func textIsJSON(content gjson.Result) bool {
	if content.Type == gjson.String {
		return scanJSON(content.Str, MaxJSONDepth) == scanValid
	}
	var b strings.Builder
	return appendText(&b, content) && scanJSON(b.String(), MaxJSONDepth) == scanValid
}

// checkText refuses a completion's text (a message's content, a legacy
// choice's text) that is empty or not text: a string, or an array of
// content parts of which one has text.
func checkText(content gjson.Result) Reason {
	if content.Type == gjson.String { // the usual case, without a copy
		if strings.TrimSpace(content.Str) == "" {
			return ReasonEmptyContent
		}
		return ReasonNone
	}
	var text strings.Builder
	if !appendText(&text, content) {
		return ReasonBadShape // a number, a boolean, an object
	}
	if strings.TrimSpace(text.String()) == "" {
		return ReasonEmptyContent
	}
	return ReasonNone
}

// appendText appends a completion's text (a message's content, a
// choice's text, a stream delta's content) to dst: a string, or the text
// parts of an array of content parts (Mistral's typed chunks); null or
// absent is none. It reports false for anything else: a number, a
// boolean, an object, a part that is not an object or whose text is not
// a string.
func appendText(dst *strings.Builder, v gjson.Result) bool {
	switch {
	case !v.Exists(), v.Type == gjson.Null:
		return true
	case v.Type == gjson.String:
		dst.WriteString(v.Str)
		return true
	case v.IsArray():
		ok := true
		v.ForEach(func(_, part gjson.Result) bool {
			t := part.Get("text")
			if ok = part.IsObject() && (!t.Exists() || t.Type == gjson.String); ok {
				dst.WriteString(t.Str)
			}
			return ok
		})
		return ok
	}
	return false
}

// checkToolCalls refuses tool calls that are not an array of calls each
// naming its tool: a function call ({"function": {name, arguments}}, type
// "function" or none) or a custom tool call ({"type": "custom", "custom":
// {name, input}}), its arguments or input a string.
func checkToolCalls(tc gjson.Result, offered *offeredTools) Reason {
	if !tc.IsArray() {
		return ReasonBadShape
	}
	reason := ReasonNone
	tc.ForEach(func(_, call gjson.Result) bool {
		if !call.IsObject() || !toolCallNamed(call, offered) {
			reason = ReasonBadShape
			return false
		}
		return true
	})
	return reason
}

func toolCallNamed(call gjson.Result, offered *offeredTools) bool {
	switch typ := call.Get("type"); {
	case !typ.Exists() || typ.Type == gjson.String && typ.Str == "function":
		return functionCallWhole(call.Get("function.name"), call.Get("function.arguments"), offered)
	case typ.Type == gjson.String && typ.Str == "custom":
		name, input := call.Get("custom.name"), call.Get("custom.input")
		// A custom tool's input is free text.
		return callNamed(name, offered) && input.Type == gjson.String
	}
	return false
}

// functionCallWhole reports whether a function call (a tool call's
// function, or a legacy function_call) names a tool the request offered
// and carries its arguments whole. They are a JSON object, which the
// client decodes and passes to the tool: a call cut short ({"city": "Par)
// under a finish reason that says it is whole (review Z241), or arguments
// that decode to a string — a double encoding, the object inside it even
// cut short (review Z259) — would fail every caller for the entry's life.
func functionCallWhole(name, args gjson.Result, offered *offeredTools) bool {
	if !callNamed(name, offered) || args.Type != gjson.String {
		return false // a call without its arguments fails every client that reads them (review Z241)
	}
	a := strings.TrimLeft(args.Str, " \t\r\n")
	return strings.HasPrefix(a, "{") && scanJSON(a, MaxJSONDepth) == scanValid
}

// callNamed reports whether a call's name is a tool's, and one the request
// offered when it named the tools it offers: a client dispatches the call
// by name among its own tools, and a call to another (a built-in tool the
// server's model calls unoffered, a name misspelt) fails every caller's
// dispatch, where a retry may name an offered one (review Z259).
func callNamed(name gjson.Result, offered *offeredTools) bool {
	if name.Type != gjson.String || strings.TrimSpace(name.Str) == "" {
		return false
	}
	return offered.names == nil || offered.names[name.Str]
}

// offeredTools are the names of the tools a request offers (tools: a
// function's, a custom tool's; functions: a legacy function's), nil when
// it names none, or names one the cache cannot read (then no call is
// judged by its name).
type offeredTools struct {
	names map[string]bool
}

// readOfferedTools reads the tools the request top offers.
func readOfferedTools(top gjson.Result) *offeredTools {
	names := map[string]bool{}
	readable := true
	add := func(_, t gjson.Result) bool {
		for _, p := range []string{"function.name", "custom.name", "name"} {
			if n := t.Get(p); n.Type == gjson.String {
				names[n.Str] = true
				return true
			}
		}
		readable = false
		return false
	}
	for _, list := range []gjson.Result{top.Get("tools"), top.Get("functions")} {
		if list.IsArray() {
			list.ForEach(add)
		} else if list.Exists() && list.Type != gjson.Null {
			readable = false
		}
	}
	if !readable || len(names) == 0 {
		return &offeredTools{}
	}
	return &offeredTools{names: names}
}

// Holds reports whether the rule's predicates all hold on body, which
// must have passed checkJSON (jsonbound.go).
func (r *Rule) Holds(body []byte) bool {
	if a, rest, ok := eachAt(r.Path); ok {
		arr := gjson.ParseBytes(body)
		if a >= 0 {
			arr = gjson.GetBytes(body, r.Path[:a])
		}
		return r.holdsEach(arr, r.Path[rest:])
	}
	return r.holds(readPath(body, r.Path))
}

// readPath reads path from an answer as gjson does, except that a path
// ending in a bare '#', an array's length, reads nothing where what comes
// before it is not an array: gjson reads an object's member named "#"
// there, which an answer with no array at all can supply (review Z64).
func readPath(body []byte, path string) gjson.Result {
	seg := lengthSeg(path)
	if seg < 0 {
		return gjson.GetBytes(body, path)
	}
	return lengthAt(gjson.ParseBytes(body), path, seg)
}

// valueAt is readPath from a value already read.
func valueAt(v gjson.Result, path string) gjson.Result {
	return lengthAt(v, path, lengthSeg(path))
}

// lengthAt reads path from v, its last segment starting at seg if it is a
// bare '#' (lengthSeg; -1 if not).
func lengthAt(v gjson.Result, path string, seg int) gjson.Result {
	if seg >= 0 {
		arr := v
		if seg > 0 {
			arr = v.Get(path[:seg-1])
		}
		if !arr.IsArray() {
			return gjson.Result{}
		}
	}
	return v.Get(path)
}

// eachAt finds where path crosses every element of an array, with more of
// the path after it: a bare '#' ("choices.#.message": the array at
// path[:arr], "choices", the rest from path[rest:], "message") or a query
// over every match ("p.#(score>0.5)#.label": the array "p.#(score>0.5)#").
// arr is -1 where the array is the body itself. gjson reads such a path as
// one array of the elements' values, in which a member no element has
// still "exists" (as []) and [""] is not empty: a rule is judged on each
// element instead (holdsEach).
func eachAt(path string) (arr, rest int, ok bool) {
	seg := 0 // where the current segment starts
	for i := 0; i < len(path); i++ {
		switch c := path[i]; {
		case c == '\\':
			i++
		case c == '.':
			seg = i + 1
		case c == '#' && i == seg && i+1 < len(path) && path[i+1] == '.':
			return i - 1, i + 2, true
		case c == '#' && i == seg && i+1 < len(path) && path[i+1] == '(':
			j := groupEnd(path, i+1)
			if j < 0 {
				return 0, 0, false
			}
			if j+2 < len(path) && path[j+1] == '#' && path[j+2] == '.' {
				return j + 2, j + 3, true
			}
			i = j
		case (c == '[' || c == '{') && i == seg:
			// A multipath ("{kinds:data.#.object}") is read whole by
			// gjson: a '#' inside it crosses no element of the answer
			// (review Z12, stop 72: the rule was judged on "{kinds:data").
			j := groupEnd(path, i)
			if j < 0 {
				return 0, 0, false
			}
			i = j
		}
	}
	return 0, 0, false
}

// groupEnd is the index of the bracket closing the one opened at
// path[open] (a query's '(', a multipath's '[' or '{'), brackets of every
// kind nested, as gjsonPathOK counts them, and quoted strings skipped; -1
// if none.
func groupEnd(path string, open int) int {
	depth, quoted := 0, false
	for i := open; i < len(path); i++ {
		switch c := path[i]; {
		case c == '\\':
			i++
		case quoted:
			quoted = c != '"'
		case c == '"':
			quoted = true
		case c == '(' || c == '[' || c == '{':
			depth++
		case c == ')' || c == ']' || c == '}':
			if depth--; depth == 0 {
				return i
			}
		}
	}
	return -1
}

// endsInEveryMatch reports whether path ends at a query over every match
// ("scores.#(>0.5)#"): it reads a list.
func endsInEveryMatch(path string) bool {
	if !strings.HasSuffix(path, ")#") {
		return false
	}
	for i := strings.LastIndex(path, "#("); i >= 0; i = strings.LastIndex(path[:i], "#(") {
		if groupEnd(path, i+1) == len(path)-2 {
			return true
		}
	}
	return false
}

// holdsEach reports whether the rule holds on rest of every element of arr
// (none: vacuously); a value that is not an array has no elements, and is
// judged as a missing value.
func (r *Rule) holdsEach(arr gjson.Result, rest string) bool {
	if !arr.IsArray() {
		return r.holds(gjson.Result{})
	}
	a, next, each := eachAt(rest) // once for the array, not per element
	ok := true
	arr.ForEach(func(_, e gjson.Result) bool {
		if each {
			sub := e
			if a >= 0 {
				sub = e.Get(rest[:a])
			}
			ok = r.holdsEach(sub, rest[next:])
		} else {
			ok = r.holds(valueAt(e, rest))
		}
		return ok
	})
	return ok
}

// atLeast reports whether score is at least the tier's min, exactly: a
// score whose float64 is the min's is compared by its digits with the
// min's shortest decimal, which is the min as written (parser.confidence
// refuses one with more digits than a float64 holds), so
// 0.59999999999999999999 is below 0.6 (review Z12, stop 72). Rounding to
// float64 keeps order otherwise. A score whose exponent is too large to
// reason about and whose float64 is the min is 0 by underflow, on the
// side of its sign (review Z16).
func (t *Tier) atLeast(score gjson.Result) bool { return numAtLeast(score, t.Min) }

// numAtLeast reports whether the number v is at least min, exactly (as
// Tier.atLeast says); a validation rule's min and max are compared so too
// (review Z97: 0.59999999999999999999 passed a min of 0.6).
func numAtLeast(v gjson.Result, min float64) bool { return compareExact(v, min) >= 0 }

// numAbove reports whether the number v is above max, exactly.
func numAbove(v gjson.Result, max float64) bool { return compareExact(v, max) > 0 }

// compareExact orders the number v against the bound b (-1, 0 or 1): by
// their float64s where they differ, else by v's digits against b's
// shortest decimal. A v too small to reason about is 0 by underflow, on
// the side of its sign.
func compareExact(v gjson.Result, b float64) int {
	if v.Num != b {
		if v.Num > b {
			return 1
		}
		return -1
	}
	s, okS := decimalOf(v.Raw)
	if !okS {
		if strings.HasPrefix(v.Raw, "-") {
			return -1
		}
		return 1
	}
	m, okM := decimalOf(strconv.FormatFloat(b, 'g', -1, 64))
	if !okM {
		return 0
	}
	return compareDecimal(s, m)
}

// compareDecimal orders two decimals by value: -1, 0 or 1.
func compareDecimal(a, b decimal) int {
	za, zb := a.digits == "", b.digits == ""
	switch {
	case za && zb:
		return 0
	case za:
		if b.neg {
			return 1
		}
		return -1
	case zb:
		if a.neg {
			return -1
		}
		return 1
	case a.neg != b.neg:
		if a.neg {
			return -1
		}
		return 1
	}
	c := compareMagnitude(a, b)
	if a.neg {
		return -c
	}
	return c
}

// compareMagnitude orders two non-zero decimals by absolute value: by the
// power of ten of their first digit, then digit by digit (neither has
// trailing zeros, so the longer of two equal prefixes is larger).
func compareMagnitude(a, b decimal) int {
	ea, eb := a.exp+int64(len(a.digits)), b.exp+int64(len(b.digits))
	switch {
	case ea != eb:
		if ea < eb {
			return -1
		}
		return 1
	case a.digits < b.digits:
		return -1
	case a.digits > b.digits:
		return 1
	}
	return 0
}

// sameNumber reports whether two JSON numbers have the same value, exactly:
// 1, 1.0 and 1e0 alike, 9007199254740993 not 9007199254740992 (as float64
// they are one), 1e400 not 2e400 (both infinite). Linear in their lengths.
func sameNumber(a, b string) bool {
	na, oka := decimalOf(a)
	nb, okb := decimalOf(b)
	if !oka || !okb {
		return a == b
	}
	return na == nb
}

// decimal is a number's value as sign, significant digits (no leading or
// trailing zeros) and the power of ten of the last one; zero is all zero.
type decimal struct {
	neg    bool
	digits string
	exp    int64
}

func decimalOf(raw string) (decimal, bool) {
	var d decimal
	s := raw
	if strings.HasPrefix(s, "-") {
		d.neg, s = true, s[1:]
	}
	mant, expPart, hasExp := s, "", false
	if i := strings.IndexAny(s, "eE"); i >= 0 {
		mant, expPart, hasExp = s[:i], s[i+1:], true
	}
	intPart, frac, _ := strings.Cut(mant, ".")
	digits := strings.TrimLeft(intPart+frac, "0")
	if digits == "" {
		return decimal{}, true // zero, -0 too, whatever its exponent (review Z18)
	}
	var exp int64
	if hasExp {
		e, err := strconv.ParseInt(strings.TrimPrefix(expPart, "+"), 10, 64)
		if err != nil || e > 1<<40 || e < -(1<<40) {
			return d, false // too large to reason about: compared as written
		}
		exp = e
	}
	exp -= int64(len(frac))
	trimmed := strings.TrimRight(digits, "0")
	exp += int64(len(digits) - len(trimmed))
	if trimmed == "" {
		return decimal{}, true // zero, -0 too
	}
	d.digits, d.exp = trimmed, exp
	return d, true
}

// indexOneOf sorts one_of's values for oneOfHolds: the scalars into a
// set by scalarKey, the arrays and objects apart. A scalar that does not
// canonicalise equals nothing (jsonEqual) and is left out.
func (r *Rule) indexOneOf() {
	r.oneOf, r.oneOfLongest = nil, 0
	for _, o := range r.OneOf {
		if k, ok := valueKey(o, 0, math.MaxInt); ok {
			if r.oneOf == nil {
				r.oneOf = make(map[string]bool, len(r.OneOf))
			}
			r.oneOf[k] = true
			r.oneOfLongest = max(r.oneOfLongest, len(k))
		}
	}
}

// oneOfHolds reports whether v equals a value of one_of (jsonEqual): a
// scalar is looked up, an array or object compared with one_of's arrays
// and objects only (a scalar never equals one). Work is linear in v, not
// in v times one_of's values (review Z12, stop 72: 1,000 labels made a
// 128 KiB answer take seconds). A rule with neither (made other than by
// the parser, or whose values all fail to canonicalise) compares with
// each value.
func (r *Rule) oneOfHolds(v gjson.Result) bool {
	if r.oneOf == nil {
		return slices.ContainsFunc(r.OneOf, func(o gjson.Result) bool { return jsonEqual(v, o) })
	}
	k, ok := valueKey(v, 0, r.oneOfLongest)
	return ok && r.oneOf[k]
}

// valueKey is scalarKey for any JSON value: equal for two values exactly
// when jsonEqual finds them equal. An array is its elements' keys in
// order, an object its members' names and keys sorted by name, each
// length-prefixed; an object with a name twice equals nothing (jsonEqual),
// nor does a value nested deeper than MaxJSONDepth. Objects and arrays of
// one_of were compared with each value of it, each comparison building a
// map of the answer's members: 1,000 objects took 1.4 s an answer (review
// Z127). A key longer than limit (one_of's longest) equals no value of it
// and is not built further (ok false): each level copies its children's
// keys, and a label nested 62 objects deep around 120 KiB made 16 MiB of
// keys (review Z144).
func valueKey(v gjson.Result, depth, limit int) (string, bool) {
	if depth > MaxJSONDepth {
		return "", false
	}
	switch {
	case v.IsArray():
		b := []byte{'a'}
		ok := true
		v.ForEach(func(_, e gjson.Result) bool {
			var k string
			if k, ok = valueKey(e, depth+1, limit); ok {
				b = strconv.AppendInt(b, int64(len(k)), 10)
				b = append(append(b, ':'), k...)
				ok = len(b) <= limit
			}
			return ok
		})
		return string(b), ok
	case v.IsObject():
		type member struct{ name, key string }
		var ms []member
		ok := true
		size := 1
		v.ForEach(func(n, e gjson.Result) bool {
			var k string
			if k, ok = valueKey(e, depth+1, limit); ok {
				ms = append(ms, member{n.Str, k})
				size += len(n.Str) + len(k) + 2
				ok = size <= limit
			}
			return ok
		})
		if !ok {
			return "", false
		}
		slices.SortFunc(ms, func(a, b member) int { return strings.Compare(a.name, b.name) })
		b := []byte{'o'}
		for i, m := range ms {
			if i > 0 && ms[i-1].name == m.name {
				return "", false // a name twice
			}
			b = strconv.AppendInt(b, int64(len(m.name)), 10)
			b = append(append(b, ':'), m.name...)
			b = strconv.AppendInt(b, int64(len(m.key)), 10)
			b = append(append(b, ':'), m.key...)
		}
		return string(b), true
	}
	if k, ok := scalarKey(v); ok && len(k) <= limit {
		return k, true
	}
	return "", false
}

// scalarKey is a JSON scalar's value as a string, equal for two scalars
// exactly when jsonEqual finds them equal: a number by its decimal value
// (as written when too large to reason about, as sameNumber compares it),
// any other by its canonical form. False for a value that does not
// canonicalise, which jsonEqual finds equal to nothing.
func scalarKey(v gjson.Result) (string, bool) {
	if v.Type == gjson.Number {
		d, ok := decimalOf(v.Raw)
		if !ok {
			return "r" + v.Raw, true
		}
		sign := "+"
		if d.neg {
			sign = "-"
		}
		return "n" + sign + d.digits + "e" + strconv.FormatInt(d.exp, 10), true
	}
	c, err := Canonicalize([]byte(v.Raw), nil)
	if err != nil {
		return "", false
	}
	return "c" + string(c), true
}

// passes reports whether v, as the path's value, passes every predicate
// but equals and one_of (a value they name must pass the others).
func (r *Rule) passes(v gjson.Result) bool {
	probe := *r
	probe.Exists, probe.Equals, probe.OneOf = nil, nil, nil
	return probe.holds(v)
}

// holds judges the rule's predicates on v, its path's value.
func (r *Rule) holds(v gjson.Result) bool {
	if r.Exists != nil && v.Exists() != *r.Exists {
		return false
	}
	if !v.Exists() {
		// Only "exists: false" can hold for a missing value.
		return r.Exists != nil && !*r.Exists && r.Type == "" && !r.NonEmpty &&
			r.Equals == nil && r.OneOf == nil && r.Min == nil && r.Max == nil &&
			r.MinItems == nil && r.MaxItems == nil
	}
	if r.Type != "" && jsonType(v) != r.Type {
		return false
	}
	if r.NonEmpty && isEmpty(v) {
		return false
	}
	if r.Equals != nil && !jsonEqual(v, *r.Equals) {
		return false
	}
	if r.OneOf != nil && !r.oneOfHolds(v) {
		return false
	}
	if r.Min != nil || r.Max != nil {
		if v.Type != gjson.Number {
			return false
		}
		if (r.Min != nil && !numAtLeast(v, *r.Min)) || (r.Max != nil && numAbove(v, *r.Max)) {
			return false
		}
	}
	if r.MinItems != nil || r.MaxItems != nil {
		if !v.IsArray() {
			return false
		}
		n := arrayLen(v)
		if (r.MinItems != nil && n < *r.MinItems) || (r.MaxItems != nil && n > *r.MaxItems) {
			return false
		}
	}
	return true
}

func jsonType(v gjson.Result) string {
	switch v.Type {
	case gjson.String:
		return "string"
	case gjson.Number:
		return "number"
	case gjson.True, gjson.False:
		return "bool"
	case gjson.Null:
		return "null"
	}
	if v.IsArray() {
		return "array"
	}
	return "object"
}

func isEmpty(v gjson.Result) bool {
	switch {
	case v.Type == gjson.String:
		return strings.TrimSpace(v.Str) == ""
	case v.Type == gjson.Null:
		return true
	case v.IsArray() || v.IsObject():
		empty := true
		v.ForEach(func(_, _ gjson.Result) bool { empty = false; return false })
		return empty
	}
	return false
}

// jsonEqual compares two JSON values by meaning (canonical form).
func jsonEqual(a, b gjson.Result) bool {
	switch {
	case a.Type == gjson.Number && b.Type == gjson.Number:
		return sameNumber(a.Raw, b.Raw)
	case a.IsArray() && b.IsArray():
		// Numbers by value at every depth, as at the top ([1] is [1.0]).
		// Counted first, then b's elements kept as their text only, a's
		// walked beside them: a.Array() and b.Array() made 80 bytes of
		// gjson result an element (review Z144).
		n := arrayLen(a)
		if n != arrayLen(b) {
			return false
		}
		raws := make([]string, 0, n)
		b.ForEach(func(_, e gjson.Result) bool {
			raws = append(raws, e.Raw)
			return true
		})
		i, ok := 0, true
		a.ForEach(func(_, e gjson.Result) bool {
			ok = i < len(raws) && jsonEqual(e, gjson.Parse(raws[i]))
			i++
			return ok
		})
		return ok
	case a.IsObject() && b.IsObject():
		am := map[string]gjson.Result{}
		dup := false
		a.ForEach(func(k, v gjson.Result) bool {
			_, dup = am[k.Str]
			am[k.Str] = v
			return !dup
		})
		if dup {
			return false // a name twice equals nothing
		}
		ok := true
		b.ForEach(func(k, v gjson.Result) bool {
			av, found := am[k.Str]
			ok = found && jsonEqual(av, v)
			delete(am, k.Str) // a member named twice in b is found once
			return ok
		})
		return ok && len(am) == 0
	}
	ca, errA := Canonicalize([]byte(a.Raw), nil)
	cb, errB := Canonicalize([]byte(b.Raw), nil)
	return errA == nil && errB == nil && string(ca) == string(cb)
}

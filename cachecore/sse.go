package cachecore

import (
	"bytes"
	"strconv"
	"strings"

	"github.com/tidwall/gjson"
)

// Streaming responses (text/event-stream, OpenAI's `stream: true`).
//
// The cache keeps the exact bytes of a complete stream and replays them, so
// a hit's `data:` lines are byte-identical to the original (ids, deltas,
// tool calls, the usage chunk). A stream is stored only when it is
// complete: the terminal `data: [DONE]` was seen, every data event is JSON,
// and the message assembled from its deltas passes the same checks as a
// non-streamed answer (finish_reason allowed, non-empty content, the route's
// validation rules). `stream: true` and `stream: false` requests never share
// an entry: `stream` is part of the key.

// SSEEvent is one server-sent event (WHATWG HTML §9.2 event stream).
type SSEEvent struct {
	Event string
	ID    string
	Data  string // data lines joined with "\n"
}

// sseScanner splits an event-stream body into events (WHATWG HTML §9.2:
// lines end in "\n", "\r\n" or "\r"; a blank line ends an event;
// comment lines (":") and unknown fields are ignored), one at a time, so
// that judging a stream holds one event, not all of them: a stream of
// tiny events materialised whole costs about ten times its size.
//
// Where clients differ, it reads as the strictest one a stream must
// satisfy to be stored: openai-python dispatches a block with no data line
// (an event name, an id or an integer retry alone) with empty data, and,
// while the last id it read is not empty, every blank line, and fails on
// the empty data as JSON. Such blocks are dispatched here too, and refuse the stream
// (AssembleStream: not JSON).
type sseScanner struct {
	rest    []byte
	pending bool // a block has begun (a field line) and not ended
	cut     bool // the body ends in a line without its end
	hadID   bool // the last event id is not empty: every blank line dispatches
	// errorLine: a line of an "error" field, llama.cpp's report of an
	// error mid-stream ("error: {...}", [DONE] after it). Clients ignore
	// the unknown field, but the stream it ends is not the model's whole
	// answer: it refuses the stream (AssembleStream; review Z260).
	errorLine bool
}

// next returns the next event; ok is false at the end of the body.
func (sc *sseScanner) next() (ev SSEEvent, ok bool) {
	var data []byte
	hasData, retry := false, false
	for len(sc.rest) > 0 {
		i := bytes.IndexAny(sc.rest, "\r\n")
		if i < 0 {
			sc.rest, sc.cut = nil, true // a line without its end
			return SSEEvent{}, false
		}
		line := sc.rest[:i]
		if sc.rest[i] == '\r' && i+1 < len(sc.rest) && sc.rest[i+1] == '\n' {
			sc.rest = sc.rest[i+2:]
		} else {
			sc.rest = sc.rest[i+1:]
		}
		if len(line) == 0 {
			// openai-python's rule: a data line, an event name, a
			// retry or a last event id that is not empty dispatches.
			sc.pending = false
			if hasData || ev.Event != "" || retry || sc.hadID {
				ev.Data = string(data)
				return ev, true
			}
			ev, data, hasData, retry = SSEEvent{}, data[:0], false, false
			continue
		}
		if line[0] == ':' {
			continue
		}
		field, value, _ := bytes.Cut(line, []byte(":"))
		value = bytes.TrimPrefix(value, []byte(" "))
		switch string(field) {
		case "data":
			if hasData {
				data = append(data, '\n')
			}
			data, hasData = append(data, value...), true
			sc.pending = true
		case "event":
			ev.Event = string(value)
			sc.pending = true
		case "id":
			sc.pending = true
			if bytes.IndexByte(value, 0) < 0 { // an id with a NUL is ignored
				ev.ID = string(value)
				sc.hadID = len(value) > 0
			}
		case "retry":
			sc.pending = true
			retry = retry || pythonInt(value)
		case "error":
			sc.errorLine = true
		}
	}
	return SSEEvent{}, false
}

// pythonInt reports whether Python's int() reads v (white space around, a
// sign, digits with single underscores between them); a value with bytes
// beyond ASCII counts as read (Unicode digits): a retry that may dispatch
// refuses the stream, the safe side.
func pythonInt(v []byte) bool {
	for _, b := range v {
		if b >= 0x80 {
			return true // Unicode white space or digits, anywhere
		}
	}
	v = bytes.Trim(v, " \t\v\f")
	if len(v) > 0 && (v[0] == '+' || v[0] == '-') {
		v = v[1:]
	}
	if len(v) == 0 {
		return false
	}
	for i, b := range v {
		switch {
		case b >= '0' && b <= '9':
		case b == '_' && i > 0 && i+1 < len(v) && v[i-1] != '_' && v[i+1] != '_':
		default:
			return false
		}
	}
	return v[0] != '_'
}

// complete reads what is left and reports whether the body ended between
// events (not in the middle of one).
func (sc *sseScanner) complete() bool {
	for _, ok := sc.next(); ok; _, ok = sc.next() {
	}
	return !sc.cut && !sc.pending
}

// StreamSummary is what the cache learns from a recorded chat or
// completions stream.
type StreamSummary struct {
	Done      bool // the terminal [DONE] was seen
	Malformed bool // a data event was not JSON
	TooDeep   bool // a data event nested beyond MaxJSONDepth
	// Unreadable: a data event has a duplicate member name (or an exponent
	// too large to read past); see duplicateMembers.
	Unreadable Reason
	// ErrorEvent: the stream reports an error (an "event: error", or a data
	// event whose JSON is an error report), wherever it comes.
	ErrorEvent bool
	// BadShape: a data event that is not a chunk object, choices that are
	// not objects, or more choices or tool calls than assembly takes
	// (maxStreamChoices, maxStreamToolCalls).
	BadShape bool
	// Foreign: the bad shape is a chunk object without choices at all:
	// another API's stream.
	Foreign   bool
	Assembled []byte // the equivalent non-streamed response, for admission
}

// Assembly bounds: a stream's assembled message stays within a constant of
// the stream's own size, whatever indices its chunks name.
const (
	maxStreamChoices   = 128 // choice indices 0..127
	maxStreamToolCalls = 128 // tool calls over all choices
)

// AssembleStream rebuilds, from the chunks of a chat (or legacy
// completions) stream, the response a non-streamed request would have got:
// content and tool-call arguments concatenated per choice, the last
// finish_reason, the usage chunk if any.
func AssembleStream(kind Kind, body []byte) StreamSummary {
	text := kind.spec().textChoices
	// A leading byte order mark is not part of the first line (WHATWG
	// HTML, "event stream interpretation"; TextDecoder drops it): read
	// with it, that line's field and an error event in it were lost. But
	// openai-python keeps it, reads the first line as an unknown field and
	// loses that event, or fails on it: a stream led by one is not stored
	// (review Z50), and is read without it for what else it reports.
	sc := sseScanner{rest: bytes.TrimPrefix(body, []byte("\xef\xbb\xbf"))}
	var s StreamSummary
	s.Malformed = len(sc.rest) < len(body)
	type toolCall struct {
		id, typ    string
		name, args strings.Builder // appended per chunk: linear, not quadratic
	}
	type choice struct {
		content strings.Builder
		said    bool // a delta carried content that is not null
		parts   bool // a delta carried content parts (an array)
		role    string
		finish  string
		tools   []*toolCall
		fn      *toolCall // a legacy function_call's name and arguments (review Z262)
	}
	var choices []*choice
	calls := 0 // tool calls over all choices
	var object, usage string
	// id, model and system_fingerprint as the chunks carry them (their
	// JSON, not a string made of it): a rule is judged on what a client
	// reads (reviews Z127, Z171).
	var id, model, fingerprint carried
	dups := duplicateMembers{tokenMaps: kind == KindCompletions}
	for ev, ok := sc.next(); ok; ev, ok = sc.next() {
		if ev.Event == "error" {
			s.ErrorEvent = true // whatever its data says
			break
		}
		if s.Done {
			if ev.Data == "" || ev.Data == "[DONE]" {
				// A keep-alive an id makes an event, or [DONE] again:
				// clients stop at the first (review Z150: a second one
				// was refused as an error report).
				continue
			}
			// Nothing may follow [DONE]; an error report after it still
			// condemns the stream, and so does an event that cannot be
			// read for one (cut, too deep, a duplicate member: before
			// [DONE] each refuses the stream).
			if checkJSON(ev.Data) != ReasonNone || dups.check(stringBytes(ev.Data)) != ReasonNone || reportsError(gjson.Parse(ev.Data)) {
				s.ErrorEvent = true
				break
			}
			continue
		}
		if ev.Data == "[DONE]" {
			s.Done = true
			continue
		}
		// Bounded before gjson reads it (jsonbound.go).
		switch checkJSON(ev.Data) {
		case ReasonNone:
		case ReasonTooDeep:
			s.TooDeep = true
			continue
		default:
			s.Malformed = true
			continue
		}
		// The canonicaliser only reads the event's bytes.
		if r := dups.check(stringBytes(ev.Data)); r != ReasonNone {
			s.Unreadable = r
			continue
		}
		chunk := gjson.Parse(ev.Data)
		if reportsError(chunk) {
			s.ErrorEvent = true
			continue
		}
		if !chunk.IsObject() {
			s.BadShape = true
			break
		}
		if ch := chunk.Get("choices"); !ch.IsArray() {
			// Missing or not an array: a chunk no SDK can read (the
			// usage chunk's choices are [], not absent). Missing: another
			// API's event (Anthropic's message_start), which a retry
			// meets again.
			s.BadShape, s.Foreign = true, !ch.Exists()
			break
		}
		id.note(chunk.Get("id"))
		if model.note(chunk.Get("model")) {
			// Two models in one stream: clients keep the first (Python's
			// accumulator) or the last (Node's), as for two
			// finish_reasons (review Z127).
			s.BadShape = true
			break
		}
		if v := chunk.Get("object"); v.Exists() {
			object = v.String()
		}
		fingerprint.note(chunk.Get("system_fingerprint"))
		if v := chunk.Get("usage"); v.IsObject() {
			usage = v.Raw
		}
		chunk.Get("choices").ForEach(func(_, c gjson.Result) bool {
			ci := c.Get("index")
			idx := int(ci.Int())
			if !c.IsObject() || idx < 0 || idx >= maxStreamChoices || ci.Exists() && !isInteger(ci) {
				s.BadShape = true
				return false
			}
			for len(choices) <= idx {
				choices = append(choices, &choice{})
			}
			ch := choices[idx]
			if text {
				t := c.Get("text")
				if t.Exists() && t.Type != gjson.String && t.Type != gjson.Null {
					s.BadShape = true
					return false
				}
				ch.content.WriteString(t.Str)
			} else {
				d := c.Get("delta")
				if r := d.Get("role"); r.Exists() && r.Type != gjson.Null {
					ch.role = r.Raw // as carried (review Z171); a null says nothing (review Z178)
				}
				if !d.IsObject() && d.Exists() {
					s.BadShape = true
					return false
				}
				dc := d.Get("content")
				if !appendText(&ch.content, dc) {
					s.BadShape = true
					return false
				}
				ch.said = ch.said || dc.Exists() && dc.Type != gjson.Null
				ch.parts = ch.parts || dc.IsArray()
				tcs := d.Get("tool_calls")
				if tcs.Exists() && tcs.Type != gjson.Null && !tcs.IsArray() {
					// An object's members read as calls passed the JSON
					// form's check, which refuses it (review Z127).
					s.BadShape = true
					return false
				}
				if fc := d.Get("function_call"); fc.Exists() && fc.Type != gjson.Null {
					// OpenAI's legacy function call, its name and arguments
					// in string fragments as a tool call's: assembled, the
					// JSON form's check judges it (checkCompletion).
					if ch.fn == nil {
						ch.fn = &toolCall{}
					}
					if !fc.IsObject() || !appendFragment(&ch.fn.name, fc.Get("name")) || !appendFragment(&ch.fn.args, fc.Get("arguments")) {
						s.BadShape = true
						return false
					}
				}
				tcs.ForEach(func(_, tc gjson.Result) bool {
					// The index is bounded before any arithmetic: ti+1 of
					// an index at the int64 limit wraps.
					tci := tc.Get("index")
					ti := int(tci.Int())
					if !tc.IsObject() || ti < 0 || ti >= maxStreamToolCalls || calls+max(0, ti+1-len(ch.tools)) > maxStreamToolCalls ||
						tci.Exists() && !isInteger(tci) {
						s.BadShape = true
						return false
					}
					for len(ch.tools) <= ti {
						ch.tools = append(ch.tools, &toolCall{})
						calls++
					}
					t := ch.tools[ti]
					// A null says nothing, as an absent member: it wiped
					// what an earlier delta said (review Z169).
					if v := tc.Get("id"); v.Exists() && v.Type != gjson.Null {
						t.id = v.Raw // as carried: a number stays one (review Z171)
					}
					if v := tc.Get("type"); v.Exists() && v.Type != gjson.Null {
						t.typ = v.String()
					}
					if t.typ == "" && tc.Get("custom").Exists() {
						t.typ = "custom"
					}
					// A custom tool's {name, input}, else a function's {name,
					// arguments}: an object of string fragments, as the
					// non-streamed form must be (toolCallNamed).
					part, name, input := tc.Get("function"), "name", "arguments"
					if t.typ == "custom" {
						part, input = tc.Get("custom"), "input"
					}
					if part.Exists() && part.Type != gjson.Null && !(part.IsObject() &&
						appendFragment(&t.name, part.Get(name)) && appendFragment(&t.args, part.Get(input))) {
						s.BadShape = true
						return false
					}
					return true
				})
			}
			switch fr := c.Get("finish_reason"); fr.Type {
			case gjson.String:
				// Clients act on the first a choice reports: a "length"
				// or "content_filter" a later "stop" overwrote was
				// stored as complete (review Z88). Two that differ say
				// two things, as a repeated member would (duplicate_key).
				if ch.finish != "" && ch.finish != fr.Str {
					s.BadShape = true
					return false
				}
				ch.finish = fr.Str
			case gjson.Null:
			default:
				if fr.Exists() { // a number or a list: not what the JSON form admits
					s.BadShape = true
					return false
				}
			}
			return !s.BadShape
		})
		if s.BadShape {
			break
		}
	}
	if !sc.complete() {
		s.Done = false
	}
	if sc.errorLine { // anywhere in the body: complete read what the loop left
		s.ErrorEvent = true
	}
	// Assemble the equivalent non-streamed body.
	obj := "chat.completion"
	if text || object == "text_completion" {
		obj = "text_completion"
	}
	b := append(id.appendMember([]byte{'{'}, "id"), `"object":`...)
	b = appendJSONString(b, obj)
	b = model.appendMember(append(b, ','), "model")
	b = fingerprint.appendMember(b, "system_fingerprint")
	b = b[:len(b)-1] // the comma appendMember leaves
	b = append(b, `,"choices":[`...)
	for i, ch := range choices {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, `{"index":`...)
		b = strconv.AppendInt(b, int64(i), 10)
		if text {
			b = append(b, `,"text":`...)
			b = appendJSONString(b, ch.content.String())
		} else {
			b = append(b, `,"message":{"role":`...)
			if ch.role == "" {
				b = append(b, `"assistant"`...)
			} else {
				b = append(b, ch.role...)
			}
			b = append(b, `,"content":`...)
			switch {
			case ch.parts:
				// Content parts stay parts, as in the JSON form, which a
				// rule on the content's type judges so (review Z169).
				b = append(b, `[{"type":"text","text":`...)
				b = append(appendJSONString(b, ch.content.String()), "}]"...)
			case ch.said:
				b = appendJSONString(b, ch.content.String())
			default:
				b = append(b, "null"...) // as the JSON form of an answer without text
			}
			if len(ch.tools) > 0 {
				b = append(b, `,"tool_calls":[`...)
				for j, t := range ch.tools {
					if j > 0 {
						b = append(b, ',')
					}
					b = append(b, '{')
					if t.id != "" {
						// No delta named an id: none, as in the JSON form,
						// whose rules then judge it (review Z171).
						b = append(append(b, `"id":`...), t.id...)
						b = append(b, ',')
					}
					if t.typ != "" {
						// No delta named a type: none, as in a JSON form
						// without one (a function call), not "" (review Z169).
						b = append(b, `"type":`...)
						b = append(appendJSONString(b, t.typ), ',')
					}
					if t.typ == "custom" {
						b = append(b, `"custom":{"name":`...)
						b = appendJSONString(b, t.name.String())
						b = append(b, `,"input":`...)
					} else {
						b = append(b, `"function":{"name":`...)
						b = appendJSONString(b, t.name.String())
						b = append(b, `,"arguments":`...)
					}
					b = appendJSONString(b, t.args.String())
					b = append(b, "}}"...)
				}
				b = append(b, ']')
			}
			if ch.fn != nil {
				b = append(b, `,"function_call":{"name":`...)
				b = appendJSONString(b, ch.fn.name.String())
				b = append(b, `,"arguments":`...)
				b = append(appendJSONString(b, ch.fn.args.String()), '}')
			}
			b = append(b, '}')
		}
		b = append(b, `,"finish_reason":`...)
		if ch.finish == "" {
			b = append(b, "null"...)
		} else {
			b = appendJSONString(b, ch.finish)
		}
		b = append(b, '}')
	}
	b = append(b, ']')
	if usage != "" {
		b = append(b, `,"usage":`...)
		b = append(b, usage...)
	}
	s.Assembled = append(b, '}')
	return s
}

// carried is a top-level member of a stream's chunks as they carry it:
// the JSON of the first value that is not an empty string (Azure's first
// chunk names no model and no id), else "" if only an empty one came.
type carried struct {
	raw   string // the first value not "", as JSON
	empty bool   // a "" came
}

// note takes one chunk's value, and reports whether it differs from the
// one kept (both not empty).
func (c *carried) note(v gjson.Result) (differs bool) {
	switch {
	case !v.Exists():
	case v.Type == gjson.String && v.Str == "":
		c.empty = true
	case c.raw == "":
		c.raw = v.Raw
	default:
		return c.raw != v.Raw
	}
	return false
}

// appendMember appends `"name":value,` as the chunks carried it, or
// nothing if none did.
func (c *carried) appendMember(b []byte, name string) []byte {
	switch {
	case c.raw != "":
		b = append(appendJSONString(b, name), ':')
		b = append(b, c.raw...)
	case c.empty:
		b = append(appendJSONString(b, name), `:""`...)
	default:
		return b
	}
	return append(b, ',')
}

// streamEventsVersion is the version a stream's events carry at path
// (model_version.body_path) where its assembly does not rebuild the
// member (a top-level "model_version" in every chunk): the first value
// not empty an event holds. Read from the assembly alone, every stream of
// such a route was refused no_version, and one reporting a new version
// switched nothing (review Z173). Each event is bounded first, as
// AssembleStream bounds it.
func streamEventsVersion(body []byte, path string) string {
	sc := sseScanner{rest: bytes.TrimPrefix(body, []byte("\xef\xbb\xbf"))}
	for ev, ok := sc.next(); ok; ev, ok = sc.next() {
		if ev.Data == "" || ev.Data == "[DONE]" || checkJSON(ev.Data) != ReasonNone {
			continue
		}
		if v := gjson.Get(ev.Data, path).String(); v != "" {
			return v
		}
	}
	return ""
}

// Refusal is why a recorded stream cannot be judged (ReasonNone: it can),
// for admission and for a shadow comparison alike.
func (s *StreamSummary) Refusal() Reason {
	switch {
	case s.TooDeep:
		return ReasonTooDeep
	case s.ErrorEvent:
		return ReasonErrorPayload
	case s.Malformed:
		return ReasonMalformedJSON
	case s.Unreadable != ReasonNone:
		return s.Unreadable
	case s.Foreign:
		return ReasonForeignShape
	case s.BadShape:
		return ReasonBadShape
	case !s.Done:
		return ReasonTruncated
	}
	return ReasonNone
}

// appendJSONString appends s as a JSON string literal: quotes, backslashes
// and control characters escaped, everything else as is.
func appendJSONString(b []byte, s string) []byte {
	b = append(b, '"')
	b = appendJSONChars(b, s)
	return append(b, '"')
}

// appendJSONChars appends s escaped as in a JSON string, without quotes.
func appendJSONChars(b []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '"' || c == '\\':
			b = append(b, '\\', c)
		case c == '\n':
			b = append(b, '\\', 'n')
		case c == '\r':
			b = append(b, '\\', 'r')
		case c == '\t':
			b = append(b, '\\', 't')
		case c < 0x20:
			b = append(b, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xF])
		default:
			b = append(b, c)
		}
	}
	return b
}

// isEventStream reports whether a content type is text/event-stream.
//
// Compared as isJSONType compares: in ASCII, space and tab trimmed. With
// Unicode's folding and white space, "text/event-ſtream" (a long s) and a
// no-break space after the type were streams no client reads as one,
// stored and replayed (review Z126).
func isEventStream(ct string) bool {
	mt, _, _ := strings.Cut(ct, ";")
	mt = strings.Trim(mt, " \t")
	return foldEquals(mt, "text/event-stream")
}

// StreamsResponse reports whether the response headers announce an event
// stream the cache can record (chat and completions routes only).
func StreamsResponse(req *Request, headers [][2]string) bool {
	if !req.Route.Streams() {
		return false
	}
	ct, _ := header(headers, "content-type")
	return isEventStream(ct)
}

// appendFragment appends a streamed tool call's fragment (a name's or
// its arguments' next piece) to dst: a string, or none when absent or
// null. It reports false for any other type.
func appendFragment(dst *strings.Builder, v gjson.Result) bool {
	switch v.Type {
	case gjson.String:
		dst.WriteString(v.Str)
		return true
	case gjson.Null:
		return true
	}
	return !v.Exists()
}

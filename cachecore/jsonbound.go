package cachecore

import (
	"bytes"
	"errors"
	"slices"

	"github.com/tidwall/gjson"
)

// Bounding every parse of untrusted bytes.
//
// gjson's validator (and the canonicaliser, and any recursive-descent
// parser) uses one call frame per nesting level. Inside Envoy's V8 a few
// thousand levels overflow the native stack, the VM dies, and with
// FAIL_OPEN the worker runs without the filter until Envoy restarts. So no
// recursive code may ever see bytes from a client, the model server, a
// purge call or the shared store before an iterative pre-scan has bounded
// their nesting: CheckJSONDepth, run by checkJSON at every entry point.
// Size is bounded before that (max_request_bytes, max_entry_bytes), and the
// work after it is linear in the size.

// MaxJSONDepth is the deepest nesting of arrays and objects the cache reads
// anywhere: requests (the canonicaliser), answers, stream events, purge
// bodies. Model answers nest a handful of levels; structured outputs are
// strings inside them.
const MaxJSONDepth = 64

// CheckJSONDepth reports ErrTooDeep when b nests arrays and objects deeper
// than maxDepth. It is one iterative pass: it counts brackets outside
// strings and does not validate anything else (a closing bracket without
// its opening one is ErrMalformedJSON). Its reading of strings is the one
// of every JSON validator up to the first error, so a validator run after
// it never nests deeper than maxDepth before failing.
func CheckJSONDepth[T string | []byte](b T, maxDepth int) error {
	depth := 0
	for i := 0; i < len(b); i++ {
		switch b[i] {
		case '"':
			for i++; i < len(b) && b[i] != '"'; i++ {
				if b[i] == '\\' {
					i++
				}
			}
		case '[', '{':
			depth++
			if depth > maxDepth {
				return ErrTooDeep
			}
		case ']', '}':
			depth--
			if depth < 0 {
				return ErrMalformedJSON
			}
		}
	}
	return nil
}

// checkJSON is the gate in front of gjson for untrusted bytes: nesting
// within MaxJSONDepth, then valid JSON. Only after ReasonNone may gjson's
// Valid, Get, Parse or ForEach (or the canonicaliser) read b.
//
// Its verdict is exactly CheckJSONDepth's followed by gjson.Valid's (a
// differential fuzz test holds it to that), in one iterative pass for the
// common case, valid JSON: scanJSON validates with gjson's grammar and
// counts depth as CheckJSONDepth does, which up to the first error reads
// the same brackets. Only bytes that are not valid JSON are read a second
// time, by CheckJSONDepth, to tell too deep from malformed as it would
// (it counts brackets past the first error).
func checkJSON[T string | []byte](b T) Reason { return checkJSONAt(b, MaxJSONDepth) }

// checkJSONAt is checkJSON with a depth bound of maxDepth (at most 64).
func checkJSONAt[T string | []byte](b T, maxDepth int) Reason {
	switch scanJSON(b, maxDepth) {
	case scanValid:
		return ReasonNone
	case scanTooDeep:
		return ReasonTooDeep
	}
	if errors.Is(CheckJSONDepth(b, maxDepth), ErrTooDeep) {
		return ReasonTooDeep
	}
	return ReasonMalformedJSON
}

type scanVerdict uint8

const (
	scanValid scanVerdict = iota
	scanTooDeep
	scanInvalid
)

// scanJSON validates b as gjson.Valid does (RFC 8259's grammar; string
// bytes are not checked as UTF-8) without recursion: an open array or
// object is one bit of a 64-bit stack, so maxDepth is at most 64. It
// returns scanTooDeep when a bracket would open level maxDepth+1 of a
// valid prefix.
func scanJSON[T string | []byte](b T, maxDepth int) scanVerdict {
	v, end := scanJSONValue(b, 0, maxDepth)
	if v == scanValid && end != len(b) {
		return scanInvalid
	}
	return v
}

// scanJSONValue is scanJSON for the value at b[i:], which may go on after
// it: on scanValid it also returns where the value and the whitespace
// after it end.
func scanJSONValue[T string | []byte](b T, i, maxDepth int) (scanVerdict, int) {
	var objects uint64 // bit d: level d+1 is an object
	depth, n := 0, len(b)
	ok := false
value:
	for i < n && isJSONSpace(b[i]) {
		i++
	}
	if i >= n {
		return scanInvalid, i
	}
	switch b[i] {
	case '{', '[':
		if depth >= maxDepth || depth >= 64 {
			return scanTooDeep, i
		}
		obj := b[i] == '{'
		if obj {
			objects |= 1 << depth
		} else {
			objects &^= 1 << depth
		}
		depth++
		for i++; i < n && isJSONSpace(b[i]); i++ {
		}
		if i < n && (b[i] == '}' && obj || b[i] == ']' && !obj) {
			depth--
			i++
			goto after
		}
		if obj {
			goto member
		}
		goto value
	case '"':
		if i, ok = scanString(b, i+1); !ok {
			return scanInvalid, i
		}
	case 't':
		if i+4 > n || b[i+1] != 'r' || b[i+2] != 'u' || b[i+3] != 'e' {
			return scanInvalid, i
		}
		i += 4
	case 'f':
		if i+5 > n || b[i+1] != 'a' || b[i+2] != 'l' || b[i+3] != 's' || b[i+4] != 'e' {
			return scanInvalid, i
		}
		i += 5
	case 'n':
		if i+4 > n || b[i+1] != 'u' || b[i+2] != 'l' || b[i+3] != 'l' {
			return scanInvalid, i
		}
		i += 4
	default:
		if i, ok = scanNumber(b, i); !ok {
			return scanInvalid, i
		}
	}
after:
	for i < n && isJSONSpace(b[i]) {
		i++
	}
	if depth == 0 {
		return scanValid, i
	}
	if i >= n {
		return scanInvalid, i
	}
	switch obj := objects&(1<<(depth-1)) != 0; b[i] {
	case ',':
		i++
		if obj {
			goto member
		}
		goto value
	case '}', ']':
		if obj != (b[i] == '}') {
			return scanInvalid, i
		}
		depth--
		i++
		goto after
	}
	return scanInvalid, i
member:
	for i < n && isJSONSpace(b[i]) {
		i++
	}
	if i >= n || b[i] != '"' {
		return scanInvalid, i
	}
	if i, ok = scanString(b, i+1); !ok {
		return scanInvalid, i
	}
	for i < n && isJSONSpace(b[i]) {
		i++
	}
	if i >= n || b[i] != ':' {
		return scanInvalid, i
	}
	i++
	goto value
}

// scanString returns the index after the closing quote of the string
// whose contents start at i: no control characters, only JSON's escapes.
func scanString[T string | []byte](b T, i int) (int, bool) {
	for ; i < len(b); i++ {
		switch c := b[i]; {
		case c == '"':
			return i + 1, true
		case c < ' ':
			return i, false
		case c == '\\':
			i++
			if i >= len(b) {
				return i, false
			}
			switch b[i] {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
			case 'u':
				if i+4 >= len(b) || !isHex(b[i+1]) || !isHex(b[i+2]) || !isHex(b[i+3]) || !isHex(b[i+4]) {
					return i, false
				}
				i += 4
			default:
				return i, false
			}
		}
	}
	return i, false
}

func isHex(c byte) bool { return c >= '0' && c <= '9' || c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F' }

// scanNumber returns the index after the number at i: -?(0|[1-9][0-9]*)
// (.[0-9]+)?([eE][+-]?[0-9]+)?.
func scanNumber[T string | []byte](b T, i int) (int, bool) {
	n := len(b)
	if b[i] == '-' {
		i++
	}
	switch {
	case i < n && b[i] == '0':
		i++
	case i < n && b[i] >= '1' && b[i] <= '9':
		for i++; i < n && b[i] >= '0' && b[i] <= '9'; i++ {
		}
	default:
		return i, false
	}
	if i < n && b[i] == '.' {
		i++
		if i >= n || b[i] < '0' || b[i] > '9' {
			return i, false
		}
		for i++; i < n && b[i] >= '0' && b[i] <= '9'; i++ {
		}
	}
	if i < n && (b[i] == 'e' || b[i] == 'E') {
		i++
		if i < n && (b[i] == '+' || b[i] == '-') {
			i++
		}
		if i >= n || b[i] < '0' || b[i] > '9' {
			return i, false
		}
		for i++; i < n && b[i] >= '0' && b[i] <= '9'; i++ {
		}
	}
	return i, true
}

// reportsError reports whether a (checked) JSON answer is an error report
// rather than a result: a top-level "error" member that is not null, false
// or "" (OpenAI's and vLLM's {"error": {...}}, or {"error": "text"}), or
// "object": "error" (vLLM's ErrorResponse). Such an answer is never stored,
// even when a complete message sits next to the error.
func reportsError(doc gjson.Result) bool {
	if !doc.IsObject() {
		return false
	}
	e := doc.Get("error")
	switch {
	case !e.Exists(), e.Type == gjson.Null, e.Type == gjson.False, e.Type == gjson.String && e.Str == "":
	default:
		return true
	}
	o := doc.Get("object")
	return o.Type == gjson.String && o.Str == "error"
}

// duplicateMembers finds duplicate member names in a checked answer. Such
// an answer means two things: gjson, and so every check of this package,
// reads the first copy, while many clients' parsers keep the last (a
// `"finish_reason":"stop","finish_reason":"length"` would be admitted as
// complete and replayed to clients that see it truncated).
//
// It runs on every admitted answer, so it is one pass that only looks at
// strings and brackets — an embeddings answer is mostly numbers, which it
// skips byte by byte instead of re-encoding them as the canonicaliser
// would. Names are compared decoded (so "a" and "\u0061" are one name);
// an object's names are compared pairwise when it has few, sorted when it
// has many: O(n log n) work at worst. b must have passed checkJSON (valid,
// bounded depth). The zero value is ready; reuse it to reuse its buffers.
type duplicateMembers struct {
	names  [][]byte // names of the open objects, innermost last
	starts []int    // where each open object's names start in names
	cased  []int8   // each open object: caseBit, tokenMapBit
	opener [][]byte // the member name each open object's value began under
	// tokenMaps: the answer is a completions route's, whose top_logprobs
	// are maps of tokens (set by the caller before check).
	tokenMaps bool
	dec       []byte      // decoded names with escapes
	fold      foldScratch // an object's names folded (caseTwins)
}

// check returns ReasonDuplicateKey if any object of b repeats a name.
func (d *duplicateMembers) check(b []byte) Reason {
	r := d.scan(b)
	// The names are slices of b: kept, they would keep the answer alive
	// until the next check. Lists grown past maxSpareBuffer bytes (an
	// answer of many members) are not kept at all.
	if oversize(d.names) {
		d.names = nil
	} else {
		clear(d.names[:cap(d.names)])
	}
	if oversize(d.opener) {
		d.opener = nil
	} else {
		clear(d.opener[:cap(d.opener)])
	}
	if oversize(d.dec) {
		d.dec = nil
	}
	return r
}

// scan is check's one pass over b.
func (d *duplicateMembers) scan(b []byte) Reason {
	d.names, d.starts, d.cased, d.opener, d.dec = d.names[:0], d.starts[:0], d.cased[:0], d.opener[:0], d.dec[:0]
	var last []byte // the last member name read: the one an object opens under
	for i := 0; i < len(b); i++ {
		for i < len(b) && !scanStops[b[i]] { // numbers, literals, punctuation
			i++
		}
		if i == len(b) {
			break
		}
		switch b[i] {
		case '{':
			d.starts = append(d.starts, len(d.names))
			// The legacy completions' top_logprobs are maps of tokens to
			// numbers, " Yes" and " yes" among them, which every client
			// reads as maps, exactly: no member is read there (review
			// Z99). Only such a map: an object under top_logprobs that
			// holds a string or an object (chat's {token, logprob}, which
			// a typed client reads into fields) is checked, and only on a
			// completions route (review Z102).
			state := int8(0)
			if d.tokenMaps && string(last) == "top_logprobs" {
				state = tokenMapBit
			}
			if n := len(d.cased); n > 0 {
				d.cased[n-1] &^= tokenMapBit
			}
			d.cased = append(d.cased, state)
			d.opener = append(d.opener, last)
		case '}':
			if len(d.starts) == 0 {
				return ReasonMalformedJSON
			}
			n := len(d.starts) - 1
			start, cased := d.starts[n], d.cased[n]
			last = d.opener[n] // a sibling in the same array opens under it too
			d.starts, d.cased, d.opener = d.starts[:n], d.cased[:n], d.opener[:n]
			if hasDuplicate(d.names[start:]) || cased == caseBit && d.caseTwins(d.names[start:]) {
				return ReasonDuplicateKey
			}
			d.names = d.names[:start]
		case '"':
			end, escaped := stringEnd(b, i+1)
			if end < 0 {
				return ReasonMalformedJSON
			}
			// A string followed by ':' is a member name (b is valid JSON).
			j := end + 1
			for j < len(b) && (b[j] == ' ' || b[j] == '\t' || b[j] == '\n' || b[j] == '\r') {
				j++
			}
			if j < len(b) && b[j] == ':' && len(d.starts) > 0 {
				name := b[i+1 : end]
				if escaped {
					var ok bool
					if name, ok = d.decode(b[i : end+1]); !ok {
						return ReasonMalformedJSON
					}
				}
				d.names, last = append(d.names, name), name
				if c := &d.cased[len(d.cased)-1]; *c&caseBit == 0 && hasCase(name) {
					*c |= caseBit
				}
			} else if n := len(d.cased); n > 0 {
				d.cased[n-1] &^= tokenMapBit // a string value: no token map
			}
			i = end
		}
	}
	return ReasonNone
}

// duplicateMembers.cased bits of an open object.
const (
	caseBit     int8 = 1 // a name hasCase
	tokenMapBit int8 = 2 // under top_logprobs, no string or object in it yet
)

// scanStops are the bytes duplicateMembers stops at.
var scanStops = [256]bool{'{': true, '}': true, '"': true}

// stringEnd returns the index of the closing quote of the string whose
// contents start at i, and whether it holds escapes.
func stringEnd[T string | []byte](b T, i int) (int, bool) {
	escaped := false
	for ; i < len(b); i++ {
		switch b[i] {
		case '\\':
			escaped = true
			i++
		case '"':
			return i, escaped
		}
	}
	return -1, escaped
}

// decode returns the decoded contents of the quoted JSON string q.
func (d *duplicateMembers) decode(q []byte) ([]byte, bool) {
	// The canonical form of a string is decoded with minimal escapes
	// (only '"', '\\' and control characters, which an unescaped name
	// cannot contain), so equal names have equal canonical contents.
	var c Canonicalizer
	start := len(d.dec)
	out, err := c.Append(d.dec, q, nil)
	if err != nil || len(out)-start < 2 {
		return nil, false
	}
	d.dec = out
	return out[start+1 : len(out)-1 : len(out)-1], true
}

// caseTwins says whether two of an object's names are equal but for
// case. Go's encoding/json reads them as one member, the last winning:
// "results" then "Results", "score" then "Score", answered a Go client
// with a ranking or a confidence the checks never read, and were stored
// for everyone (review Z97); the requests' rule (Canonicalizer).
func (d *duplicateMembers) caseTwins(names [][]byte) bool {
	d.fold.reset()
	for _, n := range names {
		d.fold.add(n)
	}
	return d.fold.twins()
}

func hasDuplicate(names [][]byte) bool {
	if len(names) <= 8 {
		for i := 1; i < len(names); i++ {
			for j := 0; j < i; j++ {
				if bytes.Equal(names[i], names[j]) {
					return true
				}
			}
		}
		return false
	}
	slices.SortFunc(names, bytes.Compare)
	for i := 1; i < len(names); i++ {
		if bytes.Equal(names[i-1], names[i]) {
			return true
		}
	}
	return false
}

// arrayLen is len(v.Array()) for an array, without building its elements:
// a hostile answer's 65,000 zeros made 26 MiB of gjson results to be
// counted (review Z144).
func arrayLen(v gjson.Result) int {
	n := 0
	v.ForEach(func(_, _ gjson.Result) bool {
		n++
		return true
	})
	return n
}

package cachecore

import (
	"errors"

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
func checkJSON[T string | []byte](b T) Reason {
	if err := CheckJSONDepth(b, MaxJSONDepth); err != nil {
		if errors.Is(err, ErrTooDeep) {
			return ReasonTooDeep
		}
		return ReasonMalformedJSON
	}
	var ok bool
	switch v := any(b).(type) {
	case string:
		ok = gjson.Valid(v)
	case []byte:
		ok = gjson.ValidBytes(v)
	}
	if !ok {
		return ReasonMalformedJSON
	}
	return ReasonNone
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
// complete and replayed to clients that see it truncated). The
// canonicaliser finds them at any depth with bounded work; its output is
// thrown away. The zero value is ready; reuse it to reuse its buffers.
type duplicateMembers struct {
	canon Canonicalizer
	out   []byte
}

// check returns ReasonNone, or why the canonicaliser refused b:
// ReasonDuplicateKey, or ReasonNumberRange for an absurd exponent it will
// not read past (so a duplicate cannot hide behind one).
func (d *duplicateMembers) check(b []byte) Reason {
	out, err := d.canon.Append(d.out[:0], b, nil)
	d.out = out[:0]
	if err == nil {
		return ReasonNone
	}
	return canonReason(err)
}

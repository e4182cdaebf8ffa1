package cachecore

import (
	"strings"

	"github.com/tidwall/gjson"
)

// One-pass readers of a checked answer (checkJSON passed, no duplicate
// member names), for admission: each gives exactly what the gjson reading
// it replaces gives, and leaves to gjson what it does not handle (a
// differential fuzz test holds both to that). gjson's Get and ForEach find
// a value's end by reading it whole, once per Get; an embeddings answer is
// mostly one long array, read up to eight times that way before.

// topMembers are the raw values of an answer's top-level members the
// cache reads (the first of each; "" when absent).
type topMembers struct {
	errorRaw, objectRaw, data, model, usage string
}

// readTopMembers reads them in one pass over the top level, each value
// skipped by bracket counting. A top level that is not an object has none
// of them, as for gjson. A member name with an escape (gjson compares
// names decoded) sends the whole reading to gjson.
func readTopMembers(body string) topMembers {
	var m topMembers
	i := skipSpace(body, 0)
	if i >= len(body) || body[i] != '{' {
		return m
	}
	for i = skipSpace(body, i+1); i < len(body) && body[i] == '"'; {
		end, escaped := stringEnd(body, i+1)
		if escaped || end < 0 {
			return readTopMembersGJSON(body)
		}
		name := body[i+1 : end]
		i = skipSpace(body, end+1) + 1 // past ':'
		i = skipSpace(body, i)
		v := body[i:skipValue(body, i)]
		m.set(name, v)
		i = skipSpace(body, i+len(v))
		if i < len(body) && body[i] == ',' {
			i = skipSpace(body, i+1)
		}
	}
	return m
}

// set keeps v as the value of member name if it is one the cache reads
// and the first of that name.
func (m *topMembers) set(name, v string) {
	var dst *string
	switch name {
	case "error":
		dst = &m.errorRaw
	case "object":
		dst = &m.objectRaw
	case "data":
		dst = &m.data
	case "model":
		dst = &m.model
	case "usage":
		dst = &m.usage
	default:
		return
	}
	if *dst == "" {
		*dst = v
	}
}

// readTopMembersGJSON is readTopMembers through gjson.
func readTopMembersGJSON(body string) topMembers {
	var m topMembers
	doc := gjson.Parse(body)
	if !doc.IsObject() {
		return m
	}
	doc.ForEach(func(k, v gjson.Result) bool {
		m.set(k.Str, v.Raw)
		return true
	})
	return m
}

// reportsError is the package's reportsError on an answer's members.
func (m *topMembers) reportsError() bool {
	if m.errorRaw != "" {
		switch e := gjson.Parse(m.errorRaw); {
		case e.Type == gjson.Null, e.Type == gjson.False, e.Type == gjson.String && e.Str == "":
		default:
			return true
		}
	}
	o := gjson.Parse(m.objectRaw)
	return o.Type == gjson.String && o.Str == "error"
}

// embeddingItemsInOnePass is false only in tests, to read every answer
// through the general checks and gjson and compare.
var embeddingItemsInOnePass = true

// scanEmbeddingsAnswer makes every check AdmitBody makes of an embeddings
// answer before its error and item checks — valid JSON, nesting within
// MaxJSONDepth, no duplicate member names — and reads the top-level
// members and the items, in one pass over the vectors, for an answer of
// the shape servers send: a top-level object with plain names whose
// "data" is an array of objects with plain names, each with an "index"
// that is a plain integer below want and not seen before and an
// "embedding" finiteNumbers accepts, all of one dimension, exactly want of
// them. Other values are checked as the general checks check them. Then it
// fills vecs (by index, each vector a slice of body) and returns the
// members, the dimension and true. Any other shape, and anything a check
// refuses, returns false with vecs cleared: AdmitBody then checks one
// check at a time, which finds the exact reason.
func (c *Cache) scanEmbeddingsAnswer(body []byte, want int, vecs [][]byte, dims int) (topMembers, int, bool) {
	var m topMembers
	s := bytesString(body)
	fail := func() (topMembers, int, bool) {
		clear(vecs)
		return topMembers{}, dims, false
	}
	var names [16]string // the top level's, to refuse a repeated one
	seenNames := 0
	i := skipSpace(s, 0)
	if i >= len(s) || s[i] != '{' {
		return fail()
	}
	for i = skipSpace(s, i+1); ; {
		name, at, ok := plainName(s, i)
		if !ok || seenNames == len(names) || namedBefore(names[:seenNames], name) {
			return fail()
		}
		names[seenNames] = name
		seenNames++
		var end int
		if name == "data" {
			if dims, end, ok = c.scanEmbeddingItems(body, at, want, vecs, dims); !ok {
				return fail()
			}
		} else if end, ok = c.scanOtherValue(body, at, 1); !ok {
			return fail()
		}
		m.set(name, s[at:end])
		if i = skipSpace(s, end); i < len(s) && s[i] == ',' {
			i = skipSpace(s, i+1)
			continue
		}
		if i >= len(s) || s[i] != '}' || skipSpace(s, i+1) != len(s) {
			return fail()
		}
		if m.data == "" {
			return fail()
		}
		return m, dims, true
	}
}

// scanEmbeddingItems is scanEmbeddingsAnswer's reading of "data" at i; it
// returns where the array ends.
func (c *Cache) scanEmbeddingItems(body []byte, i, want int, vecs [][]byte, dims int) (int, int, bool) {
	s := bytesString(body)
	if i >= len(s) || s[i] != '[' {
		return dims, i, false
	}
	seen := 0
	for i = skipSpace(s, i+1); i < len(s) && s[i] == '{'; {
		var names [8]string // the item's, to refuse a repeated one
		seenNames, idx, n := 0, -1, -1
		embAt, embEnd := 0, 0
		for i = skipSpace(s, i+1); ; {
			name, at, ok := plainName(s, i)
			if !ok || seenNames == len(names) || namedBefore(names[:seenNames], name) {
				return dims, i, false
			}
			names[seenNames] = name
			seenNames++
			end := at
			switch name {
			case "index":
				idx, end = plainInt(s, at)
				ok = idx >= 0
			case "embedding":
				n, end, ok = finiteNumbersAt(s, at)
				embAt, embEnd = at, end
			default:
				end, ok = c.scanOtherValue(body, at, 3)
			}
			if !ok {
				return dims, i, false
			}
			if i = skipSpace(s, end); i < len(s) && s[i] == ',' {
				i = skipSpace(s, i+1)
				continue
			}
			if i >= len(s) || s[i] != '}' {
				return dims, i, false
			}
			break
		}
		if idx < 0 || idx >= want || vecs[idx] != nil || n < 0 || (dims != 0 && n != dims) {
			return dims, i, false
		}
		dims = n
		vecs[idx] = body[embAt:embEnd:embEnd]
		seen++
		if i = skipSpace(s, i+1); i >= len(s) || s[i] != ',' {
			break
		}
		if i = skipSpace(s, i+1); i >= len(s) || s[i] != '{' {
			return dims, i, false
		}
	}
	if i >= len(s) || s[i] != ']' || seen != want {
		return dims, i, false
	}
	return dims, i + 1, true
}

// namedBefore says whether name is one of names but for case: the general
// checks refuse such twins (duplicateMembers.caseTwins), as Go's
// encoding/json reads them as one member, the last winning — an item's
// "Index" after its "index" put a Go client's vector elsewhere than the
// one-pass reading stored it (review Z162).
func namedBefore(names []string, name string) bool {
	for _, n := range names {
		if strings.EqualFold(n, name) {
			return true
		}
	}
	return false
}

// plainName reads the member name at i — a string without escapes — and
// the colon after it, and returns the name and where the value starts.
func plainName(s string, i int) (string, int, bool) {
	if i >= len(s) || s[i] != '"' {
		return "", i, false
	}
	end, ok := scanString(s, i+1)
	if !ok || strings.IndexByte(s[i+1:end-1], '\\') >= 0 {
		return "", i, false
	}
	j := skipSpace(s, end)
	if j >= len(s) || s[j] != ':' {
		return "", i, false
	}
	return s[i+1 : end-1], skipSpace(s, j+1), true
}

// scanOtherValue checks a value at nesting depth as the general checks
// check the whole answer: valid JSON, within MaxJSONDepth counted from the
// top, no duplicate member names. It returns where the value ends.
func (c *Cache) scanOtherValue(body []byte, i, depth int) (int, bool) {
	v, end := scanJSONValue(body, i, MaxJSONDepth-depth)
	if v != scanValid {
		return i, false
	}
	for end > i && isJSONSpace(body[end-1]) {
		end--
	}
	c.dups.tokenMaps = false
	if (body[i] == '{' || body[i] == '[') && c.dups.check(body[i:end]) != ReasonNone {
		return i, false
	}
	return end, true
}

// plainInt reads the digits at i as a value below 1e9 (-1 for anything
// else: a sign, a fraction, an exponent, a leading zero, more digits) and returns where
// the number ends.
func plainInt(s string, i int) (int, int) {
	v, at := 0, i
	for ; i < len(s) && s[i] >= '0' && s[i] <= '9'; i++ {
		if i-at == 9 {
			return -1, i
		}
		v = v*10 + int(s[i]-'0')
	}
	if i == at || (i-at > 1 && s[at] == '0') || (i < len(s) && (s[i] == '.' || s[i] == 'e' || s[i] == 'E')) {
		return -1, i
	}
	return v, i
}

// bracketStops are the bytes skipValue stops at in an array or object.
var bracketStops = [256]bool{'"': true, '{': true, '}': true, '[': true, ']': true}

func skipSpace(s string, i int) int {
	for i < len(s) && isJSONSpace(s[i]) {
		i++
	}
	return i
}

// skipValue returns the end of the checked JSON value at i.
func skipValue(s string, i int) int {
	if i >= len(s) {
		return i
	}
	switch s[i] {
	case '"':
		if end, _ := stringEnd(s, i+1); end >= 0 {
			return end + 1
		}
		return len(s)
	case '{', '[':
		depth := 0
		for ; i < len(s); i++ {
			for i < len(s) && !bracketStops[s[i]] { // numbers, names, punctuation
				i++
			}
			if i == len(s) {
				break
			}
			switch s[i] {
			case '"':
				i, _ = stringEnd(s, i+1)
				if i < 0 {
					return len(s)
				}
			case '{', '[':
				depth++
			case '}', ']':
				if depth--; depth == 0 {
					return i + 1
				}
			}
		}
		return i
	}
	for i < len(s) && s[i] != ',' && s[i] != '}' && s[i] != ']' && !isJSONSpace(s[i]) {
		i++
	}
	return i
}

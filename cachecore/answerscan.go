package cachecore

import "github.com/tidwall/gjson"

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
		switch name {
		case "error":
			m.errorRaw = first(m.errorRaw, v)
		case "object":
			m.objectRaw = first(m.objectRaw, v)
		case "data":
			m.data = first(m.data, v)
		case "model":
			m.model = first(m.model, v)
		case "usage":
			m.usage = first(m.usage, v)
		}
		i = skipSpace(body, i+len(v))
		if i < len(body) && body[i] == ',' {
			i = skipSpace(body, i+1)
		}
	}
	return m
}

func first(have, v string) string {
	if have != "" {
		return have
	}
	return v
}

// readTopMembersGJSON is readTopMembers through gjson.
func readTopMembersGJSON(body string) topMembers {
	var m topMembers
	doc := gjson.Parse(body)
	if !doc.IsObject() {
		return m
	}
	doc.ForEach(func(k, v gjson.Result) bool {
		switch k.Str {
		case "error":
			m.errorRaw = first(m.errorRaw, v.Raw)
		case "object":
			m.objectRaw = first(m.objectRaw, v.Raw)
		case "data":
			m.data = first(m.data, v.Raw)
		case "model":
			m.model = first(m.model, v.Raw)
		case "usage":
			m.usage = first(m.usage, v.Raw)
		}
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
// through gjson and compare.
var embeddingItemsInOnePass = true

// readEmbeddingItems reads a checked "data" array of float vectors in one
// pass when every element is what a well-behaved server sends: an object
// with plain names, an "index" that is a plain integer below want and not
// seen before, an "embedding" finiteNumbers accepts, all of one dimension,
// exactly want elements. Then it fills vecs (by index, the vectors copied
// into arena) and returns the dimension and true. Anything else — and any
// element admitEmbeddings would refuse — returns false with vecs cleared,
// for the gjson reading, which finds the exact reason.
func readEmbeddingItems(data string, want int, vecs [][]byte, arena []byte, dims int) (int, []byte, bool) {
	fail := func() (int, []byte, bool) {
		clear(vecs)
		return dims, arena[:0], false
	}
	i, seen := 1, 0 // data is "[" … "]"
	for i = skipSpace(data, i); i < len(data) && data[i] == '{'; {
		idx, n := -1, -1
		var emb string
		for i = skipSpace(data, i+1); i < len(data) && data[i] == '"'; {
			end, escaped := stringEnd(data, i+1)
			if escaped || end < 0 {
				return fail()
			}
			name := data[i+1 : end]
			i = skipSpace(data, skipSpace(data, end+1)+1)
			vEnd := 0
			switch {
			case name == "index" && idx < 0:
				if idx, vEnd = plainInt(data, i); idx < 0 {
					return fail()
				}
			case name == "embedding" && n < 0:
				var ok bool
				if n, vEnd, ok = finiteNumbersAt(data, i); !ok {
					return fail()
				}
				emb = data[i:vEnd]
			default:
				vEnd = skipValue(data, i)
			}
			i = skipSpace(data, vEnd)
			if i < len(data) && data[i] == ',' {
				i = skipSpace(data, i+1)
			}
		}
		i = skipSpace(data, i+1) // past '}'
		if idx < 0 || idx >= want || vecs[idx] != nil || n < 0 || (dims != 0 && n != dims) {
			return fail()
		}
		dims = n
		at := len(arena)
		arena = append(arena, emb...)
		vecs[idx] = arena[at:len(arena):len(arena)]
		seen++
		if i < len(data) && data[i] == ',' {
			i = skipSpace(data, i+1)
		}
	}
	if i >= len(data) || data[i] != ']' || seen != want {
		return fail()
	}
	return dims, arena, true
}

// plainInt reads the digits at i as a value below 1e9 (-1 for anything
// else: a sign, a fraction, an exponent, more digits) and returns where
// the number ends.
func plainInt(s string, i int) (int, int) {
	v, at := 0, i
	for ; i < len(s) && s[i] >= '0' && s[i] <= '9'; i++ {
		if i-at == 9 {
			return -1, i
		}
		v = v*10 + int(s[i]-'0')
	}
	if i == at || (i < len(s) && (s[i] == '.' || s[i] == 'e' || s[i] == 'E')) {
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

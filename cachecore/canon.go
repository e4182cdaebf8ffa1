package cachecore

import (
	"bytes"
	"encoding/binary"
	"errors"
	"slices"
	"unicode"
	"unicode/utf8"
)

// Canonical JSON: the form of a request body that the cache key is built
// from. Two bodies that any JSON parser reads as the same value produce the
// same bytes; bodies that differ in meaning produce different bytes.
//
//   - object members are sorted by key (bytewise on the canonical key form);
//   - insignificant whitespace is dropped;
//   - strings are decoded and re-encoded with the fewest escapes ("\u0041" and
//     "A" are the same; a lone surrogate stays escaped so it never merges
//     with U+FFFD);
//   - numbers keep their type: one written without fraction or exponent is
//     an integer and stays its digits (-0 is 0; a seed of
//     12345678901234567890 stays itself); one written with '.' or 'e' is a
//     float, rewritten exactly as decimal digits and an exponent, and always
//     shown with a '.' or an 'e', so 2.0, 20e-1 and 0.2e1 are one float
//     ("2.0") but never the integer 2 — typed model servers reject 2.0
//     where they accept 2 (OpenAI's n, dimensions, token ids);
//   - a duplicate object key is refused: parsers disagree on which value wins,
//     so the cache could key one reading and the model answer another.
//
// It is a single pass over the input that also validates it, with no
// reflection and no maps: on the hit path it runs inside the wasm VM for
// every request.

// Canonicalisation errors; all mean "bypass the cache for this request".
var (
	ErrMalformedJSON = errors.New("malformed JSON")
	ErrDuplicateKey  = errors.New("duplicate object key")
	ErrTooDeep       = errors.New("JSON nested too deeply")
	ErrNumberRange   = errors.New("JSON number exponent out of range")
)

// maxDepth bounds recursion on hostile input: the one limit of every JSON
// read (jsonbound.go).
const maxDepth = MaxJSONDepth

// Selection picks the top-level members of an object body that enter the
// key. With Only set, only those keys are kept; otherwise every key except
// those in Ignore. Keys are plain (unescaped) member names.
type Selection struct {
	Only   []string
	Ignore []string
	// Capture names top-level members whose canonical values the caller
	// wants too (Canonicalizer.Captured), whether or not they are kept:
	// it spares a second scan of the body.
	Capture []string
}

func (s *Selection) keep(key []byte) bool {
	if len(s.Only) > 0 {
		return containsKey(s.Only, key)
	}
	return !containsKey(s.Ignore, key)
}

func containsKey(list []string, key []byte) bool {
	for _, k := range list {
		if string(key) == k {
			return true
		}
	}
	return false
}

// Canonicalizer holds reusable scratch space; the zero value is ready.
// It is not safe for concurrent use.
type Canonicalizer struct {
	src     []byte
	pos     int
	out     []byte
	scratch []byte
	members []member
	keyBuf  []byte
	fold    foldScratch // caseTwins' folded names

	keyCompares int // work done sorting members (tests bound it)
	// moved is the bytes sortMembers copied in this Append: an object's
	// members are copied once for it and again for every object around
	// it, so nesting multiplies the work by up to MaxJSONDepth (review
	// Z144). Past moveBudget the body is refused as too deep.
	moved int

	captured [4][]byte
	found    [4]bool
}

// capture records the canonical value that starts at valStart in out if
// key is one of sel.Capture.
func (c *Canonicalizer) capture(sel *Selection, key []byte, valStart int) {
	for i, name := range sel.Capture {
		if string(key) == name && i < len(c.captured) {
			c.captured[i] = append(c.captured[i][:0], c.out[valStart:]...)
			c.found[i] = true
		}
	}
}

// Captured returns the canonical value of the i-th Selection.Capture name
// in the last Append, or false if the body had no such member.
func (c *Canonicalizer) Captured(i int) ([]byte, bool) {
	if i >= len(c.found) || !c.found[i] {
		return nil, false
	}
	return c.captured[i], true
}

type member struct {
	start, keyEnd, end int  // in out: key starts at start (with quotes), value ends at end
	drop               bool // not selected: checked for duplicates, then left out
}

// Append validates body and appends its canonical form to dst. sel applies
// to the top-level object only (nested objects are canonicalised whole).
func (c *Canonicalizer) Append(dst, body []byte, sel *Selection) ([]byte, error) {
	c.src, c.pos, c.out = body, 0, dst
	c.found = [4]bool{}
	c.moved = 0
	c.ws()
	err := c.value(0, sel)
	if err == nil {
		c.ws()
		if c.pos != len(c.src) {
			err = ErrMalformedJSON
		}
	}
	out := c.out
	c.out = nil
	c.done() // called, not deferred: a defer costs a miss 111 instructions under V8
	if err != nil {
		return dst, err
	}
	return out, nil
}

// done lets go of the body and of scratch space grown past
// maxSpareBuffer bytes (oversize): one body at max_request_bytes, or one
// of many members, would otherwise size it for good.
func (c *Canonicalizer) done() {
	c.src = nil
	if oversize(c.scratch) {
		c.scratch = nil
	}
	if oversize(c.keyBuf) {
		c.keyBuf = nil
	}
	if oversize(c.members) {
		c.members = nil
	}
}

// dropLargeCaptures lets go of captures grown past maxSpareBuffer, once
// read (Captured): a large "model" or "stream" member would size them for
// good, as it would the scratch space done bounds.
func (c *Canonicalizer) dropLargeCaptures() {
	for i := range c.captured {
		if oversize(c.captured[i]) {
			c.captured[i] = nil
		}
	}
}

// Canonicalize is Append with fresh scratch space.
func Canonicalize(body []byte, sel *Selection) ([]byte, error) {
	var c Canonicalizer
	return c.Append(nil, body, sel)
}

func (c *Canonicalizer) ws() {
	for c.pos < len(c.src) {
		switch c.src[c.pos] {
		case ' ', '\t', '\n', '\r':
			c.pos++
		default:
			return
		}
	}
}

func (c *Canonicalizer) value(depth int, sel *Selection) error {
	if c.pos >= len(c.src) {
		return ErrMalformedJSON
	}
	switch ch := c.src[c.pos]; {
	case ch == '{':
		if depth >= maxDepth {
			return ErrTooDeep
		}
		return c.object(depth, sel)
	case ch == '[':
		if depth >= maxDepth {
			return ErrTooDeep
		}
		return c.array(depth)
	case ch == '"':
		return c.str()
	case ch == '-' || (ch >= '0' && ch <= '9'):
		return c.number()
	case ch == 't':
		return c.literal("true")
	case ch == 'f':
		return c.literal("false")
	case ch == 'n':
		return c.literal("null")
	}
	return ErrMalformedJSON
}

func (c *Canonicalizer) literal(lit string) error {
	if !bytes.HasPrefix(c.src[c.pos:], []byte(lit)) {
		return ErrMalformedJSON
	}
	c.pos += len(lit)
	c.out = append(c.out, lit...)
	return nil
}

func (c *Canonicalizer) array(depth int) error {
	c.pos++ // '['
	c.out = append(c.out, '[')
	c.ws()
	if c.pos < len(c.src) && c.src[c.pos] == ']' {
		c.pos++
		c.out = append(c.out, ']')
		return nil
	}
	for {
		c.ws()
		if err := c.value(depth+1, nil); err != nil {
			return err
		}
		c.ws()
		if c.pos >= len(c.src) {
			return ErrMalformedJSON
		}
		switch c.src[c.pos] {
		case ',':
			c.pos++
			c.out = append(c.out, ',')
		case ']':
			c.pos++
			c.out = append(c.out, ']')
			return nil
		default:
			return ErrMalformedJSON
		}
	}
}

func (c *Canonicalizer) object(depth int, sel *Selection) error {
	c.pos++ // '{'
	open := len(c.out)
	c.out = append(c.out, '{')
	base := len(c.members)
	defer func() { c.members = c.members[:base] }()
	fold := false // a name has a letter Go's encoding/json folds (hasCase)
	c.ws()
	if c.pos < len(c.src) && c.src[c.pos] == '}' {
		c.pos++
		c.out = append(c.out, '}')
		return nil
	}
	for {
		c.ws()
		if c.pos >= len(c.src) || c.src[c.pos] != '"' {
			return ErrMalformedJSON
		}
		start := len(c.out)
		if err := c.str(); err != nil {
			return err
		}
		keyEnd := len(c.out)
		c.ws()
		if c.pos >= len(c.src) || c.src[c.pos] != ':' {
			return ErrMalformedJSON
		}
		c.pos++
		c.out = append(c.out, ':')
		c.ws()
		if err := c.value(depth+1, nil); err != nil {
			return err
		}
		if sel != nil && len(sel.Capture) > 0 {
			c.capture(sel, c.unquotedKey(start, keyEnd), keyEnd+1)
		}
		// A member the selection leaves out is still a member: a second
		// one of its name is refused as any duplicate is (the cache may
		// read it, as an embeddings batch's input, where a server that
		// takes the last one answers another).
		name := c.unquotedKey(start, keyEnd)
		cased := hasCase(name)
		fold = fold || cased
		drop := sel != nil && !sel.keep(name)
		if cased && sel != nil && sel.readButForCase(name, drop) {
			return ErrDuplicateKey
		}
		c.members = append(c.members, member{start, keyEnd, len(c.out), drop})
		c.ws()
		if c.pos >= len(c.src) {
			return ErrMalformedJSON
		}
		if c.src[c.pos] == ',' {
			c.pos++
			continue
		}
		if c.src[c.pos] != '}' {
			return ErrMalformedJSON
		}
		c.pos++
		break
	}
	if fold && c.caseTwins(c.members[base:]) {
		return ErrDuplicateKey
	}
	return c.sortMembers(open, c.members[base:])
}

// Go's encoding/json (Ollama, LocalAI and other Go model servers) reads a
// member into the struct field whose name is equal but for case
// (bytes.EqualFold), the last such member winning. So "messages" and
// "Messages" are one member to such a server, and a request with both is
// refused as any duplicate is; under key_fields, a member the key leaves
// out whose name is a kept one's but for case is refused too: the key
// would hold a question the model does not answer (review Z87); and so is
// a member whose name is, but for case, one the cache reads (the model). Names
// without an upper-case ASCII letter or a non-ASCII byte (nearly all) are
// equal but for case only to each other, byte for byte.

// hasCase says whether name has an upper-case ASCII letter or a
// non-ASCII byte.
func hasCase(name []byte) bool {
	for _, b := range name {
		if b-'A' < 26 || b >= utf8.RuneSelf {
			return true
		}
	}
	return false
}

// readButForCase says whether name is, but for case, a name the cache
// reads the member of (Capture: the model, "stream"), or, for a member
// the selection leaves out (dropped), a name key_fields keeps. Keyed as
// it is, a request with "Model" named no model to the cache while such a
// server answered with one: a purge of that model, or its version
// switch, did not reach the answer (review Z89).
func (s *Selection) readButForCase(name []byte, dropped bool) bool {
	for _, k := range s.Capture {
		if string(name) != k && bytes.EqualFold(name, []byte(k)) {
			return true
		}
	}
	if dropped {
		for _, k := range s.Only {
			if bytes.EqualFold(name, []byte(k)) {
				return true
			}
		}
	}
	return false
}

// caseTwins says whether two of an object's members have names equal but
// for case.
func (c *Canonicalizer) caseTwins(ms []member) bool {
	c.fold.reset()
	for _, m := range ms {
		c.fold.add(c.unquotedKey(m.start, m.keyEnd))
	}
	return c.fold.twins()
}

// foldScratch finds names equal but for case among those added since its
// reset: each folded (foldName), sorted, compared with the next, O(n log
// n). The canonicaliser's objects and the answers' duplicate check share
// it.
type foldScratch struct {
	folded []byte
	at     [][2]int // where each name is in folded
}

func (f *foldScratch) reset() { f.folded, f.at = f.folded[:0], f.at[:0] }

func (f *foldScratch) add(name []byte) {
	from := len(f.folded)
	f.folded = foldName(f.folded, name)
	f.at = append(f.at, [2]int{from, len(f.folded)})
}

// twins says whether two names added are equal but for case. Its buffers
// are kept for the next object only while small, as Canonicalizer.done
// keeps the other scratch: a large object sized them for good (review
// Z93).
func (f *foldScratch) twins() bool {
	name := func(i [2]int) []byte { return f.folded[i[0]:i[1]] }
	slices.SortFunc(f.at, func(a, b [2]int) int { return bytes.Compare(name(a), name(b)) })
	twins := false
	for i := 1; i < len(f.at) && !twins; i++ {
		twins = bytes.Equal(name(f.at[i-1]), name(f.at[i]))
	}
	if oversize(f.folded) || oversize(f.at) {
		f.folded, f.at = nil, nil
	}
	return twins
}

// foldName appends name with each rune replaced by the least rune of its
// case-folding orbit (unicode.SimpleFold): two names are equal so exactly
// when bytes.EqualFold says they are.
func foldName(dst, name []byte) []byte {
	for len(name) > 0 {
		r, n := utf8.DecodeRune(name)
		name = name[n:]
		least := r
		for f := unicode.SimpleFold(r); f != r; f = unicode.SimpleFold(f) {
			least = min(least, f)
		}
		dst = utf8.AppendRune(dst, least)
	}
	return dst
}

// unquotedKey returns the canonical key between its quotes. Canonical keys
// of selected names never contain escapes that matter for selection: a name
// that needs escaping is not a configured field name.
func (c *Canonicalizer) unquotedKey(start, keyEnd int) []byte {
	return c.out[start+1 : keyEnd-1]
}

// insertionSortMax is the largest object sorted by insertion.
const insertionSortMax = 16

// sortMembers rewrites out[open:] as '{' m1 ',' m2 … '}' with members in key
// order; members were appended back to back without separators.
func (c *Canonicalizer) sortMembers(open int, ms []member) error {
	key := func(m member) []byte { return c.out[m.start:m.keyEnd] }
	if len(ms) <= insertionSortMax {
		// Insertion sort: objects in requests are small and often nearly
		// sorted.
		for i := 1; i < len(ms); i++ {
			for j := i; j > 0; j-- {
				c.keyCompares++
				cmp := bytes.Compare(key(ms[j-1]), key(ms[j]))
				if cmp == 0 {
					return ErrDuplicateKey
				}
				if cmp < 0 {
					break
				}
				ms[j-1], ms[j] = ms[j], ms[j-1]
			}
		}
	} else {
		// A large object (hostile or not) costs O(n log n), never O(n²).
		slices.SortFunc(ms, func(a, b member) int {
			c.keyCompares++
			return bytes.Compare(key(a), key(b))
		})
		for i := 1; i < len(ms); i++ {
			c.keyCompares++
			if bytes.Equal(key(ms[i-1]), key(ms[i])) {
				return ErrDuplicateKey
			}
		}
	}
	if len(ms) == 0 || len(ms) == 1 && !ms[0].drop {
		c.out = append(c.out, '}') // nothing to reorder, no comma needed
		return nil
	}
	c.scratch = c.scratch[:0]
	for _, m := range ms {
		if m.drop {
			continue
		}
		if len(c.scratch) > 0 {
			c.scratch = append(c.scratch, ',')
		}
		c.scratch = append(c.scratch, c.out[m.start:m.end]...)
	}
	if c.moved += len(c.scratch); c.moved > moveBudget(len(c.src)) {
		return ErrTooDeep
	}
	c.out = append(c.out[:open+1], c.scratch...)
	c.out = append(c.out, '}')
	return nil
}

// moveBudget is the most bytes sortMembers may copy for a body of n
// bytes: 8 times its size and 64 KiB. A request's objects nest a few
// levels (a chat message's parts, a tool's schema), each copied once per
// level; a body that nests its bulk in dozens of unordered objects, each
// copying it again, is refused (too deep), its work bounded to a few
// times a flat body's (review Z144).
func moveBudget(n int) int { return 8*n + 64<<10 }

const hexDigits = "0123456789abcdef"

// str copies a JSON string in canonical form: decoded, then re-encoded with
// escapes only for '"', '\\' and control characters.
func (c *Canonicalizer) str() error {
	c.pos++ // opening quote
	c.out = append(c.out, '"')
	for {
		// Fast path: copy a run of bytes needing no work, found eight
		// bytes at a time (strings are most of a prompt's bytes).
		run := plainRun(c.src, c.pos)
		c.out = append(c.out, c.src[c.pos:run]...)
		c.pos = run
		if c.pos >= len(c.src) {
			return ErrMalformedJSON
		}
		switch b := c.src[c.pos]; {
		case b == '"':
			c.pos++
			c.out = append(c.out, '"')
			return nil
		case b < 0x20:
			return ErrMalformedJSON // raw control characters are not JSON
		}
		// Escape sequence.
		if c.pos+1 >= len(c.src) {
			return ErrMalformedJSON
		}
		e := c.src[c.pos+1]
		c.pos += 2
		switch e {
		case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
			c.appendRune(rune(unescapeSimple(e)))
		case 'u':
			r, ok := c.hex4()
			if !ok {
				return ErrMalformedJSON
			}
			if r >= 0xD800 && r < 0xDC00 && c.pos+6 <= len(c.src) && c.src[c.pos] == '\\' && c.src[c.pos+1] == 'u' {
				save := c.pos
				c.pos += 2
				lo, ok := c.hex4()
				if ok && lo >= 0xDC00 && lo < 0xE000 {
					c.appendRune((r-0xD800)<<10 | (lo - 0xDC00) + 0x10000)
					continue
				}
				c.pos = save
			}
			if r >= 0xD800 && r < 0xE000 {
				// Lone surrogate: keep it escaped, lower-case hex.
				c.out = append(c.out, '\\', 'u', hexDigits[r>>12&0xF], hexDigits[r>>8&0xF], hexDigits[r>>4&0xF], hexDigits[r&0xF])
				continue
			}
			c.appendRune(r)
		default:
			return ErrMalformedJSON
		}
	}
}

// plainRun returns the index of the first byte at or after i that is '"',
// '\\' or a control character (or len(b)). Eight bytes are tested at once
// with the classic SWAR zero-byte test, which matters under wasm, where a
// byte loop is several times slower than natively.
func plainRun(b []byte, i int) int {
	const (
		ones  = 0x0101010101010101
		highs = 0x8080808080808080
	)
	for ; i+8 <= len(b); i += 8 {
		w := binary.LittleEndian.Uint64(b[i:])
		q := w ^ (ones * '"')
		bs := w ^ (ones * '\\')
		// A byte is flagged if it is zero in q or bs, or below 0x20.
		m := ((q - ones) &^ q) | ((bs - ones) &^ bs) | ((w - ones*0x20) &^ w)
		if m&highs != 0 {
			break // the exact byte is found below
		}
	}
	for ; i < len(b); i++ {
		if c := b[i]; c == '"' || c == '\\' || c < 0x20 {
			return i
		}
	}
	return i
}

func unescapeSimple(e byte) byte {
	switch e {
	case 'b':
		return '\b'
	case 'f':
		return '\f'
	case 'n':
		return '\n'
	case 'r':
		return '\r'
	case 't':
		return '\t'
	}
	return e // '"', '\\', '/'
}

func (c *Canonicalizer) hex4() (rune, bool) {
	if c.pos+4 > len(c.src) {
		return 0, false
	}
	var r rune
	for _, h := range c.src[c.pos : c.pos+4] {
		r <<= 4
		switch {
		case h >= '0' && h <= '9':
			r |= rune(h - '0')
		case h >= 'a' && h <= 'f':
			r |= rune(h-'a') + 10
		case h >= 'A' && h <= 'F':
			r |= rune(h-'A') + 10
		default:
			return 0, false
		}
	}
	c.pos += 4
	return r, true
}

// appendRune writes one decoded code point in canonical escaped form.
func (c *Canonicalizer) appendRune(r rune) {
	switch {
	case r == '"':
		c.out = append(c.out, '\\', '"')
	case r == '\\':
		c.out = append(c.out, '\\', '\\')
	case r == '\n':
		c.out = append(c.out, '\\', 'n')
	case r == '\r':
		c.out = append(c.out, '\\', 'r')
	case r == '\t':
		c.out = append(c.out, '\\', 't')
	case r == '\b':
		c.out = append(c.out, '\\', 'b')
	case r == '\f':
		c.out = append(c.out, '\\', 'f')
	case r < 0x20:
		c.out = append(c.out, '\\', 'u', '0', '0', hexDigits[r>>4], hexDigits[r&0xF])
	default:
		c.out = utf8.AppendRune(c.out, r)
	}
}

// number rewrites a JSON number. An integer (no fraction, no exponent)
// keeps its digits. A float becomes sign, significant digits and exponent:
// value = D × 10^X with D free of leading and trailing zeros, printed like
// JavaScript's Number#toString but without rounding (digits are kept), and
// with ".0" added where that form would read as an integer.
func (c *Canonicalizer) number() error {
	s := c.src
	i := c.pos
	neg := false
	if s[i] == '-' {
		neg = true
		i++
	}
	intStart := i
	if i < len(s) && s[i] == '0' {
		i++
	} else {
		for i < len(s) && s[i] >= '0' && s[i] <= '9' {
			i++
		}
	}
	if i == intStart {
		return ErrMalformedJSON
	}
	intDigits := s[intStart:i]
	var frac []byte
	if i < len(s) && s[i] == '.' {
		i++
		fs := i
		for i < len(s) && s[i] >= '0' && s[i] <= '9' {
			i++
		}
		if i == fs {
			return ErrMalformedJSON
		}
		frac = s[fs:i]
	}
	exp := 0
	isFloat := frac != nil
	if i < len(s) && (s[i] == 'e' || s[i] == 'E') {
		isFloat = true
		i++
		eneg := false
		if i < len(s) && (s[i] == '+' || s[i] == '-') {
			eneg = s[i] == '-'
			i++
		}
		es := i
		for i < len(s) && s[i] >= '0' && s[i] <= '9' {
			if exp > 1_000_000 {
				return ErrNumberRange
			}
			exp = exp*10 + int(s[i]-'0')
			i++
		}
		if i == es {
			return ErrMalformedJSON
		}
		if eneg {
			exp = -exp
		}
	}
	c.pos = i

	if !isFloat {
		// -0 stays -0: parsers that read a number as a float (Go's, a
		// browser's, a tensor's) keep the sign of zero, and models see it
		// (atan2, 1/x; review Z31).
		if neg {
			c.out = append(c.out, '-')
		}
		c.out = append(c.out, intDigits...) // JSON allows no leading zeros
		return nil
	}

	// Digits D = intDigits ++ frac, value = D × 10^(exp - len(frac)).
	c.keyBuf = append(append(c.keyBuf[:0], intDigits...), frac...)
	d := c.keyBuf
	x := exp - len(frac)
	for len(d) > 0 && d[0] == '0' {
		d = d[1:]
	}
	for len(d) > 0 && d[len(d)-1] == '0' {
		d = d[:len(d)-1]
		x++
	}
	if len(d) == 0 {
		// 0.000e5 is 0.0, and -0.0 keeps its sign (IEEE 754 does).
		if neg {
			c.out = append(c.out, '-')
		}
		c.out = append(c.out, '0', '.', '0')
		return nil
	}
	if neg {
		c.out = append(c.out, '-')
	}
	n := len(d)
	p := n + x // decimal point sits after p digits
	switch {
	case x >= 0 && p <= 21:
		c.out = append(c.out, d...)
		for k := 0; k < x; k++ {
			c.out = append(c.out, '0')
		}
		c.out = append(c.out, '.', '0') // a float, never an integer's form
	case x < 0 && p > 0 && p <= 21:
		c.out = append(c.out, d[:p]...)
		c.out = append(c.out, '.')
		c.out = append(c.out, d[p:]...)
	case p <= 0 && p > -6:
		c.out = append(c.out, '0', '.')
		for k := 0; k < -p; k++ {
			c.out = append(c.out, '0')
		}
		c.out = append(c.out, d...)
	default:
		c.out = append(c.out, d[0])
		if n > 1 {
			c.out = append(c.out, '.')
			c.out = append(c.out, d[1:]...)
		}
		c.out = append(c.out, 'e')
		e := p - 1
		if e < 0 {
			c.out = append(c.out, '-')
			e = -e
		}
		c.out = appendUint(c.out, uint64(e))
	}
	return nil
}

package cachecore

import (
	"strconv"
	"strings"
	"time"
)

// RequestCC holds the request Cache-Control directives the cache honours
// (RFC 9111 §5.2.1).
type RequestCC struct {
	NoStore      bool // bypass the cache entirely
	NoCache      bool // skip the lookup, still store the answer
	OnlyIfCached bool // answer 504 rather than go upstream
	MaxAge       time.Duration
	HasMaxAge    bool
	MaxStale     time.Duration // accept this much staleness (any, if MaxStaleAny)
	HasMaxStale  bool
	MaxStaleAny  bool
	MinFresh     time.Duration
	HasMinFresh  bool
}

// ParseRequestCC parses a Cache-Control request header value. Unknown
// directives and malformed arguments are ignored, as RFC 9111 asks; a
// malformed max-age is treated as 0 (the conservative reading).
func ParseRequestCC(v string) RequestCC {
	switch v { // the values clients send, read without the parser
	case "no-store":
		return RequestCC{NoStore: true}
	case "no-cache":
		return RequestCC{NoCache: true}
	}
	return parseRequestCC(v, !isASCII(v))
}

// parseRequestCC reads v through strings' Unicode-aware trimming when
// unicode is set, which decides for a value with a byte over 0x7f (U+00A0
// trims); the ASCII path reads
// every ASCII value the same way (TestCacheControlASCIIPathsAgree) and
// keeps those larger functions off each request's path.
func parseRequestCC(v string, unicode bool) RequestCC {
	var cc RequestCC
	all := v
	for len(v) > 0 {
		var name, arg string
		var hasArg bool
		name, arg, hasArg, v = nextDirective(v, unicode)
		cc.take(name, arg, hasArg)
	}
	if strings.IndexByte(all, '"') >= 0 && openQuote(all) {
		cc.notQuoted(all, unicode)
	}
	return cc
}

// take reads one directive into cc. A directive sent twice (on two lines,
// say) is read at its strictest: which line came first says nothing.
func (cc *RequestCC) take(name, arg string, hasArg bool) {
	switch {
	case foldEquals(name, "no-store"):
		cc.NoStore = true
	case foldEquals(name, "no-cache"):
		cc.NoCache = true
	case foldEquals(name, "only-if-cached"):
		cc.OnlyIfCached = true
	case foldEquals(name, "max-age"):
		if d := deltaSeconds(arg); !cc.HasMaxAge || d < cc.MaxAge {
			cc.MaxAge = d
		}
		cc.HasMaxAge = true
	case foldEquals(name, "max-stale"):
		switch d := deltaSeconds(arg); {
		case !hasArg:
			cc.MaxStaleAny = !cc.HasMaxStale || cc.MaxStaleAny
		case !cc.HasMaxStale || cc.MaxStaleAny || d < cc.MaxStale:
			cc.MaxStale, cc.MaxStaleAny = d, false
		}
		cc.HasMaxStale = true
	case foldEquals(name, "min-fresh"):
		if d := deltaSeconds(arg); d > cc.MinFresh {
			cc.MinFresh = d
		}
		cc.HasMinFresh = true
	}
}

// notQuoted reads v's directives again split at every ',': a quote that
// never closes (on one line of several joined, say) would otherwise hide
// every directive after it. What asks the cache to do less (no-store,
// no-cache, only-if-cached, a smaller max-age, a larger min-fresh) counts
// under either reading; a max-stale, which asks it to do more, only under
// the parser's. Names and arguments are trimmed as nextDirective trims
// them.
func (cc *RequestCC) notQuoted(v string, unicode bool) {
	for len(v) > 0 {
		part := v
		if i := strings.IndexByte(v, ','); i >= 0 {
			part, v = v[:i], v[i+1:]
		} else {
			v = ""
		}
		name, arg, hasArg := strings.Cut(part, "=")
		if unicode {
			name, arg = strings.TrimSpace(name), strings.Trim(strings.TrimSpace(arg), `"`)
		} else {
			name, arg = trimASCIISpace(name), trimByte(trimASCIISpace(arg), '"')
		}
		if !foldEquals(name, "max-stale") {
			cc.take(name, arg, hasArg)
		}
	}
}

// deltaSeconds parses RFC 9111 delta-seconds. A value too large to
// represent reads as the largest one kept (2^32−1 s, over the 2^31 that
// §1.2.2 asks for); a malformed one as 0.
func deltaSeconds(s string) time.Duration {
	if s == "" {
		return 0
	}
	for _, c := range s {
		if c < '0' || c > '9' {
			return 0
		}
	}
	n, err := strconv.ParseUint(s, 10, 64)
	if err != nil || n > 1<<32-1 {
		n = 1<<32 - 1
	}
	return time.Duration(n) * time.Second
}

// ResponseCC holds the response directives that forbid storing.
type ResponseCC struct {
	NoStore bool
	Private bool
}

// ParseResponseCC parses a Cache-Control response header value.
func ParseResponseCC(v string) ResponseCC {
	cc, _ := responseCC(v)
	return cc
}

// responseCC is ParseResponseCC, and whether the value says
// must-revalidate, proxy-revalidate or s-maxage (which carries
// proxy-revalidate's meaning for a shared cache): the answer may not be
// served stale (storeStaleWindow; reviews Z197, Z202). Read in the one
// pass AdmitHeaders makes. It inlines: the value most often sent to
// forbid storing is read without a call, the others by
// parseAnyResponseCC.
func responseCC(v string) (ResponseCC, bool) {
	if v == "no-store" {
		return ResponseCC{NoStore: true}, false
	}
	return parseAnyResponseCC(v)
}

// parseAnyResponseCC is responseCC for a value other than no-store.
func parseAnyResponseCC(v string) (ResponseCC, bool) {
	if v == "private" { // the other value that forbids storing, read without the parser
		return ResponseCC{Private: true}, false
	}
	return parseResponseCC(v, !isASCII(v))
}

// parseResponseCC is responseCC with the value's characters as told
// (unicode: not all ASCII).
func parseResponseCC(v string, unicode bool) (cc ResponseCC, noStale bool) {
	if strings.IndexByte(v, '"') >= 0 && openQuote(v) {
		// Malformed: a quoted-string that never closes swallows the
		// directives after it, a no-store or private among them. When in
		// doubt, not stored.
		cc.NoStore = true
		return cc, false
	}
	for len(v) > 0 {
		var name string
		name, _, _, v = nextDirective(v, unicode)
		switch {
		case foldEquals(name, "no-store"):
			cc.NoStore = true
		case foldEquals(name, "private"):
			cc.Private = true
		case foldEquals(name, "must-revalidate") || foldEquals(name, "proxy-revalidate") || foldEquals(name, "s-maxage"):
			noStale = true
		}
	}
	return cc, noStale
}

// nextDirective splits the first directive off a Cache-Control value: its
// name, trimmed, and its argument after '=', trimmed of spaces and
// quotes. The switches above compare names with foldEquals, ASCII only:
// a name is a token, so one with other letters is an unknown directive
// ("İ" is not "i", whatever Unicode lower-cases it to).
func nextDirective(v string, unicode bool) (name, arg string, hasArg bool, rest string) {
	part, rest := cutDirective(v)
	if unicode {
		name, arg, hasArg = strings.Cut(strings.TrimSpace(part), "=")
		return strings.TrimSpace(name), strings.Trim(strings.TrimSpace(arg), `"`), hasArg, rest
	}
	name = part
	if i := strings.IndexByte(part, '='); i >= 0 {
		name, arg, hasArg = part[:i], part[i+1:], true
	}
	return trimASCIISpace(name), trimByte(trimASCIISpace(arg), '"'), hasArg, rest
}

// openQuote reports whether a directive of v has a quoted argument that
// never closes, read as cutDirective reads one.
func openQuote(v string) bool {
	for {
		i, open := directiveEnd(v)
		if open {
			return true
		}
		if i >= len(v) {
			return false
		}
		v = v[i+1:]
	}
}

// cutDirective splits v after its first directive, at the first ',' that
// is not inside the directive's quoted-string argument (RFC 9110 §5.6.4,
// backslash escapes included): a comma quoted separates nothing.
func cutDirective(v string) (part, rest string) {
	i, _ := directiveEnd(v)
	if i >= len(v) {
		return v, ""
	}
	return v[:i], v[i+1:]
}

// directiveEnd is where v's first directive ends: the first ',' not inside
// its quoted-string argument, or len(v); open: the argument's quote never
// closes, or a quote stands in the directive's name, where none may (a
// name is a token): `a"="b, no-store, c="d"` read as one directive hid
// the no-store that a reading split at commas finds (review Z197).
func directiveEnd(v string) (i int, open bool) {
	for i < len(v) && v[i] != ',' && v[i] != '=' {
		if v[i] == '"' {
			return len(v), true
		}
		i++
	}
	if i < len(v) && v[i] == '=' {
		i++
		for i < len(v) && (v[i] == ' ' || v[i] == '\t') {
			i++
		}
		if i < len(v) && v[i] == '"' {
			for i++; i < len(v) && v[i] != '"'; i++ {
				if v[i] == '\\' {
					i++
				}
			}
			if i >= len(v) {
				return len(v), true
			}
		}
		for i < len(v) && v[i] != ',' {
			i++
		}
	}
	return i, false
}

// The ASCII helpers below are what strings' Cut, TrimSpace, Trim and
// ToLower do on ASCII input, in a fraction of their code: Cache-Control
// is parsed on most requests and answers, and under V8 a request that
// arrives cold pays for each line of code it runs (BENCHMARKS.md, items
// 17 and 22).

// isASCII reports whether s has no byte over 0x7f.
func isASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= 0x80 {
			return false
		}
	}
	return true
}

// asciiSpace is strings.TrimSpace's set within ASCII.
func asciiSpace(c byte) bool {
	return c == ' ' || c == '\t' || c == '\n' || c == '\v' || c == '\f' || c == '\r'
}

// trimASCIISpace is strings.TrimSpace for an ASCII string.
func trimASCIISpace(s string) string {
	for len(s) > 0 && asciiSpace(s[0]) {
		s = s[1:]
	}
	for len(s) > 0 && asciiSpace(s[len(s)-1]) {
		s = s[:len(s)-1]
	}
	return s
}

// trimByte is strings.Trim with a one-byte cutset.
func trimByte(s string, c byte) string {
	for len(s) > 0 && s[0] == c {
		s = s[1:]
	}
	for len(s) > 0 && s[len(s)-1] == c {
		s = s[:len(s)-1]
	}
	return s
}

// foldEquals reports whether the ASCII string s is lower, an ASCII
// lower-case token, once s's upper-case letters are lowered.
func foldEquals(s, lower string) bool {
	if len(s) != len(lower) {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		if c != lower[i] {
			return false
		}
	}
	return true
}

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
	if !isASCII(v) {
		return parseRequestCCUnicode(v)
	}
	var cc RequestCC
	for len(v) > 0 {
		var name, arg string
		var hasArg bool
		name, arg, hasArg, v = nextDirective(v)
		arg = trimByte(trimASCIISpace(arg), '"')
		switch {
		case foldEquals(name, "no-store"):
			cc.NoStore = true
		case foldEquals(name, "no-cache"):
			cc.NoCache = true
		case foldEquals(name, "only-if-cached"):
			cc.OnlyIfCached = true
		case foldEquals(name, "max-age"):
			cc.MaxAge, cc.HasMaxAge = deltaSeconds(arg), true
		case foldEquals(name, "max-stale"):
			cc.HasMaxStale = true
			if !hasArg {
				cc.MaxStaleAny = true
			} else {
				cc.MaxStale = deltaSeconds(arg)
			}
		case foldEquals(name, "min-fresh"):
			cc.MinFresh, cc.HasMinFresh = deltaSeconds(arg), true
		}
	}
	return cc
}

// parseRequestCCUnicode is ParseRequestCC for a value with a byte over
// 0x7f: strings' Unicode-aware trimming and lower-casing decide there
// (U+00A0 trims, "İ" lower-cases to "i"). The ASCII path above gives the
// same result on every ASCII value (TestCacheControlASCIIPathsAgree) and
// keeps these larger functions off each request's path.
func parseRequestCCUnicode(v string) RequestCC {
	var cc RequestCC
	for len(v) > 0 {
		var part string
		part, v, _ = strings.Cut(v, ",")
		part = strings.TrimSpace(part)
		name, arg, hasArg := strings.Cut(part, "=")
		name = strings.ToLower(strings.TrimSpace(name))
		arg = strings.Trim(strings.TrimSpace(arg), `"`)
		switch name {
		case "no-store":
			cc.NoStore = true
		case "no-cache":
			cc.NoCache = true
		case "only-if-cached":
			cc.OnlyIfCached = true
		case "max-age":
			cc.MaxAge, cc.HasMaxAge = deltaSeconds(arg), true
		case "max-stale":
			cc.HasMaxStale = true
			if !hasArg {
				cc.MaxStaleAny = true
			} else {
				cc.MaxStale = deltaSeconds(arg)
			}
		case "min-fresh":
			cc.MinFresh, cc.HasMinFresh = deltaSeconds(arg), true
		}
	}
	return cc
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
	if !isASCII(v) {
		return parseResponseCCUnicode(v)
	}
	var cc ResponseCC
	for len(v) > 0 {
		var name string
		name, _, _, v = nextDirective(v)
		switch {
		case foldEquals(name, "no-store"):
			cc.NoStore = true
		case foldEquals(name, "private"):
			cc.Private = true
		}
	}
	return cc
}

// parseResponseCCUnicode is ParseResponseCC for a value with a byte over
// 0x7f (see parseRequestCCUnicode).
func parseResponseCCUnicode(v string) ResponseCC {
	var cc ResponseCC
	for len(v) > 0 {
		var part string
		part, v, _ = strings.Cut(v, ",")
		name, _, _ := strings.Cut(strings.TrimSpace(part), "=")
		switch strings.ToLower(strings.TrimSpace(name)) {
		case "no-store":
			cc.NoStore = true
		case "private":
			cc.Private = true
		}
	}
	return cc
}

// The ASCII helpers below are what strings' Cut, TrimSpace, Trim and
// ToLower do on ASCII input, in a fraction of their code: Cache-Control
// is parsed on most requests and answers, and under V8 a request that
// arrives cold pays for each line of code it runs (BENCHMARKS.md, items
// 17 and 22).

// nextDirective splits the first directive off an ASCII Cache-Control
// value: its name, trimmed, and its argument as written after '='.
func nextDirective(v string) (name, arg string, hasArg bool, rest string) {
	name = v
	if i := strings.IndexByte(v, ','); i >= 0 {
		name, rest = v[:i], v[i+1:]
	}
	if i := strings.IndexByte(name, '='); i >= 0 {
		name, arg, hasArg = name[:i], name[i+1:], true
	}
	return trimASCIISpace(name), arg, hasArg, rest
}

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

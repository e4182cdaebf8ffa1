package cachecore

import (
	"errors"
	"fmt"
	"math"
	"time"

	"github.com/tidwall/gjson"
)

// The configuration parser's machinery: ParseConfig, error collection by
// JSON path, the object walker and the typed scalar readers.

// ParseConfig parses and validates the plugin configuration. The error names
// every offending field by its JSON path, e.g. `routes[1].ttl: …`.
func ParseConfig(data []byte) (*Config, error) {
	p := &parser{}
	cfg := p.config(data)
	if len(p.errs) > 0 {
		return nil, errors.Join(p.errs...)
	}
	return cfg, nil
}

type parser struct {
	errs []error
	// kindPolicies are each kind's defaults with the configuration's
	// defaults applied, read once per kind (kindPolicy): read again for
	// every route, a large defaults cost its size times the routes, in
	// time and in memory kept (review Z69).
	kindPolicies map[Kind]Policy
	// reported: the errors so far, each named once: a check of a route
	// that finds a fault of defaults names defaults, and found it again
	// for every route that inherits it (review Z152).
	reported map[string]bool
	// tagMemo: the set digests of lists routes share (keyingTagWith).
	tagMemo setMemo
	// foldChecked: the ignore_fields lists checked for names equal but
	// for case to what the key keeps (route).
	foldChecked map[foldCheck]bool
}

func (p *parser) fail(path, format string, args ...any) {
	msg := path + ": " + fmt.Sprintf(format, args...)
	if p.reported[msg] {
		return
	}
	if p.reported == nil {
		p.reported = map[string]bool{}
	}
	p.reported[msg] = true
	p.errs = append(p.errs, errors.New(msg))
}

// fields walks an object, calling f for each member; unknown members are
// reported by f returning false.
func (p *parser) fields(path string, v gjson.Result, f func(key string, val gjson.Result) bool) {
	if !v.IsObject() {
		p.fail(path, "must be an object")
		return
	}
	seen := map[string]bool{}
	v.ForEach(func(k, val gjson.Result) bool {
		key := k.String()
		sub := join(path, key)
		if seen[key] {
			p.fail(sub, "duplicate field")
			return true
		}
		seen[key] = true
		if !f(key, val) {
			p.fail(sub, "unknown field")
		}
		return true
	})
}

func join(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

// ---- scalar helpers ----

func (p *parser) str(path string, v gjson.Result) string {
	if v.Type != gjson.String {
		p.fail(path, "must be a string, got %s", short(v.Raw))
		return ""
	}
	return v.Str
}

// maxRoutes bounds a configuration's routes.
const maxRoutes = 1024

// MaxRoutes is the most routes a configuration may list (the linter reads
// no further).
const MaxRoutes = maxRoutes

// maxRouteName bounds a route's name, which names its shared-data keys
// (the SLO window, the shadow limiter) and its stats.
const maxRouteName = 64

// printable is str for a value that goes into a header or names a
// cluster (what: how the error says so): printable ASCII, no space or
// control character (a CR LF in an authority would be a header of its
// own, which the proxy refuses).
func (p *parser) printable(path string, v gjson.Result, what string) string {
	s := p.str(path, v)
	if !printableASCII(s) {
		p.fail(path, "must be printable ASCII with no space%s, got %q", what, s)
	}
	return s
}

// authority reads the :authority of the cache's own calls: printable,
// and not empty (a call naming no host failed every time; review Z244).
func (p *parser) authority(path string, v gjson.Result) string {
	s := p.host(path, v)
	if s == "" && v.Type == gjson.String {
		p.fail(path, "must not be empty: it names the host the calls ask")
	}
	return s
}

// maxAuthority bounds an :authority of the configuration: a host name of
// 253 bytes and a port, or an IPv6 literal, with room to spare. One of a
// megabyte was quoted in an error for each route (review Z265).
const maxAuthority = 512

// host is printable for an :authority, at most maxAuthority bytes (""
// beyond, refused).
func (p *parser) host(path string, v gjson.Result) string {
	s := p.printable(path, v, "")
	if len(s) > maxAuthority {
		p.fail(path, "is %d bytes: an authority holds at most %d", len(s), maxAuthority)
		return ""
	}
	return s
}

// pathNote is printable's note for a route's path: a request's :path
// carries anything else percent-encoded, so a route holding it would
// never match.
const pathNote = " (percent-encode the rest, as requests carry it)"

func printableASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] <= ' ' || s[i] >= 0x7f {
			return false
		}
	}
	return true
}

// isTokenChar reports whether c may be in an HTTP token (RFC 9110 §5.6.2).
func isTokenChar(c rune) bool { return c < 0x80 && isTokenByte(byte(c)) }

// isTokenByte is isTokenChar for a byte, by compares alone (it reads
// request Content-Types: isJSONType).
func isTokenByte(b byte) bool {
	switch {
	case 'a' <= b|0x20 && b|0x20 <= 'z', '0' <= b && b <= '9':
		return true
	}
	return b == '!' || b == '#' || b == '$' || b == '%' || b == '&' || b == '\'' || b == '*' || b == '+' ||
		b == '-' || b == '.' || b == '^' || b == '_' || b == '`' || b == '|' || b == '~'
}

// token is a string usable in stat names and Cache-Status: [A-Za-z0-9_-].
func (p *parser) token(path string, v gjson.Result) string {
	s := p.str(path, v)
	if s == "" {
		p.fail(path, "must not be empty")
		return s
	}
	for _, c := range s {
		if !(c == '_' || c == '-' || c >= '0' && c <= '9' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z') {
			p.fail(path, "may only contain letters, digits, '_' and '-', got %q", s)
			break
		}
	}
	return s
}

func (p *parser) boolean(path string, v gjson.Result) bool {
	if v.Type != gjson.True && v.Type != gjson.False {
		p.fail(path, "must be true or false, got %s", short(v.Raw))
	}
	return v.Type == gjson.True
}

func (p *parser) float(path string, v gjson.Result) float64 {
	if v.Type != gjson.Number || math.IsInf(v.Num, 0) || math.IsNaN(v.Num) {
		p.fail(path, "must be a number, got %s", short(v.Raw))
		return 0
	}
	return v.Num
}

func (p *parser) floatRange(path string, v gjson.Result, lo, hi float64) float64 {
	f := p.float(path, v)
	if v.Type == gjson.Number && (f < lo || f > hi) {
		p.fail(path, "must be between %v and %v, got %v", lo, hi, f)
	}
	return f
}

func (p *parser) intRange(path string, v gjson.Result, lo, hi int) int {
	if v.Type != gjson.Number || v.Num != math.Trunc(v.Num) {
		p.fail(path, "must be an integer, got %s", short(v.Raw))
		return 0
	}
	if v.Num < float64(lo) || v.Num > float64(hi) {
		p.fail(path, "must be between %d and %d, got %s", lo, hi, v.Raw)
		return 0
	}
	return int(v.Num)
}

// duration accepts Go duration strings ("90s", "5m", "1h30m").
func (p *parser) duration(path string, v gjson.Result, lo, hi time.Duration) time.Duration {
	if v.Type != gjson.String {
		p.fail(path, "must be a duration string such as \"30s\" or \"5m\", got %s", short(v.Raw))
		return 0
	}
	d, err := time.ParseDuration(v.Str)
	if err != nil {
		p.fail(path, "invalid duration %q (use forms like \"30s\", \"5m\", \"1h\")", v.Str)
		return 0
	}
	if d < lo || d > hi {
		p.fail(path, "must be between %v and %v, got %v", lo, hi, d)
		return 0
	}
	return d
}

func (p *parser) array(path string, v gjson.Result) []gjson.Result {
	if !v.IsArray() {
		p.fail(path, "must be an array, got %s", short(v.Raw))
		return nil
	}
	return v.Array()
}

func (p *parser) strList(path string, v gjson.Result) []string {
	var out []string
	for i, e := range p.array(path, v) {
		s := p.str(fmt.Sprintf("%s[%d]", path, i), e)
		if s == "" {
			p.fail(fmt.Sprintf("%s[%d]", path, i), "must not be empty")
		}
		out = append(out, s)
	}
	return out
}

func short(raw string) string {
	if len(raw) > 40 {
		return raw[:40] + "…"
	}
	if raw == "" {
		return "nothing"
	}
	return raw
}

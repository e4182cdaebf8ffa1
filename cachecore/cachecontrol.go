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

package cachecore

import (
	"errors"
	"fmt"
	"math"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/tidwall/gjson"
)

// Parsing of a route's overridable policy (also used for `defaults`),
// its validation rules and its confidence tiers.

// policyField parses one overridable setting; false means unknown field.
func (p *parser) policyField(path, key string, v gjson.Result, pol *Policy) bool {
	switch key {
	case "ttl":
		pol.TTL = p.duration(path, v, time.Second, 365*24*time.Hour)
	case "statuses":
		pol.Statuses = nil
		for i, s := range p.array(path, v) {
			at := fmt.Sprintf("%s[%d]", path, i)
			code := p.intRange(at, s, 200, 299)
			if code == 206 {
				p.fail(at, "206 is a part of an answer, chosen by the request's Range, which the key does not hold")
			}
			pol.Statuses = append(pol.Statuses, code)
		}
		if len(pol.Statuses) == 0 {
			p.fail(path, "must list at least one status")
		}
	case "shared":
		pol.Shared = p.boolean(path, v)
	case "share_authorities":
		pol.ShareAuth = p.boolean(path, v)
	case "tenant_headers":
		pol.TenantHeaders = p.headerNames(path, v)
		if len(pol.TenantHeaders) == 0 {
			p.fail(path, "must list at least one header (set \"shared\": true for a route without tenants)")
		}
		for i, name := range pol.TenantHeaders {
			sub := fmt.Sprintf("%s[%d]", path, i)
			switch {
			case name != "" && name[0] == ':' && name != ":authority":
				// Every caller sends the same :method, :scheme, :path:
				// one tenant for all (review Z142).
				p.fail(sub, "%q is a pseudo-header: every caller sends the same, and all would be one tenant", name)
			case name == "host":
				// Envoy hands a request's host to the filter as its
				// :authority: every request bypassed as no_identity (Z265's
				// suspicion).
				p.fail(sub, "%q reaches the filter as :authority (Envoy's name for it): name \":authority\"", name)
			case hopByHop(name), replayDrops(name):
				// A refresh or shadow call does not send it (ReplayHeaders):
				// it would ask as no one, for an answer stored under the
				// tenant's key (reviews Z174, Z229).
				p.fail(sub, "%q describes the message, its connection or the part of the answer asked for, not the caller (a background call does not send it)", name)
			}
		}
	case "key_headers":
		pol.KeyHeaders = p.keyHeaders(path, v)
	case "model_path":
		if s := p.gjsonPath(path, v); len(s) <= maxConfigPath { // (else refused: the routes' checks go on with the default)
			pol.ModelPath = s
		}
	case "key_fields":
		pol.KeyFields = p.strList(path, v)
		for i, name := range pol.KeyFields {
			if escaped(name) {
				p.fail(fmt.Sprintf("%s[%d]", path, i), "%q holds a quote or a control character: a member name the key holds escaped, which key_fields would never match", name)
			} else if strings.ContainsAny(name, keyFieldPathChars) {
				p.fail(fmt.Sprintf("%s[%d]", path, i), "%q is a gjson path: key_fields lists top-level request fields by name (\"messages\", not \"messages.#.content\"); a path names no field, and the question would leave the key", name)
			}
		}
	case "ignore_fields":
		pol.IgnoreFields = p.strList(path, v)
		pol.ignoreSet = true
		for i, name := range pol.IgnoreFields {
			if escaped(name) {
				p.fail(fmt.Sprintf("%s[%d]", path, i), "%q holds a quote or a control character: a member name the key holds escaped, which ignore_fields would never match", name)
			} else if strings.ContainsAny(name, keyFieldPathChars) {
				// As key_fields: a path names no member, and ignored
				// nothing the operator meant (review Z140).
				p.fail(fmt.Sprintf("%s[%d]", path, i), "%q is a gjson path: ignore_fields lists top-level request fields by name (\"user\", not \"metadata.request_id\"); a path names no field, and would ignore nothing", name)
			}
		}
	case "finish_reasons":
		pol.FinishReasons = p.strList(path, v)
		if len(pol.FinishReasons) == 0 && v.IsArray() {
			p.fail(path, "must list at least one value (an empty list would admit every finish_reason, \"length\" included)")
		}
	case "validate":
		pol.Rules = nil
		for i, rv := range p.array(path, v) {
			if r, ok := p.rule(fmt.Sprintf("%s[%d]", path, i), rv); ok {
				pol.Rules = append(pol.Rules, r)
			}
		}
	case "confidence":
		pol.Confidence = p.confidence(path, v)
	case "model_version":
		pol.ModelVersion = VersionSource{}
		p.fields(path, v, func(key string, val gjson.Result) bool {
			switch key {
			case "header":
				sub := join(path, key)
				pol.ModelVersion.Header = p.replayable(sub, p.headerName(sub, strings.ToLower(p.str(sub, val))))
			case "body_path":
				pol.ModelVersion.BodyPath = p.gjsonPath(join(path, key), val)
			default:
				return false
			}
			return true
		})
		if v.IsObject() && pol.ModelVersion.Header == "" && pol.ModelVersion.BodyPath == "" {
			p.fail(path, "needs header or body_path: where the upstream reports its version")
		}
	case "stored_headers":
		pol.StoredHeaders = p.headerNames(path, v)
		seen := make(map[string]bool, len(pol.StoredHeaders)) // a scan per name was quadratic (review Z69)
		for i, name := range pol.StoredHeaders {
			sub := fmt.Sprintf("%s[%d]", path, i)
			if seen[name] {
				// Each hit would replay every line of it once per listing.
				p.fail(sub, "%q is listed twice (names are compared without case)", name)
			}
			seen[name] = true
			p.replayable(sub, name)
		}
	case "max_entry_bytes":
		pol.MaxEntryBytes = p.intRange(path, v, 1024, 64<<20)
	case "honor_request_cache_control":
		pol.HonorCacheCtl = p.boolean(path, v)
	case "stale_while_revalidate":
		pol.StaleWhileReval = p.duration(path, v, 0, 365*24*time.Hour)
	case "stale_if_error":
		pol.StaleIfError = p.duration(path, v, 0, 365*24*time.Hour)
	case "early_refresh":
		p.fields(path, v, func(key string, val gjson.Result) bool {
			switch key {
			case "enabled":
				pol.EarlyRefresh.Enabled = p.boolean(join(path, key), val)
			case "beta":
				pol.EarlyRefresh.Beta = p.floatRange(join(path, key), val, 0.01, 100)
			default:
				return false
			}
			return true
		})
	case "freshness_slo":
		// Applied over the defaults' object, member by member, as
		// coalesce and early_refresh are.
		slo := &FreshnessSLO{MaxFraction: 0.05, Window: 5 * time.Minute, MinSamples: 20}
		var haveAge bool
		if pol.FreshnessSLO != nil {
			inherited := *pol.FreshnessSLO
			slo, haveAge = &inherited, true
		}
		p.fields(path, v, func(key string, val gjson.Result) bool {
			sub := join(path, key)
			switch key {
			case "max_age":
				slo.MaxAge, haveAge = p.duration(sub, val, time.Second, 365*24*time.Hour), true
			case "max_fraction":
				slo.MaxFraction = p.floatRange(sub, val, 0, 1)
			case "window":
				slo.Window = p.duration(sub, val, 10*time.Second, 24*time.Hour)
			case "min_samples":
				slo.MinSamples = p.intRange(sub, val, 1, 1<<30)
			default:
				return false
			}
			return true
		})
		if !haveAge {
			p.fail(path+".max_age", "is required: the freshness budget, e.g. \"1h\"")
		}
		pol.FreshnessSLO = slo
	case "shadow":
		sh := shadowDefaults(pol.kind)
		if pol.Shadow != nil { // applied over the defaults' object, as freshness_slo is
			sh = *pol.Shadow
			sh.Paths = cloneStrings(sh.Paths)
		}
		p.fields(path, v, func(key string, val gjson.Result) bool {
			sub := join(path, key)
			switch key {
			case "sample":
				sh.Sample = p.floatRange(sub, val, 0, 1)
			case "max_concurrent":
				sh.MaxConcurrent = p.intRange(sub, val, 1, 64)
			case "compare":
				sh.Compare = p.str(sub, val)
				if !compareModes[sh.Compare] {
					p.fail(sub, "must be one of text, exact, numeric, label, cosine")
				}
			case "paths":
				sh.Paths = p.strList(sub, val)
				if val.IsArray() && len(sh.Paths) == 0 {
					// Nothing would be compared but the whole answer,
					// whose ids and times differ on every call.
					p.fail(sub, "must name at least one path; leave it out for the kind's default")
				}
				for i, sp := range sh.Paths {
					if !gjsonPathOK(sp) {
						p.badPath(fmt.Sprintf("%s[%d]", sub, i), sp)
					}
				}
			case "tolerance":
				sh.Tolerance = p.floatRange(sub, val, 0, 1e12)
			case "min_cosine":
				sh.MinCosine = p.floatRange(sub, val, -1, 1)
			case "max_divergence":
				sh.MaxDivergence = p.floatRange(sub, val, 0, 1)
			case "min_samples":
				sh.MinSamples = p.intRange(sub, val, 1, 1<<30)
			case "window":
				sh.Window = p.duration(sub, val, time.Second, 30*24*time.Hour)
			case "min_tenants":
				sh.MinTenants = p.intRange(sub, val, 1, 2)
			default:
				return false
			}
			return true
		})
		pol.Shadow = &sh
	case "semantic":
		pol.Semantic = p.semantic(path, v, pol.kind)
	case "coalesce":
		p.fields(path, v, func(key string, val gjson.Result) bool {
			sub := join(path, key)
			switch key {
			case "enabled":
				pol.Coalesce.Enabled = p.boolean(sub, val)
			case "max_wait":
				pol.Coalesce.MaxWait = p.duration(sub, val, 10*time.Millisecond, 10*time.Minute)
			case "max_retries":
				pol.Coalesce.MaxRetries = p.intRange(sub, val, 0, 10)
			case "hit_for_miss":
				pol.Coalesce.HitForMiss = p.duration(sub, val, 0, time.Hour)
			case "on_retries_exhausted":
				switch p.str(sub, val) {
				case "fail":
					pol.Coalesce.OnRetriesExhausted = ExhaustedFail
				case "forward":
					pol.Coalesce.OnRetriesExhausted = ExhaustedForward
				default:
					p.fail(sub, "must be one of fail, forward")
				}
			default:
				return false
			}
			return true
		})
	default:
		return false
	}
	return true
}

// keyFieldPathChars are gjson's path syntax (separator, wildcards, array
// and query, pipe, modifier, escape, multipaths). key_fields names
// top-level members as written, so an entry holding one is a path that
// matches no member: the allowlist would keep only the model, and every
// question to it would share one key.
const keyFieldPathChars = ".#*?|@\\[]{}!"

// escaped reports a member name the canonical form writes with an escape
// (a quote, a control character): key_fields and ignore_fields compare
// names as the key holds them, so such an entry would match no member,
// and the member it names would silently leave the key (review Z199).
func escaped(name string) bool {
	for i := 0; i < len(name); i++ {
		if name[i] == '"' || name[i] < 0x20 {
			return true
		}
	}
	return false
}

// headerNames reads a list of header names, lower-cased as Envoy hands
// them to the filter.
func (p *parser) headerNames(path string, v gjson.Result) []string {
	s := p.strList(path, v)
	for i := range s {
		s[i] = p.headerName(fmt.Sprintf("%s[%d]", path, i), strings.ToLower(s[i]))
	}
	return s
}

// headerName refuses a name no header can have (RFC 9110's token; a
// pseudo-header's leading colon allowed): it would never match.
func (p *parser) headerName(path, name string) string {
	t := strings.TrimPrefix(name, ":")
	ok := t != ""
	for i := 0; i < len(t) && ok; i++ {
		c := t[i]
		ok = c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0
	}
	if !ok && name != "" {
		p.fail(path, "%q is not a header name (letters, digits and !#$%%&'*+-.^_`|~ only)", name)
	}
	return name
}

// keyHeaders reads key_headers: request headers whose values become part
// of the key. A name is refused when the key holds what it says already
// (pseudo-headers, host), when it describes the connection rather than
// the question (hop-by-hop), or when it carries credentials, which a key
// would keep as sent (tenant_headers keys a credential hashed); and the
// list is bounded, as each value is (keyHeaderValues). The route's own
// tenant headers are checked once the route is whole (keyHeadersOfRoute).
func (p *parser) keyHeaders(path string, v gjson.Result) []string {
	names := p.headerNames(path, v)
	if len(names) > maxKeyHeaders {
		p.fail(path, "lists %d headers; at most %d (each one multiplies the entries of a question)", len(names), maxKeyHeaders)
		return names // not each checked: a scan per name is quadratic
	}
	for i, name := range names {
		sub := fmt.Sprintf("%s[%d]", path, i)
		switch {
		case name == "":
		case slices.Contains(names[:i], name):
			p.fail(sub, "%q is listed twice", name)
		case name[0] == ':':
			p.fail(sub, "%q is a pseudo-header: the key holds the method, path and authority already", name)
		case name == "host":
			p.fail(sub, "%q is the authority, which the key holds already (unless share_authorities)", name)
		case hopByHop(name):
			p.fail(sub, "%q is a hop-by-hop header: it describes the connection, not the question", name)
		case replayDrops(name):
			// A refresh, shadow call or refetch does not send it
			// (ReplayHeaders): the model's answer without it would be
			// stored or compared under the key of a request that sent it.
			p.fail(sub, "%q describes the message or the part of the answer asked for, and a background call does not send it: its answer would be stored under a key that holds it", name)
		case credentialHeader(name):
			p.fail(sub, "%q carries credentials, which key_headers would keep in keys as sent (shared data, L2): tenant_headers keys a caller by a hash", name)
		}
	}
	return names
}

func credentialHeader(name string) bool {
	return name == "authorization" || name == "proxy-authorization" || name == "cookie"
}

func hopByHop(name string) bool {
	switch name {
	case "connection", "keep-alive", "proxy-connection", "te", "trailer", "transfer-encoding", "upgrade":
		return true
	}
	return false
}

var ruleTypes = map[string]bool{"string": true, "number": true, "bool": true, "array": true, "object": true, "null": true}

func (p *parser) rule(path string, v gjson.Result) (Rule, bool) {
	var r Rule
	preds := 0
	before := len(p.errs)
	p.fields(path, v, func(key string, val gjson.Result) bool {
		sub := join(path, key)
		switch key {
		case "path":
			r.Path = p.str(sub, val)
			return true
		case "exists":
			b := p.boolean(sub, val)
			r.Exists = &b
		case "type":
			r.Type = p.str(sub, val)
			if !ruleTypes[r.Type] {
				p.fail(sub, "must be one of string, number, bool, array, object, null")
			}
		case "non_empty":
			r.NonEmpty = p.boolean(sub, val)
		case "equals":
			eq := val
			r.Equals = &eq
		case "one_of":
			r.OneOf = p.array(sub, val)
			if len(r.OneOf) == 0 {
				p.fail(sub, "must list at least one value")
			}
		case "min":
			f := p.exactFloat(sub, val)
			r.Min = &f
		case "max":
			f := p.exactFloat(sub, val)
			r.Max = &f
		case "min_items":
			n := p.intRange(sub, val, 0, 1<<30)
			r.MinItems = &n
		case "max_items":
			n := p.intRange(sub, val, 0, 1<<30)
			r.MaxItems = &n
		default:
			return false
		}
		preds++
		return true
	})
	if r.Path == "" {
		p.fail(path+".path", "is required")
	} else if !gjsonPathOK(r.Path) {
		p.badPath(path+".path", r.Path)
	}
	if preds == 0 {
		p.fail(path, "has no predicate (exists, type, non_empty, equals, one_of, min, max, min_items, max_items)")
	}
	if r.Min != nil && r.Max != nil && *r.Min > *r.Max {
		p.fail(path, "min %v is greater than max %v", *r.Min, *r.Max)
	}
	if r.MinItems != nil && r.MaxItems != nil && *r.MinItems > *r.MaxItems {
		p.fail(path, "min_items is greater than max_items")
	}
	// A rule no answer could pass refuses every answer: an error, not a
	// route that silently stores nothing.
	others := r.Type != "" || r.NonEmpty || r.Equals != nil || r.OneOf != nil || r.Min != nil || r.Max != nil ||
		r.MinItems != nil || r.MaxItems != nil
	switch {
	case r.Exists != nil && !*r.Exists && others:
		p.fail(path, "exists: false holds only where the value is missing, where no other predicate can hold")
	case r.Type == "null" && r.NonEmpty:
		p.fail(path, "non_empty refuses null, the one value of type null")
	case (r.Min != nil || r.Max != nil) && (r.MinItems != nil || r.MaxItems != nil):
		p.fail(path, "min and max hold only on a number, min_items and max_items only on an array: no value is both")
	case r.Equals != nil && duplicateMember(*r.Equals) || slices.ContainsFunc(r.OneOf, duplicateMember):
		p.fail(path, "a value of equals or one_of repeats an object member: no answer matches it (one that repeats a member is refused)")
	case r.NonEmpty && r.MaxItems != nil && *r.MaxItems == 0:
		p.fail(path, "non_empty refuses [], the one array max_items 0 allows")
	case r.Equals != nil && r.OneOf != nil && !slices.ContainsFunc(r.OneOf, func(o gjson.Result) bool { return jsonEqual(*r.Equals, o) }):
		p.fail(path, "equals %s is none of one_of", r.Equals.Raw)
	case r.Equals != nil && !r.passes(*r.Equals):
		p.fail(path, "equals %s fails the rule's other predicates", r.Equals.Raw)
	case r.OneOf != nil && !slices.ContainsFunc(r.OneOf, r.passes):
		p.fail(path, "no value of one_of passes the rule's other predicates")
	case (r.Min != nil || r.Max != nil) && r.Type != "" && r.Type != "number":
		p.fail(path, "min and max hold only on a number, not on type %s", r.Type)
	case (r.MinItems != nil || r.MaxItems != nil) && r.Type != "" && r.Type != "array":
		p.fail(path, "min_items and max_items hold only on an array, not on type %s", r.Type)
	case multipathRuleFails(r):
		p.fail(path, "%q ends at a multipath, which reads the %s it builds, and the rule holds on no such value: name the member (reviews Z211, Z214)", r.Path, map[byte]string{'{': "object", '[': "array"}[endsAtMultipath(r.Path)])
	case lengthSeg(r.Path) >= 0 && !lengthBetween(r.Min, r.Max):
		p.fail(path, "a path ending in # is the array's length, a whole number from 0: no length is within min and max (review Z211)")
	case lengthSeg(r.Path) >= 0 && (r.MinItems != nil || r.MaxItems != nil || r.Type != "" && r.Type != "number" ||
		r.Equals != nil && !isLength(*r.Equals) || r.OneOf != nil && !slices.ContainsFunc(r.OneOf, isLength)):
		// (equals "1" on it refused every answer; review Z171)
		p.fail(path, "a path ending in # is the array's length, a number: bound it with min and max or compare it with numbers, or give the array's path without #")
	}
	r.indexOneOf()
	return r, len(p.errs) == before
}

// multipathRuleFails reports a rule on a path ending at a multipath that
// no value of the kind it builds passes: number bounds, another type,
// array bounds on an object, an equals or every one_of value of another
// kind.
func multipathRuleFails(r Rule) bool {
	kind := endsAtMultipath(r.Path)
	if kind == 0 {
		return false
	}
	want := map[byte]string{'{': "object", '[': "array"}[kind]
	return r.Min != nil || r.Max != nil || r.Type != "" && r.Type != want ||
		kind == '{' && (r.MinItems != nil || r.MaxItems != nil) ||
		r.Equals != nil && !builds(kind, *r.Equals) ||
		r.OneOf != nil && !slices.ContainsFunc(r.OneOf, func(v gjson.Result) bool { return builds(kind, v) })
}

// lengthBetween reports whether some length (a whole number from 0) is
// within min and max (nil: unbounded).
func lengthBetween(min, max *float64) bool {
	lo := 0.0
	if min != nil {
		lo = math.Max(lo, math.Ceil(*min))
	}
	return max == nil || lo <= math.Floor(*max)
}

// endsAtMultipath reports a gjson path whose last segment (after the last
// unescaped '.' or '|') is a multipath, and what it builds: '{' an object,
// '[' an array; 0 for any other path. (An earlier segment's multipath is
// read past: "{a,b}.{b}" ends at the second; review Z214.)
func endsAtMultipath(path string) byte {
	seg, last := 0, byte(0)
	for i := 0; i < len(path); i++ {
		switch c := path[i]; {
		case c == '\\':
			i++
			last = 0
		case c == '.' || c == '|':
			seg, last = i+1, 0
		case (c == '{' || c == '[') && i == seg:
			e := multipathClose(path[i:])
			if e < 0 {
				return 0
			}
			i += e
			last = c
		default:
			last = 0
		}
	}
	return last
}

// multipathClose is the index of the bracket that closes the multipath
// opening s (brackets and strings read as gjson reads them), or -1.
func multipathClose(s string) int {
	depth := 0
	for i := 0; i < len(s); i++ {
		switch s[i] {
		case '\\':
			i++
		case '"':
			e, ok := scanString(s, i+1)
			if !ok {
				return -1
			}
			i = e - 1 // (e: after the closing quote)
		case '{', '[':
			depth++
		case '}', ']':
			if depth--; depth == 0 {
				return i
			}
		}
	}
	return -1
}

// builds reports whether v is of the kind a multipath builds ('{' an
// object, '[' an array).
func builds(kind byte, v gjson.Result) bool {
	if kind == '{' {
		return v.IsObject()
	}
	return v.IsArray()
}

// lengthSeg says where a gjson path's last segment starts if it is a bare
// '#', which reads its array's length (escapes read as gjson reads them:
// in `a\\.#` the dot separates; review Z16); -1 if it is not.
func lengthSeg(path string) int {
	seg := 0
	for i := 0; i < len(path); i++ {
		switch path[i] {
		case '\\':
			i++
		case '.':
			seg = i + 1
		}
	}
	if path[seg:] != "#" {
		return -1
	}
	return seg
}

// patternLinear reports whether the value of a query's % (or !%) pattern
// at the start of rest is matched in time linear in the answer: one
// quoted string or bare text, up to where its query closes, with stars
// only at its ends. gjson's matcher backtracks over every star inside the
// text (*sorry*cannot*), quadratic in the answer's length, which a model
// repeating a word made seconds of a worker's CPU (review Z171). The value
// is read as gjson reads it, whole: to the bracket that closes its query,
// parentheses inside it balanced (review Z182).
func patternLinear(rest string) bool {
	rest = strings.TrimLeft(rest, " ")
	depth, end := 0, -1
	for i := 0; i < len(rest) && end < 0; i++ {
		switch rest[i] {
		case '\\':
			i++
		case '"':
			e, ok := scanString(rest, i+1)
			if !ok {
				return false
			}
			i = e - 1
		case '(', '[':
			depth++
		case ')', ']':
			if depth == 0 {
				end = i
			}
			depth--
		}
	}
	if end < 0 {
		return false
	}
	pat := strings.TrimRight(rest[:end], " ")
	if strings.HasPrefix(pat, `"`) {
		e, ok := scanString(pat, 1)
		if !ok || e != len(pat) {
			return false // a string and more after it
		}
		pat = pat[1 : e-1]
	} else if strings.Contains(pat, `"`) {
		return false
	}
	return !strings.Contains(strings.Trim(pat, "*"), "*")
}

// gjsonPath reads a gjson path of the configuration (gjsonPathOK).
func (p *parser) gjsonPath(path string, v gjson.Result) string {
	s := p.str(path, v)
	if v.Type == gjson.String && !gjsonPathOK(s) {
		p.badPath(path, s)
	}
	return s
}

// maxConfigPath bounds a gjson path of the configuration. Its checks read
// parts of it again (a pattern after each %, a query's end for each
// query), and an error about one inherited from defaults quotes it for
// each route: a path of 240 KB took seconds to refuse (review Z265). A
// path of a model's answer is a few segments.
const maxConfigPath = 1024

// badPath says why s (at path) is not a usable gjson path.
func (p *parser) badPath(path, s string) {
	if len(s) > maxConfigPath {
		p.fail(path, "is %d bytes: a gjson path holds at most %d", len(s), maxConfigPath)
		return
	}
	p.fail(path, "is not a usable gjson path: %q", s)
}

// gjsonPathOK refuses paths gjson would treat as modifiers or queries that
// have side effects on performance (e.g. @pretty) or can't be a field path:
// an empty one, an empty segment, a query (#(…)) or a multipath ([…], {…})
// left open, a dangling escape. gjson reads those as paths that match
// nothing, so a rule on one would hold or fail on every answer.
func gjsonPathOK(path string) bool {
	if path == "" || len(path) > maxConfigPath || strings.ContainsAny(path, "@|\x00") || strings.Contains(path, "..") || path[0] == '!' {
		// A path led by ! is a literal gjson reads instead of the
		// answer (!true, !0.99): a rule on it held on every answer or
		// on none, a confidence read every answer as its score (review
		// Z171).
		return false
	}
	if strings.HasPrefix(path, ".") || strings.HasSuffix(path, ".") {
		return false
	}
	depth, quoted := 0, false
	for i := 0; i < len(path); i++ {
		c := path[i]
		switch {
		case c == '\\':
			if i+1 == len(path) {
				return false
			}
			i++
		case quoted:
			quoted = c != '"'
		case depth > 0 && c == '"':
			quoted = true
		case c == '!' && (i+1 == len(path) || path[i+1] != '=' && path[i+1] != '%'):
			// A ! that is not a query's != or !% starts a literal gjson
			// reads instead of the answer (a multipath's member, named or
			// not, or a segment: [a,!true], {s:!0.99}, a.!true; reviews
			// Z178, Z182). A member named with ! is written \!.
			return false
		case c == '#' && i+1 < len(path) && path[i+1] == '[':
			// gjson's older query syntax, read as #(…): one spelling is
			// checked, so the other is refused (review Z182).
			return false
		case depth > 0 && c == '%':
			if !patternLinear(path[i+1:]) {
				return false
			}
		case c == '#' && i+1 < len(path) && path[i+1] == '(':
			depth++
			i++
		case depth > 0 && (c == '(' || c == '[' || c == '{'):
			depth++
		case (c == '[' || c == '{') && (i == 0 || path[i-1] == '.'):
			depth++
		case depth > 0 && (c == ')' || c == ']' || c == '}'):
			depth--
		}
	}
	return depth == 0 && !quoted
}

func (p *parser) confidence(path string, v gjson.Result) *Confidence {
	c := &Confidence{}
	p.fields(path, v, func(key string, val gjson.Result) bool {
		sub := join(path, key)
		switch key {
		case "path":
			c.Path = p.gjsonPath(sub, val)
			if len(c.Path) > maxConfigPath {
				break // refused (gjsonPath); its other checks read it again
			}
			if _, _, each := eachAt(c.Path); each || endsInEveryMatch(c.Path) {
				p.fail(sub, "crosses every element of an array (#): it reads a list of values, never one score")
			} else if endsAtMultipath(c.Path) != 0 {
				p.fail(sub, "ends at a multipath ({…} or […]): it reads an object or array it builds, never one score (review Z211)")
			}
		case "tiers":
			for i, tv := range p.array(sub, val) {
				tp := fmt.Sprintf("%s[%d]", sub, i)
				var t Tier
				var haveMin, haveTTL bool
				p.fields(tp, tv, func(key string, val gjson.Result) bool {
					switch key {
					case "min":
						t.Min, haveMin = p.exactFloat(join(tp, key), val), true
					case "ttl":
						t.TTL, haveTTL = p.duration(join(tp, key), val, time.Second, 365*24*time.Hour), true
					default:
						return false
					}
					return true
				})
				if !haveMin || !haveTTL {
					p.fail(tp, "needs both min and ttl")
				}
				c.Tiers = append(c.Tiers, t)
			}
		default:
			return false
		}
		return true
	})
	if c.Path == "" && !v.Get("path").Exists() {
		// (One written but unusable is reported as such, once: gjsonPath.)
		p.fail(path+".path", "is required: the gjson path of the score in the response")
	}
	if len(c.Tiers) == 0 {
		p.fail(path+".tiers", "must list at least one {min, ttl} tier")
	}
	sort.Slice(c.Tiers, func(i, j int) bool { return c.Tiers[i].Min > c.Tiers[j].Min })
	for i := 1; i < len(c.Tiers); i++ {
		if c.Tiers[i].Min == c.Tiers[i-1].Min {
			p.fail(path+".tiers", "two tiers share min %v", c.Tiers[i].Min)
		}
		// Lower confidence, shorter life: a tier of a lower min that keeps
		// its answers longer than one of a higher min can only be a
		// mistake (review Z153).
		if c.Tiers[i].TTL > c.Tiers[i-1].TTL {
			p.fail(path+".tiers", "the tier of min %v keeps answers %v, longer than the tier of min %v (%v): a lower score must not live longer", c.Tiers[i].Min, c.Tiers[i].TTL, c.Tiers[i-1].Min, c.Tiers[i-1].TTL)
		}
	}
	return c
}

// replayable checks that a response header may be kept in entries and
// replayed on hits: not one the filter sets on a hit itself (Cache-Status,
// Age, its own x-modelcache- headers, which an upstream could forge), nor
// framing, hop-by-hop or pseudo-headers, nor a cookie (one client's
// session, handed to every client the entry answers).
func (p *parser) replayable(path, name string) string {
	if name == "set-cookie" || name == "set-cookie2" {
		p.fail(path, "%q cannot be stored: one client's cookie would be replayed to every client of the entry", name)
		return name
	}
	if !replayableHeader(name) {
		p.fail(path, "%q cannot be stored: the filter sets it on a hit, or it frames the connection", name)
	}
	return name
}

func replayableHeader(name string) bool {
	switch name {
	case "cache-status", "age", "content-length", "transfer-encoding", "connection", "keep-alive",
		"te", "trailer", "upgrade", "proxy-connection", "proxy-authenticate", "proxy-authorization":
		return false
	}
	return name != "" && name[0] != ':' && !strings.HasPrefix(name, "x-modelcache-")
}

// duplicateMember reports whether v holds an object that names a member
// twice, at any depth.
func duplicateMember(v gjson.Result) bool {
	_, err := Canonicalize([]byte(v.Raw), nil)
	return errors.Is(err, ErrDuplicateKey)
}

// exactFloat is float for a bound a number is compared with exactly
// (numAtLeast, numAbove): compared with the bound as a float64 writes
// it, it must be written so.
func (p *parser) exactFloat(path string, val gjson.Result) float64 {
	f := p.float(path, val)
	if short := strconv.FormatFloat(f, 'g', -1, 64); val.Type == gjson.Number && !sameNumber(val.Raw, short) {
		p.fail(path, "has more digits than a float64 holds (%s is read as %s): write %s", val.Raw, short, short)
	}
	return f
}

// isLength reports whether v is a number an array's length can be: a
// whole number, not negative (equals 1.5 on one held on no answer; review
// Z178).
func isLength(v gjson.Result) bool {
	return v.Type == gjson.Number && v.Num >= 0 && v.Num == math.Trunc(v.Num)
}

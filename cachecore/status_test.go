package cachecore

import (
	"fmt"
	"regexp"
	"strings"
	"testing"
)

func TestCacheStatusHeader(t *testing.T) {
	tests := []struct {
		name string
		cs   CacheStatus
		want string
	}{
		{"none", CacheStatus{Status: StatusNone}, "modelcache"},
		{"hit", CacheStatus{Status: StatusHit, TTL: 287, HasTTL: true}, "modelcache; hit; ttl=287"},
		{"hit, last second", CacheStatus{Status: StatusHit, TTL: 0, HasTTL: true}, "modelcache; hit; ttl=0"},
		{"stale", CacheStatus{Status: StatusStale, TTL: -12, HasTTL: true}, "modelcache; hit; fwd=stale; ttl=-12"},
		{"stale if error", CacheStatus{Status: StatusStaleIfError, FwdStatus: 503, TTL: -40, HasTTL: true},
			"modelcache; hit; fwd=stale; fwd-status=503; ttl=-40; detail=stale-if-error"},
		{"collapsed", CacheStatus{Status: StatusCollapsed, FwdStatus: 200, TTL: 300, HasTTL: true},
			"modelcache; fwd=miss; collapsed; fwd-status=200; ttl=300"},
		{"miss stored", CacheStatus{Status: StatusMiss, FwdStatus: 200, Stored: true, TTL: 300, HasTTL: true},
			"modelcache; fwd=miss; fwd-status=200; stored; ttl=300"},
		{"miss, status refused", CacheStatus{Status: StatusMiss, FwdStatus: 503, Reason: ReasonStatus},
			"modelcache; fwd=miss; fwd-status=503; detail=status-503"},
		{"miss, status refused, unknown upstream status", CacheStatus{Status: StatusMiss, Reason: ReasonStatus},
			"modelcache; fwd=miss; detail=status"},
		{"miss, truncated answer", CacheStatus{Status: StatusMiss, FwdStatus: 200, Reason: ReasonFinishReason},
			"modelcache; fwd=miss; fwd-status=200; detail=finish-reason"},
		{"miss, not stored, no details", CacheStatus{Status: StatusMiss}, "modelcache; fwd=miss"},
		{"revalidate", CacheStatus{Status: StatusRevalidate, FwdStatus: 200, Stored: true, TTL: 300, HasTTL: true},
			"modelcache; fwd=request; fwd-status=200; stored; ttl=300"},
		{"bypass, no identity", CacheStatus{Status: StatusBypass, Reason: ReasonNoIdentity}, "modelcache; fwd=bypass; detail=no-identity"},
		{"bypass, body too large", CacheStatus{Status: StatusBypass, FwdStatus: 200, Reason: ReasonBodyTooLarge},
			"modelcache; fwd=bypass; fwd-status=200; detail=body-too-large"},
		{"unavailable", CacheStatus{Status: StatusUnavailable, FwdStatus: 504, Reason: ReasonNoIdentity, TTL: 3, HasTTL: true},
			"modelcache; fwd=miss; detail=only-if-cached"},
		{"leader failed", CacheStatus{Status: StatusLeaderFailed, FwdStatus: 503, Stored: true, TTL: 3, HasTTL: true},
			"modelcache; fwd=miss; collapsed; fwd-status=503; detail=leader-failed"},
		{"leader failed, status unknown", CacheStatus{Status: StatusLeaderFailed},
			"modelcache; fwd=miss; collapsed; detail=leader-failed"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := string(tc.cs.AppendHeader(nil, "modelcache")); got != tc.want {
				t.Fatalf("got  %q\nwant %q", got, tc.want)
			}
		})
	}
	t.Run("appends to dst", func(t *testing.T) {
		got := CacheStatus{Status: StatusHit, TTL: 1, HasTTL: true}.AppendHeader([]byte("upstream-cache; fwd=uri-miss, "), "edge")
		if string(got) != "upstream-cache; fwd=uri-miss, edge; hit; ttl=1" {
			t.Fatalf("got %q", got)
		}
	})
}

// The Structured Field (RFC 8941) grammar a Cache-Status parameter's parts
// must match: a token, a key, an integer (a parameter is a key and a
// bare-item value; a key alone is boolean true, §3.1.2).
var (
	sfToken   = regexp.MustCompile(`^[A-Za-z*][!#$%&'*+\-.^_` + "`" + `|~0-9A-Za-z:/]*$`)
	sfKey     = regexp.MustCompile(`^[a-z*][a-z0-9_\-.*]*$`)
	sfInteger = regexp.MustCompile(`^-?[0-9]{1,15}$`)
)

// TestCacheStatusShape renders every combination of status, reason and
// flags and checks the RFC 9211 shape: the cache's name as a token, then
// only RFC 9211 parameters, each at most once, with values of its type.
func TestCacheStatusShape(t *testing.T) {
	paramType := map[string]string{
		"hit": "bool", "fwd": "token", "fwd-status": "int", "ttl": "int",
		"stored": "bool", "collapsed": "bool", "key": "string", "detail": "token",
	}
	fwdValues := map[string]bool{"bypass": true, "method": true, "uri-miss": true, "vary-miss": true, "miss": true, "request": true, "stale": true, "partial": true}
	for s := StatusNone; s < numStatus; s++ {
		for r := ReasonNone; r < numReason; r++ {
			for _, fwd := range []int{0, 200, 503} {
				for _, flags := range []int{0, 1, 2, 3} {
					cs := CacheStatus{Status: s, Reason: r, FwdStatus: fwd, Stored: flags&1 != 0, HasTTL: flags&2 != 0, TTL: -7}
					v := string(cs.AppendHeader(nil, "modelcache"))
					parts := strings.Split(v, "; ")
					if parts[0] != "modelcache" {
						t.Fatalf("%+v: %q does not start with the cache name", cs, v)
					}
					seen := map[string]bool{}
					for _, p := range parts[1:] {
						key, val, hasVal := strings.Cut(p, "=")
						typ, known := paramType[key]
						switch {
						case !sfKey.MatchString(key) || !known:
							t.Fatalf("%+v: %q: unknown parameter %q", cs, v, key)
						case seen[key]:
							t.Fatalf("%+v: %q: parameter %q twice", cs, v, key)
						case typ == "bool" && hasVal:
							t.Fatalf("%+v: %q: boolean %q with a value", cs, v, key)
						case typ == "int" && !sfInteger.MatchString(val):
							t.Fatalf("%+v: %q: %q is not an integer", cs, v, key)
						case typ == "token" && !sfToken.MatchString(val):
							t.Fatalf("%+v: %q: %q is not a token", cs, v, key)
						case key == "fwd" && !fwdValues[val]:
							t.Fatalf("%+v: %q: fwd=%s is not an RFC 9211 value", cs, v, val)
						}
						seen[key] = true
					}
					if s == StatusHit && seen["fwd"] {
						t.Fatalf("%q: a fresh hit was not forwarded", v)
					}
					if (s == StatusMiss || s == StatusBypass || s == StatusRevalidate) && (seen["hit"] || !seen["fwd"]) {
						t.Fatalf("%q: a forwarded request must say fwd and not hit", v)
					}
				}
			}
		}
	}
}

var (
	snakeCase = regexp.MustCompile(`^[a-z]+(_[a-z0-9]+)*$`)
	kebabCase = regexp.MustCompile(`^[a-z]+(-[a-z0-9]+)*$`)
)

func TestReasonNames(t *testing.T) {
	if ReasonNone.String() != "" || ReasonNone.Detail() != "" {
		t.Errorf("ReasonNone renders as %q / %q", ReasonNone.String(), ReasonNone.Detail())
	}
	if numReason.String() != "unknown" || Reason(255).String() != "unknown" {
		t.Errorf("out-of-range reason: %q", numReason.String())
	}
	all := AllReasons()
	if len(all) != int(numReason)-1 {
		t.Fatalf("AllReasons has %d, want %d", len(all), numReason-1)
	}
	names, details := map[string]Reason{}, map[string]Reason{}
	for i, r := range all {
		if r == ReasonNone || (i > 0 && r <= all[i-1]) {
			t.Fatalf("AllReasons not strictly increasing without ReasonNone: %v", all)
		}
		name, detail := r.String(), r.Detail()
		if !snakeCase.MatchString(name) {
			t.Errorf("reason %d: %q is not snake_case", r, name)
		}
		if !kebabCase.MatchString(detail) {
			t.Errorf("reason %d: detail %q is not kebab-case", r, detail)
		}
		if detail != strings.ReplaceAll(name, "_", "-") {
			t.Errorf("reason %d: detail %q does not match name %q", r, detail, name)
		}
		if prev, dup := names[name]; dup {
			t.Errorf("reasons %d and %d share the name %q", prev, r, name)
		}
		if prev, dup := details[detail]; dup {
			t.Errorf("reasons %d and %d share the detail %q", prev, r, detail)
		}
		names[name], details[detail] = r, r
	}
}

func TestStatusNames(t *testing.T) {
	if numStatus.String() != "unknown" {
		t.Errorf("out-of-range status: %q", numStatus.String())
	}
	all := AllStatuses()
	if len(all) != int(numStatus)-1 || all[0] != StatusNone+1 {
		t.Fatalf("AllStatuses = %v", all)
	}
	seen := map[string]bool{StatusNone.String(): true}
	for _, s := range all {
		name := s.String()
		if !snakeCase.MatchString(name) || seen[name] {
			t.Errorf("status %d: name %q not snake_case or not unique", s, name)
		}
		seen[name] = true
	}
	for s, want := range map[Status]string{StatusNone: "none", StatusHit: "hit", StatusMiss: "miss", StatusBypass: "bypass", StatusStaleIfError: "stale_if_error"} {
		if s.String() != want {
			t.Errorf("%d.String() = %q, want %q", s, s.String(), want)
		}
	}
}

// TestOutcomeOf pins what followers of a leader learn from each refusal:
// lasting reasons (the same request would meet them again) make the key
// hit-for-miss; passing ones let a follower lead next.
func TestOutcomeOf(t *testing.T) {
	tests := []struct {
		reason Reason
		status int
		want   Outcome
	}{
		{ReasonNone, 200, OutcomeStored},
		{ReasonNoStore, 200, OutcomeUncacheable},
		{ReasonPrivate, 200, OutcomeUncacheable},
		{ReasonNotJSON, 200, OutcomeUncacheable},
		{ReasonTooLarge, 200, OutcomeUncacheable},
		{ReasonTooDeep, 200, OutcomeUncacheable}, // a model asked to print brackets prints them again
		{ReasonFinishReason, 200, OutcomeUncacheable},
		{ReasonLowConfidence, 200, OutcomeUncacheable},
		{ReasonNoConfidence, 200, OutcomeUncacheable},
		{ReasonStatus, 400, OutcomeUncacheable},
		{ReasonStatus, 404, OutcomeUncacheable},
		{ReasonStatus, 408, OutcomeFailed},
		{ReasonStatus, 429, OutcomeFailed},
		{ReasonStatus, 500, OutcomeFailed},
		{ReasonStatus, 503, OutcomeFailed},
		{ReasonUpstreamReset, 0, OutcomeFailed},
		{ReasonUpstreamTimeout, 0, OutcomeFailed},
		{ReasonTruncated, 200, OutcomeFailed},
		{ReasonMalformedJSON, 200, OutcomeFailed},
		{ReasonErrorPayload, 200, OutcomeFailed}, // a late failure: another try may succeed
		{ReasonValidation, 200, OutcomeFailed},
	}
	for _, tt := range tests {
		if got := OutcomeOf(tt.reason, tt.status); got != tt.want {
			t.Errorf("OutcomeOf(%v, %d) = %v, want %v", tt.reason, tt.status, got, tt.want)
		}
	}
}

// Cache-Status values sent before are handed out again without a copy;
// the memo stays bounded and never changes a value.
func TestStatusStringsAreKeptBounded(t *testing.T) {
	c := &Cache{}
	for i := 0; i < 2*maxStatusStrings; i++ {
		b := []byte(fmt.Sprintf("modelcache; fwd=uri-miss; ttl=%d", i))
		if got := c.statusString(b); got != string(b) {
			t.Fatalf("%q became %q", b, got)
		}
		b[0] = 'X' // the caller's buffer is reused: the value must not follow it
		if got := c.statusString([]byte(fmt.Sprintf("modelcache; fwd=uri-miss; ttl=%d", i))); got[0] != 'm' {
			t.Fatalf("a kept value changed with its buffer: %q", got)
		}
	}
	if len(c.statuses) != maxStatusStrings {
		t.Fatalf("%d values kept, want %d", len(c.statuses), maxStatusStrings)
	}
	fresh, b := &Cache{}, []byte("modelcache; fwd=bypass")
	fresh.statusString(b)
	if n := testing.AllocsPerRun(100, func() { fresh.statusString(b) }); n != 0 {
		t.Fatalf("%v allocations for a value sent before", n)
	}
}

// statusValue renders every status as AppendHeader does, whatever shares
// its place in the memo, and a status sent again is answered from the
// memo: not rendered, not looked up by its text.
func TestStatusValueMemo(t *testing.T) {
	c := &Cache{cfg: &Config{CacheName: "modelcache"}}
	var all []CacheStatus
	for st := StatusHit; st <= StatusLeaderFailed; st++ {
		for _, r := range []Reason{ReasonNone, ReasonNoStore, ReasonStatus, ReasonTruncated} {
			for _, fwd := range []int{0, 200, 503} {
				all = append(all, CacheStatus{Status: st, Reason: r, FwdStatus: fwd},
					CacheStatus{Status: st, Reason: r, FwdStatus: fwd, Stored: true, TTL: 300, HasTTL: true},
					CacheStatus{Status: st, Reason: r, FwdStatus: fwd, TTL: -1, HasTTL: true, L2: true})
			}
		}
	}
	for round := 0; round < 2; round++ {
		for _, cs := range all {
			if got, want := c.statusValue(cs), string(cs.AppendHeader(nil, "modelcache")); got != want {
				t.Fatalf("statusValue(%+v) = %q, want %q", cs, got, want)
			}
		}
	}
	cs := CacheStatus{Status: StatusBypass, Reason: ReasonNoStore}
	want := c.statusValue(cs)
	c.statuses = nil
	if got := c.statusValue(cs); got != want || c.statuses != nil {
		t.Fatalf("a status sent again: %q (want %q), looked up by its text: %v", got, want, c.statuses != nil)
	}
}

// statusValue is statusValueOf of a status passed by value, as the tests
// build them.
func (c *Cache) statusValue(cs CacheStatus) string { return c.statusValueOf(&cs) }

package cachecore

import (
	"math/rand/v2"
	"strings"
	"testing"
	"time"
)

func TestParseRequestCC(t *testing.T) {
	s := time.Second
	tests := []struct {
		name string
		in   string
		want RequestCC
	}{
		{"empty", "", RequestCC{}},
		{"only separators", " , ,, ", RequestCC{}},
		{"no-store", "no-store", RequestCC{NoStore: true}},
		{"upper case", "NO-STORE", RequestCC{NoStore: true}},
		{"mixed case", "No-Cache", RequestCC{NoCache: true}},
		{"only-if-cached", "only-if-cached", RequestCC{OnlyIfCached: true}},
		{"several with spacing", "  no-cache ,only-if-cached,  max-age=5 ", RequestCC{NoCache: true, OnlyIfCached: true, MaxAge: 5 * s, HasMaxAge: true}},
		{"empty members", ",,no-store,", RequestCC{NoStore: true}},
		{"max-age", "max-age=60", RequestCC{MaxAge: 60 * s, HasMaxAge: true}},
		{"max-age zero", "max-age=0", RequestCC{HasMaxAge: true}},
		{"max-age quoted", `max-age="60"`, RequestCC{MaxAge: 60 * s, HasMaxAge: true}},
		{"spaces around =", "max-age = 60", RequestCC{MaxAge: 60 * s, HasMaxAge: true}},
		{"upper-case name", "MAX-AGE=7", RequestCC{MaxAge: 7 * s, HasMaxAge: true}},
		{"max-age malformed is 0", "max-age=soon", RequestCC{HasMaxAge: true}},
		{"max-age negative is 0", "max-age=-1", RequestCC{HasMaxAge: true}},
		{"max-age fraction is 0", "max-age=1.5", RequestCC{HasMaxAge: true}},
		{"max-age plus sign is 0", "max-age=+5", RequestCC{HasMaxAge: true}},
		{"max-age without value is 0", "max-age", RequestCC{HasMaxAge: true}},
		{"max-age empty value is 0", "max-age=", RequestCC{HasMaxAge: true}},
		{"max-age largest 32-bit", "max-age=4294967295", RequestCC{MaxAge: 4294967295 * s, HasMaxAge: true}},
		{"max-stale without value", "max-stale", RequestCC{HasMaxStale: true, MaxStaleAny: true}},
		{"max-stale with value", "max-stale=30", RequestCC{MaxStale: 30 * s, HasMaxStale: true}},
		{"max-stale quoted", `max-stale="30"`, RequestCC{MaxStale: 30 * s, HasMaxStale: true}},
		{"max-stale empty value", "max-stale=", RequestCC{HasMaxStale: true}},
		{"max-stale malformed", "max-stale=lots", RequestCC{HasMaxStale: true}},
		{"min-fresh", "min-fresh=10", RequestCC{MinFresh: 10 * s, HasMinFresh: true}},
		{"unknown directives ignored", "no-transform, foo=bar, x-custom, no-store", RequestCC{NoStore: true}},
		{"unknown directive with a quoted comma", `foo="a,b", no-cache`, RequestCC{NoCache: true}},
		{"response-only directives ignored", "private, public, must-revalidate, s-maxage=9", RequestCC{}},
		{"prefix of a directive is not it", "no-stored, max-ages=5, no", RequestCC{}},
		{"all of them", "no-store, no-cache, only-if-cached, max-age=1, max-stale=2, min-fresh=3",
			RequestCC{NoStore: true, NoCache: true, OnlyIfCached: true, MaxAge: s, HasMaxAge: true, MaxStale: 2 * s, HasMaxStale: true, MinFresh: 3 * s, HasMinFresh: true}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := ParseRequestCC(tc.in); got != tc.want {
				t.Fatalf("ParseRequestCC(%q) =\n %+v\nwant\n %+v", tc.in, got, tc.want)
			}
		})
	}
}

// TestParseRequestCCOverflow: RFC 9111 §1.2.2 — a delta-seconds too large
// to represent MUST be taken as 2147483648 (2^31), not as 0. Reading an
// overflowing min-fresh as 0 serves an entry the client said is not fresh
// enough; an overflowing max-stale as 0 refuses what the client accepts.
func TestParseRequestCCOverflow(t *testing.T) {
	const big = "99999999999999999999"
	atLeast := time.Duration(1<<31) * time.Second
	tests := []struct {
		in  string
		get func(RequestCC) (time.Duration, bool)
	}{
		{"min-fresh=" + big, func(cc RequestCC) (time.Duration, bool) { return cc.MinFresh, cc.HasMinFresh }},
		{"min-fresh=4294967296", func(cc RequestCC) (time.Duration, bool) { return cc.MinFresh, cc.HasMinFresh }},
		{"max-stale=" + big, func(cc RequestCC) (time.Duration, bool) { return cc.MaxStale, cc.HasMaxStale && !cc.MaxStaleAny }},
		{"max-age=" + big, func(cc RequestCC) (time.Duration, bool) { return cc.MaxAge, cc.HasMaxAge }},
	}
	for _, tc := range tests {
		t.Run(tc.in, func(t *testing.T) {
			if d, ok := tc.get(ParseRequestCC(tc.in)); !ok || d < atLeast {
				t.Fatalf("ParseRequestCC(%q) = %v (present %v), want at least %v", tc.in, d, ok, atLeast)
			}
		})
	}
}

func TestParseResponseCC(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want ResponseCC
	}{
		{"empty", "", ResponseCC{}},
		{"no-store", "no-store", ResponseCC{NoStore: true}},
		{"upper case with spaces", "  NO-STORE  ", ResponseCC{NoStore: true}},
		{"private", "private", ResponseCC{Private: true}},
		{"private with field names", `private="set-cookie"`, ResponseCC{Private: true}},
		{"private with a value and spacing", `Private = "x"`, ResponseCC{Private: true}},
		{"both", "private, no-store", ResponseCC{NoStore: true, Private: true}},
		{"public with max-age", "public, max-age=600", ResponseCC{}},
		{"s-maxage and must-revalidate", "s-maxage=60, must-revalidate", ResponseCC{}},
		{"unknown extension", "x-foo=1, no-store", ResponseCC{NoStore: true}},
		{"prefixes are not directives", "privately, no-stored", ResponseCC{}},
		{"empty members", ",,private,,", ResponseCC{Private: true}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := ParseResponseCC(tc.in); got != tc.want {
				t.Fatalf("ParseResponseCC(%q) = %+v, want %+v", tc.in, got, tc.want)
			}
		})
	}
}

// FuzzParseCacheControl: no input panics, and a parsed directive list
// never reports a value without its presence flag.
func FuzzParseCacheControl(f *testing.F) {
	for _, s := range []string{"no-store", "max-age=60, max-stale", `private="a,b"`, "min-fresh=99999999999999999999", ",,=,", `max-age="`} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, v string) {
		cc := ParseRequestCC(v)
		if cc.MaxAge != 0 && !cc.HasMaxAge || cc.MinFresh != 0 && !cc.HasMinFresh || (cc.MaxStale != 0 || cc.MaxStaleAny) && !cc.HasMaxStale {
			t.Fatalf("%q: value without its flag: %+v", v, cc)
		}
		if cc.MaxAge < 0 || cc.MinFresh < 0 || cc.MaxStale < 0 {
			t.Fatalf("%q: negative duration: %+v", v, cc)
		}
		// Every value reads as strings' Unicode-aware parse reads it: the
		// ASCII path stands in for it on ASCII values.
		if want := parseRequestCCUnicode(v); cc != want {
			t.Fatalf("ParseRequestCC(%q) = %+v, the Unicode-aware parse %+v", v, cc, want)
		}
		if got, want := ParseResponseCC(v), parseResponseCCUnicode(v); got != want {
			t.Fatalf("ParseResponseCC(%q) = %+v, the Unicode-aware parse %+v", v, got, want)
		}
	})
}

// TestCacheControlASCIIPathsAgree: on ASCII values the parsers' ASCII
// paths decide exactly as the Unicode-aware ones (strings' Cut, TrimSpace,
// Trim, ToLower) they stand in for, on directive lists built from the
// pieces where the two could part: case, every ASCII space TrimSpace
// trims, quotes, '=' and ',' in odd places.
func TestCacheControlASCIIPathsAgree(t *testing.T) {
	pieces := []string{
		"no-store", "No-Store", "NO-STORE", "no-cache", "NO-cache", "only-if-cached", "Only-If-Cached",
		"max-age", "MAX-AGE", "max-stale", "Max-Stale", "min-fresh", "MIN-FRESH", "private", "PRIVATE", "public",
		"=", "=", ",", ",", `"`, " ", "\t", "\n", "\v", "\f", "\r", "0", "60", "99999999999", "-1", "x", "no", "-store",
	}
	rng := rand.New(rand.NewPCG(1, 2))
	for n := 0; n < 200000; n++ {
		var b strings.Builder
		for k := rng.IntN(9); k >= 0; k-- {
			b.WriteString(pieces[rng.IntN(len(pieces))])
		}
		v := b.String()
		if got, want := ParseRequestCC(v), parseRequestCCUnicode(v); got != want {
			t.Fatalf("ParseRequestCC(%q) = %+v, the Unicode-aware parse %+v", v, got, want)
		}
		if got, want := ParseResponseCC(v), parseResponseCCUnicode(v); got != want {
			t.Fatalf("ParseResponseCC(%q) = %+v, the Unicode-aware parse %+v", v, got, want)
		}
	}
	// The values read without the parser read as the parser reads them.
	for _, v := range []string{"no-store", "no-cache", "private"} {
		if got, want := ParseRequestCC(v), parseRequestCCUnicode(v); got != want {
			t.Fatalf("ParseRequestCC(%q) = %+v, the parse %+v", v, got, want)
		}
		if got, want := ParseResponseCC(v), parseResponseCCUnicode(v); got != want {
			t.Fatalf("ParseResponseCC(%q) = %+v, the parse %+v", v, got, want)
		}
	}
	// A non-ASCII value takes the Unicode-aware path: U+00A0 trims there.
	if got := ParseResponseCC("no-store\u00a0"); !got.NoStore {
		t.Fatalf("ParseResponseCC with a trailing U+00A0 = %+v, want NoStore", got)
	}
	if got := ParseRequestCC("\u00a0NO-STORE"); !got.NoStore {
		t.Fatalf("ParseRequestCC with a leading U+00A0 = %+v, want NoStore", got)
	}
}

// parseRequestCCUnicode and parseResponseCCUnicode read every value the
// Unicode-aware way: the reference the ASCII path is held to.
func parseRequestCCUnicode(v string) RequestCC { return parseRequestCC(v, true) }

func parseResponseCCUnicode(v string) ResponseCC {
	cc, _ := parseResponseCC(v, true)
	return cc
}

// TestQuotedArgumentCommasAreNotDirectives: RFC 9111 §5.2 lets an
// extension directive take a quoted-string argument (RFC 9110 §5.6.4),
// and a comma inside it separates nothing: the text quoted is not read
// as directives (a client's or upstream's extension could otherwise turn
// on only-if-cached, max-stale or no-store).
func TestQuotedArgumentCommasAreNotDirectives(t *testing.T) {
	for _, v := range []string{
		`ext="a, only-if-cached, b"`,
		`ext="a, max-stale, b"`,
		`ext="a, no-store, b"`,
		`ext = "a,no-cache"`,
		`ext="a\", only-if-cached"`,
	} {
		if cc := ParseRequestCC(v); cc != (RequestCC{}) {
			t.Errorf("ParseRequestCC(%q) = %+v, want no directive", v, cc)
		}
		if cc := ParseResponseCC(strings.ReplaceAll(v, "only-if-cached", "private")); cc != (ResponseCC{}) {
			t.Errorf("ParseResponseCC(%q) = %+v, want no directive", v, cc)
		}
	}
	// What follows the quoted argument is read.
	if cc := ParseRequestCC(`ext="a, b", only-if-cached`); !cc.OnlyIfCached || cc.NoStore {
		t.Errorf("directive after a quoted argument: %+v", cc)
	}
	if cc := ParseResponseCC(`no-cache="set-cookie, x", private`); !cc.Private {
		t.Errorf("private after a quoted field list: %+v", cc)
	}
}

// TestDirectiveNamesAreASCIITokens: a directive name is a token (ASCII);
// a name with other letters is an unknown directive, however Unicode
// would lower-case it ("İ" lower-cases to "i").
func TestDirectiveNamesAreASCIITokens(t *testing.T) {
	for _, v := range []string{"ONLY-\u0130F-CACHED", "only-\u0130f-cached", "no-\u017ftore"} {
		if cc := ParseRequestCC(v); cc != (RequestCC{}) {
			t.Errorf("ParseRequestCC(%q) = %+v, want no directive", v, cc)
		}
	}
	if cc := ParseResponseCC("pr\u0130vate"); cc != (ResponseCC{}) {
		t.Errorf("ParseResponseCC(pr\\u0130vate) = %+v, want no directive", cc)
	}
}

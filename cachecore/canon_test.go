package cachecore

import (
	"encoding/json"
	"errors"
	"fmt"
	"math/bits"
	"reflect"
	"strings"
	"testing"
)

func mustCanon(t *testing.T, body string, sel *Selection) string {
	t.Helper()
	out, err := Canonicalize([]byte(body), sel)
	if err != nil {
		t.Fatalf("Canonicalize(%s): %v", body, err)
	}
	return string(out)
}

func TestCanonicalForm(t *testing.T) {
	tests := []struct {
		name, in, want string
	}{
		{"key order", `{"b":1,"a":2}`, `{"a":2,"b":1}`},
		{"whitespace", " {\n\t\"a\" : [ 1 , 2 ] } ", `{"a":[1,2]}`},
		{"nested order", `{"z":{"y":1,"x":{"b":true,"a":null}}}`, `{"z":{"x":{"a":null,"b":true},"y":1}}`},
		{"array order kept", `[3,1,2]`, `[3,1,2]`},
		{"int", `1`, `1`},
		{"float one", `1.0`, `1.0`},
		{"exp one", `1e0`, `1.0`},
		{"exp shifted", `10e-1`, `1.0`},
		{"hundred", `1e2`, `100.0`},
		{"half", `5e-1`, `0.5`},
		{"small", `0.000001`, `0.000001`},
		{"tiny", `0.0000001`, `1e-7`},
		{"huge", `1e30`, `1e30`},
		{"negative zero", `-0.0`, `-0.0`},
		{"negative integer zero", `-0`, `-0`},
		{"positive float zero", `0.000e5`, `0.0`},
		{"negative", `-2.50`, `-2.5`},
		{"big int exact", `12345678901234567890`, `12345678901234567890`},
		{"long fraction exact", `0.1000000000000000055511151231257827`, `0.1000000000000000055511151231257827`},
		{"unicode escape", `"\u0041\u00e9"`, `"Aé"`},
		{"surrogate pair", `"\ud83d\ude00"`, `"😀"`},
		{"lone surrogate kept", `"\uD800x"`, `"\ud800x"`},
		{"escapes minimal", `"a\/b\"c\\\n"`, `"a/b\"c\\\n"`},
		{"control escaped", `"\u0001"`, `"\u0001"`},
		{"empty containers", `{"a":{},"b":[]}`, `{"a":{},"b":[]}`},
		{"literals", `[true,false,null]`, `[true,false,null]`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := mustCanon(t, tc.in, nil); got != tc.want {
				t.Fatalf("got %s want %s", got, tc.want)
			}
		})
	}
}

func TestCanonicalSelection(t *testing.T) {
	in := `{"model":"m","user":"alice","messages":[{"role":"user","content":"hi"}],"temperature":0}`
	if got := mustCanon(t, in, &Selection{Ignore: []string{"user"}}); got != `{"messages":[{"content":"hi","role":"user"}],"model":"m","temperature":0}` {
		t.Fatalf("ignore: %s", got)
	}
	if got := mustCanon(t, in, &Selection{Only: []string{"model"}}); got != `{"model":"m"}` {
		t.Fatalf("only: %s", got)
	}
	// Selection applies to the top level only.
	nested := `{"a":{"user":1}}`
	if got := mustCanon(t, nested, &Selection{Ignore: []string{"user"}}); got != `{"a":{"user":1}}` {
		t.Fatalf("nested: %s", got)
	}
}

func TestCanonicalErrors(t *testing.T) {
	tests := []struct {
		name, in string
		want     error
	}{
		{"empty", ``, ErrMalformedJSON},
		{"trailing garbage", `{} x`, ErrMalformedJSON},
		{"trailing comma", `{"a":1,}`, ErrMalformedJSON},
		{"unquoted key", `{a:1}`, ErrMalformedJSON},
		{"raw control", "\"a\x01\"", ErrMalformedJSON},
		{"bad escape", `"\x"`, ErrMalformedJSON},
		{"short unicode", `"\u12"`, ErrMalformedJSON},
		{"leading zero", `01`, ErrMalformedJSON},
		{"bare minus", `-`, ErrMalformedJSON},
		{"dot only", `1.`, ErrMalformedJSON},
		{"exp only", `1e`, ErrMalformedJSON},
		{"unterminated", `{"a":"b`, ErrMalformedJSON},
		{"duplicate", `{"a":1,"a":2}`, ErrDuplicateKey},
		{"duplicate via escape", `{"a":1,"\u0061":2}`, ErrDuplicateKey},
		{"too deep", strings.Repeat("[", 100) + strings.Repeat("]", 100), ErrTooDeep},
		{"exponent range", `1e99999999999`, ErrNumberRange},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := Canonicalize([]byte(tc.in), nil); err != tc.want {
				t.Fatalf("err = %v, want %v", err, tc.want)
			}
		})
	}
}

func TestCanonicalEquivalentBodiesShareForm(t *testing.T) {
	a := `{"model":"gpt","messages":[{"role":"user","content":"Hi"}],"temperature":1.0,"seed":42}`
	b := "{ \"seed\" : 42,\n \"temperature\":10e-1, \"messages\":[{\"content\":\"\\u0048i\",\"role\":\"user\"}], \"model\":\"gpt\" }"
	if mustCanon(t, a, nil) != mustCanon(t, b, nil) {
		t.Fatal("equivalent bodies differ")
	}
	for _, diff := range []string{
		`{"model":"gpt2","messages":[{"role":"user","content":"Hi"}],"temperature":1.0,"seed":42}`,
		`{"model":"gpt","messages":[{"role":"user","content":"Hi!"}],"temperature":1.0,"seed":42}`,
		`{"model":"gpt","messages":[{"role":"user","content":"Hi"}],"temperature":0.9,"seed":42}`,
		`{"model":"gpt","messages":[{"role":"user","content":"Hi"}],"temperature":1.0,"seed":43}`,
		`{"model":"gpt","messages":[{"role":"user","content":"Hi"}],"temperature":1.0,"seed":42,"tools":[]}`,
	} {
		if mustCanon(t, a, nil) == mustCanon(t, diff, nil) {
			t.Fatalf("different body shares the form: %s", diff)
		}
	}
}

func TestCanonicalizerReuse(t *testing.T) {
	var c Canonicalizer
	var buf []byte
	for i := 0; i < 3; i++ {
		out, err := c.Append(buf[:0], []byte(`{"b":[{"d":1,"c":2}],"a":1}`), nil)
		if err != nil || string(out) != `{"a":1,"b":[{"c":2,"d":1}]}` {
			t.Fatalf("round %d: %s %v", i, out, err)
		}
		buf = out
	}
}

// FuzzCanonicalize checks, for any input: canonicalisation is idempotent, its
// output is valid JSON, and it means the same as the input to encoding/json.
func FuzzCanonicalize(f *testing.F) {
	for _, s := range []string{
		`{"model":"m","messages":[{"role":"user","content":"hi"}],"temperature":0.7}`,
		`[1,2.50,-0,1e3,"\u00e9\ud83d\ude00"]`, `{"a":{"b":{"c":[null,true,false]}}}`,
		`"\uD800"`, `0.1e-7`, `{}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		out, err := Canonicalize(in, nil)
		if err != nil {
			return
		}
		again, err := Canonicalize(out, nil)
		if err != nil || string(again) != string(out) {
			t.Fatalf("not idempotent: %q -> %q -> %q (%v)", in, out, again, err)
		}
		var a, b any
		if err := json.Unmarshal(in, &a); err != nil {
			var rangeErr *json.UnmarshalTypeError
			if errors.As(err, &rangeErr) {
				return // valid JSON, but a number beyond float64 (1e700)
			}
			t.Fatalf("accepted invalid JSON %q: %v", in, err)
		}
		if err := json.Unmarshal(out, &b); err != nil {
			t.Fatalf("output is not JSON: %q: %v", out, err)
		}
		if !reflect.DeepEqual(a, b) {
			t.Fatalf("meaning changed: %q -> %q", in, out)
		}
	})
}

func BenchmarkCanonicalize(b *testing.B) {
	body := []byte(sampleChatRequest)
	var c Canonicalizer
	var buf []byte
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		buf, _ = c.Append(buf[:0], body, &Selection{Ignore: []string{"user"}})
	}
}

// sampleChatRequest is a 1.7 KB OpenAI-style request, the size perf-anchors
// B8 measured.
var sampleChatRequest = `{"model":"gpt-4o-mini","temperature":0.2,"top_p":1,"max_tokens":256,"user":"u-123",` +
	`"messages":[{"role":"system","content":"You are a careful assistant that answers questions about shipping policies, returns, and order status. Answer briefly and cite the policy section when you can."},` +
	`{"role":"user","content":"` + strings.Repeat("Where is my order #12345? It was supposed to arrive on Monday. ", 18) + `"},` +
	`{"role":"assistant","content":"Let me check that for you."},{"role":"user","content":"Thanks, please also tell me the return window."}],` +
	`"response_format":{"type":"text"},"seed":7}`

func TestCanonicalCapture(t *testing.T) {
	var c Canonicalizer
	sel := Selection{Ignore: []string{"user"}, Capture: []string{"stream", "model", "user"}}
	out, err := c.Append(nil, []byte(`{"user":"u","stream":true,"model":"g\u0070t","x":1}`), &sel)
	if err != nil || string(out) != `{"model":"gpt","stream":true,"x":1}` {
		t.Fatalf("%s %v", out, err)
	}
	for i, want := range []string{"true", `"gpt"`, `"u"`} {
		if v, ok := c.Captured(i); !ok || string(v) != want {
			t.Fatalf("capture %d = %s %v, want %s", i, v, ok, want)
		}
	}
	if _, err := c.Append(nil, []byte(`{"x":{"stream":true}}`), &sel); err != nil {
		t.Fatal(err)
	}
	if _, ok := c.Captured(0); ok {
		t.Fatal("a nested member was captured, or a capture survived into the next body")
	}
}

func TestPlainRun(t *testing.T) {
	for _, tc := range []struct {
		in   string
		from int
		want int
	}{
		{`abcdefghijklmnop`, 0, 16},
		{`abcdefgh"ijk`, 0, 8},
		{`ab"`, 0, 2},
		{"abcdefghijklmn\x1f", 0, 14},
		{`abcdefghij\klmnop`, 0, 10},
		{"\xff\xfe\x80\x81\xc3\xa9xyz\"", 0, 9}, // high bytes are plain
		{`"abc"`, 1, 4},
		{``, 0, 0},
	} {
		if got := plainRun([]byte(tc.in), tc.from); got != tc.want {
			t.Errorf("plainRun(%q, %d) = %d, want %d", tc.in, tc.from, got, tc.want)
		}
	}
}

// The work of canonicalising is bounded by the body's size: an object with
// many members, in the worst order for sorting, costs O(n log n) key
// comparisons, not O(n²) (18,000 reverse-ordered keys took 2.2 s natively
// with an insertion sort — seconds of a worker's CPU per request under V8).
func TestCanonicalManyMembersBoundedWork(t *testing.T) {
	for _, n := range []int{10, 100, 5000} {
		var b strings.Builder
		b.WriteString(`{"model":"m","x":{`)
		for i := n; i > 0; i-- {
			if i != n {
				b.WriteByte(',')
			}
			fmt.Fprintf(&b, `"%05d":1`, i)
		}
		b.WriteString(`}}`)
		var c Canonicalizer
		if _, err := c.Append(nil, []byte(b.String()), &Selection{}); err != nil {
			t.Fatal(err)
		}
		limit := 4*n*bits.Len(uint(n)) + 64
		if c.keyCompares > limit {
			t.Errorf("%d members: %d key comparisons, over %d", n, c.keyCompares, limit)
		}
		// Duplicates are still found wherever they are.
		dup := strings.Replace(b.String(), `"00001":1`, `"00002":1`, 1)
		if _, err := c.Append(nil, []byte(dup), &Selection{}); !errors.Is(err, ErrDuplicateKey) {
			t.Errorf("%d members with a duplicate: err %v", n, err)
		}
	}
}

// README, Keys: "Requests with a
// duplicate member name anywhere ... bypass the cache (duplicate_key)".
// A top-level member the selection drops (ignore_fields, or not in
// key_fields) is cut from the output before sortMembers' duplicate check,
// so its duplicates pass.
func TestCanonDuplicateOfUnselectedMemberIsRefused(t *testing.T) {
	for _, tc := range []struct {
		name string
		sel  Selection
		body string
	}{
		{"ignored member", Selection{Ignore: []string{"user"}}, `{"model":"m","user":"a","user":"b"}`},
		{"member outside key_fields", Selection{Only: []string{"model"}}, `{"model":"m","input":"a","input":"b"}`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			out, err := Canonicalize([]byte(tc.body), &tc.sel)
			if err != ErrDuplicateKey {
				t.Fatalf("Canonicalize(%s) = %s, %v; want ErrDuplicateKey", tc.body, out, err)
			}
		})
	}
}

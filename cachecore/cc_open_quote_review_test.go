package cachecore

import "testing"

// The mend for an unclosed quoted argument counts every '"' in the value,
// but the directive splitter (cutDirective) opens a quoted-string only
// right after '='. A stray quote inside a token argument evens the count,
// and a later argument's quote that never closes then swallows no-store.
func TestResponseCCOpenQuoteAfterAStrayQuoteIsNotStored(t *testing.T) {
	for _, v := range []string{
		`x=a"b, y="c, no-store`,
		`x=a"b, y="c, private`,
		`a"="b, no-store`,
	} {
		cc := ParseResponseCC(v)
		if !cc.NoStore && !cc.Private {
			t.Errorf("ParseResponseCC(%q) = %+v: a quoted argument that never closes hides a no-store/private, and the answer is stored", v, cc)
		}
	}
}

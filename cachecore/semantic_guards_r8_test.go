package cachecore

import (
	"strings"
	"testing"
	"time"
)

// Review R8 (stop 71): holes in the mends d9bf8d2 (code fragments) and 6a68312
// (asksAFavour, particles, describing). vetoes decides alone, as in the
// earlier guard reviews.

// Bounded work (TestGuardsWorkIsLinearInTheTurn): the guards' work grows
// with the turns' length, not with its square. isCodeFragment calls
// shortRun at every hyphen of a word, and shortRun converts the whole
// rest of the word before or after that hyphen to []rune before looking
// at its three letters nearest the hyphen: a 16 KiB turn that is one
// hyphenated run ("a-a-a-…") costs n²/2 rune conversions and allocations,
// per candidate, inside the worker's callback.
func TestGuardsWorkIsLinearInAHyphenatedWord(t *testing.T) {
	const n = 16 << 10
	g := &Guards{Numbers: true, Negation: true, Entities: true}
	best := func(u string) time.Duration {
		s := strings.Repeat(u, n/len(u))
		var d time.Duration
		for i := 0; i < 3; i++ {
			t0 := time.Now()
			vetoes(g, s, s)
			if e := time.Since(t0); i == 0 || e < d {
				d = e
			}
		}
		return d
	}
	plain := best("x ")
	for _, u := range []string{"a-", "abcd-", "é-"} {
		if got := best(u); got > 4*plain {
			t.Errorf("%q repeated: %v for two turns of %d bytes, over 4 × %v (as many plain words)", u, got, n, plain)
		}
	}
}

// README: "a yes/no question opened by another kind of modal when both
// are …; \"can you please explain\" is a request, framing". asksAFavour now
// takes any "your" after the framing verb for a question about what one
// may do ("can you tell your boss"), so a request to explain or tell the
// addressee's own things is no longer a request: "would you please explain
// your code" (class fact) against "can you please explain your code"
// (class can) is vetoed. Both passed before 6a68312.
func TestGuardsPassARequestAboutTheAddresseesOwnThings(t *testing.T) {
	for _, c := range [][2]string{
		{"Would you please explain your code?", "Can you please explain your code?"},
		{"Could you explain your reasoning?", "Would you explain your reasoning?"},
		{"Will you tell me your name?", "Can you tell me your name?"},
		{"Can you tell me about yourself?", "Would you tell me about yourself?"},
	} {
		if v := vetoes(&allGuards, c[0], c[1]); v != 0 {
			t.Errorf("%q / %q: vetoed (%v)", c[0], c[1], v)
		}
	}
}

// README: "can felons vote" ≠ "should felons vote", "must I tell my
// employer" ≠ "should I tell …". asksAFavour takes any subject pronoun
// followed by "ask" for a favour ("could I ask …"), so "can I ask my boss
// for a raise" (may I: a question about what one may do, as "can you
// tell your boss" is) has no modal class and is never compared with
// "should I ask my boss for a raise" (advice). R7's "your" exception was
// made for "you" only.
func TestGuardsVetoModalOfAskingSomeoneElse(t *testing.T) {
	// control: asking the addressee is a request, framing
	if v := vetoes(&allGuards, "Could I ask you a question?", "Can I ask you a question?"); v != 0 {
		t.Fatalf("control: a request vetoed (%v)", v)
	}
	for _, c := range [][2]string{
		{"Can I ask my boss for a raise?", "Should I ask my boss for a raise?"},
		{"May I ask my doctor for antibiotics?", "Should I ask my doctor for antibiotics?"},
		{"Can we ask the landlord to fix the heating?", "Should we ask the landlord to fix the heating?"},
	} {
		if v := vetoes(&allGuards, c[0], c[1]); v == 0 {
			t.Errorf("%q / %q: not vetoed", c[0], c[1])
		}
	}
}

package cachecore

import (
	"strings"
	"testing"
)

// Review G3 (stop 71): semantic false positives, third pass over the common words
// (commonWords) the guards let one side add or swap as framing although
// they carry the ask. Each pair below has a different answer; the semEnv
// embedder makes every text alike, so only the guards decide, as in the
// earlier guard reviews.

// README: "… or a closing preposition the other side lacks ("how is
// cheese made" ≠ "what is cheese made of")". asks folds every closing
// preposition the other side lacks into one bit (32), so when each side
// closes with one the other lacks the two bits cancel and nothing vetoes:
// an employer answered with colleagues, a muse with a co-writer.
func TestGuardsVetoClosingPrepositionsSwapped(t *testing.T) {
	for _, c := range []struct{ name, a, b string }{
		{"work for / with", "Who does she work for?", "Who does she work with?"},
		{"write to / for", "Who did he write the letter to?", "Who did he write the letter for?"},
		{"write about / with", "Who did Taylor Swift write All Too Well about?", "Who did Taylor Swift write All Too Well with?"},
		{"write for / with", "Who did the Beatles write Yesterday for?", "Who did the Beatles write Yesterday with?"},
	} {
		t.Run(c.name, func(t *testing.T) {
			if v := vetoes(&allGuards, c.a, c.b); v == 0 {
				t.Errorf("%q / %q: not vetoed", c.a, c.b)
			}
		})
	}
}

// The same through the cache: the confirmed answer naming her employer is
// served to the question about her colleagues.
func TestNearHitNeverAnswersAnotherClosingPreposition(t *testing.T) {
	e := newSemEnv(t, "")
	q := "Who did the Beatles write Yesterday for?"
	f, _ := e.ask(alice, q, nil)
	e.answer(f, "Paul McCartney wrote Yesterday for no one in particular; the melody came to him in a dream.")
	e.ask(alice, q, nil) // exact hit: confirmed
	f, got := e.ask(alice, "Who did the Beatles write Yesterday with?", nil)
	if strings.HasSuffix(got, "serve") {
		_, _, body := e.cache.HitResponse(f.Request())
		t.Fatalf("the co-writer question was answered with the dedicatee answer (%q): %s", got, body)
	}
}

// README: "what do dogs like" ≠ "what do dogs look like": "like" asking
// what a thing is like (a description) is not "like" asking what it
// enjoys. askClasses knows only "look like" as the describing ask, so
// "what are cats like" (a description) passes for "what do cats like"
// (their favourite things): the same two asks README's own example keeps
// apart.
func TestGuardsVetoWhatIsItLikeAgainstWhatDoesItLike(t *testing.T) {
	for _, c := range [][2]string{
		{"What are cats like?", "What do cats like?"},
		{"What are dogs like?", "What do dogs like?"},
		{"What are Labradors like?", "What do Labradors like?"},
	} {
		if v := vetoes(&allGuards, c[0], c[1]); v == 0 {
			t.Errorf("%q / %q: not vetoed", c[0], c[1])
		}
	}
}

// README: "no rare content word on one side only ("processed meat" ≠
// "meat")". "even" is in commonWords for its adverb ("does it even
// matter"), so the adjective that restricts a noun passes as framing:
// "the even numbers from 1 to 10" sum to 30, all of them to 55. "odd",
// not a common word, vetoes the same pair — the guard is lopsided.
func TestGuardsVetoEvenAsAQualifier(t *testing.T) {
	if v := vetoes(&allGuards, "Sum the odd numbers from 1 to 10.", "Sum the numbers from 1 to 10."); v == 0 {
		t.Fatalf("setup: the odd-number pair passes too")
	}
	for _, c := range [][2]string{
		{"Sum the even numbers from 1 to 10.", "Sum the numbers from 1 to 10."},
		{"How many even numbers are there between 1 and 100?", "How many numbers are there between 1 and 100?"},
		{"Is 0 an even number?", "Is 0 a number?"},
	} {
		if v := vetoes(&allGuards, c[0], c[1]); v == 0 {
			t.Errorf("%q / %q: not vetoed", c[0], c[1])
		}
	}
}

// The same through the cache: a confirmed 55 answers the even-number sum.
func TestNearHitNeverAnswersTheEvenNumbersWithAllNumbers(t *testing.T) {
	e := newSemEnv(t, "")
	q := "Sum the numbers from 1 to 10."
	f, _ := e.ask(alice, q, nil)
	e.answer(f, "1 + 2 + … + 10 = 55.")
	e.ask(alice, q, nil) // exact hit: confirmed
	f, got := e.ask(alice, "Sum the even numbers from 1 to 10.", nil)
	if strings.HasSuffix(got, "serve") {
		_, _, body := e.cache.HitResponse(f.Request())
		t.Fatalf("the even-number sum was answered with the sum of all numbers (%q): %s", got, body)
	}
}

// README: "the only" against none vetoes ("Is Python the only language
// used for machine learning?" ≠ "Is Python a language used for machine
// learning?"). soleOnly counts "only" after a determiner alone, so the
// same restriction said with the adverb passes: "is Python only used for
// data science" (no) is answered with "is Python used for data science"
// (yes).
func TestGuardsVetoAdverbialOnly(t *testing.T) {
	for _, c := range [][2]string{
		{"Is Python only used for data science?", "Is Python used for data science?"},
		{"Is Linux only used on servers?", "Is Linux used on servers?"},
		{"Is English only spoken in England?", "Is English spoken in England?"},
		{"Are vaccines only for children?", "Are vaccines for children?"},
	} {
		if v := vetoes(&allGuards, c[0], c[1]); v == 0 {
			t.Errorf("%q / %q: not vetoed", c[0], c[1])
		}
	}
}

// README: "the same" ≠ "different" (negation guard): "same" carries the
// ask. Added on one side only it passes as framing, so "do identical twins
// have the same fingerprints" (no) is answered with "do identical twins
// have fingerprints" (yes).
func TestGuardsVetoTheSameOnOneSide(t *testing.T) {
	for _, c := range [][2]string{
		{"Do identical twins have the same fingerprints?", "Do identical twins have fingerprints?"},
		{"Do identical twins have the same DNA?", "Do identical twins have DNA?"},
	} {
		if v := vetoes(&allGuards, c[0], c[1]); v == 0 {
			t.Errorf("%q / %q: not vetoed", c[0], c[1])
		}
	}
}

// README: framing words may differ, "but not the common words that carry
// the ask when each side has another". A polar question opened by "can"
// (is it possible or allowed: the law) is not one opened by "should" or
// "must" (advice, obligation): every modal is a common word with no ask
// class, so the swap passes. (A "how can I" that frames a how-to is not
// what these pairs change: each is a yes/no question whose verdict the
// modal decides.)
func TestGuardsVetoPolarQuestionModalSwapped(t *testing.T) {
	for _, c := range [][2]string{
		{"Can felons vote in Florida?", "Should felons vote in Florida?"},
		{"Can a president serve three terms?", "Should a president serve three terms?"},
		{"Must I pay taxes on gifts?", "Can I pay taxes on gifts?"},
		{"Should felons be allowed to vote?", "Are felons allowed to vote?"},
	} {
		if v := vetoes(&allGuards, c[0], c[1]); v == 0 {
			t.Errorf("%q / %q: not vetoed", c[0], c[1])
		}
	}
}

// A preposition that is a phrasal verb's particle changes the verb: "get
// over the flu" is to recover, "get the flu" to catch it; "get into
// Harvard" is admission, "get to Harvard" directions. README compares the
// direction "to" and "from" give ("get to Paris" ≠ "get from Paris"), but
// "into" marks the same "→" as "to", and "over" on one side is a common
// word, so both pass.
func TestGuardsVetoPhrasalVerbParticleChanged(t *testing.T) {
	for _, c := range [][2]string{
		{"How do I get over the flu?", "How do I get the flu?"},
		{"How do I get over a breakup?", "How do I get a breakup?"},
		{"How do I get into Harvard?", "How do I get to Harvard?"},
	} {
		if v := vetoes(&allGuards, c[0], c[1]); v == 0 {
			t.Errorf("%q / %q: not vetoed", c[0], c[1])
		}
	}
}

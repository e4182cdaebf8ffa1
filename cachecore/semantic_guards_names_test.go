package cachecore

import (
	"strings"
	"testing"
)

// A name, keyword or command that is also a common English word ("Go",
// "Make", "find", "which", "this", "with", "LIKE", "IN", "for") is a name
// when it is capitalised mid-sentence, in capitals, quoted or in
// backticks: two questions about two different tools or keywords differ.
func TestGuardsVetoQuotedOrCapitalisedCommonWords(t *testing.T) {
	g := Guards{Numbers: true, Negation: true, Entities: true}
	for _, c := range [][2]string{
		{"How do I install Go on Ubuntu?", "How do I install Make on Ubuntu?"},
		{"What does the `find` command do in Linux?", "What does the `which` command do in Linux?"},
		{`What does the "this" keyword do in JavaScript?`, `What does the "with" keyword do in JavaScript?`},
		{"How does the SQL LIKE operator work?", "How does the SQL IN operator work?"},
		{"What does the `go` statement do in Go?", "What does the `for` statement do in Go?"},
		{"How do you spell 'their'?", "How do you spell 'there'?"},
	} {
		if v := vetoes(&g, c[0], c[1]); v == 0 {
			t.Errorf("%q / %q: not vetoed", c[0], c[1])
		}
	}
}

// A word the turn mentions (to translate, to conjugate) is the whole ask,
// common word or not.
func TestGuardsVetoMentionedCommonWords(t *testing.T) {
	g := Guards{Numbers: true, Negation: true, Entities: true}
	for _, c := range [][2]string{
		{"How do I say hello in Japanese?", "How do I say thanks in Japanese?"},
		{"How do I say thank you in French?", "How do I say please in French?"},
		{"What is the past tense of go?", "What is the past tense of make?"},
	} {
		if v := vetoes(&g, c[0], c[1]); v == 0 {
			t.Errorf("%q / %q: not vetoed", c[0], c[1])
		}
	}
}

// Code questions that differ only in brackets, sigils or a flag's sign
// differ.
func TestGuardsVetoCodePunctuation(t *testing.T) {
	g := Guards{Numbers: true, Negation: true, Entities: true}
	for _, c := range [][2]string{
		{"What is the difference between () and [] in Python?", "What is the difference between [] and {} in Python?"},
		{"What does chmod +x do?", "What does chmod -x do?"},
		{"What does $? mean in bash?", "What does $! mean in bash?"},
		{"What does the @ symbol do in Python?", "What does the # symbol do in Python?"},
	} {
		if v := vetoes(&g, c[0], c[1]); v == 0 {
			t.Errorf("%q / %q: not vetoed", c[0], c[1])
		}
	}
}

// The same through the cache: the confirmed answer about `find` is served
// to a question about `which`.
func TestNearMatchDoesNotAnswerAnotherQuotedCommand(t *testing.T) {
	e := newSemEnv(t, "")
	q := "What does the `find` command do in Linux?"
	f, _ := e.ask(alice, q, nil)
	e.answer(f, "find searches a directory tree for files matching an expression.")
	e.ask(alice, q, nil) // exact hit: confirmed
	f, got := e.ask(alice, "What does the `which` command do in Linux?", nil)
	if strings.HasSuffix(got, "serve") {
		_, _, body := e.cache.HitResponse(f.Request())
		t.Fatalf("the `which` question was answered with the `find` answer (%q): %s", got, body)
	}
}

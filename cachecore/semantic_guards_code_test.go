package cachecore

import (
	"strings"
	"testing"
)

// Review G4 (stop 71): semantic false positives in prompts that carry code or data.
// Each pair asks a different question (the answers differ), identical but
// for one token of code; the semEnv embedder and vetoes() leave only the
// guards to tell them apart, as in the earlier guard reviews.

// README negation guard: "as many negations"; numbers guard: "code
// operators standing as words or written between names" are compared. A
// prefix "!" (code's not) is dropped by tokenize, even inside backticks
// (quoted text is "compared whole"), so a condition and its negation read
// alike: the answers are opposite.
func TestGuardsVetoCodeNegationOperator(t *testing.T) {
	for _, c := range [][2]string{
		{"Why does if (!user) run when user is set?", "Why does if (user) run when user is set?"},
		{"Why does `if (!user)` run when user is set?", "Why does `if (user)` run when user is set?"},
		{"Does while (!done) loop forever?", "Does while (done) loop forever?"},
		{"What does `!isEmpty()` return for an empty list?", "What does `isEmpty()` return for an empty list?"},
		{"What is the output of print(!true)?", "What is the output of print(true)?"},
	} {
		if v := vetoes(&allGuards, c[0], c[1]); v == 0 {
			t.Errorf("%q / %q: not vetoed", c[0], c[1])
		}
	}
}

// The same through the cache: the confirmed answer about `if (user)` is
// served to the question about `if (!user)`.
func TestNearHitNeverAnswersTheNegatedCondition(t *testing.T) {
	e := newSemEnv(t, "")
	q := "What does `if (user)` do when user is null in JavaScript?"
	f, _ := e.ask(alice, q, nil)
	e.answer(f, "The block is skipped: null is falsy.")
	e.ask(alice, q, nil) // exact hit: confirmed
	f, got := e.ask(alice, "What does `if (!user)` do when user is null in JavaScript?", nil)
	if strings.HasSuffix(got, "serve") {
		_, _, body := e.cache.HitResponse(f.Request())
		t.Fatalf("the negated condition was answered with the other one's answer (%q): %s", got, body)
	}
}

// README numbers guard: "a flag's sign: ... \"chmod +x\" ≠ \"chmod -x\"".
// chmod's symbolic mode writes the sign between the who and the
// permission letters, the usual form: "u+x" adds, "u-x" removes, and both
// read "u x".
func TestGuardsVetoSignInChmodSymbolicMode(t *testing.T) {
	for _, c := range [][2]string{
		{"What does chmod u+x script.sh do?", "What does chmod u-x script.sh do?"},
		{"What does `chmod g+w file` do?", "What does `chmod g-w file` do?"},
		{"What does chmod go-rwx file do?", "What does chmod go+rwx file do?"},
	} {
		if v := vetoes(&allGuards, c[0], c[1]); v == 0 {
			t.Errorf("%q / %q: not vetoed", c[0], c[1])
		}
	}
}

// README entities guard: "so is a code identifier, compared whole:
// \"errors.Is\" ≠ \"errors.As\", \"json.loads\" ≠ \"json.load\"". Only an
// identifier joined by a dot (or quoted) is compared whole: a snake_case
// name or a URL path is split at "_" and "/" and its words are stemmed,
// so the singular and the plural endpoint or function read alike
// (GitHub's GET /user is the caller, GET /users lists every user).
func TestGuardsVetoUndottedCodeIdentifiersWhole(t *testing.T) {
	for _, c := range [][2]string{
		{"What does get_user return in Django?", "What does get_users return in Django?"},
		{"What does the GitHub API endpoint GET /user return?", "What does the GitHub API endpoint GET /users return?"},
		{"What does GET /api/orders return?", "What does GET /api/order return?"},
		{"Why does https://example.com/api/users return 404?", "Why does https://example.com/api/user return 404?"},
	} {
		if v := vetoes(&allGuards, c[0], c[1]); v == 0 {
			t.Errorf("%q / %q: not vetoed", c[0], c[1])
		}
	}
}

// README numbers guard: "code operators standing as words or written
// between names" are compared ("x>y" ≠ "x<y"). Only runs holding = < > &
// or | are read when written against a name: multiplication against
// division, floor division, pointer depth, git's revision suffixes and
// regular expressions' quantifiers and negated classes are dropped, even
// in backticks.
func TestGuardsVetoOtherOperatorsBetweenNames(t *testing.T) {
	for _, c := range []struct{ name, a, b string }{
		{"a*b vs a/b", "What does `a*b` compute?", "What does `a/b` compute?"},
		{"floor division", "What does a//b return in Python?", "What does a/b return in Python?"},
		{"pointer depth", "What does `int* p` declare?", "What does `int** p` declare?"},
		{"xor vs not", "What does x^y do in Python?", "What does x~y do in Python?"},
		{"git HEAD~ vs HEAD", "What does git reset HEAD~ do?", "What does git reset HEAD do?"},
		{"regex negated class", "What does the regex `[a-z]+` match?", "What does the regex `[^a-z]+` match?"},
		{"regex quantifier", "What does the regex `a.*b` match?", "What does the regex `a.+b` match?"},
		{"regex optional", "What does the regex `\\d*` match?", "What does the regex `\\d?` match?"},
		{"regex anchor", "What does the regex `^foo` match?", "What does the regex `foo` match?"},
	} {
		t.Run(c.name, func(t *testing.T) {
			if v := vetoes(&allGuards, c.a, c.b); v == 0 {
				t.Errorf("%q / %q: not vetoed", c.a, c.b)
			}
		})
	}
}

// A flag's letter is its meaning, case included ("ls -r" / "ls -R" is
// vetoed). A flag letter that is also a common English word ("a", "I")
// is dropped as one: "grep -i" (ignore case) reads as "grep -I" (skip
// binary files), "ls -a" as "ls -A" (without . and ..).
func TestGuardsVetoFlagLetterCase(t *testing.T) {
	if v := vetoes(&allGuards, "What does ls -r do?", "What does ls -R do?"); v == 0 {
		t.Fatal("control: -r / -R not vetoed")
	}
	for _, c := range [][2]string{
		{"What does grep -i do?", "What does grep -I do?"},
		{"What does ls -a list?", "What does ls -A list?"},
	} {
		if v := vetoes(&allGuards, c[0], c[1]); v == 0 {
			t.Errorf("%q / %q: not vetoed", c[0], c[1])
		}
	}
}

// Through the cache: the confirmed answer about GET /user (the caller) is
// served to the question about GET /users (every user).
func TestNearHitNeverAnswersTheOtherEndpoint(t *testing.T) {
	e := newSemEnv(t, "")
	q := "What does the GitHub API endpoint GET /user return?"
	f, _ := e.ask(alice, q, nil)
	e.answer(f, "The authenticated user's profile.")
	e.ask(alice, q, nil) // exact hit: confirmed
	f, got := e.ask(alice, "What does the GitHub API endpoint GET /users return?", nil)
	if strings.HasSuffix(got, "serve") {
		_, _, body := e.cache.HitResponse(f.Request())
		t.Fatalf("GET /users was answered with GET /user's answer (%q): %s", got, body)
	}
}

package cachecore

import (
	"strings"
	"testing"
)

// Review G (stop 71): semantic false positives. Each pair below asks a different
// question with a different answer; README ("Semantic cache: near-duplicate
// questions, guarded") says the named guard refuses such a near match. The
// semEnv embedder makes every text alike, so only the guards, the
// confirmation and the partition decide, as in the earlier guard reviews.

var allGuards = Guards{Numbers: true, Negation: true, Entities: true}

// README numbers guard: "numbers, dates, units and the operators and signs
// next to a digit, in order" ("-40" ≠ "40", "1,5 kg" ≠ "15 kg"). A sign
// next to a digit that is not one of the few tokenize knows is dropped:
// an en dash typed (or autocorrected) as a minus, a currency sign other
// than $ € £ ¥ (Unicode Sc: ₹ ₩ ₽ …), a prime or double prime for feet
// and inches (or minutes and seconds).
func TestGuardsVetoSignsNextToADigit(t *testing.T) {
	for _, c := range []struct{ name, a, b string }{
		{"en dash minus", "What is –40 °F in Celsius?", "What is 40 °F in Celsius?"},
		{"rupee vs won", "How much is ₹1000 in USD?", "How much is ₩1000 in USD?"},
		{"rouble vs hryvnia", "Convert 500₽ to euros", "Convert 500₴ to euros"},
		{"feet vs inches (primes)", "How many cm is 5′?", "How many cm is 5″?"},
		{"feet vs inches (ASCII)", "How many cm is 5'?", "How many cm is 5\"?"},
	} {
		t.Run(c.name, func(t *testing.T) {
			if v := vetoes(&allGuards, c.a, c.b); v == 0 {
				t.Errorf("%q / %q: not vetoed", c.a, c.b)
			}
		})
	}
}

// README numbers guard: a decimal comma is read ("1,5 kg" ≠ "15 kg"), but a
// leading decimal point is taken for a sentence's full stop, so ".5" reads
// "5": a tenfold dose.
func TestGuardsVetoLeadingDecimalPoint(t *testing.T) {
	for _, c := range [][2]string{
		{"Is a .5 mg dose of lorazepam safe?", "Is a 5 mg dose of lorazepam safe?"},
		{"What is 10 times .5?", "What is 10 times 5?"},
	} {
		if v := vetoes(&allGuards, c[0], c[1]); v == 0 {
			t.Errorf("%q / %q: not vetoed", c[0], c[1])
		}
	}
}

// The same through the cache: the confirmed answer for a 5 mg dose is
// served to the question about .5 mg.
func TestNearHitNeverAnswersATenfoldDose(t *testing.T) {
	e := newSemEnv(t, "")
	q := "Is a 5 mg dose of lorazepam safe?"
	f, _ := e.ask(alice, q, nil)
	e.answer(f, "5 mg is above the usual maximum single dose.")
	e.ask(alice, q, nil) // exact hit: confirmed
	f, got := e.ask(alice, "Is a .5 mg dose of lorazepam safe?", nil)
	if strings.HasSuffix(got, "serve") {
		_, _, body := e.cache.HitResponse(f.Request())
		t.Fatalf("the .5 mg question was answered with the 5 mg answer (%q): %s", got, body)
	}
}

// README numbers guard compares units; entities compares acronyms and
// capitalised names. Both fold case, so a unit whose case is its meaning
// reads alike: megabit and megabyte, milliwatt and megawatt.
func TestGuardsVetoUnitsDifferingInCase(t *testing.T) {
	for _, c := range []struct{ name, a, b string }{
		{"Mbps vs MBps", "How long does it take to download 500 MB at 50 Mbps?", "How long does it take to download 500 MB at 50 MBps?"},
		{"Mb vs MB", "How long does it take to download a 10 MB file?", "How long does it take to download a 10 Mb file?"},
		{"mW vs MW", "How many homes can 5 MW power?", "How many homes can 5 mW power?"},
	} {
		t.Run(c.name, func(t *testing.T) {
			if v := vetoes(&allGuards, c.a, c.b); v == 0 {
				t.Errorf("%q / %q: not vetoed", c.a, c.b)
			}
		})
	}
}

// README entities guard: "the same persons ("who are you" ≠ "who am I",
// "your name" ≠ "my name"; the "I" or "you" of "how do I", "can you
// explain" … is anyone)". The generic "you" of "can you" (or "I" of "how do
// I") also wipes out that person's possessive, so "your name" against "my
// name" compares "" with one person and passes.
func TestGuardsVetoMyAgainstYourAfterAGenericPerson(t *testing.T) {
	for _, c := range [][2]string{
		{"Can you tell me your name?", "Can you tell me my name?"},
		{"Do you know my name?", "Do you know your name?"},
		{"How do I find my IP address?", "How do I find your IP address?"},
	} {
		if v := vetoes(&allGuards, c[0], c[1]); v == 0 {
			t.Errorf("%q / %q: not vetoed", c[0], c[1])
		}
	}
}

// The same through the cache.
func TestNearHitNeverAnswersMyNameWithYourName(t *testing.T) {
	e := newSemEnv(t, "")
	q := "Can you tell me your name?"
	f, _ := e.ask(alice, q, nil)
	e.answer(f, "My name is Assistant.")
	e.ask(alice, q, nil) // exact hit: confirmed
	f, got := e.ask(alice, "Can you tell me my name?", nil)
	if strings.HasSuffix(got, "serve") {
		_, _, body := e.cache.HitResponse(f.Request())
		t.Fatalf("\"Can you tell me my name?\" answered from \"… your name?\" (%q): %s", got, body)
	}
}

// README entities guard: names in order ("C++" ≠ "C#" ≠ "C"; a common word
// in backticks or capitalised mid-sentence is a name: "the `find` command"
// ≠ "the `which` command", "install Go" ≠ "install Make"). Code
// identifiers slip: the dot of "errors.Is" opens a "sentence", so "Is" and
// "As" are uncapitalised common words; and names are compared by their
// stem, so `json.loads` is `json.load` and `sorted()` is `sort()`.
func TestGuardsVetoOtherCodeIdentifiers(t *testing.T) {
	for _, c := range []struct{ name, a, b string }{
		{"Go errors.Is vs errors.As", "What does errors.Is do in Go?", "What does errors.As do in Go?"},
		{"json.loads vs json.load", "What does `json.loads` return?", "What does `json.load` return?"},
		{"json.loads vs json.load, plain", "How do I use json.loads in Python?", "How do I use json.load in Python?"},
		{"sorted vs sort", "How does `sorted()` work in Python?", "How does `sort()` work in Python?"},
	} {
		t.Run(c.name, func(t *testing.T) {
			if v := vetoes(&allGuards, c.a, c.b); v == 0 {
				t.Errorf("%q / %q: not vetoed", c.a, c.b)
			}
		})
	}
}

// The same through the cache.
func TestNearHitNeverAnswersAnotherGoFunction(t *testing.T) {
	e := newSemEnv(t, "")
	q := "What does errors.Is do in Go?"
	f, _ := e.ask(alice, q, nil)
	e.answer(f, "errors.Is reports whether any error in err's tree matches target.")
	e.ask(alice, q, nil) // exact hit: confirmed
	f, got := e.ask(alice, "What does errors.As do in Go?", nil)
	if strings.HasSuffix(got, "serve") {
		_, _, body := e.cache.HitResponse(f.Request())
		t.Fatalf("the errors.As question was answered with the errors.Is answer (%q): %s", got, body)
	}
}

package cachecore

import (
	"strings"
	"testing"
)

// Review Z233: the guards compare stems, and the stemmer cuts a final
// "s" or "ing" off words that are not inflections: a name in capitals
// ("HTTPS", an acronym, README: names in order) reads as "http", "Sass"
// as "sas" (= "SAS"), "Ross" as "ros" (= "ROS"); "shipping" reads as
// "ship", "booking" as "book". Each pair asks another thing (port 443 is
// not port 80), shares every other word, so a small encoder scores it as
// a near duplicate, and every guard lets it through: a confirmed near
// match serves one the other's answer.

func z233Vetoed(t *testing.T, pairs [][2]string) {
	t.Helper()
	for _, c := range pairs {
		if vetoes(&allGuards, c[0], c[1]) == 0 || vetoes(&allGuards, c[1], c[0]) == 0 {
			t.Errorf("%q / %q: not vetoed", c[0], c[1])
		}
	}
}

// An acronym or capitalised name is a name (README, entities: "names in
// order", "acronyms"), but entities() keeps a name's stem, so a protocol
// and its TLS variant, or two products whose names differ by a final
// "s", are one name. Expected: vetoed (veto.entities), as "C++" ≠ "C#".
func TestGuardsZ233VetoNameDifferingByAFinalS(t *testing.T) {
	z233Vetoed(t, [][2]string{
		{"How do I configure HTTPS in nginx?", "How do I configure HTTP in nginx?"},
		{"Why is my HTTPS request slow?", "Why is my HTTP request slow?"},
		{"What is the default port of HTTPS?", "What is the default port of HTTP?"},
		{"Which port does LDAPS use?", "Which port does LDAP use?"},
		{"Which port does FTPS use?", "Which port does FTP use?"},
		{"What is SAS?", "What is Sass?"},                   // statistics suite / CSS preprocessor
		{"How do I install ROS?", "How do I install Ross?"}, // robot OS / a person
		{"What is Ruby on Rails?", "What is Ruby on Rail?"}, // a framework / nothing
	})
}

// The same names written in lower case, as users type them: "https" is
// stemmed to "http", so the two turns have the same content words.
// Expected: vetoed (the default ports are 443 and 80, 636 and 389, 465
// and 25, 993 and 143).
func TestGuardsZ233VetoProtocolAgainstItsSecureVariant(t *testing.T) {
	z233Vetoed(t, [][2]string{
		{"What is the default port of https?", "What is the default port of http?"},
		{"Which port does ldaps use?", "Which port does ldap use?"},
		{"Which port does smtps use?", "Which port does smtp use?"},
		{"Which port does imaps use?", "Which port does imap use?"},
		{"Should I use ssh or https?", "Should I use ssh or http?"},
	})
}

// README (entities): "no rare content word on one side only" and content
// words in the same order; the stemmer cuts "ing" off nouns that are no
// inflection of the shorter word, so "shipping" (delivery) is "ship" (a
// vessel), "booking" (a reservation) is "book", "training" (a course) is
// "train". Expected: vetoed, as "side effects" ≠ "dosage".
func TestGuardsZ233VetoIngNounAgainstAnotherNoun(t *testing.T) {
	z233Vetoed(t, [][2]string{
		{"How much does shipping cost?", "How much does a ship cost?"},
		{"How do I cancel a booking?", "How do I cancel a book?"},
		{"How long is the training?", "How long is the train?"},
		{"How do I delete a listing?", "How do I delete a list?"},
		{"Is banking a good career?", "Is a bank a good career?"},
		{"What is a setting?", "What is a set?"},
	})
}

// The same through the cache: the confirmed answer to "What is the
// default port of http?" (80) is served, as a near hit, to "… of https?"
// (443). Expected: a miss that goes upstream (a guard's veto), never the
// other protocol's answer.
func TestSemanticZ233NearHitNeverAnswersHTTPSWithHTTP(t *testing.T) {
	e := newSemEnv(t, "")
	q := "What is the default port of http?"
	f, _ := e.ask(alice, q, nil)
	e.answer(f, "The default port of HTTP is 80.")
	e.ask(alice, q, nil) // exact hit: confirmed
	f, got := e.ask(alice, "What is the default port of https?", nil)
	if strings.HasSuffix(got, "serve") {
		_, _, body := e.cache.HitResponse(f.Request())
		t.Fatalf("\"… port of https?\" (443) was answered with the answer to \"… port of http?\" (%q): %s", got, body)
	}
}

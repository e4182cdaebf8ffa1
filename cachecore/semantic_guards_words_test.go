package cachecore

import (
	"strings"
	"testing"
)

// Review G2 (stop 71): semantic false positives, second pass (languages and
// phrasing). The semEnv embedder makes every text alike, so only the
// guards, the confirmation and the partition decide.

// README "Semantic cache": a near match needs "no rare content word on one
// side only ("side effects of ibuprofen" ≠ "dosage of ibuprofen")"; only
// framing words may differ. soft() and rareDifference compare stems, and
// the light English stemmer cuts a content word down to a common word:
// "processed" → "process", "canned" → "can", "owns" → "own", "walking" →
// "walk", "themes" → "them", "tipping" → "tip". Such a word is then
// framing: invisible to the rare-word rule and to the content order.
func TestGuardsVetoContentWordStemmedToACommonWord(t *testing.T) {
	for _, c := range []struct{ name, a, b string }{
		{"processed", "Is processed meat bad for you?", "Is meat bad for you?"},
		{"canned", "Is canned tuna safe during pregnancy?", "Is tuna safe during pregnancy?"},
		{"owns / uses", "Who owns Instagram?", "Who uses Instagram?"},
		{"owns / made", "Who owns Instagram?", "Who made Instagram?"},
		{"walking / fasting", "Is walking good for weight loss?", "Is fasting good for weight loss?"},
		{"themes / summary", "What are the themes of Hamlet?", "What is the summary of Hamlet?"},
		{"tipping", "Is tipping expected in Japan?", "Is it expected in Japan?"},
	} {
		t.Run(c.name, func(t *testing.T) {
			if v := vetoes(&allGuards, c.a, c.b); v == 0 {
				t.Errorf("%q / %q: not vetoed", c.a, c.b)
			}
		})
	}
}

// The same through the cache: a confirmed answer about meat is served to
// the question about processed meat (a WHO group 1 carcinogen; red meat is
// group 2A).
func TestNearHitNeverAnswersProcessedMeatWithMeat(t *testing.T) {
	e := newSemEnv(t, "")
	q := "Is meat bad for you?"
	f, _ := e.ask(alice, q, nil)
	e.answer(f, "In moderation, unprocessed meat is part of a healthy diet.")
	e.ask(alice, q, nil) // exact hit: confirmed
	f, got := e.ask(alice, "Is processed meat bad for you?", nil)
	if strings.HasSuffix(got, "serve") {
		_, _, body := e.cache.HitResponse(f.Request())
		t.Fatalf("the processed-meat question was answered with the meat answer (%q): %s", got, body)
	}
}

// README numbers guard: "numbers, dates, units … in order" ("Monday" ≠
// "Tuesday"); "tonight" or "at night" on one side vetoes. dateWords lists
// "evening" (and "morning", "spring", "daily"), but quantities looks dates
// up by stem, and stem("evening") is "even" — a common word, so the
// one-sided "evening" is neither a date nor a rare content word.
func TestGuardsVetoEveningOnOneSide(t *testing.T) {
	for _, c := range []struct{ name, a, b string }{
		{"evening dose", "What is the evening dose of metformin?", "What is the dose of metformin?"},
		{"Sunday evening", "Is the museum open on Sunday evening?", "Is the museum open on Sunday?"},
	} {
		t.Run(c.name, func(t *testing.T) {
			// control: the same with "night" is refused
			if v := vetoes(&allGuards, strings.Replace(c.a, "evening", "night", 1), c.b); v == 0 {
				t.Fatalf("control with night passed")
			}
			if v := vetoes(&allGuards, c.a, c.b); v == 0 {
				t.Errorf("%q / %q: not vetoed", c.a, c.b)
			}
		})
	}
}

// README Limitations: "the guards are word rules for English …; in other
// languages only digits, symbols and capitalised names are understood, and
// any other differing word vetoes". The English stemmer cuts a final "s",
// so Spanish and Portuguese verbs in the second person ("hablas", "estás",
// "pesas", "moras") read as the third ("habla", "está", "pesa", "mora"):
// "what language do you speak" passes for "what language does he/she
// speak", "where are you" for "where is it", "how much do you weigh" for
// "how much does it weigh" — the persons the English guard compares
// ("who are you" ≠ "who is he"), here carried by one differing word.
func TestGuardsVetoOtherLanguageWordsDifferingByFinalS(t *testing.T) {
	for _, c := range []struct{ name, a, b string }{
		{"es hablas / habla", "¿Qué idioma hablas?", "¿Qué idioma habla?"},
		{"es estás / está", "¿Dónde estás?", "¿Dónde está?"},
		{"es pesas / pesa", "¿Cuánto pesas?", "¿Cuánto pesa?"},
		{"pt moras / mora", "Onde moras?", "Onde mora?"},
	} {
		t.Run(c.name, func(t *testing.T) {
			if v := vetoes(&allGuards, c.a, c.b); v == 0 {
				t.Errorf("%q / %q: not vetoed", c.a, c.b)
			}
		})
	}
}

// README entities guard: "framing words … may differ, but not the common
// words that carry the ask when each side has another ("give feedback" ≠
// "get feedback", …, "what do dogs like" ≠ "what do dogs look like")".
// askWords has "like" but not "need", so a "like" swapped for a "need" is
// taken for framing: do cats like milk (many do) / do cats need milk (no;
// most adult cats are lactose intolerant).
func TestGuardsVetoLikeSwappedForNeed(t *testing.T) {
	a, b := "Do cats like milk?", "Do cats need milk?"
	if v := vetoes(&allGuards, a, b); v == 0 {
		t.Errorf("%q / %q: not vetoed", a, b)
	}
}

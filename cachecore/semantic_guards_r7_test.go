package cachecore

import (
	"strings"
	"testing"
)

// Review R7 (stop 71): holes in the guard mends a0cbdb4 and decc910. As in
// the earlier guard reviews, vetoes decides alone (the semEnv embedder
// makes every text alike).

// README: "a yes/no question opened by another kind of modal when both
// are ("can felons vote" ≠ "should felons vote" …; "can you please
// explain" is a request, framing)". polarModal takes any subject pronoun
// followed by a framing verb for a request, so a question about what the
// asker may, must or should do with "tell", "give", "let", "share" or
// "show" is no longer compared: "must I tell my employer I'm pregnant"
// (the law: no) is answered with "should I tell …" (advice), "can I give
// my dog ibuprofen" with "should I …". "Should you tell" is never a
// request either.
func TestGuardsVetoModalOfAQuestionAboutWhatOneMayDo(t *testing.T) {
	// control: a modal opening a request is framing, as README says
	if v := vetoes(&allGuards, "Could you please explain recursion?", "Can you explain recursion?"); v != 0 {
		t.Fatalf("control: a request vetoed (%v)", v)
	}
	// control: the same modals before a verb that frames nothing are compared
	if vetoes(&allGuards, "Must I pay taxes on gifts?", "Should I pay taxes on gifts?") == 0 {
		t.Fatal("control: must / should passed")
	}
	for _, c := range [][2]string{
		{"Must I tell my employer I'm pregnant?", "Should I tell my employer I'm pregnant?"},
		{"Can I give my dog ibuprofen?", "Should I give my dog ibuprofen?"},
		{"Can I let my dog sleep in my bed?", "Should I let my dog sleep in my bed?"},
		{"Can I share my Netflix password?", "Should I share my Netflix password?"},
		{"Must we show our passports on a Schengen flight?", "Can we show our passports on a Schengen flight?"},
		{"Should you tell your boss you're pregnant?", "Can you tell your boss you're pregnant?"},
	} {
		if v := vetoes(&allGuards, c[0], c[1]); v == 0 {
			t.Errorf("%q / %q: not vetoed", c[0], c[1])
		}
	}
}

// The same through the cache: the confirmed advice is served as the law.
func TestNearHitNeverAnswersMustWithShould(t *testing.T) {
	e := newSemEnv(t, "")
	q := "Should I tell my employer I'm pregnant?"
	f, _ := e.ask(alice, q, nil)
	e.answer(f, "Yes: telling your employer early lets you plan leave together and builds trust.")
	e.ask(alice, q, nil) // exact hit: confirmed
	f, got := e.ask(alice, "Must I tell my employer I'm pregnant?", nil)
	if strings.HasSuffix(got, "serve") {
		_, _, body := e.cache.HitResponse(f.Request())
		t.Fatalf("the legal question was answered with the advice (%q): %s", got, body)
	}
}

// README numbers guard: "… and any SI unit after a prefix whose case is
// its meaning: "MPa" ≠ "mPa"". siSymbols lists symbols only, so the SI
// ohm written as most keyboards write it ("Ohm") and the volt-ampere
// ("VA", a transformer's rating) still fold milli into mega: a billion
// times the resistance or the power passes.
func TestGuardsVetoMilliAgainstMegaOfOhmAndVoltAmpere(t *testing.T) {
	if vetoes(&allGuards, "Is 100 MΩ a high resistance?", "Is 100 mΩ a high resistance?") == 0 {
		t.Fatal("control MΩ / mΩ passed")
	}
	for _, c := range [][2]string{
		{"Is 100 MOhm a high resistance?", "Is 100 mOhm a high resistance?"},
		{"What is 10 mOhm in ohms?", "What is 10 MOhm in ohms?"},
		{"Is a 10 MVA transformer large?", "Is a 10 mVA transformer large?"},
	} {
		if v := vetoes(&allGuards, c[0], c[1]); v == 0 {
			t.Errorf("%q / %q: not vetoed", c[0], c[1])
		}
	}
}

// README Limitations: in other languages "any other differing word
// vetoes" ("hablas" ≠ "habla"). decc910 stems both turns when either has
// an English common word: a Spanish turn that adds an English "Thanks" or
// "Please" (framing on one side) now has its "hablas" (you speak) folded
// into "habla" (he/she speaks) — before decc910 these pairs were vetoed.
// And sharedWords still lacks "i", the Catalan "and" (Italian "the"), so a
// Catalan turn is stemmed whole: "escrius" (you write) = "escriu".
func TestGuardsVetoOtherLanguagePersonBesideAnEnglishWord(t *testing.T) {
	if vetoes(&allGuards, "¿Cuántos idiomas hablas?", "¿Cuántos idiomas habla?") == 0 {
		t.Fatal("control passed")
	}
	for _, c := range []struct{ name, a, b string }{
		{"thanks on the query", "¿Cuántos idiomas hablas? Thanks!", "¿Cuántos idiomas habla?"},
		{"thanks on the stored turn", "¿Cuántos idiomas hablas?", "¿Cuántos idiomas habla? Thanks"},
		{"please", "¿Dónde trabajas? Please", "¿Dónde trabaja?"},
		{"Catalan i", "Què escrius i què llegeixes?", "Què escriu i què llegeix?"},
	} {
		t.Run(c.name, func(t *testing.T) {
			if v := vetoes(&allGuards, c.a, c.b); v == 0 {
				t.Errorf("%q / %q: not vetoed", c.a, c.b)
			}
		})
	}
}

// README: "… or "what is X like" against "what does X like"". describing
// gives up on any "do" before the "like", so the same two asks behind a
// "what do you think" pass: a description answered with favourite things.
func TestGuardsVetoWhatIsXLikeBehindADo(t *testing.T) {
	if vetoes(&allGuards, "What are cats like?", "What do cats like?") == 0 {
		t.Fatal("control passed")
	}
	for _, c := range [][2]string{
		{"What do you think cats are like?", "What do you think cats like?"},
		{"What do you think my parents are like?", "What do you think my parents like?"},
	} {
		if v := vetoes(&allGuards, c[0], c[1]); v == 0 {
			t.Errorf("%q / %q: not vetoed", c[0], c[1])
		}
	}
}

// particles (a0cbdb4) compares "over", "into" and "onto" wherever they
// stand, so "over 21" ≠ "at 21"; its opposite "under" is a common word
// outside it and passes as framing: drinking under 21 (illegal in the US)
// is answered with drinking at 21 (legal). "see through glass" ≠ "see
// glass" is a particle changing its verb ("get over the flu" ≠ "get the
// flu", README) that passes the same way.
func TestGuardsVetoUnderAndThroughAsOverIs(t *testing.T) {
	if vetoes(&allGuards, "Can I drink alcohol over 21?", "Can I drink alcohol at 21?") == 0 {
		t.Fatal("control over / at passed")
	}
	for _, c := range [][2]string{
		{"Can I drink alcohol under 21?", "Can I drink alcohol at 21?"},
		{"Is it illegal to drink under 21?", "Is it illegal to drink at 21?"},
		{"Can cats see through glass?", "Can cats see glass?"},
	} {
		if v := vetoes(&allGuards, c[0], c[1]); v == 0 {
			t.Errorf("%q / %q: not vetoed", c[0], c[1])
		}
	}
}

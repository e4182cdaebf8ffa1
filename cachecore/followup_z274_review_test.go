package cachecore

import "testing"

// Review Z274 (follow-up of 0187835, review Z272's semantic guards).

// README (entities): "a state in -ed against its -ing ("so annoyed" ≠ "so
// annoying" …)", and participleForms' own comment counts "is my cat
// scared". 0187835 counts a word in -ed only within three words after a
// form of "be", "so", "feel", "get" … (stateBefore). A subject of more
// than two words between "is" and the state ("why is my teenage son
// bored": "is" is four words back), or a linking verb not listed (look,
// sound, act), leaves the state uncounted, and nothing else tells the
// turns apart: "Why is my teenage son boring?" is served the answer to
// "Why is my teenage son bored?" (how to engage him, against how he could
// be more interesting). Every one of these pairs was vetoed before
// 0187835.
func TestGuardsZ274PredicateStateFarFromItsVerb(t *testing.T) {
	if vetoes(&allGuards, "Why is my son bored?", "Why is my son boring?") == 0 {
		t.Fatal("setup: a state right after \"is\" is not vetoed")
	}
	z271Vetoed(t, [][2]string{
		{"Why is my teenage son bored?", "Why is my teenage son boring?"},
		{"Why is my new boss bored?", "Why is my new boss boring?"},
		{"Is my ten year old daughter bored?", "Is my ten year old daughter boring?"},
		{"Why is the new teacher in my school bored?", "Why is the new teacher in my school boring?"},
		{"Why does my boyfriend look bored?", "Why does my boyfriend look boring?"},
		{"Why does my husband sound annoyed?", "Why does my husband sound annoying?"},
		{"Why do my students act bored?", "Why do my students act boring?"},
	})
}

// The same rule and README line: an -ed adjective before its noun is a
// state of that noun as much as one after "is" ("an annoyed customer"
// feels annoyed, "an annoying customer" annoys), yet 0187835 counts it
// nowhere: "How to deal with an annoying customer?" is served "How to
// deal with an annoyed customer?", "How to help a depressing friend"
// "How to help a depressed friend". All were vetoed before 0187835,
// which meant to let through only the purpose in "for improved posture"
// (a thing to be improved, no one's state).
func TestGuardsZ274AttributiveStatesSlipThrough(t *testing.T) {
	if vetoes(&allGuards, "Why is the customer so annoyed?", "Why is the customer so annoying?") == 0 {
		t.Fatal("setup: \"so annoyed\" / \"so annoying\" is not vetoed")
	}
	z271Vetoed(t, [][2]string{
		{"How to deal with an annoyed customer", "How to deal with an annoying customer"},
		{"How to help a depressed friend", "How to help a depressing friend"},
		{"How to calm a frightened dog", "How to calm a frightening dog"},
		{"Signs of an interested buyer", "Signs of an interesting buyer"},
		{"Tips for a confused student", "Tips for a confusing student"},
		{"What to do with a bored teenager", "What to do with a boring teenager"},
		{"How to talk to an embarrassed child", "How to talk to an embarrassing child"},
	})
}

// README (entities): the "I" of "do I need a visa" is anyone, "nor someone
// the conversation named: "do I need a visa" and "how to get a visa" ≠
// "does he need a visa"", and named() takes "t" (they, them, their) as
// such a third person (0187835: "a third person (he, she, they)"). But
// persons() makes a "they" after a modal generic, as the "I" is, and
// otherPersons then compares two sides with no person at all: in a
// conversation that began "My parents have Indian passports", "Do they
// need a visa for Japan?" is served the answer to "Do I need a visa for
// Japan?" (a US citizen's), the Z271 defect with "they" for "he". The
// rule is asymmetric by pronoun: "does he" is vetoed, "do they" passes.
// (A "they" against a side with no pronoun — "how do they make cheese" /
// "how is cheese made" — is not at issue: the other side here asks as a
// generic "I".)
func TestGuardsZ274TheyAgainstAGenericI(t *testing.T) {
	if vetoes(&allGuards, "Do I need a visa for Japan?", "Does he need a visa for Japan?") == 0 {
		t.Fatal("setup: \"does he\" passes for a generic \"do I\"")
	}
	z271Vetoed(t, [][2]string{
		{"Do I need a visa for Japan?", "Do they need a visa for Japan?"},
		{"Am I allowed to vote?", "Are they allowed to vote?"},
		{"Should I take the job offer?", "Should they take the job offer?"},
		{"How much tax do I owe?", "How much tax do they owe?"},
		{"Can I get a refund?", "Can they get a refund?"},
	})
}

// named() (0187835) vetoes any third person against a turn with no
// pronoun, as "someone the conversation named". A possessive whose person
// the turn itself names ("a student … their grades", "babies … their
// stomachs") names no one else: the other side names the same student.
// These ordinary paraphrases all matched before 0187835 and are now
// refused (semantic.veto.entities), hits lost to a rule that meant only
// "how to apply for a passport" ≠ "how does he apply …" (RATIONALE: a
// rule that refuses ordinary paraphrases the evaluation pairs lack is
// "too eager").
func TestGuardsZ274ThirdPersonNamedInTheSameTurn(t *testing.T) {
	for _, c := range [][2]string{
		{"How can a student improve their grades?", "How can a student improve grades?"},
		{"Is it safe for babies to sleep on their stomachs?", "Is it safe for babies to sleep on the stomach?"},
		{"What age does a child lose their first tooth?", "What age does a child lose the first tooth?"},
		{"When should a child get their first phone?", "When should a child get a first phone?"},
		{"How can a dog owner stop their dog from barking?", "How can a dog owner stop a dog from barking?"},
	} {
		if ev := vetoes(&allGuards, c[0], c[1]); ev != 0 {
			t.Errorf("%q / %q: vetoed (%s)", c[0], c[1], EventNames[ev])
		}
		if ev := vetoes(&allGuards, c[1], c[0]); ev != 0 {
			t.Errorf("%q / %q: vetoed (%s)", c[1], c[0], EventNames[ev])
		}
	}
}

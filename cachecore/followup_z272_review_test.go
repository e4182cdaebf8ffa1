package cachecore

import "testing"

// Review Z272 (follow-up of 11b8793, review Z271's semantic guards).

// README (entities): the "I" or "you" of "how do I" … is anyone, "nor
// someone the conversation named: "do I need a visa" ≠ "does he need a
// visa"", and otherPersons' own rule: "A side without any [pronoun] is
// generic: "how to reset my password" = "how do I reset my password"".
// So a turn with no pronoun at all asks as anyone, exactly as the generic
// "I" does, and a "he" or "she" on the other side names someone the
// conversation introduced. 11b8793 compares the third person against the
// generic subject (whose(owned, subjects)), but a side with no pronoun
// has neither, and outside(pb, "") is false: every third person passes.
// The guards are no longer even consistent: "How to get rid of a cold
// fast?" matches both "How do I get rid of a cold fast?" and "How can she
// get rid of a cold fast?", which are vetoed against each other. In a
// conversation that began "I'm a US citizen; my husband has an Indian
// passport", "How does he apply for a passport?" is served the answer to
// "How to apply for a passport?" (the US process), the Z271 defect with
// the "I" left out.
func TestGuardsZ272VetoAThirdPersonAgainstATurnWithNoPronoun(t *testing.T) {
	// The consistency the README's rules imply, checked first.
	if vetoes(&allGuards, "How to get rid of a cold fast?", "How do I get rid of a cold fast?") != 0 {
		t.Fatal("setup: a turn with no pronoun no longer matches its generic \"how do I\"")
	}
	if vetoes(&allGuards, "How do I get rid of a cold fast?", "How can she get rid of a cold fast?") == 0 {
		t.Fatal("setup: the generic \"I\" passes for \"she\" (11b8793's rule)")
	}
	z271Vetoed(t, [][2]string{
		{"How to get rid of a cold fast?", "How can she get rid of a cold fast?"},
		{"How to apply for a passport?", "How does he apply for a passport?"},
		{"Is it normal to feel tired all the time?", "Is it normal for him to feel tired all the time?"},
		{"What is the best way to lose weight?", "What is the best way for him to lose weight?"},
		{"How much sleep is needed?", "How much sleep does she need?"},
	})
}

// README (entities) gives the -ed / -ing rule as "a word in -ed against
// its -ing ("annoyed" ≠ "annoying")", and participlesFlip's reason is
// "one side feels or undergoes what the other causes or does". But the
// rule takes every -ed word whose stem the other side has in -ing,
// whatever the two words do in the sentence: "for improved posture" and
// "for improving posture" (a purpose: the posture to be improved) ask the
// same, and nothing else tells them apart — no other guard vetoes these
// pairs (RATIONALE: a rule that refuses ordinary paraphrases is "too
// eager"; later reviews relaxed such rules). Every such turn (tips for
// increased / increasing productivity, foods for reduced / reducing
// inflammation) is now a miss for its paraphrase.
func TestGuardsZ272PurposeParticiplesAreParaphrases(t *testing.T) {
	for _, c := range [][2]string{
		{"What are the best exercises for improved posture?", "What are the best exercises for improving posture?"},
		{"Best foods for improved sleep", "Best foods for improving sleep"},
		{"Tips for improved productivity", "Tips for improving productivity"},
		{"Foods for increased energy", "Foods for increasing energy"},
		{"Exercises for reduced back pain", "Exercises for reducing back pain"},
	} {
		if ev := vetoes(&allGuards, c[0], c[1]); ev != 0 {
			t.Errorf("%q / %q: vetoed (%s)", c[0], c[1], EventNames[ev])
		}
		if ev := vetoes(&allGuards, c[1], c[0]); ev != 0 {
			t.Errorf("%q / %q: vetoed (%s)", c[1], c[0], EventNames[ev])
		}
	}
}

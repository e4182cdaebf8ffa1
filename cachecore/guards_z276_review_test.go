package cachecore

import "testing"

// Review Z276 (follow-up of 11b8793, 0187835 and b402fed: the semantic
// guards' participles and persons).

// README (entities): "a feeling or state in -ed against its -ing ("an
// annoyed customer" ≠ "an annoying customer", "being followed" ≠
// "following")". 11b8793 vetoed every such pair; 0187835 counted an -ed
// word only within three words after "be", "so", "get" …, and b402fed
// brought back the attributive -ed and the far predicate only for a
// list of verbs of feeling (feelingStems). A state no feeling verb names
// — what someone or something underwent — passes again wherever it is
// not right after "is" or "being": "How to help a bullying child?" (one
// who bullies) is served the answer to "How to help a bullied child?",
// "Signs of an abusing partner" "Signs of an abused partner", "First aid
// for a drowning person" (still alive) "First aid for a drowned person".
// Every one of these pairs was vetoed at 11b8793 (participleForms,
// semantic_guards.go); "Why is my son being bullied?" / "Why is my son
// bullying?" still is.
func TestGuardsZ276UndergoneStatesOutsideTheFeelingList(t *testing.T) {
	if vetoes(&allGuards, "Why is my son being bullied?", "Why is my son bullying?") == 0 {
		t.Fatal("setup: \"being bullied\" / \"bullying\" is not vetoed")
	}
	z271Vetoed(t, [][2]string{
		{"How to help a bullied child?", "How to help a bullying child?"},
		{"How to spot a bullied kid", "How to spot a bullying kid"},
		{"Signs of an abused partner", "Signs of an abusing partner"},
		{"First aid for a drowned person", "First aid for a drowning person"},
		{"How to calm a threatened dog?", "How to calm a threatening dog?"},
		{"How to deal with a distracted coworker?", "How to deal with a distracting coworker?"},
		{"Why is my teenage son bullied at school?", "Why is my teenage son bullying at school?"},
	})
}

// README (entities): the "I" or "you" of "how do I" is anyone, "nor
// someone the conversation named: … "how to get a visa" ≠ "does he need
// a visa" … (a possessive whose person the turn names passes: "how can a
// student improve their grades" = "… improve grades")". b402fed's named()
// (semantic_guards.go) counts only "he", "him", "she", "himself" and
// "herself", leaving out "her" with "his" and "their" as possessives.
// But "her" is also the object pronoun, "him"'s counterpart: "How much
// paracetamol to give him?" is vetoed against "How much paracetamol to
// give?", "How much paracetamol to give her?" (a daughter the
// conversation named) is served the generic (adult) answer. And a
// possessive passes whether or not the turn names its person: "How to
// renew his passport?" names no one but the "he" of the conversation
// (an Indian husband's passport, against "How to renew a passport?"),
// exactly as "How does he renew a passport?", which is vetoed. All these
// pairs were vetoed at 0187835.
func TestGuardsZ276HerAndPossessivesOfNoOneTheTurnNames(t *testing.T) {
	if vetoes(&allGuards, "How much paracetamol to give him?", "How much paracetamol to give?") == 0 {
		t.Fatal("setup: \"him\" against a turn with no pronoun is not vetoed")
	}
	if vetoes(&allGuards, "How does he renew a passport?", "How to renew a passport?") == 0 {
		t.Fatal("setup: \"he\" against a turn with no pronoun is not vetoed")
	}
	z271Vetoed(t, [][2]string{
		{"How much paracetamol to give her?", "How much paracetamol to give?"},
		{"What gift to buy her?", "What gift to buy?"},
		{"How to renew his passport?", "How to renew a passport?"},
		{"How to apply for her visa?", "How to apply for a visa?"},
		{"How much does his surgery cost?", "How much does the surgery cost?"},
	})
}

// b402fed vetoes a generic "they" against a generic "I" or "you"
// (otherGeneric, semantic_guards.go: "do I need a visa" ≠ "do they need
// a visa", README), but not against a generic "we": otherGeneric looks
// for '1' or '2' in the other side's generic persons, and "we" is 'w'.
// "Do they need a visa for Japan?" (the parents the conversation named,
// Indian passports) is served the answer to "Do we need a visa for
// Japan?" (a US family's), the very defect b402fed closed for "I".
func TestGuardsZ276GenericTheyAgainstAGenericWe(t *testing.T) {
	if vetoes(&allGuards, "Do I need a visa for Japan?", "Do they need a visa for Japan?") == 0 {
		t.Fatal("setup: \"do they\" passes for a generic \"do I\"")
	}
	z271Vetoed(t, [][2]string{
		{"Do we need a visa for Japan?", "Do they need a visa for Japan?"},
		{"Should we take the job offer?", "Should they take the job offer?"},
		{"Can we get a refund?", "Can they get a refund?"},
		// ("How do we apply for a visa?" / "How do they apply …" passes:
		// "how do they" is read as how a thing is done, by anyone, as in
		// "how do they make cheese" (TestGuardsZ276ImpersonalTheyAgainstGenericYou).)
	})
}

// The other side of b402fed's otherGeneric: its own comment and named()'s
// take "they" as "often anyone ("how do they make cheese")", and both
// "How do they make cheese?" and "How do you make cheese?" still match
// "How is cheese made?". Yet otherGeneric vetoes the impersonal "they"
// against the generic "you" whatever is asked, so the commonest
// paraphrase of a how-is-it-done question is now a miss
// (semantic.veto.entities), and the guards are no longer consistent
// (A = C, B = C, A ≠ B). Every pair below passed before b402fed.
func TestGuardsZ276ImpersonalTheyAgainstGenericYou(t *testing.T) {
	if vetoes(&allGuards, "How do they make cheese?", "How is cheese made?") != 0 ||
		vetoes(&allGuards, "How do you make cheese?", "How is cheese made?") != 0 {
		t.Fatal("setup: \"how do they/you make cheese\" no longer matches \"how is cheese made\"")
	}
	for _, c := range [][2]string{
		{"How do they make cheese?", "How do you make cheese?"},
		{"How do they build skyscrapers?", "How do you build skyscrapers?"},
		{"How do they measure earthquakes?", "How do you measure earthquakes?"},
		{"How do they decaffeinate coffee?", "How do you decaffeinate coffee?"},
		{"How do they calculate credit scores?", "How do you calculate credit scores?"},
	} {
		if ev := vetoes(&allGuards, c[0], c[1]); ev != 0 {
			t.Errorf("%q / %q: vetoed (%s)", c[0], c[1], EventNames[ev])
		}
		if ev := vetoes(&allGuards, c[1], c[0]); ev != 0 {
			t.Errorf("%q / %q: vetoed (%s)", c[1], c[0], EventNames[ev])
		}
	}
}

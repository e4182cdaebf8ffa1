package cachecore

import (
	"slices"
	"strings"
	"unicode"
	"unicode/utf8"
)

// The false-positive guards. A cosine threshold cannot tell "is it safe"
// from "is it unsafe" (0.95–0.99 with small encoders), nor 10 from 100,
// nor Paris→London from London→Paris: the vectors of such pairs are
// closer than many paraphrases. So a near match must also pass rules over
// the two turns' words, each a veto:
//
//   - numbers: the ordered lists of numbers (digits — any Unicode number:
//     "x²", "½" — or words), dates
//     (months, weekdays, relative days), units, currencies and the
//     operators and signs next to a digit are equal.
//     "convert 10 km to miles" ≠ "convert 100 km to miles";
//     "celsius to fahrenheit" ≠ "fahrenheit to celsius"; "7+5" ≠ "7*5";
//     "-40" ≠ "40" ≠ "–40"; "1,5" (a decimal comma) ≠ "15" (= "15,000"/1000);
//     ".5" ≠ "5" ≠ "-.5"; "0777" ≠ "777" (as written); "5!" ≠ "5";
//     "~5" ≠ "!5" ≠ "!-5" ("〜5" is "~5"); "- ~5" ≠ "~5"; "-(3 + 2)" ≠
//     "(3 + 2)"; "15:3" ≠ "15·3", "5‰" ≠ "5‱" (signs of category Po);
//     the same signs next to a one-letter variable ("n!", "x‰", "x·y" ≠
//     "x:y", "x · y" ≠ "x : y"); "₹" ≠ "₩";
//     "5′" ≠ "5″"; "Mb" ≠ "MB" (casedUnits);
//     and so are the code operators standing as words ("==" ≠ "===",
//     "&&" ≠ "||"), emoji or other symbol signs ("👍" ≠ "👎") and a
//     sign alone in quotes of any kind ("`:`" ≠ "`;`", "「:」", « : »,
//     "中的“:”").
//   - negation: as many negations on each side ("not", "no", "never",
//     "n't", "without", …), and no polar opposites: a word of one side
//     that is the other's with a negating prefix or suffix ("safe" /
//     "unsafe", "legal" / "illegal", "careful" / "careless") or an
//     antonym from a small list ("open" / "close", "pros" / "cons",
//     "same" / "different", "briefly" / "in detail").
//   - entities: the ordered lists of names (capitalised words not opening
//     a sentence, acronyms, words with digits, quoted text, code
//     identifiers joined by a dot, the last two compared whole) are equal;
//     every content word that only one side has is a common or framing
//     word ("way", "explain", "steps") — a rare word that only one side
//     has ("dosage" / "side effects") is a different ask; and the content
//     words come in the same order ("the dog chases the cat" ≠ "the cat
//     chases the dog"); a name or content word after "to" or "from" is
//     marked with its direction ("get to Paris" ≠ "get from Paris"), and
//     after "by" as the agent ("who killed Caesar" ≠ "who was killed by
//     Caesar"); a common word so marked takes part in the order ("the
//     answer to this question" ≠ "the question to this answer"); and
//     the two turns ask with the same question words among when, where,
//     who, whom, whose and why ("when was he born" ≠ "where was he born"),
//     about the same persons when each side names one ("who are you" ≠
//     "who am I", "your name" ≠ "my name"; the "I" or "you" of "how do
//     I", "can you explain", "I want to", "if I" or "am I allowed" is
//     anyone and not compared, that of "did I" is not) in the same roles
//     when each side names two or more ("can you help me" ≠ "can I help
//     you"), in the same tense
//     when each side's auxiliaries mark one the other lacks ("who is the
//     CEO" ≠ "who was the CEO"; "who discovered" = "who was it that
//     discovered": a verb's own tense is no marker) and, when each side
//     has a quantifier the other lacks, with the same quantifiers ("are
//     all mushrooms poisonous" ≠ "are some mushrooms poisonous" or "are
//     any mushrooms poisonous"; "some of the best movies of all time" =
//     "the best movies of all time"). These are common words, so a turn
//     made only of them ("who are you") has no content word for the rules
//     before to compare.
//
// They compare only the turns: everything else is equal by construction
// (a candidate is looked up under the query's own key with its turn put
// back: candidateKey).

// vetoes returns the event of the first guard that vetoes a (query) and b
// (stored), or 0.
func vetoes(g *Guards, a, b string) Event {
	ta, tb := tokenize(a), tokenize(b)
	if !english(ta) || !english(tb) { // "Explaining recursion" / "Explain recursion" are both English
		unstem(ta)
		unstem(tb)
	}
	if g.Numbers && !slices.Equal(quantities(ta), quantities(tb)) {
		return EvVetoNumbers
	}
	if g.Negation && (negations(ta) != negations(tb) || opposed(ta, tb)) {
		return EvVetoNegation
	}
	if g.Entities && (!slices.Equal(entities(ta), entities(tb)) || !slices.Equal(codeFragments(a), codeFragments(b)) || rareDifference(ta, tb) || !slices.Equal(contentOrder(ta), contentOrder(tb)) ||
		asks(ta, prepositions(tb)) != asks(tb, prepositions(ta)) || otherPersons(ta, tb) || tensed(ta, tb) || quantified(ta, tb) || otherAsk(ta, tb) ||
		participlesFlip(ta, tb)) {
		return EvVetoEntities
	}
	return 0
}

// codeFragments lists in order the turn's words that are code: a run
// without space, its surrounding quotes, brackets and sentence
// punctuation trimmed, that has a letter and a code sign among its
// characters ("!user", "u+x", "get_user", "/users", "a*b", "HEAD~",
// "[^a-z]+", "-I"), compared as written. The word rules read letters and
// a few signs; a code fragment's meaning is all of its characters.
// Prose punctuation is no code sign: an apostrophe, a dot, a colon, a
// hyphen between words of four letters or more ("well-known"; not
// "u-x", "go-rwx", a flag's "-i"), and a fragment of digits and signs
// only ("50%", "$5") is the numbers guard's.
func codeFragments(s string) []string {
	var out []string
	for _, w := range strings.Fields(s) {
		if q := strings.TrimRight(w, ",.;:?!"); len(q) > 2 && q[0] == '`' && q[len(q)-1] == '`' {
			// Backticks quote code whole: the "?" of "`ab?`" is a regex
			// quantifier, no sentence's end (review Z196).
			if q = q[1 : len(q)-1]; codeQuoted(q) {
				out = append(out, q)
			}
			continue
		}
		w = strings.TrimLeft(w, "\"'`“”‘’«»([{")
		w = strings.TrimRight(w, "\"'`“”‘’«»)]},.;:?!")
		if isCodeFragment(w) {
			out = append(out, w)
		}
	}
	return out
}

func isCodeFragment(w string) bool {
	letter, sign := false, false
	for i, r := range w {
		switch {
		case unicode.IsLetter(r):
			letter = true
		case strings.ContainsRune("_/\\!*^~()[]{}<>=&|+#@$%", r):
			sign = true
		case r == '-' && (i == 0 || shortRun(w[:i], true) || shortRun(w[i+1:], false)):
			sign = true // a flag ("-i"), a mode ("u-x"), not "well-known"
		}
	}
	return letter && sign
}

// codeQuoted reports a word quoted in backticks that is code: a letter
// and any sign but a letter or digit (isCodeFragment's signs, and the
// "?" or "." a pattern holds).
func codeQuoted(w string) bool {
	letter, sign := false, false
	for _, r := range w {
		switch {
		case unicode.IsLetter(r):
			letter = true
		case !unicode.IsNumber(r) && r != '`':
			sign = true
		}
	}
	return letter && sign
}

// shortRun reports a run of at most three letters at the end (before) or
// the start of s, next to a hyphen.
func shortRun(s string, before bool) bool {
	n := 0
	for n < 4 && s != "" { // at most four runes read: a long word costs no more
		r, size := utf8.DecodeRuneInString(s)
		if before {
			r, size = utf8.DecodeLastRuneInString(s)
		}
		if !unicode.IsLetter(r) {
			break
		}
		n++
		if before {
			s = s[:len(s)-size]
		} else {
			s = s[size:]
		}
	}
	return n > 0 && n <= 3
}

type token struct {
	w       string // lower case
	stem    string
	cap     bool // capitalised, not opening a sentence
	upper   bool // an acronym (2+ upper-case letters)
	digit   bool // has a number: a digit, or a superscript, fraction … (Unicode N)
	quoted  bool
	symbol  bool // a currency or unit sign ($ € £ % °), or an operator or sign next to a digit
	sentEnd bool
	// raw is the word as written when that is not w (it has capitals):
	// units whose case is their meaning read from it (casedUnits).
	raw string
	// comma: the number as written when it has a comma, which only
	// English text reads as numberText does (unstem puts it back).
	comma   string
	written bool // unstem: comma is its number (raw too, when set)
	// code: joined to a word by a dot ("errors.Is", "json.loads"), a
	// code identifier: a name, compared whole.
	code bool
}

func tokenize(s string) []token {
	var out []token
	start := true
	quoted := false
	point := -1  // where a number opened by a decimal point starts (".5")
	dotted := -1 // where a word joined to the one before by a dot starts
	rs := []rune(s)
	// rs[plainFrom+1:plainTo] is the rest of a run of opRunes in which no
	// operator starts after its first rune: a rune there follows another
	// of the run, so none stands alone, and none is attached without a
	// sign of = < > & | after it. Tried at each of its runes, such a run
	// ("a....a") cost the square of its length (review Z63).
	plainFrom, plainTo := 0, 0
	// rs[i:unaryTo] is the rest of a run of "!" and "~" that a digit
	// follows when unaryDigit: each is a sign ("!!0", "~5"). Found once
	// per run, not at each of its runes (work linear in the turn).
	unaryTo, unaryDigit := 0, false
	for i := 0; i < len(rs); {
		r := rs[i]
		if i >= plainTo && strings.ContainsRune(opRunes, r) {
			if end := opRunEnd(rs, i); !hasOpSign(rs[i+1 : end]) {
				plainFrom, plainTo = i, end
			}
		}
		switch {
		case unicode.IsLetter(r) || unicode.IsNumber(r):
			j := i
			// A combining mark (Mn, Mc) is part of its word: Indic vowel
			// signs, accents of decomposed (NFD) text.
			for j < len(rs) && (unicode.IsLetter(rs[j]) || unicode.IsNumber(rs[j]) || unicode.In(rs[j], unicode.Mn, unicode.Mc) ||
				(rs[j] == '.' || rs[j] == ',') && j+1 < len(rs) && unicode.IsNumber(rs[j+1]) && j > i && unicode.IsNumber(rs[j-1]) ||
				rs[j] == '\'' && j+1 < len(rs) && unicode.IsLetter(rs[j+1]) && j > i) {
				j++
			}
			j = nameSigns(rs, j)
			word := string(rs[i:j])
			t := token{quoted: quoted}
			aux := ""
			hasUpper, allUpper, letters, innerUpper := false, true, 0, false
			for k, c := range []rune(word) {
				if k > 0 && unicode.IsUpper(c) {
					innerUpper = true // iPhone, PostgreSQL, macOS
				}
				if unicode.IsNumber(c) {
					t.digit = true
				}
				if unicode.IsLetter(c) {
					letters++
					if unicode.IsUpper(c) {
						hasUpper = true
					} else {
						allUpper = false
					}
				}
			}
			t.upper = letters >= 2 && allUpper
			t.cap = !start && unicode.IsUpper(rs[i]) && hasUpper || innerUpper
			t.w = strings.ToLower(word)
			if hasUpper {
				t.raw = word
			}
			if dotted == i && len(out) > 0 {
				t.code, out[len(out)-1].code = true, true
			}
			if strings.HasSuffix(t.w, "n't") {
				out = append(out, token{w: "not", stem: "not"})
				t.w = strings.TrimSuffix(t.w, "n't")
				switch t.w {
				case "ca":
					t.w = "can"
				case "wo":
					t.w = "will"
				}
			} else if k := strings.IndexByte(t.w, '\''); k > 0 {
				aux = contracted(t.w[:k], t.w[k:])
				t.w = t.w[:k] // 's, 're, 'll, 've, 'd
			}
			if t.digit {
				if strings.IndexByte(t.w, ',') >= 0 {
					t.comma = t.w
				}
				t.w = numberText(t.w)
				if point == i {
					t.w = "0." + t.w // ".5" is 0.5
				}
			}
			t.stem = stem(t.w)
			out = append(out, t)
			if aux != "" {
				out = append(out, token{w: aux, stem: aux})
			}
			start = false
			i = j
			continue
		case primeAt(rs, i, quoted):
			// Feet and inches (minutes and seconds) after a digit: "5′" ≠
			// "5″", and "5'" ≠ "5''" or "5\"" as typed.
			p, n := prime(rs, i)
			out = append(out, token{w: p, stem: p, symbol: true})
			i += n
			continue
		case r == '"' || r == '“' || r == '”' || r == '«' || r == '»' || r == '`':
			quoted = !quoted // a backtick quotes code: "the `find` command"
		case r == '\'' || r == '‘' || r == '’':
			// Single quotes around a word ("spell 'their'"); an apostrophe
			// inside a word is part of it (above), one after a plural
			// ("the students' books") quotes nothing.
			if !quoted && (i == 0 || unicode.IsSpace(rs[i-1]) || rs[i-1] == '(') && i+1 < len(rs) && unicode.IsLetter(rs[i+1]) {
				quoted = true
			} else if quoted && i > 0 && !unicode.IsSpace(rs[i-1]) && (i+1 == len(rs) || !unicode.IsLetter(rs[i+1])) {
				quoted = false
			}
		case strings.ContainsRune("([{", r) && i+1 < len(rs) && rs[i+1] == closer(r):
			// An empty pair stands for itself in code questions: "() and []".
			out = append(out, token{w: string(rs[i : i+2]), stem: string(rs[i : i+2]), symbol: true})
			i += 2
			continue
		case strings.ContainsRune("([{", r) && bracketsOperand(rs, i, 1) || strings.ContainsRune(")]}", r) && bracketsOperand(rs, i, -1):
			// A bracket of a formula, next to its operand inside: it groups
			// ("(2 + 3) * 4" is not "2 + (3 * 4)") and its kind is a
			// meaning ("[0, 1]" is not "(0, 1)", "{1, 1}" not "[1, 1]")
			// (review Z196); spaces inside too: "( 2 + 3 ) * 4" (review
			// Z202).
			out = append(out, token{w: string(r), stem: string(r), symbol: true})
		case (r == '@' || r == '#') && standsAlone(rs, i):
			out = append(out, token{w: string(r), stem: string(r), symbol: true}) // "the @ symbol"
		case r == '$' && i+1 < len(rs) && strings.ContainsRune("?!#@*$_-", rs[i+1]):
			// A shell's special parameter: "$?" is not "$!".
			out = append(out, token{w: string(rs[i : i+2]), stem: string(rs[i : i+2]), symbol: true})
			i += 2
			continue
		case (r == '+' || r == '-') && (i == 0 || unicode.IsSpace(rs[i-1])) && i+1 < len(rs) && unicode.IsLetter(rs[i+1]):
			out = append(out, token{w: string(r), stem: string(r), symbol: true}) // a flag's sign: "chmod +x" / "-x"
		case r == '%' || r == '°' || unicode.Is(unicode.Sc, r): // every currency sign: "₹1000" ≠ "₩1000"
			out = append(out, token{w: string(r), stem: string(r), symbol: true})
		case halfWidth(r) == '!' && i > 0 && (unicode.IsNumber(rs[i-1]) || variableAt(rs, i-1)) && (i+1 == len(rs) || rs[i+1] != '='):
			// A factorial: "5! + 3" is 123, not "5 + 3"; "10!!" is
			// another number again. A run of "!" closing a sentence is
			// prose: "I am 30!"; "5!=3" is an operator (review Z86).
			// So is a full-width "！" and one after a variable: "5！+ 3",
			// "n! + 1" (review Z91).
			j := i
			for j < len(rs) && halfWidth(rs[j]) == '!' {
				j++
			}
			if !closesSentence(rs, j) {
				for ; i < j; i++ {
					out = append(out, token{w: "!", stem: "!", symbol: true})
				}
				continue
			}
			start = true
			if len(out) > 0 {
				out[len(out)-1].sentEnd = true
			}
			i = j
			continue
		case (halfWidth(r) == '!' || halfWidth(r) == '~') && unaryRun(rs, i, &unaryTo, &unaryDigit):
			// A logical or bitwise "!" or "~" before a number: "!5", "~5",
			// "!!0" differ from each other and from the number (review
			// Z86), and so do "!-1", "~-5", "!.5" (review Z91).
			op := string(halfWidth(r))
			out = append(out, token{w: op, stem: op, symbol: true})
		case r == ':' && (operandAt(rs, i-1) && operandAt(rs, i+1) || betweenVariables(rs, i)):
			// A colon between digits is a ratio, a division ("15:3" is 5 in
			// German) or a time, not a sentence's (review Z86); so is one
			// between variables: "x:y" (review Z91), "x : y" (review Z96).
			out = append(out, token{w: ":", stem: ":", symbol: true})
		case r > unicode.MaxASCII && unicode.Is(unicode.Po, r) && !prosePunct(r) &&
			(digitAfter(rs, i) || digitBefore(rs, i) || variableAt(rs, i-1) && (i+1 == len(rs) || !unicode.IsLetter(rs[i+1]) || variableAt(rs, i+1)) ||
				betweenVariables(rs, i)):
			// A sign of category Po next to a digit: full-width "＊" and
			// "／" as a CJK keyboard types them, "‰" ≠ "‱", the
			// multiplication dot "·", "§"; not a sentence's punctuation
			// ("5。", "5…") (review Z86). Between variables too: "x·y"
			// is a product (review Z91), and so is "x · y"; "x‰" ends
			// its operand as "5‰" does (review Z96).
			op := operator(r)
			out = append(out, token{w: op, stem: op, symbol: true})
		case minus(r) && minusBeforeNumber(rs, i, &unaryTo, &unaryDigit):
			// A minus before a decimal point or before a "!" or "~" that
			// a number follows is next to no digit, yet "-.5" is not
			// ".5" and "-~5" (6) is not "~5" (-6) (review Z91); nor is
			// "- ~5" "~5", or "-(3 + 2)" "(3 + 2)" (review Z96).
			out = append(out, token{w: "-", stem: "-", symbol: true})
		case (strings.ContainsRune("+−*×/÷^=<>", r) || unicode.Is(unicode.Pd, r)) && (digitAfter(rs, i) || digitBefore(rs, i)) &&
			!(unicode.Is(unicode.Pd, r) && i > 0 && unicode.IsLetter(rs[i-1])): // a name's hyphen: COVID-19, GPT-4
			op := operator(r)
			out = append(out, token{w: op, stem: op, symbol: true})
		case strings.ContainsRune(opRunes, r) && (i <= plainFrom || i >= plainTo) && operatorEnd(rs, i) != i:
			// An operator standing as a word ("== and ===", "&&", "//")
			// or written between names ("x>y", "a&&b", "x==y").
			j := operatorEnd(rs, i)
			var op strings.Builder
			for _, c := range rs[i:j] {
				op.WriteString(operator(c))
			}
			out = append(out, token{w: op.String(), stem: op.String(), symbol: true})
			i = j
			continue
		case unicode.Is(unicode.So, r) || r > unicode.MaxASCII && unicode.Is(unicode.Sm, r):
			// An emoji or other symbol sign, a mathematical symbol: "👍" ≠
			// "👎", "≤" ≠ "≥", "∪" ≠ "∩".
			out = append(out, token{w: string(r), stem: string(r), symbol: true})
		case r == '.' && i+1 < len(rs) && unicode.IsNumber(rs[i+1]) && (i == 0 || !unicode.IsLetter(rs[i-1]) && !unicode.IsNumber(rs[i-1])):
			// A decimal point opening a number: ".5 mg" is not "5 mg".
			point = i + 1
		case r == '.' && i > 0 && unicode.IsLetter(rs[i-1]) && i+1 < len(rs) && unicode.IsLetter(rs[i+1]):
			// A dot between two letters joins a code identifier
			// ("errors.Is", "json.loads") or an abbreviation ("e.g."):
			// no sentence ends there.
			dotted = i + 1
		case unicode.IsPunct(r) && quotedAlone(rs, i):
			// A sign alone in quotes or backticks is what the turn asks
			// about, not prose: "the `:` in slicing" ≠ "the `;` …",
			// "escape '.'" ≠ "escape ','" (review Z86).
			out = append(out, token{w: string(r), stem: string(r), symbol: true})
		case r == '.' || r == '?' || r == '!' || r == ':' || r == ';' || r == '\n':
			start = true
			if len(out) > 0 {
				out[len(out)-1].sentEnd = true
			}
		}
		i++
	}
	return out
}

// unstem compares ts's words whole: the stemmer is English, and elsewhere
// it folds words that differ ("hablas" / "habla"), where any differing
// word must veto.
//
// Its numbers keep their commas as written: "1,250 kg" is 1.25 kg in
// German or Italian, not the 1250 kg it is in English, and "1.250" is
// 1250 there; each form is only equal to itself (review Z196).
func unstem(ts []token) {
	for k := range ts {
		if ts[k].comma != "" {
			ts[k].w, ts[k].written = ts[k].comma, true
		}
		ts[k].stem = ts[k].w
	}
}

// english reports a turn with a common word (commonWords) no other
// language the model reads writes alike ("the", "what", "explain" …):
// its words are stemmed. ("a", "in", "is", "was", "so", "me", "on", "do"
// … are words of Spanish, German, French, Italian or Portuguese too.)
func english(ts []token) bool {
	for _, t := range ts {
		if commonWords[t.w] && !sharedWords[t.w] || t.stem != t.w && inflectedFraming[t.stem] {
			return true
		}
	}
	return false
}

var sharedWords = set(`a an in is was so me on per via vs ok okay hi hey hello please thanks thank i do as no name list idea info come mine die de la
	simple has he also will kind sort type question possible concept information but correct general final normal total`)

// unaryRun reports whether the run of "!" and "~" (or their full-width
// forms) that rs[i] is in ends right before a number, signed or opened by
// a decimal point ("!5", "~-5", "!.5"; review Z91); false when rs[i] is no
// such sign. The run is read once, from its first rune: its end and the
// answer are kept in to and digit for the rest of it.
func unaryRun(rs []rune, i int, to *int, digit *bool) bool {
	if i >= *to {
		j := i
		for j < len(rs) && (halfWidth(rs[j]) == '!' || halfWidth(rs[j]) == '~') {
			j++
		}
		*to, *digit = j, j > i && numberAt(rs, j)
	}
	return *digit
}

// minusBeforeNumber reports a minus at rs[i] before a decimal point or a
// run of "!" and "~" that opens a number, past spaces ("-.5", "- ~5",
// "- !!5"), or right before a bracket that opens a number, a unary sign
// or a variable ("-(3 + 2)", "-(~5)", "-(x + 1)") (reviews Z91, Z96). The
// spaces are read once: each run follows one minus.
func minusBeforeNumber(rs []rune, i int, to *int, digit *bool) bool {
	k := i + 1
	for k < len(rs) && rs[k] == ' ' {
		k++
	}
	if k < len(rs) && rs[k] == '.' && numberAt(rs, k) || unaryRun(rs, k, to, digit) {
		return true
	}
	return k == i+1 && k < len(rs) && rs[k] == '(' && (numberAt(rs, k+1) || variableAt(rs, k+1) || unaryRun(rs, k+1, to, digit))
}

// bracketsOperand reports a number or a variable inside the bracket at
// rs[i], past spaces: after it (step 1, an opening one) or before it
// (step -1, a closing one).
func bracketsOperand(rs []rune, i, step int) bool {
	j := i + step
	for j >= 0 && j < len(rs) && rs[j] == ' ' {
		j += step
	}
	if step > 0 {
		return numberAt(rs, j) || variableAt(rs, j)
	}
	return j >= 0 && (unicode.IsNumber(rs[j]) || variableAt(rs, j))
}

// numberAt reports a number starting at rs[j], perhaps after a sign and a
// decimal point: "5", "-1", ".5", "-.5".
func numberAt(rs []rune, j int) bool {
	if j < len(rs) && (rs[j] == '+' || minus(rs[j])) {
		j++
	}
	if j < len(rs) && rs[j] == '.' {
		j++
	}
	return j < len(rs) && unicode.IsNumber(rs[j])
}

// halfWidth reads the full-width "！" and "～" a CJK keyboard types as
// "!" and "~": "5！" is a factorial, "～5" a complement (review Z91). So
// are the wave dashes "〜" and "〰": "〜" is the tilde a Japanese IME on
// macOS types, a dash (Pd) by category only (review Z96).
func halfWidth(r rune) rune {
	switch r {
	case '！', '～':
		return r - ('！' - '!')
	case '〜', '〰':
		return '~'
	}
	return r
}

// minus reports a minus sign or a dash typed for one before a number:
// not a wave dash, which is a tilde ("〜5" is "~5", not "-5": halfWidth,
// operator; review Z96).
func minus(r rune) bool {
	return r == '−' || unicode.Is(unicode.Pd, r) && halfWidth(r) == r
}

// variableAt reports a one-letter word at rs[j], a variable of a formula:
// the "n" of "n!", the "x" and "y" of "x·y" (review Z91).
func variableAt(rs []rune, j int) bool {
	word := func(k int) bool { return k >= 0 && k < len(rs) && (unicode.IsLetter(rs[k]) || unicode.IsNumber(rs[k])) }
	return j >= 0 && j < len(rs) && unicode.IsLetter(rs[j]) && !word(j-1) && !word(j+1)
}

// betweenVariables reports a sign between variables spaced as a formula
// is typed, one space on each side: "x · y", "a : b" (review Z96). A
// sign with a space after it only, as prose writes "Plan A: b", is not.
func betweenVariables(rs []rune, i int) bool {
	return i >= 2 && i+2 < len(rs) && rs[i-1] == ' ' && rs[i+1] == ' ' && variableAt(rs, i-2) && variableAt(rs, i+2)
}

// operandAt reports a digit or a variable at rs[j].
func operandAt(rs []rune, j int) bool {
	return j >= 0 && j < len(rs) && (unicode.IsNumber(rs[j]) || variableAt(rs, j))
}

// closesSentence reports whether a run of ".", "?" or "!" ending at
// rs[j] closes a sentence: past spaces, a closing quote or bracket, the
// turn or its line ends, or a capital opens the next sentence.
func closesSentence(rs []rune, j int) bool {
	k := j
	for k < len(rs) && (rs[k] == ' ' || rs[k] == '\t' || rs[k] == '"' || rs[k] == ')') {
		k++
	}
	return k == len(rs) || rs[k] == '\n' || unicode.IsUpper(rs[k])
}

// prosePunct reports punctuation of category Po that a sentence is
// written with, even next to a digit: terminal punctuation (。、，！
// ؟ । …), quotation marks, an ellipsis and the Spanish opening marks.
func prosePunct(r rune) bool {
	return unicode.Is(unicode.Terminal_Punctuation, r) || unicode.Is(unicode.Quotation_Mark, r) || r == '…' || r == '¿' || r == '¡'
}

// quotedAlone reports a sign alone between quote marks or backticks, the
// opening one after a space, a bracket or the turn's start: "the `:`
// operator", "escape '.'"; not the comma of "\"a\",\"b\"". A CJK
// opening bracket opens wherever it stands ("Pythonの「:」"), and French
// guillemets have spaces inside: « : » (review Z91); an opening curly
// quote opens after a CJK word too: "Python中的“:”" (review Z96).
func quotedAlone(rs []rune, i int) bool {
	if strings.ContainsRune("\"'`“”‘’«»", rs[i]) { // a run of quotes ("\"\"\"") quotes no sign
		return false
	}
	if i >= 2 && i+2 < len(rs) && rs[i-2] == '«' && unicode.IsSpace(rs[i-1]) && unicode.IsSpace(rs[i+1]) && rs[i+2] == '»' {
		return true
	}
	if i == 0 || i+1 == len(rs) || !quoteMark(rs[i-1]) || !quoteMark(rs[i+1]) {
		return false
	}
	return i == 1 || unicode.IsSpace(rs[i-2]) || rs[i-2] == '(' || rs[i-1] == '「' || rs[i-1] == '『' ||
		// Chinese and Japanese put no space before their curly quotes:
		// "Python中的“:”" (review Z96). An opening mark only, so the
		// "、" of "“苹果”、“香蕉”" stays a list's.
		strings.ContainsRune("“‘", rs[i-1]) && strings.ContainsRune("”’", rs[i+1]) && unicode.In(rs[i-2], unicode.Han, unicode.Hiragana, unicode.Katakana, unicode.Hangul)
}

// quoteMark reports a backtick or any quotation mark: German „…“ and
// ‚…‘, CJK 「…」 and 『…』 too, not only " ' “ ” ‘ ’ « » (review Z91).
func quoteMark(r rune) bool {
	return r == '`' || unicode.Is(unicode.Quotation_Mark, r)
}

// closer is the bracket that closes r.
func closer(r rune) rune {
	switch r {
	case '(':
		return ')'
	case '[':
		return ']'
	}
	return '}'
}

// standsAlone reports whether rs[i] is a word of its own: nothing but
// space, a quote or the turn's ends around it ("the @ symbol", not
// "C#" or "a@b").
func standsAlone(rs []rune, i int) bool {
	apart := func(r rune) bool { return unicode.IsSpace(r) || strings.ContainsRune("\"'`“”‘’", r) }
	return (i == 0 || apart(rs[i-1])) && (i+1 == len(rs) || apart(rs[i+1]))
}

// contracted names the auxiliary of a contraction, for the tense: "'ll"
// is "will" ("who'll win" = "who will win"), "'re" "are", "'m" "am", and
// "'s" "is" after a question word or a pronoun ("who's the CEO" = "who is
// the CEO"; "John's" is a possessive).
func contracted(w, suffix string) string {
	switch suffix {
	case "'ll":
		return "will"
	case "'re":
		return "are"
	case "'m":
		return "am"
	case "'s":
		if isContractions[w] {
			return "is"
		}
	}
	return ""
}

var isContractions = set("what who where when why how that it there here he she")

// nameSigns returns the end of the word ending at rs[j]: past the '+' and
// '#' signs that close a name ("C++", "C#", "F#", "g++": without them all
// read "C"), unless a letter or digit follows them ("a+b", "n+1": an
// operator between two terms).
func nameSigns(rs []rune, j int) int {
	if j == 0 || !unicode.IsLetter(rs[j-1]) {
		return j
	}
	k := j
	for k < len(rs) && (rs[k] == '+' || rs[k] == '#') {
		k++
	}
	if k == j || k < len(rs) && (unicode.IsLetter(rs[k]) || unicode.IsNumber(rs[k])) {
		return j
	}
	return k
}

// opRunes are the runes code operators are made of.
const opRunes = "=!<>/&|?.:+-−*×÷%^~"

// standingOperator returns the end of the run of opRunes starting at
// rs[i] when it stands as a word (space, a quote, a bracket or the text's
// end on both sides) and is not prose punctuation: a dash, an ellipsis, a
// lone ',', ';' or ':', or '.', '?', '!' closing a sentence ("is it ?",
// French spacing). Otherwise it returns i. Next to a digit an operator is
// read one glyph at a time (tokenize).
func standingOperator(rs []rune, i int) int {
	if i > 0 && !opBoundary(rs[i-1]) {
		return i
	}
	j := opRunEnd(rs, i)
	if j < len(rs) && !opBoundary(rs[j]) {
		return i
	}
	run := string(rs[i:j])
	switch {
	case strings.Trim(run, "-−") == "", strings.Trim(run, ".") == "", run == ":":
		return i
	case strings.Trim(run, ".?!") == "":
		if closesSentence(rs, j) {
			return i
		}
	}
	return j
}

// operatorEnd returns the end of the operator starting at rs[i], standing
// as a word or attached to one; i if there is none.
func operatorEnd(rs []rune, i int) int {
	if j := standingOperator(rs, i); j != i {
		return j
	}
	return attachedOperator(rs, i)
}

// attachedOperator returns the end of the run of opRunes starting at
// rs[i] when it holds a comparison, logic, shift or assignment sign (= <
// > & |) and is written against a word on either side ("x>y", "a&&b",
// "x==y", "a>>b"); otherwise i. Prose runs ("e.g.", "and/or", "10:30", a
// hyphen) hold none of those signs.
func attachedOperator(rs []rune, i int) int {
	j := opRunEnd(rs, i)
	if !hasOpSign(rs[i:j]) ||
		(i == 0 || opBoundary(rs[i-1])) && (j == len(rs) || opBoundary(rs[j])) {
		return i
	}
	return j
}

// hasOpSign reports a comparison, logic, shift or assignment sign (= < >
// & |) among rs.
func hasOpSign(rs []rune) bool {
	for _, r := range rs {
		switch r {
		case '=', '<', '>', '&', '|':
			return true
		}
	}
	return false
}

// opRunEnd returns the end of the run of opRunes starting at rs[i].
func opRunEnd(rs []rune, i int) int {
	for i < len(rs) && strings.ContainsRune(opRunes, rs[i]) {
		i++
	}
	return i
}

func opBoundary(r rune) bool {
	return unicode.IsSpace(r) || strings.ContainsRune("\"'`“”‘’«»()[]{},;", r)
}

// operator names an operator or sign, one name per glyph of it.
func operator(r rune) string {
	switch r {
	case '×':
		return "*"
	case '÷':
		return "/"
	case '−':
		return "-"
	case '〜', '〰': // a wave dash is a tilde: "5 〜 10" is "5 ~ 10" (review Z96)
		return "~"
	}
	if r >= '！' && r <= '～' { // a full-width form is its ASCII sign: "＊" is "*" (review Z86)
		r -= '！' - '!'
	}
	if unicode.Is(unicode.Pd, r) { // a minus typed as a dash: "–40" is "-40"
		return "-"
	}
	return string(r)
}

// primeAt reports a foot or inch mark (minute or second) at rs[i] after a
// digit: ′ and ″, or ' ’ and " ” as typed, when no word follows the mark
// ("5'", not "the 90's") and a double quote closes no quotation.
func primeAt(rs []rune, i int, quoted bool) bool {
	if i == 0 || !unicode.IsNumber(rs[i-1]) {
		return false
	}
	r := rs[i]
	switch r {
	case '′', '″', '\'', '’':
	case '"', '”':
		if quoted {
			return false
		}
	default:
		return false
	}
	j := i + 1
	if j < len(rs) && rs[j] == r && (r == '\'' || r == '’' || r == '′') {
		j++ // "5''" is 5″
	}
	return j == len(rs) || !unicode.IsLetter(rs[j]) && !unicode.IsNumber(rs[j])
}

// prime names the mark at rs[i] (primeAt) and how many runes it takes:
// "′" for a single one, "″" for a double one or two singles.
func prime(rs []rune, i int) (string, int) {
	switch r := rs[i]; r {
	case '″', '"', '”':
		return "″", 1
	default:
		if i+1 < len(rs) && rs[i+1] == r {
			return "″", 2
		}
	}
	return "′", 1
}

// digitAfter and digitBefore report a digit next to rs[i], past spaces.
func digitAfter(rs []rune, i int) bool {
	for i++; i < len(rs) && rs[i] == ' '; i++ {
	}
	return i < len(rs) && unicode.IsNumber(rs[i])
}

func digitBefore(rs []rune, i int) bool {
	for i--; i >= 0 && rs[i] == ' '; i-- {
	}
	return i >= 0 && unicode.IsNumber(rs[i])
}

// numberText normalises a word with digits: a comma followed by exactly
// three digits separates thousands and goes; any other comma is a decimal
// comma and reads as a point ("1,500" is 1500, "1,5" is 1.5).
func numberText(w string) string {
	if !strings.Contains(w, ",") {
		return w
	}
	var b strings.Builder
	for i := 0; i < len(w); i++ {
		if w[i] != ',' {
			b.WriteByte(w[i])
			continue
		}
		n := 0
		for n < 4 && i+1+n < len(w) && w[i+1+n] >= '0' && w[i+1+n] <= '9' {
			n++
		}
		if n != 3 {
			b.WriteByte('.')
		}
	}
	return b.String()
}

// stem is a light English stemmer: enough for "resetting"/"reset",
// "passwords"/"password", "cheaper"/"cheap" not to count as different words.
func stem(w string) string {
	if len(w) <= 3 || unstemmed[w] {
		return w
	}
	for _, suf := range []string{"ingly", "edly", "ing", "ied", "ies", "ed", "es", "ly", "s"} {
		if strings.HasSuffix(w, suf) && len(w)-len(suf) >= 3 {
			w = w[:len(w)-len(suf)]
			if suf == "ies" || suf == "ied" {
				w += "y"
			}
			break
		}
	}
	// doubled consonant after a cut suffix: "resett" → "reset"
	if n := len(w); n >= 4 && w[n-1] == w[n-2] && !strings.ContainsRune("aeiouls", rune(w[n-1])) {
		w = w[:n-1]
	}
	return w
}

// unstemmed are words whose cut form is another word of another meaning:
// nouns in -ing that name something else than their verb's act ("shipping"
// is not a ship, "a setting" not "a set") and secure protocols' names,
// whose final s is no plural (https is not http: other ports). Review Z233.
var unstemmed = set("shipping booking training listing banking setting building meeting painting housing clothing " +
	"heading wedding landing warning filling timing funding marketing engineering programming accounting " +
	"https ldaps smtps imaps ftps pop3s wss sftps news")

// quantities lists numbers, dates, units and currency signs in order,
// normalised (number words as digits).
func quantities(ts []token) []string {
	var out []string
	for _, t := range ts {
		switch {
		case t.digit:
			w := t.w
			if t.raw != "" { // "50Mbps" is not "50MBps"
				if w = t.raw; !t.written {
					w = numberText(t.raw)
				}
				if strings.HasPrefix(t.w, "0.") && !strings.HasPrefix(w, "0.") {
					w = "0." + w
				}
			}
			// As written: a leading zero is part of what is asked
			// ("0777" is an octal 511, "007" has three digits); only a
			// decimal point's is read alike (".5" is "0.5") (review Z86).
			out = append(out, w)
		case t.symbol:
			out = append(out, t.w)
		default:
			if v, ok := casedUnits[t.spelled()]; ok {
				out = append(out, v)
			} else if siUnit(t.raw) {
				out = append(out, t.raw) // "MPa" ≠ "mPa", as written
			} else if v, ok := numberWords[t.w]; ok {
				out = append(out, v)
			} else if v, ok := unit(t); ok {
				out = append(out, v)
			} else if dateWords[t.w] || dateWords[t.stem] { // "evening" stems to "even"
				out = append(out, t.stem)
			}
		}
	}
	return out
}

// spelled is t's word as written.
func (t *token) spelled() string {
	if t.raw != "" {
		return t.raw
	}
	return t.w
}

// casedUnits are units whose case is their meaning, read as written: a
// megabit is not a megabyte, a milliwatt not a megawatt ("mbps", in lower
// case, is megabits as written by everyone). Other units fold case
// (unitWords).
var casedUnits = pairs(`Kb:kbit Mb:Mbit Gb:Gbit Tb:Tbit KB:KB kB:KB MB:MB GB:GB TB:TB
		kbps:kbit/s Kbps:kbit/s mbps:Mbit/s Mbps:Mbit/s gbps:Gbit/s Gbps:Gbit/s KBps:KB/s kBps:KB/s MBps:MB/s GBps:GB/s
		KiB:KiB MiB:MiB GiB:GiB TiB:TiB Kib:Kibit Mib:Mibit Gib:Gibit Tib:Tibit
		mW:mW MW:MW kW:kW GW:GW mWh:mWh kWh:kWh MWh:MWh GWh:GWh mV:mV kV:kV mA:mA mHz:mHz MHz:MHz`)

// siUnit reports a unit symbol after an SI prefix whose case is its
// meaning (milli and mega, pico and peta, kilo and kelvin …): "MPa",
// "mSv", "MΩ". raw is the word as written, with capitals ("" for none).
func siUnit(raw string) bool {
	if raw == "" {
		return false
	}
	r, n := utf8.DecodeRuneInString(raw)
	return strings.ContainsRune("mMpPkKnNgGTuµ", r) && siSymbols[raw[n:]]
}

var siSymbols = set(`Pa Ω Ohm ohm J N Sv Gy V A VA var Ah W Hz L l m g s Wh eV F H T C Bq K mol S Wb B b bit lm lx`)

// unit names t's unit: its word, its stem, or its word without a plural s
// ("miles" stems to "mil").
func unit(t token) (string, bool) {
	for _, w := range [...]string{t.w, t.stem, strings.TrimSuffix(t.w, "s")} {
		if v, ok := unitWords[w]; ok {
			return v, true
		}
	}
	return "", false
}

func negations(ts []token) int {
	n := 0
	for _, t := range ts {
		if negationWords[t.w] {
			n++
		}
	}
	return n
}

// opposed reports a word of one side whose polar opposite is on the
// other side only.
func opposed(a, b []token) bool {
	sa, sb := stemSet(a), stemSet(b)
	return opposedOneWay(sa, sb) || opposedOneWay(sb, sa)
}

func opposedOneWay(sa, sb map[string]bool) bool {
	for w := range sa {
		if sb[w] {
			continue
		}
		for _, p := range negPrefixes {
			if strings.HasPrefix(w, p) && len(w)-len(p) >= 3 {
				base := strings.TrimPrefix(strings.TrimPrefix(w, p), "-")
				if sb[base] && !sa[base] {
					return true
				}
			}
		}
		for _, pair := range negSuffixes {
			if strings.HasSuffix(w, pair[0]) {
				other := strings.TrimSuffix(w, pair[0]) + pair[1]
				if sb[other] && !sa[other] {
					return true
				}
			}
		}
		for _, o := range antonyms[w] {
			if sb[o] && !sa[o] {
				return true
			}
		}
	}
	return false
}

func stemSet(ts []token) map[string]bool {
	m := make(map[string]bool, len(ts))
	for _, t := range ts {
		m[t.stem] = true
		m[t.w] = true
	}
	return m
}

// entities lists names in order: capitalised words that do not open a
// sentence, acronyms, and quoted words. A common word is one only when
// quoted, in capitals or capitalised mid-sentence (two letters or more):
// "the `find` command", "the SQL IN operator", "install Go"; and so is
// a word the turn mentions (mentioned).
func entities(ts []token) []string {
	var out []string
	j := -1 // the last word before ts[i] that is no determiner
	for i, t := range ts {
		named := (t.cap || t.upper || t.quoted || t.code) && !t.digit && !t.symbol && (!commonWords[t.w] || t.quoted || t.code || t.upper || t.cap && len(t.w) > 1)
		if ment := !named && mentioned(ts, i); named || ment {
			// Compared whole: code (`sorted` is not `sort`, json.loads not
			// json.load), a word asked about ("hardly" is not "hard",
			// review Z39), and a name — HTTPS is not HTTP, Sass not SAS,
			// Rails not Rail (review Z233).
			out = append(out, direction(ts, i, j)+t.w)
		}
		if !determiners[t.w] {
			j = i
		}
	}
	return out
}

// mentioned reports whether ts[i] is a word the turn asks about rather
// than uses: right after "say", "spell" or the like ("how do I say hello
// in Japanese"); the word a word-asking noun's "of" names (asked); or,
// after any other "of", a common word ending its sentence or the turn
// ("what is the past of go").
func mentioned(ts []token, i int) bool {
	t := ts[i]
	if t.digit || t.symbol || i == 0 {
		return false
	}
	if mentionVerbs[ts[i-1].w] || asked(ts, i) || askedBefore(ts, i) || (ts[i-1].w == "word" || ts[i-1].w == "term") && !askSkips[t.w] {
		return true
	}
	return ts[i-1].w == "of" && (t.sentEnd || i == len(ts)-1) && commonWords[t.w] && !closingAdverbs[t.w] && !pointing[t.w]
}

// pointing are words that, after an ordinary "of" at a turn's end, frame
// or point back rather than name ("made of please", "the causes of it").
var pointing = set("please thanks it them him her me us you this that these those")

// asked reports whether ts[i] is the word after "of" following a noun that
// asks about a word ("the past tense of go", "the meanings of go",
// "the plural of this"), whatever the word is and whatever follows it
// ("… of go please", "… of go in british english"). Determiners, "to"
// and "the word/verb" between are passed over ("the past tense of the
// verb go", "of to go"), unless nothing else follows them ("the plural of
// this"). Reviews Z35–Z39 (stop 73): rules by what follows the word
// either missed such endings or took "please" and "it" for the ask after
// other nouns ("made of please", "the causes of it").
func asked(ts []token, i int) bool {
	// At most maxAskSkips words are passed over either way: a run of
	// determiners costs no more than its length (work linear in a turn).
	j := i - 1
	for j >= 0 && j >= i-maxAskSkips && askSkips[ts[j].w] {
		j--
	}
	if j < 1 || ts[j].w != "of" && ts[j].w != "for" || !wordNouns[ts[j-1].w] {
		return false
	}
	for k := i; askSkips[ts[k].w]; k++ {
		if ts[k].sentEnd || k == len(ts)-1 {
			return true // only passed-over words: they are the ask
		}
		if !askSkips[ts[k+1].w] || k+1 > j+maxAskSkips {
			return false // the ask follows
		}
	}
	return true
}

const maxAskSkips = 3

// askedBefore reports whether ts[i] is the word a word-asking noun after it
// asks about: "go's past tense", "what is go in the past tense" (review
// Z39). Like every rule here it can only add a veto: a word it takes
// wrongly for the ask costs a near hit, not a wrong answer.
func askedBefore(ts []token, i int) bool {
	t := ts[i]
	if askSkips[t.w] || tenseWords[t.w] || wordNouns[t.w] || t.sentEnd {
		return false
	}
	k, viaIn := i+1, false
	if k < len(ts) && ts[k].w == "in" && !ts[k].sentEnd {
		k, viaIn = k+1, true
		if k < len(ts) && determiners[ts[k].w] && !ts[k].sentEnd {
			k++
		}
	}
	if k < len(ts) && tenseWords[ts[k].w] && !ts[k].sentEnd {
		return k+1 < len(ts) && wordNouns[ts[k+1].w]
	}
	// Without a tense word only "X's meaning" and the like: "fill in
	// this form" asks about no word.
	return !viaIn && k < len(ts) && wordNouns[ts[k].w] && ts[k].w != "form" && ts[k].w != "forms"
}

// tenseWords qualify a word-asking noun ("past tense", "plural form").
var tenseWords = set("past present future perfect continuous progressive simple plural singular base")

// askSkips are passed over between a word-asking noun's "of" and the word
// asked about.
var askSkips = set("the a an this that these those to word words verb noun adjective adverb term")

// wordNouns ask about the word that follows their "of".
var wordNouns = set("tense tenses plural plurals singular possessive form forms synonym synonyms antonym antonyms " +
	"opposite opposites meaning meanings definition definitions spelling spellings pronunciation abbreviation " +
	"contraction conjugation conjugations participle gerund infinitive translation translations etymology " +
	"comparative superlative")

var mentionVerbs = set("say spell pronounce translate conjugate")

// direction marks ts[i] by a "to", "from" or "by" right before it, or before
// the determiners before it: ts[j] is the last word before ts[i] that is
// no determiner (-1: none). Callers keep j as they go, so that a run of
// determiners is not walked back from each of its words (work the square
// of a turn's length).
// A word after "to" with nothing between is often a verb ("how to
// reset"), so a bare "to" marks only a name; after "into", "from" and the
// like, or past a determiner or possessive ("to the airport", "from my
// laptop"), the word is a place or thing and is marked whatever it is.
func direction(ts []token, i, j int) string {
	if j < 0 {
		return ""
	}
	t := &ts[i]
	switch ts[j].w {
	case "to":
		if j == i-1 && !(t.cap || t.upper || t.quoted) {
			return ""
		}
		return "→"
	case "into", "onto", "toward", "towards":
		return "→"
	case "from":
		return "←"
	case "by":
		// The agent: "who was killed by Caesar" ≠ "who killed Caesar",
		// "books by children" ≠ "books for children". Not in a phrase
		// that frames: "step by step", "one by one", "by the way".
		if j > 0 && ts[j-1].w == t.w || byPhrases[t.w] {
			return ""
		}
		return "⇐"
	}
	return ""
}

// markedWord reports a common word that a direction mark (to, from, by
// …) makes a role worth comparing: "the answer to this question" ≠ "the
// question to this answer". Pronouns (compared as persons), "it", "here"
// and the like are not, nor are determiners (the word after them is).
func markedWord(t token, dir string) bool {
	return dir != "" && !t.digit && !t.symbol && personWords[t.w] == 0 && !questionWords[t.w] && !placeholderWords[t.w] && !determiners[t.w]
}

var byPhrases = set("way hand default heart chance far accident mistake")

var placeholderWords = set("it this that these those there here something anything someone anyone somebody anybody one")

var determiners = set("the a an my your our their his her its this that these those")

// asks is the set of question words that ask for a time, a place, a
// person or a reason, as bits; and a preposition closing a question that
// the other turn (its prepositions: other) does not have anywhere — "turn
// Bluetooth on" = "turn on Bluetooth", a particle moved.
func asks(ts []token, other int) int {
	m := 0
	for i, t := range ts {
		switch t.w {
		case "when":
			m |= 1
		case "where":
			m |= 2
		case "who", "whom", "whose":
			m |= 4
		case "why":
			m |= 8
		case "many", "much":
			if i > 0 && ts[i-1].w == "how" {
				m |= 16 // a count or an amount: "how many countries" ≠ "which countries"
			}
		}
		if b := preposition(t.w); b != 0 && other&b == 0 && closing(ts, i) {
			// "what is cheese made of" ≠ "how is cheese made", and which
			// one: "who does she work for" ≠ "… work with" ("of" and
			// "from" close alike: "made of" = "made from").
			if t.w == "from" {
				b = preposition("of")
			}
			m |= b << 5
		}
	}
	return m
}

// closingPrepositions are the prepositions that may close a question.
var closingPrepositions = strings.Fields("of for from with about to in on by at")

// preposition is w's bit among closingPrepositions (0: none of them).
func preposition(w string) int {
	for k, p := range closingPrepositions {
		if p == w {
			return 1 << k
		}
	}
	return 0
}

// prepositions is the set of closingPrepositions a turn has, as bits.
func prepositions(ts []token) int {
	m := 0
	for _, t := range ts {
		m |= preposition(t.w)
	}
	return m
}

// closing reports that ts[i] closes its sentence: nothing follows it
// there but an adverb that frames ("what does HTTP stand for exactly"),
// no object ("of what", "in detail").
func closing(ts []token, i int) bool {
	for j := i; !ts[j].sentEnd && j+1 < len(ts); {
		j++
		if !closingAdverbs[ts[j].w] {
			return false
		}
	}
	return true
}

var closingAdverbs = set("exactly actually precisely please again really basically then now")

// otherAsk reports common words that carry the ask, where a word only one
// side has would pass as framing: a word of one ask class on each side
// that the other lacks, a substitution ("give feedback" / "get feedback",
// "an example" / "the definition", "is Rust fast" / "is Rust easy"); an
// "or" against an "and" ("take ibuprofen and paracetamol" / "… or …");
// and an "only" after a determiner on one side ("the only language" / "a
// language"). An ask word one side adds ("a good way to make pancakes" /
// "how do I make pancakes") is still framing.
func otherAsk(a, b []token) bool {
	ca, cb := askClasses(a), askClasses(b)
	if slices.ContainsFunc(ca, func(c string) bool { return !slices.Contains(cb, c) }) &&
		slices.ContainsFunc(cb, func(c string) bool { return !slices.Contains(ca, c) }) {
		return true
	}
	ja, jb := conjunctions(a), conjunctions(b)
	if ja != 0 && jb != 0 && ja&2 != jb&2 {
		return true
	}
	ma, mb := polarModal(a), polarModal(b)
	return soleOnly(a) != soleOnly(b) || count(a, "same") != count(b, "same") ||
		ma != "" && mb != "" && ma != mb || particles(a) != particles(b)
}

// count is how many of ts are w.
func count(ts []token, w string) int {
	n := 0
	for _, t := range ts {
		if t.w == w {
			n++
		}
	}
	return n
}

// polarModal is the class of the modal or auxiliary that opens a yes/no
// question: "can felons vote" (possible, allowed) ≠ "should felons vote"
// (advice) ≠ "must I pay" (obligation) ≠ "are felons allowed" (fact),
// compared when both sides open so. "" when the turn opens otherwise, or
// with a request ("can you please explain", "could I ask": framing,
// README).
func polarModal(ts []token) string {
	if len(ts) < 2 {
		return ""
	}
	c := polarModals[ts[0].w]
	if c == "" || !asksAFavour(ts) {
		return c
	}
	return ""
}

// asksAFavour reports a turn that asks the one addressed for something: "can
// you (please) tell me …", "could you explain …" (a modal that asks a
// favour, "you", a framing verb, and no "your" after: "can you tell your
// boss" asks what one may do), or "could I ask …". "Should" and "must"
// never ask a favour.
func asksAFavour(ts []token) bool {
	switch ts[0].w {
	case "can", "could", "would", "will", "may":
	default:
		return false
	}
	if ts[1].w != "you" {
		// "could I ask you …", "can I ask a question": the one addressed is
		// asked; "can I ask my boss" asks what one may do.
		return subjectPronouns[ts[1].w] && len(ts) > 3 && ts[2].w == "ask" && askedOfYou[ts[3].w]
	}
	for k, t := range ts[2:] {
		switch {
		case t.w == "please" || t.w == "kindly" || t.w == "just":
		case framingVerbs[t.w]:
			// "can you tell your boss" asks what one may do: a verb that
			// takes a person, and the addressee's person next.
			next := 2 + k + 1
			return !(personVerbs[t.w] && next < len(ts) && ts[next].w == "your")
		default:
			return false
		}
	}
	return false
}

var askedOfYou = set("you a an something whether if")

var personVerbs = set("tell show give teach help remind let assist guide")

var polarModals = pairs(`can:can could:can may:can might:can should:should ought:should must:must
		is:fact are:fact was:fact were:fact am:fact do:fact does:fact did:fact will:fact would:fact has:fact have:fact had:fact`)

// particles is the set of particles that change a verb ("get over the
// flu" ≠ "get the flu", "get into Harvard" ≠ "get to Harvard") a turn
// has, as bits; the sides must have the same, wherever they stand.
func particles(ts []token) int {
	m := 0
	for i, t := range ts {
		switch t.w {
		case "over":
			m |= 1
		case "into":
			m |= 2
		case "onto":
			m |= 4
		case "under":
			m |= 8 // "under 21" ≠ "at 21", as "over 21" is
		case "through":
			if i == 0 || ts[i-1].w != "me" && ts[i-1].w != "us" { // "walk me through" frames
				m |= 16 // "see through glass" ≠ "see glass"
			}
		case "across":
			m |= 32
		case "around":
			m |= 64
		}
	}
	return m
}

// askClasses lists the ask classes of a turn's common words (askWords);
// "look like" is one ask (an appearance), apart from "like". A "like"
// whose nearest auxiliary before it is a form of "be", not "do", is
// describing: "what are cats like", "what is it like to …" ask what
// something is like, as "look like" does, not what it likes ("what do you
// think cats are like": the nearest decides). The auxiliary is kept while
// walking forward: a walk back from each "like" cost a run of them the
// square of its length (review Z63).
func askClasses(ts []token) []string {
	var out []string
	be := false // the nearest auxiliary so far is a form of "be" (describing)
	for i, t := range ts {
		describing := be
		switch t.w {
		case "do", "does", "did":
			be = false
		case "is", "are", "was", "were", "be", "been", "am":
			be = true
		}
		c, ok := askWords[t.w]
		if !ok {
			c, ok = askWords[t.stem]
		}
		switch {
		case !ok:
			continue
		case c == "like" && i > 0 && askWords[ts[i-1].stem] == "look":
			continue // counted with its "look"
		case c == "look" && i+1 < len(ts) && ts[i+1].w == "like":
			c = "look like"
		case c == "like" && describing:
			c = "look like" // "what are cats like" ≠ "what do cats like"
		case c == "let" && i+1 < len(ts) && (ts[i+1].w == "me" || ts[i+1].w == "us"):
			continue // "let me know": framing
		}
		out = append(out, c)
	}
	return out
}

// askWords maps common words that carry an ask to their class (words of
// one class say the same: "definition" = "meaning").
var askWords = pairs(`give:give provide:give get:get obtain:get receive:get make:make create:make sort:sort
		look:look like:like use:use using:use used:use usage:use work:work works:work working:work
		need:need needs:need needed:need want:want wants:want wanted:want
		define:define defined:define definition:define meaning:define mean:define means:define
		example:example examples:example share:give name:name
		fast:fast quick:fast quickly:fast easy:easy easiest:easy good:good possible:possible
		let:let lets:let letting:let`) // "let my son quit" ≠ "make my son quit" (review Z271)

// conjunctions is the set of "and" (1) and "or" (2) in a turn.
func conjunctions(ts []token) int {
	m := 0
	for _, t := range ts {
		switch t.w {
		case "and":
			m |= 1
		case "or":
			m |= 2
		}
	}
	return m
}

// soleOnly counts "only" ("the only language", "is Python only used
// for …"), but "if only" and "not only".
func soleOnly(ts []token) int {
	n := 0
	for i, t := range ts {
		if t.w == "only" && (i == 0 || ts[i-1].w != "if" && ts[i-1].w != "not") {
			n++
		}
	}
	return n
}

// otherPersons reports pronouns on each side that name other persons, or
// the same persons in swapped roles. A side without any is generic: "how
// to reset my password" = "how do I reset my password" (whose "I" and
// "my" are anyone's).
func otherPersons(a, b []token) bool {
	if swapped(roles(a), roles(b)) {
		return true
	}
	pa, ga, sa := persons(a)
	pb, gb, sb := persons(b)
	switch {
	case pa != "" && pb != "":
		return pa != pb
	case pa == "" && pb == "":
		return otherGeneric(a, sa, sb) || otherGeneric(b, sb, sa)
	case pa == "":
		return outside(pb, whose(ga, sa)) || ga == "" && sa == "" && named(b)
	}
	return outside(pa, whose(gb, sb)) || gb == "" && sb == "" && named(a)
}

// named reports "he", "she", "him", "her", "his" (someone the
// conversation named) against a side with no pronoun at all, which asks as
// anyone: "how to apply for a passport" ≠ "how does he apply for a
// passport", "what gift to buy" ≠ "what gift to buy her" (reviews Z272,
// Z276). Not "they", "them" or "their", often anyone's or a noun's the turn
// names ("how do they make cheese", "how can a student improve their
// grades" = "… improve grades"), nor the speaker or the one addressed ("how
// to reset a password" = "why can't I reset a password"; review Z274).
func named(ts []token) bool {
	for _, t := range ts {
		switch t.w {
		case "he", "him", "his", "she", "her", "hers", "himself", "herself":
			return true
		}
	}
	return false
}

// otherGeneric reports a generic "they" on side a against a generic "I",
// "you" or "we" on side b: "do I need a visa" asks as anyone who asks, "do
// they need a visa" of others (reviews Z274, Z276). A "they" after "how"
// and its auxiliary asks how a thing is done, by anyone: "how do they make
// cheese" = "how do you make cheese" (also "how do they apply for a visa"
// = "how do we apply …", the price of that reading).
func otherGeneric(a []token, sa, sb string) bool {
	return strings.IndexByte(sa, 't') >= 0 && strings.IndexByte(sb, 't') < 0 && strings.ContainsAny(sb, "12w") && !howTheyDo(a)
}

// howTheyDo reports "how" and an auxiliary before the turn's "they".
func howTheyDo(ts []token) bool {
	for i, t := range ts {
		if t.w == "they" {
			return i >= 2 && ts[i-2].w == "how" && modals[ts[i-1].w]
		}
	}
	return false
}

// participlesFlip reports a word in -ed on one side whose stem the other
// side has only in -ing, or the other way round: the stems are one word to
// the rules above, but one side feels or undergoes what the other causes or
// does ("annoyed" / "annoying", "the man being followed" / "the man
// following"; review Z271).
func participlesFlip(a, b []token) bool {
	fa := participleForms(a)
	if len(fa) == 0 {
		return false
	}
	for stem, f := range participleForms(b) {
		if g := fa[stem]; g != 0 && g != f {
			return true
		}
	}
	return false
}

// participleForms maps the stems of a turn's words in -ed (1) and -ing (2)
// to the forms it has them in. A word in -ed counts only as what someone
// is, feels or undergoes: within three words after a form of "be", "so",
// "too", "very", "feel", "get", "seem" or "become" ("so bored", "being
// followed", "is my cat scared"). Elsewhere it is no state of anyone: "for
// improved posture" = "for improving posture" (review Z272).
func participleForms(ts []token) map[string]byte {
	var m map[string]byte
	for i, t := range ts {
		var f byte
		switch {
		case t.stem == t.w:
			continue
		case strings.HasSuffix(t.w, "ed"):
			if !feelingStems[t.stem] && !stateBefore(ts, i) && i > 0 && purposeWords[ts[i-1].w] {
				continue // "for improved posture": an aim, no one's state
			}
			f = 1
		case strings.HasSuffix(t.w, "ing"):
			f = 2
		default:
			continue
		}
		if m == nil {
			m = map[string]byte{}
		}
		m[t.stem] |= f
	}
	return m
}

// stateBefore reports a word that makes ts[i] a state within the three
// words before it (participleForms).
func stateBefore(ts []token, i int) bool {
	for j := i - 1; j >= 0 && j >= i-3; j-- {
		if stateWords[ts[j].w] {
			return true
		}
	}
	return false
}

// purposeWords before a word in -ed make it an aim or a means, not anyone's
// state: "foods for increased energy" = "foods for increasing energy"
// (review Z272). With a determiner between ("for a confused student",
// "for a drowned person") it is someone's (review Z276).
var purposeWords = set("for with to from by via through into toward towards")

var stateWords = set("am is are was were be been being so too very feel feels felt feeling get gets got getting seem seems seemed become becomes became")

// feelingStems are the stems of verbs whose -ed is how someone feels and
// whose -ing what makes them feel so, wherever the word stands: "an
// annoyed customer" ≠ "an annoying customer", "why is my teenage son
// bored" ≠ "… boring" (review Z274).
var feelingStems = func() map[string]bool {
	m := map[string]bool{}
	for _, w := range strings.Fields(`bored annoyed depressed frightened interested confused embarrassed scared
		excited tired surprised amazed disappointed worried terrified frustrated overwhelmed exhausted
		fascinated satisfied shocked thrilled disgusted pleased relaxed amused alarmed puzzled irritated
		intimidated humiliated stressed insulted offended horrified entertained challenged motivated`) {
		m[stem(w)] = true
	}
	return m
}()

// whose is the generic persons a side without other persons speaks of: those
// whose things it names (owned), else those it asks as (subjects): "do I
// need a visa" asks as anyone, which "does he need a visa", of someone the
// conversation named, is not (review Z271).
func whose(owned, subjects string) string {
	if owned != "" {
		return owned
	}
	return subjects
}

// outside reports a person in ps that is not among the generic persons
// g whose things the other side names: "how do I find my IP address"
// (generic, "my" anyone's) ≠ "how do I find your IP address". A side
// that names no one's things (g empty) is generic: it says nothing.
func outside(ps, g string) bool {
	if g == "" {
		return false
	}
	for i := 0; i < len(ps); i++ {
		if strings.IndexByte(g, ps[i]) < 0 {
			return true
		}
	}
	return false
}

// swapped reports two or more persons on each side, the same ones, in
// another order.
func swapped(ra, rb string) bool {
	if len(ra) < 2 || ra == rb || len(ra) != len(rb) {
		return false
	}
	for i := 0; i < len(ra); i++ {
		if strings.IndexByte(rb, ra[i]) < 0 {
			return false
		}
	}
	return true
}

// roles lists the persons the turn's pronouns name in the order they
// first come, the generic ones included: a generic "you" or "I" still
// has its role ("can you help me" asks for help, "can I help you" offers
// it; "how do I tell him" ≠ "how does he tell me"). Only a subject
// before "want", "need", "like" and the like is left out: "I want you to
// tell me" = "can you tell me". A side with one person ("tell me", "how
// can I") has no roles to swap.
func roles(ts []token) string {
	var out []byte
	for i, t := range ts {
		p := personWords[t.w]
		if p == 0 || strings.IndexByte(string(out), p) >= 0 ||
			(t.w == "i" || t.w == "you" || t.w == "we" || t.w == "they") && i+1 < len(ts) && wantWords[ts[i+1].w] {
			continue
		}
		out = append(out, p)
	}
	return string(out)
}

// personWords names the person of a pronoun: the speaker (1), speakers
// (w), the listener (2), a man (m), a woman (f), others (t).
var personWords = func() map[string]byte {
	m := map[string]byte{}
	for _, g := range strings.Fields(`1:i 1:me 1:my 1:mine 1:myself w:we w:us w:our w:ours w:ourselves
		2:you 2:your 2:yours 2:yourself 2:yourselves m:he m:him m:his m:himself f:she f:her f:hers f:herself
		t:they t:them t:their t:theirs t:themselves`) {
		m[g[2:]] = g[0]
	}
	return m
}()

// modals are the auxiliaries after which "I", "you", "we" or "they" is
// anyone ("how do I", "how can you", "where can we", "can you explain").
// Not "did": a past question is about what someone did, "why did I fail
// the exam" ≠ "why did you fail the exam" (review Z86).
var modals = set("do does can could should would will shall may might must")

// framingVerbs frame a request: "tell me", "can you explain", "walk me
// through".
var framingVerbs = set("tell explain describe show give list name provide share teach help assist walk guide remind let")

// persons lists in order the persons the turn's pronouns name, each run
// once, leaving out the generic ones: a person whose subject pronoun
// follows a modal, "if" or "when", or comes before "want", "need", "like"
// and the like ("how do I", "how do you", "what happens if I miss", "I
// want to", "I'd like to": anyone), or asks a permission ("am I allowed",
// "are you supposed to"), and "me" or "us" after a framing verb, "to" or
// "for" ("tell me", "explain to me"). "How do I make pancakes" = "how do
// you make pancakes"; "who are you" ≠ "who am I". The one asked to tell,
// explain … ("can you tell me") is anyone only as that subject: "can you
// tell me your name" asks for the one addressed's name, ≠ "can you tell
// me my name". It also returns the generic persons whose other pronouns
// it left out ("how do I find my IP address": 1), and all the generic
// ones, for otherPersons.
func persons(ts []token) (string, string, string) {
	var generic []byte
	asked := -1 // "can you tell …": only this pronoun is anyone
	// A permission asked ("am I allowed to bring food") is anyone's only
	// when its pronoun is the turn's only one: "are you allowed to read my
	// messages" asks the one addressed. (With a possessive of its own
	// person, "am I allowed to bring my own food", it is not: the other
	// side's "are you … your own food" is then refused, a hit lost, where
	// "are you able to see my screen" must not pass for "am I able to see
	// my screen".) Counted once: looked for from each "am I", a run of them
	// cost the square of the turn's length (review Z63).
	pronouns := 0
	for _, t := range ts {
		if personWords[t.w] != 0 {
			pronouns++
		}
	}
	for i, t := range ts {
		switch t.w {
		case "i", "you", "we", "they":
			if i > 0 && (modals[ts[i-1].w] || ts[i-1].w == "if" || ts[i-1].w == "when") ||
				i+1 < len(ts) && wantWords[ts[i+1].w] ||
				i > 0 && (ts[i-1].w == "am" || ts[i-1].w == "are") && i+1 < len(ts) && permissionWords[ts[i+1].w] && pronouns == 1 {
				if i > 0 && modals[ts[i-1].w] && i+1 < len(ts) && framingVerbs[ts[i+1].w] && asked < 0 {
					asked = i
					continue
				}
				if p := personWords[t.w]; !slices.Contains(generic, p) {
					generic = append(generic, p) // a person once: looked up per pronoun below
				}
			}
		}
	}
	var out, owned []byte
	for i, t := range ts {
		p := personWords[t.w]
		if p == 0 || i == asked ||
			(t.w == "me" || t.w == "us") && i > 0 && (framingVerbs[ts[i-1].w] || ts[i-1].w == "to" || ts[i-1].w == "for") {
			continue
		}
		if slices.Contains(generic, p) {
			if !subjectPronouns[t.w] && !slices.Contains(owned, p) {
				owned = append(owned, p)
			}
			continue
		}
		if len(out) == 0 || out[len(out)-1] != p {
			out = append(out, p)
		}
	}
	return string(out), string(owned), string(generic)
}

var subjectPronouns = set("i you we they")

var wantWords = set("want wanted need needed wish like would looking trying")

var permissionWords = set("allowed supposed able meant permitted expected")

// tensed reports turns about different times: the past on one side only
// ("who is the CEO" ≠ "who was the CEO", "what happened" ≠ "what will
// happen", "what did you do" ≠ "what do you do"), or the future on one
// side only against an explicit present ("who is the CEO" ≠ "who will be
// the CEO"). A side with no present marker says nothing against the
// future ("what happens if" = "what will happen if"), and a simple past
// is past as its auxiliary is ("what caused" = "what were the causes",
// "who invented" = "who did invent").
//
// A past guessed from a verb in -ed (bit 8) counts as a past for the
// first rule, but only an auxiliary's past (bit 1) or present stands
// against the future: "how crowded was it" ≠ "how crowded will it be".
func tensed(a, b []token) bool {
	ta, tb := tense(a), tense(b)
	switch {
	case ta&9 != 0 != (tb&9 != 0):
		return true
	case ta&2 != tb&2:
		other := ta
		if ta&2 != 0 {
			other = tb
		}
		return other&5 != 0
	}
	return false
}

// tense is the set of tenses the turn marks, as bits: past (was, were,
// did, had; has or have before a participle, "has happened"; a verb in
// -ed right after a question word, "what happened", "who invented", or
// after a question word and a one-word subject, "which company owned"),
// future (will, shall, "gonna", "going to" and a verb — "who is going to
// win" = "who will win"), present (is, are, am). A present verb's own
// tense ("happens") is no marker, nor are "do" and "does", which frame
// most questions ("how do I", "what does it mean"). A modal before "you"
// and a framing verb frames a request ("will you explain") and has no
// tense.
func tense(ts []token) int {
	m := 0
	for i, t := range ts {
		switch t.w {
		case "was", "were", "did", "had":
			if !request(ts, i) {
				m |= 1
			}
		case "has", "have":
			// A perfect: "has happened", or a question it opens ("has
			// Bitcoin crashed", "has the Fed cut rates"; not "have to").
			if i == 0 && !(i+1 < len(ts) && ts[i+1].w == "to") || participleWithin(ts, i+1, 3) {
				m |= 1
			}
		case "will", "shall":
			if !request(ts, i) {
				m |= 2
			}
		case "gonna":
			m |= 2
		case "going":
			if goingTo(ts, i) {
				m |= 2
			}
		case "is", "are", "am":
			if !(i+1 < len(ts) && goingTo(ts, i+1) || i+2 < len(ts) && goingTo(ts, i+2)) {
				m |= 4
			}
		default:
			// A simple past right after a question word ("what happened",
			// "who invented"): not "how" and an adjective ("how crowded"),
			// nor a word in -eed ("what speed").
			// Or after a question word and its subject, one content word
			// with or without a determiner ("which company owned", "what
			// Einstein studied").
			if q := pastSubjectStart(ts, i); q >= 0 && questionWords[ts[q].w] && ts[q].w != "how" && len(t.w) > 4 &&
				strings.HasSuffix(t.w, "ed") && !strings.HasSuffix(t.w, "eed") && !wantWords[t.w] {
				m |= 8
			}
		}
	}
	return m
}

// pastSubjectStart returns the index of the word before the subject of
// ts[i]: i-1 with no subject, or the word before one content word (not a
// common word, not a number) and an optional determiner before it
// ("which company", "what Einstein", "which the company"). -1: none.
func pastSubjectStart(ts []token, i int) int {
	if i < 1 {
		return -1
	}
	if questionWords[ts[i-1].w] {
		return i - 1
	}
	if s := ts[i-1]; i < 2 || soft(s) {
		return -1
	}
	if determiners[ts[i-2].w] {
		return i - 3
	}
	return i - 2
}

// participleWithin reports a participle among the n tokens from ts[i]
// ("have you ever been", "has it rained").
func participleWithin(ts []token, i, n int) bool {
	for j := i; j < len(ts) && j < i+n; j++ {
		if participle(ts[j].w) {
			return true
		}
	}
	return false
}

// participle reports a past participle of the common shapes: "been",
// "done", "gone", "had", "made", or a word in -ed or -en.
func participle(w string) bool {
	switch w {
	case "been", "done", "gone", "had", "made", "seen", "known":
		return true
	}
	return len(w) > 3 && (strings.HasSuffix(w, "ed") || strings.HasSuffix(w, "en"))
}

// questionWords open a question; a verb in -ed right after one is a
// simple past ("what happened", "who invented").
var questionWords = set("what who whom which where when why how")

// goingTo reports ts[i] "going" followed by "to" and a verb, the future:
// not a determiner, a name or a number ("going to the airport", "going to
// Paris" are on the way).
func goingTo(ts []token, i int) bool {
	if ts[i].w != "going" || i+2 >= len(ts) || ts[i+1].w != "to" {
		return false
	}
	v := ts[i+2]
	return !determiners[v.w] && !v.cap && !v.upper && !v.quoted && !v.digit && !v.symbol
}

// request reports ts[i] followed by "you" (and "please") and a framing
// verb.
func request(ts []token, i int) bool {
	if i+2 >= len(ts) || ts[i+1].w != "you" {
		return false
	}
	j := i + 2
	if ts[j].w == "please" && j+1 < len(ts) {
		j++
	}
	return framingVerbs[ts[j].w]
}

// quantified reports quantifiers on both sides that differ: "are all
// mushrooms poisonous" ≠ "are some mushrooms poisonous", "do some dogs
// bark all the time" ≠ "do all dogs bark all the time". A quantifier on
// one side only is framing ("what are some ways to …", "what are the
// symptoms" = "what are all the symptoms"); one in a fixed phrase of time
// or age ("of all time", "every day", "for all ages") quantifies nothing
// ("what are some of the best movies of all time" = "what are the best
// movies of all time").
//
// A phrase of time or age is left out only when both sides have it, word
// for word: "does it rain every day" ≠ "does it rain some days", "do dogs
// bark all the time" ≠ "… some of the time".
func quantified(a, b []token) bool {
	qa, qb := quantifiers(a, b), quantifiers(b, a)
	return qa != 0 && qb != 0 && qa != qb
}

// fixedPhrase is the phrase of time or age that ts[i], a quantifier,
// opens ("all time", "all the time", "every day", "each morning"), or "".
func fixedPhrase(ts []token, i int) string {
	j := i + 1
	if j < len(ts) && ts[j].w == "the" {
		j++
	}
	if j < len(ts) && timeWords[ts[j].w] {
		return ts[i].w + " " + ts[j].w
	}
	return ""
}

// phrases lists, each once, the phrases of time or age that ts's
// quantifiers open: at most one per quantifier and word of time, so a
// turn's phrases are looked up in a short list, not in the turn.
func phrases(ts []token) []string {
	var out []string
	for i := range ts {
		if quantifierWords[ts[i].w] {
			if ph := fixedPhrase(ts, i); ph != "" && !slices.Contains(out, ph) {
				out = append(out, ph)
			}
		}
	}
	return out
}

// quantifierWords are the words quantifiers reads as quantifiers.
var quantifierWords = set("all every each some several any many much few both either")

var timeWords = set("time times day days week weeks month months year years morning mornings evening evenings night nights age ages hour hours minute minutes")

// quantifiers is the set of the turn's quantifiers, as bits: all, every,
// each; some, several, any, "a few"; many, much (not "how many", which
// asks for a number); few; both; either. "At all", "after all" and "each
// other" quantify nothing.
func quantifiers(ts, other []token) int {
	m := 0
	theirs := phrases(other)
	for i, t := range ts {
		if !quantifierWords[t.w] {
			continue
		}
		prev, next := "", ""
		if i > 0 {
			prev = ts[i-1].w
		}
		if i+1 < len(ts) {
			next = ts[i+1].w
		}
		if ph := fixedPhrase(ts, i); ph != "" && slices.Contains(theirs, ph) {
			continue
		}
		switch t.w {
		case "all":
			if prev != "at" && prev != "after" {
				m |= 1
			}
		case "every":
			m |= 1
		case "each":
			if next != "other" {
				m |= 1
			}
		case "some", "several", "any":
			m |= 2
		case "many", "much":
			if prev != "how" {
				m |= 4
			}
		case "few":
			if prev == "a" {
				m |= 2
			} else {
				m |= 8
			}
		case "both":
			m |= 16
		case "either":
			m |= 32
		}
	}
	return m
}

// rareDifference reports a content word that only one side has and that
// is not a common or framing word.
func rareDifference(a, b []token) bool {
	sa, sb := stemSet(a), stemSet(b)
	for _, t := range a {
		if !sb[t.stem] && !sb[t.w] && !soft(t) {
			return true
		}
	}
	for _, t := range b {
		if !sa[t.stem] && !sa[t.w] && !soft(t) {
			return true
		}
	}
	return false
}

// contentOrder lists the content words (not common or framing words, but
// common words a direction marks: markedWord) in order, each once: the
// same words in another order swap roles ("the dog chases the cat" / "the
// cat chases the dog").
func contentOrder(ts []token) []string {
	var out []string
	seen := map[string]bool{}
	j := -1 // the last word before ts[i] that is no determiner
	for i, t := range ts {
		dir := direction(ts, i, j)
		w := dir + t.stem
		if !determiners[t.w] {
			j = i
		}
		if soft(t) && !markedWord(t, dir) || seen[w] {
			continue
		}
		seen[w] = true
		out = append(out, w)
	}
	return out
}

func soft(t token) bool {
	return commonWords[t.w] || inflectedFraming[t.stem] || t.symbol || t.digit
}

// inflectedFraming are the common words whose inflections frame as they
// do ("explaining" as "explain", "ideas" as "idea"): by its stem a word is
// common only if it stems to one of these, not to any common word
// ("processed" is not "process", "canned" not "can", "owns" not "own",
// "evening" not "even").
var inflectedFraming = set(`tell explain show list help assist teach know want need wish look find get let
	work happen define summarize summarise idea concept overview summary definition meaning question answer
	example detail thing difference comparison`)

var negationWords = set("not no never without none nothing nobody nowhere neither nor cannot cant dont doesnt isnt arent wasnt werent wont shouldnt couldnt wouldnt didnt hasnt havent hadnt nope non")

var negPrefixes = []string{"un", "in", "im", "il", "ir", "dis", "non", "anti", "mis", "de"}

var negSuffixes = [][2]string{{"less", "ful"}, {"ful", "less"}, {"less", ""}}

var antonyms = func() map[string][]string {
	m := map[string][]string{}
	for _, p := range strings.Fields(`open:close open:shut pro:con pros:cons advantage:disadvantage benefit:drawback benefit:risk
		buy:sell increase:decrease increase:reduce raise:lower rise:fall up:down start:stop start:end begin:end enable:disable
		add:remove add:delete include:exclude install:uninstall before:after early:late earlier:later first:last
		max:min maximum:minimum most:least more:less best:worst better:worse high:low higher:lower big:small large:small
		hot:cold warm:cool heavy:light fast:slow faster:slower long:short longer:shorter old:new old:young cheap:expensive
		true:false right:wrong correct:incorrect good:bad positive:negative safe:dangerous safe:risky allowed:forbidden
		legal:banned win:lose gain:lose import:export input:output upload:download push:pull send:receive accept:reject
		north:south east:west left:right inside:outside above:below over:under in:out on:off yes:no agree:disagree
		love:hate like:dislike friend:enemy strength:weakness strong:weak rich:poor healthy:unhealthy happy:sad
		encrypt:decrypt compress:decompress lock:unlock connect:disconnect join:leave arrive:depart entry:exit
		login:logout sign:unsign cause:cure cause:prevent prevent:allow increase:lower gain:loss profit:loss
		morning:evening day:night summer:winter spring:autumn spring:fall past:future yesterday:tomorrow
		mean:median average:median import:export client:server upper:lower lowercase:uppercase
		same:different similar:different identical:different alike:different same:differ similar:differ
		brief:detail short:detail concise:detail summary:detail summarize:detail summarise:detail`) {
		kv := strings.SplitN(p, ":", 2)
		m[kv[0]] = append(m[kv[0]], kv[1])
		m[kv[1]] = append(m[kv[1]], kv[0])
	}
	return m
}()

var numberWords = func() map[string]string {
	m := map[string]string{}
	for i, w := range strings.Fields("zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen fifteen sixteen seventeen eighteen nineteen twenty") {
		m[w] = itoa(int64(i))
	}
	for i, w := range strings.Fields("thirty forty fifty sixty seventy eighty ninety") {
		m[w] = itoa(int64(30 + 10*i))
	}
	for w, v := range map[string]string{"hundred": "100", "thousand": "1000", "million": "1000000", "billion": "1000000000",
		"dozen": "12", "half": "0.5", "quarter": "0.25", "twice": "2x", "once": "1x", "thrice": "3x", "double": "2x", "triple": "3x",
		"first": "1st", "second": "2nd", "third": "3rd", "fourth": "4th", "fifth": "5th", "sixth": "6th", "seventh": "7th",
		"eighth": "8th", "ninth": "9th", "tenth": "10th", "single": "1", "couple": "2", "pair": "2"} {
		m[w] = v
	}
	return m
}()

var unitWords = pairs(`km:km kilometer:km kilometre:km mile:mi mi:mi meter:m metre:m m:m cm:cm centimeter:cm
		mm:mm millimeter:mm inch:in inche:in foot:ft feet:ft ft:ft yard:yd kg:kg kilogram:kg kilo:kg gram:g g:g mg:mg milligram:mg
		pound:lb lb:lb lbs:lb ounce:oz oz:oz ton:t tonne:t liter:l litre:l l:l ml:ml milliliter:ml gallon:gal cup:cup
		tablespoon:tbsp tbsp:tbsp teaspoon:tsp tsp:tsp celsiu:C celsius:C fahrenheit:F kelvin:K degree:deg
		second:s sec:s minute:min min:min hour:h hr:h day:day week:week month:month year:year decade:decade century:century
		dollar:USD usd:USD euro:EUR eur:EUR pound:GBP gbp:GBP yen:JPY jpy:JPY percent:% percentage:%
		byte:B kb:KB mb:MB gb:GB tb:TB kilobyte:KB megabyte:MB gigabyte:GB terabyte:TB bit:bit
		hz:Hz khz:kHz mhz:MHz ghz:GHz watt:W w:W kw:kW kwh:kWh volt:V v:V amp:A mph:mph kph:kph calorie:kcal kcal:kcal`)

var dateWords = set(`january february march april june july august september october november december jan feb mar apr jun jul aug sep sept oct nov dec
	monday tuesday wednesday thursday friday saturday sunday today tomorrow yesterday tonight weekend weekday
	morning afternoon evening night noon midnight spring summer autumn fall winter next last previou current
	daily weekly monthly yearly annual annually hourly`)

// commonWords are function words and the words people frame the same ask
// with differently; a word only one side has that is not here vetoes.
var commonWords = set(`a an the this that these those there here it its i me my mine we us our you your yours he him his she her they them their
	is are was were be been being am do does did doing done have has had having can could would should shall will may might must
	of to in on for with at by from as into about through over under between among within via per than then so such
	and or but if because while when where what which who whom whose why how whether also just only very really quite
	any some all each every both either much many few several other another same own
	please kindly thanks thank hi hello hey ok okay
	tell explain describe show give list name provide share teach help assist walk guide
	know want need wish like looking look find get got make made let go going
	way ways method methods step steps process procedure instructions instruction tip tips trick tricks advice approach
	best good simple simplest easy easiest quick quickly fast proper properly correct correctly right exactly exact actually basically
	possible able someone somebody anyone anybody something anything thing things stuff kind sort type
	mean meaning means definition define defined idea concept overview summary summarize summarise brief briefly short detail details
	information info example examples some question questions answer answers
	use using used usage work works working
	do doing does going happen happens happening
	difference different differences between vs versus compare comparison
	should would could might can`)

// pairs maps each word of a list of "word:value" pairs to its value.
func pairs(list string) map[string]string {
	m := map[string]string{}
	for _, g := range strings.Fields(list) {
		w, v, _ := strings.Cut(g, ":")
		m[w] = v
	}
	return m
}

func set(words string) map[string]bool {
	m := map[string]bool{}
	for _, w := range strings.Fields(words) {
		m[w] = true
	}
	return m
}

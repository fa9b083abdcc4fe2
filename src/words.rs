//! Word lists shared by the clinical stage, the note generator, the note's evidence checker and
//! the evaluations: one place for negation, family and number words, so the stages cannot drift
//! apart (a note that says "Reports chest pain" after the clinical stage marked it NEGATION was
//! one such drift).
//!
//! Lists that deliberately differ are kept apart here, named for what they mean. Answer lists
//! are in the clinical stage's normal form (lower case, apostrophes removed: "i dont"), see
//! [`crate::clinical::traits::answer_polarity`]. Nothing here decides anything: these are data.

/// Number words 0–19; the index is the value.
pub const UNITS: [&str; 20] = [
    "zero",
    "one",
    "two",
    "three",
    "four",
    "five",
    "six",
    "seven",
    "eight",
    "nine",
    "ten",
    "eleven",
    "twelve",
    "thirteen",
    "fourteen",
    "fifteen",
    "sixteen",
    "seventeen",
    "eighteen",
    "nineteen",
];

/// Tens 20–90; the value is `(index + 2) * 10`.
pub const TENS: [&str; 8] = [
    "twenty", "thirty", "forty", "fifty", "sixty", "seventy", "eighty", "ninety",
];

/// The value of one number word: [`UNITS`], [`TENS`] or "hundred".
pub fn number_value(w: &str) -> Option<u32> {
    if let Some(i) = UNITS.iter().position(|x| *x == w) {
        return Some(i as u32);
    }
    if let Some(i) = TENS.iter().position(|x| *x == w) {
        return Some((i as u32 + 2) * 10);
    }
    (w == "hundred").then_some(100)
}

/// Words that mark a statement as negated. A note sentence that writes a condition the
/// evidence negates must contain one of them (or a "n't" contraction); the checker accepts any
/// of them in place of another when the evidence holds one.
pub const NEGATION_WORDS: &[&str] = &[
    "no", "not", "denies", "deny", "denied", "never", "none", "without", "negative", "nothing",
    "nope", "nah",
];

/// Negation cues of the fallback cue-word analyzer, which matches raw words with apostrophes
/// (the clinical stage uses its trigger table instead): [`NEGATION_WORDS`] plus contractions.
pub const NEGATION_CUES_CONTRACTED: &[&str] = &[
    "no", "not", "denies", "deny", "without", "never", "none", "don't", "haven't", "didn't",
    "doesn't", "hasn't", "isn't", "wasn't", "n't", "negative", "nothing", "nope",
];

/// Openings of an answer that denies what the question asked.
pub const NEGATIVE_ANSWERS: &[&str] = &[
    "no",
    "nope",
    "nah",
    "not really",
    "never",
    "none",
    "negative",
    "i dont",
    "i do not",
    "i havent",
    "i have not",
    "not that i know",
    "not at all",
    "i didnt",
    "i did not",
    "uh no",
    "um no",
    "no no",
    "nothing",
    "neither",
    "not anymore",
    "i am not",
    "im not",
    "not that i",
    "no sir",
    "no maam",
    "actually no",
    // conversational denials of the NegEx/ConText kind ("Not that I've noticed", "Not with it,
    // no", "I stopped taking it", "Nothing like that")
    "not that im",
    "not that ive",
    "not that hes",
    "not that shes",
    "not that weve",
    "not with",
    "not lately",
    "not recently",
    "not since",
    "i no longer",
    "no longer",
    "i ran out",
    "havent noticed",
    "havent seen",
    "havent had",
    "dont think so",
    "i doubt it",
    "i wouldnt say so",
];

/// Answers that neither confirm nor deny ("I don't remember", "I'm not sure"): checked before
/// [`NEGATIVE_ANSWERS`], whose "i dont" / "im not" would otherwise read them as a denial.
pub const UNSURE_ANSWERS: &[&str] = &[
    "i dont know",
    "i do not know",
    "dont know",
    "i dont remember",
    "i do not remember",
    "dont remember",
    "i dont recall",
    "i do not recall",
    "i cant remember",
    "i cant recall",
    "im not sure",
    "i am not sure",
    "not sure",
    "im not certain",
    "no idea",
    "i have no idea",
    "i dont think i know",
];

/// Openings of an answer that confirms the question as asked. "Correct" and "right" confirm
/// the question's own polarity: after "No chest pain at all?" they confirm the denial, so a
/// confirmation never decides polarity by itself; the question's traits do.
pub const POSITIVE_ANSWERS: &[&str] = &[
    "yes",
    "actually yes",
    "actually i do",
    "actually i did",
    "actually i have",
    "yeah",
    "yep",
    "yup",
    "i do",
    "i have",
    "sometimes",
    "a little",
    "correct",
    "right",
    "uh huh",
    "mm hmm",
    "definitely",
    "sure",
    "i did",
    "occasionally",
    "a bit",
    "once",
    "some",
    "i think so",
    "i believe so",
];

/// Family-member words: a sentence with one of them pertains to family (clinical stage), a
/// family member's condition in a note is written with one of them (generator and checker).
/// Children and "family" count; a spouse does not (see [`SPOUSES`]).
pub const FAMILY_MEMBERS: &[&str] = &[
    "mother",
    "mom",
    "mum",
    "mothers",
    "moms",
    "father",
    "dad",
    "fathers",
    "dads",
    "sister",
    "sisters",
    "brother",
    "brothers",
    "aunt",
    "aunts",
    "uncle",
    "uncles",
    "grandmother",
    "grandma",
    "grandfather",
    "grandpa",
    "grandparents",
    "cousin",
    "cousins",
    "parents",
    "parent",
    "siblings",
    "sibling",
    "son",
    "sons",
    "daughter",
    "daughters",
    "family",
    "niece",
    "nephew",
    "twin",
    "granny",
];

/// Blood relatives only: what the fallback analyzer counts as family history (a child's or a
/// spouse's condition is not the patient's family history in its simple model).
pub const RELATIVES: &[&str] = &[
    "mother",
    "father",
    "mom",
    "dad",
    "sister",
    "brother",
    "grandmother",
    "grandfather",
    "grandma",
    "grandpa",
    "aunt",
    "uncle",
    "cousin",
    "parents",
    "siblings",
];

/// A spouse is not family history for the clinical stage, but the evidence checker accepts a
/// spouse named in a sentence as saying whose condition it is.
pub const SPOUSES: &[&str] = &["wife", "husband"];

/// Hedges: a condition the clinical stage marks hypothetical is written only with one of them
/// ("if", "may", "rule" out, in "case" of).
pub const HEDGE_WORDS: &[&str] = &[
    "if",
    "may",
    "might",
    "could",
    "would",
    "possible",
    "possibly",
    "should",
    "case",
    "when",
    "whether",
    "risk",
    "unless",
    "concerned",
    "worried",
    "rule",
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers() {
        assert_eq!(number_value("zero"), Some(0));
        assert_eq!(number_value("nineteen"), Some(19));
        assert_eq!(number_value("ninety"), Some(90));
        assert_eq!(number_value("hundred"), Some(100));
        assert_eq!(number_value("a"), None);
    }

    #[test]
    fn relatives_are_family_members_and_negation_cues_extend_negation_words() {
        for r in RELATIVES {
            assert!(FAMILY_MEMBERS.contains(r), "{r}");
        }
        for s in SPOUSES {
            assert!(!FAMILY_MEMBERS.contains(s), "{s}");
        }
        for w in NEGATION_CUES_CONTRACTED
            .iter()
            .filter(|w| !w.contains('\''))
        {
            assert!(NEGATION_WORDS.contains(w) || *w == "n't", "{w}");
        }
    }
}

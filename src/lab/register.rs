//! Register figures of a note (`eval notes`): which share of its sentences still reads like
//! speech. Three counts per sentence, each a plain word-pattern rule so that the same rule runs
//! on our notes and on the gold notes (the yardstick):
//! - **filler**: a filler, discourse marker or politeness word ("um", "you know", "I mean",
//!   "okay", "thanks", "let's", ", like,"), the debris a clinician deletes before signing;
//! - **broken agreement**: a subject pronoun followed by a verb form that does not agree with it
//!   ("he mean", "she have", "they was", "he don't"), what a pronoun swap leaves behind;
//! - **patient first person**: the patient speaking in the first person ("my knee", "I've been
//!   having", "it bothers me"); the clinician's own "I recommended…" is normal in a note and not
//!   counted.
//!
//! These are heuristics measured the same way on both sides, not a grammar checker.

/// Counts of sentences over a set of notes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RegisterCounts {
    pub sentences: usize,
    pub filler: usize,
    pub agreement: usize,
    pub first_person: usize,
}

impl RegisterCounts {
    /// Counts one note's text (headings and empty lines are not sentences).
    pub fn of_note(text: &str) -> Self {
        let mut c = Self::default();
        for s in note_sentences(text) {
            let w = words(&s);
            c.sentences += 1;
            c.filler += usize::from(has_filler(&w));
            c.agreement += usize::from(has_broken_agreement(&w));
            c.first_person += usize::from(has_patient_first_person(&w));
        }
        c
    }

    pub fn add(&mut self, o: RegisterCounts) {
        self.sentences += o.sentences;
        self.filler += o.filler;
        self.agreement += o.agreement;
        self.first_person += o.first_person;
    }

    fn pct(&self, n: usize) -> f64 {
        100.0 * n as f64 / self.sentences.max(1) as f64
    }

    /// Percentages: filler, broken agreement, filler or broken agreement (sentences with
    /// either, counted once), patient first person.
    pub fn line(&self, either: usize) -> String {
        format!(
            "filler {:.2}%, broken agreement {:.2}%, either {:.2}%, patient first person {:.2}% ({} sentences)",
            self.pct(self.filler),
            self.pct(self.agreement),
            self.pct(either),
            self.pct(self.first_person),
            self.sentences
        )
    }
}

/// Sentences with a filler or a broken agreement, counted once each.
pub fn either_count(text: &str) -> usize {
    note_sentences(text)
        .iter()
        .map(|s| words(s))
        .filter(|w| has_filler(w) || has_broken_agreement(w))
        .count()
}

/// The sentences of a note that the rules flag, each with whether it holds a filler and
/// whether a broken agreement (`eval notes --show-register`, for reading development sets).
pub fn flagged_sentences(text: &str) -> Vec<(String, bool, bool)> {
    note_sentences(text)
        .into_iter()
        .filter_map(|s| {
            let w = words(&s);
            let (f, a) = (has_filler(&w), has_broken_agreement(&w));
            (f || a).then_some((s, f, a))
        })
        .collect()
}

/// The sentences of a note: each line without its bullet, split after `.`, `?`, `!` followed
/// by a space; a line of capitals only (a heading) is not a sentence.
pub fn note_sentences(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    for line in text.lines() {
        let line = line.trim().trim_start_matches(['•', '-', '*', '·']).trim();
        if line.is_empty() || !line.chars().any(|c| c.is_lowercase()) {
            continue;
        }
        let mut start = 0;
        let b = line.as_bytes();
        for (i, &c) in b.iter().enumerate() {
            if matches!(c, b'.' | b'?' | b'!') && (i + 1 == b.len() || b[i + 1] == b' ') {
                push_sentence(&line[start..=i], &mut out);
                start = i + 1;
            }
        }
        push_sentence(&line[start..], &mut out);
    }
    out
}

fn push_sentence(s: &str, out: &mut Vec<String>) {
    let s = s.trim();
    if s.chars().filter(|c| c.is_alphabetic()).count() > 1 {
        out.push(s.to_owned());
    }
}

/// Lower-cased words, with commas kept as their own token (`,`) since some markers are only
/// markers beside one; the straight apostrophe is the only one kept inside a word.
fn words(s: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    for c in s.to_lowercase().replace('’', "'").chars() {
        if c.is_alphanumeric() || c == '\'' || c == '-' || c == '/' {
            cur.push(c);
        } else {
            if !cur.is_empty() {
                out.push(std::mem::take(&mut cur));
            }
            if c == ',' {
                out.push(",".into());
            }
        }
    }
    if !cur.is_empty() {
        out.push(cur);
    }
    out
}

const FILLER_WORDS: &[&str] = &[
    "um", "umm", "uh", "uhm", "hmm", "mm-hmm", "mhm", "uh-huh", "ah", "oh", "okay", "ok",
    "alright", "yeah", "yep", "yup", "kinda", "sorta", "gonna", "wanna", "thanks", "let's",
    "anyways", "alrighty", "gotcha",
];

/// Whether the words hold a filler, discourse marker or politeness word.
pub fn has_filler(w: &[String]) -> bool {
    let at = |i: usize| w.get(i).map(String::as_str).unwrap_or("");
    for i in 0..w.len() {
        let (prev, cur, next) = (if i == 0 { "" } else { at(i - 1) }, at(i), at(i + 1));
        if FILLER_WORDS.contains(&cur) {
            return true;
        }
        // "mm" and "er" are fillers only standing alone (else millimetres, emergency room).
        if matches!(cur, "mm" | "er") && matches!(prev, "" | ",") && matches!(next, "" | ",") {
            return true;
        }
        match (cur, next) {
            ("you", "know")
                if !matches!(prev, "do" | "did" | "if" | "let" | "don't" | "to" | "would")
                    && !matches!(
                        at(i + 2),
                        "of" | "about" | "what" | "how" | "whether" | "if"
                    ) =>
            {
                return true
            }
            ("i", "mean" | "guess") | ("all", "right") | ("thank", "you") => return true,
            ("kind" | "sort", "of")
                if !matches!(
                    prev,
                    "some" | "what" | "this" | "that" | "any" | "a" | "the"
                ) =>
            {
                return true
            }
            _ => {}
        }
        // "like" as a filler: at the start, beside a comma, or before a number ("like 2 weeks").
        if cur == "like"
            && (i == 0
                || prev == ","
                || next == ","
                || next.chars().next().is_some_and(|c| c.is_ascii_digit())
                || crate::words::number_value(next).is_some())
        {
            return true;
        }
        // Sentence-initial discourse markers followed by a comma ("So, …", "Well, …").
        if i == 0 && matches!(cur, "so" | "well" | "now" | "right" | "anyway") && next == "," {
            return true;
        }
    }
    false
}

/// Verb forms that need a plural or first/second-person subject.
const PLURAL_FORMS: &[&str] = &[
    "have", "do", "don't", "are", "were", "weren't", "aren't", "haven't", "am", "mean", "guess",
    "think", "feel", "want", "need", "go", "get", "say", "know", "take", "try", "use", "like",
    "seem", "wanna",
];

/// Verb forms that need a singular subject.
const SINGULAR_FORMS: &[&str] = &[
    "was", "has", "is", "doesn't", "wasn't", "hasn't", "isn't", "does", "goes", "means", "thinks",
    "feels", "wants", "needs", "gets", "says", "knows", "takes", "tries", "uses", "seems",
];

/// Words before a subject that make a bare verb after it correct ("did he have", "make
/// her feel", "if they were", "I'd have him take").
const BARE_VERB_LICENSERS: &[&str] = &[
    "did", "does", "do", "would", "will", "can", "could", "should", "might", "may", "must", "to",
    "let", "make", "makes", "made", "help", "helps", "have", "had", "if", "didn't", "doesn't",
    "don't", "wish", "whether", "rather",
];

/// Whether the words hold a subject pronoun with a verb that does not agree with it.
pub fn has_broken_agreement(w: &[String]) -> bool {
    for i in 0..w.len().saturating_sub(1) {
        let prev = if i == 0 { "" } else { w[i - 1].as_str() };
        if BARE_VERB_LICENSERS.contains(&prev) {
            continue;
        }
        let next = w[i + 1].as_str();
        let broken = match w[i].as_str() {
            "he" | "she" => PLURAL_FORMS.contains(&next),
            "they" | "we" | "you" => SINGULAR_FORMS.contains(&next),
            "i" => matches!(next, "is" | "has" | "does" | "doesn't" | "isn't" | "hasn't"),
            _ => false,
        };
        if broken {
            return true;
        }
    }
    false
}

/// What a clinician calls "my …" in a note; any other "my" is the patient's.
const CLINICIAN_POSSESSIONS: &[&str] = &[
    "recommendation",
    "recommendations",
    "office",
    "nurse",
    "staff",
    "team",
    "concern",
    "concerns",
    "plan",
    "assessment",
    "impression",
    "opinion",
    "clinic",
    "medical",
    "physician",
    "colleague",
    "assistant",
    "suspicion",
    "differential",
    "exam",
    "examination",
    "review",
];

/// Whether the patient speaks in the first person: "my …" (not a clinician's "my
/// recommendation"), "I've been", "I feel", "it bothers me" and the like.
pub fn has_patient_first_person(w: &[String]) -> bool {
    let at = |i: usize| w.get(i).map(String::as_str).unwrap_or("");
    for i in 0..w.len() {
        match at(i) {
            "my" | "mine" | "myself" if !CLINICIAN_POSSESSIONS.contains(&at(i + 1)) => return true,
            "i've" | "i'm"
                if matches!(at(i + 1), "been" | "had" | "having" | "feeling" | "got") =>
            {
                return true
            }
            "i" if matches!(
                at(i + 1),
                "feel"
                    | "felt"
                    | "hurt"
                    | "fell"
                    | "get"
                    | "got"
                    | "noticed"
                    | "can't"
                    | "couldn't"
            ) =>
            {
                return true
            }
            "me" if matches!(
                at(i.wrapping_sub(1)),
                "bothers"
                    | "bothering"
                    | "hurts"
                    | "hurting"
                    | "makes"
                    | "made"
                    | "gives"
                    | "gave"
                    | "wakes"
                    | "woke"
                    | "keeps"
                    | "kept"
                    | "killing"
            ) =>
            {
                return true
            }
            _ => {}
        }
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    fn w(s: &str) -> Vec<String> {
        words(s)
    }

    #[test]
    fn fillers_are_found_and_clinical_words_are_not() {
        for s in [
            "No not really he mean he was just like you know he guess he twisted.",
            "Thanks, their blood pressure today is 142 over 88.",
            "Let's move onto assessment and plan.",
            "Okay so the knee hurts.",
            "So, the pain started 2 days ago.",
            "It hurts, like, all the time.",
            "It was like 2 weeks ago.",
        ] {
            assert!(has_filler(&w(s)), "{s}");
        }
        for s in [
            "The patient reports knee pain that feels like a stabbing.",
            "He would like to continue lisinopril 20 mg daily.",
            "Denies chest pain, shortness of breath or ankle swelling.",
            "Let me know if the symptoms worsen.",
            "Some kind of rash on the arm.",
            "There is a 6 mm stone, seen in the ER/PR panel and at the ER.",
        ] {
            assert!(!has_filler(&w(s)), "{s}");
        }
    }

    #[test]
    fn broken_agreement_after_pronoun_swaps() {
        for s in [
            "He mean he just twisted.",
            "She have pain.",
            "They was tired.",
            "He don't smoke.",
        ] {
            assert!(has_broken_agreement(&w(s)), "{s}");
        }
        for s in [
            "He has pain.",
            "They were tired.",
            "I would like to have him take ibuprofen.",
            "We will make her feel better.",
            "If he were to fall, call.",
            "She does not have a fever.",
        ] {
            assert!(!has_broken_agreement(&w(s)), "{s}");
        }
    }

    #[test]
    fn patient_first_person_but_not_the_clinician() {
        assert!(has_patient_first_person(&w("My knee hurts.")));
        assert!(has_patient_first_person(&w("I've been having headaches.")));
        assert!(has_patient_first_person(&w("It bothers me at night.")));
        assert!(!has_patient_first_person(&w(
            "I recommended physical therapy and my recommendation is rest."
        )));
        assert!(!has_patient_first_person(&w("His knee hurts.")));
    }

    #[test]
    fn sentences_skip_headings_and_bullets() {
        let s = note_sentences("CHIEF COMPLAINT\n\nKnee pain.\n\n• Neck: JVD 8 cm. No bruit.\n");
        assert_eq!(s, ["Knee pain.", "Neck: JVD 8 cm.", "No bruit."]);
        let c = RegisterCounts::of_note("PLAN\n\nOkay, ice it. He mean it.\nRest.\n");
        assert_eq!(
            c,
            RegisterCounts {
                sentences: 3,
                filler: 1,
                agreement: 1,
                first_person: 0
            }
        );
    }
}

//! ConText/NegEx-style traits with conversational scope.
//!
//! * Within a sentence: forward triggers (`NEG_PRE`, `HYPO_PRE`, `HIST_PRE`, `FAM_PRE`) cover the
//!   entities after them up to a termination trigger, the sentence end or 15 tokens; backward
//!   triggers (`NEG_POST`, `HYPO_POST`) cover up to 6 tokens before them. Pseudo-triggers
//!   ("no further", "not only") block a trigger they overlap.
//! * Across a speaker's turn: a sentence that mentions a family member makes the following
//!   sentences that refer back with he/she/they/his/her family too.
//! * Across a question–answer pair: when a turn asks a question and the next speaker's turn opens
//!   with a negative answer ("No.", "Nope", "Not really", "I don't"), the entities of the
//!   question sentence get NEGATION; a family-history question gives PERTAINS_TO_FAMILY to the
//!   entities of the question and of a non-negative answer; "have you ever had …?" answered yes
//!   gives PAST_HISTORY.
//! * Conversational refinements (developed on the team's development set, c22–c29): a bare
//!   answer particle ("No, I've been having palpitations") is not a forward negation; a negation
//!   scope covers one list of conditions *or* of medications ("no heartburn since I started the
//!   omeprazole"); a comma followed by a subject pronoun, "and I/it/my…", "since", "with the/this"
//!   end a scope; reminders, uncertainty and "no problems with …" are pseudo-negations; resolution
//!   triggers ("gone away") inside a question do not negate. A "No" does not negate a condition
//!   the question presupposes ("Does the pain go down your legs?", but "Do you still have the
//!   cough?" does), a medication asked about as it works ("Does the nitroglycerin help?",
//!   "side effects from lisinopril"), what precedes the question proper ("You had pneumonia, any
//!   cough since?"), or a vaccine's disease ("the pneumonia vaccine"). Unsure answers ("I don't
//!   remember") neither confirm nor deny; "Right." (or "Yes, correct.") keeps a negative
//!   question's negation, and a bare "Yes" to one is ambiguous: the finding is neither negated nor
//!   asserted but gets LOW_CONFIDENCE, which keeps it out of the note's Reports/Denies lines and
//!   out of the chart.
//! * Refinements of this round (developed on the development set and the first held-out set):
//!   a backward trigger ("… is gone") stops at a termination trigger or a new clause, as a
//!   forward one does ("I still cough a bit but the fever is gone"); a negation inside a relative
//!   clause about people in general ("people who never had chickenpox") describes a hypothetical
//!   group, not the patient; a disease named as a vaccine ("the pneumonia vaccine") is not a
//!   condition of the conversation.
//! * Negation-recall round (developed on the development set, c30–c42): the answer after a
//!   clarification ("Sorry, what was that?") and the repeated question answers the first
//!   question too; a run of elliptical questions ("Sore throat? Runny nose?") shares one answer;
//!   fillers before an answer ("Hmm, let me think. No.") and discourse markers before an
//!   unpunctuated question are skipped; more conversational denials ("Not that I've noticed");
//!   a resolution answer ("That's gone too") denies even a presupposed condition; a possessive
//!   body part ("your heart racing") presupposes nothing; an answer that names a question's
//!   condition with the same code keeps its polarity; "tested for X?" answered "negative"
//!   denies X; "stopped having" is a negation. A medication "stopped" stays un-negated.
//! * Third negation round (developed on the development set, c43–c55): a question stays open
//!   across a short remark of the same speaker that asks nothing ("Any fever? — I'm asking
//!   because the flu is going around. — No."); a medication named in an allergy phrase
//!   ("allergic to penicillin", "never had a reaction to penicillin or amoxicillin") is never
//!   negated, since the negation denies the allergy; "was negative for X" looks forward.
//! * Hypothetical/past-history round (developed on the development set, c56–c66 written for
//!   it, and the first held-out set): past time adverbials ("as a kid", "years ago", "last
//!   year", "in 2019", "in my twenties", "when I was a kid", adverbial "before") date their
//!   clause in both directions, but in a question they wait for the answer ("Did you have head
//!   injuries as a kid?" "No." is a negation only) unless they date a statement before the
//!   question proper; a recent "… days ago" and "when I was carrying groceries" are not history,
//!   nor is the onset of the current problem ("started a year ago"); "but it gave me a rash"
//!   continues a past episode of the same sentence; "now" / "switched to" end it. A sentence
//!   that opens with "if" is conditional as a whole (the consequent too); "still", "just",
//!   "only", "with the" end only negation scopes; work-ups ("check for", "screen", "look for")
//!   and a patient's "Is it …?" / "Will …?" are hypothetical; reports and requests ("I would
//!   say", "I could feel", "could you") and "probably" are not.
//! * SIGN / SYMPTOM / DIAGNOSIS from the lexicon kind: symptoms are SIGN when a clinician says
//!   them in an OBJECTIVE turn, else SYMPTOM; diagnoses are DIAGNOSIS.
//!
//! # Code map
//! [`apply`] runs two passes. The within-turn pass ([`turn`]) finds the triggers of each turn
//! and applies their scopes, marks family sentences and SIGN / SYMPTOM / DIAGNOSIS; it also
//! marks which sentences are questions, so the question–answer pass ([`answers`]) can find
//! each question and read the answer after it. The cue words of both are in [`cues`]:
//! triggers come from `mappings/clinical/context_triggers.tsv` (derived from negspacy/medspacy)
//! plus the conversational triggers written by the team ([`cues::TEAM_TRIGGERS`]).

mod answers;
mod cues;
mod turn;

use super::entities::Found;
use super::matcher::TokenMatcher;
use super::text::tokenize;
use super::types::{Category, Section, Trait, Turn};
use crate::words;
use cues::{FILLERS, INTERROGATIVES, TEAM_TRIGGERS, VACCINE_WORDS};

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Trig {
    NegPre,
    NegPost,
    Pseudo,
    Term,
    /// terminates a negation scope only ("still", "just": "no fever, still a cough", but "if she
    /// still has a fever" stays conditional)
    TermNeg,
    /// terminates a history scope only ("the pain started a year ago")
    TermHist,
    HypoPre,
    /// a forward hypothetical trigger in a patient's question only ("Is it anxiety?")
    HypoQ,
    HypoPost,
    HistPre,
    HistPost,
    /// a past time adverbial: both directions within its clause; in a question, deferred to
    /// the answer
    HistTime,
    /// a history trigger after an earlier history trigger of the sentence only
    HistCont,
    /// "before" as an adverb: [`Trig::HistTime`] looking back only
    HistTimePost,
    /// a history trigger in both directions, not deferred in a question ("the nausea you used
    /// to get")
    HistBoth,
    FamPre,
}

fn trig_of(s: &str) -> Option<Trig> {
    Some(match s {
        "NEG_PRE" => Trig::NegPre,
        "NEG_POST" => Trig::NegPost,
        "PSEUDO" => Trig::Pseudo,
        "TERM" => Trig::Term,
        "TERM_NEG" => Trig::TermNeg,
        "TERM_HIST" => Trig::TermHist,
        "HYPO_PRE" => Trig::HypoPre,
        "HYPO_Q" => Trig::HypoQ,
        "HYPO_POST" => Trig::HypoPost,
        "HIST_PRE" => Trig::HistPre,
        "HIST_POST" => Trig::HistPost,
        "HIST_TIME" => Trig::HistTime,
        "HIST_CONT" => Trig::HistCont,
        "HIST_BOTH" => Trig::HistBoth,
        "FAM_PRE" => Trig::FamPre,
        _ => return None,
    })
}

/// Compiled trigger set.
pub struct ContextRules {
    matcher: TokenMatcher,
    kinds: Vec<Trig>,
}

fn key_lower(s: &str) -> String {
    tokenize(s)
        .iter()
        .map(|t| t.lower.clone())
        .collect::<Vec<_>>()
        .join(" ")
}

impl ContextRules {
    /// Builds from the derived `context_triggers.tsv` text plus the team's triggers (team wins).
    pub fn from_tsv(derived: &str) -> ContextRules {
        let mut map: std::collections::BTreeMap<String, Trig> = Default::default();
        for l in derived.lines() {
            if l.starts_with('#') {
                continue;
            }
            if let Some((t, ty)) = l.split_once('\t') {
                if let Some(k) = trig_of(ty.trim()) {
                    let key = key_lower(t);
                    if !key.is_empty() {
                        map.insert(key, k);
                    }
                }
            }
        }
        for (t, ty) in TEAM_TRIGGERS {
            if let Some(k) = trig_of(ty) {
                map.insert(key_lower(t), k);
            }
        }
        let keys: Vec<String> = map.keys().cloned().collect();
        let kinds = keys.iter().map(|k| map[k]).collect();
        ContextRules {
            matcher: TokenMatcher::new(&keys),
            kinds,
        }
    }
}

fn starts_with_any(norm: &str, list: &[&str]) -> bool {
    list.iter()
        .any(|a| norm == *a || norm.starts_with(&format!("{a} ")))
}

/// Drops one leading filler ("hmm", "oh", "let me think") from a normalised phrase; `None` when
/// it opens with none.
fn drop_filler(norm: &str) -> Option<&str> {
    FILLERS.iter().find_map(|f| {
        if norm == *f {
            Some("")
        } else {
            norm.strip_prefix(&format!("{f} "))
        }
    })
}

/// The normalised answer with leading fillers dropped while it is not yet recognised as an
/// answer ("Hmm, let me think. No." → "no"; "mm hmm" and "uh huh" stay as they are).
fn answer_core(anorm: &str) -> &str {
    let mut a = anorm;
    for _ in 0..6 {
        if [
            words::UNSURE_ANSWERS,
            words::NEGATIVE_ANSWERS,
            words::POSITIVE_ANSWERS,
        ]
        .iter()
        .any(|l| starts_with_any(a, l))
        {
            break;
        }
        match drop_filler(a) {
            Some(rest) if !rest.is_empty() => a = rest,
            _ => break,
        }
    }
    a
}

/// How an answer opens, read as the question–answer pass reads it: `Some(false)` a denial
/// ("No.", "Not really", "I don't"), `Some(true)` a confirmation of the question as asked
/// ("Yes", "Correct."), `None` unsure or neither. Leading fillers are skipped. The note uses it
/// to know *whether* a question was answered; what was denied comes from the NEGATION traits.
pub fn answer_polarity(answer: &str) -> Option<bool> {
    let full = key_lower(answer);
    let a = answer_core(&full);
    if starts_with_any(a, words::UNSURE_ANSWERS) {
        None
    } else if starts_with_any(a, words::NEGATIVE_ANSWERS) {
        Some(false)
    } else if starts_with_any(a, words::POSITIVE_ANSWERS) {
        Some(true)
    } else {
        None
    }
}

/// Whether the entity ending at char `end` names a vaccine ("the pneumonia vaccine", "chickenpox
/// shot"): a "no" then denies the vaccine, not the disease.
fn vaccine_of(chars: &[char], end: usize) -> bool {
    let rest: String = chars[end.min(chars.len())..].iter().take(24).collect();
    tokenize(&rest)
        .first()
        .is_some_and(|t| VACCINE_WORDS.contains(&t.lower.as_str()))
}

/// Drops the conditions that only name a vaccine ("Did you get the pneumonia vaccine?",
/// "her flu shot"): the disease is not a problem of the patient. Conversation analysis only.
pub fn drop_vaccine_diseases(turns: &[Turn], found: &mut [Vec<Found>]) {
    for (turn, fs) in turns.iter().zip(found.iter_mut()) {
        let chars: Vec<char> = turn.text.chars().collect();
        fs.retain(|f| {
            f.entity.category != Category::MEDICAL_CONDITION
                || !vaccine_of(&chars, f.entity.end_char)
        });
    }
}

/// Char offset (within the whole turn) where the question proper of sentence `[qb, qe)` starts:
/// the first interrogative word that opens the sentence or follows a comma ("You had pneumonia
/// last year, any cough since?" asks only about the cough). `qb` when there is none.
fn question_start(text: &str, qb: usize, qe: usize) -> usize {
    let chars: Vec<char> = text.chars().collect();
    let mut prev_end = qb;
    let mut first = true;
    for t in tokenize(text) {
        if t.begin_char < qb {
            continue;
        }
        if t.begin_char >= qe {
            break;
        }
        let opens = first
            || chars[prev_end.min(chars.len())..t.begin_char.min(chars.len())]
                .iter()
                .any(|c| *c == ',' || *c == '\u{2014}' || *c == '-');
        if opens && INTERROGATIVES.contains(&t.lower.as_str()) {
            return t.begin_char;
        }
        first = false;
        prev_end = t.end_char;
    }
    qb
}

/// A sentence: char range and token range.
struct Sent {
    b: usize,
    e: usize,
    question: bool,
    family: bool,
    /// a question dated in the past ("… as a child?", "… before?"): a yes makes it history
    hist_cue: bool,
}

fn sentences(text: &str) -> Vec<Sent> {
    let mut out = Vec::new();
    let chars: Vec<char> = text.chars().collect();
    let mut start = 0;
    for i in 0..chars.len() {
        let c = chars[i];
        let boundary = matches!(c, '.' | '?' | '!' | ';')
            && chars.get(i + 1).is_none_or(|n| n.is_whitespace())
            && !(c == '.'
                && i > 0
                && chars[i - 1].is_ascii_digit()
                && chars.get(i + 1).is_some_and(|n| n.is_ascii_digit()));
        if boundary {
            out.push(Sent {
                b: start,
                e: i + 1,
                question: c == '?',
                family: false,
                hist_cue: false,
            });
            start = i + 1;
        }
    }
    if start < chars.len() {
        out.push(Sent {
            b: start,
            e: chars.len(),
            question: false,
            family: false,
            hist_cue: false,
        });
    }
    out
}

fn add_trait(f: &mut Found, t: Trait, score: f32) {
    if let Some(x) = f.entity.traits.iter_mut().find(|(k, _)| *k == t) {
        x.1 = x.1.max(score);
    } else {
        f.entity.traits.push((t, score));
    }
}

fn negatable(c: Category) -> bool {
    matches!(
        c,
        Category::MEDICAL_CONDITION
            | Category::MEDICATION
            | Category::TEST_TREATMENT_PROCEDURE
            | Category::BEHAVIORAL_ENVIRONMENTAL_SOCIAL
    )
}

/// Applies traits to the entities of every turn (in place): first within each turn ([`turn`]:
/// trigger scopes, family sentences, SIGN / SYMPTOM / DIAGNOSIS), then across each question and
/// its answer ([`answers`]), which reads the sentences the first pass marked as questions,
/// family or dated. Last, each entity's traits are sorted.
pub fn apply(rules: &ContextRules, turns: &[Turn], sections: &[Section], found: &mut [Vec<Found>]) {
    let mut sents_all: Vec<Vec<Sent>> = Vec::with_capacity(turns.len());
    let mut allergens_all: Vec<Vec<bool>> = Vec::with_capacity(turns.len());
    for ti in 0..turns.len() {
        let section = sections.get(ti).copied().unwrap_or(Section::SUBJECTIVE);
        let (sents, allergens) = turn::apply_within_turn(rules, turns, ti, section, found);
        sents_all.push(sents);
        allergens_all.push(allergens);
    }
    answers::apply_answers(turns, &sents_all, &allergens_all, found);
    for fs in found.iter_mut() {
        for f in fs.iter_mut() {
            f.entity.traits.sort_by_key(|(t, _)| *t);
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::clinical::analyze;
    use crate::clinical::types::{Category, Role, SegmentAnalysis, Trait, Turn};

    fn turns(lines: &[(Role, &str)]) -> Vec<SegmentAnalysis> {
        let t: Vec<Turn> = lines
            .iter()
            .enumerate()
            .map(|(i, (r, x))| Turn::new(i.to_string(), *r, *x))
            .collect();
        analyze(&t)
    }

    fn find<'a>(s: &'a SegmentAnalysis, text: &str) -> &'a crate::clinical::types::Entity {
        s.entities
            .iter()
            .find(|e| e.text.eq_ignore_ascii_case(text))
            .unwrap_or_else(|| panic!("{text} not found in {:?}", s.entities))
    }

    #[test]
    fn backward_negation_stops_at_but() {
        let out = turns(&[(
            Role::Patient,
            "My headache is better but the nausea went away.",
        )]);
        assert!(find(&out[0], "nausea").has_trait(Trait::NEGATION));
        assert!(!find(&out[0], "headache").has_trait(Trait::NEGATION));
    }

    #[test]
    fn backward_negation_stops_at_a_new_clause() {
        let out = turns(&[(Role::Patient, "I have a cough, my rash is gone.")]);
        assert!(find(&out[0], "rash").has_trait(Trait::NEGATION));
        assert!(!find(&out[0], "cough").has_trait(Trait::NEGATION));
    }

    #[test]
    fn generic_relative_clause_is_not_the_patients_negation() {
        let out = turns(&[(
            Role::Clinician,
            "It is mostly a risk for kids who haven't had measles.",
        )]);
        let m = find(&out[0], "measles");
        assert!(!m.has_trait(Trait::NEGATION), "{m:?}");
        assert!(m.has_trait(Trait::HYPOTHETICAL), "{m:?}");
        // the patient's own negation is unchanged
        let out = turns(&[(Role::Patient, "I haven't had measles.")]);
        assert!(find(&out[0], "measles").has_trait(Trait::NEGATION));
    }

    #[test]
    fn a_vaccine_is_not_its_disease() {
        let out = turns(&[
            (Role::Clinician, "Has she had her measles vaccine yet?"),
            (
                Role::Patient,
                "Not yet, she had measles last spring though.",
            ),
        ]);
        assert!(out[0]
            .entities
            .iter()
            .all(|e| e.category != Category::MEDICAL_CONDITION));
        assert!(!find(&out[1], "measles").has_trait(Trait::NEGATION));
    }

    fn negated(out: &[SegmentAnalysis], turn: usize, text: &str) -> bool {
        find(&out[turn], text).has_trait(Trait::NEGATION)
    }

    #[test]
    fn answer_after_a_clarification_answers_the_first_question_too() {
        let out = turns(&[
            (Role::Clinician, "Any vomiting?"),
            (Role::Patient, "Sorry, what was that?"),
            (Role::Clinician, "Have you been throwing up at all?"),
            (Role::Patient, "Oh. No, I haven't."),
        ]);
        assert!(negated(&out, 0, "vomiting"));
        assert!(negated(&out, 2, "throwing up"));
    }

    #[test]
    fn one_answer_to_a_run_of_elliptical_questions() {
        let out = turns(&[
            (Role::Clinician, "Sore throat? Runny nose?"),
            (Role::Patient, "Nah."),
        ]);
        assert!(negated(&out, 0, "sore throat"));
        assert!(negated(&out, 0, "runny nose"));
        let out = turns(&[
            (Role::Clinician, "Any trouble swallowing? Chest pain? None?"),
            (Role::Patient, "None."),
        ]);
        assert!(negated(&out, 0, "trouble swallowing"));
        assert!(negated(&out, 0, "chest pain"));
        // a new question with its own interrogative is not part of the run
        let out = turns(&[
            (Role::Clinician, "Any cough? How is the knee pain?"),
            (Role::Patient, "No."),
        ]);
        assert!(!negated(&out, 0, "cough"));
    }

    #[test]
    fn fillers_before_an_answer() {
        let out = turns(&[
            (Role::Clinician, "Any pins and needles in your hands?"),
            (Role::Patient, "Hmm, let me think. No."),
        ]);
        assert!(negated(&out, 0, "pins and needles"));
        // "mm hmm" stays a yes
        let out = turns(&[
            (Role::Clinician, "Any nausea?"),
            (Role::Patient, "Mm hmm, after meals."),
        ]);
        assert!(!negated(&out, 0, "nausea"));
    }

    #[test]
    fn conversational_denials() {
        for a in [
            "Not that I've noticed.",
            "Not with it, no.",
            "Not that I'm aware of.",
        ] {
            let out = turns(&[
                (Role::Clinician, "Any shortness of breath?"),
                (Role::Patient, a),
            ]);
            assert!(negated(&out, 0, "shortness of breath"), "{a}");
        }
    }

    #[test]
    fn a_resolved_answer_denies_a_presupposed_condition() {
        let out = turns(&[
            (Role::Clinician, "And the nausea you used to get with them?"),
            (Role::Patient, "That's gone too."),
        ]);
        assert!(negated(&out, 0, "nausea"));
        // a plain "No" to a presupposing question still does not
        let out = turns(&[
            (Role::Clinician, "Does the pain go down your legs?"),
            (Role::Patient, "No."),
        ]);
        assert!(!negated(&out, 0, "pain"));
    }

    #[test]
    fn a_possessive_body_part_does_not_presuppose_its_symptom() {
        let out = turns(&[
            (Role::Clinician, "Any chest pain or your heart racing?"),
            (Role::Patient, "Not really."),
        ]);
        assert!(negated(&out, 0, "heart racing"));
    }

    #[test]
    fn unpunctuated_question_after_a_discourse_marker() {
        let out = turns(&[
            (
                Role::Clinician,
                "good and any tingling or numbness in the feet",
            ),
            (Role::Patient, "nope feet are fine"),
        ]);
        assert!(negated(&out, 0, "tingling"));
        assert!(negated(&out, 0, "numbness"));
    }

    #[test]
    fn answer_names_a_condition_differently() {
        let out = turns(&[
            (Role::Clinician, "Any rash or itching?"),
            (Role::Patient, "No rash. I'm itchy sometimes though."),
        ]);
        assert!(negated(&out, 0, "rash"));
        assert!(!negated(&out, 0, "itching"));
    }

    #[test]
    fn a_negative_test_result_denies_the_condition() {
        let out = turns(&[
            (Role::Clinician, "Did you get tested for strep?"),
            (Role::Patient, "Yes, it was negative."),
        ]);
        assert!(negated(&out, 0, "strep"));
    }

    #[test]
    fn stopped_having_is_a_negation() {
        let out = turns(&[(
            Role::Patient,
            "I stopped having the shooting pain down my leg.",
        )]);
        assert!(negated(&out, 0, "shooting pain"));
        // a medication that was stopped is history, not denied
        let out = turns(&[
            (Role::Clinician, "Are you taking allopurinol?"),
            (Role::Patient, "I stopped it last year."),
        ]);
        assert!(!negated(&out, 0, "allopurinol"));
    }

    #[test]
    fn was_negative_for_looks_forward() {
        let out = turns(&[(
            Role::Clinician,
            "Your eye exam last year was negative for retinopathy.",
        )]);
        assert!(negated(&out, 0, "retinopathy"));
    }

    #[test]
    fn a_drug_named_in_an_allergy_phrase_is_not_negated() {
        let out = turns(&[
            (
                Role::Clinician,
                "And you've never had a reaction to penicillin or amoxicillin?",
            ),
            (Role::Patient, "Never."),
        ]);
        assert!(!negated(&out, 0, "penicillin"));
        assert!(!negated(&out, 0, "amoxicillin"));
        let out = turns(&[(Role::Patient, "No, but I'm allergic to sulfa.")]);
        assert!(!negated(&out, 0, "sulfa"));
        let out = turns(&[(Role::Patient, "I'm not allergic to amoxicillin.")]);
        assert!(!negated(&out, 0, "amoxicillin"));
        // a drug the patient does not take is still negated
        let out = turns(&[(Role::Patient, "I don't take aspirin or ibuprofen.")]);
        assert!(negated(&out, 0, "aspirin"));
        assert!(negated(&out, 0, "ibuprofen"));
    }

    #[test]
    fn allergies_to_medications_is_a_condition_asked_about() {
        let out = turns(&[
            (Role::Clinician, "Any allergies to medications?"),
            (Role::Patient, "No."),
        ]);
        let a = find(&out[0], "allergies");
        assert_eq!(a.category, Category::MEDICAL_CONDITION);
        assert!(a.has_trait(Trait::NEGATION));
    }

    #[test]
    fn an_answer_after_a_remark_of_the_same_speaker() {
        let out = turns(&[
            (Role::Clinician, "Any fever or chills?"),
            (
                Role::Clinician,
                "I'm asking because the flu has been going around.",
            ),
            (Role::Patient, "No, nothing like that."),
        ]);
        assert!(negated(&out, 0, "fever"));
        assert!(negated(&out, 0, "chills"));
        assert!(!negated(&out, 1, "the flu"));
        // a second question by the same speaker is not a remark
        let out = turns(&[
            (Role::Clinician, "Any fever?"),
            (Role::Clinician, "How is the cough?"),
            (Role::Patient, "No better."),
        ]);
        assert!(!negated(&out, 0, "fever"));
        // nor is a turn that does not end with its question
        let out = turns(&[
            (Role::Clinician, "Any fever? Okay, let me listen."),
            (Role::Clinician, "Deep breath in."),
            (Role::Patient, "No."),
        ]);
        assert!(!negated(&out, 0, "fever"));
    }

    #[test]
    fn lay_words_of_the_third_round_are_conditions() {
        let out = turns(&[(
            Role::Patient,
            "It itches and there's some redness, and I have urgency.",
        )]);
        for w in ["itches", "redness", "urgency"] {
            assert_eq!(
                find(&out[0], w).category,
                Category::MEDICAL_CONDITION,
                "{w}"
            );
        }
    }

    fn has(out: &[SegmentAnalysis], turn: usize, text: &str, t: Trait) -> bool {
        find(&out[turn], text).has_trait(t)
    }

    fn one(role: Role, text: &str) -> Vec<SegmentAnalysis> {
        turns(&[(role, text)])
    }

    #[test]
    fn past_time_adverbials_date_their_clause_in_both_directions() {
        let h = Trait::PAST_HISTORY;
        assert!(has(
            &one(Role::Patient, "I had asthma as a kid."),
            0,
            "asthma",
            h
        ));
        assert!(has(
            &one(Role::Patient, "As a kid I had asthma."),
            0,
            "asthma",
            h
        ));
        assert!(has(
            &one(Role::Patient, "I had pneumonia in 2019."),
            0,
            "pneumonia",
            h
        ));
        let out = one(
            Role::Patient,
            "um i had shingles a couple of years back and kidney stones in my twenties",
        );
        assert!(has(&out, 0, "shingles", h));
        assert!(has(&out, 0, "kidney stones", h));
        let out = one(Role::Patient, "When I was ten I had pneumonia.");
        assert!(has(&out, 0, "pneumonia", h));
    }

    #[test]
    fn the_onset_of_the_current_problem_is_not_history() {
        let h = Trait::PAST_HISTORY;
        assert!(!has(
            &one(Role::Patient, "The cough started five days ago."),
            0,
            "cough",
            h
        ));
        assert!(!has(
            &one(Role::Patient, "The pain started a year ago."),
            0,
            "pain",
            h
        ));
        let out = one(
            Role::Patient,
            "When I was carrying groceries last week I got some chest pain.",
        );
        assert!(!has(&out, 0, "chest pain", h));
    }

    #[test]
    fn a_dated_question_is_history_only_when_answered_yes() {
        let h = Trait::PAST_HISTORY;
        let out = turns(&[
            (Role::Clinician, "Did you have head injuries as a kid?"),
            (Role::Patient, "No."),
        ]);
        assert!(negated(&out, 0, "head injuries"));
        assert!(!has(&out, 0, "head injuries", h));
        let out = turns(&[
            (Role::Clinician, "Have you had migraines before?"),
            (Role::Patient, "Yes, in my twenties."),
        ]);
        assert!(has(&out, 0, "migraines", h));
        let out = turns(&[
            (Role::Clinician, "Have you had chickenpox as a child?"),
            (Role::Patient, "I think so."),
        ]);
        assert!(has(&out, 0, "chickenpox", h));
        // a statement before the question proper is dated at once, the question is not
        let out = turns(&[
            (
                Role::Clinician,
                "You had pneumonia last year, any cough since then?",
            ),
            (Role::Patient, "No."),
        ]);
        assert!(has(&out, 0, "pneumonia", h));
        assert!(negated(&out, 0, "cough"));
        assert!(!has(&out, 0, "cough", h));
    }

    #[test]
    fn adverbial_before_is_history_a_preposition_is_not() {
        let h = Trait::PAST_HISTORY;
        let out = one(
            Role::Patient,
            "I took Benadryl before but it knocked me out.",
        );
        assert!(has(&out, 0, "Benadryl", h));
        let out = one(Role::Clinician, "Take the omeprazole before breakfast.");
        assert!(!has(&out, 0, "omeprazole", h));
    }

    #[test]
    fn a_past_episode_continues_over_it_gave_me_and_stops_at_now() {
        let h = Trait::PAST_HISTORY;
        let out = one(
            Role::Patient,
            "I tried the patch once, but it gave me a rash.",
        );
        assert!(has(&out, 0, "rash", h));
        // without an earlier history trigger "gave me" dates nothing
        let out = one(Role::Patient, "The new pills gave me a rash.");
        assert!(!has(&out, 0, "rash", h));
        let out = one(Role::Patient, "I was on Plavix for a year, now aspirin.");
        assert!(has(&out, 0, "Plavix", h));
        assert!(!has(&out, 0, "aspirin", h));
        // a negation in the clause wins over its date
        let out = one(
            Role::Clinician,
            "Your eye exam last year was negative for retinopathy.",
        );
        assert!(negated(&out, 0, "retinopathy"));
        assert!(!has(&out, 0, "retinopathy", h));
    }

    #[test]
    fn a_sentence_opening_with_if_is_conditional_as_a_whole() {
        let y = Trait::HYPOTHETICAL;
        let out = one(
            Role::Clinician,
            "If the swab is positive, I'll call in amoxicillin.",
        );
        assert!(has(&out, 0, "amoxicillin", y));
        // "still" ends a negation, not a condition
        let out = one(
            Role::Clinician,
            "If she still has a fever after three days, bring her back.",
        );
        assert!(has(&out, 0, "fever", y));
        let out = one(
            Role::Clinician,
            "I'm not sure if it's a rash or just dry skin.",
        );
        assert!(has(&out, 0, "dry skin", y));
    }

    #[test]
    fn work_ups_and_patient_questions_are_hypothetical() {
        let y = Trait::HYPOTHETICAL;
        let out = one(Role::Clinician, "We'll do a swab to check for strep.");
        assert!(has(&out, 0, "strep", y));
        assert!(has(
            &one(Role::Patient, "Is it anxiety then?"),
            0,
            "anxiety",
            y
        ));
        // a clinician asking is not
        let out = one(Role::Clinician, "Is it a sharp pain?");
        assert!(!has(&out, 0, "pain", y));
    }

    #[test]
    fn reports_requests_and_likely_diagnoses_are_not_hypothetical() {
        let y = Trait::HYPOTHETICAL;
        let out = one(
            Role::Patient,
            "I would say the sore throat is the worst part.",
        );
        assert!(!has(&out, 0, "sore throat", y));
        let out = one(Role::Patient, "I could feel my heart racing.");
        assert!(!has(&out, 0, "heart racing", y));
        let out = one(Role::Clinician, "This is probably a viral infection.");
        assert!(!has(&out, 0, "viral infection", y));
    }

    #[test]
    fn more_conditional_and_history_cues() {
        let (y, h) = (Trait::HYPOTHETICAL, Trait::PAST_HISTORY);
        let out = one(
            Role::Clinician,
            "Use the inhaler whenever you get wheezing.",
        );
        assert!(has(&out, 0, "wheezing", y));
        let out = one(Role::Clinician, "I suspect pneumonia.");
        assert!(has(&out, 0, "pneumonia", y));
        let out = one(Role::Patient, "I had a prior heart attack.");
        assert!(has(&out, 0, "heart attack", h));
        let out = one(
            Role::Clinician,
            "Compared to your previous visit, the swelling is better.",
        );
        assert!(!has(&out, 0, "swelling", h));
        let out = one(Role::Patient, "I was treated for depression.");
        assert!(has(&out, 0, "depression", h));
        let out = one(Role::Patient, "I had asthma in childhood.");
        assert!(has(&out, 0, "asthma", h));
        let out = one(Role::Patient, "I had shingles a while back.");
        assert!(has(&out, 0, "shingles", h));
    }
}

//! The question–answer pass: when a turn asks a question and the next speaker answers, the
//! answer decides the traits of what the question asked about. A negative answer ("No.",
//! "Nope", "Not really", "I don't") negates it, unless the question presupposes it; a
//! confirmation removes a negation or hypothesis the question's wording gave ("Have you ever
//! had …?" answered yes is PAST_HISTORY); a family-history question gives PERTAINS_TO_FAMILY
//! to the conditions of a non-negative answer.
//!
//! The steps of [`apply_answers`], for each turn: find the answer turn ([`answer_turn`]),
//! read the question ([`Question::read`]) and the answer ([`Answer::read`]), then mark the
//! question's entities ([`answer_question`]) and the answer's ([`mark_family_answer`]).

use std::collections::HashMap;

use super::cues::{
    CLARIFICATIONS, CONFIRMATIONS, DEFINITE, DENIAL_OPENERS, FILLERS, HAVING_SUBJECTS,
    HAVING_VERBS, INTERROGATIVES, NEGATIVE_RESULTS, PAST_QUESTION_CUES, PLAIN_YES,
    RESOLVED_ANSWERS, TEST_QUESTION_CUES,
};
use super::{
    add_trait, answer_core, key_lower, negatable, question_start, starts_with_any, vaccine_of, Sent,
};
use crate::clinical::entities::Found;
use crate::clinical::text::tokenize;
use crate::clinical::types::{Category, Role, Trait, Turn};
use crate::words;

/// Applies the traits that answers give to the entities of the questions before them (and to
/// the answers of family-history questions). `sents_all` and `allergens_all` are the
/// within-turn pass's sentences and allergen flags of every turn.
pub(super) fn apply_answers(
    turns: &[Turn],
    sents_all: &[Vec<Sent>],
    allergens_all: &[Vec<bool>],
    found: &mut [Vec<Found>],
) {
    for qi in 0..turns.len().saturating_sub(1) {
        let Some(ai) = answer_turn(turns, sents_all, qi) else {
            continue;
        };
        let Some(q) = Question::read(&turns[qi], &sents_all[qi], &found[qi]) else {
            continue;
        };
        let answer = Answer::read(&turns[ai].text, &q.norm);
        let mentions = AnswerMentions::of(&found[ai]);
        answer_question(&q, &answer, &mentions, &allergens_all[qi], &mut found[qi]);
        if q.family && !answer.negative {
            mark_family_answer(&sents_all[ai], &mut found[ai]);
        }
    }
}

/// The turn that answers turn `qi`: normally the next one. "Any fever or chills?" "I'm asking
/// because the flu is going around." "No.": a short remark by the same speaker, with no
/// question of its own, after a turn that ends with its question leaves that question open for
/// the next speaker. "Any vomiting?" "Sorry, what was that?" "Have you been throwing up?" "No.":
/// the answer after the repeated question answers the first one too. `None` when the next turn
/// is the same speaker's and no such remark.
fn answer_turn(turns: &[Turn], sents_all: &[Vec<Sent>], qi: usize) -> Option<usize> {
    let mut ai = qi + 1;
    if turns[ai].role == turns[qi].role && turns[ai].role != Role::Unknown {
        let remark = sents_all[qi].last().is_some_and(|s| s.question)
            && !sents_all[ai].iter().any(|s| s.question)
            && turns[ai].text.split_whitespace().count() <= 20;
        match turns.get(qi + 2) {
            Some(t) if remark && t.role != turns[qi].role && t.role != Role::Unknown => ai = qi + 2,
            _ => return None,
        }
    }
    if is_clarification(&turns[ai].text)
        && turns.get(qi + 2).is_some_and(|t| t.role == turns[qi].role)
        && turns.get(qi + 3).is_some_and(|t| t.role == turns[ai].role)
    {
        ai = qi + 3;
    }
    Some(ai)
}

/// The sentences `(first, last)` of the question a turn ends its asking with: its last
/// question, and the run of elliptical questions before it ("Sore throat? Runny nose?", "Any
/// vomiting blood? Chest pain? None?"): a question that does not open with an interrogative
/// continues the one before it, and one answer answers them all. `None` without a question.
fn question_run(text: &str, sents_q: &[Sent]) -> Option<(usize, usize)> {
    let last_q = sents_q.iter().rposition(|s| s.question)?;
    let qtoks = tokenize(text);
    let opens_interrogative = |s: &Sent| {
        qtoks
            .iter()
            .filter(|t| t.begin_char >= s.b && t.begin_char < s.e)
            .map(|t| t.lower.as_str())
            .find(|w| !FILLERS.contains(w))
            .is_some_and(|w| INTERROGATIVES.contains(&w))
    };
    let mut first_q = last_q;
    while first_q > 0 && sents_q[first_q - 1].question && !opens_interrogative(&sents_q[first_q]) {
        first_q -= 1;
    }
    Some((first_q, last_q))
}

/// A question as the answer is applied to it.
struct Question {
    /// Char range of the question run in its turn.
    b: usize,
    e: usize,
    /// Where the question proper starts: what is said before it is not asked about ("You had
    /// pneumonia last year, any cough since?"); a tag question ("…, is that right?") asks
    /// about what came before, so there it is `b`.
    start: usize,
    chars: Vec<char>,
    /// The question run, normalised.
    norm: String,
    /// About a family member.
    family: bool,
    /// About the past ("ever", "history", a dated question): a yes makes it PAST_HISTORY.
    ever: bool,
    /// Names a condition: then a "No" answers the condition, not the drug beside it.
    has_condition: bool,
}

impl Question {
    /// The question a turn asks, `None` when it asks none.
    fn read(turn: &Turn, sents_q: &[Sent], ents: &[Found]) -> Option<Question> {
        let (first_q, last_q) = question_run(&turn.text, sents_q)?;
        let (qb, qe) = (sents_q[first_q].b, sents_q[last_q].e);
        let family = sents_q[first_q..=last_q].iter().any(|s| s.family);
        let qtext: String = turn.text.chars().skip(qb).take(qe - qb).collect();
        let norm = key_lower(&qtext);
        let ever = {
            // whole words ("fever" is not "ever")
            let padded = format!(" {norm} ");
            PAST_QUESTION_CUES.iter().any(|w| padded.contains(w))
                || sents_q[first_q..=last_q].iter().any(|s| s.hist_cue)
        };
        let chars: Vec<char> = turn.text.chars().collect();
        let mut start = question_start(&turn.text, qb, qe);
        if !ents.iter().any(|f| {
            negatable(f.entity.category) && f.entity.begin_char >= start && f.entity.begin_char < qe
        }) {
            start = qb;
        }
        let has_condition = ents.iter().any(|f| {
            f.entity.category == Category::MEDICAL_CONDITION
                && f.entity.begin_char >= qb
                && f.entity.begin_char < qe
        });
        Some(Question {
            b: qb,
            e: qe,
            start,
            chars,
            norm,
            family,
            ever,
            has_condition,
        })
    }
}

/// How an answer answers, as this pass reads it.
struct Answer {
    /// The condition asked about has ended ("That's gone too", "No, it went away").
    resolved: bool,
    /// A denial: a negative answer, a resolution, or a negative test result.
    negative: bool,
    /// A confirmation of the question as asked.
    positive: bool,
    /// Confirms the question's own polarity ("Right.", "Yes, correct.").
    confirms: bool,
    /// A plain "yes".
    yes: bool,
}

impl Answer {
    /// Reads the answer `text` to the question normalised as `qnorm`. Unsure answers ("I don't
    /// remember") neither confirm nor deny. "Did you get tested for strep?" "Yes, it was
    /// negative.": a negative result denies the condition.
    fn read(text: &str, qnorm: &str) -> Answer {
        let anorm_full = key_lower(text);
        let anorm = answer_core(&anorm_full);
        let unsure = starts_with_any(anorm, words::UNSURE_ANSWERS);
        let resolved = {
            let rest = DENIAL_OPENERS
                .iter()
                .find_map(|p| anorm.strip_prefix(p))
                .unwrap_or(anorm);
            starts_with_any(rest, RESOLVED_ANSWERS)
        };
        let tested = {
            let padded = format!(" {qnorm} ");
            TEST_QUESTION_CUES.iter().any(|w| padded.contains(w))
        };
        let result_negative = tested && {
            let first: Vec<&str> = anorm.split(' ').take(8).collect();
            NEGATIVE_RESULTS.iter().any(|w| first.contains(w))
        };
        let negative = !unsure
            && (resolved || result_negative || starts_with_any(anorm, words::NEGATIVE_ANSWERS));
        let positive = !negative && !unsure && starts_with_any(anorm, words::POSITIVE_ANSWERS);
        Answer {
            resolved,
            negative,
            positive,
            confirms: starts_with_any(anorm, CONFIRMATIONS),
            yes: positive && starts_with_any(anorm, PLAIN_YES),
        }
    }
}

/// What the answer says of the entities it names itself ("Any fever?" "No fever."), by text
/// and by code ("Any itching?" "No rash. I'm itchy sometimes though."): whether each is negated.
struct AnswerMentions {
    by_text: HashMap<String, bool>,
    by_code: HashMap<String, bool>,
}

impl AnswerMentions {
    fn of(ents: &[Found]) -> AnswerMentions {
        let by_text = ents
            .iter()
            .map(|f| {
                (
                    key_lower(&f.entity.text),
                    f.entity.has_trait(Trait::NEGATION),
                )
            })
            .collect();
        let by_code = ents
            .iter()
            .filter_map(|f| condition_code(f).map(|c| (c, f.entity.has_trait(Trait::NEGATION))))
            .collect();
        AnswerMentions { by_text, by_code }
    }

    /// Whether the answer negates the question's entity `f`, when it names it.
    fn negated(&self, f: &Found) -> Option<bool> {
        self.by_text
            .get(&key_lower(&f.entity.text))
            .or_else(|| condition_code(f).and_then(|c| self.by_code.get(&c)))
            .copied()
    }
}

/// The first code of a condition.
fn condition_code(f: &Found) -> Option<String> {
    (f.entity.category == Category::MEDICAL_CONDITION)
        .then(|| f.entity.codes.first().map(|c| c.code.clone()))
        .flatten()
}

/// Applies the answer to the entities the question asks about: not an allergen ("Any reaction
/// to penicillin?" "Never.": the allergy is denied, not the drug), not what the answer names
/// itself (that keeps the answer's polarity, except after a "Yes": "Do you keep nitroglycerin?"
/// "Yes, but I haven't needed it"), not a drug beside a condition ("Any bleeding on the
/// warfarin?" "No." negates the bleeding), not what is said before the question proper, nor a
/// vaccine's disease.
fn answer_question(
    q: &Question,
    a: &Answer,
    mentions: &AnswerMentions,
    allergens: &[bool],
    ents: &mut [Found],
) {
    for (fi, f) in ents.iter_mut().enumerate() {
        if allergens.get(fi).copied().unwrap_or(false) {
            continue;
        }
        if f.entity.begin_char < q.b || f.entity.begin_char >= q.e || !negatable(f.entity.category)
        {
            continue;
        }
        if let Some(neg) = mentions.negated(f) {
            if neg && !a.yes {
                add_trait(f, Trait::NEGATION, 0.85);
            }
            continue;
        }
        if q.has_condition && f.entity.category != Category::MEDICAL_CONDITION {
            continue;
        }
        if f.entity.begin_char < q.start || vaccine_of(&q.chars, f.entity.end_char) {
            continue;
        }
        if a.negative {
            deny(q, a, f);
        } else if a.positive {
            confirm(q, a, f);
        }
    }
}

/// A negative answer negates the entity, unless the question presupposes it ("Does the pain go
/// down your legs?" "No."; "Does the nitroglycerin help?") and the answer does not say it
/// ended.
fn deny(q: &Question, a: &Answer, f: &mut Found) {
    let presupposes = !a.resolved
        && match f.entity.category {
            Category::MEDICAL_CONDITION => {
                presupposed(&q.chars, f.entity.begin_char) && !body_part_predicate(&f.entity.text)
            }
            Category::MEDICATION => med_presupposed(&q.chars, f.entity.begin_char),
            _ => false,
        };
    if presupposes {
        return;
    }
    if !f.entity.has_trait(Trait::NEGATION) {
        add_trait(f, Trait::NEGATION, 0.85);
    }
}

/// A confirming answer asserts the entity: it drops the question's negation and hypothesis,
/// and a question about the past makes it PAST_HISTORY. "You're not diabetic, right?" "Right."
/// confirms the negation instead. "No chest pain at all?" "Yes.": agreeing with the negative
/// question or reporting the pain? Neither can be told; the finding is neither negated nor
/// asserted, and LOW_CONFIDENCE keeps it out of the note's Reports/Denies lines and out of the
/// chart.
fn confirm(q: &Question, a: &Answer, f: &mut Found) {
    if a.confirms && f.entity.has_trait(Trait::NEGATION) {
        return;
    }
    if a.yes && f.entity.has_trait(Trait::NEGATION) {
        f.entity
            .traits
            .retain(|(t, _)| *t != Trait::HYPOTHETICAL && *t != Trait::NEGATION);
        add_trait(f, Trait::LOW_CONFIDENCE, 0.9);
        return;
    }
    f.entity
        .traits
        .retain(|(t, _)| *t != Trait::HYPOTHETICAL && *t != Trait::NEGATION);
    if q.ever && !q.family {
        add_trait(f, Trait::PAST_HISTORY, 0.7);
    }
}

/// The conditions in the first two sentences of a non-negative answer to a family-history
/// question pertain to family.
fn mark_family_answer(sents_a: &[Sent], ents_a: &mut [Found]) {
    let first_sents: Vec<(usize, usize)> = sents_a.iter().take(2).map(|s| (s.b, s.e)).collect();
    for f in ents_a.iter_mut() {
        if f.entity.category == Category::MEDICAL_CONDITION
            && first_sents
                .iter()
                .any(|(b, e)| f.entity.begin_char >= *b && f.entity.begin_char < *e)
        {
            add_trait(f, Trait::PERTAINS_TO_FAMILY, 0.75);
        }
    }
}

/// Whether a turn only asks to hear the question again ("Sorry, what was that?", "Hmm?").
fn is_clarification(text: &str) -> bool {
    let norm = key_lower(text);
    let n = norm.split(' ').filter(|w| !w.is_empty()).count();
    (1..=6).contains(&n) && text.trim_end().ends_with('?') && starts_with_any(&norm, CLARIFICATIONS)
}

/// Whether the condition entity `text` is a body part doing something ("your heart racing",
/// "her ankles swelling"): a possessive before it belongs to the body part, so the question
/// does not presuppose the condition.
fn body_part_predicate(text: &str) -> bool {
    let toks = tokenize(text);
    toks.len() >= 2 && toks.last().is_some_and(|t| t.lower.ends_with("ing"))
}

/// Whether the medication starting at char `begin` of a question is presupposed: the question
/// is about how it works for the patient, not whether they take it ("Does the nitroglycerin
/// help?", "Any side effects from (the) lisinopril?"). "Are you taking the metoprolol?" is not.
fn med_presupposed(chars: &[char], begin: usize) -> bool {
    let before: String = chars[..begin.min(chars.len())].iter().collect();
    let toks = tokenize(&before);
    let n = toks.len();
    let w = |k: usize| n.checked_sub(k).map(|i| toks[i].lower.as_str());
    let det = w(1).is_some_and(|x| DEFINITE.contains(&x));
    let prep = |x: Option<&str>| matches!(x, Some("with" | "from" | "about"));
    prep(w(1))
        || (det && prep(w(2)))
        || (det
            && matches!(
                w(2),
                Some("does" | "did" | "is" | "was" | "has" | "are" | "were" | "do")
            ))
}

/// Whether the condition starting at char `begin` of a question is presupposed: right after a
/// definite determiner or possessive ("Does the pain go down your legs?", "… during the
/// headaches?"), unless the question asks whether it is still had ("Do you still have the
/// cough?", "Did you get the rash again?").
fn presupposed(chars: &[char], begin: usize) -> bool {
    let before: String = chars[..begin.min(chars.len())].iter().collect();
    let toks = tokenize(&before);
    let n = toks.len();
    if n == 0 || !DEFINITE.contains(&toks[n - 1].lower.as_str()) {
        return false;
    }
    let w = |k: usize| n.checked_sub(k).map(|i| toks[i].lower.as_str());
    let main_verb = w(2).is_some_and(|x| HAVING_VERBS.contains(&x))
        && w(3).is_some_and(|x| HAVING_SUBJECTS.contains(&x));
    !(main_verb || w(2) == Some("still"))
}

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
//! * SIGN / SYMPTOM / DIAGNOSIS from the lexicon kind: symptoms are SIGN when a clinician says
//!   them in an OBJECTIVE turn, else SYMPTOM; diagnoses are DIAGNOSIS.
//!
//! Triggers come from `mappings/clinical/context_triggers.tsv` (derived from negspacy/medspacy)
//! plus the conversational triggers written by the team below.

use super::entities::Found;
use super::lexicon::CondKind;
use super::matcher::TokenMatcher;
use super::text::tokenize;
use super::types::{Category, Role, Section, Trait, Turn};

/// Conversational triggers written by the team (added to the derived list).
const TEAM_TRIGGERS: &[(&str, &str)] = &[
    ("no", "NEG_PRE"),
    ("not", "NEG_PRE"),
    ("never", "NEG_PRE"),
    ("never had", "NEG_PRE"),
    ("dont", "NEG_PRE"),
    ("dont have", "NEG_PRE"),
    ("do not", "NEG_PRE"),
    ("didnt", "NEG_PRE"),
    ("did not", "NEG_PRE"),
    ("havent", "NEG_PRE"),
    ("have not", "NEG_PRE"),
    ("hasnt", "NEG_PRE"),
    ("doesnt", "NEG_PRE"),
    ("isnt", "NEG_PRE"),
    ("arent", "NEG_PRE"),
    ("wasnt", "NEG_PRE"),
    ("werent", "NEG_PRE"),
    // "n't" split off by some transcribers ("do n't") tokenises as "nt"
    ("nt", "NEG_PRE"),
    ("cant", "PSEUDO"),
    ("without", "NEG_PRE"),
    ("none", "NEG_PRE"),
    ("denies", "NEG_PRE"),
    ("deny", "NEG_PRE"),
    ("negative for", "NEG_PRE"),
    ("free of", "NEG_PRE"),
    ("stopped", "HIST_PRE"),
    ("quit", "HIST_PRE"),
    ("not anymore", "NEG_POST"),
    ("any more", "TERM"),
    ("no longer", "NEG_PRE"),
    ("nope", "NEG_PRE"),
    ("not really", "NEG_PRE"),
    ("gone away", "NEG_POST"),
    ("is gone", "NEG_POST"),
    ("are gone", "NEG_POST"),
    ("has gone", "NEG_POST"),
    ("was on", "HIST_PRE"),
    ("were on", "HIST_PRE"),
    ("used to take", "HIST_PRE"),
    ("tried", "HIST_PRE"),
    ("went away", "NEG_POST"),
    ("resolved", "NEG_POST"),
    ("not sure", "PSEUDO"),
    ("as needed", "PSEUDO"),
    ("if needed", "PSEUDO"),
    ("when needed", "PSEUDO"),
    ("no change", "PSEUDO"),
    ("not only", "PSEUDO"),
    ("no problem", "PSEUDO"),
    ("not bad", "PSEUDO"),
    ("but", "TERM"),
    ("though", "TERM"),
    ("although", "TERM"),
    ("except", "TERM"),
    ("however", "TERM"),
    ("other than", "TERM"),
    ("besides", "TERM"),
    ("only", "TERM"),
    ("just", "TERM"),
    ("still", "TERM"),
    ("and i have", "TERM"),
    ("i do have", "TERM"),
    ("if", "HYPO_PRE"),
    ("in case", "HYPO_PRE"),
    ("should you", "HYPO_PRE"),
    ("watch for", "HYPO_PRE"),
    ("watch out for", "HYPO_PRE"),
    ("look out for", "HYPO_PRE"),
    ("could", "HYPO_PRE"),
    ("might", "HYPO_PRE"),
    ("may", "HYPO_PRE"),
    ("possible", "HYPO_PRE"),
    ("possibly", "HYPO_PRE"),
    ("probably", "HYPO_PRE"),
    ("rule out", "HYPO_PRE"),
    ("risk of", "HYPO_PRE"),
    ("worried about", "HYPO_PRE"),
    ("concerned about", "HYPO_PRE"),
    ("to prevent", "HYPO_PRE"),
    ("prevent", "HYPO_PRE"),
    ("to avoid", "HYPO_PRE"),
    ("can cause", "HYPO_PRE"),
    ("cause", "HYPO_PRE"),
    ("causes", "HYPO_PRE"),
    ("side effects", "HYPO_PRE"),
    ("side effect", "HYPO_PRE"),
    ("would", "HYPO_PRE"),
    ("history of", "HIST_PRE"),
    ("hx of", "HIST_PRE"),
    ("used to", "HIST_PRE"),
    ("in the past", "HIST_PRE"),
    ("previously", "HIST_PRE"),
    ("past medical history", "HIST_PRE"),
    ("as a child", "HIST_PRE"),
    ("as a kid", "HIST_PRE"),
    ("when i was", "HIST_PRE"),
    ("years ago", "HIST_POST"),
    ("back in", "HIST_PRE"),
    ("ago", "HIST_POST"),
];

/// Family-member words (a sentence with one of them pertains to family).
const FAMILY: &[&str] = &[
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

const INTERROGATIVES: &[&str] = &[
    "any", "do", "does", "did", "are", "is", "have", "has", "how", "what", "when", "where", "why",
    "can", "could", "would", "will", "were", "was", "anything", "ever",
];

const PRONOUNS: &[&str] = &["he", "she", "they", "his", "her", "their", "him", "them"];

const NEG_ANSWERS: &[&str] = &[
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
];
const POS_ANSWERS: &[&str] = &[
    "yes",
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
];

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Trig {
    NegPre,
    NegPost,
    Pseudo,
    Term,
    HypoPre,
    HypoPost,
    HistPre,
    HistPost,
    FamPre,
}

fn trig_of(s: &str) -> Option<Trig> {
    Some(match s {
        "NEG_PRE" => Trig::NegPre,
        "NEG_POST" => Trig::NegPost,
        "PSEUDO" => Trig::Pseudo,
        "TERM" => Trig::Term,
        "HYPO_PRE" => Trig::HypoPre,
        "HYPO_POST" => Trig::HypoPost,
        "HIST_PRE" => Trig::HistPre,
        "HIST_POST" => Trig::HistPost,
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

/// A sentence: char range and token range.
struct Sent {
    b: usize,
    e: usize,
    question: bool,
    family: bool,
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

/// Applies traits to the entities of every turn (in place).
pub fn apply(rules: &ContextRules, turns: &[Turn], sections: &[Section], found: &mut [Vec<Found>]) {
    let mut sents_all: Vec<Vec<Sent>> = Vec::with_capacity(turns.len());
    for (ti, turn) in turns.iter().enumerate() {
        let toks = tokenize(&turn.text);
        let lower: Vec<&str> = toks.iter().map(|t| t.lower.as_str()).collect();
        let mut sents = sentences(&turn.text);
        // sentence index of each token (one pass; tokens and sentences are both in order)
        let mut tok_sent = Vec::with_capacity(toks.len());
        let mut si = 0usize;
        for t in &toks {
            while si + 1 < sents.len() && t.begin_char >= sents[si].e {
                si += 1;
            }
            tok_sent.push(si);
        }
        // unpunctuated ASR text: a last sentence that opens with an interrogative is a question
        if !sents.iter().any(|s| s.question) {
            if let Some(last) = sents.last_mut() {
                let first = toks
                    .iter()
                    .find(|t| t.begin_char >= last.b)
                    .map(|t| t.lower.as_str());
                if first.is_some_and(|w| INTERROGATIVES.contains(&w)) {
                    last.question = true;
                }
            }
        }
        // family flags per sentence (with pronoun carry-over inside the turn)
        let mut flags = vec![(false, false, false); sents.len()]; // (family word, pronoun, self)
        for (k, t) in toks.iter().enumerate() {
            let w = t.lower.as_str();
            let f = &mut flags[tok_sent[k].min(sents.len().saturating_sub(1))];
            f.0 |= FAMILY.contains(&w);
            f.1 |= PRONOUNS.contains(&w);
            f.2 |= matches!(w, "i" | "me" | "my" | "im" | "ive");
        }
        let mut prev_family = false;
        for (s, (fam, pron, me)) in sents.iter_mut().zip(&flags) {
            s.family = *fam || (prev_family && *pron && !*me);
            prev_family = s.family;
        }
        // triggers
        let trig = rules.matcher.find(&lower);
        let pseudo: Vec<(usize, usize)> = trig
            .iter()
            .filter(|(_, _, k)| rules.kinds[*k] == Trig::Pseudo)
            .map(|(b, e, _)| (*b, *e))
            .collect();
        // index of the next termination trigger at or after each trigger
        let mut next_term = vec![usize::MAX; trig.len() + 1];
        for i in (0..trig.len()).rev() {
            next_term[i] = if rules.kinds[trig[i].2] == Trig::Term {
                trig[i].0
            } else {
                next_term[i + 1]
            };
        }
        let ents = &mut found[ti];
        // entity token ranges (entities are sorted by begin)
        let ent_tok: Vec<(usize, usize)> = ents
            .iter()
            .map(|f| {
                let b = toks.partition_point(|t| t.end_char <= f.entity.begin_char);
                let e = toks
                    .partition_point(|t| t.begin_char < f.entity.end_char)
                    .max(b + 1);
                (b, e)
            })
            .collect();
        let sent_of = |tok: usize| tok_sent.get(tok).copied().unwrap_or(0);
        for (ti2, &(tb, te, k)) in trig.iter().enumerate() {
            let kind = rules.kinds[k];
            if matches!(kind, Trig::Pseudo | Trig::Term) {
                continue;
            }
            let pi = pseudo.partition_point(|p| p.1 <= tb);
            if pseudo[pi..]
                .iter()
                .take_while(|p| p.0 <= tb)
                .any(|p| te <= p.1 && (p.1 - p.0) > (te - tb))
            {
                continue;
            }
            let s_idx = sent_of(tb);
            let forward = matches!(
                kind,
                Trig::NegPre | Trig::HypoPre | Trig::HistPre | Trig::FamPre
            );
            let (lo, hi) = if forward {
                let term = next_term[ti2 + 1];
                ((te), (te + 15).min(toks.len()).min(term))
            } else {
                (tb.saturating_sub(6), tb)
            };
            let (t, score) = match kind {
                Trig::NegPre | Trig::NegPost => (Trait::NEGATION, 0.9),
                Trig::HypoPre | Trig::HypoPost => (Trait::HYPOTHETICAL, 0.8),
                Trig::HistPre | Trig::HistPost => (Trait::PAST_HISTORY, 0.8),
                Trig::FamPre => (Trait::PERTAINS_TO_FAMILY, 0.85),
                _ => continue,
            };
            // candidate entities: those starting in [lo - 16, hi)
            let first = ent_tok.partition_point(|x| x.0 + 16 < lo);
            for ei in first..ent_tok.len() {
                let (eb, ee) = ent_tok[ei];
                if eb >= hi.max(lo + 1) + 16 {
                    break;
                }
                let inside = if forward {
                    eb >= lo && eb < hi
                } else {
                    ee > lo && ee <= hi
                };
                let f = &mut ents[ei];
                if !inside || sent_of(eb) != s_idx || !negatable(f.entity.category) {
                    continue;
                }
                // overlapping trigger and entity (e.g. "no appetite" is itself a condition)
                if eb < te && tb < ee {
                    continue;
                }
                add_trait(f, t, score);
            }
        }
        // family by sentence
        for (ei, f) in ents.iter_mut().enumerate() {
            if f.entity.category == Category::MEDICAL_CONDITION
                && sents.get(sent_of(ent_tok[ei].0)).is_some_and(|s| s.family)
            {
                add_trait(f, Trait::PERTAINS_TO_FAMILY, 0.8);
            }
        }
        // sign / symptom / diagnosis
        let sec = sections.get(ti).copied().unwrap_or(Section::SUBJECTIVE);
        for f in ents.iter_mut() {
            match f.kind {
                CondKind::Symptom => {
                    if turn.role == Role::Clinician && sec == Section::OBJECTIVE {
                        add_trait(f, Trait::SIGN, 0.7)
                    } else {
                        add_trait(f, Trait::SYMPTOM, 0.75)
                    }
                }
                CondKind::Diagnosis => add_trait(f, Trait::DIAGNOSIS, 0.75),
                CondKind::NotACondition => {}
            }
        }
        sents_all.push(sents);
    }
    // question–answer scope
    for qi in 0..turns.len().saturating_sub(1) {
        let ai = qi + 1;
        if turns[ai].role == turns[qi].role && turns[ai].role != Role::Unknown {
            continue;
        }
        let Some(qs) = sents_all[qi].iter().rev().find(|s| s.question) else {
            continue;
        };
        let (qb, qe, qfam) = (qs.b, qs.e, qs.family);
        let qtext: String = turns[qi].text.chars().skip(qb).take(qe - qb).collect();
        let qnorm = key_lower(&qtext);
        let ever =
            qnorm.contains("ever") || qnorm.contains("history") || qnorm.contains("in the past");
        let anorm = key_lower(&turns[ai].text);
        let negative = starts_with_any(&anorm, NEG_ANSWERS);
        let positive = !negative && starts_with_any(&anorm, POS_ANSWERS);
        // the answer repeats a question entity ("Any fever?" "No fever.") → same polarity
        let answer_neg: std::collections::HashMap<String, bool> = found[ai]
            .iter()
            .map(|f| {
                (
                    key_lower(&f.entity.text),
                    f.entity.has_trait(Trait::NEGATION),
                )
            })
            .collect();
        let q_has_condition = found[qi].iter().any(|f| {
            f.entity.category == Category::MEDICAL_CONDITION
                && f.entity.begin_char >= qb
                && f.entity.begin_char < qe
        });
        for f in found[qi].iter_mut() {
            if f.entity.begin_char < qb
                || f.entity.begin_char >= qe
                || !negatable(f.entity.category)
            {
                continue;
            }
            if let Some(neg) = answer_neg.get(&key_lower(&f.entity.text)) {
                if *neg {
                    add_trait(f, Trait::NEGATION, 0.85);
                }
                continue;
            }
            // "Any bleeding on the warfarin?" "No." negates the bleeding, not the warfarin
            if q_has_condition && f.entity.category != Category::MEDICAL_CONDITION {
                continue;
            }
            if negative {
                if !f.entity.has_trait(Trait::NEGATION) {
                    add_trait(f, Trait::NEGATION, 0.85);
                }
            } else if positive {
                f.entity
                    .traits
                    .retain(|(t, _)| *t != Trait::HYPOTHETICAL && *t != Trait::NEGATION);
                if ever && !qfam {
                    add_trait(f, Trait::PAST_HISTORY, 0.7);
                }
            }
        }
        if qfam && !negative {
            let first_sents: Vec<(usize, usize)> =
                sents_all[ai].iter().take(2).map(|s| (s.b, s.e)).collect();
            for f in found[ai].iter_mut() {
                if f.entity.category == Category::MEDICAL_CONDITION
                    && first_sents
                        .iter()
                        .any(|(b, e)| f.entity.begin_char >= *b && f.entity.begin_char < *e)
                {
                    add_trait(f, Trait::PERTAINS_TO_FAMILY, 0.75);
                }
            }
        }
    }
    for fs in found.iter_mut() {
        for f in fs.iter_mut() {
            f.entity.traits.sort_by_key(|(t, _)| *t);
        }
    }
}

//! The within-turn pass: ConText/NegEx trigger scopes inside each sentence, family sentences
//! (a pronoun after a sentence about a relative refers back to them), and SIGN / SYMPTOM /
//! DIAGNOSIS. It also marks the turn's questions (with or without a question mark), which the
//! question–answer pass ([`super::answers`]) reads.
//!
//! The steps of [`apply_within_turn`], in order: split sentences, mark questions, mark family
//! sentences, find the triggers, apply each trigger's scope, then the sentence-level traits.

use super::cues::{
    ALLERGY_HEADS, ANSWER_PARTICLES, CONDITION_OPENERS, FILLERS, GENERIC_PERSONS, INTERROGATIVES,
    PRONOUNS, SELF_WORDS, SENTENCE_LINKS, SUBJECTS, WHEN_WAS_STAGES,
};
use super::{
    add_trait, answer_polarity, key_lower, negatable, question_start, sentences, starts_with_any,
    vaccine_of, ContextRules, Sent, Trig,
};
use crate::clinical::entities::Found;
use crate::clinical::lexicon::CondKind;
use crate::clinical::text::{tokenize, Token};
use crate::clinical::types::{Category, Role, Section, Trait, Turn};
use crate::words;

/// Applies the within-turn traits to the entities of turn `ti` (in `found[ti]`). Returns the
/// turn's sentences (marked question, family, dated question) and which of its entities are
/// allergens, for the question–answer pass.
pub(super) fn apply_within_turn(
    rules: &ContextRules,
    turns: &[Turn],
    ti: usize,
    section: Section,
    found: &mut [Vec<Found>],
) -> (Vec<Sent>, Vec<bool>) {
    let turn = &turns[ti];
    let toks = tokenize(&turn.text);
    let lower: Vec<&str> = toks.iter().map(|t| t.lower.as_str()).collect();
    let chars: Vec<char> = turn.text.chars().collect();
    let mut sents = sentences(&turn.text);
    let tok_sent = token_sentences(&toks, &sents);
    mark_unpunctuated_question(&toks, &mut sents);
    mark_denied_statement(turns, ti, &found[ti], &mut sents);
    mark_family_sentences(&toks, &tok_sent, &mut sents);
    let ents = &mut found[ti];
    let ent_tok = entity_tokens(&toks, ents);
    let allergen = allergens(&lower, ents, &ent_tok);
    let trigs = Triggers::find(rules, &toks, &lower, &chars);
    let t = TurnTokens {
        role: turn.role,
        text: &turn.text,
        toks: &toks,
        lower: &lower,
        chars: &chars,
        sents: &sents,
        tok_sent: &tok_sent,
        ent_tok: &ent_tok,
        sent_first: sentence_openers(&toks, &lower, &sents, &tok_sent),
        clause_starts: clause_starts(&toks, &lower, &chars),
    };
    let mut hist_cues: Vec<usize> = Vec::new();
    for i in trigs.order() {
        apply_trigger(&t, &trigs, i, &allergen, ents, &mut hist_cues);
    }
    for si in hist_cues {
        sents[si].hist_cue = true;
    }
    mark_family_conditions(&sents, &tok_sent, &ent_tok, ents);
    mark_condition_kinds(turn.role, section, ents);
    (sents, allergen)
}

/// The sentence index of each token (one pass: tokens and sentences are both in order).
fn token_sentences(toks: &[Token], sents: &[Sent]) -> Vec<usize> {
    let mut tok_sent = Vec::with_capacity(toks.len());
    let mut si = 0usize;
    for t in toks {
        while si + 1 < sents.len() && t.begin_char >= sents[si].e {
            si += 1;
        }
        tok_sent.push(si);
    }
    tok_sent
}

/// Unpunctuated speech-recognition text: when no sentence ends with "?", a last sentence that
/// opens with an interrogative (after fillers and discourse markers: "good and any tingling in
/// the feet") is a question.
fn mark_unpunctuated_question(toks: &[Token], sents: &mut [Sent]) {
    if !sents.iter().any(|s| s.question) {
        if let Some(last) = sents.last_mut() {
            let first = toks
                .iter()
                .filter(|t| t.begin_char >= last.b)
                .map(|t| t.lower.as_str())
                .find(|w| !FILLERS.contains(w));
            if first.is_some_and(|w| INTERROGATIVES.contains(&w)) {
                last.question = true;
            }
        }
    }
}

/// Speech recognition drops the question mark of a list of symptoms ("shortness of breath, or
/// swelling in your ankles." "No, none of that."): a clinician's last sentence that names a
/// condition and that the patient's next turn answers with a bare "No" is a question. (Moved
/// here from the note generator, so the note and the chart read it alike.) Not a remark after
/// the clinician's own question ("Any fever? — I'm asking because the flu is going around."),
/// which the open-question rule of the question–answer pass handles.
fn mark_denied_statement(turns: &[Turn], ti: usize, ents: &[Found], sents: &mut [Sent]) {
    let turn = &turns[ti];
    let after_own_turn = ti > 0 && turns[ti - 1].role == Role::Clinician;
    if !sents.iter().any(|s| s.question) && turn.role == Role::Clinician && !after_own_turn {
        let answered_no = turns.get(ti + 1).is_some_and(|n| {
            n.role == Role::Patient
                && starts_with_any(&key_lower(&n.text), ANSWER_PARTICLES)
                && answer_polarity(&n.text) == Some(false)
        });
        if let Some(last) = sents.last_mut().filter(|_| answered_no) {
            if ents.iter().any(|f| {
                f.entity.category == Category::MEDICAL_CONDITION
                    && f.entity.begin_char >= last.b
                    && f.entity.begin_char < last.e
            }) {
                last.question = true;
            }
        }
    }
}

/// Marks the sentences about a family member: one with a family word, or one that refers back
/// with a pronoun ("he", "her") to the sentence before it when that was about family and the
/// speaker does not speak of themselves.
fn mark_family_sentences(toks: &[Token], tok_sent: &[usize], sents: &mut [Sent]) {
    let mut flags = vec![(false, false, false); sents.len()]; // (family word, pronoun, self)
    for (k, t) in toks.iter().enumerate() {
        let w = t.lower.as_str();
        let f = &mut flags[tok_sent[k].min(sents.len().saturating_sub(1))];
        f.0 |= words::FAMILY_MEMBERS.contains(&w);
        f.1 |= PRONOUNS.contains(&w);
        f.2 |= SELF_WORDS.contains(&w);
    }
    let mut prev_family = false;
    for (s, (fam, pron, me)) in sents.iter_mut().zip(&flags) {
        s.family = *fam || (prev_family && *pron && !*me);
        prev_family = s.family;
    }
}

/// Token range of each entity (entities are sorted by begin).
fn entity_tokens(toks: &[Token], ents: &[Found]) -> Vec<(usize, usize)> {
    ents.iter()
        .map(|f| {
            let b = toks.partition_point(|t| t.end_char <= f.entity.begin_char);
            let e = toks
                .partition_point(|t| t.begin_char < f.entity.end_char)
                .max(b + 1);
            (b, e)
        })
        .collect()
}

/// A turn's tokens and sentences as the trigger scopes read them.
struct TurnTokens<'a> {
    role: Role,
    text: &'a str,
    toks: &'a [Token],
    lower: &'a [&'a str],
    chars: &'a [char],
    sents: &'a [Sent],
    /// Sentence index of each token.
    tok_sent: &'a [usize],
    /// Token range of each entity.
    ent_tok: &'a [(usize, usize)],
    /// See [`sentence_openers`].
    sent_first: Vec<Option<usize>>,
    /// See [`clause_starts`].
    clause_starts: Vec<usize>,
}

impl TurnTokens<'_> {
    fn sent_of(&self, tok: usize) -> usize {
        self.tok_sent.get(tok).copied().unwrap_or(0)
    }

    fn in_question(&self, sent: usize) -> bool {
        self.sents.get(sent).is_some_and(|s| s.question)
    }
}

/// First token of each sentence that is not a filler or a link ("Okay. If you get a fever …",
/// "But if …").
fn sentence_openers(
    toks: &[Token],
    lower: &[&str],
    sents: &[Sent],
    tok_sent: &[usize],
) -> Vec<Option<usize>> {
    let mut sent_first: Vec<Option<usize>> = vec![None; sents.len()];
    for (k, &si) in tok_sent.iter().enumerate() {
        if si < sent_first.len()
            && sent_first[si].is_none()
            && toks[k].begin_char >= sents[si].b
            && toks[k].begin_char < sents[si].e
            && !FILLERS.contains(&lower[k])
            && !SENTENCE_LINKS.contains(&lower[k])
        {
            sent_first[si] = Some(k);
        }
    }
    sent_first
}

/// Tokens that open a new clause after a comma ("I didn't go to urgent care, I used my
/// inhaler"): a subject pronoun right after a comma.
fn clause_starts(toks: &[Token], lower: &[&str], chars: &[char]) -> Vec<usize> {
    (1..toks.len())
        .filter(|&k| {
            SUBJECTS.contains(&lower[k])
                && chars[toks[k - 1].end_char.min(chars.len())..toks[k].begin_char].contains(&',')
        })
        .collect()
}

/// The triggers of a turn, sorted by position, with the nearest terminator after each.
struct Triggers {
    /// (first token, end token, kind).
    list: Vec<(usize, usize, Trig)>,
    /// Token ranges of the pseudo-triggers, in order.
    pseudo: Vec<(usize, usize)>,
    /// For each trigger index, the first token of the next terminator at or after it
    /// (`usize::MAX` when none): of every scope, of negation scopes (which also stop at the
    /// negation-only terminators), of history scopes.
    next_term: Vec<usize>,
    next_term_neg: Vec<usize>,
    next_term_hist: Vec<usize>,
}

impl Triggers {
    /// The rules' triggers in the turn plus the past time adverbials the list cannot spell.
    fn find(rules: &ContextRules, toks: &[Token], lower: &[&str], chars: &[char]) -> Triggers {
        let mut list: Vec<(usize, usize, Trig)> = rules
            .matcher
            .find(lower)
            .into_iter()
            .map(|(b, e, k)| (b, e, rules.kinds[k]))
            .collect();
        list.extend(time_triggers(toks, lower, chars, &list));
        list.sort_by_key(|(b, e, _)| (*b, *e));
        let pseudo: Vec<(usize, usize)> = list
            .iter()
            .filter(|(_, _, k)| *k == Trig::Pseudo)
            .map(|(b, e, _)| (*b, *e))
            .collect();
        let mut next_term = vec![usize::MAX; list.len() + 1];
        let mut next_term_neg = vec![usize::MAX; list.len() + 1];
        let mut next_term_hist = vec![usize::MAX; list.len() + 1];
        for i in (0..list.len()).rev() {
            next_term[i] = if list[i].2 == Trig::Term {
                list[i].0
            } else {
                next_term[i + 1]
            };
            next_term_neg[i] = if matches!(list[i].2, Trig::Term | Trig::TermNeg) {
                list[i].0
            } else {
                next_term_neg[i + 1]
            };
            next_term_hist[i] = if matches!(list[i].2, Trig::Term | Trig::TermHist) {
                list[i].0
            } else {
                next_term_hist[i + 1]
            };
        }
        Triggers {
            list,
            pseudo,
            next_term,
            next_term_neg,
            next_term_hist,
        }
    }

    /// The order the triggers are applied in: past time adverbials last, so that a negation
    /// of the same clause wins ("Your eye exam last year was negative for retinopathy").
    fn order(&self) -> Vec<usize> {
        let dated = |i: &usize| matches!(self.list[*i].2, Trig::HistTime | Trig::HistTimePost);
        (0..self.list.len())
            .filter(|i| !dated(i))
            .chain((0..self.list.len()).filter(dated))
            .collect()
    }

    /// Whether a longer pseudo-trigger covers the trigger at `[tb, te)` ("no further", "not
    /// only"): it blocks it.
    fn inside_pseudo(&self, tb: usize, te: usize) -> bool {
        let pi = self.pseudo.partition_point(|p| p.1 <= tb);
        self.pseudo[pi..]
            .iter()
            .take_while(|p| p.0 <= tb)
            .any(|p| te <= p.1 && (p.1 - p.0) > (te - tb))
    }
}

/// Applies trigger `i` to the entities in its scope: the trait its kind gives (see
/// [`trait_of`]), forward and/or backward within its sentence. A past time adverbial in a
/// question only records the sentence in `hist_cues`: the answer decides.
fn apply_trigger(
    t: &TurnTokens,
    trigs: &Triggers,
    i: usize,
    allergen: &[bool],
    ents: &mut [Found],
    hist_cues: &mut Vec<usize>,
) {
    let (tb, te, kind) = trigs.list[i];
    if !trigger_counts(t, trigs, i) {
        return;
    }
    let sent = t.sent_of(tb);
    let Some(stop) = dated_question_stop(t, kind, tb, sent, hist_cues) else {
        return;
    };
    if kind == Trig::HistCont && !continues_past_episode(t, trigs, i, sent) {
        return;
    }
    // a sentence that opens with a condition ("If the swab is positive, I'll call in
    // amoxicillin") is conditional as a whole: its main clause is the consequent
    let opens_condition = kind == Trig::HypoPre
        && t.sent_first.get(sent).copied().flatten() == Some(tb)
        && CONDITION_OPENERS.contains(&t.lower[tb..te].join(" ").as_str());
    for &forward in directions(kind) {
        let (lo, hi) = if forward {
            forward_scope(t, trigs, i, opens_condition, stop)
        } else {
            backward_scope(t, trigs, i)
        };
        let Some((tr, score)) = trait_of(kind, t.lower, tb) else {
            continue;
        };
        let scope = Scope {
            lo,
            hi,
            forward,
            sent,
            tb,
            te,
            kind,
            tr,
            score,
        };
        mark_scope(t, &scope, allergen, ents);
    }
}

/// Whether trigger `i` applies at all: terminators and pseudo-triggers give nothing, nor does a
/// bare answer particle ("No, I've been having palpitations"), a trigger inside a longer
/// pseudo-trigger, a resolution trigger in a question ("Has the rash gone away?": the answer
/// decides), or a possibility asked by anyone but the patient ("Is it anxiety then?").
fn trigger_counts(t: &TurnTokens, trigs: &Triggers, i: usize) -> bool {
    let (tb, te, kind) = trigs.list[i];
    if matches!(
        kind,
        Trig::Pseudo | Trig::Term | Trig::TermNeg | Trig::TermHist
    ) {
        return false;
    }
    if kind == Trig::NegPre
        && is_answer_particle(&t.lower[tb..te], t.chars, t.toks[te - 1].end_char)
    {
        return false;
    }
    if trigs.inside_pseudo(tb, te) {
        return false;
    }
    let in_question = t.in_question(t.sent_of(tb));
    if kind == Trig::NegPost && in_question {
        return false;
    }
    if kind == Trig::HypoQ && !(in_question && t.role == Role::Patient) {
        return false;
    }
    true
}

/// Where the scope of a past time adverbial in a question must stop. "Did you have head
/// injuries as a kid?": the answer decides, so the sentence goes to `hist_cues` and `None` is
/// returned; unless the adverbial dates a statement before the question proper ("You had
/// pneumonia last year, any cough since?"), whose scope then stops where the question starts.
/// (An unpunctuated turn opening with "when" is read as a question; "When I was ten I had
/// pneumonia." with its full stop is not.) `Some(usize::MAX)` for every other trigger.
fn dated_question_stop(
    t: &TurnTokens,
    kind: Trig,
    tb: usize,
    sent: usize,
    hist_cues: &mut Vec<usize>,
) -> Option<usize> {
    let stated = t.sents.get(sent).is_some_and(|st| {
        t.chars[st.b..st.e.min(t.chars.len())]
            .iter()
            .rev()
            .find(|c| !c.is_whitespace())
            .is_some_and(|c| matches!(c, '.' | '!'))
    });
    if matches!(kind, Trig::HistTime | Trig::HistTimePost) && t.in_question(sent) && !stated {
        let st = &t.sents[sent];
        let qs = question_start(t.text, st.b, st.e);
        if !(qs > st.b && t.toks[tb].begin_char < qs) {
            hist_cues.push(sent);
            return None;
        }
        // … and covers the statement only
        return Some(t.toks.partition_point(|x| x.begin_char < qs));
    }
    Some(usize::MAX)
}

/// "… but it gave me a rash" continues a past episode: only in a statement whose sentence has a
/// history trigger before it.
fn continues_past_episode(t: &TurnTokens, trigs: &Triggers, i: usize, sent: usize) -> bool {
    !t.in_question(sent)
        && trigs.list[..i].iter().any(|(b, _, k)| {
            t.sent_of(*b) == sent
                && matches!(
                    k,
                    Trig::HistPre
                        | Trig::HistPost
                        | Trig::HistTime
                        | Trig::HistTimePost
                        | Trig::HistBoth
                )
        })
}

/// The directions a trigger looks in: `true` forward, `false` backward.
fn directions(kind: Trig) -> &'static [bool] {
    match kind {
        Trig::HistTime | Trig::HistBoth => &[true, false],
        Trig::NegPre
        | Trig::HypoPre
        | Trig::HypoQ
        | Trig::HistPre
        | Trig::HistCont
        | Trig::FamPre => &[true],
        _ => &[false],
    }
}

/// The tokens `[lo, hi)` a forward trigger covers: up to 15 tokens, the next terminator of its
/// kind, a new clause (not in a sentence that opens with a condition) or `stop`. A patient's
/// "Is it anxiety?" covers only the predicate right after it.
fn forward_scope(
    t: &TurnTokens,
    trigs: &Triggers,
    i: usize,
    opens_condition: bool,
    stop: usize,
) -> (usize, usize) {
    let (tb, te, kind) = trigs.list[i];
    let term = match kind {
        Trig::NegPre => trigs.next_term_neg[i + 1],
        Trig::HistPre | Trig::HistTime | Trig::HistBoth | Trig::HistCont => {
            trigs.next_term_hist[i + 1]
        }
        _ => trigs.next_term[i + 1],
    };
    let term = if kind == Trig::HypoQ {
        term.min(te + if t.lower[tb..te] == ["will"] { 5 } else { 3 })
    } else {
        term
    };
    let clause = if opens_condition {
        usize::MAX
    } else {
        t.clause_starts
            .get(t.clause_starts.partition_point(|c| *c < te))
            .copied()
            .unwrap_or(usize::MAX)
    };
    (
        te,
        (te + 15).min(t.toks.len()).min(term).min(clause).min(stop),
    )
}

/// The tokens `[lo, hi)` a backward trigger covers: up to 6 tokens before it, stopping, like a
/// forward one, at a terminator of its kind or a new clause before the trigger ("I still cough
/// a bit but the fever is gone").
fn backward_scope(t: &TurnTokens, trigs: &Triggers, i: usize) -> (usize, usize) {
    let (tb, _, kind) = trigs.list[i];
    let term_end = trigs
        .list
        .iter()
        .filter(|(b, e, k)| {
            (*k == Trig::Term
                || (kind == Trig::NegPost && *k == Trig::TermNeg)
                || (*k == Trig::TermHist
                    && matches!(
                        kind,
                        Trig::HistPost | Trig::HistTime | Trig::HistTimePost | Trig::HistBoth
                    )))
                && *b < tb
                && *e <= tb
        })
        .map(|(_, e, _)| *e)
        .max()
        .unwrap_or(0);
    let clause = t
        .clause_starts
        .iter()
        .copied()
        .filter(|c| *c <= tb)
        .max()
        .unwrap_or(0);
    (tb.saturating_sub(6).max(term_end).max(clause), tb)
}

/// The trait a trigger gives and its score. A negation inside a relative clause about people
/// in general ("people who never had chickenpox") describes a hypothetical group instead.
fn trait_of(kind: Trig, lower: &[&str], tb: usize) -> Option<(Trait, f32)> {
    Some(match kind {
        Trig::NegPre if generic_relative(lower, tb) => (Trait::HYPOTHETICAL, 0.7),
        Trig::NegPre | Trig::NegPost => (Trait::NEGATION, 0.9),
        Trig::HypoPre | Trig::HypoPost | Trig::HypoQ => (Trait::HYPOTHETICAL, 0.8),
        Trig::HistPre
        | Trig::HistPost
        | Trig::HistTime
        | Trig::HistTimePost
        | Trig::HistBoth
        | Trig::HistCont => (Trait::PAST_HISTORY, 0.8),
        Trig::FamPre => (Trait::PERTAINS_TO_FAMILY, 0.85),
        _ => return None,
    })
}

/// One direction of one trigger: the tokens `[lo, hi)` it covers in sentence `sent`, the
/// trigger's own tokens `[tb, te)` and kind, and the trait `tr` it gives.
struct Scope {
    lo: usize,
    hi: usize,
    forward: bool,
    sent: usize,
    tb: usize,
    te: usize,
    kind: Trig,
    tr: Trait,
    score: f32,
}

/// Gives the scope's trait to the entities that start (forward) or end (backward) inside it, in
/// its sentence, when they can carry it. Not to an entity that overlaps the trigger ("no
/// appetite" is itself a condition), nor a negation to a vaccine's disease or an allergen, nor
/// a date to a denied entity ("I've never had a migraine before"). A negation covers one list
/// of conditions *or* of medications ("no heartburn since I started the omeprazole").
fn mark_scope(t: &TurnTokens, s: &Scope, allergen: &[bool], ents: &mut [Found]) {
    let ent_tok = t.ent_tok;
    // candidate entities: those starting in [lo - 16, hi)
    let first = ent_tok.partition_point(|x| x.0 + 16 < s.lo);
    let mut scope_cat: Option<Category> = None;
    for ei in first..ent_tok.len() {
        let (eb, ee) = ent_tok[ei];
        if eb >= s.hi.max(s.lo + 1) + 16 {
            break;
        }
        let inside = if s.forward {
            eb >= s.lo && eb < s.hi
        } else {
            ee > s.lo && ee <= s.hi
        };
        let f = &mut ents[ei];
        if !inside || t.sent_of(eb) != s.sent || !negatable(f.entity.category) {
            continue;
        }
        if eb < s.te && s.tb < ee {
            continue;
        }
        if s.tr == Trait::NEGATION && (vaccine_of(t.chars, f.entity.end_char) || allergen[ei]) {
            continue;
        }
        if matches!(s.kind, Trig::HistTime | Trig::HistTimePost)
            && f.entity.has_trait(Trait::NEGATION)
        {
            continue;
        }
        if s.kind == Trig::NegPre
            && matches!(
                f.entity.category,
                Category::MEDICAL_CONDITION | Category::MEDICATION
            )
        {
            match scope_cat {
                None => scope_cat = Some(f.entity.category),
                Some(c) if c != f.entity.category => break,
                _ => {}
            }
        }
        add_trait(f, s.tr, s.score);
    }
}

/// The conditions of a family sentence pertain to family.
fn mark_family_conditions(
    sents: &[Sent],
    tok_sent: &[usize],
    ent_tok: &[(usize, usize)],
    ents: &mut [Found],
) {
    let sent_of = |tok: usize| tok_sent.get(tok).copied().unwrap_or(0);
    for (ei, f) in ents.iter_mut().enumerate() {
        if f.entity.category == Category::MEDICAL_CONDITION
            && sents.get(sent_of(ent_tok[ei].0)).is_some_and(|s| s.family)
        {
            add_trait(f, Trait::PERTAINS_TO_FAMILY, 0.8);
        }
    }
}

/// SIGN / SYMPTOM / DIAGNOSIS from the lexicon kind: a symptom is a SIGN when a clinician says
/// it in an OBJECTIVE turn, else a SYMPTOM.
fn mark_condition_kinds(role: Role, section: Section, ents: &mut [Found]) {
    for f in ents.iter_mut() {
        match f.kind {
            CondKind::Symptom => {
                if role == Role::Clinician && section == Section::OBJECTIVE {
                    add_trait(f, Trait::SIGN, 0.7)
                } else {
                    add_trait(f, Trait::SYMPTOM, 0.75)
                }
            }
            CondKind::Diagnosis => add_trait(f, Trait::DIAGNOSIS, 0.75),
            CondKind::NotACondition => {}
        }
    }
}

/// Whether the negative trigger `words` (ending at char `end`) is a bare answer particle:
/// "No," / "Nope." / "Not really," followed by punctuation.
fn is_answer_particle(words: &[&str], chars: &[char], end: usize) -> bool {
    if !ANSWER_PARTICLES.contains(&words.join(" ").as_str()) {
        return false;
    }
    chars[end.min(chars.len())..]
        .iter()
        .find(|c| **c != ' ')
        .is_some_and(|c| matches!(c, ',' | '.' | '!' | ';' | ':' | '-' | '\u{2014}'))
}

/// For each entity of a turn (`ent_tok`: token ranges, in order), whether it is a medication
/// named as what the patient reacts to ("allergic to penicillin", "never had a reaction to
/// penicillin or amoxicillin"): a negation there denies the allergy, not the drug, so the drug
/// is never negated.
fn allergens(lower: &[&str], ents: &[Found], ent_tok: &[(usize, usize)]) -> Vec<bool> {
    let mut out = vec![false; ents.len()];
    for (ei, f) in ents.iter().enumerate() {
        if f.entity.category != Category::MEDICATION {
            continue;
        }
        let mut k = ent_tok[ei].0;
        while k > 0 && matches!(lower[k - 1], "a" | "an" | "the" | "any" | "some") {
            k -= 1;
        }
        let head =
            k >= 2 && matches!(lower[k - 1], "to" | "of") && ALLERGY_HEADS.contains(&lower[k - 2]);
        // a list after the head: "to penicillin or amoxicillin", "to sulfa, or to codeine"
        let listed = ei > 0
            && out[ei - 1]
            && lower[ent_tok[ei - 1].1.min(k)..k]
                .iter()
                .all(|w| matches!(*w, "or" | "and" | "nor" | "to"));
        out[ei] = head || listed;
    }
    out
}

/// Whether the trigger starting at token `tb` opens the predicate of a relative clause about
/// people in general ("only people who never had chickenpox", "anyone who hasn't had the
/// shot"): it describes a hypothetical group, not the patient.
fn generic_relative(lower: &[&str], tb: usize) -> bool {
    tb >= 2 && matches!(lower[tb - 1], "who" | "that") && GENERIC_PERSONS.contains(&lower[tb - 2])
}

/// Past time adverbials that the trigger list cannot spell: "in 2019" (a year), "when I was a
/// kid" / "when she was twelve" (a stage of life, not "when I was carrying groceries"), and
/// "before" used as an adverb ("I took Benadryl before but …", "since you had asthma before,")
/// rather than a preposition ("before breakfast"). Tokens already inside a trigger are skipped.
fn time_triggers(
    toks: &[Token],
    lower: &[&str],
    chars: &[char],
    trig: &[(usize, usize, Trig)],
) -> Vec<(usize, usize, Trig)> {
    let mut out = Vec::new();
    let covered = |k: usize| trig.iter().any(|(b, e, _)| *b <= k && k < *e);
    for k in 0..lower.len() {
        let w = lower[k];
        if w.len() == 4
            && w.bytes().all(|c| c.is_ascii_digit())
            && (1900..2100).contains(&w.parse::<u32>().unwrap_or(0))
            && k > 0
            && lower[k - 1] == "in"
        {
            out.push((k - 1, k + 1, Trig::HistTime));
        } else if w == "when"
            && k + 3 < lower.len()
            && matches!(lower[k + 1], "i" | "he" | "she" | "you" | "we" | "they")
            && matches!(lower[k + 2], "was" | "were")
        {
            let rest = lower[k + 3..(k + 6).min(lower.len())].join(" ");
            let stage = WHEN_WAS_STAGES
                .iter()
                .find(|st| rest == **st || rest.starts_with(&format!("{st} ")));
            if let Some(st) = stage {
                out.push((k, k + 3 + st.split(' ').count(), Trig::HistTime));
            } else if words::number_value(lower[k + 3]).is_some_and(|n| (1..=50).contains(&n))
                || lower[k + 3].bytes().all(|c| c.is_ascii_digit())
            {
                out.push((k, k + 4, Trig::HistTime));
            }
        } else if w == "before" && !covered(k) {
            let after = toks[k].end_char.min(chars.len());
            let next_char = chars[after..].iter().find(|c| **c != ' ');
            let adverb = next_char.is_none_or(|c| matches!(c, '.' | ',' | '!' | '?' | ';'))
                || lower
                    .get(k + 1)
                    .is_some_and(|n| matches!(*n, "but" | "and" | "so" | "though"));
            if adverb {
                out.push((k, k + 1, Trig::HistTimePost));
            }
        }
    }
    out
}

//! The evidence-built note: see the module docs of [`super`]. [`generate`] runs the steps in
//! order: index the sentences, mark answered statements as questions, write question–answer
//! lines, the chief complaint and the statements, then [`assemble`] the sections. The cue words
//! that route sentences are in [`cues`].

mod cues;

use std::collections::HashSet;
use std::ops::Range;

use crate::healthscribe::{
    ClinicalDocumentation, ClinicalInsight, Conversation, EntitySubType, EntityType, EvidenceLink,
    MedicalScribeParticipantRole, Section, SummarizedSegment, TraitName, TranscriptSectionName,
    TranscriptSegment,
};

use super::phrasing::{self, PronounSet, Speaker, Tok};
use super::template::{Content, Template};
use super::NoteContext;
use crate::clinical::traits::answer_polarity;
use crate::words::{FAMILY_MEMBERS, HEDGE_WORDS, NEGATION_WORDS};
use cues::{
    AGES, ALLERGY, AP_ANNOUNCE, ASSESS, COMMAND, COMPLAINT_CUES, COMPLAINT_DROPPED, COMPLAINT_ENDS,
    COUNSEL, EXAM, EXAM_INTENT, FINITE_VERBS, GOALS, INTRO, PLAN, PROGRESS, QUESTION_OPENERS,
    RESULTS, RESULT_VERBS, SOCIAL, SUBJECT_STARTS, TAG_QUESTIONS, TRAILING_TAGS, VITALS,
};

/// Words a note sentence may contain without their being in the linked segments: pronouns for
/// the patient, the verbs of clinical style, and function words. The checker in
/// [`super::support`] keeps its own copy of this list on purpose.
pub const CONNECTIVES: &[&str] = &[
    "patient",
    "the",
    "he",
    "she",
    "they",
    "him",
    "her",
    "them",
    "his",
    "hers",
    "their",
    "theirs",
    "himself",
    "herself",
    "themselves",
    "is",
    "are",
    "was",
    "were",
    "has",
    "have",
    "does",
    "doesn't",
    "hasn't",
    "isn't",
    "wasn't",
    "weren't",
    "reports",
    "denies",
    "and",
    "or",
    "of",
    "to",
    "a",
    "an",
    "with",
    "for",
    "on",
    "in",
    "at",
    "will",
    "would",
    "we",
];

/// One sentence of a segment with what the generator knows about it.
struct Sent<'a> {
    seg: usize,
    /// Byte range in the segment's content.
    bytes: Range<usize>,
    /// Insights with a span in this sentence.
    insights: Vec<&'a ClinicalInsight>,
    /// Lower-cased text, single spaces, for cue matching.
    lower: String,
    question: bool,
}

struct Segs<'a> {
    segs: &'a [TranscriptSegment],
    sents: Vec<Sent<'a>>,
    /// Sentence indices per segment.
    by_seg: Vec<Range<usize>>,
    /// Insights with a span in each segment.
    seg_insights: Vec<Vec<&'a ClinicalInsight>>,
}

fn role(seg: &TranscriptSegment) -> Speaker {
    match seg.participant_details.participant_role.role {
        MedicalScribeParticipantRole::Clinician => Speaker::Clinician,
        MedicalScribeParticipantRole::Patient => Speaker::Patient,
    }
}

fn char_to_byte(s: &str, ch: usize) -> usize {
    s.char_indices().nth(ch).map(|(b, _)| b).unwrap_or(s.len())
}

fn index<'a>(conv: &'a Conversation) -> Segs<'a> {
    let segs = &conv.transcript_segments[..];
    // Insight spans per segment, as byte ranges.
    let mut spans: Vec<Vec<(Range<usize>, &ClinicalInsight)>> = vec![Vec::new(); segs.len()];
    let pos: std::collections::HashMap<&str, usize> = segs
        .iter()
        .enumerate()
        .map(|(i, s)| (s.segment_id.as_str(), i))
        .collect();
    for ins in &conv.clinical_insights {
        for sp in &ins.spans {
            if let Some(&i) = pos.get(sp.segment_id.as_str()) {
                let c = &segs[i].content;
                let r = sp.char_range();
                if r.end > c.chars().count() {
                    continue;
                }
                spans[i].push((char_to_byte(c, r.start)..char_to_byte(c, r.end), ins));
            }
        }
    }
    let mut sents = Vec::new();
    let mut by_seg = Vec::with_capacity(segs.len());
    for (i, seg) in segs.iter().enumerate() {
        let first = sents.len();
        for r in phrasing::split_sentences(&seg.content)
            .into_iter()
            .flat_map(|r| phrasing::split_long(&seg.content, r))
        {
            let t = &seg.content[r.start..r.end];
            let insights = spans[i]
                .iter()
                .filter(|(b, _)| b.start < r.end && b.end > r.start)
                .map(|(_, ins)| *ins)
                .collect();
            sents.push(Sent {
                seg: i,
                bytes: r.start..r.end,
                insights,
                lower: t
                    .to_lowercase()
                    .split_whitespace()
                    .collect::<Vec<_>>()
                    .join(" "),
                question: t.trim_end().ends_with('?') || looks_like_question(t),
            });
        }
        by_seg.push(first..sents.len());
    }
    let seg_insights = spans
        .into_iter()
        .map(|v| v.into_iter().map(|(_, i)| i).collect())
        .collect();
    Segs {
        segs,
        sents,
        by_seg,
        seg_insights,
    }
}

/// An unpunctuated question: starts (after fillers) with an auxiliary or a wh-word.
fn looks_like_question(t: &str) -> bool {
    let toks = phrasing::strip_fillers(phrasing::tokenize(t));
    let first = phrasing::words(&toks).next();
    first.is_some_and(|w| QUESTION_OPENERS.contains(&w))
}

fn has_trait(ins: &ClinicalInsight, t: TraitName) -> bool {
    ins.extensions
        .as_ref()
        .is_some_and(|e| e.traits.iter().any(|x| x.name == t))
}

fn is_condition(ins: &ClinicalInsight) -> bool {
    ins.category == EntityType::MedicalCondition
}

/// Whether a sentence is about a family member: from the PERTAINS_TO_FAMILY trait of its
/// conditions when it names any (a relative named beside the patient's own condition does not
/// make it family history), else from its other insights' traits or a family word.
fn about_family(insights: &[&ClinicalInsight], lower: &str) -> bool {
    let mut conditions = insights.iter().filter(|x| is_condition(x)).peekable();
    if conditions.peek().is_some() {
        conditions.any(|x| has_trait(x, TraitName::PertainsToFamily))
    } else {
        insights
            .iter()
            .any(|x| has_trait(x, TraitName::PertainsToFamily))
            || has_any(lower, FAMILY_MEMBERS)
    }
}

/// Cue matching on word boundaries of the lower-cased sentence.
fn has_any(lower: &str, cues: &[&str]) -> bool {
    cues.iter().any(|c| contains_phrase(lower, c))
}

fn contains_phrase(hay: &str, needle: &str) -> bool {
    let mut from = 0;
    while let Some(p) = hay[from..].find(needle) {
        let a = from + p;
        let b = a + needle.len();
        let ok_a = a == 0 || !hay.as_bytes()[a - 1].is_ascii_alphanumeric();
        let ok_b = b == hay.len() || !hay.as_bytes()[b].is_ascii_alphanumeric();
        if ok_a && ok_b {
            return true;
        }
        from = a + 1;
    }
    false
}

/// A sentence for the note before routing.
struct Line {
    kind: Content,
    text: String,
    evidence: Vec<usize>,
    /// Position in the transcript, for ordering.
    order: (usize, usize),
    /// For a `Denies …`/`Reports …` line: whether it denies, and its items (merged per
    /// note by [`merge_review_of_systems`]).
    list: Option<(bool, Vec<String>)>,
    /// The same sentence with the patient as "the patient" ("The patient reports …"), for
    /// the first patient sentences of a section ([`assemble`]).
    alt: Option<String>,
    /// What the clinical analysis found in the sentence (its insights' words, lower-cased; for
    /// statements): a sentence naming one the section has not named yet is kept even when its
    /// other words repeat what came before.
    concepts: Vec<String>,
}

/// Cleans and rewrites one sentence into clinical style; `None` when nothing is left worth
/// writing (fewer than `min_words` words).
fn rewrite(raw: &str, speaker: Speaker, p: PronounSet, min_words: usize) -> Option<String> {
    rewrite_toks(raw, speaker, p, false, min_words).map(|t| phrasing::render(&t))
}

/// The tokens of [`rewrite`]; `announcing` cuts an announcement of the assessment and plan
/// off the front of the sentence.
fn rewrite_toks(
    raw: &str,
    speaker: Speaker,
    p: PronounSet,
    announcing: bool,
    min_words: usize,
) -> Option<Vec<Tok>> {
    let mut toks = phrasing::strip_fillers(phrasing::tokenize(raw));
    if announcing {
        toks = phrasing::strip_fillers(phrasing::after_announcement(toks));
    }
    toks = phrasing::clinician_register(toks, speaker == Speaker::Clinician)?;
    let toks = phrasing::to_third_person(toks, speaker, p);
    let toks = phrasing::written_register(toks);
    let toks = phrasing::normalise_terms(toks);
    let toks = trim_tags(toks);
    if phrasing::words(&toks).count() < min_words {
        return None;
    }
    Some(toks)
}

/// Drops trailing question tags and fillers (", right", ", okay", ", correct").
fn trim_tags(mut toks: Vec<Tok>) -> Vec<Tok> {
    loop {
        while matches!(toks.last(), Some(Tok::Punct(_))) {
            toks.pop();
        }
        match toks.last().and_then(Tok::word) {
            Some(w) if TRAILING_TAGS.contains(&w) && toks.len() > 3 => {
                toks.pop();
            }
            _ => break,
        }
    }
    toks
}

/// The chief complaint phrase after an introduction cue ("presents today with X").
fn chief_complaint_phrase(lower: &str) -> Option<String> {
    for cue in COMPLAINT_CUES {
        if let Some(p) = lower.find(cue) {
            let rest = &lower[p + cue.len()..];
            let toks = phrasing::tokenize(rest);
            let mut words: Vec<String> = Vec::new();
            for t in toks {
                match t {
                    Tok::Punct(_) => break,
                    Tok::Word(w) => {
                        if COMPLAINT_ENDS.contains(&w.as_str()) {
                            break;
                        }
                        words.push(w);
                    }
                }
                if words.len() >= 8 {
                    break;
                }
            }
            let words: Vec<String> = words
                .into_iter()
                .filter(|w| !COMPLAINT_DROPPED.contains(&w.as_str()))
                .collect();
            if (1..=8).contains(&words.len()) {
                let toks: Vec<Tok> = words.into_iter().map(Tok::Word).collect();
                return Some(phrasing::render(&phrasing::normalise_terms(toks)));
            }
        }
    }
    None
}

/// An insight as a line's [`Line::concepts`] name it (its first span, lower-cased).
fn concept(ins: &ClinicalInsight) -> Vec<String> {
    ins.spans
        .first()
        .map(|sp| sp.content.to_lowercase())
        .into_iter()
        .collect()
}

/// Text of an insight as the note writes it (its first span's content).
fn insight_text(ins: &ClinicalInsight) -> Option<String> {
    let sp = ins.spans.first()?;
    let toks = phrasing::normalise_terms(phrasing::tokenize(&sp.content));
    let s: Vec<&str> = phrasing::words(&toks).collect();
    (!s.is_empty()).then(|| s.join(" "))
}

fn join_list(items: &[String]) -> String {
    match items.len() {
        0 => String::new(),
        1 => items[0].clone(),
        n => format!("{} or {}", items[..n - 1].join(", "), items[n - 1]),
    }
}

/// A clinician's last sentence naming a condition that the patient answers with a plain "no" was
/// a question, whatever its punctuation: speech recognition often drops the question mark
/// ("shortness of breath, or swelling in your ankles." → "No, none of that."), and asserting it
/// would put symptoms the patient denied into the note. ("Yes" after a statement confirms it, so
/// only denials are handled.)
fn mark_answered_statements_as_questions(ix: &mut Segs) {
    for i in 0..ix.segs.len().saturating_sub(1) {
        let (q, a) = (&ix.segs[i], &ix.segs[i + 1]);
        if role(q) != Speaker::Clinician || role(a) != Speaker::Patient {
            continue;
        }
        let (Some(last_q), Some(first_a)) =
            (ix.by_seg[i].clone().last(), ix.by_seg[i + 1].clone().next())
        else {
            continue;
        };
        let names_condition = ix.sents[last_q]
            .insights
            .iter()
            .any(|x| x.category == EntityType::MedicalCondition);
        if names_condition && answer_polarity(&ix.sents[first_a].lower) == Some(false) {
            ix.sents[last_q].question = true;
        }
    }
}
/// Builds the note: sentences indexed per segment, then the lines of each step below (question
/// and answer pairs, the chief complaint, statements), routed into the template's sections by
/// [`assemble`]. The order of the steps matters: an answer the question–answer step wrote is
/// not written again as a statement, and an elliptical answer inherits the question's kind.
pub(super) fn generate(
    conv: &Conversation,
    template: &Template,
    ctx: &NoteContext,
) -> ClinicalDocumentation {
    let p = PronounSet::for_pronouns(ctx.pronouns);
    let mut ix = index(conv);
    mark_answered_statements_as_questions(&mut ix);
    let qa = question_answer_lines(&ix, p);
    let mut lines = merge_review_of_systems(qa.lines);
    lines.extend(chief_complaint(&ix));
    let ap_from = assessment_announced(&ix);
    lines.extend(medication_list(&ix, ap_from));
    lines.extend(problem_list(&ix, ap_from));
    let (values, valued) = value_lines(&ix, ap_from);
    lines.extend(values);
    lines.extend(statement_lines(
        &ix,
        p,
        &qa.used_answers,
        &qa.context_kind,
        ap_from,
        &valued,
    ));
    lines.extend(patient_summary(&lines));
    assemble(conv, template, lines)
}

/// The review of systems as pertinent negatives and positives: every `Denies …` line of the
/// note becomes one (at the first one's place, linked to all their segments), every `Reports …`
/// line another; an item both denied and reported is left out of both.
fn merge_review_of_systems(lines: Vec<Line>) -> Vec<Line> {
    let (lists, mut rest): (Vec<Line>, Vec<Line>) =
        lines.into_iter().partition(|l| l.list.is_some());
    let items = |denied: bool| -> Vec<String> {
        let mut v: Vec<String> = Vec::new();
        for l in &lists {
            if let Some((d, xs)) = &l.list {
                for x in xs {
                    if *d == denied && !v.contains(x) {
                        v.push(x.clone());
                    }
                }
            }
        }
        v
    };
    let (denied, reported) = (items(true), items(false));
    for (is_denied, verb) in [(true, "Denies"), (false, "Reports")] {
        let mine: Vec<&Line> = lists
            .iter()
            .filter(|l| l.list.as_ref().is_some_and(|(d, _)| *d == is_denied))
            .collect();
        let (own, other) = if is_denied {
            (&denied, &reported)
        } else {
            (&reported, &denied)
        };
        let kept: Vec<String> = own.iter().filter(|x| !other.contains(x)).cloned().collect();
        if kept.is_empty() || mine.is_empty() {
            continue;
        }
        // Only the question-answer pairs that named a kept item are linked.
        let mut evidence: Vec<usize> = mine
            .iter()
            .filter(|l| {
                l.list
                    .as_ref()
                    .is_some_and(|(_, xs)| xs.iter().any(|x| kept.contains(x)))
            })
            .flat_map(|l| l.evidence.iter().copied())
            .collect();
        evidence.sort_unstable();
        evidence.dedup();
        rest.push(Line {
            kind: Content::ReviewOfSystems,
            text: format!("{verb} {}.", join_list(&kept)),
            evidence,
            order: mine[0].order,
            list: None,
            alt: None,
            concepts: Vec::new(),
        });
    }
    rest
}

/// What the question–answer step writes and leaves for the statements.
struct QaLines {
    lines: Vec<Line>,
    /// Sentences of short answers already written as a "Denies"/"Reports" line.
    used_answers: HashSet<usize>,
    /// Kind inherited by a patient's elliptical answer from the question before it (family or
    /// social history), per segment.
    context_kind: Vec<Option<Content>>,
}

/// The lines of each clinician question answered by the patient's next segment (see
/// [`question_answer`]).
fn question_answer_lines(ix: &Segs, p: PronounSet) -> QaLines {
    let mut qa = QaLines {
        lines: Vec::new(),
        used_answers: HashSet::new(),
        context_kind: vec![None; ix.segs.len()],
    };
    for i in 0..ix.segs.len().saturating_sub(1) {
        question_answer(ix, i, p, &mut qa);
    }
    qa
}

/// One question (segment `i`, clinician) and its answer (segment `i + 1`, patient). A confirmed
/// tag question ("your father had a heart attack, right?" "Yes.") becomes a statement; a family
/// or social question only passes its kind to the answer; otherwise a short answer becomes
/// `Denies X, Y.` and/or `Reports X.` from the traits of the conditions asked about (see
/// [`Verdicts`]). An elaborated "yes" (over 6 words) is written from the answer itself.
fn question_answer(ix: &Segs, i: usize, p: PronounSet, qa: &mut QaLines) {
    let (q, a) = (&ix.segs[i], &ix.segs[i + 1]);
    if role(q) != Speaker::Clinician || role(a) != Speaker::Patient {
        return;
    }
    let q_sents: Vec<&Sent> = ix.sents[ix.by_seg[i].clone()]
        .iter()
        .filter(|s| s.question)
        .collect();
    if q_sents.is_empty() {
        return;
    }
    let last_q = q_sents[q_sents.len() - 1];
    let q_insights: Vec<&ClinicalInsight> = q_sents
        .iter()
        .flat_map(|s| s.insights.iter().copied())
        .collect();
    let q_lower: String = q_sents
        .iter()
        .map(|s| s.lower.as_str())
        .collect::<Vec<_>>()
        .join(" ");
    let family = about_family(&q_insights, &q_lower);
    let social = q_insights
        .iter()
        .any(|x| x.category == EntityType::BehavioralEnvironmentalSocial)
        || q_sents.iter().any(|s| has_any(&s.lower, SOCIAL));
    if family {
        qa.context_kind[i + 1] = Some(Content::FamilyHistory);
    } else if social {
        qa.context_kind[i + 1] = Some(Content::SocialHistory);
    }
    let Some(first_answer) = ix.by_seg[i + 1].clone().next() else {
        return;
    };
    let answer = &ix.sents[first_answer];
    // Whether the question was answered at all; what was denied comes from the traits.
    let Some(positive) = answer_polarity(&answer.lower) else {
        return;
    };
    let answer_words = answer.lower.split_whitespace().count();
    let tag = has_any(&last_q.lower, TAG_QUESTIONS);
    if positive && tag && (family || social || !last_q.insights.is_empty()) {
        if let Some(line) = confirmed_statement(q, last_q, i, p, family, social) {
            qa.lines.push(line);
            return;
        }
    }
    if family || social || (positive && answer_words > 6) {
        return;
    }
    let wrote = Verdicts::of(&q_insights, answer, positive).write(i, &mut qa.lines);
    if wrote && answer_words <= 3 {
        qa.used_answers.insert(first_answer);
    }
}

/// A tag question the patient confirmed, written as the clinician's statement (family
/// history, social history or history of present illness).
fn confirmed_statement(
    q: &TranscriptSegment,
    last_q: &Sent,
    i: usize,
    p: PronounSet,
    family: bool,
    social: bool,
) -> Option<Line> {
    let raw = &q.content[last_q.bytes.clone()];
    let t = rewrite(raw, Speaker::Clinician, p, 3)?;
    let kind = if family {
        Content::FamilyHistory
    } else if social {
        Content::SocialHistory
    } else {
        Content::HistoryOfPresentIllness
    };
    Some(Line {
        kind,
        text: t,
        evidence: vec![i, i + 1],
        order: (i, 0),
        list: None,
        alt: None,
        concepts: Vec::new(),
    })
}

/// The conditions a question asked about, with the clinical stage's verdict on each: denied
/// when the question's mention or the answer's own mention of it carries NEGATION, reported
/// only when the answer confirms and nothing negates it (past history apart). A "No" to a
/// condition the traits leave un-negated (a presupposed one: "Does the pain go down your
/// legs?") is neither; nor is a low-confidence, family or hypothetical one.
struct Verdicts {
    denied: Vec<String>,
    reported: Vec<String>,
    reported_past: Vec<String>,
}

impl Verdicts {
    fn of(q_insights: &[&ClinicalInsight], answer: &Sent, positive: bool) -> Verdicts {
        let mut v = Verdicts {
            denied: Vec::new(),
            reported: Vec::new(),
            reported_past: Vec::new(),
        };
        for ins in q_insights {
            if !is_condition(ins)
                || has_trait(ins, TraitName::LowConfidence)
                || has_trait(ins, TraitName::PertainsToFamily)
            {
                continue;
            }
            let Some(t) = insight_text(ins) else { continue };
            let negated = has_trait(ins, TraitName::Negation)
                || answer.insights.iter().any(|x| {
                    is_condition(x)
                        && has_trait(x, TraitName::Negation)
                        && insight_text(x).as_deref() == Some(t.as_str())
                });
            let list = if negated {
                &mut v.denied
            } else if !positive || has_trait(ins, TraitName::Hypothetical) {
                continue;
            } else if has_trait(ins, TraitName::PastHistory) {
                &mut v.reported_past
            } else {
                &mut v.reported
            };
            if !list.contains(&t) {
                list.push(t);
            }
        }
        // An item both denied and reported (two mentions) is written as neither.
        let both: Vec<String> = v
            .denied
            .iter()
            .filter(|t| v.reported.contains(t) || v.reported_past.contains(t))
            .cloned()
            .collect();
        for l in [&mut v.denied, &mut v.reported, &mut v.reported_past] {
            l.retain(|t| !both.contains(t));
        }
        v
    }

    /// Writes `Denies X, Y.` and `Reports X.` (review of systems; past history to past medical
    /// history) linked to the question and its answer; whether any line was written.
    fn write(&self, i: usize, lines: &mut Vec<Line>) -> bool {
        let mut wrote = false;
        for (verb, items, kind) in [
            ("Denies", &self.denied, Content::ReviewOfSystems),
            ("Reports", &self.reported, Content::ReviewOfSystems),
            ("Reports", &self.reported_past, Content::PastMedicalHistory),
        ] {
            if items.is_empty() {
                continue;
            }
            lines.push(Line {
                kind,
                text: format!("{verb} {}.", join_list(items)),
                evidence: vec![i, i + 1],
                order: (i, 0),
                list: (kind == Content::ReviewOfSystems).then(|| (verb == "Denies", items.clone())),
                alt: None,
                concepts: Vec::new(),
            });
            wrote = true;
        }
        wrote
    }
}

/// The chief complaint: the clinician's introduction ("presents today with X"), else the first
/// symptom the patient reports.
fn chief_complaint(ix: &Segs) -> Option<Line> {
    introduced_complaint(ix).or_else(|| first_reported_symptom(ix))
}

/// The chief complaint phrase of the first clinician sentence that introduces one (outside the
/// assessment and plan).
fn introduced_complaint(ix: &Segs) -> Option<Line> {
    for (k, s) in ix.sents.iter().enumerate() {
        let seg = &ix.segs[s.seg];
        if role(seg) != Speaker::Clinician
            || seg.section_details.section_name == TranscriptSectionName::AssessmentAndPlan
        {
            continue;
        }
        if let Some(phrase) = chief_complaint_phrase(&s.lower) {
            return Some(Line {
                kind: Content::ChiefComplaint,
                text: phrase,
                evidence: vec![s.seg],
                order: (s.seg, k),
                list: None,
                alt: None,
                concepts: Vec::new(),
            });
        }
    }
    None
}

/// The first condition the patient reports in the subjective part as their own, present and
/// real (not negated, hypothetical, a relative's or past history).
fn first_reported_symptom(ix: &Segs) -> Option<Line> {
    for s in &ix.sents {
        let seg = &ix.segs[s.seg];
        if role(seg) != Speaker::Patient
            || seg.section_details.section_name != TranscriptSectionName::Subjective
        {
            continue;
        }
        for ins in &s.insights {
            if is_condition(ins)
                && !has_trait(ins, TraitName::Negation)
                && !has_trait(ins, TraitName::Hypothetical)
                && !has_trait(ins, TraitName::PertainsToFamily)
                && !has_trait(ins, TraitName::PastHistory)
            {
                if let Some(t) = insight_text(ins) {
                    return Some(Line {
                        kind: Content::ChiefComplaint,
                        text: phrasing::render(&[Tok::Word(t)]),
                        evidence: vec![s.seg],
                        order: (s.seg, 0),
                        list: None,
                        alt: None,
                        concepts: Vec::new(),
                    });
                }
            }
        }
    }
    None
}

/// Every other sentence, routed to a kind ([`route`]) and written ([`statement_line`]).
/// Questions, answers already written, dictation commands, and insight-free talk outside the
/// visit's sections are left out.
fn statement_lines(
    ix: &Segs,
    p: PronounSet,
    used_answers: &HashSet<usize>,
    context_kind: &[Option<Content>],
    ap_from: Option<usize>,
    valued: &HashSet<usize>,
) -> Vec<Line> {
    let mut lines = Vec::new();
    for (k, s) in ix.sents.iter().enumerate() {
        if s.question
            || used_answers.contains(&k)
            || valued.contains(&k)
            || has_any(&s.lower, COMMAND)
        {
            continue;
        }
        let seg = &ix.segs[s.seg];
        let mut section = seg.section_details.section_name;
        // The clinician announcing the assessment and plan starts it, whatever the section
        // model said about the sentences after.
        if role(seg) == Speaker::Clinician && ap_from.is_some_and(|a| k >= a) {
            section = TranscriptSectionName::AssessmentAndPlan;
        }
        if section == TranscriptSectionName::Other && s.insights.is_empty() {
            continue;
        }
        let facts = Facts::of(s);
        if let Some(line) = fragment_line(ix, k, &facts, p) {
            lines.push(line);
            continue;
        }
        let Some(kind) = route(role(seg), section, s, &facts, context_kind[s.seg]) else {
            continue;
        };
        let announcing = ap_from == Some(k);
        lines.extend(statement_line(
            ix,
            k,
            kind,
            &facts,
            p,
            context_kind,
            announcing,
        ));
    }
    lines
}

/// Whether an insight is asserted as the patient's own: not negated, hypothetical, a
/// relative's or uncertain.
fn asserted(x: &ClinicalInsight) -> bool {
    !has_trait(x, TraitName::Negation)
        && !has_trait(x, TraitName::Hypothetical)
        && !has_trait(x, TraitName::PertainsToFamily)
        && !has_trait(x, TraitName::LowConfidence)
}

/// An insight written with its attributes of the given types, in that order ("lisinopril 20
/// mg once a day"), and the segments they lie in; `None` without one of them.
fn with_attributes(
    ix: &Segs,
    ins: &ClinicalInsight,
    types: &[EntitySubType],
    sep: &str,
) -> Option<(String, Vec<usize>, usize)> {
    let name = insight_text(ins)?;
    let mut parts: Vec<String> = Vec::new();
    let mut evidence: Vec<usize> = ins
        .spans
        .iter()
        .filter_map(|sp| ix.segs.iter().position(|g| g.segment_id == sp.segment_id))
        .collect();
    for ty in types {
        for a in ins.attributes.iter().filter(|a| a.attribute_type == *ty) {
            let Some(sp) = a.spans.first() else { continue };
            let Some(seg) = ix.segs.iter().position(|g| g.segment_id == sp.segment_id) else {
                continue;
            };
            let toks = phrasing::normalise_terms(phrasing::tokenize(&sp.content));
            let t: Vec<&str> = phrasing::words(&toks).collect();
            // An attribute is written only as whole words of its segment as the note writes
            // them (a span cut inside a number, "seven" of "seventy", is not).
            let seg_toks = phrasing::normalise_terms(phrasing::tokenize(&ix.segs[seg].content));
            let seg_words: HashSet<&str> = phrasing::words(&seg_toks).collect();
            if !t.iter().all(|w| seg_words.contains(w)) {
                continue;
            }
            let t = t.join(" ");
            if !t.is_empty() && !parts.contains(&t) && !name.contains(&t) {
                parts.push(t);
                evidence.push(seg);
            }
        }
    }
    if parts.is_empty() {
        return None;
    }
    let n = parts.len();
    let text = phrasing::render(&phrasing::tokenize(&format!(
        "{name}{sep}{}",
        parts.join(" ")
    )));
    Some((text, evidence, n))
}

/// The medications of the history as a list, one line per medication with its dose, route and
/// frequency from the entity's attributes ("Lisinopril 20 mg once a day."): those named
/// outside questions before the assessment and plan, asserted, with at least one attribute;
/// the fullest mention of each.
fn medication_list(ix: &Segs, ap_from: Option<usize>) -> Vec<Line> {
    use EntitySubType as T;
    let mut best: Vec<(String, usize, Line)> = Vec::new();
    for (k, s) in ix.sents.iter().enumerate() {
        if ap_from.is_some_and(|a| k >= a) {
            break;
        }
        let seg = &ix.segs[s.seg];
        if s.question || seg.section_details.section_name != TranscriptSectionName::Subjective {
            continue;
        }
        for ins in &s.insights {
            if ins.category != EntityType::Medication || !asserted(ins) {
                continue;
            }
            let Some(name) = insight_text(ins) else {
                continue;
            };
            let types = [
                T::Strength,
                T::Dosage,
                T::Form,
                T::RouteOrMode,
                T::Frequency,
                T::Rate,
                T::Duration,
            ];
            let Some((text, mut evidence, n)) = with_attributes(ix, ins, &types, " ") else {
                continue;
            };
            evidence.push(s.seg);
            let line = Line {
                kind: Content::Medications,
                text,
                evidence,
                order: (s.seg, k + 1),
                list: None,
                alt: None,
                concepts: concept(ins),
            };
            match best.iter_mut().find(|(b, _, _)| *b == name) {
                Some(b) if b.1 < n => {
                    b.1 = n;
                    b.2.text = line.text;
                    b.2.evidence = line.evidence;
                }
                Some(_) => {}
                None => best.push((name, n, line)),
            }
        }
    }
    best.into_iter().map(|(_, _, l)| l).collect()
}

/// Vital signs and results as values ("Blood pressure: 142/88.", "A1c: 7.2."), from the
/// clinician's test names with a value attribute, outside questions and the patient's own
/// account, in the examination part of the visit; vital signs are examination, other tests
/// results. Also the sentences that only gave vital signs (and name no condition): the values
/// say what they said.
fn value_lines(ix: &Segs, ap_from: Option<usize>) -> (Vec<Line>, HashSet<usize>) {
    use EntitySubType as T;
    let mut lines: Vec<Line> = Vec::new();
    let mut seen: Vec<String> = Vec::new();
    let mut from: HashSet<usize> = HashSet::new();
    for (k, s) in ix.sents.iter().enumerate() {
        if ap_from.is_some_and(|a| k >= a) {
            break;
        }
        let seg = &ix.segs[s.seg];
        if s.question
            || role(seg) != Speaker::Clinician
            || seg.section_details.section_name != TranscriptSectionName::Objective
        {
            continue;
        }
        let mut wrote = false;
        let mut only_vitals = true;
        for ins in &s.insights {
            if ins.category != EntityType::TestTreatmentProcedure
                || ins.entity_type != T::TestName
                || !asserted(ins)
            {
                continue;
            }
            let Some(name) = insight_text(ins) else {
                continue;
            };
            if seen.contains(&name) {
                continue;
            }
            let Some((text, mut evidence, _)) =
                with_attributes(ix, ins, &[T::TestValue, T::TestUnit, T::TestUnits], ": ")
            else {
                continue;
            };
            evidence.push(s.seg);
            seen.push(name.clone());
            wrote = true;
            only_vitals &= VITALS.contains(&name.as_str());
            lines.push(Line {
                kind: if VITALS.contains(&name.as_str()) {
                    Content::PhysicalExamination
                } else {
                    Content::DiagnosticResults
                },
                text,
                evidence,
                order: (s.seg, k + 1),
                list: None,
                alt: None,
                concepts: concept(ins),
            });
        }
        // Vital signs say all the sentence said; a result's sentence may compare or interpret
        // ("up a bit from 6.9 in the spring") and stays.
        if wrote && only_vitals && !s.insights.iter().any(|x| is_condition(x)) {
            from.insert(k);
        }
    }
    (lines, from)
}

/// The clinician's one-line summary of the patient ("Brian is a 58-year-old male with …, who
/// presents today for …"), which notes restate at the head of the assessment: the first
/// history line the clinician said (not the patient's, which has a voiced form) that gives an
/// age.
fn patient_summary(lines: &[Line]) -> Option<Line> {
    let l = lines.iter().filter(|l| {
        l.kind == Content::HistoryOfPresentIllness
            && l.alt.is_none()
            && l.list.is_none()
            && has_any(&l.text.to_lowercase(), AGES)
    });
    let l = l.min_by_key(|l| l.order)?;
    Some(Line {
        kind: Content::PatientSummary,
        text: l.text.clone(),
        evidence: l.evidence.clone(),
        order: l.order,
        list: None,
        alt: None,
        concepts: Vec::new(),
    })
}

/// The problems the clinician named in the assessment and plan, one line each ("Congestive
/// heart failure."): the conditions with the DIAGNOSIS trait in the clinician's statements of
/// the assessment and plan (from its announcement on, or where the section model puts them),
/// asserted (not negated, hypothetical, a relative's or uncertain); in the order named, once
/// each (a name inside one already listed is not listed again).
fn problem_list(ix: &Segs, ap_from: Option<usize>) -> Vec<Line> {
    let mut names: Vec<String> = Vec::new();
    let mut lines = Vec::new();
    for (k, s) in ix.sents.iter().enumerate() {
        let seg = &ix.segs[s.seg];
        let in_ap = ap_from.is_some_and(|a| k >= a)
            || seg.section_details.section_name == TranscriptSectionName::AssessmentAndPlan;
        if !in_ap || s.question || role(seg) != Speaker::Clinician {
            continue;
        }
        for ins in &s.insights {
            if !is_condition(ins) || !asserted(ins) || !has_trait(ins, TraitName::Diagnosis) {
                continue;
            }
            let Some(name) = insight_text(ins) else {
                continue;
            };
            if names
                .iter()
                .any(|n| contains_phrase(n, &name) || contains_phrase(&name, n))
            {
                continue;
            }
            names.push(name.clone());
            lines.push(Line {
                kind: Content::Problems,
                text: phrasing::render(&phrasing::tokenize(&name)),
                evidence: vec![s.seg],
                order: (s.seg, k + 1),
                list: None,
                alt: None,
                concepts: concept(ins),
            });
        }
    }
    lines
}

/// The first clinician sentence that announces the assessment and plan ("let's talk about my
/// assessment and plan"), question or not.
fn assessment_announced(ix: &Segs) -> Option<usize> {
    ix.sents
        .iter()
        .position(|s| role(&ix.segs[s.seg]) == Speaker::Clinician && has_any(&s.lower, AP_ANNOUNCE))
}

/// A patient's answer that is a fragment ("Maybe two tablets, a couple of times a week.")
/// joined to what the question asked about: "Ibuprofen: maybe 2 tablets, a couple of times a
/// week.", linked to both segments. Only the first sentence of an answer that is not a denial,
/// after a question naming a medication, condition or test the answer does not name itself
/// (not negated, hypothetical or a relative's); `None` otherwise.
fn fragment_line(ix: &Segs, k: usize, f: &Facts, p: PronounSet) -> Option<Line> {
    let s = &ix.sents[k];
    let seg = &ix.segs[s.seg];
    if role(seg) != Speaker::Patient
        || s.seg == 0
        || ix.by_seg[s.seg].start != k
        || role(&ix.segs[s.seg - 1]) != Speaker::Clinician
        || answer_polarity(&s.lower) == Some(false)
    {
        return None;
    }
    let q = ix.by_seg[s.seg - 1].clone().last()?;
    if !ix.sents[q].question {
        return None;
    }
    let raw = &seg.content[s.bytes.clone()];
    let toks = phrasing::strip_fillers(phrasing::tokenize(raw));
    let mut words = phrasing::words(&toks);
    let first = words.next()?;
    if SUBJECT_STARTS.contains(&first)
        || phrasing::words(&toks).any(|w| FINITE_VERBS.contains(&w))
        || phrasing::words(&toks).count() < 2
    {
        return None;
    }
    let anchor = ix.sents[q].insights.iter().rev().find(|x| {
        matches!(
            x.category,
            EntityType::Medication
                | EntityType::MedicalCondition
                | EntityType::TestTreatmentProcedure
        ) && !has_trait(x, TraitName::Negation)
            && !has_trait(x, TraitName::LowConfidence)
            && !has_trait(x, TraitName::Hypothetical)
            && !has_trait(x, TraitName::PertainsToFamily)
    })?;
    let name = insight_text(anchor)?;
    if s.lower.contains(&name) {
        return None;
    }
    let rest = rewrite_toks(raw, Speaker::Patient, p, false, 2)?;
    let mut toks = phrasing::normalise_terms(phrasing::tokenize(&name));
    toks.push(Tok::Punct(':'));
    toks.extend(rest);
    let text = phrasing::render(&toks);
    let evidence = vec![s.seg - 1, s.seg];
    if status_lost(ix, &evidence, &f.conditions, &text.to_lowercase()) {
        return None;
    }
    let kind = if anchor.category == EntityType::Medication {
        Content::Medications
    } else if seg.section_details.section_name == TranscriptSectionName::Subjective {
        Content::HistoryOfPresentIllness
    } else {
        return None;
    };
    Some(Line {
        kind,
        text,
        evidence,
        order: (s.seg, k + 1),
        list: None,
        alt: None,
        concepts: Vec::new(),
    })
}

/// What routing knows about a sentence from its insights and words.
struct Facts<'a> {
    conditions: Vec<&'a ClinicalInsight>,
    /// It names conditions and all of them are HYPOTHETICAL.
    all_hypothetical: bool,
    family: bool,
    social: bool,
    /// One of its conditions is PAST_HISTORY.
    past: bool,
    meds: bool,
    /// It names a test that is not a vital sign.
    tests: bool,
    /// It names a vital sign (examination, not results).
    vitals: bool,
    /// It names a test, treatment, procedure or medication.
    orders: bool,
}

impl<'a> Facts<'a> {
    fn of(s: &Sent<'a>) -> Facts<'a> {
        let conditions: Vec<&ClinicalInsight> = s
            .insights
            .iter()
            .copied()
            .filter(|x| is_condition(x))
            .collect();
        let all_hypothetical = !conditions.is_empty()
            && conditions
                .iter()
                .all(|x| has_trait(x, TraitName::Hypothetical));
        let test_names: Vec<String> = s
            .insights
            .iter()
            .filter(|x| {
                x.category == EntityType::TestTreatmentProcedure
                    && matches!(
                        x.entity_type,
                        EntitySubType::TestName | EntitySubType::TestValue
                    )
            })
            .filter_map(|x| x.spans.first().map(|sp| sp.content.to_lowercase()))
            .collect();
        Facts {
            all_hypothetical,
            family: about_family(&s.insights, &s.lower),
            social: s
                .insights
                .iter()
                .any(|x| x.category == EntityType::BehavioralEnvironmentalSocial)
                || has_any(&s.lower, SOCIAL),
            past: conditions
                .iter()
                .any(|x| has_trait(x, TraitName::PastHistory)),
            meds: s
                .insights
                .iter()
                .any(|x| x.category == EntityType::Medication),
            tests: test_names.iter().any(|t| !VITALS.contains(&t.as_str())),
            vitals: test_names.iter().any(|t| VITALS.contains(&t.as_str())),
            orders: s.insights.iter().any(|x| {
                x.category == EntityType::TestTreatmentProcedure
                    || x.category == EntityType::Medication
            }),
            conditions,
        }
    }
}

/// The kind of content a statement is, from who said it and the transcript section of its
/// segment; `None` leaves it out of the note.
fn route(
    speaker: Speaker,
    section: TranscriptSectionName,
    s: &Sent,
    f: &Facts,
    context: Option<Content>,
) -> Option<Content> {
    match (speaker, section) {
        (Speaker::Patient, _) => patient_kind(section, s, f, context),
        (Speaker::Clinician, TranscriptSectionName::Subjective | TranscriptSectionName::Other) => {
            clinician_history_kind(s, f)
        }
        (Speaker::Clinician, TranscriptSectionName::Objective) => examination_kind(s, f),
        (Speaker::Clinician, TranscriptSectionName::AssessmentAndPlan) => {
            Some(assessment_plan_kind(s, f))
        }
    }
}

/// What the patient says: family, social, allergies, the kind the question before passed on,
/// a response to the plan, progress, goals, past history, medications, else present illness
/// (only with an insight). A sentence whose conditions are all hypothetical is not asserted.
fn patient_kind(
    section: TranscriptSectionName,
    s: &Sent,
    f: &Facts,
    context: Option<Content>,
) -> Option<Content> {
    if f.family {
        Some(Content::FamilyHistory)
    } else if f.social {
        Some(Content::SocialHistory)
    } else if has_any(&s.lower, ALLERGY) {
        Some(Content::Allergies)
    } else if let Some(kind) = context {
        Some(kind)
    } else if section == TranscriptSectionName::AssessmentAndPlan {
        Some(Content::PatientResponse)
    } else if f.all_hypothetical {
        None
    } else if has_any(&s.lower, PROGRESS) && !s.insights.is_empty() {
        Some(Content::Progress)
    } else if has_any(&s.lower, GOALS) && !s.insights.is_empty() {
        Some(Content::Goals)
    } else if f.past && !f.conditions.is_empty() {
        Some(Content::PastMedicalHistory)
    } else if f.meds {
        Some(Content::Medications)
    } else if !s.insights.is_empty() {
        Some(Content::HistoryOfPresentIllness)
    } else {
        None
    }
}

/// What the clinician says while taking the history: a test's result reported ("your A1c came
/// back at 7.2": results are often given before the examination, and the section tagger sees
/// the conversation around them), family, social (not in the visit's introduction), the
/// introduction itself, medications, or the conditions of the present illness.
fn clinician_history_kind(s: &Sent, f: &Facts) -> Option<Content> {
    if f.tests && has_any(&s.lower, RESULT_VERBS) && !s.lower.contains('?') {
        Some(Content::DiagnosticResults)
    } else if f.family {
        Some(Content::FamilyHistory)
    } else if f.social && !has_any(&s.lower, INTRO) {
        Some(Content::SocialHistory)
    } else if has_any(&s.lower, INTRO) {
        Some(Content::HistoryOfPresentIllness)
    } else if f.meds {
        Some(Content::Medications)
    } else if !f.conditions.is_empty() && !f.all_hypothetical {
        Some(Content::HistoryOfPresentIllness)
    } else {
        None
    }
}

/// What the clinician says while examining: results of tests (vital signs are examination),
/// examination findings; an announced examination ("let me take a look") is not a finding.
fn examination_kind(s: &Sent, f: &Facts) -> Option<Content> {
    if has_any(&s.lower, EXAM_INTENT) && !has_any(&s.lower, RESULT_VERBS) {
        None
    } else if f.tests || (!f.vitals && has_any(&s.lower, RESULTS)) {
        Some(Content::DiagnosticResults)
    } else if f.vitals || has_any(&s.lower, EXAM) || !s.insights.is_empty() {
        Some(Content::PhysicalExamination)
    } else {
        None
    }
}

/// What the clinician says in the assessment and plan: a test's result reported there (a
/// test named with a result verb, no order or instruction), counselling, orders and
/// instructions, the assessment, else plan.
fn assessment_plan_kind(s: &Sent, f: &Facts) -> Content {
    if f.tests && has_any(&s.lower, RESULT_VERBS) && !has_any(&s.lower, PLAN) {
        Content::DiagnosticResults
    } else if has_any(&s.lower, COUNSEL) {
        Content::Interventions
    } else if f.orders || has_any(&s.lower, PLAN) {
        Content::Plan
    } else if !f.conditions.is_empty() || has_any(&s.lower, ASSESS) {
        Content::Assessment
    } else {
        Content::Plan
    }
}

/// Writes sentence `k` as a line of `kind`: rewritten in clinical style (at least 4 words for
/// the main kinds, 3 for the others), linked to its segment and, for an answer that inherited
/// its kind, to the question before it. Not written when it would lose what the traits say
/// (see [`status_lost`]) or, for family history, name no relative.
fn statement_line(
    ix: &Segs,
    k: usize,
    kind: Content,
    f: &Facts,
    p: PronounSet,
    context_kind: &[Option<Content>],
    announcing: bool,
) -> Option<Line> {
    let s = &ix.sents[k];
    let seg = &ix.segs[s.seg];
    let min_words = match kind {
        Content::HistoryOfPresentIllness
        | Content::PhysicalExamination
        | Content::Plan
        | Content::Assessment
        | Content::DiagnosticResults => 4,
        _ => 3,
    };
    // A patient's short sentence naming what the analysis found ("it just started aching")
    // stays: it is written with the patient named ("The patient reports it started aching").
    let min_words = if role(seg) == Speaker::Patient && !s.insights.is_empty() {
        min_words.min(3)
    } else {
        min_words
    };
    let raw = &seg.content[s.bytes.clone()];
    let toks = rewrite_toks(raw, role(seg), p, announcing, min_words)?;
    // A short patient sentence whose conditions the traits all negate is a denial, written as
    // notes write one ("I haven't had any fever or chills." → "Denies fever or chills.").
    let denied: Vec<String> =
        f.conditions
            .iter()
            .filter_map(|x| insight_text(x))
            .fold(Vec::new(), |mut v, t| {
                if !v.contains(&t) {
                    v.push(t);
                }
                v
            });
    if role(seg) == Speaker::Patient
        && kind != Content::FamilyHistory
        && !denied.is_empty()
        && f.conditions.iter().all(|x| {
            !has_trait(x, TraitName::PertainsToFamily) && !has_trait(x, TraitName::Hypothetical)
        })
        && f.conditions
            .iter()
            .all(|x| has_trait(x, TraitName::Negation))
        && phrasing::words(&toks).count() <= SHORT_DENIAL_WORDS
    {
        let mut evidence = vec![s.seg];
        if context_kind[s.seg].is_some() && s.seg > 0 {
            evidence.insert(0, s.seg - 1);
        }
        return Some(Line {
            kind,
            text: format!("Denies {}.", join_list(&denied)),
            evidence,
            order: (s.seg, k + 1),
            list: None,
            alt: None,
            concepts: Vec::new(),
        });
    }
    let t = phrasing::render(&toks);
    let alt = (role(seg) == Speaker::Patient).then(|| {
        // Only the patient's own "I"/"we" became the pronoun; a "he" they said is someone else.
        let raw_toks = phrasing::strip_fillers(phrasing::tokenize(raw));
        let own = phrasing::words(&raw_toks).next().is_some_and(|w| {
            matches!(
                w,
                "i" | "i'm" | "i've" | "i'd" | "i'll" | "we" | "we're" | "we've"
            )
        });
        patient_voice(toks, p, own)
    });
    let mut evidence = vec![s.seg];
    if context_kind[s.seg].is_some() && s.seg > 0 {
        evidence.insert(0, s.seg - 1);
    }
    let lower_t = t.to_lowercase();
    // Family members' conditions are written only with the relative named.
    if kind == Content::FamilyHistory && !has_any(&lower_t, FAMILY_MEMBERS) {
        return None;
    }
    if status_lost(ix, &evidence, &f.conditions, &lower_t) {
        return None;
    }
    let concepts = s.insights.iter().flat_map(|x| concept(x)).collect();
    Some(Line {
        kind,
        text: t,
        evidence,
        order: (s.seg, k + 1),
        list: None,
        alt,
        concepts,
    })
}

/// A patient's sentence with the patient named as notes name them: a sentence opening with
/// the patient's singular pronoun takes "The patient" for it ("She has had…" → "The patient
/// has had…"); any other opens with "The patient reports" ("Her knee hurts…" → "The patient
/// reports her knee hurts…").
fn patient_voice(mut toks: Vec<Tok>, p: PronounSet, own_subject: bool) -> String {
    let first = toks.first().and_then(Tok::word).unwrap_or("").to_owned();
    if p.singular && own_subject && first == p.subj {
        toks.remove(0);
    } else if phrasing::opens_with_finite_verb(&toks) {
        // A sentence without its subject ("quit 10 years ago") takes "the patient" as one.
    } else if !matches!(first.as_str(), "denies" | "reports") {
        toks.insert(0, Tok::Word("reports".into()));
    }
    toks.insert(0, Tok::Word("patient".into()));
    toks.insert(0, Tok::Word("the".into()));
    phrasing::render(&toks)
}

/// At most this many words make a patient's sentence short enough to be a plain denial.
const SHORT_DENIAL_WORDS: usize = 10;

/// Whether the written sentence `lower_t` loses the status of one of its conditions: a finding
/// keeps its status, negated only with its negation, a relative's only with the relative named,
/// a hypothetical only hedged. Every mention of the same words in the evidence segments counts,
/// as the checker sees them.
fn status_lost(
    ix: &Segs,
    evidence: &[usize],
    conditions: &[&ClinicalInsight],
    lower_t: &str,
) -> bool {
    let mentions = |x: &ClinicalInsight| {
        let text = x.spans.first().map(|sp| sp.content.to_lowercase());
        evidence
            .iter()
            .flat_map(|&e| &ix.seg_insights[e])
            .copied()
            .filter(|y| {
                is_condition(y) && y.spans.first().map(|sp| sp.content.to_lowercase()) == text
            })
            .collect::<Vec<&ClinicalInsight>>()
    };
    conditions.iter().any(|x| {
        let m = mentions(x);
        let any = |t| has_trait(x, t) || m.iter().any(|y| has_trait(y, t));
        let all = |t| has_trait(x, t) && m.iter().all(|y| has_trait(y, t));
        (any(TraitName::Negation) && !has_any(lower_t, NEGATION_WORDS) && !lower_t.contains("n't"))
            || (all(TraitName::PertainsToFamily) && !has_any(lower_t, FAMILY_MEMBERS))
            || (all(TraitName::Hypothetical) && !has_any(lower_t, HEDGE_WORDS))
    })
}

/// The words that say something: longer than two letters, or a number ("80" of "80 mg").
fn content_words(s: &str) -> HashSet<String> {
    s.to_lowercase()
        .split(|c: char| !c.is_alphanumeric())
        .filter(|w| w.len() > 2 || w.starts_with(|c: char| c.is_ascii_digit()))
        .map(str::to_owned)
        .collect()
}

/// How many of a section's patient sentences name "the patient" ([`patient_voice`]); the rest
/// keep the pronoun, as a note does once it has said who is speaking.
const PATIENT_VOICED: usize = 6;

fn assemble(
    conv: &Conversation,
    template: &Template,
    mut lines: Vec<Line>,
) -> ClinicalDocumentation {
    lines.sort_by_key(|l| l.order);
    let mut per_section: Vec<Vec<(usize, Line)>> =
        template.sections.iter().map(|_| Vec::new()).collect();
    for l in lines {
        if let Some(si) = template.section_for(l.kind) {
            let rank = template.sections[si]
                .content
                .iter()
                .position(|k| *k == l.kind)
                .unwrap_or(0);
            per_section[si].push((rank, l));
        }
    }
    let mut sections = Vec::new();
    for (si, mut ls) in per_section.into_iter().enumerate() {
        ls.sort_by_key(|(rank, l)| (*rank, l.order));
        let mut seen: HashSet<String> = HashSet::new();
        let mut seen_concepts: HashSet<String> = HashSet::new();
        let mut summary = Vec::new();
        let mut voiced = 0;
        for (_, mut l) in ls {
            if let Some(alt) = l.alt.take() {
                if voiced < PATIENT_VOICED {
                    l.text = alt;
                    voiced += 1;
                }
            }
            // Skip a sentence that mostly repeats what the section already says: under 40% of
            // its content words (numbers included) new and nothing the analysis found that the
            // section has not named. A problem of the list stays: it names what the summary
            // before it only mentions.
            let words = content_words(&l.text);
            let new = words.iter().filter(|w| !seen.contains(*w)).count();
            let new_concept = l.concepts.iter().any(|c| !seen_concepts.contains(c));
            if !words.is_empty()
                && new * 5 < words.len() * 2
                && l.kind != Content::Problems
                && !new_concept
            {
                continue;
            }
            seen.extend(words);
            seen_concepts.extend(l.concepts.iter().cloned());
            let mut evidence: Vec<usize> = l.evidence.clone();
            evidence.sort_unstable();
            evidence.dedup();
            summary.push(SummarizedSegment {
                evidence_links: evidence
                    .into_iter()
                    .map(|i| EvidenceLink {
                        segment_id: conv.transcript_segments[i].segment_id.clone(),
                    })
                    .collect(),
                summarized_segment: l.text,
            });
            if template.sections[si]
                .max_sentences
                .is_some_and(|m| summary.len() >= m)
            {
                break;
            }
        }
        if !summary.is_empty() {
            sections.push(Section {
                section_name: template.sections[si].name.clone(),
                summary,
            });
        }
    }
    ClinicalDocumentation {
        sections,
        session_id: None,
        extensions: None,
    }
}

//! The evidence-built note: see the module docs of [`super`].

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
    matches!(
        first,
        Some(
            "have"
                | "has"
                | "do"
                | "does"
                | "did"
                | "are"
                | "is"
                | "were"
                | "any"
                | "how"
                | "what"
                | "when"
                | "where"
                | "why"
                | "which"
                | "can"
                | "could"
                | "would"
                | "will"
                | "anything"
                | "tell"
                | "describe"
        )
    )
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

const SOCIAL: &[&str] = &[
    "smoke",
    "smoking",
    "smoked",
    "smoker",
    "cigarettes",
    "cigarette",
    "tobacco",
    "vape",
    "alcohol",
    "drink",
    "drinks",
    "drinking",
    "beer",
    "beers",
    "wine",
    "marijuana",
    "drugs",
    "cocaine",
    "married",
    "divorced",
    "retired",
    "lives with",
    "live with",
    "pack-years",
    "pack years",
    "packs a day",
];
const ALLERGY: &[&str] = &["allergic", "allergy", "allergies"];
const PROGRESS: &[&str] = &[
    "better",
    "worse",
    "improved",
    "improving",
    "improvement",
    "helped",
    "helping",
    "helps",
    "working",
    "worsening",
    "progress",
    "getting worse",
    "since last",
];
const GOALS: &[&str] = &[
    "want to",
    "wanna",
    "would like to",
    "goal",
    "hoping to",
    "hope to",
    "trying to",
    "plan to",
];
const COMMAND: &[&str] = &["dragon", "show me", "finalize the note", "hey computer"];
const INTRO: &[&str] = &[
    "year-old",
    "year old",
    "presents",
    "presenting",
    "here for",
    "here today",
    "coming in",
    "following up",
    "follow up on",
    "referred",
    "in today for",
    "history of",
];
const RESULTS: &[&str] = &[
    "x-ray",
    "xray",
    "x ray",
    "mri",
    "ct",
    "cat scan",
    "scan",
    "ultrasound",
    "results",
    "result",
    "labs",
    "lab",
    "a1c",
    "ekg",
    "ecg",
    "echo",
    "echocardiogram",
    "blood work",
    "bloodwork",
    "urinalysis",
    "urine",
    "culture",
    "biopsy",
    "imaging",
    "came back",
    "showed",
    "shows",
    "revealed",
    "level",
    "levels",
    "test",
    "panel",
    "spirometry",
    "radiograph",
    "cbc",
    "cholesterol",
    "hemoglobin",
];
const EXAM: &[&str] = &[
    "exam",
    "examination",
    "vital",
    "vitals",
    "blood pressure",
    "heart rate",
    "temperature",
    "pulse",
    "oxygen",
    "lungs",
    "heart",
    "abdomen",
    "tender",
    "tenderness",
    "swelling",
    "edema",
    "range of motion",
    "palpation",
    "murmur",
    "murmurs",
    "clear",
    "normal",
    "strength",
    "reflexes",
    "sounds",
    "effusion",
    "rash",
    "redness",
    "warmth",
    "bruising",
    "crepitus",
    "stable",
    "soft",
    "wheezing",
    "wheezes",
    "rhonchi",
    "ronchi",
    "rales",
    "crackles",
    "erythema",
    "bilaterally",
    "neck",
    "nodes",
    "pupils",
    "gait",
    "sensation",
    "pain to",
    "saturation",
    "weight",
    "bmi",
    "appears",
    "skin",
    "inspection",
    "ligaments",
    "noticed",
    "notice",
    "see",
    "feel",
    "looks",
    "look",
];
const VITALS: &[&str] = &[
    "blood pressure",
    "heart rate",
    "pulse",
    "temperature",
    "oxygen saturation",
    "respiratory rate",
    "weight",
    "vital signs",
    "vitals",
    "bmi",
    "o2 sat",
    "spo2",
];
const EXAM_INTENT: &[&str] = &[
    "go ahead and",
    "let me",
    "going to",
    "gonna",
    "gon na",
    "i'm just",
    "i want to",
    "i'd like to",
    "take a look",
    "let's",
];
const COUNSEL: &[&str] = &[
    "discussed",
    "talked about",
    "we talked",
    "educated",
    "explained",
    "counseled",
    "counselled",
    "reassured",
    "encourage",
    "encouraged",
    "practiced",
    "practice",
    "we worked on",
    "coping",
    "techniques",
    "technique",
    "mindfulness",
    "breathing exercises",
    "reframing",
    "journaling",
    "homework",
];
const PLAN: &[&str] = &[
    "prescribe",
    "prescribed",
    "prescription",
    "order",
    "ordered",
    "refer",
    "referral",
    "follow up",
    "follow-up",
    "see you",
    "come back",
    "continue",
    "start",
    "increase",
    "decrease",
    "stop",
    "schedule",
    "send",
    "we will",
    "we'll",
    "i will",
    "i'll",
    "gonna",
    "gon na",
    "going to",
    "want to",
    "want you to",
    "let's",
    "recommend",
    "take",
    "physical therapy",
    "refill",
    "repeat",
    "check",
    "get",
    "give",
    "put you on",
    "switch",
    "adjust",
    "monitor",
    "should",
    "need to",
    "advise",
    "avoid",
    "ice",
    "rest",
    "return",
    "call",
];
const ASSESS: &[&str] = &[
    "i believe",
    "i think",
    "consistent with",
    "diagnosis",
    "likely",
    "problem",
    "impression",
    "you have",
    "looks like",
    "sounds like",
    "suspect",
    "concerned",
    "due to",
    "probably",
    "is from",
    "caused by",
    "related to",
    "suggests",
    "i suspect",
];

/// A sentence for the note before routing.
struct Line {
    kind: Content,
    text: String,
    evidence: Vec<usize>,
    /// Position in the transcript, for ordering.
    order: (usize, usize),
}

/// Cleans and rewrites one sentence into clinical style; `None` when nothing is left worth
/// writing (fewer than `min_words` words).
fn rewrite(raw: &str, speaker: Speaker, p: PronounSet, min_words: usize) -> Option<String> {
    let toks = phrasing::strip_fillers(phrasing::tokenize(raw));
    let toks = phrasing::to_third_person(toks, speaker, p);
    let toks = phrasing::normalise_terms(toks);
    let toks = trim_tags(toks);
    if phrasing::words(&toks).count() < min_words {
        return None;
    }
    Some(phrasing::render(&toks))
}

/// Drops trailing question tags and fillers (", right", ", okay", ", correct").
fn trim_tags(mut toks: Vec<Tok>) -> Vec<Tok> {
    loop {
        while matches!(toks.last(), Some(Tok::Punct(_))) {
            toks.pop();
        }
        match toks.last().and_then(Tok::word) {
            Some("okay" | "ok" | "right" | "correct" | "alright" | "too" | "yeah")
                if toks.len() > 3 =>
            {
                toks.pop();
            }
            _ => break,
        }
    }
    toks
}

/// The chief complaint phrase after an introduction cue ("presents today with X").
fn chief_complaint_phrase(lower: &str) -> Option<String> {
    const CUES: &[&str] = &[
        "presents today with",
        "presents with",
        "presenting with",
        "here today for",
        "here for",
        "following up on",
        "follow up on",
        "for follow-up of",
        "coming in for",
        "in today for",
        "complaining of",
        "referred for",
        "here to follow up on",
        "here to discuss",
        "in for",
    ];
    for cue in CUES {
        if let Some(p) = lower.find(cue) {
            let rest = &lower[p + cue.len()..];
            let toks = phrasing::tokenize(rest);
            let mut words: Vec<String> = Vec::new();
            for t in toks {
                match t {
                    Tok::Punct(_) => break,
                    Tok::Word(w) => {
                        if matches!(
                            w.as_str(),
                            "who" | "that" | "which" | "so" | "today" | "because" | "since"
                        ) {
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
                .filter(|w| {
                    !matches!(
                        w.as_str(),
                        "a" | "an"
                            | "the"
                            | "your"
                            | "his"
                            | "her"
                            | "their"
                            | "my"
                            | "some"
                            | "this"
                            | "of"
                    )
                })
                .collect();
            if (1..=8).contains(&words.len()) {
                let toks: Vec<Tok> = words.into_iter().map(Tok::Word).collect();
                return Some(phrasing::render(&phrasing::normalise_terms(toks)));
            }
        }
    }
    None
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

pub(super) fn generate(
    conv: &Conversation,
    template: &Template,
    ctx: &NoteContext,
) -> ClinicalDocumentation {
    let p = PronounSet::for_pronouns(ctx.pronouns);
    let mut ix = index(conv);
    mark_answered_statements_as_questions(&mut ix);
    let mut lines: Vec<Line> = Vec::new();
    let mut used_answer: HashSet<usize> = HashSet::new();
    // Kind inherited by a patient's elliptical answer from the question before it.
    let mut context_kind: Vec<Option<Content>> = vec![None; ix.segs.len()];

    // Questions and answers.
    for i in 0..ix.segs.len().saturating_sub(1) {
        let (q, a) = (&ix.segs[i], &ix.segs[i + 1]);
        if role(q) != Speaker::Clinician || role(a) != Speaker::Patient {
            continue;
        }
        let q_sents: Vec<&Sent> = ix.sents[ix.by_seg[i].clone()]
            .iter()
            .filter(|s| s.question)
            .collect();
        if q_sents.is_empty() {
            continue;
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
            context_kind[i + 1] = Some(Content::FamilyHistory);
        } else if social {
            context_kind[i + 1] = Some(Content::SocialHistory);
        }
        let Some(first_answer) = ix.by_seg[i + 1].clone().next() else {
            continue;
        };
        let answer = &ix.sents[first_answer];
        // Whether the question was answered at all; what was denied comes from the traits.
        let Some(positive) = answer_polarity(&answer.lower) else {
            continue;
        };
        let answer_words = answer.lower.split_whitespace().count();
        // Statement-with-tag questions ("your father had a heart attack, right?") confirmed by the
        // patient become statements.
        let tag = has_any(
            &last_q.lower,
            &[
                "right?",
                "right ?",
                "correct?",
                "correct ?",
                "is that right",
            ],
        );
        if positive && tag && (family || social || !last_q.insights.is_empty()) {
            let raw = &q.content[last_q.bytes.clone()];
            if let Some(t) = rewrite(raw, Speaker::Clinician, p, 3) {
                let kind = if family {
                    Content::FamilyHistory
                } else if social {
                    Content::SocialHistory
                } else {
                    Content::HistoryOfPresentIllness
                };
                lines.push(Line {
                    kind,
                    text: t,
                    evidence: vec![i, i + 1],
                    order: (i, 0),
                });
                continue;
            }
        }
        if family || social {
            continue;
        }
        if positive && answer_words > 6 {
            // An elaborated "yes" is written from the answer itself.
            continue;
        }
        // Conditions asked about, with the clinical stage's verdict on each: denied when the
        // question's mention or the answer's own mention of it carries NEGATION, reported only
        // when the answer confirms and nothing negates it. A "No" to a condition the traits
        // leave un-negated (a presupposed one: "Does the pain go down your legs?") is neither.
        let mut denied: Vec<String> = Vec::new();
        let mut reported: Vec<String> = Vec::new();
        let mut reported_past: Vec<String> = Vec::new();
        for ins in &q_insights {
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
                &mut denied
            } else if !positive || has_trait(ins, TraitName::Hypothetical) {
                continue;
            } else if has_trait(ins, TraitName::PastHistory) {
                &mut reported_past
            } else {
                &mut reported
            };
            if !list.contains(&t) {
                list.push(t);
            }
        }
        // An item both denied and reported (two mentions) is written as neither.
        let both: Vec<String> = denied
            .iter()
            .filter(|t| reported.contains(t) || reported_past.contains(t))
            .cloned()
            .collect();
        for l in [&mut denied, &mut reported, &mut reported_past] {
            l.retain(|t| !both.contains(t));
        }
        let mut wrote = false;
        for (verb, items, kind) in [
            ("Denies", &denied, Content::ReviewOfSystems),
            ("Reports", &reported, Content::ReviewOfSystems),
            ("Reports", &reported_past, Content::PastMedicalHistory),
        ] {
            if items.is_empty() {
                continue;
            }
            lines.push(Line {
                kind,
                text: format!("{verb} {}.", join_list(items)),
                evidence: vec![i, i + 1],
                order: (i, 0),
            });
            wrote = true;
        }
        if wrote && answer_words <= 3 {
            used_answer.insert(first_answer);
        }
    }

    // Chief complaint: the clinician's introduction, else the first symptom the patient reports.
    let mut cc: Option<Line> = None;
    for (k, s) in ix.sents.iter().enumerate() {
        let seg = &ix.segs[s.seg];
        if role(seg) != Speaker::Clinician
            || seg.section_details.section_name == TranscriptSectionName::AssessmentAndPlan
        {
            continue;
        }
        if let Some(phrase) = chief_complaint_phrase(&s.lower) {
            cc = Some(Line {
                kind: Content::ChiefComplaint,
                text: phrase,
                evidence: vec![s.seg],
                order: (s.seg, k),
            });
            break;
        }
    }
    if cc.is_none() {
        'outer: for s in &ix.sents {
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
                        cc = Some(Line {
                            kind: Content::ChiefComplaint,
                            text: phrasing::render(&[Tok::Word(t)]),
                            evidence: vec![s.seg],
                            order: (s.seg, 0),
                        });
                        break 'outer;
                    }
                }
            }
        }
    }
    lines.extend(cc);

    // Statements.
    for (k, s) in ix.sents.iter().enumerate() {
        if s.question || used_answer.contains(&k) || has_any(&s.lower, COMMAND) {
            continue;
        }
        let seg = &ix.segs[s.seg];
        let speaker = role(seg);
        let section = seg.section_details.section_name;
        if section == TranscriptSectionName::Other && s.insights.is_empty() {
            continue;
        }
        let conditions: Vec<&&ClinicalInsight> =
            s.insights.iter().filter(|x| is_condition(x)).collect();
        let all_hypothetical = !conditions.is_empty()
            && conditions
                .iter()
                .all(|x| has_trait(x, TraitName::Hypothetical));
        let family = about_family(&s.insights, &s.lower);
        let social = s
            .insights
            .iter()
            .any(|x| x.category == EntityType::BehavioralEnvironmentalSocial)
            || has_any(&s.lower, SOCIAL);
        let past = conditions
            .iter()
            .any(|x| has_trait(x, TraitName::PastHistory));
        let meds = s
            .insights
            .iter()
            .any(|x| x.category == EntityType::Medication);
        let is_test = |x: &&&ClinicalInsight| {
            x.category == EntityType::TestTreatmentProcedure
                && matches!(
                    x.entity_type,
                    EntitySubType::TestName | EntitySubType::TestValue
                )
        };
        let test_names: Vec<String> = s
            .insights
            .iter()
            .filter(is_test)
            .filter_map(|x| x.spans.first().map(|sp| sp.content.to_lowercase()))
            .collect();
        // Vital signs are examination, other tests are results.
        let tests = test_names.iter().any(|t| !VITALS.contains(&t.as_str()));
        let vitals = test_names.iter().any(|t| VITALS.contains(&t.as_str()));
        let orders = s.insights.iter().any(|x| {
            x.category == EntityType::TestTreatmentProcedure || x.category == EntityType::Medication
        });
        let kind = match (speaker, section) {
            (Speaker::Patient, _) => {
                if family {
                    Some(Content::FamilyHistory)
                } else if social {
                    Some(Content::SocialHistory)
                } else if has_any(&s.lower, ALLERGY) {
                    Some(Content::Allergies)
                } else if let Some(kind) = context_kind[s.seg] {
                    Some(kind)
                } else if section == TranscriptSectionName::AssessmentAndPlan {
                    Some(Content::PatientResponse)
                } else if all_hypothetical {
                    None
                } else if has_any(&s.lower, PROGRESS) && !s.insights.is_empty() {
                    Some(Content::Progress)
                } else if has_any(&s.lower, GOALS) && !s.insights.is_empty() {
                    Some(Content::Goals)
                } else if past && !conditions.is_empty() {
                    Some(Content::PastMedicalHistory)
                } else if meds {
                    Some(Content::Medications)
                } else if !s.insights.is_empty() {
                    Some(Content::HistoryOfPresentIllness)
                } else {
                    None
                }
            }
            (
                Speaker::Clinician,
                TranscriptSectionName::Subjective | TranscriptSectionName::Other,
            ) => {
                if family {
                    Some(Content::FamilyHistory)
                } else if social && !has_any(&s.lower, INTRO) {
                    Some(Content::SocialHistory)
                } else if has_any(&s.lower, INTRO) {
                    Some(Content::HistoryOfPresentIllness)
                } else if meds {
                    Some(Content::Medications)
                } else if !conditions.is_empty() && !all_hypothetical {
                    Some(Content::HistoryOfPresentIllness)
                } else {
                    None
                }
            }
            (Speaker::Clinician, TranscriptSectionName::Objective) => {
                if has_any(&s.lower, EXAM_INTENT)
                    && !has_any(&s.lower, &["shows", "showed", "came back", "revealed"])
                {
                    None
                } else if tests || (!vitals && has_any(&s.lower, RESULTS)) {
                    Some(Content::DiagnosticResults)
                } else if vitals || has_any(&s.lower, EXAM) || !s.insights.is_empty() {
                    Some(Content::PhysicalExamination)
                } else {
                    None
                }
            }
            (Speaker::Clinician, TranscriptSectionName::AssessmentAndPlan) => {
                if has_any(&s.lower, COUNSEL) {
                    Some(Content::Interventions)
                } else if orders || has_any(&s.lower, PLAN) {
                    Some(Content::Plan)
                } else if !conditions.is_empty() || has_any(&s.lower, ASSESS) {
                    Some(Content::Assessment)
                } else {
                    Some(Content::Plan)
                }
            }
        };
        let Some(kind) = kind else { continue };
        let min_words = match kind {
            Content::HistoryOfPresentIllness
            | Content::PhysicalExamination
            | Content::Plan
            | Content::Assessment
            | Content::DiagnosticResults => 4,
            _ => 3,
        };
        let raw = &seg.content[s.bytes.clone()];
        let Some(t) = rewrite(raw, speaker, p, min_words) else {
            continue;
        };
        let mut evidence = vec![s.seg];
        if context_kind[s.seg].is_some() && s.seg > 0 {
            evidence.insert(0, s.seg - 1);
        }
        let lower_t = t.to_lowercase();
        // Family members' conditions are written only with the relative named.
        if kind == Content::FamilyHistory && !has_any(&lower_t, FAMILY_MEMBERS) {
            continue;
        }
        // A finding keeps its status: negated only with its negation, a relative's only with
        // the relative named, a hypothetical only hedged. Every mention of the same words in
        // the evidence segments counts, as the checker sees them.
        let mentions = |x: &ClinicalInsight| -> Vec<&ClinicalInsight> {
            let text = x.spans.first().map(|sp| sp.content.to_lowercase());
            evidence
                .iter()
                .flat_map(|&e| &ix.seg_insights[e])
                .copied()
                .filter(|y| {
                    is_condition(y) && y.spans.first().map(|sp| sp.content.to_lowercase()) == text
                })
                .collect()
        };
        let status_lost = conditions.iter().any(|x| {
            let m = mentions(x);
            let any = |t| has_trait(x, t) || m.iter().any(|y| has_trait(y, t));
            let all = |t| has_trait(x, t) && m.iter().all(|y| has_trait(y, t));
            (any(TraitName::Negation)
                && !has_any(&lower_t, NEGATION_WORDS)
                && !lower_t.contains("n't"))
                || (all(TraitName::PertainsToFamily) && !has_any(&lower_t, FAMILY_MEMBERS))
                || (all(TraitName::Hypothetical) && !has_any(&lower_t, HEDGE_WORDS))
        });
        if status_lost {
            continue;
        }
        lines.push(Line {
            kind,
            text: t,
            evidence,
            order: (s.seg, k + 1),
        });
    }

    assemble(conv, template, lines)
}

fn content_words(s: &str) -> HashSet<String> {
    s.to_lowercase()
        .split(|c: char| !c.is_alphanumeric())
        .filter(|w| w.len() > 2)
        .map(str::to_owned)
        .collect()
}

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
        let mut summary = Vec::new();
        for (_, l) in ls {
            // Skip a sentence that adds nothing to what the section already says.
            let words = content_words(&l.text);
            let new = words.iter().filter(|w| !seen.contains(*w)).count();
            if !words.is_empty() && new * 5 < words.len() {
                continue;
            }
            seen.extend(words);
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

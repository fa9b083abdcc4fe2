//! Note stage: transcript segments + clinical insights + template → HealthScribe
//! `ClinicalDocumentation` whose every sentence links to the segments it came from.
//!
//! # How a note is built
//! Sentences are built from what was said, never generated freely:
//! 1. Each segment is split into sentences (also at an acknowledgement inside unpunctuated
//!    speech); each sentence is put in a note's register ([`phrasing`]): fillers, politeness,
//!    discourse markers, false starts and repetitions out; the patient in the third person
//!    (pronouns from [`NoteContext`], else neutral `they`; "The patient reports …" for the
//!    first patient sentences of a section), the clinician's own first person kept ("let's
//!    order" → "we will order"; an announcement such as "let's talk about…" is cut);
//!    contractions spelled out, "going to" → "will"; spoken hedges and emphasis ("just",
//!    "really", "actually") and opening acknowledgements ("that's okay, …") out; the verb
//!    agreeing with its rewritten subject; numbers as notes write them (digits, `142/88`,
//!    `7.2%`, `mg`).
//! 2. Each sentence gets one [`Content`] kind from who said it, the transcript section of its
//!    segment, the insights whose spans fall in it (category, type, traits) and cue words. A
//!    sentence goes to family history when its conditions carry PERTAINS_TO_FAMILY (a family
//!    word counts only in a sentence that names no condition), to past medical history when
//!    they carry PAST_HISTORY; sentences whose conditions are all HYPOTHETICAL are not
//!    asserted; a sentence that writes a condition marked NEGATION without its negation is not
//!    written; negations stay in the sentence.
//! 3. A clinician question followed by a short patient answer becomes `Denies X, Y.` (the
//!    conditions the clinical stage marks NEGATION) and/or `Reports X.` (un-negated ones, only
//!    after a confirming answer; past history goes to past medical history); whether the
//!    answer confirms or denies is read with the clinical stage's own answer lists
//!    ([`crate::clinical::traits::answer_polarity`]). It links both segments.
//!    A short patient sentence whose conditions are all negated is written `Denies X.`; a
//!    fragment answer ("Maybe two tablets a week.") is joined to the entity the question named
//!    ("Ibuprofen: maybe 2 tablets a week."), else left out. The clinician announcing the
//!    assessment and plan starts it: later clinician sentences are assessment and plan.
//! 4. From the clinical analysis: the `Denies`/`Reports` lines of the note merged into one of
//!    each (pertinent negatives and positives); the medications of the history as a list with
//!    dose, route and frequency from the entity attributes; vital signs and results as values
//!    ("Blood pressure: 142/88."), from test names with a value attribute; the problems the
//!    clinician named in the assessment and plan (conditions with the DIAGNOSIS trait, asserted)
//!    one per line, after the clinician's one-line summary of the patient (the introduction
//!    that gives an age) restated at the head of the assessment.
//! 5. The template routes each kind to a section; sections keep the template's order and
//!    sentences the transcript's; empty sections are left out.
//!
//! Negation, family, hypothetical and past history come from the clinical stage's traits on the
//! insights (`Extensions.Traits`), not from word lists of this module: a `Reports X`/`Denies X`
//! line takes its verb from X's NEGATION trait, and a sentence that would assert a condition the
//! traits negate is not written. Shared word lists (negation, family, number words) are in
//! [`crate::words`].
//!
//! Every [`SummarizedSegment`] has at least one `EvidenceLinks` entry, and every word of it comes
//! from its linked segments or from the small fixed vocabulary of clinical connectives
//! ([`CONNECTIVES`]). [`generate`] runs every sentence through the independent checker
//! ([`support`], no code shared with the generator) and drops those it rejects, counting them in
//! `Extensions.EvidenceCheck`; the written note is 100% supported by construction.
//!
//! # Architecture invariant
//! Pure function of its inputs: no I/O, no clock, no network. The optional rewrite by a language
//! model lives in [`llm`] and is applied by the pipeline after [`generate`] when configured.

pub mod llm;
pub mod phrasing;
pub mod support;
pub mod template;

mod build;

use crate::healthscribe::{ClinicalDocumentation, Conversation, MedicalScribeContext, Pronouns};

pub use build::CONNECTIVES;
pub use template::{Content, Template, TemplateError, TemplateSection, Templates, ALL_TEMPLATES};

/// What the note may use besides the transcript.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NoteContext {
    /// `MedicalScribeContext.PatientContext.Pronouns`; `None` writes neutral wording.
    pub pronouns: Option<Pronouns>,
}

impl NoteContext {
    pub fn from_scribe_context(ctx: Option<&MedicalScribeContext>) -> Self {
        Self {
            pronouns: ctx
                .and_then(|c| c.patient_context.as_ref())
                .and_then(|p| p.pronouns),
        }
    }
}

/// Builds the clinical documentation for `conversation` with `template`; only sentences the
/// evidence checker accepts are written (see the module docs).
pub fn generate(
    conversation: &Conversation,
    template: &Template,
    ctx: &NoteContext,
) -> ClinicalDocumentation {
    generate_with_report(conversation, template, ctx).0
}

/// [`generate`], plus the checker's report on what the generator produced before the drop
/// (its failures are the dropped sentences, with reasons; for evaluation).
pub fn generate_with_report(
    conversation: &Conversation,
    template: &Template,
    ctx: &NoteContext,
) -> (ClinicalDocumentation, support::SupportReport) {
    let raw = build::generate(conversation, template, ctx);
    let (doc, report) = support::enforce(&raw, conversation);
    if report.supported < report.sentences {
        // Counts only: sentence text may hold PHI.
        tracing::warn!(
            dropped = report.sentences - report.supported,
            sentences = report.sentences,
            "note sentences without support in their evidence were dropped"
        );
    }
    (doc, report)
}

/// Markdown rendering for the EHR (`DocumentReference` attachment): a heading per non-empty
/// section, one bullet per sentence.
pub fn render_markdown(doc: &ClinicalDocumentation, template: &Template) -> String {
    let mut out = String::new();
    for s in doc.sections.iter().filter(|s| !s.summary.is_empty()) {
        let title = template
            .sections
            .iter()
            .find(|t| t.name == s.section_name)
            .map(|t| t.title.clone())
            .unwrap_or_else(|| s.section_name.as_str().replace('_', " "));
        out.push_str(&format!("## {title}\n\n"));
        for line in &s.summary {
            out.push_str("- ");
            out.push_str(line.summarized_segment.trim());
            out.push('\n');
        }
        out.push('\n');
    }
    out
}

/// Plain-text rendering: each non-empty section's title, a blank line, its sentences one per
/// line. Used by the evaluation and for reading notes.
pub fn render_text(doc: &ClinicalDocumentation, template: &Template) -> String {
    let mut out = String::new();
    for s in &doc.sections {
        let title = template
            .sections
            .iter()
            .find(|t| t.name == s.section_name)
            .map(|t| t.title.clone())
            .unwrap_or_else(|| s.section_name.as_str().replace('_', " "));
        out.push_str(&title);
        out.push_str("\n\n");
        for line in &s.summary {
            out.push_str(&line.summarized_segment);
            out.push('\n');
        }
        out.push('\n');
    }
    out
}

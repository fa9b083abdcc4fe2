//! Note stage: transcript segments + clinical insights + template → HealthScribe
//! `ClinicalDocumentation` whose every sentence links to the segments it came from.
//!
//! # How a note is built
//! Sentences are built from what was said, never generated freely:
//! 1. Each segment is split into sentences; each sentence is cleaned (fillers, false starts,
//!    repetitions), rewritten into the third person for the patient (pronouns from
//!    [`NoteContext`], else neutral `they`), and number words become digits ([`text`]).
//! 2. Each sentence gets one [`Content`] kind from who said it, the transcript section of its
//!    segment, the insights whose spans fall in it (category, type, traits) and cue words. Things
//!    said about family members go to family history; sentences whose conditions are all
//!    hypothetical are not asserted; negations stay in the sentence.
//! 3. A clinician question followed by a short patient answer becomes `Denies X, Y.` or
//!    `Reports X.`, where X are the condition insights of the question; it links both segments.
//! 4. The template routes each kind to a section; sections keep the template's order and
//!    sentences the transcript's; empty sections are left out.
//!
//! Every [`SummarizedSegment`] has at least one `EvidenceLinks` entry, and every word of it comes
//! from its linked segments or from the small fixed vocabulary of clinical connectives
//! ([`CONNECTIVES`]); [`eval::check_support`] verifies this without using any of this module's
//! code.
//!
//! # Architecture invariant
//! Pure function of its inputs: no I/O, no clock, no network. The optional rewrite by a language
//! model lives in [`llm`] and is applied by the caller after [`generate`].

pub mod eval;
pub mod llm;
pub mod template;
pub mod text;

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

/// Builds the clinical documentation for `conversation` with `template`.
pub fn generate(
    conversation: &Conversation,
    template: &Template,
    ctx: &NoteContext,
) -> ClinicalDocumentation {
    build::generate(conversation, template, ctx)
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

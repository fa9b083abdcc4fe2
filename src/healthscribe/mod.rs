//! Serde types that mirror AWS HealthScribe's JSON exactly: the transcript file, the clinical
//! documentation file, and the `*MedicalScribeJob` API shapes.
//!
//! Field and enum names are AWS's, so a file we write can be read by any HealthScribe consumer
//! and a file AWS wrote can be read by us.
//!
//! # Spelling policy
//! Reading accepts every spelling AWS's own material uses; writing always emits one documented
//! spelling:
//! - `TranscriptItems[].Type`: `PRONUNCIATION`/`PUNCTUATION` (async sample) and
//!   `pronunciation`/`punctuation` (streaming model); we write upper case.
//! - `TranscriptItems[]`: `Alternatives: [{Confidence, Content}]` (samples) and the streaming
//!   model's flat `Confidence`/`Content`; we write `Alternatives`. A `null` confidence reads as 0,
//!   the value AWS's samples give punctuation.
//! - Transcript `SectionName`: the docs call the fourth section "Visit Flow Management", the
//!   samples write `OTHER`; we read `VISIT_FLOW_MANAGEMENT` too and write `OTHER`.
//! - Note `SectionName`: `CHIEF_COMPLIANT` is read as `CHIEF_COMPLAINT` (see [`NoteSectionName`]);
//!   names we do not know are kept verbatim in [`NoteSectionName::Other`] so templates can add
//!   sections without code.
//! - `NoteTemplate`: the developer guide says `BH_SOAP`/`PH_SOAP`, the API says
//!   `BEHAVIORAL_SOAP`/`PHYSICAL_SOAP`; we write the API names.
//! - Streaming files have `SessionId` and no `JobName`/`JobType`; async files the reverse. All
//!   three are optional.
//!
//! Every other enum is closed: an unknown value is a deserialisation error naming the value and
//! the accepted ones.
//!
//! # Span offsets
//! `BeginCharacterOffset` and `EndCharacterOffset` count Unicode scalar values (Rust `char`s, not
//! bytes, not UTF-16 units) into the `Content` of the segment named by `SegmentId`, and the end is
//! **inclusive**, exactly like AWS's samples (`"pain"` is `12..=15`). Build spans with
//! [`Span::from_char_range`] and read them back with [`Span::char_range`] (half-open) so no other
//! module handles the inclusive end by hand.
//!
//! # Extensions (ours, not AWS's)
//! [`ClinicalInsight::extensions`] is written as an extra `"Extensions"` key holding Comprehend
//! Medical style traits, terminology codes and an entity score:
//! `{"Traits": [{"Name": "NEGATION", "Score": 0.9}], "Codes": [{"System":
//! "http://hl7.org/fhir/sid/icd-10-cm", "Code": "E11.9", "Display": "...", "Score": 0.8}],
//! "Score": 0.9}`. HealthScribe readers ignore unknown keys, and the key is omitted when empty, so
//! a file without extensions is byte-for-byte AWS's shape.
//!
//! [`TranscriptSegment::extensions`] is an `"Extensions"` key on a segment:
//! `{"ParticipantRoleConfidence": 0.0}` says how sure the speaker role is (0: unknown, as for
//! one-channel audio before diarization). Absent means the role is known. The FHIR mapping writes
//! no Condition or MedicationStatement from a segment below its `min_speaker_role_confidence`.
//! [`Conversation::extensions`] is an `"Extensions"` key on the conversation:
//! `{"AsrModel": "whisper ggml-base.bin"}` names the speech model that made the transcript. With
//! speaker diarization (`ShowSpeakerLabels`) it also holds `"SpeakerRoles": [{"ParticipantRole":
//! "CLINICIAN_0", "Confidence": 0.97, "Unsure": false, "SpeechSeconds": 151.2, "Words": 402},
//! …]`: each diarized speaker's role as decided from what they said (`diarize::roles`), how sure
//! (the same value is each of the speaker's segments' `ParticipantRoleConfidence`), and `Unsure`
//! when below 0.8, in which case the FHIR mapping charts nothing the speaker said.
//!
//! [`ClinicalDocumentation::extensions`] is written as `ClinicalDocumentation."Extensions"` when
//! our note stage made the note, with counts (never sentence text) from its safety checks:
//! `{"EvidenceCheck": {"Sentences": 24, "Dropped": 1}, "Rewrite": {"Sentences": 23,
//! "Rewritten": 9, "Rejected": 2}}`. `EvidenceCheck`: sentences the generator produced and how
//! many the independent evidence checker dropped (`note::support`). `Rewrite` (only when a
//! language model is configured, `note::llm`): sentences sent, rewrites kept, rewrites rejected
//! by the same check (the original sentence stays), and `"Fallback"` (`TIMEOUT`, `CONNECTION`,
//! `HTTP_ERROR`, `INVALID_REPLY`, `WRONG_LENGTH`) when the whole rewrite was not used.
//!
//! [`TranscriptItem::extensions`] marks a word that a custom vocabulary wrote in place of what
//! was heard: `{"VocabularyCorrected": true, "HeardAs": "listen up, roll"}` on each word of the
//! term (the plain decode's words it replaced; see `asr::vocabulary`). Insights whose span covers
//! such a word get the clinical stage's fuzzy-correction treatment (score × 0.7 and a
//! `LOW_CONFIDENCE` trait), so the FHIR mapping's `LOW_CONFIDENCE` rule decides whether it is
//! charted. Omitted on every other item.
//!
//! # Job shapes
//! Timestamps are RFC 3339 strings ([`DateTime`]); AWS's JSON protocol sends epoch seconds, which
//! are read and converted. `DataAccessRoleArn` is optional on
//! [`StartMedicalScribeJobRequest`] (AWS requires it) because a self-hosted server has no IAM role;
//! when present it is validated against AWS's pattern. [`StartMedicalScribeJobRequest::validate`]
//! implements the constraints of AWS's API model.
//!
//! # Architecture invariant
//! This module holds data shapes only: no I/O, no clock except [`DateTime::now`], no clinical
//! logic. Consistency between files (segment ids, offsets against content) is checked by the
//! producers, not here.

mod documentation;
mod insights;
mod job;
mod transcript;

#[cfg(test)]
mod tests;

pub use documentation::{
    ClinicalDocumentation, ClinicalDocumentationFile, DocumentationExtensions, EvidenceCheck,
    EvidenceLink, NoteSectionName, NoteSectionNameError, RewriteCheck, RewriteFallback, Section,
    SummarizedSegment,
};
pub use insights::{
    Attribute, ClinicalInsight, Code, EntitySubType, EntityType, InsightExtensions, InsightType,
    Span, SpanError, Trait, TraitName,
};
pub use job::{
    days_from_civil, validate_job_name, ClinicalNoteGenerationSettings, DateTime, DateTimeError,
    DeleteMedicalScribeJobRequest, GetMedicalScribeJobRequest, GetMedicalScribeJobResponse,
    ListMedicalScribeJobsRequest, ListMedicalScribeJobsResponse, Media,
    MedicalScribeChannelDefinition, MedicalScribeContext, MedicalScribeJob, MedicalScribeJobStatus,
    MedicalScribeJobSummary, MedicalScribeLanguageCode, MedicalScribeOutput,
    MedicalScribeParticipantRole, MedicalScribePatientContext, MedicalScribeSettings, NoteTemplate,
    Pronouns, StartMedicalScribeJobRequest, StartMedicalScribeJobResponse, Tag, ValidationError,
    VocabularyFilterMethod,
};
pub use transcript::{
    Alternative, Conversation, ConversationExtensions, ItemExtensions, ItemType, JobType,
    ParticipantDetails, ParticipantRole, ParticipantRoleError, SectionDetails, SegmentExtensions,
    SpeakerRoleInfo, TranscriptFile, TranscriptItem, TranscriptSectionName, TranscriptSegment,
};

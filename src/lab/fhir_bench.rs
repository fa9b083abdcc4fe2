//! FHIR write-back figures: Bundles mapped and validated per second, and (against a running
//! server) Bundles delivered per second through the outbox versus direct POSTs of the same
//! Bundles, which tells whether delivery is limited by the server or by us.
//!
//! The outputs come from a reference transcript (`samples/*.ref.tsv`: the script's turns with
//! their rendered times) run through the real clinical and note stages, so no speech model is
//! needed and the figures do not depend on ASR errors.

use std::time::{Duration, Instant};

use crate::fhir::{self, EncounterContext, JobOutputs, Mapping, ScribeDevice, Validator};
use crate::healthscribe::{
    ClinicalDocumentationFile, Conversation, MedicalScribeLanguageCode, NoteTemplate,
    ParticipantDetails, ParticipantRole, SectionDetails, TranscriptFile, TranscriptSectionName,
    TranscriptSegment,
};
use crate::note::{NoteContext, Templates};
use crate::pipeline::ScribeOutput;

/// Native outputs for a reference transcript: one segment per turn, then the real clinical
/// and note stages.
pub fn reference_outputs(
    ref_tsv: &str,
    job_name: &str,
    template: NoteTemplate,
    templates: &Templates,
) -> Result<ScribeOutput, String> {
    let mut segments = Vec::new();
    for (i, line) in ref_tsv.lines().enumerate() {
        if line.starts_with('#') || line.trim().is_empty() || line.starts_with("turn\t") {
            continue;
        }
        let f: Vec<&str> = line.splitn(6, '\t').collect();
        let bad = || {
            format!(
                "line {}: expected turn, speaker, channel, begin_s, end_s, text",
                i + 1
            )
        };
        if f.len() < 6 {
            return Err(bad());
        }
        let role = if f[1].eq_ignore_ascii_case("clinician") {
            ParticipantRole::clinician(0)
        } else {
            ParticipantRole::patient(0)
        };
        let id = uuid::Uuid::new_v5(
            &uuid::Uuid::NAMESPACE_OID,
            format!("{job_name}/turn/{}", f[0]).as_bytes(),
        );
        segments.push(TranscriptSegment {
            begin_audio_time: f[3].parse().map_err(|_| bad())?,
            content: f[5].trim().to_string(),
            end_audio_time: f[4].parse().map_err(|_| bad())?,
            participant_details: ParticipantDetails {
                participant_role: role,
            },
            section_details: SectionDetails {
                section_name: TranscriptSectionName::Other,
            },
            segment_id: id.to_string(),
            extensions: None,
        });
    }
    if segments.is_empty() {
        return Err("no turns in the reference".into());
    }
    let mut conversation = Conversation {
        conversation_id: uuid::Uuid::new_v5(&uuid::Uuid::NAMESPACE_OID, job_name.as_bytes())
            .to_string(),
        job_name: Some(job_name.to_string()),
        job_type: Some(crate::healthscribe::JobType::Async),
        language_code: MedicalScribeLanguageCode::EnUs,
        session_id: None,
        clinical_insights: vec![],
        transcript_items: vec![],
        transcript_segments: segments,
        extensions: None,
    };
    crate::annotate::annotate(&mut conversation);
    let documentation = crate::note::generate(
        &conversation,
        templates.get(template),
        &NoteContext::default(),
    );
    Ok(ScribeOutput {
        transcript: TranscriptFile { conversation },
        documentation: ClinicalDocumentationFile {
            clinical_documentation: documentation,
        },
    })
}

/// The serialised form of a job's outputs, as the Bundle embeds them.
pub struct OutputBytes {
    pub output: ScribeOutput,
    pub transcript_json: Vec<u8>,
    pub documentation_json: Vec<u8>,
    pub markdown: String,
    pub template: NoteTemplate,
}

impl OutputBytes {
    pub fn new(output: ScribeOutput, template: NoteTemplate, templates: &Templates) -> Self {
        let transcript_json = serde_json::to_vec_pretty(&output.transcript).unwrap_or_default();
        let documentation_json =
            serde_json::to_vec_pretty(&output.documentation).unwrap_or_default();
        let markdown = crate::note::render_markdown(
            &output.documentation.clinical_documentation,
            templates.get(template),
        );
        Self {
            output,
            transcript_json,
            documentation_json,
            markdown,
            template,
        }
    }

    /// The job's outputs under another job name (the benchmark's many jobs share one encounter).
    pub fn outputs<'a>(&'a self, job_name: &'a str, recorded: &'a str) -> JobOutputs<'a> {
        JobOutputs {
            job_name,
            template: self.template,
            conversation: &self.output.transcript.conversation,
            documentation: &self.output.documentation.clinical_documentation,
            note_markdown: &self.markdown,
            transcript_json: &self.transcript_json,
            documentation_json: &self.documentation_json,
            recorded,
        }
    }
}

/// Mapping + validation throughput over `n` jobs.
pub struct MapFigures {
    pub bundles: usize,
    pub entries_per_bundle: usize,
    pub bytes_per_bundle: usize,
    pub elapsed: Duration,
}

impl std::fmt::Display for MapFigures {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let s = self.elapsed.as_secs_f64();
        write!(
            f,
            "mapped+validated {} bundles ({} entries, {:.0} KiB each) in {:.3} s: {:.0} bundles/s, {:.2} ms/bundle",
            self.bundles,
            self.entries_per_bundle,
            self.bytes_per_bundle as f64 / 1024.0,
            s,
            self.bundles as f64 / s,
            1000.0 * s / self.bundles as f64
        )
    }
}

pub fn map_throughput(
    bytes: &OutputBytes,
    mapping: &Mapping,
    validator: &Validator,
    ctx: &EncounterContext,
    device: &ScribeDevice,
    n: usize,
) -> Result<(MapFigures, Vec<serde_json::Value>), fhir::FhirError> {
    let recorded = crate::healthscribe::DateTime::now();
    let names: Vec<String> = (0..n).map(|i| format!("bench-{i:05}")).collect();
    let started = Instant::now();
    let mut bundles = Vec::with_capacity(n);
    for name in &names {
        let m = fhir::prepare(
            mapping,
            validator,
            ctx,
            device,
            &bytes.outputs(name, recorded.as_str()),
        )?;
        bundles.push(m.bundle);
    }
    let elapsed = started.elapsed();
    let first = bundles.first();
    Ok((
        MapFigures {
            bundles: n,
            entries_per_bundle: first
                .and_then(|b| b["entry"].as_array())
                .map_or(0, Vec::len),
            bytes_per_bundle: first.map_or(0, |b| b.to_string().len()),
            elapsed,
        },
        bundles,
    ))
}

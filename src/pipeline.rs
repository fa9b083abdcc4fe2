//! The scribe pipeline: a pure function of (audio, settings, models) to the two output files.
//!
//! Architecture invariant: no HTTP, storage or FHIR here; the CLI and the job workers call
//! [`run`] and decide where outputs go. Stages are composed in order:
//! audio (already decoded by the caller) → diarize (speaker streams) → VAD → ASR → transcript
//! → clinical (sections, insights; via [`crate::annotate`]) → note.

use crate::asr::{self, AsrError, Recognizer, SileroVad};
use crate::audio::Pcm;
use crate::clinical::Analyzer;
use crate::diarize::acoustic::Diarizer;
use crate::diarize::{self, DiarizeError, SpeakerMode};
use crate::healthscribe::{
    ClinicalDocumentation, ClinicalDocumentationFile, Conversation, ConversationExtensions,
    MedicalScribeContext, NoteTemplate, ParticipantRole, SegmentExtensions, SpeakerRoleInfo,
    TranscriptFile,
};
use crate::note::llm::LlmConfig;
use crate::note::{self, NoteContext, Templates};
use crate::transcript::{self, SpeakerWords};

#[derive(Clone, Debug)]
pub struct ScribeSettings {
    pub job_name: String,
    pub speakers: SpeakerMode,
    /// Custom vocabulary (HealthScribe `VocabularyName`), see [`asr::vocabulary`].
    pub vocabulary: Option<asr::Vocabulary>,
    /// Note template (HealthScribe `ClinicalNoteGenerationSettings.NoteTemplate`).
    pub template: NoteTemplate,
    /// Patient context (pronouns) for the note.
    pub context: Option<MedicalScribeContext>,
    /// Optional rephrasing of the note by a language model ([`note::llm`]); `None` = off.
    pub llm: Option<LlmConfig>,
}

impl ScribeSettings {
    pub fn new(job_name: impl Into<String>, speakers: SpeakerMode) -> Self {
        Self {
            job_name: job_name.into(),
            speakers,
            vocabulary: None,
            template: NoteTemplate::default(),
            context: None,
            llm: None,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum PipelineError {
    #[error(transparent)]
    Diarize(#[from] DiarizeError),
    #[error(transparent)]
    Asr(#[from] AsrError),
    #[error("no speech detected in the audio")]
    NoSpeech,
}

pub struct ScribeOutput {
    pub transcript: TranscriptFile,
    pub documentation: ClinicalDocumentationFile,
}

/// The stateful models one job uses exclusively while it runs (the `Engine` keeps a pool).
pub struct Models {
    pub recognizer: Box<dyn Recognizer + Send>,
    pub vad: SileroVad,
    /// Speaker diarization (`None` when its models are not installed; a diarization job then
    /// fails with a message naming the fetch command).
    pub diarizer: Option<Diarizer>,
}

/// The read-only parts every job shares (loaded once by the `Engine`).
pub struct Shared {
    /// The clinical stage's lexicons, patterns, rules and section model.
    pub analyzer: Analyzer,
    /// Note templates (built-in, plus any a site adds with `Templates::load_dir`).
    pub templates: Templates,
}

impl Shared {
    /// The committed analyzer and the built-in templates.
    pub fn builtin() -> Result<Self, note::TemplateError> {
        Ok(Self {
            analyzer: Analyzer::load(),
            templates: Templates::builtin()?,
        })
    }
}

/// Progress events for long files (the CLI prints them on stderr).
#[derive(Clone, Debug)]
pub enum Progress {
    /// Speaker diarization of the mono mix (segmentation, embeddings, clustering).
    Diarize,
    /// Voice activity detection of all streams (one batched pass).
    Vad { streams: usize },
    /// Windows are decoded across all streams in time order.
    Asr { window: usize, windows: usize },
}

pub fn run(
    models: &mut Models,
    shared: &Shared,
    pcm: &Pcm,
    settings: &ScribeSettings,
    mut progress: impl FnMut(Progress),
) -> Result<ScribeOutput, PipelineError> {
    settings.speakers.validate(pcm.channels.len())?;
    // Channel identification and single mode: one stream per speaker, VAD finds the speech.
    // Diarization: the speakers' regions over the one mono mix, roles decided after the ASR.
    let diarized = match settings.speakers {
        SpeakerMode::Diarize { max_speakers } => {
            let d = models.diarizer.as_mut().ok_or(DiarizeError::NotLoaded)?;
            let _span = tracing::info_span!("diarize", max_speakers).entered();
            progress(Progress::Diarize);
            let t = std::time::Instant::now();
            let mono = diarize::mono(pcm);
            let found = d.diarize(&mono, max_speakers)?;
            tracing::debug!(
                speakers = found.regions.len(),
                elapsed_ms = t.elapsed().as_millis() as u64,
                "diarization done"
            );
            Some((mono, found))
        }
        _ => None,
    };
    let streams = match diarized {
        Some(_) => Vec::new(),
        None => diarize::speaker_streams(pcm, settings.speakers)?,
    };
    let (buffers, regions): (Vec<&[f32]>, Vec<Vec<asr::Region>>) = match &diarized {
        Some((mono, d)) => {
            // The VAD shapes the ASR's pieces as it does on a channel; diarization says whose.
            let _span = tracing::info_span!("vad", streams = 1).entered();
            let speech = models.vad.regions(mono)?;
            let regions = diarize::within_speech(&d.regions, &speech);
            (vec![mono.as_slice(); regions.len()], regions)
        }
        None => {
            let n = streams.len();
            let _span = tracing::info_span!("vad", streams = n).entered();
            progress(Progress::Vad { streams: n });
            let t = std::time::Instant::now();
            let pcms: Vec<&[f32]> = streams.iter().map(|s| s.samples.as_slice()).collect();
            let regions = models.vad.regions_batch(&pcms)?;
            for (i, (s, r)) in streams.iter().zip(&regions).enumerate() {
                tracing::debug!(stream = i, role = %s.role, regions = r.len(), "speech regions");
            }
            tracing::debug!(elapsed_ms = t.elapsed().as_millis() as u64, "vad done");
            (pcms, regions)
        }
    };
    let n = buffers.len();
    let inputs: Vec<asr::StreamInput<'_>> = buffers
        .iter()
        .zip(&regions)
        .map(|(s, r)| asr::StreamInput {
            samples: s,
            regions: r,
        })
        .collect();
    let words = {
        let _span = tracing::info_span!("asr", streams = n).entered();
        let t = std::time::Instant::now();
        let words = asr::transcribe_streams(
            models.recognizer.as_mut(),
            &inputs,
            settings.vocabulary.as_ref(),
            |w, ws| {
                progress(Progress::Asr {
                    window: w,
                    windows: ws,
                })
            },
        )?;
        tracing::debug!(elapsed_ms = t.elapsed().as_millis() as u64, "asr done");
        words
    };
    // Roles: given by the channels, or decided from what each diarized speaker said.
    let roles: Vec<(ParticipantRole, f64)> = match &diarized {
        Some(_) => diarize::roles::assign(&words)
            .into_iter()
            .map(|d| (d.role, d.confidence))
            .collect(),
        None => streams
            .iter()
            .map(|s| (s.role, s.role_confidence))
            .collect(),
    };
    let speaker_roles = diarized.as_ref().map(|(_, d)| {
        roles
            .iter()
            .zip(&words)
            .zip(&d.speech_secs)
            .map(|(((role, c), w), secs)| SpeakerRoleInfo {
                participant_role: *role,
                confidence: (c * 1000.0).round() / 1000.0,
                unsure: *c < diarize::roles::UNSURE_BELOW,
                speech_seconds: (secs * 10.0).round() / 10.0,
                words: w
                    .iter()
                    .filter(|w| w.kind == asr::ItemKind::Pronunciation)
                    .count(),
            })
            .collect::<Vec<_>>()
    });
    let speakers: Vec<SpeakerWords> = roles
        .iter()
        .zip(words)
        .map(|((role, _), words)| SpeakerWords { role: *role, words })
        .collect();
    if speakers.iter().all(|s| s.words.is_empty()) {
        return Err(PipelineError::NoSpeech);
    }
    let conversation_id =
        uuid::Uuid::new_v5(&uuid::Uuid::NAMESPACE_OID, settings.job_name.as_bytes()).to_string();
    let mut conversation =
        transcript::build_conversation(&conversation_id, Some(&settings.job_name), &speakers);
    mark_role_confidence(&mut conversation, &roles);
    conversation.extensions = Some(ConversationExtensions {
        asr_model: models.recognizer.model_name(),
        speaker_roles,
    });
    {
        let _span = tracing::info_span!(
            "clinical",
            segments = conversation.transcript_segments.len()
        )
        .entered();
        crate::annotate::annotate_with(&shared.analyzer, &mut conversation);
    }
    let documentation = document(&conversation, &shared.templates, settings);
    Ok(ScribeOutput {
        transcript: TranscriptFile { conversation },
        documentation: ClinicalDocumentationFile {
            clinical_documentation: documentation,
        },
    })
}

/// Writes each segment's role confidence where its speaker's role is not certain (one stream
/// of unknown speakers, or roles decided by diarization), so later stages and the FHIR mapping
/// see how sure anybody is about who said it.
fn mark_role_confidence(conversation: &mut Conversation, roles: &[(ParticipantRole, f64)]) {
    for seg in &mut conversation.transcript_segments {
        let role = seg.participant_details.participant_role;
        if let Some((_, c)) = roles.iter().find(|(r, c)| *r == role && *c < 1.0) {
            seg.extensions = Some(SegmentExtensions {
                participant_role_confidence: Some((c * 1000.0).round() / 1000.0),
            });
        }
    }
}

/// The note stage: the evidence-checked note, then, when [`ScribeSettings::llm`] is set, the
/// model's rewrite with every rewritten sentence checked again (see [`note::llm`]).
pub fn document(
    conversation: &Conversation,
    templates: &Templates,
    settings: &ScribeSettings,
) -> ClinicalDocumentation {
    let _span = tracing::info_span!("note", template = ?settings.template).entered();
    let ctx = NoteContext::from_scribe_context(settings.context.as_ref());
    let doc = note::generate(conversation, templates.get(settings.template), &ctx);
    match &settings.llm {
        Some(cfg) => note::llm::rewrite(&doc, conversation, cfg).0,
        None => doc,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::asr::RawToken;

    /// Stands in for whisper only to observe what the pipeline passes to the recogniser.
    struct Recording(std::sync::Arc<std::sync::Mutex<Vec<Option<String>>>>);
    impl Recognizer for Recording {
        fn transcribe(
            &mut self,
            _audio: &[f32],
            prompt: Option<&str>,
        ) -> Result<Vec<RawToken>, AsrError> {
            self.0.lock().unwrap().push(prompt.map(str::to_string));
            Ok(vec![])
        }
    }

    #[test]
    fn no_words_is_a_no_speech_error_and_a_vocabulary_adds_no_decode_without_near_misses() {
        let seen = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        // Missing models fail the test (scripts/test.sh fetches them): a test that returns early
        // when its inputs are absent can never fail.
        let cfg = crate::config::Config::load(None).unwrap();
        let vad = SileroVad::load(
            &cfg.models_dir().join(crate::models::SILERO_VAD),
            &cfg.ort_library(),
            Default::default(),
        )
        .expect("Silero VAD or ONNX Runtime missing: run `fhirscribe models fetch --only vad,ort`");
        let mut m = Models {
            recognizer: Box::new(Recording(seen.clone())),
            vad,
            diarizer: None,
        };
        let shared = Shared::builtin().unwrap();
        // A loud 300 Hz buzz that the VAD may or may not call speech; either way no words come back.
        let x: Vec<f32> = (0..48_000)
            .map(|i| 0.5 * (i as f32 * 0.117).sin() * ((i / 4000) % 2) as f32)
            .collect();
        let settings = ScribeSettings {
            vocabulary: crate::asr::Vocabulary::parse("lisinopril").unwrap(),
            ..ScribeSettings::new("j", SpeakerMode::Single)
        };
        let e = run(
            &mut m,
            &shared,
            &Pcm { channels: vec![x] },
            &settings,
            |_| {},
        )
        .err()
        .unwrap();
        assert_eq!(e.to_string(), "no speech detected in the audio");
        // No words, so no near misses: the vocabulary prompt is never used.
        assert!(seen.lock().unwrap().iter().all(Option::is_none));
    }
}

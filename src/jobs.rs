//! Jobs: a [`JobSpec`] (what to do, parsed and checked before any audio is touched) and
//! [`run`] (do it with an [`Engine`]). The CLI's `transcribe` calls `run` today; the service's
//! workers call it tomorrow.
//!
//! Architecture invariants: parse, don't validate — a `JobSpec` cannot hold a bad job name,
//! speaker mode, template, vocabulary or encounter context, so `run` never fails on them after
//! decoding a long file; `run` knows no HTTP and no store: it returns the output bytes and the
//! caller decides where they go (files, the store).

pub mod service;

use std::path::{Path, PathBuf};

use crate::asr::Vocabulary;
use crate::audio::{self, AudioError, Pcm};
use crate::diarize::{DiarizeError, SpeakerMode};
use crate::engine::{Engine, FhirRules};
use crate::fhir::{self, EncounterContext, FhirError, MappedBundle, ScribeDevice};
use crate::healthscribe::{
    ClinicalDocumentationFile, DateTime, MedicalScribeContext, MedicalScribeParticipantRole,
    NoteTemplate, StartMedicalScribeJobRequest, TranscriptFile, ValidationError,
};
use crate::note::Templates;
use crate::pipeline::{PipelineError, Progress, ScribeSettings};

/// A job name under AWS's rule (1–200 characters of `0-9a-zA-Z._-`): it names the job's
/// outputs and its FHIR identifiers, so it is checked once, here.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct JobName(String);

impl JobName {
    pub fn parse(name: &str) -> Result<JobName, JobSpecError> {
        crate::healthscribe::validate_job_name(name)?;
        Ok(JobName(name.to_owned()))
    }

    /// A valid name made from a file stem (characters outside the rule become `-`), for the
    /// CLI's default of naming a job after its audio file.
    pub fn from_stem(stem: &str) -> JobName {
        let mut s: String = stem
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-') {
                    c
                } else {
                    '-'
                }
            })
            .take(200)
            .collect();
        if s.is_empty() {
            s = "job".into();
        }
        JobName(s)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Display for JobName {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// Why a job request cannot become a [`JobSpec`]. Messages name fields and rules; a value is
/// quoted only where it is the caller's own identifier (names, URIs), never audio or text.
#[derive(Debug, thiserror::Error)]
pub enum JobSpecError {
    #[error(transparent)]
    Invalid(#[from] ValidationError),
    #[error("Media.MediaFileUri: {0}")]
    Media(String),
    #[error("Settings.VocabularyName: {0}")]
    Vocabulary(String),
    #[error("Settings.VocabularyFilterName: vocabulary filters are not supported")]
    VocabularyFilter,
    #[error("ChannelDefinitions must give one channel the CLINICIAN role and the other PATIENT")]
    ChannelRoles,
    #[error("{0}")]
    Encounter(String),
}

/// Everything a job needs, checked: [`run`] can only fail on the audio itself or a model.
#[derive(Debug, Clone)]
pub struct JobSpec {
    pub name: JobName,
    /// Where the audio is: checked against the configuration, not yet read.
    pub media: MediaSource,
    pub speakers: SpeakerMode,
    pub template: NoteTemplate,
    pub vocabulary: Option<Vocabulary>,
    pub context: Option<MedicalScribeContext>,
    /// Write a FHIR Bundle for this patient and encounter (None: the two native files only).
    pub chart: Option<EncounterContext>,
}

impl JobSpec {
    /// A spec with the defaults (one channel, History & Physical, no vocabulary, no chart).
    pub fn new(name: JobName, media: impl Into<PathBuf>) -> JobSpec {
        JobSpec {
            name,
            media: MediaSource::File { path: media.into() },
            speakers: SpeakerMode::Single,
            template: NoteTemplate::default(),
            vocabulary: None,
            context: None,
            chart: None,
        }
    }

    /// Parses HealthScribe's request: AWS's validation rules, then what this server supports
    /// (media under the configured folder, vocabularies by name from the configured folder,
    /// channel roles). Nothing is decoded or loaded but the vocabulary's text.
    pub fn from_request(
        req: &StartMedicalScribeJobRequest,
        cfg: &crate::config::JobsConfig,
    ) -> Result<JobSpec, JobSpecError> {
        req.validate()?;
        let name = JobName::parse(&req.medical_scribe_job_name)?;
        let uri = req.media.media_file_uri.as_deref().unwrap_or_default();
        let media = resolve_media(uri, cfg)?;
        let s = &req.settings;
        if s.vocabulary_filter_name.is_some() {
            return Err(JobSpecError::VocabularyFilter);
        }
        let speakers = if s.channel_identification == Some(true) {
            let defs = req.channel_definitions.as_deref().unwrap_or_default();
            let clinician = defs
                .iter()
                .find(|d| d.participant_role == MedicalScribeParticipantRole::Clinician)
                .ok_or(JobSpecError::ChannelRoles)?;
            if !defs
                .iter()
                .any(|d| d.participant_role == MedicalScribeParticipantRole::Patient)
            {
                return Err(JobSpecError::ChannelRoles);
            }
            SpeakerMode::ChannelIdentification {
                clinician_channel: clinician.channel_id as usize,
            }
        } else if s.show_speaker_labels == Some(true) {
            // ShowSpeakerLabels: diarization of the mono mix into at most MaxSpeakerLabels
            // speakers (validate() has checked it is 2–30), roles from what each says.
            SpeakerMode::Diarize {
                max_speakers: s.max_speaker_labels.unwrap_or(30) as usize,
            }
        } else {
            // Neither: one stream of unknown speakers; nothing from it is charted.
            SpeakerMode::Single
        };
        let vocabulary = match &s.vocabulary_name {
            Some(v) => load_vocabulary(v, cfg.vocabularies_dir.as_deref())?,
            None => None,
        };
        let template = s
            .clinical_note_generation_settings
            .as_ref()
            .and_then(|c| c.note_template)
            .unwrap_or_default();
        Ok(JobSpec {
            name,
            media,
            speakers,
            template,
            vocabulary,
            context: req.medical_scribe_context.clone(),
            chart: None,
        })
    }

    /// Sets the chart target from the EHR's ids (`Patient/<id>` or `<id>`).
    pub fn with_chart(mut self, patient: &str, encounter: &str) -> Result<JobSpec, JobSpecError> {
        self.chart = Some(
            EncounterContext::new(patient, encounter)
                .map_err(|e| JobSpecError::Encounter(e.to_string()))?,
        );
        Ok(self)
    }
}

/// Where a job's audio is.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum MediaSource {
    /// Uploaded to the service (`media://ID`); the caller holds the bytes.
    Upload { id: String },
    /// A file under the configured media folder (checked).
    File { path: PathBuf },
    /// An `http(s)://` URL under a configured prefix (checked).
    Url { url: String },
}

/// The id of `media://ID` (the service's upload ids: 1–64 of `0-9a-zA-Z-`).
pub fn media_id(uri: &str) -> Option<&str> {
    let id = uri.strip_prefix("media://")?;
    let ok =
        (1..=64).contains(&id.len()) && id.chars().all(|c| c.is_ascii_alphanumeric() || c == '-');
    ok.then_some(id)
}

/// `media://ID`, `file://` under the media folder, or `http(s)://` under a configured prefix;
/// anything else is refused with the rule it broke. No file is read and no URL requested here.
fn resolve_media(uri: &str, cfg: &crate::config::JobsConfig) -> Result<MediaSource, JobSpecError> {
    if uri.starts_with("media://") {
        return media_id(uri)
            .map(|id| MediaSource::Upload { id: id.to_owned() })
            .ok_or_else(|| {
                JobSpecError::Media(format!("{uri} is not a media id this service issued"))
            });
    }
    if uri.starts_with("file://") {
        return resolve_file_uri(uri, cfg.media_dir.as_deref())
            .map(|path| MediaSource::File { path });
    }
    if uri.starts_with("http://") || uri.starts_with("https://") {
        // Compared on the raw text: a URL with `..`, `@`, `\\` or an encoded separator could
        // point elsewhere than its prefix suggests, so those are refused outright.
        let tricky = uri.contains("..")
            || uri.contains('@')
            || uri.contains('\\')
            || uri.to_ascii_lowercase().contains("%2f")
            || uri.contains("%2e")
            || uri.contains("%2E");
        if !tricky
            && cfg
                .media_url_prefixes
                .iter()
                .any(|p| uri.starts_with(p.as_str()))
        {
            return Ok(MediaSource::Url {
                url: uri.to_owned(),
            });
        }
        return Err(JobSpecError::Media(
            "this server fetches http(s) media only from its configured URL prefixes (jobs.media_url_prefixes); upload the audio to /v1/media instead".into(),
        ));
    }
    Err(JobSpecError::Media(
        "s3:// media is not available on this server: upload the audio to /v1/media (media://ID), or use file:// under the configured media folder".into(),
    ))
}

/// `file://PATH` inside `media_dir` (after resolving `..` and links), or a clear refusal.
fn resolve_file_uri(uri: &str, media_dir: Option<&Path>) -> Result<PathBuf, JobSpecError> {
    let Some(path) = uri.strip_prefix("file://") else {
        return Err(JobSpecError::Media("not a file:// URI".into()));
    };
    let Some(dir) = media_dir else {
        return Err(JobSpecError::Media(
            "file:// media is refused: no media folder is configured (jobs.media_dir)".into(),
        ));
    };
    let outside =
        || JobSpecError::Media("the file is not inside the configured media folder".into());
    let dir = dir
        .canonicalize()
        .map_err(|_| JobSpecError::Media("the configured media folder does not exist".into()))?;
    let file = Path::new(path)
        .canonicalize()
        .map_err(|_| JobSpecError::Media(format!("no such file: {uri}")))?;
    if !file.starts_with(&dir) || !file.is_file() {
        return Err(outside());
    }
    Ok(file)
}

/// `DIR/NAME.txt` of the configured vocabularies folder (the name was checked against AWS's
/// name rule, so it cannot leave the folder).
fn load_vocabulary(name: &str, dir: Option<&Path>) -> Result<Option<Vocabulary>, JobSpecError> {
    let Some(dir) = dir else {
        return Err(JobSpecError::Vocabulary(
            "no vocabularies folder is configured (jobs.vocabularies_dir)".into(),
        ));
    };
    let text = std::fs::read_to_string(dir.join(format!("{name}.txt")))
        .map_err(|_| JobSpecError::Vocabulary(format!("no vocabulary named {name}")))?;
    Vocabulary::parse(&text).map_err(|e| JobSpecError::Vocabulary(format!("{name}: {e}")))
}

/// Why a job failed once running. Messages carry no audio content or transcript text.
#[derive(Debug, thiserror::Error)]
pub enum JobError {
    #[error("cannot read the media file: {0}")]
    Read(std::io::Error),
    #[error("the job's media is not a local file")]
    NotAFile,
    #[error(transparent)]
    Audio(#[from] AudioError),
    #[error(transparent)]
    Speakers(#[from] DiarizeError),
    #[error(transparent)]
    Pipeline(#[from] PipelineError),
    #[error(transparent)]
    Fhir(#[from] FhirError),
    #[error("the transcript does not say which speech model made it (no Extensions.AsrModel)")]
    UnknownAsrModel,
    #[error("encoding outputs: {0}")]
    Encode(#[from] serde_json::Error),
}

/// A job's outputs, as the bytes to store or serve, plus the parsed files for callers that
/// look inside.
pub struct JobOutput {
    pub transcript: TranscriptFile,
    pub documentation: ClinicalDocumentationFile,
    pub transcript_json: Vec<u8>,
    pub documentation_json: Vec<u8>,
    /// The validated transaction Bundle and what was left out, when the spec asked for one.
    pub bundle: Option<(Vec<u8>, MappedBundle)>,
    pub audio_secs: f64,
}

/// Decodes the spec's audio, runs the pipeline on a pooled recognizer and, when the spec names
/// an encounter, maps and validates the FHIR Bundle (an invalid Bundle fails the job).
pub fn run(
    spec: &JobSpec,
    engine: &Engine,
    progress: impl FnMut(Progress),
) -> Result<JobOutput, JobError> {
    let _span = tracing::info_span!("job", job = %spec.name).entered();
    let pcm = decode(spec, engine.limits())?;
    run_decoded(spec, &pcm, engine, progress)
}

/// Reads and decodes the spec's audio file and checks it fits the speaker mode. The CLI calls
/// this before loading models, so bad audio is reported at once. Uploaded or remote media is
/// read by the caller and given to [`decode_bytes`].
pub fn decode(spec: &JobSpec, limits: &crate::audio::AudioLimits) -> Result<Pcm, JobError> {
    let MediaSource::File { path } = &spec.media else {
        return Err(JobError::NotAFile);
    };
    let bytes = std::fs::read(path).map_err(JobError::Read)?;
    let ext = path
        .extension()
        .and_then(|e| e.to_str())
        .map(str::to_ascii_lowercase);
    decode_bytes(spec, &bytes, ext.as_deref(), limits)
}

/// Decodes audio bytes (`ext`: a format hint such as `wav`) and checks they fit the speaker
/// mode.
pub fn decode_bytes(
    spec: &JobSpec,
    bytes: &[u8],
    ext: Option<&str>,
    limits: &crate::audio::AudioLimits,
) -> Result<Pcm, JobError> {
    let pcm = audio::decode(bytes, ext, limits)?;
    spec.speakers.validate(pcm.channels.len())?;
    Ok(pcm)
}

/// The audio format of a file by its signature (`wav`, `flac`, `mp3`, `ogg`, `m4a`, `webm`),
/// or None when it is none the decoder reads: uploads are checked with this before they are
/// stored, without decoding.
pub fn sniff_audio(bytes: &[u8]) -> Option<&'static str> {
    let b = |i: usize, n: usize| bytes.get(i..i + n);
    if b(0, 4) == Some(b"RIFF") && b(8, 4) == Some(b"WAVE") {
        return Some("wav");
    }
    if b(0, 4) == Some(b"fLaC") {
        return Some("flac");
    }
    if b(0, 4) == Some(b"OggS") {
        return Some("ogg");
    }
    if b(0, 3) == Some(b"ID3") || (bytes.len() > 2 && bytes[0] == 0xFF && bytes[1] & 0xE0 == 0xE0) {
        return Some("mp3");
    }
    if b(4, 4) == Some(b"ftyp") {
        return Some("m4a");
    }
    if b(0, 4) == Some(&[0x1A, 0x45, 0xDF, 0xA3]) {
        return Some("webm");
    }
    None
}

/// [`run`] on audio already decoded by [`decode`].
pub fn run_decoded(
    spec: &JobSpec,
    pcm: &Pcm,
    engine: &Engine,
    progress: impl FnMut(Progress),
) -> Result<JobOutput, JobError> {
    let settings = ScribeSettings {
        job_name: spec.name.to_string(),
        speakers: spec.speakers,
        vocabulary: spec.vocabulary.clone(),
        template: spec.template,
        context: spec.context.clone(),
        llm: engine.llm().cloned(),
    };
    let out = engine.scribe(pcm, &settings, progress)?;
    let transcript_json = serde_json::to_vec_pretty(&out.transcript)?;
    let documentation_json = serde_json::to_vec_pretty(&out.documentation)?;
    let bundle = match &spec.chart {
        Some(ctx) => {
            let mapped = chart_bundle(
                engine.fhir(),
                engine.templates(),
                ctx,
                spec.template,
                &out.transcript,
                &out.documentation,
                &transcript_json,
                &documentation_json,
                None,
            )?;
            Some((serde_json::to_vec_pretty(&mapped.bundle)?, mapped))
        }
        None => None,
    };
    Ok(JobOutput {
        transcript: out.transcript,
        documentation: out.documentation,
        transcript_json,
        documentation_json,
        bundle,
        audio_secs: pcm.duration_secs(),
    })
}

/// The validated Bundle for a job's two files. The `Device` names the speech model recorded in
/// the transcript, else `asr_model` (a file from elsewhere); with neither it refuses to guess.
#[allow(clippy::too_many_arguments)]
pub fn chart_bundle(
    rules: &FhirRules,
    templates: &Templates,
    ctx: &EncounterContext,
    template: NoteTemplate,
    transcript: &TranscriptFile,
    documentation: &ClinicalDocumentationFile,
    transcript_json: &[u8],
    documentation_json: &[u8],
    asr_model: Option<&str>,
) -> Result<MappedBundle, JobError> {
    let conv = &transcript.conversation;
    let model = conv
        .extensions
        .as_ref()
        .and_then(|e| e.asr_model.as_deref())
        .or(asr_model)
        .ok_or(JobError::UnknownAsrModel)?;
    let markdown = crate::note::render_markdown(
        &documentation.clinical_documentation,
        templates.get(template),
    );
    let job_name = conv
        .job_name
        .clone()
        .unwrap_or_else(|| conv.conversation_id.clone());
    let recorded = DateTime::now();
    let outputs = fhir::JobOutputs {
        job_name: &job_name,
        template,
        conversation: conv,
        documentation: &documentation.clinical_documentation,
        note_markdown: &markdown,
        transcript_json,
        documentation_json,
        recorded: recorded.as_str(),
    };
    Ok(fhir::prepare(
        &rules.mapping,
        &rules.validator,
        ctx,
        &ScribeDevice::for_asr_model(model),
        &outputs,
    )?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::healthscribe::{Media, MedicalScribeChannelDefinition, MedicalScribeSettings};

    fn request(name: &str, uri: &str) -> StartMedicalScribeJobRequest {
        StartMedicalScribeJobRequest {
            medical_scribe_job_name: name.into(),
            media: Media {
                media_file_uri: Some(uri.into()),
                redacted_media_file_uri: None,
            },
            output_bucket_name: "outputs".into(),
            output_encryption_kms_key_id: None,
            kms_encryption_context: None,
            data_access_role_arn: None,
            settings: MedicalScribeSettings {
                show_speaker_labels: Some(true),
                max_speaker_labels: Some(2),
                ..Default::default()
            },
            channel_definitions: None,
            tags: None,
            medical_scribe_context: None,
        }
    }

    #[test]
    fn job_names_follow_aws_rule_and_stems_are_made_valid() {
        assert!(JobName::parse("visit-2026.12.03_a").is_ok());
        let e = JobName::parse("bad name").unwrap_err().to_string();
        assert!(e.contains("MedicalScribeJobName"), "{e}");
        assert!(JobName::parse("").is_err());
        assert!(JobName::parse(&"x".repeat(201)).is_err());
        assert_eq!(JobName::from_stem("my visit (2)").as_str(), "my-visit--2-");
        assert_eq!(JobName::from_stem("").as_str(), "job");
        assert!(JobName::parse(JobName::from_stem("ünïcode name").as_str()).is_ok());
    }

    #[test]
    fn file_media_must_lie_inside_the_configured_folder() {
        let dir = tempfile::tempdir().unwrap();
        let media = dir.path().join("media");
        std::fs::create_dir(&media).unwrap();
        std::fs::write(media.join("a.wav"), b"x").unwrap();
        std::fs::write(dir.path().join("secret.wav"), b"x").unwrap();
        let cfg = crate::config::JobsConfig {
            media_dir: Some(media.clone()),
            ..Default::default()
        };
        let ok = format!("file://{}", media.join("a.wav").display());
        let spec = JobSpec::from_request(&request("j", &ok), &cfg).unwrap();
        assert!(matches!(&spec.media, MediaSource::File { path } if path.ends_with("a.wav")));
        // ShowSpeakerLabels with MaxSpeakerLabels 2: diarization into at most 2 speakers.
        assert_eq!(spec.speakers, SpeakerMode::Diarize { max_speakers: 2 });
        let escape = format!("file://{}/../secret.wav", media.display());
        let e = JobSpec::from_request(&request("j", &escape), &cfg).unwrap_err();
        assert_eq!(
            e.to_string(),
            "Media.MediaFileUri: the file is not inside the configured media folder"
        );
        let none = crate::config::JobsConfig::default();
        let e = JobSpec::from_request(&request("j", &ok), &none).unwrap_err();
        assert!(e.to_string().contains("jobs.media_dir"), "{e}");
        // AWS's own rules come first, before any file is looked at.
        let e = JobSpec::from_request(&request("bad name", &ok), &cfg).unwrap_err();
        assert!(e.to_string().contains("MedicalScribeJobName"), "{e}");
    }

    #[test]
    fn uploads_and_urls_follow_the_configured_rules() {
        let cfg = crate::config::JobsConfig {
            media_url_prefixes: vec!["https://pacs.example.org/audio/".into()],
            ..Default::default()
        };
        let spec = |uri: &str| JobSpec::from_request(&request("j", uri), &cfg);
        assert_eq!(
            spec("media://3f1c-22").unwrap().media,
            MediaSource::Upload {
                id: "3f1c-22".into()
            }
        );
        assert!(spec("media://../x").is_err());
        assert_eq!(
            spec("https://pacs.example.org/audio/v1.wav").unwrap().media,
            MediaSource::Url {
                url: "https://pacs.example.org/audio/v1.wav".into()
            }
        );
        for refused in [
            "https://pacs.example.org/other/v1.wav",
            "https://pacs.example.org/audio/../secret",
            "https://pacs.example.org/audio/%2e%2e/secret",
            "https://pacs.example.org.evil.test/audio/x.wav",
            "http://169.254.169.254/latest/meta-data/",
        ] {
            let e = spec(refused).unwrap_err().to_string();
            assert!(e.contains("jobs.media_url_prefixes"), "{refused}: {e}");
        }
        let e = spec("s3://bucket/key.wav").unwrap_err().to_string();
        assert!(e.contains("/v1/media"), "{e}");
    }

    #[test]
    fn uploads_are_recognised_by_their_signature() {
        assert_eq!(sniff_audio(b"RIFF\0\0\0\0WAVEfmt "), Some("wav"));
        assert_eq!(sniff_audio(b"fLaC\0\0"), Some("flac"));
        assert_eq!(sniff_audio(b"OggS\0\0"), Some("ogg"));
        assert_eq!(sniff_audio(b"ID3\x04\0"), Some("mp3"));
        assert_eq!(sniff_audio(b"\0\0\0\x20ftypM4A "), Some("m4a"));
        assert_eq!(sniff_audio(b"{\"Media\": 1}"), None);
        assert_eq!(sniff_audio(b""), None);
    }

    #[test]
    fn channel_roles_and_vocabularies_come_from_the_request() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("a.wav"), b"x").unwrap();
        std::fs::write(dir.path().join("clinic.txt"), "metformin\nlisinopril\n").unwrap();
        let cfg = crate::config::JobsConfig {
            media_dir: Some(dir.path().into()),
            vocabularies_dir: Some(dir.path().into()),
            ..Default::default()
        };
        let uri = format!("file://{}", dir.path().join("a.wav").display());
        let mut req = request("j", &uri);
        req.settings = MedicalScribeSettings {
            channel_identification: Some(true),
            vocabulary_name: Some("clinic".into()),
            ..Default::default()
        };
        let def = |channel_id, participant_role| MedicalScribeChannelDefinition {
            channel_id,
            participant_role,
        };
        req.channel_definitions = Some(vec![
            def(0, MedicalScribeParticipantRole::Patient),
            def(1, MedicalScribeParticipantRole::Clinician),
        ]);
        let spec = JobSpec::from_request(&req, &cfg).unwrap();
        assert_eq!(
            spec.speakers,
            SpeakerMode::ChannelIdentification {
                clinician_channel: 1
            }
        );
        assert!(spec.vocabulary.is_some());
        req.channel_definitions = Some(vec![
            def(0, MedicalScribeParticipantRole::Patient),
            def(1, MedicalScribeParticipantRole::Patient),
        ]);
        assert!(matches!(
            JobSpec::from_request(&req, &cfg),
            Err(JobSpecError::ChannelRoles)
        ));
        req.channel_definitions = Some(vec![
            def(0, MedicalScribeParticipantRole::Clinician),
            def(1, MedicalScribeParticipantRole::Patient),
        ]);
        req.settings.vocabulary_name = Some("missing".into());
        let e = JobSpec::from_request(&req, &cfg).unwrap_err();
        assert_eq!(
            e.to_string(),
            "Settings.VocabularyName: no vocabulary named missing"
        );
    }
}

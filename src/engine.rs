//! The `Engine`: everything loaded once per process and shared by every job — a pool of
//! recognizers (whisper + VAD, one per concurrent job), the clinical analyzer, the note
//! templates, the FHIR mapping and validator, the note rewrite's settings and the audio limits.
//!
//! Architecture invariants: built from a [`Config`] (or from parts, in tests); no process-wide
//! state for models (the ONNX Runtime environment is the one exception: ort allows one per
//! process); knows no HTTP and no store. [`crate::jobs::run`] is how a job uses it. A job holds
//! a pooled [`Models`] only while it transcribes, and returns it even when it panics, so one
//! failed job never shrinks the pool or poisons it.

use std::sync::{Condvar, Mutex, MutexGuard, PoisonError};

use crate::asr::whisper::{WhisperOptions, WhisperRecognizer};
use crate::asr::{AsrError, SileroVad, VadParams};
use crate::audio::{AudioLimits, Pcm};
use crate::config::{Config, ConfigError};
use crate::fhir::{Mapping, Validator};
use crate::note::llm::LlmConfig;
use crate::note::{TemplateError, Templates};
use crate::pipeline::{
    self, Models, PipelineError, Progress, ScribeOutput, ScribeSettings, Shared,
};

#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error("loading note templates: {0}")]
    Templates(#[from] TemplateError),
    #[error("loading models: {0}")]
    Model(#[from] crate::models::ModelError),
    #[error("loading models: {0}")]
    Asr(#[from] AsrError),
    #[error("loading FHIR rules: {0}")]
    Fhir(String),
    #[error("loading speaker diarization models: {0}")]
    Diarize(String),
    #[error("an engine needs at least one recognizer")]
    NoWorkers,
}

/// The FHIR mapping rules and the profiles every Bundle is checked against.
pub struct FhirRules {
    pub mapping: Mapping,
    pub validator: Validator,
}

impl FhirRules {
    /// The configured files, else the bundled ones.
    pub fn load(cfg: &Config) -> Result<Self, EngineError> {
        let err = |e: &dyn std::fmt::Display| EngineError::Fhir(e.to_string());
        let mapping = match &cfg.fhir.mapping {
            Some(p) => Mapping::load(p).map_err(|e| err(&e))?,
            None => Mapping::bundled().map_err(|e| err(&e))?,
        };
        let validator = match &cfg.fhir.profiles {
            Some(d) => Validator::load(d).map_err(|e| err(&e))?,
            None => Validator::bundled().map_err(|e| err(&e))?,
        };
        Ok(Self { mapping, validator })
    }
}

/// The configured note templates: the built-ins plus the site's folder. Cheap, so callers that
/// must check a request before loading models (the CLI) can load them first.
pub fn load_templates(cfg: &Config) -> Result<Templates, TemplateError> {
    match &cfg.note.templates_dir {
        Some(dir) => Templates::load_dir(dir),
        None => Templates::builtin(),
    }
}

pub struct Engine {
    pool: Pool,
    shared: Shared,
    fhir: FhirRules,
    llm: Option<LlmConfig>,
    limits: AudioLimits,
    jobs: crate::config::JobsConfig,
    asr_model: Option<String>,
}

impl Engine {
    /// Loads everything the configuration names: `cfg.workers()` recognizers of the configured
    /// whisper model, each with its VAD; the analyzer; templates; FHIR rules.
    pub fn load(cfg: &Config) -> Result<Engine, EngineError> {
        Self::load_prepared(cfg, load_templates(cfg)?, FhirRules::load(cfg)?)
    }

    /// [`Engine::load`] with the cheap parts (templates, FHIR rules) already loaded by the
    /// caller, which checks them before it decodes audio or loads a model.
    pub fn load_prepared(
        cfg: &Config,
        templates: Templates,
        fhir: FhirRules,
    ) -> Result<Engine, EngineError> {
        let model = cfg.whisper_model();
        if !model.is_file() {
            return Err(crate::models::ModelError::NotFound { path: model }.into());
        }
        let vad_model = crate::models::locate_in(&cfg.models_dir(), crate::models::SILERO_VAD)?;
        let ort = cfg.ort_library();
        let opts = WhisperOptions {
            threads: cfg.threads(),
            ..WhisperOptions::default()
        };
        // Speaker diarization is loaded where its models are installed (`models fetch --only
        // segmentation,speaker-embedding`); a diarization job without them fails by name.
        let seg = cfg.models_dir().join(crate::models::SEGMENTATION);
        let emb = cfg.models_dir().join(crate::models::SPEAKER_EMBEDDING);
        let mut workers = Vec::with_capacity(cfg.workers());
        for _ in 0..cfg.workers() {
            let diarizer = if seg.is_file() && emb.is_file() {
                Some(
                    crate::diarize::acoustic::Diarizer::load(
                        &seg,
                        &emb,
                        &ort,
                        Default::default(),
                        cfg.threads(),
                    )
                    .map_err(|e| EngineError::Diarize(e.to_string()))?,
                )
            } else {
                None
            };
            workers.push(Models {
                recognizer: Box::new(WhisperRecognizer::load(&model, opts.clone())?),
                vad: SileroVad::load(&vad_model, &ort, VadParams::default())?,
                diarizer,
            });
        }
        let shared = Shared {
            analyzer: crate::clinical::Analyzer::load(),
            templates,
        };
        Self::from_parts(cfg, workers, shared, fhir)
    }

    /// An engine over models the caller built (tests use a stand-in recognizer this way).
    pub fn from_parts(
        cfg: &Config,
        workers: Vec<Models>,
        shared: Shared,
        fhir: FhirRules,
    ) -> Result<Engine, EngineError> {
        let asr_model = workers
            .first()
            .ok_or(EngineError::NoWorkers)?
            .recognizer
            .model_name();
        Ok(Engine {
            pool: Pool::new(workers),
            shared,
            fhir,
            llm: cfg.llm()?,
            limits: cfg.audio_limits(),
            jobs: cfg.jobs.clone(),
            asr_model,
        })
    }

    /// Runs the scribe pipeline on decoded audio with a pooled recognizer (waits for one when
    /// all are busy).
    pub fn scribe(
        &self,
        pcm: &Pcm,
        settings: &ScribeSettings,
        progress: impl FnMut(Progress),
    ) -> Result<ScribeOutput, PipelineError> {
        let mut models = self.pool.checkout();
        let _span = tracing::info_span!("scribe").entered();
        pipeline::run(&mut models, &self.shared, pcm, settings, progress)
    }

    pub fn templates(&self) -> &Templates {
        &self.shared.templates
    }
    pub fn shared(&self) -> &Shared {
        &self.shared
    }
    pub fn fhir(&self) -> &FhirRules {
        &self.fhir
    }
    pub fn llm(&self) -> Option<&LlmConfig> {
        self.llm.as_ref()
    }
    pub fn limits(&self) -> &AudioLimits {
        &self.limits
    }
    pub fn jobs_config(&self) -> &crate::config::JobsConfig {
        &self.jobs
    }
    /// The speech model the recognizers were loaded from (`whisper ggml-base.bin`), which the
    /// transcript records and the FHIR `Device` names.
    pub fn asr_model(&self) -> Option<&str> {
        self.asr_model.as_deref()
    }
    /// Recognizers in the pool (jobs that can transcribe at once).
    pub fn workers(&self) -> usize {
        self.pool.size
    }
}

/// A fixed set of [`Models`]; `checkout` blocks until one is free.
struct Pool {
    free: Mutex<Vec<Models>>,
    returned: Condvar,
    size: usize,
}

/// A checked-out [`Models`], returned to the pool on drop (also during a panic's unwind).
struct Checkout<'a> {
    pool: &'a Pool,
    models: Option<Models>,
}

impl Pool {
    fn new(models: Vec<Models>) -> Self {
        Self {
            size: models.len(),
            free: Mutex::new(models),
            returned: Condvar::new(),
        }
    }

    /// The free list holds only whole `Models` (pushes and pops are single operations), so a
    /// panic while the lock is held cannot leave it half-updated: recovering the guard is safe.
    fn lock(&self) -> MutexGuard<'_, Vec<Models>> {
        self.free.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn checkout(&self) -> Checkout<'_> {
        let mut free = self.lock();
        loop {
            if let Some(m) = free.pop() {
                return Checkout {
                    pool: self,
                    models: Some(m),
                };
            }
            free = self
                .returned
                .wait(free)
                .unwrap_or_else(PoisonError::into_inner);
        }
    }
}

impl std::ops::Deref for Checkout<'_> {
    type Target = Models;
    fn deref(&self) -> &Models {
        self.models.as_ref().expect("present until drop")
    }
}
impl std::ops::DerefMut for Checkout<'_> {
    fn deref_mut(&mut self) -> &mut Models {
        self.models.as_mut().expect("present until drop")
    }
}
impl Drop for Checkout<'_> {
    fn drop(&mut self) {
        if let Some(m) = self.models.take() {
            self.pool.lock().push(m);
            self.pool.returned.notify_one();
        }
    }
}

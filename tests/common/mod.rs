//! Shared fixtures for integration tests: the real models (fetched by `scripts/test.sh`) and
//! the bundled sample encounter.
#![allow(dead_code)]

use fhirscribe::asr::whisper::{WhisperOptions, WhisperRecognizer};
use fhirscribe::asr::{SileroVad, VadParams};
use fhirscribe::models;
use fhirscribe::pipeline::Models;
use std::path::PathBuf;

pub fn repo_path(rel: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(rel)
}

/// The models, loaded once per test binary and used by one test at a time: whisper's threads
/// spin-wait, so two concurrent decodes on a 2-core machine slow each other down many times over.
pub fn models() -> std::sync::MutexGuard<'static, Models> {
    static MODELS: std::sync::OnceLock<std::sync::Mutex<Models>> = std::sync::OnceLock::new();
    MODELS
        .get_or_init(|| std::sync::Mutex::new(load_models()))
        .lock()
        .unwrap_or_else(|e| e.into_inner())
}

/// Loads whisper tiny.en + silero VAD. Panics with the fix if models are missing: the test
/// command fetches them, so a missing model is a setup defect, never a reason to skip.
pub fn load_models() -> Models {
    let model = models::locate(models::WHISPER_TINY_EN)
        .expect("whisper model (run scripts/test.sh, which fetches models)");
    let recognizer =
        WhisperRecognizer::load(&model, WhisperOptions::default()).expect("load whisper");
    let vad = SileroVad::load(
        &models::locate(models::SILERO_VAD).expect("silero model"),
        &models::ort_library().expect("onnxruntime library"),
        VadParams::default(),
    )
    .expect("load VAD");
    Models {
        recognizer: Box::new(recognizer),
        vad,
        templates: fhirscribe::note::Templates::builtin().expect("built-in templates"),
    }
}

pub fn bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_fhirscribe"))
}
pub mod peers;

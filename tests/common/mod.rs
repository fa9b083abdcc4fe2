//! Shared fixtures for integration tests: the real models (fetched by `scripts/test.sh`) and
//! the bundled sample encounter.
#![allow(dead_code)]

use fhirscribe::config::Config;
use fhirscribe::engine::Engine;
use std::path::PathBuf;

pub fn repo_path(rel: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(rel)
}

/// The configuration tests run with: the environment's, with whisper tiny.en.
pub fn config() -> Config {
    let mut cfg = Config::load(None).expect("configuration");
    cfg.models.whisper = Some(fhirscribe::models::WHISPER_TINY_EN.into());
    cfg
}

/// The tiny.en model file (for tests that run the binary).
pub fn tiny_model() -> PathBuf {
    config().whisper_model()
}

/// The engine (whisper tiny.en + silero VAD), loaded once per test binary with one recognizer,
/// so tests transcribe one at a time: whisper's threads spin-wait, and two concurrent decodes
/// on a 2-core machine slow each other down many times over. Panics with the fix if models are
/// missing: the test command fetches them, so a missing model is a setup defect, never a reason
/// to skip.
pub fn engine() -> &'static Engine {
    static ENGINE: std::sync::OnceLock<Engine> = std::sync::OnceLock::new();
    ENGINE.get_or_init(|| {
        let mut cfg = config();
        cfg.models.workers = Some(1);
        Engine::load(&cfg).expect("load models (run scripts/test.sh, which fetches them)")
    })
}

pub fn bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_fhirscribe"))
}
pub mod browser;
pub mod peers;
pub mod postgres;
pub mod review;
pub mod serve;

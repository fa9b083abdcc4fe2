//! One typed configuration for everything the engine loads and every job needs, layered:
//! built-in defaults < TOML file (`--config FILE` or `FHIRSCRIBE_CONFIG`) < environment
//! (`FHIRSCRIBE_*`) < command-line flags (applied by the CLI on top of [`Config::load`]).
//!
//! Architecture invariant: this is the only library module that reads the process environment
//! (besides `telemetry`'s log filter and the `PYTHON` that `models fetch` runs pip with); every other module takes its settings as values, so a
//! test or the service can build them without touching the environment. `fhirscribe.example.toml`
//! at the repository root documents every key; a test keeps it parseable and complete.

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

use crate::note::llm::LlmConfig;

/// Why the configuration could not be loaded. Messages name the file or variable and the key,
/// never a secret's value.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config file {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("config file {path}: {message}")]
    Parse { path: PathBuf, message: String },
    #[error("environment variable {var}: {message}")]
    Env { var: &'static str, message: String },
    #[error("{key}: {message}")]
    Invalid { key: &'static str, message: String },
}

/// The whole configuration. Every field has a default, so an empty file is a valid config.
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// Root of fhirscribe's cache (models, store). Default: `/var/cache/fhirscribe` for root,
    /// else `${XDG_CACHE_HOME:-$HOME/.cache}/fhirscribe`, the same rule as `scripts/setup.sh`.
    pub home: Option<PathBuf>,
    pub models: ModelsConfig,
    pub audio: AudioConfig,
    pub note: NoteConfig,
    pub fhir: FhirConfig,
    pub jobs: JobsConfig,
}

#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct ModelsConfig {
    /// Folder `fhirscribe models fetch` fills (default: HOME/models).
    pub dir: Option<PathBuf>,
    /// The whisper ggml model: a path, or a file name inside `dir` (default: ggml-base.bin).
    pub whisper: Option<PathBuf>,
    /// ONNX Runtime shared library (default: the fetched one in `dir`).
    pub ort_library: Option<PathBuf>,
    /// Decoder threads per job (default: available cores, at most 8).
    pub threads: Option<usize>,
    /// Recognizers loaded at start = jobs that can transcribe at once (default 1).
    pub workers: Option<usize>,
}

#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct AudioConfig {
    /// Longest accepted recording, seconds.
    pub max_duration_secs: f64,
}

impl Default for AudioConfig {
    fn default() -> Self {
        Self {
            max_duration_secs: 4.0 * 3600.0,
        }
    }
}

#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct NoteConfig {
    /// Folder of site templates (JSON, same shape as mappings/templates/).
    pub templates_dir: Option<PathBuf>,
    /// Optional rephrasing of the note by an OpenAI-compatible model; absent = off.
    pub llm: Option<LlmSection>,
}

/// `[note.llm]`. The API key is better given as `FHIRSCRIBE_LLM_API_KEY` than in a file.
#[derive(Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct LlmSection {
    /// Up to the version path, e.g. `http://127.0.0.1:8080/v1`.
    pub base_url: String,
    #[serde(default = "default_llm_model")]
    pub model: String,
    #[serde(default)]
    pub api_key: Option<String>,
    #[serde(default = "default_llm_timeout_ms")]
    pub timeout_ms: u64,
}

impl std::fmt::Debug for LlmSection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LlmSection")
            .field("base_url", &self.base_url)
            .field("model", &self.model)
            .field("api_key", &self.api_key.as_ref().map(|_| "<redacted>"))
            .field("timeout_ms", &self.timeout_ms)
            .finish()
    }
}

fn default_llm_model() -> String {
    "default".into()
}
fn default_llm_timeout_ms() -> u64 {
    20_000
}

#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct FhirConfig {
    /// Mapping rules (default: the bundled mappings/fhir/mapping.json).
    pub mapping: Option<PathBuf>,
    /// Profiles folder laid out like fhir-profiles/ (default: the bundled profiles).
    pub profiles: Option<PathBuf>,
}

#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct JobsConfig {
    /// `file://` media of a job request must lie under this folder (unset: refused).
    pub media_dir: Option<PathBuf>,
    /// `Settings.VocabularyName` NAME is read from DIR/NAME.txt (unset: refused).
    pub vocabularies_dir: Option<PathBuf>,
}

/// The environment variables [`Config::load`] reads, with the key each sets.
pub const ENV_VARS: &[(&str, &str)] = &[
    ("FHIRSCRIBE_CONFIG", "(the config file)"),
    ("FHIRSCRIBE_HOME", "home"),
    ("FHIRSCRIBE_MODELS", "models.dir"),
    ("FHIRSCRIBE_WHISPER_MODEL", "models.whisper"),
    ("ORT_DYLIB_PATH", "models.ort_library"),
    ("FHIRSCRIBE_THREADS", "models.threads"),
    ("FHIRSCRIBE_WORKERS", "models.workers"),
    ("FHIRSCRIBE_MAX_DURATION_SECS", "audio.max_duration_secs"),
    ("FHIRSCRIBE_TEMPLATES_DIR", "note.templates_dir"),
    ("FHIRSCRIBE_LLM_BASE_URL", "note.llm.base_url"),
    ("FHIRSCRIBE_LLM_MODEL", "note.llm.model"),
    ("FHIRSCRIBE_LLM_API_KEY", "note.llm.api_key"),
    ("FHIRSCRIBE_LLM_TIMEOUT_MS", "note.llm.timeout_ms"),
    ("FHIRSCRIBE_FHIR_MAPPING", "fhir.mapping"),
    ("FHIRSCRIBE_FHIR_PROFILES", "fhir.profiles"),
    ("FHIRSCRIBE_MEDIA_DIR", "jobs.media_dir"),
    ("FHIRSCRIBE_VOCABULARIES_DIR", "jobs.vocabularies_dir"),
];

impl Config {
    /// Defaults, then the file (`file`, else `FHIRSCRIBE_CONFIG` when set), then the
    /// environment.
    pub fn load(file: Option<&Path>) -> Result<Config, ConfigError> {
        Self::load_with(file, &|k| std::env::var(k).ok().filter(|v| !v.is_empty()))
    }

    /// [`Config::load`] with the environment given as a function (tests).
    pub fn load_with(
        file: Option<&Path>,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<Config, ConfigError> {
        let from_env = env("FHIRSCRIBE_CONFIG").map(PathBuf::from);
        let mut cfg = match file.map(Path::to_path_buf).or(from_env) {
            Some(path) => Self::from_file(&path)?,
            None => Config::default(),
        };
        cfg.overlay_env(env)?;
        cfg.check()?;
        Ok(cfg)
    }

    pub fn from_file(path: &Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        Self::from_toml(&text).map_err(|message| ConfigError::Parse {
            path: path.to_path_buf(),
            message,
        })
    }

    pub fn from_toml(text: &str) -> Result<Config, String> {
        toml::from_str(text).map_err(|e| e.message().to_string())
    }

    fn overlay_env(&mut self, env: &dyn Fn(&str) -> Option<String>) -> Result<(), ConfigError> {
        let path = |var: &str| env(var).map(PathBuf::from);
        fn num<T: std::str::FromStr>(
            env: &dyn Fn(&str) -> Option<String>,
            var: &'static str,
        ) -> Result<Option<T>, ConfigError> {
            env(var)
                .map(|v| {
                    v.trim().parse().map_err(|_| ConfigError::Env {
                        var,
                        message: format!("not a number: {v:?}"),
                    })
                })
                .transpose()
        }
        set(&mut self.home, path("FHIRSCRIBE_HOME"));
        set(&mut self.models.dir, path("FHIRSCRIBE_MODELS"));
        set(&mut self.models.whisper, path("FHIRSCRIBE_WHISPER_MODEL"));
        set(&mut self.models.ort_library, path("ORT_DYLIB_PATH"));
        set(&mut self.models.threads, num(env, "FHIRSCRIBE_THREADS")?);
        set(&mut self.models.workers, num(env, "FHIRSCRIBE_WORKERS")?);
        if let Some(s) = num(env, "FHIRSCRIBE_MAX_DURATION_SECS")? {
            self.audio.max_duration_secs = s;
        }
        set(
            &mut self.note.templates_dir,
            path("FHIRSCRIBE_TEMPLATES_DIR"),
        );
        set(&mut self.fhir.mapping, path("FHIRSCRIBE_FHIR_MAPPING"));
        set(&mut self.fhir.profiles, path("FHIRSCRIBE_FHIR_PROFILES"));
        set(&mut self.jobs.media_dir, path("FHIRSCRIBE_MEDIA_DIR"));
        set(
            &mut self.jobs.vocabularies_dir,
            path("FHIRSCRIBE_VOCABULARIES_DIR"),
        );
        if let Some(url) = env("FHIRSCRIBE_LLM_BASE_URL") {
            let llm = self.note.llm.get_or_insert_with(|| LlmSection {
                base_url: String::new(),
                model: default_llm_model(),
                api_key: None,
                timeout_ms: default_llm_timeout_ms(),
            });
            llm.base_url = url;
        }
        if let Some(llm) = &mut self.note.llm {
            set(&mut llm.api_key, env("FHIRSCRIBE_LLM_API_KEY"));
            if let Some(m) = env("FHIRSCRIBE_LLM_MODEL") {
                llm.model = m;
            }
            if let Some(t) = num(env, "FHIRSCRIBE_LLM_TIMEOUT_MS")? {
                llm.timeout_ms = t;
            }
        }
        Ok(())
    }

    /// Rules a value's type cannot express; run after every layer is applied.
    pub fn check(&self) -> Result<(), ConfigError> {
        let invalid = |key, message: &str| ConfigError::Invalid {
            key,
            message: message.into(),
        };
        if self.models.threads == Some(0) {
            return Err(invalid("models.threads", "must be at least 1"));
        }
        if self.models.workers == Some(0) {
            return Err(invalid("models.workers", "must be at least 1"));
        }
        let d = self.audio.max_duration_secs;
        if !(d.is_finite() && d > 0.0) {
            return Err(invalid("audio.max_duration_secs", "must be above 0"));
        }
        self.llm()?;
        Ok(())
    }

    /// The cache root (see [`Config::home`]).
    pub fn home_dir(&self) -> PathBuf {
        self.home.clone().unwrap_or_else(default_home)
    }

    pub fn models_dir(&self) -> PathBuf {
        self.models
            .dir
            .clone()
            .unwrap_or_else(|| self.home_dir().join("models"))
    }

    /// The whisper model's path: the configured one (a bare file name is looked up in the
    /// models folder), else base.
    pub fn whisper_model(&self) -> PathBuf {
        let m = self
            .models
            .whisper
            .clone()
            .unwrap_or_else(|| PathBuf::from(crate::models::WHISPER_BASE));
        if m.components().count() == 1 && !m.exists() {
            self.models_dir().join(m)
        } else {
            m
        }
    }

    pub fn ort_library(&self) -> PathBuf {
        self.models
            .ort_library
            .clone()
            .unwrap_or_else(|| self.models_dir().join(crate::models::ORT_LIB))
    }

    pub fn threads(&self) -> usize {
        self.models.threads.unwrap_or_else(|| {
            std::thread::available_parallelism()
                .map(|n| n.get())
                .unwrap_or(1)
                .min(8)
        })
    }

    /// The audio limits: the configured longest recording, the other limits at their defaults.
    pub fn audio_limits(&self) -> crate::audio::AudioLimits {
        crate::audio::AudioLimits {
            max_duration_secs: self.audio.max_duration_secs,
            ..Default::default()
        }
    }

    pub fn workers(&self) -> usize {
        self.models.workers.unwrap_or(1)
    }

    /// The note rewrite's settings; `None` = off.
    pub fn llm(&self) -> Result<Option<LlmConfig>, ConfigError> {
        let Some(s) = &self.note.llm else {
            return Ok(None);
        };
        let base_url = s.base_url.trim();
        if base_url.is_empty() {
            return Ok(None);
        }
        if !(base_url.starts_with("http://") || base_url.starts_with("https://")) {
            return Err(ConfigError::Invalid {
                key: "note.llm.base_url",
                message: "must start with http:// or https://".into(),
            });
        }
        if s.timeout_ms == 0 {
            return Err(ConfigError::Invalid {
                key: "note.llm.timeout_ms",
                message: "must be above 0".into(),
            });
        }
        Ok(Some(LlmConfig {
            base_url: base_url.to_owned(),
            model: s.model.clone(),
            api_key: s.api_key.clone().filter(|k| !k.is_empty()),
            timeout: Duration::from_millis(s.timeout_ms),
        }))
    }
}

fn set<T>(slot: &mut Option<T>, value: Option<T>) {
    if value.is_some() {
        *slot = value;
    }
}

/// The default cache root, the same rule as `scripts/setup.sh` (so the models the setup
/// fetched, the peers the tests start and the binary all agree): `$FHIRSCRIBE_HOME`; else
/// `/var/cache/fhirscribe` for root; else `${XDG_CACHE_HOME:-$HOME/.cache}/fhirscribe`.
pub fn default_home() -> PathBuf {
    let var = |k: &str| std::env::var_os(k).filter(|v| !v.is_empty());
    if let Some(h) = var("FHIRSCRIBE_HOME") {
        return PathBuf::from(h);
    }
    if is_root() {
        return PathBuf::from("/var/cache/fhirscribe");
    }
    if let Some(x) = var("XDG_CACHE_HOME") {
        return PathBuf::from(x).join("fhirscribe");
    }
    var("HOME")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/tmp"))
        .join(".cache")
        .join("fhirscribe")
}

/// Whether this process runs as root (owner of `/proc/self`; no libc call needed).
fn is_root() -> bool {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata("/proc/self").is_ok_and(|m| m.uid() == 0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn env_of(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let m: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        move |k| m.get(k).cloned()
    }

    #[test]
    fn the_example_file_parses_and_names_every_key_and_variable() {
        let text = include_str!("../fhirscribe.example.toml");
        // Every commented-out key, uncommented, must parse: the example documents real keys.
        let uncommented: String = text
            .lines()
            .map(|l| {
                l.strip_prefix("# ")
                    .filter(|r| r.starts_with('[') || r.contains(" = "))
                    .unwrap_or(l)
            })
            .collect::<Vec<_>>()
            .join("\n");
        let cfg = Config::from_toml(&uncommented).expect("example parses uncommented");
        assert!(cfg.note.llm.is_some() && cfg.jobs.media_dir.is_some());
        for (var, _) in ENV_VARS {
            assert!(text.contains(var), "example does not mention {var}");
        }
    }

    #[test]
    fn layers_apply_in_order_file_then_environment() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("c.toml");
        std::fs::write(
            &f,
            "[models]\nthreads = 3\nworkers = 2\n[audio]\nmax_duration_secs = 600.0\n",
        )
        .unwrap();
        let cfg = Config::load_with(Some(&f), &env_of(&[("FHIRSCRIBE_THREADS", "5")])).unwrap();
        assert_eq!(cfg.threads(), 5, "environment beats the file");
        assert_eq!(cfg.workers(), 2, "file beats the default");
        assert_eq!(cfg.audio.max_duration_secs, 600.0);
        // FHIRSCRIBE_CONFIG names the file when no --config is given.
        let via_env =
            Config::load_with(None, &env_of(&[("FHIRSCRIBE_CONFIG", f.to_str().unwrap())]))
                .unwrap();
        assert_eq!(via_env.workers(), 2);
    }

    #[test]
    fn bad_values_name_their_key_or_variable_and_never_a_secret() {
        let e = Config::from_toml("[models]\nthreds = 2\n").unwrap_err();
        assert!(e.contains("threds"), "{e}");
        let e = Config::load_with(None, &env_of(&[("FHIRSCRIBE_THREADS", "four")])).unwrap_err();
        assert_eq!(
            e.to_string(),
            "environment variable FHIRSCRIBE_THREADS: not a number: \"four\""
        );
        let e = Config::load_with(None, &env_of(&[("FHIRSCRIBE_WORKERS", "0")])).unwrap_err();
        assert_eq!(e.to_string(), "models.workers: must be at least 1");
        let e = Config::load_with(
            None,
            &env_of(&[
                ("FHIRSCRIBE_LLM_BASE_URL", "127.0.0.1:8080"),
                ("FHIRSCRIBE_LLM_API_KEY", "s3cret"),
            ]),
        )
        .unwrap_err();
        assert!(!e.to_string().contains("s3cret"), "{e}");
        assert!(e.to_string().contains("note.llm.base_url"), "{e}");
    }

    #[test]
    fn llm_is_off_without_a_base_url_and_typed_with_one() {
        assert_eq!(Config::default().llm().unwrap(), None);
        let cfg = Config::load_with(
            None,
            &env_of(&[
                ("FHIRSCRIBE_LLM_BASE_URL", "http://127.0.0.1:8080/v1"),
                ("FHIRSCRIBE_LLM_TIMEOUT_MS", "1500"),
                ("FHIRSCRIBE_LLM_API_KEY", "s3cret"),
            ]),
        )
        .unwrap();
        let llm = cfg.llm().unwrap().unwrap();
        assert_eq!(llm.timeout, Duration::from_millis(1500));
        assert_eq!(llm.api_key.as_deref(), Some("s3cret"));
        assert!(!format!("{cfg:?}").contains("s3cret"));
    }

    #[test]
    fn a_bare_model_name_is_looked_up_in_the_models_folder() {
        let cfg = Config {
            models: ModelsConfig {
                dir: Some("/m".into()),
                whisper: Some("ggml-tiny.en.bin".into()),
                ..Default::default()
            },
            ..Default::default()
        };
        assert_eq!(cfg.whisper_model(), PathBuf::from("/m/ggml-tiny.en.bin"));
        assert_eq!(
            Config::default().home_dir().join("models"),
            Config::default().models_dir()
        );
    }
}

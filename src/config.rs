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
    /// `fhirscribe serve`: listening, limits, the store.
    pub server: ServerConfig,
    /// `fhirscribe serve`: who may call it (bearer JWTs from these issuers).
    pub auth: AuthConfig,
    /// The EHRs jobs may write back to, chosen by name in a job request (never a URL from it).
    pub ehr: Vec<EhrConfig>,
    /// The AWS-compatible endpoint (`POST /`, AWS JSON 1.1, SigV4) for HealthScribe SDK clients.
    pub aws_api: AwsApiConfig,
    /// The read-only FHIR API and Bulk Data export over what jobs produced.
    pub fhir_api: FhirApiConfig,
    /// The review app launched from the EHR.
    pub ui: UiConfig,
}

/// `[fhir_api]`: FHIR read/search and Bulk Data `$export` for clients that pull.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct FhirApiConfig {
    pub enabled: bool,
    /// Where the FHIR base is mounted (its URL is `server.public_url` + this).
    pub base_path: String,
    /// The token endpoint `.well-known/smart-configuration` and the CapabilityStatement name
    /// (default: discovered from the first `[[auth.issuers]]` at start-up).
    pub token_endpoint: Option<String>,
    /// The authorization endpoint for user-facing apps, when the issuer has one.
    pub authorization_endpoint: Option<String>,
    /// Hours a finished export's files are kept (or until the client deletes them).
    pub export_retention_hours: u64,
    /// Exports running at once; more kick-offs get 429 with Retry-After.
    pub max_running_exports: usize,
    /// Where export files are written (default: STORE_DIR/exports).
    pub export_dir: Option<PathBuf>,
    /// Groups for `Group/{id}/$export` (the group `all`, every patient with resources, is
    /// built in).
    pub groups: Vec<GroupConfig>,
}

impl Default for FhirApiConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            base_path: "/fhir/r4".into(),
            token_endpoint: None,
            authorization_endpoint: None,
            export_retention_hours: 24,
            max_running_exports: 2,
            export_dir: None,
            groups: Vec::new(),
        }
    }
}

/// One `[[fhir_api.groups]]`: a named list of patient ids.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct GroupConfig {
    pub id: String,
    pub patients: Vec<String>,
}

/// `[aws_api]`: access keys AWS SDKs sign requests with, and where their `s3://` media is.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct AwsApiConfig {
    /// The path SDKs post to (their `endpoint_url`'s path), default `/`.
    pub path: String,
    /// Largest accepted difference between a request's X-Amz-Date and this server's clock.
    pub max_skew_secs: u64,
    pub access_keys: Vec<AwsKeyConfig>,
    /// `s3://BUCKET/KEY` media is read from `DIR/KEY` (DIR must lie inside `jobs.media_dir`).
    pub s3: Vec<S3Mapping>,
}

impl Default for AwsApiConfig {
    fn default() -> Self {
        Self {
            path: "/".into(),
            max_skew_secs: 300,
            access_keys: Vec::new(),
            s3: Vec::new(),
        }
    }
}

#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct AwsKeyConfig {
    /// The access key id SDKs are configured with.
    pub id: String,
    /// The environment variable holding the secret access key (preferred), or …
    #[serde(default)]
    pub secret_env: Option<String>,
    /// … the secret itself (keep the file readable by the service only).
    #[serde(default)]
    pub secret: Option<String>,
    /// SMART-style scopes requests signed with this key get (default `system/scribe.cruds`).
    #[serde(default = "default_aws_scopes")]
    pub scopes: Vec<String>,
}

fn default_aws_scopes() -> Vec<String> {
    vec!["system/scribe.cruds".into()]
}

impl AwsKeyConfig {
    /// The secret, from its environment variable or the file; never printed.
    pub fn resolve_secret(&self) -> Result<String, ConfigError> {
        if let Some(var) = &self.secret_env {
            return std::env::var(var)
                .ok()
                .filter(|v| !v.is_empty())
                .ok_or_else(|| ConfigError::Invalid {
                    key: "aws_api.access_keys.secret_env",
                    message: format!("{}: the variable {var} is not set", self.id),
                });
        }
        self.secret
            .clone()
            .filter(|s| !s.is_empty())
            .ok_or_else(|| ConfigError::Invalid {
                key: "aws_api.access_keys",
                message: format!("{}: set secret_env (or secret)", self.id),
            })
    }
}

/// Where a bucket's objects are: a local folder (inside `jobs.media_dir`) or an http(s) URL
/// prefix (one of `jobs.media_url_prefixes`); exactly one of them.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct S3Mapping {
    pub bucket: String,
    #[serde(default)]
    pub dir: Option<PathBuf>,
    #[serde(default)]
    pub url: Option<String>,
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
    /// `http(s)://` media is fetched only when the URI starts with one of these prefixes
    /// (empty: refused); the server never requests any other URL a client names.
    pub media_url_prefixes: Vec<String>,
}

/// The service's own settings (`fhirscribe serve`).
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct ServerConfig {
    /// Address to listen on. FHIRSCRIBE_LISTEN
    pub listen: String,
    /// This service's URL as clients reach it: the audience tokens must carry and the base of
    /// the output URIs (default: `http://` + listen). FHIRSCRIBE_PUBLIC_URL
    pub public_url: Option<String>,
    /// The sled store folder (default: HOME/store). FHIRSCRIBE_STORE_DIR
    pub store_dir: Option<PathBuf>,
    /// Largest accepted upload or request body, bytes.
    pub max_upload_bytes: usize,
    /// Seconds a client may take to send a request (headers and body).
    pub request_timeout_secs: u64,
    /// Jobs waiting for a worker before new ones are refused (LimitExceededException).
    pub queue_capacity: usize,
    /// Jobs kept in the store (any status) before new ones are refused.
    pub max_jobs: usize,
    /// Keep a job's audio after it completes (default: deleted). FHIRSCRIBE_RETAIN_AUDIO
    pub retain_audio: bool,
    /// Requests per minute one client (token `sub`/`client_id`) may make.
    pub rate_limit_per_minute: u32,
    /// On SIGTERM: seconds to let running jobs finish before they are left for the next start.
    pub shutdown_grace_secs: u64,
    /// HTTP threads (default: 2).
    pub http_workers: usize,
    /// The store's page cache, MiB (memory stays flat whatever the store holds).
    pub store_cache_mib: u64,
    /// Where jobs, audio, outputs, the outbox and the audit trail live: `sled:PATH` (one
    /// process; the default is `sled:` + `store_dir`) or `postgres://USER[:PASSWORD]@HOST:PORT/DB`
    /// (`?sslmode=require` for TLS), which any number of `serve` processes may share.
    /// FHIRSCRIBE_STORE_URL
    pub store_url: Option<String>,
    /// Connections each process keeps to a PostgreSQL store.
    pub store_pool_size: u32,
    /// PEM root certificates that sign the database server's certificate (TLS; without it the
    /// system's trust store). FHIRSCRIBE_STORE_CA_FILE
    pub store_ca_file: Option<PathBuf>,
    /// What this process does: `all` (API and workers), `api` (no workers, no delivery) or
    /// `worker` (runs jobs and delivers Bundles; serves only the probes and metrics). `api`
    /// and `worker` need a shared (PostgreSQL) store. FHIRSCRIBE_MODE
    pub mode: ServeMode,
    /// This process's name in leases and the audit trail (default: host-pid-random).
    /// FHIRSCRIBE_NODE_NAME
    pub node_name: Option<String>,
    /// Seconds a claimed job stays a node's without its heartbeat (shared store): how long
    /// a dead node's job waits before another node runs it.
    pub job_lease_secs: u64,
}

/// [`ServerConfig::mode`].
#[derive(Debug, Clone, Copy, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum ServeMode {
    #[default]
    All,
    Api,
    Worker,
}

impl std::str::FromStr for ServeMode {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "all" => Ok(Self::All),
            "api" => Ok(Self::Api),
            "worker" => Ok(Self::Worker),
            _ => Err(format!("{s:?} is not one of all, api, worker")),
        }
    }
}

/// [`ServerConfig::store_url`], parsed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StoreUrl {
    Sled(PathBuf),
    Postgres(String),
}

impl StoreUrl {
    pub fn parse(url: &str) -> Result<Self, String> {
        if let Some(path) = url.strip_prefix("sled:") {
            if path.is_empty() {
                return Err("sled: needs a folder (sled:/var/lib/fhirscribe/store)".into());
            }
            return Ok(Self::Sled(PathBuf::from(path)));
        }
        if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            return Ok(Self::Postgres(url.to_owned()));
        }
        Err("must start with sled: or postgres://".into())
    }

    /// For logs and `--check-config`: the URL without its password.
    pub fn redacted(&self) -> String {
        match self {
            Self::Sled(p) => format!("sled:{}", p.display()),
            Self::Postgres(u) => redact_password(u),
        }
    }
}

/// `postgres://user:secret@host/db` → `postgres://user:***@host/db`.
fn redact_password(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    let (auth, tail) = match rest.find('@') {
        Some(at) => (&rest[..at], &rest[at..]),
        None => return url.to_owned(),
    };
    match auth.split_once(':') {
        Some((user, _)) => format!("{scheme}://{user}:***{tail}"),
        None => url.to_owned(),
    }
}

impl Default for ServerConfig {
    fn default() -> Self {
        Self {
            listen: "127.0.0.1:8080".into(),
            public_url: None,
            store_dir: None,
            max_upload_bytes: 256 << 20,
            request_timeout_secs: 60,
            queue_capacity: 64,
            max_jobs: 10_000,
            retain_audio: false,
            rate_limit_per_minute: 600,
            shutdown_grace_secs: 30,
            http_workers: 2,
            store_cache_mib: 128,
            store_url: None,
            store_pool_size: 8,
            store_ca_file: None,
            mode: ServeMode::All,
            node_name: None,
            job_lease_secs: 60,
        }
    }
}

#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct AuthConfig {
    /// Trusted token issuers; a token from any other issuer is refused.
    pub issuers: Vec<IssuerConfig>,
    /// Clock leeway for `exp`/`nbf`, seconds.
    pub leeway_secs: u64,
    /// Least seconds between two JWKS downloads of one issuer (an unknown `kid` triggers one).
    pub jwks_min_refresh_secs: u64,
}

impl Default for AuthConfig {
    fn default() -> Self {
        Self {
            issuers: Vec::new(),
            leeway_secs: 30,
            jwks_min_refresh_secs: 10,
        }
    }
}

#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct IssuerConfig {
    /// The exact `iss` of its tokens.
    pub issuer: String,
    /// Accepted signing algorithms: RS256, RS384, ES256, ES384 (default RS256).
    #[serde(default = "default_algorithms")]
    pub algorithms: Vec<String>,
    /// Its JWKS (default: from its discovery document).
    #[serde(default)]
    pub jwks_uri: Option<String>,
}

fn default_algorithms() -> Vec<String> {
    vec!["RS256".into()]
}

/// When a completed job's Bundle goes to the EHR.
#[derive(Debug, Clone, Copy, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum WriteBack {
    /// As soon as the job completes.
    #[default]
    OnCompletion,
    /// Only after a clinician signs the note on the review page.
    AfterReview,
}

/// One EHR's FHIR server.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct EhrConfig {
    /// What job requests name it by (`Extensions.Fhir.Ehr`).
    pub name: String,
    /// FHIR base URL.
    pub fhir_base: String,
    #[serde(default)]
    pub write_back: WriteBack,
    /// HTTP timeout per request, seconds.
    #[serde(default = "default_ehr_timeout")]
    pub timeout_secs: u64,
    /// SMART Backend Services registration (unset: no Authorization header).
    #[serde(default)]
    pub smart: Option<EhrSmartConfig>,
    /// The review app's registration with this EHR (SMART App Launch; unset: no launch).
    #[serde(default)]
    pub app: Option<EhrAppConfig>,
}

/// `[ehr.app]`: the review app as a public SMART client of this EHR (PKCE S256).
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct EhrAppConfig {
    pub client_id: String,
    /// As registered with the EHR (default: PUBLIC_URL/callback).
    #[serde(default)]
    pub redirect_uri: Option<String>,
    /// Space-separated scopes (default: launch openid fhirUser and the patient scopes the
    /// review and sign steps need).
    #[serde(default)]
    pub scope: Option<String>,
    /// A confidential asymmetric client (`private_key_jwt`): the PEM file of its private key
    /// (the key itself never sits in this file), the registered key's `kid`, RS384 or ES384.
    /// Without them the app is a public client (PKCE only).
    #[serde(default)]
    pub private_key_file: Option<PathBuf>,
    #[serde(default)]
    pub key_id: Option<String>,
    #[serde(default)]
    pub alg: Option<String>,
}

/// `[ui]`: the review app's sessions.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct UiConfig {
    /// A session unused this long ends.
    pub session_idle_secs: u64,
    /// A session this old ends, used or not.
    pub session_max_secs: u64,
    /// Who writes the signed note to the EHR: `user` (the clinician's own token, at once; the
    /// EHR records the clinician as the writer) or `backend` (the service's SMART Backend
    /// Services client, through the durable outbox).
    pub sign_write: SignWrite,
}

/// [`UiConfig::sign_write`].
#[derive(Debug, Clone, Copy, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum SignWrite {
    #[default]
    User,
    Backend,
}

impl Default for UiConfig {
    fn default() -> Self {
        Self {
            session_idle_secs: 1800,
            session_max_secs: 8 * 3600,
            sign_write: SignWrite::User,
        }
    }
}

fn default_ehr_timeout() -> u64 {
    60
}

#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct EhrSmartConfig {
    pub client_id: String,
    /// PEM file of the client's private key (the key itself never sits in this file).
    pub private_key_file: PathBuf,
    pub key_id: String,
    /// RS384 or ES384.
    #[serde(default = "default_smart_alg")]
    pub alg: String,
    /// Space-separated scopes (default: create and search on the types fhirscribe writes).
    #[serde(default)]
    pub scope: Option<String>,
    /// Skips discovery when set.
    #[serde(default)]
    pub token_endpoint: Option<String>,
}

fn default_smart_alg() -> String {
    "RS384".into()
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
    ("FHIRSCRIBE_LISTEN", "server.listen"),
    ("FHIRSCRIBE_PUBLIC_URL", "server.public_url"),
    ("FHIRSCRIBE_STORE_DIR", "server.store_dir"),
    ("FHIRSCRIBE_STORE_URL", "server.store_url"),
    ("FHIRSCRIBE_STORE_CA_FILE", "server.store_ca_file"),
    ("FHIRSCRIBE_MODE", "server.mode"),
    ("FHIRSCRIBE_NODE_NAME", "server.node_name"),
    ("FHIRSCRIBE_RETAIN_AUDIO", "server.retain_audio"),
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
        if let Some(l) = env("FHIRSCRIBE_LISTEN") {
            self.server.listen = l;
        }
        set(&mut self.server.public_url, env("FHIRSCRIBE_PUBLIC_URL"));
        set(&mut self.server.store_dir, path("FHIRSCRIBE_STORE_DIR"));
        set(&mut self.server.store_url, env("FHIRSCRIBE_STORE_URL"));
        set(
            &mut self.server.store_ca_file,
            path("FHIRSCRIBE_STORE_CA_FILE"),
        );
        set(&mut self.server.node_name, env("FHIRSCRIBE_NODE_NAME"));
        if let Some(m) = env("FHIRSCRIBE_MODE") {
            self.server.mode = m.trim().parse().map_err(|message| ConfigError::Env {
                var: "FHIRSCRIBE_MODE",
                message,
            })?;
        }
        if let Some(v) = env("FHIRSCRIBE_RETAIN_AUDIO") {
            self.server.retain_audio = match v.trim() {
                "1" | "true" | "yes" => true,
                "0" | "false" | "no" => false,
                _ => {
                    return Err(ConfigError::Env {
                        var: "FHIRSCRIBE_RETAIN_AUDIO",
                        message: format!("not true/false: {v:?}"),
                    })
                }
            };
        }
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
        self.check_service()?;
        Ok(())
    }

    /// The service's keys: well-formed URLs, unique EHR names, usable limits.
    fn check_service(&self) -> Result<(), ConfigError> {
        let invalid = |key, message: String| ConfigError::Invalid { key, message };
        let is_url = |u: &str| u.starts_with("http://") || u.starts_with("https://");
        let srv = &self.server;
        if srv.listen.parse::<std::net::SocketAddr>().is_err() {
            return Err(invalid(
                "server.listen",
                format!("not an ADDRESS:PORT: {:?}", srv.listen),
            ));
        }
        let store = self
            .store_url()
            .map_err(|m| invalid("server.store_url", m))?;
        if srv.mode != ServeMode::All && !matches!(store, StoreUrl::Postgres(_)) {
            return Err(invalid(
                "server.mode",
                "api and worker processes share their jobs through a PostgreSQL store: set \
                 server.store_url to postgres://… (an embedded sled store belongs to one process)"
                    .into(),
            ));
        }
        if let Some(u) = &srv.public_url {
            if !is_url(u) {
                return Err(invalid(
                    "server.public_url",
                    "must start with http:// or https://".into(),
                ));
            }
        }
        for (key, v) in [
            ("server.max_upload_bytes", srv.max_upload_bytes as u64),
            ("server.request_timeout_secs", srv.request_timeout_secs),
            ("server.queue_capacity", srv.queue_capacity as u64),
            ("server.max_jobs", srv.max_jobs as u64),
            (
                "server.rate_limit_per_minute",
                srv.rate_limit_per_minute as u64,
            ),
            ("server.http_workers", srv.http_workers as u64),
            ("server.store_pool_size", srv.store_pool_size as u64),
            ("server.job_lease_secs", srv.job_lease_secs),
        ] {
            if v == 0 {
                return Err(invalid(key, "must be at least 1".into()));
            }
        }
        for p in &self.jobs.media_url_prefixes {
            // A bare scheme or host would let a client name any path on it: a prefix must end
            // with the path separator.
            if !is_url(p)
                || !p
                    .trim_start_matches("https://")
                    .trim_start_matches("http://")
                    .contains('/')
            {
                return Err(invalid(
                    "jobs.media_url_prefixes",
                    format!(
                        "{p:?} must be an http(s) URL ending in a path, e.g. https://host/audio/"
                    ),
                ));
            }
        }
        for i in &self.auth.issuers {
            if !is_url(&i.issuer) {
                return Err(invalid(
                    "auth.issuers.issuer",
                    format!("{:?} is not an http(s) URL", i.issuer),
                ));
            }
            for a in &i.algorithms {
                if !matches!(a.as_str(), "RS256" | "RS384" | "ES256" | "ES384") {
                    return Err(invalid(
                        "auth.issuers.algorithms",
                        format!("{a} is not accepted (RS256, RS384, ES256 or ES384)"),
                    ));
                }
            }
        }
        for m in &self.aws_api.s3 {
            if m.dir.is_some() == m.url.is_some() {
                return Err(invalid(
                    "aws_api.s3",
                    format!("bucket {}: set exactly one of dir and url", m.bucket),
                ));
            }
        }
        for (key, p) in [
            ("aws_api.path", &self.aws_api.path),
            ("fhir_api.base_path", &self.fhir_api.base_path),
        ] {
            let ok = p.starts_with('/')
                && p.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"/-_.".contains(&b))
                && !p.contains("//");
            if !ok {
                return Err(invalid(
                    key,
                    format!("{p:?} must be a path like /fhir/r4 (letters, digits, / - _ .)"),
                ));
            }
        }
        if self.fhir_api.enabled
            && [
                "/",
                "/v1",
                "/healthz",
                "/readyz",
                "/metrics",
                "/openapi.json",
            ]
            .contains(&self.fhir_api.base_path.trim_end_matches('/'))
        {
            return Err(invalid(
                "fhir_api.base_path",
                format!(
                    "{:?} collides with the service's own routes",
                    self.fhir_api.base_path
                ),
            ));
        }
        for g in &self.fhir_api.groups {
            let id_ok = |v: &str| {
                (1..=64).contains(&v.len())
                    && v.bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.')
            };
            if !id_ok(&g.id) {
                return Err(invalid(
                    "fhir_api.groups.id",
                    format!("{:?} is not a FHIR id", g.id),
                ));
            }
            if let Some(p) = g.patients.iter().find(|p| !id_ok(p)) {
                return Err(invalid(
                    "fhir_api.groups.patients",
                    format!("group {}: {p:?} is not a patient id", g.id),
                ));
            }
        }
        let mut names = std::collections::BTreeSet::new();
        for e in &self.ehr {
            if crate::healthscribe::validate_job_name(&e.name).is_err() {
                return Err(invalid(
                    "ehr.name",
                    format!("{:?} must be 1-200 of 0-9a-zA-Z._-", e.name),
                ));
            }
            if !names.insert(e.name.as_str()) {
                return Err(invalid(
                    "ehr.name",
                    format!("{} is configured twice", e.name),
                ));
            }
            if !is_url(&e.fhir_base) {
                return Err(invalid(
                    "ehr.fhir_base",
                    format!("{}: must start with http:// or https://", e.name),
                ));
            }
            if let Some(s) = &e.smart {
                if !matches!(s.alg.as_str(), "RS384" | "ES384") {
                    return Err(invalid(
                        "ehr.smart.alg",
                        format!("{}: RS384 or ES384", e.name),
                    ));
                }
            }
        }
        Ok(())
    }

    /// This service's URL (token audience, output URIs), without a trailing slash.
    pub fn public_url(&self) -> String {
        self.server
            .public_url
            .clone()
            .unwrap_or_else(|| format!("http://{}", self.server.listen))
            .trim_end_matches('/')
            .to_owned()
    }

    /// Where the service's jobs live ([`ServerConfig::store_url`], else sled in
    /// [`Config::store_dir`]).
    pub fn store_url(&self) -> Result<StoreUrl, String> {
        match &self.server.store_url {
            Some(u) => StoreUrl::parse(u),
            None => Ok(StoreUrl::Sled(self.store_dir())),
        }
    }

    /// The sled folder: the whole store, or with a PostgreSQL store this process's own state
    /// (launch sessions, reviews, the FHIR read index).
    pub fn store_dir(&self) -> PathBuf {
        if let Some(Ok(StoreUrl::Sled(p))) = self.server.store_url.as_deref().map(StoreUrl::parse) {
            return p;
        }
        self.server
            .store_dir
            .clone()
            .unwrap_or_else(|| self.home_dir().join("store"))
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

    /// The service's worker count: `models.workers` when set, else as many jobs as the cores
    /// allow at `threads()` decoder threads each, and at most one per 2 GiB of available
    /// memory (a recognizer with base and a long recording's buffers stays well under that).
    pub fn service_workers(&self) -> usize {
        if let Some(n) = self.models.workers {
            return n;
        }
        let cores = std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1);
        let by_cores = cores / self.threads().max(1);
        let mem_gib = std::fs::read_to_string("/proc/meminfo")
            .ok()
            .and_then(|m| {
                m.lines()
                    .find(|l| l.starts_with("MemAvailable:"))
                    .and_then(|l| l.split_whitespace().nth(1)?.parse::<u64>().ok())
            })
            .map_or(2, |kb| (kb / (1 << 20)) as usize);
        by_cores.min(mem_gib / 2).max(1)
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

    #[test]
    fn store_urls_parse_redact_and_shared_modes_need_postgres() {
        assert_eq!(
            StoreUrl::parse("sled:/srv/store").unwrap(),
            StoreUrl::Sled("/srv/store".into())
        );
        assert!(StoreUrl::parse("sled:").is_err());
        assert!(StoreUrl::parse("mysql://x").is_err());
        let pg = StoreUrl::parse("postgres://scribe:s3cret@db:5432/fhirscribe").unwrap();
        assert_eq!(pg.redacted(), "postgres://scribe:***@db:5432/fhirscribe");
        assert!(!pg.redacted().contains("s3cret"));
        let env = |k: &str| match k {
            "FHIRSCRIBE_MODE" => Some("worker".to_string()),
            _ => None,
        };
        let e = Config::load_with(None, &env).unwrap_err().to_string();
        assert!(e.contains("server.mode") && e.contains("PostgreSQL"), "{e}");
        let env = |k: &str| match k {
            "FHIRSCRIBE_MODE" => Some("worker".to_string()),
            "FHIRSCRIBE_STORE_URL" => Some("postgres://u@localhost/db".to_string()),
            _ => None,
        };
        let c = Config::load_with(None, &env).unwrap();
        assert_eq!(c.server.mode, ServeMode::Worker);
        let env = |k: &str| (k == "FHIRSCRIBE_MODE").then(|| "both".to_string());
        assert!(Config::load_with(None, &env).is_err());
        let env = |k: &str| (k == "FHIRSCRIBE_STORE_URL").then(|| "sled:/tmp/x".to_string());
        assert_eq!(
            Config::load_with(None, &env).unwrap().store_dir(),
            PathBuf::from("/tmp/x")
        );
    }
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
        for (toml, key) in [
            ("[fhir_api]\nbase_path = \"fhir\"\n", "fhir_api.base_path"),
            ("[fhir_api]\nbase_path = \"/v1\"\n", "fhir_api.base_path"),
            ("[aws_api]\npath = \"/a b\"\n", "aws_api.path"),
            (
                "[[fhir_api.groups]]\nid = \"a/b\"\npatients = []\n",
                "fhir_api.groups.id",
            ),
        ] {
            let cfg = Config::from_toml(toml).unwrap();
            let e = cfg.check().unwrap_err().to_string();
            assert!(e.starts_with(key), "{toml}: {e}");
        }
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

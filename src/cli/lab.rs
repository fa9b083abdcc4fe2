//! `fhirscribe eval …` and `fhirscribe clinical build`: the lab's commands (`crate::lab`), kept
//! apart from the product's so that only this file wires evaluation and training into the CLI.

use super::fhir::{self, FhirTarget, SmartArgs};
use crate::asr;
use crate::healthscribe::TranscriptFile;
use crate::lab;
use anyhow::{bail, Context, Result};
use clap::Subcommand;
use std::path::{Path, PathBuf};

#[derive(Subcommand)]
pub enum ClinicalCommand {
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
pub enum EvalCommand {
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
    /// Notes on ACI-BENCH: ROUGE (full note and divisions), evidence support, fact recall and
    /// register figures (fillers, broken agreement, patient first person; gold notes alike).
    Notes {
        /// The aci-bench folder.
        #[arg(long)]
        data: PathBuf,
        /// A split of the folder (train, valid, clinicalnlp_taskB_test1, …), or `train-dev` /
        /// `train-heldout`: train without / with only every fifth encounter (held out).
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
        /// Print each sentence of our notes that the register rules flag (filler, broken
        /// agreement). Prints note text: for development splits (train-dev, valid) only.
        #[arg(long)]
        show_register: bool,
        /// Write each generated note into this folder as `ID.md` and `ID.json`.
        #[arg(long)]
        write_notes: Option<PathBuf>,
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
    /// The shared job queue without the pipeline (PostgreSQL; use a throwaway database): claim
    /// latency p50/p99 as one worker drains JOBS queued jobs, and claims per second with a no-op
    /// pipeline for each worker count.
    Queue {
        /// postgres://USER@HOST:PORT/DB
        #[arg(long)]
        store_url: String,
        #[arg(long, default_value_t = 100)]
        jobs: usize,
        /// Concurrent claimers to measure (comma-separated).
        #[arg(long, value_delimiter = ',', default_value = "1,2,4,8,16")]
        workers: Vec<usize>,
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
        target: FhirTarget,
        /// A FHIR server to deliver to (also measures delivery).
        #[arg(long)]
        fhir_base: Option<String>,
        #[command(flatten)]
        smart: SmartArgs,
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
    /// Speaker diarization: DER (0.25 s collar: missed + false alarm + confusion, over reference
    /// speech) and role accuracy (share of aligned reference words whose segment has the
    /// reference turn's role, CLINICIAN or PATIENT).
    ///
    /// Reference format (TSV, `#` comment lines): a header naming the columns `speaker`,
    /// `role` (optional: CLINICIAN or PATIENT; without it `speaker` is the role, as in
    /// samples/*.ref.tsv), `begin_s`, `end_s`, `text`; one row per turn, turns may overlap
    /// (scripts/render_diarization_set.py writes NAME.ref.tsv). Directory mode: REF a folder of
    /// NAME.ref.tsv and TRANSCRIPT a folder of NAME/transcript.json; prints each file and the
    /// total (summed errors / summed reference speech; words summed).
    Diarization {
        #[arg(long)]
        reference: PathBuf,
        #[arg(long)]
        transcript: PathBuf,
    },
}

/// `fhirscribe clinical …`.
pub fn clinical(command: ClinicalCommand) -> Result<()> {
    match command {
        ClinicalCommand::Build { data, repo } => {
            let r = lab::train::clinical::build_all(&data, &repo).map_err(anyhow::Error::msg)?;
            outln!("{r:?}");
        }
    }
    Ok(())
}

/// `fhirscribe eval …`.
pub fn eval(command: EvalCommand) -> Result<()> {
    match command {
        EvalCommand::Wer {
            references,
            hypotheses,
            terms,
        } => eval_wer(&references, &hypotheses, terms.as_deref())?,
        EvalCommand::Diarization {
            reference,
            transcript,
        } => eval_diarization(&reference, &transcript)?,
        EvalCommand::Segments {
            reference,
            transcript,
            tolerance,
        } => {
            let r = lab::segments::check(
                &std::fs::read_to_string(&reference)?,
                &read_transcript(&transcript)?,
                tolerance,
            )
            .map_err(|e| anyhow::anyhow!("{}: {e}", reference.display()))?;
            outln!("{r}");
        }
        EvalCommand::Queue {
            store_url,
            jobs,
            workers,
        } => {
            let store = crate::store::pg::PgJobStore::connect(
                &store_url,
                workers.iter().copied().max().unwrap_or(1) as u32 + 2,
            )?;
            outln!("workers  jobs  claims/s  claim p50 ms  claim p99 ms");
            for w in workers {
                let f = crate::lab::queue::measure(&store, w.max(1), jobs)?;
                outln!(
                    "{:>7}  {:>4}  {:>8.0}  {:>12.2}  {:>12.2}",
                    f.workers,
                    f.jobs,
                    f.per_sec(),
                    f.p50_ms,
                    f.p99_ms
                );
            }
        }
        EvalCommand::Fhir {
            reference,
            bundles,
            target,
            fhir_base,
            smart,
        } => fhir::eval_throughput(&reference, bundles, &target, fhir_base.as_deref(), &smart)?,
        EvalCommand::Chart {
            data,
            split,
            fhir_mapping,
            show_codes,
        } => {
            let mapping = match &fhir_mapping {
                Some(p) => crate::fhir::Mapping::load(p)?,
                None => crate::fhir::Mapping::bundled()?,
            };
            outln!(
                "{}",
                lab::chart::evaluate(&data, &split, &mapping, show_codes)?
            );
        }
        EvalCommand::Sections { data } => {
            outln!(
                "{}",
                lab::clinical::eval_sections(&data).map_err(anyhow::Error::msg)?
            )
        }
        EvalCommand::Entities { data } => {
            outln!(
                "{}",
                lab::clinical::eval_entities(&data).map_err(anyhow::Error::msg)?
            )
        }
        EvalCommand::Conversational { data } => {
            for (name, r) in
                lab::clinical::eval_conversational(data.as_deref()).map_err(anyhow::Error::msg)?
            {
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
            show_register,
            write_notes,
        } => eval_notes(
            &data,
            &split,
            &template,
            vocab,
            fallback_analyzer,
            (show_failures, show_register),
            write_notes.as_deref(),
        )?,
    }
    Ok(())
}

fn eval_notes(
    data: &Path,
    split: &str,
    template: &str,
    vocab: Option<PathBuf>,
    fallback_analyzer: bool,
    (show_failures, show_register): (bool, bool),
    write_notes: Option<&Path>,
) -> Result<()> {
    let templates = crate::note::Templates::builtin()?;
    let tpl = templates
        .by_name(template)
        .with_context(|| format!("unknown template {template}"))?;
    let vocab = vocab.unwrap_or_else(|| data.join("../vocab"));
    let lex = lab::facts::Lexicon::load(&vocab).ok();
    if lex.is_none() {
        eprintln!(
            "note: no vocabulary at {}; fact recall not computed",
            vocab.display()
        );
    }
    let (report, label) = if fallback_analyzer {
        let fa = lab::fallback::FallbackAnalyzer::new();
        (
            lab::notes::evaluate_aci_bench(data, split, tpl, &|c| fa.analyze(c), lex.as_ref())?,
            "fallback cue-word analyzer",
        )
    } else {
        (
            lab::notes::evaluate_aci_bench(
                data,
                split,
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
    if show_register {
        out!("{}", report.register_text());
    }
    if let Some(dir) = write_notes {
        report
            .write_notes(dir)
            .with_context(|| format!("writing notes to {}", dir.display()))?;
    }
    out!("{}", report.to_text(label));
    Ok(())
}

fn eval_diarization(reference: &Path, transcript: &Path) -> Result<()> {
    let one = |r: &Path, t: &Path| -> Result<lab::diarization::Report> {
        let turns = lab::diarization::parse_reference(
            &std::fs::read_to_string(r).with_context(|| format!("reading {}", r.display()))?,
        )
        .map_err(|e| anyhow::anyhow!("{}: {e}", r.display()))?;
        Ok(lab::diarization::evaluate(&turns, &read_transcript(t)?))
    };
    if !reference.is_dir() {
        outln!("{}", one(reference, transcript)?);
        return Ok(());
    }
    let mut names: Vec<String> = std::fs::read_dir(reference)
        .with_context(|| format!("reading {}", reference.display()))?
        .filter_map(|e| {
            let n = e.ok()?.file_name().to_string_lossy().into_owned();
            n.strip_suffix(".ref.tsv").map(str::to_string)
        })
        .collect();
    names.sort();
    let mut total = lab::diarization::Report::default();
    // Totals by the reference's number of speakers too (two-speaker encounters have their own
    // targets).
    let mut by_speakers: std::collections::BTreeMap<usize, (usize, lab::diarization::Report)> =
        Default::default();
    let mut done = 0;
    for n in &names {
        let t = transcript.join(n).join("transcript.json");
        if !t.is_file() {
            outln!("{n}\tno transcript at {}", t.display());
            continue;
        }
        let r = one(&reference.join(format!("{n}.ref.tsv")), &t)?;
        outln!("{n}\t{r}");
        total.add(&r);
        let e = by_speakers.entry(r.ref_speakers).or_default();
        e.0 += 1;
        e.1.add(&r);
        done += 1;
    }
    for (k, (files, r)) in &by_speakers {
        outln!("TOTAL {k} speakers ({files} files)\t{r}");
    }
    outln!("TOTAL ({done} files)\t{total}");
    Ok(())
}

fn read_transcript(path: &Path) -> Result<TranscriptFile> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    serde_json::from_str(&text)
        .with_context(|| format!("{} is not a HealthScribe transcript file", path.display()))
}

fn eval_wer(refs: &[PathBuf], hyps: &[PathBuf], terms: Option<&Path>) -> Result<()> {
    let terms_text = match terms {
        Some(p) => {
            std::fs::read_to_string(p).with_context(|| format!("reading {}", p.display()))?
        }
        None => String::new(),
    };
    let terms = asr::vocabulary::terms(&terms_text);
    let mut total_terms = lab::wer::TermCounts::default();
    if refs.len() != hyps.len() {
        bail!(
            "give as many --hypothesis as --reference files ({} vs {})",
            hyps.len(),
            refs.len()
        );
    }
    let mut total = lab::wer::WerCounts::default();
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
        let c = lab::wer::counts(&reference, &hyp);
        let t = lab::wer::term_counts(&reference, &hyp, &terms);
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

fn terms_column(terms: &[&str], t: lab::wer::TermCounts) -> String {
    if terms.is_empty() {
        return String::new();
    }
    format!(
        "\tterms found {} / {}, extra {}",
        t.found, t.in_reference, t.extra
    )
}

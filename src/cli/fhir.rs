//! `fhirscribe fhir …` and the `--fhir-bundle` option of `transcribe`: wiring of
//! [`crate::fhir`], [`crate::store`] and [`crate::delivery`]; no mapping logic of its own.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use clap::{Args, Subcommand};

use crate::config::Config;
use crate::delivery::{self, RetryPolicy};
use crate::engine::FhirRules;
use crate::fhir::{self, client::FhirClient, EncounterContext, Mapping, ScribeDevice, Validator};
use crate::healthscribe::{ClinicalDocumentationFile, NoteTemplate, TranscriptFile};
use crate::smart::{BackendClient, BackendConfig};
use crate::store::{Enqueued, Outbox};

/// Where the resources go in the EHR and which rules make them.
#[derive(Args, Clone, Debug)]
pub struct FhirTarget {
    /// The patient: `Patient/<id>` or `<id>` (from the SMART launch or the integration).
    #[arg(long)]
    pub patient: Option<String>,
    /// The encounter: `Encounter/<id>` or `<id>`.
    #[arg(long)]
    pub encounter: Option<String>,
    /// Mapping rules (default: the bundled mappings/fhir/mapping.json). Also
    /// FHIRSCRIBE_FHIR_MAPPING or fhir.mapping.
    #[arg(long)]
    pub fhir_mapping: Option<PathBuf>,
    /// Profiles folder laid out like fhir-profiles/ (default: the bundled profiles). Also
    /// FHIRSCRIBE_FHIR_PROFILES or fhir.profiles.
    #[arg(long)]
    pub fhir_profiles: Option<PathBuf>,
}

/// Everything needed to turn outputs into a validated Bundle, loaded and checked up front so a
/// bad flag fails before any model is loaded.
pub struct Prepared {
    pub mapping: Mapping,
    pub validator: Validator,
    pub ctx: EncounterContext,
}

impl FhirTarget {
    /// The configuration with these flags on top.
    pub fn config(&self, config: Option<&Path>) -> Result<Config> {
        let mut cfg = Config::load(config)?;
        if let Some(m) = &self.fhir_mapping {
            cfg.fhir.mapping = Some(m.clone());
        }
        if let Some(p) = &self.fhir_profiles {
            cfg.fhir.profiles = Some(p.clone());
        }
        Ok(cfg)
    }

    pub fn load(&self, config: Option<&Path>) -> Result<Prepared> {
        let (Some(p), Some(e)) = (&self.patient, &self.encounter) else {
            bail!("a FHIR bundle needs --patient and --encounter (the EHR's ids; resources are never created for them)");
        };
        let ctx = EncounterContext::new(p, e)?;
        let rules = FhirRules::load(&self.config(config)?)?;
        Ok(Prepared {
            mapping: rules.mapping,
            validator: rules.validator,
            ctx,
        })
    }
}

/// Prints what the Bundle holds and what was left out, and why (counts only), on stderr.
pub fn report_mapping(r: &fhir::MappingReport) {
    eprintln!(
        "FHIR bundle: {} conditions, {} medication statements, {} provenances; not written: {}",
        r.conditions,
        r.medication_statements,
        r.provenances,
        if r.skipped.is_empty() {
            "none".to_string()
        } else {
            r.skipped
                .iter()
                .map(|(k, v)| format!("{v} {k}"))
                .collect::<Vec<_>>()
                .join(", ")
        }
    );
    if r.skipped.contains_key(fhir::bundle::SKIP_SPEAKER_UNKNOWN) {
        eprintln!(
            "note: who said what is unknown in one-channel audio (no speaker diarization yet), so \
             the bundle holds the note and transcript for review but no Conditions or \
             MedicationStatements from those segments; record the clinician and the patient on \
             two channels and use --channel-identification to chart findings"
        );
    }
}

#[derive(Subcommand)]
pub enum FhirCommand {
    /// Build DIR/fhir-bundle.json from DIR/transcript.json and DIR/clinical-documentation.json.
    Bundle {
        /// Folder written by `transcribe`.
        #[arg(long)]
        dir: PathBuf,
        #[command(flatten)]
        target: FhirTarget,
        /// The template the note was written with.
        #[arg(long, default_value = "HISTORY_AND_PHYSICAL")]
        template: String,
        /// The speech model that made the transcript, for a transcript.json that does not
        /// record it (`Extensions.AsrModel`, which every transcript of ours has).
        #[arg(long)]
        asr_model: Option<String>,
    },
    /// Queue Bundles in the durable outbox and deliver them (retrying until delivered, dead or
    /// the deadline).
    Deliver(DeliverArgs),
    /// Show the outbox, or act on one entry.
    Outbox {
        #[arg(long, env = "FHIRSCRIBE_STORE")]
        store: PathBuf,
        #[command(subcommand)]
        action: OutboxAction,
    },
}

#[derive(Subcommand)]
pub enum OutboxAction {
    /// One line per entry: job, state, attempts, last status and error.
    List,
    /// Put a dead letter back in the queue.
    Retry { job: String },
    /// Remove an entry and its Bundle.
    Delete { job: String },
}

#[derive(Args)]
pub struct DeliverArgs {
    /// fhir-bundle.json files (each Bundle's identifier names its job).
    #[arg(required = true)]
    bundles: Vec<PathBuf>,
    /// The sled store folder holding the outbox.
    #[arg(long, env = "FHIRSCRIBE_STORE")]
    store: PathBuf,
    /// The EHR's FHIR base URL.
    #[arg(long, env = "FHIRSCRIBE_FHIR_BASE")]
    fhir_base: String,
    #[command(flatten)]
    smart: SmartArgs,
    /// Send without an access token (a FHIR server on loopback without auth; never an EHR).
    #[arg(long, conflicts_with = "client_id")]
    no_auth: bool,
    /// Attempts before an entry becomes a dead letter.
    #[arg(long, default_value_t = 20)]
    max_attempts: u32,
    /// First retry delay; doubles per attempt, with jitter.
    #[arg(long, default_value_t = 2000)]
    backoff_base_ms: u64,
    #[arg(long, default_value_t = 300_000)]
    backoff_max_ms: u64,
    /// Stop waiting for retries after this long (entries stay queued).
    #[arg(long, default_value_t = 600)]
    deadline_secs: u64,
    /// HTTP timeout per request.
    #[arg(long, default_value_t = 60)]
    timeout_secs: u64,
    /// Profiles every Bundle is validated against before it is queued (default: the bundled
    /// fhir-profiles/). Also FHIRSCRIBE_FHIR_PROFILES or fhir.profiles.
    #[arg(long)]
    fhir_profiles: Option<PathBuf>,
}

/// SMART Backend Services registration; secrets come from the environment or files only.
#[derive(Args, Clone)]
pub struct SmartArgs {
    #[arg(long, env = "FHIRSCRIBE_SMART_CLIENT_ID")]
    pub client_id: Option<String>,
    /// PEM file of the client's private key.
    #[arg(long, env = "FHIRSCRIBE_SMART_PRIVATE_KEY")]
    pub private_key: Option<PathBuf>,
    #[arg(long, env = "FHIRSCRIBE_SMART_KEY_ID")]
    pub key_id: Option<String>,
    /// RS384 or ES384.
    #[arg(long, env = "FHIRSCRIBE_SMART_ALG", default_value = "RS384")]
    pub alg: String,
    #[arg(long, env = "FHIRSCRIBE_SMART_SCOPE", default_value = DEFAULT_SCOPE)]
    pub scope: String,
    /// Token endpoint (default: discovered from FHIR_BASE/.well-known/smart-configuration).
    #[arg(long, env = "FHIRSCRIBE_SMART_TOKEN_ENDPOINT")]
    pub token_endpoint: Option<String>,
}

use crate::smart::backend::DEFAULT_SCOPE;

impl SmartArgs {
    pub fn config(&self) -> Result<Option<BackendConfig>> {
        let Some(client_id) = &self.client_id else {
            return Ok(None);
        };
        let key_path = self
            .private_key
            .as_ref()
            .context("--private-key (FHIRSCRIBE_SMART_PRIVATE_KEY) is required with --client-id")?;
        let key_id = self
            .key_id
            .clone()
            .context("--key-id (FHIRSCRIBE_SMART_KEY_ID) is required with --client-id")?;
        let private_key_pem = std::fs::read(key_path)
            .with_context(|| format!("cannot read the private key {}", key_path.display()))?;
        Ok(Some(BackendConfig {
            client_id: client_id.clone(),
            key_id,
            alg: self.alg.parse().map_err(anyhow::Error::msg)?,
            private_key_pem,
            scope: self.scope.clone(),
            token_endpoint: self.token_endpoint.clone(),
        }))
    }
}

pub fn run(cmd: FhirCommand, config: Option<&Path>) -> Result<()> {
    match cmd {
        FhirCommand::Bundle {
            dir,
            target,
            template,
            asr_model,
        } => {
            let template: NoteTemplate = super::parse_wire("--template", &template)?;
            let (Some(p), Some(e)) = (&target.patient, &target.encounter) else {
                bail!("a FHIR bundle needs --patient and --encounter (the EHR's ids; resources are never created for them)");
            };
            let ctx = EncounterContext::new(p, e)?;
            let cfg = target.config(config)?;
            let rules = FhirRules::load(&cfg)?;
            let templates = crate::engine::load_templates(&cfg)?;
            let read = |name: &str| {
                std::fs::read(dir.join(name))
                    .with_context(|| format!("cannot read {}", dir.join(name).display()))
            };
            let transcript_json = read("transcript.json")?;
            let documentation_json = read("clinical-documentation.json")?;
            let transcript: TranscriptFile =
                serde_json::from_slice(&transcript_json).context("transcript.json")?;
            let documentation: ClinicalDocumentationFile =
                serde_json::from_slice(&documentation_json)
                    .context("clinical-documentation.json")?;
            let mapped = crate::jobs::chart_bundle(
                &rules,
                &templates,
                &ctx,
                template,
                &transcript,
                &documentation,
                &transcript_json,
                &documentation_json,
                asr_model.as_deref(),
            )
            .map_err(|e| match e {
                crate::jobs::JobError::UnknownAsrModel => anyhow::anyhow!(
                    "transcript.json does not say which speech model made it (no Extensions.AsrModel); pass --asr-model NAME"
                ),
                e => e.into(),
            })?;
            let path = dir.join("fhir-bundle.json");
            super::write_bytes(&path, &serde_json::to_vec_pretty(&mapped.bundle)?)?;
            report_mapping(&mapped.report);
            outln!("{}", path.display());
            Ok(())
        }
        FhirCommand::Deliver(a) => deliver(a, config),
        FhirCommand::Outbox { store, action } => {
            let outbox = Outbox::open(&store)?;
            match action {
                OutboxAction::List => {
                    for e in outbox.list()? {
                        outln!(
                            "{}\t{:?}\tattempts={}\tstatus={}\t{}",
                            e.id,
                            e.state,
                            e.attempts,
                            e.last_status.map_or("-".into(), |s| s.to_string()),
                            e.last_error.unwrap_or_default()
                        );
                    }
                }
                OutboxAction::Retry { job } => {
                    let e = outbox.retry(&job)?;
                    outln!("{}\t{:?}", e.id, e.state);
                }
                OutboxAction::Delete { job } => {
                    if !outbox.delete(&job)? {
                        bail!("no outbox entry for job {job}");
                    }
                }
            }
            Ok(())
        }
    }
}

fn deliver(a: DeliverArgs, config: Option<&Path>) -> Result<()> {
    let smart = a.smart.config()?;
    if smart.is_none() && !a.no_auth {
        bail!("give SMART Backend Services credentials (--client-id, --private-key, --key-id) or --no-auth");
    }
    let validator = match a
        .fhir_profiles
        .clone()
        .or(Config::load(config)?.fhir.profiles)
    {
        Some(dir) => Validator::load(&dir)?,
        None => Validator::bundled()?,
    };
    // Every Bundle is read and validated before any is queued: an invalid one is never sent,
    // and a refused batch leaves the outbox as it was.
    let mut checked = Vec::with_capacity(a.bundles.len());
    for path in &a.bundles {
        let bundle: serde_json::Value = serde_json::from_slice(
            &std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?,
        )
        .with_context(|| format!("{} is not JSON", path.display()))?;
        if bundle["resourceType"] != "Bundle" || bundle["type"] != "transaction" {
            bail!("{} is not a transaction Bundle", path.display());
        }
        let job = fhir::bundle::job_of(&bundle)
            .with_context(|| format!("{}: the Bundle has no job identifier", path.display()))?
            .to_string();
        fhir::check_bundle(&validator, &bundle)
            .with_context(|| format!("{}: not queued", path.display()))?;
        checked.push((job, bundle));
    }
    let outbox = Outbox::open(&a.store)?;
    for (job, bundle) in checked {
        let r = outbox.enqueue(&job, bundle)?;
        eprintln!(
            "{job}: {}",
            match r {
                Enqueued::New => "queued",
                Enqueued::Unchanged => "already queued",
                Enqueued::Replaced => "queued (replaces the undelivered earlier bundle)",
                Enqueued::AlreadyDelivered => "already delivered; not sent again",
            }
        );
    }
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(a.timeout_secs))
        .build()?;
    let auth = smart
        .map(|cfg| BackendClient::new(cfg, &a.fhir_base, http.clone()))
        .transpose()?;
    let client = FhirClient::new(&a.fhir_base, http, auth);
    let policy = RetryPolicy {
        base: Duration::from_millis(a.backoff_base_ms),
        max: Duration::from_millis(a.backoff_max_ms),
        max_attempts: a.max_attempts,
        ..Default::default()
    };
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let started = Instant::now();
    let deadline = started + Duration::from_secs(a.deadline_secs);
    let r = rt.block_on(delivery::drain(&outbox, &client, &policy, Some(deadline)))?;
    eprintln!(
        "delivered {} , dead letters {}, still pending {} ({:.2} s)",
        r.delivered,
        r.dead,
        r.retrying,
        started.elapsed().as_secs_f64()
    );
    if r.dead > 0 || r.retrying > 0 {
        bail!("not every bundle was delivered; see `fhirscribe fhir outbox --store … list`");
    }
    Ok(())
}

/// `fhirscribe eval fhir`: see [`crate::lab::fhir_bench`].
pub fn eval_throughput(
    reference: &Path,
    n: usize,
    target: &FhirTarget,
    fhir_base: Option<&str>,
    smart: &SmartArgs,
) -> Result<()> {
    use crate::lab::fhir_bench as ef;
    if n == 0 {
        bail!("--bundles must be at least 1");
    }
    let mut target = target.clone();
    target.patient.get_or_insert_with(|| "Patient/bench".into());
    target
        .encounter
        .get_or_insert_with(|| "Encounter/bench".into());
    let prep = target.load(None)?;
    let templates = crate::note::Templates::builtin()?;
    let template = NoteTemplate::HistoryAndPhysical;
    let text = std::fs::read_to_string(reference)
        .with_context(|| format!("cannot read {}", reference.display()))?;
    let output = ef::reference_outputs(&text, "bench", template, &templates)
        .map_err(|e| anyhow::anyhow!("{}: {e}", reference.display()))?;
    let bytes = ef::OutputBytes::new(output, template, &templates);
    // The reference outputs come from a hand-made transcript, not from a speech model.
    let device = ScribeDevice::for_asr_model("reference transcript (no speech model)");
    // One warm-up run so lazy statics are not timed.
    ef::map_throughput(
        &bytes,
        &prep.mapping,
        &prep.validator,
        &prep.ctx,
        &device,
        1,
    )?;
    let (figures, bundles) = ef::map_throughput(
        &bytes,
        &prep.mapping,
        &prep.validator,
        &prep.ctx,
        &device,
        n,
    )?;
    outln!("{figures}");
    let Some(base) = fhir_base else {
        return Ok(());
    };
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(60))
        .build()?;
    let auth = smart
        .config()?
        .map(|cfg| BackendClient::new(cfg, base, http.clone()))
        .transpose()?;
    let client = FhirClient::new(base, http, auth);
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let store = std::env::temp_dir().join(format!("fhirscribe-eval-{}", std::process::id()));
    let outbox = Outbox::open(&store)?;
    // Outbox: enqueue (durable) + deliver.
    let started = Instant::now();
    for b in &bundles {
        let job = fhir::bundle::job_of(b).context("bundle without job")?;
        outbox.enqueue(job, b.clone())?;
    }
    let r = rt.block_on(delivery::drain(
        &outbox,
        &client,
        &RetryPolicy::default(),
        None,
    ))?;
    let via_outbox = started.elapsed().as_secs_f64();
    drop(outbox);
    let _ = std::fs::remove_dir_all(&store);
    // Direct: replaying the same Bundles (all conditional creates now match) and fresh ones.
    let post_all = |bundles: &[serde_json::Value]| {
        let started = Instant::now();
        let ok = bundles
            .iter()
            .filter(|b| {
                matches!(
                    rt.block_on(client.post_transaction(b)),
                    fhir::client::Attempt::Delivered { .. }
                )
            })
            .count();
        (ok, started.elapsed().as_secs_f64())
    };
    let (replay_ok, replay) = post_all(&bundles);
    let fresh: Vec<serde_json::Value> = {
        let recorded = crate::healthscribe::DateTime::now();
        let names: Vec<String> = (0..n).map(|i| format!("direct-{i:05}")).collect();
        names
            .iter()
            .map(|name| {
                fhir::build_bundle(
                    &prep.mapping,
                    &prep.ctx,
                    &device,
                    &bytes.outputs(name, recorded.as_str()),
                )
                .map(|m| m.bundle)
            })
            .collect::<Result<_, _>>()?
    };
    let (direct_ok, direct) = post_all(&fresh);
    outln!(
        "delivered via outbox {}/{n} in {via_outbox:.2} s: {:.1} bundles/s (dead {})",
        r.delivered,
        r.delivered as f64 / via_outbox,
        r.dead
    );
    outln!(
        "direct POST of fresh bundles {direct_ok}/{n} in {direct:.2} s: {:.1} bundles/s",
        direct_ok as f64 / direct
    );
    outln!(
        "replay of delivered bundles {replay_ok}/{n} in {replay:.2} s: {:.1} bundles/s (all conditional creates match)",
        replay_ok as f64 / replay
    );
    Ok(())
}

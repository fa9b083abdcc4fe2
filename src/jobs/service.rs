//! The job service behind `fhirscribe serve`: HealthScribe's operations (start, get, list,
//! delete, download) over a [`JobStore`], a bounded queue, worker threads that run
//! [`super::run_decoded`] with the shared [`Engine`], and the per-EHR FHIR outboxes.
//!
//! It knows no HTTP: the `api` module calls these blocking methods from its blocking pool and
//! maps [`ServiceError`] to status codes once.
//!
//! Invariants (and why):
//! - **A job is durable before it is answered**: `start` returns only after the record is
//!   flushed; the in-memory queue is rebuilt from the store at start-up ([`JobService::recover`]),
//!   where an IN_PROGRESS job (the process died under it) runs again.
//! - **Outputs are written once, whole**: the COMPLETED record and its files are one store
//!   transaction; a run that lost its job (deleted, or re-run after a restart) writes nothing.
//! - **A Bundle is queued once per job**: the outbox is keyed by the job's unique id, and
//!   `delivery_queued` is set only after the outbox accepted it; recovery re-queues completed
//!   jobs whose flag is unset (the outbox answers `Unchanged` if it already had it).
//! - **CPU work only on the worker threads**, each job on one pooled recognizer.
//! - **No PHI in logs**: spans carry the job name, statuses, durations and sizes only.

use std::collections::{BTreeMap, VecDeque};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex, PoisonError};
use std::time::{Duration, Instant};

use serde::Deserialize;
use serde_json::Value;

use super::{JobName, JobSpec, JobSpecError, MediaSource};
use crate::config::WriteBack;
use crate::engine::Engine;
use crate::healthscribe::{
    DateTime, ListMedicalScribeJobsRequest, MedicalScribeJob, MedicalScribeJobStatus,
    MedicalScribeJobSummary, MedicalScribeLanguageCode, MedicalScribeOutput,
    StartMedicalScribeJobRequest,
};
use crate::metrics::Metrics;
use crate::store::{
    ChartTarget, DeliveryState, Enqueued, JobContext, JobRecord, JobStore, MediaRecord, Outbox,
    Owner, ResourceStore, StoreError,
};

/// The output files a job can have, as the download routes name them.
pub const TRANSCRIPT: &str = "transcript.json";
pub const DOCUMENTATION: &str = "clinical-documentation.json";
pub const BUNDLE: &str = "fhir-bundle.json";
pub const OUTPUT_FILES: [&str; 3] = [TRANSCRIPT, DOCUMENTATION, BUNDLE];

/// Why a call was refused, in HealthScribe's error vocabulary. Messages are precise and safe
/// to return: they name fields, rules and the caller's own identifiers, never audio or text.
#[derive(Debug, thiserror::Error)]
pub enum ServiceError {
    #[error("{0}")]
    BadRequest(String),
    #[error("{0}")]
    Conflict(String),
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    LimitExceeded(String),
    /// The caller's token does not reach this patient's data.
    #[error("{0}")]
    Forbidden(String),
    /// The service is stopping or a store call failed; details are logged, not returned.
    #[error("{0}")]
    Internal(String),
}

impl From<JobSpecError> for ServiceError {
    fn from(e: JobSpecError) -> Self {
        ServiceError::BadRequest(e.to_string())
    }
}

impl From<StoreError> for ServiceError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Exists(_) => ServiceError::Conflict(
                "The requested job name already exists. Use a different job name.".into(),
            ),
            StoreError::Full { .. } => ServiceError::LimitExceeded(e.to_string()),
            other => {
                tracing::error!(error = %other, "store call failed");
                ServiceError::Internal("the job store failed; try again".into())
            }
        }
    }
}

/// What a caller may see: everything (system scopes), one patient's jobs (patient context), or
/// the jobs it created (user scopes without a patient).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Visibility {
    All,
    Patient(String),
    Subject(String),
}

/// The authenticated caller, as the API layer established it.
#[derive(Debug, Clone)]
pub struct Caller {
    pub subject: String,
    pub visibility: Visibility,
}

impl Caller {
    fn owner(&self) -> Owner {
        Owner {
            subject: self.subject.clone(),
            patient: match &self.visibility {
                Visibility::Patient(p) => Some(p.clone()),
                _ => None,
            },
        }
    }

    fn sees(&self, owner: &Owner) -> bool {
        match &self.visibility {
            Visibility::All => true,
            Visibility::Patient(p) => owner.patient.as_deref() == Some(p.as_str()),
            Visibility::Subject(s) => &owner.subject == s,
        }
    }
}

/// The service's settings, from [`crate::config::Config`].
#[derive(Debug, Clone)]
pub struct ServiceSettings {
    pub public_url: String,
    pub queue_capacity: usize,
    pub max_jobs: usize,
    pub retain_audio: bool,
    pub max_upload_bytes: usize,
    /// This process's name among those sharing a store (worker ids and leases carry it).
    pub node: String,
    /// How long a claimed job stays this node's without a heartbeat (shared stores): a node
    /// that dies loses its jobs to the others after this.
    pub job_lease: Duration,
    /// Whether this process sends Bundles (readiness checks the delivery loop only then).
    pub delivers: bool,
}

impl ServiceSettings {
    /// Settings for one process with defaults for everything but the URL.
    pub fn new(public_url: impl Into<String>) -> Self {
        Self {
            public_url: public_url.into(),
            queue_capacity: 64,
            max_jobs: 10_000,
            retain_audio: false,
            max_upload_bytes: 256 << 20,
            node: default_node_name(),
            job_lease: Duration::from_secs(60),
            delivers: true,
        }
    }
}

/// `host-pid-xxxx`: unique among the processes that share a store, readable in the audit
/// trail (`claimed` events name it).
pub fn default_node_name() -> String {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_owned())
        .unwrap_or_else(|_| "node".into());
    let tag = uuid::Uuid::new_v4().simple().to_string();
    format!("{host}-{}-{}", std::process::id(), &tag[..4])
}

/// What a worker takes next: a name from this process's queue (embedded store) or a job it
/// claimed in a shared store.
enum Next {
    Local(String),
    Claimed(Box<JobRecord>),
}

/// Our extension of `StartMedicalScribeJob`: where the Bundle goes (never a URL: an EHR is
/// named from the configuration).
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase", deny_unknown_fields)]
struct StartExtensions {
    #[serde(default)]
    fhir: Option<FhirTarget>,
    /// Keep the audio after completion (the review app plays evidence spans from it).
    #[serde(default)]
    retain_audio: bool,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase", deny_unknown_fields)]
struct FhirTarget {
    /// A configured EHR's name; may be left out when exactly one is configured.
    #[serde(default)]
    ehr: Option<String>,
    patient: String,
    encounter: String,
}

/// The fields AWS's `StartMedicalScribeJob` takes, plus `Extensions`: anything else is a typo
/// that must not be silently ignored.
const START_FIELDS: &[&str] = &[
    "MedicalScribeJobName",
    "Media",
    "OutputBucketName",
    "OutputEncryptionKMSKeyId",
    "KMSEncryptionContext",
    "DataAccessRoleArn",
    "Settings",
    "ChannelDefinitions",
    "Tags",
    "MedicalScribeContext",
    "Extensions",
];

/// One EHR's outbox and when its Bundles are released.
#[derive(Clone)]
pub struct EhrOutbox {
    pub outbox: Outbox,
    pub write_back: WriteBack,
}

/// A job's FHIR delivery as `Get` reports it.
#[derive(Debug, Clone, serde::Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct DeliveryStatus {
    pub ehr: String,
    /// PENDING, DELIVERED, DEAD_LETTER, or AWAITING_REVIEW (write_back = after_review).
    pub state: String,
    pub attempts: u32,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_status: Option<u16>,
    /// The server's OperationOutcome of a refused Bundle.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub operation_outcome: Option<Value>,
    /// Where the clinician review stands, once one started: IN_REVIEW, SIGNING (started, not
    /// yet written), SIGNED (written to the chart) or SIGNED_QUEUED (on the outbox).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub review: Option<String>,
}

#[derive(Default)]
struct Queue {
    names: VecDeque<String>,
    /// Starts between the capacity check and their job being stored.
    reserved: usize,
    stopping: bool,
}

/// The job service; share it in an `Arc`.
pub struct JobService {
    engine: Arc<Engine>,
    store: Arc<dyn JobStore>,
    outboxes: BTreeMap<String, EhrOutbox>,
    settings: ServiceSettings,
    metrics: Arc<Metrics>,
    queue: Mutex<Queue>,
    wake: Condvar,
    busy: AtomicUsize,
    /// Last heartbeat of the delivery loop (unix ms), for readiness.
    delivery_beat: AtomicU64,
    /// What completed jobs produced, as the FHIR read API and exports serve it.
    resources: ResourceStore,
    /// Clinician reviews and their audit trails.
    reviews: crate::store::reviews::ReviewStore,
}

mod review;
pub use review::SignRequest;

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

fn status_label(s: MedicalScribeJobStatus) -> String {
    let name = match s {
        MedicalScribeJobStatus::Queued => "QUEUED",
        MedicalScribeJobStatus::InProgress => "IN_PROGRESS",
        MedicalScribeJobStatus::Failed => "FAILED",
        MedicalScribeJobStatus::Completed => "COMPLETED",
    };
    format!("status=\"{name}\"")
}

impl JobService {
    pub fn new(
        engine: Arc<Engine>,
        store: Arc<dyn JobStore>,
        outboxes: BTreeMap<String, EhrOutbox>,
        resources: ResourceStore,
        reviews: crate::store::reviews::ReviewStore,
        settings: ServiceSettings,
        metrics: Arc<Metrics>,
    ) -> Arc<JobService> {
        Arc::new(JobService {
            engine,
            store,
            outboxes,
            resources,
            reviews,
            settings,
            metrics,
            queue: Mutex::new(Queue::default()),
            wake: Condvar::new(),
            busy: AtomicUsize::new(0),
            delivery_beat: AtomicU64::new(0),
        })
    }

    pub fn metrics(&self) -> &Arc<Metrics> {
        &self.metrics
    }

    pub fn settings(&self) -> &ServiceSettings {
        &self.settings
    }

    pub fn outboxes(&self) -> &BTreeMap<String, EhrOutbox> {
        &self.outboxes
    }

    pub fn store(&self) -> &Arc<dyn JobStore> {
        &self.store
    }

    pub fn resources(&self) -> &ResourceStore {
        &self.resources
    }

    /// Stores a completed job's Bundle resources for the FHIR read API. A job deleted while
    /// this ran loses them again, so a deleted job's resources are never served.
    fn index_resources(&self, job: &JobRecord) -> Result<(), StoreError> {
        let Some(chart) = &job.chart else {
            return Ok(());
        };
        if job.status != MedicalScribeJobStatus::Completed
            || !job.outputs.iter().any(|o| o == BUNDLE)
        {
            return Ok(());
        }
        let Some(raw) = self.store.artifact(&job.name, BUNDLE)? else {
            return Ok(());
        };
        let bundle: Value = serde_json::from_slice(&raw).map_err(StoreError::Encode)?;
        let at_ms = job
            .completion_time
            .as_ref()
            .and_then(|t| t.unix_seconds())
            .map_or_else(
                || crate::store::outbox::now_ms() as i64,
                |s| (s * 1000.0) as i64,
            );
        let ctx = JobContext {
            job: &job.name,
            owner: &job.owner.subject,
            patient: &chart.patient,
            encounter: &chart.encounter,
            at_ms,
        };
        self.resources.put_job(&ctx, &bundle)?;
        if self.store.job(&job.name)?.map(|j| j.id) != Some(job.id.clone()) {
            self.resources.remove_job(&job.name)?;
        }
        Ok(())
    }

    /// Rebuilds the queue from the store (QUEUED jobs, and IN_PROGRESS ones whose process
    /// died) and queues the Bundles of completed jobs that never reached their outbox. Returns
    /// the number of jobs queued.
    pub fn recover(&self) -> Result<usize, StoreError> {
        let shared = self.store.shared();
        let mut queued = Vec::new();
        for mut job in self.store.jobs()? {
            // In a shared store the per-status gauges count this node's work only (the
            // queue's depth comes from the database at each scrape).
            if !shared {
                self.metrics
                    .gauge_add("fhirscribe_jobs", status_label(job.status), 1);
            }
            match job.status {
                // A shared store's workers claim queued jobs themselves, and a running job may
                // be another live node's: its lease, not this start, decides when it runs again.
                MedicalScribeJobStatus::Queued | MedicalScribeJobStatus::InProgress if shared => {}
                MedicalScribeJobStatus::Queued => queued.push(job.name.clone()),
                MedicalScribeJobStatus::InProgress => {
                    let run = job.run;
                    job.status = MedicalScribeJobStatus::Queued;
                    if self.store.update_job(&job, run, "requeued")? {
                        tracing::info!(job = %job.name, run, "re-running a job interrupted by a stop");
                        self.count_transition(MedicalScribeJobStatus::InProgress, job.status);
                        queued.push(job.name.clone());
                    }
                }
                MedicalScribeJobStatus::Completed => {
                    if !self.resources.has_job(&job.name)? {
                        self.index_resources(&job)?;
                    }
                    if !job.delivery_queued {
                        self.queue_delivery(&mut job)?;
                    }
                }
                _ => {}
            }
        }
        // Resources of jobs deleted while a stop interrupted their removal.
        for name in self.resources.jobs()? {
            if self.store.job(&name)?.is_none() {
                self.resources.remove_job(&name)?;
            }
        }
        let swept = self.resources.sweep()?;
        if swept > 0 {
            tracing::info!(swept, "resource files a stop left behind were removed");
        }
        let n = queued.len();
        let mut q = lock(&self.queue);
        q.names.extend(queued);
        self.metrics
            .gauge_set("fhirscribe_queue_depth", "", q.names.len() as i64);
        self.wake.notify_all();
        Ok(n)
    }

    /// Brings this process's FHIR read index up to date with what every process did in a
    /// shared store: indexes jobs completed since audit position `cursor` (by any node) and
    /// drops deleted ones, then moves `cursor` on. Returns the events applied. With a
    /// process-owned store there is nothing to follow (0).
    pub fn follow_store(&self, cursor: &mut u64) -> Result<usize, StoreError> {
        let Some(events) = self.store.changes_since(*cursor, 500)? else {
            return Ok(0);
        };
        for (pos, e) in &events {
            match self.store.job(&e.job)? {
                Some(job) if job.status == MedicalScribeJobStatus::Completed => {
                    if !self.resources.has_job(&job.name)? {
                        self.index_resources(&job)?;
                    }
                }
                Some(_) => {}
                None => {
                    self.resources.remove_job(&e.job)?;
                }
            }
            *cursor = *pos;
        }
        Ok(events.len())
    }

    fn count_transition(&self, from: MedicalScribeJobStatus, to: MedicalScribeJobStatus) {
        self.metrics
            .gauge_add("fhirscribe_jobs", status_label(from), -1);
        self.metrics
            .gauge_add("fhirscribe_jobs", status_label(to), 1);
    }

    // -----------------------------------------------------------------------------------------
    // Operations

    /// Stores uploaded audio after checking it is audio of a supported format; returns the
    /// `media://ID` URI.
    pub fn upload(&self, bytes: &[u8], caller: &Caller) -> Result<String, ServiceError> {
        if bytes.is_empty() {
            return Err(ServiceError::BadRequest(
                "the request body is empty: send the audio file as the body".into(),
            ));
        }
        if bytes.len() > self.settings.max_upload_bytes {
            return Err(ServiceError::LimitExceeded(format!(
                "the upload is {} bytes; this server accepts at most {} (server.max_upload_bytes)",
                bytes.len(),
                self.settings.max_upload_bytes
            )));
        }
        let format = super::sniff_audio(bytes).ok_or_else(|| {
            ServiceError::BadRequest(
                "the body is not audio in a supported format (WAV, FLAC, MP3, OGG, M4A, WebM)"
                    .into(),
            )
        })?;
        let id = uuid::Uuid::new_v4().to_string();
        let rec = MediaRecord {
            id: id.clone(),
            format: format.into(),
            bytes: bytes.len() as u64,
            owner: caller.owner(),
            created_ms: crate::store::outbox::now_ms(),
        };
        self.store.put_media(&rec, bytes)?;
        self.metrics.inc("fhirscribe_media_uploads_total", "");
        tracing::info!(bytes = bytes.len(), format, "media stored");
        Ok(format!("media://{id}"))
    }

    /// `StartMedicalScribeJob`: AWS's rules, then this server's (media, vocabulary, EHR,
    /// patient context, limits); the job is durable when this returns.
    pub fn start(&self, body: Value, caller: &Caller) -> Result<MedicalScribeJob, ServiceError> {
        if lock(&self.queue).stopping {
            return Err(ServiceError::Internal(
                "the service is shutting down; retry on another instance or after restart".into(),
            ));
        }
        let Value::Object(mut fields) = body else {
            return Err(ServiceError::BadRequest(
                "the request body must be a JSON object (StartMedicalScribeJobRequest)".into(),
            ));
        };
        if let Some(unknown) = fields.keys().find(|k| !START_FIELDS.contains(&k.as_str())) {
            return Err(ServiceError::BadRequest(format!(
                "unknown field {unknown}: StartMedicalScribeJob takes {}",
                START_FIELDS.join(", ")
            )));
        }
        let ext: StartExtensions = match fields.remove("Extensions") {
            Some(v) => serde_json::from_value(v)
                .map_err(|e| ServiceError::BadRequest(format!("Extensions: {e}")))?,
            None => StartExtensions::default(),
        };
        let req: StartMedicalScribeJobRequest = serde_json::from_value(Value::Object(fields))
            .map_err(|e| ServiceError::BadRequest(format!("invalid request: {e}")))?;
        let spec = JobSpec::from_request(&req, self.engine.jobs_config())?;
        let chart = self.chart_target(ext.fhir, caller)?;
        if let MediaSource::Upload { id } = &spec.media {
            let visible = self
                .store
                .media_record(id)?
                .is_some_and(|m| caller.sees(&m.owner));
            if !visible {
                return Err(ServiceError::BadRequest(format!(
                    "Media.MediaFileUri: no uploaded media media://{id} (upload it to /v1/media first)"
                )));
            }
        }
        // A place in the queue is reserved before the job is stored, so concurrent starts can
        // never push the queue past its capacity (in a shared store the count is the
        // database's, which concurrent starts on other nodes may pass by a few).
        let waiting = match self.store.queued_count()? {
            Some(n) => n,
            None => lock(&self.queue).names.len(),
        };
        {
            let mut q = lock(&self.queue);
            let waiting = if self.store.shared() {
                waiting
            } else {
                q.names.len()
            };
            if waiting + q.reserved >= self.settings.queue_capacity {
                self.metrics
                    .inc("fhirscribe_rejections_total", "reason=\"queue_full\"");
                return Err(ServiceError::LimitExceeded(format!(
                    "the job queue is full ({} jobs waiting); try again later",
                    waiting + q.reserved
                )));
            }
            q.reserved += 1;
        }
        let created = self.create(spec, req, chart, ext.retain_audio, caller);
        let mut q = lock(&self.queue);
        q.reserved -= 1;
        let job = created?;
        if !self.store.shared() {
            q.names.push_back(job.name.clone());
            self.metrics
                .gauge_set("fhirscribe_queue_depth", "", q.names.len() as i64);
        }
        drop(q);
        // In a shared store this wakes a local worker to claim at once instead of at its
        // next poll (a worker on any node may win the claim).
        self.wake.notify_one();
        Ok(self.describe(&job))
    }

    fn create(
        &self,
        spec: JobSpec,
        req: StartMedicalScribeJobRequest,
        chart: Option<ChartTarget>,
        retain_audio: bool,
        caller: &Caller,
    ) -> Result<JobRecord, ServiceError> {
        let job = JobRecord {
            name: spec.name.to_string(),
            id: uuid::Uuid::new_v4().to_string(),
            status: MedicalScribeJobStatus::Queued,
            request: req,
            media: spec.media.clone(),
            chart,
            owner: caller.owner(),
            seq: self.store.next_seq()?,
            creation_time: DateTime::now(),
            start_time: None,
            completion_time: None,
            failure_reason: None,
            run: 0,
            audio_secs: None,
            outputs: Vec::new(),
            delivery_queued: false,
            retain_audio,
        };
        if let Err(e) = self.store.create_job(&job, self.settings.max_jobs) {
            if matches!(e, StoreError::Full { .. }) {
                self.metrics
                    .inc("fhirscribe_rejections_total", "reason=\"store_full\"");
            }
            return Err(e.into());
        }
        if !self.store.shared() {
            self.metrics
                .gauge_add("fhirscribe_jobs", status_label(job.status), 1);
        }
        self.metrics.inc("fhirscribe_jobs_started_total", "");
        tracing::info!(job = %job.name, "job accepted");
        Ok(job)
    }

    fn chart_target(
        &self,
        fhir: Option<FhirTarget>,
        caller: &Caller,
    ) -> Result<Option<ChartTarget>, ServiceError> {
        let Some(t) = fhir else {
            return Ok(None);
        };
        let ehr = match t.ehr {
            Some(name) => {
                if !self.outboxes.contains_key(&name) {
                    return Err(ServiceError::BadRequest(format!(
                        "Extensions.Fhir.Ehr: no EHR named {name} is configured"
                    )));
                }
                name
            }
            None if self.outboxes.len() == 1 => self.outboxes.keys().next().cloned().unwrap(),
            None => {
                return Err(ServiceError::BadRequest(format!(
                    "Extensions.Fhir.Ehr is required: this server is configured with {} EHRs",
                    self.outboxes.len()
                )))
            }
        };
        let ctx = crate::fhir::EncounterContext::new(&t.patient, &t.encounter)
            .map_err(|e| ServiceError::BadRequest(format!("Extensions.Fhir: {e}")))?;
        if let Visibility::Patient(p) = &caller.visibility {
            if ctx.patient != format!("Patient/{p}") {
                return Err(ServiceError::Forbidden(
                    "Extensions.Fhir.Patient is not the patient of your access token".into(),
                ));
            }
        }
        Ok(Some(ChartTarget {
            ehr,
            patient: ctx.patient,
            encounter: ctx.encounter,
        }))
    }

    /// The job if it exists and the caller may see it (else NotFound: a caller learns nothing
    /// about other patients' jobs, not even that they exist).
    fn visible_job(&self, name: &str, caller: &Caller) -> Result<JobRecord, ServiceError> {
        crate::healthscribe::validate_job_name(name)
            .map_err(|e| ServiceError::BadRequest(e.to_string()))?;
        match self.store.job(name)? {
            Some(j) if caller.sees(&j.owner) => Ok(j),
            _ => Err(ServiceError::NotFound(format!(
                "The requested job couldn't be found: {name}"
            ))),
        }
    }

    /// `GetMedicalScribeJob`, with the FHIR delivery state.
    pub fn get(
        &self,
        name: &str,
        caller: &Caller,
    ) -> Result<(MedicalScribeJob, Option<DeliveryStatus>), ServiceError> {
        let job = self.visible_job(name, caller)?;
        let delivery = self.delivery(&job)?;
        Ok((self.describe(&job), delivery))
    }

    fn delivery(&self, job: &JobRecord) -> Result<Option<DeliveryStatus>, ServiceError> {
        let Some(chart) = &job.chart else {
            return Ok(None);
        };
        if job.status != MedicalScribeJobStatus::Completed {
            return Ok(None);
        }
        let Some(ob) = self.outboxes.get(&chart.ehr) else {
            return Ok(None);
        };
        let entry = ob.outbox.get(&job.id)?;
        let review = self.reviews.get(&job.id)?.map(|r| {
            use crate::review::SignState;
            match r.signature.map(|s| s.state) {
                None => "IN_REVIEW",
                Some(SignState::Signing) => "SIGNING",
                Some(SignState::Written { .. }) => "SIGNED",
                Some(SignState::Queued) => "SIGNED_QUEUED",
            }
            .to_owned()
        });
        let written_by_clinician = review.as_deref() == Some("SIGNED");
        Ok(Some(match entry {
            Some(e) => DeliveryStatus {
                ehr: chart.ehr.clone(),
                state: match e.state {
                    DeliveryState::Pending => "PENDING",
                    DeliveryState::Delivered => "DELIVERED",
                    DeliveryState::DeadLetter => "DEAD_LETTER",
                }
                .into(),
                attempts: e.attempts,
                last_status: e.last_status,
                operation_outcome: (e.state == DeliveryState::DeadLetter)
                    .then_some(e.outcome)
                    .flatten(),
                review,
            },
            None => DeliveryStatus {
                ehr: chart.ehr.clone(),
                // A held draft reaches the chart when the clinician signs it.
                state: if written_by_clinician {
                    "DELIVERED"
                } else if ob.write_back == WriteBack::AfterReview {
                    "AWAITING_REVIEW"
                } else {
                    "PENDING"
                }
                .into(),
                attempts: 0,
                last_status: None,
                operation_outcome: None,
                review,
            },
        }))
    }

    /// `ListMedicalScribeJobs`: newest first, `MaxResults` (default 5) per page, `NextToken`
    /// from the previous page.
    pub fn list(
        &self,
        req: &ListMedicalScribeJobsRequest,
        caller: &Caller,
    ) -> Result<(Vec<MedicalScribeJobSummary>, Option<String>), ServiceError> {
        req.validate()
            .map_err(|e| ServiceError::BadRequest(e.to_string()))?;
        let before = match &req.next_token {
            Some(t) => Some(
                t.strip_prefix("seq-")
                    .and_then(|s| s.parse::<u64>().ok())
                    .ok_or_else(|| {
                        ServiceError::BadRequest(
                            "NextToken is not a token this service issued".into(),
                        )
                    })?,
            ),
            None => None,
        };
        let max = req.max_results.unwrap_or(5) as usize;
        let mut rows: Vec<JobRecord> = self
            .store
            .jobs()?
            .into_iter()
            .rev()
            .filter(|j| caller.sees(&j.owner))
            .filter(|j| req.status.is_none_or(|s| j.status == s))
            .filter(|j| {
                req.job_name_contains
                    .as_deref()
                    .is_none_or(|c| j.name.contains(c))
            })
            .filter(|j| before.is_none_or(|b| j.seq < b))
            .take(max + 1)
            .collect();
        let next = (rows.len() > max).then(|| {
            rows.truncate(max);
            format!("seq-{}", rows[max - 1].seq)
        });
        let summaries = rows
            .iter()
            .map(|j| MedicalScribeJobSummary {
                medical_scribe_job_name: Some(j.name.clone()),
                creation_time: Some(j.creation_time.clone()),
                start_time: j.start_time.clone(),
                completion_time: j.completion_time.clone(),
                language_code: Some(MedicalScribeLanguageCode::EnUs),
                medical_scribe_job_status: Some(j.status),
                failure_reason: j.failure_reason.clone(),
            })
            .collect();
        Ok((summaries, next))
    }

    /// `DeleteMedicalScribeJob`: the record, its outputs, its audio and an undelivered Bundle.
    pub fn delete(&self, name: &str, caller: &Caller) -> Result<(), ServiceError> {
        let job = self.visible_job(name, caller)?;
        // Before the record (a stop in between leaves a job recovery indexes again) and
        // after it (a worker that indexed in between).
        self.resources.remove_job(&job.name)?;
        let deleted = self.store.delete_job(&job.name)?;
        self.resources.remove_job(&job.name)?;
        let Some(job) = deleted else {
            return Err(ServiceError::NotFound(format!(
                "The requested job couldn't be found: {name}"
            )));
        };
        self.metrics
            .gauge_add("fhirscribe_jobs", status_label(job.status), -1);
        if let MediaSource::Upload { id } = &job.media {
            self.store.delete_media(id)?;
        }
        self.drop_undelivered(&job)?;
        self.delete_review(&job)?;
        lock(&self.queue).names.retain(|n| n != name);
        tracing::info!(job = %job.name, "job deleted");
        Ok(())
    }

    fn drop_undelivered(&self, job: &JobRecord) -> Result<(), StoreError> {
        if let Some(chart) = &job.chart {
            if let Some(ob) = self.outboxes.get(&chart.ehr) {
                if let Some(e) = ob.outbox.get(&job.id)? {
                    if e.state != DeliveryState::Delivered {
                        ob.outbox.delete(&job.id)?;
                    }
                }
            }
        }
        Ok(())
    }

    /// The uploaded audio of a job the caller sees, with its format (`wav`, `flac`, …), while
    /// it is kept (`retain_audio`).
    pub fn audio(&self, name: &str, caller: &Caller) -> Result<(Vec<u8>, String), ServiceError> {
        let job = self.visible_job(name, caller)?;
        let gone = || ServiceError::NotFound(format!("job {name} keeps no audio"));
        let MediaSource::Upload { id } = &job.media else {
            return Err(gone());
        };
        let rec = self.store.media_record(id)?.ok_or_else(gone)?;
        let bytes = self.store.media_bytes(id)?.ok_or_else(gone)?;
        Ok((bytes, rec.format))
    }

    /// An output file of a completed job.
    pub fn download(
        &self,
        name: &str,
        file: &str,
        caller: &Caller,
    ) -> Result<Vec<u8>, ServiceError> {
        if !OUTPUT_FILES.contains(&file) {
            return Err(ServiceError::NotFound(format!(
                "no output named {file}: a job has {}",
                OUTPUT_FILES.join(", ")
            )));
        }
        let job = self.visible_job(name, caller)?;
        if job.status != MedicalScribeJobStatus::Completed {
            return Err(ServiceError::NotFound(format!(
                "job {name} has no outputs yet (status {})",
                status_label(job.status)
                    .trim_start_matches("status=")
                    .trim_matches('"')
            )));
        }
        if file == BUNDLE && job.chart.is_none() {
            return Err(ServiceError::NotFound(format!(
                "job {name} has no FHIR Bundle: its request named no Extensions.Fhir"
            )));
        }
        self.store
            .artifact(name, file)?
            .ok_or_else(|| ServiceError::NotFound(format!("job {name} has no {file}")))
    }

    /// The job as HealthScribe describes it; output URIs point at this server's downloads.
    pub fn describe(&self, j: &JobRecord) -> MedicalScribeJob {
        let r = &j.request;
        let url = |f: &str| {
            format!(
                "{}/v1/medical-scribe-jobs/{}/{f}",
                self.settings.public_url, j.name
            )
        };
        MedicalScribeJob {
            medical_scribe_job_name: Some(j.name.clone()),
            medical_scribe_job_status: Some(j.status),
            language_code: Some(MedicalScribeLanguageCode::EnUs),
            media: Some(r.media.clone()),
            medical_scribe_output: (j.status == MedicalScribeJobStatus::Completed).then(|| {
                MedicalScribeOutput {
                    transcript_file_uri: url(TRANSCRIPT),
                    clinical_document_uri: url(DOCUMENTATION),
                }
            }),
            start_time: j.start_time.clone(),
            creation_time: Some(j.creation_time.clone()),
            completion_time: j.completion_time.clone(),
            failure_reason: j.failure_reason.clone(),
            settings: Some(r.settings.clone()),
            data_access_role_arn: r.data_access_role_arn.clone(),
            channel_definitions: r.channel_definitions.clone(),
            medical_scribe_context_provided: Some(r.medical_scribe_context.is_some()),
            tags: r.tags.clone(),
        }
    }

    // -----------------------------------------------------------------------------------------
    // Workers

    /// Starts one worker thread per recognizer of the engine.
    pub fn spawn_workers(self: &Arc<Self>) -> Vec<std::thread::JoinHandle<()>> {
        (0..self.engine.workers())
            .map(|i| {
                let svc = Arc::clone(self);
                let worker = format!("{}/w{i}", self.settings.node);
                std::thread::Builder::new()
                    .name(format!("scribe-worker-{i}"))
                    .spawn(move || svc.worker_loop(&worker))
                    .expect("spawn worker thread")
            })
            .collect()
    }

    /// How often an idle worker asks a shared store for work (a start on this node wakes it
    /// at once).
    const CLAIM_POLL: Duration = Duration::from_millis(500);

    fn next_job(&self, worker: &str) -> Option<Next> {
        let shared = self.store.shared();
        let mut q = lock(&self.queue);
        loop {
            if q.stopping {
                return None;
            }
            if !shared {
                if let Some(n) = q.names.pop_front() {
                    self.metrics
                        .gauge_set("fhirscribe_queue_depth", "", q.names.len() as i64);
                    return Some(Next::Local(n));
                }
                q = self.wake.wait(q).unwrap_or_else(PoisonError::into_inner);
                continue;
            }
            drop(q);
            let t = Instant::now();
            let claimed = self.store.claim_next(worker, self.settings.job_lease);
            self.metrics
                .observe("fhirscribe_claim_seconds", "", t.elapsed().as_secs_f64());
            let pause = match claimed {
                Ok(Some(job)) => return Some(Next::Claimed(Box::new(job))),
                Ok(None) => Self::CLAIM_POLL,
                Err(e) => {
                    tracing::error!(error = %e, "claiming a job failed; retrying");
                    Self::CLAIM_POLL * 4
                }
            };
            q = lock(&self.queue);
            if q.stopping {
                return None;
            }
            q = self
                .wake
                .wait_timeout(q, pause)
                .unwrap_or_else(PoisonError::into_inner)
                .0;
        }
    }

    fn worker_loop(&self, worker: &str) {
        while let Some(next) = self.next_job(worker) {
            self.busy.fetch_add(1, Ordering::SeqCst);
            let t = Instant::now();
            let name = match &next {
                Next::Local(n) => n.clone(),
                Next::Claimed(j) => j.name.clone(),
            };
            let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| match next {
                Next::Local(name) => self.run_job(&name),
                Next::Claimed(job) => self.run_claimed(*job, worker),
            }));
            match r {
                Ok(Ok(())) => {}
                Ok(Err(e)) => tracing::error!(job = %name, error = %e, "job bookkeeping failed"),
                Err(_) => {
                    tracing::error!(job = %name, "job panicked");
                    let _ = self.fail_after_panic(&name);
                }
            }
            self.metrics.add_worker_busy(t.elapsed());
            self.busy.fetch_sub(1, Ordering::SeqCst);
        }
    }

    /// Asks the workers to stop after their current job; queued jobs stay QUEUED in the store.
    pub fn stop(&self) {
        lock(&self.queue).stopping = true;
        self.wake.notify_all();
    }

    /// Jobs being run now.
    pub fn busy(&self) -> usize {
        self.busy.load(Ordering::SeqCst)
    }

    /// Jobs waiting for a worker: this process's queue, or the shared store's count.
    pub fn queue_depth(&self) -> usize {
        match self.store.queued_count() {
            Ok(Some(n)) => n,
            Ok(None) => lock(&self.queue).names.len(),
            Err(e) => {
                tracing::warn!(error = %e, "cannot count queued jobs");
                0
            }
        }
    }

    fn fail_after_panic(&self, name: &str) -> Result<(), StoreError> {
        if let Some(mut job) = self.store.job(name)? {
            if job.status == MedicalScribeJobStatus::InProgress {
                job.status = MedicalScribeJobStatus::Failed;
                job.failure_reason = Some("internal error while processing the job".into());
                job.completion_time = Some(DateTime::now());
                if self.store.finish_job(&job, &[], self.media_to_drop(&job))? {
                    self.count_transition(MedicalScribeJobStatus::InProgress, job.status);
                }
            }
        }
        Ok(())
    }

    fn run_job(&self, name: &str) -> Result<(), StoreError> {
        let Some(mut job) = self.store.job(name)? else {
            return Ok(()); // deleted while queued
        };
        if job.status != MedicalScribeJobStatus::Queued {
            return Ok(());
        }
        let span = tracing::info_span!("job", job = %job.name, run = job.run + 1);
        let _g = span.enter();
        let queued_run = job.run;
        job.run += 1;
        job.status = MedicalScribeJobStatus::InProgress;
        job.start_time = Some(DateTime::now());
        if !self.store.update_job(&job, queued_run, "started")? {
            return Ok(());
        }
        self.count_transition(MedicalScribeJobStatus::Queued, job.status);
        tracing::info!("job started");
        self.run_started(job)
    }

    /// Runs a job this worker claimed in a shared store, renewing the claim's lease every
    /// third of it until the run is over. If the lease is lost anyway (this node stalled past
    /// it and another claimed the job), the run's final write is refused: the other run's
    /// `run` number replaced ours.
    fn run_claimed(&self, job: JobRecord, worker: &str) -> Result<(), StoreError> {
        let span = tracing::info_span!("job", job = %job.name, run = job.run);
        let _g = span.enter();
        self.metrics.gauge_add(
            "fhirscribe_jobs",
            status_label(MedicalScribeJobStatus::InProgress),
            1,
        );
        tracing::info!("job claimed");
        let lease = self.settings.job_lease;
        let (done_tx, done_rx) = std::sync::mpsc::channel::<()>();
        std::thread::scope(|s| {
            let name = job.name.clone();
            s.spawn(move || loop {
                match done_rx.recv_timeout(lease / 3) {
                    Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {}
                    _ => return,
                }
                match self.store.heartbeat(&name, worker, lease) {
                    Ok(true) => {}
                    Ok(false) => {
                        tracing::warn!("lease lost: another worker runs this job now");
                        return;
                    }
                    Err(e) => tracing::warn!(error = %e, "lease heartbeat failed; retrying"),
                }
            });
            let r = self.run_started(job);
            let _ = done_tx.send(());
            r
        })
    }

    /// Executes a job that is IN_PROGRESS under `job.run` and stores what it produced.
    fn run_started(&self, mut job: JobRecord) -> Result<(), StoreError> {
        let t = Instant::now();
        let result = self.execute(&job);
        job.completion_time = Some(DateTime::now());
        let files: Vec<(&str, Vec<u8>)> = match result {
            Ok(out) => {
                job.status = MedicalScribeJobStatus::Completed;
                job.audio_secs = Some(out.audio_secs);
                self.metrics.add_audio_secs(out.audio_secs);
                let mut files = vec![
                    (TRANSCRIPT, out.transcript_json),
                    (DOCUMENTATION, out.documentation_json),
                ];
                if let Some((bundle, _)) = out.bundle {
                    files.push((BUNDLE, bundle));
                }
                files
            }
            Err(reason) => {
                job.status = MedicalScribeJobStatus::Failed;
                job.failure_reason = Some(reason);
                Vec::new()
            }
        };
        job.outputs = files.iter().map(|(n, _)| n.to_string()).collect();
        job.delivery_queued = job.chart.is_none();
        let t_store = Instant::now();
        let borrowed: Vec<(&str, &[u8])> = files.iter().map(|(n, b)| (*n, b.as_slice())).collect();
        if !self
            .store
            .finish_job(&job, &borrowed, self.media_to_drop(&job))?
        {
            tracing::info!("job was deleted or re-run meanwhile; its outputs are dropped");
            return Ok(());
        }
        self.metrics.observe(
            "fhirscribe_stage_seconds",
            "stage=\"store\"",
            t_store.elapsed().as_secs_f64(),
        );
        self.metrics
            .observe("fhirscribe_job_seconds", "", t.elapsed().as_secs_f64());
        self.count_transition(MedicalScribeJobStatus::InProgress, job.status);
        tracing::info!(status = ?job.status, secs = t.elapsed().as_secs_f64(), "job finished");
        self.index_resources(&job)?;
        if job.status == MedicalScribeJobStatus::Completed && !job.delivery_queued {
            self.queue_delivery(&mut job)?;
        }
        Ok(())
    }

    /// The uploaded audio a finishing job deletes with its final record (unless the service
    /// or the job keeps audio).
    fn media_to_drop<'a>(&self, job: &'a JobRecord) -> Option<&'a str> {
        match &job.media {
            MediaSource::Upload { id } if !self.settings.retain_audio && !job.retain_audio => {
                Some(id.as_str())
            }
            _ => None,
        }
    }

    /// Puts a completed job's stored Bundle in its EHR's outbox (unless that EHR waits for
    /// review) and records that it did.
    fn queue_delivery(&self, job: &mut JobRecord) -> Result<(), StoreError> {
        let Some(chart) = &job.chart else {
            return Ok(());
        };
        let Some(ob) = self.outboxes.get(&chart.ehr) else {
            tracing::warn!(ehr = %chart.ehr, "the job's EHR is no longer configured; its Bundle stays undelivered");
            return Ok(());
        };
        if ob.write_back == WriteBack::AfterReview {
            return Ok(());
        }
        let Some(raw) = self.store.artifact(&job.name, BUNDLE)? else {
            return Ok(());
        };
        let bundle: Value = serde_json::from_slice(&raw).map_err(StoreError::Encode)?;
        let e = ob.outbox.enqueue(&job.id, bundle)?;
        job.delivery_queued = true;
        let run = job.run;
        if !self.store.update_job(job, run, "delivery_queued")? {
            // Deleted meanwhile: take the Bundle back out unless it already went.
            if e != Enqueued::AlreadyDelivered {
                ob.outbox.delete(&job.id)?;
            }
        }
        Ok(())
    }

    /// Reads, decodes and runs a job; the error is the job's `FailureReason` (no content).
    fn execute(&self, job: &JobRecord) -> Result<super::JobOutput, String> {
        let mut spec = JobSpec::from_request(&job.request, self.engine.jobs_config())
            .map_err(|e| e.to_string())?;
        spec.name = JobName::parse(&job.name).map_err(|e| e.to_string())?;
        if let Some(c) = &job.chart {
            spec = spec
                .with_chart(&c.patient, &c.encounter)
                .map_err(|e| e.to_string())?;
        }
        let t = Instant::now();
        let (bytes, ext) = self.read_media(&job.media)?;
        let pcm = super::decode_bytes(&spec, &bytes, ext.as_deref(), self.engine.limits())
            .map_err(|e| e.to_string())?;
        drop(bytes);
        self.metrics.observe(
            "fhirscribe_stage_seconds",
            "stage=\"decode\"",
            t.elapsed().as_secs_f64(),
        );
        let t = Instant::now();
        let mut last = Instant::now();
        let mut stage = "vad";
        let metrics = &self.metrics;
        let out = super::run_decoded(&spec, &pcm, &self.engine, |p| {
            if let crate::pipeline::Progress::Asr { window: 0, .. } = p {
                metrics.observe(
                    "fhirscribe_stage_seconds",
                    format!("stage=\"{stage}\""),
                    last.elapsed().as_secs_f64(),
                );
                last = Instant::now();
                stage = "asr";
            }
        })
        .map_err(|e| e.to_string())?;
        self.metrics.observe(
            "fhirscribe_stage_seconds",
            "stage=\"scribe\"",
            t.elapsed().as_secs_f64(),
        );
        Ok(out)
    }

    fn read_media(&self, media: &MediaSource) -> Result<(Vec<u8>, Option<String>), String> {
        match media {
            MediaSource::Upload { id } => {
                let rec = self
                    .store
                    .media_record(id)
                    .map_err(|_| "the job store failed reading the media".to_string())?
                    .ok_or("the uploaded media was deleted before the job ran")?;
                let bytes = self
                    .store
                    .media_bytes(id)
                    .map_err(|_| "the job store failed reading the media".to_string())?
                    .ok_or("the uploaded media was deleted before the job ran")?;
                Ok((bytes, Some(rec.format)))
            }
            MediaSource::File { path } => {
                let bytes =
                    std::fs::read(path).map_err(|e| format!("cannot read the media file: {e}"))?;
                let ext = path
                    .extension()
                    .and_then(|e| e.to_str())
                    .map(str::to_ascii_lowercase);
                Ok((bytes, ext))
            }
            MediaSource::Url { url } => fetch_url(url, self.settings.max_upload_bytes),
        }
    }

    // -----------------------------------------------------------------------------------------
    // Delivery and readiness

    pub fn delivery_heartbeat(&self) {
        self.delivery_beat
            .store(crate::store::outbox::now_ms(), Ordering::Relaxed);
    }

    /// Whether the delivery loop ran within the last `within`.
    pub fn delivery_alive(&self, within: Duration) -> bool {
        let beat = self.delivery_beat.load(Ordering::Relaxed);
        beat > 0 && crate::store::outbox::now_ms().saturating_sub(beat) <= within.as_millis() as u64
    }

    pub fn is_stopping(&self) -> bool {
        lock(&self.queue).stopping
    }
}

/// Fetches remote media (already checked against the configured prefixes), refusing
/// redirects (they could lead outside the prefix) and bodies above `limit`.
fn fetch_url(url: &str, limit: usize) -> Result<(Vec<u8>, Option<String>), String> {
    use std::io::Read;
    let client = reqwest::blocking::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(Duration::from_secs(300))
        .build()
        .map_err(|e| format!("cannot fetch the media: {e}"))?;
    let resp = client
        .get(url)
        .send()
        .map_err(|_| "cannot fetch the media URL (connection failed)".to_string())?;
    if !resp.status().is_success() {
        return Err(format!(
            "fetching the media URL answered HTTP {}",
            resp.status().as_u16()
        ));
    }
    let mut bytes = Vec::new();
    resp.take(limit as u64 + 1)
        .read_to_end(&mut bytes)
        .map_err(|_| "reading the media URL failed".to_string())?;
    if bytes.len() > limit {
        return Err(format!("the media at the URL is larger than {limit} bytes"));
    }
    let ext = super::sniff_audio(&bytes).map(str::to_owned);
    Ok((bytes, ext))
}

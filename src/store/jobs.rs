//! Jobs, uploaded audio, job outputs and the audit trail of the service, behind [`JobStore`] so
//! a server-grade backend can replace sled without touching the service.
//!
//! Invariants (and why):
//! - **Accepted = durable.** Every call that changes state is one sled transaction, flushed
//!   before it returns: a job the API answered for survives a SIGKILL.
//! - **Outputs appear whole, once.** A job's output files, its COMPLETED record and the
//!   `completed` audit event are written in one transaction ([`JobStore::finish_job`]): no
//!   reader ever sees a half-written file or a COMPLETED job without its files, and a job re-run
//!   after a crash writes its files once (the crashed run wrote nothing).
//! - **A run owns its job by `run`.** [`JobStore::update_job`] and [`JobStore::finish_job`]
//!   apply only while the stored record is the same run (same `run` number, not deleted), so a
//!   deleted job is never brought back by a worker that was still busy with it.
//! - **The job count is exact.** A counter in the same transactions as create and delete
//!   enforces `max_jobs` without a scan.

use serde::{Deserialize, Serialize};
use sled::transaction::{ConflictableTransactionError, TransactionError, Transactional};

use super::StoreError;
use crate::healthscribe::{DateTime, MedicalScribeJobStatus, StartMedicalScribeJobRequest};
pub use crate::jobs::MediaSource;

const JOBS: &str = "jobs";
const ARTIFACTS: &str = "job_artifacts";
const MEDIA: &str = "media";
const MEDIA_META: &str = "media_meta";
const AUDIT: &str = "audit";
const META: &str = "jobs_meta";
const COUNT: &[u8] = b"job_count";

/// Where a completed job's Bundle goes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChartTarget {
    /// A configured EHR's name.
    pub ehr: String,
    /// `Patient/<id>`.
    pub patient: String,
    /// `Encounter/<id>`.
    pub encounter: String,
}

/// Who created a job and what that caller may see.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct Owner {
    pub subject: String,
    /// Set for patient-context callers: only jobs of this patient id are theirs.
    pub patient: Option<String>,
}

/// One job as the service keeps it. Holds PHI-free metadata and the request (which names
/// the patient's context only through references).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct JobRecord {
    pub name: String,
    /// Unique per creation (a deleted and re-created name gets a new one): the outbox id.
    pub id: String,
    pub status: MedicalScribeJobStatus,
    pub request: StartMedicalScribeJobRequest,
    pub media: MediaSource,
    pub chart: Option<ChartTarget>,
    pub owner: Owner,
    /// Order of creation (list order and paging).
    pub seq: u64,
    pub creation_time: DateTime,
    pub start_time: Option<DateTime>,
    pub completion_time: Option<DateTime>,
    pub failure_reason: Option<String>,
    /// Runs started (a crash or restart re-runs an IN_PROGRESS job: 2, 3, …).
    pub run: u32,
    pub audio_secs: Option<f64>,
    /// Output file names stored for this job.
    pub outputs: Vec<String>,
    /// The Bundle is in the outbox (or needs no delivery): recovery enqueues the others.
    pub delivery_queued: bool,
    /// Keep the uploaded audio after the job completes (the review page plays it) until the
    /// job is deleted, whatever `server.retain_audio` says.
    #[serde(default)]
    pub retain_audio: bool,
}

/// What was uploaded; the bytes live apart.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MediaRecord {
    pub id: String,
    /// File extension the decoder is told (`wav`, `flac`, …), from the bytes' signature.
    pub format: String,
    pub bytes: u64,
    pub owner: Owner,
    pub created_ms: u64,
}

/// One line of the audit trail: what happened to which job, never content.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditEvent {
    pub at_ms: u64,
    pub event: String,
    pub job: String,
    #[serde(default)]
    pub detail: Option<String>,
}

/// The audit event a finished run writes (`completed` or `failed`): shared by the backends,
/// since followers of the audit trail ([`JobStore::changes_since`]) read it.
pub(crate) fn finish_event(job: &JobRecord) -> &'static str {
    match job.status {
        MedicalScribeJobStatus::Completed => "completed",
        _ => "failed",
    }
}

/// The service's durable state. Calls block on disk I/O: async callers use a blocking pool.
pub trait JobStore: Send + Sync {
    fn put_media(&self, media: &MediaRecord, bytes: &[u8]) -> Result<(), StoreError>;
    fn media_record(&self, id: &str) -> Result<Option<MediaRecord>, StoreError>;
    fn media_bytes(&self, id: &str) -> Result<Option<Vec<u8>>, StoreError>;
    fn delete_media(&self, id: &str) -> Result<bool, StoreError>;
    /// Stores a new job: [`StoreError::Exists`] for a taken name, [`StoreError::Full`] when
    /// `max_jobs` are stored.
    fn create_job(&self, job: &JobRecord, max_jobs: usize) -> Result<(), StoreError>;
    fn job(&self, name: &str) -> Result<Option<JobRecord>, StoreError>;
    /// Replaces the record if the stored one is the same creation (`id`) and `expected_run`;
    /// false when it was deleted or re-run meanwhile. `event` goes to the audit trail.
    fn update_job(
        &self,
        job: &JobRecord,
        expected_run: u32,
        event: &str,
    ) -> Result<bool, StoreError>;
    /// Final state, output files, the audit event and (`drop_media`) the deletion of the
    /// uploaded audio in one transaction (see the module invariants): nobody sees the job
    /// finished while its audio is still kept, and a stop in between cannot leave the audio
    /// behind. False when the job was deleted or re-run meanwhile (nothing written).
    fn finish_job(
        &self,
        job: &JobRecord,
        files: &[(&str, &[u8])],
        drop_media: Option<&str>,
    ) -> Result<bool, StoreError>;
    fn artifact(&self, name: &str, file: &str) -> Result<Option<Vec<u8>>, StoreError>;
    /// Removes the record and its files; the removed record, if there was one.
    fn delete_job(&self, name: &str) -> Result<Option<JobRecord>, StoreError>;
    /// Every job, in creation order.
    fn jobs(&self) -> Result<Vec<JobRecord>, StoreError>;
    fn job_count(&self) -> Result<usize, StoreError>;
    fn audit(&self) -> Result<Vec<AuditEvent>, StoreError>;
    /// A write and flush round trip (readiness).
    fn check_writable(&self) -> Result<(), StoreError>;
    /// Whether several processes share this store. Their workers then take jobs with
    /// [`JobStore::claim_next`] instead of an in-process queue, keep them with
    /// [`JobStore::heartbeat`], and a job whose worker died is claimed again when its lease
    /// runs out (the embedded store belongs to one process: a stop re-queues its jobs).
    fn shared(&self) -> bool {
        false
    }
    /// Claims the oldest runnable job for `worker` until `lease` from now: it comes back
    /// IN_PROGRESS with `run` counted up, so an earlier run's writes no longer apply. Only
    /// shared stores claim; the others answer `None`.
    fn claim_next(
        &self,
        _worker: &str,
        _lease: std::time::Duration,
    ) -> Result<Option<JobRecord>, StoreError> {
        Ok(None)
    }
    /// Extends `worker`'s lease on `name`; false when the lease is no longer its own.
    fn heartbeat(
        &self,
        _name: &str,
        _worker: &str,
        _lease: std::time::Duration,
    ) -> Result<bool, StoreError> {
        Ok(true)
    }
    /// Jobs waiting for a worker, counted by the store (shared stores; `None` elsewhere, where
    /// the process's own queue knows).
    fn queued_count(&self) -> Result<Option<usize>, StoreError> {
        Ok(None)
    }
    /// Completions and deletions recorded after audit position `after`, oldest first, at most
    /// `limit`, with their positions (shared stores: how a process learns what the others
    /// did; `None` elsewhere).
    fn changes_since(
        &self,
        _after: u64,
        _limit: usize,
    ) -> Result<Option<Vec<(u64, AuditEvent)>>, StoreError> {
        Ok(None)
    }
    /// A new, never reused sequence number.
    fn next_seq(&self) -> Result<u64, StoreError>;
}

/// [`JobStore`] on sled.
#[derive(Clone)]
pub struct SledJobStore {
    db: sled::Db,
    jobs: sled::Tree,
    artifacts: sled::Tree,
    media: sled::Tree,
    media_meta: sled::Tree,
    audit: sled::Tree,
    meta: sled::Tree,
}

fn encode<T: Serialize>(v: &T) -> Result<Vec<u8>, StoreError> {
    serde_json::to_vec(v).map_err(StoreError::Encode)
}

fn decode<T: for<'de> Deserialize<'de>>(key: &[u8], raw: &[u8]) -> Result<T, StoreError> {
    serde_json::from_slice(raw).map_err(|e| StoreError::Corrupt {
        key: String::from_utf8_lossy(key).into_owned(),
        reason: e.to_string(),
    })
}

fn artifact_key(name: &str, file: &str) -> Vec<u8> {
    let mut k = name.as_bytes().to_vec();
    k.push(0);
    k.extend_from_slice(file.as_bytes());
    k
}

type TxResult<T> = Result<T, ConflictableTransactionError<StoreError>>;

fn unwrap_tx<T>(r: Result<T, TransactionError<StoreError>>) -> Result<T, StoreError> {
    match r {
        Ok(v) => Ok(v),
        Err(TransactionError::Abort(e)) => Err(e),
        Err(TransactionError::Storage(e)) => Err(e.into()),
    }
}

fn abort<T>(e: StoreError) -> TxResult<T> {
    Err(ConflictableTransactionError::Abort(e))
}

/// Whether the stored record is `job`'s creation at run `run` (not deleted, re-created or
/// re-run meanwhile): a worker's writes apply only then.
fn is_current(
    jobs: &sled::transaction::TransactionalTree,
    job: &JobRecord,
    run: u32,
) -> TxResult<bool> {
    let Some(raw) = jobs.get(job.name.as_bytes())? else {
        return Ok(false);
    };
    let now: JobRecord = decode(job.name.as_bytes(), &raw).or_else(abort)?;
    Ok(now.id == job.id && now.run == run)
}

impl SledJobStore {
    pub fn in_db(db: &sled::Db) -> Result<Self, StoreError> {
        Ok(Self {
            db: db.clone(),
            jobs: db.open_tree(JOBS)?,
            artifacts: db.open_tree(ARTIFACTS)?,
            media: db.open_tree(MEDIA)?,
            media_meta: db.open_tree(MEDIA_META)?,
            audit: db.open_tree(AUDIT)?,
            meta: db.open_tree(META)?,
        })
    }

    fn audit_value(
        &self,
        event: &str,
        job: &str,
        detail: Option<String>,
    ) -> Result<(Vec<u8>, Vec<u8>), StoreError> {
        let key = self.db.generate_id()?.to_be_bytes().to_vec();
        let value = encode(&AuditEvent {
            at_ms: super::outbox::now_ms(),
            event: event.into(),
            job: job.into(),
            detail,
        })?;
        Ok((key, value))
    }

    fn flush(&self) -> Result<(), StoreError> {
        self.db.flush()?;
        Ok(())
    }
}

fn read_count(raw: Option<sled::IVec>) -> u64 {
    raw.and_then(|v| v.as_ref().try_into().ok().map(u64::from_be_bytes))
        .unwrap_or(0)
}

impl JobStore for SledJobStore {
    fn put_media(&self, media: &MediaRecord, bytes: &[u8]) -> Result<(), StoreError> {
        let meta = encode(media)?;
        let r = (&self.media, &self.media_meta).transaction(|(m, mm)| {
            m.insert(media.id.as_bytes(), bytes)?;
            mm.insert(media.id.as_bytes(), meta.as_slice())?;
            Ok(())
        });
        unwrap_tx(r)?;
        self.flush()
    }

    fn media_record(&self, id: &str) -> Result<Option<MediaRecord>, StoreError> {
        self.media_meta
            .get(id)?
            .map(|v| decode(id.as_bytes(), &v))
            .transpose()
    }

    fn media_bytes(&self, id: &str) -> Result<Option<Vec<u8>>, StoreError> {
        Ok(self.media.get(id)?.map(|v| v.to_vec()))
    }

    fn delete_media(&self, id: &str) -> Result<bool, StoreError> {
        let r = (&self.media, &self.media_meta).transaction(|(m, mm)| {
            let a = m.remove(id.as_bytes())?;
            let b = mm.remove(id.as_bytes())?;
            Ok(a.is_some() || b.is_some())
        });
        let removed = unwrap_tx(r)?;
        self.flush()?;
        Ok(removed)
    }

    fn create_job(&self, job: &JobRecord, max_jobs: usize) -> Result<(), StoreError> {
        let value = encode(job)?;
        let (akey, aval) = self.audit_value("created", &job.name, None)?;
        let r = (&self.jobs, &self.meta, &self.audit).transaction(|(jobs, meta, audit)| {
            if jobs.get(job.name.as_bytes())?.is_some() {
                return abort(StoreError::Exists(job.name.clone()));
            }
            let n = read_count(meta.get(COUNT)?);
            if n as usize >= max_jobs {
                return abort(StoreError::Full { limit: max_jobs });
            }
            jobs.insert(job.name.as_bytes(), value.as_slice())?;
            meta.insert(COUNT, &(n + 1).to_be_bytes())?;
            audit.insert(akey.as_slice(), aval.as_slice())?;
            Ok(())
        });
        unwrap_tx(r)?;
        self.flush()
    }

    fn job(&self, name: &str) -> Result<Option<JobRecord>, StoreError> {
        self.jobs
            .get(name)?
            .map(|v| decode(name.as_bytes(), &v))
            .transpose()
    }

    fn update_job(
        &self,
        job: &JobRecord,
        expected_run: u32,
        event: &str,
    ) -> Result<bool, StoreError> {
        let value = encode(job)?;
        let (akey, aval) = self.audit_value(event, &job.name, None)?;
        let r = (&self.jobs, &self.audit).transaction(|(jobs, audit)| {
            if !is_current(jobs, job, expected_run)? {
                return Ok(false);
            }
            jobs.insert(job.name.as_bytes(), value.as_slice())?;
            audit.insert(akey.as_slice(), aval.as_slice())?;
            Ok(true)
        });
        let applied = unwrap_tx(r)?;
        self.flush()?;
        Ok(applied)
    }

    fn finish_job(
        &self,
        job: &JobRecord,
        files: &[(&str, &[u8])],
        drop_media: Option<&str>,
    ) -> Result<bool, StoreError> {
        let value = encode(job)?;
        let event = finish_event(job);
        let names: Vec<&str> = files.iter().map(|(n, _)| *n).collect();
        let (akey, aval) = self.audit_value(event, &job.name, Some(names.join(",")))?;
        let trees = (
            &self.jobs,
            &self.artifacts,
            &self.audit,
            &self.media,
            &self.media_meta,
        );
        let r = trees.transaction(|(jobs, arts, audit, media, media_meta)| {
            if !is_current(jobs, job, job.run)? {
                return Ok(false);
            }
            for (file, bytes) in files {
                arts.insert(artifact_key(&job.name, file), *bytes)?;
            }
            if let Some(id) = drop_media {
                media.remove(id.as_bytes())?;
                media_meta.remove(id.as_bytes())?;
            }
            jobs.insert(job.name.as_bytes(), value.as_slice())?;
            audit.insert(akey.as_slice(), aval.as_slice())?;
            Ok(true)
        });
        let applied = unwrap_tx(r)?;
        self.flush()?;
        Ok(applied)
    }

    fn artifact(&self, name: &str, file: &str) -> Result<Option<Vec<u8>>, StoreError> {
        Ok(self
            .artifacts
            .get(artifact_key(name, file))?
            .map(|v| v.to_vec()))
    }

    fn delete_job(&self, name: &str) -> Result<Option<JobRecord>, StoreError> {
        let Some(job) = self.job(name)? else {
            return Ok(None);
        };
        let keys: Vec<Vec<u8>> = job.outputs.iter().map(|f| artifact_key(name, f)).collect();
        let (akey, aval) = self.audit_value("deleted", name, None)?;
        let r = (&self.jobs, &self.artifacts, &self.meta, &self.audit).transaction(
            |(jobs, arts, meta, audit)| {
                if jobs.remove(name.as_bytes())?.is_none() {
                    return Ok(false);
                }
                for k in &keys {
                    arts.remove(k.as_slice())?;
                }
                let n = read_count(meta.get(COUNT)?);
                meta.insert(COUNT, &n.saturating_sub(1).to_be_bytes())?;
                audit.insert(akey.as_slice(), aval.as_slice())?;
                Ok(true)
            },
        );
        let removed = unwrap_tx(r)?;
        // Files a finishing run wrote after the record was read (a race with a worker).
        for k in self.artifacts.scan_prefix(artifact_key(name, "")).keys() {
            self.artifacts.remove(k?)?;
        }
        self.flush()?;
        Ok(removed.then_some(job))
    }

    fn jobs(&self) -> Result<Vec<JobRecord>, StoreError> {
        let mut all = self
            .jobs
            .iter()
            .map(|kv| {
                let (k, v) = kv?;
                decode::<JobRecord>(&k, &v)
            })
            .collect::<Result<Vec<_>, _>>()?;
        all.sort_by_key(|j| j.seq);
        Ok(all)
    }

    fn job_count(&self) -> Result<usize, StoreError> {
        Ok(read_count(self.meta.get(COUNT)?) as usize)
    }

    fn audit(&self) -> Result<Vec<AuditEvent>, StoreError> {
        self.audit
            .iter()
            .map(|kv| {
                let (k, v) = kv?;
                decode(&k, &v)
            })
            .collect()
    }

    fn check_writable(&self) -> Result<(), StoreError> {
        self.meta
            .insert(b"ready_probe", &super::outbox::now_ms().to_be_bytes())?;
        self.flush()
    }

    fn next_seq(&self) -> Result<u64, StoreError> {
        Ok(self.db.generate_id()?)
    }
}

/// The behaviour every [`JobStore`] backend must have, as one suite that the sled store's unit
/// tests and `tests/store_backends.rs` (sled and PostgreSQL) run: each check panics with what
/// went wrong. Needs an empty store.
#[doc(hidden)]
pub mod conformance {
    use super::*;
    use crate::healthscribe::{Media, MedicalScribeSettings};

    pub fn record(store: &dyn JobStore, name: &str) -> JobRecord {
        JobRecord {
            name: name.into(),
            id: uuid::Uuid::new_v4().to_string(),
            status: MedicalScribeJobStatus::Queued,
            request: StartMedicalScribeJobRequest {
                medical_scribe_job_name: name.into(),
                media: Media {
                    media_file_uri: Some("media://x".into()),
                    redacted_media_file_uri: None,
                },
                output_bucket_name: "out".into(),
                output_encryption_kms_key_id: None,
                kms_encryption_context: None,
                data_access_role_arn: None,
                settings: MedicalScribeSettings::default(),
                channel_definitions: None,
                tags: None,
                medical_scribe_context: None,
            },
            media: MediaSource::Upload { id: "x".into() },
            chart: None,
            owner: Owner::default(),
            seq: store.next_seq().unwrap(),
            creation_time: DateTime::now(),
            start_time: None,
            completion_time: None,
            failure_reason: None,
            run: 0,
            audio_secs: None,
            outputs: vec![],
            delivery_queued: false,
            retain_audio: false,
        }
    }

    /// Every check, in order, on one empty store.
    pub fn run_all(s: &(dyn JobStore + Sync)) {
        names_are_unique_and_the_limit_counts_live_jobs(s);
        a_finished_run_writes_files_once_and_never_revives_a_deleted_job(s);
        media_round_trips_and_deletes(s);
        the_limit_holds_under_concurrent_creates(s);
        s.check_writable().unwrap();
    }

    pub fn names_are_unique_and_the_limit_counts_live_jobs(s: &dyn JobStore) {
        s.create_job(&record(s, "a"), 2).unwrap();
        assert!(matches!(
            s.create_job(&record(s, "a"), 2),
            Err(StoreError::Exists(_))
        ));
        s.create_job(&record(s, "b"), 2).unwrap();
        assert!(matches!(
            s.create_job(&record(s, "c"), 2),
            Err(StoreError::Full { limit: 2 })
        ));
        assert!(s.delete_job("a").unwrap().is_some());
        assert!(s.delete_job("a").unwrap().is_none());
        s.create_job(&record(s, "c"), 2).unwrap();
        assert_eq!(s.job_count().unwrap(), 2);
        let names: Vec<_> = s.jobs().unwrap().into_iter().map(|j| j.name).collect();
        assert_eq!(names, ["b", "c"]);
        for n in ["b", "c"] {
            s.delete_job(n).unwrap();
        }
        assert_eq!(s.job_count().unwrap(), 0);
    }

    pub fn a_finished_run_writes_files_once_and_never_revives_a_deleted_job(s: &dyn JobStore) {
        let mut j = record(s, "fin");
        s.create_job(&j, 10).unwrap();
        j.run = 1;
        j.status = MedicalScribeJobStatus::InProgress;
        assert!(s.update_job(&j, 0, "started").unwrap());
        // A stale run (the job was re-run since) changes nothing.
        let mut stale = j.clone();
        stale.run = 0;
        stale.status = MedicalScribeJobStatus::Completed;
        let audio = MediaRecord {
            id: "fin-audio".into(),
            format: "wav".into(),
            bytes: 1,
            owner: Owner::default(),
            created_ms: 1,
        };
        s.put_media(&audio, b"a").unwrap();
        assert!(!s
            .finish_job(&stale, &[("t.json", b"x")], Some("fin-audio"))
            .unwrap());
        assert_eq!(s.artifact("fin", "t.json").unwrap(), None);
        assert!(
            s.media_record("fin-audio").unwrap().is_some(),
            "a stale run deletes nothing"
        );
        j.status = MedicalScribeJobStatus::Completed;
        j.outputs = vec!["t.json".into()];
        assert!(s
            .finish_job(&j, &[("t.json", b"{}")], Some("fin-audio"))
            .unwrap());
        assert_eq!(s.artifact("fin", "t.json").unwrap().unwrap(), b"{}");
        assert_eq!(
            s.media_bytes("fin-audio").unwrap(),
            None,
            "the audio goes with the finish"
        );
        assert_eq!(s.media_record("fin-audio").unwrap(), None);
        assert_eq!(s.job("fin").unwrap().unwrap(), j);
        let completed = s
            .audit()
            .unwrap()
            .into_iter()
            .filter(|e| e.event == "completed" && e.job == "fin")
            .count();
        assert_eq!(completed, 1);
        s.delete_job("fin").unwrap();
        assert_eq!(s.artifact("fin", "t.json").unwrap(), None);
        assert!(!s.finish_job(&j, &[("t.json", b"{}")], None).unwrap());
        assert!(!s.update_job(&j, 1, "started").unwrap());
        assert_eq!(s.job("fin").unwrap(), None);
        // A new creation under the same name is another job: the old run cannot touch it.
        let again = record(s, "fin");
        s.create_job(&again, 10).unwrap();
        assert!(!s.update_job(&j, 1, "started").unwrap());
        assert_eq!(s.job("fin").unwrap().unwrap().id, again.id);
        s.delete_job("fin").unwrap();
    }

    pub fn media_round_trips_and_deletes(s: &dyn JobStore) {
        let m = MediaRecord {
            id: "m1".into(),
            format: "wav".into(),
            bytes: 3,
            owner: Owner::default(),
            created_ms: 1,
        };
        s.put_media(&m, b"abc").unwrap();
        assert_eq!(s.media_record("m1").unwrap().unwrap(), m);
        assert_eq!(s.media_bytes("m1").unwrap().unwrap(), b"abc");
        // Larger than one PostgreSQL chunk row (1 MiB), not a multiple of it, and replaced.
        let big: Vec<u8> = (0..(2 << 20) + 12_345)
            .map(|i| (i * 7 % 251) as u8)
            .collect();
        s.put_media(&m, &big).unwrap();
        assert!(
            s.media_bytes("m1").unwrap().unwrap() == big,
            "big media round trip"
        );
        s.put_media(&m, b"xyz").unwrap();
        assert_eq!(s.media_bytes("m1").unwrap().unwrap(), b"xyz");
        assert!(s.delete_media("m1").unwrap());
        assert_eq!(s.media_bytes("m1").unwrap(), None);
        assert!(!s.delete_media("m1").unwrap());
    }

    /// Sixteen creates racing for five places: exactly five jobs exist afterwards.
    pub fn the_limit_holds_under_concurrent_creates(s: &(dyn JobStore + Sync)) {
        let made = std::sync::atomic::AtomicUsize::new(0);
        std::thread::scope(|scope| {
            for i in 0..16 {
                let made = &made;
                scope.spawn(
                    move || match s.create_job(&record(s, &format!("race-{i}")), 5) {
                        Ok(()) => {
                            made.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                        }
                        Err(StoreError::Full { .. }) => {}
                        Err(e) => panic!("{e}"),
                    },
                );
            }
        });
        assert_eq!(made.into_inner(), 5);
        assert_eq!(s.job_count().unwrap(), 5);
        assert_eq!(s.jobs().unwrap().len(), 5);
        let seqs: Vec<u64> = s.jobs().unwrap().iter().map(|j| j.seq).collect();
        assert!(seqs.windows(2).all(|w| w[0] < w[1]), "{seqs:?}");
        for j in s.jobs().unwrap() {
            s.delete_job(&j.name).unwrap();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_sled_store_passes_the_backend_suite() {
        let dir = tempfile::tempdir().unwrap();
        let db = super::super::open_db(dir.path()).unwrap();
        conformance::run_all(&SledJobStore::in_db(&db).unwrap());
    }
}

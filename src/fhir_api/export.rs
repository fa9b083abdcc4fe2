//! FHIR Bulk Data Access (`$export`, Flat FHIR): kick-off, status, manifest, NDJSON files and
//! cancel, over [`crate::store::ResourceStore`]. Knows no HTTP: the routes call
//! [`Exports::kick_off`], [`Exports::status`], [`Exports::cancel`] and [`Exports::file`].
//!
//! Invariants (and why):
//! - **A snapshot.** An export holds what was stored at its `transactionTime`: resources
//!   stored later are skipped, so a manifest never mixes two states of one job.
//! - **Streams, never buffers.** Resources go one at a time from a key scan to a buffered file
//!   writer; an export of any size holds one resource in memory.
//! - **Only its client sees it.** Status, files and cancel answer only the client that kicked
//!   it off (anyone else gets 404, as if it did not exist).
//! - **Accepted = durable.** The record is flushed before the kick-off answers; an export cut
//!   off by a stop runs again from the start at the next start, to the same snapshot.
//! - **Nothing kept forever.** Files and records go on cancel (DELETE) or after the retention
//!   time, whichever comes first.

use std::collections::{BTreeMap, BTreeSet};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use super::read::{date_range, ReadError, TYPES};
use crate::healthscribe::DateTime;
use crate::store::{ResourceStore, StoreError};

const EXPORTS: &str = "fhir_exports";

/// Types in a patient's compartment (what Patient- and Group-level exports may hold).
pub const PATIENT_TYPES: &[&str] = &[
    "DocumentReference",
    "Condition",
    "MedicationStatement",
    "Provenance",
];

/// Lines per NDJSON file before the next one starts.
const LINES_PER_FILE: usize = 100_000;

/// Which resources an export covers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum ExportLevel {
    System,
    /// Every patient's compartment.
    Patient,
    /// The compartments of a group's patients.
    Group(String),
}

/// A parsed kick-off request.
#[derive(Debug, Clone, PartialEq)]
pub struct ExportRequest {
    pub level: ExportLevel,
    pub types: Vec<String>,
    pub since_ms: Option<i64>,
}

/// Parses a kick-off's parameters (strict unless `lenient`, as the Bulk Data spec asks).
pub fn parse_export(
    level: ExportLevel,
    pairs: &[(String, String)],
    lenient: bool,
) -> Result<ExportRequest, ReadError> {
    let allowed: &[&str] = match level {
        ExportLevel::System => TYPES,
        _ => PATIENT_TYPES,
    };
    let mut types: Vec<String> = Vec::new();
    let mut since_ms = None;
    for (name, value) in pairs {
        match name.as_str() {
            "_outputFormat" => {
                if !matches!(
                    value.as_str(),
                    "application/fhir+ndjson" | "application/ndjson" | "ndjson"
                ) {
                    return Err(ReadError::NotSupported(format!(
                        "_outputFormat {value:?}: only application/fhir+ndjson is written"
                    )));
                }
            }
            "_type" => {
                for t in value.split(',').map(str::trim).filter(|t| !t.is_empty()) {
                    if !allowed.contains(&t) {
                        if lenient {
                            continue;
                        }
                        return Err(ReadError::NotSupported(format!(
                            "_type {t}: this export can hold {}",
                            allowed.join(", ")
                        )));
                    }
                    if !types.iter().any(|x| x == t) {
                        types.push(t.to_owned());
                    }
                }
            }
            "_since" => {
                let (start, _) = date_range(value)
                    .filter(|_| value.contains('T'))
                    .ok_or_else(|| {
                        ReadError::Invalid(format!(
                            "_since: {value:?} is not a FHIR instant (YYYY-MM-DDThh:mm:ss[.fff](Z|±hh:mm))"
                        ))
                    })?;
                since_ms = Some(start);
            }
            other => {
                if !lenient {
                    return Err(ReadError::NotSupported(format!(
                        "the $export parameter {other:?} is not supported (_outputFormat, _type, _since)"
                    )));
                }
            }
        }
    }
    if types.is_empty() {
        types = allowed.iter().map(|t| t.to_string()).collect();
    }
    Ok(ExportRequest {
        level,
        types,
        since_ms,
    })
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum ExportState {
    Running,
    Completed,
    Failed,
}

/// One NDJSON file of a finished export.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExportFile {
    pub resource_type: String,
    pub name: String,
    pub count: usize,
}

/// An export as stored.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ExportRecord {
    pub id: String,
    /// The client (token `client_id`/`sub`) that kicked it off.
    pub owner: String,
    /// The kick-off URL, as the manifest's `request`.
    pub request_url: String,
    pub level: ExportLevel,
    pub types: Vec<String>,
    pub since_ms: Option<i64>,
    /// The snapshot: resources stored after it are not exported.
    pub transaction_ms: i64,
    /// The patients of a Patient- or Group-level export, fixed at kick-off (None: system).
    pub patients: Option<Vec<String>>,
    pub state: ExportState,
    pub files: Vec<ExportFile>,
    pub error: Option<String>,
}

/// What a status request answers.
pub enum ExportStatus {
    /// Still running: resources written so far and the total to write.
    InProgress {
        done: u64,
        total: u64,
    },
    /// The manifest.
    Completed(Value),
    Failed(String),
}

/// Export settings.
#[derive(Debug, Clone)]
pub struct ExportSettings {
    /// Where NDJSON files are written (one folder per export).
    pub dir: PathBuf,
    /// Group id → patient ids (`all`: every patient with resources, built in).
    pub groups: BTreeMap<String, Vec<String>>,
    /// How long a finished export's files are kept.
    pub retention: Duration,
    /// Exports running at once before kick-offs get 429.
    pub max_running: usize,
    /// The FHIR base URL (manifest file URLs).
    pub base: String,
}

struct Running {
    done: AtomicU64,
    total: u64,
    cancel: AtomicBool,
}

/// The Bulk Data exports of one service; share it in an `Arc`.
pub struct Exports {
    resources: ResourceStore,
    tree: sled::Tree,
    settings: ExportSettings,
    running: Mutex<BTreeMap<String, Arc<Running>>>,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

fn now_ms() -> i64 {
    crate::store::outbox::now_ms() as i64
}

fn encode(r: &ExportRecord) -> Result<Vec<u8>, StoreError> {
    serde_json::to_vec(r).map_err(StoreError::Encode)
}

/// Why a kick-off was refused beyond a bad request.
#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    #[error(transparent)]
    Request(#[from] ReadError),
    /// 429: too many exports running.
    #[error("{0} exports are running; try again later")]
    Busy(usize),
}

impl From<StoreError> for ExportError {
    fn from(e: StoreError) -> Self {
        ExportError::Request(ReadError::Store(e))
    }
}

impl Exports {
    pub fn new(
        db: &sled::Db,
        resources: ResourceStore,
        settings: ExportSettings,
    ) -> Result<Arc<Exports>, StoreError> {
        std::fs::create_dir_all(&settings.dir).map_err(|e| StoreError::Corrupt {
            key: settings.dir.display().to_string(),
            reason: e.to_string(),
        })?;
        Ok(Arc::new(Exports {
            resources,
            tree: db.open_tree(EXPORTS)?,
            settings,
            running: Mutex::new(BTreeMap::new()),
        }))
    }

    pub fn groups(&self) -> Vec<String> {
        self.settings.groups.keys().cloned().collect()
    }

    fn record(&self, id: &str) -> Result<Option<ExportRecord>, StoreError> {
        self.tree
            .get(id.as_bytes())?
            .map(|raw| {
                serde_json::from_slice(&raw).map_err(|e| StoreError::Corrupt {
                    key: format!("export {id}"),
                    reason: e.to_string(),
                })
            })
            .transpose()
    }

    fn put(&self, r: &ExportRecord) -> Result<(), StoreError> {
        self.tree.insert(r.id.as_bytes(), encode(r)?)?;
        self.tree.flush()?;
        Ok(())
    }

    fn folder(&self, id: &str) -> PathBuf {
        self.settings.dir.join(id)
    }

    /// Starts an export for `owner`; returns its id once it is durable.
    pub fn kick_off(
        self: &Arc<Self>,
        req: ExportRequest,
        owner: &str,
        request_url: &str,
    ) -> Result<String, ExportError> {
        self.expire()?;
        let running = lock(&self.running).len();
        if running >= self.settings.max_running {
            return Err(ExportError::Busy(running));
        }
        let patients = match &req.level {
            ExportLevel::System => None,
            ExportLevel::Patient => Some(self.resources.patients()?),
            ExportLevel::Group(g) if g == "all" && !self.settings.groups.contains_key(g) => {
                Some(self.resources.patients()?)
            }
            ExportLevel::Group(g) => match self.settings.groups.get(g) {
                Some(p) => Some(p.clone()),
                None => return Err(ReadError::NotFound(format!("Group/{g}")).into()),
            },
        };
        let record = ExportRecord {
            id: uuid::Uuid::new_v4().to_string(),
            owner: owner.to_owned(),
            request_url: request_url.to_owned(),
            level: req.level,
            types: req.types,
            since_ms: req.since_ms,
            transaction_ms: now_ms(),
            patients,
            state: ExportState::Running,
            files: Vec::new(),
            error: None,
        };
        self.put(&record)?;
        self.start(record.clone());
        Ok(record.id)
    }

    /// Runs an export on its own thread.
    fn start(self: &Arc<Self>, record: ExportRecord) {
        let total: u64 = record
            .types
            .iter()
            .map(|t| self.resources.count(t) as u64)
            .sum();
        let state = Arc::new(Running {
            done: AtomicU64::new(0),
            total,
            cancel: AtomicBool::new(false),
        });
        lock(&self.running).insert(record.id.clone(), state.clone());
        let this = self.clone();
        let spawned = std::thread::Builder::new()
            .name("fhir-export".into())
            .spawn(move || {
                let span = tracing::info_span!("export", export = %record.id);
                let _g = span.enter();
                let id = record.id.clone();
                let t = std::time::Instant::now();
                let result = this.write(record.clone(), &state);
                let cancelled = state.cancel.load(Ordering::SeqCst);
                lock(&this.running).remove(&id);
                if cancelled {
                    let _ = std::fs::remove_dir_all(this.folder(&id));
                    tracing::info!("export cancelled");
                    return;
                }
                let mut record = record;
                match result {
                    Ok(files) => {
                        record.state = ExportState::Completed;
                        record.files = files;
                        tracing::info!(
                            resources = state.done.load(Ordering::SeqCst),
                            secs = t.elapsed().as_secs_f64(),
                            "export completed"
                        );
                    }
                    Err(e) => {
                        record.state = ExportState::Failed;
                        record.error = Some(e.to_string());
                        tracing::error!(error = %e, "export failed");
                    }
                }
                // A cancel that raced the end removed the record: do not bring it back.
                if this.record(&id).ok().flatten().is_some() {
                    if let Err(e) = this.put(&record) {
                        tracing::error!(error = %e, "cannot record the export's end");
                    }
                }
            });
        if let Err(e) = spawned {
            tracing::error!(error = %e, "cannot start an export thread");
        }
    }

    /// Writes the NDJSON files; returns them.
    fn write(&self, record: ExportRecord, state: &Running) -> Result<Vec<ExportFile>, ExportError> {
        let folder = self.folder(&record.id);
        let _ = std::fs::remove_dir_all(&folder); // a re-run after a stop starts clean
        let io = |e: std::io::Error| {
            ExportError::from(StoreError::Corrupt {
                key: "export file".into(),
                reason: e.to_string(),
            })
        };
        std::fs::create_dir_all(&folder).map_err(io)?;
        let patients: Option<BTreeSet<&str>> = record
            .patients
            .as_ref()
            .map(|p| p.iter().map(String::as_str).collect());
        let mut files = Vec::new();
        for ty in &record.types {
            let mut part = 0;
            let mut writer: Option<(std::io::BufWriter<std::fs::File>, ExportFile)> = None;
            for r in self.resources.scan(ty, record.since_ms) {
                if state.cancel.load(Ordering::Relaxed) {
                    return Ok(files);
                }
                let r = r?;
                state.done.fetch_add(1, Ordering::Relaxed);
                if r.last_updated_ms > record.transaction_ms {
                    continue;
                }
                if let Some(set) = &patients {
                    if !r.patient.as_deref().is_some_and(|p| set.contains(p)) {
                        continue;
                    }
                }
                if writer
                    .as_ref()
                    .is_some_and(|(_, f)| f.count >= LINES_PER_FILE)
                {
                    let (mut w, f) = writer.take().expect("checked");
                    w.flush().map_err(io)?;
                    files.push(f);
                }
                let (w, f) = match &mut writer {
                    Some(x) => x,
                    None => {
                        part += 1;
                        let name = format!("{ty}.{part}.ndjson");
                        let file = std::fs::File::create(folder.join(&name)).map_err(io)?;
                        writer.insert((
                            std::io::BufWriter::with_capacity(256 * 1024, file),
                            ExportFile {
                                resource_type: ty.clone(),
                                name,
                                count: 0,
                            },
                        ))
                    }
                };
                serde_json::to_writer(&mut *w, &r.resource).map_err(StoreError::Encode)?;
                w.write_all(b"\n").map_err(io)?;
                f.count += 1;
            }
            if let Some((mut w, f)) = writer {
                w.flush().map_err(io)?;
                w.get_ref().sync_all().map_err(io)?;
                files.push(f);
            }
        }
        Ok(files)
    }

    /// The status of `owner`'s export `id`.
    pub fn status(&self, id: &str, owner: &str) -> Result<ExportStatus, ReadError> {
        let record = self.owned(id, owner)?;
        if let Some(run) = lock(&self.running).get(id) {
            return Ok(ExportStatus::InProgress {
                done: run.done.load(Ordering::Relaxed).min(run.total),
                total: run.total,
            });
        }
        match record.state {
            ExportState::Running => Ok(ExportStatus::InProgress { done: 0, total: 0 }),
            ExportState::Failed => Ok(ExportStatus::Failed(
                record.error.unwrap_or_else(|| "the export failed".into()),
            )),
            ExportState::Completed => {
                let output: Vec<Value> = record
                    .files
                    .iter()
                    .map(|f| {
                        json!({
                            "type": f.resource_type,
                            "url": format!("{}/bulkfiles/{}/{}", self.settings.base, record.id, f.name),
                            "count": f.count,
                        })
                    })
                    .collect();
                Ok(ExportStatus::Completed(json!({
                    "transactionTime": DateTime::from_unix_millis(record.transaction_ms).as_str(),
                    "request": record.request_url,
                    "requiresAccessToken": true,
                    "output": output,
                    "error": [],
                })))
            }
        }
    }

    fn owned(&self, id: &str, owner: &str) -> Result<ExportRecord, ReadError> {
        match self.record(id)? {
            Some(r) if r.owner == owner => Ok(r),
            _ => Err(ReadError::NotFound(format!("export {id}"))),
        }
    }

    /// Cancels a running export or deletes a finished one's files.
    pub fn cancel(&self, id: &str, owner: &str) -> Result<(), ReadError> {
        self.owned(id, owner)?;
        if let Some(run) = lock(&self.running).get(id) {
            run.cancel.store(true, Ordering::SeqCst);
        }
        self.tree.remove(id.as_bytes()).map_err(StoreError::from)?;
        self.tree.flush().map_err(StoreError::from)?;
        let _ = std::fs::remove_dir_all(self.folder(id));
        Ok(())
    }

    /// The path of one NDJSON file of `owner`'s completed export.
    pub fn file(&self, id: &str, name: &str, owner: &str) -> Result<PathBuf, ReadError> {
        let record = self.owned(id, owner)?;
        if !record.files.iter().any(|f| f.name == name) {
            return Err(ReadError::NotFound(format!("export file {name}")));
        }
        Ok(self.folder(id).join(name))
    }

    /// Restarts exports a stop cut off and removes expired ones. Returns how many restarted.
    pub fn recover(self: &Arc<Self>) -> Result<usize, StoreError> {
        self.expire()?;
        let mut n = 0;
        for item in self.tree.iter() {
            let (k, _) = item?;
            let id = String::from_utf8_lossy(&k).into_owned();
            if let Some(r) = self.record(&id)? {
                if r.state == ExportState::Running {
                    self.start(r);
                    n += 1;
                }
            }
        }
        Ok(n)
    }

    /// Deletes finished exports older than the retention time.
    fn expire(&self) -> Result<(), StoreError> {
        let cutoff = now_ms() - self.settings.retention.as_millis() as i64;
        for item in self.tree.iter() {
            let (k, raw) = item?;
            let Ok(r) = serde_json::from_slice::<ExportRecord>(&raw) else {
                continue;
            };
            if r.state != ExportState::Running && r.transaction_ms < cutoff {
                self.tree.remove(&k)?;
                let _ = std::fs::remove_dir_all(self.folder(&r.id));
            }
        }
        Ok(())
    }

    /// The export folder (for tests and the operator).
    pub fn dir(&self) -> &Path {
        &self.settings.dir
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::JobContext;

    fn pairs(q: &[(&str, &str)]) -> Vec<(String, String)> {
        q.iter()
            .map(|(a, b)| (a.to_string(), b.to_string()))
            .collect()
    }

    #[test]
    fn kick_off_parameters_are_checked() {
        let r = parse_export(ExportLevel::System, &[], false).unwrap();
        assert_eq!(r.types.len(), TYPES.len());
        let r = parse_export(
            ExportLevel::Patient,
            &pairs(&[
                ("_type", "Condition,Condition"),
                ("_since", "2026-01-01T00:00:00Z"),
            ]),
            false,
        )
        .unwrap();
        assert_eq!(r.types, vec!["Condition"]);
        assert!(r.since_ms.is_some());
        assert!(parse_export(ExportLevel::Patient, &pairs(&[("_type", "Device")]), false).is_err());
        assert!(parse_export(
            ExportLevel::System,
            &pairs(&[("_since", "2026-01-01")]),
            false
        )
        .is_err());
        let e =
            parse_export(ExportLevel::System, &pairs(&[("_typeFilter", "x")]), false).unwrap_err();
        assert!(e.to_string().contains("_typeFilter"), "{e}");
        assert!(parse_export(ExportLevel::System, &pairs(&[("_typeFilter", "x")]), true).is_ok());
        assert!(parse_export(
            ExportLevel::System,
            &pairs(&[("_outputFormat", "text/csv")]),
            false
        )
        .is_err());
    }

    fn bundle(job: &str) -> Value {
        json!({"resourceType": "Bundle", "type": "transaction", "entry": [
            {"fullUrl": format!("urn:uuid:{job}-c"), "resource": {"resourceType": "Condition"},
             "request": {"method": "POST", "url": "Condition", "ifNoneExist": format!("identifier=s|{job}")}},
            {"fullUrl": "urn:uuid:dev", "resource": {"resourceType": "Device"},
             "request": {"method": "POST", "url": "Device", "ifNoneExist": "identifier=s|d"}}
        ]})
    }

    fn wait_done(e: &Exports, id: &str, owner: &str) -> Value {
        for _ in 0..500 {
            match e.status(id, owner).unwrap() {
                ExportStatus::Completed(m) => return m,
                ExportStatus::Failed(m) => panic!("{m}"),
                ExportStatus::InProgress { .. } => std::thread::sleep(Duration::from_millis(10)),
            }
        }
        panic!("the export did not finish");
    }

    #[test]
    fn an_export_writes_one_line_per_resource_and_only_its_owner_sees_it() {
        let dir = tempfile::tempdir().unwrap();
        let db = crate::store::open_db(&dir.path().join("db")).unwrap();
        let res = ResourceStore::open(&db, &dir.path().join("bodies")).unwrap();
        for (i, p) in ["p1", "p2", "p3"].iter().enumerate() {
            let job = format!("j{i}");
            let ctx = JobContext {
                job: &job,
                owner: "o",
                patient: p,
                encounter: "e",
                at_ms: 1000 + i as i64,
            };
            res.put_job(&ctx, &bundle(&job)).unwrap();
        }
        let mut groups = BTreeMap::new();
        groups.insert("two".to_string(), vec!["p1".to_string(), "p3".to_string()]);
        let e = Exports::new(
            &db,
            res,
            ExportSettings {
                dir: dir.path().join("exports"),
                groups,
                retention: Duration::from_secs(3600),
                max_running: 2,
                base: "http://x/fhir/r4".into(),
            },
        )
        .unwrap();
        let id = e
            .kick_off(
                parse_export(ExportLevel::System, &[], false).unwrap(),
                "client",
                "http://x/$export",
            )
            .unwrap();
        let m = wait_done(&e, &id, "client");
        let counts: BTreeMap<String, u64> = m["output"]
            .as_array()
            .unwrap()
            .iter()
            .map(|o| {
                (
                    o["type"].as_str().unwrap().to_owned(),
                    o["count"].as_u64().unwrap(),
                )
            })
            .collect();
        assert_eq!(counts["Condition"], 3);
        assert_eq!(counts["Device"], 1);
        let path = e.file(&id, "Condition.1.ndjson", "client").unwrap();
        let text = std::fs::read_to_string(path).unwrap();
        assert_eq!(text.lines().count(), 3);
        for line in text.lines() {
            let v: Value = serde_json::from_str(line).unwrap();
            assert_eq!(v["resourceType"], "Condition");
        }
        assert!(matches!(
            e.status(&id, "other"),
            Err(ReadError::NotFound(_))
        ));
        assert!(e.file(&id, "Condition.1.ndjson", "other").is_err());

        let g = e
            .kick_off(
                parse_export(ExportLevel::Group("two".into()), &[], false).unwrap(),
                "client",
                "u",
            )
            .unwrap();
        let m = wait_done(&e, &g, "client");
        assert_eq!(m["output"][0]["count"], 2, "{m}");
        assert!(matches!(
            e.kick_off(
                parse_export(ExportLevel::Group("nope".into()), &[], false).unwrap(),
                "client",
                "u"
            ),
            Err(ExportError::Request(ReadError::NotFound(_)))
        ));
        e.cancel(&id, "client").unwrap();
        assert!(matches!(
            e.status(&id, "client"),
            Err(ReadError::NotFound(_))
        ));
        assert!(!e.dir().join(&id).exists());
    }
}

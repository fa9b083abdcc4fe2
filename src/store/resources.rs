//! The FHIR resources fhirscribe produced, kept for the FHIR read API and Bulk Data export:
//! exactly the resources of each completed job's stored Bundle (what was, or would be, delivered
//! to the EHR), as a FHIR server would serve them.
//!
//! Invariants (and why):
//! - **One resource per business identifier.** A resource's id is a UUIDv5 of its type and its
//!   Bundle entry's `ifNoneExist` (its business identifier), so a job re-run after a crash
//!   writes the same ids, and the scribe `Device` every job names is one resource, owned by
//!   every job that refers to it.
//! - **References resolve here.** A Bundle's `urn:uuid:` references are rewritten to
//!   `Type/id` of the stored resources; references to the EHR's own resources
//!   (`Patient/…`, `Encounter/…`) are kept as they are.
//! - **A job's resources come and go together**, in one transaction with their index keys;
//!   a resource owned by several jobs (the Device) goes with the last of them.
//! - **Bodies live in files, not in sled.** sled keeps each resource's metadata and the
//!   indexes; the JSON body is a file under the store's `fhir-resources/` folder (written,
//!   synced and renamed into place before the metadata commits; deleted after it is removed;
//!   files without metadata are swept at start-up). sled 0.34's page cache grows with the
//!   size of values read, far past `cache_capacity`, so a scan of large DocumentReferences
//!   (an export) would otherwise hold the store in memory.
//! - **Access needs no content scan.** Each resource carries its patient (None: outside every
//!   patient's compartment) and the subject that created its job; indexes by type and time,
//!   patient, encounter and Provenance target make searches and exports key scans.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;
use sled::transaction::{ConflictableTransactionError, TransactionError, Transactional};

use super::StoreError;

const META: &str = "fhir_resource_meta";
const INDEX: &str = "fhir_index";

/// Namespace of the ids of served resources (UUIDv5 of `Type?ifNoneExist`).
const NS: uuid::Uuid = uuid::Uuid::from_u128(0x5f0e_9a4c_1d2b_4e6f_8a7b_3c2d_1e0f_a9b8);

/// The resource types a job's Bundle holds, in the order exports write them.
pub const TYPES: &[&str] = &[
    "DocumentReference",
    "Condition",
    "MedicationStatement",
    "Provenance",
    "Device",
];

/// One stored resource and what access checks and searches need without parsing it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StoredResource {
    /// The patient id (no `Patient/`); None for resources in no patient's compartment.
    pub patient: Option<String>,
    /// The encounter id (no `Encounter/`).
    pub encounter: Option<String>,
    /// The subject that created the job (what user-context callers are limited to).
    pub owner: String,
    /// `meta.lastUpdated` in Unix milliseconds.
    pub last_updated_ms: i64,
    pub resource: Value,
}

impl StoredResource {
    pub fn resource_type(&self) -> &str {
        self.resource["resourceType"].as_str().unwrap_or("")
    }

    pub fn id(&self) -> &str {
        self.resource["id"].as_str().unwrap_or("")
    }
}

/// What sled keeps of a resource (its body is a file).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Meta {
    patient: Option<String>,
    encounter: Option<String>,
    owner: String,
    last_updated_ms: i64,
    /// A Provenance's targets (`Type/id`), for its index keys.
    #[serde(default)]
    targets: Vec<String>,
    /// `(code, system)` of a Condition's `code` or a MedicationStatement's medication.
    #[serde(default)]
    codes: Vec<(String, String)>,
}

impl Meta {
    fn of(r: &StoredResource) -> Meta {
        Meta {
            patient: r.patient.clone(),
            encounter: r.encounter.clone(),
            owner: r.owner.clone(),
            last_updated_ms: r.last_updated_ms,
            targets: r.resource["target"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|t| t["reference"].as_str().map(str::to_owned))
                .collect(),
            codes: codings(&r.resource)
                .filter_map(|c| {
                    Some((
                        c["code"].as_str()?.to_owned(),
                        c["system"].as_str().unwrap_or_default().to_owned(),
                    ))
                })
                .collect(),
        }
    }
}

/// The codings the `code` search parameter reads.
fn codings(r: &Value) -> impl Iterator<Item = &Value> {
    let field = match r["resourceType"].as_str() {
        Some("MedicationStatement") => &r["medicationCodeableConcept"],
        _ => &r["code"],
    };
    field["coding"].as_array().into_iter().flatten()
}

/// The job a Bundle came from and whose context its resources get.
#[derive(Debug, Clone)]
pub struct JobContext<'a> {
    pub job: &'a str,
    /// The job creator's subject.
    pub owner: &'a str,
    /// `Patient/<id>` or `<id>`.
    pub patient: &'a str,
    /// `Encounter/<id>` or `<id>`.
    pub encounter: &'a str,
    /// When the job completed (`meta.lastUpdated` of its resources), Unix ms.
    pub at_ms: i64,
}

/// The served resources, in two trees of the service's sled database.
#[derive(Clone)]
pub struct ResourceStore {
    meta: sled::Tree,
    index: sled::Tree,
    db: sled::Db,
    /// The folder of the bodies.
    dir: std::path::PathBuf,
}

type Tx = sled::transaction::TransactionalTree;
type TxResult<T> = Result<T, ConflictableTransactionError<StoreError>>;

fn key(parts: &[&str]) -> Vec<u8> {
    parts.join("|").into_bytes()
}

/// Sortable fixed-width time (Unix ms, offset so negative times sort first).
fn time_key(ms: i64) -> String {
    format!("{:016x}", (ms as i128 + (1i128 << 62)) as u64)
}

fn strip<'a>(reference: &'a str, ty: &str) -> &'a str {
    reference
        .strip_prefix(ty)
        .and_then(|r| r.strip_prefix('/'))
        .unwrap_or(reference)
}

/// The index keys of one resource (written with it, removed with it).
fn index_keys(ty: &str, id: &str, r: &Meta) -> Vec<Vec<u8>> {
    let mut keys = vec![key(&["t", ty, &time_key(r.last_updated_ms), id])];
    if let Some(p) = &r.patient {
        keys.push(key(&["p", p, ty, id]));
        keys.push(key(&["P", p]));
    }
    if let Some(e) = &r.encounter {
        keys.push(key(&["e", e, ty, id]));
    }
    if ty == "Provenance" {
        for target in &r.targets {
            keys.push(key(&["r", target, id]));
        }
    }
    for (code, system) in &r.codes {
        if !code.contains('|') && !system.contains('|') {
            keys.push(key(&["c", ty, code, system, id]));
        }
    }
    keys
}

fn io_error(path: &std::path::Path, e: std::io::Error) -> StoreError {
    StoreError::Corrupt {
        key: path.display().to_string(),
        reason: e.to_string(),
    }
}

/// Writes `bytes` to `path` whole: a temporary file renamed into place, synced (file and
/// folder) when `durable`.
fn write_file(path: &std::path::Path, bytes: &[u8], durable: bool) -> Result<(), StoreError> {
    use std::io::Write;
    let dir = path.parent().expect("a body path has a folder");
    std::fs::create_dir_all(dir).map_err(|e| io_error(dir, e))?;
    let tmp = path.with_extension("json.tmp");
    let mut f = std::fs::File::create(&tmp).map_err(|e| io_error(&tmp, e))?;
    f.write_all(bytes).map_err(|e| io_error(&tmp, e))?;
    if durable {
        f.sync_all().map_err(|e| io_error(&tmp, e))?;
    }
    std::fs::rename(&tmp, path).map_err(|e| io_error(path, e))?;
    if durable {
        std::fs::File::open(dir)
            .and_then(|d| d.sync_all())
            .map_err(|e| io_error(dir, e))?;
    }
    Ok(())
}

/// The resources of a transaction Bundle as they are served: ids from business identifiers,
/// `urn:uuid:` references resolved, `meta.versionId` and `meta.lastUpdated` set.
pub fn served_resources(bundle: &Value, at_ms: i64) -> Result<Vec<Value>, StoreError> {
    let corrupt = |reason: &str| StoreError::Corrupt {
        key: "fhir-bundle.json".into(),
        reason: reason.into(),
    };
    let entries = bundle["entry"]
        .as_array()
        .ok_or_else(|| corrupt("the Bundle has no entries"))?;
    let mut refs: BTreeMap<String, String> = BTreeMap::new();
    for e in entries {
        let ty = e["resource"]["resourceType"]
            .as_str()
            .ok_or_else(|| corrupt("an entry has no resourceType"))?;
        let full_url = e["fullUrl"].as_str().unwrap_or_default();
        let id = match e["request"]["ifNoneExist"].as_str() {
            Some(ine) => uuid::Uuid::new_v5(&NS, format!("{ty}?{ine}").as_bytes()).to_string(),
            None => full_url
                .strip_prefix("urn:uuid:")
                .map(str::to_owned)
                .unwrap_or_else(|| uuid::Uuid::new_v4().to_string()),
        };
        refs.insert(full_url.to_owned(), format!("{ty}/{id}"));
    }
    let updated = crate::healthscribe::DateTime::from_unix_millis(at_ms);
    let mut out = Vec::with_capacity(entries.len());
    for e in entries {
        let mut r = e["resource"].clone();
        resolve(&mut r, &refs);
        let reference = &refs[e["fullUrl"].as_str().unwrap_or_default()];
        let id = reference.split_once('/').map(|(_, id)| id).unwrap_or("");
        r["id"] = id.into();
        if !r["meta"].is_object() {
            r["meta"] = serde_json::json!({});
        }
        r["meta"]["versionId"] = "1".into();
        r["meta"]["lastUpdated"] = updated.as_str().into();
        out.push(r);
    }
    Ok(out)
}

fn resolve(v: &mut Value, refs: &BTreeMap<String, String>) {
    match v {
        Value::String(s) if s.starts_with("urn:uuid:") => {
            if let Some(r) = refs.get(s.as_str()) {
                *s = r.clone();
            }
        }
        Value::Array(a) => a.iter_mut().for_each(|x| resolve(x, refs)),
        Value::Object(o) => o.values_mut().for_each(|x| resolve(x, refs)),
        _ => {}
    }
}

fn decode(k: &[u8], raw: &[u8]) -> Result<Meta, StoreError> {
    serde_json::from_slice(raw).map_err(|e| StoreError::Corrupt {
        key: String::from_utf8_lossy(k).into_owned(),
        reason: e.to_string(),
    })
}

fn abort<T>(e: StoreError) -> TxResult<T> {
    Err(ConflictableTransactionError::Abort(e))
}

fn unwrap_tx<T>(r: Result<T, TransactionError<StoreError>>) -> Result<T, StoreError> {
    match r {
        Ok(v) => Ok(v),
        Err(TransactionError::Abort(e)) => Err(e),
        Err(TransactionError::Storage(e)) => Err(e.into()),
    }
}

impl ResourceStore {
    /// The resource trees of `db`, with bodies under `dir` (created if missing).
    pub fn open(db: &sled::Db, dir: &std::path::Path) -> Result<Self, StoreError> {
        std::fs::create_dir_all(dir).map_err(|e| io_error(dir, e))?;
        Ok(Self {
            meta: db.open_tree(META)?,
            index: db.open_tree(INDEX)?,
            db: db.clone(),
            dir: dir.to_owned(),
        })
    }

    fn body_path(&self, ty: &str, id: &str) -> std::path::PathBuf {
        let fan = id.get(..2).unwrap_or("__");
        self.dir.join(ty).join(fan).join(format!("{id}.json"))
    }

    /// Stores the resources of a job's Bundle (idempotent: a re-run writes the same ids),
    /// durably. Returns how many resources the job has.
    pub fn put_job(&self, ctx: &JobContext<'_>, bundle: &Value) -> Result<usize, StoreError> {
        let n = self.put(ctx, bundle, true)?;
        self.db.flush()?;
        Ok(n)
    }

    /// [`ResourceStore::put_job`] without syncing, for bulk loads (benchmarks) that call
    /// [`ResourceStore::flush`] at the end and accept the OS's write-back for the bodies.
    pub fn put_job_unflushed(
        &self,
        ctx: &JobContext<'_>,
        bundle: &Value,
    ) -> Result<usize, StoreError> {
        self.put(ctx, bundle, false)
    }

    fn put(
        &self,
        ctx: &JobContext<'_>,
        bundle: &Value,
        durable: bool,
    ) -> Result<usize, StoreError> {
        let patient = strip(ctx.patient, "Patient").to_owned();
        let encounter = strip(ctx.encounter, "Encounter").to_owned();
        let resources = served_resources(bundle, ctx.at_ms)?;
        // Bodies first: metadata never names a body that is not on disk.
        for r in &resources {
            let ty = r["resourceType"].as_str().unwrap_or_default();
            let id = r["id"].as_str().unwrap_or_default();
            let shared = ty == "Device";
            if shared && self.meta.contains_key(format!("{ty}/{id}").as_bytes())? {
                continue;
            }
            let raw = serde_json::to_vec(r).map_err(StoreError::Encode)?;
            write_file(&self.body_path(ty, id), &raw, durable)?;
        }
        let r = (&self.meta, &self.index).transaction(|(res, idx)| {
            for r in &resources {
                let ty = r["resourceType"].as_str().unwrap_or_default();
                let id = r["id"].as_str().unwrap_or_default();
                let rkey = format!("{ty}/{id}");
                let in_compartment = ty != "Device";
                let stored = match res.get(rkey.as_bytes())? {
                    // Shared (the Device): the first job's copy stays, with its lastUpdated.
                    Some(old) if !in_compartment => match decode(rkey.as_bytes(), &old) {
                        Ok(s) => s,
                        Err(e) => return abort(e),
                    },
                    old => {
                        let stored = Meta::of(&StoredResource {
                            patient: in_compartment.then(|| patient.clone()),
                            encounter: in_compartment.then(|| encounter.clone()),
                            owner: ctx.owner.to_owned(),
                            last_updated_ms: ctx.at_ms,
                            resource: r.clone(),
                        });
                        if let Some(old) = old {
                            // A re-run: replace the old copy's index keys.
                            match decode(rkey.as_bytes(), &old) {
                                Ok(o) => remove_keys(idx, ty, id, &o)?,
                                Err(e) => return abort(e),
                            }
                        }
                        let raw = match serde_json::to_vec(&stored) {
                            Ok(v) => v,
                            Err(e) => return abort(StoreError::Encode(e)),
                        };
                        res.insert(rkey.as_bytes(), raw)?;
                        stored
                    }
                };
                for k in index_keys(ty, id, &stored) {
                    idx.insert(k, &[])?;
                }
                idx.insert(key(&["j", ctx.job, &rkey]), &[])?;
                idx.insert(key(&["o", &rkey, ctx.job]), &[])?;
            }
            Ok(())
        });
        unwrap_tx(r)?;
        Ok(resources.len())
    }

    /// Whether the job's resources are stored (recovery indexes the others).
    pub fn has_job(&self, job: &str) -> Result<bool, StoreError> {
        let mut prefix = key(&["j", job]);
        prefix.push(b'|');
        Ok(self.index.scan_prefix(prefix).next().transpose()?.is_some())
    }

    /// The jobs that have resources here.
    pub fn jobs(&self) -> Result<Vec<String>, StoreError> {
        let mut out: Vec<String> = Vec::new();
        for k in self.index.scan_prefix(b"j|").keys() {
            let k = k?;
            let rest = String::from_utf8_lossy(&k[2..]).into_owned();
            let name = rest.split('|').next().unwrap_or_default().to_owned();
            if out.last() != Some(&name) {
                out.push(name);
            }
        }
        Ok(out)
    }

    /// Removes a job's resources (those no other job owns) and flushes; returns how many
    /// resources went.
    pub fn remove_job(&self, job: &str) -> Result<usize, StoreError> {
        let mut prefix = key(&["j", job]);
        prefix.push(b'|');
        let refs: Vec<String> = self
            .index
            .scan_prefix(&prefix)
            .keys()
            .map(|k| k.map(|k| String::from_utf8_lossy(&k[prefix.len()..]).into_owned()))
            .collect::<Result<_, _>>()?;
        let mut removed = 0;
        let mut patients = std::collections::BTreeSet::new();
        for rkey in refs {
            let mut owners = key(&["o", &rkey]);
            owners.push(b'|');
            let others = self
                .index
                .scan_prefix(&owners)
                .keys()
                .filter(|k| {
                    k.as_ref()
                        .map_or(true, |k| &k[owners.len()..] != job.as_bytes())
                })
                .count();
            let (ty, id) = rkey.split_once('/').unwrap_or((&rkey, ""));
            if let Some(raw) = self.meta.get(rkey.as_bytes())? {
                if let Some(p) = decode(rkey.as_bytes(), &raw)?.patient {
                    patients.insert(p);
                }
            }
            let r = (&self.meta, &self.index).transaction(|(res, idx)| {
                idx.remove(key(&["j", job, &rkey]))?;
                idx.remove(key(&["o", &rkey, job]))?;
                if others > 0 {
                    return Ok(false);
                }
                if let Some(old) = res.remove(rkey.as_bytes())? {
                    match decode(rkey.as_bytes(), &old) {
                        Ok(o) => remove_keys(idx, ty, id, &o)?,
                        Err(e) => return abort(e),
                    }
                }
                Ok(true)
            });
            if unwrap_tx(r)? {
                let path = self.body_path(ty, id);
                match std::fs::remove_file(&path) {
                    Ok(()) => {}
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                    Err(e) => return Err(io_error(&path, e)),
                }
                removed += 1;
            }
        }
        // A patient with nothing left is no longer one "with jobs" (Group exports).
        for p in patients {
            let mut prefix = key(&["p", &p]);
            prefix.push(b'|');
            if self.index.scan_prefix(prefix).next().is_none() {
                self.index.remove(key(&["P", &p]))?;
            }
        }
        self.db.flush()?;
        Ok(removed)
    }

    pub fn get(&self, ty: &str, id: &str) -> Result<Option<StoredResource>, StoreError> {
        let k = format!("{ty}/{id}");
        let Some(raw) = self.meta.get(k.as_bytes())? else {
            return Ok(None);
        };
        let meta = decode(k.as_bytes(), &raw)?;
        let path = self.body_path(ty, id);
        let body = match std::fs::read(&path) {
            Ok(b) => b,
            // Removed between the metadata read and this one.
            Err(e)
                if e.kind() == std::io::ErrorKind::NotFound
                    && !self.meta.contains_key(k.as_bytes())? =>
            {
                return Ok(None)
            }
            Err(e) => return Err(io_error(&path, e)),
        };
        let resource = serde_json::from_slice(&body).map_err(|e| StoreError::Corrupt {
            key: k.clone(),
            reason: e.to_string(),
        })?;
        Ok(Some(StoredResource {
            patient: meta.patient,
            encounter: meta.encounter,
            owner: meta.owner,
            last_updated_ms: meta.last_updated_ms,
            resource,
        }))
    }

    /// Deletes body files that have no metadata (a stop between writing a body and its
    /// metadata, or between removing the metadata and the body). Returns how many went.
    pub fn sweep(&self) -> Result<usize, StoreError> {
        let mut n = 0;
        let Ok(types) = std::fs::read_dir(&self.dir) else {
            return Ok(0);
        };
        for ty in types.flatten() {
            let ty_name = ty.file_name().to_string_lossy().into_owned();
            for fan in std::fs::read_dir(ty.path()).into_iter().flatten().flatten() {
                for f in std::fs::read_dir(fan.path())
                    .into_iter()
                    .flatten()
                    .flatten()
                {
                    let name = f.file_name().to_string_lossy().into_owned();
                    let keep = match name.strip_suffix(".json") {
                        Some(id) => self
                            .meta
                            .contains_key(format!("{ty_name}/{id}").as_bytes())?,
                        None => false, // an interrupted write's temporary file
                    };
                    if !keep && std::fs::remove_file(f.path()).is_ok() {
                        n += 1;
                    }
                }
            }
        }
        Ok(n)
    }

    /// Ids under an index prefix (`p|patient|Type|`, `e|encounter|Type|`, `r|target|`).
    fn ids(&self, parts: &[&str]) -> Result<Vec<String>, StoreError> {
        let mut prefix = key(parts);
        prefix.push(b'|');
        self.index
            .scan_prefix(&prefix)
            .keys()
            .map(|k| {
                k.map(|k| String::from_utf8_lossy(&k[prefix.len()..]).into_owned())
                    .map_err(StoreError::from)
            })
            .collect()
    }

    /// Ids of `ty` resources in the patient's compartment.
    pub fn ids_by_patient(&self, patient: &str, ty: &str) -> Result<Vec<String>, StoreError> {
        self.ids(&["p", patient, ty])
    }

    /// Ids of `ty` resources of the encounter.
    pub fn ids_by_encounter(&self, encounter: &str, ty: &str) -> Result<Vec<String>, StoreError> {
        self.ids(&["e", encounter, ty])
    }

    /// Ids of the Provenance resources whose `target` is `reference` (`Type/id`).
    pub fn provenance_of(&self, reference: &str) -> Result<Vec<String>, StoreError> {
        self.ids(&["r", reference])
    }

    /// Ids of `ty` resources coded `code` (in any system; the caller checks the system).
    pub fn ids_by_code(&self, ty: &str, code: &str) -> Result<Vec<String>, StoreError> {
        let mut prefix = key(&["c", ty, code]);
        prefix.push(b'|');
        let mut out = Vec::new();
        for k in self.index.scan_prefix(&prefix).keys() {
            let k = k?;
            let rest = String::from_utf8_lossy(&k[prefix.len()..]).into_owned();
            if let Some((_, id)) = rest.rsplit_once('|') {
                out.push(id.to_owned());
            }
        }
        out.sort();
        out.dedup();
        Ok(out)
    }

    /// The patients that have resources here, in id order.
    pub fn patients(&self) -> Result<Vec<String>, StoreError> {
        let mut out = Vec::new();
        for k in self.index.scan_prefix(b"P|").keys() {
            out.push(String::from_utf8_lossy(&k?[2..]).into_owned());
        }
        Ok(out)
    }

    /// `ty` resources in `meta.lastUpdated` order, from `since_ms` (inclusive) on; lazily, so
    /// an export of any size holds one resource at a time.
    pub fn scan(
        &self,
        ty: &str,
        since_ms: Option<i64>,
    ) -> impl Iterator<Item = Result<StoredResource, StoreError>> + '_ {
        let mut prefix = key(&["t", ty]);
        prefix.push(b'|');
        let start = match since_ms {
            Some(ms) => {
                let mut s = prefix.clone();
                s.extend_from_slice(time_key(ms).as_bytes());
                s
            }
            None => prefix.clone(),
        };
        let mut end = prefix.clone();
        *end.last_mut().expect("non-empty") += 1;
        let ty = ty.to_owned();
        self.index.range(start..end).keys().filter_map(move |k| {
            let k = match k {
                Ok(k) => k,
                Err(e) => return Some(Err(e.into())),
            };
            let id = String::from_utf8_lossy(&k[prefix.len() + 17..]).into_owned();
            // None: removed between the key scan and the read.
            self.get(&ty, &id).transpose()
        })
    }

    /// How many `ty` resources are stored (a key count, for progress reports).
    pub fn count(&self, ty: &str) -> usize {
        let mut prefix = key(&["t", ty]);
        prefix.push(b'|');
        self.index.scan_prefix(prefix).keys().count()
    }

    pub fn flush(&self) -> Result<(), StoreError> {
        self.db.flush()?;
        Ok(())
    }
}

fn remove_keys(idx: &Tx, ty: &str, id: &str, r: &Meta) -> TxResult<()> {
    for k in index_keys(ty, id, r) {
        // The patient marker goes with the patient's last resource (checked after).
        if k.starts_with(b"P|") {
            continue;
        }
        idx.remove(k)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn bundle(job: &str) -> Value {
        json!({"resourceType": "Bundle", "type": "transaction", "entry": [
            {"fullUrl": format!("urn:uuid:{job}-dev"), "resource": {"resourceType": "Device"},
             "request": {"method": "POST", "url": "Device", "ifNoneExist": "identifier=s|scribe"}},
            {"fullUrl": format!("urn:uuid:{job}-c"), "resource": {"resourceType": "Condition",
              "subject": {"reference": "Patient/p1"},
              "code": {"coding": [{"system": "http://hl7.org/fhir/sid/icd-10-cm", "code": "E11.9"}]}},
             "request": {"method": "POST", "url": "Condition", "ifNoneExist": format!("identifier=s|{job}-c")}},
            {"fullUrl": format!("urn:uuid:{job}-prov"), "resource": {"resourceType": "Provenance",
              "target": [{"reference": format!("urn:uuid:{job}-c")}],
              "agent": [{"who": {"reference": format!("urn:uuid:{job}-dev")}}]},
             "request": {"method": "POST", "url": "Provenance", "ifNoneExist": format!("_tag=s|{job}")}}
        ]})
    }

    fn ctx<'a>(job: &'a str, patient: &'a str) -> JobContext<'a> {
        JobContext {
            job,
            owner: "engine",
            patient,
            encounter: "Encounter/e1",
            at_ms: 1_700_000_000_000,
        }
    }

    fn open() -> (tempfile::TempDir, ResourceStore) {
        let dir = tempfile::tempdir().unwrap();
        let db = crate::store::open_db(&dir.path().join("db")).unwrap();
        let s = ResourceStore::open(&db, &dir.path().join("bodies")).unwrap();
        (dir, s)
    }

    fn bodies(dir: &tempfile::TempDir) -> usize {
        walk(&dir.path().join("bodies"))
    }

    fn walk(p: &std::path::Path) -> usize {
        std::fs::read_dir(p)
            .map(|d| {
                d.flatten()
                    .map(|e| {
                        if e.path().is_dir() {
                            walk(&e.path())
                        } else {
                            1
                        }
                    })
                    .sum()
            })
            .unwrap_or(0)
    }

    #[test]
    fn references_resolve_and_a_rerun_writes_the_same_ids() {
        let (_d, s) = open();
        assert_eq!(
            s.put_job(&ctx("j1", "Patient/p1"), &bundle("j1")).unwrap(),
            3
        );
        assert_eq!(
            s.put_job(&ctx("j1", "Patient/p1"), &bundle("j1")).unwrap(),
            3
        );
        let conds = s.ids_by_patient("p1", "Condition").unwrap();
        assert_eq!(conds.len(), 1, "a re-run must not duplicate");
        let provs = s.provenance_of(&format!("Condition/{}", conds[0])).unwrap();
        assert_eq!(provs.len(), 1);
        let p = s.get("Provenance", &provs[0]).unwrap().unwrap();
        let who = p.resource["agent"][0]["who"]["reference"].as_str().unwrap();
        assert!(who.starts_with("Device/"), "{who}");
        assert_eq!(p.resource["meta"]["versionId"], "1");
        assert_eq!(p.patient.as_deref(), Some("p1"));
        assert_eq!(s.count("Device"), 1);
        assert!(s.has_job("j1").unwrap() && !s.has_job("j").unwrap());
        assert_eq!(s.ids_by_code("Condition", "E11.9").unwrap(), conds);
        assert!(s.ids_by_code("Condition", "E11").unwrap().is_empty());
    }

    #[test]
    fn the_shared_device_goes_with_its_last_job() {
        let (_d, s) = open();
        s.put_job(&ctx("j1", "Patient/p1"), &bundle("j1")).unwrap();
        s.put_job(&ctx("j2", "Patient/p2"), &bundle("j2")).unwrap();
        assert_eq!(s.count("Device"), 1);
        assert_eq!(s.patients().unwrap(), vec!["p1", "p2"]);
        assert_eq!(
            s.remove_job("j1").unwrap(),
            2,
            "Condition and Provenance of j1"
        );
        assert_eq!(s.patients().unwrap(), vec!["p2"]);
        assert_eq!(s.count("Device"), 1);
        assert_eq!(s.count("Condition"), 1);
        assert!(s.ids_by_patient("p1", "Condition").unwrap().is_empty());
        assert_eq!(
            bodies(&_d),
            3,
            "j2's Condition and Provenance and the Device"
        );
        assert_eq!(s.remove_job("j2").unwrap(), 3);
        for ty in TYPES {
            assert_eq!(s.count(ty), 0, "{ty}");
        }
        assert_eq!(s.scan("Condition", None).count(), 0);
        assert_eq!(bodies(&_d), 0, "no body outlives its resource");
    }

    #[test]
    fn bodies_without_metadata_are_swept() {
        let (d, s) = open();
        s.put_job(&ctx("j1", "p1"), &bundle("j1")).unwrap();
        let stray = d.path().join("bodies/Condition/ab/abcdef.json");
        std::fs::create_dir_all(stray.parent().unwrap()).unwrap();
        std::fs::write(&stray, b"{}").unwrap();
        std::fs::write(stray.with_extension("json.tmp"), b"{").unwrap();
        assert_eq!(s.sweep().unwrap(), 2);
        assert_eq!(bodies(&d), 3, "the stored resources' bodies stay");
        assert!(s
            .get(
                "Condition",
                &s.ids_by_patient("p1", "Condition").unwrap()[0]
            )
            .unwrap()
            .is_some());
    }

    #[test]
    fn scans_follow_last_updated_and_honour_since() {
        let (_d, s) = open();
        let mut c = ctx("j1", "p1");
        s.put_job(&c, &bundle("j1")).unwrap();
        c.job = "j2";
        c.at_ms += 10_000;
        s.put_job(&c, &bundle("j2")).unwrap();
        let all: Vec<i64> = s
            .scan("Condition", None)
            .map(|r| r.unwrap().last_updated_ms)
            .collect();
        assert_eq!(all, vec![1_700_000_000_000, 1_700_000_010_000]);
        assert_eq!(s.scan("Condition", Some(1_700_000_000_001)).count(), 1);
    }
}

//! The durable FHIR outbox: one entry per job's Bundle, in sled, flushed to disk on every state
//! change, so a crash or restart loses no accepted Bundle.
//!
//! Delivery is at-least-once: an entry stays `Pending` until the server's success is recorded,
//! so a crash between the POST and that record re-sends it. Bundles are idempotent (conditional
//! creates), which makes at-least-once effectively once.
//!
//! Layout: two sled trees in one database. `fhir_outbox` maps a job id to its JSON
//! [`OutboxEntry`] (the record of truth); `fhir_outbox_due` holds one empty-valued key per
//! `Pending` entry, big-endian `next_attempt_at` (ms) followed by the id, so [`Outbox::due`]
//! reads only the keys ≤ now, already in due order, and never decodes a delivered or dead entry.
//!
//! Invariants (and why):
//! - **One transaction per change.** Every write runs in one sled transaction over both trees:
//!   read the entry, decide, write the entry and its index key. sled serialises transactions
//!   against each other and against every other operation on those trees, so a
//!   read-modify-write cannot lose a concurrent one (a plain get → modify → insert could: an
//!   `enqueue` that replaced the Bundle in between vanished), and the index holds exactly one key
//!   per `Pending` entry, at its `next_attempt_at` (no pending entry is forgotten, no finished
//!   one is sent again).
//! - **An attempt names the Bundle it sent.** Every accepted Bundle gets a fresh `revision` from
//!   sled's id generator (never reused, not even after `delete` and a new `enqueue`). `mark_*`
//!   take the revision that was sent; if the entry holds another one (the Bundle was replaced
//!   while the POST was in flight), the answer is recorded in `last_status`/`last_error` but the
//!   state is left alone: the new Bundle stays `Pending`, due at once, and is sent next.
//! - **Delivered is final for an id.** `enqueue` then answers `AlreadyDelivered`, and a late
//!   failure of the same revision (two workers sent it) does not undo the server's success.
//! - **Accepted = durable.** A change is flushed before the call returns.

use std::path::Path;
use std::time::{SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};
use serde_json::Value;
use sled::transaction::{ConflictableTransactionError, TransactionError, Transactional};

use super::StoreError;

const TREE: &str = "fhir_outbox";
const DUE_TREE: &str = "fhir_outbox_due";
const META_TREE: &str = "fhir_outbox_meta";
/// Present in the meta tree once the due index covers every entry (stores written before the
/// index existed are indexed once, on open).
const INDEXED: &[u8] = b"due_index_v1";

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum DeliveryState {
    /// Waiting for its next attempt (also while an attempt is in flight).
    Pending,
    Delivered,
    /// Given up: a 4xx the server will keep answering, or too many attempts. An operator
    /// fixes the cause and calls `retry`.
    DeadLetter,
}

/// One Bundle and its delivery history. `last_error` and `outcome` hold what the server or the
/// network said; they are stored (the store holds PHI anyway) but never logged.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OutboxEntry {
    pub id: String,
    pub bundle: Value,
    /// Names this Bundle: new whenever a Bundle is accepted (`New` or `Replaced`), never reused.
    /// A delivery attempt passes it back to `mark_*`. 0 for entries stored before revisions.
    #[serde(default)]
    pub revision: u64,
    pub state: DeliveryState,
    /// Attempts of this revision.
    pub attempts: u32,
    /// Unix milliseconds.
    pub enqueued_at: u64,
    pub next_attempt_at: u64,
    pub updated_at: u64,
    #[serde(default)]
    pub last_status: Option<u16>,
    #[serde(default)]
    pub last_error: Option<String>,
    /// The server's OperationOutcome, when it sent one.
    #[serde(default)]
    pub outcome: Option<Value>,
    /// `response.location` of every entry, once delivered.
    #[serde(default)]
    pub locations: Vec<String>,
}

/// What `enqueue` did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Enqueued {
    New,
    /// Same id, same Bundle, not yet delivered: nothing changed.
    Unchanged,
    /// Same id, different Bundle, not yet delivered (or dead): the new Bundle replaces it.
    Replaced,
    /// Same id already delivered: nothing is sent again.
    AlreadyDelivered,
}

pub fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

/// What a change to one entry does, decided inside its transaction.
pub(crate) enum Change<T> {
    Put(Box<OutboxEntry>, T),
    Remove(T),
    /// Writes nothing.
    Keep(T),
}

/// The due-index key of an entry: big-endian time first, so keys sort by due time.
fn due_key(at: u64, id: &str) -> Vec<u8> {
    let mut k = Vec::with_capacity(8 + id.len());
    k.extend_from_slice(&at.to_be_bytes());
    k.extend_from_slice(id.as_bytes());
    k
}

fn due_key_time(k: &[u8]) -> Option<u64> {
    Some(u64::from_be_bytes(k.get(..8)?.try_into().ok()?))
}

pub(crate) fn decode(key: &[u8], raw: &[u8]) -> Result<OutboxEntry, StoreError> {
    serde_json::from_slice(raw).map_err(|e| StoreError::Corrupt {
        key: String::from_utf8_lossy(key).into_owned(),
        reason: e.to_string(),
    })
}

/// Handle to one outbox, in sled or PostgreSQL; cheap to clone, safe to share between threads
/// and tasks. The decisions (what enqueue, mark and retry do to an entry) are made here, once;
/// a backend only reads and writes entries atomically.
#[derive(Clone)]
pub struct Outbox {
    backend: Backend,
}

#[derive(Clone)]
enum Backend {
    Sled(SledOutbox),
    Pg(super::pg::outbox::PgOutbox),
}

/// The sled trees of one outbox.
#[derive(Clone)]
struct SledOutbox {
    db: sled::Db,
    entries: sled::Tree,
    due: sled::Tree,
}

impl Outbox {
    /// The outbox of `ehr` in a PostgreSQL store (shared by every process that opens it).
    pub fn on_postgres(pg: super::pg::outbox::PgOutbox) -> Self {
        Self {
            backend: Backend::Pg(pg),
        }
    }

    /// Opens (creating if needed) the outbox in the sled database at `dir`.
    pub fn open(dir: &Path) -> Result<Self, StoreError> {
        let db = super::open_db(dir)?;
        Self::in_db(&db)
    }

    pub fn in_db(db: &sled::Db) -> Result<Self, StoreError> {
        Self::in_db_named(db, "")
    }

    /// The outbox of one destination (the service keeps one per configured EHR, so each
    /// EHR's delivery worker sees only its own Bundles); `""` is the CLI's single outbox.
    pub fn in_db_named(db: &sled::Db, name: &str) -> Result<Self, StoreError> {
        let tree = |base: &str| {
            if name.is_empty() {
                base.to_owned()
            } else {
                format!("{base}@{name}")
            }
        };
        let o = SledOutbox {
            db: db.clone(),
            entries: db.open_tree(tree(TREE))?,
            due: db.open_tree(tree(DUE_TREE))?,
        };
        let meta = db.open_tree(tree(META_TREE))?;
        if meta.get(INDEXED)?.is_none() {
            // Re-writing each entry in its own transaction indexes it; concurrent writers keep
            // the invariant for what they touch, so this is safe while the outbox is in use.
            for kv in o.entries.iter() {
                let (k, _) = kv?;
                let id = String::from_utf8_lossy(&k).into_owned();
                let indexed = o.write(&id, false, |old| {
                    Ok(match old {
                        Some(e) => Change::Put(Box::new(e), ()),
                        None => Change::Keep(()),
                    })
                });
                match indexed {
                    // Unreadable, so never due; `get` and `list` still report it.
                    Err(StoreError::Corrupt { .. }) => {
                        tracing::warn!(job = %id, "outbox entry is corrupt; not indexed")
                    }
                    r => r?,
                }
            }
            meta.insert(INDEXED, &[])?;
            db.flush()?;
        }
        Ok(Self {
            backend: Backend::Sled(o),
        })
    }

    /// The one way entries change: `f` sees the current entry and decides; the backend writes
    /// the decision atomically with the read (see the module invariants and
    /// [`super::pg::outbox`]).
    fn write<T>(
        &self,
        id: &str,
        f: impl Fn(Option<OutboxEntry>) -> Result<Change<T>, StoreError>,
    ) -> Result<T, StoreError> {
        match &self.backend {
            Backend::Sled(s) => s.write(id, true, f),
            Backend::Pg(p) => p.write(id, f),
        }
    }

    /// A revision number never handed out before.
    fn new_revision(&self) -> Result<u64, StoreError> {
        match &self.backend {
            // Taken outside the transaction (the generator may flush); unused ones are harmless.
            Backend::Sled(s) => Ok(s.db.generate_id()? + 1),
            Backend::Pg(p) => p.new_revision(),
        }
    }
}

impl SledOutbox {
    /// The sled write: the entry and its due-index key in the same transaction (see the module
    /// invariants). `f` must not touch the trees itself (the transaction holds sled's write
    /// lock).
    fn write<T>(
        &self,
        id: &str,
        flush: bool,
        f: impl Fn(Option<OutboxEntry>) -> Result<Change<T>, StoreError>,
    ) -> Result<T, StoreError> {
        let abort = ConflictableTransactionError::Abort;
        let r = (&self.entries, &self.due).transaction(|(entries, due)| {
            let old = match entries.get(id.as_bytes())? {
                Some(raw) => Some(decode(id.as_bytes(), &raw).map_err(abort)?),
                None => None,
            };
            let old_key = old
                .as_ref()
                .filter(|e| e.state == DeliveryState::Pending)
                .map(|e| due_key(e.next_attempt_at, id));
            let (new, out) = match f(old).map_err(abort)? {
                Change::Keep(out) => return Ok(out),
                Change::Put(e, out) => (Some(e), out),
                Change::Remove(out) => (None, out),
            };
            if let Some(k) = old_key {
                due.remove(k)?;
            }
            match new {
                Some(e) => {
                    let raw =
                        serde_json::to_vec(&e).map_err(|err| abort(StoreError::Encode(err)))?;
                    entries.insert(id.as_bytes(), raw)?;
                    if e.state == DeliveryState::Pending {
                        due.insert(due_key(e.next_attempt_at, id), &[])?;
                    }
                }
                None => {
                    entries.remove(id.as_bytes())?;
                }
            }
            if flush {
                entries.flush();
            }
            Ok(out)
        });
        r.map_err(|e| match e {
            TransactionError::Abort(e) => e,
            TransactionError::Storage(e) => StoreError::Sled(e),
        })
    }

    fn get(&self, id: &str) -> Result<Option<OutboxEntry>, StoreError> {
        match self.entries.get(id.as_bytes())? {
            Some(v) => Ok(Some(decode(id.as_bytes(), &v)?)),
            None => Ok(None),
        }
    }

    fn list(&self) -> Result<Vec<OutboxEntry>, StoreError> {
        self.entries
            .iter()
            .map(|kv| {
                let (k, v) = kv?;
                decode(&k, &v)
            })
            .collect()
    }

    fn due(&self, now: u64) -> Result<Vec<OutboxEntry>, StoreError> {
        let range = match now.checked_add(1) {
            Some(end) => self.due.range(..end.to_be_bytes()),
            None => self.due.iter(),
        };
        let mut out = Vec::new();
        for kv in range {
            let (k, _) = kv?;
            let id = String::from_utf8_lossy(&k[8.min(k.len())..]).into_owned();
            // The entry may have changed since the index was read (sent, replaced, deleted):
            // only an entry that still matches its key is due.
            if let Some(e) = self.get(&id)? {
                if e.state == DeliveryState::Pending && due_key(e.next_attempt_at, &id) == *k {
                    out.push(e);
                }
            }
        }
        Ok(out)
    }
}

impl Outbox {
    pub fn get(&self, id: &str) -> Result<Option<OutboxEntry>, StoreError> {
        match &self.backend {
            Backend::Sled(s) => s.get(id),
            Backend::Pg(p) => p.get(id),
        }
    }

    /// Accepts a Bundle for delivery; durable when this returns.
    pub fn enqueue(&self, id: &str, bundle: Value) -> Result<Enqueued, StoreError> {
        let now = now_ms();
        let revision = self.new_revision()?;
        self.write(id, |old| {
            Ok(match old {
                None => Change::Put(
                    Box::new(OutboxEntry {
                        id: id.to_string(),
                        bundle: bundle.clone(),
                        revision,
                        state: DeliveryState::Pending,
                        attempts: 0,
                        enqueued_at: now,
                        next_attempt_at: now,
                        updated_at: now,
                        last_status: None,
                        last_error: None,
                        outcome: None,
                        locations: Vec::new(),
                    }),
                    Enqueued::New,
                ),
                Some(e) if e.state == DeliveryState::Delivered => {
                    Change::Keep(Enqueued::AlreadyDelivered)
                }
                Some(e) if e.state == DeliveryState::Pending && e.bundle == bundle => {
                    Change::Keep(Enqueued::Unchanged)
                }
                Some(mut e) => {
                    e.bundle = bundle.clone();
                    e.revision = revision;
                    e.state = DeliveryState::Pending;
                    e.attempts = 0;
                    e.next_attempt_at = now;
                    e.updated_at = now;
                    Change::Put(Box::new(e), Enqueued::Replaced)
                }
            })
        })
    }

    /// Every entry, in id order (decodes them all: for operators, not for the delivery loop).
    pub fn list(&self) -> Result<Vec<OutboxEntry>, StoreError> {
        match &self.backend {
            Backend::Sled(s) => s.list(),
            Backend::Pg(p) => p.list(),
        }
    }

    /// Pending entries whose next attempt is due at `now`, earliest first (ties by id). Reads
    /// only the due index up to `now` and the entries it names.
    pub fn due(&self, now: u64) -> Result<Vec<OutboxEntry>, StoreError> {
        match &self.backend {
            Backend::Sled(s) => s.due(now),
            Backend::Pg(p) => p.due(now),
        }
    }

    /// The due entries this process sends now. In sled (one process) that is [`Outbox::due`],
    /// all of them. In PostgreSQL several processes deliver from one outbox: each
    /// entry is claimed with `FOR UPDATE SKIP LOCKED` and its `next_attempt_at` moved
    /// `lease_ms` ahead in the same transaction, so no other process sends it meanwhile, and a
    /// sender that dies leaves it due again when the lease runs out (at-least-once; the
    /// Bundles' conditional creates keep a repeat harmless). At most `limit` at a time there.
    pub fn claim_due(
        &self,
        now: u64,
        lease_ms: u64,
        limit: usize,
    ) -> Result<Vec<OutboxEntry>, StoreError> {
        match &self.backend {
            // One process owns a sled store: everything due is its own to send.
            Backend::Sled(s) => s.due(now),
            Backend::Pg(p) => p.claim_due(now, lease_ms, limit),
        }
    }

    /// When the next pending entry falls due, if any (the first index key).
    pub fn next_due(&self) -> Result<Option<u64>, StoreError> {
        match &self.backend {
            Backend::Sled(s) => Ok(s.due.first()?.and_then(|(k, _)| due_key_time(&k))),
            Backend::Pg(p) => p.next_due(),
        }
    }

    /// Entries waiting for delivery (counts index keys; decodes nothing).
    pub fn pending_count(&self) -> Result<usize, StoreError> {
        match &self.backend {
            Backend::Sled(s) => Ok(s.due.len()),
            Backend::Pg(p) => p.pending_count(),
        }
    }

    /// Records that revision `revision` of `id` was delivered. If the entry holds another
    /// revision now (replaced while in flight), only `last_status`/`last_error` say so: the new
    /// Bundle stays pending. The returned entry's `revision` differs from `revision` then.
    pub fn mark_delivered(
        &self,
        id: &str,
        revision: u64,
        status: u16,
        locations: Vec<String>,
    ) -> Result<OutboxEntry, StoreError> {
        let now = now_ms();
        self.write(id, |old| {
            let mut e = old.ok_or_else(|| StoreError::NotFound(id.to_string()))?;
            if e.revision != revision {
                return Ok(superseded(
                    e,
                    revision,
                    Some(status),
                    &format!("delivered (HTTP {status})"),
                    now,
                ));
            }
            e.state = DeliveryState::Delivered;
            e.attempts += 1;
            e.last_status = Some(status);
            e.last_error = None;
            e.outcome = None;
            e.locations = locations.clone();
            e.updated_at = now;
            Ok(Change::Put(Box::new(e.clone()), e))
        })
    }

    /// Records a failed attempt of revision `revision`; `retry_at` = None makes it a dead
    /// letter. A superseded revision changes no state (as in `mark_delivered`), nor does a
    /// failure reported after the same revision was delivered.
    pub fn mark_failed(
        &self,
        id: &str,
        revision: u64,
        status: Option<u16>,
        error: String,
        outcome: Option<Value>,
        retry_at: Option<u64>,
    ) -> Result<OutboxEntry, StoreError> {
        let now = now_ms();
        self.write(id, |old| {
            let mut e = old.ok_or_else(|| StoreError::NotFound(id.to_string()))?;
            if e.revision != revision {
                return Ok(superseded(e, revision, status, &error, now));
            }
            if e.state == DeliveryState::Delivered {
                return Ok(Change::Keep(e));
            }
            e.attempts += 1;
            e.last_status = status;
            e.last_error = Some(error.clone());
            e.outcome = outcome.clone();
            e.updated_at = now;
            match retry_at {
                Some(t) => {
                    e.state = DeliveryState::Pending;
                    e.next_attempt_at = t;
                }
                None => e.state = DeliveryState::DeadLetter,
            }
            Ok(Change::Put(Box::new(e.clone()), e))
        })
    }

    /// Puts a dead letter back in the queue (after an operator fixed the cause); any other
    /// entry is returned unchanged.
    pub fn retry(&self, id: &str) -> Result<OutboxEntry, StoreError> {
        let now = now_ms();
        self.write(id, |old| {
            let mut e = old.ok_or_else(|| StoreError::NotFound(id.to_string()))?;
            if e.state != DeliveryState::DeadLetter {
                return Ok(Change::Keep(e));
            }
            e.state = DeliveryState::Pending;
            e.attempts = 0;
            e.next_attempt_at = now;
            e.updated_at = now;
            Ok(Change::Put(Box::new(e.clone()), e))
        })
    }

    /// Removes an entry and its Bundle (patient data deletion).
    pub fn delete(&self, id: &str) -> Result<bool, StoreError> {
        self.write(id, |old| {
            Ok(match old {
                Some(_) => Change::Remove(true),
                None => Change::Keep(false),
            })
        })
    }
}

/// The answer to an attempt of a revision the entry no longer holds: noted on a pending entry
/// (its own Bundle is still to be sent), and changing nothing else.
fn superseded(
    mut e: OutboxEntry,
    revision: u64,
    status: Option<u16>,
    answer: &str,
    now: u64,
) -> Change<OutboxEntry> {
    if e.state != DeliveryState::Pending {
        return Change::Keep(e);
    }
    e.last_status = status;
    e.last_error = Some(format!(
        "superseded: revision {revision}, sent before revision {} replaced it, was answered: \
         {answer}; the new revision is sent next",
        e.revision
    ));
    e.updated_at = now;
    Change::Put(Box::new(e.clone()), e)
}

/// The behaviour every outbox backend must show, as checks that panic with what went wrong:
/// the unit tests (sled) and `tests/store_backends.rs` (PostgreSQL) run them. Needs an empty
/// outbox.
#[doc(hidden)]
pub mod conformance {
    use super::*;
    use serde_json::json;

    fn bundle(n: usize) -> Value {
        json!({"resourceType": "Bundle", "type": "transaction", "entry": [], "n": n})
    }

    pub fn run_all(o: &Outbox) {
        enqueue_replace_and_deliver(o);
        an_answer_for_a_replaced_bundle_leaves_the_new_one_pending(o);
        dead_letters_retry_and_delete(o);
    }

    pub fn enqueue_replace_and_deliver(o: &Outbox) {
        assert_eq!(o.enqueue("a", bundle(1)).unwrap(), Enqueued::New);
        assert_eq!(o.enqueue("a", bundle(1)).unwrap(), Enqueued::Unchanged);
        assert_eq!(o.enqueue("a", bundle(2)).unwrap(), Enqueued::Replaced);
        let e = o.get("a").unwrap().expect("stored");
        assert_eq!(e.bundle, bundle(2));
        assert_eq!(o.pending_count().unwrap(), 1);
        assert!(o.next_due().unwrap().is_some());
        let due = o.claim_due(now_ms(), 60_000, 10).unwrap();
        assert_eq!(due.len(), 1);
        let d = o
            .mark_delivered("a", due[0].revision, 200, vec!["Condition/1".into()])
            .unwrap();
        assert_eq!(d.state, DeliveryState::Delivered);
        assert_eq!(d.locations, vec!["Condition/1".to_string()]);
        assert_eq!(
            o.enqueue("a", bundle(3)).unwrap(),
            Enqueued::AlreadyDelivered
        );
        assert_eq!(o.pending_count().unwrap(), 0);
        assert_eq!(o.next_due().unwrap(), None);
        assert!(o.due(u64::MAX / 2).unwrap().is_empty());
    }

    pub fn an_answer_for_a_replaced_bundle_leaves_the_new_one_pending(o: &Outbox) {
        o.enqueue("b", bundle(1)).unwrap();
        let sent = o.get("b").unwrap().unwrap();
        assert_eq!(o.enqueue("b", bundle(2)).unwrap(), Enqueued::Replaced);
        let after = o.mark_delivered("b", sent.revision, 200, vec![]).unwrap();
        assert_ne!(after.revision, sent.revision, "a new revision");
        assert_eq!(after.state, DeliveryState::Pending);
        assert_eq!(after.bundle, bundle(2));
        // Revisions are never reused, not even after delete and a new enqueue.
        o.delete("b").unwrap();
        o.enqueue("b", bundle(2)).unwrap();
        let again = o.get("b").unwrap().unwrap();
        assert!(again.revision > after.revision);
        let late = o
            .mark_failed("b", sent.revision, Some(500), "x".into(), None, None)
            .unwrap();
        assert_eq!(
            late.state,
            DeliveryState::Pending,
            "a stale answer changes nothing"
        );
        o.mark_delivered("b", again.revision, 200, vec![]).unwrap();
    }

    pub fn dead_letters_retry_and_delete(o: &Outbox) {
        o.enqueue("c", bundle(1)).unwrap();
        let rev = o.get("c").unwrap().unwrap().revision;
        let later = now_ms() + 3_600_000;
        let e = o
            .mark_failed("c", rev, Some(503), "HTTP 503".into(), None, Some(later))
            .unwrap();
        assert_eq!((e.state, e.attempts), (DeliveryState::Pending, 1));
        assert!(
            o.claim_due(now_ms(), 60_000, 10).unwrap().is_empty(),
            "not due yet"
        );
        assert_eq!(o.next_due().unwrap(), Some(later));
        let dead = o
            .mark_failed("c", rev, Some(422), "refused".into(), Some(json!({})), None)
            .unwrap();
        assert_eq!(dead.state, DeliveryState::DeadLetter);
        assert_eq!(o.pending_count().unwrap(), 0);
        let back = o.retry("c").unwrap();
        assert_eq!((back.state, back.attempts), (DeliveryState::Pending, 0));
        assert_eq!(o.claim_due(now_ms(), 60_000, 10).unwrap().len(), 1);
        assert!(o.delete("c").unwrap());
        assert!(!o.delete("c").unwrap());
        assert!(o.get("c").unwrap().is_none());
        assert!(matches!(
            o.mark_delivered("c", rev, 200, vec![]),
            Err(StoreError::NotFound(_))
        ));
        let ids: Vec<String> = o.list().unwrap().into_iter().map(|e| e.id).collect();
        assert_eq!(ids, vec!["a".to_string(), "b".to_string()]);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use std::collections::BTreeSet;

    fn b(n: usize) -> Value {
        json!({"resourceType": "Bundle", "type": "transaction", "entry": [], "n": n})
    }

    fn sled_of(o: &Outbox) -> &SledOutbox {
        match &o.backend {
            Backend::Sled(s) => s,
            Backend::Pg(_) => panic!("a sled outbox"),
        }
    }

    /// The index invariant: exactly one key per Pending entry, at its next_attempt_at.
    fn assert_index_matches(o: &Outbox) {
        let want: BTreeSet<Vec<u8>> = o
            .list()
            .unwrap()
            .iter()
            .filter(|e| e.state == DeliveryState::Pending)
            .map(|e| due_key(e.next_attempt_at, &e.id))
            .collect();
        let have: BTreeSet<Vec<u8>> = sled_of(o)
            .due
            .iter()
            .keys()
            .map(|k| k.unwrap().to_vec())
            .collect();
        assert_eq!(have, want);
        assert_eq!(o.pending_count().unwrap(), want.len());
    }

    #[test]
    fn the_sled_outbox_passes_the_backend_suite() {
        let dir = tempfile::tempdir().unwrap();
        conformance::run_all(&Outbox::open(dir.path()).unwrap());
    }

    #[test]
    fn enqueue_is_idempotent_and_survives_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let b1 = json!({"resourceType": "Bundle", "type": "transaction", "entry": []});
        {
            let o = Outbox::open(dir.path()).unwrap();
            assert_eq!(o.enqueue("job-1", b1.clone()).unwrap(), Enqueued::New);
            assert_eq!(o.enqueue("job-1", b1.clone()).unwrap(), Enqueued::Unchanged);
            let b2 = json!({"resourceType": "Bundle", "type": "transaction", "entry": [{}]});
            assert_eq!(o.enqueue("job-1", b2).unwrap(), Enqueued::Replaced);
            o.enqueue("job-2", b1.clone()).unwrap();
            let rev = o.get("job-2").unwrap().unwrap().revision;
            o.mark_failed(
                "job-2",
                rev,
                Some(503),
                "HTTP 503".into(),
                None,
                Some(u64::MAX),
            )
            .unwrap();
        }
        // Reopen: nothing lost.
        let o = Outbox::open(dir.path()).unwrap();
        assert_eq!(o.list().unwrap().len(), 2);
        assert_index_matches(&o);
        let due = o.due(now_ms()).unwrap();
        assert_eq!(due.len(), 1, "job-2 waits for its backoff");
        assert_eq!(due[0].id, "job-1");
        assert_eq!(o.next_due().unwrap(), Some(due[0].next_attempt_at));
        o.mark_delivered(
            "job-1",
            due[0].revision,
            200,
            vec!["Condition/1/_history/1".into()],
        )
        .unwrap();
        assert_eq!(
            o.enqueue("job-1", b1.clone()).unwrap(),
            Enqueued::AlreadyDelivered
        );
        assert_eq!(o.next_due().unwrap(), Some(u64::MAX));
        assert_eq!(o.due(u64::MAX).unwrap().len(), 1, "u64::MAX is in range");
        let rev = o.get("job-2").unwrap().unwrap().revision;
        let e = o
            .mark_failed(
                "job-2",
                rev,
                Some(422),
                "invalid".into(),
                Some(json!({})),
                None,
            )
            .unwrap();
        assert_eq!((e.state, e.attempts), (DeliveryState::DeadLetter, 2));
        assert_eq!(o.pending_count().unwrap(), 0);
        assert_eq!(o.next_due().unwrap(), None);
        assert_eq!(o.retry("job-2").unwrap().state, DeliveryState::Pending);
        assert_index_matches(&o);
        assert!(o.delete("job-2").unwrap());
        assert!(!o.delete("job-2").unwrap());
        assert!(o.get("job-2").unwrap().is_none());
        assert_index_matches(&o);
        assert!(matches!(o.retry("nope"), Err(StoreError::NotFound(_))));
        assert!(matches!(
            o.mark_delivered("nope", 1, 200, vec![]),
            Err(StoreError::NotFound(_))
        ));
    }

    #[test]
    fn an_answer_for_a_replaced_bundle_leaves_the_new_one_pending() {
        let dir = tempfile::tempdir().unwrap();
        let o = Outbox::open(dir.path()).unwrap();
        o.enqueue("job", b(1)).unwrap();
        let sent = o.due(now_ms()).unwrap().remove(0);
        // While the POST of b(1) is in flight, the job's Bundle is replaced.
        assert_eq!(o.enqueue("job", b(2)).unwrap(), Enqueued::Replaced);
        let e = o
            .mark_delivered("job", sent.revision, 200, vec!["X/1".into()])
            .unwrap();
        assert_ne!(
            e.revision, sent.revision,
            "the caller can tell it was superseded"
        );
        assert_eq!((e.state, e.attempts), (DeliveryState::Pending, 0));
        assert_eq!(e.bundle, b(2));
        assert!(e.locations.is_empty());
        assert_eq!(e.last_status, Some(200));
        assert!(e.last_error.as_deref().unwrap().starts_with("superseded:"));
        // A failure with a long backoff for the old Bundle does not delay the new one.
        let e = o
            .mark_failed(
                "job",
                sent.revision,
                Some(503),
                "HTTP 503".into(),
                None,
                Some(u64::MAX),
            )
            .unwrap();
        assert_eq!((e.state, e.attempts), (DeliveryState::Pending, 0));
        assert!(e.next_attempt_at <= now_ms());
        // Nor does a refusal of the old Bundle make the new one a dead letter.
        let e = o
            .mark_failed(
                "job",
                sent.revision,
                Some(422),
                "invalid".into(),
                None,
                None,
            )
            .unwrap();
        assert_eq!(e.state, DeliveryState::Pending);
        let next = o.due(now_ms()).unwrap();
        assert_eq!(next.len(), 1);
        assert_eq!(
            (next[0].bundle.clone(), next[0].revision),
            (b(2), e.revision)
        );
        assert_index_matches(&o);
        // The new revision's own answer counts; a late failure of it after success does not.
        let e = o
            .mark_delivered("job", next[0].revision, 201, vec![])
            .unwrap();
        assert_eq!((e.state, e.attempts), (DeliveryState::Delivered, 1));
        let e = o
            .mark_failed(
                "job",
                next[0].revision,
                None,
                "timeout".into(),
                None,
                Some(0),
            )
            .unwrap();
        assert_eq!(
            (e.state, e.last_status),
            (DeliveryState::Delivered, Some(201))
        );
        assert_index_matches(&o);
    }

    #[test]
    fn revisions_are_not_reused_after_delete_or_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let last = {
            let o = Outbox::open(dir.path()).unwrap();
            o.enqueue("job", b(1)).unwrap();
            let first = o.get("job").unwrap().unwrap().revision;
            assert!(o.delete("job").unwrap());
            o.enqueue("job", b(2)).unwrap();
            let second = o.get("job").unwrap().unwrap().revision;
            assert_ne!(first, second);
            // The deleted Bundle's late success does not deliver the new one.
            let e = o.mark_delivered("job", first, 200, vec![]).unwrap();
            assert_eq!(e.state, DeliveryState::Pending);
            second
        };
        let o = Outbox::open(dir.path()).unwrap();
        o.enqueue("job", b(3)).unwrap();
        assert!(o.get("job").unwrap().unwrap().revision > last);
    }

    #[test]
    fn due_reads_only_the_index() {
        let dir = tempfile::tempdir().unwrap();
        let o = Outbox::open(dir.path()).unwrap();
        let now = now_ms();
        let mut want = Vec::new();
        for i in 0..600usize {
            let id = format!("job-{i:04}");
            o.enqueue(&id, b(i)).unwrap();
            let rev = o.get(&id).unwrap().unwrap().revision;
            match i % 4 {
                0 => {
                    o.mark_delivered(&id, rev, 200, vec![]).unwrap();
                }
                1 => {
                    o.mark_failed(&id, rev, Some(422), "x".into(), None, None)
                        .unwrap();
                }
                2 => {
                    // Due in the past, in reverse order of id.
                    let at = now - 1 - i as u64;
                    o.mark_failed(&id, rev, Some(503), "x".into(), None, Some(at))
                        .unwrap();
                    want.push((at, id));
                }
                _ => {
                    o.mark_failed(&id, rev, None, "x".into(), None, Some(now + 60_000))
                        .unwrap();
                }
            }
        }
        assert_index_matches(&o);
        want.sort();
        // An unreadable record that is not pending has no index key: `due` never decodes it
        // (a scan of every entry would fail on it).
        sled_of(&o)
            .entries
            .insert("job-corrupt", b"{not json".to_vec())
            .unwrap();
        let due = o.due(now).unwrap();
        let got: Vec<(u64, String)> = due
            .iter()
            .map(|e| (e.next_attempt_at, e.id.clone()))
            .collect();
        assert_eq!(got, want, "exactly the due pending entries, earliest first");
        assert_eq!(o.pending_count().unwrap(), 300);
        assert_eq!(o.next_due().unwrap(), Some(want[0].0));
        assert_eq!(o.due(now + 60_000).unwrap().len(), 300);
        assert!(matches!(o.list(), Err(StoreError::Corrupt { .. })));
    }

    #[test]
    fn a_store_written_before_the_index_is_indexed_on_open() {
        let dir = tempfile::tempdir().unwrap();
        {
            let db = crate::store::open_db(dir.path()).unwrap();
            let t = db.open_tree(TREE).unwrap();
            for (id, state, at) in [
                ("a", "PENDING", 5u64),
                ("b", "DELIVERED", 1),
                ("c", "PENDING", 3),
            ] {
                // The old record had no revision.
                let rec = json!({"id": id, "bundle": b(0), "state": state, "attempts": 0,
                                 "enqueued_at": 1, "next_attempt_at": at, "updated_at": 1});
                t.insert(id, serde_json::to_vec(&rec).unwrap()).unwrap();
            }
            t.insert("z", b"corrupt".to_vec()).unwrap();
            db.flush().unwrap();
        }
        let o = Outbox::open(dir.path()).unwrap();
        let due: Vec<_> = o
            .due(10)
            .unwrap()
            .into_iter()
            .map(|e| (e.id, e.revision))
            .collect();
        assert_eq!(due, [("c".to_string(), 0), ("a".to_string(), 0)]);
        assert_eq!(o.pending_count().unwrap(), 2);
        o.mark_delivered("c", 0, 200, vec![]).unwrap();
        assert_eq!(o.pending_count().unwrap(), 1);
    }

    #[test]
    fn the_index_stays_exact_under_concurrent_writers() {
        let dir = tempfile::tempdir().unwrap();
        let o = Outbox::open(dir.path()).unwrap();
        let threads: Vec<_> = (0..4u64)
            .map(|t| {
                let o = o.clone();
                std::thread::spawn(move || {
                    for i in 0..150u64 {
                        let id = format!("job-{}", (i * 7 + t) % 10);
                        let rev = o.get(&id).unwrap().map_or(0, |e| e.revision);
                        match (i + t) % 6 {
                            0 | 1 => {
                                o.enqueue(&id, b((i * t) as usize)).unwrap();
                            }
                            // NotFound when the job was deleted meanwhile.
                            2 => {
                                let _ = o.mark_delivered(&id, rev, 200, vec![]);
                            }
                            3 => {
                                let _ = o.mark_failed(&id, rev, None, "x".into(), None, Some(i));
                            }
                            4 => {
                                let _ = o.retry(&id);
                            }
                            _ => {
                                o.delete(&id).unwrap();
                            }
                        }
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        assert_index_matches(&o);
    }
}

//! The durable FHIR outbox: one entry per job's Bundle, in sled, flushed to disk on every state
//! change, so a crash or restart loses no accepted Bundle.
//!
//! Delivery is at-least-once: an entry stays `Pending` until the server's success is recorded,
//! so a crash between the POST and that record re-sends it. Bundles are idempotent (conditional
//! creates), which makes at-least-once effectively once.

use std::path::Path;
use std::time::{SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::StoreError;

const TREE: &str = "fhir_outbox";

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
    pub state: DeliveryState,
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

/// Handle to the outbox tree; cheap to clone, safe to share between tasks.
#[derive(Clone)]
pub struct Outbox {
    tree: sled::Tree,
}

impl Outbox {
    /// Opens (creating if needed) the outbox in the sled database at `dir`.
    pub fn open(dir: &Path) -> Result<Self, StoreError> {
        let db = super::open_db(dir)?;
        Self::in_db(&db)
    }

    pub fn in_db(db: &sled::Db) -> Result<Self, StoreError> {
        Ok(Self {
            tree: db.open_tree(TREE)?,
        })
    }

    fn put(&self, e: &OutboxEntry) -> Result<(), StoreError> {
        self.tree.insert(
            e.id.as_bytes(),
            serde_json::to_vec(e).map_err(StoreError::Encode)?,
        )?;
        self.tree.flush()?;
        Ok(())
    }

    pub fn get(&self, id: &str) -> Result<Option<OutboxEntry>, StoreError> {
        match self.tree.get(id.as_bytes())? {
            Some(v) => Ok(Some(serde_json::from_slice(&v).map_err(|e| {
                StoreError::Corrupt {
                    key: id.to_string(),
                    reason: e.to_string(),
                }
            })?)),
            None => Ok(None),
        }
    }

    /// Accepts a Bundle for delivery; durable when this returns.
    pub fn enqueue(&self, id: &str, bundle: Value) -> Result<Enqueued, StoreError> {
        let now = now_ms();
        // compare_and_swap loop: two enqueues of the same id never both see "New".
        loop {
            let old = self.tree.get(id.as_bytes())?;
            let (entry, result) = match &old {
                None => (
                    OutboxEntry {
                        id: id.to_string(),
                        bundle: bundle.clone(),
                        state: DeliveryState::Pending,
                        attempts: 0,
                        enqueued_at: now,
                        next_attempt_at: now,
                        updated_at: now,
                        last_status: None,
                        last_error: None,
                        outcome: None,
                        locations: Vec::new(),
                    },
                    Enqueued::New,
                ),
                Some(raw) => {
                    let mut e: OutboxEntry =
                        serde_json::from_slice(raw).map_err(|err| StoreError::Corrupt {
                            key: id.to_string(),
                            reason: err.to_string(),
                        })?;
                    if e.state == DeliveryState::Delivered {
                        return Ok(Enqueued::AlreadyDelivered);
                    }
                    if e.bundle == bundle && e.state == DeliveryState::Pending {
                        return Ok(Enqueued::Unchanged);
                    }
                    e.bundle = bundle.clone();
                    e.state = DeliveryState::Pending;
                    e.attempts = 0;
                    e.next_attempt_at = now;
                    e.updated_at = now;
                    (e, Enqueued::Replaced)
                }
            };
            let new = serde_json::to_vec(&entry).map_err(StoreError::Encode)?;
            if self
                .tree
                .compare_and_swap(id.as_bytes(), old, Some(new))?
                .is_ok()
            {
                self.tree.flush()?;
                return Ok(result);
            }
        }
    }

    /// Every entry, in id order.
    pub fn list(&self) -> Result<Vec<OutboxEntry>, StoreError> {
        self.tree
            .iter()
            .map(|kv| {
                let (k, v) = kv?;
                serde_json::from_slice(&v).map_err(|e| StoreError::Corrupt {
                    key: String::from_utf8_lossy(&k).into_owned(),
                    reason: e.to_string(),
                })
            })
            .collect()
    }

    /// Pending entries whose next attempt is due at `now`, oldest first.
    pub fn due(&self, now: u64) -> Result<Vec<OutboxEntry>, StoreError> {
        let mut v: Vec<_> = self
            .list()?
            .into_iter()
            .filter(|e| e.state == DeliveryState::Pending && e.next_attempt_at <= now)
            .collect();
        v.sort_by_key(|e| (e.next_attempt_at, e.enqueued_at));
        Ok(v)
    }

    /// When the next pending entry falls due, if any.
    pub fn next_due(&self) -> Result<Option<u64>, StoreError> {
        Ok(self
            .list()?
            .into_iter()
            .filter(|e| e.state == DeliveryState::Pending)
            .map(|e| e.next_attempt_at)
            .min())
    }

    pub fn pending_count(&self) -> Result<usize, StoreError> {
        Ok(self
            .list()?
            .iter()
            .filter(|e| e.state == DeliveryState::Pending)
            .count())
    }

    fn update(
        &self,
        id: &str,
        f: impl FnOnce(&mut OutboxEntry),
    ) -> Result<OutboxEntry, StoreError> {
        let mut e = self
            .get(id)?
            .ok_or_else(|| StoreError::NotFound(id.to_string()))?;
        f(&mut e);
        e.updated_at = now_ms();
        self.put(&e)?;
        Ok(e)
    }

    pub fn mark_delivered(
        &self,
        id: &str,
        status: u16,
        locations: Vec<String>,
    ) -> Result<OutboxEntry, StoreError> {
        self.update(id, |e| {
            e.state = DeliveryState::Delivered;
            e.attempts += 1;
            e.last_status = Some(status);
            e.last_error = None;
            e.outcome = None;
            e.locations = locations;
        })
    }

    /// Records a failed attempt; `retry_at` = None makes it a dead letter.
    pub fn mark_failed(
        &self,
        id: &str,
        status: Option<u16>,
        error: String,
        outcome: Option<Value>,
        retry_at: Option<u64>,
    ) -> Result<OutboxEntry, StoreError> {
        self.update(id, |e| {
            e.attempts += 1;
            e.last_status = status;
            e.last_error = Some(error);
            e.outcome = outcome;
            match retry_at {
                Some(t) => {
                    e.state = DeliveryState::Pending;
                    e.next_attempt_at = t;
                }
                None => e.state = DeliveryState::DeadLetter,
            }
        })
    }

    /// Puts a dead letter back in the queue (after an operator fixed the cause).
    pub fn retry(&self, id: &str) -> Result<OutboxEntry, StoreError> {
        self.update(id, |e| {
            if e.state == DeliveryState::DeadLetter {
                e.state = DeliveryState::Pending;
                e.attempts = 0;
                e.next_attempt_at = now_ms();
            }
        })
    }

    /// Removes an entry and its Bundle (patient data deletion).
    pub fn delete(&self, id: &str) -> Result<bool, StoreError> {
        let existed = self.tree.remove(id.as_bytes())?.is_some();
        self.tree.flush()?;
        Ok(existed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

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
            o.mark_failed("job-2", Some(503), "HTTP 503".into(), None, Some(u64::MAX))
                .unwrap();
        }
        // Reopen: nothing lost.
        let o = Outbox::open(dir.path()).unwrap();
        assert_eq!(o.list().unwrap().len(), 2);
        let due = o.due(now_ms()).unwrap();
        assert_eq!(due.len(), 1, "job-2 waits for its backoff");
        assert_eq!(due[0].id, "job-1");
        o.mark_delivered("job-1", 200, vec!["Condition/1/_history/1".into()])
            .unwrap();
        assert_eq!(
            o.enqueue("job-1", b1.clone()).unwrap(),
            Enqueued::AlreadyDelivered
        );
        let e = o
            .mark_failed("job-2", Some(422), "invalid".into(), Some(json!({})), None)
            .unwrap();
        assert_eq!((e.state, e.attempts), (DeliveryState::DeadLetter, 2));
        assert_eq!(o.pending_count().unwrap(), 0);
        assert_eq!(o.retry("job-2").unwrap().state, DeliveryState::Pending);
        assert!(o.delete("job-2").unwrap());
        assert!(o.get("job-2").unwrap().is_none());
        assert!(matches!(o.retry("nope"), Err(StoreError::NotFound(_))));
    }
}

//! The clinician reviews of completed jobs and their audit trails (issue 18), keyed by the
//! job's unique id (a deleted and re-created name starts a fresh review).
//!
//! Invariants: a change and its audit entry commit in one transaction (there is no edit
//! without its trail, and no trail line for an edit that did not happen); a change is
//! flushed before the call returns (an edit the page showed as saved survives a crash);
//! deleting a job deletes its review and trail.

use sled::transaction::{ConflictableTransactionError, TransactionError, Transactional};

use super::StoreError;
use crate::review::{AuditEntry, Review};

const REVIEWS: &str = "reviews";
const TRAIL: &str = "review_audit";

#[derive(Clone)]
pub struct ReviewStore {
    db: sled::Db,
    reviews: sled::Tree,
    trail: sled::Tree,
}

fn trail_key(job_id: &str, seq: u64) -> Vec<u8> {
    let mut k = job_id.as_bytes().to_vec();
    k.push(0);
    k.extend_from_slice(&seq.to_be_bytes());
    k
}

fn trail_prefix(job_id: &str) -> Vec<u8> {
    let mut k = job_id.as_bytes().to_vec();
    k.push(0);
    k
}

fn decode<T: for<'de> serde::Deserialize<'de>>(key: &[u8], raw: &[u8]) -> Result<T, StoreError> {
    serde_json::from_slice(raw).map_err(|e| StoreError::Corrupt {
        key: String::from_utf8_lossy(key).into_owned(),
        reason: e.to_string(),
    })
}

/// What a change did.
pub enum Change<E> {
    /// Stored, with these audit entries.
    Saved(Vec<AuditEntry>),
    /// Refused by the change itself; nothing stored.
    Refused(E),
}

impl ReviewStore {
    pub fn open(db: &sled::Db) -> Result<Self, StoreError> {
        Ok(Self {
            db: db.clone(),
            reviews: db.open_tree(REVIEWS)?,
            trail: db.open_tree(TRAIL)?,
        })
    }

    pub fn get(&self, job_id: &str) -> Result<Option<Review>, StoreError> {
        self.reviews
            .get(job_id.as_bytes())?
            .map(|raw| decode(job_id.as_bytes(), &raw))
            .transpose()
    }

    /// The stored review, or `fresh()` stored as the first one (two first readers store one).
    pub fn get_or_create(
        &self,
        job_id: &str,
        fresh: impl FnOnce() -> Review,
    ) -> Result<Review, StoreError> {
        if let Some(r) = self.get(job_id)? {
            return Ok(r);
        }
        let new = fresh();
        let raw = serde_json::to_vec(&new).map_err(StoreError::Encode)?;
        let won = self
            .reviews
            .compare_and_swap(job_id.as_bytes(), None as Option<&[u8]>, Some(raw))?
            .is_ok();
        self.db.flush()?;
        if won {
            Ok(new)
        } else {
            self.get(job_id)?
                .ok_or_else(|| StoreError::NotFound(format!("review of {job_id}")))
        }
    }

    /// Applies `change` to the stored review atomically with its audit entries. `change`
    /// may run more than once (on a conflicting concurrent change) and must be pure.
    pub fn update<E>(
        &self,
        job_id: &str,
        change: impl Fn(&mut Review) -> Result<Vec<AuditEntry>, E>,
    ) -> Result<(Change<E>, Option<Review>), StoreError> {
        let result = (&self.reviews, &self.trail).transaction(|(reviews, trail)| {
            let Some(raw) = reviews.get(job_id.as_bytes())? else {
                return Ok((None, None));
            };
            let mut review: Review =
                decode(job_id.as_bytes(), &raw).map_err(ConflictableTransactionError::Abort)?;
            match change(&mut review) {
                Err(e) => Ok((Some(Change::Refused(e)), Some(review))),
                Ok(entries) => {
                    let raw = serde_json::to_vec(&review)
                        .map_err(|e| ConflictableTransactionError::Abort(StoreError::Encode(e)))?;
                    reviews.insert(job_id.as_bytes(), raw)?;
                    for e in &entries {
                        let seq = trail.generate_id()?;
                        let raw = serde_json::to_vec(e).map_err(|e| {
                            ConflictableTransactionError::Abort(StoreError::Encode(e))
                        })?;
                        trail.insert(trail_key(job_id, seq), raw)?;
                    }
                    Ok((Some(Change::Saved(entries)), Some(review)))
                }
            }
        });
        let (change, review) = match result {
            Ok(v) => v,
            Err(TransactionError::Abort(e)) => return Err(e),
            Err(TransactionError::Storage(e)) => return Err(e.into()),
        };
        self.db.flush()?;
        match change {
            Some(c) => Ok((c, review)),
            None => Err(StoreError::NotFound(format!("review of {job_id}"))),
        }
    }

    /// Appends entries without changing the review (e.g. a failed write to the EHR).
    pub fn log(&self, job_id: &str, entries: &[AuditEntry]) -> Result<(), StoreError> {
        for e in entries {
            let seq = self.db.generate_id()?;
            let raw = serde_json::to_vec(e).map_err(StoreError::Encode)?;
            self.trail.insert(trail_key(job_id, seq), raw)?;
        }
        self.db.flush()?;
        Ok(())
    }

    /// The job's audit trail, oldest first.
    pub fn trail(&self, job_id: &str) -> Result<Vec<AuditEntry>, StoreError> {
        self.trail
            .scan_prefix(trail_prefix(job_id))
            .map(|kv| {
                let (k, v) = kv?;
                decode(&k, &v)
            })
            .collect()
    }

    /// Removes the review and its trail.
    pub fn delete(&self, job_id: &str) -> Result<(), StoreError> {
        self.reviews.remove(job_id.as_bytes())?;
        for kv in self.trail.scan_prefix(trail_prefix(job_id)) {
            let (k, _) = kv?;
            self.trail.remove(k)?;
        }
        self.db.flush()?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::review::Edit;

    fn store() -> (tempfile::TempDir, ReviewStore) {
        let dir = tempfile::tempdir().unwrap();
        let db = crate::store::open_db(dir.path()).unwrap();
        (dir, ReviewStore::open(&db).unwrap())
    }

    fn fresh() -> Review {
        Review {
            job_name: "j".into(),
            version: 1,
            sections: vec![crate::review::ReviewSection {
                name: "PLAN".into(),
                title: "Plan".into(),
                sentences: vec![],
            }],
            items: vec![],
            signature: None,
            sign_error: None,
            added: 0,
            written_ids: Default::default(),
        }
    }

    #[test]
    fn edits_and_their_trail_commit_together_and_delete_together() {
        let (_d, s) = store();
        assert!(s.get("id1").unwrap().is_none());
        let r = s.get_or_create("id1", fresh).unwrap();
        assert_eq!(r.version, 1);
        let add = Edit::Add {
            section: "PLAN".into(),
            text: "Rest.".into(),
        };
        let (c, r) = s
            .update("id1", |r| r.apply(&add, "P/1", 9).map(|a| vec![a]))
            .unwrap();
        assert!(matches!(c, Change::Saved(ref e) if e.len() == 1));
        assert_eq!(r.unwrap().version, 2);
        // A refused change stores nothing and logs nothing.
        let bad = Edit::Remove { id: "zz".into() };
        let (c, _) = s
            .update("id1", |r| r.apply(&bad, "P/1", 10).map(|a| vec![a]))
            .unwrap();
        assert!(matches!(c, Change::Refused(_)));
        assert_eq!(s.get("id1").unwrap().unwrap().version, 2);
        let trail = s.trail("id1").unwrap();
        assert_eq!(trail.len(), 1);
        assert_eq!(trail[0].after.as_deref(), Some("Rest."));
        // Another job's trail is apart; a second get_or_create keeps the stored review.
        s.get_or_create("id2", fresh).unwrap();
        assert!(s.trail("id2").unwrap().is_empty());
        assert_eq!(s.get_or_create("id1", fresh).unwrap().version, 2);
        s.delete("id1").unwrap();
        assert!(s.get("id1").unwrap().is_none());
        assert!(s.trail("id1").unwrap().is_empty());
        assert!(s.get("id2").unwrap().is_some());
    }
}

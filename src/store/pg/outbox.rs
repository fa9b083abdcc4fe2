//! The FHIR outbox on PostgreSQL: one row per (EHR, job id) in `fhir_outbox`, shared by every
//! `serve` process of the database. [`super::super::outbox::Outbox`] makes the decisions
//! (enqueue, mark, retry); this module only reads and writes entries atomically.
//!
//! Invariants (and why):
//! - **One writer per entry at a time.** A write takes a transaction-scoped advisory lock on
//!   (EHR, id) before it reads, so two processes enqueueing the same new id cannot both insert,
//!   and a read-decide-write never loses a concurrent one (the sled outbox gets the same from
//!   its transactions).
//! - **A claim is a lease.** [`PgOutbox::claim_due`] selects due rows `FOR UPDATE SKIP LOCKED`
//!   and moves their `next_attempt_at` ahead by the lease in the same transaction: the other
//!   processes neither wait nor send them; a sender that dies leaves them due again when the
//!   lease ends. The attempt's `mark_*` then sets the real next state.
//! - The `state` and `next_attempt_at` columns always equal the entry's fields (written
//!   together), so the due index never names a delivered or dead entry.

use postgres::IsolationLevel;

use super::{db_err, pool_err, run_tx, Pool};
use crate::store::outbox::{decode, Change, DeliveryState, OutboxEntry};
use crate::store::StoreError;

/// Advisory-lock class of outbox entries (the second key is a hash of EHR and id).
const LOCK_CLASS: i32 = 20;

fn state_name(s: DeliveryState) -> &'static str {
    match s {
        DeliveryState::Pending => "PENDING",
        DeliveryState::Delivered => "DELIVERED",
        DeliveryState::DeadLetter => "DEAD_LETTER",
    }
}

fn entry_of(id: &str, v: serde_json::Value) -> Result<OutboxEntry, StoreError> {
    let raw = serde_json::to_vec(&v).map_err(StoreError::Encode)?;
    decode(id.as_bytes(), &raw)
}

/// One EHR's outbox in a PostgreSQL store; cheap to clone.
#[derive(Clone)]
pub struct PgOutbox {
    pool: Pool,
    ehr: String,
}

impl PgOutbox {
    pub(super) fn new(pool: Pool, ehr: &str) -> Self {
        Self {
            pool,
            ehr: ehr.to_owned(),
        }
    }

    fn put(
        tx: &mut postgres::Transaction<'_>,
        ehr: &str,
        e: &OutboxEntry,
    ) -> Result<(), StoreError> {
        let v = serde_json::to_value(e).map_err(StoreError::Encode)?;
        tx.execute(
            "INSERT INTO fhir_outbox (ehr, id, state, next_attempt_at, entry)
             VALUES ($1, $2, $3, $4, $5)
             ON CONFLICT (ehr, id) DO UPDATE SET state = EXCLUDED.state,
                 next_attempt_at = EXCLUDED.next_attempt_at, entry = EXCLUDED.entry",
            &[
                &ehr,
                &e.id,
                &state_name(e.state),
                &(e.next_attempt_at.min(i64::MAX as u64) as i64),
                &v,
            ],
        )
        .map_err(db_err)?;
        Ok(())
    }

    /// Reads the entry, lets `f` decide, writes the decision: one transaction under the
    /// entry's advisory lock (see the module invariants).
    pub(crate) fn write<T>(
        &self,
        id: &str,
        f: impl Fn(Option<OutboxEntry>) -> Result<Change<T>, StoreError>,
    ) -> Result<T, StoreError> {
        let key = format!("{}\n{}", self.ehr, id);
        run_tx(&self.pool, IsolationLevel::ReadCommitted, |tx| {
            tx.execute(
                "SELECT pg_advisory_xact_lock($1, hashtext($2))",
                &[&LOCK_CLASS, &key],
            )
            .map_err(db_err)?;
            let old = tx
                .query_opt(
                    "SELECT entry FROM fhir_outbox WHERE ehr = $1 AND id = $2 FOR UPDATE",
                    &[&self.ehr, &id],
                )
                .map_err(db_err)?
                .map(|r| entry_of(id, r.get(0)))
                .transpose()?;
            match f(old)? {
                Change::Keep(out) => Ok(out),
                Change::Put(e, out) => {
                    Self::put(tx, &self.ehr, &e)?;
                    Ok(out)
                }
                Change::Remove(out) => {
                    tx.execute(
                        "DELETE FROM fhir_outbox WHERE ehr = $1 AND id = $2",
                        &[&self.ehr, &id],
                    )
                    .map_err(db_err)?;
                    Ok(out)
                }
            }
        })
    }

    pub(crate) fn new_revision(&self) -> Result<u64, StoreError> {
        let mut c = self.pool.get().map_err(pool_err)?;
        let n: i64 = c
            .query_one("SELECT nextval('fhir_outbox_revision')", &[])
            .map_err(db_err)?
            .get(0);
        Ok(n as u64)
    }

    pub(crate) fn get(&self, id: &str) -> Result<Option<OutboxEntry>, StoreError> {
        let mut c = self.pool.get().map_err(pool_err)?;
        c.query_opt(
            "SELECT entry FROM fhir_outbox WHERE ehr = $1 AND id = $2",
            &[&self.ehr, &id],
        )
        .map_err(db_err)?
        .map(|r| entry_of(id, r.get(0)))
        .transpose()
    }

    pub(crate) fn list(&self) -> Result<Vec<OutboxEntry>, StoreError> {
        let mut c = self.pool.get().map_err(pool_err)?;
        c.query(
            "SELECT id, entry FROM fhir_outbox WHERE ehr = $1 ORDER BY id",
            &[&self.ehr],
        )
        .map_err(db_err)?
        .into_iter()
        .map(|r| entry_of(r.get::<_, &str>(0), r.get(1)))
        .collect()
    }

    pub(crate) fn due(&self, now: u64) -> Result<Vec<OutboxEntry>, StoreError> {
        let mut c = self.pool.get().map_err(pool_err)?;
        c.query(
            "SELECT id, entry FROM fhir_outbox
             WHERE ehr = $1 AND state = 'PENDING' AND next_attempt_at <= $2
             ORDER BY next_attempt_at, id",
            &[&self.ehr, &(now.min(i64::MAX as u64) as i64)],
        )
        .map_err(db_err)?
        .into_iter()
        .map(|r| entry_of(r.get::<_, &str>(0), r.get(1)))
        .collect()
    }

    /// Claims up to `limit` due entries for `lease_ms` (see the module invariants). The
    /// entries come back as they were before the claim moved their next attempt.
    pub(crate) fn claim_due(
        &self,
        now: u64,
        lease_ms: u64,
        limit: usize,
    ) -> Result<Vec<OutboxEntry>, StoreError> {
        run_tx(&self.pool, IsolationLevel::ReadCommitted, |tx| {
            let rows = tx
                .query(
                    "SELECT id, entry FROM fhir_outbox
                     WHERE ehr = $1 AND state = 'PENDING' AND next_attempt_at <= $2
                     ORDER BY next_attempt_at, id LIMIT $3 FOR UPDATE SKIP LOCKED",
                    &[
                        &self.ehr,
                        &(now.min(i64::MAX as u64) as i64),
                        &(limit.min(i64::MAX as usize) as i64),
                    ],
                )
                .map_err(db_err)?;
            let mut out = Vec::with_capacity(rows.len());
            for r in rows {
                let id: String = r.get(0);
                let entry = entry_of(&id, r.get(1))?;
                let mut leased = entry.clone();
                leased.next_attempt_at = now.saturating_add(lease_ms);
                Self::put(tx, &self.ehr, &leased)?;
                out.push(entry);
            }
            Ok(out)
        })
    }

    pub(crate) fn next_due(&self) -> Result<Option<u64>, StoreError> {
        let mut c = self.pool.get().map_err(pool_err)?;
        let at: Option<i64> = c
            .query_one(
                "SELECT min(next_attempt_at) FROM fhir_outbox WHERE ehr = $1 AND state = 'PENDING'",
                &[&self.ehr],
            )
            .map_err(db_err)?
            .get(0);
        Ok(at.map(|t| t.max(0) as u64))
    }

    pub(crate) fn pending_count(&self) -> Result<usize, StoreError> {
        let mut c = self.pool.get().map_err(pool_err)?;
        let n: i64 = c
            .query_one(
                "SELECT count(*) FROM fhir_outbox WHERE ehr = $1 AND state = 'PENDING'",
                &[&self.ehr],
            )
            .map_err(db_err)?
            .get(0);
        Ok(n as usize)
    }
}

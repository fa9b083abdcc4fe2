//! Durable state in an embedded sled database: the FHIR outbox today; jobs, artifacts and the
//! audit trail as the service grows. Callers see typed records and [`StoreError`], never sled,
//! so a server-grade backend can replace it behind the same methods.
//!
//! Invariant: every state change is flushed before the call returns (accepted = durable).

pub mod outbox;

pub use outbox::{DeliveryState, Enqueued, Outbox, OutboxEntry};

use std::path::Path;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("store: {0}")]
    Sled(#[from] sled::Error),
    #[error("store: cannot encode a record: {0}")]
    Encode(serde_json::Error),
    #[error("store: record {key} is corrupt: {reason}")]
    Corrupt { key: String, reason: String },
    #[error("store: no record {0}")]
    NotFound(String),
}

/// Opens the database folder (created if missing).
pub fn open_db(dir: &Path) -> Result<sled::Db, StoreError> {
    Ok(sled::Config::new().path(dir).open()?)
}

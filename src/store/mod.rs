//! Durable state in an embedded sled database: the service's jobs, uploaded audio, outputs and
//! audit trail ([`jobs`]), the FHIR outbox ([`outbox`]) and the FHIR resources the read API and
//! exports serve ([`resources`]). Callers see typed records and [`StoreError`], never sled,
//! so a server-grade backend can replace it behind the same methods.
//!
//! Invariants: every state change is flushed before the call returns (accepted = durable); a
//! read-modify-write is one sled transaction, so concurrent callers never lose each other's
//! writes (see [`outbox`]). Calls block on disk I/O: async callers run them on a blocking pool.

pub mod jobs;
pub mod outbox;
pub mod pg;
pub mod resources;
pub mod reviews;
pub mod sessions;

pub use jobs::{
    AuditEvent, ChartTarget, JobRecord, JobStore, MediaRecord, MediaSource, Owner, SledJobStore,
};
pub use outbox::{DeliveryState, Enqueued, Outbox, OutboxEntry};
pub use resources::{JobContext, ResourceStore, StoredResource};

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
    /// A store call on the blocking pool was dropped before it ran (the runtime is stopping).
    #[error("store: interrupted")]
    Interrupted,
    /// A job of this name exists.
    #[error("a job named {0} already exists")]
    Exists(String),
    /// The store holds its configured maximum of jobs.
    #[error("the store holds its maximum of {limit} jobs; delete finished jobs first")]
    Full { limit: usize },
    /// A database server's error (PostgreSQL), without query parameters.
    #[error("store: {0}")]
    Backend(String),
}

/// sled's page cache when nothing else is configured. sled's own default (1 GiB) lets a
/// full scan (a Bulk Data export, a list of every job) grow the process by the size of what it
/// read; a bounded cache keeps memory flat whatever the store holds.
pub const DEFAULT_CACHE_BYTES: u64 = 128 << 20;

/// Opens the database folder (created if missing) with the default page cache.
pub fn open_db(dir: &Path) -> Result<sled::Db, StoreError> {
    open_db_with_cache(dir, DEFAULT_CACHE_BYTES)
}

/// Opens the database folder with a page cache of at most `cache_bytes`.
pub fn open_db_with_cache(dir: &Path, cache_bytes: u64) -> Result<sled::Db, StoreError> {
    Ok(sled::Config::new()
        .path(dir)
        .cache_capacity(cache_bytes)
        .open()?)
}

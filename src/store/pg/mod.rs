//! [`JobStore`] on PostgreSQL (issue 20, first part): jobs, uploaded audio, outputs and the
//! audit trail in one database that several `serve` processes can share. The driver is
//! `postgres` (tokio-postgres's blocking face: the `JobStore` trait is synchronous and runs on
//! blocking threads) with an `r2d2` pool.
//!
//! Invariants (the same as the sled store's, so one test suite runs on both):
//! - every operation is one transaction (`REPEATABLE READ` where it reads before it writes,
//!   retried on a serialization failure);
//! - a finished run writes its outputs only while the record is still its creation and run
//!   (`id`, `run`), so a deleted or re-run job is never revived;
//! - `max_jobs` counts live jobs under a row lock on the one counter row;
//! - the schema is versioned: [`migrate`] applies the numbered migrations it has not applied,
//!   in one transaction each, under an advisory lock (several processes may start at once).
//!   Compatibility rule: a migration only adds (tables, nullable columns, indexes); a release
//!   reads every schema version from its own back to the previous release's.

pub mod outbox;

use std::path::Path;

use postgres::{IsolationLevel, Transaction};
use r2d2_postgres::{r2d2, PostgresConnectionManager};
use tokio_postgres_rustls::MakeRustlsConnect;

use super::jobs::{AuditEvent, JobRecord, JobStore, MediaRecord};
use super::StoreError;
use crate::healthscribe::MedicalScribeJobStatus;

type Pool = r2d2::Pool<PostgresConnectionManager<MakeRustlsConnect>>;

/// The TLS connector: the URL's `sslmode` decides whether it is used (`prefer`, the default,
/// uses TLS when the server offers it; `require` refuses a server that does not). The server's
/// certificate must chain to `ca_file` (PEM) or, without one, to the system's trust store.
pub fn tls_connector(ca_file: Option<&Path>) -> Result<MakeRustlsConnect, StoreError> {
    let mut roots = rustls::RootCertStore::empty();
    match ca_file {
        Some(f) => {
            use rustls::pki_types::pem::PemObject;
            let certs = rustls::pki_types::CertificateDer::pem_file_iter(f)
                .and_then(|it| it.collect::<Result<Vec<_>, _>>())
                .map_err(|e| {
                    StoreError::Backend(format!("server.store_ca_file {}: {e}", f.display()))
                })?;
            if certs.is_empty() {
                return Err(StoreError::Backend(format!(
                    "server.store_ca_file {}: no certificate in it",
                    f.display()
                )));
            }
            for c in certs {
                roots.add(c).map_err(|e| {
                    StoreError::Backend(format!("server.store_ca_file {}: {e}", f.display()))
                })?;
            }
        }
        None => {
            // Unreadable system certificates leave the store empty: a TLS connection then
            // fails with a clear verification error instead of trusting anything.
            for c in rustls_native_certs::load_native_certs().certs {
                let _ = roots.add(c);
            }
        }
    }
    let provider = std::sync::Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| StoreError::Backend(format!("TLS: {e}")))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(MakeRustlsConnect::new(config))
}

/// Connects once to `url`, applies the missing migrations and answers (migrations run, schema
/// version): `fhirscribe store migrate`.
pub fn migrate_url(url: &str, ca_file: Option<&Path>) -> Result<(usize, i32), StoreError> {
    let mut c = postgres::Client::connect(url, tls_connector(ca_file)?).map_err(db_err)?;
    let ran = migrate(&mut c)?;
    let version: Option<i32> = c
        .query_one("SELECT max(version) FROM schema_migrations", &[])
        .map_err(db_err)?
        .get(0);
    Ok((ran, version.unwrap_or(0)))
}

/// The numbered migrations, oldest first. Never edit one that shipped: add another.
pub const MIGRATIONS: &[(i32, &str)] = &[
    (
        1,
    "CREATE TABLE jobs (
        name TEXT PRIMARY KEY,
        id TEXT NOT NULL UNIQUE,
        seq BIGINT NOT NULL,
        status TEXT NOT NULL,
        run INTEGER NOT NULL,
        record JSONB NOT NULL
     );
     CREATE INDEX jobs_seq ON jobs (seq);
     CREATE INDEX jobs_status ON jobs (status, seq);
     CREATE TABLE job_artifacts (
        job TEXT NOT NULL REFERENCES jobs (name) ON DELETE CASCADE,
        file TEXT NOT NULL,
        bytes BYTEA NOT NULL,
        PRIMARY KEY (job, file)
     );
     CREATE TABLE media (
        id TEXT PRIMARY KEY,
        record JSONB NOT NULL,
        bytes BYTEA NOT NULL
     );
     CREATE TABLE audit (
        seq BIGSERIAL PRIMARY KEY,
        at_ms BIGINT NOT NULL,
        event TEXT NOT NULL,
        job TEXT NOT NULL,
        detail TEXT
     );
     CREATE TABLE job_count (one BOOLEAN PRIMARY KEY DEFAULT TRUE CHECK (one), n BIGINT NOT NULL);
     INSERT INTO job_count (n) VALUES (0);
     CREATE SEQUENCE job_seq;
     CREATE TABLE ready_probe (one BOOLEAN PRIMARY KEY DEFAULT TRUE CHECK (one), at_ms BIGINT NOT NULL);",
    ),
    (
        2,
        // Claims by many workers: who runs a job and until when (a lease renewed by heartbeats;
        // an expired one may be claimed again).
        "ALTER TABLE jobs ADD COLUMN lease_owner TEXT;
         ALTER TABLE jobs ADD COLUMN lease_until TIMESTAMPTZ;
         CREATE INDEX jobs_claimable ON jobs (seq) WHERE status IN ('QUEUED', 'IN_PROGRESS');",
    ),
    (
        3,
        // The FHIR outboxes of every configured EHR: the entry (the record of truth) plus the
        // two columns the delivery claim selects on.
        "CREATE TABLE fhir_outbox (
            ehr TEXT NOT NULL,
            id TEXT NOT NULL,
            state TEXT NOT NULL,
            next_attempt_at BIGINT NOT NULL,
            entry JSONB NOT NULL,
            PRIMARY KEY (ehr, id)
         );
         CREATE INDEX fhir_outbox_due ON fhir_outbox (ehr, next_attempt_at) WHERE state = 'PENDING';
         CREATE SEQUENCE fhir_outbox_revision;",
    ),
    (
        4,
        // Audio in rows of at most MEDIA_CHUNK bytes: no single value of hundreds of MiB for
        // the server to build and the driver to copy. (Rows written by version 1 keep their
        // one `bytes` value and are still read.)
        "ALTER TABLE media ALTER COLUMN bytes DROP NOT NULL;
         CREATE TABLE media_chunks (
            id TEXT NOT NULL REFERENCES media (id) ON DELETE CASCADE,
            n INTEGER NOT NULL,
            bytes BYTEA NOT NULL,
            PRIMARY KEY (id, n)
         );",
    ),
];

/// Bytes per `media_chunks` row.
pub const MEDIA_CHUNK: usize = 1 << 20;

fn db_err(e: postgres::Error) -> StoreError {
    StoreError::Backend(format!("postgres: {e}"))
}

fn pool_err(e: r2d2::Error) -> StoreError {
    StoreError::Backend(format!("postgres pool: {e}"))
}

fn encode<T: serde::Serialize>(v: &T) -> Result<serde_json::Value, StoreError> {
    serde_json::to_value(v).map_err(StoreError::Encode)
}

fn decode<T: for<'de> serde::Deserialize<'de>>(
    key: &str,
    v: serde_json::Value,
) -> Result<T, StoreError> {
    serde_json::from_value(v).map_err(|e| StoreError::Corrupt {
        key: key.to_owned(),
        reason: e.to_string(),
    })
}

fn status_name(s: MedicalScribeJobStatus) -> &'static str {
    match s {
        MedicalScribeJobStatus::Queued => "QUEUED",
        MedicalScribeJobStatus::InProgress => "IN_PROGRESS",
        MedicalScribeJobStatus::Completed => "COMPLETED",
        MedicalScribeJobStatus::Failed => "FAILED",
    }
}

/// Applies the migrations this build has and the database has not; returns how many ran.
pub fn migrate(client: &mut postgres::Client) -> Result<usize, StoreError> {
    let mut tx = client.transaction().map_err(db_err)?;
    // One migrator at a time across processes; released at commit.
    tx.execute("SELECT pg_advisory_xact_lock(72240617)", &[])
        .map_err(db_err)?;
    tx.batch_execute(
        "CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, applied_at TIMESTAMPTZ NOT NULL DEFAULT now())",
    )
    .map_err(db_err)?;
    let done: Vec<i32> = tx
        .query("SELECT version FROM schema_migrations", &[])
        .map_err(db_err)?
        .iter()
        .map(|r| r.get(0))
        .collect();
    let newest = MIGRATIONS.last().map_or(0, |m| m.0);
    if let Some(v) = done.iter().find(|v| **v > newest) {
        return Err(StoreError::Backend(format!(
            "the database has schema version {v}, newer than this build knows ({newest}): run the newer release"
        )));
    }
    let mut ran = 0;
    for (version, sql) in MIGRATIONS {
        if done.contains(version) {
            continue;
        }
        tx.batch_execute(sql).map_err(db_err)?;
        tx.execute(
            "INSERT INTO schema_migrations (version) VALUES ($1)",
            &[version],
        )
        .map_err(db_err)?;
        ran += 1;
    }
    tx.commit().map_err(db_err)?;
    Ok(ran)
}

/// Runs `f` in a transaction at `level`, again on a serialization failure or deadlock
/// (at most 5 tries).
fn run_tx<T>(
    pool: &Pool,
    level: IsolationLevel,
    mut f: impl FnMut(&mut Transaction<'_>) -> Result<T, StoreError>,
) -> Result<T, StoreError> {
    let mut conn = pool.get().map_err(pool_err)?;
    let mut tries = 0;
    loop {
        tries += 1;
        let mut tx = conn
            .build_transaction()
            .isolation_level(level)
            .start()
            .map_err(db_err)?;
        let out = f(&mut tx);
        let out = match out {
            Ok(v) => tx.commit().map(|_| v).map_err(db_err),
            Err(e) => {
                let _ = tx.rollback();
                Err(e)
            }
        };
        match out {
            Err(StoreError::Backend(m))
                if tries < 5 && (m.contains("could not serialize") || m.contains("deadlock")) =>
            {
                continue
            }
            other => return other,
        }
    }
}

/// [`JobStore`] on PostgreSQL.
#[derive(Clone)]
pub struct PgJobStore {
    pool: Pool,
}

impl PgJobStore {
    /// Connects (`postgres://user@host:port/db`), runs the migrations, keeps a pool of
    /// `max_connections`.
    pub fn connect(url: &str, max_connections: u32) -> Result<Self, StoreError> {
        Self::connect_with(url, max_connections, None)
    }

    /// [`PgJobStore::connect`] with TLS roots from `ca_file` (see [`tls_connector`]).
    pub fn connect_with(
        url: &str,
        max_connections: u32,
        ca_file: Option<&Path>,
    ) -> Result<Self, StoreError> {
        // The parse error names what is wrong, never the URL (it may hold a password).
        let config: postgres::Config = url
            .parse()
            .map_err(|e: postgres::Error| StoreError::Backend(format!("store URL: {e}")))?;
        let manager = PostgresConnectionManager::new(config, tls_connector(ca_file)?);
        let pool = r2d2::Pool::builder()
            .max_size(max_connections.max(1))
            .connection_timeout(std::time::Duration::from_secs(10))
            .build(manager)
            .map_err(pool_err)?;
        let mut c = pool.get().map_err(pool_err)?;
        let ran = migrate(&mut c)?;
        if ran > 0 {
            tracing::info!(migrations = ran, "database schema migrated");
        }
        Ok(Self { pool })
    }

    /// The outbox of the EHR named `ehr` in this database (every process sees the same one).
    pub fn outbox(&self, ehr: &str) -> crate::store::Outbox {
        crate::store::Outbox::on_postgres(outbox::PgOutbox::new(self.pool.clone(), ehr))
    }

    fn tx<T>(
        &self,
        level: IsolationLevel,
        f: impl FnMut(&mut Transaction<'_>) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        run_tx(&self.pool, level, f)
    }

    fn audit_in(
        tx: &mut Transaction<'_>,
        event: &str,
        job: &str,
        detail: Option<String>,
    ) -> Result<(), StoreError> {
        tx.execute(
            "INSERT INTO audit (at_ms, event, job, detail) VALUES ($1, $2, $3, $4)",
            &[&(super::outbox::now_ms() as i64), &event, &job, &detail],
        )
        .map_err(db_err)?;
        Ok(())
    }

    /// Writes `job`'s record and the columns derived from it.
    fn store_record(
        tx: &mut Transaction<'_>,
        job: &JobRecord,
        record: &serde_json::Value,
    ) -> Result<(), StoreError> {
        tx.execute(
            "UPDATE jobs SET status = $2, run = $3, record = $4 WHERE name = $1",
            &[
                &job.name,
                &status_name(job.status),
                &(job.run as i32),
                record,
            ],
        )
        .map_err(db_err)?;
        Ok(())
    }

    /// Whether the stored record is `job`'s creation at run `run` (locks the row).
    fn is_current(tx: &mut Transaction<'_>, job: &JobRecord, run: u32) -> Result<bool, StoreError> {
        let row = tx
            .query_opt(
                "SELECT id, run FROM jobs WHERE name = $1 FOR UPDATE",
                &[&job.name],
            )
            .map_err(db_err)?;
        Ok(
            row.is_some_and(|r| {
                r.get::<_, String>(0) == job.id && r.get::<_, i32>(1) == run as i32
            }),
        )
    }
}

impl JobStore for PgJobStore {
    fn shared(&self) -> bool {
        true
    }

    /// Claims the oldest job that is queued, or running under a lease that expired (its
    /// worker died), for `worker` until `lease` from now: the record comes back IN_PROGRESS
    /// with its run counted up, so the earlier run's writes no longer apply. `FOR UPDATE SKIP
    /// LOCKED` lets any number of workers claim at once without waiting on each other, and
    /// no job goes to two of them.
    fn claim_next(
        &self,
        worker: &str,
        lease: std::time::Duration,
    ) -> Result<Option<JobRecord>, StoreError> {
        self.tx(IsolationLevel::ReadCommitted, |tx| {
            let Some(row) = tx
                .query_opt(
                    "SELECT name, record FROM jobs
                     WHERE status = 'QUEUED' OR (status = 'IN_PROGRESS' AND lease_until < now())
                     ORDER BY seq FOR UPDATE SKIP LOCKED LIMIT 1",
                    &[],
                )
                .map_err(db_err)?
            else {
                return Ok(None);
            };
            let name: String = row.get(0);
            let mut job: JobRecord = decode(&name, row.get(1))?;
            job.run += 1;
            job.status = MedicalScribeJobStatus::InProgress;
            job.start_time = Some(crate::healthscribe::DateTime::now());
            tx.execute(
                "UPDATE jobs SET status = $2, run = $3, record = $4, lease_owner = $5,
                        lease_until = now() + make_interval(secs => $6)
                 WHERE name = $1",
                &[
                    &job.name,
                    &status_name(job.status),
                    &(job.run as i32),
                    &encode(&job)?,
                    &worker,
                    &lease.as_secs_f64(),
                ],
            )
            .map_err(db_err)?;
            Self::audit_in(tx, "claimed", &job.name, Some(worker.to_owned()))?;
            Ok(Some(job))
        })
    }

    /// Extends `worker`'s lease on a job it runs; false when the lease is no longer its own
    /// (it expired and another worker claimed the job, or the job was deleted).
    fn heartbeat(
        &self,
        name: &str,
        worker: &str,
        lease: std::time::Duration,
    ) -> Result<bool, StoreError> {
        self.tx(IsolationLevel::ReadCommitted, |tx| {
            Ok(tx
                .execute(
                    "UPDATE jobs SET lease_until = now() + make_interval(secs => $3)
                     WHERE name = $1 AND lease_owner = $2 AND status = 'IN_PROGRESS'",
                    &[&name, &worker, &lease.as_secs_f64()],
                )
                .map_err(db_err)?
                == 1)
        })
    }

    fn changes_since(
        &self,
        after: u64,
        limit: usize,
    ) -> Result<Option<Vec<(u64, AuditEvent)>>, StoreError> {
        let mut c = self.pool.get().map_err(pool_err)?;
        let rows = c
            .query(
                "SELECT seq, at_ms, event, job, detail FROM audit
                 WHERE seq > $1 AND event IN ('completed', 'deleted') ORDER BY seq LIMIT $2",
                &[&(after as i64), &(limit as i64)],
            )
            .map_err(db_err)?;
        Ok(Some(
            rows.into_iter()
                .map(|r| {
                    (
                        r.get::<_, i64>(0) as u64,
                        AuditEvent {
                            at_ms: r.get::<_, i64>(1) as u64,
                            event: r.get(2),
                            job: r.get(3),
                            detail: r.get(4),
                        },
                    )
                })
                .collect(),
        ))
    }

    fn queued_count(&self) -> Result<Option<usize>, StoreError> {
        let mut c = self.pool.get().map_err(pool_err)?;
        let n: i64 = c
            .query_one("SELECT count(*) FROM jobs WHERE status = 'QUEUED'", &[])
            .map_err(db_err)?
            .get(0);
        Ok(Some(n as usize))
    }

    fn put_media(&self, media: &MediaRecord, bytes: &[u8]) -> Result<(), StoreError> {
        let record = encode(media)?;
        self.tx(IsolationLevel::ReadCommitted, |tx| {
            tx.execute(
                "INSERT INTO media (id, record, bytes) VALUES ($1, $2, NULL)
                 ON CONFLICT (id) DO UPDATE SET record = EXCLUDED.record, bytes = NULL",
                &[&media.id, &record],
            )
            .map_err(db_err)?;
            tx.execute("DELETE FROM media_chunks WHERE id = $1", &[&media.id])
                .map_err(db_err)?;
            let insert = tx
                .prepare("INSERT INTO media_chunks (id, n, bytes) VALUES ($1, $2, $3)")
                .map_err(db_err)?;
            for (n, chunk) in bytes.chunks(MEDIA_CHUNK).enumerate() {
                tx.execute(&insert, &[&media.id, &(n as i32), &chunk])
                    .map_err(db_err)?;
            }
            Ok(())
        })
    }

    fn media_record(&self, id: &str) -> Result<Option<MediaRecord>, StoreError> {
        let mut c = self.pool.get().map_err(pool_err)?;
        c.query_opt("SELECT record FROM media WHERE id = $1", &[&id])
            .map_err(db_err)?
            .map(|r| decode(id, r.get(0)))
            .transpose()
    }

    fn media_bytes(&self, id: &str) -> Result<Option<Vec<u8>>, StoreError> {
        self.tx(IsolationLevel::RepeatableRead, |tx| {
            let Some(row) = tx
                .query_opt("SELECT bytes FROM media WHERE id = $1", &[&id])
                .map_err(db_err)?
            else {
                return Ok(None);
            };
            if let Some(whole) = row.get::<_, Option<Vec<u8>>>(0) {
                return Ok(Some(whole));
            }
            // One chunk at a time from a portal, appended to one buffer.
            let mut out = Vec::new();
            let portal = tx
                .bind(
                    "SELECT bytes FROM media_chunks WHERE id = $1 ORDER BY n",
                    &[&id],
                )
                .map_err(db_err)?;
            loop {
                let rows = tx.query_portal(&portal, 4).map_err(db_err)?;
                if rows.is_empty() {
                    break;
                }
                for r in rows {
                    out.extend_from_slice(r.get::<_, &[u8]>(0));
                }
            }
            Ok(Some(out))
        })
    }

    fn delete_media(&self, id: &str) -> Result<bool, StoreError> {
        self.tx(IsolationLevel::ReadCommitted, |tx| {
            Ok(tx
                .execute("DELETE FROM media WHERE id = $1", &[&id])
                .map_err(db_err)?
                > 0)
        })
    }

    fn create_job(&self, job: &JobRecord, max_jobs: usize) -> Result<(), StoreError> {
        let record = encode(job)?;
        self.tx(IsolationLevel::ReadCommitted, |tx| {
            let n: i64 = tx
                .query_one("SELECT n FROM job_count FOR UPDATE", &[])
                .map_err(db_err)?
                .get(0);
            if tx
                .query_opt("SELECT 1 FROM jobs WHERE name = $1", &[&job.name])
                .map_err(db_err)?
                .is_some()
            {
                return Err(StoreError::Exists(job.name.clone()));
            }
            if n as usize >= max_jobs {
                return Err(StoreError::Full { limit: max_jobs });
            }
            tx.execute(
                "INSERT INTO jobs (name, id, seq, status, run, record) VALUES ($1, $2, $3, $4, $5, $6)",
                &[
                    &job.name,
                    &job.id,
                    &(job.seq as i64),
                    &status_name(job.status),
                    &(job.run as i32),
                    &record,
                ],
            )
            .map_err(db_err)?;
            tx.execute("UPDATE job_count SET n = n + 1", &[])
                .map_err(db_err)?;
            Self::audit_in(tx, "created", &job.name, None)
        })
    }

    fn job(&self, name: &str) -> Result<Option<JobRecord>, StoreError> {
        let mut c = self.pool.get().map_err(pool_err)?;
        c.query_opt("SELECT record FROM jobs WHERE name = $1", &[&name])
            .map_err(db_err)?
            .map(|r| decode(name, r.get(0)))
            .transpose()
    }

    fn update_job(
        &self,
        job: &JobRecord,
        expected_run: u32,
        event: &str,
    ) -> Result<bool, StoreError> {
        let record = encode(job)?;
        self.tx(IsolationLevel::ReadCommitted, |tx| {
            if !Self::is_current(tx, job, expected_run)? {
                return Ok(false);
            }
            Self::store_record(tx, job, &record)?;
            Self::audit_in(tx, event, &job.name, None)?;
            Ok(true)
        })
    }

    fn finish_job(
        &self,
        job: &JobRecord,
        files: &[(&str, &[u8])],
        drop_media: Option<&str>,
    ) -> Result<bool, StoreError> {
        let record = encode(job)?;
        let event = super::jobs::finish_event(job);
        let names: Vec<&str> = files.iter().map(|(n, _)| *n).collect();
        self.tx(IsolationLevel::ReadCommitted, |tx| {
            if !Self::is_current(tx, job, job.run)? {
                return Ok(false);
            }
            for (file, bytes) in files {
                tx.execute(
                    "INSERT INTO job_artifacts (job, file, bytes) VALUES ($1, $2, $3)
                     ON CONFLICT (job, file) DO UPDATE SET bytes = EXCLUDED.bytes",
                    &[&job.name, file, bytes],
                )
                .map_err(db_err)?;
            }
            if let Some(id) = drop_media {
                tx.execute("DELETE FROM media WHERE id = $1", &[&id])
                    .map_err(db_err)?;
            }
            Self::store_record(tx, job, &record)?;
            Self::audit_in(tx, event, &job.name, Some(names.join(",")))?;
            Ok(true)
        })
    }

    fn artifact(&self, name: &str, file: &str) -> Result<Option<Vec<u8>>, StoreError> {
        let mut c = self.pool.get().map_err(pool_err)?;
        Ok(c.query_opt(
            "SELECT bytes FROM job_artifacts WHERE job = $1 AND file = $2",
            &[&name, &file],
        )
        .map_err(db_err)?
        .map(|r| r.get(0)))
    }

    fn delete_job(&self, name: &str) -> Result<Option<JobRecord>, StoreError> {
        self.tx(IsolationLevel::ReadCommitted, |tx| {
            let Some(row) = tx
                .query_opt(
                    "DELETE FROM jobs WHERE name = $1 RETURNING record",
                    &[&name],
                )
                .map_err(db_err)?
            else {
                return Ok(None);
            };
            // Outputs go with the row (ON DELETE CASCADE).
            tx.execute("UPDATE job_count SET n = GREATEST(n - 1, 0)", &[])
                .map_err(db_err)?;
            Self::audit_in(tx, "deleted", name, None)?;
            decode(name, row.get(0)).map(Some)
        })
    }

    fn jobs(&self) -> Result<Vec<JobRecord>, StoreError> {
        let mut c = self.pool.get().map_err(pool_err)?;
        c.query("SELECT name, record FROM jobs ORDER BY seq", &[])
            .map_err(db_err)?
            .into_iter()
            .map(|r| decode(r.get::<_, &str>(0), r.get(1)))
            .collect()
    }

    fn job_count(&self) -> Result<usize, StoreError> {
        let mut c = self.pool.get().map_err(pool_err)?;
        let n: i64 = c
            .query_one("SELECT n FROM job_count", &[])
            .map_err(db_err)?
            .get(0);
        Ok(n as usize)
    }

    fn audit(&self) -> Result<Vec<AuditEvent>, StoreError> {
        let mut c = self.pool.get().map_err(pool_err)?;
        Ok(c.query(
            "SELECT at_ms, event, job, detail FROM audit ORDER BY seq",
            &[],
        )
        .map_err(db_err)?
        .into_iter()
        .map(|r| AuditEvent {
            at_ms: r.get::<_, i64>(0) as u64,
            event: r.get(1),
            job: r.get(2),
            detail: r.get(3),
        })
        .collect())
    }

    fn check_writable(&self) -> Result<(), StoreError> {
        self.tx(IsolationLevel::ReadCommitted, |tx| {
            tx.execute(
                "INSERT INTO ready_probe (at_ms) VALUES ($1)
                 ON CONFLICT (one) DO UPDATE SET at_ms = EXCLUDED.at_ms",
                &[&(super::outbox::now_ms() as i64)],
            )
            .map_err(db_err)?;
            Ok(())
        })
    }

    fn next_seq(&self) -> Result<u64, StoreError> {
        let mut c = self.pool.get().map_err(pool_err)?;
        let n: i64 = c
            .query_one("SELECT nextval('job_seq')", &[])
            .map_err(db_err)?
            .get(0);
        Ok(n as u64)
    }
}

//! One suite, two backends (issue 20): the job store's behaviour (unique names, the job limit
//! under concurrent creates, a finished run that never revives a deleted job, media round
//! trips, the audit trail) on sled and on a real PostgreSQL started by the test.

mod common;

use fhirscribe::store::jobs::{conformance, SledJobStore};
use fhirscribe::store::pg::PgJobStore;

#[test]
fn sled_passes_the_job_store_suite() {
    let dir = tempfile::tempdir().unwrap();
    let db = fhirscribe::store::open_db(dir.path()).unwrap();
    conformance::run_all(&SledJobStore::in_db(&db).unwrap());
}

#[test]
fn postgres_passes_the_job_store_suite_and_migrates_once() {
    let pg = common::postgres::Postgres::start();
    let url = pg.database("suite");
    let store = PgJobStore::connect(&url, 8).unwrap();
    conformance::run_all(&store);
    // A second process connecting to the same database finds the schema current.
    let mut c = postgres::Client::connect(&url, postgres::NoTls).unwrap();
    assert_eq!(fhirscribe::store::pg::migrate(&mut c).unwrap(), 0);
    let versions: Vec<i32> = c
        .query(
            "SELECT version FROM schema_migrations ORDER BY version",
            &[],
        )
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert_eq!(versions.len(), fhirscribe::store::pg::MIGRATIONS.len());
    // A database migrated by a newer release is refused with a clear message.
    c.execute("INSERT INTO schema_migrations (version) VALUES (9999)", &[])
        .unwrap();
    let newer = PgJobStore::connect(&url, 1).err().expect("refused");
    assert!(
        newer.to_string().contains("newer than this build"),
        "{newer}"
    );
}

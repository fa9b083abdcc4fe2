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

/// Many workers, one queue: concurrent claimers share 20 queued jobs with no job claimed
/// twice; a worker that stops heartbeating loses its job to another after the lease, and its
/// late writes no longer apply.
#[test]
fn postgres_claims_each_job_once_and_reclaims_an_expired_lease() {
    use fhirscribe::healthscribe::MedicalScribeJobStatus;
    use fhirscribe::store::jobs::JobStore;
    use std::time::Duration;

    let pg = common::postgres::Postgres::start();
    let store = PgJobStore::connect(&pg.database("claims"), 16).unwrap();
    for i in 0..20 {
        store
            .create_job(&conformance::record(&store, &format!("job-{i:02}")), 100)
            .unwrap();
    }
    let lease = Duration::from_secs(60);
    let claimed = std::sync::Mutex::new(Vec::new());
    std::thread::scope(|s| {
        for w in 0..4 {
            let (store, claimed) = (&store, &claimed);
            s.spawn(move || {
                let worker = format!("worker-{w}");
                while let Some(job) = store.claim_next(&worker, lease).unwrap() {
                    assert_eq!(job.status, MedicalScribeJobStatus::InProgress);
                    assert_eq!(job.run, 1);
                    claimed.lock().unwrap().push(job.name);
                }
            });
        }
    });
    let mut claimed = claimed.into_inner().unwrap();
    claimed.sort();
    let want: Vec<String> = (0..20).map(|i| format!("job-{i:02}")).collect();
    assert_eq!(claimed, want, "every job claimed exactly once");
    assert!(store.claim_next("worker-9", lease).unwrap().is_none());

    // A lease that expires: another worker takes the job over, and the first one's
    // heartbeat and late finish are refused.
    let late = conformance::record(&store, "late");
    store.create_job(&late, 100).unwrap();
    let short = Duration::from_millis(300);
    let mut first = store.claim_next("a", short).unwrap().unwrap();
    assert_eq!(first.name, "late");
    assert!(store.heartbeat("late", "a", short).unwrap());
    assert!(
        !store.heartbeat("late", "b", short).unwrap(),
        "not b's lease"
    );
    std::thread::sleep(Duration::from_millis(500));
    let mut second = store.claim_next("b", lease).unwrap().expect("re-claimed");
    assert_eq!(second.name, "late");
    assert_eq!(second.run, first.run + 1);
    assert!(
        !store.heartbeat("late", "a", short).unwrap(),
        "a lost its lease"
    );
    first.status = MedicalScribeJobStatus::Completed;
    assert!(!store.finish_job(&first, &[("t.json", b"a")], None).unwrap());
    second.status = MedicalScribeJobStatus::Completed;
    assert!(store
        .finish_job(&second, &[("t.json", b"b")], None)
        .unwrap());
    assert_eq!(store.artifact("late", "t.json").unwrap().unwrap(), b"b");
    assert!(
        store.claim_next("c", lease).unwrap().is_none(),
        "a finished job is not claimable"
    );
}

/// The outbox's suite on PostgreSQL (sled runs it in the unit tests), then many senders on one
/// outbox: concurrent claims share the due Bundles with none sent by two, and a claim whose
/// sender died runs out and the Bundle is due again.
#[test]
fn postgres_outbox_passes_the_suite_and_claims_each_bundle_once() {
    use fhirscribe::store::outbox::{conformance as outbox_suite, now_ms};

    let pg = common::postgres::Postgres::start();
    let store = PgJobStore::connect(&pg.database("outbox"), 16).unwrap();
    outbox_suite::run_all(&store.outbox("ehr-a"));
    // Outboxes of different EHRs do not see each other's entries.
    assert!(store.outbox("ehr-b").list().unwrap().is_empty());

    let o = store.outbox("ehr-b");
    for i in 0..30 {
        o.enqueue(
            &format!("job-{i:02}"),
            serde_json::json!({"resourceType": "Bundle", "type": "transaction", "n": i}),
        )
        .unwrap();
    }
    let sent = std::sync::Mutex::new(Vec::new());
    std::thread::scope(|s| {
        for _ in 0..4 {
            let (o, sent) = (o.clone(), &sent);
            s.spawn(move || loop {
                let batch = o.claim_due(now_ms(), 60_000, 3).unwrap();
                if batch.is_empty() {
                    return;
                }
                for e in batch {
                    o.mark_delivered(&e.id, e.revision, 200, vec![]).unwrap();
                    sent.lock().unwrap().push(e.id);
                }
            });
        }
    });
    let mut sent = sent.into_inner().unwrap();
    sent.sort();
    let want: Vec<String> = (0..30).map(|i| format!("job-{i:02}")).collect();
    assert_eq!(sent, want, "every Bundle sent exactly once");

    o.enqueue("crashed", serde_json::json!({"n": "x"})).unwrap();
    let claimed = o.claim_due(now_ms(), 300, 10).unwrap();
    assert_eq!(claimed.len(), 1);
    assert!(
        o.claim_due(now_ms(), 300, 10).unwrap().is_empty(),
        "claimed: nobody else sends it"
    );
    std::thread::sleep(std::time::Duration::from_millis(400));
    let again = o.claim_due(now_ms(), 300, 10).unwrap();
    assert_eq!(again.len(), 1, "the lease ran out: due again");
    assert_eq!(again[0].revision, claimed[0].revision);
}

/// TLS to the database: with `sslmode=require` and the CA that signed the server's
/// certificate the store connects over TLS; without that CA (the system's roots) it refuses
/// the server; `require` against a server without TLS is refused too.
#[test]
fn postgres_over_tls_verifies_the_server_certificate() {
    use fhirscribe::store::pg::tls_connector;

    let pg = common::postgres::Postgres::start_with_tls();
    let url = format!("{}?sslmode=require", pg.database("tls"));
    let ca = pg.ca_file();
    let store = PgJobStore::connect_with(&url, 2, Some(&ca)).expect("TLS with the test CA");
    conformance::media_round_trips_and_deletes(&store);
    let mut c = postgres::Client::connect(&url, tls_connector(Some(&ca)).unwrap()).unwrap();
    let ssl: bool = c
        .query_one(
            "SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()",
            &[],
        )
        .unwrap()
        .get(0);
    assert!(ssl, "the connection is encrypted");
    let untrusted = PgJobStore::connect_with(&url, 1, None)
        .err()
        .expect("a certificate no trusted CA signed is refused");
    assert!(untrusted.to_string().contains("postgres"), "{untrusted}");
    assert!(
        !untrusted.to_string().contains("sslmode"),
        "no URL in the message"
    );

    let plain = common::postgres::Postgres::start();
    let url = format!("{}?sslmode=require", plain.database("plain"));
    assert!(PgJobStore::connect_with(&url, 1, Some(&ca)).is_err());
}

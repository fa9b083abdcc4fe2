//! Crash safety of `fhirscribe serve`: 20 jobs submitted, the server SIGKILLed three times at
//! random moments and restarted on the same store → every job COMPLETED, each one's outputs
//! written once (the store's audit trail), each Bundle delivered once (HFS search counts).

mod common;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use common::peers::{fhir, Hfs, HfsOptions};
use common::serve::{clip, spawn_app, AppOptions};
use fhirscribe::store::JobStore;
use serde_json::json;

const JOBS: usize = 20;

/// A small xorshift generator: the kill moments vary per run and the seed is printed, so a
/// failure can be replayed with CRASH_SEED.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn millis(&mut self, lo: u64, hi: u64) -> Duration {
        Duration::from_millis(lo + self.next() % (hi - lo))
    }
}

#[test]
fn sigkill_three_times_loses_no_job_and_delivers_each_bundle_once() {
    let seed = std::env::var("CRASH_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_nanos() as u64
                | 1
        });
    eprintln!("crash test seed: CRASH_SEED={seed}");
    let mut rng = Rng(seed);
    let hfs = Hfs::start(HfsOptions::default());
    let mut app = spawn_app(AppOptions {
        ehrs: vec![("main".into(), hfs.base_url())],
        ..Default::default()
    });
    let audio = clip(&common::repo_path("samples/encounter.flac"), 12.0);
    let name = |i: usize| format!("crash-{i:02}");
    for i in 0..JOBS {
        app.start_job(
            None,
            &name(i),
            &audio,
            json!({"Fhir": {"Ehr": "main", "Patient": format!("Patient/pc{i}"), "Encounter": format!("Encounter/ec{i}")}}),
        );
    }
    // Three SIGKILLs at random moments while the jobs run (and their Bundles go out).
    let mut completed_at_kill = Vec::new();
    for _ in 0..3 {
        std::thread::sleep(rng.millis(500, 6000));
        app.kill();
        let done = app.logs().matches("job finished").count();
        completed_at_kill.push(done);
        app.start();
    }
    eprintln!("jobs finished (log lines) at each kill: {completed_at_kill:?}");

    let deadline = Instant::now() + Duration::from_secs(900);
    app.wait_all_completed(&(0..JOBS).map(name).collect::<Vec<_>>(), deadline);
    // Every Bundle delivered; its DocumentReferences counted.
    let mut bundles = BTreeMap::new();
    for i in 0..JOBS {
        app.wait_delivered(None, &name(i), deadline);
        bundles.insert(i, app.bundle_doc_refs(None, &name(i)));
    }
    for (i, refs) in &bundles {
        let (s, body) = fhir(
            "GET",
            &hfs.url(&format!("DocumentReference?encounter=Encounter/ec{i}")),
            None,
            None,
        );
        assert_eq!(s, 200);
        let found = body["entry"].as_array().map_or(0, Vec::len);
        assert_eq!(
            found, *refs,
            "job {i}: {found} DocumentReferences in HFS, Bundle has {refs}"
        );
    }
    // The audit trail: each job's outputs were written in exactly one completing transaction.
    app.terminate();
    let db = fhirscribe::store::open_db(&app.store_dir()).unwrap();
    let store = fhirscribe::store::SledJobStore::in_db(&db).unwrap();
    let audit = store.audit().unwrap();
    for i in 0..JOBS {
        let n = audit
            .iter()
            .filter(|e| e.job == name(i) && e.event == "completed")
            .count();
        assert_eq!(n, 1, "{}: outputs written {n} times", name(i));
    }
    let reruns = audit.iter().filter(|e| e.event == "requeued").count();
    eprintln!("jobs re-run after a kill: {reruns}");
}

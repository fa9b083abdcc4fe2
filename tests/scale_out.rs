//! Many processes, one queue (issue 20): three `fhirscribe serve` processes share one
//! PostgreSQL store: node 0 a `worker` (no API), nodes 1 and 2 `all`. 30 jobs go in through
//! nodes 1 and 2; node 0 is SIGKILLed while it runs a job, node 1 SIGTERMed while it runs one
//! (it drains: finishes what it runs, claims nothing more). Node 2 finishes the rest: every job
//! COMPLETED, its outputs written in exactly one completing transaction (the audit trail), each
//! Bundle's resources in the FHIR server exactly once.

mod common;

use std::time::{Duration, Instant};

use common::peers::{fhir, Hfs, HfsOptions};
use common::postgres::Postgres;
use common::serve::{clip, spawn_app, App, AppOptions};
use fhirscribe::store::JobStore;
use serde_json::json;

const JOBS: usize = 30;

fn node(url: &str, hfs: &Hfs, k: usize, mode: &str) -> App {
    spawn_app(AppOptions {
        server_toml: format!(
            "store_url = \"{url}\"\nnode_name = \"node-{k}\"\nmode = \"{mode}\"\njob_lease_secs = 3\nqueue_capacity = 100\n"
        ),
        extra_toml: format!(
            "\n[fhir_api]\n\n[[ehr]]\nname = \"main\"\nfhir_base = \"{}\"\ntimeout_secs = 5\n",
            hfs.base_url()
        ),
        ..Default::default()
    })
}

/// (jobs this node finished, jobs it runs now), from its log.
fn progress(app: &App) -> (usize, usize) {
    let logs = app.logs();
    let finished = logs.matches("job finished").count();
    (
        finished,
        logs.matches("job claimed").count().saturating_sub(finished),
    )
}

/// Waits until the node has finished a couple of jobs (the work is spread) and runs one.
fn wait_mid_job(app: &App, deadline: Instant) {
    loop {
        let (finished, running) = progress(app);
        if finished >= 2 && running > 0 {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "node never got mid-job: {finished} finished, {running} running"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn three_nodes_one_killed_one_drained_complete_every_job_once() {
    let pg = Postgres::start();
    let url = pg.database("scale");
    let hfs = Hfs::start(HfsOptions::default());
    let mut nodes: Vec<App> = [(0, "worker"), (1, "all"), (2, "all")]
        .into_iter()
        .map(|(k, mode)| node(&url, &hfs, k, mode))
        .collect();
    // A worker serves probes and metrics, no job API.
    assert_eq!(nodes[0].call("GET", "/readyz", None, None).status, 200);
    assert_eq!(
        nodes[0]
            .call("GET", "/v1/medical-scribe-jobs/x", None, None)
            .status,
        404
    );
    let metrics = common::serve::request("GET", &nodes[0].url("/metrics"), None, None);
    assert_eq!(metrics.status, 200);
    assert!(
        metrics.text.contains("fhirscribe_queue_depth 0"),
        "{}",
        metrics.text
    );
    let audio = clip(&common::repo_path("samples/encounter.flac"), 4.0);
    let name = |i: usize| format!("scale-{i:02}");
    for i in 0..JOBS {
        nodes[1 + i % 2].start_job(
            None,
            &name(i),
            &audio,
            json!({"Fhir": {"Ehr": "main", "Patient": format!("Patient/ps{i}"), "Encounter": format!("Encounter/es{i}")}}),
        );
    }
    // SIGKILL node 0 in the middle of a job; SIGTERM node 1 while it runs one.
    let deadline = Instant::now() + Duration::from_secs(600);
    wait_mid_job(&nodes[0], deadline);
    nodes[0].kill();
    wait_mid_job(&nodes[1], deadline);
    let drained = nodes[1].terminate();
    eprintln!("node 1 drained in {drained:?}");

    let last = &nodes[2];
    let deadline = Instant::now() + Duration::from_secs(900);
    last.wait_all_completed(&(0..JOBS).map(name).collect::<Vec<_>>(), deadline);
    let mut refs = Vec::new();
    for i in 0..JOBS {
        last.wait_delivered(None, &name(i), deadline);
        refs.push(last.bundle_doc_refs(None, &name(i)));
    }
    for (i, want) in refs.iter().enumerate() {
        let (s, body) = fhir(
            "GET",
            &hfs.url(&format!("DocumentReference?encounter=Encounter/es{i}")),
            None,
            None,
        );
        assert_eq!(s, 200);
        let found = body["entry"].as_array().map_or(0, Vec::len);
        assert_eq!(found, *want, "job {i}: {found} DocumentReferences in HFS");
        // Node 2's FHIR read API serves every node's jobs (it follows the shared store).
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let r = last.call(
                "GET",
                &format!("/fhir/r4/DocumentReference?encounter=Encounter/es{i}"),
                None,
                None,
            );
            let served = r.body["entry"].as_array().map_or(0, Vec::len);
            if served == *want {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "job {i}: node 2 serves {served} DocumentReferences: {}",
                r.text
            );
            std::thread::sleep(Duration::from_millis(200));
        }
    }
    let store = fhirscribe::store::pg::PgJobStore::connect(&url, 2).unwrap();
    let audit = store.audit().unwrap();
    let mut by_node = std::collections::BTreeMap::new();
    for i in 0..JOBS {
        let n = audit
            .iter()
            .filter(|e| e.job == name(i) && e.event == "completed")
            .count();
        assert_eq!(n, 1, "{}: outputs written {n} times", name(i));
    }
    for e in audit.iter().filter(|e| e.event == "claimed") {
        let node = e
            .detail
            .as_deref()
            .unwrap_or("")
            .split('/')
            .next()
            .unwrap_or("");
        *by_node.entry(node.to_owned()).or_insert(0) += 1;
    }
    let claims: usize = by_node.values().sum();
    eprintln!("claims by node: {by_node:?} ({claims} for {JOBS} jobs)");
    assert!(
        claims > JOBS,
        "the killed node's job was claimed again: {by_node:?}"
    );
    assert!(by_node.len() == 3, "every node ran jobs: {by_node:?}");
}

//! FHIR write-back against real peers on loopback: Helios FHIR Server (validation enforced,
//! SMART auth on) and the SMART authorization server, with the product's own Backend Services
//! client, outbox and delivery worker. Every generated resource also passes @medplum/core.

mod common;

use std::time::{Duration, Instant};

use common::peers::{fhir, medplum_validate, Authz, Hfs, HfsOptions, Peers};
use fhirscribe::delivery::{self, RetryPolicy};
use fhirscribe::fhir::client::{Attempt, FhirClient};
use fhirscribe::fhir::{self, EncounterContext, Mapping, ScribeDevice, Validator};
use fhirscribe::healthscribe::NoteTemplate;
use fhirscribe::lab::fhir_bench::{reference_outputs, OutputBytes};
use fhirscribe::note::Templates;
use fhirscribe::smart::{BackendClient, BackendConfig, SigningAlg};
use fhirscribe::store::{DeliveryState, Enqueued, Outbox};
use serde_json::{json, Value};

const ADMIN: &str = "system/*.cruds";

fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

fn sample() -> OutputBytes {
    let templates = Templates::builtin().unwrap();
    let text = std::fs::read_to_string(common::repo_path("samples/encounter.ref.tsv")).unwrap();
    let out = reference_outputs(
        &text,
        "sample",
        NoteTemplate::HistoryAndPhysical,
        &templates,
    )
    .unwrap();
    OutputBytes::new(out, NoteTemplate::HistoryAndPhysical, &templates)
}

fn bundle(bytes: &OutputBytes, job: &str, patient: &str, encounter: &str) -> fhir::MappedBundle {
    let device = ScribeDevice {
        version: "0.1.0".into(),
        models: vec![("asr".into(), "ggml-base.bin".into())],
    };
    fhir::prepare(
        &Mapping::bundled().unwrap(),
        &Validator::bundled().unwrap(),
        &EncounterContext::new(patient, encounter).unwrap(),
        &device,
        &bytes.outputs(job, "2026-11-27T12:00:00.000Z"),
    )
    .unwrap()
}

/// The EHR's own Patient and Encounter (the scribe never creates them).
fn seed_patient(peers_base: &str, token: &str, patient: &str, encounter: &str) {
    let (s, body) = fhir(
        "PUT",
        &format!("{peers_base}/Patient/{patient}"),
        Some(token),
        Some(&json!({"resourceType": "Patient", "id": patient, "name": [{"family": "Test"}]})),
    );
    assert!(s == 200 || s == 201, "{s} {body}");
    let (s, body) = fhir(
        "PUT",
        &format!("{peers_base}/Encounter/{encounter}"),
        Some(token),
        Some(
            &json!({"resourceType": "Encounter", "id": encounter, "status": "finished",
            "class": {"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "AMB"},
            "subject": {"reference": format!("Patient/{patient}")}}),
        ),
    );
    assert!(s == 200 || s == 201, "{s} {body}");
}

fn backend(authz: &Authz, scope: &str) -> BackendConfig {
    BackendConfig {
        client_id: Authz::BACKEND_CLIENT_ID.into(),
        key_id: authz.kid().into(),
        alg: SigningAlg::Rs384,
        private_key_pem: std::fs::read(authz.client_private_key_path()).unwrap(),
        scope: scope.into(),
        // Discovered from the FHIR server's .well-known/smart-configuration.
        token_endpoint: None,
    }
}

fn client(peers: &Peers, scope: &str) -> FhirClient {
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()
        .unwrap();
    let base = peers.hfs.base_url();
    let auth = BackendClient::new(backend(&peers.authz, scope), &base, http.clone()).unwrap();
    FhirClient::new(&base, http, Some(auth))
}

/// Every resource of a search, following `next` links.
fn search_all(url: &str, token: &str) -> Vec<Value> {
    let mut out = Vec::new();
    let mut next = Some(url.to_string());
    while let Some(u) = next.take() {
        let (s, b) = fhir("GET", &u, Some(token), None);
        assert_eq!(s, 200, "GET {u}: {b}");
        for e in b["entry"].as_array().into_iter().flatten() {
            out.push(e["resource"].clone());
        }
        next = b["link"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|l| l["relation"] == "next")
            .and_then(|l| l["url"].as_str())
            .map(str::to_string);
    }
    out
}

fn count(peers: &Peers, token: &str, query: &str) -> usize {
    search_all(&peers.hfs.url(query), token).len()
}

#[test]
fn sample_bundle_is_accepted_found_by_search_and_never_duplicated() {
    let peers = Peers::start();
    let admin = peers.authz.backend_token(ADMIN);
    seed_patient(&peers.hfs.base_url(), &admin, "p1", "e1");
    let bytes = sample();
    let mapped = bundle(&bytes, "sample-1", "p1", "e1");
    let report = &mapped.report;
    assert!(report.conditions >= 1 && report.medication_statements >= 1);

    // Independent validator: every resource is valid R4.
    let issues = medplum_validate(&mapped.bundle);
    assert!(issues.is_empty(), "medplum: {issues:?}");

    // Deliver through the durable outbox with the product's SMART client.
    let dir = tempfile::tempdir().unwrap();
    let outbox = Outbox::open(dir.path()).unwrap();
    assert_eq!(
        outbox.enqueue("sample-1", mapped.bundle.clone()).unwrap(),
        Enqueued::New
    );
    let c = client(&peers, fhirscribe_default_scope());
    let r = rt()
        .block_on(delivery::drain(&outbox, &c, &RetryPolicy::default(), None))
        .unwrap();
    assert_eq!(
        (r.delivered, r.dead),
        (1, 0),
        "{:?}",
        outbox.get("sample-1")
    );
    let entry = outbox.get("sample-1").unwrap().unwrap();
    assert_eq!(entry.state, DeliveryState::Delivered);
    assert_eq!(
        entry.locations.len(),
        mapped.bundle["entry"].as_array().unwrap().len()
    );

    let expect = |peers: &Peers| {
        assert_eq!(
            count(peers, &admin, "Condition?encounter=Encounter/e1"),
            report.conditions
        );
        assert_eq!(
            count(peers, &admin, "DocumentReference?encounter=Encounter/e1"),
            2
        );
        assert_eq!(
            count(peers, &admin, "MedicationStatement?context=Encounter/e1"),
            report.medication_statements
        );
        assert_eq!(count(peers, &admin, "Provenance"), report.provenances);
        assert_eq!(count(peers, &admin, "Device"), 1);
        // Each Condition has exactly one Provenance, with its evidence.
        for c in search_all(&peers.hfs.url("Condition?encounter=Encounter/e1"), &admin) {
            let id = c["id"].as_str().unwrap();
            let provs = search_all(
                &peers.hfs.url(&format!("Provenance?target=Condition/{id}")),
                &admin,
            );
            assert_eq!(provs.len(), 1, "Condition/{id}");
            assert!(provs[0]["entity"][0]["extension"]
                .as_array()
                .is_some_and(|e| !e.is_empty()));
            assert!(provs[0]["agent"][0]["who"]["reference"]
                .as_str()
                .unwrap()
                .starts_with("Device/"));
        }
    };
    expect(&peers);

    // Three replays straight to the server: every entry matches, nothing new.
    for _ in 0..3 {
        match rt().block_on(c.post_transaction(&mapped.bundle)) {
            Attempt::Delivered { .. } => {}
            other => panic!("replay: {other:?}"),
        }
    }
    expect(&peers);
    // And the outbox will not send a delivered job again.
    assert_eq!(
        outbox.enqueue("sample-1", mapped.bundle.clone()).unwrap(),
        Enqueued::AlreadyDelivered
    );
}

/// Create + search on the types we write: what `fhir deliver` asks for by default.
fn fhirscribe_default_scope() -> &'static str {
    "system/DocumentReference.c system/DocumentReference.s system/Condition.c system/Condition.s \
     system/MedicationStatement.c system/MedicationStatement.s system/Provenance.c \
     system/Provenance.s system/Device.c system/Device.s"
}

#[test]
fn fhir_server_killed_mid_delivery_for_30s_then_all_50_bundles_arrive_exactly_once() {
    let mut peers = Peers::start();
    let admin = peers.authz.backend_token(ADMIN);
    seed_patient(&peers.hfs.base_url(), &admin, "p2", "e2");
    let bytes = sample();
    let bundles: Vec<(String, fhir::MappedBundle)> = (0..50)
        .map(|i| {
            let job = format!("fault-{i:02}");
            let b = bundle(&bytes, &job, "p2", "e2");
            (job, b)
        })
        .collect();
    let per_job = bundles[0].1.report.conditions;

    let dir = tempfile::tempdir().unwrap();
    {
        // Accept everything, then "crash": close the store before anything is sent.
        let outbox = Outbox::open(dir.path()).unwrap();
        for (job, b) in &bundles {
            outbox.enqueue(job, b.bundle.clone()).unwrap();
        }
    }
    let outbox = Outbox::open(dir.path()).unwrap();
    assert_eq!(
        outbox.pending_count().unwrap(),
        50,
        "nothing lost across the restart"
    );

    let policy = RetryPolicy {
        base: Duration::from_millis(500),
        max: Duration::from_secs(4),
        max_attempts: 1000,
        ..Default::default()
    };
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let worker = {
        let outbox = outbox.clone();
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(30))
            .build()
            .unwrap();
        let base = peers.hfs.base_url();
        let auth = BackendClient::new(
            backend(&peers.authz, fhirscribe_default_scope()),
            &base,
            http.clone(),
        )
        .unwrap();
        let c = FhirClient::new(&base, http, Some(auth));
        std::thread::spawn(move || rt().block_on(delivery::run(outbox, c, policy, stop_rx)))
    };
    // Kill the FHIR server mid-delivery (SIGKILL: a transaction may be cut off in flight).
    let delivered = || {
        outbox
            .list()
            .unwrap()
            .iter()
            .filter(|e| e.state == DeliveryState::Delivered)
            .count()
    };
    let t0 = Instant::now();
    while delivered() < 3 && t0.elapsed() < Duration::from_secs(120) {
        std::thread::sleep(Duration::from_millis(20));
    }
    peers.hfs.stop();
    let before_outage = delivered();
    assert!(
        (3..50).contains(&before_outage),
        "{before_outage} delivered before the outage"
    );
    std::thread::sleep(Duration::from_secs(30));
    let during = outbox.list().unwrap();
    let waiting: Vec<_> = during
        .iter()
        .filter(|e| e.state != DeliveryState::Delivered)
        .collect();
    assert!(!waiting.is_empty());
    assert!(waiting.iter().all(|e| e.state == DeliveryState::Pending));
    assert!(
        waiting.iter().any(|e| e.attempts >= 2),
        "the worker kept trying during the outage"
    );

    peers.hfs.restart();
    let back = Instant::now();
    while outbox.pending_count().unwrap() > 0 && back.elapsed() < Duration::from_secs(180) {
        std::thread::sleep(Duration::from_millis(200));
    }
    let drained = back.elapsed();
    stop_tx.send(true).unwrap();
    worker.join().unwrap();

    let all = outbox.list().unwrap();
    assert!(
        all.iter().all(|e| e.state == DeliveryState::Delivered),
        "{:?}",
        all.iter()
            .filter(|e| e.state != DeliveryState::Delivered)
            .map(|e| (&e.id, e.state, &e.last_error))
            .collect::<Vec<_>>()
    );
    // Exactly once, counted on the server.
    let notes = count(
        &peers,
        &admin,
        "DocumentReference?encounter=Encounter/e2&type=http://loinc.org|34117-2",
    );
    assert_eq!(notes, 50);
    assert_eq!(
        count(&peers, &admin, "Condition?encounter=Encounter/e2"),
        50 * per_job
    );
    eprintln!(
        "{before_outage} bundles delivered before the outage, the other {} {:.1} s after the FHIR server came back",
        50 - before_outage,
        drained.as_secs_f64()
    );
}

#[test]
fn auth_failures_end_as_clear_dead_letters() {
    let peers = Peers::start();
    let admin = peers.authz.backend_token(ADMIN);
    seed_patient(&peers.hfs.base_url(), &admin, "p3", "e3");
    let mapped = bundle(&sample(), "auth-1", "p3", "e3");
    let rt = rt();

    // Wrong key: the authorization server refuses the client assertion.
    let other = tempfile::tempdir().unwrap();
    let key = other.path().join("other.pem");
    let ok = std::process::Command::new("openssl")
        .args([
            "genpkey",
            "-algorithm",
            "RSA",
            "-pkeyopt",
            "rsa_keygen_bits:2048",
            "-out",
        ])
        .arg(&key)
        .output()
        .unwrap();
    assert!(ok.status.success());
    let http = reqwest::Client::new();
    let base = peers.hfs.base_url();
    let mut cfg = backend(&peers.authz, fhirscribe_default_scope());
    cfg.private_key_pem = std::fs::read(&key).unwrap();
    let c = FhirClient::new(
        &base,
        http.clone(),
        Some(BackendClient::new(cfg, &base, http.clone()).unwrap()),
    );
    match rt.block_on(c.post_transaction(&mapped.bundle)) {
        Attempt::Dead { reason, .. } => {
            assert!(reason.contains("rejected the token request"), "{reason}");
            assert!(reason.contains("invalid_client"), "{reason}");
        }
        other => panic!("wrong key: {other:?}"),
    }

    // Missing scope: a read-only token may not write.
    let c = client(&peers, "system/Condition.rs system/DocumentReference.rs");
    match rt.block_on(c.post_transaction(&mapped.bundle)) {
        Attempt::Dead { status, reason, .. } => {
            assert_eq!(status, Some(403), "{reason}");
            assert!(reason.contains("lacks the scope"), "{reason}");
        }
        other => panic!("read-only scope: {other:?}"),
    }

    // No token at all.
    let c = FhirClient::new(&base, http.clone(), None);
    match rt.block_on(c.post_transaction(&mapped.bundle)) {
        Attempt::Dead { status, .. } => assert_eq!(status, Some(401)),
        other => panic!("no token: {other:?}"),
    }
    assert_eq!(count(&peers, &admin, "Condition?encounter=Encounter/e3"), 0);
}

#[test]
fn an_expired_token_is_renewed_once_then_reported() {
    // Tokens that say they live 300 s but whose exp is already past (minus HFS's leeway): the
    // FHIR server answers 401, the client gets a new token once, and gives up clearly.
    let port = common::peers::free_port();
    let aud = format!("http://127.0.0.1:{port}");
    let authz = Authz::start_with(&aud, Duration::from_secs(300), Duration::from_secs(400));
    let hfs = Hfs::start(HfsOptions::with_auth(&authz));
    let http = reqwest::Client::new();
    let auth = BackendClient::new(
        backend(&authz, fhirscribe_default_scope()),
        &hfs.base_url(),
        http.clone(),
    )
    .unwrap();
    let c = FhirClient::new(&hfs.base_url(), http, Some(auth));
    let mapped = bundle(&sample(), "auth-2", "p4", "e4");
    match rt().block_on(c.post_transaction(&mapped.bundle)) {
        Attempt::Dead { status, reason, .. } => {
            assert_eq!(status, Some(401));
            assert!(reason.contains("rejected our access token"), "{reason}");
        }
        other => panic!("expired token: {other:?}"),
    }
}

#[test]
fn a_bundle_the_server_refuses_is_a_dead_letter_with_its_outcome_and_creates_nothing() {
    let peers = Peers::start();
    let admin = peers.authz.backend_token(ADMIN);
    seed_patient(&peers.hfs.base_url(), &admin, "p5", "e5");
    let mut b = bundle(&sample(), "refused-1", "p5", "e5").bundle;
    // Break one Condition the way a buggy mapping might (an unknown status code).
    let cond = b["entry"]
        .as_array_mut()
        .unwrap()
        .iter_mut()
        .find(|e| e["resource"]["resourceType"] == "Condition")
        .unwrap();
    cond["resource"]["clinicalStatus"]["coding"][0]["code"] = "sorta-active".into();
    // Our own validator would have stopped it before the outbox; the server must too.
    let ours = Validator::bundled().unwrap().validate_bundle(&b);
    assert!(
        ours.iter().any(|i| i.expression.contains("clinicalStatus")),
        "{ours:?}"
    );

    let dir = tempfile::tempdir().unwrap();
    let outbox = Outbox::open(dir.path()).unwrap();
    outbox.enqueue("refused-1", b).unwrap();
    let r = rt()
        .block_on(delivery::drain(
            &outbox,
            &client(&peers, fhirscribe_default_scope()),
            &RetryPolicy::default(),
            None,
        ))
        .unwrap();
    assert_eq!((r.delivered, r.dead), (0, 1));
    let e = outbox.get("refused-1").unwrap().unwrap();
    assert_eq!(e.state, DeliveryState::DeadLetter);
    assert!(
        e.last_status.is_some_and(|s| (400..500).contains(&s)),
        "{e:?}"
    );
    assert_eq!(e.attempts, 1, "a 4xx is not retried");
    // The transaction is atomic: nothing of it exists.
    assert_eq!(
        count(&peers, &admin, "DocumentReference?encounter=Encounter/e5"),
        0
    );
}

#[test]
fn transcribe_the_sample_audio_to_a_bundle_and_deliver_it_with_the_cli() {
    let peers = Peers::start();
    let admin = peers.authz.backend_token(ADMIN);
    seed_patient(&peers.hfs.base_url(), &admin, "p6", "e6");
    let out = tempfile::tempdir().unwrap();
    let model = common::tiny_model();
    let run = std::process::Command::new(common::bin())
        .arg("transcribe")
        .arg(common::repo_path("samples/encounter.flac"))
        .args(["--channel-identification", "--clinician-channel", "0"])
        .arg("--model")
        .arg(&model)
        .args(["--job-name", "cli-sample-1", "--threads", "2"])
        .args([
            "--fhir-bundle",
            "--patient",
            "p6",
            "--encounter",
            "Encounter/e6",
        ])
        .arg("--out")
        .arg(out.path())
        .output()
        .unwrap();
    assert!(
        run.status.success(),
        "{}",
        String::from_utf8_lossy(&run.stderr)
    );
    let path = out.path().join("fhir-bundle.json");
    let b: Value = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
    assert!(medplum_validate(&b).is_empty());
    let n_conditions = b["entry"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["resource"]["resourceType"] == "Condition")
        .count();

    // Deliver with the CLI: credentials from the environment, as an operator would set them.
    let store = tempfile::tempdir().unwrap();
    let deliver = || {
        std::process::Command::new(common::bin())
            .args(["fhir", "deliver"])
            .arg(&path)
            .arg("--store")
            .arg(store.path())
            .args(["--fhir-base", &peers.hfs.base_url()])
            .env("FHIRSCRIBE_SMART_CLIENT_ID", Authz::BACKEND_CLIENT_ID)
            .env(
                "FHIRSCRIBE_SMART_PRIVATE_KEY",
                peers.authz.client_private_key_path(),
            )
            .env("FHIRSCRIBE_SMART_KEY_ID", peers.authz.kid())
            .output()
            .unwrap()
    };
    let first = deliver();
    let stderr = String::from_utf8_lossy(&first.stderr);
    assert!(first.status.success(), "{stderr}");
    assert!(stderr.contains("delivered 1"), "{stderr}");
    // The private key never reaches the output.
    let pem = peers.authz.client_private_key_pem();
    let key_line = pem.lines().nth(1).unwrap();
    assert!(!stderr.contains(key_line));
    let again = deliver();
    assert!(String::from_utf8_lossy(&again.stderr).contains("already delivered"));

    // A fresh token: transcription on a loaded machine can outlast the first one.
    let admin = peers.authz.backend_token(ADMIN);
    assert_eq!(
        count(&peers, &admin, "Condition?encounter=Encounter/e6"),
        n_conditions
    );
    let notes = search_all(
        &peers
            .hfs
            .url("DocumentReference?encounter=Encounter/e6&type=http://loinc.org|34117-2"),
        &admin,
    );
    assert_eq!(notes.len(), 1);
    assert_eq!(notes[0]["subject"]["reference"], "Patient/p6");
}

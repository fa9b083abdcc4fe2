//! The review app end to end in a real browser (issue 18): Debian's headless Chromium, driven
//! by playwright-core (`scripts/peers/ui-e2e.mjs`), against the real `fhirscribe serve`, the
//! real SMART authorization server doing an EHR launch with `launch` context, and HFS as the
//! EHR: launch → the banner shows the seeded patient → upload the sample encounter → review →
//! a note sentence highlights its evidence and the audio seeks to it → edit it → remove a
//! condition → sign → the EHR holds the final note with the edit, the condition
//! entered-in-error, a verifier Provenance per kept resource, nothing twice. axe-core checks
//! every page (no serious or critical violation). Screenshots go to `FHIRSCRIBE_SCREENSHOTS`
//! when set (`scripts/screenshots.sh` writes docs/screenshots/).

mod common;

use std::process::Command;

use common::peers::{free_port, peer_script, peers_npm, Authz, Hfs, HfsOptions};
use common::serve::{spawn_app, AppOptions};
use serde_json::{json, Value};

#[test]
fn a_clinician_launches_reviews_edits_and_signs_in_a_real_browser() {
    let port = free_port();
    let app_url = format!("http://127.0.0.1:{port}");
    let hfs_port = free_port();
    let hfs_base = format!("http://127.0.0.1:{hfs_port}");
    let authz = Authz::start_for_app(&hfs_base, &format!("{app_url}/callback"));
    let hfs = Hfs::start(HfsOptions::with_auth(&authz));
    assert_eq!(hfs.base_url(), hfs_base);
    let admin = authz.backend_token("system/*.cruds");
    common::review::seed(
        &hfs_base,
        &admin,
        &[
            json!({"resourceType": "Patient", "id": "pe2e",
            "name": [{"given": ["Grace"], "family": "Hopper"}], "birthDate": "1956-12-09"}),
            json!({"resourceType": "Encounter", "id": "ee2e", "status": "in-progress",
            "class": {"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "AMB"},
            "type": [{"text": "Knee pain visit"}],
            "subject": {"reference": "Patient/pe2e"}, "period": {"start": "2026-12-06T10:00:00Z"}}),
        ],
    );
    let _app = spawn_app(AppOptions {
        issuers: vec![authz.issuer().to_string()],
        port: Some(port),
        extra_toml: common::review::app_toml(&hfs_base),
        ..Default::default()
    });
    let shots = std::env::var("FHIRSCRIBE_SCREENSHOTS")
        .ok()
        .filter(|s| !s.is_empty());
    let edit_text = "Right knee pain for two weeks, worse on stairs (edited).";
    let run = Command::new("node")
        .arg(peer_script("ui-e2e.mjs"))
        .env("FHIRSCRIBE_PEERS_NPM", peers_npm())
        .env(
            "LAUNCH_URL",
            format!("{app_url}/launch?iss={hfs_base}&launch=pe2e:ee2e"),
        )
        .env("AUDIO", common::repo_path("samples/encounter.flac"))
        .env("EDIT_TEXT", edit_text)
        .env("SHOTS_DIR", shots.clone().unwrap_or_default())
        .output()
        .expect("node runs scripts/peers/ui-e2e.mjs");
    let stdout = String::from_utf8_lossy(&run.stdout);
    assert!(
        run.status.success(),
        "ui-e2e.mjs: {stdout}\n{}",
        String::from_utf8_lossy(&run.stderr)
    );
    let seen: Value = serde_json::from_str(stdout.lines().last().unwrap_or_default())
        .unwrap_or_else(|e| panic!("{e}: {stdout}"));
    assert!(seen["error"].is_null(), "the browser run failed: {seen:#}");

    // The launch and the banner.
    assert_eq!(seen["encounterUrl"], format!("{app_url}/app"));
    let banner = seen["banner"].as_str().unwrap();
    assert!(
        banner.contains("Grace Hopper")
            && banner.contains("1956-12-09")
            && banner.contains("Knee pain visit"),
        "{banner}"
    );
    // The evidence of the clicked sentence is what lights up, and the audio is at its start.
    let evidence: Vec<&str> = seen["evidence"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    let mut lit: Vec<&str> = seen["highlighted"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    lit.sort();
    let mut want = evidence.clone();
    want.sort();
    assert!(!want.is_empty());
    assert_eq!(lit, want, "{seen:#}");
    assert_eq!(seen["highlightedInView"], true);
    let start = seen["evidenceBegins"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(Value::as_f64)
        .fold(f64::INFINITY, f64::min);
    let at = seen["audioTime"].as_f64().unwrap();
    assert!(
        at >= start - 0.05 && at < start + 2.0,
        "the audio seeks to the evidence start {start} (at {at})"
    );
    // The edit, saved at once.
    assert_eq!(seen["editedText"], edit_text);
    assert_eq!(seen["editSurvivedReload"], true);
    // Accessibility: no serious or critical axe-core violation on any page.
    for page in ["axeEncounter", "axeReview", "axeSigned"] {
        assert_eq!(seen[page], json!([]), "{page}: {:#}", seen[page]);
    }
    assert_eq!(
        seen["csp"],
        json!([]),
        "no Content-Security-Policy violation"
    );
    assert!(seen["marks"].as_u64().unwrap() >= 10, "{seen:#}");
    assert_eq!(
        seen["marksCutMidWord"],
        json!([]),
        "highlights cover whole words"
    );
    // Signed: the page lists what was written; the EHR holds it, once.
    assert!(seen["written"].as_array().unwrap().len() >= 3, "{seen:#}");
    let signer = "Practitioner/alice";
    assert!(
        seen["signedText"].as_str().unwrap().contains(signer),
        "{seen:#}"
    );
    common::review::check_signed_chart(
        &hfs_base,
        &admin,
        "ee2e",
        seen["removedKey"].as_str().unwrap(),
        signer,
        &[edit_text],
    );
    // The browser recorder: 2 s from Chromium's fake microphone, uploaded as a 16 kHz WAV and
    // accepted as a job.
    assert!(seen["recLevel"].as_f64().unwrap_or(0.0) > 0.0, "{seen:#}");
    assert!(
        seen["recTime"].as_str().unwrap().starts_with("00:0"),
        "{seen:#}"
    );
    let rec = &seen["recUpload"];
    assert_eq!(rec["status"], 200, "{seen:#}");
    assert_eq!(rec["riff"], "RIFF/WAVE", "{seen:#}");
    assert_eq!(rec["sampleRate"], 16000, "{seen:#}");
    assert_eq!(
        (&rec["channels"], &rec["bits"]),
        (&json!(1), &json!(16)),
        "{seen:#}"
    );
    // About 2 s of 16-bit mono at 16 kHz (the page's own timing; generous bounds).
    let bytes = rec["bytes"].as_u64().unwrap();
    assert!((40_000..=200_000).contains(&bytes), "{seen:#}");
    if let Some(dir) = shots {
        for f in [
            "encounter.png",
            "review.png",
            "review-tablet.png",
            "signed.png",
        ] {
            let p = std::path::Path::new(&dir).join(f);
            assert!(
                p.metadata().map(|m| m.len() > 10_000).unwrap_or(false),
                "{p:?}"
            );
        }
    }
}

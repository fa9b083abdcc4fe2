//! The FHIR read API and Bulk Data export of `fhirscribe serve`, driven by clients nobody here
//! wrote: fhir-kit-client (npm, pinned) reads the CapabilityStatement and searches
//! `Condition?encounter=` with `_revinclude=Provenance:target`; the Bulk Data round trip
//! (kick-off, poll, manifest, NDJSON) is checked line by line with the independent validator
//! (@medplum/core). Real binary, real authorization server (oidc-provider), whisper tiny.en on
//! two-channel clips of the bundled sample encounter.

mod common;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use common::peers::{fhir_kit_client, medplum_validate, Authz};
use common::serve::{clip, request, request_with, spawn_app, AppOptions, Response};
use serde_json::{json, Value};

const JOBS: &str = "system/scribe.cruds";

fn two_channel_job(name: &str, media: &str, patient: &str, encounter: &str) -> Value {
    json!({
        "MedicalScribeJobName": name,
        "Media": {"MediaFileUri": media},
        "OutputBucketName": "fhirscribe-outputs",
        "Settings": {"ChannelIdentification": true},
        "ChannelDefinitions": [
            {"ChannelId": 0, "ParticipantRole": "CLINICIAN"},
            {"ChannelId": 1, "ParticipantRole": "PATIENT"}
        ],
        "Extensions": {"Fhir": {"Ehr": "main", "Patient": format!("Patient/{patient}"),
                                "Encounter": format!("Encounter/{encounter}")}}
    })
}

fn count_of(bundle: &Value, ty: &str) -> usize {
    bundle["entry"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["resource"]["resourceType"] == ty)
        .count()
}

fn outcome_says(r: &Response, status: u16, needle: &str) {
    assert_eq!(r.status, status, "{}", r.text);
    assert_eq!(r.body["resourceType"], "OperationOutcome", "{}", r.text);
    let d = r.body["issue"][0]["diagnostics"]
        .as_str()
        .unwrap_or_default();
    assert!(d.contains(needle), "{d:?} lacks {needle:?}");
}

/// Kicks off an export, polls it to the manifest, downloads every file; returns
/// (manifest, every exported resource).
fn export(base: &str, path: &str, token: &str) -> (Value, Vec<Value>) {
    let kick = request_with(
        "GET",
        &format!("{base}{path}"),
        Some(token),
        None,
        &[
            ("Prefer", "respond-async"),
            ("Accept", "application/fhir+json"),
        ],
    );
    assert_eq!(kick.status, 202, "{}", kick.text);
    let status_url = kick
        .header("content-location")
        .expect("Content-Location")
        .to_owned();
    let deadline = Instant::now() + Duration::from_secs(60);
    let manifest = loop {
        let r = request("GET", &status_url, Some(token), None);
        match r.status {
            200 => break r.body,
            202 => {
                assert!(r.header("x-progress").is_some(), "202 without X-Progress");
                assert!(Instant::now() < deadline, "export still running");
                std::thread::sleep(Duration::from_millis(100));
            }
            s => panic!("status {s}: {}", r.text),
        }
    };
    assert_eq!(manifest["requiresAccessToken"], true);
    assert!(
        manifest["request"].as_str().unwrap().ends_with(path),
        "{manifest}"
    );
    let mut resources = Vec::new();
    for o in manifest["output"].as_array().unwrap() {
        let f = request("GET", o["url"].as_str().unwrap(), Some(token), None);
        assert_eq!(f.status, 200, "{}", f.text);
        assert_eq!(f.header("content-type"), Some("application/fhir+ndjson"));
        let lines: Vec<&str> = f.text.lines().collect();
        assert_eq!(lines.len() as u64, o["count"].as_u64().unwrap());
        for line in lines {
            let r: Value = serde_json::from_str(line).expect("every NDJSON line parses");
            assert_eq!(r["resourceType"], o["type"]);
            resources.push(r);
        }
        // Without a token the files are not served.
        assert_eq!(
            request("GET", o["url"].as_str().unwrap(), None, None).status,
            401
        );
    }
    // DELETE cancels / removes; the status is gone after.
    let d = request("DELETE", &status_url, Some(token), None);
    assert_eq!(d.status, 202, "{}", d.text);
    assert_eq!(request("GET", &status_url, Some(token), None).status, 404);
    (manifest, resources)
}

#[test]
fn exchanges_read_search_and_bulk_export_what_jobs_produced() {
    let port = common::peers::free_port();
    let service_url = format!("http://127.0.0.1:{port}");
    let authz = Authz::start(&service_url);
    let mut app = spawn_app(AppOptions {
        issuers: vec![authz.issuer().to_string()],
        // Nothing listens there: delivery retries in the background, the read API does not care.
        ehrs: vec![("main".into(), "http://127.0.0.1:9/fhir".into())],
        port: Some(port),
        extra_toml: "[fhir_api]\n[[fhir_api.groups]]\nid = \"cohort-b\"\npatients = [\"pb\"]\n"
            .into(),
        ..Default::default()
    });
    let jobs = authz.backend_token(JOBS);
    let base = format!("{service_url}/fhir/r4");

    // Two encounters of two patients.
    let sample = common::repo_path("samples/encounter.flac");
    for (name, secs, patient, encounter) in [
        ("visit-a", 150.0, "pa", "ea"),
        ("visit-b", 25.0, "pb", "eb"),
    ] {
        let up = app.upload(Some(&jobs), &clip(&sample, secs));
        assert_eq!(up.status, 201, "{}", up.body);
        let media = up.body["MediaFileUri"].as_str().unwrap();
        let r = app.call(
            "POST",
            "/v1/medical-scribe-jobs",
            Some(&jobs),
            Some(&two_channel_job(name, media, patient, encounter)),
        );
        assert_eq!(r.status, 200, "{}", r.body);
    }
    let mut bundles = BTreeMap::new();
    for name in ["visit-a", "visit-b"] {
        let done = app.wait_job(Some(&jobs), name, Duration::from_secs(600));
        assert_eq!(
            done["MedicalScribeJob"]["MedicalScribeJobStatus"], "COMPLETED",
            "{done}"
        );
        let b = app.call(
            "GET",
            &format!("/v1/medical-scribe-jobs/{name}/fhir-bundle.json"),
            Some(&jobs),
            None,
        );
        assert_eq!(b.status, 200);
        bundles.insert(name, b.body);
    }
    let conditions_a = count_of(&bundles["visit-a"], "Condition");
    let conditions_b = count_of(&bundles["visit-b"], "Condition");
    assert!(
        conditions_a >= 2,
        "the whole sample names several assessed problems (paging needs two)"
    );

    // metadata and smart-configuration are open; everything else needs a token.
    let cs = request("GET", &format!("{base}/metadata"), None, None);
    assert_eq!(cs.status, 200, "{}", cs.text);
    assert_eq!(cs.body["resourceType"], "CapabilityStatement");
    assert!(
        medplum_validate(&cs.body).is_empty(),
        "the CapabilityStatement is valid R4"
    );
    let sc = request(
        "GET",
        &format!("{base}/.well-known/smart-configuration"),
        None,
        None,
    );
    assert_eq!(
        sc.body["token_endpoint"],
        authz.token_endpoint(),
        "{}",
        sc.text
    );
    let r = request("GET", &format!("{base}/Condition"), None, None);
    outcome_says(&r, 401, "token");
    assert!(r.www_authenticate.is_some());

    // fhir-kit-client, as an exchange would use it, with a backend-services token.
    let reader = authz.backend_token("system/*.rs");
    let (ok, report) = fhir_kit_client(&base, &reader, "ea");
    eprintln!("fhir-kit-client: {report}");
    assert!(ok, "{report}");
    assert_eq!(report["fhirVersion"], "4.0.1");
    assert_eq!(report["tokenUrl"], authz.token_endpoint());
    assert!(report["conditionSearchParams"]
        .as_array()
        .unwrap()
        .contains(&json!("encounter")));
    assert_eq!(report["conditionRevIncludes"], json!(["Provenance:target"]));
    assert_eq!(report["conditions"], conditions_a, "{report}");
    assert_eq!(
        report["pages"].as_array().unwrap().len(),
        conditions_a,
        "one per page: {report}"
    );
    assert!(report["provenances"].as_u64().unwrap() >= 1, "{report}");
    assert_eq!(report["everyProvenanceTargetsAMatch"], true);
    assert_eq!(report["encounters"], json!(["Encounter/ea"]));
    assert_eq!(report["readBack"], true);
    // The codes served are the codes of the Bundle that was (or would be) delivered.
    let mut bundle_codes: Vec<String> = bundles["visit-a"]["entry"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["resource"]["resourceType"] == "Condition")
        .map(|e| {
            e["resource"]["code"]["coding"][0]["code"]
                .as_str()
                .unwrap()
                .to_owned()
        })
        .collect();
    let mut served: Vec<String> = report["conditionCodes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c.as_str().unwrap().to_owned())
        .collect();
    bundle_codes.sort();
    served.sort();
    assert_eq!(served, bundle_codes);

    // Search details: strict parameters, OperationOutcome errors, token filters, paging.
    let r = request(
        "GET",
        &format!("{base}/Condition?category=x"),
        Some(&reader),
        None,
    );
    outcome_says(&r, 400, "\"category\"");
    let r = request_with(
        "GET",
        &format!("{base}/Condition?category=x"),
        Some(&reader),
        None,
        &[("Prefer", "handling=lenient")],
    );
    assert_eq!(r.status, 200, "{}", r.text);
    let code = &served[0];
    let r = request(
        "GET",
        &format!("{base}/Condition?code={code}&patient=Patient/pa"),
        Some(&reader),
        None,
    );
    assert!(r.body["total"].as_u64().unwrap() >= 1, "{}", r.text);
    let r = request(
        "GET",
        &format!("{base}/DocumentReference?encounter=ea&_lastUpdated=ge2020-01-01"),
        Some(&reader),
        None,
    );
    assert_eq!(
        r.body["total"],
        count_of(&bundles["visit-a"], "DocumentReference"),
        "{}",
        r.text
    );
    let r = request("GET", &format!("{base}/Device"), Some(&reader), None);
    assert_eq!(
        r.body["total"], 1,
        "one scribe Device, shared by every job: {}",
        r.text
    );

    // A patient-context token sees its patient only.
    let patient_a = authz.patient_token("patient/*.rs", "pa");
    let r = request("GET", &format!("{base}/Condition"), Some(&patient_a), None);
    assert_eq!(r.body["total"], conditions_a, "{}", r.text);
    let r = request(
        "GET",
        &format!("{base}/Condition?patient=pb"),
        Some(&patient_a),
        None,
    );
    outcome_says(&r, 403, "Patient/pb");
    let all_b = request(
        "GET",
        &format!("{base}/DocumentReference?patient=pb"),
        Some(&reader),
        None,
    );
    let doc_b = all_b.body["entry"][0]["resource"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let r = request(
        "GET",
        &format!("{base}/DocumentReference/{doc_b}"),
        Some(&patient_a),
        None,
    );
    outcome_says(&r, 404, &doc_b);
    assert_eq!(
        request(
            "GET",
            &format!("{base}/DocumentReference/{doc_b}"),
            Some(&reader),
            None
        )
        .status,
        200
    );
    // A job-API token is not a FHIR read token.
    let r = request("GET", &format!("{base}/Condition"), Some(&jobs), None);
    outcome_says(&r, 403, "Condition");

    // Bulk Data: system, Group and Patient level.
    let exporter = authz.backend_token("system/*.rs");
    let (manifest, all) = export(&base, "/$export", &exporter);
    eprintln!("manifest: {manifest}");
    let issues = medplum_validate(&json!({"resourceType": "Bundle", "type": "collection",
        "entry": all.iter().map(|r| json!({"fullUrl": format!("{base}/{}/{}", r["resourceType"].as_str().unwrap(), r["id"].as_str().unwrap()), "resource": r})).collect::<Vec<_>>()}));
    assert!(issues.is_empty(), "{issues:?}");
    let served_total: usize = [
        "DocumentReference",
        "Condition",
        "MedicationStatement",
        "Provenance",
        "Device",
    ]
    .iter()
    .map(|t| {
        request("GET", &format!("{base}/{t}?_count=0"), Some(&reader), None).body["total"]
            .as_u64()
            .unwrap() as usize
    })
    .sum();
    assert_eq!(
        all.len(),
        served_total,
        "the export holds exactly what the API serves"
    );
    let (_, group) = export(&base, "/Group/cohort-b/$export?_type=Condition", &exporter);
    assert_eq!(group.len(), conditions_b);
    assert!(group
        .iter()
        .all(|r| r["subject"]["reference"] == "Patient/pb"));
    let (_, patients) = export(
        &base,
        "/Patient/$export?_type=Condition,MedicationStatement",
        &exporter,
    );
    assert_eq!(
        patients.len(),
        conditions_a
            + conditions_b
            + count_of(&bundles["visit-a"], "MedicationStatement")
            + count_of(&bundles["visit-b"], "MedicationStatement")
    );
    // Refusals: no Prefer header, unknown group, unsupported parameter, a user or patient token.
    let r = request("GET", &format!("{base}/$export"), Some(&exporter), None);
    outcome_says(&r, 400, "Prefer: respond-async");
    let async_ = [("Prefer", "respond-async")];
    let r = request_with(
        "GET",
        &format!("{base}/Group/nobody/$export"),
        Some(&exporter),
        None,
        &async_,
    );
    outcome_says(&r, 404, "Group/nobody");
    let r = request_with(
        "GET",
        &format!("{base}/$export?_typeFilter=Condition%3Fcode%3Dx"),
        Some(&exporter),
        None,
        &async_,
    );
    outcome_says(&r, 400, "_typeFilter");
    let user = authz.backend_token("user/*.rs");
    let r = request_with(
        "GET",
        &format!("{base}/$export"),
        Some(&user),
        None,
        &async_,
    );
    outcome_says(&r, 403, "backend-services token");
    let r = request_with(
        "GET",
        &format!("{base}/Patient/$export"),
        Some(&patient_a),
        None,
        &async_,
    );
    outcome_says(&r, 403, "backend-services token");

    // Deleting a job removes what it produced from the API; a restart keeps the rest.
    let r = app.call(
        "DELETE",
        "/v1/medical-scribe-jobs/visit-a",
        Some(&jobs),
        None,
    );
    assert_eq!(r.status, 200, "{}", r.body);
    let r = request(
        "GET",
        &format!("{base}/Condition?encounter=ea"),
        Some(&reader),
        None,
    );
    assert_eq!(r.body["total"], 0, "{}", r.text);
    app.terminate();
    app.start();
    let r = request(
        "GET",
        &format!("{base}/DocumentReference?encounter=eb"),
        Some(&reader),
        None,
    );
    assert_eq!(
        r.body["total"],
        count_of(&bundles["visit-b"], "DocumentReference"),
        "{}",
        r.text
    );
    let r = request("GET", &format!("{base}/Device"), Some(&reader), None);
    assert_eq!(
        r.body["total"], 1,
        "the shared Device stays while a job uses it"
    );
}

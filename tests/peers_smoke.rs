//! The test peers (scripts/peers/) come up and behave as the integration tests rely on: SMART auth
//! on HFS, Backend Services tokens from our authz server, enforced validation, restart with the
//! same database, and the independent @medplum validator.
mod common;

use base64::Engine;
use common::peers::{fhir, medplum_validate, Authz, Hfs, HfsOptions, Peers};
use serde_json::{json, Value};
use std::time::Duration;

fn patient_and_encounter(mrn: &str) -> Value {
    json!({
        "resourceType": "Bundle",
        "type": "transaction",
        "entry": [
            {
                "fullUrl": "urn:uuid:9a1c3f52-2d4e-4b8a-9d61-000000000001",
                "resource": {
                    "resourceType": "Patient",
                    "identifier": [{"system": "urn:oid:2.16.840.1.113883.19.5", "value": mrn}],
                    "name": [{"family": "Doe", "given": ["Jane"]}],
                    "gender": "female",
                    "birthDate": "1971-04-02"
                },
                "request": {"method": "POST", "url": "Patient",
                            "ifNoneExist": format!("identifier=urn:oid:2.16.840.1.113883.19.5|{mrn}")}
            },
            {
                "fullUrl": "urn:uuid:9a1c3f52-2d4e-4b8a-9d61-000000000002",
                "resource": {
                    "resourceType": "Encounter",
                    "identifier": [{"system": "urn:example:ehr:encounter", "value": format!("ENC-{mrn}")}],
                    "status": "finished",
                    "class": {"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "AMB"},
                    "subject": {"reference": "urn:uuid:9a1c3f52-2d4e-4b8a-9d61-000000000001"},
                    "period": {"start": "2026-11-20T09:00:00Z", "end": "2026-11-20T09:20:00Z"}
                },
                "request": {"method": "POST", "url": "Encounter"}
            }
        ]
    })
}

fn good_condition(subject: &str) -> Value {
    json!({
        "resourceType": "Condition",
        "clinicalStatus": {"coding": [{
            "system": "http://terminology.hl7.org/CodeSystem/condition-clinical", "code": "active"}]},
        "code": {"text": "Acute cystitis"},
        "subject": {"reference": subject}
    })
}

/// No subject (required), a clinicalStatus code outside its required value set.
fn bad_condition() -> Value {
    json!({
        "resourceType": "Condition",
        "clinicalStatus": {"coding": [{
            "system": "http://terminology.hl7.org/CodeSystem/condition-clinical", "code": "bogus"}]},
        "code": {"text": "Acute cystitis"}
    })
}

fn jwt_claims(token: &str) -> Value {
    let payload = token.split('.').nth(1).expect("JWT has a payload");
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload)
        .expect("base64url payload");
    serde_json::from_slice(&bytes).expect("JSON claims")
}

fn entries(bundle: &Value) -> Vec<&Value> {
    bundle["entry"]
        .as_array()
        .map(|e| e.iter().map(|e| &e["resource"]).collect())
        .unwrap_or_default()
}

#[test]
fn smart_backend_token_guards_hfs_and_allows_transaction_and_search() {
    let peers = Peers::start();
    eprintln!(
        "startup: authz {:?}, hfs (auth on) {:?}",
        peers.authz.startup_time(),
        peers.hfs.startup_time()
    );
    let hfs = &peers.hfs;

    // (a) No token: 401 with an OperationOutcome.
    let (status, body) = fhir("GET", &hfs.url("Condition"), None, None);
    assert_eq!(status, 401, "{body}");
    assert_eq!(body["resourceType"], "OperationOutcome");
    let (status, _) = fhir("GET", &hfs.url("Condition"), Some("abc.def.ghi"), None);
    assert_eq!(status, 401, "a garbage token is refused");

    // (b) Backend Services: client_credentials with a private_key_jwt (RS384) client assertion.
    let assertion = peers.authz.client_assertion();
    let (status, body) = peers
        .authz
        .request_token(&assertion, "system/Patient.cruds system/Encounter.cruds");
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["token_type"], "Bearer");
    let token = body["access_token"].as_str().unwrap().to_string();
    let claims = jwt_claims(&token);
    assert_eq!(claims["aud"], hfs.base_url().as_str());
    assert_eq!(claims["iss"], peers.authz.issuer());
    assert_eq!(claims["client_id"], Authz::BACKEND_CLIENT_ID);
    assert_eq!(
        claims["scope"],
        "system/Patient.cruds system/Encounter.cruds"
    );
    // The same assertion again (same jti) is refused.
    let (status, body) = peers.authz.request_token(&assertion, "system/Patient.rs");
    assert!(
        status == 400 || status == 401,
        "replayed assertion: {status} {body}"
    );

    let (status, body) = fhir(
        "POST",
        &hfs.base_url(),
        Some(&token),
        Some(&patient_and_encounter("MRN-SMOKE-1")),
    );
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["type"], "transaction-response");
    let locations: Vec<&str> = body["entry"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["response"]["location"].as_str().unwrap())
        .collect();
    assert!(locations[0].starts_with("Patient/"), "{locations:?}");
    assert!(locations[1].starts_with("Encounter/"), "{locations:?}");
    let patient_id = locations[0].split('/').nth(1).unwrap();

    let (status, found) = fhir(
        "GET",
        &hfs.url("Patient?identifier=urn:oid:2.16.840.1.113883.19.5|MRN-SMOKE-1"),
        Some(&token),
        None,
    );
    assert_eq!(status, 200, "{found}");
    let patients = entries(&found);
    assert_eq!(patients.len(), 1, "{found}");
    assert_eq!(patients[0]["id"], patient_id);

    let (status, found) = fhir(
        "GET",
        &hfs.url(&format!("Encounter?patient=Patient/{patient_id}")),
        Some(&token),
        None,
    );
    assert_eq!(status, 200, "{found}");
    let encounters = entries(&found);
    assert_eq!(encounters.len(), 1, "{found}");
    assert_eq!(
        encounters[0]["subject"]["reference"],
        format!("Patient/{patient_id}")
    );

    // Scopes are enforced: a read-only token may not write.
    let read_only = peers.authz.backend_token("system/Patient.rs");
    let (status, body) = fhir(
        "POST",
        &hfs.url("Patient"),
        Some(&read_only),
        Some(&json!({"resourceType": "Patient", "name": [{"family": "NoWrite"}]})),
    );
    assert_eq!(status, 403, "{body}");
}

#[test]
fn short_lived_token_expires() {
    let peers = Peers::start_with_ttl(Duration::from_secs(3));
    let issued = std::time::Instant::now();
    let token = peers.authz.backend_token("system/Patient.rs");
    let claims = jwt_claims(&token);
    assert_eq!(
        claims["exp"].as_i64().unwrap() - claims["iat"].as_i64().unwrap(),
        3
    );
    let (status, body) = fhir("GET", &peers.hfs.url("Patient"), Some(&token), None);
    assert_eq!(status, 200, "a fresh token works: {body}");
    std::thread::sleep(Duration::from_millis(4500).saturating_sub(issued.elapsed()));
    let (status, body) = fhir("GET", &peers.hfs.url("Patient"), Some(&token), None);
    assert_eq!(status, 401, "an expired token is refused: {body}");
}

#[test]
fn hfs_rejects_invalid_condition_with_operation_outcome() {
    let hfs = Hfs::start(HfsOptions::default());
    eprintln!("startup: hfs (auth off) {:?}", hfs.startup_time());
    let (status, body) = fhir("POST", &hfs.url("Condition"), None, Some(&bad_condition()));
    assert!((400..500).contains(&status), "{status} {body}");
    assert_eq!(body["resourceType"], "OperationOutcome", "{body}");
    let text = body.to_string();
    assert!(text.contains("Condition.subject"), "{body}");
    assert!(text.contains("Condition.clinicalStatus"), "{body}");

    // Nothing was stored; a valid Condition is accepted.
    let (status, found) = fhir("GET", &hfs.url("Condition"), None, None);
    assert_eq!(status, 200);
    assert!(entries(&found).is_empty(), "{found}");
    let (status, body) = fhir(
        "POST",
        &hfs.url("Patient"),
        None,
        Some(&json!({"resourceType": "Patient", "name": [{"family": "Doe"}]})),
    );
    assert_eq!(status, 201, "{body}");
    let subject = format!("Patient/{}", body["id"].as_str().unwrap());
    let (status, body) = fhir(
        "POST",
        &hfs.url("Condition"),
        None,
        Some(&good_condition(&subject)),
    );
    assert_eq!(status, 201, "{body}");
}

#[test]
fn medplum_validator_flags_bad_condition_and_passes_good_one() {
    assert_eq!(
        medplum_validate(&good_condition("Patient/123")),
        Vec::<String>::new()
    );

    let mut bad = bad_condition();
    bad["onsetDateTime"] = json!("yesterday");
    bad["bogusField"] = json!(1);
    let issues = medplum_validate(&bad);
    let has = |needle: &str| issues.iter().any(|i| i.contains(needle));
    assert!(has("Condition.subject"), "{issues:?}");
    assert!(has("Condition.onset"), "{issues:?}");
    assert!(has("Condition.bogusField"), "{issues:?}");

    // A Bundle: each entry is validated; issues name the entry.
    let mut bundle = patient_and_encounter("MRN-VAL");
    assert_eq!(medplum_validate(&bundle), Vec::<String>::new());
    bundle["entry"][1]["resource"]["status"] = json!(7);
    let issues = medplum_validate(&bundle);
    assert!(!issues.is_empty());
    assert!(
        issues
            .iter()
            .all(|i| i.starts_with("entry[1] Encounter.status")),
        "{issues:?}"
    );
}

#[test]
fn hfs_stop_and_restart_keep_the_data() {
    let mut hfs = Hfs::start(HfsOptions::default());
    let (status, body) = fhir(
        "POST",
        &hfs.url("Patient"),
        None,
        Some(&json!({"resourceType": "Patient", "name": [{"family": "Durable"}]})),
    );
    assert_eq!(status, 201, "{body}");
    let url = hfs.url(&format!("Patient/{}", body["id"].as_str().unwrap()));
    let port = hfs.port();

    hfs.stop();
    assert!(!hfs.is_running());
    let (status, _) = fhir("GET", &url, None, None);
    assert_eq!(status, 0, "connection refused while stopped");

    hfs.restart();
    eprintln!("restart: hfs {:?}", hfs.startup_time());
    assert_eq!(hfs.port(), port);
    assert!(hfs.is_running());
    let (status, body) = fhir("GET", &url, None, None);
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["name"][0]["family"], "Durable");
}

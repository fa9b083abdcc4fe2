//! What a signed review must have left in the EHR (HFS), checked the same way by the HTTP-level
//! test (`ui_launch`) and the browser test (`ui_e2e`).
#![allow(dead_code)]

use serde_json::Value;

use super::peers::{fhir, Authz};

/// Writes each resource to the EHR at its own id (`PUT Type/id`), as the test's seed data.
pub fn seed(hfs_base: &str, token: &str, resources: &[Value]) {
    for r in resources {
        let url = format!(
            "{hfs_base}/{}/{}",
            r["resourceType"].as_str().unwrap(),
            r["id"].as_str().unwrap()
        );
        let (s, b) = fhir("PUT", &url, Some(token), Some(r));
        assert!(s == 200 || s == 201, "{s} {b}");
    }
}

/// The `[[ehr]]` block of a review-app test: HFS at `hfs_base` as EHR `main`, the review app
/// registered as the authorization server's public client.
pub fn app_toml(hfs_base: &str) -> String {
    format!(
        "\n[[ehr]]\nname = \"main\"\nfhir_base = \"{hfs_base}\"\n\n[ehr.app]\nclient_id = \"{}\"\n",
        Authz::APP_CLIENT_ID
    )
}

/// The signed note: the encounter has exactly one note DocumentReference, `final`, signed by
/// `signer`, whose Markdown holds every text of `must_contain`; the removed Condition is
/// `entered-in-error` or absent; every kept resource has exactly one verifier Provenance naming
/// `signer`; no business identifier appears twice.
pub fn check_signed_chart(
    hfs_base: &str,
    token: &str,
    encounter: &str,
    removed_condition: &str,
    signer: &str,
    must_contain: &[&str],
) {
    let search = |q: &str| {
        let (s, b) = fhir("GET", &format!("{hfs_base}/{q}"), Some(token), None);
        assert_eq!(s, 200, "{q}: {b}");
        b["entry"].as_array().cloned().unwrap_or_default()
    };
    let docs = search(&format!(
        "DocumentReference?encounter=Encounter/{encounter}"
    ));
    let conditions = search(&format!("Condition?encounter=Encounter/{encounter}"));
    let meds = search(&format!(
        "MedicationStatement?context=Encounter/{encounter}"
    ));
    let mut seen = std::collections::BTreeSet::new();
    for e in docs.iter().chain(&conditions).chain(&meds) {
        let r = &e["resource"];
        let key = format!("{}|{}", r["resourceType"], r["identifier"][0]["value"]);
        assert!(seen.insert(key.clone()), "written twice: {key}");
    }
    let notes: Vec<&Value> = docs
        .iter()
        .map(|e| &e["resource"])
        .filter(|r| {
            r["content"]
                .as_array()
                .into_iter()
                .flatten()
                .any(|c| c["attachment"]["contentType"] == "text/markdown")
        })
        .collect();
    assert_eq!(notes.len(), 1, "one note: {docs:?}");
    let note = notes[0];
    assert_eq!(note["docStatus"], "final");
    assert_eq!(note["authenticator"]["reference"], signer);
    let md = base64::Engine::decode(
        &base64::engine::general_purpose::STANDARD,
        note["content"][0]["attachment"]["data"].as_str().unwrap(),
    )
    .unwrap();
    let md = String::from_utf8(md).unwrap();
    for text in must_contain {
        assert!(md.contains(text), "the signed note has {text:?}: {md}");
    }
    let mut kept = vec![format!(
        "DocumentReference/{}",
        note["id"].as_str().unwrap()
    )];
    for e in conditions.iter().chain(&meds) {
        let r = &e["resource"];
        if r["identifier"][0]["value"] == removed_condition {
            assert_eq!(
                r["verificationStatus"]["coding"][0]["code"], "entered-in-error",
                "the removed condition: {r}"
            );
            continue;
        }
        kept.push(format!(
            "{}/{}",
            r["resourceType"].as_str().unwrap(),
            r["id"].as_str().unwrap()
        ));
    }
    for target in &kept {
        let provs = search(&format!("Provenance?target={target}"));
        let verifiers = provs
            .iter()
            .filter(|p| {
                p["resource"]["agent"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .any(|a| {
                        a["type"]["coding"][0]["code"] == "verifier"
                            && a["who"]["reference"] == signer
                    })
            })
            .count();
        assert_eq!(
            verifiers, 1,
            "one verifier Provenance for {target}: {provs:?}"
        );
    }
}

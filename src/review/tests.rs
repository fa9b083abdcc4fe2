use super::*;
use crate::healthscribe::NoteTemplate;
use crate::note::template::Templates;

fn doc() -> ClinicalDocumentation {
    serde_json::from_value(json!({"Sections": [
        {"SectionName": "CHIEF_COMPLAINT", "Summary": [
            {"SummarizedSegment": "Knee pain.", "EvidenceLinks": [{"SegmentId": "a"}]}]},
        {"SectionName": "PLAN", "Summary": [
            {"SummarizedSegment": "Start ibuprofen 400 mg.", "EvidenceLinks": [{"SegmentId": "b"}, {"SegmentId": "c"}]},
            {"SummarizedSegment": "Follow up in 2 weeks.", "EvidenceLinks": [{"SegmentId": "d"}]}]}
    ]}))
    .unwrap()
}

fn entry(url: &str, r: Value, ine: &str) -> Value {
    let ty = r["resourceType"].as_str().unwrap().to_owned();
    json!({"fullUrl": url, "resource": r, "request": {"method": "POST", "url": ty, "ifNoneExist": ine}})
}

fn draft() -> Value {
    let id = |v: &str| json!([{"system": "urn:sys", "value": v}]);
    json!({"resourceType": "Bundle", "type": "transaction",
    "identifier": {"system": "urn:job", "value": "job-1"},
    "entry": [
        entry("urn:uuid:dev", json!({"resourceType": "Device", "identifier": id("dev"),
            "deviceName": [{"name": "scribe", "type": "model-name"}]}), "identifier=urn:sys|dev"),
        entry("urn:uuid:note", json!({"resourceType": "DocumentReference", "identifier": id("note"),
            "docStatus": "preliminary", "author": [{"reference": "urn:uuid:dev"}],
            "content": [{"attachment": {"contentType": "text/markdown", "data": "eA=="}},
                        {"attachment": {"contentType": "application/json", "title": "clinical-documentation.json"}}]}),
            "identifier=urn:sys|note"),
        entry("urn:uuid:c1", json!({"resourceType": "Condition", "identifier": id("c1"),
            "clinicalStatus": {"coding": [{"code": "active"}]},
            "verificationStatus": {"coding": [{"code": "unconfirmed"}]},
            "code": {"text": "knee pain"}}), "identifier=urn:sys|c1"),
        entry("urn:uuid:m1", json!({"resourceType": "MedicationStatement", "identifier": id("m1"),
            "status": "active", "medicationCodeableConcept": {"text": "ibuprofen"},
            "dosage": [{"text": "400 mg"}]}), "identifier=urn:sys|m1"),
        entry("urn:uuid:p1", json!({"resourceType": "Provenance", "target": [{"reference": "urn:uuid:c1"}]}), "_tag=urn:p|c1"),
        entry("urn:uuid:p2", json!({"resourceType": "Provenance", "target": [{"reference": "urn:uuid:m1"}]}), "_tag=urn:p|m1"),
    ]})
}

fn review() -> Review {
    let templates = Templates::builtin().unwrap();
    Review::from_draft(
        "job-1",
        &doc(),
        templates.get(NoteTemplate::HistoryAndPhysical),
        Some(&draft()),
    )
}

#[test]
fn the_draft_becomes_template_sections_and_chart_items() {
    let r = review();
    let cc = r
        .sections
        .iter()
        .find(|s| s.name == "CHIEF_COMPLAINT")
        .unwrap();
    assert_eq!(cc.sentences[0].text, "Knee pain.");
    assert_eq!(cc.sentences[0].evidence, vec!["a"]);
    // Empty sections of the template are there to write in.
    assert!(r.sections.iter().any(|s| s.sentences.is_empty()));
    assert_eq!(r.items.len(), 2);
    assert_eq!(r.items[1].display, "ibuprofen: 400 mg");
    assert!(!r.is_edited());
}

#[test]
fn edits_keep_the_ai_draft_and_say_what_changed() {
    let mut r = review();
    let a = r
        .apply(
            &Edit::Edit {
                id: "s1-0".into(),
                text: "  Start ibuprofen\n400 mg BID. ".into(),
            },
            "Practitioner/1",
            5,
        )
        .unwrap();
    assert_eq!(a.before.as_deref(), Some("Start ibuprofen 400 mg."));
    assert_eq!(a.after.as_deref(), Some("Start ibuprofen 400 mg BID."));
    assert_eq!(a.who, "Practitioner/1");
    let s = r.sentence_mut("s1-0").unwrap().clone();
    assert_eq!(s.origin, Origin::Edited);
    assert_eq!(s.ai_text.as_deref(), Some("Start ibuprofen 400 mg."));
    assert_eq!(r.version, 2);
    // Back to the draft's text: AI again.
    r.apply(
        &Edit::Edit {
            id: "s1-0".into(),
            text: "Start ibuprofen 400 mg.".into(),
        },
        "x",
        6,
    )
    .unwrap();
    assert_eq!(r.sentence_mut("s1-0").unwrap().origin, Origin::Ai);

    let a = r
        .apply(
            &Edit::Add {
                section: "PLAN".into(),
                text: "Call if worse.".into(),
            },
            "x",
            7,
        )
        .unwrap();
    assert_eq!(a.target.as_deref(), Some("c1"));
    assert_eq!(r.sentence_mut("c1").unwrap().origin, Origin::Clinician);
    assert!(r.sentence_mut("c1").unwrap().evidence.is_empty());
    r.apply(&Edit::Remove { id: "s1-1".into() }, "x", 8)
        .unwrap();
    let md = r.markdown();
    assert!(md.contains("- Call if worse.\n"), "{md}");
    assert!(!md.contains("Follow up"), "{md}");
    assert!(r.is_edited());
}

#[test]
fn bad_edits_are_refused_and_change_nothing() {
    let mut r = review();
    let before = r.clone();
    for (e, want) in [
        (
            Edit::Edit {
                id: "nope".into(),
                text: "x".into(),
            },
            ReviewError::NoSentence("nope".into()),
        ),
        (
            Edit::Edit {
                id: "s0-0".into(),
                text: " \n ".into(),
            },
            ReviewError::Empty,
        ),
        (
            Edit::Edit {
                id: "s0-0".into(),
                text: "x".repeat(MAX_SENTENCE_CHARS + 1),
            },
            ReviewError::TooLong,
        ),
        (
            Edit::Add {
                section: "NOPE".into(),
                text: "x".into(),
            },
            ReviewError::NoSection("NOPE".into()),
        ),
        (
            Edit::RemoveItem { key: "zz".into() },
            ReviewError::NoItem("zz".into()),
        ),
    ] {
        assert_eq!(r.apply(&e, "x", 1).unwrap_err(), want);
    }
    assert_eq!(r, before);
    r.signature = Some(Signature {
        by: "P/1".into(),
        at: "t".into(),
        state: SignState::Signing,
    });
    assert_eq!(
        r.apply(&Edit::Remove { id: "s0-0".into() }, "x", 1)
            .unwrap_err(),
        ReviewError::Signed
    );
}

#[test]
fn the_signed_bundle_updates_in_place_and_names_the_verifier() {
    let mut r = review();
    r.apply(
        &Edit::Edit {
            id: "s0-0".into(),
            text: "Right knee pain.".into(),
        },
        "x",
        1,
    )
    .unwrap();
    r.apply(&Edit::RemoveItem { key: "c1".into() }, "x", 2)
        .unwrap();
    let b = r
        .sign_bundle(&draft(), "Practitioner/7", "2026-12-06T10:00:00Z", "urn:p")
        .unwrap();
    let entries = b["entry"].as_array().unwrap();
    let by_url = |u: &str| entries.iter().find(|e| e["fullUrl"] == u).unwrap();
    let note = by_url("urn:uuid:note");
    assert_eq!(note["request"]["method"], "PUT");
    assert_eq!(
        note["request"]["url"],
        "DocumentReference?identifier=urn:sys|note"
    );
    assert_eq!(note["resource"]["docStatus"], "final");
    assert_eq!(
        note["resource"]["authenticator"]["reference"],
        "Practitioner/7"
    );
    let md = note["resource"]["content"][0]["attachment"]["data"]
        .as_str()
        .unwrap();
    let md = String::from_utf8(
        base64::Engine::decode(&base64::engine::general_purpose::STANDARD, md).unwrap(),
    )
    .unwrap();
    assert!(md.contains("- Right knee pain.\n"), "{md}");
    let c1 = by_url("urn:uuid:c1");
    assert_eq!(c1["request"]["method"], "PUT");
    assert_eq!(
        c1["resource"]["verificationStatus"]["coding"][0]["code"],
        "entered-in-error"
    );
    assert!(c1["resource"].get("clinicalStatus").is_none());
    assert_eq!(by_url("urn:uuid:m1")["resource"]["status"], "active");
    // The draft's evidence Provenance of the removed Condition is left out; the other stays.
    assert!(!entries.iter().any(|e| e["fullUrl"] == "urn:uuid:p1"));
    assert!(entries.iter().any(|e| e["fullUrl"] == "urn:uuid:p2"));
    // A verifier Provenance per kept resource (the note and the medication), none for c1.
    let verifiers: Vec<&Value> = entries
        .iter()
        .filter(|e| {
            e["resource"]["agent"].as_array().is_some_and(|a| {
                a.iter()
                    .any(|x| x["type"]["coding"][0]["code"] == "verifier")
            })
        })
        .collect();
    let targets: Vec<&str> = verifiers
        .iter()
        .map(|v| v["resource"]["target"][0]["reference"].as_str().unwrap())
        .collect();
    assert_eq!(targets, vec!["urn:uuid:note", "urn:uuid:m1"]);
    for v in &verifiers {
        assert_eq!(v["request"]["method"], "POST");
        assert!(v["request"]["ifNoneExist"]
            .as_str()
            .unwrap()
            .starts_with("_tag=urn:p|job-1/signed/"));
    }
    // The note was edited: the clinician is its author too, beside the Device.
    let note_prov = verifiers[0]["resource"]["agent"].as_array().unwrap();
    assert_eq!(note_prov.len(), 3);
    // The Device by identifier (a patient-scoped token cannot create one), everywhere.
    assert_eq!(note_prov[2]["who"]["identifier"]["value"], "dev");
    assert!(!b.to_string().contains("urn:uuid:dev"), "{b}");
    assert!(!entries
        .iter()
        .any(|e| e["resource"]["resourceType"] == "Device"));
    assert_eq!(note["resource"]["author"][0]["display"], "scribe");
    // The same review signs to the same Bundle (a retry is a replay).
    assert_eq!(
        b,
        r.sign_bundle(&draft(), "Practitioner/7", "2026-12-06T10:00:00Z", "urn:p")
            .unwrap()
    );
}

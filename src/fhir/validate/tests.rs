use super::*;
use serde_json::json;
use std::sync::OnceLock;

fn v() -> &'static Validator {
    static V: OnceLock<Validator> = OnceLock::new();
    V.get_or_init(|| Validator::bundled().expect("bundled profiles load"))
}

fn fixture(name: &str) -> Value {
    let p = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/fhir")
        .join(name);
    serde_json::from_str(&std::fs::read_to_string(&p).unwrap()).unwrap()
}

fn errors(issues: &[Issue]) -> Vec<&Issue> {
    issues
        .iter()
        .filter(|i| i.severity == Severity::Error)
        .collect()
}

/// Asserts that exactly one error was reported at `expr`, whose message contains `msg`.
#[track_caller]
fn assert_error(issues: &[Issue], expr: &str, msg: &str) {
    let at: Vec<&Issue> = errors(issues)
        .into_iter()
        .filter(|i| i.expression == expr)
        .collect();
    assert!(
        at.len() == 1 && at[0].message.contains(msg),
        "expected one error at {expr} containing {msg:?}, got {issues:#?}"
    );
}

#[track_caller]
fn assert_valid(issues: &[Issue]) {
    assert!(issues.is_empty(), "expected no issues, got {issues:#?}");
}

// ---- loading ----------------------------------------------------------------------------------

#[test]
fn bundled_and_folder_load_the_same_profiles() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("fhir-profiles");
    let loaded = Validator::load(&dir).unwrap();
    assert_eq!(loaded.profile_urls(), v().profile_urls());
    assert_eq!(v().profile_urls().len(), 7);
    assert_eq!(loaded.value_sets.len(), v().value_sets.len());
}

#[test]
fn load_reports_a_broken_profile() {
    let tmp = tempfile::tempdir().unwrap();
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("fhir-profiles");
    std::fs::create_dir(tmp.path().join("base")).unwrap();
    std::fs::copy(
        src.join("base/r4-elements.json"),
        tmp.path().join("base/r4-elements.json"),
    )
    .unwrap();
    // a required binding to a value set that is not shipped
    std::fs::copy(
        src.join("StructureDefinition-scribe-condition.json"),
        tmp.path().join("StructureDefinition-scribe-condition.json"),
    )
    .unwrap();
    let err = Validator::load(tmp.path()).unwrap_err();
    assert!(
        matches!(&err, ProfileError::Invalid { path, reason } if path.contains("scribe-condition") && reason.contains("not shipped")),
        "{err}"
    );
    assert!(matches!(
        Validator::load(&tmp.path().join("nope")),
        Err(ProfileError::Io { .. })
    ));
}

// ---- the fixtures: valid ones pass, invalid ones fail (scripts/check-profiles.mjs agrees) ------

#[test]
fn every_valid_fixture_passes_and_every_invalid_one_fails() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/fhir");
    let mut names: Vec<String> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".json"))
        .collect();
    names.sort();
    assert!(names.len() >= 15, "{names:?}");
    for n in names {
        let issues = v().validate(&fixture(&n));
        if n.contains("invalid") {
            assert!(!errors(&issues).is_empty(), "{n} should fail");
        } else {
            assert!(issues.is_empty(), "{n}: {issues:#?}");
        }
    }
}

#[test]
fn each_profile_has_a_valid_fixture() {
    for (f, profile) in [
        ("note.json", "scribe-note"),
        ("transcript.json", "scribe-transcript"),
        ("condition.json", "scribe-condition"),
        ("medication-statement.json", "scribe-medication-statement"),
        ("provenance.json", "scribe-provenance"),
        ("device.json", "scribe-device"),
    ] {
        let r = fixture(f);
        assert_eq!(
            r["meta"]["profile"][0],
            format!("https://fhirscribe.org/fhir/StructureDefinition/{profile}")
        );
        assert_valid(&v().validate(&r));
    }
    assert_valid(&v().validate_bundle(&fixture("bundle-transaction.json")));
}

#[test]
fn invalid_fixtures_report_what_is_wrong() {
    let cases = [
        (
            "condition-invalid-no-icd10.json",
            "Condition.code",
            "pattern",
        ),
        (
            "condition-invalid-ver-status.json",
            "Condition.verificationStatus",
            "condition-ver-status",
        ),
        (
            "condition-invalid-subject-type.json",
            "Condition.subject.reference",
            "must refer to Patient",
        ),
        (
            "condition-invalid-format.json",
            "Condition.recordedDate",
            "dateTime format",
        ),
        ("device-invalid-type.json", "Device.type", "AI scribe"),
        (
            "medication-statement-invalid-reference.json",
            "MedicationStatement.medicationReference",
            "not allowed",
        ),
        (
            "note-invalid-no-aiast.json",
            "DocumentReference.meta",
            "AIAST",
        ),
        (
            "note-invalid-category.json",
            "DocumentReference.category",
            "slice 'clinicalNote'",
        ),
        (
            "provenance-invalid-no-author.json",
            "Provenance.agent",
            "slice 'author'",
        ),
        (
            "provenance-invalid-segment.json",
            "Provenance.entity[0].extension[0].extension",
            "slice 'endAudioTime'",
        ),
        (
            "transcript-invalid-status.json",
            "DocumentReference.status",
            "fixed value \"current\"",
        ),
    ];
    for (f, expr, msg) in cases {
        let issues = v().validate(&fixture(f));
        assert!(
            errors(&issues)
                .iter()
                .any(|i| i.expression == expr && i.message.contains(msg)),
            "{f}: expected {expr} / {msg:?}, got {issues:#?}"
        );
    }
}

// ---- base checks ------------------------------------------------------------------------------

fn condition() -> Value {
    fixture("condition.json")
}

#[test]
fn unknown_resource_type() {
    let issues = v().validate(&json!({"resourceType": "Patient", "id": "p"}));
    assert_error(
        &issues,
        "Resource.resourceType",
        "not a resource type fhirscribe validates",
    );
    let issues = v().validate(&json!({"id": "p"}));
    assert_error(&issues, "Resource.resourceType", "resourceType is missing");
}

#[test]
fn unknown_elements() {
    let mut c = condition();
    c["colour"] = json!("red");
    c["code"]["coding"][0]["systm"] = json!("x");
    let issues = v().validate(&c);
    assert_error(
        &issues,
        "Condition.colour",
        "unknown element: Condition has no element colour",
    );
    assert_error(
        &issues,
        "Condition.code.coding[0].systm",
        "unknown element: Coding has no element systm",
    );
    assert_eq!(errors(&issues).len(), 2, "{issues:#?}");
}

#[test]
fn choice_types() {
    let mut c = condition();
    c["onsetString"] = json!("two weeks ago");
    assert_valid(&v().validate(&c));
    c["onsetAge"] = json!({"value": 3, "unit": "a"});
    let issues = v().validate(&c);
    assert_error(
        &issues,
        "Condition.onsetString",
        "only one of onset[x] may be present",
    );
    let mut c = condition();
    c["onsetCoding"] = json!({"code": "x"});
    assert_error(
        &v().validate(&c),
        "Condition.onsetCoding",
        "unknown element",
    );
}

#[test]
fn primitive_extension_siblings() {
    let mut c = condition();
    c["_recordedDate"] =
        json!({"extension": [{"url": "http://example.org/x", "valueBoolean": true}]});
    assert_valid(&v().validate(&c));
    let mut c = condition();
    c["_code"] = json!({});
    assert_error(
        &v().validate(&c),
        "Condition._code",
        "code is not a primitive",
    );
    let mut c = condition();
    c["_recordedDate"] = json!({"text": "x"});
    assert_error(
        &v().validate(&c),
        "Condition._recordedDate.text",
        "only id and extension",
    );
}

#[test]
fn extension_and_modifier_extension_everywhere() {
    let mut c = condition();
    c["code"]["coding"][0]["extension"] =
        json!([{"url": "http://example.org/e", "valueString": "x"}]);
    c["modifierExtension"] = json!([{"url": "http://example.org/m", "valueCode": "y"}]);
    assert_valid(&v().validate(&c));
    c["extension"] = json!([{"valueString": "x"}]);
    assert_error(
        &v().validate(&c),
        "Condition.extension[0].url",
        "minimum cardinality 1",
    );
}

#[test]
fn base_cardinality() {
    let mut c = condition();
    c.as_object_mut().unwrap().remove("subject");
    assert_error(
        &v().validate(&c),
        "Condition.subject",
        "minimum cardinality 1 not met (base 1..1)",
    );
}

#[test]
fn arrays_and_scalars() {
    let mut c = condition();
    c["code"] = json!([c["code"].clone()]);
    assert_error(&v().validate(&c), "Condition.code", "must not be an array");
    let mut c = condition();
    c["category"] = c["category"][0].clone();
    assert_error(&v().validate(&c), "Condition.category", "must be an array");
    let mut c = condition();
    c["note"] = json!([]);
    assert_error(&v().validate(&c), "Condition.note", "empty arrays");
}

#[test]
fn primitive_formats() {
    let cases: Vec<(&str, Value, &str, &str)> = vec![
        (
            "/recordedDate",
            json!("2024-02-30T25:00:00Z"),
            "Condition.recordedDate",
            "dateTime format",
        ),
        (
            "/recordedDate",
            json!("2024-05-01T09:42"),
            "Condition.recordedDate",
            "dateTime format",
        ),
        (
            "/onsetDateTime",
            json!(2024),
            "Condition.onsetDateTime",
            "expected a JSON string",
        ),
        ("/id", json!("has space"), "Condition.id", "id format"),
        ("/id", json!("a".repeat(65)), "Condition.id", "id format"),
        (
            "/code/text",
            json!(""),
            "Condition.code.text",
            "empty strings",
        ),
        (
            "/code/coding/0/code",
            json!("I10  x"),
            "Condition.code.coding[0].code",
            "code format",
        ),
        (
            "/code/coding/0/system",
            json!("http://x y"),
            "Condition.code.coding[0].system",
            "uri format",
        ),
        (
            "/code/coding/0/userSelected",
            json!("true"),
            "Condition.code.coding[0].userSelected",
            "JSON boolean",
        ),
        (
            "/onsetAge",
            json!({"value": "3"}),
            "Condition.onsetAge.value",
            "JSON number",
        ),
        (
            "/onsetDate",
            json!("2024-1-01"),
            "Condition.onsetDate",
            "unknown element",
        ),
        (
            "/abatementDateTime",
            json!("2024-13"),
            "Condition.abatementDateTime",
            "dateTime format",
        ),
    ];
    for (ptr, val, expr, msg) in cases {
        let mut c = condition();
        let (parent, key) = ptr.rsplit_once('/').unwrap();
        let target = if parent.is_empty() {
            &mut c
        } else {
            c.pointer_mut(parent).unwrap()
        };
        target[key] = val;
        assert_error(&v().validate(&c), expr, msg);
    }
    // integers, instants, base64
    let mut m = fixture("medication-statement.json");
    m["dosage"][0]["timing"]["repeat"]["frequency"] = json!(0);
    assert_error(
        &v().validate(&m),
        "MedicationStatement.dosage[0].timing.repeat.frequency",
        "positiveInt: out of range",
    );
    m["dosage"][0]["timing"]["repeat"]["frequency"] = json!(1.5);
    assert_error(
        &v().validate(&m),
        "MedicationStatement.dosage[0].timing.repeat.frequency",
        "expected a JSON integer",
    );
    let mut p = fixture("provenance.json");
    p["recorded"] = json!("2024-05-01T09:42:10");
    assert_error(&v().validate(&p), "Provenance.recorded", "instant format");
    let mut n = fixture("note.json");
    n["content"][0]["attachment"]["data"] = json!("abc*");
    assert_error(
        &v().validate(&n),
        "DocumentReference.content[0].attachment.data",
        "base64Binary",
    );
}

#[test]
fn required_bindings_base_and_profile() {
    let mut c = condition();
    c["clinicalStatus"]["coding"][0]["code"] = json!("gone");
    assert_error(
        &v().validate(&c),
        "Condition.clinicalStatus",
        "no coding from the required value set http://hl7.org/fhir/ValueSet/condition-clinical",
    );
    let mut c = condition();
    c["category"][0]["coding"][0] = json!({"system": "http://hl7.org/fhir/us/core/CodeSystem/condition-category", "code": "health-concern"});
    assert_valid(&v().validate(&c));
    c["category"][0]["coding"][0]["code"] = json!("sdoh");
    assert_error(
        &v().validate(&c),
        "Condition.category[0]",
        "scribe-condition-category",
    );
    let mut m = fixture("medication-statement.json");
    m["status"] = json!("ongoing");
    assert_error(
        &v().validate(&m),
        "MedicationStatement.status",
        "code is not in the required value set http://hl7.org/fhir/ValueSet/medication-statement-status",
    );
    let mut n = fixture("note.json");
    n["docStatus"] = json!("draft");
    assert_error(
        &v().validate(&n),
        "DocumentReference.docStatus",
        "composition-status",
    );
}

#[test]
fn profile_cardinality() {
    let mut n = fixture("note.json");
    n.as_object_mut().unwrap().remove("date");
    assert_error(
        &v().validate(&n),
        "DocumentReference.date",
        "minimum cardinality 1 not met (profile requires 1.._)",
    );
    let mut p = fixture("provenance.json");
    p["target"] = json!([{"reference": "Condition/a"}, {"reference": "Condition/b"}]);
    assert_error(
        &v().validate(&p),
        "Provenance.target",
        "maximum cardinality 1 exceeded",
    );
    let mut n = fixture("note.json");
    n["context"]["encounter"] = json!([{"reference": "Encounter/a"}, {"reference": "Encounter/b"}]);
    assert_error(
        &v().validate(&n),
        "DocumentReference.context.encounter",
        "maximum cardinality 1 exceeded",
    );
    let mut n = fixture("note.json");
    n["content"][1]["attachment"]
        .as_object_mut()
        .unwrap()
        .remove("contentType");
    assert_error(
        &v().validate(&n),
        "DocumentReference.content[1].attachment.contentType",
        "minimum cardinality 1",
    );
}

#[test]
fn fixed_values() {
    let mut t = fixture("transcript.json");
    t["content"][0]["attachment"]["contentType"] = json!("text/plain");
    assert_error(
        &v().validate(&t),
        "DocumentReference.content[0].attachment.contentType",
        "must be exactly the fixed value \"application/json\"",
    );
    let mut p = fixture("provenance.json");
    p["entity"][0]["role"] = json!("derivation");
    assert_error(
        &v().validate(&p),
        "Provenance.entity[0].role",
        "fixed value \"source\"",
    );
}

#[test]
fn pattern_semantics() {
    // extra properties and extra codings are fine
    let mut c = condition();
    c["code"]["coding"].as_array_mut().unwrap().insert(
        0,
        json!({"system": "http://snomed.info/sct", "code": "38341003"}),
    );
    assert_valid(&v().validate(&c));
    // AIAST among other security labels passes; missing fails
    let mut n = fixture("note.json");
    n["meta"]["security"].as_array_mut().unwrap().insert(
        0,
        json!({"system": "http://terminology.hl7.org/CodeSystem/v3-Confidentiality", "code": "N"}),
    );
    assert_valid(&v().validate(&n));
    n["meta"]["security"][1]["code"] = json!("AIAST2");
    assert_error(&v().validate(&n), "DocumentReference.meta", "AIAST");
    // the LOINC type
    let mut n = fixture("note.json");
    n["type"]["coding"][0]["system"] = json!("http://snomed.info/sct");
    assert_error(
        &v().validate(&n),
        "DocumentReference.type",
        "http://loinc.org",
    );
    // UCUM dose
    let mut m = fixture("medication-statement.json");
    m["dosage"][0]["doseAndRate"][0]["doseQuantity"]["system"] = json!("http://example.org/units");
    assert_error(
        &v().validate(&m),
        "MedicationStatement.dosage[0].doseAndRate[0].doseQuantity",
        "unitsofmeasure",
    );
}

#[test]
fn pattern_matching_rules() {
    let p = json!({"coding": [{"system": "s", "code": "c"}]});
    assert!(pattern_matches(
        &p,
        &json!({"coding": [{"system": "x"}, {"system": "s", "code": "c", "display": "d"}], "text": "t"})
    ));
    assert!(!pattern_matches(
        &p,
        &json!({"coding": [{"system": "s"}, {"code": "c"}]})
    ));
    assert!(!pattern_matches(&p, &json!({"text": "t"})));
    assert!(pattern_matches(&json!(1.0), &json!(1)));
}

#[test]
fn slices_with_value_discriminator_and_children() {
    let mut c = condition();
    c["code"]["coding"][0]
        .as_object_mut()
        .unwrap()
        .remove("code");
    let issues = v().validate(&c);
    assert_error(
        &issues,
        "Condition.code.coding[0].code",
        "minimum cardinality 1",
    );
    // the scribe agent's who must be a Device
    let mut p = fixture("provenance.json");
    p["agent"][0]["who"] = json!({"reference": "Practitioner/pr-1"});
    assert_error(
        &v().validate(&p),
        "Provenance.agent[0].who.reference",
        "must refer to Device",
    );
    // a verifier agent must be a Practitioner
    let mut p = fixture("provenance.json");
    p["agent"].as_array_mut().unwrap().push(json!({
        "type": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/provenance-participant-type", "code": "verifier"}]},
        "who": {"reference": "Practitioner/pr-1"}
    }));
    assert_valid(&v().validate(&p));
    p["agent"][1]["who"] = json!({"reference": "Patient/pat-1001"});
    assert_error(
        &v().validate(&p),
        "Provenance.agent[1].who.reference",
        "must refer to Practitioner",
    );
}

#[test]
fn evidence_segment_extension() {
    let base = fixture("provenance.json");
    let seg = "Provenance.entity[0].extension[0]";
    let mut p = base.clone();
    p["entity"][0]["extension"][0]["extension"][2]["valueDecimal"] = json!("35.9");
    assert_error(
        &v().validate(&p),
        &format!("{seg}.extension[2].valueDecimal"),
        "expected a JSON number",
    );
    let mut p = base.clone();
    p["entity"][0]["extension"][0]["extension"][0] = json!({"url": "segmentId", "valueInteger": 7});
    assert_error(
        &v().validate(&p),
        &format!("{seg}.extension[0].valueInteger"),
        "type Integer is not allowed",
    );
    let mut p = base.clone();
    p["entity"][0]["extension"][0]["extension"]
        .as_array_mut()
        .unwrap()
        .push(json!({"url": "text", "valueString": "what was said"}));
    assert_error(
        &v().validate(&p),
        &format!("{seg}.extension[3]"),
        "matches none of the slices (segmentId, beginAudioTime, endAudioTime)",
    );
    let mut p = base.clone();
    p["entity"][0]["extension"][0]["valueString"] = json!("x");
    assert_error(
        &v().validate(&p),
        &format!("{seg}.value[x]"),
        "maximum cardinality 0 exceeded",
    );
    let mut p = base;
    p["entity"][0]["extension"] = json!([]);
    let issues = v().validate(&p);
    assert!(issues
        .iter()
        .any(|i| i.expression == "Provenance.entity[0].extension"
            && i.message.contains("empty arrays")));
    assert!(issues
        .iter()
        .any(|i| i.expression == "Provenance.entity[0].extension"
            && i.message.contains("slice 'evidenceSegment'")));
}

#[test]
fn reference_formats() {
    for ok in [
        "Patient/pat-1",
        "Patient/pat-1/_history/2",
        "https://ehr.example.org/fhir/Patient/pat-1",
    ] {
        let mut c = condition();
        c["subject"]["reference"] = json!(ok);
        assert_valid(&v().validate(&c));
    }
    for bad in [
        "pat-1",
        "Patient/",
        "urn:uuid:NOT-A-UUID",
        "Patient/a b",
        "patient/1",
    ] {
        let mut c = condition();
        c["subject"]["reference"] = json!(bad);
        assert_error(
            &v().validate(&c),
            "Condition.subject.reference",
            "reference must be Type/id",
        );
    }
    // base targets (Condition.encounter -> Encounter), profile targets (subject -> Patient only)
    let mut c = condition();
    c["encounter"]["reference"] = json!("Patient/pat-1");
    assert_error(
        &v().validate(&c),
        "Condition.encounter.reference",
        "must refer to Encounter",
    );
    let mut c = condition();
    c["subject"]["reference"] = json!("https://ehr.example.org/fhir/Group/g1");
    assert_error(
        &v().validate(&c),
        "Condition.subject.reference",
        "must refer to Patient",
    );
}

#[test]
fn unknown_profile_is_a_warning() {
    let mut c = condition();
    c["meta"]["profile"].as_array_mut().unwrap().push(json!(
        "http://hl7.org/fhir/us/core/StructureDefinition/us-core-condition-encounter-diagnosis"
    ));
    let issues = v().validate(&c);
    assert_eq!(issues.len(), 1, "{issues:#?}");
    assert_eq!(issues[0].severity, Severity::Warning);
    assert_eq!(issues[0].expression, "Condition.meta.profile[1]");
    assert!(issues[0]
        .message
        .starts_with("unknown profile http://hl7.org/fhir/us/core/"));
    // a profile for another type is an error
    let mut c = condition();
    c["meta"]["profile"][0] = json!("https://fhirscribe.org/fhir/StructureDefinition/scribe-note");
    assert_error(
        &v().validate(&c),
        "Condition.meta.profile[0]",
        "another resource type",
    );
}

// ---- bundles ----------------------------------------------------------------------------------

fn bundle() -> Value {
    fixture("bundle-transaction.json")
}

#[test]
fn bundle_entries_are_validated_with_their_prefix() {
    let mut b = bundle();
    b["entry"][3]["resource"]
        .as_object_mut()
        .unwrap()
        .remove("subject");
    b["entry"][3]["resource"]["bogus"] = json!(1);
    let issues = v().validate_bundle(&b);
    assert_error(
        &issues,
        "Bundle.entry[3].resource.subject",
        "minimum cardinality 1",
    );
    assert_error(&issues, "Bundle.entry[3].resource.bogus", "unknown element");
    // validate() on a Bundle does the same
    assert_eq!(v().validate(&b), issues);
}

#[test]
fn bundle_structure() {
    let mut b = bundle();
    b["type"] = json!("collectionx");
    b["entry"][0]["request"]["method"] = json!("FETCH");
    let issues = v().validate_bundle(&b);
    assert_error(&issues, "Bundle.type", "bundle-type");
    assert_error(&issues, "Bundle.entry[0].request.method", "http-verb");
    assert_error(
        &v().validate_bundle(&json!({"resourceType": "Condition"})),
        "resourceType",
        "expected a Bundle",
    );
}

#[test]
fn bundle_full_url_uniqueness() {
    let mut b = bundle();
    b["entry"][4]["fullUrl"] = b["entry"][3]["fullUrl"].clone();
    let issues = v().validate_bundle(&b);
    assert_error(
        &issues,
        "Bundle.entry[4].fullUrl",
        "duplicate fullUrl (same as Bundle.entry[3].fullUrl)",
    );
}

#[test]
fn bundle_urn_uuid_references_resolve() {
    let mut b = bundle();
    b["entry"][6]["resource"]["target"][0]["reference"] =
        json!("urn:uuid:00000000-0000-5000-8000-000000000000");
    let issues = v().validate_bundle(&b);
    assert_error(
        &issues,
        "Bundle.entry[6].resource.target[0].reference",
        "does not resolve to any entry's fullUrl",
    );
    assert_eq!(errors(&issues).len(), 1, "{issues:#?}");
    // resolves, but to the wrong type: a Provenance's source must be the transcript
    let mut b = bundle();
    b["entry"][6]["resource"]["entity"][0]["what"]["reference"] = b["entry"][3]["fullUrl"].clone();
    assert_error(
        &v().validate_bundle(&b),
        "Bundle.entry[6].resource.entity[0].what.reference",
        "refers to Bundle.entry[3], whose type is not one of DocumentReference",
    );
}

#[test]
fn bundle_transaction_entries_need_requests() {
    let mut b = bundle();
    b["entry"][2].as_object_mut().unwrap().remove("request");
    b["entry"][3]["request"]
        .as_object_mut()
        .unwrap()
        .remove("url");
    b["entry"][4]["request"]["url"] = json!("Condition");
    let issues = v().validate_bundle(&b);
    assert_error(
        &issues,
        "Bundle.entry[2].request.method",
        "transaction entries need",
    );
    assert_error(
        &issues,
        "Bundle.entry[2].request.url",
        "transaction entries need",
    );
    assert!(errors(&issues)
        .iter()
        .any(|i| i.expression == "Bundle.entry[3].request.url"));
    assert_error(
        &issues,
        "Bundle.entry[4].request.url",
        "must be the resource's type",
    );
}

// ---- no PHI in messages -----------------------------------------------------------------------

#[test]
fn messages_never_contain_instance_values() {
    const S: &str = "ZZSENTINEL";
    let mut c = condition();
    c["id"] = json!(format!("{S} x"));
    c["recordedDate"] = json!(S);
    c["code"]["coding"][0]["system"] = json!(format!("http://{S} y"));
    c["code"]["coding"][0]["code"] = json!(format!("{S}  z"));
    c["clinicalStatus"]["coding"][0]["code"] = json!(S);
    c["subject"]["reference"] = json!(format!("Group/{S}"));
    c["encounter"]["reference"] = json!(S);
    c["onsetBoolean"] = json!(S);
    c["note"] = json!([{"text": ""}]);
    c["category"][0]["coding"][0]["code"] = json!(S);
    let mut b = bundle();
    b["entry"][3]["resource"] = c;
    b["entry"][4]["fullUrl"] = json!(format!("urn:uuid:{S}"));
    b["entry"][5]["resource"]["target"][0]["reference"] = json!(format!("urn:uuid:{S}"));
    b["entry"][6]["resource"]["entity"][0]["extension"][0]["extension"][0]["valueString"] =
        json!(1);
    let issues = v().validate_bundle(&b);
    assert!(issues.len() >= 10, "{issues:#?}");
    for i in &issues {
        assert!(!i.message.contains(S) && !i.expression.contains(S), "{i:?}");
    }
}

// ---- speed ------------------------------------------------------------------------------------

/// A 60-resource transaction Bundle: the fixture's 8 entries, with 52 more Conditions and their
/// Provenance.
fn big_bundle() -> Value {
    let mut b = bundle();
    let entries = b["entry"].as_array_mut().unwrap();
    let cond = entries[3].clone();
    let prov = entries[6].clone();
    let mut i = 0u32;
    while entries.len() < 60 {
        let cu = format!("urn:uuid:00000000-0000-5000-8000-{i:012x}");
        let pu = format!("urn:uuid:00000000-0000-5000-9000-{i:012x}");
        let mut c = cond.clone();
        c["fullUrl"] = json!(cu);
        c["resource"]["identifier"][0]["value"] = json!(format!("visit-0001/condition-x{i}"));
        // One Condition per code per job: each copy gets its own code.
        c["resource"]["code"]["coding"][0]["code"] = json!(format!("Z{i:02}.0"));
        let mut p = prov.clone();
        p["fullUrl"] = json!(pu);
        p["resource"]["target"][0]["reference"] = json!(cu);
        entries.push(c);
        entries.push(p);
        i += 1;
    }
    b
}

#[test]
fn big_bundle_is_valid() {
    let b = big_bundle();
    assert_eq!(b["entry"].as_array().unwrap().len(), 60);
    assert_valid(&v().validate_bundle(&b));
}

/// `cargo test --lib fhir::validate::tests::speed -- --ignored --nocapture` (add `--release` for
/// the figure that matters).
#[test]
#[ignore]
fn speed() {
    let b = big_bundle();
    let v = v();
    for _ in 0..20 {
        assert!(v.validate_bundle(&b).is_empty());
    }
    let n = 200;
    let t = std::time::Instant::now();
    for _ in 0..n {
        std::hint::black_box(v.validate_bundle(std::hint::black_box(&b)));
    }
    let per = t.elapsed() / n;
    let t = std::time::Instant::now();
    let _ = Validator::bundled().unwrap();
    println!(
        "validate_bundle, 60 resources: {per:?} per bundle; Validator::bundled(): {:?}",
        t.elapsed()
    );
}

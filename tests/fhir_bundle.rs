//! The FHIR Bundle for the sample encounter, built from its reference transcript through the
//! real clinical and note stages (no speech model: these tests are about the mapping).

use std::collections::{BTreeMap, BTreeSet};

use base64::Engine;
use fhirscribe::fhir::{self, EncounterContext, Mapping, ScribeDevice, Validator};
use fhirscribe::healthscribe::NoteTemplate;
use fhirscribe::lab::fhir_bench::{reference_outputs, OutputBytes};
use fhirscribe::note::Templates;
use serde_json::Value;

mod common;

fn sample(job: &str) -> OutputBytes {
    let templates = Templates::builtin().unwrap();
    let text = std::fs::read_to_string(common::repo_path("samples/encounter.ref.tsv")).unwrap();
    let out = reference_outputs(&text, job, NoteTemplate::HistoryAndPhysical, &templates).unwrap();
    OutputBytes::new(out, NoteTemplate::HistoryAndPhysical, &templates)
}

fn device() -> ScribeDevice {
    ScribeDevice {
        version: "0.1.0".into(),
        models: vec![("asr".into(), "ggml-base.bin".into())],
    }
}

fn ctx() -> EncounterContext {
    EncounterContext::new("Patient/p1", "Encounter/e1").unwrap()
}

fn build(mapping: &Mapping, job: &str) -> (Value, fhir::MappingReport) {
    let bytes = sample(job);
    let m = fhir::prepare(
        mapping,
        &Validator::bundled().unwrap(),
        &ctx(),
        &device(),
        &bytes.outputs(job, "2026-11-27T12:00:00.000Z"),
    )
    .unwrap();
    (m.bundle, m.report)
}

fn resources<'a>(b: &'a Value, ty: &str) -> Vec<&'a Value> {
    b["entry"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| &e["resource"])
        .filter(|r| r["resourceType"] == ty)
        .collect()
}

fn b64(s: &Value) -> Vec<u8> {
    base64::engine::general_purpose::STANDARD
        .decode(s.as_str().unwrap())
        .unwrap()
}

fn ai_made(r: &Value) -> bool {
    r["meta"]["security"]
        .as_array()
        .is_some_and(|s| s.iter().any(|c| c["code"] == "AIAST"))
}

#[test]
fn sample_encounter_bundle_has_what_a_clinician_expects() {
    let (b, report) = build(&Mapping::bundled().unwrap(), "sample-job-1");
    let bytes = sample("sample-job-1");
    assert_eq!(b["type"], "transaction");
    assert_eq!(b["identifier"]["value"], "sample-job-1");
    let entries = b["entry"].as_array().unwrap();

    // Every entry is a conditional create with a unique urn:uuid.
    let urls: BTreeSet<&str> = entries
        .iter()
        .map(|e| e["fullUrl"].as_str().unwrap())
        .collect();
    assert_eq!(urls.len(), entries.len());
    for e in entries {
        assert!(e["fullUrl"].as_str().unwrap().starts_with("urn:uuid:"));
        assert_eq!(e["request"]["method"], "POST");
        let ine = e["request"]["ifNoneExist"].as_str().unwrap();
        assert!(
            ine.starts_with("identifier=") || ine.starts_with("_tag="),
            "{ine}"
        );
    }
    // Patient and Encounter are referenced from the context, never created.
    assert!(resources(&b, "Patient").is_empty() && resources(&b, "Encounter").is_empty());
    for ty in ["Condition", "DocumentReference"] {
        for r in resources(&b, ty) {
            assert_eq!(r["subject"]["reference"], "Patient/p1");
        }
    }
    for r in resources(&b, "Condition") {
        assert_eq!(r["encounter"]["reference"], "Encounter/e1");
    }
    for r in resources(&b, "MedicationStatement") {
        assert_eq!(r["context"]["reference"], "Encounter/e1");
    }

    // Exactly one Provenance per AI-made resource, and only those.
    let ai: BTreeSet<&str> = entries
        .iter()
        .filter(|e| ai_made(&e["resource"]))
        .map(|e| e["fullUrl"].as_str().unwrap())
        .collect();
    let provs = resources(&b, "Provenance");
    let targets: Vec<&str> = provs
        .iter()
        .map(|p| p["target"][0]["reference"].as_str().unwrap())
        .collect();
    assert_eq!(targets.iter().copied().collect::<BTreeSet<_>>(), ai);
    assert_eq!(targets.len(), ai.len());
    assert_eq!(report.provenances, ai.len());

    // Evidence: real segment ids with their real times, and each segment of a Condition or
    // MedicationStatement mentions what it supports.
    let conv = &bytes.output.transcript.conversation;
    let by_url: BTreeMap<&str, &Value> = entries
        .iter()
        .map(|e| (e["fullUrl"].as_str().unwrap(), &e["resource"]))
        .collect();
    for p in &provs {
        let target = by_url[p["target"][0]["reference"].as_str().unwrap()];
        for ext in p["entity"][0]["extension"].as_array().into_iter().flatten() {
            let field = |name: &str| {
                ext["extension"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .find(|x| x["url"] == name)
                    .unwrap()
                    .clone()
            };
            let id = field("segmentId")["valueString"]
                .as_str()
                .unwrap()
                .to_string();
            let seg = conv
                .transcript_segments
                .iter()
                .find(|s| s.segment_id == id)
                .expect("evidence names a real segment");
            let begin = field("beginAudioTime")["valueDecimal"].as_f64().unwrap();
            assert!((begin - seg.begin_audio_time).abs() < 0.001);
            let spoken = match target["resourceType"].as_str().unwrap() {
                "Condition" => target["code"]["text"].as_str(),
                "MedicationStatement" => target["medicationCodeableConcept"]["text"].as_str(),
                _ => None,
            };
            if let Some(words) = spoken {
                assert!(
                    seg.content.to_lowercase().contains(&words.to_lowercase()),
                    "evidence segment does not mention `{words}`"
                );
            }
        }
    }

    // Conditions: the diabetes, not the denied symptoms or the family's illnesses.
    let conditions: Vec<(&str, &str)> = resources(&b, "Condition")
        .iter()
        .map(|r| {
            (
                r["code"]["coding"][0]["code"].as_str().unwrap(),
                r["code"]["text"].as_str().unwrap(),
            )
        })
        .collect();
    assert!(
        conditions.iter().any(|(c, _)| c.starts_with("E11")),
        "{conditions:?}"
    );
    for (_, text) in &conditions {
        let t = text.to_lowercase();
        for denied in [
            "chest pain",
            "shortness of breath",
            "heart attack",
            "breast cancer",
        ] {
            assert!(
                !t.contains(denied),
                "`{text}` was denied or is family history"
            );
        }
    }
    assert!(
        report.skipped.get("NEGATION").copied().unwrap_or(0) >= 1,
        "{report:?}"
    );
    assert!(
        report
            .skipped
            .get("PERTAINS_TO_FAMILY")
            .copied()
            .unwrap_or(0)
            >= 1,
        "{report:?}"
    );
    for r in resources(&b, "Condition") {
        assert_eq!(r["verificationStatus"]["coding"][0]["code"], "provisional");
        assert_eq!(
            r["code"]["coding"][0]["system"],
            "http://hl7.org/fhir/sid/icd-10-cm"
        );
    }

    // Medications: current ones active with structured dose; a plan-only drug is intended.
    let med = |rxcui: &str| {
        resources(&b, "MedicationStatement")
            .into_iter()
            .find(|r| r["medicationCodeableConcept"]["coding"][0]["code"] == rxcui)
            .unwrap_or_else(|| panic!("no MedicationStatement for RxCUI {rxcui}"))
    };
    let lisinopril = med("29046");
    assert_eq!(lisinopril["status"], "active");
    let dose = &lisinopril["dosage"][0]["doseAndRate"][0]["doseQuantity"];
    assert_eq!(
        (dose["value"].as_f64(), dose["code"].as_str()),
        (Some(10.0), Some("mg"))
    );
    assert_eq!(med("6809")["status"], "active");
    assert_eq!(
        med("161")["status"],
        "intended",
        "acetaminophen is only planned"
    );

    // The note: H&P LOINC type, preliminary, markdown plus both native files byte for byte.
    let docs = resources(&b, "DocumentReference");
    let note = docs
        .iter()
        .find(|d| d["type"]["coding"][0]["system"] == "http://loinc.org")
        .unwrap();
    assert_eq!(note["type"]["coding"][0]["code"], "34117-2");
    assert_eq!(note["docStatus"], "preliminary");
    assert_eq!(note["category"][0]["coding"][0]["code"], "clinical-note");
    let content = note["content"].as_array().unwrap();
    assert_eq!(content[0]["attachment"]["contentType"], "text/markdown");
    let md = String::from_utf8(b64(&content[0]["attachment"]["data"])).unwrap();
    assert_eq!(md, bytes.markdown);
    assert!(md.contains("## "));
    assert_eq!(
        b64(&content[1]["attachment"]["data"]),
        bytes.transcript_json
    );
    assert_eq!(
        b64(&content[2]["attachment"]["data"]),
        bytes.documentation_json
    );
}

#[test]
fn the_same_job_gives_the_same_bundle_and_another_job_another() {
    let m = Mapping::bundled().unwrap();
    let (a, _) = build(&m, "job-a");
    let (a2, _) = build(&m, "job-a");
    assert_eq!(a, a2);
    let (b, _) = build(&m, "job-b");
    assert_ne!(a["entry"][1]["fullUrl"], b["entry"][1]["fullUrl"]);
    // The Device is shared across jobs (same version and models).
    assert_eq!(a["entry"][0]["request"], b["entry"][0]["request"]);
}

#[test]
fn a_mapping_file_changes_the_output_without_a_rebuild() {
    let mut v: Value = serde_json::from_str(
        &std::fs::read_to_string(common::repo_path("mappings/fhir/mapping.json")).unwrap(),
    )
    .unwrap();
    v["note"]["doc_status"] = "final".into();
    v["note"]["type_by_template"]["HISTORY_AND_PHYSICAL"]["code"] = "11506-3".into();
    v["medications"]["plan_only_status"] = Value::Null;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("mapping.json");
    std::fs::write(&path, v.to_string()).unwrap();
    let (b, _) = build(&Mapping::load(&path).unwrap(), "job-c");
    let note = resources(&b, "DocumentReference")
        .into_iter()
        .find(|d| d["type"]["coding"][0]["system"] == "http://loinc.org")
        .unwrap();
    assert_eq!(note["docStatus"], "final");
    assert_eq!(note["type"]["coding"][0]["code"], "11506-3");
    assert!(resources(&b, "MedicationStatement")
        .iter()
        .all(|r| r["status"] == "active"));
}

#[test]
fn bad_context_is_refused_before_anything_is_built() {
    let bytes = sample("job-d");
    let m = Mapping::bundled().unwrap();
    let v = Validator::bundled().unwrap();
    let e = fhir::prepare(
        &m,
        &v,
        &ctx(),
        &device(),
        &bytes.outputs("job d!", "2026-11-27T12:00:00Z"),
    )
    .unwrap_err();
    assert!(e.to_string().contains("job name"), "{e}");
    assert!(EncounterContext::new("Patient/", "Encounter/1").is_err());
}

#[test]
fn a_mapping_that_breaks_a_profile_yields_no_bundle_and_says_why() {
    let mut v: Value = serde_json::from_str(
        &std::fs::read_to_string(common::repo_path("mappings/fhir/mapping.json")).unwrap(),
    )
    .unwrap();
    // Valid FHIR, but not what our note profile requires (clinical-note category).
    v["note"]["category"]["code"] = "discharge-summary".into();
    let m = Mapping::parse("edited.json", &v.to_string()).unwrap();
    let bytes = sample("job-e");
    let e = fhir::prepare(
        &m,
        &Validator::bundled().unwrap(),
        &ctx(),
        &device(),
        &bytes.outputs("job-e", "2026-11-27T12:00:00.000Z"),
    )
    .unwrap_err();
    let text = e.to_string();
    assert!(text.contains("nothing was sent"), "{text}");
    assert!(text.contains("].resource.category"), "{text}");
    // The message names paths and rules, never the transcript's words.
    assert!(!text.to_lowercase().contains("metformin"), "{text}");
}

#[test]
fn the_cli_refuses_bad_fhir_flags_before_any_work() {
    let out = tempfile::tempdir().unwrap();
    let run = |args: &[&str]| {
        let o = std::process::Command::new(common::bin())
            .arg("transcribe")
            .arg(common::repo_path("samples/encounter.flac"))
            .arg("--out")
            .arg(out.path().join("o"))
            .args(args)
            .output()
            .unwrap();
        assert!(!o.status.success());
        String::from_utf8_lossy(&o.stderr).into_owned()
    };
    assert!(run(&["--patient", "1"]).contains("are for --fhir-bundle"));
    assert!(run(&["--fhir-bundle", "--patient", "1"]).contains("needs --patient and --encounter"));
    assert!(
        run(&["--fhir-bundle", "--patient", "a b", "--encounter", "e"])
            .contains("patient must be a relative reference")
    );
    let bad = out.path().join("bad-mapping.json");
    std::fs::write(&bad, r#"{"canonical_base": "x"}"#).unwrap();
    let e = run(&[
        "--fhir-bundle",
        "--patient",
        "1",
        "--encounter",
        "2",
        "--fhir-mapping",
        bad.to_str().unwrap(),
    ]);
    assert!(e.contains("bad-mapping.json"), "{e}");
    assert!(!out.path().join("o").exists(), "nothing written on error");
}

fn codes(b: &Value, ty: &str) -> Vec<String> {
    let field = if ty == "Condition" {
        "code"
    } else {
        "medicationCodeableConcept"
    };
    resources(b, ty)
        .iter()
        .map(|r| r[field]["coding"][0]["code"].as_str().unwrap().to_string())
        .collect()
}

/// One-channel audio before diarization: every segment is `CLINICIAN_0` with an unknown role,
/// so the clinical stage never sees "Any chest pain?" / "Nope." as a question and its answer.
/// Nothing of it may reach the chart; the note and transcript still go, for review.
#[test]
fn one_channel_outputs_chart_no_condition_or_medication() {
    let templates = Templates::builtin().unwrap();
    let text = std::fs::read_to_string(common::repo_path("samples/encounter.ref.tsv"))
        .unwrap()
        .replace("\tPATIENT\t", "\tCLINICIAN\t");
    let mut out = reference_outputs(
        &text,
        "mono-job",
        NoteTemplate::HistoryAndPhysical,
        &templates,
    )
    .unwrap();
    for s in &mut out.transcript.conversation.transcript_segments {
        s.extensions = Some(fhirscribe::healthscribe::SegmentExtensions {
            participant_role_confidence: Some(0.0),
        });
    }
    let bytes = OutputBytes::new(out, NoteTemplate::HistoryAndPhysical, &templates);
    let m = fhir::prepare(
        &Mapping::bundled().unwrap(),
        &Validator::bundled().unwrap(),
        &ctx(),
        &device(),
        &bytes.outputs("mono-job", "2026-11-27T12:00:00.000Z"),
    )
    .unwrap();
    assert!(
        resources(&m.bundle, "Condition").is_empty(),
        "{:?}",
        m.report
    );
    assert!(resources(&m.bundle, "MedicationStatement").is_empty());
    assert!(
        m.report.skipped[fhir::bundle::SKIP_SPEAKER_UNKNOWN] >= 3,
        "{:?}",
        m.report
    );
    assert_eq!(resources(&m.bundle, "DocumentReference").len(), 2);

    // The rule is the mapping's data: a site that trusts the roles gets the findings.
    let mut v: Value = serde_json::from_str(
        &std::fs::read_to_string(common::repo_path("mappings/fhir/mapping.json")).unwrap(),
    )
    .unwrap();
    v["min_speaker_role_confidence"] = 0.0.into();
    let trusting = Mapping::parse("edited.json", &v.to_string()).unwrap();
    let m = fhir::prepare(
        &trusting,
        &Validator::bundled().unwrap(),
        &ctx(),
        &device(),
        &bytes.outputs("mono-job", "2026-11-27T12:00:00.000Z"),
    )
    .unwrap();
    assert!(!resources(&m.bundle, "MedicationStatement").is_empty());
}

/// The chart gets what a clinician would put there: the visit's reasons and the problems
/// assessed, not every symptom word. The sample's knee pain (reported by the patient) and
/// effusion (an exam finding) stay in the note; diabetes (the visit's reason) and the knee's
/// osteoarthritis (assessed in the plan) are encounter diagnoses.
#[test]
fn the_chart_policy_writes_assessed_problems_not_every_symptom() {
    let (b, report) = build(&Mapping::bundled().unwrap(), "policy-job");
    let conditions = codes(&b, "Condition");
    assert!(
        conditions.iter().any(|c| c.starts_with("E11")),
        "{conditions:?}"
    );
    // Osteoarthritis (M15–M19), assessed in the plan.
    assert!(
        conditions
            .iter()
            .any(|c| ["M15", "M16", "M17", "M18", "M19"]
                .iter()
                .any(|p| c.starts_with(p))),
        "{conditions:?}"
    );
    assert_eq!(conditions.len(), 2, "{conditions:?}");
    for r in resources(&b, "Condition") {
        let text = r["code"]["text"].as_str().unwrap().to_lowercase();
        assert!(
            !text.contains("effusion") && !text.contains("knee pain"),
            "{text}"
        );
        assert_eq!(r["category"][0]["coding"][0]["code"], "encounter-diagnosis");
    }
    let reported = report
        .skipped
        .get("chart policy: reported")
        .copied()
        .unwrap_or(0);
    assert!(reported >= 1, "{report:?}");

    // A site that wants reported symptoms charted gets them as unconfirmed health concerns.
    let mut v: Value = serde_json::from_str(
        &std::fs::read_to_string(common::repo_path("mappings/fhir/mapping.json")).unwrap(),
    )
    .unwrap();
    v["conditions"]["chart_policy"]["reported"]["write"] = true.into();
    let (all, _) = build(
        &Mapping::parse("edited.json", &v.to_string()).unwrap(),
        "policy-job",
    );
    let concerns: Vec<&Value> = resources(&all, "Condition")
        .into_iter()
        .filter(|r| r["category"][0]["coding"][0]["code"] == "health-concern")
        .collect();
    assert!(!concerns.is_empty());
    for r in concerns {
        assert_eq!(r["verificationStatus"]["coding"][0]["code"], "unconfirmed");
    }
}

/// Mentions of one code merge into one resource even when their traits decide differently
/// (here a past-history mention beside a current one, which once made two Conditions).
#[test]
fn one_resource_per_code_per_job_whatever_the_traits() {
    let templates = Templates::builtin().unwrap();
    let text = std::fs::read_to_string(common::repo_path("samples/encounter.ref.tsv")).unwrap();
    let mut out = reference_outputs(
        &text,
        "dup-job",
        NoteTemplate::HistoryAndPhysical,
        &templates,
    )
    .unwrap();
    let conv = &mut out.transcript.conversation;
    let mut extra = Vec::new();
    for ins in &conv.clinical_insights {
        let has_code = ins.extensions.as_ref().is_some_and(|e| !e.codes.is_empty());
        if has_code {
            let mut copy = ins.clone();
            copy.insight_id = format!("{}-again", ins.insight_id);
            let ext = copy.extensions.as_mut().unwrap();
            ext.traits.push(fhirscribe::healthscribe::Trait {
                name: fhirscribe::healthscribe::TraitName::PastHistory,
                score: 0.9,
            });
            extra.push(copy);
        }
    }
    assert!(!extra.is_empty());
    conv.clinical_insights.extend(extra);
    let bytes = OutputBytes::new(out, NoteTemplate::HistoryAndPhysical, &templates);
    let m = fhir::prepare(
        &Mapping::bundled().unwrap(),
        &Validator::bundled().unwrap(),
        &ctx(),
        &device(),
        &bytes.outputs("dup-job", "2026-11-27T12:00:00.000Z"),
    )
    .unwrap();
    for ty in ["Condition", "MedicationStatement"] {
        let c = codes(&m.bundle, ty);
        let unique: BTreeSet<&String> = c.iter().collect();
        assert_eq!(unique.len(), c.len(), "{ty}: {c:?}");
        assert!(!c.is_empty(), "{ty}");
    }
}

/// The validator refuses a Bundle that charts one code twice (what `fhir deliver` relies on).
#[test]
fn a_bundle_with_a_code_twice_is_invalid() {
    let (mut b, _) = build(&Mapping::bundled().unwrap(), "twice-job");
    let entries = b["entry"].as_array_mut().unwrap();
    let i = entries
        .iter()
        .position(|e| e["resource"]["resourceType"] == "Condition")
        .unwrap();
    let mut copy = entries[i].clone();
    copy["fullUrl"] = "urn:uuid:00000000-0000-4000-8000-000000000001".into();
    copy["resource"]["identifier"][0]["value"] = "twice-job/insight/copy".into();
    entries.push(copy);
    let issues = Validator::bundled().unwrap().validate_bundle(&b);
    assert!(
        issues
            .iter()
            .any(|i| i.message.contains("one resource per code per job")),
        "{issues:?}"
    );
}

/// `fhir deliver` validates every Bundle before queueing: an invalid one is refused with the
/// rule it breaks, and nothing is queued or sent (the FHIR base is a closed port).
#[test]
fn fhir_deliver_refuses_an_invalid_bundle_and_queues_nothing() {
    let (good, _) = build(&Mapping::bundled().unwrap(), "deliver-good");
    let (mut bad, _) = build(&Mapping::bundled().unwrap(), "deliver-bad");
    let i = bad["entry"]
        .as_array()
        .unwrap()
        .iter()
        .position(|e| e["resource"]["resourceType"] == "Condition")
        .unwrap();
    bad["entry"][i]["resource"]["clinicalStatus"]["coding"][0]["code"] = "maybe".into();
    let dir = tempfile::tempdir().unwrap();
    let (gp, bp) = (dir.path().join("good.json"), dir.path().join("bad.json"));
    std::fs::write(&gp, good.to_string()).unwrap();
    std::fs::write(&bp, bad.to_string()).unwrap();
    let store = dir.path().join("store");
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_fhirscribe"))
        .args(["fhir", "deliver"])
        .arg(&gp)
        .arg(&bp)
        .arg("--store")
        .arg(&store)
        .args(["--fhir-base", "http://127.0.0.1:9/fhir", "--no-auth"])
        .env_remove("FHIRSCRIBE_SMART_CLIENT_ID")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{stderr}");
    assert!(stderr.contains("bad.json: not queued"), "{stderr}");
    assert!(stderr.contains("failed validation"), "{stderr}");
    assert!(
        !stderr.contains("maybe"),
        "the message names rules, not values: {stderr}"
    );
    let list = std::process::Command::new(env!("CARGO_BIN_EXE_fhirscribe"))
        .args(["fhir", "outbox", "--store"])
        .arg(&store)
        .arg("list")
        .output()
        .unwrap();
    assert!(
        String::from_utf8_lossy(&list.stdout).trim().is_empty(),
        "nothing queued, not even the valid Bundle"
    );
}

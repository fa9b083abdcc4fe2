//! Round trips over `tests/fixtures/healthscribe/` and a read of AWS's own samples.
//!
//! Fixture names: `<shape>[-<label>].json` is written in canonical spelling and must serialise
//! back to itself; `<name>.variants.json` holds the same content in AWS's other spellings and
//! must serialise to `<name>.json`.

use std::collections::{HashMap, HashSet};
use std::fmt::Debug;
use std::fs;
use std::path::{Path, PathBuf};

use serde::de::DeserializeOwned;
use serde::Serialize;
use serde_json::Value;

use super::*;

fn fixture_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/healthscribe")
}

fn read(path: &Path) -> String {
    fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// Numbers compared as f64, so `1` written by AWS equals our `1.0`.
fn normalise(v: Value) -> Value {
    match v {
        Value::Number(n) => serde_json::json!(n.as_f64().expect("finite number")),
        Value::Array(a) => Value::Array(a.into_iter().map(normalise).collect()),
        Value::Object(o) => Value::Object(o.into_iter().map(|(k, v)| (k, normalise(v))).collect()),
        other => other,
    }
}

/// Alias spellings that must never be written.
const NON_CANONICAL: &[&str] = &[
    "\"pronunciation\"",
    "\"punctuation\"",
    "\"VISIT_FLOW_MANAGEMENT\"",
    "\"CHIEF_COMPLIANT\"",
    "\"BH_SOAP\"",
    "\"PH_SOAP\"",
    "\"Extensions\": {}",
];

/// Deserialise → serialise → deserialise; returns what we wrote.
fn round_trip<T>(name: &str, text: &str) -> Value
where
    T: DeserializeOwned + Serialize + PartialEq + Debug,
{
    let first: T = serde_json::from_str(text).unwrap_or_else(|e| panic!("{name}: {e}"));
    let written = serde_json::to_string_pretty(&first).unwrap();
    let second: T = serde_json::from_str(&written).unwrap_or_else(|e| panic!("{name}: {e}"));
    assert_eq!(first, second, "{name}: value changed across a round trip");
    assert_eq!(
        written,
        serde_json::to_string_pretty(&second).unwrap(),
        "{name}: output is not a fixed point"
    );
    for alias in NON_CANONICAL {
        assert!(!written.contains(alias), "{name}: wrote {alias}");
    }
    serde_json::from_str(&written).unwrap()
}

/// Dispatches on the file name's shape prefix; panics on an unknown one so no fixture goes
/// untested.
fn round_trip_any(name: &str, text: &str) -> Value {
    let shape = name.split('.').next().unwrap();
    let is = |prefix: &str| shape == prefix || shape.starts_with(&format!("{prefix}-"));
    if is("transcript") {
        round_trip::<TranscriptFile>(name, text)
    } else if is("clinical-documentation") {
        round_trip::<ClinicalDocumentationFile>(name, text)
    } else if is("start-medical-scribe-job-request") {
        let v = round_trip::<StartMedicalScribeJobRequest>(name, text);
        let req: StartMedicalScribeJobRequest = serde_json::from_value(v.clone()).unwrap();
        req.validate()
            .unwrap_or_else(|e| panic!("{name} should be valid: {e}"));
        v
    } else if is("start-medical-scribe-job-response") {
        round_trip::<StartMedicalScribeJobResponse>(name, text)
    } else if is("get-medical-scribe-job-request") {
        round_trip::<GetMedicalScribeJobRequest>(name, text)
    } else if is("get-medical-scribe-job-response") {
        round_trip::<GetMedicalScribeJobResponse>(name, text)
    } else if is("list-medical-scribe-jobs-request") {
        round_trip::<ListMedicalScribeJobsRequest>(name, text)
    } else if is("list-medical-scribe-jobs-response") {
        round_trip::<ListMedicalScribeJobsResponse>(name, text)
    } else if is("delete-medical-scribe-job-request") {
        round_trip::<DeleteMedicalScribeJobRequest>(name, text)
    } else {
        panic!("{name}: no shape registered for this fixture name")
    }
}

#[test]
fn every_fixture_round_trips_to_its_canonical_form() {
    let mut files: Vec<PathBuf> = fs::read_dir(fixture_dir())
        .expect("fixture directory")
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .collect();
    files.sort();
    assert!(files.len() >= 10, "fixtures missing: {files:?}");

    for path in &files {
        let name = path.file_name().unwrap().to_str().unwrap();
        let written = normalise(round_trip_any(name, &read(path)));
        let canonical_path = match name.strip_suffix(".variants.json") {
            Some(stem) => fixture_dir().join(format!("{stem}.json")),
            None => path.clone(),
        };
        let canonical: Value = normalise(serde_json::from_str(&read(&canonical_path)).unwrap());
        // Also catches fields the types silently dropped (unknown keys are ignored on read).
        assert_eq!(
            written,
            canonical,
            "{name}: output differs from {}",
            canonical_path.display()
        );
    }
}

fn load<T: DeserializeOwned>(name: &str) -> T {
    serde_json::from_str(&read(&fixture_dir().join(name))).unwrap()
}

/// Our fixtures must obey our own span convention and link only to segments that exist.
#[test]
fn fixture_spans_and_evidence_point_into_their_transcripts() {
    for (transcript, documentation) in [
        (
            "transcript-async.json",
            "clinical-documentation-history-and-physical.json",
        ),
        (
            "transcript-streaming.json",
            "clinical-documentation-streaming.json",
        ),
    ] {
        let file: TranscriptFile = load(transcript);
        let segments: HashMap<&str, &str> = file
            .conversation
            .transcript_segments
            .iter()
            .map(|s| (s.segment_id.as_str(), s.content.as_str()))
            .collect();
        let spans = file.conversation.clinical_insights.iter().flat_map(|i| {
            i.spans
                .iter()
                .chain(i.attributes.iter().flat_map(|a| a.spans.iter()))
        });
        for span in spans {
            let content = segments[span.segment_id.as_str()];
            assert_eq!(
                span.slice(content),
                Some(span.content.as_str()),
                "{transcript}: {span:?}"
            );
            let rebuilt = Span::from_char_range(
                &span.segment_id,
                content,
                span.char_range().start,
                span.char_range().end,
            )
            .unwrap();
            assert_eq!(&rebuilt, span);
        }

        let doc: ClinicalDocumentationFile = load(documentation);
        let ids: HashSet<&str> = segments.keys().copied().collect();
        for section in &doc.clinical_documentation.sections {
            for s in &section.summary {
                assert!(!s.evidence_links.is_empty(), "{documentation}: {s:?}");
                for link in &s.evidence_links {
                    assert!(
                        ids.contains(link.segment_id.as_str()),
                        "{documentation}: unknown segment {}",
                        link.segment_id
                    );
                }
            }
        }
    }
}

#[test]
fn fixtures_cover_the_documented_vocabularies() {
    let file: TranscriptFile = load("transcript-async.json");
    let c = &file.conversation;
    assert_eq!(c.job_type, Some(JobType::Async));
    let categories: HashSet<_> = c.clinical_insights.iter().map(|i| i.category).collect();
    assert_eq!(
        categories.len(),
        7,
        "every EntityType category: {categories:?}"
    );
    let sections: HashSet<_> = c
        .transcript_segments
        .iter()
        .map(|s| s.section_details.section_name)
        .collect();
    assert_eq!(sections.len(), 4, "every transcript section: {sections:?}");
    let traits: HashSet<_> = c
        .clinical_insights
        .iter()
        .chain(
            &load::<TranscriptFile>("transcript-streaming.json")
                .conversation
                .clinical_insights,
        )
        .flat_map(|i| {
            i.extensions
                .iter()
                .flat_map(|e| e.traits.iter().map(|t| t.name))
        })
        .collect();
    assert_eq!(traits.len(), 9, "every trait name: {traits:?}");

    let doc: ClinicalDocumentationFile = load("clinical-documentation-history-and-physical.json");
    let names: Vec<_> = doc
        .clinical_documentation
        .sections
        .iter()
        .map(|s| s.section_name.clone())
        .collect();
    assert_eq!(names.len(), 10);
    assert!(names
        .iter()
        .all(|n| !matches!(n, NoteSectionName::Other(_))));
    let streaming: ClinicalDocumentationFile = load("clinical-documentation-streaming.json");
    assert!(streaming
        .clinical_documentation
        .sections
        .iter()
        .any(|s| s.section_name == NoteSectionName::Other("MEDICATION_RECONCILIATION".into())));
}

/// AWS's published output examples must parse and write back unchanged. The reference copies
/// live outside this repository, so the test is skipped where they are absent.
#[test]
fn aws_reference_samples_parse() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/reference/healthscribe");
    if !dir.is_dir() {
        eprintln!(
            "note: {} not found; skipping the AWS sample check",
            dir.display()
        );
        return;
    }
    for (name, is_transcript) in [
        ("aws-docs-async-transcript.json", true),
        ("aws-docs-streaming-transcript.json", true),
        ("aws-docs-async-clinical-documentation.json", false),
        ("aws-docs-streaming-clinical-documentation.json", false),
    ] {
        let text = read(&dir.join(name));
        let written = if is_transcript {
            round_trip::<TranscriptFile>(name, &text)
        } else {
            round_trip::<ClinicalDocumentationFile>(name, &text)
        };
        let original: Value = serde_json::from_str(&text).unwrap();
        assert_eq!(normalise(written), normalise(original), "{name}");
    }
}

//! End to end on the bundled sample encounter (synthetic Piper voices, two channels): real
//! whisper tiny.en, real silero VAD, checked against the reference text and turn timings that
//! were written before rendering (samples/encounter.ref.*).

mod common;

use fhirscribe::audio::{self, AudioLimits};
use fhirscribe::diarize::SpeakerMode;
use fhirscribe::healthscribe::{EntityType, ItemType, TranscriptFile};
use fhirscribe::lab;
use fhirscribe::note;
use fhirscribe::pipeline::ScribeSettings;
use std::collections::HashSet;

fn read(rel: &str) -> String {
    std::fs::read_to_string(common::repo_path(rel)).unwrap()
}

/// WER of the transcript's segments against the sample's reference text.
fn assert_wer_below(t: &TranscriptFile, limit: f64, what: &str) {
    let hyp: Vec<&str> = t
        .conversation
        .transcript_segments
        .iter()
        .map(|s| s.content.as_str())
        .collect();
    let wer = lab::wer::counts(&read("samples/encounter.ref.txt"), &hyp.join("\n")).wer();
    eprintln!("tiny.en WER on the sample ({what}): {:.1}%", 100.0 * wer);
    assert!(wer < limit, "WER {wer} ({what})");
}

fn check_structure(t: &TranscriptFile) {
    let c = &t.conversation;
    let ids: HashSet<_> = c
        .transcript_segments
        .iter()
        .map(|s| &s.segment_id)
        .collect();
    assert_eq!(
        ids.len(),
        c.transcript_segments.len(),
        "segment ids are unique"
    );
    for s in &c.transcript_segments {
        assert!(s.begin_audio_time <= s.end_audio_time, "{s:?}");
        assert!(!s.content.trim().is_empty());
    }
    for pair in c.transcript_segments.windows(2) {
        assert!(
            pair[0].begin_audio_time <= pair[1].begin_audio_time,
            "segments ordered by start"
        );
    }
    let words = c
        .transcript_items
        .iter()
        .filter(|i| i.item_type == ItemType::Pronunciation)
        .count();
    let seg_words: usize = c
        .transcript_segments
        .iter()
        .map(|s| s.content.split_whitespace().count())
        .sum();
    assert_eq!(
        words, seg_words,
        "every word item appears in exactly one segment"
    );
    for i in &c.transcript_items {
        let conf = i.alternatives[0].confidence;
        assert!((0.0..=1.0).contains(&conf));
    }
    // The file round-trips through the AWS-shaped types.
    let json = serde_json::to_string(t).unwrap();
    let back: TranscriptFile = serde_json::from_str(&json).unwrap();
    assert_eq!(&back, t);
}

#[test]
fn sample_encounter_two_channels() {
    let bytes = std::fs::read(common::repo_path("samples/encounter.flac")).unwrap();
    let pcm = audio::decode(&bytes, Some("flac"), &AudioLimits::default()).unwrap();
    assert_eq!(pcm.channels.len(), 2);
    let settings = ScribeSettings::new(
        "sample-encounter",
        SpeakerMode::ChannelIdentification {
            clinician_channel: 0,
        },
    );
    let out = common::engine().scribe(&pcm, &settings, |_| {}).unwrap();
    let t = &out.transcript;
    check_structure(t);

    assert_wer_below(t, 0.20, "two channels");

    // Every segment begins and ends inside one reference turn of the same speaker.
    let r = lab::segments::check(&read("samples/encounter.ref.tsv"), t, 0.25).unwrap();
    eprintln!("{r}");
    assert_eq!(r.inside_one_turn, r.segments, "{r}");
    let roles: HashSet<String> = t
        .conversation
        .transcript_segments
        .iter()
        .map(|s| s.participant_details.participant_role.to_string())
        .collect();
    assert_eq!(
        roles,
        HashSet::from(["CLINICIAN_0".to_string(), "PATIENT_0".to_string()])
    );

    // Clinical stage: sections beyond OTHER, coded medications and conditions.
    let c = &t.conversation;
    let sections: HashSet<_> = c
        .transcript_segments
        .iter()
        .map(|s| s.section_details.section_name)
        .collect();
    assert!(sections.len() >= 3, "{sections:?}");
    assert!(c
        .clinical_insights
        .iter()
        .any(|i| i.category == EntityType::Medication
            && i.extensions
                .as_ref()
                .is_some_and(|e| e.codes.iter().any(|c| c.system.contains("rxnorm")))));
    assert!(c
        .clinical_insights
        .iter()
        .any(|i| i.category == EntityType::MedicalCondition));
    for i in &c.clinical_insights {
        let seg = c
            .transcript_segments
            .iter()
            .find(|s| s.segment_id == i.spans[0].segment_id)
            .unwrap();
        assert_eq!(
            i.spans[0].slice(&seg.content),
            Some(i.spans[0].content.as_str())
        );
    }

    // Note: every sentence links to existing segments and passes the independent checker.
    let doc = &out.documentation.clinical_documentation;
    assert!(doc.sections.len() >= 4, "{doc:?}");
    let ids: HashSet<&str> = c
        .transcript_segments
        .iter()
        .map(|s| s.segment_id.as_str())
        .collect();
    for line in doc.sections.iter().flat_map(|s| &s.summary) {
        assert!(!line.evidence_links.is_empty());
        assert!(line
            .evidence_links
            .iter()
            .all(|l| ids.contains(l.segment_id.as_str())));
    }
    let support = note::support::check_support(doc, c);
    assert_eq!(
        support.supported, support.sentences,
        "{:?}",
        support.failures
    );

    // Same audio, same job: same segment ids (evidence links and FHIR identifiers depend on it).
    let again = common::engine().scribe(&pcm, &settings, |_| {}).unwrap();
    let ids = |t: &TranscriptFile| {
        t.conversation
            .transcript_segments
            .iter()
            .map(|s| s.segment_id.clone())
            .collect::<Vec<_>>()
    };
    assert_eq!(ids(&again.transcript), ids(t));
}

#[test]
fn sample_encounter_mixed_to_one_channel() {
    let bytes = std::fs::read(common::repo_path("samples/encounter.flac")).unwrap();
    let pcm = audio::decode(&bytes, Some("flac"), &AudioLimits::default()).unwrap();
    let settings = ScribeSettings::new("sample-mono", SpeakerMode::Single);
    let out = common::engine().scribe(&pcm, &settings, |_| {}).unwrap();
    check_structure(&out.transcript);
    assert_wer_below(&out.transcript, 0.20, "mixed to one channel");
    let roles: HashSet<String> = out
        .transcript
        .conversation
        .transcript_segments
        .iter()
        .map(|s| s.participant_details.participant_role.to_string())
        .collect();
    assert_eq!(roles.len(), 1, "one stream without diarization");
    // Nobody knows who spoke: every segment says so, and nothing of it reaches the chart (the
    // sample's "Any chest pain?" / "Nope." would otherwise chart chest pain), only the note.
    assert!(out
        .transcript
        .conversation
        .transcript_segments
        .iter()
        .all(|s| s.role_confidence() == 0.0));
    let asr = out.transcript.conversation.extensions.as_ref().unwrap();
    assert_eq!(asr.asr_model.as_deref(), Some("whisper ggml-tiny.en.bin"));
    let templates = note::Templates::builtin().unwrap();
    let bytes = lab::fhir_bench::OutputBytes::new(out, Default::default(), &templates);
    let m = fhirscribe::fhir::prepare(
        &fhirscribe::fhir::Mapping::bundled().unwrap(),
        &fhirscribe::fhir::Validator::bundled().unwrap(),
        &fhirscribe::fhir::EncounterContext::new("Patient/p1", "Encounter/e1").unwrap(),
        &fhirscribe::fhir::ScribeDevice {
            version: "test".into(),
            models: vec![("asr".into(), "whisper ggml-tiny.en.bin".into())],
        },
        &bytes.outputs("sample-mono", "2026-12-03T12:00:00.000Z"),
    )
    .unwrap();
    for e in m.bundle["entry"].as_array().unwrap() {
        let ty = e["resource"]["resourceType"].as_str().unwrap();
        assert!(ty != "Condition" && ty != "MedicationStatement", "{ty}");
    }
    assert!(m.report.skipped[fhirscribe::fhir::bundle::SKIP_SPEAKER_UNKNOWN] > 0);
}

/// The sample's custom vocabulary (drug names tiny.en mishears) through the real models: the
/// transcript gets at least as many of the terms right, invents none, and is no less accurate
/// than without the vocabulary (only near-miss spans may change).
#[test]
fn sample_encounter_with_its_custom_vocabulary() {
    let bytes = std::fs::read(common::repo_path("samples/encounter.flac")).unwrap();
    let pcm = audio::decode(&bytes, Some("flac"), &AudioLimits::default()).unwrap();
    let vocabulary_text = read("samples/encounter.vocabulary.txt");
    let terms = fhirscribe::asr::vocabulary::terms(&vocabulary_text);
    let speakers = SpeakerMode::ChannelIdentification {
        clinician_channel: 0,
    };
    let text = |t: &TranscriptFile| {
        t.conversation
            .transcript_segments
            .iter()
            .map(|s| s.content.as_str())
            .collect::<Vec<_>>()
            .join("\n")
    };
    let reference = read("samples/encounter.ref.txt");
    let plain = common::engine()
        .scribe(&pcm, &ScribeSettings::new("sample-plain", speakers), |_| {})
        .unwrap();
    let settings = ScribeSettings {
        vocabulary: fhirscribe::asr::Vocabulary::parse(&vocabulary_text).unwrap(),
        ..ScribeSettings::new("sample-vocabulary", speakers)
    };
    let with = common::engine().scribe(&pcm, &settings, |_| {}).unwrap();
    check_structure(&with.transcript);
    let (p, w) = (text(&plain.transcript), text(&with.transcript));
    let (tp, tw) = (
        lab::wer::term_counts(&reference, &p, &terms),
        lab::wer::term_counts(&reference, &w, &terms),
    );
    let (wp, ww) = (
        lab::wer::counts(&reference, &p).wer(),
        lab::wer::counts(&reference, &w).wer(),
    );
    eprintln!(
        "tiny.en, sample: terms found {} -> {} of {} (extra {}), WER {:.2}% -> {:.2}%",
        tp.found,
        tw.found,
        tw.in_reference,
        tw.extra,
        100.0 * wp,
        100.0 * ww
    );
    assert!(tw.found > tp.found, "the vocabulary fixed no term");
    assert_eq!(tw.extra, 0, "a term was written where it was not said");
    assert!(ww <= wp, "WER {ww} with the vocabulary vs {wp} without");
    // Every word the vocabulary wrote is a term's word, marked with what was heard.
    let marked: Vec<_> = with
        .transcript
        .conversation
        .transcript_items
        .iter()
        .filter_map(|i| Some((i.alternatives[0].content.as_str(), i.extensions.as_ref()?)))
        .collect();
    assert!(marked.len() >= tw.found - tp.found, "{marked:?}");
    for (word, e) in &marked {
        assert!(
            e.vocabulary_corrected && e.heard_as.is_some(),
            "{word}: {e:?}"
        );
        assert!(
            terms
                .iter()
                .any(|t| t.split_whitespace().any(|p| p.eq_ignore_ascii_case(word))),
            "{word} is no term's word"
        );
    }
    assert!(plain
        .transcript
        .conversation
        .transcript_items
        .iter()
        .all(|i| i.extensions.is_none()));
    assert_eq!(
        with.transcript.conversation.transcript_segments.len(),
        plain.transcript.conversation.transcript_segments.len()
    );
}

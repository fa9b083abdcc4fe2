//! Speaker diarization end to end on the bundled sample encounter mixed to one channel (real
//! whisper tiny.en, segmentation-3.0, WeSpeaker): the note must be the note of the two-channel
//! run: the same History & Physical sections and the same negated findings, which depend on who
//! said "no" (a patient's "no" to "any chest pain?" is a pertinent negative). Models come from
//! `fhirscribe models fetch` (scripts/test.sh); a missing model fails the test.

mod common;

use fhirscribe::audio::{self, AudioLimits, Pcm};
use fhirscribe::diarize::SpeakerMode;
use fhirscribe::healthscribe::{MedicalScribeParticipantRole, TraitName, TranscriptFile};
use fhirscribe::pipeline::{ScribeOutput, ScribeSettings};
use std::collections::BTreeSet;

fn negated(t: &TranscriptFile) -> BTreeSet<String> {
    t.conversation
        .clinical_insights
        .iter()
        .filter(|i| {
            i.extensions
                .as_ref()
                .is_some_and(|e| e.traits.iter().any(|t| t.name == TraitName::Negation))
        })
        .map(|i| i.spans[0].content.to_lowercase())
        .collect()
}

fn sections(o: &ScribeOutput) -> BTreeSet<String> {
    o.documentation
        .clinical_documentation
        .sections
        .iter()
        .filter(|s| !s.summary.is_empty())
        .map(|s| format!("{:?}", s.section_name))
        .collect()
}

/// The sample's custom vocabulary, as the main job (scripts/run-sample.sh) runs it.
fn with_vocabulary(mut s: ScribeSettings) -> ScribeSettings {
    let text =
        std::fs::read_to_string(common::repo_path("samples/encounter.vocabulary.txt")).unwrap();
    s.vocabulary = fhirscribe::asr::Vocabulary::parse(&text).unwrap();
    s
}

#[test]
fn sample_encounter_mono_diarized_gives_the_two_channel_note() {
    let bytes = std::fs::read(common::repo_path("samples/encounter.flac")).unwrap();
    let pcm = audio::decode(&bytes, Some("flac"), &AudioLimits::default()).unwrap();
    assert_eq!(pcm.channels.len(), 2);
    let two = common::engine()
        .scribe(
            &pcm,
            &with_vocabulary(ScribeSettings::new(
                "sample-2ch",
                SpeakerMode::ChannelIdentification {
                    clinician_channel: 0,
                },
            )),
            |_| {},
        )
        .unwrap();
    // A genuinely one-channel recording: the sum of the two speakers' channels, as one
    // microphone in the room would hear them (each voice at its own level; this is how
    // scripts/render_dialogue.py writes its `.mono.flac`).
    let mono = Pcm {
        channels: vec![pcm.channels[0]
            .iter()
            .zip(&pcm.channels[1])
            .map(|(a, b)| a + b)
            .collect()],
    };
    let one = common::engine()
        .scribe(
            &mono,
            &with_vocabulary(ScribeSettings::new(
                "sample-mono",
                SpeakerMode::Diarize { max_speakers: 4 },
            )),
            |_| {},
        )
        .unwrap();
    let c = &one.transcript.conversation;
    // Two speakers found, the clinician and the patient, each sure enough to chart from.
    let roles: BTreeSet<String> = c
        .transcript_segments
        .iter()
        .map(|s| s.participant_details.participant_role.to_string())
        .collect();
    assert_eq!(
        roles,
        BTreeSet::from(["CLINICIAN_0".to_string(), "PATIENT_0".to_string()])
    );
    let info = c
        .extensions
        .as_ref()
        .unwrap()
        .speaker_roles
        .as_ref()
        .unwrap();
    assert_eq!(info.len(), 2, "{info:?}");
    assert!(info.iter().all(|s| !s.unsure), "{info:?}");
    assert!(c
        .transcript_segments
        .iter()
        .all(|s| s.role_confidence() >= 0.8 && s.role_confidence() < 1.0));
    // The patient's words are the patient's: most segments of the two-channel run's patient
    // text appear under PATIENT_0 here.
    let patient_text = |t: &TranscriptFile| {
        t.conversation
            .transcript_segments
            .iter()
            .filter(|s| {
                s.participant_details.participant_role.role == MedicalScribeParticipantRole::Patient
            })
            .map(|s| s.content.to_lowercase())
            .collect::<Vec<_>>()
            .join(" ")
    };
    assert!(patient_text(&one.transcript).contains("nope"));
    assert_eq!(negated(&one.transcript), negated(&two.transcript));
    assert_eq!(sections(&one), sections(&two));
}

#[test]
fn one_voice_cannot_be_given_a_role() {
    // The clinician's channel alone: one speaker, so nobody can say whether it is the clinician
    // or the patient; the role is reported as unknown, never guessed.
    let bytes = std::fs::read(common::repo_path("samples/encounter.flac")).unwrap();
    let pcm = audio::decode(&bytes, Some("flac"), &AudioLimits::default()).unwrap();
    let alone = Pcm {
        channels: vec![pcm.channels[0].clone()],
    };
    let out = common::engine()
        .scribe(
            &alone,
            &ScribeSettings::new("sample-one-voice", SpeakerMode::Diarize { max_speakers: 2 }),
            |_| {},
        )
        .unwrap();
    let c = &out.transcript.conversation;
    let info = c
        .extensions
        .as_ref()
        .unwrap()
        .speaker_roles
        .as_ref()
        .unwrap();
    assert_eq!(info.len(), 1, "{info:?}");
    assert!(info[0].unsure);
    assert!(c
        .transcript_segments
        .iter()
        .all(|s| s.role_confidence() == 0.0));
}

//! Adapter between the clinical stage's plain types and the HealthScribe transcript: runs
//! [`crate::clinical`] over a `Conversation`'s segments and writes back each segment's
//! `SectionDetails` and the `ClinicalInsights` (spans end-inclusive, traits and codes in our
//! `Extensions`).
//!
//! An insight whose span covers a word the custom vocabulary wrote in place of what was heard
//! (a transcript item marked `VocabularyCorrected`) is trusted as little as a word the clinical
//! stage itself corrected fuzzily: scores × [`CORRECTED_SCORE_FACTOR`] and a `LOW_CONFIDENCE`
//! trait, which the FHIR mapping's `LOW_CONFIDENCE` rule acts on.
//!
//! Architecture invariant: the only module that knows both `clinical` and `healthscribe`; it
//! adds nothing of its own except stable ids (UUIDv5 of segment, offsets and type), so the same
//! transcript gives the same `InsightId`s.

use crate::clinical::{self, Role, Section, Turn};
use crate::healthscribe::{
    Attribute, ClinicalInsight, Code, Conversation, EntitySubType, EntityType, InsightExtensions,
    InsightType, ItemType, MedicalScribeParticipantRole, Span, Trait, TraitName,
    TranscriptSectionName,
};
use std::ops::Range;

/// Score factor (and `LOW_CONFIDENCE` trait score) of an insight on a vocabulary-corrected word:
/// the clinical stage's factor for its own fuzzy corrections (`clinical::entities`), so the two
/// kinds of "not heard as written" weigh the same.
pub const CORRECTED_SCORE_FACTOR: f32 = 0.7;
use serde::de::DeserializeOwned;

const NS: uuid::Uuid = uuid::Uuid::from_bytes([
    0x2b, 0x8e, 0x61, 0x0c, 0x94, 0x5a, 0x4f, 0x1e, 0xb7, 0x3d, 0x0a, 0x6c, 0x52, 0xe9, 0x11, 0x7f,
]);

/// Parses one of the clinical stage's Comprehend Medical names into the serde enum that has the
/// same wire name (both sides spell AWS's names, so a mismatch is a bug caught by tests).
fn wire<T: DeserializeOwned>(name: &str) -> Option<T> {
    serde_json::from_value(serde_json::Value::String(name.to_string())).ok()
}

fn round4(x: f32) -> f64 {
    (x as f64 * 10_000.0).round() / 10_000.0
}

/// [`annotate_with`] the shared analyzer (loaded on first use): for tests, docs and the lab.
/// Product code passes the `Engine`'s analyzer.
pub fn annotate(conv: &mut Conversation) {
    annotate_with(clinical::analyzer(), conv)
}

/// Classifies every segment and extracts its insights, replacing any already present.
pub fn annotate_with(analyzer: &clinical::Analyzer, conv: &mut Conversation) {
    let turns: Vec<Turn> = conv
        .transcript_segments
        .iter()
        .map(|s| {
            let role = match s.participant_details.participant_role.role {
                MedicalScribeParticipantRole::Clinician => Role::Clinician,
                MedicalScribeParticipantRole::Patient => Role::Patient,
            };
            Turn::new(s.segment_id.clone(), role, s.content.clone())
        })
        .collect();
    let analyses = analyzer.analyze(&turns);
    let corrected = corrected_ranges(conv);
    let mut insights = Vec::new();
    for ((seg, a), corrected) in conv
        .transcript_segments
        .iter_mut()
        .zip(&analyses)
        .zip(&corrected)
    {
        seg.section_details.section_name = match a.section {
            Section::SUBJECTIVE => TranscriptSectionName::Subjective,
            Section::OBJECTIVE => TranscriptSectionName::Objective,
            Section::ASSESSMENT_AND_PLAN => TranscriptSectionName::AssessmentAndPlan,
            Section::OTHER => TranscriptSectionName::Other,
        };
        for e in &a.entities {
            let (Some(category), Some(entity_type)) = (
                wire::<EntityType>(e.category.as_str()),
                wire::<EntitySubType>(e.entity_type.as_str()),
            ) else {
                tracing::warn!(
                    category = e.category.as_str(),
                    kind = e.entity_type.as_str(),
                    "entity type without a HealthScribe name"
                );
                continue;
            };
            let Ok(span) =
                Span::from_char_range(&seg.segment_id, &seg.content, e.begin_char, e.end_char)
            else {
                continue;
            };
            let key = format!(
                "{}/{}/{}/{}",
                seg.segment_id,
                e.begin_char,
                e.end_char,
                e.entity_type.as_str()
            );
            let insight_id = uuid::Uuid::new_v5(&NS, key.as_bytes()).to_string();
            let attributes = e
                .attributes
                .iter()
                .filter_map(|at| {
                    let t = wire::<EntitySubType>(at.entity_type.as_str())?;
                    let sp = Span::from_char_range(
                        &seg.segment_id,
                        &seg.content,
                        at.begin_char,
                        at.end_char,
                    )
                    .ok()?;
                    let id = uuid::Uuid::new_v5(
                        &NS,
                        format!("{insight_id}/{}/{}", at.begin_char, at.end_char).as_bytes(),
                    );
                    Some(Attribute {
                        attribute_id: id.to_string(),
                        spans: vec![sp],
                        attribute_type: t,
                    })
                })
                .collect();
            let on_corrected = corrected
                .iter()
                .any(|r| r.start < e.end_char && e.begin_char < r.end);
            let factor = if on_corrected {
                CORRECTED_SCORE_FACTOR
            } else {
                1.0
            };
            let mut traits: Vec<Trait> = e
                .traits
                .iter()
                .filter_map(|(t, score)| {
                    Some(Trait {
                        name: wire::<TraitName>(t.as_str())?,
                        score: round4(*score),
                    })
                })
                .collect();
            if on_corrected && !traits.iter().any(|t| t.name == TraitName::LowConfidence) {
                traits.push(Trait {
                    name: TraitName::LowConfidence,
                    score: round4(CORRECTED_SCORE_FACTOR),
                });
            }
            let codes = e
                .codes
                .iter()
                .map(|c| Code {
                    system: c.system.uri().to_string(),
                    code: c.code.clone(),
                    display: Some(c.display.clone()).filter(|d| !d.is_empty()),
                    score: Some(round4(c.score * factor)),
                })
                .collect();
            let ext = InsightExtensions {
                traits,
                codes,
                score: Some(round4(e.score * factor)),
            };
            insights.push(ClinicalInsight {
                attributes,
                category,
                insight_id,
                insight_type: InsightType::ClinicalEntity,
                spans: vec![span],
                entity_type,
                extensions: Some(ext),
            });
        }
    }
    conv.clinical_insights = insights;
}

/// Per segment, the char ranges of its `Content` that are words a custom vocabulary corrected.
/// Items follow segment order and spell each segment's content (words joined by spaces,
/// punctuation attached), so walking both finds each item's place. If they fall out of step
/// (a transcript edited by hand), a corrected word is looked up by time and text instead, every
/// occurrence in its segment counting: lowering too many scores is the safe side.
fn corrected_ranges(conv: &Conversation) -> Vec<Vec<Range<usize>>> {
    let segs = &conv.transcript_segments;
    let mut out = vec![Vec::new(); segs.len()];
    let is_corrected = |i: &crate::healthscribe::TranscriptItem| {
        i.extensions
            .as_ref()
            .is_some_and(|x| x.vocabulary_corrected)
    };
    if !conv.transcript_items.iter().any(is_corrected) {
        return out;
    }
    let word = |i: &crate::healthscribe::TranscriptItem| -> Vec<char> {
        i.alternatives
            .first()
            .map_or_else(Vec::new, |a| a.content.chars().collect())
    };
    let mut items = conv.transcript_items.iter();
    let mut in_step = true;
    'segs: for (si, seg) in segs.iter().enumerate() {
        let content: Vec<char> = seg.content.chars().collect();
        let mut pos = 0;
        while pos < content.len() {
            let Some(item) = items.next() else {
                in_step = false;
                break 'segs;
            };
            if item.item_type == ItemType::Pronunciation && pos > 0 && content[pos] == ' ' {
                pos += 1;
            }
            let w = word(item);
            if w.is_empty() || !content[pos..].starts_with(&w) {
                in_step = false;
                break 'segs;
            }
            if is_corrected(item) {
                out[si].push(pos..pos + w.len());
            }
            pos += w.len();
        }
    }
    if in_step {
        return out;
    }
    tracing::warn!("transcript items do not spell the segments; corrected words found by time");
    let mut out = vec![Vec::new(); segs.len()];
    for item in conv.transcript_items.iter().filter(|i| is_corrected(i)) {
        let w = word(item);
        for (si, seg) in segs.iter().enumerate() {
            if item.begin_audio_time < seg.begin_audio_time - 0.001
                || item.end_audio_time > seg.end_audio_time + 0.001
            {
                continue;
            }
            let content: Vec<char> = seg.content.chars().collect();
            for at in 0..content.len() {
                if !w.is_empty() && content[at..].starts_with(&w) {
                    out[si].push(at..at + w.len());
                }
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::healthscribe::{
        ParticipantDetails, ParticipantRole, SectionDetails, TranscriptSegment,
    };

    fn seg(id: &str, role: ParticipantRole, text: &str) -> TranscriptSegment {
        TranscriptSegment {
            begin_audio_time: 0.0,
            content: text.into(),
            end_audio_time: 1.0,
            participant_details: ParticipantDetails {
                participant_role: role,
            },
            section_details: SectionDetails {
                section_name: TranscriptSectionName::Other,
            },
            segment_id: id.into(),
            extensions: None,
        }
    }

    #[test]
    fn maps_entities_traits_codes_and_spans() {
        let mut conv = crate::transcript::build_conversation("c", None, &[]);
        conv.transcript_segments = vec![
            seg("s1", ParticipantRole::clinician(0), "Any chest pain?"),
            seg("s2", ParticipantRole::patient(0), "No."),
            seg(
                "s3",
                ParticipantRole::clinician(0),
                "Let's increase the lisinopril to 20 milligrams once a day.",
            ),
        ];
        annotate(&mut conv);
        let pain = conv
            .clinical_insights
            .iter()
            .find(|i| i.spans[0].content == "chest pain")
            .expect("chest pain found");
        assert_eq!(pain.category, EntityType::MedicalCondition);
        let span = &pain.spans[0];
        assert_eq!(
            span.slice(&conv.transcript_segments[0].content),
            Some("chest pain")
        );
        let ext = pain.extensions.as_ref().unwrap();
        assert!(
            ext.traits.iter().any(|t| t.name == TraitName::Negation),
            "{ext:?}"
        );
        let med = conv
            .clinical_insights
            .iter()
            .find(|i| i.category == EntityType::Medication)
            .expect("medication");
        assert!(med
            .extensions
            .as_ref()
            .unwrap()
            .codes
            .iter()
            .any(|c| c.system.contains("rxnorm")));
        assert!(!med.attributes.is_empty(), "dose/frequency attributes");
        // Stable ids.
        let ids: Vec<_> = conv
            .clinical_insights
            .iter()
            .map(|i| i.insight_id.clone())
            .collect();
        annotate(&mut conv);
        assert_eq!(
            ids,
            conv.clinical_insights
                .iter()
                .map(|i| i.insight_id.clone())
                .collect::<Vec<_>>()
        );
    }

    /// "Let's start lisinopril 10 milligrams daily." with `lisinopril` as heard or as written by
    /// the custom vocabulary in place of "listen up, roll".
    fn transcript(corrected: bool) -> Conversation {
        let words = "Let's start lisinopril 10 milligrams daily .";
        let words = words
            .split(' ')
            .enumerate()
            .map(|(i, t)| crate::asr::Word {
                kind: if t == "." {
                    crate::asr::ItemKind::Punctuation
                } else {
                    crate::asr::ItemKind::Pronunciation
                },
                text: t.into(),
                start: i as f64 * 0.5,
                end: i as f64 * 0.5 + 0.4,
                confidence: 0.9,
                region: 0,
                utterance: (0.0, 5.0),
                heard_as: (corrected && t == "lisinopril").then(|| "listen up, roll".into()),
            })
            .collect();
        let speaker = crate::transcript::SpeakerWords {
            role: ParticipantRole::clinician(0),
            words,
        };
        crate::transcript::build_conversation("c", None, &[speaker])
    }

    #[test]
    fn a_corrected_word_is_marked_and_its_insights_trusted_less() {
        let mut conv = transcript(true);
        let items = serde_json::to_value(&conv.transcript_items).unwrap();
        assert_eq!(
            items[2]["Extensions"],
            serde_json::json!({"VocabularyCorrected": true, "HeardAs": "listen up, roll"})
        );
        let marked = items
            .as_array()
            .unwrap()
            .iter()
            .filter(|i| i.get("Extensions").is_some())
            .count();
        assert_eq!(marked, 1);

        let med = |conv: &Conversation| {
            conv.clinical_insights
                .iter()
                .find(|i| i.category == EntityType::Medication)
                .and_then(|i| i.extensions.clone())
                .expect("lisinopril found")
        };
        annotate(&mut conv);
        let mut heard = transcript(false);
        annotate(&mut heard);
        let (on_corrected, as_heard) = (med(&conv), med(&heard));
        assert!(
            on_corrected
                .traits
                .iter()
                .any(|t| t.name == TraitName::LowConfidence),
            "{on_corrected:?}"
        );
        assert!(!as_heard
            .traits
            .iter()
            .any(|t| t.name == TraitName::LowConfidence));
        assert!(
            on_corrected.score < as_heard.score,
            "{on_corrected:?} {as_heard:?}"
        );
        assert!(on_corrected.codes[0].score < as_heard.codes[0].score);
        // Insights on words as heard keep their scores.
        let dose = |c: &Conversation| {
            c.clinical_insights
                .iter()
                .filter(|i| i.category != EntityType::Medication)
                .map(|i| i.extensions.clone())
                .collect::<Vec<_>>()
        };
        assert_eq!(dose(&conv), dose(&heard));
    }

    #[test]
    fn corrected_words_are_found_by_time_when_items_do_not_spell_segments() {
        let mut conv = transcript(true);
        conv.transcript_segments[0].content =
            "Let's start the lisinopril 10 milligrams daily.".into();
        assert_eq!(corrected_ranges(&conv), vec![vec![16..26]]);
    }
}

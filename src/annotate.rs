//! Adapter between the clinical stage's plain types and the HealthScribe transcript: runs
//! [`crate::clinical`] over a `Conversation`'s segments and writes back each segment's
//! `SectionDetails` and the `ClinicalInsights` (spans end-inclusive, traits and codes in our
//! `Extensions`).
//!
//! Architecture invariant: the only module that knows both `clinical` and `healthscribe`; it
//! adds nothing of its own except stable ids (UUIDv5 of segment, offsets and type), so the same
//! transcript gives the same `InsightId`s.

use crate::clinical::{self, Role, Section, Turn};
use crate::healthscribe::{
    Attribute, ClinicalInsight, Code, Conversation, EntitySubType, EntityType, InsightExtensions,
    InsightType, MedicalScribeParticipantRole, Span, Trait, TraitName, TranscriptSectionName,
};
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

/// Classifies every segment and extracts its insights, replacing any already present.
pub fn annotate(conv: &mut Conversation) {
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
    let analyses = clinical::analyze(&turns);
    let mut insights = Vec::new();
    for (seg, a) in conv.transcript_segments.iter_mut().zip(&analyses) {
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
            let traits = e
                .traits
                .iter()
                .filter_map(|(t, score)| {
                    Some(Trait {
                        name: wire::<TraitName>(t.as_str())?,
                        score: round4(*score),
                    })
                })
                .collect();
            let codes = e
                .codes
                .iter()
                .map(|c| Code {
                    system: c.system.uri().to_string(),
                    code: c.code.clone(),
                    display: Some(c.display.clone()).filter(|d| !d.is_empty()),
                    score: Some(round4(c.score)),
                })
                .collect();
            let ext = InsightExtensions {
                traits,
                codes,
                score: Some(round4(e.score)),
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
}

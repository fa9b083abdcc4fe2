//! Builds the hand-labelled sample encounter (tests/fixtures/note/encounter.annotations.json)
//! into a HealthScribe `Conversation` with insights whose spans are located in the text.

#![allow(dead_code)]

use fhirscribe::healthscribe::{
    Attribute, ClinicalInsight, Code, Conversation, EntitySubType, EntityType, InsightExtensions,
    InsightType, MedicalScribeLanguageCode, ParticipantDetails, ParticipantRole, SectionDetails,
    Span, Trait, TraitName, TranscriptSectionName, TranscriptSegment,
};
use serde::Deserialize;
use serde_json::Value;

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct Fixture {
    turns: Vec<Turn>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct Turn {
    turn: usize,
    role: ParticipantRole,
    section: TranscriptSectionName,
    content: String,
    entities: Vec<Entity>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct Entity {
    text: String,
    category: EntityType,
    #[serde(rename = "Type")]
    entity_type: EntitySubType,
    #[serde(default)]
    traits: Vec<TraitName>,
    #[serde(default)]
    attributes: Vec<Value>,
    #[serde(default)]
    codes: Vec<Code>,
}

fn span(seg: &str, content: &str, text: &str) -> Span {
    let b = content
        .find(text)
        .unwrap_or_else(|| panic!("`{text}` not in `{content}`"));
    let begin = content[..b].chars().count();
    Span::from_char_range(seg, content, begin, begin + text.chars().count()).unwrap()
}

pub fn fixture(path: &str) -> Conversation {
    let text = std::fs::read_to_string(std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(path))
        .unwrap();
    let f: Fixture = serde_json::from_str(&text).unwrap();
    let mut insights = Vec::new();
    let mut segments = Vec::new();
    for t in f.turns {
        let id = format!("seg-{}", t.turn);
        for (k, e) in t.entities.iter().enumerate() {
            let attributes = e
                .attributes
                .iter()
                .enumerate()
                .map(|(j, a)| Attribute {
                    attribute_id: format!("{id}-e{k}-a{j}"),
                    spans: vec![span(&id, &t.content, a["Text"].as_str().unwrap())],
                    attribute_type: serde_json::from_value(a["Type"].clone()).unwrap(),
                })
                .collect();
            insights.push(ClinicalInsight {
                attributes,
                category: e.category,
                insight_id: format!("{id}-e{k}"),
                insight_type: InsightType::ClinicalEntity,
                spans: vec![span(&id, &t.content, &e.text)],
                entity_type: e.entity_type,
                extensions: Some(InsightExtensions {
                    traits: e
                        .traits
                        .iter()
                        .map(|&name| Trait { name, score: 0.9 })
                        .collect(),
                    codes: e.codes.clone(),
                    score: Some(0.9),
                }),
            });
        }
        segments.push(TranscriptSegment {
            begin_audio_time: 0.0,
            content: t.content,
            end_audio_time: 0.0,
            participant_details: ParticipantDetails {
                participant_role: t.role,
            },
            section_details: SectionDetails {
                section_name: t.section,
            },
            segment_id: id,
            extensions: None,
        });
    }
    Conversation {
        conversation_id: "sample-encounter".into(),
        job_name: None,
        job_type: None,
        language_code: MedicalScribeLanguageCode::EnUs,
        session_id: None,
        clinical_insights: insights,
        transcript_items: vec![],
        transcript_segments: segments,
        extensions: None,
    }
}

pub fn encounter() -> Conversation {
    fixture("tests/fixtures/note/encounter.annotations.json")
}

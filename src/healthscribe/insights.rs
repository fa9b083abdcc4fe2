//! `ClinicalInsights`: clinical entities with spans into transcript segments, in Amazon
//! Comprehend Medical's vocabulary, plus our optional `Extensions`.

use std::ops::Range;

use serde::{Deserialize, Deserializer, Serialize};

/// Field order follows AWS's samples (alphabetical), then our extension.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ClinicalInsight {
    #[serde(default)]
    pub attributes: Vec<Attribute>,
    pub category: EntityType,
    pub insight_id: String,
    pub insight_type: InsightType,
    pub spans: Vec<Span>,
    #[serde(rename = "Type")]
    pub entity_type: EntitySubType,
    /// Ours, not AWS's; omitted when empty so the file stays AWS-identical.
    #[serde(
        default,
        skip_serializing_if = "InsightExtensions::is_absent",
        deserialize_with = "InsightExtensions::deserialize_non_empty"
    )]
    pub extensions: Option<InsightExtensions>,
}

/// HealthScribe documents only clinical entities.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum InsightType {
    ClinicalEntity,
}

/// A modifier of an insight (dosage, test value, …) with its own spans.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Attribute {
    pub attribute_id: String,
    pub spans: Vec<Span>,
    #[serde(rename = "Type")]
    pub attribute_type: EntitySubType,
}

/// Text located in one transcript segment.
///
/// Offsets count `char`s into the segment's `Content` and the end is inclusive, as in AWS's
/// samples; use [`Span::from_char_range`] and [`Span::char_range`] rather than the raw fields.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Span {
    pub begin_character_offset: usize,
    pub content: String,
    pub end_character_offset: usize,
    pub segment_id: String,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SpanError {
    #[error("span {begin}..{end} is empty; an end-inclusive span covers at least one character")]
    Empty { begin: usize, end: usize },
    #[error("span {begin}..{end} runs past the segment content ({len} characters)")]
    OutOfBounds {
        begin: usize,
        end: usize,
        len: usize,
    },
}

impl Span {
    /// Builds the span for the half-open char range `begin_char..end_char_exclusive` of the
    /// segment `content`, copying the covered text into `Content`.
    pub fn from_char_range(
        segment_id: impl Into<String>,
        content: &str,
        begin_char: usize,
        end_char_exclusive: usize,
    ) -> Result<Self, SpanError> {
        let (begin, end) = (begin_char, end_char_exclusive);
        if begin >= end {
            return Err(SpanError::Empty { begin, end });
        }
        let len = content.chars().count();
        if end > len {
            return Err(SpanError::OutOfBounds { begin, end, len });
        }
        Ok(Self {
            begin_character_offset: begin,
            content: content.chars().skip(begin).take(end - begin).collect(),
            end_character_offset: end - 1,
            segment_id: segment_id.into(),
        })
    }

    /// The half-open char range this span covers.
    pub fn char_range(&self) -> Range<usize> {
        self.begin_character_offset..self.end_character_offset.saturating_add(1)
    }

    /// The covered text of `segment_content`, or `None` when the offsets do not fit it.
    pub fn slice<'a>(&self, segment_content: &'a str) -> Option<&'a str> {
        let Range { start, end } = self.char_range();
        if start >= end {
            return None;
        }
        let byte_at = |n: usize| {
            segment_content
                .char_indices()
                .map(|(i, _)| i)
                .chain(std::iter::once(segment_content.len()))
                .nth(n)
        };
        Some(&segment_content[byte_at(start)?..byte_at(end)?])
    }
}

/// Comprehend Medical's `EntityType`, used as an insight's `Category`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum EntityType {
    MedicalCondition,
    Medication,
    TestTreatmentProcedure,
    Anatomy,
    TimeExpression,
    BehavioralEnvironmentalSocial,
    ProtectedHealthInformation,
}

/// Comprehend Medical's `EntitySubType`, used as an insight's and an attribute's `Type`.
/// Both `TEST_UNITS` and `TEST_UNIT` are Comprehend values, so both are kept.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum EntitySubType {
    Name,
    DxName,
    Dosage,
    RouteOrMode,
    Form,
    Frequency,
    Duration,
    GenericName,
    BrandName,
    Strength,
    Rate,
    Acuity,
    TestName,
    TestValue,
    TestUnits,
    TestUnit,
    ProcedureName,
    TreatmentName,
    Date,
    Age,
    ContactPoint,
    PhoneOrFax,
    Email,
    Identifier,
    Id,
    Url,
    Address,
    Profession,
    SystemOrganSite,
    Direction,
    Quality,
    Quantity,
    TimeExpression,
    TimeToMedicationName,
    TimeToDxName,
    TimeToTestName,
    TimeToProcedureName,
    TimeToTreatmentName,
    Amount,
    Gender,
    RaceEthnicity,
    Allergies,
    TobaccoUse,
    AlcoholConsumption,
    RecDrugUse,
}

/// Comprehend Medical's trait names (its `AttributeName` enum).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum TraitName {
    Sign,
    Symptom,
    Diagnosis,
    Negation,
    PertainsToFamily,
    Hypothetical,
    LowConfidence,
    PastHistory,
    Future,
}

/// Our `"Extensions"` object; see the module docs.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct InsightExtensions {
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub traits: Vec<Trait>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub codes: Vec<Code>,
    /// Confidence in the entity itself.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub score: Option<f64>,
}

impl InsightExtensions {
    pub fn is_empty(&self) -> bool {
        self.traits.is_empty() && self.codes.is_empty() && self.score.is_none()
    }

    fn is_absent(ext: &Option<Self>) -> bool {
        ext.as_ref().is_none_or(Self::is_empty)
    }

    /// `{}` reads as `None`, so what we read equals what we would write.
    fn deserialize_non_empty<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Self>, D::Error> {
        Ok(Option::<Self>::deserialize(d)?.filter(|e| !e.is_empty()))
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Trait {
    pub name: TraitName,
    pub score: f64,
}

/// A terminology code (ICD-10-CM, RxNorm, SNOMED CT, …) identified by its FHIR system URI.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Code {
    pub system: String,
    pub code: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub display: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub score: Option<f64>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn pain_matches_aws_sample_offsets() {
        let content = "Sharp chest pain since Tuesday.";
        let span = Span::from_char_range("seg-1", content, 12, 16).unwrap();
        assert_eq!(span.content, "pain");
        assert_eq!(
            (span.begin_character_offset, span.end_character_offset),
            (12, 15)
        );
        assert_eq!(span.char_range(), 12..16);
        assert_eq!(span.slice(content), Some("pain"));
        assert_eq!(
            serde_json::to_value(&span).unwrap(),
            json!({"BeginCharacterOffset": 12, "Content": "pain",
                   "EndCharacterOffset": 15, "SegmentId": "seg-1"})
        );
    }

    #[test]
    fn offsets_count_chars_not_bytes() {
        // "é" is 2 bytes, "😣" is 4 bytes and 2 UTF-16 units; each is one char.
        let content = "Douleur à l'épaule 😣 depuis lundi";
        let begin = content.chars().position(|c| c == 'é').unwrap();
        assert_eq!(begin, 12);
        let span = Span::from_char_range("s", content, begin, begin + 6).unwrap();
        assert_eq!(span.content, "épaule");
        assert_eq!(
            (span.begin_character_offset, span.end_character_offset),
            (12, 17)
        );
        assert_eq!(span.slice(content), Some("épaule"));

        let after_emoji = content.find("depuis").unwrap();
        let begin = content[..after_emoji].chars().count();
        assert_eq!(begin, 21);
        assert_ne!(begin, after_emoji);
        let span = Span::from_char_range("s", content, begin, begin + 6).unwrap();
        assert_eq!(span.content, "depuis");
        assert_eq!(span.char_range(), 21..27);
        assert_eq!(span.slice(content), Some("depuis"));

        let emoji = Span::from_char_range("s", content, 19, 20).unwrap();
        assert_eq!(emoji.content, "😣");
        assert_eq!(emoji.slice(content), Some("😣"));
    }

    #[test]
    fn one_character_span_has_equal_offsets() {
        let content = "Pain 7/10";
        let span = Span::from_char_range("s", content, 5, 6).unwrap();
        assert_eq!(span.content, "7");
        assert_eq!(span.begin_character_offset, 5);
        assert_eq!(span.end_character_offset, 5);
        assert_eq!(span.char_range(), 5..6);
        assert_eq!(span.slice(content), Some("7"));
        let last = Span::from_char_range("s", content, 8, 9).unwrap();
        assert_eq!(last.slice(content), Some("0"));
    }

    #[test]
    fn bad_ranges_are_rejected() {
        assert_eq!(
            Span::from_char_range("s", "abc", 2, 2),
            Err(SpanError::Empty { begin: 2, end: 2 })
        );
        assert_eq!(
            Span::from_char_range("s", "abc", 2, 1),
            Err(SpanError::Empty { begin: 2, end: 1 })
        );
        let err = Span::from_char_range("s", "é", 0, 2).unwrap_err();
        assert_eq!(
            err,
            SpanError::OutOfBounds {
                begin: 0,
                end: 2,
                len: 1
            }
        );
        assert!(err.to_string().contains("1 characters"));
        let span = Span::from_char_range("s", "abcdef", 3, 6).unwrap();
        assert_eq!(span.slice("abc"), None);
    }

    fn insight(extensions: Option<InsightExtensions>) -> ClinicalInsight {
        ClinicalInsight {
            attributes: vec![],
            category: EntityType::MedicalCondition,
            insight_id: "i1".into(),
            insight_type: InsightType::ClinicalEntity,
            spans: vec![Span::from_char_range("s1", "no fever", 3, 8).unwrap()],
            entity_type: EntitySubType::DxName,
            extensions,
        }
    }

    #[test]
    fn extensions_are_omitted_when_absent_or_empty() {
        for ext in [None, Some(InsightExtensions::default())] {
            let v = serde_json::to_value(insight(ext)).unwrap();
            assert!(v.get("Extensions").is_none(), "{v}");
        }
        let read: ClinicalInsight = serde_json::from_value(json!({
            "Attributes": [], "Category": "MEDICAL_CONDITION", "InsightId": "i1",
            "InsightType": "ClinicalEntity", "Spans": [], "Type": "DX_NAME", "Extensions": {}
        }))
        .unwrap();
        assert_eq!(read.extensions, None);
    }

    #[test]
    fn extensions_are_written_in_our_shape() {
        let ext = InsightExtensions {
            traits: vec![Trait {
                name: TraitName::Negation,
                score: 0.9,
            }],
            codes: vec![Code {
                system: "http://hl7.org/fhir/sid/icd-10-cm".into(),
                code: "R50.9".into(),
                display: Some("Fever, unspecified".into()),
                score: Some(0.8),
            }],
            score: Some(0.95),
        };
        let v = serde_json::to_value(insight(Some(ext.clone()))).unwrap();
        assert_eq!(
            v["Extensions"],
            json!({
                "Traits": [{"Name": "NEGATION", "Score": 0.9}],
                "Codes": [{"System": "http://hl7.org/fhir/sid/icd-10-cm", "Code": "R50.9",
                           "Display": "Fever, unspecified", "Score": 0.8}],
                "Score": 0.95
            })
        );
        let back: ClinicalInsight = serde_json::from_value(v).unwrap();
        assert_eq!(back.extensions, Some(ext));
    }

    #[test]
    fn comprehend_names_are_exact() {
        for (t, s) in [
            (EntitySubType::DxName, "DX_NAME"),
            (EntitySubType::RouteOrMode, "ROUTE_OR_MODE"),
            (EntitySubType::TestUnits, "TEST_UNITS"),
            (EntitySubType::TestUnit, "TEST_UNIT"),
            (EntitySubType::Id, "ID"),
            (EntitySubType::Url, "URL"),
            (EntitySubType::PhoneOrFax, "PHONE_OR_FAX"),
            (EntitySubType::TimeToDxName, "TIME_TO_DX_NAME"),
            (EntitySubType::RecDrugUse, "REC_DRUG_USE"),
        ] {
            assert_eq!(serde_json::to_value(t).unwrap(), json!(s));
        }
        assert_eq!(
            serde_json::to_value(EntityType::BehavioralEnvironmentalSocial).unwrap(),
            json!("BEHAVIORAL_ENVIRONMENTAL_SOCIAL")
        );
        assert_eq!(
            serde_json::to_value(TraitName::PertainsToFamily).unwrap(),
            json!("PERTAINS_TO_FAMILY")
        );
        assert_eq!(
            serde_json::to_value(InsightType::ClinicalEntity).unwrap(),
            json!("ClinicalEntity")
        );
    }

    #[test]
    fn unknown_entity_values_are_rejected() {
        let err = serde_json::from_value::<EntityType>(json!("DISEASE")).unwrap_err();
        assert!(
            err.to_string().contains("unknown variant `DISEASE`"),
            "{err}"
        );
        assert!(err.to_string().contains("MEDICAL_CONDITION"), "{err}");
        let err = serde_json::from_value::<EntitySubType>(json!("dx_name")).unwrap_err();
        assert!(
            err.to_string().contains("unknown variant `dx_name`"),
            "{err}"
        );
        let err = serde_json::from_value::<TraitName>(json!("NEGATED")).unwrap_err();
        assert!(
            err.to_string().contains("unknown variant `NEGATED`"),
            "{err}"
        );
        let err = serde_json::from_value::<InsightType>(json!("ClinicalPhrase")).unwrap_err();
        assert!(
            err.to_string().contains("unknown variant `ClinicalPhrase`"),
            "{err}"
        );
    }
}

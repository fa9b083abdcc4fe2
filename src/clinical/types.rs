//! Plain stage types for the clinical stage: typed input (speaker turns) in, typed output
//! (section + entities with traits, attributes and codes) out. The `healthscribe` module maps
//! these to `TranscriptSegment.SectionDetails` and `ClinicalInsight`.
//!
//! **Offset convention**: every `begin_char` / `end_char` is a count of Unicode scalar values
//! (Rust `char`s) from the start of the turn's `text`, `begin_char` inclusive and `end_char`
//! exclusive, so `text.chars().skip(begin).take(end - begin)` is the entity text. (AWS's own sample
//! looks end-inclusive; the mapping layer converts if it chooses to emit that.)

use serde::{Deserialize, Serialize};

/// Who spoke a turn.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Role {
    Clinician,
    Patient,
    Unknown,
}

impl Role {
    /// Parses MTS-Dialog / ACI-BENCH / HealthScribe speaker labels (`Doctor`, `Patient`,
    /// `Guest_family`, `CLINICIAN_0`, `[patient]`...).
    pub fn from_label(label: &str) -> Role {
        let l = label
            .trim()
            .trim_matches(|c| c == '[' || c == ']')
            .to_ascii_lowercase();
        if l.starts_with("doctor") || l.starts_with("clinician") || l.contains("clinic") {
            Role::Clinician
        } else if l.starts_with("patient") || l.contains("family") {
            Role::Patient
        } else {
            Role::Unknown
        }
    }
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Clinician => "CLINICIAN",
            Role::Patient => "PATIENT",
            Role::Unknown => "UNKNOWN",
        }
    }
}

/// One speaker turn (a HealthScribe `TranscriptSegment`'s content and role).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Turn {
    pub segment_id: String,
    pub role: Role,
    pub text: String,
}

impl Turn {
    pub fn new(segment_id: impl Into<String>, role: Role, text: impl Into<String>) -> Turn {
        Turn {
            segment_id: segment_id.into(),
            role,
            text: text.into(),
        }
    }
}

/// HealthScribe `SectionDetails.SectionName` values produced by this stage.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, PartialOrd, Ord)]
#[allow(non_camel_case_types)]
pub enum Section {
    SUBJECTIVE,
    OBJECTIVE,
    ASSESSMENT_AND_PLAN,
    OTHER,
}

impl Section {
    pub const ALL: [Section; 4] = [
        Section::SUBJECTIVE,
        Section::OBJECTIVE,
        Section::ASSESSMENT_AND_PLAN,
        Section::OTHER,
    ];
    pub fn as_str(self) -> &'static str {
        match self {
            Section::SUBJECTIVE => "SUBJECTIVE",
            Section::OBJECTIVE => "OBJECTIVE",
            Section::ASSESSMENT_AND_PLAN => "ASSESSMENT_AND_PLAN",
            Section::OTHER => "OTHER",
        }
    }
    pub fn parse(s: &str) -> Option<Section> {
        Section::ALL.into_iter().find(|x| x.as_str() == s)
    }
}

/// Comprehend Medical entity categories (`EntityType` in its API).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, PartialOrd, Ord)]
#[allow(non_camel_case_types)]
pub enum Category {
    MEDICAL_CONDITION,
    MEDICATION,
    TEST_TREATMENT_PROCEDURE,
    ANATOMY,
    TIME_EXPRESSION,
    BEHAVIORAL_ENVIRONMENTAL_SOCIAL,
}

impl Category {
    pub fn as_str(self) -> &'static str {
        match self {
            Category::MEDICAL_CONDITION => "MEDICAL_CONDITION",
            Category::MEDICATION => "MEDICATION",
            Category::TEST_TREATMENT_PROCEDURE => "TEST_TREATMENT_PROCEDURE",
            Category::ANATOMY => "ANATOMY",
            Category::TIME_EXPRESSION => "TIME_EXPRESSION",
            Category::BEHAVIORAL_ENVIRONMENTAL_SOCIAL => "BEHAVIORAL_ENVIRONMENTAL_SOCIAL",
        }
    }
    pub fn parse(s: &str) -> Option<Category> {
        [
            Category::MEDICAL_CONDITION,
            Category::MEDICATION,
            Category::TEST_TREATMENT_PROCEDURE,
            Category::ANATOMY,
            Category::TIME_EXPRESSION,
            Category::BEHAVIORAL_ENVIRONMENTAL_SOCIAL,
        ]
        .into_iter()
        .find(|x| x.as_str() == s)
    }
}

/// Comprehend Medical entity / attribute types (`EntitySubType`), the subset this stage emits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, PartialOrd, Ord)]
#[allow(non_camel_case_types)]
pub enum EntityType {
    DX_NAME,
    GENERIC_NAME,
    BRAND_NAME,
    DOSAGE,
    ROUTE_OR_MODE,
    FORM,
    FREQUENCY,
    DURATION,
    STRENGTH,
    TEST_NAME,
    TEST_VALUE,
    TEST_UNIT,
    PROCEDURE_NAME,
    TREATMENT_NAME,
    SYSTEM_ORGAN_SITE,
    DIRECTION,
    TIME_EXPRESSION,
    TOBACCO_USE,
    ALCOHOL_CONSUMPTION,
    REC_DRUG_USE,
    ALLERGIES,
}

impl EntityType {
    pub const ALL: [EntityType; 21] = [
        EntityType::DX_NAME,
        EntityType::GENERIC_NAME,
        EntityType::BRAND_NAME,
        EntityType::DOSAGE,
        EntityType::ROUTE_OR_MODE,
        EntityType::FORM,
        EntityType::FREQUENCY,
        EntityType::DURATION,
        EntityType::STRENGTH,
        EntityType::TEST_NAME,
        EntityType::TEST_VALUE,
        EntityType::TEST_UNIT,
        EntityType::PROCEDURE_NAME,
        EntityType::TREATMENT_NAME,
        EntityType::SYSTEM_ORGAN_SITE,
        EntityType::DIRECTION,
        EntityType::TIME_EXPRESSION,
        EntityType::TOBACCO_USE,
        EntityType::ALCOHOL_CONSUMPTION,
        EntityType::REC_DRUG_USE,
        EntityType::ALLERGIES,
    ];
    pub fn as_str(self) -> &'static str {
        match self {
            EntityType::DX_NAME => "DX_NAME",
            EntityType::GENERIC_NAME => "GENERIC_NAME",
            EntityType::BRAND_NAME => "BRAND_NAME",
            EntityType::DOSAGE => "DOSAGE",
            EntityType::ROUTE_OR_MODE => "ROUTE_OR_MODE",
            EntityType::FORM => "FORM",
            EntityType::FREQUENCY => "FREQUENCY",
            EntityType::DURATION => "DURATION",
            EntityType::STRENGTH => "STRENGTH",
            EntityType::TEST_NAME => "TEST_NAME",
            EntityType::TEST_VALUE => "TEST_VALUE",
            EntityType::TEST_UNIT => "TEST_UNIT",
            EntityType::PROCEDURE_NAME => "PROCEDURE_NAME",
            EntityType::TREATMENT_NAME => "TREATMENT_NAME",
            EntityType::SYSTEM_ORGAN_SITE => "SYSTEM_ORGAN_SITE",
            EntityType::DIRECTION => "DIRECTION",
            EntityType::TIME_EXPRESSION => "TIME_EXPRESSION",
            EntityType::TOBACCO_USE => "TOBACCO_USE",
            EntityType::ALCOHOL_CONSUMPTION => "ALCOHOL_CONSUMPTION",
            EntityType::REC_DRUG_USE => "REC_DRUG_USE",
            EntityType::ALLERGIES => "ALLERGIES",
        }
    }
    pub fn parse(s: &str) -> Option<EntityType> {
        EntityType::ALL.into_iter().find(|x| x.as_str() == s)
    }
}

/// Comprehend Medical trait names (`AttributeName`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, PartialOrd, Ord)]
#[allow(non_camel_case_types)]
pub enum Trait {
    NEGATION,
    HYPOTHETICAL,
    PAST_HISTORY,
    PERTAINS_TO_FAMILY,
    SIGN,
    SYMPTOM,
    DIAGNOSIS,
    LOW_CONFIDENCE,
}

impl Trait {
    pub const ALL: [Trait; 8] = [
        Trait::NEGATION,
        Trait::HYPOTHETICAL,
        Trait::PAST_HISTORY,
        Trait::PERTAINS_TO_FAMILY,
        Trait::SIGN,
        Trait::SYMPTOM,
        Trait::DIAGNOSIS,
        Trait::LOW_CONFIDENCE,
    ];
    pub fn as_str(self) -> &'static str {
        match self {
            Trait::NEGATION => "NEGATION",
            Trait::HYPOTHETICAL => "HYPOTHETICAL",
            Trait::PAST_HISTORY => "PAST_HISTORY",
            Trait::PERTAINS_TO_FAMILY => "PERTAINS_TO_FAMILY",
            Trait::SIGN => "SIGN",
            Trait::SYMPTOM => "SYMPTOM",
            Trait::DIAGNOSIS => "DIAGNOSIS",
            Trait::LOW_CONFIDENCE => "LOW_CONFIDENCE",
        }
    }
    pub fn parse(s: &str) -> Option<Trait> {
        Trait::ALL.into_iter().find(|x| x.as_str() == s)
    }
}

/// Code systems emitted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[allow(non_camel_case_types)]
pub enum CodeSystem {
    /// ICD-10-CM, code with dot (`I10`, `E11.9`).
    ICD10CM,
    /// RxNorm RXCUI.
    RXNORM,
}

impl CodeSystem {
    /// FHIR system URI.
    pub fn uri(self) -> &'static str {
        match self {
            CodeSystem::ICD10CM => "http://hl7.org/fhir/sid/icd-10-cm",
            CodeSystem::RXNORM => "http://www.nlm.nih.gov/research/umls/rxnorm",
        }
    }
}

/// A code for an entity. For RxNorm, `tty` says the level (`IN` ingredient, `SCD` clinical drug,
/// `MIN` multiple ingredients...).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Code {
    pub system: CodeSystem,
    pub code: String,
    pub display: String,
    pub tty: Option<String>,
    pub score: f32,
}

/// An attribute linked to an entity (medication dosage, test value, anatomy direction...).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Attribute {
    pub entity_type: EntityType,
    pub begin_char: usize,
    pub end_char: usize,
    pub text: String,
    pub score: f32,
    /// How sure we are that it belongs to its entity.
    pub relationship_score: f32,
}

/// One clinical entity found in a turn.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Entity {
    pub category: Category,
    pub entity_type: EntityType,
    pub begin_char: usize,
    pub end_char: usize,
    pub text: String,
    pub score: f32,
    pub traits: Vec<(Trait, f32)>,
    pub attributes: Vec<Attribute>,
    pub codes: Vec<Code>,
}

impl Entity {
    pub fn has_trait(&self, t: Trait) -> bool {
        self.traits.iter().any(|(x, _)| *x == t)
    }
}

/// The stage's output for one turn.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SegmentAnalysis {
    pub segment_id: String,
    pub section: Section,
    /// Probability of the chosen section.
    pub section_score: f32,
    pub entities: Vec<Entity>,
}

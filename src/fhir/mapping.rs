//! The write-back rules as data (`mappings/fhir/mapping.json`): which insights become which
//! resources, the code systems and statuses they get, what each trait does, the LOINC type of
//! each note template, and the dosage vocabulary. Read at start-up and validated here, so a
//! mapping change needs a restart, not a rebuild, and a bad mapping stops start-up with the
//! field that is wrong.

use std::collections::BTreeMap;
use std::path::Path;

use serde::Deserialize;

use crate::healthscribe::{EntitySubType, EntityType, NoteTemplate, TraitName};
use crate::note::template::template_name;
use crate::note::ALL_TEMPLATES;

/// The mapping compiled into the binary (the repository's `mappings/fhir/mapping.json`).
const BUNDLED: &str = include_str!("../../mappings/fhir/mapping.json");

#[derive(Debug, thiserror::Error)]
pub enum MappingError {
    #[error("cannot read FHIR mapping {path}: {source}")]
    Io {
        path: String,
        source: std::io::Error,
    },
    #[error("FHIR mapping {path} is not valid JSON for a mapping: {source}")]
    Parse {
        path: String,
        source: serde_json::Error,
    },
    #[error("FHIR mapping {path}: {field}: {reason}")]
    Invalid {
        path: String,
        field: String,
        reason: String,
    },
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Coding {
    pub system: String,
    pub code: String,
    #[serde(default)]
    pub display: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Mapping {
    #[serde(rename = "$comment", default)]
    pub comment: Option<String>,
    /// Base of our profile URLs, identifier systems and code systems; no trailing slash.
    pub canonical_base: String,
    pub device: DeviceRule,
    pub note: NoteRule,
    /// Conditions and MedicationStatements come only from segments whose speaker role is at
    /// least this sure (`Extensions.ParticipantRoleConfidence`; absent = known). One-channel
    /// audio before diarization has 0: who said "no" to "any chest pain?" is unknown, so nothing
    /// of it is charted (the note still is, for review).
    pub min_speaker_role_confidence: f64,
    pub conditions: ConditionRule,
    pub medications: MedicationRule,
    #[serde(default)]
    pub dosage: DosageVocabulary,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DeviceRule {
    pub name: String,
    pub type_text: String,
}

/// `DocumentReference.docStatus` (R4 `composition-status`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum DocStatus {
    Preliminary,
    Final,
    Amended,
}

impl DocStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Preliminary => "preliminary",
            Self::Final => "final",
            Self::Amended => "amended",
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NoteRule {
    /// `preliminary` until a clinician signs; some EHRs reject it, so it is configurable.
    pub doc_status: DocStatus,
    pub category: Coding,
    pub type_by_template: BTreeMap<TemplateKey, Coding>,
}

/// A note template as a map key (serde's map keys must be strings, and `NoteTemplate` reads
/// from its wire name).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Deserialize)]
#[serde(try_from = "String")]
pub struct TemplateKey(u8);

impl TemplateKey {
    pub fn of(t: NoteTemplate) -> Self {
        Self(ALL_TEMPLATES.iter().position(|x| *x == t).unwrap_or(0) as u8)
    }
}

impl TryFrom<String> for TemplateKey {
    type Error = String;
    fn try_from(s: String) -> Result<Self, String> {
        let t: NoteTemplate = serde_json::from_value(serde_json::Value::String(s.clone()))
            .map_err(|_| format!("`{s}` is not a note template"))?;
        Ok(Self::of(t))
    }
}

/// Which insights a rule takes: a Comprehend Medical category and some of its types.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Source {
    pub category: EntityType,
    pub types: Vec<EntitySubType>,
}

impl Source {
    pub fn matches(&self, category: EntityType, ty: EntitySubType) -> bool {
        self.category == category && self.types.contains(&ty)
    }
}

/// `Condition.clinicalStatus` (R4 `condition-clinical`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ClinicalStatus {
    Active,
    Recurrence,
    Relapse,
    Inactive,
    Remission,
    Resolved,
}

impl ClinicalStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Active => "active",
            Self::Recurrence => "recurrence",
            Self::Relapse => "relapse",
            Self::Inactive => "inactive",
            Self::Remission => "remission",
            Self::Resolved => "resolved",
        }
    }
}

/// `Condition.verificationStatus` (R4 `condition-ver-status`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum VerificationStatus {
    Unconfirmed,
    Provisional,
    Differential,
    Confirmed,
    Refuted,
}

impl VerificationStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Unconfirmed => "unconfirmed",
            Self::Provisional => "provisional",
            Self::Differential => "differential",
            Self::Confirmed => "confirmed",
            Self::Refuted => "refuted",
        }
    }
}

/// `MedicationStatement.status` (R4 `medication-statement-status`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum MedicationStatus {
    Active,
    Completed,
    Intended,
    Stopped,
    OnHold,
    Unknown,
    NotTaken,
}

impl MedicationStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Active => "active",
            Self::Completed => "completed",
            Self::Intended => "intended",
            Self::Stopped => "stopped",
            Self::OnHold => "on-hold",
            Self::Unknown => "unknown",
            Self::NotTaken => "not-taken",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Keyword {
    /// Write no resource for the insight.
    Skip,
}

/// What a trait does: skip the insight, or override some fields.
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum Action<O> {
    Keyword(Keyword),
    Set(O),
}

/// The first rule whose trait the insight has (with at least `min_score`) decides.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TraitRule<O> {
    #[serde(rename = "trait")]
    pub trait_name: TraitName,
    pub min_score: f64,
    pub action: Action<O>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConditionOverride {
    pub clinical_status: Option<ClinicalStatus>,
    pub verification_status: Option<VerificationStatus>,
    pub category: Option<Coding>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConditionRule {
    pub from: Vec<Source>,
    pub code_system: String,
    /// Codes scored below this are not used; an insight without a usable code is not written
    /// (the profile requires an ICD-10-CM coding).
    pub min_code_score: f64,
    pub category: Coding,
    pub clinical_status: ClinicalStatus,
    pub verification_status: VerificationStatus,
    pub trait_rules: Vec<TraitRule<ConditionOverride>>,
    /// Which coded conditions reach the chart, by where and by whom they were said.
    pub chart_policy: ChartPolicy,
}

/// What reaches the chart: a clinician charts the problems they assess, not every symptom word
/// of the conversation. All mentions of one code form one Condition, placed in the first class
/// that fits: `assessment` (a clinician named it in an `ASSESSMENT_AND_PLAN` segment, or in a
/// sentence that states the visit's reason, e.g. "today we're following up on your diabetes"),
/// `history` (every mention is `PAST_HISTORY`), else `reported` (symptoms and mentions outside
/// the assessment, which the note summarises).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ChartPolicy {
    #[serde(rename = "$comment", default)]
    pub comment: Option<String>,
    /// Lower-case phrases that make a clinician's statement (not a question) the visit's
    /// reason: the conditions it names are assessed in this encounter.
    #[serde(default)]
    pub visit_reason_cues: Vec<String>,
    pub assessment: ChartClass,
    pub history: ChartClass,
    pub reported: ChartClass,
}

/// One class of the chart policy: written or not, and with which category / verification
/// status (default: the rule's own).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ChartClass {
    pub write: bool,
    /// Written only when a clinician said it at least once (history the patient alone
    /// reports is not confirmed).
    #[serde(default)]
    pub requires_clinician: bool,
    #[serde(default)]
    pub category: Option<Coding>,
    #[serde(default)]
    pub verification_status: Option<VerificationStatus>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MedicationOverride {
    pub status: Option<MedicationStatus>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MedicationRule {
    pub from: Vec<Source>,
    pub code_system: String,
    pub min_code_score: f64,
    pub status: MedicationStatus,
    pub trait_rules: Vec<TraitRule<MedicationOverride>>,
    /// Status of a drug that is only ever mentioned in `ASSESSMENT_AND_PLAN` segments ("try
    /// acetaminophen first"): planned, not taken. A trait rule's status wins over it.
    #[serde(default)]
    pub plan_only_status: Option<MedicationStatus>,
    /// Attribute types whose text goes into `dosage.text`, in this order.
    pub dosage_attributes: Vec<EntitySubType>,
}

/// Words that turn spoken dosage into structured FHIR (UCUM units, SNOMED CT routes).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DosageVocabulary {
    /// Spoken unit (lower case) → UCUM code.
    #[serde(default)]
    pub units: BTreeMap<String, String>,
    /// Route: the phrases that name it and its coding.
    #[serde(default)]
    pub routes: Vec<RouteRule>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RouteRule {
    pub phrases: Vec<String>,
    pub coding: Coding,
}

/// What the insight's traits decide under a rule list.
pub enum Decision<'a, O> {
    Skip(TraitName),
    Write(Option<&'a O>),
}

/// Applies the first matching rule to an insight's traits.
pub fn decide<'a, O>(rules: &'a [TraitRule<O>], traits: &[(TraitName, f64)]) -> Decision<'a, O> {
    for r in rules {
        if traits
            .iter()
            .any(|(t, s)| *t == r.trait_name && *s >= r.min_score)
        {
            return match &r.action {
                Action::Keyword(Keyword::Skip) => Decision::Skip(r.trait_name),
                Action::Set(o) => Decision::Write(Some(o)),
            };
        }
    }
    Decision::Write(None)
}

impl Mapping {
    /// The mapping compiled into the binary.
    pub fn bundled() -> Result<Self, MappingError> {
        Self::parse("mappings/fhir/mapping.json (bundled)", BUNDLED)
    }

    /// Reads and validates a mapping file.
    pub fn load(path: &Path) -> Result<Self, MappingError> {
        let name = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|source| MappingError::Io {
            path: name.clone(),
            source,
        })?;
        Self::parse(&name, &text)
    }

    pub fn parse(path: &str, text: &str) -> Result<Self, MappingError> {
        let m: Mapping = serde_json::from_str(text).map_err(|source| MappingError::Parse {
            path: path.to_string(),
            source,
        })?;
        m.check().map_err(|(field, reason)| MappingError::Invalid {
            path: path.to_string(),
            field,
            reason,
        })?;
        Ok(m)
    }

    /// The note's `DocumentReference.type` for a template.
    pub fn note_type(&self, t: NoteTemplate) -> &Coding {
        &self.note.type_by_template[&TemplateKey::of(t)]
    }

    /// `https://…/StructureDefinition/<id>`.
    pub fn profile(&self, id: &str) -> String {
        format!("{}/StructureDefinition/{id}", self.canonical_base)
    }

    /// `https://…/sid/<kind>`: the system of our business identifiers.
    pub fn identifier_system(&self, kind: &str) -> String {
        format!("{}/sid/{kind}", self.canonical_base)
    }

    fn check(&self) -> Result<(), (String, String)> {
        let err = |f: &str, r: &str| Err((f.to_string(), r.to_string()));
        if !is_absolute_uri(&self.canonical_base) || self.canonical_base.ends_with('/') {
            return err(
                "canonical_base",
                "must be an absolute http(s) URL without a trailing slash",
            );
        }
        let mut codings: Vec<(String, &Coding)> = vec![
            ("note.category".into(), &self.note.category),
            ("conditions.category".into(), &self.conditions.category),
        ];
        for t in ALL_TEMPLATES {
            let key = TemplateKey::of(t);
            match self.note.type_by_template.get(&key) {
                Some(c) => codings.push((format!("note.type_by_template.{}", template_name(t)), c)),
                None => {
                    return Err((
                        "note.type_by_template".into(),
                        format!("no document type for template {}", template_name(t)),
                    ))
                }
            }
        }
        for (i, r) in self.conditions.trait_rules.iter().enumerate() {
            if let Action::Set(ConditionOverride {
                category: Some(c), ..
            }) = &r.action
            {
                codings.push((format!("conditions.trait_rules[{i}].action.category"), c));
            }
        }
        let policy = &self.conditions.chart_policy;
        for (name, class) in [
            ("assessment", &policy.assessment),
            ("history", &policy.history),
            ("reported", &policy.reported),
        ] {
            if let Some(c) = &class.category {
                codings.push((format!("conditions.chart_policy.{name}.category"), c));
            }
        }
        if policy
            .visit_reason_cues
            .iter()
            .any(|c| c.trim().is_empty() || c.to_lowercase() != *c)
        {
            return err(
                "conditions.chart_policy.visit_reason_cues",
                "cues are non-empty lower-case phrases",
            );
        }
        for (i, r) in self.dosage.routes.iter().enumerate() {
            codings.push((format!("dosage.routes[{i}].coding"), &r.coding));
            if r.phrases.iter().any(|p| p.trim().is_empty()) || r.phrases.is_empty() {
                return err(
                    &format!("dosage.routes[{i}].phrases"),
                    "needs at least one non-empty phrase",
                );
            }
        }
        for (f, c) in codings {
            if !is_absolute_uri(&c.system) {
                return Err((format!("{f}.system"), "must be an absolute URI".to_string()));
            }
            if c.code.trim().is_empty() || c.code.trim() != c.code {
                return Err((format!("{f}.code"), "must be a non-empty code".to_string()));
            }
        }
        for (f, s) in [
            ("conditions.code_system", &self.conditions.code_system),
            ("medications.code_system", &self.medications.code_system),
        ] {
            if !is_absolute_uri(s) {
                return err(f, "must be an absolute URI");
            }
        }
        for (f, from) in [
            ("conditions.from", &self.conditions.from),
            ("medications.from", &self.medications.from),
        ] {
            if from.is_empty() || from.iter().any(|s| s.types.is_empty()) {
                return err(f, "needs at least one category with at least one type");
            }
        }
        let scores = [
            (
                "min_speaker_role_confidence",
                self.min_speaker_role_confidence,
            ),
            ("conditions.min_code_score", self.conditions.min_code_score),
            (
                "medications.min_code_score",
                self.medications.min_code_score,
            ),
        ]
        .into_iter()
        .chain(
            self.conditions
                .trait_rules
                .iter()
                .map(|r| ("conditions.trait_rules[].min_score", r.min_score)),
        )
        .chain(
            self.medications
                .trait_rules
                .iter()
                .map(|r| ("medications.trait_rules[].min_score", r.min_score)),
        );
        for (f, s) in scores {
            if !(0.0..=1.0).contains(&s) {
                return err(f, "must be between 0 and 1");
            }
        }
        for (unit, ucum) in &self.dosage.units {
            if unit.trim().is_empty() || unit.to_lowercase() != *unit || ucum.trim().is_empty() {
                return err(
                    "dosage.units",
                    "keys are non-empty lower-case words, values non-empty UCUM codes",
                );
            }
        }
        if self.device.name.trim().is_empty() || self.device.type_text.trim().is_empty() {
            return err("device", "name and type_text must not be empty");
        }
        Ok(())
    }
}

fn is_absolute_uri(s: &str) -> bool {
    let rest = s
        .strip_prefix("https://")
        .or_else(|| s.strip_prefix("http://"))
        .or_else(|| s.strip_prefix("urn:"));
    rest.is_some_and(|r| !r.is_empty() && !r.chars().any(char::is_whitespace))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bundled_mapping_is_valid_and_covers_every_template() {
        let m = Mapping::bundled().unwrap();
        for t in ALL_TEMPLATES {
            assert_eq!(m.note_type(t).system, "http://loinc.org");
        }
        assert_eq!(
            m.note_type(NoteTemplate::HistoryAndPhysical).code,
            "34117-2"
        );
        assert!(m.dosage.units.contains_key("milligrams"));
    }

    fn with(edit: impl FnOnce(&mut serde_json::Value)) -> Result<Mapping, MappingError> {
        let mut v: serde_json::Value = serde_json::from_str(BUNDLED).unwrap();
        edit(&mut v);
        Mapping::parse("test.json", &v.to_string())
    }

    #[test]
    fn bad_mappings_name_the_field() {
        let e = with(|v| v["conditions"]["clinical_status"] = "sorta".into()).unwrap_err();
        assert!(e.to_string().contains("sorta"), "{e}");
        let e = with(|v| {
            v["note"]["type_by_template"]
                .as_object_mut()
                .unwrap()
                .remove("DAP");
        })
        .unwrap_err();
        assert!(e.to_string().contains("template DAP"), "{e}");
        let e = with(|v| v["canonical_base"] = "fhirscribe".into()).unwrap_err();
        assert!(e.to_string().contains("canonical_base"), "{e}");
        let e = with(|v| v["conditions"]["trait_rules"][0]["min_score"] = 3.into()).unwrap_err();
        assert!(e.to_string().contains("min_score"), "{e}");
        let e = with(|v| v["medications"]["surprise"] = 1.into()).unwrap_err();
        assert!(e.to_string().contains("surprise"), "{e}");
        let e = with(|v| v["note"]["category"]["system"] = "loinc".into()).unwrap_err();
        assert!(e.to_string().contains("note.category.system"), "{e}");
    }

    #[test]
    fn first_matching_trait_rule_decides() {
        let m = Mapping::bundled().unwrap();
        let r = &m.medications.trait_rules;
        assert!(matches!(
            decide(r, &[(TraitName::Negation, 0.9)]),
            Decision::Write(Some(MedicationOverride {
                status: Some(MedicationStatus::NotTaken)
            }))
        ));
        assert!(matches!(
            decide(r, &[(TraitName::Negation, 0.2)]),
            Decision::Write(None)
        ));
        assert!(matches!(
            decide(
                &m.conditions.trait_rules,
                &[(TraitName::Hypothetical, 0.8), (TraitName::Negation, 0.9)]
            ),
            Decision::Skip(TraitName::Negation)
        ));
    }
}

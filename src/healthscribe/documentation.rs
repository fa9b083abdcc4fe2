//! The clinical documentation file (`clinical-documentation.json`): note sections whose
//! sentences link back to transcript segments.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// Top level of `clinical-documentation.json`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ClinicalDocumentationFile {
    pub clinical_documentation: ClinicalDocumentation,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ClinicalDocumentation {
    pub sections: Vec<Section>,
    /// Streaming sessions only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub session_id: Option<String>,
    /// Ours, not AWS's (see the module docs of [`crate::healthscribe`]); omitted when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub extensions: Option<DocumentationExtensions>,
}

/// `ClinicalDocumentation."Extensions"`: what the safety checks did to this note. Counts only,
/// never sentence text.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct DocumentationExtensions {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub evidence_check: Option<EvidenceCheck>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rewrite: Option<RewriteCheck>,
}

/// The evidence check of the generated note: sentences checked, and dropped as unsupported.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct EvidenceCheck {
    pub sentences: usize,
    pub dropped: usize,
}

/// The optional language-model rewrite: sentences sent, rewrites kept, rewrites rejected by the
/// evidence check (the checked original stays), and why the whole rewrite fell back, if it did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct RewriteCheck {
    pub sentences: usize,
    pub rewritten: usize,
    pub rejected: usize,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fallback: Option<RewriteFallback>,
}

/// Why a rewrite was not used at all (the note is the checked, evidence-built one).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum RewriteFallback {
    /// No answer within the configured timeout.
    Timeout,
    /// Connection refused or broken, or the HTTP client could not be set up.
    Connection,
    /// A non-success HTTP status.
    HttpError,
    /// The reply was not the expected JSON (no array of strings, not JSON at all).
    InvalidReply,
    /// The array had a different number of sentences than the note.
    WrongLength,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Section {
    pub section_name: NoteSectionName,
    pub summary: Vec<SummarizedSegment>,
}

/// One summary sentence and the transcript segments that support it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct SummarizedSegment {
    pub evidence_links: Vec<EvidenceLink>,
    pub summarized_segment: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct EvidenceLink {
    pub segment_id: String,
}

/// A note section name.
///
/// `HISTORY_AND_PHYSICAL` names come from AWS's samples and documentation. The other templates'
/// names are the upper-snake form of the sections AWS's template descriptions list (AWS publishes
/// no sample for them). Any other non-empty name is kept verbatim in `Other`, so templates can
/// define sections without code; parsing a known name never yields `Other`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub enum NoteSectionName {
    /// Also read as `CHIEF_COMPLIANT`, a misspelling our design notes ask us to tolerate; it does
    /// not occur in the AWS reference material we hold.
    ChiefComplaint,
    HistoryOfPresentIllness,
    ReviewOfSystems,
    PastMedicalHistory,
    PastFamilyHistory,
    PastSocialHistory,
    PhysicalExamination,
    DiagnosticTesting,
    Assessment,
    Plan,
    Subjective,
    Objective,
    Data,
    Goal,
    Behavior,
    Situation,
    Intervention,
    Response,
    Progress,
    Other(String),
}

const KNOWN: &[(NoteSectionName, &str)] = &[
    (NoteSectionName::ChiefComplaint, "CHIEF_COMPLAINT"),
    (
        NoteSectionName::HistoryOfPresentIllness,
        "HISTORY_OF_PRESENT_ILLNESS",
    ),
    (NoteSectionName::ReviewOfSystems, "REVIEW_OF_SYSTEMS"),
    (NoteSectionName::PastMedicalHistory, "PAST_MEDICAL_HISTORY"),
    (NoteSectionName::PastFamilyHistory, "PAST_FAMILY_HISTORY"),
    (NoteSectionName::PastSocialHistory, "PAST_SOCIAL_HISTORY"),
    (NoteSectionName::PhysicalExamination, "PHYSICAL_EXAMINATION"),
    (NoteSectionName::DiagnosticTesting, "DIAGNOSTIC_TESTING"),
    (NoteSectionName::Assessment, "ASSESSMENT"),
    (NoteSectionName::Plan, "PLAN"),
    (NoteSectionName::Subjective, "SUBJECTIVE"),
    (NoteSectionName::Objective, "OBJECTIVE"),
    (NoteSectionName::Data, "DATA"),
    (NoteSectionName::Goal, "GOAL"),
    (NoteSectionName::Behavior, "BEHAVIOR"),
    (NoteSectionName::Situation, "SITUATION"),
    (NoteSectionName::Intervention, "INTERVENTION"),
    (NoteSectionName::Response, "RESPONSE"),
    (NoteSectionName::Progress, "PROGRESS"),
];

const ALIASES: &[(&str, NoteSectionName)] = &[("CHIEF_COMPLIANT", NoteSectionName::ChiefComplaint)];

impl NoteSectionName {
    /// The name as written to JSON.
    pub fn as_str(&self) -> &str {
        match self {
            Self::Other(name) => name,
            known => KNOWN
                .iter()
                .find(|(v, _)| v == known)
                .map(|(_, s)| *s)
                .expect("every named variant is listed in KNOWN"),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("note section name must not be empty or blank")]
pub struct NoteSectionNameError;

impl FromStr for NoteSectionName {
    type Err = NoteSectionNameError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if s.trim().is_empty() {
            return Err(NoteSectionNameError);
        }
        let known = KNOWN
            .iter()
            .find(|(_, name)| *name == s)
            .map(|(v, _)| v)
            .or_else(|| ALIASES.iter().find(|(a, _)| *a == s).map(|(_, v)| v));
        Ok(known.cloned().unwrap_or_else(|| Self::Other(s.to_owned())))
    }
}

impl fmt::Display for NoteSectionName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl TryFrom<String> for NoteSectionName {
    type Error = NoteSectionNameError;

    fn try_from(s: String) -> Result<Self, Self::Error> {
        s.parse()
    }
}

impl From<NoteSectionName> for String {
    fn from(n: NoteSectionName) -> Self {
        match n {
            NoteSectionName::Other(name) => name,
            known => known.as_str().to_owned(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn known_names_round_trip() {
        for (variant, name) in KNOWN {
            assert_eq!(name.parse::<NoteSectionName>().unwrap(), *variant);
            assert_eq!(serde_json::to_value(variant).unwrap(), json!(name));
        }
    }

    #[test]
    fn chief_compliant_reads_as_chief_complaint() {
        let n: NoteSectionName = serde_json::from_value(json!("CHIEF_COMPLIANT")).unwrap();
        assert_eq!(n, NoteSectionName::ChiefComplaint);
        assert_eq!(serde_json::to_value(&n).unwrap(), json!("CHIEF_COMPLAINT"));
    }

    #[test]
    fn template_defined_names_are_kept() {
        let n: NoteSectionName = serde_json::from_value(json!("MENTAL_STATUS_EXAM")).unwrap();
        assert_eq!(n, NoteSectionName::Other("MENTAL_STATUS_EXAM".into()));
        assert_eq!(
            serde_json::to_value(&n).unwrap(),
            json!("MENTAL_STATUS_EXAM")
        );
        // Case matters, as in AWS's names: this is a template's own name, not PLAN.
        let n: NoteSectionName = "Plan".parse().unwrap();
        assert_eq!(n, NoteSectionName::Other("Plan".into()));
    }

    #[test]
    fn blank_names_are_rejected() {
        for bad in ["", "  "] {
            let err = serde_json::from_value::<NoteSectionName>(json!(bad)).unwrap_err();
            assert!(err.to_string().contains("must not be empty"), "{err}");
        }
    }
}

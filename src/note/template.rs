//! Note templates as data: which note sections a template has, in which order, and which kinds of
//! evidence-built sentences ([`Content`]) fill each one.
//!
//! The seven HealthScribe templates are JSON files under `mappings/templates/`, embedded in the
//! binary with `include_str!` and validated at start-up ([`Templates::builtin`]). A directory of
//! further files can be loaded with [`Templates::load_dir`]: a new template needs no code, only a
//! new file choosing from the fixed set of contents.
//!
//! File shape (PascalCase, like the rest of our HealthScribe-facing JSON):
//! ```json
//! {"Name": "DAP", "Description": "...",
//!  "Sections": [{"Name": "DATA", "Title": "DATA", "Content": ["HISTORY_OF_PRESENT_ILLNESS"]}]}
//! ```
//! A content kind may be listed by at most one section of a template; kinds a template does not
//! list are left out of its note.

use std::collections::{BTreeMap, HashSet};
use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::healthscribe::{NoteSectionName, NoteTemplate};

/// The kinds of sentence the generator builds from the transcript. Each sentence gets exactly
/// one kind; a template routes kinds to its sections.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Content {
    /// The reason for the visit, as a short phrase.
    ChiefComplaint,
    /// Presenting problem: the clinician's introduction and the patient's account of symptoms.
    HistoryOfPresentIllness,
    /// Symptoms asked about and denied or reported ("Denies chest pain.").
    ReviewOfSystems,
    /// Conditions, surgeries and hospital stays in the past.
    PastMedicalHistory,
    /// Statements about family members' health.
    FamilyHistory,
    /// Tobacco, alcohol, drugs, work, living situation, exercise.
    SocialHistory,
    /// Current medications and how they are taken.
    Medications,
    /// Allergies.
    Allergies,
    /// The clinician's examination findings and vital signs.
    PhysicalExamination,
    /// Results of tests, imaging and labs.
    DiagnosticResults,
    /// The clinician's one-line summary of the patient (age, history, reason for the visit),
    /// restated at the head of the assessment.
    PatientSummary,
    /// The problems the clinician named in the assessment and plan, one per line.
    Problems,
    /// The clinician's impression and diagnoses.
    Assessment,
    /// Orders, prescriptions, referrals, follow-up.
    Plan,
    /// What the patient wants to achieve.
    Goals,
    /// What the clinician did or advised in the session (counselling, education, techniques).
    Interventions,
    /// How the patient responded to the plan or interventions during the session.
    PatientResponse,
    /// Change since earlier care: better, worse, working, not working.
    Progress,
}

impl Content {
    pub const ALL: [Content; 18] = [
        Content::ChiefComplaint,
        Content::HistoryOfPresentIllness,
        Content::ReviewOfSystems,
        Content::PastMedicalHistory,
        Content::FamilyHistory,
        Content::SocialHistory,
        Content::Medications,
        Content::Allergies,
        Content::PhysicalExamination,
        Content::DiagnosticResults,
        Content::PatientSummary,
        Content::Problems,
        Content::Assessment,
        Content::Plan,
        Content::Goals,
        Content::Interventions,
        Content::PatientResponse,
        Content::Progress,
    ];
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", deny_unknown_fields)]
pub struct TemplateSection {
    /// The `SectionName` written to the documentation file.
    pub name: NoteSectionName,
    /// Heading for a plain-text rendering of the note.
    pub title: String,
    /// Kinds of sentence that go to this section, in the order they are written.
    pub content: Vec<Content>,
    /// At most this many sentences (none: no limit).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_sentences: Option<usize>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", deny_unknown_fields)]
pub struct Template {
    /// `HISTORY_AND_PHYSICAL`, `GIRPP`, … or a site's own name.
    pub name: String,
    #[serde(default)]
    pub description: String,
    pub sections: Vec<TemplateSection>,
}

#[derive(Debug, thiserror::Error)]
pub enum TemplateError {
    #[error("template file {file}: {source}")]
    Parse {
        file: String,
        source: serde_json::Error,
    },
    #[error("template {template}: {problem}")]
    Invalid { template: String, problem: String },
    #[error("reading templates from {dir}: {source}")]
    Io { dir: String, source: std::io::Error },
}

impl Template {
    /// Parses and validates one template file's text; `file` names it in errors.
    pub fn from_json(file: &str, text: &str) -> Result<Self, TemplateError> {
        let t: Template = serde_json::from_str(text).map_err(|source| TemplateError::Parse {
            file: file.to_owned(),
            source,
        })?;
        t.validate()?;
        Ok(t)
    }

    /// Non-empty name and sections, unique section names, every kind listed at most once, every
    /// section with at least one kind and a title.
    pub fn validate(&self) -> Result<(), TemplateError> {
        let bad = |problem: String| TemplateError::Invalid {
            template: self.name.clone(),
            problem,
        };
        if self.name.trim().is_empty() {
            return Err(bad("Name must not be empty".into()));
        }
        if self.sections.is_empty() {
            return Err(bad("Sections must not be empty".into()));
        }
        let mut names = HashSet::new();
        let mut kinds = HashSet::new();
        for s in &self.sections {
            if !names.insert(s.name.as_str().to_owned()) {
                return Err(bad(format!("section {} is listed twice", s.name)));
            }
            if s.title.trim().is_empty() {
                return Err(bad(format!("section {} has an empty Title", s.name)));
            }
            if s.content.is_empty() {
                return Err(bad(format!("section {} has no Content", s.name)));
            }
            if s.max_sentences == Some(0) {
                return Err(bad(format!("section {} has MaxSentences 0", s.name)));
            }
            for k in &s.content {
                if !kinds.insert(*k) {
                    return Err(bad(format!(
                        "content {} is routed to more than one section",
                        serde_json::to_value(k)
                            .map(|v| v.to_string())
                            .unwrap_or_default()
                    )));
                }
            }
        }
        Ok(())
    }

    /// The section index a kind of sentence goes to, if this template lists it.
    pub fn section_for(&self, kind: Content) -> Option<usize> {
        self.sections.iter().position(|s| s.content.contains(&kind))
    }
}

/// The built-in template files, embedded so the binary works without the repository.
pub const BUILTIN_FILES: &[(&str, &str)] = &[
    (
        "history_and_physical.json",
        include_str!("../../mappings/templates/history_and_physical.json"),
    ),
    (
        "girpp.json",
        include_str!("../../mappings/templates/girpp.json"),
    ),
    (
        "birp.json",
        include_str!("../../mappings/templates/birp.json"),
    ),
    (
        "sirp.json",
        include_str!("../../mappings/templates/sirp.json"),
    ),
    (
        "dap.json",
        include_str!("../../mappings/templates/dap.json"),
    ),
    (
        "behavioral_soap.json",
        include_str!("../../mappings/templates/behavioral_soap.json"),
    ),
    (
        "physical_soap.json",
        include_str!("../../mappings/templates/physical_soap.json"),
    ),
];

/// Templates by name.
#[derive(Debug, Clone)]
pub struct Templates {
    by_name: BTreeMap<String, Template>,
}

impl Templates {
    /// The seven HealthScribe templates. Fails only if an embedded file is broken, which the
    /// tests rule out.
    pub fn builtin() -> Result<Self, TemplateError> {
        let mut by_name = BTreeMap::new();
        for (file, text) in BUILTIN_FILES {
            let t = Template::from_json(file, text)?;
            by_name.insert(t.name.clone(), t);
        }
        let me = Self { by_name };
        for t in ALL_TEMPLATES {
            let name = template_name(t);
            if !me.by_name.contains_key(&name) {
                return Err(TemplateError::Invalid {
                    template: name,
                    problem: "no built-in file defines it".into(),
                });
            }
        }
        Ok(me)
    }

    /// The built-ins plus every `*.json` in `dir`; a file whose `Name` equals a built-in's
    /// replaces it.
    pub fn load_dir(dir: &Path) -> Result<Self, TemplateError> {
        let mut me = Self::builtin()?;
        let io = |source| TemplateError::Io {
            dir: dir.display().to_string(),
            source,
        };
        let mut paths: Vec<_> = std::fs::read_dir(dir)
            .map_err(io)?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|e| e == "json"))
            .collect();
        paths.sort();
        for p in paths {
            let text = std::fs::read_to_string(&p).map_err(io)?;
            let t = Template::from_json(&p.display().to_string(), &text)?;
            me.by_name.insert(t.name.clone(), t);
        }
        Ok(me)
    }

    pub fn get(&self, template: NoteTemplate) -> &Template {
        self.by_name
            .get(&template_name(template))
            .expect("builtin() checked every NoteTemplate")
    }

    pub fn by_name(&self, name: &str) -> Option<&Template> {
        self.by_name.get(name)
    }

    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.by_name.keys().map(String::as_str)
    }
}

pub const ALL_TEMPLATES: [NoteTemplate; 7] = [
    NoteTemplate::HistoryAndPhysical,
    NoteTemplate::Girpp,
    NoteTemplate::Birp,
    NoteTemplate::Sirp,
    NoteTemplate::Dap,
    NoteTemplate::BehavioralSoap,
    NoteTemplate::PhysicalSoap,
];

/// The API name of a template (`HISTORY_AND_PHYSICAL`).
pub fn template_name(t: NoteTemplate) -> String {
    serde_json::to_value(t)
        .ok()
        .and_then(|v| v.as_str().map(str::to_owned))
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builtins_load_and_cover_every_template() {
        let t = Templates::builtin().unwrap();
        for nt in ALL_TEMPLATES {
            let tpl = t.get(nt);
            assert_eq!(tpl.name, template_name(nt));
        }
        let hp = t.get(NoteTemplate::HistoryAndPhysical);
        let names: Vec<&str> = hp.sections.iter().map(|s| s.name.as_str()).collect();
        assert_eq!(
            names,
            [
                "CHIEF_COMPLAINT",
                "HISTORY_OF_PRESENT_ILLNESS",
                "REVIEW_OF_SYSTEMS",
                "PAST_MEDICAL_HISTORY",
                "PAST_FAMILY_HISTORY",
                "PAST_SOCIAL_HISTORY",
                "PHYSICAL_EXAMINATION",
                "DIAGNOSTIC_TESTING",
                "ASSESSMENT",
                "PLAN"
            ]
        );
        let girpp: Vec<&str> = t
            .get(NoteTemplate::Girpp)
            .sections
            .iter()
            .map(|s| s.name.as_str())
            .collect();
        assert_eq!(
            girpp,
            ["GOAL", "INTERVENTION", "RESPONSE", "PROGRESS", "PLAN"]
        );
    }

    #[test]
    fn invalid_templates_are_rejected_with_a_reason() {
        let cases = [
            (r#"{"Name": "", "Sections": []}"#, "Name must not be empty"),
            (
                r#"{"Name": "X", "Sections": []}"#,
                "Sections must not be empty",
            ),
            (
                r#"{"Name": "X", "Sections": [{"Name": "PLAN", "Title": "Plan", "Content": ["PLAN"]},
                    {"Name": "PLAN", "Title": "Plan", "Content": ["GOALS"]}]}"#,
                "listed twice",
            ),
            (
                r#"{"Name": "X", "Sections": [{"Name": "A", "Title": "A", "Content": ["PLAN"]},
                    {"Name": "B", "Title": "B", "Content": ["PLAN"]}]}"#,
                "more than one section",
            ),
            (
                r#"{"Name": "X", "Sections": [{"Name": "A", "Title": "A", "Content": []}]}"#,
                "no Content",
            ),
            (
                r#"{"Name": "X", "Sections": [{"Name": "A", "Title": "A", "Content": ["DREAMS"]}]}"#,
                "unknown variant `DREAMS`",
            ),
            (
                r#"{"Name": "X", "Sections": [{"Name": "A", "Title": "A", "Content": ["PLAN"], "Colour": 1}]}"#,
                "unknown field `Colour`",
            ),
        ];
        for (json, want) in cases {
            let err = Template::from_json("t.json", json).unwrap_err().to_string();
            assert!(err.contains(want), "{err} should contain {want}");
        }
    }

    #[test]
    fn a_new_template_needs_only_a_file() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("mse.json"),
            r#"{"Name": "MENTAL_STATUS", "Sections": [
                 {"Name": "MENTAL_STATUS_EXAM", "Title": "Mental status", "Content": ["PHYSICAL_EXAMINATION"]},
                 {"Name": "PLAN", "Title": "Plan", "Content": ["PLAN", "INTERVENTIONS"]}]}"#,
        )
        .unwrap();
        let t = Templates::load_dir(dir.path()).unwrap();
        let mse = t.by_name("MENTAL_STATUS").unwrap();
        assert_eq!(
            mse.sections[0].name,
            NoteSectionName::Other("MENTAL_STATUS_EXAM".into())
        );
        assert_eq!(mse.section_for(Content::Interventions), Some(1));
        assert_eq!(mse.section_for(Content::Goals), None);
        assert!(t.by_name("DAP").is_some());
    }
}

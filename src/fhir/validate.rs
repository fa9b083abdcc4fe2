//! Validation of generated resources against the profiles in `fhir-profiles/` (placeholder: the
//! real validator is being written; see fhir-profiles/README.md for the contract).

use serde_json::Value;
use std::path::Path;

/// How bad a finding is: an `Error` blocks sending.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Severity {
    Error,
    Warning,
}

/// One finding. `expression` is a FHIRPath-like location (`Condition.code.coding[0].system`,
/// `Bundle.entry[3].resource.subject`); `message` never contains element values (no PHI).
#[derive(Debug, Clone, PartialEq)]
pub struct Issue {
    pub severity: Severity,
    pub expression: String,
    pub message: String,
}

/// Why the profile folder could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum ProfileError {
    #[error("cannot read profile file {path}: {source}")]
    Io {
        path: String,
        source: std::io::Error,
    },
    #[error("profile file {path} is not valid: {reason}")]
    Invalid { path: String, reason: String },
}

/// Loaded profiles, base element table and value sets.
#[derive(Debug, Clone, Default)]
pub struct Validator {}

impl Validator {
    /// The profiles compiled into the binary.
    pub fn bundled() -> Result<Self, ProfileError> {
        Ok(Self {})
    }

    /// Profiles from a folder laid out like `fhir-profiles/`.
    pub fn load(_dir: &Path) -> Result<Self, ProfileError> {
        Ok(Self {})
    }

    /// Checks one resource against the base R4 definition and every profile in `meta.profile`.
    pub fn validate(&self, _resource: &Value) -> Vec<Issue> {
        Vec::new()
    }

    /// Checks every entry's resource, and that each `urn:uuid:` reference resolves to an entry.
    pub fn validate_bundle(&self, _bundle: &Value) -> Vec<Issue> {
        Vec::new()
    }
}

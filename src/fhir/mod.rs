//! FHIR R4 write-back: maps the pipeline's native outputs (transcript + clinical documentation)
//! to a transaction `Bundle` of AI-labelled resources with their Provenance ([`bundle`]),
//! checks every resource against our profiles ([`validate`]), and sends it ([`client`]); the
//! durable outbox that drives the sending lives in [`crate::store`] and [`crate::delivery`].
//!
//! Architecture invariant: knows nothing of HTTP routing or job storage; the rules live in
//! `mappings/fhir/` and `fhir-profiles/`, read at start-up.

pub mod bundle;
pub mod client;
pub mod mapping;
pub mod validate;

pub use bundle::{
    build_bundle, EncounterContext, JobOutputs, MappedBundle, MappingReport, ScribeDevice,
};
pub use mapping::Mapping;
pub use validate::{Issue, Severity, Validator};

/// Why a job's outputs produced no sendable Bundle.
#[derive(Debug, thiserror::Error)]
pub enum FhirError {
    #[error(transparent)]
    Context(#[from] bundle::ContextError),
    /// Messages name paths and rules only (no element values), so they are safe to store on
    /// the job and to show an operator.
    #[error("the FHIR bundle failed validation ({} errors), nothing was sent: {}", .issues.len(), summarize(.issues))]
    Invalid { issues: Vec<Issue> },
}

fn summarize(issues: &[Issue]) -> String {
    let mut s: Vec<String> = issues
        .iter()
        .take(5)
        .map(|i| format!("{}: {}", i.expression, i.message))
        .collect();
    if issues.len() > 5 {
        s.push(format!("and {} more", issues.len() - 5));
    }
    s.join("; ")
}

/// Builds the Bundle and validates it; only a Bundle without errors comes back.
pub fn prepare(
    mapping: &Mapping,
    validator: &Validator,
    ctx: &EncounterContext,
    device: &ScribeDevice,
    outputs: &JobOutputs<'_>,
) -> Result<MappedBundle, FhirError> {
    let mapped = build_bundle(mapping, ctx, device, outputs)?;
    check_bundle(validator, &mapped.bundle)?;
    Ok(mapped)
}

/// Validates a Bundle (ours or one read back from disk) before it may be queued or sent.
pub fn check_bundle(validator: &Validator, bundle: &serde_json::Value) -> Result<(), FhirError> {
    let issues: Vec<Issue> = validator
        .validate_bundle(bundle)
        .into_iter()
        .filter(|i| i.severity == Severity::Error)
        .collect();
    if issues.is_empty() {
        Ok(())
    } else {
        Err(FhirError::Invalid { issues })
    }
}

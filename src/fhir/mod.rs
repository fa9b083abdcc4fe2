//! FHIR R4 write-back: maps the pipeline's native outputs (transcript + clinical documentation)
//! to a transaction `Bundle` of AI-labelled resources with their Provenance, validates every
//! resource against our profiles (`fhir-profiles/`), and delivers it through a durable outbox.
//!
//! Architecture invariant: knows nothing of HTTP routing or job storage; the rules live in
//! `mappings/fhir/` and `fhir-profiles/`, read at start-up.

pub mod validate;

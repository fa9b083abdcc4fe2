//! The lab: evaluation and training, apart from the product. `fhirscribe eval …` prints figures
//! (never asserted on timing) and `fhirscribe clinical build` derives the committed data of the
//! clinical stage. Each takes its data by path (`--data`), so evaluation sets stay outside the
//! repository.
//!
//! # Architecture invariant
//! The lab imports the product, never the reverse: no runtime module refers to `crate::lab`
//! (only `cli` wires the commands in), which `tests/architecture.rs` checks. What the lab needs
//! from the product it calls through the product's public API (e.g. the evidence checker
//! [`crate::note::support`], the section trainer [`crate::clinical::sections::train`]).

// Speech and transcript figures.
pub mod diarization;
pub mod segments;
pub mod wer;

// Clinical stage: sections, entities, the team's conversational sets.
pub mod clinical;
pub mod data;
pub mod metrics;

// Note stage on ACI-BENCH.
pub mod aci;
pub mod facts;
pub mod fallback;
pub mod notes;
pub mod register;
pub mod rouge;

// FHIR: what reaches the chart, write-back throughput.
pub mod chart;
pub mod fhir_bench;

// Scale-out: the shared job queue's own cost (PostgreSQL).
pub mod queue;

// Training: `clinical build`, section-model cross-validation, lexicon derivation.
pub mod train;

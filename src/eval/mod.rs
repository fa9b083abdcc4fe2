//! Evaluation commands (`fhirscribe eval …`): metrics printed as figures, never asserted on
//! timing. Each submodule takes its data by path (`--data`), so evaluation sets stay outside the
//! repository.

pub mod chart;
pub mod fhir;
pub mod segments;
pub mod wer;

//! The FHIR side of the service for clients that pull: read and search ([`read`]) and Bulk
//! Data `$export` ([`export`]) over the resources completed jobs produced
//! ([`crate::store::ResourceStore`]: exactly what was, or would be, delivered to the EHR).
//!
//! Knows no HTTP (the routes in `api::routes::fhir` map [`read::ReadError`] to an
//! OperationOutcome) and never writes: resources enter the store only through the job service.

pub mod export;
pub mod read;

pub use export::{ExportLevel, ExportSettings, ExportStatus, Exports};
pub use read::{Reach, ReadError};

//! fhirscribe: ambient clinical scribe. See README.md ("Architecture") for the map.

pub mod annotate;
pub mod api;
pub mod asr;
pub mod audio;
pub mod aws;
pub mod cli;
pub mod clinical;
pub mod config;
pub mod delivery;
pub mod diarize;
pub mod engine;
pub mod fhir;
pub mod fhir_api;
pub mod healthscribe;
pub mod jobs;
pub mod lab;
pub mod metrics;
pub mod models;
pub mod note;
pub mod pipeline;
pub mod review;
pub mod smart;
pub mod store;
pub mod telemetry;
pub mod transcript;
pub mod words;

//! The HTTP layer of `fhirscribe serve`, and the only module that knows actix-web
//! (tests/architecture.rs keeps it so). It authenticates, parses, calls the blocking
//! [`crate::jobs::service::JobService`] on actix's blocking pool, and maps errors once.
//!
//! - [`startup`]: builds the store, engine, outboxes, workers and delivery loop; serves; shuts
//!   down on SIGTERM/SIGINT within the grace period.
//! - [`routes`]: one file per resource; [`routes::ROUTES`] is the one table both the router and
//!   the OpenAPI document ([`openapi`]) are built from.
//! - [`auth`]: bearer tokens ([`crate::smart::inbound`]), scopes, per-client rate limit.
//! - [`error`]: HealthScribe's error JSON (`__type`, `message`) with the right status.
//!
//! Invariants: no CPU-heavy work or disk I/O on the HTTP threads (`web::block`); every route
//! but `/healthz`, `/readyz`, `/metrics` and `/openapi.json` needs a token; every log line of
//! a request carries its `request_id` and never a body.

pub mod auth;
pub mod error;
pub mod openapi;
pub mod routes;
pub mod startup;

pub use startup::{run, ServeOptions};

//! SMART on FHIR: the Backend Services client the outbox uses to get access tokens
//! ([`backend`]), validation of incoming bearer tokens ([`inbound`]), and the App Launch (EHR
//! and standalone, PKCE) the review app will use ([`launch`]).

pub mod backend;
pub mod inbound;
pub mod launch;

pub use backend::{BackendClient, BackendConfig, SigningAlg, SmartError};
pub use inbound::{Access, AuthError, IssuerSettings, Principal, ScopeContext, Verifier};

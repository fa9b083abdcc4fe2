//! SMART on FHIR: the Backend Services client the outbox uses to get access tokens (and, as
//! the service grows, the EHR launch with PKCE and validation of incoming bearer tokens).

pub mod backend;
pub mod inbound;

pub use backend::{BackendClient, BackendConfig, SigningAlg, SmartError};
pub use inbound::{Access, AuthError, IssuerSettings, Principal, ScopeContext, Verifier};

//! SMART Backend Services client: `client_credentials` with a `private_key_jwt` client
//! assertion (RS384 or ES384), token endpoint discovered from the FHIR server's
//! `.well-known/smart-configuration`, access token cached until shortly before it expires.
//!
//! Invariant: the private key and the tokens never appear in errors, logs or `Debug` output.

use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde::Deserialize;

/// Tokens are renewed this long before they expire, so a request never carries one that
/// lapses in flight.
const RENEW_BEFORE: Duration = Duration::from_secs(30);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SigningAlg {
    Rs384,
    Es384,
}

impl std::str::FromStr for SigningAlg {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "RS384" => Ok(Self::Rs384),
            "ES384" => Ok(Self::Es384),
            _ => Err(format!(
                "`{s}` is not a SMART Backend Services algorithm (RS384 or ES384)"
            )),
        }
    }
}

/// Create and search (conditional create searches) on exactly the types we write.
/// Updates too (`.cu`): a note signed in the review app with `[ui] sign_write = "backend"`
/// updates the draft's resources in place.
pub const DEFAULT_SCOPE: &str = "system/DocumentReference.cu system/DocumentReference.s \
system/Condition.cu system/Condition.s system/MedicationStatement.cu system/MedicationStatement.s \
system/Provenance.c system/Provenance.s system/Device.c system/Device.s";

/// Client registration at the EHR's authorization server.
#[derive(Clone)]
pub struct BackendConfig {
    pub client_id: String,
    /// The `kid` of the public key registered with the authorization server.
    pub key_id: String,
    pub alg: SigningAlg,
    /// PEM (PKCS#8 or PKCS#1 for RSA, PKCS#8 for EC); from config or environment only.
    pub private_key_pem: Vec<u8>,
    /// Space-separated SMART v2 scopes, e.g. `system/Condition.c system/DocumentReference.c`.
    pub scope: String,
    /// Skips discovery when set.
    pub token_endpoint: Option<String>,
}

impl std::fmt::Debug for BackendConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BackendConfig")
            .field("client_id", &self.client_id)
            .field("key_id", &self.key_id)
            .field("alg", &self.alg)
            .field("private_key_pem", &"<redacted>")
            .field("scope", &self.scope)
            .field("token_endpoint", &self.token_endpoint)
            .finish()
    }
}

#[derive(Debug, thiserror::Error)]
pub enum SmartError {
    #[error("the private key is not a usable {alg:?} PEM key: {reason}")]
    BadKey { alg: SigningAlg, reason: String },
    #[error("SMART discovery at {url} failed: {reason}")]
    Discovery { url: String, reason: String },
    /// The authorization server refused us: wrong key, unknown client, scope not allowed.
    #[error("the authorization server rejected the token request (HTTP {status}): {error}{}", description.as_deref().map(|d| format!(": {d}")).unwrap_or_default())]
    Rejected {
        status: u16,
        error: String,
        description: Option<String>,
    },
    /// Network trouble or a 5xx: worth retrying later.
    #[error("the authorization server could not be reached: {0}")]
    Unavailable(String),
}

impl SmartError {
    /// Whether trying again later can help (network or server trouble), as opposed to a
    /// configuration problem an operator must fix.
    pub fn is_transient(&self) -> bool {
        matches!(self, Self::Unavailable(_) | Self::Discovery { .. })
    }
}

struct CachedToken {
    access_token: String,
    renew_at: Instant,
}

/// A Backend Services client for one FHIR server.
pub struct BackendClient {
    cfg: BackendConfig,
    key: EncodingKey,
    fhir_base: String,
    http: reqwest::Client,
    token_endpoint: Mutex<Option<String>>,
    cached: Mutex<Option<CachedToken>>,
}

#[derive(Deserialize)]
struct SmartConfiguration {
    token_endpoint: String,
}

#[derive(Deserialize)]
struct TokenResponse {
    access_token: String,
    #[serde(default)]
    expires_in: Option<u64>,
}

#[derive(Deserialize)]
struct OAuthError {
    error: String,
    #[serde(default)]
    error_description: Option<String>,
}

/// Locks a cache without letting one panic poison it for every later request: each critical
/// section is one read or one whole assignment, so a panicking holder leaves a valid value.
fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

impl BackendClient {
    pub fn new(
        cfg: BackendConfig,
        fhir_base: &str,
        http: reqwest::Client,
    ) -> Result<Self, SmartError> {
        let key = match cfg.alg {
            SigningAlg::Rs384 => EncodingKey::from_rsa_pem(&cfg.private_key_pem),
            SigningAlg::Es384 => EncodingKey::from_ec_pem(&cfg.private_key_pem),
        }
        .map_err(|e| SmartError::BadKey {
            alg: cfg.alg,
            reason: e.to_string(),
        })?;
        Ok(Self {
            token_endpoint: Mutex::new(cfg.token_endpoint.clone()),
            cfg,
            key,
            fhir_base: fhir_base.trim_end_matches('/').to_string(),
            http,
            cached: Mutex::new(None),
        })
    }

    /// A valid access token, from the cache or freshly requested.
    pub async fn token(&self) -> Result<String, SmartError> {
        if let Some(t) = lock(&self.cached).as_ref() {
            if Instant::now() < t.renew_at {
                return Ok(t.access_token.clone());
            }
        }
        let endpoint = self.token_endpoint().await?;
        let assertion = self.assertion(&endpoint)?;
        let form = [
            ("grant_type", "client_credentials"),
            ("scope", self.cfg.scope.as_str()),
            (
                "client_assertion_type",
                "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
            ),
            ("client_assertion", assertion.as_str()),
        ];
        let started = Instant::now();
        let resp = self
            .http
            .post(&endpoint)
            .form(&form)
            .send()
            .await
            .map_err(|e| SmartError::Unavailable(without_url(&e)))?;
        let status = resp.status();
        let body = resp
            .bytes()
            .await
            .map_err(|e| SmartError::Unavailable(without_url(&e)))?;
        if status.is_server_error() {
            return Err(SmartError::Unavailable(format!("HTTP {}", status.as_u16())));
        }
        if !status.is_success() {
            let (error, description) = match serde_json::from_slice::<OAuthError>(&body) {
                Ok(e) => (e.error, e.error_description),
                Err(_) => ("unknown_error".to_string(), None),
            };
            return Err(SmartError::Rejected {
                status: status.as_u16(),
                error,
                description,
            });
        }
        let t: TokenResponse = serde_json::from_slice(&body).map_err(|e| SmartError::Rejected {
            status: status.as_u16(),
            error: "invalid_token_response".into(),
            description: Some(e.to_string()),
        })?;
        let lifetime = Duration::from_secs(t.expires_in.unwrap_or(300));
        let renew_at = started + lifetime.saturating_sub(RENEW_BEFORE);
        tracing::debug!(lifetime_s = lifetime.as_secs(), "access token obtained");
        *lock(&self.cached) = Some(CachedToken {
            access_token: t.access_token.clone(),
            renew_at,
        });
        Ok(t.access_token)
    }

    /// Forgets the cached token (after a 401), so the next call asks for a new one.
    pub fn invalidate(&self) {
        *lock(&self.cached) = None;
    }

    async fn token_endpoint(&self) -> Result<String, SmartError> {
        if let Some(e) = lock(&self.token_endpoint).clone() {
            return Ok(e);
        }
        let url = format!("{}/.well-known/smart-configuration", self.fhir_base);
        let fail = |reason: String| SmartError::Discovery {
            url: url.clone(),
            reason,
        };
        let resp = self
            .http
            .get(&url)
            .header("Accept", "application/json")
            .send()
            .await
            .map_err(|e| fail(without_url(&e)))?;
        if !resp.status().is_success() {
            return Err(fail(format!("HTTP {}", resp.status().as_u16())));
        }
        let c: SmartConfiguration = resp
            .json()
            .await
            .map_err(|e| fail(format!("not a SMART configuration: {}", without_url(&e))))?;
        *lock(&self.token_endpoint) = Some(c.token_endpoint.clone());
        Ok(c.token_endpoint)
    }

    /// The signed client assertion (RFC 7523): five minutes at most, unique `jti`.
    fn assertion(&self, audience: &str) -> Result<String, SmartError> {
        sign_assertion(
            &self.cfg.client_id,
            &self.cfg.key_id,
            self.cfg.alg,
            &self.key,
            audience,
        )
    }
}

/// reqwest's errors print the URL; ours name it separately where it matters, and a URL may
/// carry query parameters we do not want in logs.
pub(crate) fn without_url(e: &reqwest::Error) -> String {
    let kind = if e.is_timeout() {
        "timed out"
    } else if e.is_connect() {
        "connection failed"
    } else if e.is_decode() {
        "response could not be decoded"
    } else if e.is_body() {
        "response body could not be read"
    } else {
        "request failed"
    };
    let mut src = std::error::Error::source(e);
    let mut detail = String::new();
    while let Some(s) = src {
        detail = s.to_string();
        src = s.source();
    }
    if detail.is_empty() {
        kind.to_string()
    } else {
        format!("{kind} ({detail})")
    }
}

/// A signed client assertion (RFC 7523, SMART's `private_key_jwt`): `iss` = `sub` = the
/// client, `aud` = the token endpoint, five minutes at most, unique `jti`.
fn sign_assertion(
    client_id: &str,
    key_id: &str,
    alg: SigningAlg,
    key: &EncodingKey,
    audience: &str,
) -> Result<String, SmartError> {
    let now = unix_now();
    let claims = serde_json::json!({
        "iss": client_id,
        "sub": client_id,
        "aud": audience,
        "jti": uuid::Uuid::new_v4().to_string(),
        "iat": now,
        "exp": now + 300,
    });
    let mut header = Header::new(match alg {
        SigningAlg::Rs384 => Algorithm::RS384,
        SigningAlg::Es384 => Algorithm::ES384,
    });
    header.kid = Some(key_id.to_owned());
    header.typ = Some("JWT".into());
    jsonwebtoken::encode(&header, &claims, key).map_err(|e| SmartError::BadKey {
        alg,
        reason: e.to_string(),
    })
}

/// The key a confidential client signs its assertions with (the review app's, when it is
/// registered as a confidential asymmetric client).
pub struct AssertionSigner {
    client_id: String,
    key_id: String,
    alg: SigningAlg,
    key: EncodingKey,
}

impl AssertionSigner {
    pub fn new(
        client_id: &str,
        key_id: &str,
        alg: SigningAlg,
        pem: &[u8],
    ) -> Result<Self, SmartError> {
        let key = match alg {
            SigningAlg::Rs384 => EncodingKey::from_rsa_pem(pem),
            SigningAlg::Es384 => EncodingKey::from_ec_pem(pem),
        }
        .map_err(|e| SmartError::BadKey {
            alg,
            reason: e.to_string(),
        })?;
        Ok(Self {
            client_id: client_id.to_owned(),
            key_id: key_id.to_owned(),
            alg,
            key,
        })
    }

    /// An assertion for the token endpoint `audience`.
    pub fn sign(&self, audience: &str) -> Result<String, SmartError> {
        sign_assertion(&self.client_id, &self.key_id, self.alg, &self.key, audience)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bad_keys_and_algs_are_explained_without_the_key() {
        let e = BackendClient::new(
            BackendConfig {
                client_id: "c".into(),
                key_id: "k".into(),
                alg: SigningAlg::Rs384,
                private_key_pem:
                    b"-----BEGIN PRIVATE KEY-----\nnot a key\n-----END PRIVATE KEY-----\n".to_vec(),
                scope: "system/*.c".into(),
                token_endpoint: None,
            },
            "http://127.0.0.1:1",
            reqwest::Client::new(),
        )
        .err()
        .unwrap();
        assert!(
            e.to_string()
                .starts_with("the private key is not a usable Rs384 PEM key"),
            "{e}"
        );
        assert!(!e.to_string().contains("not a key"));
        assert!("HS256"
            .parse::<SigningAlg>()
            .unwrap_err()
            .contains("RS384 or ES384"));
        let cfg = BackendConfig {
            client_id: "c".into(),
            key_id: "k".into(),
            alg: SigningAlg::Es384,
            private_key_pem: b"secret".to_vec(),
            scope: String::new(),
            token_endpoint: None,
        };
        assert!(!format!("{cfg:?}").contains("secret"));
    }

    #[test]
    fn a_panic_while_holding_a_cache_does_not_poison_it() {
        let m = std::sync::Arc::new(Mutex::new(Some("endpoint".to_string())));
        let held = m.clone();
        let _ = std::thread::spawn(move || {
            let _g = held.lock().unwrap();
            panic!("boom");
        })
        .join();
        assert!(m.is_poisoned());
        assert_eq!(lock(&m).as_deref(), Some("endpoint"));
        *lock(&m) = None;
        assert!(lock(&m).is_none());
    }
}

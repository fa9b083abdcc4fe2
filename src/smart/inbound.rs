//! Validation of incoming bearer tokens: the HTTP service is a SMART resource server, and a
//! request is let in only with a JWT access token signed by a trusted authorization server.
//!
//! The checks run in an order that keeps the cheap, dangerous refusals first: the header is read
//! by hand before any library sees the token, so unsigned (`alg: none`) and HMAC-signed tokens
//! are refused outright (an HMAC token "signed" with the issuer's public key is the classic
//! algorithm-confusion attack). Then the unverified `iss` selects one configured issuer, whose
//! pinned algorithm list the header's `alg` must be in; only then is a key looked up (JWKS
//! fetched lazily, cached per issuer, refreshed at most once per `min_refresh`) and the
//! signature, `exp`, `nbf`, `iss` and `aud` verified by `jsonwebtoken`.
//!
//! The header's `jku`, `x5u` and `jwk` are never followed: keys come only from the configured
//! (or discovered) JWKS of the issuer the configuration trusts.
//!
//! Invariant: the token never appears in errors or logs, and error messages name no claim value
//! other than the issuer, the algorithm, the key id and this service's audience (so no patient
//! or user identifier reaches a log line or a response body through an error).

use std::str::FromStr;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use base64::Engine;
use jsonwebtoken::jwk::{AlgorithmParameters, EllipticCurve, Jwk, PublicKeyUse};
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde_json::Value;

use super::backend::without_url;

/// Default minimum time between two JWKS fetches for one issuer: a flood of tokens naming
/// unknown key ids must not turn into a flood of requests to the authorization server.
const DEFAULT_MIN_REFRESH: Duration = Duration::from_secs(10);
/// Keys older than this are refetched on next use, so a key the issuer withdrew (rotated out,
/// compromised) stops being accepted within this time even when no unknown `kid` shows up.
const KEYS_MAX_AGE: Duration = Duration::from_secs(3600);
/// A JWKS or discovery request that takes longer fails: requests wait on it.
const FETCH_TIMEOUT: Duration = Duration::from_secs(10);
/// Upper bound on a JWKS or discovery document; a real one is a few KiB.
const MAX_DOCUMENT_BYTES: usize = 1 << 20;
/// Upper bound on a token; real ones are well under 4 KiB, and this bounds the work an
/// unauthenticated caller can make us do before the signature check.
const MAX_TOKEN_BYTES: usize = 16 * 1024;
/// Clock-skew allowance beyond which `exp` stops meaning much.
const MAX_LEEWAY_SECS: u64 = 300;
/// The algorithms an issuer may be pinned to: those SMART asks servers to support, all
/// asymmetric (HMAC would need a shared secret, and its presence invites key confusion).
const PINNABLE: [Algorithm; 4] = [
    Algorithm::RS256,
    Algorithm::RS384,
    Algorithm::ES256,
    Algorithm::ES384,
];
/// Issuer strings, algorithm names and key ids in messages come from the (unverified) token:
/// they are cut to this many characters so an attacker cannot blow up a log line.
const SHOWN_CHARS: usize = 200;

/// One trusted issuer from config.
#[derive(Debug, Clone)]
pub struct IssuerSettings {
    /// The exact `iss` value its tokens carry.
    pub issuer: String,
    /// Pinned algorithms: only RS256, RS384, ES256, ES384 are accepted ([`Verifier::new`]
    /// refuses others).
    pub algorithms: Vec<Algorithm>,
    /// None: discovered from `{issuer}/.well-known/openid-configuration` (field `jwks_uri`),
    /// falling back to `{issuer}/.well-known/smart-configuration`.
    pub jwks_uri: Option<String>,
}

/// What a request wants to do with scribe jobs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    Create,
    Read,
    Search,
    Delete,
}

impl Access {
    /// The SMART v2 permission letter.
    fn letter(self) -> char {
        match self {
            Access::Create => 'c',
            Access::Read => 'r',
            Access::Search => 's',
            Access::Delete => 'd',
        }
    }
}

/// The context a granted scope gives: system (all jobs), user, or patient. Ordered from the
/// narrowest to the widest.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum ScopeContext {
    Patient,
    User,
    System,
}

/// Who a verified token speaks for, and what it grants.
#[derive(Debug, Clone)]
pub struct Principal {
    /// The configured issuer string (equal to the token's `iss`).
    pub issuer: String,
    /// `sub`, else `client_id`, else "unknown".
    pub subject: String,
    /// `client_id` or `azp`.
    pub client_id: Option<String>,
    /// From `scope` (space-separated string) and `scp` (array, or string).
    pub scopes: Vec<String>,
    /// The SMART `patient` claim (an id like "p123").
    pub patient: Option<String>,
}

impl Principal {
    /// The widest context in which the token grants `access` on resource type `scribe`, or
    /// None.
    ///
    /// SMART v2: `{system|user|patient}/{scribe|*}.{cruds subset in order, e.g. c, rs, cruds}`;
    /// also v1 `.read` (= r, s), `.write` (= c, u, d) and `.*` (all). A v2 scope with a query
    /// (`system/scribe.rs?status=done`) narrows access in a way we do not evaluate, so it
    /// grants nothing rather than everything.
    pub fn context_for(&self, access: Access) -> Option<ScopeContext> {
        self.context_for_resource("scribe", access.letter())
    }

    /// The widest context in which the token grants permission `letter` (one of `cruds`) on
    /// FHIR resource type `resource` (or `scribe`), by an exact or a `*` scope; same rules
    /// as [`Principal::context_for`].
    pub fn context_for_resource(&self, resource: &str, letter: char) -> Option<ScopeContext> {
        self.scopes
            .iter()
            .filter_map(|s| scope_grant(s, resource, letter))
            .max()
    }

    /// The scope string to name in a 403 when `access` is missing.
    pub fn required_scope(access: Access) -> &'static str {
        match access {
            Access::Create => "system/scribe.c",
            Access::Read => "system/scribe.r",
            Access::Search => "system/scribe.s",
            Access::Delete => "system/scribe.d",
        }
    }

    fn from_claims(issuer: &str, claims: &Value) -> Principal {
        let client_id = string_claim(claims, "client_id").or_else(|| string_claim(claims, "azp"));
        let subject = string_claim(claims, "sub")
            .or_else(|| client_id.clone())
            .unwrap_or_else(|| "unknown".to_string());
        let mut scopes: Vec<String> = Vec::new();
        for name in ["scope", "scp"] {
            for s in scope_list(claims.get(name)) {
                if !scopes.contains(&s) {
                    scopes.push(s);
                }
            }
        }
        Principal {
            issuer: issuer.to_string(),
            subject,
            client_id,
            scopes,
            patient: string_claim(claims, "patient"),
        }
    }
}

/// The context `scope` grants for permission `letter` on `resource_type`, if any.
fn scope_grant(scope: &str, resource_type: &str, letter: char) -> Option<ScopeContext> {
    let (context, rest) = scope.split_once('/')?;
    let context = match context {
        "system" => ScopeContext::System,
        "user" => ScopeContext::User,
        "patient" => ScopeContext::Patient,
        _ => return None,
    };
    let (resource, permissions) = rest.split_once('.')?;
    if resource != resource_type && resource != "*" {
        return None;
    }
    let granted = match permissions {
        "read" => "rs",
        "write" => "cud",
        "*" => "cruds",
        p if is_cruds_subset(p) => p,
        _ => return None,
    };
    granted.contains(letter).then_some(context)
}

/// Whether `p` is a non-empty selection of `cruds` letters in that order, each at most once
/// (SMART v2 requires the order; anything else is a malformed scope and grants nothing).
fn is_cruds_subset(p: &str) -> bool {
    let mut rest = "cruds";
    !p.is_empty()
        && p.chars().all(|c| match rest.find(c) {
            Some(i) => {
                rest = &rest[i + 1..];
                true
            }
            None => false,
        })
}

fn string_claim(claims: &Value, name: &str) -> Option<String> {
    claims
        .get(name)?
        .as_str()
        .filter(|s| !s.is_empty())
        .map(str::to_string)
}

/// Scopes from a space-separated string or an array of strings (issuers differ).
fn scope_list(v: Option<&Value>) -> Vec<String> {
    match v {
        Some(Value::String(s)) => s.split_whitespace().map(str::to_string).collect(),
        Some(Value::Array(a)) => a
            .iter()
            .filter_map(Value::as_str)
            .flat_map(str::split_whitespace)
            .map(str::to_string)
            .collect(),
        _ => Vec::new(),
    }
}

#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    /// No bearer token at all.
    #[error("no bearer token was presented")]
    Missing,
    /// The Authorization header is there but is not `Bearer <token>` (see [`bearer_token`]).
    #[error("the Authorization header is not of the form `Bearer <token>`")]
    MalformedHeader,
    /// The token is not a well-formed signed JWT (or lacks a claim we require).
    #[error("the token is malformed: {0}")]
    Malformed(String),
    #[error("unsigned tokens (alg: none) are refused")]
    AlgNone,
    #[error("HMAC-signed tokens are refused")]
    Hmac,
    #[error("tokens from issuer {issuer} must not be signed with {alg} (allowed: {allowed})")]
    AlgNotAllowed {
        issuer: String,
        alg: String,
        allowed: String,
    },
    #[error("tokens from issuer {issuer} are not trusted")]
    UnknownIssuer { issuer: String },
    /// No key of the issuer fits the token's `kid` and algorithm, even after a refresh.
    #[error("issuer {issuer} has no {alg:?} signing key {}", kid.as_deref().map(|k| format!("with kid {k}")).unwrap_or_else(|| "that a token without kid could use (it needs exactly one)".into()))]
    UnknownKey {
        issuer: String,
        alg: Algorithm,
        kid: Option<String>,
    },
    #[error("the token's signature does not verify with the issuer's key")]
    BadSignature,
    #[error("the token has expired")]
    Expired,
    #[error("the token is not valid yet (nbf is in the future)")]
    NotYetValid,
    #[error("the token's audience is not this service (expected {expected})")]
    WrongAudience { expected: String },
    /// The issuer's keys could not be fetched: the token may well be good, so callers answer
    /// 503, not 401.
    #[error("the signing keys of issuer {issuer} could not be fetched: {reason}")]
    JwksUnavailable { issuer: String, reason: String },
    /// The settings given to [`Verifier::new`] are unusable.
    #[error("bad token-verification settings: {0}")]
    Config(String),
}

impl AuthError {
    /// A short stable label for metrics.
    pub fn reason(&self) -> &'static str {
        match self {
            AuthError::Missing => "missing",
            AuthError::MalformedHeader => "malformed_header",
            AuthError::Malformed(_) => "malformed",
            AuthError::AlgNone => "alg_none",
            AuthError::Hmac => "hmac",
            AuthError::AlgNotAllowed { .. } => "alg_not_allowed",
            AuthError::UnknownIssuer { .. } => "unknown_issuer",
            AuthError::UnknownKey { .. } => "unknown_key",
            AuthError::BadSignature => "bad_signature",
            AuthError::Expired => "expired",
            AuthError::NotYetValid => "not_yet_valid",
            AuthError::WrongAudience { .. } => "wrong_audience",
            AuthError::JwksUnavailable { .. } => "jwks_unavailable",
            AuthError::Config(_) => "config",
        }
    }

    /// The RFC 6750 error code: `invalid_request` when the request carries no usable
    /// Authorization header, `invalid_token` for everything wrong with the token itself.
    pub fn oauth_error(&self) -> &'static str {
        match self {
            AuthError::Missing | AuthError::MalformedHeader => "invalid_request",
            _ => "invalid_token",
        }
    }

    /// Whether the failure is ours (the issuer's keys are unreachable) rather than the
    /// token's: callers answer 503 and the client may retry with the same token.
    pub fn is_transient(&self) -> bool {
        matches!(self, AuthError::JwksUnavailable { .. })
    }
}

/// The token in an Authorization header value (`Bearer <token>`, scheme case-insensitive),
/// for HTTP layers that do not parse it themselves.
pub fn bearer_token(header: Option<&str>) -> Result<&str, AuthError> {
    let header = header.map(str::trim).filter(|h| !h.is_empty());
    let Some(header) = header else {
        return Err(AuthError::Missing);
    };
    match header.split_once(' ') {
        Some((scheme, token)) if scheme.eq_ignore_ascii_case("bearer") => {
            let token = token.trim();
            if token.is_empty() || token.contains(char::is_whitespace) {
                Err(AuthError::MalformedHeader)
            } else {
                Ok(token)
            }
        }
        _ => Err(AuthError::MalformedHeader),
    }
}

/// Locks a cache without letting one panic poison it for every later request: each critical
/// section reads or assigns whole values, so a panicking holder leaves a valid state.
fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// An attacker-controlled string made safe to put in a message: control characters replaced,
/// cut to [`SHOWN_CHARS`].
fn shown(s: &str) -> String {
    let mut out: String = s
        .chars()
        .take(SHOWN_CHARS)
        .map(|c| if c.is_control() { '?' } else { c })
        .collect();
    if s.chars().count() > SHOWN_CHARS {
        out.push('…');
    }
    out
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum KeyKind {
    Rsa,
    EcP256,
    EcP384,
}

struct CachedKey {
    kid: Option<String>,
    kind: KeyKind,
    /// The JWK's own `alg`, when it names one: the key is then used for that algorithm only.
    alg: Option<Algorithm>,
    key: Arc<DecodingKey>,
}

impl CachedKey {
    fn fits(&self, alg: Algorithm) -> bool {
        let kind_fits = match alg {
            Algorithm::RS256 | Algorithm::RS384 => self.kind == KeyKind::Rsa,
            Algorithm::ES256 => self.kind == KeyKind::EcP256,
            Algorithm::ES384 => self.kind == KeyKind::EcP384,
            _ => false,
        };
        kind_fits && self.alg.is_none_or(|a| a == alg)
    }
}

#[derive(Default)]
struct KeyCache {
    keys: Vec<CachedKey>,
    /// The last successful fetch.
    fetched_at: Option<Instant>,
    /// The last fetch attempt, successful or not (the refresh throttle counts attempts, so an
    /// unreachable JWKS endpoint is not hammered either).
    attempted_at: Option<Instant>,
    last_error: Option<String>,
}

impl KeyCache {
    /// The key a token with `kid` (or none) and `alg` must verify with.
    fn find(&self, kid: Option<&str>, alg: Algorithm) -> Option<Arc<DecodingKey>> {
        let mut fitting = self.keys.iter().filter(|k| k.fits(alg));
        match kid {
            Some(kid) => fitting
                .find(|k| k.kid.as_deref() == Some(kid))
                .map(|k| k.key.clone()),
            None => match (fitting.next(), fitting.next()) {
                (Some(only), None) => Some(only.key.clone()),
                _ => None,
            },
        }
    }

    fn is_fresh(&self) -> bool {
        self.fetched_at.is_some_and(|t| t.elapsed() < KEYS_MAX_AGE)
    }
}

struct IssuerState {
    settings: IssuerSettings,
    /// Configured, or filled in by discovery on first use.
    jwks_uri: Mutex<Option<String>>,
    keys: Mutex<KeyCache>,
    /// Held across a fetch so that concurrent requests needing a refresh wait for one fetch
    /// instead of each starting their own.
    refresh: tokio::sync::Mutex<()>,
}

/// Verifies bearer tokens against the configured issuers. `Send + Sync`; share it in an `Arc`.
pub struct Verifier {
    issuers: Vec<IssuerState>,
    audience: String,
    /// Further accepted audiences (the FHIR base URL).
    extra_audience: Vec<String>,
    leeway_secs: u64,
    http: reqwest::Client,
    min_refresh: Duration,
}

impl std::fmt::Debug for Verifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Verifier")
            .field(
                "issuers",
                &self.issuers.iter().map(|i| &i.settings).collect::<Vec<_>>(),
            )
            .field("audience", &self.audience)
            .field("leeway_secs", &self.leeway_secs)
            .field("min_refresh", &self.min_refresh)
            .finish()
    }
}

/// Whether `s` is an absolute http(s) URL.
fn is_http_url(s: &str) -> bool {
    reqwest::Url::parse(s).is_ok_and(|u| matches!(u.scheme(), "http" | "https") && u.has_host())
}

impl Verifier {
    /// `audience`: this service's URL (the `aud` tokens must carry, as a string or one element
    /// of an array). `leeway_secs`: clock-skew allowance for `exp` and `nbf`, at most 300.
    pub fn new(
        issuers: Vec<IssuerSettings>,
        audience: String,
        leeway_secs: u64,
        http: reqwest::Client,
    ) -> Result<Verifier, AuthError> {
        let bad = |m: String| Err(AuthError::Config(m));
        if issuers.is_empty() {
            return bad("no trusted issuer is configured".into());
        }
        if audience.trim().is_empty() {
            return bad("the audience (this service's URL) is empty".into());
        }
        if leeway_secs > MAX_LEEWAY_SECS {
            return bad(format!(
                "a leeway of {leeway_secs} s is more than {MAX_LEEWAY_SECS} s"
            ));
        }
        for (i, s) in issuers.iter().enumerate() {
            if s.issuer.is_empty() {
                return bad("an issuer is empty".into());
            }
            if issuers[..i].iter().any(|o| o.issuer == s.issuer) {
                return bad(format!("issuer {} is configured twice", s.issuer));
            }
            if s.algorithms.is_empty() {
                return bad(format!("issuer {} has no algorithms", s.issuer));
            }
            if let Some(a) = s.algorithms.iter().find(|a| !PINNABLE.contains(a)) {
                return bad(format!(
                    "issuer {}: {a:?} is not allowed (RS256, RS384, ES256 or ES384)",
                    s.issuer
                ));
            }
            match &s.jwks_uri {
                Some(u) if !is_http_url(u) => {
                    return bad(format!(
                        "issuer {}: jwks_uri {u} is not an http(s) URL",
                        s.issuer
                    ));
                }
                None if !is_http_url(&s.issuer) => {
                    return bad(format!(
                        "issuer {} is not an http(s) URL, so its keys cannot be discovered: set jwks_uri",
                        s.issuer
                    ));
                }
                _ => {}
            }
        }
        Ok(Verifier {
            issuers: issuers
                .into_iter()
                .map(|settings| IssuerState {
                    jwks_uri: Mutex::new(settings.jwks_uri.clone()),
                    settings,
                    keys: Mutex::new(KeyCache::default()),
                    refresh: tokio::sync::Mutex::new(()),
                })
                .collect(),
            audience,
            extra_audience: Vec::new(),
            leeway_secs,
            http,
            min_refresh: DEFAULT_MIN_REFRESH,
        })
    }

    /// The configured issuers, in order.
    pub fn issuers(&self) -> Vec<String> {
        self.issuers
            .iter()
            .map(|i| i.settings.issuer.clone())
            .collect()
    }

    /// Accepts tokens whose `aud` is `other` too (the FHIR base URL, as SMART clients send).
    pub fn with_audience(mut self, other: String) -> Self {
        self.extra_audience.push(other);
        self
    }

    /// Minimum time between two JWKS refreshes of one issuer (default 10 s); tests set it low.
    pub fn with_min_refresh(mut self, d: Duration) -> Self {
        self.min_refresh = d;
        self
    }

    /// Verifies a bearer token (the part after "Bearer ").
    pub async fn verify(&self, token: &str) -> Result<Principal, AuthError> {
        let token = token.trim();
        if token.is_empty() {
            return Err(AuthError::Missing);
        }
        if token.len() > MAX_TOKEN_BYTES {
            return Err(malformed("it is longer than 16 KiB"));
        }
        let parts: Vec<&str> = token.split('.').collect();
        match parts.len() {
            3 => {}
            5 => return Err(malformed("encrypted tokens (JWE) are not accepted")),
            _ => return Err(malformed("a signed JWT has three dot-separated parts")),
        }

        let header = decode_segment(parts[0], "header")?;
        let alg = match header.get("alg") {
            Some(Value::String(a)) => a.as_str(),
            _ => return Err(malformed("the header has no `alg`")),
        };
        if alg.eq_ignore_ascii_case("none") {
            return Err(AuthError::AlgNone);
        }
        if ["HS256", "HS384", "HS512"]
            .iter()
            .any(|h| alg.eq_ignore_ascii_case(h))
        {
            return Err(AuthError::Hmac);
        }
        let kid = match header.get("kid") {
            None | Some(Value::Null) => None,
            Some(Value::String(k)) => Some(k.as_str()),
            Some(_) => return Err(malformed("the header's `kid` is not a string")),
        };

        let payload = decode_segment(parts[1], "payload")?;
        let iss = match payload.get("iss") {
            Some(Value::String(i)) => i.as_str(),
            _ => return Err(malformed("it has no `iss` claim")),
        };
        let Some(issuer) = self.issuers.iter().find(|i| i.settings.issuer == iss) else {
            return Err(AuthError::UnknownIssuer { issuer: shown(iss) });
        };
        let pinned = &issuer.settings.algorithms;
        let Some(algorithm) = Algorithm::from_str(alg).ok().filter(|a| pinned.contains(a)) else {
            return Err(AuthError::AlgNotAllowed {
                issuer: issuer.settings.issuer.clone(),
                alg: shown(alg),
                allowed: pinned
                    .iter()
                    .map(|a| format!("{a:?}"))
                    .collect::<Vec<_>>()
                    .join(", "),
            });
        };

        let key = self.key(issuer, kid, algorithm).await?;

        let mut validation = Validation::new(algorithm);
        validation.set_issuer(&[&issuer.settings.issuer]);
        let mut audiences = vec![self.audience.as_str()];
        audiences.extend(self.extra_audience.iter().map(String::as_str));
        validation.set_audience(&audiences);
        // Without `aud` in the required claims, jsonwebtoken accepts a token that has none.
        validation.set_required_spec_claims(&["exp", "iss", "aud"]);
        validation.leeway = self.leeway_secs;
        validation.validate_exp = true;
        validation.validate_nbf = true;
        validation.validate_aud = true;
        let data = jsonwebtoken::decode::<Value>(token, &key, &validation)
            .map_err(|e| self.describe_jwt_error(&e))?;
        Ok(Principal::from_claims(
            &issuer.settings.issuer,
            &data.claims,
        ))
    }

    /// jsonwebtoken's error, described without the claim values its JSON errors can quote.
    fn describe_jwt_error(&self, e: &jsonwebtoken::errors::Error) -> AuthError {
        use jsonwebtoken::errors::ErrorKind as K;
        match e.kind() {
            K::ExpiredSignature => AuthError::Expired,
            K::ImmatureSignature => AuthError::NotYetValid,
            K::InvalidAudience => AuthError::WrongAudience {
                expected: self.audience.clone(),
            },
            K::MissingRequiredClaim(c) if c == "aud" => AuthError::WrongAudience {
                expected: self.audience.clone(),
            },
            K::MissingRequiredClaim(c) => {
                malformed(&format!("it has no valid `{}` claim", shown(c)))
            }
            K::InvalidSignature | K::Crypto(_) => AuthError::BadSignature,
            K::Json(_) => malformed("its header or payload is not the JSON a JWT needs"),
            K::Base64(_) => malformed("a part of it is not base64url"),
            K::Utf8(_) => malformed("its payload is not UTF-8"),
            // The rest (InvalidToken, InvalidAlgorithm, InvalidIssuer, ...) print only their name.
            _ => malformed(&e.to_string()),
        }
    }

    /// The key to verify a token from `st` with, refreshing the issuer's JWKS when the key is
    /// not cached (at most once per `min_refresh`).
    async fn key(
        &self,
        st: &IssuerState,
        kid: Option<&str>,
        alg: Algorithm,
    ) -> Result<Arc<DecodingKey>, AuthError> {
        {
            let cache = lock(&st.keys);
            if cache.is_fresh() {
                if let Some(k) = cache.find(kid, alg) {
                    return Ok(k);
                }
            }
        }
        let unknown = || AuthError::UnknownKey {
            issuer: st.settings.issuer.clone(),
            alg,
            kid: kid.map(shown),
        };
        let _one_fetch_at_a_time = st.refresh.lock().await;
        let stale = {
            let mut cache = lock(&st.keys);
            let found = cache.find(kid, alg);
            if let Some(k) = &found {
                if cache.is_fresh() {
                    // Another request refreshed while we waited.
                    return Ok(k.clone());
                }
            }
            if cache
                .attempted_at
                .is_some_and(|t| t.elapsed() < self.min_refresh)
            {
                return match (found, cache.fetched_at) {
                    (Some(k), _) => Ok(k),
                    (None, Some(_)) => Err(unknown()),
                    (None, None) => Err(AuthError::JwksUnavailable {
                        issuer: st.settings.issuer.clone(),
                        reason: cache
                            .last_error
                            .clone()
                            .unwrap_or_else(|| "not fetched yet".into()),
                    }),
                };
            }
            cache.attempted_at = Some(Instant::now());
            found
        };
        match self.fetch_keys(st).await {
            Ok(keys) => {
                tracing::debug!(
                    issuer = %st.settings.issuer,
                    keys = keys.len(),
                    "fetched the issuer's signing keys"
                );
                let mut cache = lock(&st.keys);
                cache.keys = keys;
                cache.fetched_at = Some(Instant::now());
                cache.last_error = None;
                cache.find(kid, alg).ok_or_else(unknown)
            }
            Err(reason) => {
                tracing::warn!(
                    issuer = %st.settings.issuer,
                    reason = %reason,
                    "could not fetch the issuer's signing keys"
                );
                lock(&st.keys).last_error = Some(reason.clone());
                // A key we already had is still better than refusing every request.
                stale.ok_or_else(|| AuthError::JwksUnavailable {
                    issuer: st.settings.issuer.clone(),
                    reason,
                })
            }
        }
    }

    async fn fetch_keys(&self, st: &IssuerState) -> Result<Vec<CachedKey>, String> {
        let uri = self.jwks_uri(st).await?;
        let doc = get_json(&self.http, &uri)
            .await
            .map_err(|r| format!("JWKS {uri}: {r}"))?;
        let Some(Value::Array(keys)) = doc.get("keys") else {
            return Err(format!("JWKS {uri}: not a JWK set (no `keys` array)"));
        };
        Ok(keys.iter().filter_map(usable_key).collect())
    }

    async fn jwks_uri(&self, st: &IssuerState) -> Result<String, String> {
        if let Some(u) = lock(&st.jwks_uri).clone() {
            return Ok(u);
        }
        let base = st.settings.issuer.trim_end_matches('/');
        let mut failures = Vec::new();
        for doc in ["openid-configuration", "smart-configuration"] {
            let url = format!("{base}/.well-known/{doc}");
            match get_json(&self.http, &url).await {
                Ok(v) => match v.get("jwks_uri").and_then(Value::as_str) {
                    Some(u) if is_http_url(u) => {
                        tracing::debug!(issuer = %st.settings.issuer, jwks_uri = u, "discovered the JWKS");
                        *lock(&st.jwks_uri) = Some(u.to_string());
                        return Ok(u.to_string());
                    }
                    _ => failures.push(format!("{doc}: no http(s) jwks_uri")),
                },
                Err(r) => failures.push(format!("{doc}: {r}")),
            }
        }
        Err(format!("JWKS discovery failed ({})", failures.join("; ")))
    }
}

fn malformed(why: &str) -> AuthError {
    AuthError::Malformed(why.to_string())
}

/// One JWT segment, base64url-decoded and parsed as a JSON object.
fn decode_segment(segment: &str, what: &str) -> Result<Value, AuthError> {
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(segment.trim_end_matches('='))
        .map_err(|_| malformed(&format!("its {what} is not base64url")))?;
    match serde_json::from_slice::<Value>(&bytes) {
        Ok(v @ Value::Object(_)) => Ok(v),
        _ => Err(malformed(&format!("its {what} is not a JSON object"))),
    }
}

/// The key of a JWKS document that a token with `kid` (or none) and `alg` verifies with: the
/// same choice the inbound verifier makes (used for the review app's `id_token`).
pub(crate) fn key_in(jwks: &Value, kid: Option<&str>, alg: Algorithm) -> Option<Arc<DecodingKey>> {
    let cache = KeyCache {
        keys: jwks["keys"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(usable_key)
            .collect(),
        ..KeyCache::default()
    };
    cache.find(kid, alg)
}

/// A JWK we can verify signatures with: RSA, or EC on P-256 / P-384, not marked for
/// encryption. Others (and unparsable entries) are skipped, not fatal: a JWKS may hold keys
/// for other purposes.
fn usable_key(v: &Value) -> Option<CachedKey> {
    let jwk: Jwk = serde_json::from_value(v.clone()).ok()?;
    if matches!(jwk.common.public_key_use, Some(PublicKeyUse::Encryption)) {
        return None;
    }
    let alg = match jwk.common.key_algorithm {
        // KeyAlgorithm prints its name; encryption algorithms (RSA-OAEP) do not parse.
        Some(a) => Some(Algorithm::from_str(&a.to_string()).ok()?),
        None => None,
    };
    let kind = match &jwk.algorithm {
        AlgorithmParameters::RSA(_) => KeyKind::Rsa,
        AlgorithmParameters::EllipticCurve(p) => match p.curve {
            EllipticCurve::P256 => KeyKind::EcP256,
            EllipticCurve::P384 => KeyKind::EcP384,
            _ => return None,
        },
        _ => return None,
    };
    let key = DecodingKey::from_jwk(&jwk).ok()?;
    Some(CachedKey {
        kid: jwk.common.key_id.clone(),
        kind,
        alg,
        key: Arc::new(key),
    })
}

/// GET a JSON document, bounded in time and size.
pub(crate) async fn get_json(http: &reqwest::Client, url: &str) -> Result<Value, String> {
    let mut resp = http
        .get(url)
        .header("Accept", "application/json")
        .timeout(FETCH_TIMEOUT)
        .send()
        .await
        .map_err(|e| without_url(&e))?;
    if !resp.status().is_success() {
        return Err(format!("HTTP {}", resp.status().as_u16()));
    }
    let mut body = Vec::new();
    while let Some(chunk) = resp.chunk().await.map_err(|e| without_url(&e))? {
        if body.len() + chunk.len() > MAX_DOCUMENT_BYTES {
            return Err("the document is larger than 1 MiB".into());
        }
        body.extend_from_slice(&chunk);
    }
    serde_json::from_slice(&body).map_err(|_| "the document is not JSON".to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use jsonwebtoken::{EncodingKey, Header};
    use serde_json::json;
    use std::collections::HashMap;
    use std::io::{BufRead, BufReader, Write};
    use std::net::TcpListener;
    use std::process::Command;
    use std::sync::OnceLock;

    const AUD: &str = "https://scribe.example/api";

    fn b64(bytes: &[u8]) -> String {
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
    }

    fn now() -> u64 {
        jsonwebtoken::get_current_timestamp()
    }

    // ------------------------------------------------------------------------------------------
    // Keys, made with the openssl CLI once per test run.
    // ------------------------------------------------------------------------------------------

    struct RsaKey {
        private_pem: Vec<u8>,
        public_pem: Vec<u8>,
        n: String,
    }
    struct EcKey {
        private_pem: Vec<u8>,
        x: String,
        y: String,
    }
    struct Keys {
        a: RsaKey,
        b: RsaKey,
        ec: EcKey,
    }

    fn openssl(dir: &std::path::Path, args: &[&str]) -> Vec<u8> {
        let out = Command::new("openssl")
            .args(args)
            .current_dir(dir)
            .output()
            .expect("run openssl");
        assert!(
            out.status.success(),
            "openssl {args:?} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        out.stdout
    }

    fn rsa_key(dir: &std::path::Path, name: &str) -> RsaKey {
        let file = format!("{name}.pem");
        openssl(
            dir,
            &[
                "genpkey",
                "-algorithm",
                "RSA",
                "-pkeyopt",
                "rsa_keygen_bits:2048",
                "-out",
                &file,
            ],
        );
        let public_pem = openssl(dir, &["pkey", "-in", &file, "-pubout"]);
        // `Modulus=HEX`; genpkey's public exponent is 65537 (AQAB).
        let modulus =
            String::from_utf8(openssl(dir, &["rsa", "-in", &file, "-noout", "-modulus"])).unwrap();
        let hex = modulus.trim().strip_prefix("Modulus=").unwrap();
        let bytes: Vec<u8> = (0..hex.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).unwrap())
            .collect();
        RsaKey {
            private_pem: std::fs::read(dir.join(&file)).unwrap(),
            public_pem,
            n: b64(&bytes),
        }
    }

    fn ec_key(dir: &std::path::Path) -> EcKey {
        openssl(
            dir,
            &[
                "genpkey",
                "-algorithm",
                "EC",
                "-pkeyopt",
                "ec_paramgen_curve:P-256",
                "-out",
                "ec.pem",
            ],
        );
        // SubjectPublicKeyInfo DER ends in the uncompressed point 04 || x || y.
        let der = openssl(
            dir,
            &["pkey", "-in", "ec.pem", "-pubout", "-outform", "DER"],
        );
        let point = &der[der.len() - 65..];
        assert_eq!(point[0], 4);
        EcKey {
            private_pem: std::fs::read(dir.join("ec.pem")).unwrap(),
            x: b64(&point[1..33]),
            y: b64(&point[33..]),
        }
    }

    fn keys() -> &'static Keys {
        static KEYS: OnceLock<Keys> = OnceLock::new();
        KEYS.get_or_init(|| {
            let dir = tempfile::tempdir().unwrap();
            Keys {
                a: rsa_key(dir.path(), "a"),
                b: rsa_key(dir.path(), "b"),
                ec: ec_key(dir.path()),
            }
        })
    }

    fn rsa_jwk(kid: &str, k: &RsaKey) -> Value {
        json!({"kty": "RSA", "kid": kid, "use": "sig", "n": k.n, "e": "AQAB"})
    }
    fn ec_jwk(kid: &str, k: &EcKey) -> Value {
        json!({"kty": "EC", "kid": kid, "crv": "P-256", "x": k.x, "y": k.y})
    }
    fn jwks(keys: &[Value]) -> String {
        json!({ "keys": keys }).to_string()
    }

    fn sign(alg: Algorithm, kid: Option<&str>, key: &EncodingKey, claims: &Value) -> String {
        let mut header = Header::new(alg);
        header.kid = kid.map(str::to_string);
        jsonwebtoken::encode(&header, claims, key).unwrap()
    }
    fn rsa_sign(alg: Algorithm, kid: Option<&str>, k: &RsaKey, claims: &Value) -> String {
        sign(
            alg,
            kid,
            &EncodingKey::from_rsa_pem(&k.private_pem).unwrap(),
            claims,
        )
    }

    // ------------------------------------------------------------------------------------------
    // A JWKS / discovery server: fixed bodies per path, requests counted.
    // ------------------------------------------------------------------------------------------

    #[derive(Clone)]
    struct Server {
        base: String,
        routes: Arc<Mutex<HashMap<String, String>>>,
        hits: Arc<Mutex<HashMap<String, usize>>>,
    }

    impl Server {
        fn start() -> Server {
            let listener = TcpListener::bind("127.0.0.1:0").unwrap();
            let server = Server {
                base: format!("http://{}", listener.local_addr().unwrap()),
                routes: Arc::default(),
                hits: Arc::default(),
            };
            let s = server.clone();
            std::thread::spawn(move || {
                for stream in listener.incoming() {
                    let Ok(mut stream) = stream else { continue };
                    let mut reader = BufReader::new(stream.try_clone().unwrap());
                    let mut request_line = String::new();
                    if reader.read_line(&mut request_line).is_err() {
                        continue;
                    }
                    loop {
                        let mut line = String::new();
                        match reader.read_line(&mut line) {
                            Ok(0) | Err(_) => break,
                            Ok(_) if line == "\r\n" || line == "\n" => break,
                            Ok(_) => {}
                        }
                    }
                    let path = request_line
                        .split_whitespace()
                        .nth(1)
                        .unwrap_or("")
                        .to_string();
                    *lock(&s.hits).entry(path.clone()).or_default() += 1;
                    let body = lock(&s.routes).get(&path).cloned();
                    let (status, body) = match body {
                        Some(b) => ("200 OK", b),
                        None => ("404 Not Found", "{}".to_string()),
                    };
                    let _ = write!(
                        stream,
                        "HTTP/1.1 {status}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                        body.len()
                    );
                }
            });
            server
        }
        fn set(&self, path: &str, body: String) {
            lock(&self.routes).insert(path.to_string(), body);
        }
        fn hits(&self, path: &str) -> usize {
            lock(&self.hits).get(path).copied().unwrap_or(0)
        }
        fn url(&self, path: &str) -> String {
            format!("{}{path}", self.base)
        }
    }

    /// The issuer is the server itself, its JWKS at /jwks.
    fn verifier(server: &Server, algorithms: &[Algorithm], leeway: u64) -> Verifier {
        Verifier::new(
            vec![IssuerSettings {
                issuer: server.base.clone(),
                algorithms: algorithms.to_vec(),
                jwks_uri: Some(server.url("/jwks")),
            }],
            AUD.to_string(),
            leeway,
            reqwest::Client::new(),
        )
        .unwrap()
    }

    fn claims(server: &Server) -> Value {
        json!({
            "iss": server.base,
            "aud": AUD,
            "exp": now() + 300,
            "iat": now(),
            "sub": "user-1",
            "client_id": "app-1",
            "scope": "system/scribe.cruds launch",
            "patient": "p123",
        })
    }

    /// A server with key A (kid "a") and a verifier pinned to RS256.
    fn setup() -> (Server, Verifier) {
        let server = Server::start();
        server.set("/jwks", jwks(&[rsa_jwk("a", &keys().a)]));
        let v = verifier(&server, &[Algorithm::RS256], 0);
        (server, v)
    }

    fn with(mut c: Value, key: &str, value: Value) -> Value {
        c[key] = value;
        c
    }

    #[tokio::test]
    async fn a_valid_token_gives_its_principal() {
        let (server, v) = setup();
        let t = rsa_sign(Algorithm::RS256, Some("a"), &keys().a, &claims(&server));
        let p = v.verify(&t).await.unwrap();
        assert_eq!(p.issuer, server.base);
        assert_eq!(p.subject, "user-1");
        assert_eq!(p.client_id.as_deref(), Some("app-1"));
        assert_eq!(p.scopes, ["system/scribe.cruds", "launch"]);
        assert_eq!(p.patient.as_deref(), Some("p123"));
        assert_eq!(p.context_for(Access::Create), Some(ScopeContext::System));

        // aud as an array holding ours; scp array; no sub: the client id stands in.
        let mut c = with(claims(&server), "aud", json!(["https://other", AUD]));
        let o = c.as_object_mut().unwrap();
        o.remove("sub");
        o.remove("scope");
        o.remove("client_id");
        o.remove("patient");
        o.insert("azp".into(), json!("app-2"));
        o.insert("scp".into(), json!(["user/scribe.rs"]));
        let t = rsa_sign(Algorithm::RS256, Some("a"), &keys().a, &c);
        let p = v.verify(&format!("  {t} ")).await.unwrap();
        assert_eq!(p.subject, "app-2");
        assert_eq!(p.client_id.as_deref(), Some("app-2"));
        assert_eq!(p.scopes, ["user/scribe.rs"]);
        assert_eq!(p.patient, None);
        assert_eq!(p.context_for(Access::Read), Some(ScopeContext::User));
        assert_eq!(p.context_for(Access::Create), None);
        // One JWKS fetch served both.
        assert_eq!(server.hits("/jwks"), 1);
    }

    #[tokio::test]
    async fn time_claims_are_enforced_with_leeway() {
        let (server, v) = setup();
        let k = &keys().a;
        let expired = rsa_sign(
            Algorithm::RS256,
            Some("a"),
            k,
            &with(claims(&server), "exp", json!(now() - 3600)),
        );
        let e = v.verify(&expired).await.unwrap_err();
        assert_eq!(e.reason(), "expired");
        assert_eq!(e.to_string(), "the token has expired");
        assert_eq!(e.oauth_error(), "invalid_token");

        let early = rsa_sign(
            Algorithm::RS256,
            Some("a"),
            k,
            &with(claims(&server), "nbf", json!(now() + 3600)),
        );
        assert_eq!(
            v.verify(&early).await.unwrap_err().reason(),
            "not_yet_valid"
        );

        let no_exp = {
            let mut c = claims(&server);
            c.as_object_mut().unwrap().remove("exp");
            rsa_sign(Algorithm::RS256, Some("a"), k, &c)
        };
        let e = v.verify(&no_exp).await.unwrap_err();
        assert_eq!(e.reason(), "malformed");
        assert!(e.to_string().contains("`exp`"), "{e}");

        // Just expired / just early, within a 60 s leeway: accepted.
        let lenient = verifier(&server, &[Algorithm::RS256], 60);
        let just = rsa_sign(
            Algorithm::RS256,
            Some("a"),
            k,
            &with(
                with(claims(&server), "exp", json!(now() - 10)),
                "nbf",
                json!(now() + 10),
            ),
        );
        lenient.verify(&just).await.unwrap();
        assert_eq!(v.verify(&just).await.unwrap_err().reason(), "expired");
    }

    #[tokio::test]
    async fn the_audience_must_be_this_service() {
        let (server, v) = setup();
        let k = &keys().a;
        for aud in [json!("https://other.example"), json!(["a", "b"])] {
            let t = rsa_sign(
                Algorithm::RS256,
                Some("a"),
                k,
                &with(claims(&server), "aud", aud),
            );
            let e = v.verify(&t).await.unwrap_err();
            assert_eq!(e.reason(), "wrong_audience");
            assert_eq!(
                e.to_string(),
                format!("the token's audience is not this service (expected {AUD})")
            );
        }
        let mut c = claims(&server);
        c.as_object_mut().unwrap().remove("aud");
        let t = rsa_sign(Algorithm::RS256, Some("a"), k, &c);
        assert_eq!(v.verify(&t).await.unwrap_err().reason(), "wrong_audience");
    }

    #[tokio::test]
    async fn unknown_issuers_are_refused_before_any_fetch() {
        let (server, v) = setup();
        let t = rsa_sign(
            Algorithm::RS256,
            Some("a"),
            &keys().a,
            &with(claims(&server), "iss", json!("https://evil.example")),
        );
        let e = v.verify(&t).await.unwrap_err();
        assert_eq!(e.reason(), "unknown_issuer");
        assert_eq!(
            e.to_string(),
            "tokens from issuer https://evil.example are not trusted"
        );
        assert_eq!(server.hits("/jwks"), 0);
    }

    #[tokio::test]
    async fn a_token_signed_by_another_key_under_a_known_kid_fails_the_signature() {
        let (server, v) = setup();
        let t = rsa_sign(Algorithm::RS256, Some("a"), &keys().b, &claims(&server));
        let e = v.verify(&t).await.unwrap_err();
        assert_eq!(e.reason(), "bad_signature");
        assert_eq!(
            e.to_string(),
            "the token's signature does not verify with the issuer's key"
        );
        // A tampered payload, likewise.
        let good = rsa_sign(Algorithm::RS256, Some("a"), &keys().a, &claims(&server));
        let parts: Vec<&str> = good.split('.').collect();
        let forged_payload = b64(with(claims(&server), "scope", json!("system/*.*"))
            .to_string()
            .as_bytes());
        let forged = format!("{}.{}.{}", parts[0], forged_payload, parts[2]);
        assert_eq!(
            v.verify(&forged).await.unwrap_err().reason(),
            "bad_signature"
        );
    }

    #[tokio::test]
    async fn unsigned_tokens_are_refused() {
        let (server, v) = setup();
        let payload = b64(claims(&server).to_string().as_bytes());
        for alg in ["none", "None", "NONE"] {
            let header = b64(json!({"alg": alg, "typ": "JWT"}).to_string().as_bytes());
            for t in [
                format!("{header}.{payload}."),
                format!("{header}.{payload}.x"),
            ] {
                let e = v.verify(&t).await.unwrap_err();
                assert_eq!(e.reason(), "alg_none");
                assert_eq!(e.to_string(), "unsigned tokens (alg: none) are refused");
            }
        }
        assert_eq!(server.hits("/jwks"), 0);
    }

    #[tokio::test]
    async fn hmac_tokens_keyed_with_the_public_key_are_refused() {
        let (server, v) = setup();
        let key = EncodingKey::from_secret(&keys().a.public_pem);
        for alg in [Algorithm::HS256, Algorithm::HS384, Algorithm::HS512] {
            let t = sign(alg, Some("a"), &key, &claims(&server));
            let e = v.verify(&t).await.unwrap_err();
            assert_eq!(e.reason(), "hmac");
            assert_eq!(e.to_string(), "HMAC-signed tokens are refused");
        }
        assert_eq!(server.hits("/jwks"), 0);
    }

    #[tokio::test]
    async fn algorithms_outside_the_issuers_pin_are_refused() {
        let (server, v) = setup();
        let t = rsa_sign(Algorithm::RS384, Some("a"), &keys().a, &claims(&server));
        let e = v.verify(&t).await.unwrap_err();
        assert_eq!(e.reason(), "alg_not_allowed");
        assert!(e.to_string().contains("RS384"), "{e}");
        assert!(e.to_string().contains("allowed: RS256"), "{e}");
        let t = rsa_sign(Algorithm::PS256, Some("a"), &keys().a, &claims(&server));
        let e = v.verify(&t).await.unwrap_err();
        assert_eq!(e.reason(), "alg_not_allowed");
        assert!(e.to_string().contains("PS256"), "{e}");
        assert_eq!(server.hits("/jwks"), 0);
    }

    #[tokio::test]
    async fn an_unknown_kid_refreshes_once_per_min_refresh() {
        let server = Server::start();
        server.set("/jwks", jwks(&[rsa_jwk("a", &keys().a)]));
        let min = Duration::from_millis(700);
        let v = verifier(&server, &[Algorithm::RS256], 0).with_min_refresh(min);
        let c = claims(&server);
        v.verify(&rsa_sign(Algorithm::RS256, Some("a"), &keys().a, &c))
            .await
            .unwrap();
        assert_eq!(server.hits("/jwks"), 1);

        // The issuer rotates in key B.
        server.set(
            "/jwks",
            jwks(&[rsa_jwk("a", &keys().a), rsa_jwk("b", &keys().b)]),
        );
        let with_b = rsa_sign(Algorithm::RS256, Some("b"), &keys().b, &c);
        // Within min_refresh of the first fetch: no refetch, the key is unknown.
        let e = v.verify(&with_b).await.unwrap_err();
        assert_eq!(e.reason(), "unknown_key");
        assert!(e.to_string().contains("kid b"), "{e}");
        assert_eq!(server.hits("/jwks"), 1);

        tokio::time::sleep(min + Duration::from_millis(100)).await;
        v.verify(&with_b).await.unwrap();
        assert_eq!(server.hits("/jwks"), 2, "exactly one refresh");

        // An unknown kid right after: one refresh is due only after min_refresh.
        let with_c = rsa_sign(Algorithm::RS256, Some("c"), &keys().b, &c);
        for _ in 0..3 {
            assert_eq!(v.verify(&with_c).await.unwrap_err().reason(), "unknown_key");
        }
        assert_eq!(server.hits("/jwks"), 2);
        tokio::time::sleep(min + Duration::from_millis(100)).await;
        assert_eq!(v.verify(&with_c).await.unwrap_err().reason(), "unknown_key");
        assert_eq!(server.hits("/jwks"), 3);
        assert_eq!(v.verify(&with_c).await.unwrap_err().reason(), "unknown_key");
        assert_eq!(server.hits("/jwks"), 3);
        // Known keys keep working throughout, from the cache.
        v.verify(&rsa_sign(Algorithm::RS256, Some("a"), &keys().a, &c))
            .await
            .unwrap();
        assert_eq!(server.hits("/jwks"), 3);
    }

    #[tokio::test]
    async fn a_token_without_kid_uses_the_only_key_of_its_type() {
        let server = Server::start();
        let k = keys();
        server.set(
            "/jwks",
            jwks(&[
                rsa_jwk("a", &k.a),
                ec_jwk("e", &k.ec),
                json!({"kty": "RSA", "kid": "enc", "use": "enc", "n": k.b.n, "e": "AQAB"}),
                json!({"kty": "oct", "kid": "s", "k": "c2VjcmV0"}),
                json!({"kty": "bogus"}),
            ]),
        );
        let v = verifier(&server, &[Algorithm::RS256, Algorithm::ES256], 0);
        let c = claims(&server);
        v.verify(&rsa_sign(Algorithm::RS256, None, &k.a, &c))
            .await
            .unwrap();
        let ec = EncodingKey::from_ec_pem(&k.ec.private_pem).unwrap();
        v.verify(&sign(Algorithm::ES256, None, &ec, &c))
            .await
            .unwrap();
        v.verify(&sign(Algorithm::ES256, Some("e"), &ec, &c))
            .await
            .unwrap();
        // The EC key's kid with an RSA algorithm names no usable key.
        let e = v
            .verify(&rsa_sign(Algorithm::RS256, Some("e"), &k.a, &c))
            .await
            .unwrap_err();
        assert_eq!(e.reason(), "unknown_key");
        // The encryption key is not a signing key.
        let e = v
            .verify(&rsa_sign(Algorithm::RS256, Some("enc"), &k.b, &c))
            .await
            .unwrap_err();
        assert_eq!(e.reason(), "unknown_key");

        // Two RSA signing keys: a token without kid is ambiguous.
        let server2 = Server::start();
        server2.set("/jwks", jwks(&[rsa_jwk("a", &k.a), rsa_jwk("b", &k.b)]));
        let v2 = verifier(&server2, &[Algorithm::RS256], 0);
        let e = v2
            .verify(&rsa_sign(Algorithm::RS256, None, &k.a, &claims(&server2)))
            .await
            .unwrap_err();
        assert_eq!(e.reason(), "unknown_key");
        assert!(e.to_string().contains("without kid"), "{e}");
    }

    #[tokio::test]
    async fn a_jwk_alg_restricts_its_key() {
        let server = Server::start();
        let mut jwk = rsa_jwk("a", &keys().a);
        jwk["alg"] = json!("RS384");
        server.set("/jwks", jwks(&[jwk]));
        let v = verifier(&server, &[Algorithm::RS256, Algorithm::RS384], 0);
        let c = claims(&server);
        v.verify(&rsa_sign(Algorithm::RS384, Some("a"), &keys().a, &c))
            .await
            .unwrap();
        let e = v
            .verify(&rsa_sign(Algorithm::RS256, Some("a"), &keys().a, &c))
            .await
            .unwrap_err();
        assert_eq!(e.reason(), "unknown_key");
    }

    #[tokio::test]
    async fn keys_are_discovered_from_openid_then_smart_configuration() {
        let server = Server::start();
        server.set("/keys.json", jwks(&[rsa_jwk("a", &keys().a)]));
        server.set(
            "/.well-known/smart-configuration",
            json!({"jwks_uri": server.url("/keys.json")}).to_string(),
        );
        let v = Verifier::new(
            vec![IssuerSettings {
                issuer: format!("{}/", server.base),
                algorithms: vec![Algorithm::RS256],
                jwks_uri: None,
            }],
            AUD.into(),
            0,
            reqwest::Client::new(),
        )
        .unwrap();
        let c = with(claims(&server), "iss", json!(format!("{}/", server.base)));
        let t = rsa_sign(Algorithm::RS256, Some("a"), &keys().a, &c);
        let p = v.verify(&t).await.unwrap();
        assert_eq!(p.issuer, format!("{}/", server.base));
        assert_eq!(server.hits("/.well-known/openid-configuration"), 1);
        assert_eq!(server.hits("/.well-known/smart-configuration"), 1);
        assert_eq!(server.hits("/keys.json"), 1);

        // OpenID configuration wins when present.
        let server = Server::start();
        server.set("/k", jwks(&[rsa_jwk("a", &keys().a)]));
        server.set(
            "/.well-known/openid-configuration",
            json!({"issuer": server.base, "jwks_uri": server.url("/k")}).to_string(),
        );
        let v = Verifier::new(
            vec![IssuerSettings {
                issuer: server.base.clone(),
                algorithms: vec![Algorithm::RS256],
                jwks_uri: None,
            }],
            AUD.into(),
            0,
            reqwest::Client::new(),
        )
        .unwrap()
        .with_min_refresh(Duration::ZERO);
        let t = rsa_sign(Algorithm::RS256, Some("a"), &keys().a, &claims(&server));
        v.verify(&t).await.unwrap();
        // A refresh (unknown kid) reuses the discovered URI.
        let t2 = rsa_sign(Algorithm::RS256, Some("zz"), &keys().a, &claims(&server));
        assert_eq!(v.verify(&t2).await.unwrap_err().reason(), "unknown_key");
        assert_eq!(server.hits("/.well-known/openid-configuration"), 1);
        assert_eq!(server.hits("/.well-known/smart-configuration"), 0);
        assert_eq!(server.hits("/k"), 2);
    }

    #[tokio::test]
    async fn unreachable_keys_are_a_transient_failure() {
        let closed = TcpListener::bind("127.0.0.1:0").unwrap();
        let base = format!("http://{}", closed.local_addr().unwrap());
        drop(closed);
        let v = Verifier::new(
            vec![IssuerSettings {
                issuer: base.clone(),
                algorithms: vec![Algorithm::RS256],
                jwks_uri: None,
            }],
            AUD.into(),
            0,
            reqwest::Client::new(),
        )
        .unwrap();
        let t = rsa_sign(
            Algorithm::RS256,
            Some("a"),
            &keys().a,
            &json!({"iss": base, "aud": AUD, "exp": now() + 60}),
        );
        let e = v.verify(&t).await.unwrap_err();
        assert_eq!(e.reason(), "jwks_unavailable");
        assert!(e.is_transient());
        assert!(e.to_string().contains("discovery failed"), "{e}");
        assert!(!e.to_string().contains(&t));
        // Within min_refresh, the failure is remembered rather than retried.
        let e = v.verify(&t).await.unwrap_err();
        assert_eq!(e.reason(), "jwks_unavailable");

        // A JWKS endpoint answering 404.
        let server = Server::start();
        let v = verifier(&server, &[Algorithm::RS256], 0);
        let t = rsa_sign(Algorithm::RS256, Some("a"), &keys().a, &claims(&server));
        let e = v.verify(&t).await.unwrap_err();
        assert_eq!(e.reason(), "jwks_unavailable");
        assert!(e.to_string().contains("HTTP 404"), "{e}");
    }

    #[tokio::test]
    async fn malformed_tokens_and_headers() {
        let (server, v) = setup();
        let e = v.verify("").await.unwrap_err();
        assert_eq!(
            (e.reason(), e.oauth_error()),
            ("missing", "invalid_request")
        );
        for t in ["abc", "a.b", "a.b.c.d", "!!.??.x", "e30.e30.x"] {
            let e = v.verify(t).await.unwrap_err();
            assert_eq!(
                (e.reason(), e.oauth_error()),
                ("malformed", "invalid_token"),
                "{t}: {e}"
            );
        }
        assert_eq!(
            v.verify("a.b.c.d.e").await.unwrap_err().to_string(),
            "the token is malformed: encrypted tokens (JWE) are not accepted"
        );
        assert_eq!(
            v.verify(&"x".repeat(MAX_TOKEN_BYTES + 1))
                .await
                .unwrap_err()
                .reason(),
            "malformed"
        );

        // A claim value in the wrong type never reaches the message.
        let t = rsa_sign(
            Algorithm::RS256,
            Some("a"),
            &keys().a,
            &with(claims(&server), "exp", json!("Jane Doe 1970-01-01")),
        );
        let e = v.verify(&t).await.unwrap_err();
        assert_eq!(e.reason(), "malformed");
        assert!(!e.to_string().contains("Jane"), "{e}");
        // Nor does the token.
        assert!(!e.to_string().contains(&t[..20]));

        assert!(matches!(bearer_token(None), Err(AuthError::Missing)));
        assert!(matches!(bearer_token(Some("  ")), Err(AuthError::Missing)));
        assert_eq!(
            bearer_token(Some("Bearer abc.def.ghi")).unwrap(),
            "abc.def.ghi"
        );
        assert_eq!(bearer_token(Some("bearer  x ")).unwrap(), "x");
        for h in [
            "Basic dXNlcjpwdw==",
            "Bearer",
            "Bearer ",
            "Bearer a b",
            "abc",
        ] {
            let e = bearer_token(Some(h)).unwrap_err();
            assert_eq!(
                (e.reason(), e.oauth_error()),
                ("malformed_header", "invalid_request"),
                "{h}"
            );
        }
    }

    #[test]
    fn settings_are_checked() {
        let ok = IssuerSettings {
            issuer: "https://ehr.example/auth".into(),
            algorithms: vec![Algorithm::RS384, Algorithm::ES384],
            jwks_uri: None,
        };
        let new = |issuers: Vec<IssuerSettings>, aud: &str, leeway| {
            Verifier::new(issuers, aud.into(), leeway, reqwest::Client::new())
        };
        new(vec![ok.clone()], AUD, 30).unwrap();
        let refused = |r: Result<Verifier, AuthError>, needle: &str| {
            let e = r.unwrap_err();
            assert_eq!(e.reason(), "config");
            assert!(e.to_string().contains(needle), "{e}");
        };
        for alg in [
            Algorithm::HS256,
            Algorithm::PS256,
            Algorithm::RS512,
            Algorithm::EdDSA,
        ] {
            let s = IssuerSettings {
                algorithms: vec![Algorithm::RS256, alg],
                ..ok.clone()
            };
            refused(new(vec![s], AUD, 0), &format!("{alg:?} is not allowed"));
        }
        refused(
            new(
                vec![IssuerSettings {
                    algorithms: vec![],
                    ..ok.clone()
                }],
                AUD,
                0,
            ),
            "no algorithms",
        );
        refused(new(vec![], AUD, 0), "no trusted issuer");
        refused(new(vec![ok.clone()], " ", 0), "audience");
        refused(new(vec![ok.clone()], AUD, 3600), "leeway");
        refused(new(vec![ok.clone(), ok.clone()], AUD, 0), "twice");
        refused(
            new(
                vec![IssuerSettings {
                    issuer: "urn:ehr".into(),
                    ..ok.clone()
                }],
                AUD,
                0,
            ),
            "set jwks_uri",
        );
        new(
            vec![IssuerSettings {
                issuer: "urn:ehr".into(),
                jwks_uri: Some("https://ehr.example/jwks".into()),
                ..ok.clone()
            }],
            AUD,
            0,
        )
        .unwrap();
        refused(
            new(
                vec![IssuerSettings {
                    jwks_uri: Some("file:///etc/jwks".into()),
                    ..ok
                }],
                AUD,
                0,
            ),
            "not an http(s) URL",
        );
    }

    #[test]
    fn scopes_grant_by_context() {
        let p = |scopes: &[&str]| Principal {
            issuer: "i".into(),
            subject: "s".into(),
            client_id: None,
            scopes: scopes.iter().map(|s| s.to_string()).collect(),
            patient: None,
        };
        use Access::*;
        use ScopeContext::*;
        let all = [Create, Read, Search, Delete];
        let grants = |scopes: &[&str]| all.map(|a| p(scopes).context_for(a));

        assert_eq!(grants(&["system/scribe.cruds"]), [Some(System); 4]);
        assert_eq!(
            grants(&["system/scribe.rs"]),
            [None, Some(System), Some(System), None]
        );
        assert_eq!(
            grants(&["patient/scribe.c"]),
            [Some(Patient), None, None, None]
        );
        assert_eq!(
            grants(&["user/*.read"]),
            [None, Some(User), Some(User), None]
        );
        assert_eq!(
            grants(&["system/scribe.write"]),
            [Some(System), None, None, Some(System)]
        );
        assert_eq!(grants(&["system/*.*"]), [Some(System); 4]);
        assert_eq!(grants(&["system/Patient.r"]), [None; 4]);
        assert_eq!(
            grants(&["system/Patient.cruds", "launch", "openid"]),
            [None; 4]
        );
        // Malformed v2 permissions, queries and unknown contexts grant nothing.
        for s in [
            "system/scribe.sr",
            "system/scribe.cc",
            "system/scribe.x",
            "system/scribe.",
            "system/scribe.rs?status=done",
            "admin/scribe.cruds",
            "system/Scribe.c",
            "scribe.c",
            "",
        ] {
            assert_eq!(grants(&[s]), [None; 4], "{s}");
        }
        // The widest context wins.
        assert_eq!(
            p(&["patient/scribe.r", "system/scribe.rs", "user/scribe.r"]).context_for(Read),
            Some(System)
        );
        assert_eq!(
            p(&["patient/scribe.cruds", "user/scribe.rs"]).context_for(Search),
            Some(User)
        );

        assert_eq!(Principal::required_scope(Create), "system/scribe.c");
        assert_eq!(Principal::required_scope(Read), "system/scribe.r");
        assert_eq!(Principal::required_scope(Search), "system/scribe.s");
        assert_eq!(Principal::required_scope(Delete), "system/scribe.d");
    }

    #[test]
    fn the_verifier_can_be_shared_across_tasks() {
        fn send_sync<T: Send + Sync + 'static>() {}
        send_sync::<Verifier>();
        send_sync::<AuthError>();
        send_sync::<Principal>();
    }

    #[test]
    fn shown_strings_are_bounded_and_single_line() {
        assert_eq!(shown("a\nb\u{1b}c"), "a?b?c");
        let long = "x".repeat(1000);
        assert_eq!(shown(&long).chars().count(), SHOWN_CHARS + 1);
    }
}

//! Who is calling: the bearer token verified by [`crate::smart::inbound::Verifier`], the scope
//! a route needs, what the caller may see, and a per-client rate limit.
//!
//! 401 answers carry `WWW-Authenticate: Bearer error=…` (RFC 6750); 403 names the missing
//! scope. Every refusal is counted by reason in `fhirscribe_auth_failures_total`; a token is
//! never logged.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Instant;

use actix_web::http::StatusCode;
use actix_web::HttpRequest;

use super::error::ApiError;
use crate::jobs::service::{Caller, Visibility};
use crate::metrics::Metrics;
use crate::smart::inbound::{bearer_token, Access, AuthError, Principal, ScopeContext, Verifier};

/// How requests are authenticated.
pub struct Auth {
    /// None only with `--insecure-no-auth`.
    verifier: Option<Verifier>,
    limiter: RateLimiter,
    metrics: Arc<Metrics>,
}

impl Auth {
    pub fn new(verifier: Option<Verifier>, per_minute: u32, metrics: Arc<Metrics>) -> Self {
        Self {
            verifier,
            limiter: RateLimiter::new(per_minute),
            metrics,
        }
    }

    fn fail(&self, reason: &str) {
        self.metrics.inc(
            "fhirscribe_auth_failures_total",
            format!("reason=\"{reason}\""),
        );
    }

    /// The caller of `req` if its token grants `access`.
    pub async fn caller(&self, req: &HttpRequest, access: Access) -> Result<Caller, ApiError> {
        let Some(principal) = self.verified(req).await? else {
            return self.limit(Caller {
                subject: "anonymous".into(),
                visibility: Visibility::All,
            });
        };
        let caller = match grant(&principal, access) {
            Ok(c) => c,
            Err(e) => {
                self.fail("insufficient_scope");
                return Err(e);
            }
        };
        self.limit(caller)
    }

    /// The verified, rate-limited token of `req`, for routes that check scopes per FHIR
    /// resource type themselves; None when authentication is off (`--insecure-no-auth`).
    pub async fn principal(&self, req: &HttpRequest) -> Result<Option<Principal>, ApiError> {
        let p = self.verified(req).await?;
        let subject = p.as_ref().map_or("anonymous".to_owned(), |p| {
            p.client_id.clone().unwrap_or_else(|| p.subject.clone())
        });
        self.limit(Caller {
            subject,
            visibility: Visibility::All,
        })?;
        Ok(p)
    }

    /// The configured token issuers.
    pub fn issuers(&self) -> Vec<String> {
        self.verifier
            .as_ref()
            .map(|v| v.issuers())
            .unwrap_or_default()
    }

    async fn verified(&self, req: &HttpRequest) -> Result<Option<Principal>, ApiError> {
        let Some(verifier) = &self.verifier else {
            return Ok(None);
        };
        let header = req
            .headers()
            .get(actix_web::http::header::AUTHORIZATION)
            .map(|v| v.to_str().unwrap_or("\u{0}"));
        let principal = match bearer_token(header) {
            Ok(token) => verifier.verify(token).await,
            Err(e) => Err(e),
        };
        match principal {
            Ok(p) => Ok(Some(p)),
            Err(e) => {
                self.fail(e.reason());
                Err(unauthorized(&e))
            }
        }
    }

    fn limit(&self, caller: Caller) -> Result<Caller, ApiError> {
        if self.limiter.allow(&caller.subject) {
            Ok(caller)
        } else {
            self.metrics
                .inc("fhirscribe_rejections_total", "reason=\"rate_limited\"");
            Err(ApiError::new(
                StatusCode::TOO_MANY_REQUESTS,
                "LimitExceededException",
                format!(
                    "too many requests from this client (limit {} per minute); slow down",
                    self.limiter.per_minute
                ),
            )
            .with_header("Retry-After", "1".into()))
        }
    }
}

fn unauthorized(e: &AuthError) -> ApiError {
    if e.is_transient() {
        return ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "ServiceUnavailableException",
            format!("cannot check the token now: {e}"),
        )
        .with_header("Retry-After", "5".into());
    }
    let description = e.to_string().replace('"', "'");
    let challenge = if matches!(e, AuthError::Missing) {
        "Bearer realm=\"fhirscribe\"".to_string()
    } else {
        format!(
            "Bearer realm=\"fhirscribe\", error=\"{}\", error_description=\"{description}\"",
            e.oauth_error()
        )
    };
    ApiError::new(
        StatusCode::UNAUTHORIZED,
        "UnauthorizedException",
        e.to_string(),
    )
    .with_header("WWW-Authenticate", challenge)
}

/// What a verified token may do: the widest context granting `access`, narrowed to the
/// token's patient (patient scopes, or user scopes from a launch with a patient) or to its
/// own jobs (user scopes without one).
pub fn grant(p: &Principal, access: Access) -> Result<Caller, ApiError> {
    let scope = Principal::required_scope(access);
    let forbidden = |m: String| {
        ApiError::new(StatusCode::FORBIDDEN, "AccessDeniedException", m).with_header(
            "WWW-Authenticate",
            format!("Bearer realm=\"fhirscribe\", error=\"insufficient_scope\", scope=\"{scope}\""),
        )
    };
    let visibility = match p.context_for(access) {
        None => {
            return Err(forbidden(format!(
                "the access token lacks the scope {scope} (or its user/patient form) this request needs"
            )))
        }
        Some(ScopeContext::System) => Visibility::All,
        Some(ScopeContext::User) => match &p.patient {
            Some(pt) => Visibility::Patient(pt.clone()),
            None => Visibility::Subject(p.subject.clone()),
        },
        Some(ScopeContext::Patient) => match &p.patient {
            Some(pt) => Visibility::Patient(pt.clone()),
            None => {
                return Err(forbidden(
                    "a patient-scoped token must carry a patient claim (a SMART launch context)"
                        .into(),
                ))
            }
        },
    };
    // A user's jobs are the user's (`sub`), whichever app made them; otherwise the client.
    let subject = match visibility {
        Visibility::Subject(_) => p.subject.clone(),
        _ => p.client_id.clone().unwrap_or_else(|| p.subject.clone()),
    };
    Ok(Caller {
        subject,
        visibility,
    })
}

/// A token bucket per client: `per_minute` requests, refilled continuously.
struct RateLimiter {
    per_minute: u32,
    buckets: Mutex<HashMap<String, (f64, Instant)>>,
}

impl RateLimiter {
    fn new(per_minute: u32) -> Self {
        Self {
            per_minute,
            buckets: Mutex::new(HashMap::new()),
        }
    }

    fn allow(&self, client: &str) -> bool {
        let cap = self.per_minute as f64;
        let mut b = self.buckets.lock().unwrap_or_else(PoisonError::into_inner);
        if b.len() > 100_000 {
            b.clear(); // a flood of distinct ids must not grow memory without bound
        }
        let now = Instant::now();
        let (tokens, last) = b.entry(client.to_owned()).or_insert((cap, now));
        *tokens = (*tokens + now.duration_since(*last).as_secs_f64() * cap / 60.0).min(cap);
        *last = now;
        if *tokens >= 1.0 {
            *tokens -= 1.0;
            true
        } else {
            false
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn principal(scopes: &[&str], patient: Option<&str>) -> Principal {
        Principal {
            issuer: "https://i".into(),
            subject: "sub-1".into(),
            client_id: Some("engine".into()),
            scopes: scopes.iter().map(|s| s.to_string()).collect(),
            patient: patient.map(str::to_owned),
        }
    }

    #[test]
    fn scopes_decide_what_a_caller_sees() {
        let c = grant(&principal(&["system/scribe.cruds"], None), Access::Create).unwrap();
        assert_eq!(c.visibility, Visibility::All);
        let c = grant(&principal(&["patient/scribe.rs"], Some("p1")), Access::Read).unwrap();
        assert_eq!(c.visibility, Visibility::Patient("p1".into()));
        let e = grant(&principal(&["patient/scribe.rs"], None), Access::Read).unwrap_err();
        assert_eq!(e.status, StatusCode::FORBIDDEN);
        let e = grant(&principal(&["system/scribe.rs"], None), Access::Create).unwrap_err();
        assert!(e.message.contains("system/scribe.c"), "{}", e.message);
        let c = grant(&principal(&["user/scribe.c"], None), Access::Create).unwrap();
        assert_eq!(c.visibility, Visibility::Subject("sub-1".into()));
    }

    #[test]
    fn the_rate_limit_refuses_a_burst_beyond_the_budget() {
        let l = RateLimiter::new(3);
        assert!(l.allow("a") && l.allow("a") && l.allow("a"));
        assert!(!l.allow("a"));
        assert!(l.allow("b"), "budgets are per client");
    }
}

//! SMART App Launch 2 as the client (issue 18, first part): the EHR launch and the standalone
//! launch of the review app. Knows no HTTP framework and no store: the UI routes keep a
//! [`PendingLogin`] server-side between [`Launcher::begin`] and [`Launcher::complete`].
//!
//! Invariants (and why):
//! - **Only configured EHRs.** `iss` must equal a configured EHR's FHIR base; anything else is
//!   refused before any request leaves (an open redirector or SSRF otherwise).
//! - **PKCE S256 and `state` always**, both 256 random bits, one-time: a login is completed at
//!   most once, with the verifier that matches its challenge.
//! - **`aud` = `iss`**, so the EHR's authorization server mints a token for that FHIR server.
//! - Tokens and codes never appear in errors, logs or `Debug` output.

use std::time::Duration;

use base64::Engine as _;
use rand::RngCore;
use serde::{Deserialize, Serialize};
use sha2::Digest;

/// The default scopes of the review app (SMART v2). Provenance is a `user/` scope: a
/// Provenance about a Condition is not in the patient's compartment (FHIR's compartment
/// definition counts only Patient targets), so servers that confine `patient/` scopes to the
/// compartment (HFS does) refuse it under `patient/Provenance.c`; the clinician may record
/// provenance of what they sign.
pub const DEFAULT_SCOPE: &str = "launch openid fhirUser patient/Patient.r patient/Encounter.r \
patient/DocumentReference.cu patient/Condition.cu patient/MedicationStatement.cu user/Provenance.c";

/// How long a started login may take before its callback is refused.
pub const LOGIN_TTL: Duration = Duration::from_secs(600);

#[derive(Debug, thiserror::Error)]
pub enum LaunchError {
    /// The launch named an FHIR server that is not configured (`iss` is shown: it came from
    /// the request and is no secret).
    #[error("{iss} is not an EHR this fhirscribe is configured for")]
    UnknownIssuer { iss: String },
    #[error("the launch request is missing `{0}`")]
    Missing(&'static str),
    /// The EHR's discovery document could not be read.
    #[error("cannot read {url}: {reason}")]
    Discovery { url: String, reason: String },
    /// `state` unknown, already used or expired.
    #[error("this login is unknown, was already completed or took longer than 10 minutes: start again from the EHR")]
    UnknownState,
    /// The authorization server refused the code (replayed, wrong verifier, expired).
    #[error("the authorization server refused the login: {error}")]
    Refused { error: String },
    #[error("the authorization server is unavailable: {0}")]
    Unavailable(String),
}

/// The app's registration at one EHR's authorization server.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AppRegistration {
    /// The EHR's name (`[[ehr]].name`).
    pub ehr: String,
    /// The EHR's FHIR base: the `iss` of its launches and the `aud` of its tokens.
    pub fhir_base: String,
    pub client_id: String,
    /// This service's callback URL, as registered.
    pub redirect_uri: String,
    pub scope: String,
}

/// The EHR's OAuth endpoints, from `{iss}/.well-known/smart-configuration`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct Endpoints {
    pub authorization_endpoint: String,
    pub token_endpoint: String,
    /// The authorization server's issuer and keys: the `id_token` is checked against them.
    #[serde(default)]
    pub issuer: Option<String>,
    #[serde(default)]
    pub jwks_uri: Option<String>,
}

/// A login between the redirect to `authorize` and the callback; kept server-side, keyed by
/// `state`, never sent to the browser except `state` itself.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PendingLogin {
    pub state: String,
    /// The PKCE code verifier (secret until the exchange).
    pub verifier: String,
    pub ehr: String,
    pub token_endpoint: String,
    pub created_ms: u64,
    #[serde(default)]
    pub issuer: Option<String>,
    #[serde(default)]
    pub jwks_uri: Option<String>,
}

impl std::fmt::Debug for PendingLogin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PendingLogin")
            .field("ehr", &self.ehr)
            .field("created_ms", &self.created_ms)
            .finish_non_exhaustive()
    }
}

/// What the token endpoint answers a SMART app (the launch context rides along).
#[derive(Clone, Deserialize)]
pub struct LaunchTokens {
    pub access_token: String,
    #[serde(default)]
    pub refresh_token: Option<String>,
    #[serde(default)]
    pub expires_in: Option<u64>,
    #[serde(default)]
    pub scope: Option<String>,
    #[serde(default)]
    pub id_token: Option<String>,
    /// The launch context: the patient and encounter the EHR opened the app for.
    #[serde(default)]
    pub patient: Option<String>,
    #[serde(default)]
    pub encounter: Option<String>,
    /// The `id_token`'s claims once its signature, issuer, audience and expiry checked out
    /// (None without an `id_token`, or when the server publishes no keys to check it with).
    #[serde(skip)]
    pub id_claims: Option<serde_json::Value>,
}

impl std::fmt::Debug for LaunchTokens {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LaunchTokens")
            .field("expires_in", &self.expires_in)
            .field("scope", &self.scope)
            .field("patient", &self.patient)
            .field("encounter", &self.encounter)
            .finish_non_exhaustive()
    }
}

/// 256 random bits, base64url without padding (43 characters: a valid PKCE verifier too).
pub fn random_token() -> String {
    let mut b = [0u8; 32];
    rand::thread_rng().fill_bytes(&mut b);
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(b)
}

/// The S256 challenge of a PKCE verifier (RFC 7636 §4.2).
pub fn pkce_challenge(verifier: &str) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(sha2::Sha256::digest(verifier))
}

fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

/// The launches of the configured EHRs.
pub struct Launcher {
    apps: Vec<AppRegistration>,
    http: reqwest::Client,
    /// EHR name → the key of a confidential client (`private_key_jwt`); public otherwise.
    signers: std::collections::HashMap<String, crate::smart::backend::AssertionSigner>,
}

impl Launcher {
    pub fn new(apps: Vec<AppRegistration>, http: reqwest::Client) -> Self {
        Self {
            apps,
            http,
            signers: Default::default(),
        }
    }

    /// Registers the app at `ehr` as a confidential asymmetric client: its token requests
    /// carry a client assertion signed with this key.
    pub fn with_signer(
        mut self,
        ehr: &str,
        signer: crate::smart::backend::AssertionSigner,
    ) -> Self {
        self.signers.insert(ehr.to_owned(), signer);
        self
    }

    /// The registration whose FHIR base is `iss` (trailing slashes ignored).
    pub fn app_for(&self, iss: &str) -> Result<&AppRegistration, LaunchError> {
        let want = iss.trim_end_matches('/');
        self.apps
            .iter()
            .find(|a| a.fhir_base.trim_end_matches('/') == want)
            .ok_or_else(|| LaunchError::UnknownIssuer {
                iss: iss.chars().take(200).collect(),
            })
    }

    /// Reads the EHR's SMART configuration.
    pub async fn discover(&self, app: &AppRegistration) -> Result<Endpoints, LaunchError> {
        let url = format!(
            "{}/.well-known/smart-configuration",
            app.fhir_base.trim_end_matches('/')
        );
        let fail = |reason: String| LaunchError::Discovery {
            url: url.clone(),
            reason,
        };
        let resp = self
            .http
            .get(&url)
            .header("Accept", "application/json")
            .send()
            .await
            .map_err(|e| fail(e.without_url().to_string()))?;
        if !resp.status().is_success() {
            return Err(fail(format!("HTTP {}", resp.status().as_u16())));
        }
        resp.json::<Endpoints>()
            .await
            .map_err(|e| fail(format!("not a SMART configuration: {}", e.without_url())))
    }

    /// Starts a login: `launch` is the EHR's launch id (None for a standalone launch). Returns
    /// the URL to redirect the browser to and the login to keep until the callback.
    pub async fn begin(
        &self,
        iss: &str,
        launch: Option<&str>,
    ) -> Result<(String, PendingLogin), LaunchError> {
        let app = self.app_for(iss)?;
        let endpoints = self.discover(app).await?;
        let login = PendingLogin {
            state: random_token(),
            verifier: random_token(),
            ehr: app.ehr.clone(),
            token_endpoint: endpoints.token_endpoint.clone(),
            created_ms: now_ms(),
            issuer: endpoints.issuer.clone(),
            jwks_uri: endpoints.jwks_uri.clone(),
        };
        Ok((authorize_url(&endpoints, app, launch, &login)?, login))
    }

    /// Completes a login with the callback's `code`: `login` is what [`Launcher::begin`]
    /// returned for the callback's `state` (the caller looked it up and removed it, so a
    /// second callback with the same state finds nothing).
    pub async fn complete(
        &self,
        login: &PendingLogin,
        code: &str,
    ) -> Result<LaunchTokens, LaunchError> {
        if now_ms().saturating_sub(login.created_ms) > LOGIN_TTL.as_millis() as u64 {
            return Err(LaunchError::UnknownState);
        }
        let app = self
            .apps
            .iter()
            .find(|a| a.ehr == login.ehr)
            .ok_or(LaunchError::UnknownState)?;
        let form = [
            ("grant_type", "authorization_code"),
            ("code", code),
            ("redirect_uri", app.redirect_uri.as_str()),
            ("client_id", app.client_id.as_str()),
            ("code_verifier", login.verifier.as_str()),
        ];
        let mut tokens = self.token(app, &login.token_endpoint, &form).await?;
        if let Some(idt) = tokens.id_token.clone() {
            tokens.id_claims = self.verify_id_token(&idt, app, login).await?;
        }
        Ok(tokens)
    }

    /// A new access token for a session whose token expired (`grant_type=refresh_token`).
    pub async fn refresh(
        &self,
        ehr: &str,
        token_endpoint: &str,
        refresh_token: &str,
    ) -> Result<LaunchTokens, LaunchError> {
        let app = self
            .apps
            .iter()
            .find(|a| a.ehr == ehr)
            .ok_or(LaunchError::UnknownState)?;
        let form = [
            ("grant_type", "refresh_token"),
            ("refresh_token", refresh_token),
            ("client_id", app.client_id.as_str()),
        ];
        self.token(app, token_endpoint, &form).await
    }

    /// One token request; the error names the server's `error` code, never a token.
    async fn token(
        &self,
        app: &AppRegistration,
        endpoint: &str,
        form: &[(&str, &str)],
    ) -> Result<LaunchTokens, LaunchError> {
        let mut form: Vec<(&str, &str)> = form.to_vec();
        let assertion = match self.signers.get(&app.ehr) {
            Some(signer) => Some(signer.sign(endpoint).map_err(|e| LaunchError::Refused {
                error: format!("cannot sign the client assertion: {e}"),
            })?),
            None => None,
        };
        if let Some(a) = &assertion {
            form.push((
                "client_assertion_type",
                "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
            ));
            form.push(("client_assertion", a.as_str()));
        }
        let resp = self
            .http
            .post(endpoint)
            .form(&form)
            .send()
            .await
            .map_err(|e| LaunchError::Unavailable(e.without_url().to_string()))?;
        let status = resp.status();
        let body = resp
            .bytes()
            .await
            .map_err(|e| LaunchError::Unavailable(e.without_url().to_string()))?;
        if status.is_server_error() {
            return Err(LaunchError::Unavailable(format!(
                "HTTP {}",
                status.as_u16()
            )));
        }
        if !status.is_success() {
            let error = serde_json::from_slice::<serde_json::Value>(&body)
                .ok()
                .and_then(|v| v["error"].as_str().map(str::to_owned))
                .unwrap_or_else(|| format!("HTTP {}", status.as_u16()));
            return Err(LaunchError::Refused { error });
        }
        serde_json::from_slice(&body).map_err(|_| LaunchError::Refused {
            error: "invalid_token_response".into(),
        })
    }

    /// Checks the `id_token` (OpenID Connect Core §3.1.3.7): signed by a key of the server's
    /// JWKS, `iss` the server's issuer, `aud` this app, not expired. A token that fails is a
    /// refused login (its `fhirUser` would be the signer of notes); without published keys the
    /// claims are not trusted at all (None).
    async fn verify_id_token(
        &self,
        id_token: &str,
        app: &AppRegistration,
        login: &PendingLogin,
    ) -> Result<Option<serde_json::Value>, LaunchError> {
        let Some(jwks_uri) = &login.jwks_uri else {
            tracing::warn!(ehr = %app.ehr, "the EHR publishes no jwks_uri: fhirUser is not trusted");
            return Ok(None);
        };
        let jwks = crate::smart::inbound::get_json(&self.http, jwks_uri)
            .await
            .map_err(LaunchError::Unavailable)?;
        check_id_token(id_token, &jwks, &app.client_id, login.issuer.as_deref()).map(Some)
    }
}

/// The claims of an `id_token` signed by a key of `jwks`, for `client_id`, from `issuer` (when
/// known), not expired (60 s leeway); else why not (a refused login).
pub fn check_id_token(
    id_token: &str,
    jwks: &serde_json::Value,
    client_id: &str,
    issuer: Option<&str>,
) -> Result<serde_json::Value, LaunchError> {
    let bad = |why: &str| LaunchError::Refused {
        error: format!("invalid id_token ({why})"),
    };
    let header = jsonwebtoken::decode_header(id_token).map_err(|_| bad("not a JWT"))?;
    let key = crate::smart::inbound::key_in(jwks, header.kid.as_deref(), header.alg)
        .ok_or_else(|| bad("signed with a key the server does not publish"))?;
    let mut v = jsonwebtoken::Validation::new(header.alg);
    v.set_audience(&[client_id]);
    match issuer {
        Some(iss) => v.set_issuer(&[iss]),
        None => v.iss = None,
    }
    v.leeway = 60;
    jsonwebtoken::decode::<serde_json::Value>(id_token, &key, &v)
        .map(|d| d.claims)
        .map_err(|e| bad(&format!("{:?}", e.kind())))
}

/// The authorization request (SMART App Launch 2: `response_type=code`, PKCE S256, `aud`).
pub fn authorize_url(
    endpoints: &Endpoints,
    app: &AppRegistration,
    launch: Option<&str>,
    login: &PendingLogin,
) -> Result<String, LaunchError> {
    let mut url = reqwest::Url::parse(&endpoints.authorization_endpoint).map_err(|e| {
        LaunchError::Discovery {
            url: endpoints.authorization_endpoint.clone(),
            reason: format!("authorization_endpoint is not a URL: {e}"),
        }
    })?;
    let scope = match launch {
        Some(_) => app.scope.clone(),
        // A standalone launch asks the user to pick the patient.
        None => app.scope.replace("launch ", "launch/patient "),
    };
    {
        let mut q = url.query_pairs_mut();
        q.append_pair("response_type", "code")
            .append_pair("client_id", &app.client_id)
            .append_pair("redirect_uri", &app.redirect_uri)
            .append_pair("scope", &scope)
            .append_pair("state", &login.state)
            .append_pair("aud", &app.fhir_base)
            .append_pair("code_challenge", &pkce_challenge(&login.verifier))
            .append_pair("code_challenge_method", "S256");
        if let Some(l) = launch {
            q.append_pair("launch", l);
        }
    }
    Ok(url.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn app() -> AppRegistration {
        AppRegistration {
            ehr: "main".into(),
            fhir_base: "https://ehr.example.org/fhir".into(),
            client_id: "scribe-app".into(),
            redirect_uri: "https://scribe.example.org/callback".into(),
            scope: DEFAULT_SCOPE.into(),
        }
    }

    #[test]
    fn the_pkce_challenge_is_rfc_7636s() {
        // RFC 7636, appendix B.
        assert_eq!(
            pkce_challenge("dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"),
            "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"
        );
        let t = random_token();
        assert_eq!(t.len(), 43);
        assert_ne!(t, random_token());
    }

    #[test]
    fn the_authorize_request_carries_state_pkce_aud_and_launch() {
        let e = Endpoints {
            authorization_endpoint: "https://auth.example.org/authorize".into(),
            token_endpoint: "https://auth.example.org/token".into(),
            issuer: None,
            jwks_uri: None,
        };
        let login = PendingLogin {
            state: "st".into(),
            verifier: "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk".into(),
            ehr: "main".into(),
            token_endpoint: e.token_endpoint.clone(),
            created_ms: 0,
            issuer: None,
            jwks_uri: None,
        };
        let url =
            reqwest::Url::parse(&authorize_url(&e, &app(), Some("L1"), &login).unwrap()).unwrap();
        let q: std::collections::BTreeMap<String, String> =
            url.query_pairs().into_owned().collect();
        assert_eq!(q["response_type"], "code");
        assert_eq!(q["state"], "st");
        assert_eq!(q["aud"], "https://ehr.example.org/fhir");
        assert_eq!(q["launch"], "L1");
        assert_eq!(q["code_challenge_method"], "S256");
        assert_eq!(
            q["code_challenge"],
            "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"
        );
        assert!(q["scope"].starts_with("launch openid"), "{}", q["scope"]);
        assert!(
            !q.contains_key("code_verifier"),
            "the verifier never leaves the server"
        );
        let standalone = authorize_url(&e, &app(), None, &login).unwrap();
        assert!(standalone.contains("launch%2Fpatient"), "{standalone}");
        assert!(!standalone.contains("&launch="), "{standalone}");
        assert!(
            !format!("{login:?}").contains("dBjft"),
            "Debug hides the verifier"
        );
    }

    #[test]
    fn only_configured_ehrs_can_launch() {
        let l = Launcher::new(vec![app()], reqwest::Client::new());
        assert!(l.app_for("https://ehr.example.org/fhir/").is_ok());
        let e = l.app_for("https://evil.example.org/fhir").unwrap_err();
        assert!(e.to_string().contains("not an EHR"), "{e}");
    }
}

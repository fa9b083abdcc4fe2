//! The review app's entry (issue 18, first part): SMART EHR launch (`/launch`), its callback
//! (`/callback`), the encounter page (`/app`: patient banner read from the EHR with the
//! clinician's token) and sign-out. Server-rendered HTML; the browser holds only a random
//! session id in an HttpOnly, SameSite=Lax cookie (Secure when the public URL is https); tokens
//! stay in [`crate::store::sessions`]. Every state-changing request carries the session's CSRF
//! token. Refusals are pages with the reason and the right status, never a half-made session.

use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};
use base64::Engine as _;

use super::State;
use crate::smart::launch::{random_token, LaunchError, Launcher};
use crate::store::sessions::{Session, SessionStore};

pub const COOKIE: &str = "fhirscribe_session";

/// The review app's parts, when an EHR has `[ehr.app]`.
pub struct UiEndpoint {
    pub launcher: Launcher,
    pub sessions: SessionStore,
    /// `Secure` on the cookie (the public URL is https).
    pub secure_cookie: bool,
    /// EHR name → FHIR base.
    pub ehrs: Vec<(String, String)>,
    pub http: reqwest::Client,
}

fn now_ms() -> u64 {
    crate::store::outbox::now_ms()
}

/// Escapes text for HTML element content and attribute values.
pub fn esc(s: &str) -> String {
    let mut o = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => o.push_str("&amp;"),
            '<' => o.push_str("&lt;"),
            '>' => o.push_str("&gt;"),
            '"' => o.push_str("&quot;"),
            '\'' => o.push_str("&#39;"),
            c => o.push(c),
        }
    }
    o
}

/// A whole page: accessible defaults (language, viewport, one `main`, visible focus).
fn page(status: StatusCode, title: &str, body: &str) -> HttpResponse {
    HttpResponse::build(status)
        .content_type("text/html; charset=utf-8")
        .insert_header(("Cache-Control", "no-store"))
        .insert_header(("X-Frame-Options", "DENY"))
        .insert_header((
            "Content-Security-Policy",
            "default-src 'self'; img-src 'self' data:; media-src 'self' blob:; frame-ancestors 'none'",
        ))
        .body(format!(
            "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
<title>{t} · fhirscribe</title>\
<style>body{{font-family:system-ui,sans-serif;margin:0;color:#111;background:#fff}}\
header{{background:#12355b;color:#fff;padding:.75rem 1.25rem}}main{{padding:1.25rem;max-width:72rem}}\
:focus{{outline:3px solid #f5a623;outline-offset:2px}}.banner dt{{font-weight:600}}\
.banner{{display:grid;grid-template-columns:max-content 1fr;gap:.25rem 1rem}}</style></head>\
<body><header><strong>fhirscribe</strong></header><main><h1>{t}</h1>{body}</main></body></html>",
            t = esc(title)
        ))
}

fn refusal(status: StatusCode, title: &str, message: &str) -> HttpResponse {
    page(
        status,
        title,
        &format!("<p role=\"alert\">{}</p>", esc(message)),
    )
}

fn not_available() -> HttpResponse {
    refusal(
        StatusCode::NOT_FOUND,
        "Not available",
        "No EHR is configured for the review app ([ehr.app]).",
    )
}

fn query(req: &HttpRequest) -> Vec<(String, String)> {
    reqwest::Url::parse(&format!("http://x/?{}", req.query_string()))
        .map(|u| u.query_pairs().into_owned().collect())
        .unwrap_or_default()
}

fn param<'a>(q: &'a [(String, String)], name: &str) -> Option<&'a str> {
    q.iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
        .filter(|v| !v.is_empty())
}

/// The session id from the Cookie header.
fn session_id(req: &HttpRequest) -> Option<String> {
    req.headers()
        .get_all("cookie")
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|c| c.trim().split_once('='))
        .find(|(k, _)| *k == COOKIE)
        .map(|(_, v)| v.to_owned())
}

/// Why a request has no session.
enum NoSession {
    Expired,
    Unreadable,
}

impl NoSession {
    fn page(&self) -> HttpResponse {
        match self {
            NoSession::Expired => refusal(
                StatusCode::UNAUTHORIZED,
                "Signed out",
                "There is no active session (it ended or expired). Open fhirscribe again from the EHR.",
            ),
            NoSession::Unreadable => refusal(
                StatusCode::INTERNAL_SERVER_ERROR,
                "Error",
                "The session could not be read.",
            ),
        }
    }
}

/// The live session of the request.
async fn session(req: &HttpRequest, ui: &UiEndpoint) -> Result<Session, NoSession> {
    let Some(id) = session_id(req) else {
        return Err(NoSession::Expired);
    };
    let sessions = ui.sessions.clone();
    match web::block(move || sessions.touch(&id, now_ms())).await {
        Ok(Ok(Some(s))) => Ok(s),
        Ok(Ok(None)) => Err(NoSession::Expired),
        _ => Err(NoSession::Unreadable),
    }
}

/// `GET /launch?iss=…&launch=…`: the EHR launch (or, without `launch`, a standalone one).
pub async fn launch(req: HttpRequest, state: State) -> HttpResponse {
    let Some(ui) = state.ui.as_ref() else {
        return not_available();
    };
    let q = query(&req);
    let Some(iss) = param(&q, "iss") else {
        return refusal(
            StatusCode::BAD_REQUEST,
            "Launch refused",
            "The launch has no `iss`: open fhirscribe from the EHR.",
        );
    };
    match ui.launcher.begin(iss, param(&q, "launch")).await {
        Ok((url, login)) => {
            let sessions = ui.sessions.clone();
            match web::block(move || sessions.put_login(&login)).await {
                Ok(Ok(())) => HttpResponse::Found()
                    .insert_header(("Location", url))
                    .insert_header(("Cache-Control", "no-store"))
                    .finish(),
                _ => refusal(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "Launch failed",
                    "The login could not be stored.",
                ),
            }
        }
        Err(e @ LaunchError::UnknownIssuer { .. }) => {
            refusal(StatusCode::BAD_REQUEST, "Launch refused", &e.to_string())
        }
        Err(e) => {
            tracing::warn!(error = %e, "EHR launch failed");
            refusal(StatusCode::BAD_GATEWAY, "Launch failed", &e.to_string())
        }
    }
}

/// The claims of a JWT, unverified: only for display (`fhirUser`); nothing is granted by them.
fn claims_unverified(jwt: &str) -> serde_json::Value {
    jwt.split('.')
        .nth(1)
        .and_then(|p| {
            base64::engine::general_purpose::URL_SAFE_NO_PAD
                .decode(p)
                .ok()
        })
        .and_then(|b| serde_json::from_slice(&b).ok())
        .unwrap_or(serde_json::Value::Null)
}

/// `GET /callback?code=…&state=…`: completes the login and starts the session.
pub async fn callback(req: HttpRequest, state: State) -> HttpResponse {
    let Some(ui) = state.ui.as_ref() else {
        return not_available();
    };
    let q = query(&req);
    if let Some(error) = param(&q, "error") {
        return refusal(
            StatusCode::BAD_REQUEST,
            "Login refused",
            &format!("The EHR's authorization server answered: {error}"),
        );
    }
    let (Some(st), Some(code)) = (param(&q, "state"), param(&q, "code")) else {
        return refusal(
            StatusCode::BAD_REQUEST,
            "Login refused",
            "The callback lacks `state` or `code`.",
        );
    };
    let sessions = ui.sessions.clone();
    let st = st.to_owned();
    let login = match web::block(move || sessions.take_login(&st, now_ms())).await {
        Ok(Ok(Some(l))) => l,
        Ok(Ok(None)) => {
            return refusal(
                StatusCode::BAD_REQUEST,
                "Login refused",
                &LaunchError::UnknownState.to_string(),
            )
        }
        _ => {
            return refusal(
                StatusCode::INTERNAL_SERVER_ERROR,
                "Login failed",
                "The login could not be read.",
            )
        }
    };
    let tokens = match ui.launcher.complete(&login, code).await {
        Ok(t) => t,
        Err(e @ (LaunchError::Refused { .. } | LaunchError::UnknownState)) => {
            return refusal(StatusCode::BAD_REQUEST, "Login refused", &e.to_string())
        }
        Err(e) => return refusal(StatusCode::BAD_GATEWAY, "Login failed", &e.to_string()),
    };
    let now = now_ms();
    let fhir_user = tokens
        .id_token
        .as_deref()
        .map(claims_unverified)
        .and_then(|c| c["fhirUser"].as_str().map(str::to_owned));
    let session = Session {
        id: random_token(),
        ehr: login.ehr.clone(),
        patient: tokens.patient.clone(),
        encounter: tokens.encounter.clone(),
        fhir_user,
        access_token: tokens.access_token.clone(),
        refresh_token: tokens.refresh_token.clone(),
        token_expires_ms: now + tokens.expires_in.unwrap_or(300) * 1000,
        csrf: random_token(),
        created_ms: now,
        last_seen_ms: now,
    };
    let id = session.id.clone();
    let sessions = ui.sessions.clone();
    if !matches!(web::block(move || sessions.put(&session)).await, Ok(Ok(()))) {
        return refusal(
            StatusCode::INTERNAL_SERVER_ERROR,
            "Login failed",
            "The session could not be stored.",
        );
    }
    tracing::info!(ehr = %login.ehr, "review session started");
    let secure = if ui.secure_cookie { "; Secure" } else { "" };
    HttpResponse::SeeOther()
        .insert_header(("Location", "/app"))
        .insert_header((
            "Set-Cookie",
            format!("{COOKIE}={id}; Path=/; HttpOnly; SameSite=Lax{secure}"),
        ))
        .insert_header(("Cache-Control", "no-store"))
        .finish()
}

/// Reads `Type/id` from the EHR with the clinician's token (None when it cannot).
async fn read_ehr(ui: &UiEndpoint, s: &Session, ty: &str, id: &str) -> Option<serde_json::Value> {
    let base = ui
        .ehrs
        .iter()
        .find(|(n, _)| *n == s.ehr)?
        .1
        .trim_end_matches('/');
    let r = ui
        .http
        .get(format!("{base}/{ty}/{id}"))
        .bearer_auth(&s.access_token)
        .header("Accept", "application/fhir+json")
        .send()
        .await
        .ok()?;
    if !r.status().is_success() {
        return None;
    }
    r.json().await.ok()
}

fn patient_name(p: &serde_json::Value) -> String {
    let n = &p["name"][0];
    if let Some(t) = n["text"].as_str() {
        return t.to_owned();
    }
    let given: Vec<&str> = n["given"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|g| g.as_str())
        .collect();
    let family = n["family"].as_str().unwrap_or_default();
    format!("{} {family}", given.join(" ")).trim().to_owned()
}

/// `GET /app`: the encounter page of the session's patient.
pub async fn app_page(req: HttpRequest, state: State) -> HttpResponse {
    let Some(ui) = state.ui.as_ref() else {
        return not_available();
    };
    let s = match session(&req, ui).await {
        Ok(s) => s,
        Err(e) => return e.page(),
    };
    let mut banner = String::from("<dl class=\"banner\" aria-label=\"Patient\">");
    match &s.patient {
        Some(pid) => {
            let p = read_ehr(ui, &s, "Patient", pid).await;
            let name = p.as_ref().map(patient_name).unwrap_or_default();
            let birth = p
                .as_ref()
                .and_then(|p| p["birthDate"].as_str().map(str::to_owned))
                .unwrap_or_default();
            banner.push_str(&format!(
                "<dt>Patient</dt><dd id=\"patient-name\">{}</dd><dt>Born</dt><dd id=\"patient-birth\">{}</dd>",
                esc(if name.is_empty() { "(not readable from the EHR)" } else { &name }),
                esc(&birth)
            ));
        }
        None => banner.push_str("<dt>Patient</dt><dd>none chosen in the launch</dd>"),
    }
    if let Some(eid) = &s.encounter {
        let e = read_ehr(ui, &s, "Encounter", eid).await;
        let start = e
            .as_ref()
            .and_then(|e| e["period"]["start"].as_str().map(str::to_owned))
            .unwrap_or_default();
        let kind = e
            .as_ref()
            .and_then(|e| {
                e["type"][0]["text"]
                    .as_str()
                    .or_else(|| e["type"][0]["coding"][0]["display"].as_str())
                    .or_else(|| e["class"]["code"].as_str())
                    .map(str::to_owned)
            })
            .unwrap_or_default();
        banner.push_str(&format!(
            "<dt>Encounter</dt><dd id=\"encounter\">{} {}</dd>",
            esc(&kind),
            esc(&start)
        ));
    }
    banner.push_str("</dl>");
    let body = format!(
        "{banner}\
<p>Recording and review follow here.</p>\
<form method=\"post\" action=\"/app/logout\"><input type=\"hidden\" name=\"csrf\" value=\"{csrf}\">\
<button type=\"submit\">Sign out</button></form>",
        csrf = esc(&s.csrf)
    );
    page(StatusCode::OK, "Encounter", &body)
}

/// `POST /app/logout` (form field `csrf`): ends the session.
pub async fn logout(req: HttpRequest, state: State, payload: web::Payload) -> HttpResponse {
    let Some(ui) = state.ui.as_ref() else {
        return not_available();
    };
    let s = match session(&req, ui).await {
        Ok(s) => s,
        Err(e) => return e.page(),
    };
    let too_large = crate::api::error::ApiError::bad_request("the form is too large");
    let body = super::read_body(payload, 8 * 1024, state.body_timeout, too_large)
        .await
        .unwrap_or_default();
    let form: Vec<(String, String)> =
        reqwest::Url::parse(&format!("http://x/?{}", String::from_utf8_lossy(&body)))
            .map(|u| u.query_pairs().into_owned().collect())
            .unwrap_or_default();
    let sent = req
        .headers()
        .get("x-csrf-token")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
        .or_else(|| param(&form, "csrf").map(str::to_owned));
    if sent.as_deref() != Some(s.csrf.as_str()) {
        return refusal(
            StatusCode::FORBIDDEN,
            "Refused",
            "The request lacks this session's CSRF token.",
        );
    }
    let sessions = ui.sessions.clone();
    let id = s.id.clone();
    let _ = web::block(move || sessions.remove(&id)).await;
    let mut r = refusal(StatusCode::OK, "Signed out", "You are signed out.");
    if let Ok(v) = format!("{COOKIE}=; Path=/; HttpOnly; SameSite=Lax; Max-Age=0").parse() {
        r.headers_mut()
            .insert(actix_web::http::header::SET_COOKIE, v);
    }
    r
}

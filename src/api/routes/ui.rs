//! The review app's entry (issue 18, first part): SMART EHR launch (`/launch`), its callback
//! (`/callback`), the encounter page (`/app`: patient banner read from the EHR with the
//! clinician's token) and sign-out. Server-rendered HTML; the browser holds only a random
//! session id in an HttpOnly, SameSite=Lax cookie (Secure when the public URL is https); tokens
//! stay in [`crate::store::sessions`]. Every state-changing request carries the session's CSRF
//! token. Refusals are pages with the reason and the right status, never a half-made session.

use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};

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
    /// Who writes the signed note.
    pub sign_write: crate::config::SignWrite,
    /// Held while a session's token is refreshed.
    pub refresh_lock: tokio::sync::Mutex<()>,
}

pub(super) fn now_ms() -> u64 {
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

/// A whole page: accessible defaults (language, viewport, one `main`, visible focus); styles
/// and script are files of this service (the CSP allows nothing inline).
fn page(status: StatusCode, title: &str, body: &str) -> HttpResponse {
    page_with(status, title, body, "")
}

pub(super) fn page_with(status: StatusCode, title: &str, body: &str, csrf: &str) -> HttpResponse {
    HttpResponse::build(status)
        .content_type("text/html; charset=utf-8")
        .insert_header(("Cache-Control", "no-store"))
        .insert_header(("X-Frame-Options", "DENY"))
        .insert_header(("X-Content-Type-Options", "nosniff"))
        .insert_header((
            "Content-Security-Policy",
            "default-src 'self'; media-src 'self' blob:; frame-ancestors 'none'; form-action 'self'",
        ))
        .body(format!(
            "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
<meta name=\"csrf\" content=\"{csrf}\"><title>{t} · fhirscribe</title>\
<link rel=\"stylesheet\" href=\"/app/app.css\"><script src=\"/app/app.js\" defer></script></head>\
<body><header><strong>fhirscribe</strong></header><main><h1>{t}</h1>{body}</main></body></html>",
            t = esc(title),
            csrf = esc(csrf)
        ))
}

pub(super) fn refusal(status: StatusCode, title: &str, message: &str) -> HttpResponse {
    page(
        status,
        title,
        &format!("<p role=\"alert\">{}</p>", esc(message)),
    )
}

pub(super) fn not_available() -> HttpResponse {
    refusal(
        StatusCode::NOT_FOUND,
        "Not available",
        "No EHR is configured for the review app ([ehr.app]).",
    )
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
pub(super) enum NoSession {
    Expired,
    Unreadable,
}

impl NoSession {
    pub(super) fn page(&self) -> HttpResponse {
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
pub(super) async fn session(req: &HttpRequest, ui: &UiEndpoint) -> Result<Session, NoSession> {
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
    let q = super::fhir::query_pairs(&req);
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

/// `GET /callback?code=…&state=…`: completes the login and starts the session.
pub async fn callback(req: HttpRequest, state: State) -> HttpResponse {
    let Some(ui) = state.ui.as_ref() else {
        return not_available();
    };
    let q = super::fhir::query_pairs(&req);
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
    // Only from a verified id_token: the signer of notes.
    let fhir_user = tokens
        .id_claims
        .as_ref()
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
        token_endpoint: login.token_endpoint.clone(),
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

/// Whether the request carries the session's CSRF token in `X-CSRF-Token` (compared in
/// constant time).
pub(super) fn csrf_ok(req: &HttpRequest, s: &Session) -> bool {
    let sent = req
        .headers()
        .get("x-csrf-token")
        .map(|v| v.as_bytes())
        .unwrap_or_default();
    same_secret(sent, s.csrf.as_bytes())
}

/// Equality of two secrets in time that does not depend on where they differ.
fn same_secret(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// The session's access token, refreshed first when it expires within 30 s and the EHR gave
/// a refresh token. Refreshes are serialized and the stored session re-read under the lock:
/// refresh tokens rotate, and a rotated one redeemed twice can revoke the whole grant. A
/// failed refresh keeps the old token (the EHR's 401 then says why).
pub(super) async fn access_token(ui: &UiEndpoint, s: &Session) -> String {
    let soon = |t: u64| t <= now_ms() + 30_000;
    if !soon(s.token_expires_ms) || s.refresh_token.is_none() || s.token_endpoint.is_empty() {
        return s.access_token.clone();
    }
    let _one_at_a_time = ui.refresh_lock.lock().await;
    let sessions = ui.sessions.clone();
    let id = s.id.clone();
    let cur = match web::block(move || sessions.get(&id)).await {
        Ok(Ok(Some(cur))) => cur,
        _ => return s.access_token.clone(),
    };
    let Some(refresh) = cur
        .refresh_token
        .clone()
        .filter(|_| soon(cur.token_expires_ms))
    else {
        return cur.access_token; // refreshed meanwhile
    };
    match ui
        .launcher
        .refresh(&cur.ehr, &cur.token_endpoint, &refresh)
        .await
    {
        Ok(t) => {
            let sessions = ui.sessions.clone();
            let (id, access, new_refresh) = (
                cur.id.clone(),
                t.access_token.clone(),
                t.refresh_token.clone(),
            );
            let expires = now_ms() + t.expires_in.unwrap_or(300) * 1000;
            let _ = web::block(move || {
                sessions.set_tokens(&id, &access, new_refresh.as_deref(), expires)
            })
            .await;
            tracing::info!(ehr = %cur.ehr, "review session's access token refreshed");
            t.access_token
        }
        Err(e) => {
            tracing::warn!(error = %e, "refreshing the review session's token failed");
            cur.access_token
        }
    }
}

/// The FHIR base of the session's EHR.
pub(super) fn ehr_base<'a>(ui: &'a UiEndpoint, s: &Session) -> Option<&'a str> {
    ui.ehrs
        .iter()
        .find(|(n, _)| *n == s.ehr)
        .map(|(_, b)| b.trim_end_matches('/'))
}

/// Reads `Type/id` from the EHR with the clinician's token (None when it cannot).
async fn read_ehr(
    ui: &UiEndpoint,
    s: &Session,
    token: &str,
    ty: &str,
    id: &str,
) -> Option<serde_json::Value> {
    let base = ehr_base(ui, s)?;
    let r = ui
        .http
        .get(format!("{base}/{ty}/{id}"))
        .bearer_auth(token)
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
    let token = access_token(ui, &s).await;
    let mut banner = String::from("<dl class=\"banner\" aria-label=\"Patient\">");
    match &s.patient {
        Some(pid) => {
            let p = read_ehr(ui, &s, &token, "Patient", pid).await;
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
        let e = read_ehr(ui, &s, &token, "Encounter", eid).await;
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
<section id=\"recorder\" aria-labelledby=\"rec-h\"><h2 id=\"rec-h\">Record in the browser</h2>\
<button type=\"button\" id=\"rec-start\">Start recording</button> \
<button type=\"button\" id=\"rec-pause\" disabled>Pause</button> \
<button type=\"button\" id=\"rec-stop\" disabled>Stop and transcribe</button> \
<label for=\"rec-level\">Input level</label> <meter id=\"rec-level\" min=\"0\" max=\"1\" value=\"0\"></meter> \
<span id=\"rec-time\" aria-label=\"Recorded time\">00:00</span>\
<p id=\"rec-status\" role=\"status\" aria-live=\"polite\"></p></section>\
<h2>Or upload a recording</h2>\
<form id=\"upload-form\"><label for=\"audio\">Encounter recording (WAV, FLAC, MP3, OGG, M4A, WebM)</label> \
<input type=\"file\" id=\"audio\" accept=\"audio/*\"> \
<label><input type=\"checkbox\" id=\"two-channel\"> two channels (channel 0 = clinician)</label> \
<button type=\"submit\">Upload and transcribe</button></form>\
<p id=\"progress\" role=\"status\" aria-live=\"polite\"></p>\
<form method=\"post\" action=\"/app/logout\"><input type=\"hidden\" name=\"csrf\" value=\"{csrf}\">\
<button type=\"submit\">Sign out</button></form>",
        csrf = esc(&s.csrf)
    );
    page_with(StatusCode::OK, "Encounter", &body, &s.csrf)
}

/// `GET /app/app.css`, `/app/app.js`: the page assets (public, cacheable, no data).
pub async fn css() -> HttpResponse {
    HttpResponse::Ok()
        .content_type("text/css; charset=utf-8")
        .insert_header(("Cache-Control", "max-age=300"))
        .body(include_str!("../assets/app.css"))
}

pub async fn js() -> HttpResponse {
    HttpResponse::Ok()
        .content_type("text/javascript; charset=utf-8")
        .insert_header(("Cache-Control", "max-age=300"))
        .body(concat!(
            include_str!("../assets/app.js"),
            "\n",
            include_str!("../assets/recorder.js")
        ))
}

pub(super) fn json_error(status: StatusCode, message: &str) -> HttpResponse {
    HttpResponse::build(status).json(serde_json::json!({ "message": message }))
}

/// A job-service refusal with the status and message the job API gives it.
pub(super) fn service_error(e: crate::jobs::service::ServiceError) -> HttpResponse {
    let e = crate::api::error::ApiError::from(e);
    json_error(e.status, &e.message)
}

/// The job-service caller of the request's session (None: no live session).
async fn session_caller(
    req: &HttpRequest,
    ui: &UiEndpoint,
) -> Option<crate::jobs::service::Caller> {
    session(req, ui).await.ok().as_ref().and_then(caller_of)
}

/// The job-service caller of a session: the session's patient only.
pub(super) fn caller_of(s: &Session) -> Option<crate::jobs::service::Caller> {
    Some(crate::jobs::service::Caller {
        subject: s
            .fhir_user
            .clone()
            .unwrap_or_else(|| format!("session:{}", s.ehr)),
        visibility: crate::jobs::service::Visibility::Patient(s.patient.clone()?),
    })
}

/// `POST /app/jobs[?two_channel=1]` (raw audio body, header `X-CSRF-Token`): uploads the
/// recording and starts a job for the session's patient and encounter.
pub async fn start_job(req: HttpRequest, state: State, payload: web::Payload) -> HttpResponse {
    let Some(ui) = state.ui.as_ref() else {
        return not_available();
    };
    let s = match session(&req, ui).await {
        Ok(s) => s,
        Err(_) => return json_error(StatusCode::UNAUTHORIZED, "no active session"),
    };
    if !csrf_ok(&req, &s) {
        return json_error(
            StatusCode::FORBIDDEN,
            "the request lacks this session's CSRF token",
        );
    }
    let (Some(caller), Some(encounter)) = (caller_of(&s), s.encounter.clone()) else {
        return json_error(
            StatusCode::BAD_REQUEST,
            "this session has no patient and encounter from the EHR launch",
        );
    };
    let patient = s.patient.clone().unwrap_or_default();
    let too_large = crate::api::error::ApiError::bad_request("the recording is too large");
    let body = match super::read_body(
        payload,
        state.max_upload_bytes,
        state.body_timeout,
        too_large,
    )
    .await
    {
        Ok(b) => b,
        Err(e) => return json_error(e.status, &e.message),
    };
    let two_channel = super::fhir::query_pairs(&req)
        .iter()
        .any(|(k, v)| k == "two_channel" && v == "1");
    let service = state.service.clone();
    let ehr = s.ehr.clone();
    let started = web::block(move || {
        let media = service.upload(&body, &caller)?;
        let name = format!("review-{}", &random_token()[..16].replace(['-', '_'], "x"));
        let settings = if two_channel {
            serde_json::json!({"ChannelIdentification": true})
        } else {
            serde_json::json!({"ShowSpeakerLabels": true, "MaxSpeakerLabels": 2})
        };
        let mut request = serde_json::json!({
            "MedicalScribeJobName": name,
            "Media": {"MediaFileUri": media},
            "OutputBucketName": "fhirscribe-review",
            "Settings": settings,
            "Extensions": {"Fhir": {"Ehr": ehr, "Patient": format!("Patient/{patient}"),
                                    "Encounter": format!("Encounter/{encounter}")},
                           "RetainAudio": true}
        });
        if two_channel {
            request["ChannelDefinitions"] = serde_json::json!([
                {"ChannelId": 0, "ParticipantRole": "CLINICIAN"},
                {"ChannelId": 1, "ParticipantRole": "PATIENT"}
            ]);
        }
        service.start(request, &caller).map(|_| name)
    })
    .await;
    match started {
        Ok(Ok(name)) => HttpResponse::Ok().json(serde_json::json!({ "job": name })),
        Ok(Err(e)) => service_error(e),
        Err(_) => json_error(
            StatusCode::INTERNAL_SERVER_ERROR,
            "the job could not be started",
        ),
    }
}

/// `GET /app/jobs/{name}`: the status of one of the session patient's jobs.
pub async fn job_status(req: HttpRequest, state: State, path: web::Path<String>) -> HttpResponse {
    let Some(ui) = state.ui.as_ref() else {
        return not_available();
    };
    let Some(caller) = session_caller(&req, ui).await else {
        return json_error(StatusCode::UNAUTHORIZED, "no active session");
    };
    let service = state.service.clone();
    let name = path.into_inner();
    match web::block(move || service.get(&name, &caller)).await {
        Ok(Ok((job, _))) => HttpResponse::Ok().json(serde_json::json!({
            "status": job.medical_scribe_job_status,
            "failure": job.failure_reason,
        })),
        Ok(Err(e)) => service_error(e),
        Err(_) => json_error(
            StatusCode::INTERNAL_SERVER_ERROR,
            "the job could not be read",
        ),
    }
}

/// The byte range a `Range: bytes=…` header asks of a body of `len` bytes: `Some(Ok(range))`,
/// `Some(Err(()))` when unsatisfiable, None without a (single, byte) range.
fn byte_range(header: Option<&str>, len: usize) -> Option<Result<std::ops::Range<usize>, ()>> {
    let spec = header?.trim().strip_prefix("bytes=")?;
    if spec.contains(',') {
        return None; // several ranges: answer the whole body
    }
    let (a, b) = spec.split_once('-')?;
    let r = match (a.trim(), b.trim()) {
        ("", suffix) => {
            let n: usize = suffix.parse().ok()?;
            len.saturating_sub(n)..len
        }
        (start, "") => start.parse().ok()?..len,
        (start, end) => {
            let end: usize = end.parse().ok()?;
            start.parse().ok()?..(end.saturating_add(1)).min(len)
        }
    };
    Some(if r.start < r.end && r.start < len {
        Ok(r)
    } else {
        Err(())
    })
}

/// `GET /app/jobs/{name}/audio`: the recording of one of the session patient's jobs, with
/// byte ranges (the audio element seeks to an evidence span).
pub async fn audio(req: HttpRequest, state: State, path: web::Path<String>) -> HttpResponse {
    let Some(ui) = state.ui.as_ref() else {
        return not_available();
    };
    let Some(caller) = session_caller(&req, ui).await else {
        return json_error(StatusCode::UNAUTHORIZED, "no active session");
    };
    let service = state.service.clone();
    let name = path.into_inner();
    let (bytes, format) = match web::block(move || service.audio(&name, &caller)).await {
        Ok(Ok(a)) => a,
        Ok(Err(e)) => return service_error(e),
        Err(_) => {
            return json_error(
                StatusCode::INTERNAL_SERVER_ERROR,
                "the audio could not be read",
            )
        }
    };
    let mime = match format.as_str() {
        "wav" => "audio/wav",
        "flac" => "audio/flac",
        "mp3" => "audio/mpeg",
        "ogg" => "audio/ogg",
        "m4a" => "audio/mp4",
        "webm" => "audio/webm",
        _ => "application/octet-stream",
    };
    let len = bytes.len();
    let range = req.headers().get("range").and_then(|v| v.to_str().ok());
    let mut r = match byte_range(range, len) {
        None => HttpResponse::Ok(),
        Some(Ok(_)) => HttpResponse::PartialContent(),
        Some(Err(())) => {
            return HttpResponse::RangeNotSatisfiable()
                .insert_header(("Content-Range", format!("bytes */{len}")))
                .finish()
        }
    };
    r.content_type(mime)
        .insert_header(("Accept-Ranges", "bytes"))
        .insert_header(("Cache-Control", "no-store"));
    match byte_range(range, len) {
        Some(Ok(span)) => {
            r.insert_header((
                "Content-Range",
                format!("bytes {}-{}/{len}", span.start, span.end - 1),
            ));
            r.body(bytes[span].to_vec())
        }
        _ => r.body(bytes),
    }
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
    let form = super::fhir::pairs_of(&String::from_utf8_lossy(&body));
    let form_ok =
        param(&form, "csrf").is_some_and(|c| same_secret(c.as_bytes(), s.csrf.as_bytes()));
    if !(csrf_ok(&req, &s) || form_ok) {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn byte_ranges_follow_rfc_9110() {
        assert_eq!(byte_range(Some("bytes=0-99"), 1000), Some(Ok(0..100)));
        assert_eq!(byte_range(Some("bytes=900-"), 1000), Some(Ok(900..1000)));
        assert_eq!(byte_range(Some("bytes=-100"), 1000), Some(Ok(900..1000)));
        assert_eq!(
            byte_range(Some("bytes=990-2000"), 1000),
            Some(Ok(990..1000))
        );
        assert_eq!(byte_range(Some("bytes=1000-"), 1000), Some(Err(())));
        assert_eq!(byte_range(Some("bytes=0-1,5-9"), 1000), None);
        assert_eq!(byte_range(Some("items=0-1"), 1000), None);
        assert_eq!(byte_range(None, 1000), None);
        assert_eq!(
            esc("<a href=\"x\">&'"),
            "&lt;a href=&quot;x&quot;&gt;&amp;&#39;"
        );
    }
}

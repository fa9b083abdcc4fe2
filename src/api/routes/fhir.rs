//! The FHIR read API and Bulk Data export under the configured base (`/fhir/r4` by default):
//! `metadata`, `.well-known/smart-configuration`, read, search (GET and POST `_search`),
//! `$export` at system, Patient and Group level, its status / cancel, and its NDJSON files.
//!
//! Errors here are OperationOutcomes (`application/fhir+json`), auth failures included. Scopes
//! are SMART's per resource type: `system/Condition.rs`, `patient/*.read`, …; a patient-context
//! token sees one patient's compartment; `$export` needs system scopes on every exported type.

use std::collections::BTreeSet;
use std::pin::Pin;
use std::task::{Context, Poll};

use actix_web::body::{BodySize, MessageBody};
use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};
use serde_json::{json, Value};

use super::State;
use crate::api::error::ApiError;
use crate::fhir_api::export::{parse_export, ExportError, ExportLevel, PATIENT_TYPES};
use crate::fhir_api::read::{self, Reach, ReadError, TYPES};
use crate::fhir_api::{ExportStatus, Exports};
use crate::smart::inbound::{Principal, ScopeContext};

const FHIR_JSON: &str = "application/fhir+json";

/// The FHIR side's settings, from `[fhir_api]`.
pub struct FhirEndpoint {
    /// The FHIR base URL clients use (public URL + base path).
    pub base: String,
    pub exports: std::sync::Arc<Exports>,
    pub token_endpoint: Option<String>,
    pub authorization_endpoint: Option<String>,
}

/// An OperationOutcome answer.
#[derive(Debug)]
pub struct Outcome {
    status: StatusCode,
    code: &'static str,
    message: String,
    headers: Vec<(&'static str, String)>,
}

impl Outcome {
    fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        Self {
            status,
            code,
            message: message.into(),
            headers: Vec::new(),
        }
    }
}

impl std::fmt::Display for Outcome {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.code, self.message)
    }
}

impl actix_web::ResponseError for Outcome {
    fn status_code(&self) -> StatusCode {
        self.status
    }

    fn error_response(&self) -> HttpResponse {
        let mut r = HttpResponse::build(self.status);
        r.content_type(FHIR_JSON);
        for (k, v) in &self.headers {
            r.insert_header((*k, v.as_str()));
        }
        r.body(
            json!({
                "resourceType": "OperationOutcome",
                "issue": [{"severity": "error", "code": self.code, "diagnostics": self.message}]
            })
            .to_string(),
        )
    }
}

/// Auth and rate-limit refusals keep their status and challenge headers.
impl From<ApiError> for Outcome {
    fn from(e: ApiError) -> Self {
        let code = match e.status.as_u16() {
            401 => "login",
            403 => "forbidden",
            404 => "not-found",
            429 => "throttled",
            503 => "transient",
            400..=499 => "invalid",
            _ => "exception",
        };
        Outcome {
            status: e.status,
            code,
            message: e.message,
            headers: e.headers,
        }
    }
}

impl From<ReadError> for Outcome {
    fn from(e: ReadError) -> Self {
        let (status, code) = match &e {
            ReadError::Invalid(_) => (StatusCode::BAD_REQUEST, "invalid"),
            ReadError::NotSupported(_) => (StatusCode::BAD_REQUEST, "not-supported"),
            ReadError::NotFound(_) => (StatusCode::NOT_FOUND, "not-found"),
            ReadError::Forbidden(_) => (StatusCode::FORBIDDEN, "forbidden"),
            ReadError::Store(err) => {
                tracing::error!(error = %err, "FHIR read failed");
                return Outcome::new(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "exception",
                    "the request could not be processed",
                );
            }
        };
        Outcome::new(status, code, e.to_string())
    }
}

type FhirResult = Result<HttpResponse, Outcome>;

fn endpoint(state: &State) -> Result<&FhirEndpoint, Outcome> {
    state.fhir.as_ref().ok_or_else(|| {
        Outcome::new(
            StatusCode::NOT_FOUND,
            "not-supported",
            "the FHIR API is off (fhir_api.enabled = false)",
        )
    })
}

fn fhir_json(status: StatusCode, v: &Value) -> HttpResponse {
    HttpResponse::build(status)
        .content_type(FHIR_JSON)
        .body(v.to_string())
}

/// The query string's pairs, in order, with repeats (FHIR ANDs repeated parameters).
pub(super) fn query_pairs(req: &HttpRequest) -> Vec<(String, String)> {
    pairs_of(req.query_string())
}

/// `application/x-www-form-urlencoded` pairs (a query string or a form body).
pub(super) fn pairs_of(s: &str) -> Vec<(String, String)> {
    let Ok(u) = reqwest::Url::parse(&format!("http://x/?{s}")) else {
        return Vec::new();
    };
    u.query_pairs()
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect()
}

/// `Prefer: handling=lenient` asks to ignore unsupported parameters.
fn lenient(req: &HttpRequest) -> bool {
    req.headers()
        .get_all("prefer")
        .filter_map(|v| v.to_str().ok())
        .any(|v| v.split([',', ';']).any(|p| p.trim() == "handling=lenient"))
}

/// Refuses an `Accept` that excludes JSON (XML, Turtle): this server writes JSON only.
fn check_accept(req: &HttpRequest) -> Result<(), Outcome> {
    let Some(accept) = req.headers().get("accept").and_then(|v| v.to_str().ok()) else {
        return Ok(());
    };
    let ok = accept.split(',').any(|m| {
        let m = m.split(';').next().unwrap_or("").trim();
        m.is_empty() || m == "*/*" || m.contains("json") || m == "application/*"
    });
    if ok {
        Ok(())
    } else {
        Err(Outcome::new(
            StatusCode::NOT_ACCEPTABLE,
            "not-supported",
            format!("Accept {accept:?}: this server writes application/fhir+json only"),
        ))
    }
}

/// The token's principal (None: auth is off for development).
async fn principal(state: &State, req: &HttpRequest) -> Result<Option<Principal>, Outcome> {
    Ok(state.auth.principal(req).await?)
}

fn letter_name(letter: char) -> &'static str {
    match letter {
        'r' => "read",
        's' => "search",
        _ => "use",
    }
}

/// What the token may see of `ty` for permission `letter` (`r` read, `s` search).
fn reach(p: &Option<Principal>, ty: &str, letter: char) -> Result<Reach, Outcome> {
    let Some(p) = p else {
        return Ok(Reach::All);
    };
    let forbidden = |m: String| {
        Outcome {
            headers: vec![(
                "WWW-Authenticate",
                format!("Bearer realm=\"fhirscribe\", error=\"insufficient_scope\", scope=\"system/{ty}.{letter}\""),
            )],
            ..Outcome::new(StatusCode::FORBIDDEN, "forbidden", m)
        }
    };
    match p.context_for_resource(ty, letter) {
        None => Err(forbidden(format!(
            "the access token lacks a scope to {} {ty} (system/{ty}.{letter}, or its user/ or patient/ form)",
            letter_name(letter)
        ))),
        Some(ScopeContext::System) => Ok(Reach::All),
        Some(ScopeContext::User) => Ok(match &p.patient {
            Some(pt) => Reach::Patient(pt.clone()),
            None => Reach::Owner(p.subject.clone()),
        }),
        Some(ScopeContext::Patient) => match &p.patient {
            Some(pt) => Ok(Reach::Patient(pt.clone())),
            None => Err(forbidden(
                "a patient-scoped token must carry a patient claim (a SMART launch context)".into(),
            )),
        },
    }
}

/// The types the token may read, with the reach each gives (includes are filtered by it).
fn readable(p: &Option<Principal>, reach_of_match: &Reach) -> BTreeSet<String> {
    TYPES
        .iter()
        .filter(|t| reach(p, t, 'r').is_ok_and(|r| r == *reach_of_match || r == Reach::All))
        .map(|t| t.to_string())
        .collect()
}

async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, ReadError> + Send + 'static,
) -> Result<T, Outcome> {
    match web::block(f).await {
        Ok(r) => r.map_err(Outcome::from),
        Err(_) => Err(Outcome::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "exception",
            "the request could not be processed",
        )),
    }
}

/// `GET metadata`: open, as SMART clients read it before they have a token.
pub async fn metadata(req: HttpRequest, state: State) -> FhirResult {
    check_accept(&req)?;
    let f = endpoint(&state)?;
    let groups = f.exports.groups();
    let cs = read::capability_statement(&read::CapabilityOptions {
        base: &f.base,
        token_endpoint: f.token_endpoint.as_deref(),
        groups: &groups,
    });
    Ok(fhir_json(StatusCode::OK, &cs))
}

/// `GET .well-known/smart-configuration`: open (SMART App Launch 2 / Backend Services).
pub async fn smart_configuration(state: State) -> FhirResult {
    let f = endpoint(&state)?;
    let mut c = json!({
        "token_endpoint_auth_methods_supported": ["private_key_jwt"],
        "token_endpoint_auth_signing_alg_values_supported": ["RS384", "ES384"],
        "grant_types_supported": ["client_credentials"],
        "scopes_supported": ["system/*.rs", "system/*.read", "user/*.rs", "patient/*.rs",
            "system/Condition.rs", "system/DocumentReference.rs", "system/MedicationStatement.rs",
            "system/Provenance.rs", "system/Device.rs"],
        "response_types_supported": ["token"],
        "capabilities": ["client-confidential-asymmetric", "permission-v1", "permission-v2",
            "permission-patient", "permission-user"],
        "code_challenge_methods_supported": ["S256"],
    });
    if let Some(t) = &f.token_endpoint {
        c["token_endpoint"] = json!(t);
    }
    if let Some(a) = &f.authorization_endpoint {
        c["authorization_endpoint"] = json!(a);
        c["grant_types_supported"] = json!(["client_credentials", "authorization_code"]);
        c["response_types_supported"] = json!(["code"]);
    }
    if let Some(issuer) = state.auth.issuers().first() {
        c["issuer"] = json!(issuer);
    }
    Ok(HttpResponse::Ok().json(c))
}

/// `GET {type}/{id}`.
pub async fn read_resource(
    req: HttpRequest,
    state: State,
    path: web::Path<(String, String)>,
) -> FhirResult {
    check_accept(&req)?;
    endpoint(&state)?;
    let (ty, id) = path.into_inner();
    let p = principal(&state, &req).await?;
    if !TYPES.contains(&ty.as_str()) {
        return Err(ReadError::NotSupported(format!(
            "{ty} is not a resource type this server has (it serves {})",
            TYPES.join(", ")
        ))
        .into());
    }
    let reach = reach(&p, &ty, 'r')?;
    let store = state.service.resources().clone();
    let r = blocking(move || read::read(&store, &ty, &id, &reach)).await?;
    let version = r.resource["meta"]["versionId"]
        .as_str()
        .unwrap_or("1")
        .to_owned();
    let mut resp = fhir_json(StatusCode::OK, &r.resource);
    if let Ok(v) = format!("W/\"{version}\"").parse() {
        resp.headers_mut().insert(actix_web::http::header::ETAG, v);
    }
    Ok(resp)
}

async fn run_search(
    req: &HttpRequest,
    state: &State,
    ty: String,
    pairs: Vec<(String, String)>,
) -> FhirResult {
    check_accept(req)?;
    let f = endpoint(state)?;
    let p = principal(state, req).await?;
    let q = read::parse_search(&ty, &pairs, lenient(req))?;
    let reach = reach(&p, &ty, 's')?;
    let readable = readable(&p, &reach);
    let store = state.service.resources().clone();
    let base = f.base.clone();
    let t = std::time::Instant::now();
    let bundle = blocking(move || read::search(&store, &q, &reach, &readable, &base)).await?;
    state.service.metrics().observe(
        "fhirscribe_fhir_search_seconds",
        "",
        t.elapsed().as_secs_f64(),
    );
    Ok(fhir_json(StatusCode::OK, &bundle))
}

/// `GET {type}?…`.
pub async fn search_get(req: HttpRequest, state: State, path: web::Path<String>) -> FhirResult {
    let pairs = query_pairs(&req);
    run_search(&req, &state, path.into_inner(), pairs).await
}

/// `POST {type}/_search` with a form body (parameters kept out of URLs and logs).
pub async fn search_post(
    req: HttpRequest,
    state: State,
    path: web::Path<String>,
    payload: web::Payload,
) -> FhirResult {
    let form = req
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|c| c.starts_with("application/x-www-form-urlencoded"));
    if !form {
        return Err(Outcome::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "not-supported",
            "POST _search takes application/x-www-form-urlencoded parameters",
        ));
    }
    let too_large = ApiError::bad_request("the search body is larger than 64 KiB");
    let body = super::read_body(payload, 64 * 1024, state.body_timeout, too_large).await?;
    let mut pairs = query_pairs(&req);
    pairs.extend(pairs_of(&String::from_utf8_lossy(&body)));
    run_search(&req, &state, path.into_inner(), pairs).await
}

/// The kick-off's checks common to every level; returns the client that owns the export.
async fn export_owner(
    req: &HttpRequest,
    state: &State,
    types: &[String],
) -> Result<String, Outcome> {
    let p = principal(state, req).await?;
    if let Some(p) = &p {
        for ty in types {
            match p.context_for_resource(ty, 'r') {
                Some(ScopeContext::System) => {}
                _ => {
                    return Err(Outcome {
                        headers: vec![(
                            "WWW-Authenticate",
                            format!("Bearer realm=\"fhirscribe\", error=\"insufficient_scope\", scope=\"system/{ty}.rs\""),
                        )],
                        ..Outcome::new(
                            StatusCode::FORBIDDEN,
                            "forbidden",
                            format!("$export needs a backend-services token with system scope to read {ty} (system/{ty}.rs or system/*.rs); user and patient tokens cannot export"),
                        )
                    })
                }
            }
        }
    }
    Ok(owner_of(&p))
}

/// Who owns an export: the client (`client_id`, else `sub`).
fn owner_of(p: &Option<Principal>) -> String {
    match p {
        Some(p) => p.client_id.clone().unwrap_or_else(|| p.subject.clone()),
        None => "anonymous".into(),
    }
}

async fn kick_off(req: HttpRequest, state: State, level: ExportLevel) -> FhirResult {
    let f = endpoint(&state)?;
    let respond_async = req
        .headers()
        .get_all("prefer")
        .filter_map(|v| v.to_str().ok())
        .any(|v| v.split([',', ';']).any(|p| p.trim() == "respond-async"));
    if !respond_async {
        return Err(Outcome::new(
            StatusCode::BAD_REQUEST,
            "invalid",
            "$export is asynchronous: send the header Prefer: respond-async",
        ));
    }
    check_accept(&req)?;
    let request = parse_export(level, &query_pairs(&req), lenient(&req))?;
    let owner = export_owner(&req, &state, &request.types).await?;
    let exports = f.exports.clone();
    let url = format!("{}{}", f.base, kick_off_suffix(&req, &request.level));
    let started = web::block(move || exports.kick_off(request, &owner, &url)).await;
    let id = match started {
        Ok(Ok(id)) => id,
        Ok(Err(ExportError::Request(e))) => return Err(e.into()),
        Ok(Err(e @ ExportError::Busy(_))) => {
            return Err(Outcome {
                headers: vec![("Retry-After", "30".into())],
                ..Outcome::new(StatusCode::TOO_MANY_REQUESTS, "throttled", e.to_string())
            })
        }
        Err(_) => {
            return Err(Outcome::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                "exception",
                "the export could not be started",
            ))
        }
    };
    tracing::info!(export = %id, "export kicked off");
    Ok(HttpResponse::Accepted()
        .insert_header(("Content-Location", format!("{}/bulkstatus/{id}", f.base)))
        .content_type(FHIR_JSON)
        .body(
            json!({"resourceType": "OperationOutcome", "issue": [{"severity": "information",
                "code": "informational", "diagnostics": "export started; poll the Content-Location"}]})
            .to_string(),
        ))
}

/// The kick-off path and query after the base, for the manifest's `request`.
fn kick_off_suffix(req: &HttpRequest, level: &ExportLevel) -> String {
    let path = match level {
        ExportLevel::System => "/$export".to_owned(),
        ExportLevel::Patient => "/Patient/$export".to_owned(),
        ExportLevel::Group(g) => format!("/Group/{g}/$export"),
    };
    match req.query_string() {
        "" => path,
        q => format!("{path}?{q}"),
    }
}

/// `GET $export`.
pub async fn export_system(req: HttpRequest, state: State) -> FhirResult {
    kick_off(req, state, ExportLevel::System).await
}

/// `GET Patient/$export`.
pub async fn export_patients(req: HttpRequest, state: State) -> FhirResult {
    kick_off(req, state, ExportLevel::Patient).await
}

/// `GET Group/{id}/$export`.
pub async fn export_group(req: HttpRequest, state: State, path: web::Path<String>) -> FhirResult {
    let id = path.into_inner();
    if !read::valid_id(&id) {
        return Err(ReadError::Invalid(format!("{id:?} is not a FHIR id")).into());
    }
    kick_off(req, state, ExportLevel::Group(id)).await
}

/// The caller of a status, cancel or file request: the same client as the kick-off.
async fn export_caller(req: &HttpRequest, state: &State) -> Result<String, Outcome> {
    let p = principal(state, req).await?;
    let types: Vec<String> = PATIENT_TYPES.iter().map(|t| t.to_string()).collect();
    if let Some(p) = &p {
        if !types
            .iter()
            .any(|t| p.context_for_resource(t, 'r') == Some(ScopeContext::System))
        {
            return Err(Outcome::new(
                StatusCode::FORBIDDEN,
                "forbidden",
                "export status and files need the backend-services token that kicked the export off",
            ));
        }
    }
    Ok(owner_of(&p))
}

/// `GET bulkstatus/{id}`: 202 with `X-Progress` while running, 200 with the manifest, 500
/// with an OperationOutcome when it failed.
pub async fn export_status(req: HttpRequest, state: State, path: web::Path<String>) -> FhirResult {
    let f = endpoint(&state)?;
    let owner = export_caller(&req, &state).await?;
    let exports = f.exports.clone();
    let id = path.into_inner();
    let status = blocking(move || exports.status(&id, &owner)).await?;
    Ok(match status {
        ExportStatus::InProgress { done, total } => HttpResponse::Accepted()
            .insert_header(("X-Progress", format!("{done}/{total} resources scanned")))
            .insert_header(("Retry-After", "1"))
            .finish(),
        ExportStatus::Completed(manifest) => HttpResponse::Ok()
            .insert_header(("Expires", "0"))
            .json(manifest),
        ExportStatus::Failed(m) => {
            return Err(Outcome::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                "exception",
                format!("the export failed: {m}"),
            ))
        }
    })
}

/// `DELETE bulkstatus/{id}`: cancels a running export or deletes a finished one's files.
pub async fn export_cancel(req: HttpRequest, state: State, path: web::Path<String>) -> FhirResult {
    let f = endpoint(&state)?;
    let owner = export_caller(&req, &state).await?;
    let exports = f.exports.clone();
    let id = path.into_inner();
    blocking(move || exports.cancel(&id, &owner)).await?;
    Ok(HttpResponse::Accepted().content_type(FHIR_JSON).body(
        json!({"resourceType": "OperationOutcome", "issue": [{"severity": "information",
                "code": "informational", "diagnostics": "export cancelled and its files deleted"}]})
        .to_string(),
    ))
}

/// `GET bulkfiles/{id}/{file}`: one NDJSON file, streamed from disk.
pub async fn export_file(
    req: HttpRequest,
    state: State,
    path: web::Path<(String, String)>,
) -> FhirResult {
    let f = endpoint(&state)?;
    let owner = export_caller(&req, &state).await?;
    let exports = f.exports.clone();
    let (id, name) = path.into_inner();
    let file = blocking(move || {
        let p = exports.file(&id, &name, &owner)?;
        let file = std::fs::File::open(&p).map_err(|_| ReadError::NotFound(name.clone()))?;
        let len = file.metadata().map(|m| m.len()).unwrap_or(0);
        Ok(FileBody { file, len })
    })
    .await?;
    Ok(HttpResponse::Ok()
        .content_type("application/fhir+ndjson")
        .body(file))
}

/// A file as a response body, read in 64 KiB chunks (local disk: each read is short).
struct FileBody {
    file: std::fs::File,
    len: u64,
}

impl MessageBody for FileBody {
    type Error = std::io::Error;

    fn size(&self) -> BodySize {
        BodySize::Sized(self.len)
    }

    fn poll_next(
        self: Pin<&mut Self>,
        _: &mut Context<'_>,
    ) -> Poll<Option<Result<web::Bytes, Self::Error>>> {
        use std::io::Read;
        let this = self.get_mut();
        let mut buf = vec![0u8; 64 * 1024];
        match this.file.read(&mut buf) {
            Ok(0) => Poll::Ready(None),
            Ok(n) => {
                buf.truncate(n);
                Poll::Ready(Some(Ok(web::Bytes::from(buf))))
            }
            Err(e) => Poll::Ready(Some(Err(e))),
        }
    }
}

//! The routes, one file per resource. [`ROUTES`] is the single table the router
//! ([`configure`]) and the OpenAPI document are built from, so they cannot disagree.

pub mod aws;
pub mod fhir;
pub mod jobs;
pub mod media;
pub mod ops;
pub mod review;
pub mod ui;

use std::sync::Arc;
use std::time::Duration;

use actix_web::http::StatusCode;
use actix_web::web;

use super::auth::Auth;
use super::error::ApiError;
use crate::jobs::service::JobService;

/// What every handler shares.
pub struct AppState {
    pub service: Arc<JobService>,
    pub auth: Auth,
    /// How long a client may take to send a body.
    pub body_timeout: Duration,
    pub max_upload_bytes: usize,
    /// Readiness: false until recovery ran and workers started.
    pub ready: std::sync::atomic::AtomicBool,
    /// The AWS-compatible endpoint, when access keys are configured.
    pub aws: Option<AwsEndpoint>,
    /// The FHIR read API and Bulk Data export, unless `fhir_api.enabled = false`.
    pub fhir: Option<fhir::FhirEndpoint>,
    /// The review app, when an EHR has `[ehr.app]`.
    pub ui: Option<ui::UiEndpoint>,
    pub paths: Paths,
}

/// Where the configurable groups of routes are mounted.
#[derive(Debug, Clone)]
pub struct Paths {
    /// The AWS-compatible endpoint's path (`aws_api.path`, default `/`).
    pub aws: String,
    /// The FHIR base path (`fhir_api.base_path`, default `/fhir/r4`).
    pub fhir: String,
}

impl Default for Paths {
    fn default() -> Self {
        Self {
            aws: "/".into(),
            fhir: "/fhir/r4".into(),
        }
    }
}

/// Which configurable prefix a route's path is relative to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mount {
    Root,
    /// The route's path is the AWS endpoint's path.
    Aws,
    /// Below the FHIR base path.
    Fhir,
}

impl Paths {
    /// The full path a route is served at.
    pub fn of(&self, r: &Route) -> String {
        match r.mount {
            Mount::Root => r.path.to_owned(),
            Mount::Aws => self.aws.clone(),
            Mount::Fhir => format!("{}{}", self.fhir.trim_end_matches('/'), r.path),
        }
    }
}

/// SigV4 keys and the `s3://` mapping of the AWS-compatible endpoint.
pub struct AwsEndpoint {
    pub verifier: crate::aws::SigV4Verifier,
    /// (bucket, `file://` folder or `http(s)://` prefix it maps to, ending in `/`).
    pub s3: Vec<(String, String)>,
}

impl AwsEndpoint {
    /// `s3://BUCKET/KEY` → `file://DIR/KEY` or `https://PREFIX/KEY` for a mapped bucket; the
    /// service's media rules then check the result like any other URI (inside the media
    /// folder, under a configured URL prefix).
    pub fn map_s3(&self, uri: &str) -> Option<String> {
        let rest = uri.strip_prefix("s3://")?;
        let (bucket, key) = rest.split_once('/')?;
        let (_, base) = self.s3.iter().find(|(b, _)| b == bucket)?;
        Some(format!("{base}{key}"))
    }
}

pub type State = web::Data<AppState>;

/// Reads a request body under the server's deadline and a size cap, so a slow or endless
/// request holds neither a connection nor memory for long; `too_large` answers past the cap.
pub async fn read_body(
    payload: web::Payload,
    limit: usize,
    timeout: Duration,
    too_large: ApiError,
) -> Result<web::Bytes, ApiError> {
    match tokio::time::timeout(timeout, payload.to_bytes_limited(limit)).await {
        Err(_) => Err(ApiError::new(
            StatusCode::REQUEST_TIMEOUT,
            "BadRequestException",
            "the request took longer than server.request_timeout_secs",
        )),
        Ok(Err(_)) => Err(ApiError::bad_request("the request was interrupted")),
        Ok(Ok(Err(_))) => Err(too_large),
        Ok(Ok(Ok(body))) => Ok(body),
    }
}

/// One route: what the OpenAPI document says about it and how it is registered.
pub struct Route {
    pub method: &'static str,
    pub mount: Mount,
    /// The path below its mount.
    pub path: &'static str,
    pub summary: &'static str,
    /// The scope it needs (None: open, for probes and scrapers).
    pub scope: Option<&'static str>,
    /// Request body: a schema name, or `audio` for raw audio.
    pub body: Option<&'static str>,
    /// Success status and response schema name.
    pub ok: (u16, &'static str),
    /// Registers the handler at the given full path.
    pub register: fn(&mut web::ServiceConfig, &str),
}

macro_rules! route {
    ($method:ident, $handler:path) => {
        |cfg: &mut web::ServiceConfig, path: &str| {
            cfg.route(path, web::$method().to($handler));
        }
    };
}

pub const ROUTES: &[Route] = &[
    Route {
        mount: Mount::Aws,
        method: "post",
        path: "/",
        summary: "AWS JSON 1.1 (X-Amz-Target: Transcribe.StartMedicalScribeJob | GetMedicalScribeJob | ListMedicalScribeJobs | DeleteMedicalScribeJob), SigV4-signed: for AWS SDK clients",
        scope: Some("SigV4 key scopes"),
        body: Some("AwsJsonRequest"),
        ok: (200, "AwsJsonResponse"),
        register: route!(post, aws::dispatch),
    },
    Route {
        mount: Mount::Root,
        method: "post",
        path: "/v1/media",
        summary: "Upload encounter audio (raw body: WAV, FLAC, MP3, OGG, M4A, WebM); answers its media:// URI",
        scope: Some("system/scribe.c"),
        body: Some("audio"),
        ok: (201, "MediaUploaded"),
        register: route!(post, media::upload),
    },
    Route {
        mount: Mount::Root,
        method: "post",
        path: "/v1/medical-scribe-jobs",
        summary: "StartMedicalScribeJob (+ Extensions.Fhir: EHR by name, patient, encounter)",
        scope: Some("system/scribe.c"),
        body: Some("StartMedicalScribeJobRequest"),
        ok: (200, "StartMedicalScribeJobResponse"),
        register: route!(post, jobs::start),
    },
    Route {
        mount: Mount::Root,
        method: "get",
        path: "/v1/medical-scribe-jobs",
        summary: "ListMedicalScribeJobs (?Status=&JobNameContains=&MaxResults=&NextToken=)",
        scope: Some("system/scribe.s"),
        body: None,
        ok: (200, "ListMedicalScribeJobsResponse"),
        register: route!(get, jobs::list),
    },
    Route {
        mount: Mount::Root,
        method: "get",
        path: "/v1/medical-scribe-jobs/{name}",
        summary: "GetMedicalScribeJob, with Extensions.FhirDelivery",
        scope: Some("system/scribe.r"),
        body: None,
        ok: (200, "GetMedicalScribeJobResponse"),
        register: route!(get, jobs::get),
    },
    Route {
        mount: Mount::Root,
        method: "delete",
        path: "/v1/medical-scribe-jobs/{name}",
        summary: "DeleteMedicalScribeJob: record, audio, outputs and an undelivered Bundle",
        scope: Some("system/scribe.d"),
        body: None,
        ok: (200, "Empty"),
        register: route!(delete, jobs::delete),
    },
    Route {
        mount: Mount::Root,
        method: "get",
        path: "/v1/medical-scribe-jobs/{name}/audit",
        summary: "The clinician review (AI draft, edits, signature) and audit trail (who, when, what changed)",
        scope: Some("system/scribe.r"),
        body: None,
        ok: (200, "ReviewAudit"),
        register: route!(get, jobs::audit),
    },
    Route {
        mount: Mount::Root,
        method: "get",
        path: "/v1/medical-scribe-jobs/{name}/{file}",
        summary: "Download transcript.json, clinical-documentation.json or fhir-bundle.json",
        scope: Some("system/scribe.r"),
        body: None,
        ok: (200, "OutputFile"),
        register: route!(get, jobs::download),
    },
    Route {
        mount: Mount::Root,
        method: "get",
        path: "/healthz",
        summary: "Liveness",
        scope: None,
        body: None,
        ok: (200, "Health"),
        register: route!(get, ops::healthz),
    },
    Route {
        mount: Mount::Root,
        method: "get",
        path: "/readyz",
        summary: "Readiness: models loaded, store writable, delivery worker alive",
        scope: None,
        body: None,
        ok: (200, "Health"),
        register: route!(get, ops::readyz),
    },
    Route {
        mount: Mount::Root,
        method: "get",
        path: "/metrics",
        summary: "Prometheus metrics",
        scope: None,
        body: None,
        ok: (200, "PrometheusText"),
        register: route!(get, ops::metrics),
    },
    Route {
        mount: Mount::Root,
        method: "get",
        path: "/openapi.json",
        summary: "This document",
        scope: None,
        body: None,
        ok: (200, "OpenApi"),
        register: route!(get, ops::openapi),
    },
    Route {
        mount: Mount::Root,
        method: "get",
        path: "/launch",
        summary: "SMART EHR launch of the review app (?iss=&launch=): redirects to the EHR's authorization server (PKCE S256)",
        scope: None,
        body: None,
        ok: (302, "Redirect"),
        register: route!(get, ui::launch),
    },
    Route {
        mount: Mount::Root,
        method: "get",
        path: "/callback",
        summary: "SMART launch callback (?code=&state=): starts the session (HttpOnly cookie)",
        scope: None,
        body: None,
        ok: (303, "Redirect"),
        register: route!(get, ui::callback),
    },
    Route {
        mount: Mount::Root,
        method: "get",
        path: "/app",
        summary: "The encounter page of the session's patient (HTML)",
        scope: Some("session cookie"),
        body: None,
        ok: (200, "Html"),
        register: route!(get, ui::app_page),
    },
    Route {
        mount: Mount::Root,
        method: "post",
        path: "/app/logout",
        summary: "Ends the session (form field csrf)",
        scope: Some("session cookie + CSRF token"),
        body: Some("Form"),
        ok: (200, "Html"),
        register: route!(post, ui::logout),
    },
    Route {
        mount: Mount::Root,
        method: "get",
        path: "/app/app.css",
        summary: "The review app's styles",
        scope: None,
        body: None,
        ok: (200, "Css"),
        register: route!(get, ui::css),
    },
    Route {
        mount: Mount::Root,
        method: "get",
        path: "/app/app.js",
        summary: "The review app's script",
        scope: None,
        body: None,
        ok: (200, "JavaScript"),
        register: route!(get, ui::js),
    },
    Route {
        mount: Mount::Root,
        method: "post",
        path: "/app/jobs",
        summary: "Upload a recording and start a job for the session's patient and encounter (header X-CSRF-Token; ?two_channel=1)",
        scope: Some("session cookie + CSRF token"),
        body: Some("audio"),
        ok: (200, "ReviewJobStarted"),
        register: route!(post, ui::start_job),
    },
    Route {
        mount: Mount::Root,
        method: "get",
        path: "/app/jobs/{name}",
        summary: "Status of one of the session patient's jobs",
        scope: Some("session cookie"),
        body: None,
        ok: (200, "ReviewJobStatus"),
        register: route!(get, ui::job_status),
    },
    Route {
        mount: Mount::Root,
        method: "get",
        path: "/app/jobs/{name}/audio",
        summary: "The recording of one of the session patient's jobs (byte ranges)",
        scope: Some("session cookie"),
        body: None,
        ok: (200, "Audio"),
        register: route!(get, ui::audio),
    },
    Route {
        mount: Mount::Root,
        method: "get",
        path: "/app/review/{name}",
        summary: "The review page: transcript beside the note; a sentence shows its evidence",
        scope: Some("session cookie"),
        body: None,
        ok: (200, "Html"),
        register: route!(get, review::page),
    },
    Route {
        mount: Mount::Root,
        method: "post",
        path: "/app/review/{name}/edits",
        summary: "One edit of the review (JSON: op edit|remove|restore|add|remove-item|restore-item), saved at once (header X-CSRF-Token)",
        scope: Some("session cookie + CSRF token"),
        body: Some("ReviewEdit"),
        ok: (200, "Review"),
        register: route!(post, review::edit),
    },
    Route {
        mount: Mount::Root,
        method: "post",
        path: "/app/review/{name}/sign",
        summary: "Sign the reviewed note and write it to the EHR (header X-CSRF-Token)",
        scope: Some("session cookie + CSRF token"),
        body: None,
        ok: (200, "Review"),
        register: route!(post, review::sign),
    },
    // FHIR: specific paths before the generic `{type}` and `{type}/{id}`.
    Route {
        mount: Mount::Fhir,
        method: "get",
        path: "/metadata",
        summary: "FHIR CapabilityStatement (open): what the read API and $export support",
        scope: None,
        body: None,
        ok: (200, "CapabilityStatement"),
        register: route!(get, fhir::metadata),
    },
    Route {
        mount: Mount::Fhir,
        method: "get",
        path: "/.well-known/smart-configuration",
        summary: "SMART configuration (open): token endpoint, scopes, capabilities",
        scope: None,
        body: None,
        ok: (200, "SmartConfiguration"),
        register: route!(get, fhir::smart_configuration),
    },
    Route {
        mount: Mount::Fhir,
        method: "get",
        path: "/$export",
        summary: "Bulk Data system-level export kick-off (Prefer: respond-async; _type, _since, _outputFormat)",
        scope: Some("system/*.rs"),
        body: None,
        ok: (202, "OperationOutcome"),
        register: route!(get, fhir::export_system),
    },
    Route {
        mount: Mount::Fhir,
        method: "get",
        path: "/Patient/$export",
        summary: "Bulk Data export of every patient's compartment",
        scope: Some("system/*.rs"),
        body: None,
        ok: (202, "OperationOutcome"),
        register: route!(get, fhir::export_patients),
    },
    Route {
        mount: Mount::Fhir,
        method: "get",
        path: "/Group/{id}/$export",
        summary: "Bulk Data export of a group's patients (configured groups, or `all`)",
        scope: Some("system/*.rs"),
        body: None,
        ok: (202, "OperationOutcome"),
        register: route!(get, fhir::export_group),
    },
    Route {
        mount: Mount::Fhir,
        method: "get",
        path: "/bulkstatus/{id}",
        summary: "Bulk Data status: 202 + X-Progress while running, 200 + manifest when done",
        scope: Some("system/*.rs (the kick-off's client)"),
        body: None,
        ok: (200, "BulkDataManifest"),
        register: route!(get, fhir::export_status),
    },
    Route {
        mount: Mount::Fhir,
        method: "delete",
        path: "/bulkstatus/{id}",
        summary: "Bulk Data cancel: stops the export and deletes its files",
        scope: Some("system/*.rs (the kick-off's client)"),
        body: None,
        ok: (202, "OperationOutcome"),
        register: route!(delete, fhir::export_cancel),
    },
    Route {
        mount: Mount::Fhir,
        method: "get",
        path: "/bulkfiles/{id}/{file}",
        summary: "One NDJSON file of a finished export (application/fhir+ndjson)",
        scope: Some("system/*.rs (the kick-off's client)"),
        body: None,
        ok: (200, "Ndjson"),
        register: route!(get, fhir::export_file),
    },
    Route {
        mount: Mount::Fhir,
        method: "post",
        path: "/{type}/_search",
        summary: "FHIR search with form-encoded parameters",
        scope: Some("system/{type}.s (or user/, patient/)"),
        body: Some("FormParameters"),
        ok: (200, "Bundle"),
        register: route!(post, fhir::search_post),
    },
    Route {
        mount: Mount::Fhir,
        method: "get",
        path: "/{type}",
        summary: "FHIR search (DocumentReference, Condition, MedicationStatement, Provenance, Device): searchset Bundle with paging links",
        scope: Some("system/{type}.s (or user/, patient/)"),
        body: None,
        ok: (200, "Bundle"),
        register: route!(get, fhir::search_get),
    },
    Route {
        mount: Mount::Fhir,
        method: "get",
        path: "/{type}/{id}",
        summary: "FHIR read",
        scope: Some("system/{type}.r (or user/, patient/)"),
        body: None,
        ok: (200, "Resource"),
        register: route!(get, fhir::read_resource),
    },
];

/// Registers every route of [`ROUTES`] at its path under `paths`.
pub fn configure(cfg: &mut web::ServiceConfig, paths: &Paths) {
    for r in ROUTES {
        (r.register)(cfg, &paths.of(r));
    }
}

/// Only the open operational routes (probes and metrics): a `worker` process serves these and
/// nothing that takes requests for jobs.
pub fn configure_ops(cfg: &mut web::ServiceConfig, paths: &Paths) {
    const OPS: [&str; 3] = ["/healthz", "/readyz", "/metrics"];
    for r in ROUTES.iter().filter(|r| OPS.contains(&r.path)) {
        (r.register)(cfg, &paths.of(r));
    }
}

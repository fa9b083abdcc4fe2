//! The routes, one file per resource. [`ROUTES`] is the single table the router
//! ([`configure`]) and the OpenAPI document are built from, so they cannot disagree.

pub mod aws;
pub mod jobs;
pub mod media;
pub mod ops;

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
    pub path: &'static str,
    pub summary: &'static str,
    /// The scope it needs (None: open, for probes and scrapers).
    pub scope: Option<&'static str>,
    /// Request body: a schema name, or `audio` for raw audio.
    pub body: Option<&'static str>,
    /// Success status and response schema name.
    pub ok: (u16, &'static str),
    pub register: fn(&mut web::ServiceConfig),
}

macro_rules! route {
    ($method:ident, $path:literal, $handler:path) => {
        |cfg: &mut web::ServiceConfig| {
            cfg.route($path, web::$method().to($handler));
        }
    };
}

pub const ROUTES: &[Route] = &[
    Route {
        method: "post",
        path: "/",
        summary: "AWS JSON 1.1 (X-Amz-Target: Transcribe.StartMedicalScribeJob | GetMedicalScribeJob | ListMedicalScribeJobs | DeleteMedicalScribeJob), SigV4-signed: for AWS SDK clients",
        scope: Some("SigV4 key scopes"),
        body: Some("AwsJsonRequest"),
        ok: (200, "AwsJsonResponse"),
        register: route!(post, "/", aws::dispatch),
    },
    Route {
        method: "post",
        path: "/v1/media",
        summary: "Upload encounter audio (raw body: WAV, FLAC, MP3, OGG, M4A, WebM); answers its media:// URI",
        scope: Some("system/scribe.c"),
        body: Some("audio"),
        ok: (201, "MediaUploaded"),
        register: route!(post, "/v1/media", media::upload),
    },
    Route {
        method: "post",
        path: "/v1/medical-scribe-jobs",
        summary: "StartMedicalScribeJob (+ Extensions.Fhir: EHR by name, patient, encounter)",
        scope: Some("system/scribe.c"),
        body: Some("StartMedicalScribeJobRequest"),
        ok: (200, "StartMedicalScribeJobResponse"),
        register: route!(post, "/v1/medical-scribe-jobs", jobs::start),
    },
    Route {
        method: "get",
        path: "/v1/medical-scribe-jobs",
        summary: "ListMedicalScribeJobs (?Status=&JobNameContains=&MaxResults=&NextToken=)",
        scope: Some("system/scribe.s"),
        body: None,
        ok: (200, "ListMedicalScribeJobsResponse"),
        register: route!(get, "/v1/medical-scribe-jobs", jobs::list),
    },
    Route {
        method: "get",
        path: "/v1/medical-scribe-jobs/{name}",
        summary: "GetMedicalScribeJob, with Extensions.FhirDelivery",
        scope: Some("system/scribe.r"),
        body: None,
        ok: (200, "GetMedicalScribeJobResponse"),
        register: route!(get, "/v1/medical-scribe-jobs/{name}", jobs::get),
    },
    Route {
        method: "delete",
        path: "/v1/medical-scribe-jobs/{name}",
        summary: "DeleteMedicalScribeJob: record, audio, outputs and an undelivered Bundle",
        scope: Some("system/scribe.d"),
        body: None,
        ok: (200, "Empty"),
        register: route!(delete, "/v1/medical-scribe-jobs/{name}", jobs::delete),
    },
    Route {
        method: "get",
        path: "/v1/medical-scribe-jobs/{name}/{file}",
        summary: "Download transcript.json, clinical-documentation.json or fhir-bundle.json",
        scope: Some("system/scribe.r"),
        body: None,
        ok: (200, "OutputFile"),
        register: route!(get, "/v1/medical-scribe-jobs/{name}/{file}", jobs::download),
    },
    Route {
        method: "get",
        path: "/healthz",
        summary: "Liveness",
        scope: None,
        body: None,
        ok: (200, "Health"),
        register: route!(get, "/healthz", ops::healthz),
    },
    Route {
        method: "get",
        path: "/readyz",
        summary: "Readiness: models loaded, store writable, delivery worker alive",
        scope: None,
        body: None,
        ok: (200, "Health"),
        register: route!(get, "/readyz", ops::readyz),
    },
    Route {
        method: "get",
        path: "/metrics",
        summary: "Prometheus metrics",
        scope: None,
        body: None,
        ok: (200, "PrometheusText"),
        register: route!(get, "/metrics", ops::metrics),
    },
    Route {
        method: "get",
        path: "/openapi.json",
        summary: "This document",
        scope: None,
        body: None,
        ok: (200, "OpenApi"),
        register: route!(get, "/openapi.json", ops::openapi),
    },
];

/// Registers every route of [`ROUTES`].
pub fn configure(cfg: &mut web::ServiceConfig) {
    for r in ROUTES {
        (r.register)(cfg);
    }
}

//! HealthScribe's job operations: start, get, list, delete, and the output downloads.

use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};
use serde::Deserialize;

use super::State;
use crate::api::error::{blocking, ApiError};
use crate::healthscribe::{
    GetMedicalScribeJobResponse, ListMedicalScribeJobsRequest, ListMedicalScribeJobsResponse,
    MedicalScribeJobStatus, StartMedicalScribeJobResponse,
};
use crate::smart::inbound::Access;

/// Largest job request accepted (the audio never travels in it).
const MAX_REQUEST_BYTES: usize = 256 * 1024;

pub async fn start(
    req: HttpRequest,
    state: State,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    let caller = state.auth.caller(&req, Access::Create).await?;
    let too_large = ApiError::new(
        StatusCode::PAYLOAD_TOO_LARGE,
        "BadRequestException",
        format!("a job request is at most {MAX_REQUEST_BYTES} bytes (upload audio to /v1/media)"),
    );
    let body = super::read_body(payload, MAX_REQUEST_BYTES, state.body_timeout, too_large).await?;
    let json: serde_json::Value = serde_json::from_slice(&body).map_err(|e| {
        ApiError::bad_request(format!(
            "the body is not JSON (StartMedicalScribeJobRequest): line {} column {}",
            e.line(),
            e.column()
        ))
    })?;
    let service = state.service.clone();
    let job = blocking(move || service.start(json, &caller)).await?;
    Ok(HttpResponse::Ok().json(StartMedicalScribeJobResponse {
        medical_scribe_job: Some(job),
    }))
}

pub async fn get(
    req: HttpRequest,
    state: State,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let caller = state.auth.caller(&req, Access::Read).await?;
    let service = state.service.clone();
    let name = path.into_inner();
    let (job, delivery) = blocking(move || service.get(&name, &caller)).await?;
    let mut value = serde_json::to_value(GetMedicalScribeJobResponse {
        medical_scribe_job: Some(job.clone()),
    })
    .map_err(|_| ApiError::internal("cannot encode the job"))?;
    // Our additions live under the job's `Extensions`, beside AWS's fields.
    if job.medical_scribe_job_status == Some(MedicalScribeJobStatus::Completed) {
        let mut ext = serde_json::Map::new();
        if let Some(d) = delivery {
            let uri = job.medical_scribe_output.as_ref().map(|o| {
                o.transcript_file_uri
                    .replace("transcript.json", "fhir-bundle.json")
            });
            ext.insert("FhirBundleUri".into(), serde_json::json!(uri));
            ext.insert("FhirDelivery".into(), serde_json::json!(d));
        }
        if !ext.is_empty() {
            value["MedicalScribeJob"]["Extensions"] = serde_json::Value::Object(ext);
        }
    }
    Ok(HttpResponse::Ok().json(value))
}

/// The query of `ListMedicalScribeJobs`, as strings so that a bad value gets a precise message.
#[derive(Deserialize)]
#[serde(rename_all = "PascalCase", deny_unknown_fields)]
pub struct ListQuery {
    status: Option<String>,
    job_name_contains: Option<String>,
    max_results: Option<String>,
    next_token: Option<String>,
}

pub async fn list(req: HttpRequest, state: State) -> Result<HttpResponse, ApiError> {
    let caller = state.auth.caller(&req, Access::Search).await?;
    let q: ListQuery = web::Query::<ListQuery>::from_query(req.query_string())
        .map_err(|e| {
            ApiError::bad_request(format!(
                "query: {e} (Status, JobNameContains, MaxResults, NextToken)"
            ))
        })?
        .into_inner();
    let status = match q.status.as_deref() {
        None => None,
        Some(s) => Some(
            serde_json::from_value::<MedicalScribeJobStatus>(serde_json::json!(s)).map_err(
                |_| {
                    ApiError::bad_request(format!(
                        "Status must be one of QUEUED, IN_PROGRESS, FAILED, COMPLETED, got {s}"
                    ))
                },
            )?,
        ),
    };
    let max_results = match q.max_results.as_deref() {
        None => None,
        Some(m) => Some(m.parse::<u32>().map_err(|_| {
            ApiError::bad_request(format!(
                "MaxResults must be a whole number from 1 to 100, got {m}"
            ))
        })?),
    };
    let request = ListMedicalScribeJobsRequest {
        status,
        job_name_contains: q.job_name_contains,
        next_token: q.next_token,
        max_results,
    };
    let service = state.service.clone();
    let (summaries, next) = blocking(move || service.list(&request, &caller)).await?;
    Ok(HttpResponse::Ok().json(ListMedicalScribeJobsResponse {
        status,
        next_token: next,
        medical_scribe_job_summaries: summaries,
    }))
}

pub async fn delete(
    req: HttpRequest,
    state: State,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let caller = state.auth.caller(&req, Access::Delete).await?;
    let service = state.service.clone();
    let name = path.into_inner();
    blocking(move || service.delete(&name, &caller)).await?;
    Ok(HttpResponse::Ok().json(serde_json::json!({})))
}

pub async fn download(
    req: HttpRequest,
    state: State,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, ApiError> {
    let caller = state.auth.caller(&req, Access::Read).await?;
    let service = state.service.clone();
    let (name, file) = path.into_inner();
    let bytes = blocking(move || service.download(&name, &file, &caller)).await?;
    Ok(HttpResponse::Ok()
        .content_type("application/json")
        .insert_header(("Cache-Control", "no-store"))
        .body(bytes))
}

/// `GET /v1/medical-scribe-jobs/{name}/audit`: the clinician review of a job (the AI draft
/// beside every edit, and the signature) and its audit trail (who, when, what changed).
pub async fn audit(
    req: HttpRequest,
    state: State,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let caller = state.auth.caller(&req, Access::Read).await?;
    let service = state.service.clone();
    let name = path.into_inner();
    let job = name.clone();
    let (review, trail) = blocking(move || service.review_trail(&name, &caller)).await?;
    Ok(HttpResponse::Ok()
        .insert_header(("Cache-Control", "no-store"))
        .json(serde_json::json!({
            "MedicalScribeJobName": job,
            "Review": review,
            "AuditTrail": trail,
        })))
}

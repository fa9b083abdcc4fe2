//! The AWS-compatible endpoint: `POST /` in AWS's JSON 1.1 protocol (`X-Amz-Target:
//! Transcribe.StartMedicalScribeJob | GetMedicalScribeJob | ListMedicalScribeJobs |
//! DeleteMedicalScribeJob`), authenticated by SigV4 against `[[aws_api.access_keys]]`, so an
//! unmodified AWS SDK client works by changing its endpoint URL. Timestamps are epoch seconds,
//! as the protocol wants; `s3://` media is mapped by `[[aws_api.s3]]`.

use std::time::SystemTime;

use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};
use serde_json::Value;

use super::State;
use crate::api::error::{blocking, ApiError};
use crate::aws::{SigV4Error, SignedRequest};
use crate::healthscribe::{DateTime, ListMedicalScribeJobsRequest, MedicalScribeJobStatus};
use crate::smart::inbound::{Access, Principal};

const MAX_REQUEST_BYTES: usize = 256 * 1024;
const CONTENT_TYPE: &str = "application/x-amz-json-1.1";

fn sigv4_error(e: &SigV4Error) -> ApiError {
    let status = match e {
        SigV4Error::Incomplete(_) => StatusCode::BAD_REQUEST,
        _ => StatusCode::FORBIDDEN,
    };
    ApiError::new(status, e.aws_type(), e.to_string())
}

/// AWS's JSON protocol writes timestamps as epoch seconds.
fn epoch_times(v: &mut Value) {
    match v {
        Value::Object(m) => {
            for (k, x) in m.iter_mut() {
                if matches!(k.as_str(), "CreationTime" | "StartTime" | "CompletionTime") {
                    if let Some(secs) = x
                        .as_str()
                        .and_then(|s| s.parse::<DateTime>().ok())
                        .and_then(|d| d.unix_seconds())
                    {
                        *x = serde_json::json!(secs);
                    }
                } else {
                    epoch_times(x);
                }
            }
        }
        Value::Array(a) => a.iter_mut().for_each(epoch_times),
        _ => {}
    }
}

fn reply(mut v: Value) -> HttpResponse {
    epoch_times(&mut v);
    HttpResponse::Ok().content_type(CONTENT_TYPE).json(v)
}

pub async fn dispatch(
    req: HttpRequest,
    state: State,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    let Some(aws) = &state.aws else {
        return Err(ApiError::new(
            StatusCode::NOT_FOUND,
            "UnknownOperationException",
            "the AWS-compatible endpoint is off: no [[aws_api.access_keys]] are configured",
        ));
    };
    let target = req
        .headers()
        .get("x-amz-target")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    let access = match target.as_str() {
        "Transcribe.StartMedicalScribeJob" => Access::Create,
        "Transcribe.GetMedicalScribeJob" => Access::Read,
        "Transcribe.ListMedicalScribeJobs" => Access::Search,
        "Transcribe.DeleteMedicalScribeJob" => Access::Delete,
        other => {
            return Err(ApiError::new(
                StatusCode::BAD_REQUEST,
                "UnknownOperationException",
                format!("unknown operation {other:?}: this endpoint serves Transcribe.StartMedicalScribeJob, GetMedicalScribeJob, ListMedicalScribeJobs and DeleteMedicalScribeJob"),
            ))
        }
    };
    let too_large =
        ApiError::bad_request(format!("a request is at most {MAX_REQUEST_BYTES} bytes"));
    let body = super::read_body(payload, MAX_REQUEST_BYTES, state.body_timeout, too_large).await?;
    let headers: Vec<(String, String)> = req
        .headers()
        .iter()
        .filter_map(|(k, v)| Some((k.as_str().to_ascii_lowercase(), v.to_str().ok()?.to_owned())))
        .collect();
    let signed = SignedRequest {
        method: req.method().as_str(),
        path: req.path(),
        query: req.query_string(),
        headers,
        body: &body,
    };
    let once = matches!(access, Access::Create | Access::Delete);
    let key = match aws.verifier.verify(&signed, SystemTime::now(), once) {
        Ok(k) => k,
        Err(e) => {
            state.service.metrics().inc(
                "fhirscribe_auth_failures_total",
                format!("reason=\"{}\"", e.reason()),
            );
            return Err(sigv4_error(&e));
        }
    };
    let principal = Principal {
        issuer: "sigv4".into(),
        subject: key.id.clone(),
        client_id: Some(key.id.clone()),
        scopes: key.scopes.clone(),
        patient: None,
    };
    let caller = crate::api::auth::grant(&principal, access)?;
    let mut json: Value = serde_json::from_slice(&body).map_err(|e| {
        ApiError::bad_request(format!(
            "the body is not JSON: line {} column {}",
            e.line(),
            e.column()
        ))
    })?;
    let service = state.service.clone();
    let name = || {
        json.get("MedicalScribeJobName")
            .and_then(Value::as_str)
            .map(str::to_owned)
            .ok_or_else(|| ApiError::bad_request("MedicalScribeJobName is required"))
    };
    match access {
        Access::Create => {
            if let Some(uri) = json.pointer("/Media/MediaFileUri").and_then(Value::as_str) {
                if let Some(local) = aws.map_s3(uri) {
                    json["Media"]["MediaFileUri"] = Value::String(local);
                }
            }
            let job = blocking(move || service.start(json, &caller)).await?;
            Ok(reply(serde_json::json!({ "MedicalScribeJob": job })))
        }
        Access::Read => {
            let n = name()?;
            let (job, _) = blocking(move || service.get(&n, &caller)).await?;
            Ok(reply(serde_json::json!({ "MedicalScribeJob": job })))
        }
        Access::Search => {
            let request: ListMedicalScribeJobsRequest = serde_json::from_value(json)
                .map_err(|e| ApiError::bad_request(format!("invalid request: {e}")))?;
            let status: Option<MedicalScribeJobStatus> = request.status;
            let (summaries, next) = blocking(move || service.list(&request, &caller)).await?;
            let mut v = serde_json::json!({ "MedicalScribeJobSummaries": summaries });
            if let Some(s) = status {
                v["Status"] = serde_json::json!(s);
            }
            if let Some(t) = next {
                v["NextToken"] = Value::String(t);
            }
            Ok(reply(v))
        }
        Access::Delete => {
            let n = name()?;
            blocking(move || service.delete(&n, &caller)).await?;
            Ok(HttpResponse::Ok().content_type(CONTENT_TYPE).body("{}"))
        }
    }
}

//! `POST /v1/media`: raw audio in, `{"MediaFileUri": "media://ID"}` out.

use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};

use super::State;
use crate::api::error::{blocking, ApiError};
use crate::smart::inbound::Access;

pub async fn upload(
    req: HttpRequest,
    state: State,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    let caller = state.auth.caller(&req, Access::Create).await?;
    let limit = state.max_upload_bytes;
    let too_large = || {
        ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "LimitExceededException",
            format!("the upload is larger than this server accepts ({limit} bytes, server.max_upload_bytes)"),
        )
    };
    if let Some(len) = req
        .headers()
        .get(actix_web::http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok()?.parse::<usize>().ok())
    {
        if len > limit {
            return Err(too_large());
        }
    }
    // The body is read under a deadline and a size cap, so a slow or endless upload holds
    // neither a connection nor memory for long.
    let read = async {
        match payload.to_bytes_limited(limit).await {
            Ok(Ok(body)) => Ok(body),
            Ok(Err(_)) => Err(too_large()),
            Err(_) => Err(ApiError::bad_request("the upload was interrupted")),
        }
    };
    let body = tokio::time::timeout(state.body_timeout, read)
        .await
        .map_err(|_| {
            ApiError::new(
                StatusCode::REQUEST_TIMEOUT,
                "BadRequestException",
                "the upload took longer than server.request_timeout_secs",
            )
        })??;
    let service = state.service.clone();
    let uri = blocking(move || service.upload(&body, &caller)).await?;
    Ok(HttpResponse::Created().json(serde_json::json!({ "MediaFileUri": uri })))
}

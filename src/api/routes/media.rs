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
    let body = super::read_body(payload, limit, state.body_timeout, too_large()).await?;
    let service = state.service.clone();
    let uri = blocking(move || service.upload(&body, &caller)).await?;
    Ok(HttpResponse::Created().json(serde_json::json!({ "MediaFileUri": uri })))
}

//! Errors as HealthScribe's clients expect them: `{"__type": "...Exception", "message": "..."}`,
//! the `x-amzn-ErrorType` header and the matching status.

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, ResponseError};

use crate::jobs::service::ServiceError;

#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    pub kind: &'static str,
    pub message: String,
    /// `WWW-Authenticate` for 401/403, `Retry-After` for 429.
    pub headers: Vec<(&'static str, String)>,
}

impl ApiError {
    pub fn new(status: StatusCode, kind: &'static str, message: impl Into<String>) -> Self {
        Self {
            status,
            kind,
            message: message.into(),
            headers: Vec::new(),
        }
    }

    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "BadRequestException", message)
    }

    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, "NotFoundException", message)
    }

    pub fn internal(message: impl Into<String>) -> Self {
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "InternalFailureException",
            message,
        )
    }

    pub fn with_header(mut self, name: &'static str, value: String) -> Self {
        self.headers.push((name, value));
        self
    }
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.kind, self.message)
    }
}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        self.status
    }

    fn error_response(&self) -> HttpResponse {
        let mut r = HttpResponse::build(self.status);
        r.insert_header(("x-amzn-ErrorType", self.kind));
        for (k, v) in &self.headers {
            r.insert_header((*k, v.as_str()));
        }
        r.json(serde_json::json!({"__type": self.kind, "message": self.message}))
    }
}

impl From<ServiceError> for ApiError {
    fn from(e: ServiceError) -> Self {
        let message = e.to_string();
        match e {
            ServiceError::BadRequest(_) => ApiError::bad_request(message),
            ServiceError::Conflict(_) => {
                ApiError::new(StatusCode::CONFLICT, "ConflictException", message)
            }
            ServiceError::NotFound(_) => ApiError::not_found(message),
            ServiceError::LimitExceeded(_) => ApiError::new(
                StatusCode::TOO_MANY_REQUESTS,
                "LimitExceededException",
                message,
            )
            .with_header("Retry-After", "5".into()),
            ServiceError::Forbidden(_) => {
                ApiError::new(StatusCode::FORBIDDEN, "AccessDeniedException", message)
            }
            ServiceError::Internal(_) => ApiError::internal(message),
        }
    }
}

/// Runs a blocking service call on actix's blocking pool.
pub async fn blocking<T, F>(f: F) -> Result<T, ApiError>
where
    T: Send + 'static,
    F: FnOnce() -> Result<T, ServiceError> + Send + 'static,
{
    match actix_web::web::block(f).await {
        Ok(r) => r.map_err(ApiError::from),
        Err(_) => Err(ApiError::internal("the request could not be processed")),
    }
}

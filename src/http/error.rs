//! The one mapping from errors to HTTP responses, in the managed service's
//! shape: the code in the `x-amzn-ErrorType` header and in `__type`, with a
//! `message`, which is what its SDKs read to raise their typed exceptions.
//! Every kind of failure is a variant; `status` and `code` match on all of
//! them, and [`From<OpsError>`] maps the service layer's kinds, so the
//! compiler points at each place a new kind must be handled.

use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};

use crate::ops::OpsError;

#[derive(Debug)]
pub enum ApiError {
    /// 400 `InvalidInputException`: the request is wrong; the message names the member.
    Invalid(String),
    /// 404 `ResourceNotFoundException`: an unknown pipeline, run, campaign, filter, tracker or version.
    NotFound(String),
    /// 409 `ResourceInUseException`: the resource's state does not allow the
    /// request (cancelling a finished run, rolling back without a previous version).
    Conflict(String),
    /// 403 with the authentication code the SDKs know
    /// (`MissingAuthenticationTokenException`, `UnrecognizedClientException`,
    /// `InvalidSignatureException`, `IncompleteSignatureException`).
    Unauthenticated { code: &'static str, message: String },
    /// 403 `AccessDeniedException`: a read-only token asked to act.
    Forbidden(String),
    /// 400 `ThrottlingException`, as the managed service answers a request
    /// over its rate (and what its SDKs retry with backoff): no scoring
    /// thread was free within the queue deadline.
    Throttled(String),
    /// 413: the body is over the configured limit.
    TooLarge { limit: usize },
    /// 500: logged in full, answered briefly.
    Internal(String),
}

impl ApiError {
    pub fn invalid(message: impl Into<String>) -> ApiError {
        ApiError::Invalid(message.into())
    }

    pub fn not_found(message: impl Into<String>) -> ApiError {
        ApiError::NotFound(message.into())
    }

    pub fn unauthenticated(code: &'static str, message: impl Into<String>) -> ApiError {
        ApiError::Unauthenticated {
            code,
            message: message.into(),
        }
    }

    pub fn internal(e: impl std::fmt::Display) -> ApiError {
        ApiError::Internal(e.to_string())
    }

    pub fn status(&self) -> StatusCode {
        match self {
            ApiError::Invalid(_) | ApiError::Throttled(_) => StatusCode::BAD_REQUEST,
            ApiError::NotFound(_) => StatusCode::NOT_FOUND,
            ApiError::Conflict(_) => StatusCode::CONFLICT,
            ApiError::Unauthenticated { .. } | ApiError::Forbidden(_) => StatusCode::FORBIDDEN,
            ApiError::TooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// The managed service's error code.
    pub fn code(&self) -> &'static str {
        match self {
            ApiError::Invalid(_) | ApiError::TooLarge { .. } => "InvalidInputException",
            ApiError::NotFound(_) => "ResourceNotFoundException",
            ApiError::Throttled(_) => "ThrottlingException",
            ApiError::Conflict(_) => "ResourceInUseException",
            ApiError::Unauthenticated { code, .. } => code,
            ApiError::Forbidden(_) => "AccessDeniedException",
            ApiError::Internal(_) => "InternalServerError",
        }
    }

    /// What the caller reads; an internal error's details stay in the log.
    pub fn message(&self) -> String {
        match self {
            ApiError::Invalid(m)
            | ApiError::NotFound(m)
            | ApiError::Conflict(m)
            | ApiError::Forbidden(m)
            | ApiError::Throttled(m)
            | ApiError::Unauthenticated { message: m, .. } => m.clone(),
            ApiError::TooLarge { limit } => {
                format!("the request body is larger than {limit} bytes")
            }
            ApiError::Internal(_) => "internal error; see the server log".into(),
        }
    }
}

impl From<OpsError> for ApiError {
    fn from(e: OpsError) -> Self {
        match e {
            OpsError::NotFound(m) => ApiError::NotFound(m),
            OpsError::Invalid(m) => ApiError::Invalid(m),
            OpsError::Conflict(m) => ApiError::Conflict(m),
            OpsError::Pipeline(p) => ApiError::Invalid(p.to_string()),
            OpsError::Internal(m) => ApiError::Internal(m),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        if let ApiError::Internal(detail) = &self {
            tracing::error!(error = %detail, "Request failed.");
        }
        let code = self.code();
        let body = serde_json::json!({"__type": code, "message": self.message()});
        let mut r = (self.status(), axum::Json(body)).into_response();
        r.headers_mut()
            .insert("x-amzn-ErrorType", HeaderValue::from_static(code));
        r
    }
}

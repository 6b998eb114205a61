//! The one mapping from errors to HTTP responses, in the managed service's
//! shape: the code in the `x-amzn-ErrorType` header and in `__type`, with a
//! `message`, which is what its SDKs read to raise their typed exceptions.

use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};

#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    /// The managed service's error code, e.g. `InvalidInputException`.
    pub code: &'static str,
    pub message: String,
}

impl ApiError {
    /// 400 `InvalidInputException`: the request is wrong; the message names the member.
    pub fn invalid(message: impl Into<String>) -> ApiError {
        ApiError {
            status: StatusCode::BAD_REQUEST,
            code: "InvalidInputException",
            message: message.into(),
        }
    }

    /// 404 `ResourceNotFoundException`: an unknown campaign, filter, tracker or dataset.
    pub fn not_found(message: impl Into<String>) -> ApiError {
        ApiError {
            status: StatusCode::NOT_FOUND,
            code: "ResourceNotFoundException",
            message: message.into(),
        }
    }

    /// 403 with an authentication code the SDKs know.
    pub fn forbidden(code: &'static str, message: impl Into<String>) -> ApiError {
        ApiError {
            status: StatusCode::FORBIDDEN,
            code,
            message: message.into(),
        }
    }

    /// 413: the body is over the configured limit.
    pub fn too_large(limit: usize) -> ApiError {
        ApiError {
            status: StatusCode::PAYLOAD_TOO_LARGE,
            code: "InvalidInputException",
            message: format!("the request body is larger than {limit} bytes"),
        }
    }

    /// 500: logged in full, answered briefly.
    pub fn internal(e: impl std::fmt::Display) -> ApiError {
        tracing::error!(error = %e, "Request failed.");
        ApiError {
            status: StatusCode::INTERNAL_SERVER_ERROR,
            code: "InternalServerError",
            message: "internal error; see the server log".into(),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = serde_json::json!({"__type": self.code, "message": self.message});
        let mut r = (self.status, axum::Json(body)).into_response();
        r.headers_mut()
            .insert("x-amzn-ErrorType", HeaderValue::from_static(self.code));
        r
    }
}

impl From<anyhow::Error> for ApiError {
    fn from(e: anyhow::Error) -> Self {
        ApiError::internal(format!("{e:#}"))
    }
}

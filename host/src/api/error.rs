//! Errors as Ceilometer's API returns them: a status and
//! `{"error_message": {"faultstring": "…"}}`.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;

use crate::storage::StorageError;

/// An error answer.
#[derive(Debug)]
pub struct ApiError {
    /// The HTTP status.
    pub status: StatusCode,
    /// What went wrong and what would fix it.
    pub message: String,
}

impl ApiError {
    /// 400: the request is malformed.
    pub fn bad_request(message: impl Into<String>) -> ApiError {
        ApiError {
            status: StatusCode::BAD_REQUEST,
            message: message.into(),
        }
    }
    /// 400 in wsme's words, as Ceilometer's suite and clients match them:
    /// `Invalid input for field/attribute F. Value: 'V'. MESSAGE`, the value cut to a
    /// readable length.
    pub fn invalid_input(field: &str, value: &str, message: impl AsRef<str>) -> ApiError {
        ApiError::bad_request(format!(
            "Invalid input for field/attribute {field}. Value: '{}'. {}",
            crate::redact::shorten(value, 80),
            message.as_ref()
        ))
    }
    /// 401: no or wrong credentials, or a project the token may not see.
    pub fn unauthorized(message: impl Into<String>) -> ApiError {
        ApiError {
            status: StatusCode::UNAUTHORIZED,
            message: message.into(),
        }
    }
    /// 403: the token may not do this.
    pub fn forbidden(message: impl Into<String>) -> ApiError {
        ApiError {
            status: StatusCode::FORBIDDEN,
            message: message.into(),
        }
    }
    /// 404: no such thing.
    pub fn not_found(message: impl Into<String>) -> ApiError {
        ApiError {
            status: StatusCode::NOT_FOUND,
            message: message.into(),
        }
    }
    /// 409: nothing accepts it.
    pub fn conflict(message: impl Into<String>) -> ApiError {
        ApiError {
            status: StatusCode::CONFLICT,
            message: message.into(),
        }
    }
    /// 415: the body is not JSON.
    pub fn unsupported_media(message: impl Into<String>) -> ApiError {
        ApiError {
            status: StatusCode::UNSUPPORTED_MEDIA_TYPE,
            message: message.into(),
        }
    }
}

/// The JSON body of an error.
pub fn body(message: &str) -> serde_json::Value {
    serde_json::json!({ "error_message": { "faultstring": message } })
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (self.status, Json(body(&self.message))).into_response()
    }
}

impl From<StorageError> for ApiError {
    fn from(e: StorageError) -> ApiError {
        tracing::error!(target: "ceilo::api", "{e}");
        ApiError {
            status: StatusCode::SERVICE_UNAVAILABLE,
            message: format!("the store cannot answer now: {e}"),
        }
    }
}

//! One error type for every handler: a status and a JSON body `{"error": {code, message,
//! field?}}`. Internal details go to the log, never to the client.

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use utoipa::ToSchema;

use crate::registry::{RegistryError, StoreError};

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// The request could not be read: malformed JSON, bad query string, bad id in the path.
    #[error("{message}")]
    BadRequest {
        code: &'static str,
        message: String,
        field: Option<String>,
    },
    /// Well-formed but invalid: wrong type, unknown field, value out of range.
    #[error("{field}: {message}")]
    Invalid { field: String, message: String },
    #[error("not signed in, or the session expired")]
    Unauthenticated,
    #[error("wrong user name or password")]
    InvalidCredentials,
    #[error("your role may not do this")]
    Forbidden,
    #[error("{0} not found")]
    NotFound(String),
    #[error("{0}")]
    Conflict(String),
    #[error("request body too large: at most {limit} bytes")]
    PayloadTooLarge { limit: usize },
    #[error("expected content type {expected}")]
    UnsupportedMediaType { expected: &'static str },
    #[error("too many attempts; retry in {retry_after_s} s")]
    RateLimited { retry_after_s: u64 },
    #[error("a dependency is unavailable")]
    Unavailable,
    /// This server runs without the part the endpoint needs (e.g. no alert store).
    #[error("{0}")]
    NotConfigured(&'static str),
    #[error("internal error")]
    Internal,
}

/// The JSON error body.
#[derive(Debug, Serialize, ToSchema)]
pub struct ErrorBody {
    pub error: ErrorDetail,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ErrorDetail {
    /// Stable machine-readable code (`invalid_field`, `not_found`, …).
    pub code: String,
    pub message: String,
    /// The offending field (`emergency_contacts[0].phone`), when there is one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
}

impl ApiError {
    pub fn status(&self) -> StatusCode {
        match self {
            Self::BadRequest { .. } => StatusCode::BAD_REQUEST,
            Self::Invalid { .. } => StatusCode::UNPROCESSABLE_ENTITY,
            Self::Unauthenticated | Self::InvalidCredentials => StatusCode::UNAUTHORIZED,
            Self::Forbidden => StatusCode::FORBIDDEN,
            Self::NotFound(_) => StatusCode::NOT_FOUND,
            Self::Conflict(_) => StatusCode::CONFLICT,
            Self::PayloadTooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            Self::UnsupportedMediaType { .. } => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            Self::RateLimited { .. } => StatusCode::TOO_MANY_REQUESTS,
            Self::Unavailable | Self::NotConfigured(_) => StatusCode::SERVICE_UNAVAILABLE,
            Self::Internal => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    pub fn code(&self) -> &'static str {
        match self {
            Self::BadRequest { code, .. } => code,
            Self::Invalid { .. } => "invalid_field",
            Self::Unauthenticated => "unauthenticated",
            Self::InvalidCredentials => "invalid_credentials",
            Self::Forbidden => "forbidden",
            Self::NotFound(_) => "not_found",
            Self::Conflict(_) => "conflict",
            Self::PayloadTooLarge { .. } => "payload_too_large",
            Self::UnsupportedMediaType { .. } => "unsupported_media_type",
            Self::RateLimited { .. } => "rate_limited",
            Self::Unavailable => "unavailable",
            Self::NotConfigured(_) => "not_configured",
            Self::Internal => "internal",
        }
    }

    pub fn invalid(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self::Invalid {
            field: field.into(),
            message: message.into(),
        }
    }

    /// A store failure: logged here, reported without details.
    pub fn store(e: StoreError) -> Self {
        match e {
            StoreError::AlreadyExists { kind, id } => {
                Self::Conflict(format!("{kind} {id:?} already exists"))
            }
            StoreError::Integrity(m) => Self::Conflict(m),
            StoreError::Unavailable(m) => {
                tracing::warn!(error = %m, "database unavailable");
                metrics::counter!("vigil_http_db_errors_total", "kind" => "unavailable")
                    .increment(1);
                Self::Unavailable
            }
            StoreError::Backend(m) | StoreError::Corrupt(m) => {
                tracing::error!(error = %m, "database error");
                metrics::counter!("vigil_http_db_errors_total", "kind" => "backend").increment(1);
                Self::Internal
            }
        }
    }
}

impl From<RegistryError> for ApiError {
    fn from(e: RegistryError) -> Self {
        match e {
            RegistryError::Invalid(f) => Self::Invalid {
                field: f.field,
                message: f.reason,
            },
            RegistryError::NotFound { kind, id } => Self::NotFound(format!("{kind} {id:?}")),
            RegistryError::AlreadyExists { kind, id } => {
                Self::Conflict(format!("{kind} {id:?} already exists"))
            }
            RegistryError::InUse(m) => Self::Conflict(m),
            RegistryError::OutOfScope { .. } => Self::Forbidden,
            RegistryError::Store(s) => Self::store(s),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = self.status();
        let field = match &self {
            Self::BadRequest { field, .. } => field.clone(),
            Self::Invalid { field, .. } => Some(field.clone()),
            _ => None,
        };
        let message = match &self {
            Self::Invalid { message, .. } => message.clone(),
            other => other.to_string(),
        };
        let body = ErrorBody {
            error: ErrorDetail {
                code: self.code().to_owned(),
                message,
                field,
            },
        };
        let mut resp = (status, axum::Json(body)).into_response();
        match &self {
            Self::RateLimited { retry_after_s } => {
                if let Ok(v) = HeaderValue::from_str(&retry_after_s.to_string()) {
                    resp.headers_mut().insert(header::RETRY_AFTER, v);
                }
            }
            Self::Unauthenticated => {
                resp.headers_mut().insert(
                    header::WWW_AUTHENTICATE,
                    HeaderValue::from_static("Bearer realm=\"vigil\""),
                );
            }
            Self::BadRequest { .. }
            | Self::InvalidCredentials
            | Self::Invalid { .. }
            | Self::Forbidden
            | Self::NotFound(_)
            | Self::Conflict(_)
            | Self::PayloadTooLarge { .. }
            | Self::UnsupportedMediaType { .. }
            | Self::Unavailable
            | Self::NotConfigured(_)
            | Self::Internal => {}
        }
        resp
    }
}

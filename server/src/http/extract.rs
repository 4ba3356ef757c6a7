//! Extractors that turn every kind of bad input into an [`ApiError`] naming what was wrong,
//! and the authenticated caller.

use axum::body::Bytes;
use axum::extract::{FromRequest, FromRequestParts, Query, Request};
use axum::http::header::{AUTHORIZATION, CONTENT_TYPE, COOKIE};
use axum::http::request::Parts;
use axum::http::{HeaderMap, StatusCode};
use serde::de::DeserializeOwned;

use super::error::ApiError;
use super::AppState;
use crate::auth::{hash_token, Principal, SessionToken};

/// Name of the session cookie.
pub const SESSION_COOKIE: &str = "vigil_session";

/// A JSON body: `application/json`, within the size limit, of the right shape. Syntax errors
/// are 400; type errors, unknown fields and bad values are 422 with the field's path.
pub struct ApiJson<T>(pub T);

fn is_json(headers: &HeaderMap) -> bool {
    headers
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|m| m.trim().eq_ignore_ascii_case("application/json"))
}

/// Reads the whole body, mapping the size limit to 413.
pub async fn body_bytes(req: Request, state: &AppState) -> Result<Bytes, ApiError> {
    Bytes::from_request(req, state).await.map_err(|rejection| {
        if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
            ApiError::PayloadTooLarge {
                limit: state.config().max_body_bytes,
            }
        } else {
            ApiError::BadRequest {
                code: "unreadable_body",
                message: "the request body could not be read".into(),
                field: None,
            }
        }
    })
}

/// Deserializes JSON, naming the failing field. Syntax is checked first, so a truncated
/// document is "malformed" (400) rather than "wrong type" (422).
pub fn parse_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    let value: serde_json::Value =
        serde_json::from_slice(bytes).map_err(|e| ApiError::BadRequest {
            code: "malformed_json",
            message: format!("malformed JSON: {e}"),
            field: None,
        })?;
    serde_path_to_error::deserialize(value).map_err(|err| {
        let path = err.path().to_string();
        let message = err.into_inner().to_string();
        let field = if path == "." { String::new() } else { path };
        ApiError::invalid(field, message)
    })
}

impl<T: DeserializeOwned + Send> FromRequest<AppState> for ApiJson<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &AppState) -> Result<Self, ApiError> {
        if !is_json(req.headers()) {
            return Err(ApiError::UnsupportedMediaType {
                expected: "application/json",
            });
        }
        let bytes = body_bytes(req, state).await?;
        parse_json(&bytes).map(ApiJson)
    }
}

/// A query string of the right shape, or 400 naming the problem.
pub struct ApiQuery<T>(pub T);

impl<T: DeserializeOwned + Send, S: Send + Sync> FromRequestParts<S> for ApiQuery<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        Query::<T>::from_request_parts(parts, state)
            .await
            .map(|Query(q)| ApiQuery(q))
            .map_err(|r| ApiError::BadRequest {
                code: "invalid_query",
                message: r.body_text(),
                field: None,
            })
    }
}

/// Validates an id taken from the path.
pub fn path_id<T: std::str::FromStr>(raw: &str) -> Result<T, ApiError> {
    raw.parse().map_err(|_| ApiError::BadRequest {
        code: "invalid_id",
        message: format!("invalid id {raw:?}: expected 1 to 32 characters of A-Z a-z 0-9 . _ -"),
        field: Some("id".into()),
    })
}

/// The session token of a request: `Authorization: Bearer …` first, then the cookie.
pub fn request_token(headers: &HeaderMap) -> Option<SessionToken> {
    if let Some(auth) = headers.get(AUTHORIZATION).and_then(|v| v.to_str().ok()) {
        let (scheme, token) = auth.trim().split_once(' ')?;
        if !scheme.eq_ignore_ascii_case("bearer") {
            return None;
        }
        return SessionToken::parse(token.trim());
    }
    headers
        .get_all(COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|kv| kv.trim().split_once('='))
        .find(|(k, _)| *k == SESSION_COOKIE)
        .and_then(|(_, v)| SessionToken::parse(v))
}

/// The signed-in caller. Missing, unknown or expired sessions are 401.
pub struct Caller(pub Principal);

impl FromRequestParts<AppState> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let token = request_token(&parts.headers).ok_or(ApiError::Unauthenticated)?;
        let hash = hash_token(&token);
        let store = state.registry().store();
        let session = store
            .get_session(&hash)
            .await
            .map_err(ApiError::store)?
            .ok_or(ApiError::Unauthenticated)?;
        if !session.is_live(state.now()) {
            store.delete_session(&hash).await.map_err(ApiError::store)?;
            return Err(ApiError::Unauthenticated);
        }
        let user = store
            .get_user(&session.username)
            .await
            .map_err(ApiError::store)?
            .ok_or(ApiError::Unauthenticated)?;
        Ok(Caller(Principal {
            username: user.username,
            role: user.role,
            scope: user.scope,
        }))
    }
}

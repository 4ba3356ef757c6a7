//! Login, logout, the current user, and user administration.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};

use axum::extract::{ConnectInfo, FromRequestParts, Path, State};
use axum::http::request::Parts;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::error::{ApiError, ErrorBody};
use super::extract::{request_token, ApiJson, Caller, SESSION_COOKIE};
use super::AppState;
use crate::auth::{
    create_user, hash_token, is_valid_username, new_token, Action, BootstrapError, NewUser,
    Principal, Role, Session, SiteScope,
};

pub(super) fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(login))
        .routes(routes!(logout))
        .routes(routes!(me))
        .routes(routes!(list_users, add_user))
        .routes(routes!(delete_user))
}

/// The client's address as the socket saw it (no proxy headers are trusted).
pub(super) struct ClientIp(pub IpAddr);

impl<S: Send + Sync> FromRequestParts<S> for ClientIp {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        Ok(ClientIp(
            parts
                .extensions
                .get::<ConnectInfo<SocketAddr>>()
                .map_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED), |c| c.0.ip()),
        ))
    }
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LoginRequest {
    pub username: String,
    pub password: String,
}

/// A user as the API shows it (never the password hash).
#[derive(Debug, Serialize, ToSchema)]
pub struct UserView {
    pub username: String,
    pub role: Role,
    /// The sites the user may see; absent means all sites.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sites: Option<Vec<String>>,
}

impl UserView {
    fn new(username: String, role: Role, scope: SiteScope) -> Self {
        let sites = match scope {
            SiteScope::All => None,
            SiteScope::Sites(s) => Some(s),
        };
        Self {
            username,
            role,
            sites,
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct LoginResponse {
    /// Use as `Authorization: Bearer <token>`; browsers get the same in a cookie.
    pub token: String,
    pub expires_at: DateTime<Utc>,
    pub user: UserView,
}

fn session_cookie(state: &AppState, value: &str, max_age_s: u64) -> Result<HeaderValue, ApiError> {
    let secure = if state.config().secure_cookie {
        "; Secure"
    } else {
        ""
    };
    HeaderValue::from_str(&format!(
        "{SESSION_COOKIE}={value}; Path=/; HttpOnly; SameSite=Strict; Max-Age={max_age_s}{secure}"
    ))
    .map_err(|_| ApiError::Internal)
}

/// Signs in and returns a session token, also set as an HttpOnly cookie.
#[utoipa::path(post, path = "/login", tag = "session", security(()),
    request_body = LoginRequest,
    responses(
        (status = 200, body = LoginResponse),
        (status = 401, description = "wrong user name or password", body = ErrorBody),
        (status = 429, description = "too many attempts", body = ErrorBody)))]
async fn login(
    State(state): State<AppState>,
    ClientIp(ip): ClientIp,
    ApiJson(req): ApiJson<LoginRequest>,
) -> Result<Response, ApiError> {
    let now = state.now();
    // Names that cannot exist share one bucket, so junk names cannot grow the limiter.
    let limiter_key = if is_valid_username(&req.username) {
        req.username.as_str()
    } else {
        "\u{0}invalid"
    };
    let limited = state
        .limiter()
        .lock()
        .map_err(|_| ApiError::Internal)?
        .handle_attempt(limiter_key, ip, now);
    if let Err(limited) = limited {
        metrics::counter!("vigil_login_attempts_total", "outcome" => "rate_limited").increment(1);
        tracing::warn!(user = %limiter_key, %ip, "login rate-limited");
        return Err(ApiError::RateLimited {
            retry_after_s: limited.retry_after.as_secs().max(1),
        });
    }
    let store = state.registry().store().clone();
    let user = store
        .get_user(&req.username)
        .await
        .map_err(ApiError::store)?;
    let hashing = state.hashing().clone();
    let hash = user.as_ref().map(|u| u.password_hash.clone());
    let password = req.password;
    let ok = tokio::task::spawn_blocking(move || hashing.verify(hash.as_deref(), &password))
        .await
        .map_err(|_| ApiError::Internal)?;
    let Some(user) = user.filter(|_| ok) else {
        metrics::counter!("vigil_login_attempts_total", "outcome" => "failure").increment(1);
        tracing::info!(user = %limiter_key, %ip, "login failed");
        return Err(ApiError::InvalidCredentials);
    };
    let token = new_token().map_err(|_| ApiError::Internal)?;
    let lifetime = state.config().session_lifetime();
    let expires_at = now + chrono::Duration::from_std(lifetime).map_err(|_| ApiError::Internal)?;
    store
        .insert_session(&Session {
            token_hash: hash_token(&token),
            username: user.username.clone(),
            created_at: now,
            expires_at,
        })
        .await
        .map_err(ApiError::store)?;
    if let Err(e) = store.delete_expired_sessions(now).await {
        tracing::warn!(error = %e, "cannot delete expired sessions");
    }
    metrics::counter!("vigil_login_attempts_total", "outcome" => "success").increment(1);
    tracing::info!(user = %user.username, role = %user.role, "signed in");
    let cookie = session_cookie(&state, token.as_str(), lifetime.as_secs())?;
    let body = LoginResponse {
        token: token.as_str().to_owned(),
        expires_at,
        user: UserView::new(user.username, user.role, user.scope),
    };
    Ok(([(header::SET_COOKIE, cookie)], Json(body)).into_response())
}

/// Ends the session of this request (cookie or bearer token) and clears the cookie.
#[utoipa::path(post, path = "/logout", tag = "session",
    responses((status = 204, description = "signed out")))]
async fn logout(State(state): State<AppState>, headers: HeaderMap) -> Result<Response, ApiError> {
    if let Some(token) = request_token(&headers) {
        state
            .registry()
            .store()
            .delete_session(&hash_token(&token))
            .await
            .map_err(ApiError::store)?;
    }
    let cookie = session_cookie(&state, "", 0)?;
    Ok((StatusCode::NO_CONTENT, [(header::SET_COOKIE, cookie)]).into_response())
}

/// The signed-in user.
#[utoipa::path(get, path = "/me", tag = "session",
    responses((status = 200, body = UserView), (status = 401, body = ErrorBody)))]
async fn me(Caller(p): Caller) -> Json<UserView> {
    Json(UserView::new(p.username, p.role, p.scope))
}

fn require(p: &Principal, action: Action) -> Result<(), ApiError> {
    if p.may(action) {
        Ok(())
    } else {
        Err(ApiError::Forbidden)
    }
}

/// All users (admins only).
#[utoipa::path(get, path = "/users", tag = "users",
    responses((status = 200, body = Vec<UserView>), (status = 403, body = ErrorBody)))]
async fn list_users(
    State(state): State<AppState>,
    Caller(p): Caller,
) -> Result<Json<Vec<UserView>>, ApiError> {
    require(&p, Action::ManageUsers)?;
    let users = state
        .registry()
        .store()
        .list_users()
        .await
        .map_err(ApiError::store)?;
    Ok(Json(
        users
            .into_iter()
            .map(|u| UserView::new(u.username, u.role, u.scope))
            .collect(),
    ))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewUserRequest {
    pub username: String,
    pub password: String,
    pub role: Role,
    /// Sites the user may see; omit for all sites (not allowed for managers).
    #[serde(default)]
    pub sites: Option<Vec<String>>,
}

/// Creates a user (admins only).
#[utoipa::path(post, path = "/users", tag = "users", request_body = NewUserRequest,
    responses((status = 201, body = UserView), (status = 403, body = ErrorBody),
        (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn add_user(
    State(state): State<AppState>,
    Caller(p): Caller,
    ApiJson(req): ApiJson<NewUserRequest>,
) -> Result<(StatusCode, Json<UserView>), ApiError> {
    require(&p, Action::ManageUsers)?;
    let user = NewUser {
        username: req.username,
        password: req.password,
        role: req.role,
        scope: req.sites.map_or(SiteScope::All, SiteScope::Sites),
    };
    let stored = create_user(
        state.registry().store().as_ref(),
        state.hashing(),
        user,
        state.now(),
    )
    .await
    .map_err(|e| match e {
        BootstrapError::InvalidUsername(_) => ApiError::invalid("username", e.to_string()),
        BootstrapError::Password(_) => ApiError::invalid("password", e.to_string()),
        BootstrapError::ScopeNotAllowed { .. }
        | BootstrapError::NoSites { .. }
        | BootstrapError::UnknownSite(_) => ApiError::invalid("sites", e.to_string()),
        BootstrapError::UserExists(_) => ApiError::Conflict(e.to_string()),
        BootstrapError::HalfConfigured(..) => ApiError::Internal,
        BootstrapError::Store(s) => ApiError::store(s),
    })?;
    tracing::info!(by = %p.username, user = %stored.username, role = %stored.role, "user created");
    Ok((
        StatusCode::CREATED,
        Json(UserView::new(stored.username, stored.role, stored.scope)),
    ))
}

/// Deletes a user and their sessions (admins only; the last admin cannot be deleted).
#[utoipa::path(delete, path = "/users/{username}", tag = "users",
    params(("username" = String, Path)),
    responses((status = 204), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody),
        (status = 409, body = ErrorBody)))]
async fn delete_user(
    State(state): State<AppState>,
    Caller(p): Caller,
    Path(username): Path<String>,
) -> Result<StatusCode, ApiError> {
    require(&p, Action::ManageUsers)?;
    let store = state.registry().store();
    let user = store
        .get_user(&username)
        .await
        .map_err(ApiError::store)?
        .ok_or_else(|| ApiError::NotFound(format!("user {username:?}")))?;
    if user.role == Role::Admin && store.count_admins().await.map_err(ApiError::store)? <= 1 {
        return Err(ApiError::Conflict("cannot delete the last admin".into()));
    }
    store
        .delete_user(&username)
        .await
        .map_err(ApiError::store)?;
    tracing::info!(by = %p.username, user = %username, "user deleted");
    Ok(StatusCode::NO_CONTENT)
}

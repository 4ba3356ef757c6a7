//! A small client of the server's JSON API (hyper, one connection per request): what the
//! demo uses to register its district and to act as the duty operator.

use std::net::SocketAddr;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::header::{AUTHORIZATION, CONTENT_TYPE, HOST};
use hyper::{Method, Request, StatusCode};
use hyper_util::rt::TokioIo;
use serde_json::{json, Value};

#[derive(Debug, thiserror::Error)]
pub enum ApiCallError {
    #[error("cannot reach the API at {addr}: {source}")]
    Connect {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("HTTP exchange with {addr} failed: {source}")]
    Http {
        addr: SocketAddr,
        source: hyper::Error,
    },
    #[error("bad request to build: {0}")]
    Build(#[from] hyper::http::Error),
    #[error("{method} {path} answered {status}: {body}")]
    Status {
        method: Method,
        path: String,
        status: StatusCode,
        body: String,
    },
}

/// A signed-in API user.
#[derive(Clone)]
pub struct ApiClient {
    addr: SocketAddr,
    token: String,
}

impl ApiClient {
    /// Logs in; the session token is sent as `Authorization: Bearer` from then on.
    pub async fn login(
        addr: SocketAddr,
        username: &str,
        password: &str,
    ) -> Result<Self, ApiCallError> {
        let body = json!({"username": username, "password": password});
        let (status, answer) = call(addr, None, Method::POST, "/api/v1/login", Some(&body)).await?;
        let token = answer["token"].as_str().map(str::to_owned);
        match (status.is_success(), token) {
            (true, Some(token)) => Ok(Self { addr, token }),
            _ => Err(ApiCallError::Status {
                method: Method::POST,
                path: "/api/v1/login".into(),
                status,
                body: answer.to_string(),
            }),
        }
    }

    /// Any request; the status and the JSON answer (`Null` when the body is not JSON).
    pub async fn request(
        &self,
        method: Method,
        path: &str,
        body: Option<&Value>,
    ) -> Result<(StatusCode, Value), ApiCallError> {
        call(self.addr, Some(&self.token), method, path, body).await
    }

    /// A request that must succeed (2xx).
    pub async fn expect_ok(
        &self,
        method: Method,
        path: &str,
        body: Option<&Value>,
    ) -> Result<Value, ApiCallError> {
        let (status, answer) = self.request(method.clone(), path, body).await?;
        if status.is_success() {
            Ok(answer)
        } else {
            Err(ApiCallError::Status {
                method,
                path: path.to_owned(),
                status,
                body: answer.to_string(),
            })
        }
    }
}

async fn call(
    addr: SocketAddr,
    token: Option<&str>,
    method: Method,
    path: &str,
    body: Option<&Value>,
) -> Result<(StatusCode, Value), ApiCallError> {
    let tcp = tokio::net::TcpStream::connect(addr)
        .await
        .map_err(|source| ApiCallError::Connect { addr, source })?;
    let _ = tcp.set_nodelay(true);
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(tcp))
        .await
        .map_err(|source| ApiCallError::Http { addr, source })?;
    let connection = tokio::spawn(conn);
    let mut req = Request::builder()
        .method(method)
        .uri(path)
        .header(HOST, addr.to_string());
    if let Some(t) = token {
        req = req.header(AUTHORIZATION, format!("Bearer {t}"));
    }
    let payload = match body {
        Some(b) => {
            req = req.header(CONTENT_TYPE, "application/json");
            Bytes::from(b.to_string())
        }
        None => Bytes::new(),
    };
    let response = sender
        .send_request(req.body(Full::new(payload))?)
        .await
        .map_err(|source| ApiCallError::Http { addr, source })?;
    let status = response.status();
    let bytes = response
        .into_body()
        .collect()
        .await
        .map_err(|source| ApiCallError::Http { addr, source })?
        .to_bytes();
    connection.abort();
    let json = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
    Ok((status, json))
}

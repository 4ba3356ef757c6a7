//! The server's HTTP API as `vigil sim run` uses it: sign in, register the scenario's
//! sites, residents, devices and gateways, mark residents away, and read the alerts.
//!
//! One request per connection over `hyper`'s HTTP/1.1 client (plain `http://`: the
//! simulator runs next to the server or on a trusted network).

use std::time::Duration;

use anyhow::{anyhow, bail, Context};
use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper::{Method, Request, StatusCode};
use hyper_util::rt::TokioIo;
use serde_json::{json, Value};
use tokio::net::TcpStream;
use vigil_server::alerts::lifecycle::Alert;

/// How long one request may take.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

/// A signed-in session on a server's API.
#[derive(Debug, Clone)]
pub struct ServerApi {
    /// `host:port`.
    authority: String,
    token: String,
}

/// An HTTP answer: status and JSON body (`Null` when the body is not JSON).
#[derive(Debug, Clone)]
pub struct Answer {
    pub status: StatusCode,
    pub body: Value,
}

impl Answer {
    fn ok(&self) -> bool {
        self.status.is_success()
    }
}

/// `http://host:port[/…]` → `host:port`.
pub fn authority_of(url: &str) -> anyhow::Result<String> {
    let rest = url.strip_prefix("http://").ok_or_else(|| {
        anyhow!(
            "expected an http:// URL for the server (e.g. http://127.0.0.1:8080), found {url:?}"
        )
    })?;
    let authority = rest.split('/').next().unwrap_or_default();
    if authority.is_empty() {
        bail!("no host in the server URL {url:?}");
    }
    Ok(authority.to_owned())
}

/// A GET without a session (health, metrics); the body as text.
pub async fn get_text(authority: &str, path: &str) -> anyhow::Result<String> {
    let (status, bytes) = exchange(authority, Method::GET, path, None, None).await?;
    if !status.is_success() {
        bail!("GET {path}: {status}");
    }
    Ok(String::from_utf8_lossy(&bytes).into_owned())
}

async fn request(
    authority: &str,
    method: Method,
    path: &str,
    token: Option<&str>,
    body: Option<&Value>,
) -> anyhow::Result<Answer> {
    let (status, bytes) = exchange(authority, method, path, token, body).await?;
    let body = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
    Ok(Answer { status, body })
}

async fn exchange(
    authority: &str,
    method: Method,
    path: &str,
    token: Option<&str>,
    body: Option<&Value>,
) -> anyhow::Result<(StatusCode, Bytes)> {
    let work = async {
        let stream = TcpStream::connect(authority)
            .await
            .with_context(|| format!("connecting to the server at {authority}"))?;
        let _ = stream.set_nodelay(true);
        let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
            .await
            .context("HTTP handshake")?;
        let conn = tokio::spawn(conn);
        let mut req = Request::builder()
            .method(method.clone())
            .uri(path)
            .header(hyper::header::HOST, authority)
            .header(hyper::header::CONTENT_TYPE, "application/json");
        if let Some(t) = token {
            req = req.header(hyper::header::AUTHORIZATION, format!("Bearer {t}"));
        }
        let payload = body.map(Value::to_string).unwrap_or_default();
        let req = req
            .body(Full::new(Bytes::from(payload)))
            .context("building the request")?;
        let res = sender
            .send_request(req)
            .await
            .context("sending the request")?;
        let status = res.status();
        let bytes = res
            .into_body()
            .collect()
            .await
            .context("reading the answer")?
            .to_bytes();
        conn.abort();
        Ok::<_, anyhow::Error>((status, bytes))
    };
    tokio::time::timeout(REQUEST_TIMEOUT, work)
        .await
        .map_err(|_| anyhow!("{method} {path}: no answer within {REQUEST_TIMEOUT:?}"))?
}

impl ServerApi {
    /// Signs in as `user`.
    pub async fn login(server_url: &str, user: &str, password: &str) -> anyhow::Result<Self> {
        let authority = authority_of(server_url)?;
        let a = request(
            &authority,
            Method::POST,
            "/api/v1/login",
            None,
            Some(&json!({"username": user, "password": password})),
        )
        .await?;
        if !a.ok() {
            bail!(
                "signing in as {user:?} at {server_url}: {} {}",
                a.status,
                a.body
            );
        }
        let token = a.body["token"]
            .as_str()
            .ok_or_else(|| anyhow!("the login answer has no token: {}", a.body))?
            .to_owned();
        Ok(Self { authority, token })
    }

    pub async fn call(
        &self,
        method: Method,
        path: &str,
        body: Option<&Value>,
    ) -> anyhow::Result<Answer> {
        request(&self.authority, method, path, Some(&self.token), body).await
    }

    /// Creates a registry entity, or updates it when it exists already (a re-run).
    pub async fn upsert(&self, collection: &str, id: &str, entity: &Value) -> anyhow::Result<()> {
        let path = format!("/api/v1/{collection}");
        let created = self.call(Method::POST, &path, Some(entity)).await?;
        if created.ok() {
            return Ok(());
        }
        if created.status == StatusCode::CONFLICT {
            let updated = self
                .call(Method::PUT, &format!("{path}/{id}"), Some(entity))
                .await?;
            if updated.ok() {
                return Ok(());
            }
            bail!(
                "updating {collection}/{id}: {} {}",
                updated.status,
                updated.body
            );
        }
        bail!(
            "registering {collection}/{id}: {} {}",
            created.status,
            created.body
        )
    }

    /// Marks a resident away until `until_unix_ms`, or back home with `None`.
    pub async fn set_away(&self, resident: &str, until_unix_ms: Option<i64>) -> anyhow::Result<()> {
        let until = until_unix_ms
            .and_then(chrono::DateTime::from_timestamp_millis)
            .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true));
        let a = self
            .call(
                Method::PUT,
                &format!("/api/v1/residents/{resident}/away_until"),
                Some(&json!({ "until": until })),
            )
            .await?;
        if !a.ok() {
            bail!("marking {resident} away: {} {}", a.status, a.body);
        }
        Ok(())
    }

    /// Every alert raised since `from_unix_ms`, oldest first (all pages).
    pub async fn alerts_since(&self, from_unix_ms: i64) -> anyhow::Result<Vec<Alert>> {
        let from = chrono::DateTime::from_timestamp_millis(from_unix_ms)
            .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true))
            .unwrap_or_default();
        let mut out = Vec::new();
        loop {
            let path = format!(
                "/api/v1/alerts?from={}&limit=500&offset={}",
                from.replace('+', "%2B"),
                out.len()
            );
            let a = self.call(Method::GET, &path, None).await?;
            if a.status == StatusCode::NOT_FOUND {
                bail!(
                    "the server has no alert list (GET /api/v1/alerts answers 404): it predates \
                     the alert API, so no expectation can be checked"
                );
            }
            if a.status == StatusCode::SERVICE_UNAVAILABLE
                && a.body["error"]["code"].as_str() == Some("not_configured")
            {
                bail!(
                    "the server has no alert list (GET /api/v1/alerts: {}): no expectation can \
                     be checked",
                    a.body["error"]["message"]
                        .as_str()
                        .unwrap_or("not configured")
                );
            }
            if !a.ok() {
                bail!("listing alerts: {} {}", a.status, a.body);
            }
            let items = a.body["items"]
                .as_array()
                .ok_or_else(|| anyhow!("the alert list has no `items`: {}", a.body))?;
            let page: Vec<Alert> = items
                .iter()
                .map(|v| serde_json::from_value(v.clone()))
                .collect::<Result<_, _>>()
                .context("an alert in the list is not an alert")?;
            let total = a.body["total"].as_u64().unwrap_or(0) as usize;
            let got = page.len();
            out.extend(page);
            if got == 0 || out.len() >= total {
                return Ok(out);
            }
        }
    }

    /// When the alert was escalated (each `escalated` record of its audit trail), Unix ms.
    pub async fn escalations(&self, alert: &Alert) -> anyhow::Result<Vec<u64>> {
        let a = self
            .call(Method::GET, &format!("/api/v1/alerts/{}", alert.id), None)
            .await?;
        if !a.ok() {
            bail!("reading alert {}: {} {}", alert.id, a.status, a.body);
        }
        let mut at = Vec::new();
        collect_escalations(&a.body, &mut at);
        Ok(at)
    }
}

/// Finds every audit record `{"change": "escalated", "tier": n ≥ 1, "at": …}` anywhere in
/// the answer (tier 0 is the first tier, notified when the alert is raised: not an
/// escalation).
fn collect_escalations(v: &Value, out: &mut Vec<u64>) {
    match v {
        Value::Object(map) => {
            // The change is either inline (`"change": "escalated", "tier": 1`) or, as the
            // server's `AuditRecord` serialises it, nested (`"change": {"change": …}`).
            let change = match map.get("change") {
                Some(Value::Object(inner)) => Some(inner),
                Some(Value::String(_)) => Some(map),
                _ => None,
            };
            let escalated =
                change.and_then(|c| c.get("change")).and_then(Value::as_str) == Some("escalated");
            let tier = change
                .and_then(|c| c.get("tier"))
                .and_then(Value::as_u64)
                .unwrap_or(1);
            if escalated && tier >= 1 {
                if let Some(at) = map.get("at").and_then(Value::as_u64) {
                    out.push(at);
                }
            }
            map.values().for_each(|x| collect_escalations(x, out));
        }
        Value::Array(items) => items.iter().for_each(|x| collect_escalations(x, out)),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_server_url_gives_its_authority_and_other_schemes_are_refused() {
        assert_eq!(
            authority_of("http://127.0.0.1:8080").unwrap(),
            "127.0.0.1:8080"
        );
        assert_eq!(authority_of("http://vigil:80/api/v1").unwrap(), "vigil:80");
        assert!(authority_of("https://vigil").is_err());
        assert!(authority_of("http://").is_err());
    }

    #[test]
    fn escalations_are_found_in_an_audit_trail_wherever_it_sits() {
        let body = json!({
            "alert": {"id": 7},
            "audit": [
                {"change": "raised", "at": 1_000},
                {"change": "escalated", "tier": 0, "at": 1_000},
                {"change": "escalated", "tier": 1, "at": 61_000},
                {"change": "escalated", "tier": 2, "at": 121_000},
            ],
            "trail": [
                {"at": 5_000, "change": {"change": "escalated", "tier": 0}},
                {"at": 181_000, "change": {"change": "escalated", "tier": 3}},
            ]
        });
        let mut at = Vec::new();
        collect_escalations(&body, &mut at);
        at.sort_unstable();
        assert_eq!(at, [61_000, 121_000, 181_000]);
    }
}

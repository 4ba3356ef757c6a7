//! The scripted duty operator: finds the alert a step is about through the alert API and
//! acknowledges or resolves it through the lifecycle endpoints, as a person at the console
//! would (the audit trail names the `duty-operator` user).

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use hyper::{Method, StatusCode};
use serde_json::{json, Value};
use vigil_sim::demo::{OperatorAction, OperatorStep};

use super::api::{ApiCallError, ApiClient};
use super::OPERATOR_USER as OPERATOR;

/// How long the operator looks for the alert a step is about (the engine raises it within a
/// second of the frame; this covers a slow machine).
const FIND_FOR: Duration = Duration::from_secs(15);

#[derive(Debug, thiserror::Error)]
pub enum OperatorError {
    #[error(transparent)]
    Api(#[from] ApiCallError),
    #[error(
        "this build serves no alert API yet (GET /api/v1/alerts is 404): nothing to {0}; \
         the script's operator steps are skipped"
    )]
    NoAlertApi(&'static str),
    #[error(
        "no open `{kind}` alert for {subject} after {secs} s (closed by its rule already, or \
         never raised): nothing to {action}"
    )]
    NotFound {
        kind: &'static str,
        subject: String,
        secs: u64,
        action: &'static str,
    },
}

#[derive(Clone)]
pub struct DutyOperator {
    client: ApiClient,
    /// Whether the missing alert API was reported already (it is said once, not every step).
    told_no_alert_api: Arc<AtomicBool>,
}

impl DutyOperator {
    pub async fn login(addr: SocketAddr, user: &str, password: &str) -> Result<Self, ApiCallError> {
        Ok(Self {
            client: ApiClient::login(addr, user, password).await?,
            told_no_alert_api: Arc::new(AtomicBool::new(false)),
        })
    }

    /// Carries the step out; what was done, for the narrative (`None`: nothing worth saying).
    pub async fn act(&self, step: OperatorStep) -> Result<Option<String>, OperatorError> {
        match self.carry_out(&step).await {
            Ok(done) => Ok(Some(done)),
            Err(OperatorError::NoAlertApi(_))
                if self.told_no_alert_api.swap(true, Ordering::Relaxed) =>
            {
                Ok(None)
            }
            Err(e) => Err(e),
        }
    }

    async fn carry_out(&self, step: &OperatorStep) -> Result<String, OperatorError> {
        let (verb, body) = match &step.action {
            OperatorAction::Acknowledge => ("acknowledge", json!({"note": step.note})),
            OperatorAction::Resolve { disposition } => (
                "resolve",
                json!({"note": step.note, "disposition": disposition}),
            ),
        };
        let id = self.find(step, verb).await?;
        self.client
            .expect_ok(
                Method::POST,
                &format!("/api/v1/alerts/{id}/{verb}"),
                Some(&body),
            )
            .await?;
        let done = match verb {
            "acknowledge" => "acknowledged",
            _ => "resolved",
        };
        Ok(format!(
            "{OPERATOR}: {done} alert {id} ({} {}) — GET /api/v1/alerts/{id}",
            step.alert.kind, step.alert.subject
        ))
    }

    /// The newest alert of the step's kind and subject that is not closed.
    async fn find(&self, step: &OperatorStep, verb: &'static str) -> Result<u64, OperatorError> {
        // Only alerts still open to this action: few, whatever the length of the history.
        let states = match step.action {
            OperatorAction::Acknowledge => "open",
            OperatorAction::Resolve { .. } => "open,acknowledged,dispatched,on_scene",
        };
        let path = format!(
            "/api/v1/alerts?kind={}&state={states}&limit=100",
            step.alert.kind
        );
        let give_up = tokio::time::Instant::now() + FIND_FOR;
        loop {
            let (status, page) = self.client.request(Method::GET, &path, None).await?;
            if status == StatusCode::NOT_FOUND {
                return Err(OperatorError::NoAlertApi(verb));
            }
            if !status.is_success() {
                return Err(ApiCallError::Status {
                    method: Method::GET,
                    path,
                    status,
                    body: page.to_string(),
                }
                .into());
            }
            if let Some(id) = newest_open(&page, step.alert.kind, &step.alert.subject) {
                return Ok(id);
            }
            if tokio::time::Instant::now() >= give_up {
                return Err(OperatorError::NotFound {
                    kind: step.alert.kind,
                    subject: step.alert.subject.clone(),
                    secs: FIND_FOR.as_secs(),
                    action: verb,
                });
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    }
}

/// The id of the newest alert of `kind` about `subject` (`resident:res-01`) that is not closed,
/// in a `GET /api/v1/alerts` page.
pub fn newest_open(page: &Value, kind: &str, subject: &str) -> Option<u64> {
    page["items"]
        .as_array()?
        .iter()
        .filter(|a| alert_kind(a) == Some(kind))
        .filter(|a| alert_subject(a).as_deref() == Some(subject))
        .filter(|a| {
            !matches!(
                a["state"].as_str(),
                Some("resolved" | "cancelled" | "false_alarm")
            )
        })
        .filter_map(|a| a["id"].as_u64())
        .max()
}

fn alert_kind(a: &Value) -> Option<&str> {
    a["key"]["kind"].as_str().or_else(|| a["kind"].as_str())
}

/// The subject as the scenarios write it: `resident:ID`, `device:ID`, `zone:SITE/ZONE`,
/// `gateway:ID`, `site:ID`; the alert's JSON has `{"resident": "ID"}`,
/// `{"zone": {"site": …, "zone": …}}`, ….
pub fn alert_subject(a: &Value) -> Option<String> {
    let s = if a["key"]["subject"].is_object() {
        &a["key"]["subject"]
    } else {
        &a["subject"]
    };
    let (tag, value) = s.as_object()?.iter().next()?;
    match value {
        Value::String(id) => Some(format!("{tag}:{id}")),
        Value::Object(z) => Some(format!(
            "{tag}:{}/{}",
            z.get("site")?.as_str()?,
            z.get("zone")?.as_str()?
        )),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subjects_are_written_the_way_scenarios_write_them() {
        let a = json!({"key": {"subject": {"resident": "res-01"}, "kind": "call"}});
        assert_eq!(alert_subject(&a).as_deref(), Some("resident:res-01"));
        let z = json!({"key": {"subject": {"zone": {"site": "care-01", "zone": "f2-east"}}, "kind": "fire_alarm"}});
        assert_eq!(alert_subject(&z).as_deref(), Some("zone:care-01/f2-east"));
    }

    #[test]
    fn the_newest_alert_that_is_not_closed_is_chosen() {
        let item = |id: u64, subject: &str, state: &str| json!({"id": id, "state": state, "key": {"subject": {"resident": subject}, "kind": "call"}});
        let page = json!({"items": [
            item(3, "res-01", "resolved"),
            item(5, "res-01", "acknowledged"),
            item(4, "res-01", "open"),
            item(9, "res-02", "open"),
        ], "total": 4});
        assert_eq!(newest_open(&page, "call", "resident:res-01"), Some(5));
        assert_eq!(newest_open(&page, "fall", "resident:res-01"), None);
        assert_eq!(newest_open(&json!({}), "call", "resident:res-01"), None);
    }
}

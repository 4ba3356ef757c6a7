//! Operator actions on alerts, sent into the engine task so that the in-memory alert book
//! and the store never disagree.

use tokio::sync::{mpsc, oneshot};

use super::task::Command;
use crate::alerts::audit::Actor;
use crate::alerts::lifecycle::{Alert, AlertId, LifecycleError, OperatorAction};
use crate::ids::SiteId;

/// The sites a caller may act on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ActionScope {
    All,
    Sites(Vec<String>),
}

impl ActionScope {
    pub fn allows(&self, site: &SiteId) -> bool {
        match self {
            Self::All => true,
            Self::Sites(s) => s.iter().any(|x| x == site.as_str()),
        }
    }
}

/// One person's action on one alert.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ActionRequest {
    pub alert: AlertId,
    pub action: OperatorAction,
    pub actor: Actor,
    pub note: Option<String>,
    pub scope: ActionScope,
}

/// Why an action was not taken.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ActionError {
    /// No such alert, or not in the caller's sites.
    #[error("alert {0} not found")]
    NotFound(AlertId),
    /// The lifecycle refuses the action in the alert's state.
    #[error(transparent)]
    Refused(LifecycleError),
    /// The store could not record it (nothing was changed).
    #[error("the alert store is unavailable: {0}")]
    Unavailable(String),
    /// The engine is not running.
    #[error("the alert engine is not running")]
    EngineStopped,
}

/// A clone-able handle for the HTTP API.
#[derive(Clone, Debug)]
pub struct AlertActions {
    pub(super) tx: mpsc::Sender<Command>,
}

impl AlertActions {
    /// Applies the action; returns the alert as it is now.
    pub async fn act(&self, request: ActionRequest) -> Result<Alert, ActionError> {
        let (reply, rx) = oneshot::channel();
        self.tx
            .send(Command::Act { request, reply })
            .await
            .map_err(|_| ActionError::EngineStopped)?;
        rx.await.map_err(|_| ActionError::EngineStopped)?
    }
}

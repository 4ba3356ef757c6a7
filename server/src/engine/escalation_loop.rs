//! The escalation loop over the store's work queue: claim due tiers, decide, complete, and
//! notify only what was completed. Two instances on one database never tell a tier twice:
//! the claim hands a row to one of them, and a completion whose claim is no longer current
//! writes and sends nothing.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;

use super::dispatch::dispatch;
use super::outputs::Outputs;
use super::source::DirectorySource;
use super::task::{publish, EngineClock, EngineStats};
use crate::alert_store::{AlertStore, AnyAlertStore, Applied, ChangeSet, Completion};

pub(super) struct EscalationLoop {
    pub store: AnyAlertStore,
    pub source: Arc<dyn DirectorySource>,
    pub outputs: Outputs,
    pub clock: EngineClock,
    pub stats: Arc<EngineStats>,
    pub poll: Duration,
    pub limit: u32,
    pub lease: Duration,
}

pub(super) async fn run_escalation_loop(l: EscalationLoop, mut stop: watch::Receiver<bool>) {
    loop {
        let full = match round(&l).await {
            Ok(n) => n >= l.limit as usize,
            Err(e) => {
                metrics::counter!("vigil_engine_escalation_errors_total").increment(1);
                tracing::warn!(error = %e, "escalation round failed; retrying");
                false
            }
        };
        if full {
            // More may be due right now.
            let stopping = *stop.borrow();
            if stopping {
                break;
            }
            continue;
        }
        tokio::select! {
            () = super::task::stopped(&mut stop) => break,
            () = tokio::time::sleep(l.poll) => {}
        }
    }
}

/// One claim round; returns how many tiers were claimed.
pub(super) async fn round(
    l: &EscalationLoop,
) -> Result<usize, crate::alert_store::AlertStoreError> {
    let now = (l.clock)();
    let claims = l.store.claim_due(now, l.limit, l.lease).await?;
    let n = claims.len();
    for claim in claims {
        let dir = l.source.current();
        let chains = dir.escalation(&claim.task.site);
        let policy = chains.for_kind(claim.task.kind);
        let mut task = claim.task.clone();
        let mut changes = ChangeSet::new();
        let notify = changes.record_escalation(task.handle_due(claim.tier, policy, &*dir, now));
        match l.store.complete(&claim, &task, &changes.audit).await? {
            Completion::Completed => {
                EngineStats::add_pub(&l.stats.tiers_completed, 1);
                publish(&l.outputs, &changes, &Applied::default());
                let alert = if notify.is_empty() {
                    None
                } else {
                    l.store.alert_detail(claim.task.alert).await.ok().flatten()
                };
                let mut outcomes = Vec::new();
                for n in &notify {
                    EngineStats::add_pub(&l.stats.notifications, 1);
                    outcomes.extend(dispatch(
                        n,
                        alert.as_ref().map(|d| &d.alert),
                        &*dir,
                        l.outputs.webhooks.as_deref(),
                        now,
                    ));
                }
                if !outcomes.is_empty() {
                    let follow_up = ChangeSet {
                        audit: outcomes,
                        ..ChangeSet::default()
                    };
                    let applied = l.store.apply(&follow_up).await?;
                    publish(&l.outputs, &follow_up, &applied);
                }
            }
            Completion::Superseded => {
                EngineStats::add_pub(&l.stats.tiers_superseded, 1);
                tracing::debug!(alert = %claim.task.alert, tier = claim.tier,
                    "escalation claim superseded: nothing sent");
            }
        }
    }
    Ok(n)
}

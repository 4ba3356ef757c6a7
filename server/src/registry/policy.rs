//! Escalation policies as the registry stores them: district-wide objects a site names by id,
//! converted into the escalation core's [`SiteEscalation`] (whose validation they reuse).

use std::collections::BTreeMap;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::id_serde;
use super::model::{FieldError, MAX_LIST_LEN};
use crate::alerts::{AlertKind, Severity};
use crate::escalation::{self, PolicyError, SiteEscalation, Target, Tier};

/// Longest acknowledgement deadline of a tier: one day.
pub const MAX_ACK_DEADLINE_S: u64 = 86_400;

pub use crate::ids::PolicyId;

/// One tier: who is told, and how long they have to acknowledge before the next tier is.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PolicyTier {
    /// `{"type": "responder", "id": "nurse-7"}`, `{"type": "role", "id": "nurse_lead"}` (whoever
    /// holds the roster role when the tier starts) or `{"type": "emergency_contact"}` (the
    /// resident's emergency contacts).
    #[schema(value_type = Vec<Object>, example = json!([{"type": "role", "id": "on_duty_caregiver"}]))]
    pub targets: Vec<Target>,
    /// Seconds to acknowledge, 1 to 86400. After the last tier its deadline repeats.
    pub ack_deadline_s: u64,
}

/// The chain of one alert kind, replacing the policy's own tiers for that kind.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PolicyChain {
    /// Least severe alert that pages anybody; default: the policy's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<String>, example = "minor")]
    pub min_severity: Option<Severity>,
    pub tiers: Vec<PolicyTier>,
}

/// Who is told about a site's unacknowledged alerts, tier after tier. District-wide:
/// administrators edit them, every role reads them; a site names one in
/// `escalation_policy`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct EscalationPolicy {
    #[serde(with = "id_serde")]
    #[schema(value_type = String, example = "telecare")]
    pub id: PolicyId,
    pub name: String,
    /// Least severe alert that pages anybody (`critical`, `major`, `minor`, `warning`); less
    /// severe ones only show on the console.
    #[schema(value_type = String, example = "major")]
    pub min_severity: Severity,
    pub tiers: Vec<PolicyTier>,
    /// Chains for particular alert kinds (e.g. `water_no_use`); other kinds use `tiers`.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    #[schema(value_type = Object)]
    pub by_kind: BTreeMap<AlertKind, PolicyChain>,
}

fn kind_name(kind: AlertKind) -> String {
    serde_json::to_value(kind)
        .ok()
        .and_then(|v| v.as_str().map(str::to_owned))
        .unwrap_or_else(|| format!("{kind:?}"))
}

/// Builds one chain with the core's validation, naming the field of a failure.
fn chain(
    prefix: &str,
    tiers: &[PolicyTier],
    min_severity: Severity,
) -> Result<escalation::EscalationPolicy, FieldError> {
    if tiers.len() > MAX_LIST_LEN {
        return Err(FieldError::new(
            format!("{prefix}tiers"),
            format!("too many tiers: {}, at most {MAX_LIST_LEN}", tiers.len()),
        ));
    }
    let mut core = Vec::with_capacity(tiers.len());
    for (i, t) in tiers.iter().enumerate() {
        if t.targets.len() > MAX_LIST_LEN {
            return Err(FieldError::new(
                format!("{prefix}tiers[{i}].targets"),
                format!(
                    "too many targets: {}, at most {MAX_LIST_LEN}",
                    t.targets.len()
                ),
            ));
        }
        if t.ack_deadline_s > MAX_ACK_DEADLINE_S {
            return Err(FieldError::new(
                format!("{prefix}tiers[{i}].ack_deadline_s"),
                format!("at most {MAX_ACK_DEADLINE_S} s (one day)"),
            ));
        }
        for (j, target) in t.targets.iter().enumerate() {
            if t.targets[..j].contains(target) {
                return Err(FieldError::new(
                    format!("{prefix}tiers[{i}].targets[{j}]"),
                    "listed twice",
                ));
            }
        }
        core.push(Tier {
            targets: t.targets.clone(),
            ack_deadline: Duration::from_secs(t.ack_deadline_s),
        });
    }
    escalation::EscalationPolicy::new(core, min_severity).map_err(|e| {
        let field = match &e {
            PolicyError::NoTiers | PolicyError::InvalidRole(_) => format!("{prefix}tiers"),
            PolicyError::EmptyTier(i) => format!("{prefix}tiers[{i}].targets"),
            PolicyError::ZeroDeadline(i) => format!("{prefix}tiers[{i}].ack_deadline_s"),
        };
        FieldError::new(field, e.to_string())
    })
}

impl EscalationPolicy {
    pub fn validate(&self) -> Result<(), FieldError> {
        super::model::text("name", &self.name, true)?;
        self.to_site_escalation().map(|_| ())
    }

    /// The escalation core's form of this policy, validated by the core.
    pub fn to_site_escalation(&self) -> Result<SiteEscalation, FieldError> {
        let mut out = SiteEscalation::from(chain("", &self.tiers, self.min_severity)?);
        for (kind, c) in &self.by_kind {
            let prefix = format!("by_kind.{}.", kind_name(*kind));
            let min = c.min_severity.unwrap_or(self.min_severity);
            out = out.with_kind(*kind, chain(&prefix, &c.tiers, min)?);
        }
        Ok(out)
    }

    /// Every responder a tier names, with the field naming it.
    pub fn responder_targets(&self) -> Vec<(String, crate::ids::ResponderId)> {
        let mut out = Vec::new();
        let mut scan = |prefix: &str, tiers: &[PolicyTier]| {
            for (i, t) in tiers.iter().enumerate() {
                for (j, target) in t.targets.iter().enumerate() {
                    if let Target::Responder(r) = target {
                        out.push((format!("{prefix}tiers[{i}].targets[{j}]"), r.clone()));
                    }
                }
            }
        };
        scan("", &self.tiers);
        for (kind, c) in &self.by_kind {
            scan(&format!("by_kind.{}.", kind_name(*kind)), &c.tiers);
        }
        out
    }
}

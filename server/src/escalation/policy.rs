//! A site's escalation policy and the roster that says who is on duty.

use std::collections::BTreeMap;
use std::fmt;
use std::time::Duration;

use crate::alerts::{duration_secs, AlertKind, Severity, Subject, Timestamp};
use crate::ids::{ResidentId, ResponderId, SiteId};

/// A role in a roster, e.g. `on_duty_caregiver`, `nurse_lead`, `district_duty_operator`.
#[derive(
    Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize,
)]
#[serde(try_from = "String", into = "String")]
pub struct RoleName(String);

impl RoleName {
    /// 1 to 48 characters of `a-z 0-9 _`.
    pub fn new(s: &str) -> Result<Self, PolicyError> {
        let ok = !s.is_empty()
            && s.len() <= 48
            && s.bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_');
        if ok {
            Ok(Self(s.to_owned()))
        } else {
            Err(PolicyError::InvalidRole(s.to_owned()))
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for RoleName {
    type Error = PolicyError;
    fn try_from(s: String) -> Result<Self, PolicyError> {
        Self::new(&s)
    }
}

impl From<RoleName> for String {
    fn from(r: RoleName) -> String {
        r.0
    }
}

impl fmt::Display for RoleName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Who a tier notifies.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(tag = "type", content = "id", rename_all = "snake_case")]
pub enum Target {
    /// A named responder, always.
    Responder(ResponderId),
    /// Whoever holds the role on the roster when the tier starts.
    Role(RoleName),
    /// The emergency contacts of the resident the alert is about.
    EmergencyContact,
}

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Tier {
    pub targets: Vec<Target>,
    /// Time this tier has to acknowledge before the next tier is told.
    #[serde(with = "duration_secs")]
    pub ack_deadline: Duration,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PolicyError {
    #[error("an escalation policy needs at least one tier, found none")]
    NoTiers,
    #[error("tier {0} has no targets: expected at least one responder or role")]
    EmptyTier(usize),
    #[error("tier {0} has a zero acknowledgement deadline: expected at least one second")]
    ZeroDeadline(usize),
    #[error("invalid role name {0:?}: expected 1 to 48 characters of a-z 0-9 _")]
    InvalidRole(String),
}

/// A site's escalation: ordered tiers, each told when the previous one's deadline passed
/// without an acknowledgement. After the last tier its deadline repeats: it is told again.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(try_from = "PolicyFields", into = "PolicyFields")]
pub struct EscalationPolicy {
    tiers: Vec<Tier>,
    /// Less severe alerts show on the console but page nobody.
    min_severity: Severity,
}

#[derive(serde::Serialize, serde::Deserialize)]
struct PolicyFields {
    tiers: Vec<Tier>,
    min_severity: Severity,
}

impl TryFrom<PolicyFields> for EscalationPolicy {
    type Error = PolicyError;
    fn try_from(f: PolicyFields) -> Result<Self, PolicyError> {
        Self::new(f.tiers, f.min_severity)
    }
}

impl From<EscalationPolicy> for PolicyFields {
    fn from(p: EscalationPolicy) -> Self {
        Self {
            tiers: p.tiers,
            min_severity: p.min_severity,
        }
    }
}

impl EscalationPolicy {
    pub fn new(tiers: Vec<Tier>, min_severity: Severity) -> Result<Self, PolicyError> {
        if tiers.is_empty() {
            return Err(PolicyError::NoTiers);
        }
        for (i, t) in tiers.iter().enumerate() {
            if t.targets.is_empty() {
                return Err(PolicyError::EmptyTier(i));
            }
            if t.ack_deadline < Duration::from_secs(1) {
                return Err(PolicyError::ZeroDeadline(i));
            }
        }
        Ok(Self {
            tiers,
            min_severity,
        })
    }

    /// The chain the issue describes: on-duty caregiver 60 s → nurse lead 120 s → district
    /// duty operator and the resident's emergency contacts (re-told every 300 s).
    pub fn telecare_default() -> Self {
        let role = |s: &str| Target::Role(RoleName(s.to_owned()));
        Self {
            tiers: vec![
                Tier {
                    targets: vec![role("on_duty_caregiver")],
                    ack_deadline: Duration::from_secs(60),
                },
                Tier {
                    targets: vec![role("nurse_lead")],
                    ack_deadline: Duration::from_secs(120),
                },
                Tier {
                    targets: vec![role("district_duty_operator"), Target::EmergencyContact],
                    ack_deadline: Duration::from_secs(300),
                },
            ],
            min_severity: Severity::Major,
        }
    }

    pub fn tiers(&self) -> &[Tier] {
        &self.tiers
    }

    /// Whether an alert of this severity pages anybody (the ladder sorts most urgent first).
    pub fn escalates(&self, severity: Severity) -> bool {
        severity <= self.min_severity
    }
}

/// A site's escalation: one chain for every kind, with optional chains for particular kinds
/// (e.g. a water alert goes to the emergency contact, then a work order to the neighbourhood
/// office, then a volunteer — the Jing'an chain — while a call goes to the on-duty carer).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct SiteEscalation {
    pub default: EscalationPolicy,
    #[serde(default)]
    pub by_kind: BTreeMap<AlertKind, EscalationPolicy>,
}

impl SiteEscalation {
    pub fn with_kind(mut self, kind: AlertKind, policy: EscalationPolicy) -> Self {
        self.by_kind.insert(kind, policy);
        self
    }

    pub fn for_kind(&self, kind: AlertKind) -> &EscalationPolicy {
        self.by_kind.get(&kind).unwrap_or(&self.default)
    }
}

impl From<EscalationPolicy> for SiteEscalation {
    fn from(default: EscalationPolicy) -> Self {
        Self {
            default,
            by_kind: BTreeMap::new(),
        }
    }
}

/// Who holds a role, and who a resident's emergency contacts are, at a moment.
/// The registry implements it over its rosters; tests use [`Roster`].
pub trait RosterLookup {
    fn on_duty(&self, site: &SiteId, role: &RoleName, at: Timestamp) -> Vec<ResponderId>;
    fn emergency_contacts(&self, subject: &Subject) -> Vec<ResponderId>;
}

/// One responder holding one role over `[from, until)`.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Shift {
    pub site: SiteId,
    pub role: RoleName,
    pub responder: ResponderId,
    pub from: Timestamp,
    pub until: Timestamp,
}

/// A roster held in memory: shifts and emergency contacts.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Roster {
    pub shifts: Vec<Shift>,
    pub contacts: BTreeMap<ResidentId, Vec<ResponderId>>,
}

impl RosterLookup for Roster {
    fn on_duty(&self, site: &SiteId, role: &RoleName, at: Timestamp) -> Vec<ResponderId> {
        self.shifts
            .iter()
            .filter(|s| &s.site == site && &s.role == role && s.from <= at && at < s.until)
            .map(|s| s.responder.clone())
            .collect()
    }

    fn emergency_contacts(&self, subject: &Subject) -> Vec<ResponderId> {
        match subject {
            Subject::Resident(r) => self.contacts.get(r).cloned().unwrap_or_default(),
            Subject::Device(_) | Subject::Zone { .. } | Subject::Gateway(_) | Subject::Site(_) => {
                Vec::new()
            }
        }
    }
}

//! Users, roles, site scopes, sessions and login rate limits.
//!
//! Roles say what a user may do, scopes say where: a manager sees only their facility, a
//! district supervisor sees every site of the district, an admin sees everything. Resources of
//! a site outside the scope are reported as missing (404), not as forbidden, so that ids of
//! other sites cannot be probed.

mod bootstrap;
mod limiter;
mod password;
mod session;

use std::fmt;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

pub use bootstrap::{bootstrap_admin, create_user, AdminBootstrap, BootstrapError, NewUser};
pub use limiter::{LoginLimiter, LoginRateLimit, RateLimited};
pub use password::{PasswordError, PasswordHashing, MAX_PASSWORD_LEN, MIN_PASSWORD_LEN};
pub use session::{hash_token, new_token, Session, SessionToken};

use crate::registry::SiteFilter;

/// What a user is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// Duty operator: watches the queue, reads the registry and telemetry of their sites.
    Operator,
    /// Facility manager: maintains the registry of their own facility.
    Manager,
    /// District supervisor: oversight of every site in scope, read-only.
    Supervisor,
    /// Administrator: everything, including sites and users.
    Admin,
}

impl Role {
    pub const ALL: [Role; 4] = [Self::Operator, Self::Manager, Self::Supervisor, Self::Admin];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Operator => "operator",
            Self::Manager => "manager",
            Self::Supervisor => "supervisor",
            Self::Admin => "admin",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|r| r.as_str() == s)
    }

    /// Whether this role may perform `action` (in sites of its scope).
    pub fn allows(self, action: Action) -> bool {
        match action {
            Action::ReadRegistry | Action::ReadTelemetry | Action::ReadAlerts => true,
            // Operators take the call that a resident is in hospital; supervisors only watch.
            Action::MarkAway => match self {
                Self::Operator | Self::Manager | Self::Admin => true,
                Self::Supervisor => false,
            },
            Action::WriteRegistry | Action::ImportRegistry => match self {
                Self::Manager | Self::Admin => true,
                Self::Operator | Self::Supervisor => false,
            },
            Action::WriteSites | Action::ManageUsers => match self {
                Self::Admin => true,
                Self::Operator | Self::Manager | Self::Supervisor => false,
            },
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Something a request wants to do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    ReadRegistry,
    ReadTelemetry,
    /// List alerts, read their trail, compute KPIs.
    ReadAlerts,
    /// Set or clear a resident's "away until".
    MarkAway,
    /// Create, change or delete residents, devices, gateways, responders and shifts.
    WriteRegistry,
    ImportRegistry,
    /// Create, change or delete sites.
    WriteSites,
    ManageUsers,
}

/// The sites a user may see.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(tag = "kind", content = "sites", rename_all = "snake_case")]
pub enum SiteScope {
    /// Every site, present and future.
    All,
    /// Only these sites.
    Sites(Vec<String>),
}

impl SiteScope {
    pub fn filter(&self) -> SiteFilter {
        match self {
            Self::All => SiteFilter::All,
            Self::Sites(s) => SiteFilter::Only(s.clone()),
        }
    }
}

/// A user as stored, with the password hash (PHC string).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredUser {
    pub username: String,
    pub role: Role,
    pub scope: SiteScope,
    pub password_hash: String,
    pub created_at: DateTime<Utc>,
}

/// The authenticated caller of a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    pub username: String,
    pub role: Role,
    pub scope: SiteScope,
}

impl Principal {
    pub fn may(&self, action: Action) -> bool {
        self.role.allows(action)
    }

    pub fn sees_site(&self, site: &str) -> bool {
        self.scope.filter().allows(site)
    }
}

/// Whether `s` is an acceptable user name: 1 to 64 characters of `A-Z a-z 0-9 . _ - @`.
pub fn is_valid_username(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 64
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-' | b'@'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_managers_and_admins_change_the_registry_and_only_admins_change_sites() {
        for role in Role::ALL {
            assert!(role.allows(Action::ReadRegistry));
            assert!(role.allows(Action::ReadTelemetry));
        }
        assert!(!Role::Operator.allows(Action::WriteRegistry));
        assert!(!Role::Supervisor.allows(Action::WriteRegistry));
        assert!(Role::Manager.allows(Action::WriteRegistry));
        assert!(!Role::Manager.allows(Action::WriteSites));
        assert!(!Role::Manager.allows(Action::ManageUsers));
        assert!(Role::Admin.allows(Action::WriteSites));
        assert!(Role::Admin.allows(Action::ManageUsers));
    }
}

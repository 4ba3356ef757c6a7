//! Creating users: the first admin from the environment or the CLI, and any user after that.

use chrono::{DateTime, Utc};

use super::{is_valid_username, PasswordError, PasswordHashing, Role, SiteScope, StoredUser};
use crate::registry::{EntityKind, RegistryStore, StoreError};

/// Environment variable naming the initial admin.
pub const ADMIN_USER_ENV: &str = "VIGIL_ADMIN_USER";
/// Environment variable with the initial admin's password. There is no default password.
pub const ADMIN_PASSWORD_ENV: &str = "VIGIL_ADMIN_PASSWORD";

#[derive(Debug, thiserror::Error)]
pub enum BootstrapError {
    #[error("user name {0:?} is invalid: expected 1 to 64 characters of A-Z a-z 0-9 . _ - @")]
    InvalidUsername(String),
    #[error("{0} is set but {1} is not: set both or neither")]
    HalfConfigured(&'static str, &'static str),
    #[error(transparent)]
    Password(#[from] PasswordError),
    #[error("a {role} is scoped to named sites, not to all sites")]
    ScopeNotAllowed { role: Role },
    #[error("a {role} needs at least one site")]
    NoSites { role: Role },
    #[error("site {0:?} does not exist")]
    UnknownSite(String),
    #[error("user {0:?} already exists")]
    UserExists(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// The initial admin's credentials.
#[derive(Clone)]
pub struct AdminBootstrap {
    pub username: String,
    pub password: String,
}

impl std::fmt::Debug for AdminBootstrap {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AdminBootstrap")
            .field("username", &self.username)
            .finish_non_exhaustive()
    }
}

impl AdminBootstrap {
    /// Reads `VIGIL_ADMIN_USER` and `VIGIL_ADMIN_PASSWORD`; `None` when neither is set.
    pub fn from_env() -> Result<Option<Self>, BootstrapError> {
        let user = std::env::var(ADMIN_USER_ENV).ok().filter(|s| !s.is_empty());
        let password = std::env::var(ADMIN_PASSWORD_ENV)
            .ok()
            .filter(|s| !s.is_empty());
        match (user, password) {
            (None, None) => Ok(None),
            (Some(username), Some(password)) => Ok(Some(Self { username, password })),
            (Some(_), None) => Err(BootstrapError::HalfConfigured(
                ADMIN_USER_ENV,
                ADMIN_PASSWORD_ENV,
            )),
            (None, Some(_)) => Err(BootstrapError::HalfConfigured(
                ADMIN_PASSWORD_ENV,
                ADMIN_USER_ENV,
            )),
        }
    }
}

/// A user to create.
#[derive(Clone)]
pub struct NewUser {
    pub username: String,
    pub password: String,
    pub role: Role,
    pub scope: SiteScope,
}

/// Validates and stores a new user. Hashing runs on a blocking thread.
pub async fn create_user(
    store: &dyn RegistryStore,
    hashing: &PasswordHashing,
    user: NewUser,
    now: DateTime<Utc>,
) -> Result<StoredUser, BootstrapError> {
    if !is_valid_username(&user.username) {
        return Err(BootstrapError::InvalidUsername(user.username));
    }
    PasswordHashing::check_policy(&user.password)?;
    let scope = match (user.role, user.scope) {
        (Role::Admin, _) => SiteScope::All,
        (Role::Manager, SiteScope::All) => {
            return Err(BootstrapError::ScopeNotAllowed { role: user.role })
        }
        (role, SiteScope::Sites(sites)) => {
            if sites.is_empty() {
                return Err(BootstrapError::NoSites { role });
            }
            for site in &sites {
                if store.get(EntityKind::Site, site).await?.is_none() {
                    return Err(BootstrapError::UnknownSite(site.clone()));
                }
            }
            SiteScope::Sites(sites)
        }
        (Role::Operator | Role::Supervisor, SiteScope::All) => SiteScope::All,
    };
    if store.get_user(&user.username).await?.is_some() {
        return Err(BootstrapError::UserExists(user.username));
    }
    let hashing = hashing.clone();
    let password = user.password;
    let password_hash = tokio::task::spawn_blocking(move || hashing.hash(&password))
        .await
        .map_err(|e| PasswordError::Hash(e.to_string()))??;
    let stored = StoredUser {
        username: user.username,
        role: user.role,
        scope,
        password_hash,
        created_at: now,
    };
    match store.insert_user(&stored).await {
        Ok(()) => Ok(stored),
        Err(StoreError::AlreadyExists { .. }) => Err(BootstrapError::UserExists(stored.username)),
        Err(e) => Err(e.into()),
    }
}

/// Creates the initial admin unless a user of that name exists already. Returns whether it
/// created one. Never invents a password: without credentials nothing happens.
pub async fn bootstrap_admin(
    store: &dyn RegistryStore,
    hashing: &PasswordHashing,
    admin: &AdminBootstrap,
    now: DateTime<Utc>,
) -> Result<bool, BootstrapError> {
    if store.get_user(&admin.username).await?.is_some() {
        return Ok(false);
    }
    let user = NewUser {
        username: admin.username.clone(),
        password: admin.password.clone(),
        role: Role::Admin,
        scope: SiteScope::All,
    };
    match create_user(store, hashing, user, now).await {
        Ok(_) => Ok(true),
        // Another instance created it in between.
        Err(BootstrapError::UserExists(_)) => Ok(false),
        Err(e) => Err(e),
    }
}

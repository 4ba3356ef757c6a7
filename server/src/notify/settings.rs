//! The `[notify]` table of the server configuration and the webhook signing secret.
//!
//! The secret is never a built-in default: it comes from the configuration
//! (`webhook_secret` or `VIGIL_WEBHOOK_SECRET`), or from a file in the data directory that
//! the first start fills with 32 random bytes (hex), readable by the server's user only.

use std::fmt;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::live;
use super::webhook::{RetrySchedule, WebhookSecret};

/// File of the generated webhook secret in the data directory.
pub const SECRET_FILE: &str = "webhook-secret";
/// File of the pending webhook deliveries, kept across restarts, in the data directory.
pub const QUEUE_FILE: &str = "webhook-queue.json";

/// A secret as written in the configuration; never printed.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct SecretText(pub String);

impl fmt::Debug for SecretText {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SecretText(..)")
    }
}

/// Settings of the notification channels (the `[notify]` table).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct NotifyConfig {
    /// Key of the `X-Vigil-Signature` HMAC (at least 16 bytes). Absent: read from
    /// `webhook_secret_file`, generated there at the first start.
    pub webhook_secret: Option<SecretText>,
    /// Where the generated secret is kept. Absent: `webhook-secret` in the data directory.
    pub webhook_secret_file: Option<PathBuf>,
    /// Where pending deliveries are kept across restarts. Absent: `webhook-queue.json` in
    /// the data directory.
    pub webhook_queue_file: Option<PathBuf>,
    /// Longest wait for a receiver's TCP (and TLS) connection, in milliseconds.
    pub webhook_connect_timeout_ms: u64,
    /// Longest wait for a receiver's whole answer, in milliseconds.
    pub webhook_timeout_ms: u64,
    /// Wait after the first failed attempt, in seconds; doubled after each further failure…
    pub webhook_retry_initial_s: u64,
    /// …up to this many seconds…
    pub webhook_retry_max_delay_s: u64,
    /// …for this many attempts in all.
    pub webhook_max_attempts: u32,
    /// Live events kept for replay to Server-Sent Events clients that reconnect.
    pub sse_buffer: usize,
}

impl Default for NotifyConfig {
    fn default() -> Self {
        let retry = RetrySchedule::default();
        Self {
            webhook_secret: None,
            webhook_secret_file: None,
            webhook_queue_file: None,
            webhook_connect_timeout_ms: 3_000,
            webhook_timeout_ms: 10_000,
            webhook_retry_initial_s: retry.initial.as_secs(),
            webhook_retry_max_delay_s: retry.max_delay.as_secs(),
            webhook_max_attempts: retry.max_attempts,
            sse_buffer: live::DEFAULT_CAPACITY,
        }
    }
}

/// The `[notify]` settings cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum NotifyConfigError {
    #[error("notify.webhook_secret: {0}")]
    Secret(#[from] super::webhook::WebhookError),
    #[error(
        "no webhook secret: set notify.webhook_secret (or VIGIL_WEBHOOK_SECRET), or \
         notify.webhook_secret_file for one generated at the first start"
    )]
    NoSecret,
    #[error("webhook secret file {path}: {problem}")]
    SecretFile { path: PathBuf, problem: String },
    #[error("notify.{field}: {problem}")]
    Invalid {
        field: &'static str,
        problem: &'static str,
    },
}

impl NotifyConfig {
    /// Fills the file locations left out with their places in `data_dir`.
    pub fn resolve_paths(&mut self, data_dir: &Path) {
        self.webhook_secret_file
            .get_or_insert_with(|| data_dir.join(SECRET_FILE));
        self.webhook_queue_file
            .get_or_insert_with(|| data_dir.join(QUEUE_FILE));
    }

    /// Checks values no type can express.
    pub fn validate(&self) -> Result<(), NotifyConfigError> {
        let invalid = |field, problem| Err(NotifyConfigError::Invalid { field, problem });
        if let Some(s) = &self.webhook_secret {
            WebhookSecret::new(s.0.as_bytes())?;
        }
        if self.webhook_connect_timeout_ms == 0 {
            return invalid("webhook_connect_timeout_ms", "must be at least 1");
        }
        if self.webhook_timeout_ms == 0 {
            return invalid("webhook_timeout_ms", "must be at least 1");
        }
        if self.webhook_max_attempts == 0 {
            return invalid("webhook_max_attempts", "must be at least 1");
        }
        if self.webhook_retry_max_delay_s < self.webhook_retry_initial_s {
            return invalid(
                "webhook_retry_max_delay_s",
                "must be at least webhook_retry_initial_s",
            );
        }
        if self.sse_buffer == 0 {
            return invalid("sse_buffer", "must be at least 1");
        }
        Ok(())
    }

    pub fn retry_schedule(&self) -> RetrySchedule {
        RetrySchedule {
            initial: Duration::from_secs(self.webhook_retry_initial_s),
            max_delay: Duration::from_secs(self.webhook_retry_max_delay_s),
            max_attempts: self.webhook_max_attempts,
        }
    }

    /// The signing secret: the configured one, else the one in `webhook_secret_file`,
    /// generated there when the file does not exist yet.
    pub fn webhook_secret(&self) -> Result<WebhookSecret, NotifyConfigError> {
        if let Some(s) = &self.webhook_secret {
            return Ok(WebhookSecret::new(s.0.as_bytes())?);
        }
        let path = self
            .webhook_secret_file
            .as_deref()
            .ok_or(NotifyConfigError::NoSecret)?;
        load_or_create_secret(path)
    }
}

fn secret_file_error(path: &Path, problem: impl fmt::Display) -> NotifyConfigError {
    NotifyConfigError::SecretFile {
        path: path.to_owned(),
        problem: problem.to_string(),
    }
}

fn read_secret(path: &Path) -> Result<WebhookSecret, NotifyConfigError> {
    let text = std::fs::read_to_string(path).map_err(|e| secret_file_error(path, e))?;
    WebhookSecret::new(text.trim().as_bytes()).map_err(|e| secret_file_error(path, e))
}

/// Reads the secret at `path`, or creates the file with a fresh random one (hex of 32 bytes;
/// the hex text is the key). Two servers starting at once agree: only one creates the file.
pub fn load_or_create_secret(path: &Path) -> Result<WebhookSecret, NotifyConfigError> {
    if path.exists() {
        return read_secret(path);
    }
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(|e| secret_file_error(path, e))?;
    }
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes).map_err(|e| secret_file_error(path, e))?;
    let text = hex::encode(bytes);
    // Written whole under a private name, then linked into place: a server starting at the
    // same moment sees either no file or the complete one, never a half-written one.
    let tmp = path.with_file_name(format!(
        ".{}.{}",
        path.file_name()
            .map_or("secret".into(), |n| n.to_string_lossy()),
        &text[..16]
    ));
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let written = options.open(&tmp).and_then(|mut file| {
        file.write_all(text.as_bytes())?;
        file.sync_all()
    });
    if let Err(e) = written {
        let _ = std::fs::remove_file(&tmp);
        return Err(secret_file_error(path, e));
    }
    let linked = std::fs::hard_link(&tmp, path);
    let _ = std::fs::remove_file(&tmp);
    match linked {
        Ok(()) => {
            tracing::info!(
                file = %path.display(),
                "generated a webhook signing secret; give receivers this file's content to \
                 verify X-Vigil-Signature"
            );
            WebhookSecret::new(text.into_bytes()).map_err(|e| secret_file_error(path, e))
        }
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => read_secret(path),
        Err(e) => Err(secret_file_error(path, e)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_secret_is_generated_once_kept_private_and_read_back() {
        let dir = tempfile::tempdir().unwrap();
        let mut c = NotifyConfig::default();
        assert!(matches!(
            c.webhook_secret(),
            Err(NotifyConfigError::NoSecret)
        ));
        c.resolve_paths(dir.path());
        let first = c.webhook_secret().unwrap();
        let second = c.webhook_secret().unwrap();
        assert_eq!(first, second);
        let path = dir.path().join(SECRET_FILE);
        let text = std::fs::read_to_string(&path).unwrap();
        assert_eq!(text.len(), 64);
        assert_eq!(first, WebhookSecret::new(text.as_bytes()).unwrap());
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(mode & 0o077, 0, "only the owner may read the secret");
        }
        let other = tempfile::tempdir().unwrap();
        let mut c2 = NotifyConfig::default();
        c2.resolve_paths(other.path());
        assert_ne!(c2.webhook_secret().unwrap(), first, "random, not built in");
    }

    #[test]
    fn a_configured_secret_wins_and_must_be_long_enough() {
        let dir = tempfile::tempdir().unwrap();
        let mut c = NotifyConfig {
            webhook_secret: Some(SecretText("0123456789abcdef-configured".into())),
            ..NotifyConfig::default()
        };
        c.resolve_paths(dir.path());
        assert_eq!(
            c.webhook_secret().unwrap(),
            WebhookSecret::new(&b"0123456789abcdef-configured"[..]).unwrap()
        );
        assert!(!dir.path().join(SECRET_FILE).exists());
        c.webhook_secret = Some(SecretText("short".into()));
        assert!(c.validate().unwrap_err().to_string().contains("16 bytes"));
        assert!(!format!("{c:?}").contains("short"), "never printed");
    }

    #[test]
    fn a_short_secret_file_is_refused_naming_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s");
        std::fs::write(&path, "tiny\n").unwrap();
        let err = load_or_create_secret(&path).unwrap_err().to_string();
        assert!(err.contains(&path.display().to_string()), "{err}");
    }
}

//! Which boards may connect: device ids, hashed secrets, and the resident and room each
//! board belongs to (shown on the local alarm console).
//!
//! The provisioning file is TOML:
//!
//! ```toml
//! [[device]]
//! id = "pendant-7"
//! secret_hash = "$argon2id$v=19$m=19456,t=2,p=1$…"   # from `vigil gateway hash-secret`
//! resident = "Mrs Chen"
//! room = "203"
//! ```

use std::collections::HashMap;
use std::path::Path;
use std::sync::Mutex;

use argon2::password_hash::{rand_core::OsRng, PasswordHash, PasswordHasher, SaltString};
use argon2::{Argon2, PasswordVerifier};
use serde::Deserialize;
use vigil_protocol::DeviceId;

/// Why the provisioning file could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum ProvisioningError {
    #[error("cannot read provisioning file {path}: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("provisioning file {path} is not valid TOML: {source}")]
    Parse {
        path: String,
        source: toml::de::Error,
    },
    #[error("device id {0:?} is not a valid identifier (1-32 of A-Z a-z 0-9 . _ -)")]
    InvalidDeviceId(String),
    #[error("device {0} is listed twice")]
    Duplicate(String),
    #[error("secret hash of device {device} is not an argon2 PHC string: {reason}")]
    BadHash { device: String, reason: String },
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileFormat {
    #[serde(default)]
    device: Vec<DeviceEntry>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct DeviceEntry {
    id: String,
    secret_hash: String,
    #[serde(default)]
    resident: Option<String>,
    #[serde(default)]
    room: Option<String>,
}

/// One provisioned board.
#[derive(Debug, Clone)]
pub struct Device {
    pub id: DeviceId,
    pub resident: Option<String>,
    pub room: Option<String>,
    secret_hash: String,
}

/// The boards this gateway accepts.
#[derive(Debug, Default)]
pub struct Provisioning {
    devices: HashMap<DeviceId, Device>,
    // Design: argon2 is deliberately slow, and a board on a bad link may reconnect every few
    // seconds. A secret verified once is remembered in memory (never on disk) and compared in
    // constant time, so a reconnect costs no hash.
    verified: Mutex<HashMap<DeviceId, Vec<u8>>>,
}

impl Provisioning {
    /// Loads a provisioning file.
    pub fn load(path: &Path) -> Result<Self, ProvisioningError> {
        let text = std::fs::read_to_string(path).map_err(|source| ProvisioningError::Read {
            path: path.display().to_string(),
            source,
        })?;
        Self::from_toml(&text).map_err(|e| match e {
            ProvisioningError::Parse { source, .. } => ProvisioningError::Parse {
                path: path.display().to_string(),
                source,
            },
            other => other,
        })
    }

    /// Parses provisioning TOML.
    pub fn from_toml(text: &str) -> Result<Self, ProvisioningError> {
        let file: FileFormat = toml::from_str(text).map_err(|source| ProvisioningError::Parse {
            path: "<text>".into(),
            source,
        })?;
        let mut devices = HashMap::new();
        for entry in file.device {
            let id = DeviceId::new(&entry.id)
                .map_err(|_| ProvisioningError::InvalidDeviceId(entry.id.clone()))?;
            PasswordHash::new(&entry.secret_hash).map_err(|e| ProvisioningError::BadHash {
                device: entry.id.clone(),
                reason: e.to_string(),
            })?;
            let device = Device {
                id: id.clone(),
                resident: entry.resident,
                room: entry.room,
                secret_hash: entry.secret_hash,
            };
            if devices.insert(id, device).is_some() {
                return Err(ProvisioningError::Duplicate(entry.id));
            }
        }
        Ok(Self {
            devices,
            verified: Mutex::new(HashMap::new()),
        })
    }

    /// The board with this id, if provisioned.
    pub fn device(&self, id: &DeviceId) -> Option<&Device> {
        self.devices.get(id)
    }

    /// Whether a device id (as text) is provisioned.
    pub fn contains(&self, id: &str) -> bool {
        DeviceId::new(id).is_ok_and(|id| self.devices.contains_key(&id))
    }

    pub fn len(&self) -> usize {
        self.devices.len()
    }

    pub fn is_empty(&self) -> bool {
        self.devices.is_empty()
    }

    /// Checks a board's MQTT login: the client id and the user name must both be the
    /// device id, and the password must match the stored hash.
    pub fn authenticate(&self, client_id: &str, username: &str, password: &str) -> bool {
        if client_id != username {
            return false;
        }
        let Ok(id) = DeviceId::new(client_id) else {
            return false;
        };
        let Some(device) = self.devices.get(&id) else {
            return false;
        };
        if let Ok(verified) = self.verified.lock() {
            if let Some(known) = verified.get(&id) {
                if constant_time_eq(known, password.as_bytes()) {
                    return true;
                }
            }
        }
        let Ok(hash) = PasswordHash::new(&device.secret_hash) else {
            return false;
        };
        let ok = Argon2::default()
            .verify_password(password.as_bytes(), &hash)
            .is_ok();
        if ok {
            if let Ok(mut verified) = self.verified.lock() {
                verified.insert(id, password.as_bytes().to_vec());
            }
        }
        ok
    }
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// Hashes a board secret for the provisioning file with argon2id's default (OWASP) cost.
pub fn hash_secret(secret: &str) -> Result<String, argon2::password_hash::Error> {
    hash_secret_with(&Argon2::default(), secret)
}

/// Hashes with the given argon2 instance (tests use a low cost to stay fast).
pub fn hash_secret_with(
    argon2: &Argon2<'_>,
    secret: &str,
) -> Result<String, argon2::password_hash::Error> {
    let salt = SaltString::generate(&mut OsRng);
    Ok(argon2.hash_password(secret.as_bytes(), &salt)?.to_string())
}

/// A cheap argon2id instance for tests and simulations (never for real sites).
pub fn low_cost_argon2() -> Argon2<'static> {
    let params = argon2::Params::new(8, 1, 1, None).unwrap_or_default();
    Argon2::new(argon2::Algorithm::Argon2id, argon2::Version::V0x13, params)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn provisioning() -> Provisioning {
        let hash = hash_secret_with(&low_cost_argon2(), "s3cret").unwrap();
        Provisioning::from_toml(&format!(
            "[[device]]\nid = \"pendant-7\"\nsecret_hash = \"{hash}\"\nresident = \"Mrs Chen\"\nroom = \"203\"\n"
        ))
        .unwrap()
    }

    #[test]
    fn a_board_with_its_secret_is_authenticated() {
        let p = provisioning();
        assert!(p.authenticate("pendant-7", "pendant-7", "s3cret"));
        // The second time comes from the verified cache and must still be exact.
        assert!(p.authenticate("pendant-7", "pendant-7", "s3cret"));
        assert!(!p.authenticate("pendant-7", "pendant-7", "s3cret2"));
    }

    #[test]
    fn wrong_secret_unknown_device_or_borrowed_identity_are_refused() {
        let p = provisioning();
        assert!(!p.authenticate("pendant-7", "pendant-7", "guess"));
        assert!(!p.authenticate("pendant-8", "pendant-8", "s3cret"));
        assert!(!p.authenticate("other", "pendant-7", "s3cret"));
        assert!(!p.authenticate("a/b", "a/b", "s3cret"));
    }

    #[test]
    fn a_plain_text_secret_in_the_file_is_rejected() {
        let err = Provisioning::from_toml("[[device]]\nid = \"x\"\nsecret_hash = \"plain\"\n")
            .unwrap_err();
        assert!(matches!(err, ProvisioningError::BadHash { .. }), "{err}");
    }

    #[test]
    fn resident_and_room_are_kept_for_the_console() {
        let p = provisioning();
        let d = p.device(&DeviceId::new("pendant-7").unwrap()).unwrap();
        assert_eq!(d.resident.as_deref(), Some("Mrs Chen"));
        assert_eq!(d.room.as_deref(), Some("203"));
    }
}

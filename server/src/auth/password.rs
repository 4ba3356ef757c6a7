//! Password hashing with argon2id.

use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};

pub const MIN_PASSWORD_LEN: usize = 12;
/// Longer inputs are refused before hashing: argon2 over megabytes is a denial of service.
pub const MAX_PASSWORD_LEN: usize = 1024;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum PasswordError {
    #[error("password too short: {found} characters, at least {MIN_PASSWORD_LEN}")]
    TooShort { found: usize },
    #[error("password too long: {found} bytes, at most {MAX_PASSWORD_LEN}")]
    TooLong { found: usize },
    #[error("cannot hash password: {0}")]
    Hash(String),
}

/// Argon2id with fixed parameters; production uses the OWASP-recommended defaults of the
/// `argon2` crate, tests use cheap ones through [`PasswordHashing::insecure_fast_for_tests`].
#[derive(Clone)]
pub struct PasswordHashing {
    params: Params,
    /// A hash to verify against when the user does not exist, so that the answer takes as
    /// long as for a real user and does not reveal which names exist.
    dummy_hash: String,
}

impl std::fmt::Debug for PasswordHashing {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PasswordHashing")
            .field("params", &self.params)
            .finish_non_exhaustive()
    }
}

impl PasswordHashing {
    pub fn new(params: Params) -> Result<Self, PasswordError> {
        let mut me = Self {
            params,
            dummy_hash: String::new(),
        };
        me.dummy_hash = me.hash_unchecked("vigil-dummy-password-for-timing")?;
        Ok(me)
    }

    pub fn production() -> Self {
        Self::new(Params::default()).expect("argon2 default parameters are valid")
    }

    /// 8 KiB of memory and one pass: fast enough for tests, worthless against attackers.
    pub fn insecure_fast_for_tests() -> Self {
        let params = Params::new(8, 1, 1, None).expect("valid argon2 parameters");
        Self::new(params).expect("hashing works")
    }

    fn argon2(&self) -> Argon2<'_> {
        Argon2::new(Algorithm::Argon2id, Version::V0x13, self.params.clone())
    }

    pub fn check_policy(password: &str) -> Result<(), PasswordError> {
        let chars = password.chars().count();
        if password.len() > MAX_PASSWORD_LEN {
            return Err(PasswordError::TooLong {
                found: password.len(),
            });
        }
        if chars < MIN_PASSWORD_LEN {
            return Err(PasswordError::TooShort { found: chars });
        }
        Ok(())
    }

    /// Hashes a new password after checking the length policy. CPU-heavy: call it off the
    /// async executor (`spawn_blocking`).
    pub fn hash(&self, password: &str) -> Result<String, PasswordError> {
        Self::check_policy(password)?;
        self.hash_unchecked(password)
    }

    fn hash_unchecked(&self, password: &str) -> Result<String, PasswordError> {
        let mut salt = [0u8; 16];
        getrandom::fill(&mut salt).map_err(|e| PasswordError::Hash(e.to_string()))?;
        let salt = SaltString::encode_b64(&salt).map_err(|e| PasswordError::Hash(e.to_string()))?;
        self.argon2()
            .hash_password(password.as_bytes(), &salt)
            .map(|h| h.to_string())
            .map_err(|e| PasswordError::Hash(e.to_string()))
    }

    /// Whether `password` matches `hash`; `None` as hash burns the same time and says no.
    pub fn verify(&self, hash: Option<&str>, password: &str) -> bool {
        if password.len() > MAX_PASSWORD_LEN {
            return false;
        }
        let (hash, real) = match hash {
            Some(h) => (h, true),
            None => (self.dummy_hash.as_str(), false),
        };
        let Ok(parsed) = PasswordHash::new(hash) else {
            return false;
        };
        // Verification uses the parameters recorded in the hash, so old hashes keep working
        // after the parameters change.
        let ok = self
            .argon2()
            .verify_password(password.as_bytes(), &parsed)
            .is_ok();
        ok && real
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn right_password_verifies_and_wrong_one_does_not() {
        let h = PasswordHashing::insecure_fast_for_tests();
        let hash = h.hash("correct horse battery").unwrap();
        assert!(hash.starts_with("$argon2id$"));
        assert!(h.verify(Some(&hash), "correct horse battery"));
        assert!(!h.verify(Some(&hash), "correct horse batterY"));
        assert!(!h.verify(None, "vigil-dummy-password-for-timing"));
        assert!(!h.verify(Some("not a phc string"), "x"));
    }

    #[test]
    fn short_and_huge_passwords_are_refused() {
        let h = PasswordHashing::insecure_fast_for_tests();
        assert_eq!(h.hash("short"), Err(PasswordError::TooShort { found: 5 }));
        let huge = "x".repeat(MAX_PASSWORD_LEN + 1);
        assert!(matches!(h.hash(&huge), Err(PasswordError::TooLong { .. })));
    }
}

//! Session tokens: 256 random bits shown once to the client; only their hash is stored, so a
//! leaked database does not hand out live sessions.

use blake2::{Blake2s256, Digest};
use chrono::{DateTime, Utc};

/// A session token as the client holds it (cookie value or bearer token).
#[derive(Clone, PartialEq, Eq)]
pub struct SessionToken(String);

impl SessionToken {
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Accepts a token from a request: 64 lowercase hex characters.
    pub fn parse(s: &str) -> Option<Self> {
        let ok = s.len() == 64 && s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'));
        ok.then(|| Self(s.to_owned()))
    }
}

impl std::fmt::Debug for SessionToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SessionToken(..)")
    }
}

/// A fresh random token.
pub fn new_token() -> Result<SessionToken, getrandom::Error> {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes)?;
    Ok(SessionToken(hex::encode(bytes)))
}

/// What the store keeps for a token.
pub fn hash_token(token: &SessionToken) -> String {
    hex::encode(Blake2s256::digest(token.0.as_bytes()))
}

/// A login session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Session {
    pub token_hash: String,
    pub username: String,
    pub created_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
}

impl Session {
    pub fn is_live(&self, now: DateTime<Utc>) -> bool {
        now < self.expires_at
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_distinct_hex_and_hash_stably() {
        let a = new_token().unwrap();
        let b = new_token().unwrap();
        assert_ne!(a, b);
        assert_eq!(SessionToken::parse(a.as_str()), Some(a.clone()));
        assert_eq!(hash_token(&a), hash_token(&a));
        assert_ne!(hash_token(&a), a.as_str());
    }

    #[test]
    fn malformed_tokens_are_refused() {
        assert!(SessionToken::parse("").is_none());
        assert!(SessionToken::parse(&"A".repeat(64)).is_none());
        assert!(SessionToken::parse(&"a".repeat(63)).is_none());
    }
}

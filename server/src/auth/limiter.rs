//! Login rate limiting: a token bucket per user name and one per client address.
//!
//! Sans-IO: the caller passes the time in. Memory is bounded: buckets that have refilled
//! carry no information and are dropped first when the table is full.

use std::collections::HashMap;
use std::net::IpAddr;
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// A bucket of `burst` attempts refilled at `per_minute`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LoginRateLimit {
    pub burst: u32,
    pub per_minute: u32,
}

/// A login attempt was refused; try again after `retry_after`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateLimited {
    pub retry_after: Duration,
}

#[derive(Debug, Clone, Copy)]
struct Bucket {
    tokens: f64,
    updated: DateTime<Utc>,
}

#[derive(Debug)]
struct Buckets<K> {
    limit: LoginRateLimit,
    max_keys: usize,
    map: HashMap<K, Bucket>,
}

impl<K: std::hash::Hash + Eq + Clone> Buckets<K> {
    fn refill_rate_per_ms(&self) -> f64 {
        f64::from(self.limit.per_minute) / 60_000.0
    }

    fn level(&self, b: &Bucket, now: DateTime<Utc>) -> f64 {
        let elapsed = (now - b.updated).num_milliseconds().max(0) as f64;
        (b.tokens + elapsed * self.refill_rate_per_ms()).min(f64::from(self.limit.burst))
    }

    /// How long until `key` has a whole token, zero when it has one now.
    fn wait(&self, key: &K, now: DateTime<Utc>) -> Duration {
        let Some(b) = self.map.get(key) else {
            return if self.limit.burst == 0 {
                Duration::MAX
            } else {
                Duration::ZERO
            };
        };
        let level = self.level(b, now);
        if level >= 1.0 {
            return Duration::ZERO;
        }
        let rate = self.refill_rate_per_ms();
        if rate <= 0.0 {
            return Duration::MAX;
        }
        Duration::from_millis(((1.0 - level) / rate).ceil() as u64)
    }

    fn take(&mut self, key: &K, now: DateTime<Utc>) {
        if !self.map.contains_key(key) && self.map.len() >= self.max_keys {
            self.evict(now);
        }
        let burst = f64::from(self.limit.burst);
        let level = match self.map.get(key) {
            Some(b) => self.level(b, now),
            None => burst,
        };
        self.map.insert(
            key.clone(),
            Bucket {
                tokens: (level - 1.0).max(0.0),
                updated: now,
            },
        );
    }

    fn evict(&mut self, now: DateTime<Utc>) {
        let burst = f64::from(self.limit.burst);
        let rate = self.refill_rate_per_ms();
        self.map.retain(|_, b| {
            let elapsed = (now - b.updated).num_milliseconds().max(0) as f64;
            b.tokens + elapsed * rate < burst
        });
        // Still full: forget the least restricted key, the one losing the least information.
        while self.map.len() >= self.max_keys {
            let fullest = self
                .map
                .iter()
                .max_by(|a, b| self.level(a.1, now).total_cmp(&self.level(b.1, now)))
                .map(|(k, _)| k.clone());
            match fullest {
                Some(k) => {
                    self.map.remove(&k);
                }
                None => break,
            }
        }
    }
}

/// Limits login attempts per user name and per client address; both must allow an attempt.
#[derive(Debug)]
pub struct LoginLimiter {
    per_user: Buckets<String>,
    per_ip: Buckets<IpAddr>,
}

impl LoginLimiter {
    pub fn new(per_user: LoginRateLimit, per_ip: LoginRateLimit, max_keys: usize) -> Self {
        let max_keys = max_keys.max(1);
        Self {
            per_user: Buckets {
                limit: per_user,
                max_keys,
                map: HashMap::new(),
            },
            per_ip: Buckets {
                limit: per_ip,
                max_keys,
                map: HashMap::new(),
            },
        }
    }

    /// Records one attempt by `username` from `ip` at `now`, or refuses it without recording.
    pub fn handle_attempt(
        &mut self,
        username: &str,
        ip: IpAddr,
        now: DateTime<Utc>,
    ) -> Result<(), RateLimited> {
        let user_key = username.to_ascii_lowercase();
        let wait = self
            .per_user
            .wait(&user_key, now)
            .max(self.per_ip.wait(&ip, now));
        if !wait.is_zero() {
            return Err(RateLimited { retry_after: wait });
        }
        self.per_user.take(&user_key, now);
        self.per_ip.take(&ip, now);
        Ok(())
    }

    /// Keys currently tracked (for the bound test and metrics).
    pub fn tracked_keys(&self) -> usize {
        self.per_user.map.len() + self.per_ip.map.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn t(secs: i64) -> DateTime<Utc> {
        Utc.timestamp_opt(1_800_000_000 + secs, 0).unwrap()
    }

    const IP_A: IpAddr = IpAddr::V4(std::net::Ipv4Addr::new(10, 0, 0, 1));
    const IP_B: IpAddr = IpAddr::V4(std::net::Ipv4Addr::new(10, 0, 0, 2));

    fn limiter() -> LoginLimiter {
        let user = LoginRateLimit {
            burst: 3,
            per_minute: 6,
        };
        let ip = LoginRateLimit {
            burst: 5,
            per_minute: 60,
        };
        LoginLimiter::new(user, ip, 1000)
    }

    #[test]
    fn a_user_is_limited_after_the_burst_from_any_address_and_refills_over_time() {
        let mut l = limiter();
        assert!(l.handle_attempt("anna", IP_A, t(0)).is_ok());
        assert!(l.handle_attempt("anna", IP_B, t(0)).is_ok());
        assert!(l.handle_attempt("ANNA", IP_A, t(0)).is_ok());
        let refused = l.handle_attempt("anna", IP_B, t(0)).unwrap_err();
        assert_eq!(refused.retry_after, Duration::from_secs(10));
        assert!(l.handle_attempt("anna", IP_B, t(9)).is_err());
        assert!(l.handle_attempt("anna", IP_B, t(10)).is_ok());
        assert!(
            l.handle_attempt("bert", IP_B, t(10)).is_ok(),
            "other users unaffected"
        );
    }

    #[test]
    fn an_address_trying_many_user_names_is_limited() {
        let mut l = limiter();
        for i in 0..5 {
            assert!(l.handle_attempt(&format!("u{i}"), IP_A, t(0)).is_ok());
        }
        let refused = l.handle_attempt("u9", IP_A, t(0)).unwrap_err();
        assert_eq!(refused.retry_after, Duration::from_secs(1));
        assert!(l.handle_attempt("u9", IP_B, t(0)).is_ok());
    }

    #[test]
    fn memory_stays_bounded_under_many_keys() {
        let user = LoginRateLimit {
            burst: 3,
            per_minute: 6,
        };
        let mut l = LoginLimiter::new(user, user, 100);
        for i in 0..10_000u32 {
            let ip = IpAddr::V4(std::net::Ipv4Addr::from(i));
            let _ = l.handle_attempt(&format!("user{i}"), ip, t(0));
        }
        assert!(l.tracked_keys() <= 200);
    }
}

//! Identifiers that travel inside topics and frames, validated on construction.

use core::fmt;
use core::str::FromStr;

use crate::error::DecodeError;
use crate::limits::{MAX_FIRMWARE_LEN, MAX_ID_LEN, MAX_STAFF_NAME_LEN};

/// Whether `s` is a valid identifier: 1..=[`MAX_ID_LEN`] bytes of `[A-Za-z0-9._-]`.
///
/// These characters are safe in an MQTT topic level (no `/`, `+`, `#`) and in file names.
pub fn is_valid_id(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= MAX_ID_LEN
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_' || b == b'.')
}

/// An identifier was rejected; carries nothing so it stays `Copy` in `no_std`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("invalid identifier: expected 1 to 32 characters of A-Z a-z 0-9 . _ -")]
pub struct InvalidId;

macro_rules! identifier {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
        pub struct $name(heapless::String<MAX_ID_LEN>);

        impl $name {
            /// Validates and copies `s`.
            pub fn new(s: &str) -> Result<Self, InvalidId> {
                if !is_valid_id(s) {
                    return Err(InvalidId);
                }
                let mut out = heapless::String::new();
                out.push_str(s).map_err(|_| InvalidId)?;
                Ok(Self(out))
            }

            /// The identifier as text.
            pub fn as_str(&self) -> &str {
                self.0.as_str()
            }

            pub(crate) fn decode_field(s: &str, field: &'static str) -> Result<Self, DecodeError> {
                Self::new(s).map_err(|_| DecodeError::InvalidId { field })
            }
        }

        impl FromStr for $name {
            type Err = InvalidId;
            fn from_str(s: &str) -> Result<Self, InvalidId> {
                Self::new(s)
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}({:?})", stringify!($name), self.as_str())
            }
        }

        impl AsRef<str> for $name {
            fn as_ref(&self) -> &str {
                self.as_str()
            }
        }

        // Design: serialised as the plain text and validated again on the way in, so stored
        // state can never smuggle in an identifier the wire would reject.
        #[cfg(feature = "serde")]
        impl serde::Serialize for $name {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str(self.as_str())
            }
        }

        #[cfg(feature = "serde")]
        impl<'de> serde::Deserialize<'de> for $name {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                struct IdVisitor;
                impl serde::de::Visitor<'_> for IdVisitor {
                    type Value = $name;
                    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                        f.write_str("1 to 32 characters of A-Z a-z 0-9 . _ -")
                    }
                    fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<$name, E> {
                        $name::new(v).map_err(|_| {
                            E::invalid_value(serde::de::Unexpected::Str(v), &self)
                        })
                    }
                }
                d.deserialize_str(IdVisitor)
            }
        }
    };
}

identifier!(
    /// A board, unique in the district (e.g. `meter-0042`).
    DeviceId
);
identifier!(
    /// An edge gateway.
    GatewayId
);
identifier!(
    /// A household or a care facility.
    SiteId
);
identifier!(
    /// A fire-detection zone inside a facility (e.g. `f2-east`).
    ZoneId
);

macro_rules! printable_text {
    ($(#[$doc:meta])* $name:ident, $max:expr) => {
        $(#[$doc])*
        #[derive(Clone, PartialEq, Eq, Hash)]
        pub struct $name(heapless::String<$max>);

        impl $name {
            /// Validates (printable ASCII, 1..=max bytes) and copies `s`.
            pub fn new(s: &str) -> Result<Self, InvalidId> {
                if s.is_empty() || !s.bytes().all(|b| (0x20..0x7f).contains(&b)) {
                    return Err(InvalidId);
                }
                let mut out = heapless::String::new();
                out.push_str(s).map_err(|_| InvalidId)?;
                Ok(Self(out))
            }

            /// The text.
            pub fn as_str(&self) -> &str {
                self.0.as_str()
            }

            pub(crate) fn decode_field(s: &str, field: &'static str) -> Result<Self, DecodeError> {
                Self::new(s).map_err(|_| DecodeError::InvalidId { field })
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}({:?})", stringify!($name), self.as_str())
            }
        }
    };
}

printable_text!(
    /// A board's firmware version, e.g. `1.4.2`.
    FirmwareVersion,
    MAX_FIRMWARE_LEN
);
printable_text!(
    /// Who acknowledged an alarm on a gateway's local console.
    StaffName,
    MAX_STAFF_NAME_LEN
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_accept_topic_safe_characters_only() {
        assert!(DeviceId::new("meter-0042").is_ok());
        assert!(DeviceId::new("a.b_c-D9").is_ok());
        for bad in ["", "a/b", "a+b", "a#b", "a b", "é", "x".repeat(33).as_str()] {
            assert!(DeviceId::new(bad).is_err(), "{bad:?} must be rejected");
        }
        assert!(DeviceId::new(&"x".repeat(32)).is_ok());
    }

    #[test]
    fn firmware_version_must_be_printable() {
        assert!(FirmwareVersion::new("1.4.2-rc1").is_ok());
        assert!(FirmwareVersion::new("").is_err());
        assert!(FirmwareVersion::new("1\n").is_err());
        assert!(FirmwareVersion::new(&"9".repeat(25)).is_err());
    }
}

//! Identifiers of the server's domain. Those that travel on the wire come from
//! `vigil-protocol`; the others use the same character rules so that they are safe in topics,
//! URLs, file names and CSV files alike.

use std::fmt;
use std::str::FromStr;

pub use vigil_protocol::ids::InvalidId;
pub use vigil_protocol::{DeviceId, GatewayId, SiteId, ZoneId};

macro_rules! server_id {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
        pub struct $name(String);

        impl $name {
            /// Validates `s`: 1 to 32 characters of `A-Z a-z 0-9 . _ -`.
            pub fn new(s: &str) -> Result<Self, InvalidId> {
                if vigil_protocol::ids::is_valid_id(s) {
                    Ok(Self(s.to_owned()))
                } else {
                    Err(InvalidId)
                }
            }

            pub fn as_str(&self) -> &str {
                &self.0
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
                f.write_str(&self.0)
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}({:?})", stringify!($name), self.0)
            }
        }

        impl serde::Serialize for $name {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str(&self.0)
            }
        }

        impl<'de> serde::Deserialize<'de> for $name {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let s = <std::borrow::Cow<'de, str> as serde::Deserialize>::deserialize(d)?;
                Self::new(&s).map_err(|_| {
                    serde::de::Error::invalid_value(
                        serde::de::Unexpected::Str(&s),
                        &"1 to 32 characters of A-Z a-z 0-9 . _ -",
                    )
                })
            }
        }
    };
}

server_id!(
    /// A resident of a household or a facility.
    ResidentId
);
server_id!(
    /// A shift of a site's roster.
    ShiftId
);
server_id!(
    /// A site's escalation policy.
    PolicyId
);
server_id!(
    /// A person or team who can be sent: caregiver, nurse, volunteer, family.
    ResponderId
);

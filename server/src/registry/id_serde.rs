//! Serde for the identifier newtypes, which live in `no_std` code without serde: they travel
//! as plain strings and are validated on the way in, so a bad id is an error naming its field.

use std::fmt::Display;
use std::str::FromStr;

use serde::de::Error as _;
use serde::{Deserialize, Deserializer, Serializer};

const EXPECTED: &str = "1 to 32 characters of A-Z a-z 0-9 . _ -";

fn parse<T: FromStr, E: serde::de::Error>(s: &str) -> Result<T, E> {
    s.parse()
        .map_err(|_| E::custom(format!("invalid identifier {s:?}: expected {EXPECTED}")))
}

pub fn serialize<T: Display, S: Serializer>(id: &T, s: S) -> Result<S::Ok, S::Error> {
    s.collect_str(id)
}

pub fn deserialize<'de, T: FromStr, D: Deserializer<'de>>(d: D) -> Result<T, D::Error> {
    let s = String::deserialize(d)?;
    parse(&s)
}

/// For `Option<Id>` fields.
pub mod option {
    use super::*;

    pub fn serialize<T: Display, S: Serializer>(id: &Option<T>, s: S) -> Result<S::Ok, S::Error> {
        match id {
            Some(id) => s.collect_str(id),
            None => s.serialize_none(),
        }
    }

    pub fn deserialize<'de, T: FromStr, D: Deserializer<'de>>(d: D) -> Result<Option<T>, D::Error> {
        match Option::<String>::deserialize(d)? {
            Some(s) => parse(&s).map(Some),
            None => Ok(None),
        }
    }
}

/// For `Vec<Id>` fields.
pub mod vec {
    use super::*;
    use serde::ser::SerializeSeq;

    pub fn serialize<T: Display, S: Serializer>(ids: &[T], s: S) -> Result<S::Ok, S::Error> {
        let mut seq = s.serialize_seq(Some(ids.len()))?;
        for id in ids {
            seq.serialize_element(&id.to_string())?;
        }
        seq.end()
    }

    pub fn deserialize<'de, T: FromStr, D: Deserializer<'de>>(d: D) -> Result<Vec<T>, D::Error> {
        let raw = Vec::<String>::deserialize(d)?;
        raw.iter()
            .enumerate()
            .map(|(i, s)| {
                parse::<T, D::Error>(s).map_err(|e| D::Error::custom(format!("[{i}]: {e}")))
            })
            .collect()
    }
}

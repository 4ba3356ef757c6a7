//! Typed errors of the codec. Each says what was expected and what was found.

/// Why a frame could not be decoded. Decoding never panics; it returns one of these.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    /// The input is larger than the limit for its kind.
    #[error("oversize: {len} bytes, at most {max} allowed")]
    Oversize { len: usize, max: usize },
    /// The input ended before the value did.
    #[error("truncated: input ended at byte {at} while reading {expected}")]
    Truncated { at: usize, expected: &'static str },
    /// A CBOR item of another type (or not CBOR at all) where `expected` was due.
    #[error("malformed: expected {expected} at byte {at}")]
    Malformed { at: usize, expected: &'static str },
    /// Indefinite-length arrays, maps or strings are not part of the contract.
    #[error("indefinite-length item at byte {at}; only definite lengths are allowed")]
    IndefiniteLength { at: usize },
    /// The version under key 0 is not one this decoder speaks.
    #[error("unsupported protocol version {found}; this decoder speaks {supported}")]
    UnsupportedVersion { found: u64, supported: u8 },
    /// A required key is absent.
    #[error("missing field `{field}`")]
    MissingField { field: &'static str },
    /// A key appears twice in one map.
    #[error("duplicate field `{field}`")]
    DuplicateField { field: &'static str },
    /// A value is outside the range the contract allows.
    #[error("value out of range for `{field}`")]
    OutOfRange { field: &'static str },
    /// An identifier is empty, too long, or has a character outside `[A-Za-z0-9._-]`.
    #[error("invalid identifier in `{field}`")]
    InvalidId { field: &'static str },
    /// A list is longer than its limit.
    #[error("too many items in `{field}`: at most {max}")]
    TooMany { field: &'static str, max: usize },
    /// The body or enum code is not one this version defines.
    #[error("unknown code {code} for `{field}`")]
    UnknownCode { field: &'static str, code: u64 },
    /// The unit given does not belong to the sensor kind.
    #[error("unit does not match sensor kind")]
    UnitMismatch,
    /// An unknown value nests deeper than the decoder skips.
    #[error("nesting deeper than {max} at byte {at}")]
    TooDeep { at: usize, max: usize },
    /// Bytes remain after a complete frame.
    #[error("trailing bytes after the frame, from byte {at}")]
    TrailingBytes { at: usize },
}

impl DecodeError {
    /// A short, stable name for the kind of error: used in counters, quarantine records and the
    /// test vectors (`protocol/vectors/invalid.json`).
    pub fn code(&self) -> &'static str {
        match self {
            Self::Oversize { .. } => "oversize",
            Self::Truncated { .. } => "truncated",
            Self::Malformed { .. } => "malformed",
            Self::IndefiniteLength { .. } => "indefinite_length",
            Self::UnsupportedVersion { .. } => "unsupported_version",
            Self::MissingField { .. } => "missing_field",
            Self::DuplicateField { .. } => "duplicate_field",
            Self::OutOfRange { .. } => "out_of_range",
            Self::InvalidId { .. } => "invalid_id",
            Self::TooMany { .. } => "too_many",
            Self::UnknownCode { .. } => "unknown_code",
            Self::UnitMismatch => "unit_mismatch",
            Self::TooDeep { .. } => "too_deep",
            Self::TrailingBytes { .. } => "trailing_bytes",
        }
    }

    /// The field the error is about, where there is one.
    pub fn field(&self) -> Option<&'static str> {
        match self {
            Self::MissingField { field }
            | Self::DuplicateField { field }
            | Self::OutOfRange { field }
            | Self::InvalidId { field }
            | Self::TooMany { field, .. }
            | Self::UnknownCode { field, .. } => Some(field),
            Self::Oversize { .. }
            | Self::Truncated { .. }
            | Self::Malformed { .. }
            | Self::IndefiniteLength { .. }
            | Self::UnsupportedVersion { .. }
            | Self::UnitMismatch
            | Self::TooDeep { .. }
            | Self::TrailingBytes { .. } => None,
        }
    }
}

/// Why a frame could not be encoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum EncodeError {
    /// The output buffer is too small for the encoded frame.
    #[error("output buffer too small")]
    BufferTooSmall,
    /// The encoded frame would exceed the limit for its kind.
    #[error("encoded frame is {len} bytes, the limit is {max}")]
    Oversize { len: usize, max: usize },
    /// A value the decoder would reject (so it is never sent).
    #[error("value out of range for `{field}`")]
    OutOfRange { field: &'static str },
    /// A list is longer than its limit.
    #[error("too many items in `{field}`: at most {max}")]
    TooMany { field: &'static str, max: usize },
}

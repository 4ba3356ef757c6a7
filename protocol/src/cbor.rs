//! The small CBOR reading and writing layer the frame codecs share.
//!
//! Design: frames are CBOR maps with small unsigned integer keys. Readers accept keys in any
//! order, reject duplicates, skip unknown keys (up to [`MAX_SKIP_DEPTH`] deep) so that a later
//! minor revision may add optional fields, and reject indefinite lengths outright.

use minicbor::data::Type;
use minicbor::encode::write::{Cursor, EndOfSlice};
use minicbor::{Decoder, Encoder};

use crate::error::{DecodeError, EncodeError};
use crate::limits::MAX_SKIP_DEPTH;

pub(crate) struct Reader<'b> {
    d: Decoder<'b>,
}

impl<'b> Reader<'b> {
    pub(crate) fn new(bytes: &'b [u8]) -> Self {
        Self {
            d: Decoder::new(bytes),
        }
    }

    pub(crate) fn starting_at(bytes: &'b [u8], position: usize) -> Self {
        let mut d = Decoder::new(bytes);
        d.set_position(position);
        Self { d }
    }

    pub(crate) fn position(&self) -> usize {
        self.d.position()
    }

    fn at_end(&self) -> bool {
        self.d.position() >= self.d.input().len()
    }

    fn datatype(&self, expected: &'static str) -> Result<Type, DecodeError> {
        if self.at_end() {
            return Err(DecodeError::Truncated {
                at: self.position(),
                expected,
            });
        }
        self.d.datatype().map_err(|e| self.map_err(e, expected))
    }

    fn map_err(&self, e: minicbor::decode::Error, expected: &'static str) -> DecodeError {
        let at = e.position().unwrap_or(self.position());
        if e.is_end_of_input() {
            DecodeError::Truncated { at, expected }
        } else {
            DecodeError::Malformed { at, expected }
        }
    }

    /// Reads the header of a definite-length map and returns its number of entries.
    pub(crate) fn map(&mut self, expected: &'static str) -> Result<u64, DecodeError> {
        match self.datatype(expected)? {
            Type::Map => self.d.map().map_err(|e| self.map_err(e, expected))?.ok_or(
                DecodeError::IndefiniteLength {
                    at: self.position(),
                },
            ),
            Type::MapIndef => Err(DecodeError::IndefiniteLength {
                at: self.position(),
            }),
            _ => Err(DecodeError::Malformed {
                at: self.position(),
                expected,
            }),
        }
    }

    /// Reads the header of a definite-length array and returns its length.
    pub(crate) fn array(&mut self, expected: &'static str) -> Result<u64, DecodeError> {
        match self.datatype(expected)? {
            Type::Array => self
                .d
                .array()
                .map_err(|e| self.map_err(e, expected))?
                .ok_or(DecodeError::IndefiniteLength {
                    at: self.position(),
                }),
            Type::ArrayIndef => Err(DecodeError::IndefiniteLength {
                at: self.position(),
            }),
            _ => Err(DecodeError::Malformed {
                at: self.position(),
                expected,
            }),
        }
    }

    /// Reads a map key: an unsigned integer.
    pub(crate) fn key(&mut self) -> Result<u64, DecodeError> {
        match self.datatype("unsigned integer map key")? {
            Type::U8 | Type::U16 | Type::U32 | Type::U64 => self
                .d
                .u64()
                .map_err(|e| self.map_err(e, "unsigned integer map key")),
            _ => Err(DecodeError::Malformed {
                at: self.position(),
                expected: "unsigned integer map key",
            }),
        }
    }

    /// Reads any integer and checks it lies in `min..=max`.
    pub(crate) fn int(
        &mut self,
        field: &'static str,
        min: i128,
        max: i128,
    ) -> Result<i128, DecodeError> {
        match self.datatype(field)? {
            Type::U8
            | Type::U16
            | Type::U32
            | Type::U64
            | Type::I8
            | Type::I16
            | Type::I32
            | Type::I64
            | Type::Int => {
                let v = i128::from(self.d.int().map_err(|e| self.map_err(e, field))?);
                if v < min || v > max {
                    return Err(DecodeError::OutOfRange { field });
                }
                Ok(v)
            }
            _ => Err(DecodeError::Malformed {
                at: self.position(),
                expected: field,
            }),
        }
    }

    pub(crate) fn u64(&mut self, field: &'static str) -> Result<u64, DecodeError> {
        // The range check guarantees the conversion.
        self.int(field, 0, u64::MAX as i128).map(|v| v as u64)
    }

    pub(crate) fn u32(&mut self, field: &'static str) -> Result<u32, DecodeError> {
        self.int(field, 0, u32::MAX as i128).map(|v| v as u32)
    }

    pub(crate) fn u32_in(
        &mut self,
        field: &'static str,
        min: u32,
        max: u32,
    ) -> Result<u32, DecodeError> {
        self.int(field, min as i128, max as i128).map(|v| v as u32)
    }

    pub(crate) fn u16_in(
        &mut self,
        field: &'static str,
        min: u16,
        max: u16,
    ) -> Result<u16, DecodeError> {
        self.int(field, min as i128, max as i128).map(|v| v as u16)
    }

    pub(crate) fn bool(&mut self, field: &'static str) -> Result<bool, DecodeError> {
        match self.datatype(field)? {
            Type::Bool => self.d.bool().map_err(|e| self.map_err(e, field)),
            _ => Err(DecodeError::Malformed {
                at: self.position(),
                expected: field,
            }),
        }
    }

    pub(crate) fn str(&mut self, field: &'static str) -> Result<&'b str, DecodeError> {
        match self.datatype(field)? {
            Type::String => self.d.str().map_err(|e| self.map_err(e, field)),
            Type::StringIndef => Err(DecodeError::IndefiniteLength {
                at: self.position(),
            }),
            _ => Err(DecodeError::Malformed {
                at: self.position(),
                expected: field,
            }),
        }
    }

    pub(crate) fn bytes(&mut self, field: &'static str) -> Result<&'b [u8], DecodeError> {
        match self.datatype(field)? {
            Type::Bytes => self.d.bytes().map_err(|e| self.map_err(e, field)),
            Type::BytesIndef => Err(DecodeError::IndefiniteLength {
                at: self.position(),
            }),
            _ => Err(DecodeError::Malformed {
                at: self.position(),
                expected: field,
            }),
        }
    }

    /// Skips one value of any type, refusing indefinite lengths and deep nesting.
    pub(crate) fn skip(&mut self) -> Result<(), DecodeError> {
        self.skip_at(0)
    }

    fn skip_at(&mut self, depth: usize) -> Result<(), DecodeError> {
        if depth > MAX_SKIP_DEPTH {
            return Err(DecodeError::TooDeep {
                at: self.position(),
                max: MAX_SKIP_DEPTH,
            });
        }
        const WHAT: &str = "any value";
        match self.datatype(WHAT)? {
            Type::Array => {
                let n = self.array(WHAT)?;
                for _ in 0..n {
                    self.skip_at(depth + 1)?;
                }
            }
            Type::Map => {
                let n = self.map(WHAT)?;
                for _ in 0..n {
                    self.skip_at(depth + 1)?;
                    self.skip_at(depth + 1)?;
                }
            }
            Type::Tag => {
                self.d.tag().map_err(|e| self.map_err(e, WHAT))?;
                self.skip_at(depth + 1)?;
            }
            Type::ArrayIndef | Type::MapIndef | Type::BytesIndef | Type::StringIndef => {
                return Err(DecodeError::IndefiniteLength {
                    at: self.position(),
                })
            }
            Type::Break | Type::Unknown(_) => {
                return Err(DecodeError::Malformed {
                    at: self.position(),
                    expected: WHAT,
                })
            }
            Type::Bytes => {
                self.bytes(WHAT)?;
            }
            Type::String => {
                self.str(WHAT)?;
            }
            Type::Bool => {
                self.bool(WHAT)?;
            }
            Type::Null => self.d.null().map_err(|e| self.map_err(e, WHAT))?,
            Type::Undefined => self.d.undefined().map_err(|e| self.map_err(e, WHAT))?,
            Type::Simple => {
                self.d.simple().map_err(|e| self.map_err(e, WHAT))?;
            }
            Type::F16 => {
                // 0xf9 and two bytes; read without the `half` feature.
                let end = self.position() + 3;
                if end > self.d.input().len() {
                    return Err(DecodeError::Truncated {
                        at: self.position(),
                        expected: WHAT,
                    });
                }
                self.d.set_position(end);
            }
            Type::F32 => {
                self.d.f32().map_err(|e| self.map_err(e, WHAT))?;
            }
            Type::F64 => {
                self.d.f64().map_err(|e| self.map_err(e, WHAT))?;
            }
            Type::U8
            | Type::U16
            | Type::U32
            | Type::U64
            | Type::I8
            | Type::I16
            | Type::I32
            | Type::I64
            | Type::Int => {
                self.d.int().map_err(|e| self.map_err(e, WHAT))?;
            }
        }
        Ok(())
    }

    /// Succeeds only when every input byte was consumed.
    pub(crate) fn finish(&self) -> Result<(), DecodeError> {
        if self.at_end() {
            Ok(())
        } else {
            Err(DecodeError::TrailingBytes {
                at: self.position(),
            })
        }
    }
}

/// Remembers which keys of one map were seen, to reject duplicates and report missing fields.
#[derive(Default)]
pub(crate) struct Seen(u64);

impl Seen {
    pub(crate) fn mark(&mut self, key: u64, field: &'static str) -> Result<(), DecodeError> {
        let bit = 1u64 << (key & 63);
        if self.0 & bit != 0 {
            return Err(DecodeError::DuplicateField { field });
        }
        self.0 |= bit;
        Ok(())
    }
}

/// Unwraps a required field.
pub(crate) fn required<T>(value: Option<T>, field: &'static str) -> Result<T, DecodeError> {
    value.ok_or(DecodeError::MissingField { field })
}

pub(crate) type Writer<'a> = Encoder<Cursor<&'a mut [u8]>>;

pub(crate) fn writer(buf: &mut [u8]) -> Writer<'_> {
    Encoder::new(Cursor::new(buf))
}

impl From<minicbor::encode::Error<EndOfSlice>> for EncodeError {
    fn from(_: minicbor::encode::Error<EndOfSlice>) -> Self {
        EncodeError::BufferTooSmall
    }
}

/// Finishes an encoding: returns its length after checking it against `max`.
pub(crate) fn finish(w: Writer<'_>, max: usize) -> Result<usize, EncodeError> {
    let len = w.writer().position();
    if len > max {
        return Err(EncodeError::Oversize { len, max });
    }
    Ok(len)
}

/// Checks the size limit of an input before anything is decoded.
pub(crate) fn check_size(bytes: &[u8], max: usize) -> Result<(), DecodeError> {
    if bytes.len() > max {
        return Err(DecodeError::Oversize {
            len: bytes.len(),
            max,
        });
    }
    Ok(())
}

/// Opens a versioned top-level map: checks that key 0, the protocol version, comes first
/// and is this crate's version. Returns the map's entry count (version included).
pub(crate) fn open_versioned(r: &mut Reader<'_>, what: &'static str) -> Result<u64, DecodeError> {
    let n = r.map(what)?;
    if n == 0 || r.key()? != 0 {
        return Err(DecodeError::MissingField { field: "version" });
    }
    version(r)?;
    Ok(n)
}

fn version(r: &mut Reader<'_>) -> Result<(), DecodeError> {
    let found = r.u64("version")?;
    if found != u64::from(crate::PROTOCOL_VERSION) {
        return Err(DecodeError::UnsupportedVersion {
            found,
            supported: crate::PROTOCOL_VERSION,
        });
    }
    Ok(())
}

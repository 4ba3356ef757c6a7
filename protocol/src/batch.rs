//! What a gateway sends upstream: board frames, unchanged, with the time it received each.
//!
//! Design: entries carry the board's encoded frame as a CBOR byte string, exactly as the
//! board sent it. The gateway forwards bytes it has validated without re-encoding them, and
//! a consumer can quarantine one bad entry without losing the rest of the batch.

use crate::cbor::{self, required, Reader, Seen};
use crate::error::{DecodeError, EncodeError};
use crate::ids::{GatewayId, SiteId};
use crate::limits::{MAX_BATCH_BYTES, MAX_BATCH_ENTRIES, MAX_FRAME_BYTES};
use crate::uplink::UplinkFrame;
use crate::PROTOCOL_VERSION;

/// Who sent a batch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BatchHeader {
    pub gateway_id: GatewayId,
    pub site_id: SiteId,
    /// Increments with every batch the gateway sends (for logs and tracing only).
    pub batch_seq: u64,
}

/// One board frame inside a batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BatchEntry<'a> {
    /// Unix time in milliseconds at which the gateway received the frame.
    pub received_ms: u64,
    /// The board's encoded [`UplinkFrame`].
    pub frame: &'a [u8],
}

impl BatchEntry<'_> {
    /// Decodes the board frame this entry carries.
    pub fn decode_frame(&self) -> Result<UplinkFrame, DecodeError> {
        UplinkFrame::decode(self.frame)
    }
}

/// A decoded batch; its entries borrow from the input.
#[derive(Debug, Clone)]
pub struct Batch<'a> {
    pub header: BatchHeader,
    input: &'a [u8],
    entries_at: usize,
    len: usize,
}

impl<'a> Batch<'a> {
    /// Decodes a batch. The structure of every entry is checked here, so a truncated or
    /// malformed batch is rejected whole; the board frames inside are decoded one by one
    /// with [`BatchEntry::decode_frame`].
    pub fn decode(bytes: &'a [u8]) -> Result<Self, DecodeError> {
        cbor::check_size(bytes, MAX_BATCH_BYTES)?;
        let mut r = Reader::new(bytes);
        let n = cbor::open_versioned(&mut r, "batch map")?;
        let mut seen = Seen::default();
        let (mut gateway_id, mut site_id, mut batch_seq) = (None, None, None);
        let mut entries = None;
        for _ in 1..n {
            let key = r.key()?;
            match key {
                0 => return Err(DecodeError::DuplicateField { field: "version" }),
                1 => {
                    seen.mark(key, "gateway_id")?;
                    gateway_id = Some(GatewayId::decode_field(r.str("gateway_id")?, "gateway_id")?);
                }
                2 => {
                    seen.mark(key, "site_id")?;
                    site_id = Some(SiteId::decode_field(r.str("site_id")?, "site_id")?);
                }
                3 => {
                    seen.mark(key, "batch_seq")?;
                    batch_seq = Some(r.u64("batch_seq")?);
                }
                4 => {
                    seen.mark(key, "entries")?;
                    let len = r.array("entries")?;
                    if len > MAX_BATCH_ENTRIES as u64 {
                        return Err(DecodeError::TooMany {
                            field: "entries",
                            max: MAX_BATCH_ENTRIES,
                        });
                    }
                    let at = r.position();
                    for _ in 0..len {
                        read_entry(&mut r)?;
                    }
                    entries = Some((at, len as usize));
                }
                _ => r.skip()?,
            }
        }
        r.finish()?;
        let (entries_at, len) = required(entries, "entries")?;
        Ok(Batch {
            header: BatchHeader {
                gateway_id: required(gateway_id, "gateway_id")?,
                site_id: required(site_id, "site_id")?,
                batch_seq: required(batch_seq, "batch_seq")?,
            },
            input: bytes,
            entries_at,
            len,
        })
    }

    /// Number of entries.
    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The entries, in the order the gateway sent them.
    pub fn entries(&self) -> impl Iterator<Item = BatchEntry<'a>> + 'a {
        let mut r = Reader::starting_at(self.input, self.entries_at);
        // `decode` validated every entry, so `read_entry` cannot fail here.
        (0..self.len).map_while(move |_| read_entry(&mut r).ok())
    }
}

fn read_entry<'a>(r: &mut Reader<'a>) -> Result<BatchEntry<'a>, DecodeError> {
    if r.array("batch entry")? != 2 {
        return Err(DecodeError::Malformed {
            at: r.position(),
            expected: "batch entry [received_ms, frame]",
        });
    }
    let received_ms = r.u64("entry.received_ms")?;
    let frame = r.bytes("entry.frame")?;
    if frame.len() > MAX_FRAME_BYTES {
        return Err(DecodeError::Oversize {
            len: frame.len(),
            max: MAX_FRAME_BYTES,
        });
    }
    Ok(BatchEntry { received_ms, frame })
}

/// Encodes a batch of already encoded board frames into `buf`.
pub fn encode_batch(
    header: &BatchHeader,
    entries: &[BatchEntry<'_>],
    buf: &mut [u8],
) -> Result<usize, EncodeError> {
    if entries.len() > MAX_BATCH_ENTRIES {
        return Err(EncodeError::TooMany {
            field: "entries",
            max: MAX_BATCH_ENTRIES,
        });
    }
    let mut w = cbor::writer(buf);
    w.map(5)?;
    w.u8(0)?.u8(PROTOCOL_VERSION)?;
    w.u8(1)?.str(header.gateway_id.as_str())?;
    w.u8(2)?.str(header.site_id.as_str())?;
    w.u8(3)?.u64(header.batch_seq)?;
    w.u8(4)?.array(entries.len() as u64)?;
    for e in entries {
        if e.frame.len() > MAX_FRAME_BYTES {
            return Err(EncodeError::Oversize {
                len: e.frame.len(),
                max: MAX_FRAME_BYTES,
            });
        }
        w.array(2)?.u64(e.received_ms)?.bytes(e.frame)?;
    }
    cbor::finish(w, MAX_BATCH_BYTES)
}

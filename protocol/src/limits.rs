//! Hard limits of the wire contract. Decoders enforce every one of them.

/// Largest encoded uplink or downlink frame from or to a board, in bytes.
pub const MAX_FRAME_BYTES: usize = 512;
/// Largest encoded gateway batch, in bytes.
pub const MAX_BATCH_BYTES: usize = 128 * 1024;
/// Most board frames in one gateway batch.
pub const MAX_BATCH_ENTRIES: usize = 500;
/// Longest identifier (device, gateway, site, zone), in bytes.
pub const MAX_ID_LEN: usize = 32;
/// Longest firmware version string, in bytes.
pub const MAX_FIRMWARE_LEN: usize = 24;
/// Longest staff name on a local acknowledgement, in bytes.
pub const MAX_STAFF_NAME_LEN: usize = 48;
/// Most per-interval volumes in one meter reading (an hour of one-minute slots).
pub const MAX_METER_SLOTS: usize = 60;
/// Most extra (out-of-order) sequence numbers one durable receipt can confirm.
pub const MAX_RECEIPT_EXTRA: usize = 16;
/// Most boards listed in one gateway status message; a larger site sends several.
pub const MAX_STATUS_BOARDS: usize = 64;
/// Deepest nesting of an unknown value that a decoder will skip.
pub const MAX_SKIP_DEPTH: usize = 4;
/// Longest accepted MQTT topic built by [`crate::topic`].
pub const MAX_TOPIC_LEN: usize = 128;

//! The durable spool: every accepted board frame is on disk before its board is told so,
//! and stays there until the upstream broker has acknowledged the batch carrying it.
//!
//! - [`receipts`]: per-board durable-receipt windows (sans-IO).
//! - [`policy`]: what is admitted when the spool is full (sans-IO).
//! - [`store`]: the redb-backed storage and its in-memory index.

pub mod policy;
pub mod receipts;
pub mod store;

pub use policy::SpoolLimits;
pub use receipts::{Held, ReceiptWindow};
pub use store::{Arrival, FrameMeta, Outcome, Spool, SpoolError, SpoolKey, StoredFrame};

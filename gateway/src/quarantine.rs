//! Refused messages are kept for inspection in a bounded JSON-lines file.
//!
//! `quarantine.jsonl` grows to half the configured size, then is renamed to
//! `quarantine.1.jsonl` (replacing the previous one) and a new file starts: at most the
//! configured size is ever on disk.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};

use serde::Serialize;

/// One refused message.
#[derive(Debug, Serialize)]
pub struct QuarantineRecord<'a> {
    pub received_ms: u64,
    pub reason: &'a str,
    pub detail: String,
    pub topic: &'a str,
    /// The payload, hex-encoded, cut at 1 KiB.
    pub payload_hex: String,
    pub payload_len: usize,
}

/// Appends quarantine records, rotating by size.
#[derive(Debug)]
pub struct Quarantine {
    path: PathBuf,
    rotated: PathBuf,
    file: File,
    written: u64,
    limit_per_file: u64,
}

impl Quarantine {
    /// Opens (or creates) `dir/quarantine.jsonl`; `max_bytes` bounds both files together.
    pub fn open(dir: &Path, max_bytes: u64) -> std::io::Result<Self> {
        std::fs::create_dir_all(dir)?;
        let path = dir.join("quarantine.jsonl");
        let rotated = dir.join("quarantine.1.jsonl");
        let file = OpenOptions::new().create(true).append(true).open(&path)?;
        let written = file.metadata()?.len();
        Ok(Self {
            path,
            rotated,
            file,
            written,
            limit_per_file: (max_bytes / 2).max(4096),
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Writes one record (not fsynced: quarantine is for inspection, not for delivery).
    pub fn record(
        &mut self,
        received_ms: u64,
        reason: &str,
        detail: String,
        topic: &str,
        payload: &[u8],
    ) -> std::io::Result<()> {
        let shown = &payload[..payload.len().min(1024)];
        let mut hex = String::with_capacity(shown.len() * 2);
        for b in shown {
            use std::fmt::Write as _;
            let _ = write!(hex, "{b:02x}");
        }
        let rec = QuarantineRecord {
            received_ms,
            reason,
            detail,
            topic: &topic[..topic.len().min(256)],
            payload_hex: hex,
            payload_len: payload.len(),
        };
        let mut line = serde_json::to_vec(&rec).map_err(std::io::Error::other)?;
        line.push(b'\n');
        if self.written + line.len() as u64 > self.limit_per_file && self.written > 0 {
            std::fs::rename(&self.path, &self.rotated)?;
            self.file = OpenOptions::new()
                .create(true)
                .append(true)
                .open(&self.path)?;
            self.written = 0;
        }
        self.file.write_all(&line)?;
        self.written += line.len() as u64;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quarantine_rotates_and_stays_within_its_bound() {
        let dir = tempfile::tempdir().unwrap();
        let mut q = Quarantine::open(dir.path(), 16 * 1024).unwrap();
        for i in 0..500 {
            q.record(i, "malformed", "x".into(), "vigil/v1/dev/a/up", &[0xab; 64])
                .unwrap();
        }
        let a = std::fs::metadata(dir.path().join("quarantine.jsonl"))
            .unwrap()
            .len();
        let b = std::fs::metadata(dir.path().join("quarantine.1.jsonl"))
            .unwrap()
            .len();
        assert!(a + b <= 16 * 1024, "{a} + {b}");
        let last = std::fs::read_to_string(dir.path().join("quarantine.jsonl")).unwrap();
        let rec: serde_json::Value = serde_json::from_str(last.lines().last().unwrap()).unwrap();
        assert_eq!(rec["received_ms"], 499);
        assert_eq!(rec["reason"], "malformed");
    }
}

//! Checks every test vector in `protocol/vectors/` both ways: valid vectors decode to their
//! documented meaning and encode back to the same bytes; invalid vectors produce the
//! documented error. Regenerate the files (after a deliberate contract change only) with
//! `cargo test -p vigil-protocol --test vectors -- --ignored write_vectors`.

mod common;

use std::path::PathBuf;

use common::*;
use serde_json::{json, Value};
use vigil_protocol::*;

fn vectors_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("vectors")
}

fn load(name: &str) -> Vec<Value> {
    let text = std::fs::read_to_string(vectors_dir().join(name)).unwrap();
    serde_json::from_str::<Value>(&text).unwrap()["vectors"]
        .as_array()
        .unwrap()
        .clone()
}

/// Decodes `bytes` as `kind`, returns its readable meaning and its re-encoding.
fn decode(kind: &str, bytes: &[u8]) -> Result<(Value, Vec<u8>), DecodeError> {
    Ok(match kind {
        "uplink" => {
            let f = UplinkFrame::decode(bytes)?;
            (uplink_json(&f), encode(|b| f.encode(b)))
        }
        "downlink" => {
            let f = DownlinkFrame::decode(bytes)?;
            (downlink_json(&f), encode(|b| f.encode(b)))
        }
        "batch" => {
            let b = Batch::decode(bytes)?;
            for e in b.entries() {
                e.decode_frame()?;
            }
            let entries: Vec<BatchEntry<'_>> = b.entries().collect();
            (
                batch_json(&b),
                encode(|buf| encode_batch(&b.header, &entries, buf)),
            )
        }
        "gateway_status" => {
            let s = GatewayStatus::decode(bytes)?;
            (status_json(&s), encode(|b| s.encode(b)))
        }
        "device_state" => {
            let s = DeviceState::decode(bytes)?;
            (state_json(&s), encode(|b| s.encode(b)))
        }
        "local_ack" => {
            let a = LocalAck::decode(bytes)?;
            (ack_json(&a), encode(|b| a.encode(b)))
        }
        other => panic!("unknown vector kind {other}"),
    })
}

#[test]
fn valid_vectors_decode_to_their_meaning_and_encode_back_to_the_same_bytes() {
    let vectors = load("valid.json");
    let mut kinds = std::collections::BTreeSet::new();
    for v in &vectors {
        let name = v["name"].as_str().unwrap();
        let kind = v["kind"].as_str().unwrap();
        let bytes = hex::decode(v["hex"].as_str().unwrap()).unwrap();
        let (meaning, reencoded) = decode(kind, &bytes).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(meaning, v["decoded"], "{name}: decoded meaning differs");
        assert_eq!(
            hex::encode(reencoded),
            hex::encode(&bytes),
            "{name}: re-encoding differs"
        );
        kinds.insert(if kind == "uplink" {
            meaning["body"]
                .as_object()
                .unwrap()
                .keys()
                .next()
                .unwrap()
                .clone()
        } else {
            kind.to_string()
        });
    }
    for required in [
        "meter",
        "button",
        "fall",
        "fire",
        "heartbeat",
        "downlink",
        "batch",
        "gateway_status",
        "device_state",
        "local_ack",
    ] {
        assert!(kinds.contains(required), "no valid vector for {required}");
    }
}

#[test]
fn invalid_vectors_produce_their_documented_errors() {
    let vectors = load("invalid.json");
    assert!(vectors.len() >= 20);
    for v in &vectors {
        let name = v["name"].as_str().unwrap();
        let bytes = hex::decode(v["hex"].as_str().unwrap()).unwrap();
        let err = decode(v["kind"].as_str().unwrap(), &bytes)
            .err()
            .unwrap_or_else(|| panic!("{name}: decoded"));
        assert_eq!(
            err.code(),
            v["error"].as_str().unwrap(),
            "{name}: got {err}"
        );
        assert_eq!(err.field(), v["field"].as_str(), "{name}: got {err}");
    }
}

/// A tiny CBOR builder for hand-made (mostly invalid) inputs.
#[derive(Default, Clone)]
struct C(Vec<u8>);

impl C {
    fn head(mut self, major: u8, v: u64) -> Self {
        let m = major << 5;
        match v {
            0..=23 => self.0.push(m | v as u8),
            24..=0xff => self.0.extend([m | 24, v as u8]),
            0x100..=0xffff => {
                self.0.push(m | 25);
                self.0.extend((v as u16).to_be_bytes());
            }
            0x1_0000..=0xffff_ffff => {
                self.0.push(m | 26);
                self.0.extend((v as u32).to_be_bytes());
            }
            _ => {
                self.0.push(m | 27);
                self.0.extend(v.to_be_bytes());
            }
        }
        self
    }
    fn u(self, v: u64) -> Self {
        self.head(0, v)
    }
    fn neg(self, v: u64) -> Self {
        self.head(1, v - 1)
    }
    fn text(self, s: &str) -> Self {
        let mut c = self.head(3, s.len() as u64);
        c.0.extend(s.as_bytes());
        c
    }
    fn bytes(self, b: &[u8]) -> Self {
        let mut c = self.head(2, b.len() as u64);
        c.0.extend(b);
        c
    }
    fn map(self, n: u64) -> Self {
        self.head(5, n)
    }
    fn array(self, n: u64) -> Self {
        self.head(4, n)
    }
    fn raw(mut self, b: &[u8]) -> Self {
        self.0.extend(b);
        self
    }
    fn kv(self, k: u64, v: impl FnOnce(C) -> C) -> Self {
        v(self.u(k))
    }
}

/// An uplink header (7 entries after the version when `n` says so) up to the body key.
fn uplink_head(n: u64, device: &str, body_kind: u64) -> C {
    C::default()
        .map(n)
        .kv(0, |c| c.u(1))
        .kv(1, |c| c.text(device))
        .kv(2, |c| c.u(3))
        .kv(3, |c| c.u(5))
        .kv(4, |c| c.u(1000))
        .kv(6, |c| c.u(body_kind))
        .u(7)
}

fn button(c: C) -> C {
    c.map(1).kv(0, |c| c.u(0))
}

fn fall_body(c: C, orientation: u64) -> C {
    c.map(5)
        .kv(0, |c| c.u(300))
        .kv(1, |c| c.u(4000))
        .kv(2, |c| c.u(30_000))
        .kv(3, |c| c.u(orientation))
        .kv(4, |c| c.raw(&[0xf4]))
}

/// (name, kind, payload, expected error code, expected field)
type InvalidVector = (
    &'static str,
    &'static str,
    Vec<u8>,
    &'static str,
    Option<&'static str>,
);

fn invalid_vectors() -> Vec<InvalidVector> {
    let press = encode(|b| sample_uplinks()[2].1.encode(b));
    let mut wrong_version = press.clone();
    wrong_version[2] = 0x02;
    let mut truncated = press.clone();
    truncated.pop();
    let mut trailing = press.clone();
    trailing.push(0x00);
    let nested_unknown = {
        let mut c = uplink_head(8, "pendant-7", 2);
        c = button(c).u(30);
        for _ in 0..6 {
            c = c.array(1);
        }
        c.u(0)
    };
    let many_slots = {
        let mut c = uplink_head(7, "meter-1", 1)
            .map(4)
            .kv(0, |c| c.u(0))
            .kv(1, |c| c.u(0))
            .kv(2, |c| c.u(3600))
            .u(6)
            .array(61);
        for _ in 0..61 {
            c = c.u(0);
        }
        c
    };
    let batch = |entries: C, n: u64| {
        C::default()
            .map(5)
            .kv(0, |c| c.u(1))
            .kv(1, |c| c.text("gw-1"))
            .kv(2, |c| c.text("home-12"))
            .kv(3, |c| c.u(1))
            .u(4)
            .array(n)
            .raw(&entries.0)
    };
    let too_many_entries = {
        let mut e = C::default();
        for _ in 0..501 {
            e = e.array(2).u(0).bytes(&press);
        }
        batch(e, 501)
    };
    let receipt_17 = {
        let mut c = C::default()
            .map(4)
            .kv(0, |c| c.u(1))
            .kv(1, |c| c.text("pendant-7"))
            .kv(2, |c| c.u(1))
            .u(3)
            .map(3)
            .kv(0, |c| c.u(3))
            .kv(1, |c| c.u(9))
            .u(2)
            .array(17);
        for s in 0..17 {
            c = c.u(100 + s);
        }
        c
    };
    vec![
        ("empty input", "uplink", vec![], "truncated", None),
        ("not a map", "uplink", vec![0x01], "malformed", None),
        (
            "text instead of a map",
            "uplink",
            C::default().text("hello").0,
            "malformed",
            None,
        ),
        (
            "oversize frame (513 bytes)",
            "uplink",
            vec![0u8; 513],
            "oversize",
            None,
        ),
        (
            "protocol version 2",
            "uplink",
            wrong_version,
            "unsupported_version",
            None,
        ),
        (
            "version is not the first key",
            "uplink",
            C::default().map(1).kv(1, |c| c.text("a")).0,
            "missing_field",
            Some("version"),
        ),
        ("frame cut short", "uplink", truncated, "truncated", None),
        (
            "a byte after the frame",
            "uplink",
            trailing,
            "trailing_bytes",
            None,
        ),
        (
            "indefinite-length map",
            "uplink",
            vec![0xbf, 0x00, 0x01, 0xff],
            "indefinite_length",
            None,
        ),
        (
            "seq missing",
            "uplink",
            button(
                C::default()
                    .map(6)
                    .kv(0, |c| c.u(1))
                    .kv(1, |c| c.text("p"))
                    .kv(2, |c| c.u(3))
                    .kv(4, |c| c.u(1))
                    .kv(6, |c| c.u(2))
                    .u(7),
            )
            .0,
            "missing_field",
            Some("seq"),
        ),
        (
            "device id with a slash",
            "uplink",
            button(uplink_head(7, "a/b", 2)).0,
            "invalid_id",
            Some("device_id"),
        ),
        (
            "device id of 33 characters",
            "uplink",
            button(uplink_head(7, &"d".repeat(33), 2)).0,
            "invalid_id",
            Some("device_id"),
        ),
        (
            "unknown body kind 9",
            "uplink",
            button(uplink_head(7, "p", 9)).0,
            "unknown_code",
            Some("body_kind"),
        ),
        (
            "seq is negative",
            "uplink",
            button(
                C::default()
                    .map(7)
                    .kv(0, |c| c.u(1))
                    .kv(1, |c| c.text("p"))
                    .kv(2, |c| c.u(3))
                    .kv(3, |c| c.neg(1))
                    .kv(4, |c| c.u(1))
                    .kv(6, |c| c.u(2))
                    .u(7),
            )
            .0,
            "out_of_range",
            Some("seq"),
        ),
        (
            "seq above u32",
            "uplink",
            button(
                C::default()
                    .map(7)
                    .kv(0, |c| c.u(1))
                    .kv(1, |c| c.text("p"))
                    .kv(2, |c| c.u(3))
                    .kv(3, |c| c.u(1 << 32))
                    .kv(4, |c| c.u(1))
                    .kv(6, |c| c.u(2))
                    .u(7),
            )
            .0,
            "out_of_range",
            Some("seq"),
        ),
        (
            "boot id given twice",
            "uplink",
            button(
                C::default()
                    .map(8)
                    .kv(0, |c| c.u(1))
                    .kv(1, |c| c.text("p"))
                    .kv(2, |c| c.u(3))
                    .kv(2, |c| c.u(4))
                    .kv(3, |c| c.u(1))
                    .kv(4, |c| c.u(1))
                    .kv(6, |c| c.u(2))
                    .u(7),
            )
            .0,
            "duplicate_field",
            Some("boot_id"),
        ),
        (
            "unknown button kind",
            "uplink",
            uplink_head(7, "p", 2).map(1).kv(0, |c| c.u(7)).0,
            "unknown_code",
            Some("button.kind"),
        ),
        (
            "orientation change of 200 degrees",
            "uplink",
            fall_body(uplink_head(7, "p", 3), 200).0,
            "out_of_range",
            Some("fall.orientation_change_deg"),
        ),
        (
            "smoke reported in milliamperes",
            "uplink",
            uplink_head(7, "f", 4)
                .map(5)
                .kv(0, |c| c.u(0))
                .kv(1, |c| c.u(10))
                .kv(2, |c| c.u(3))
                .kv(3, |c| c.u(1))
                .kv(4, |c| c.text("z"))
                .0,
            "unit_mismatch",
            None,
        ),
        (
            "fire report without zone",
            "uplink",
            uplink_head(7, "f", 4)
                .map(4)
                .kv(0, |c| c.u(0))
                .kv(1, |c| c.u(10))
                .kv(2, |c| c.u(0))
                .kv(3, |c| c.u(1))
                .0,
            "missing_field",
            Some("fire.zone"),
        ),
        (
            "61 meter slots",
            "uplink",
            many_slots.0,
            "too_many",
            Some("meter.slots_ml"),
        ),
        (
            "meter slot length 0",
            "uplink",
            uplink_head(7, "m", 1)
                .map(4)
                .kv(0, |c| c.u(0))
                .kv(1, |c| c.u(0))
                .kv(2, |c| c.u(3600))
                .kv(5, |c| c.u(0))
                .0,
            "out_of_range",
            Some("meter.slot_s"),
        ),
        (
            "rssi above 20 dBm",
            "uplink",
            uplink_head(7, "m", 5)
                .map(3)
                .kv(0, |c| c.u(3000))
                .kv(1, |c| c.u(40))
                .kv(2, |c| c.text("1.0"))
                .0,
            "out_of_range",
            Some("heartbeat.rssi_dbm"),
        ),
        (
            "unknown value nested too deep",
            "uplink",
            nested_unknown.0,
            "too_deep",
            None,
        ),
        (
            "body before its kind",
            "uplink",
            button(
                C::default()
                    .map(7)
                    .kv(0, |c| c.u(1))
                    .kv(1, |c| c.text("p"))
                    .kv(2, |c| c.u(3))
                    .kv(3, |c| c.u(1))
                    .kv(4, |c| c.u(1))
                    .u(7),
            )
            .kv(6, |c| c.u(2))
            .0,
            "missing_field",
            Some("body_kind"),
        ),
        (
            "batch with 501 entries",
            "batch",
            too_many_entries.0,
            "too_many",
            Some("entries"),
        ),
        (
            "batch entry of three items",
            "batch",
            batch(C::default().array(3).u(0).bytes(&press).u(0), 1).0,
            "malformed",
            None,
        ),
        (
            "batch entry with an oversize frame",
            "batch",
            batch(C::default().array(2).u(0).bytes(&[0u8; 513]), 1).0,
            "oversize",
            None,
        ),
        (
            "batch entry carrying a bad frame",
            "batch",
            batch(C::default().array(2).u(0).bytes(&[0x01]), 1).0,
            "malformed",
            None,
        ),
        (
            "batch without gateway id",
            "batch",
            C::default()
                .map(4)
                .kv(0, |c| c.u(1))
                .kv(2, |c| c.text("s"))
                .kv(3, |c| c.u(1))
                .u(4)
                .array(0)
                .0,
            "missing_field",
            Some("gateway_id"),
        ),
        (
            "receipt confirming 17 extra seqs",
            "downlink",
            receipt_17.0,
            "too_many",
            Some("receipt.also_held"),
        ),
        (
            "config with a 5-second report interval",
            "downlink",
            C::default()
                .map(4)
                .kv(0, |c| c.u(1))
                .kv(1, |c| c.text("m"))
                .kv(2, |c| c.u(3))
                .u(3)
                .map(1)
                .kv(0, |c| c.u(5))
                .0,
            "out_of_range",
            Some("config.report_interval_s"),
        ),
        (
            "status listing 65 boards",
            "gateway_status",
            {
                let mut c = C::default()
                    .map(9)
                    .kv(0, |c| c.u(1))
                    .kv(1, |c| c.text("g"))
                    .kv(2, |c| c.text("s"))
                    .kv(3, |c| c.u(0))
                    .kv(4, |c| c.raw(&[0xf5]))
                    .kv(5, |c| c.u(0))
                    .kv(6, |c| c.u(0))
                    .kv(7, |c| c.u(0))
                    .u(8)
                    .array(65);
                for i in 0..65 {
                    c = c
                        .map(2)
                        .kv(0, |c| c.text(&format!("b{i}")))
                        .kv(1, |c| c.u(0));
                }
                c.0
            },
            "too_many",
            Some("boards"),
        ),
        (
            "device state without online flag",
            "device_state",
            C::default()
                .map(3)
                .kv(0, |c| c.u(1))
                .kv(1, |c| c.text("p"))
                .kv(3, |c| c.u(1))
                .0,
            "missing_field",
            Some("online"),
        ),
        (
            "local ack by an unprintable name",
            "local_ack",
            C::default()
                .map(7)
                .kv(0, |c| c.u(1))
                .kv(1, |c| c.text("g"))
                .kv(2, |c| c.text("p"))
                .kv(3, |c| c.u(1))
                .kv(4, |c| c.u(1))
                .kv(5, |c| c.u(1))
                .kv(6, |c| c.text("a\u{7}"))
                .0,
            "invalid_id",
            Some("by"),
        ),
    ]
}

#[test]
#[ignore = "writes protocol/vectors/*.json; run deliberately after a contract change"]
fn write_vectors() {
    let mut valid = Vec::new();
    for (name, f) in sample_uplinks() {
        valid.push(json!({"name": name, "kind": "uplink", "hex": hex::encode(encode(|b| f.encode(b))), "decoded": uplink_json(&f)}));
    }
    for (name, f) in sample_downlinks() {
        valid.push(json!({"name": name, "kind": "downlink", "hex": hex::encode(encode(|b| f.encode(b))), "decoded": downlink_json(&f)}));
    }
    let frames: Vec<Vec<u8>> = sample_uplinks()
        .iter()
        .take(3)
        .map(|(_, f)| encode(|b| f.encode(b)))
        .collect();
    let entries: Vec<BatchEntry<'_>> = frames
        .iter()
        .enumerate()
        .map(|(i, f)| BatchEntry {
            received_ms: 1_764_460_800_500 + i as u64,
            frame: f,
        })
        .collect();
    let batch_bytes = encode(|b| encode_batch(&batch_header(), &entries, b));
    valid.push(json!({"name": "gateway batch of three frames", "kind": "batch", "hex": hex::encode(&batch_bytes),
                      "decoded": batch_json(&Batch::decode(&batch_bytes).unwrap())}));
    let s = sample_status();
    valid.push(json!({"name": "gateway status while the uplink is down", "kind": "gateway_status", "hex": hex::encode(encode(|b| s.encode(b))), "decoded": status_json(&s)}));
    let s = sample_state();
    valid.push(json!({"name": "board offline (its MQTT will)", "kind": "device_state", "hex": hex::encode(encode(|b| s.encode(b))), "decoded": state_json(&s)}));
    let a = sample_ack();
    valid.push(json!({"name": "call acknowledged on the local console", "kind": "local_ack", "hex": hex::encode(encode(|b| a.encode(b))), "decoded": ack_json(&a)}));
    let invalid: Vec<Value> = invalid_vectors()
        .into_iter()
        .map(|(name, kind, bytes, error, field)| json!({"name": name, "kind": kind, "hex": hex::encode(bytes), "error": error, "field": field}))
        .collect();
    let header = "Generated by `cargo test -p vigil-protocol --test vectors -- --ignored write_vectors`; checked by the same file's tests. See docs/protocol.md.";
    for (file, vectors) in [("valid.json", valid), ("invalid.json", invalid)] {
        let doc = json!({"about": header, "vectors": vectors});
        std::fs::write(
            vectors_dir().join(file),
            serde_json::to_string_pretty(&doc).unwrap() + "\n",
        )
        .unwrap();
    }
}

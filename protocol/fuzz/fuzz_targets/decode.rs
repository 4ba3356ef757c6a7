//! Feeds arbitrary bytes to every decoder of the wire contract. A decoder must return a
//! value or a typed error, never panic; a value that decodes must re-encode to bytes that
//! decode to the same value.
#![no_main]

use libfuzzer_sys::fuzz_target;
use vigil_protocol::{Batch, DeviceState, DownlinkFrame, GatewayStatus, LocalAck, UplinkFrame};

fuzz_target!(|data: &[u8]| {
    let mut buf = [0u8; 1024];
    if let Ok(frame) = UplinkFrame::decode(data) {
        let n = frame.encode(&mut buf).expect("a decoded frame re-encodes");
        assert_eq!(UplinkFrame::decode(&buf[..n]).as_ref(), Ok(&frame));
    }
    if let Ok(frame) = DownlinkFrame::decode(data) {
        let n = frame.encode(&mut buf).expect("a decoded downlink re-encodes");
        assert_eq!(DownlinkFrame::decode(&buf[..n]).as_ref(), Ok(&frame));
    }
    let _ = DeviceState::decode(data);
    let _ = GatewayStatus::decode(data);
    let _ = LocalAck::decode(data);
    if let Ok(batch) = Batch::decode(data) {
        assert!(batch.entries().count() == batch.len());
        for entry in batch.entries() {
            let _ = entry.decode_frame();
        }
    }
});

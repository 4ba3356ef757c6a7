//! Builders shared by the detector tests.

use crate::alerts::Timestamp;
use crate::detection::action::{FrameContext, FrameRef};
use crate::ids::{DeviceId, ResidentId, SiteId};

pub fn site() -> SiteId {
    SiteId::new("home-1").unwrap()
}

pub fn device(name: &str) -> DeviceId {
    DeviceId::new(name).unwrap()
}

pub fn resident() -> ResidentId {
    ResidentId::new("res-1").unwrap()
}

pub fn at_s(s: u64) -> Timestamp {
    Timestamp::from_unix_s(1_700_000_000 + s)
}

pub fn ctx(dev: &str, seq: u32, occurred_s: u64) -> FrameContext {
    FrameContext {
        site: site(),
        resident: Some(resident()),
        frame: FrameRef {
            device: device(dev),
            boot_id: 1,
            seq,
        },
        occurred_at: at_s(occurred_s),
    }
}

pub fn drain<T>(mut poll: impl FnMut() -> Option<T>) -> Vec<T> {
    std::iter::from_fn(&mut poll).collect()
}

//! A small registry and frames for the engine's unit tests.

use std::time::Duration;

use bytes::Bytes;
use vigil_protocol::{UplinkBody, UplinkFrame};

use super::directory::StaticDirectory;
use crate::alerts::{Severity, Timestamp};
use crate::escalation::{EscalationPolicy, RoleName, Roster, Shift, Target, Tier};
use crate::ids::{DeviceId, ResponderId, SiteId};
use crate::registry::{
    ContactChannel, Device, DeviceKind, Resident, Responder, ResponderRole, Site, SiteKind,
};
use crate::store::IncomingFrame;

/// 2023-11-14 22:13:20 UTC, in ms.
pub const T0: i64 = 1_700_000_000_000;

pub fn at(s: u64) -> Timestamp {
    Timestamp::from_unix_ms(T0 as u64 + s * 1000)
}

pub fn site() -> SiteId {
    "home-1".parse().unwrap()
}

pub fn pendant() -> DeviceId {
    "p-1".parse().unwrap()
}

pub fn meter() -> DeviceId {
    "m-1".parse().unwrap()
}

fn responder(id: &str, channels: Vec<ContactChannel>) -> Responder {
    Responder {
        id: id.parse().unwrap(),
        name: id.to_owned(),
        role: ResponderRole::Caregiver,
        channels,
        site_ids: vec![site()],
    }
}

/// Two tiers of 2 s: `carer` (webhook) then `nurse` (phone only).
pub fn policy() -> EscalationPolicy {
    let role = |r: &str| Target::Role(RoleName::new(r).unwrap());
    EscalationPolicy::new(
        vec![
            Tier {
                targets: vec![role("carer")],
                ack_deadline: Duration::from_secs(2),
            },
            Tier {
                targets: vec![role("nurse")],
                ack_deadline: Duration::from_secs(2),
            },
        ],
        Severity::Major,
    )
    .unwrap()
}

pub fn directory() -> StaticDirectory {
    let shift = |role: &str, who: &str| Shift {
        site: site(),
        role: RoleName::new(role).unwrap(),
        responder: ResponderId::new(who).unwrap(),
        from: Timestamp::from_unix_ms(0),
        until: Timestamp::from_unix_ms(u64::MAX / 2),
    };
    let mut dir = StaticDirectory::default()
        .with_site(Site {
            id: site(),
            kind: SiteKind::Household,
            name: "Mrs Li's flat".into(),
            address: "1 Long Road".into(),
            timezone: chrono_tz::Asia::Shanghai,
            escalation_policy: None,
        })
        .with_resident(Resident {
            id: "mrs-li".parse().unwrap(),
            site_id: site(),
            name: "Li Hua".into(),
            emergency_contacts: vec![],
            conditions: vec![],
            away_until: None,
        })
        .with_device(Device {
            id: pendant(),
            kind: DeviceKind::Pendant,
            site_id: site(),
            resident_id: Some("mrs-li".parse().unwrap()),
            zone: None,
            credentials_ref: None,
            installed_on: None,
        })
        .with_device(Device {
            id: meter(),
            kind: DeviceKind::Meter,
            site_id: site(),
            resident_id: Some("mrs-li".parse().unwrap()),
            zone: None,
            credentials_ref: None,
            installed_on: None,
        })
        .with_responder(responder(
            "carer-a",
            vec![ContactChannel::Webhook {
                url: "http://127.0.0.1:9/hook".into(),
            }],
        ))
        .with_responder(responder(
            "nurse-x",
            vec![ContactChannel::Phone {
                number: "+86 138 0000 0000".into(),
            }],
        ))
        .with_policy(site(), policy());
    dir.roster = Roster {
        shifts: vec![shift("carer", "carer-a"), shift("nurse", "nurse-x")],
        ..Roster::default()
    };
    dir
}

pub fn frame(device: DeviceId, seq: u32, at_ms: i64, body: UplinkBody) -> IncomingFrame {
    IncomingFrame {
        frame: UplinkFrame {
            device_id: device,
            boot_id: 1,
            seq,
            uptime_ms: 1000,
            wall_ms: Some(at_ms as u64),
            body,
        },
        raw: Bytes::new(),
        via: None,
        gateway_received_ms: None,
        server_received_ms: at_ms,
    }
}

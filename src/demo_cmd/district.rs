//! The demo district as the registry sees it: the import document (sites, residents, devices,
//! gateways, responders, shifts) built from the scenario file and its cast, and the demo's
//! escalation policy.

use std::time::Duration;

use serde_json::{json, Value};
use vigil_sim::demo::cast::{self, CARE_HOME, HOUSEHOLDS, RESPONDERS};
use vigil_sim::demo::script::TIER_DEADLINES;
use vigil_sim::scenario::{DeviceKind, Scenario, SiteKind};

/// Id of the demo's escalation policy.
pub const POLICY_ID: &str = "demo-telecare";

/// The registry import document (`POST /api/v1/import`) for `district`; `roster_roles`: the
/// shifts name the roster role they hold; `policy`: the escalation policy the sites name.
pub fn import_document(district: &Scenario, roster_roles: bool, policy: Option<&str>) -> Value {
    let sites: Vec<Value> = district
        .sites
        .iter()
        .map(|s| {
            let (name, address) = match s.kind {
                SiteKind::Facility => (CARE_HOME.site_name, CARE_HOME.address),
                SiteKind::Household => HOUSEHOLDS
                    .iter()
                    .find(|h| h.site == s.id.as_str())
                    .map_or(("Household", "unknown"), |h| (h.site_name, h.address)),
            };
            let mut site = json!({
                "id": s.id.as_str(),
                "kind": match s.kind { SiteKind::Household => "household", SiteKind::Facility => "facility" },
                "name": name,
                "address": address,
                "timezone": cast::TIMEZONE,
            });
            if let Some(p) = policy {
                site["escalation_policy"] = json!(p);
            }
            site
        })
        .collect();
    let residents: Vec<Value> = district
        .residents
        .iter()
        .map(|r| {
            let contact = |c: &cast::Contact| json!({"name": c.name, "phone": c.phone, "relation": c.relation});
            match cast::household(&r.id) {
                Some(h) => json!({
                    "id": r.id,
                    "site_id": r.site.as_str(),
                    "name": h.resident_name,
                    "emergency_contacts": [contact(&h.contact)],
                    "conditions": h.conditions,
                }),
                None => json!({
                    "id": r.id,
                    "site_id": r.site.as_str(),
                    "name": if r.id == CARE_HOME.resident { CARE_HOME.resident_name } else { r.id.as_str() },
                    "emergency_contacts": [contact(&CARE_HOME.contact)],
                    "conditions": [],
                }),
            }
        })
        .collect();
    let devices: Vec<Value> = district
        .devices
        .iter()
        .map(|d| match &d.kind {
            DeviceKind::Meter { resident } => json!({
                "id": d.id.as_str(), "kind": "meter", "site_id": d.site.as_str(),
                "resident_id": resident,
            }),
            DeviceKind::Pendant { resident } => json!({
                "id": d.id.as_str(), "kind": "pendant", "site_id": d.site.as_str(),
                "resident_id": resident,
            }),
            DeviceKind::Fire { zone, .. } => json!({
                "id": d.id.as_str(), "kind": "fire_node", "site_id": d.site.as_str(),
                "zone": zone.as_str(),
            }),
        })
        .collect();
    let gateways: Vec<Value> = district
        .sites
        .iter()
        .map(|s| {
            json!({
                "id": s.gateway.as_str(),
                "site_id": s.id.as_str(),
                "name": format!("{} gateway", s.id),
            })
        })
        .collect();
    let responders: Vec<Value> = RESPONDERS
        .iter()
        .map(|r| {
            json!({
                "id": r.id,
                "name": r.name,
                "role": r.kind.as_str(),
                "channels": [{"kind": "phone", "number": r.phone}],
                "site_ids": r.sites,
            })
        })
        .collect();
    // Everyone is on duty around the clock, every day, at every site they cover.
    let shifts: Vec<Value> = RESPONDERS
        .iter()
        .flat_map(|r| {
            r.sites.iter().map(move |site| {
                let mut shift = json!({
                    "id": format!("{}-{site}", r.id),
                    "site_id": site,
                    "responder_id": r.id,
                    "schedule": {
                        "type": "weekly",
                        "days": ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"],
                        "start": "00:00",
                        "end": "23:59:59",
                    },
                });
                if roster_roles {
                    shift["role"] = json!(r.roster_role);
                }
                shift
            })
        })
        .collect();
    json!({
        "sites": sites,
        "residents": residents,
        "devices": devices,
        "gateways": gateways,
        "responders": responders,
        "shifts": shifts,
    })
}

/// The demo's escalation policy (`POST /api/v1/escalation_policies`): the telecare chain
/// (on-duty caregiver → nurse lead → district duty operator and the emergency contacts) with
/// the script's short deadlines, divided by the script speed.
pub fn escalation_policy(speed: f64) -> Value {
    let deadline = |d: Duration| ((d.as_secs_f64() / speed).round() as u64).max(1);
    let [t0, t1, t2] = TIER_DEADLINES;
    json!({
        "id": POLICY_ID,
        "name": "Demo telecare chain (short deadlines)",
        "min_severity": "major",
        "tiers": [
            {"targets": [{"type": "role", "id": "on_duty_caregiver"}], "ack_deadline_s": deadline(t0)},
            {"targets": [{"type": "role", "id": "nurse_lead"}], "ack_deadline_s": deadline(t1)},
            {"targets": [{"type": "role", "id": "district_duty_operator"}, {"type": "emergency_contact"}],
             "ack_deadline_s": deadline(t2)},
        ],
    })
}

//! OpenAPI schemas of the alert JSON, which is the serde form of the core types
//! (`alerts::lifecycle::Alert`, `alerts::audit::AuditRecord`, `alerts::kpi::SiteKpis`).
//!
//! Design: the core types stay free of HTTP documentation; these mirrors only describe them.
//! `alert_schemas_name_every_field_the_core_types_serialize` (below) fails when a core type
//! gains, loses or renames a field and its mirror here is not updated.

#![allow(dead_code)] // the types exist for their schemas only

use std::collections::BTreeMap;

use serde::Serialize;
use serde_json::Value;
use utoipa::ToSchema;

/// An alert, open or closed. Times are milliseconds since the Unix epoch (UTC).
#[derive(Serialize, ToSchema)]
pub struct Alert {
    /// The server's identifier of the alert.
    pub id: u64,
    #[schema(example = "home-17")]
    pub site: String,
    pub key: AlertKey,
    /// `critical`, `major`, `minor` or `warning`.
    #[schema(example = "critical")]
    pub severity: String,
    /// `open`, `acknowledged`, `dispatched`, `on_scene`, `resolved`, `cancelled` or
    /// `false_alarm`.
    #[schema(example = "open")]
    pub state: String,
    pub opened_at: u64,
    pub last_seen_at: u64,
    /// How many times the rule saw the condition again while the alert was open.
    pub repeat_count: u32,
    /// The frame that raised it (calls and falls), or null.
    pub origin: Option<FrameRef>,
    /// Facts the rule attached, shown to the operator as a key/value list.
    pub details: BTreeMap<String, String>,
    /// Set while the rule no longer sees the condition: `{"at": ms, "reason": "..."}`.
    pub cleared: Option<Clearing>,
    /// The first person who answered it: `{"by": Actor, "at": ms}`, or null.
    pub acknowledged: Option<Acknowledgement>,
    /// Responder ids the alert was dispatched to, in order.
    pub dispatched_to: Vec<String>,
    /// `real_emergency`, `false_alarm`, `resident_cancelled`, `test`, `condition_cleared`.
    pub disposition: Option<String>,
    pub closed_at: Option<u64>,
    pub closed_by: Option<Actor>,
}

/// One open alert at most per (subject, kind).
#[derive(Serialize, ToSchema)]
pub struct AlertKey {
    /// Externally tagged: `{"resident": id}`, `{"device": id}`,
    /// `{"zone": {"site": id, "zone": id}}`, `{"gateway": id}` or `{"site": id}`.
    #[schema(value_type = Object, example = json!({"resident": "mrs-li"}))]
    pub subject: Value,
    /// The rule's kind (`call`, `fall`, `water_no_use`, `fire_confirmed`, …; see
    /// docs/alerts.md).
    #[schema(example = "call")]
    pub kind: String,
}

#[derive(Serialize, ToSchema)]
pub struct FrameRef {
    pub device: String,
    pub boot_id: u32,
    pub seq: u32,
}

#[derive(Serialize, ToSchema)]
pub struct Clearing {
    pub at: u64,
    /// `resident_cancelled`, `returned_to_normal`, `back_online`, `battery_restored`,
    /// `rectified`.
    pub reason: String,
}

#[derive(Serialize, ToSchema)]
pub struct Acknowledgement {
    pub by: Actor,
    pub at: u64,
}

/// Who made a change: `{"type": "user", "id": "ops-1"}`, `{"type": "responder", "id": "..."}`,
/// `{"type": "rule"}` or `{"type": "system"}`.
#[derive(Serialize, ToSchema)]
pub struct Actor {
    #[serde(rename = "type")]
    #[schema(example = "user")]
    pub kind: String,
    pub id: Option<String>,
}

/// One entry of an alert's append-only audit trail.
#[derive(Serialize, ToSchema)]
pub struct AuditRecord {
    pub alert: u64,
    pub site: String,
    pub kind: String,
    /// When the change was recorded (milliseconds since the Unix epoch).
    pub at: u64,
    pub actor: Actor,
    /// The state before the change; null when the alert was raised.
    pub from: Option<String>,
    pub to: String,
    /// What changed, tagged by `change`: `raised`, `repeated`, `condition_cleared`,
    /// `transition` (with `disposition`), `escalated` / `tier_empty` (with `tier`),
    /// `notified` (with `tier`, `responder`, `channel`, `outcome`) or `note`.
    #[schema(value_type = Object, example = json!({"change": "transition", "disposition": null}))]
    pub change: Value,
    pub note: Option<String>,
}

/// Response-time KPIs of one site and period, from the audit trail.
#[derive(Serialize, ToSchema)]
pub struct SiteKpis {
    /// Alerts raised in the period.
    pub alerts: usize,
    /// Alerts raised per kind.
    pub by_kind: BTreeMap<String, usize>,
    /// Answering times of the critical alerts (calls, falls, confirmed fires).
    pub answer_critical: AnswerStats,
    pub answer_by_kind: BTreeMap<String, AnswerStats>,
    /// From raised to `on_scene`.
    pub time_to_on_scene: DurationStats,
    pub on_scene_within_45min: Share,
    /// `false_alarm` dispositions over all dispositions except `test`.
    pub false_alarms: Share,
}

#[derive(Serialize, ToSchema)]
pub struct AnswerStats {
    /// From raised to the first person's transition out of `open`.
    pub time_to_acknowledge: DurationStats,
    pub within_60s: Share,
    pub within_180s: Share,
    /// Nobody answered yet at the end of the period.
    pub unanswered: usize,
    /// Closed by their own rule before anybody answered (left out of the shares).
    pub closed_by_rule_unanswered: usize,
}

/// Nearest-rank median and 90th percentile, in seconds; null without data.
#[derive(Serialize, ToSchema)]
pub struct DurationStats {
    pub count: usize,
    pub median_s: Option<f64>,
    pub p90_s: Option<f64>,
}

/// `hits` out of `of`, so that "no data" is never shown as 0 % or 100 %.
#[derive(Serialize, ToSchema)]
pub struct Share {
    pub hits: usize,
    pub of: usize,
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use utoipa::openapi::schema::Schema;
    use utoipa::openapi::RefOr;

    use crate::alerts::audit::{Actor as CoreActor, AuditChange, AuditRecord as CoreRecord};
    use crate::alerts::kpi::SiteKpis as CoreKpis;
    use crate::alerts::lifecycle::{
        Acknowledgement as CoreAck, Alert as CoreAlert, AlertId, AlertState, Clearing as CoreClr,
        Disposition,
    };
    use crate::alerts::{AlertKind, Severity, Subject, Timestamp};
    use crate::detection::action::{AlertKey as CoreKey, ClearReason, FrameRef as CoreFrame};
    use crate::ids::{DeviceId, ResidentId, ResponderId, SiteId};

    fn properties(name: &str) -> BTreeSet<String> {
        let doc = crate::http::openapi();
        let components = doc.components.expect("components");
        let Some(RefOr::T(Schema::Object(o))) = components.schemas.get(name) else {
            panic!("no object schema {name} in the OpenAPI document");
        };
        o.properties.keys().cloned().collect()
    }

    fn keys(v: &serde_json::Value) -> BTreeSet<String> {
        v.as_object().expect("an object").keys().cloned().collect()
    }

    #[test]
    fn alert_schemas_name_every_field_the_core_types_serialize() {
        let site = SiteId::new("home-1").unwrap();
        let by = CoreActor::User("ops-1".into());
        let alert = CoreAlert {
            id: AlertId(7),
            site: site.clone(),
            key: CoreKey::new(
                Subject::Resident(ResidentId::new("mrs-li").unwrap()),
                AlertKind::Call,
            ),
            severity: Severity::Critical,
            state: AlertState::Resolved,
            opened_at: Timestamp::from_unix_s(1),
            last_seen_at: Timestamp::from_unix_s(2),
            repeat_count: 1,
            origin: Some(CoreFrame {
                device: DeviceId::new("pendant-1").unwrap(),
                boot_id: 1,
                seq: 2,
            }),
            details: [("rule".to_owned(), "call".to_owned())].into(),
            cleared: Some(CoreClr {
                at: Timestamp::from_unix_s(3),
                reason: ClearReason::ResidentCancelled,
            }),
            acknowledged: Some(CoreAck {
                by: by.clone(),
                at: Timestamp::from_unix_s(4),
            }),
            dispatched_to: vec![ResponderId::new("nurse-1").unwrap()],
            disposition: Some(Disposition::RealEmergency),
            closed_at: Some(Timestamp::from_unix_s(5)),
            closed_by: Some(by.clone()),
        };
        let json = serde_json::to_value(&alert).unwrap();
        assert_eq!(keys(&json), properties("Alert"));
        assert_eq!(keys(&json["key"]), properties("AlertKey"));
        assert_eq!(keys(&json["origin"]), properties("FrameRef"));
        assert_eq!(keys(&json["cleared"]), properties("Clearing"));
        assert_eq!(keys(&json["acknowledged"]), properties("Acknowledgement"));
        assert_eq!(keys(&json["closed_by"]), properties("Actor"));

        let record = CoreRecord {
            alert: AlertId(7),
            site,
            kind: AlertKind::Call,
            at: Timestamp::from_unix_s(4),
            actor: by,
            from: Some(AlertState::Open),
            to: AlertState::Acknowledged,
            change: AuditChange::Transition { disposition: None },
            note: Some("on my way".into()),
        };
        let json = serde_json::to_value(&record).unwrap();
        assert_eq!(keys(&json), properties("AuditRecord"));

        let json = serde_json::to_value(CoreKpis::default()).unwrap();
        assert_eq!(keys(&json), properties("SiteKpis"));
        assert_eq!(keys(&json["answer_critical"]), properties("AnswerStats"));
        assert_eq!(
            keys(&json["answer_critical"]["time_to_acknowledge"]),
            properties("DurationStats")
        );
        assert_eq!(keys(&json["false_alarms"]), properties("Share"));
    }
}

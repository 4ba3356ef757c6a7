//! The registry's entities as the API and the import files see them, with their validation.
//!
//! Identifiers are the shared newtypes; they travel as strings. Input is strict: unknown
//! fields are refused, so a typo in a field name is an error instead of a silently missing
//! emergency contact.

use chrono::{DateTime, NaiveDate, NaiveTime, Utc, Weekday};
use chrono_tz::Tz;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::id_serde;
use crate::escalation::RoleName;
use crate::ids::{DeviceId, GatewayId, ResidentId, ResponderId, SiteId, ZoneId};

/// Longest free text accepted for names, addresses and notes, in bytes.
pub const MAX_TEXT_LEN: usize = 500;
/// Most entries in a list field (contacts, conditions, channels, sites covered).
pub const MAX_LIST_LEN: usize = 64;

/// A value that failed validation, naming the field (`emergency_contacts[1].phone`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {reason}")]
pub struct FieldError {
    pub field: String,
    pub reason: String,
}

impl FieldError {
    pub fn new(field: impl Into<String>, reason: impl Into<String>) -> Self {
        Self {
            field: field.into(),
            reason: reason.into(),
        }
    }
}

pub use crate::ids::ShiftId;

pub(super) fn text(field: &str, value: &str, required: bool) -> Result<(), FieldError> {
    if required && value.trim().is_empty() {
        return Err(FieldError::new(field, "must not be empty"));
    }
    if value.len() > MAX_TEXT_LEN {
        return Err(FieldError::new(
            field,
            format!("too long: {} bytes, at most {MAX_TEXT_LEN}", value.len()),
        ));
    }
    if value.chars().any(|c| c.is_control() && c != '\n') {
        return Err(FieldError::new(field, "contains control characters"));
    }
    Ok(())
}

fn list_len<T>(field: &str, list: &[T]) -> Result<(), FieldError> {
    if list.len() > MAX_LIST_LEN {
        return Err(FieldError::new(
            field,
            format!("too many entries: {}, at most {MAX_LIST_LEN}", list.len()),
        ));
    }
    Ok(())
}

/// A phone number: an optional leading `+`, then 3 to 20 digits, spaces or dashes allowed.
fn phone(field: &str, value: &str) -> Result<(), FieldError> {
    let body = value.strip_prefix('+').unwrap_or(value);
    let digits = body.chars().filter(char::is_ascii_digit).count();
    let only_allowed = body
        .chars()
        .all(|c| c.is_ascii_digit() || c == ' ' || c == '-');
    if !only_allowed || !(3..=20).contains(&digits) {
        return Err(FieldError::new(
            field,
            format!("expected a phone number like +86 138 0000 0000, found {value:?}"),
        ));
    }
    Ok(())
}

/// A household or a care facility.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum SiteKind {
    Household,
    Facility,
}

/// A household or a care facility, with the timezone its rules are evaluated in.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Site {
    #[serde(with = "id_serde")]
    #[schema(value_type = String, example = "home-0042")]
    pub id: SiteId,
    pub kind: SiteKind,
    pub name: String,
    pub address: String,
    /// IANA timezone name.
    #[schema(value_type = String, example = "Asia/Shanghai")]
    pub timezone: Tz,
    /// Escalation policy applied to this site's alerts (opaque reference for now).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub escalation_policy: Option<String>,
}

impl Site {
    pub fn validate(&self) -> Result<(), FieldError> {
        text("name", &self.name, true)?;
        text("address", &self.address, true)?;
        if let Some(policy) = &self.escalation_policy {
            if !vigil_protocol::ids::is_valid_id(policy) {
                return Err(FieldError::new(
                    "escalation_policy",
                    "expected 1 to 32 characters of A-Z a-z 0-9 . _ -",
                ));
            }
        }
        Ok(())
    }
}

/// Someone to call for a resident.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct EmergencyContact {
    pub name: String,
    pub phone: String,
    /// Daughter, neighbour, …
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub relation: Option<String>,
}

/// A person watched over at a site.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Resident {
    #[serde(with = "id_serde")]
    #[schema(value_type = String)]
    pub id: ResidentId,
    #[serde(with = "id_serde")]
    #[schema(value_type = String)]
    pub site_id: SiteId,
    pub name: String,
    #[serde(default)]
    pub emergency_contacts: Vec<EmergencyContact>,
    /// Conditions responders should know about (diabetes, dementia, …).
    #[serde(default)]
    pub conditions: Vec<String>,
    /// The resident is away (hospital, family visit) until then: no-use rules stay quiet.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub away_until: Option<DateTime<Utc>>,
}

impl Resident {
    pub fn validate(&self) -> Result<(), FieldError> {
        text("name", &self.name, true)?;
        list_len("emergency_contacts", &self.emergency_contacts)?;
        for (i, c) in self.emergency_contacts.iter().enumerate() {
            text(&format!("emergency_contacts[{i}].name"), &c.name, true)?;
            phone(&format!("emergency_contacts[{i}].phone"), &c.phone)?;
            if let Some(r) = &c.relation {
                text(&format!("emergency_contacts[{i}].relation"), r, false)?;
            }
        }
        list_len("conditions", &self.conditions)?;
        for (i, c) in self.conditions.iter().enumerate() {
            text(&format!("conditions[{i}]"), c, true)?;
        }
        Ok(())
    }
}

/// What a board is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum DeviceKind {
    Meter,
    Pendant,
    FireNode,
}

/// A board installed at a site, for a resident or in a room/zone.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Device {
    /// The protocol `DeviceId` the board reports with.
    #[serde(with = "id_serde")]
    #[schema(value_type = String)]
    pub id: DeviceId,
    pub kind: DeviceKind,
    #[serde(with = "id_serde")]
    #[schema(value_type = String)]
    pub site_id: SiteId,
    #[serde(
        default,
        with = "id_serde::option",
        skip_serializing_if = "Option::is_none"
    )]
    #[schema(value_type = Option<String>)]
    pub resident_id: Option<ResidentId>,
    /// Room or zone, for facility sensors.
    #[serde(
        default,
        with = "id_serde::option",
        skip_serializing_if = "Option::is_none"
    )]
    #[schema(value_type = Option<String>)]
    pub zone: Option<ZoneId>,
    /// Where the board's MQTT credentials are kept (never the secret itself).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub credentials_ref: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub installed_on: Option<NaiveDate>,
}

impl Device {
    pub fn validate(&self) -> Result<(), FieldError> {
        if self.resident_id.is_none() && self.zone.is_none() {
            return Err(FieldError::new(
                "resident_id",
                "a device belongs to a resident or to a room/zone: give resident_id or zone",
            ));
        }
        if let Some(c) = &self.credentials_ref {
            text("credentials_ref", c, true)?;
        }
        Ok(())
    }
}

/// An on-site gateway.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Gateway {
    #[serde(with = "id_serde")]
    #[schema(value_type = String)]
    pub id: GatewayId,
    #[serde(with = "id_serde")]
    #[schema(value_type = String)]
    pub site_id: SiteId,
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub installed_on: Option<NaiveDate>,
}

impl Gateway {
    pub fn validate(&self) -> Result<(), FieldError> {
        text("name", &self.name, true)
    }
}

/// What kind of help a responder brings.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ResponderRole {
    Caregiver,
    Nurse,
    NeighbourhoodWorker,
    Volunteer,
    Family,
}

/// How to reach a responder.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum ContactChannel {
    Phone { number: String },
    Sms { number: String },
    Email { address: String },
    Webhook { url: String },
}

/// A person or team who can be sent.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Responder {
    #[serde(with = "id_serde")]
    #[schema(value_type = String)]
    pub id: ResponderId,
    pub name: String,
    pub role: ResponderRole,
    #[serde(default)]
    pub channels: Vec<ContactChannel>,
    /// Sites this responder covers (at least one).
    #[serde(with = "id_serde::vec")]
    #[schema(value_type = Vec<String>)]
    pub site_ids: Vec<SiteId>,
}

impl Responder {
    pub fn validate(&self) -> Result<(), FieldError> {
        if self.id.as_str().starts_with("ec.") {
            return Err(FieldError::new(
                "id",
                "ids starting with `ec.` are reserved for residents' emergency contacts",
            ));
        }
        text("name", &self.name, true)?;
        list_len("channels", &self.channels)?;
        for (i, ch) in self.channels.iter().enumerate() {
            match ch {
                ContactChannel::Phone { number } | ContactChannel::Sms { number } => {
                    phone(&format!("channels[{i}].number"), number)?
                }
                ContactChannel::Email { address } => {
                    let field = format!("channels[{i}].address");
                    text(&field, address, true)?;
                    let ok = address
                        .split_once('@')
                        .is_some_and(|(l, d)| !l.is_empty() && d.contains('.'));
                    if !ok {
                        return Err(FieldError::new(field, "expected an e-mail address"));
                    }
                }
                ContactChannel::Webhook { url } => {
                    let field = format!("channels[{i}].url");
                    text(&field, url, true)?;
                    if !(url.starts_with("https://") || url.starts_with("http://")) {
                        return Err(FieldError::new(field, "expected an http(s) URL"));
                    }
                }
            }
        }
        if self.site_ids.is_empty() {
            return Err(FieldError::new("site_ids", "must name at least one site"));
        }
        list_len("site_ids", &self.site_ids)?;
        for (i, s) in self.site_ids.iter().enumerate() {
            if self.site_ids[..i].contains(s) {
                return Err(FieldError::new(format!("site_ids[{i}]"), "listed twice"));
            }
        }
        Ok(())
    }
}

/// Writes a wall-clock time as `HH:MM`, or `HH:MM:SS` when it has seconds.
fn wall_clock<S: serde::Serializer>(t: &NaiveTime, s: S) -> Result<S::Ok, S::Error> {
    use chrono::Timelike;
    if t.second() == 0 && t.nanosecond() == 0 {
        s.collect_str(&t.format("%H:%M"))
    } else {
        s.collect_str(&t.format("%H:%M:%S"))
    }
}

/// When a shift is on duty.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum ShiftSchedule {
    /// Every week on the given days, between local wall-clock times in the site's timezone.
    /// `end` before `start` means the shift runs past midnight into the next day.
    Weekly {
        #[schema(value_type = Vec<String>, example = json!(["Mon", "Tue"]))]
        days: Vec<Weekday>,
        #[schema(value_type = String, example = "08:00")]
        #[serde(serialize_with = "wall_clock")]
        start: NaiveTime,
        #[schema(value_type = String, example = "20:00")]
        #[serde(serialize_with = "wall_clock")]
        end: NaiveTime,
    },
    /// Once, between two instants (a holiday cover, a one-off night).
    Dated {
        start: DateTime<Utc>,
        end: DateTime<Utc>,
    },
}

/// One responder on duty for one site, per the schedule.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Shift {
    #[serde(with = "id_serde")]
    #[schema(value_type = String)]
    pub id: ShiftId,
    #[serde(with = "id_serde")]
    #[schema(value_type = String)]
    pub site_id: SiteId,
    #[serde(with = "id_serde")]
    #[schema(value_type = String)]
    pub responder_id: ResponderId,
    pub schedule: ShiftSchedule,
    /// The roster role this shift holds (`on_duty_caregiver`, `nurse_lead`,
    /// `district_duty_operator`, …: the names escalation tiers use). Absent: derived from the
    /// responder's role, see [`default_roster_role`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<String>, example = "on_duty_caregiver")]
    pub role: Option<RoleName>,
}

/// Prefix of district-wide roster roles: a shift holding one covers every site its responder
/// covers, not only the shift's own site.
pub const DISTRICT_ROLE_PREFIX: &str = "district_";

/// The roster role of a shift that names none, from its responder's role: a caregiver is the
/// `on_duty_caregiver`, a nurse the `nurse_lead`; the others hold a role named after their
/// kind (`neighbourhood_worker`, `volunteer`, `family`), which a policy may name too.
pub fn default_roster_role(role: ResponderRole) -> RoleName {
    let name = match role {
        ResponderRole::Caregiver => "on_duty_caregiver",
        ResponderRole::Nurse => "nurse_lead",
        ResponderRole::NeighbourhoodWorker => "neighbourhood_worker",
        ResponderRole::Volunteer => "volunteer",
        ResponderRole::Family => "family",
    };
    RoleName::new(name).expect("the built-in role names are valid")
}

impl Shift {
    pub fn validate(&self) -> Result<(), FieldError> {
        match &self.schedule {
            ShiftSchedule::Weekly { days, start, end } => {
                if days.is_empty() {
                    return Err(FieldError::new(
                        "schedule.days",
                        "must name at least one day",
                    ));
                }
                if start == end {
                    return Err(FieldError::new(
                        "schedule.end",
                        "must differ from start (a 24 h shift is 00:00 to 23:59:59)",
                    ));
                }
            }
            ShiftSchedule::Dated { start, end } => {
                if end <= start {
                    return Err(FieldError::new("schedule.end", "must be after start"));
                }
            }
        }
        Ok(())
    }
}

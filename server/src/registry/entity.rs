//! How each registry type maps onto a stored record, its sites and its references.

use serde::de::DeserializeOwned;
use serde::Serialize;

use super::model::{Device, FieldError, Gateway, Resident, Responder, Shift, Site};
use super::policy::EscalationPolicy;
use super::store::{EntityKind, Record, StoreError};

/// A reference from one entity to another, to be checked before writing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ref {
    /// The field holding the reference, for the error.
    pub field: String,
    pub kind: EntityKind,
    pub id: String,
    /// The referenced entity must belong to this site.
    pub must_belong_to: Option<String>,
}

/// A registry type.
pub trait Entity: Serialize + DeserializeOwned + Clone + Send + Sync + 'static {
    const KIND: EntityKind;
    /// Whether an update may change the entity's sites (only a responder's coverage may).
    const SITE_MAY_CHANGE: bool;
    fn id_str(&self) -> &str;
    /// The sites the entity belongs to.
    fn sites(&self) -> Vec<String>;
    /// The field that names the entity's site(s), for errors.
    fn site_field() -> &'static str;
    fn validate(&self) -> Result<(), FieldError>;
    fn refs(&self) -> Vec<Ref>;
    fn resident_id(&self) -> Option<String> {
        None
    }
    fn responder_id(&self) -> Option<String> {
        None
    }

    fn record(&self) -> Result<Record, StoreError> {
        Ok(Record {
            kind: Self::KIND,
            id: self.id_str().to_owned(),
            sites: self.sites(),
            resident_id: self.resident_id(),
            responder_id: self.responder_id(),
            doc: serde_json::to_value(self).map_err(|e| StoreError::Backend(e.to_string()))?,
        })
    }
}

/// The sites of a stored document of `kind`, read from its JSON.
pub fn doc_sites(kind: EntityKind, id: &str, doc: &serde_json::Value) -> Vec<String> {
    let text = |v: &serde_json::Value| v.as_str().map(str::to_owned);
    match kind {
        EntityKind::EscalationPolicy => Vec::new(),
        EntityKind::Site => vec![id.to_owned()],
        EntityKind::Responder => doc["site_ids"]
            .as_array()
            .map(|a| a.iter().filter_map(text).collect())
            .unwrap_or_default(),
        EntityKind::Resident | EntityKind::Device | EntityKind::Gateway | EntityKind::Shift => {
            text(&doc["site_id"]).into_iter().collect()
        }
    }
}

fn site_ref(site: &str) -> Ref {
    Ref {
        field: "site_id".into(),
        kind: EntityKind::Site,
        id: site.to_owned(),
        must_belong_to: None,
    }
}

impl Entity for Site {
    const KIND: EntityKind = EntityKind::Site;
    const SITE_MAY_CHANGE: bool = false;
    fn id_str(&self) -> &str {
        self.id.as_str()
    }
    fn sites(&self) -> Vec<String> {
        vec![self.id.to_string()]
    }
    fn site_field() -> &'static str {
        "id"
    }
    fn validate(&self) -> Result<(), FieldError> {
        Site::validate(self)
    }
    fn refs(&self) -> Vec<Ref> {
        self.escalation_policy
            .iter()
            .map(|p| Ref {
                field: "escalation_policy".into(),
                kind: EntityKind::EscalationPolicy,
                id: p.clone(),
                must_belong_to: None,
            })
            .collect()
    }
}

impl Entity for EscalationPolicy {
    const KIND: EntityKind = EntityKind::EscalationPolicy;
    /// A policy belongs to no site, so there is nothing to change.
    const SITE_MAY_CHANGE: bool = true;
    fn id_str(&self) -> &str {
        self.id.as_str()
    }
    /// None: policies are district-wide (readable by every role, written by admins).
    fn sites(&self) -> Vec<String> {
        Vec::new()
    }
    fn site_field() -> &'static str {
        "id"
    }
    fn validate(&self) -> Result<(), FieldError> {
        EscalationPolicy::validate(self)
    }
    fn refs(&self) -> Vec<Ref> {
        self.responder_targets()
            .into_iter()
            .map(|(field, r)| Ref {
                field,
                kind: EntityKind::Responder,
                id: r.to_string(),
                must_belong_to: None,
            })
            .collect()
    }
}

impl Entity for Resident {
    const KIND: EntityKind = EntityKind::Resident;
    const SITE_MAY_CHANGE: bool = false;
    fn id_str(&self) -> &str {
        self.id.as_str()
    }
    fn sites(&self) -> Vec<String> {
        vec![self.site_id.to_string()]
    }
    fn site_field() -> &'static str {
        "site_id"
    }
    fn validate(&self) -> Result<(), FieldError> {
        Resident::validate(self)
    }
    fn refs(&self) -> Vec<Ref> {
        vec![site_ref(self.site_id.as_str())]
    }
}

impl Entity for Device {
    const KIND: EntityKind = EntityKind::Device;
    const SITE_MAY_CHANGE: bool = false;
    fn id_str(&self) -> &str {
        self.id.as_str()
    }
    fn sites(&self) -> Vec<String> {
        vec![self.site_id.to_string()]
    }
    fn site_field() -> &'static str {
        "site_id"
    }
    fn validate(&self) -> Result<(), FieldError> {
        Device::validate(self)
    }
    fn refs(&self) -> Vec<Ref> {
        let mut refs = vec![site_ref(self.site_id.as_str())];
        if let Some(r) = &self.resident_id {
            refs.push(Ref {
                field: "resident_id".into(),
                kind: EntityKind::Resident,
                id: r.to_string(),
                must_belong_to: Some(self.site_id.to_string()),
            });
        }
        refs
    }
    fn resident_id(&self) -> Option<String> {
        self.resident_id.as_ref().map(ToString::to_string)
    }
}

impl Entity for Gateway {
    const KIND: EntityKind = EntityKind::Gateway;
    const SITE_MAY_CHANGE: bool = false;
    fn id_str(&self) -> &str {
        self.id.as_str()
    }
    fn sites(&self) -> Vec<String> {
        vec![self.site_id.to_string()]
    }
    fn site_field() -> &'static str {
        "site_id"
    }
    fn validate(&self) -> Result<(), FieldError> {
        Gateway::validate(self)
    }
    fn refs(&self) -> Vec<Ref> {
        vec![site_ref(self.site_id.as_str())]
    }
}

impl Entity for Responder {
    const KIND: EntityKind = EntityKind::Responder;
    const SITE_MAY_CHANGE: bool = true;
    fn id_str(&self) -> &str {
        self.id.as_str()
    }
    fn sites(&self) -> Vec<String> {
        self.site_ids.iter().map(ToString::to_string).collect()
    }
    fn site_field() -> &'static str {
        "site_ids"
    }
    fn validate(&self) -> Result<(), FieldError> {
        Responder::validate(self)
    }
    fn refs(&self) -> Vec<Ref> {
        self.site_ids
            .iter()
            .enumerate()
            .map(|(i, s)| Ref {
                field: format!("site_ids[{i}]"),
                ..site_ref(s.as_str())
            })
            .collect()
    }
}

impl Entity for Shift {
    const KIND: EntityKind = EntityKind::Shift;
    const SITE_MAY_CHANGE: bool = false;
    fn id_str(&self) -> &str {
        self.id.as_str()
    }
    fn sites(&self) -> Vec<String> {
        vec![self.site_id.to_string()]
    }
    fn site_field() -> &'static str {
        "site_id"
    }
    fn validate(&self) -> Result<(), FieldError> {
        Shift::validate(self)
    }
    fn refs(&self) -> Vec<Ref> {
        vec![
            site_ref(self.site_id.as_str()),
            Ref {
                field: "responder_id".into(),
                kind: EntityKind::Responder,
                id: self.responder_id.to_string(),
                must_belong_to: Some(self.site_id.to_string()),
            },
        ]
    }
    fn responder_id(&self) -> Option<String> {
        Some(self.responder_id.to_string())
    }
}

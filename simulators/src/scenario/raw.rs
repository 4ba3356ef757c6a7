//! The scenario file as written: plain serde structures, every reference still a string
//! with its position, checked and typed by `validate`.

use serde::Deserialize;
use toml::Spanned;

pub type Text = Spanned<String>;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawScenario {
    pub name: Text,
    #[serde(default)]
    pub description: String,
    #[serde(default)]
    pub seed: u64,
    pub start: Option<Spanned<toml::value::Datetime>>,
    pub duration: Text,
    pub acceleration: Option<Spanned<f64>>,
    pub time_offset: Option<Text>,
    #[serde(default, rename = "site")]
    pub sites: Vec<RawSite>,
    #[serde(default, rename = "resident")]
    pub residents: Vec<RawResident>,
    #[serde(default, rename = "device")]
    pub devices: Vec<RawDevice>,
    #[serde(default, rename = "incident")]
    pub incidents: Vec<RawIncident>,
    #[serde(default, rename = "expect")]
    pub expectations: Vec<RawExpectation>,
    #[serde(default, rename = "expect_not")]
    pub forbidden: Vec<RawForbidden>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawSite {
    pub id: Text,
    pub kind: Text,
    pub gateway: Text,
    pub utc_offset: Option<Text>,
    #[serde(default, rename = "floor")]
    pub floors: Vec<RawFloor>,
    /// Generate a typical care home instead of listing floors and sensors.
    pub care_home: Option<Spanned<RawCareHome>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawCareHome {
    pub floors: u32,
    pub rooms_per_wing: u32,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawFloor {
    pub level: i32,
    #[serde(default, rename = "zone")]
    pub zones: Vec<RawZone>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawZone {
    pub id: Text,
    pub rooms: Vec<Text>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawResident {
    pub id: Text,
    pub site: Text,
    pub room: Option<Text>,
    pub profile: Option<Text>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawDevice {
    pub id: Text,
    pub site: Text,
    pub kind: Text,
    pub resident: Option<Text>,
    pub sensor: Option<Text>,
    pub room: Option<Text>,
    pub battery_mv: Option<Spanned<u16>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawIncident {
    pub id: Option<Text>,
    pub kind: Text,
    pub at: Text,
    pub resident: Option<Text>,
    pub site: Option<Text>,
    pub device: Option<Text>,
    pub room: Option<Text>,
    pub cancel_after: Option<Text>,
    pub duration: Option<Text>,
    pub until: Option<Text>,
    pub flow_l_per_min: Option<Spanned<f64>>,
    pub second_after: Option<Text>,
    pub pressure_kpa: Option<Spanned<i32>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawExpectation {
    pub alert: Text,
    pub subject: Text,
    pub severity: Option<Text>,
    pub after: Option<Text>,
    pub within: Text,
    #[serde(default)]
    pub escalated: bool,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawForbidden {
    pub alert: Text,
    pub subject: Option<Text>,
    pub from: Option<Text>,
    pub until: Option<Text>,
}

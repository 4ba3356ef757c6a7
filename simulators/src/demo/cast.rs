//! The people and places of the demo district: what the registry holds beside the boards of
//! `scenarios/demo-district.toml` (names, addresses, emergency contacts, responders, rosters).
//! Invented people; phone numbers in a range no one owns.

/// The district's timezone (every site of the demo file is at +08:00).
pub const TIMEZONE: &str = "Asia/Shanghai";

/// A household: the site, its resident and who to call for them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Household {
    pub site: &'static str,
    pub site_name: &'static str,
    pub address: &'static str,
    pub resident: &'static str,
    pub resident_name: &'static str,
    /// How the narrative calls them: "Mrs. Wang".
    pub short_name: &'static str,
    pub conditions: &'static [&'static str],
    pub contact: Contact,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Contact {
    pub name: &'static str,
    pub phone: &'static str,
    pub relation: &'static str,
}

/// The care home and its resident of room 203.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CareHome {
    pub site: &'static str,
    pub site_name: &'static str,
    pub address: &'static str,
    pub resident: &'static str,
    pub resident_name: &'static str,
    pub contact: Contact,
}

/// What kind of help a responder brings (the registry's `ResponderRole` names).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ResponderKind {
    Caregiver,
    Nurse,
    NeighbourhoodWorker,
}

impl ResponderKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Caregiver => "caregiver",
            Self::Nurse => "nurse",
            Self::NeighbourhoodWorker => "neighbourhood_worker",
        }
    }
}

/// A responder, the sites they cover and the roster role their shifts hold (the names the
/// escalation policy's tiers use).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ResponderCard {
    pub id: &'static str,
    pub name: &'static str,
    pub kind: ResponderKind,
    pub phone: &'static str,
    pub sites: &'static [&'static str],
    pub roster_role: &'static str,
}

pub const HOUSEHOLDS: [Household; 4] = [
    Household {
        site: "home-01",
        site_name: "Wang household",
        address: "Flat 302, 18 Lane 45, Huaihai Road",
        resident: "res-01",
        resident_name: "Wang Fang",
        short_name: "Mrs. Wang",
        conditions: &["type 2 diabetes"],
        contact: Contact {
            name: "Wang Lei",
            phone: "+86 138 0000 0101",
            relation: "son",
        },
    },
    Household {
        site: "home-02",
        site_name: "Li household",
        address: "Flat 1101, 7 Changle Road",
        resident: "res-02",
        resident_name: "Li Wei",
        short_name: "Mr. Li",
        conditions: &["hip replacement (2024)"],
        contact: Contact {
            name: "Li Na",
            phone: "+86 138 0000 0202",
            relation: "daughter",
        },
    },
    Household {
        site: "home-03",
        site_name: "Zhang household",
        address: "Flat 5, 230 Julu Road",
        resident: "res-03",
        resident_name: "Zhang Min",
        short_name: "Mrs. Zhang",
        conditions: &[],
        contact: Contact {
            name: "Zhou Jie",
            phone: "+86 138 0000 0303",
            relation: "neighbour",
        },
    },
    Household {
        site: "home-04",
        site_name: "Chen household",
        address: "Flat 602, 15 Fumin Road",
        resident: "res-04",
        resident_name: "Chen Jun",
        short_name: "Mr. Chen",
        conditions: &["early dementia"],
        contact: Contact {
            name: "Chen Hao",
            phone: "+86 138 0000 0404",
            relation: "nephew",
        },
    },
];

pub const CARE_HOME: CareHome = CareHome {
    site: "care-01",
    site_name: "Sunrise Care Home",
    address: "88 Yan'an Road",
    resident: "res-c203",
    resident_name: "Zhao Lan",
    contact: Contact {
        name: "Zhao Ming",
        phone: "+86 138 0000 0203",
        relation: "son",
    },
};

const ALL_SITES: &[&str] = &["home-01", "home-02", "home-03", "home-04", "care-01"];
const HOMES: &[&str] = &["home-01", "home-02", "home-03", "home-04"];

/// Tier 0 is the on-duty caregiver, tier 1 the nurse lead, tier 2 the district duty operator
/// with the resident's emergency contacts: the roles of the telecare chain.
pub const RESPONDERS: [ResponderCard; 4] = [
    ResponderCard {
        id: "carer-liu",
        name: "Liu Yang",
        kind: ResponderKind::Caregiver,
        phone: "+86 139 0000 1001",
        sites: HOMES,
        roster_role: "on_duty_caregiver",
    },
    ResponderCard {
        id: "carer-sun",
        name: "Sun Li",
        kind: ResponderKind::Caregiver,
        phone: "+86 139 0000 1002",
        sites: &["care-01"],
        roster_role: "on_duty_caregiver",
    },
    ResponderCard {
        id: "nurse-huang",
        name: "Huang Mei",
        kind: ResponderKind::Nurse,
        phone: "+86 139 0000 1003",
        sites: ALL_SITES,
        roster_role: "nurse_lead",
    },
    ResponderCard {
        id: "duty-gao",
        name: "Gao Feng",
        kind: ResponderKind::NeighbourhoodWorker,
        phone: "+86 139 0000 1004",
        sites: ALL_SITES,
        roster_role: "district_duty_operator",
    },
];

/// The household of a resident id.
pub fn household(resident: &str) -> Option<&'static Household> {
    HOUSEHOLDS.iter().find(|h| h.resident == resident)
}

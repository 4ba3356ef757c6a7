//! Care facilities: floors, fire zones, rooms, and what their fire sensors read when all is
//! well.

use rand::Rng;
use vigil_protocol::{FireReport, SensorKind, SignalClass, ZoneId};

/// A care facility's layout.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Facility {
    pub floors: Vec<Floor>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Floor {
    pub level: i32,
    pub zones: Vec<Zone>,
}

/// A fire-detection zone: the unit in which a second detector confirms a fire.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Zone {
    pub id: ZoneId,
    pub rooms: Vec<String>,
}

impl Facility {
    /// The zone a room belongs to.
    pub fn zone_of_room(&self, room: &str) -> Option<&ZoneId> {
        self.zones()
            .find(|z| z.rooms.iter().any(|r| r == room))
            .map(|z| &z.id)
    }

    pub fn zones(&self) -> impl Iterator<Item = &Zone> {
        self.floors.iter().flat_map(|f| f.zones.iter())
    }

    pub fn rooms(&self) -> impl Iterator<Item = &str> {
        self.zones()
            .flat_map(|z| z.rooms.iter().map(String::as_str))
    }
}

/// A reading of a healthy sensor in a quiet building, in the kind's unit.
///
/// Smoke: a clean chamber reads 0–0.3 %/m (alarm thresholds are ≈ 2–4 %/m); heat: room
/// temperature 20–25 °C; gas: 0–10 ppm; residual current: 5–40 mA of normal leakage (the
/// hazard threshold is 300 mA); cable temperature 25–40 °C (hazard above 70 °C); hydrant
/// pressure 280–350 kPa; contacts, call points and valves in their normal state.
pub fn background_value<R: Rng + ?Sized>(kind: SensorKind, rng: &mut R) -> i32 {
    match kind {
        SensorKind::Smoke => rng.random_range(0..=30),
        SensorKind::Heat => rng.random_range(200..=250),
        SensorKind::Gas => rng.random_range(0..=10),
        SensorKind::ResidualCurrent => rng.random_range(5..=40),
        SensorKind::CableTemperature => rng.random_range(250..=400),
        SensorKind::HydrantPressure => rng.random_range(280..=350),
        SensorKind::DoorContact | SensorKind::ManualCallPoint | SensorKind::SprinklerValve => 0,
    }
}

/// A periodic report of a healthy sensor.
pub fn background_report<R: Rng + ?Sized>(
    kind: SensorKind,
    zone: &ZoneId,
    rng: &mut R,
) -> FireReport {
    FireReport {
        sensor: kind,
        value: background_value(kind, rng),
        unit: kind.unit(),
        signal: SignalClass::Normal,
        zone: zone.clone(),
        self_test: false,
    }
}

/// What a smoke detector in a smoky room reads (≈ 5 %/m, above every alarm threshold).
pub const SMOKE_ALARM_VALUE: i32 = 500;

/// What a faulty sensor reports: its last value is meaningless, the signal says trouble.
pub fn fault_report(kind: SensorKind, zone: &ZoneId) -> FireReport {
    FireReport {
        sensor: kind,
        value: 0,
        unit: kind.unit(),
        signal: SignalClass::Trouble,
        zone: zone.clone(),
        self_test: false,
    }
}

/// Where a fire sensor sits in a generated facility.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SensorPlacement {
    /// A name unique in the facility, usable as a device-id suffix (e.g. `smoke-203`).
    pub name: String,
    pub sensor: SensorKind,
    pub room: String,
    pub zone: ZoneId,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LayoutError {
    #[error(
        "a care home needs 1 to 20 floors and 1 to 30 rooms a wing, \
         found {floors} and {rooms_per_wing}"
    )]
    OutOfRange { floors: u32, rooms_per_wing: u32 },
    #[error("generated zone id {0:?} is not a valid identifier")]
    InvalidZone(String),
}

/// A typical care home for demos and load runs: each floor has an east and a west wing,
/// each wing one fire zone with `rooms_per_wing` residents' rooms and a corridor. Every room
/// and corridor has a smoke detector (so any zone can confirm a fire with a second
/// detector), each floor a heat detector in its kitchenette (in the east zone) and a manual
/// call point per zone; the ground floor's east zone holds the hydrant pressure sensor and
/// the sprinkler valve. Rooms are numbered `<floor><nn>` (`203`), east wing first.
pub fn care_home(
    floors: u32,
    rooms_per_wing: u32,
) -> Result<(Facility, Vec<SensorPlacement>), LayoutError> {
    if !(1..=20).contains(&floors) || !(1..=30).contains(&rooms_per_wing) {
        return Err(LayoutError::OutOfRange {
            floors,
            rooms_per_wing,
        });
    }
    let mut out_floors = Vec::new();
    let mut sensors = Vec::new();
    for level in 1..=floors {
        let mut zones = Vec::new();
        for (w, wing) in ["east", "west"].into_iter().enumerate() {
            let zone_name = format!("f{level}-{wing}");
            let zone = ZoneId::new(&zone_name).map_err(|_| LayoutError::InvalidZone(zone_name))?;
            let first = w as u32 * rooms_per_wing + 1;
            let mut rooms: Vec<String> = (first..first + rooms_per_wing)
                .map(|n| format!("{level}{n:02}"))
                .collect();
            rooms.push(format!("corridor-{level}{}", &wing[..1]));
            if w == 0 {
                rooms.push(format!("kitchenette-{level}"));
            }
            let mut place = |name: String, sensor: SensorKind, room: &str| {
                sensors.push(SensorPlacement {
                    name,
                    sensor,
                    room: room.to_owned(),
                    zone: zone.clone(),
                })
            };
            for room in rooms.iter().filter(|r| !r.starts_with("kitchenette")) {
                place(format!("smoke-{room}"), SensorKind::Smoke, room);
            }
            let corridor = format!("corridor-{level}{}", &wing[..1]);
            place(
                format!("mcp-{level}{}", &wing[..1]),
                SensorKind::ManualCallPoint,
                &corridor,
            );
            if w == 0 {
                let kitchenette = format!("kitchenette-{level}");
                place(format!("heat-{level}"), SensorKind::Heat, &kitchenette);
                if level == 1 {
                    place("hydrant-1".into(), SensorKind::HydrantPressure, &corridor);
                    place(
                        "sprinkler-valve-1".into(),
                        SensorKind::SprinklerValve,
                        &corridor,
                    );
                }
            }
            zones.push(Zone { id: zone, rooms });
        }
        out_floors.push(Floor {
            level: level as i32,
            zones,
        });
    }
    Ok((Facility { floors: out_floors }, sensors))
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;
    use rand_chacha::ChaCha8Rng;

    #[test]
    fn rooms_belong_to_their_zone() {
        let f = Facility {
            floors: vec![Floor {
                level: 2,
                zones: vec![Zone {
                    id: ZoneId::new("f2-east").unwrap(),
                    rooms: vec!["201".into(), "203".into()],
                }],
            }],
        };
        assert_eq!(f.zone_of_room("203").map(|z| z.as_str()), Some("f2-east"));
        assert_eq!(f.zone_of_room("301"), None);
        assert_eq!(f.rooms().count(), 2);
    }

    #[test]
    fn background_readings_stay_below_every_alarm_threshold() {
        let mut rng = ChaCha8Rng::seed_from_u64(1);
        let zone = ZoneId::new("z").unwrap();
        for kind in SensorKind::ALL {
            for _ in 0..200 {
                let r = background_report(kind, &zone, &mut rng);
                assert_eq!(r.signal, SignalClass::Normal);
                assert_eq!(r.unit, kind.unit());
                match kind {
                    SensorKind::Smoke => assert!(r.value < SMOKE_ALARM_VALUE / 2),
                    SensorKind::ResidualCurrent => assert!(r.value < 300),
                    SensorKind::CableTemperature => assert!(r.value < 700),
                    SensorKind::HydrantPressure => assert!(r.value >= 250),
                    SensorKind::Heat
                    | SensorKind::Gas
                    | SensorKind::DoorContact
                    | SensorKind::ManualCallPoint
                    | SensorKind::SprinklerValve => {}
                }
            }
        }
    }
}

#[cfg(test)]
mod layout_tests {
    use super::*;
    use std::collections::HashSet;

    #[test]
    fn a_generated_care_home_can_confirm_a_fire_in_every_zone() {
        let (facility, sensors) = care_home(3, 6).unwrap();
        assert_eq!(facility.zones().count(), 6);
        assert_eq!(
            facility.zone_of_room("203").map(|z| z.as_str()),
            Some("f2-east")
        );
        assert_eq!(
            facility.zone_of_room("207").map(|z| z.as_str()),
            Some("f2-west")
        );
        for zone in facility.zones() {
            let smoke = sensors
                .iter()
                .filter(|s| s.zone == zone.id && s.sensor == SensorKind::Smoke)
                .count();
            assert!(smoke >= 2, "zone {} has {smoke} smoke detector(s)", zone.id);
        }
        for s in &sensors {
            assert_eq!(facility.zone_of_room(&s.room), Some(&s.zone), "{}", s.name);
            assert!(vigil_protocol::ids::is_valid_id(&format!(
                "care-01-{}",
                s.name
            )));
        }
        let names: HashSet<_> = sensors.iter().map(|s| &s.name).collect();
        assert_eq!(names.len(), sensors.len(), "sensor names are unique");
        assert_eq!(
            sensors
                .iter()
                .filter(|s| s.sensor == SensorKind::HydrantPressure)
                .count(),
            1
        );
    }

    #[test]
    fn an_absurd_care_home_is_refused() {
        assert!(care_home(0, 5).is_err());
        assert!(care_home(3, 31).is_err());
    }
}

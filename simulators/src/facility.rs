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

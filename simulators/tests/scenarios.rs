//! Every example scenario parses and validates, and bad files fail with the line and field.

use std::path::PathBuf;
use std::time::Duration;

use vigil_sim::scenario::{Scenario, ScenarioError};

fn examples() -> Vec<PathBuf> {
    let dir = PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/scenarios"));
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .expect("simulators/scenarios exists")
        .map(|e| e.expect("readable entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "toml"))
        .collect();
    files.sort();
    files
}

#[test]
fn every_example_scenario_parses_and_validates() {
    let files = examples();
    assert!(
        files.len() >= 6,
        "expected the six examples, found {files:?}"
    );
    for f in files {
        let s = Scenario::from_file(&f).unwrap_or_else(|e| panic!("{e}"));
        assert!(
            !s.expectations.is_empty() || !s.forbidden.is_empty(),
            "{}",
            f.display()
        );
        for e in &s.expectations {
            assert!(
                e.deadline <= s.duration,
                "{}: deadline after the end",
                f.display()
            );
        }
    }
}

#[test]
fn the_care_home_example_confirms_smoke_with_a_second_detector_of_the_same_zone() {
    let s = Scenario::from_file(&examples_dir().join("care-home-smoke.toml")).unwrap();
    let truth = s.incidents[0].ground_truth();
    let kinds: Vec<_> = truth
        .alerts
        .iter()
        .map(|a| (a.kind, a.subject.as_str(), a.from))
        .collect();
    assert_eq!(
        kinds,
        vec![
            (
                "fire_alarm",
                "zone:care-01/f2-east",
                Duration::from_secs(300)
            ),
            (
                "fire_confirmed",
                "zone:care-01/f2-east",
                Duration::from_secs(390)
            ),
        ]
    );
}

fn examples_dir() -> PathBuf {
    PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/scenarios"))
}

const GOOD: &str = r#"
name = "t"
duration = "2h"

[[site]]
id = "home-1"
kind = "household"
gateway = "gw-1"

[[resident]]
id = "res-1"
site = "home-1"

[[device]]
id = "pendant-1"
site = "home-1"
kind = "pendant"
resident = "res-1"

[[incident]]
id = "c"
kind = "call"
at = "10m"
resident = "res-1"

[[expect]]
alert = "call"
subject = "resident:res-1"
after = "c"
within = "5s"
"#;

fn invalid(text: &str) -> (usize, &'static str, String) {
    match Scenario::parse(text, "t.toml") {
        Err(ScenarioError::Invalid {
            line,
            field,
            message,
            ..
        }) => (line, field, message),
        other => panic!("expected a validation error, got {other:?}"),
    }
}

#[test]
fn a_minimal_scenario_is_accepted() {
    let s = Scenario::parse(GOOD, "t.toml").unwrap();
    assert_eq!(s.expectations[0].not_before, Duration::from_secs(600));
    assert_eq!(s.expectations[0].deadline, Duration::from_secs(605));
    assert_eq!(s.acceleration, 1.0);
}

#[test]
fn an_unknown_alert_kind_is_rejected_with_its_line() {
    let (line, field, message) = invalid(&GOOD.replace("alert = \"call\"", "alert = \"calll\""));
    assert_eq!((line, field), (27, "expect.alert"));
    assert!(message.contains("calll"), "{message}");
}

#[test]
fn a_reference_to_an_undefined_resident_names_the_line_and_field() {
    let (line, field, _) = invalid(&GOOD.replace(
        "resident = \"res-1\"\n\n[[expect]]",
        "resident = \"res-9\"\n\n[[expect]]",
    ));
    assert_eq!((line, field), (24, "incident.resident"));
}

#[test]
fn a_malformed_duration_is_rejected() {
    let (line, field, message) = invalid(&GOOD.replace("at = \"10m\"", "at = \"ten minutes\""));
    assert_eq!((line, field), (23, "incident.at"));
    assert!(message.contains("duration"), "{message}");
}

#[test]
fn an_incident_after_the_end_is_rejected() {
    let (_, field, _) = invalid(&GOOD.replace("at = \"10m\"", "at = \"3h\""));
    assert_eq!(field, "incident.at");
}

#[test]
fn a_call_needs_a_pendant() {
    let text = GOOD.replace("kind = \"pendant\"", "kind = \"meter\"");
    let (_, field, message) = invalid(&text);
    assert_eq!(field, "incident.resident");
    assert!(message.contains("pendant"), "{message}");
}

#[test]
fn an_unknown_field_is_a_syntax_error_naming_it() {
    let err = Scenario::parse(
        &GOOD.replace("duration = \"2h\"", "duration = \"2h\"\nspeed = 3"),
        "t.toml",
    )
    .unwrap_err();
    match err {
        ScenarioError::Syntax { message, .. } => assert!(
            message.contains("speed") && message.contains("line 4"),
            "{message}"
        ),
        other => panic!("{other:?}"),
    }
}

#[test]
fn a_subject_of_the_wrong_shape_is_rejected() {
    let (_, field, message) =
        invalid(&GOOD.replace("subject = \"resident:res-1\"", "subject = \"res-1\""));
    assert_eq!(field, "expect.subject");
    assert!(message.contains("resident:ID"), "{message}");
}

#[test]
fn a_fire_sensor_in_a_room_outside_every_zone_is_rejected() {
    let text = r#"
name = "f"
duration = "1h"

[[site]]
id = "care"
kind = "facility"
gateway = "gw"
[[site.floor]]
level = 1
[[site.floor.zone]]
id = "z1"
rooms = ["101"]

[[device]]
id = "smoke-1"
site = "care"
kind = "fire"
sensor = "smoke"
room = "102"
"#;
    let (line, field, _) = invalid(text);
    assert_eq!((line, field), (20, "device.room"));
}

#[test]
fn a_household_cannot_have_fire_zones() {
    let text = GOOD.replace(
        "gateway = \"gw-1\"",
        "gateway = \"gw-1\"\n[[site.floor]]\nlevel = 1",
    );
    let (_, field, _) = invalid(&text);
    assert_eq!(field, "site.floor");
}

#[test]
fn a_start_without_an_offset_is_rejected() {
    let (_, field, _) = invalid(&GOOD.replace(
        "duration = \"2h\"",
        "duration = \"2h\"\nstart = 2026-03-02T07:00:00",
    ));
    assert_eq!(field, "start");
}

#[test]
fn a_duration_over_a_year_is_rejected() {
    let (line, field, message) =
        invalid(&GOOD.replace("duration = \"2h\"", "duration = \"400days\""));
    assert_eq!((line, field), (3, "duration"));
    assert!(message.contains("longer than a year"), "{message}");
}

#[test]
fn an_absurd_acceleration_is_rejected() {
    let (_, field, _) =
        invalid(&GOOD.replace("duration = \"2h\"", "duration = \"2h\"\nacceleration = 1e9"));
    assert_eq!(field, "acceleration");
}

const GENERATED_CARE_HOME: &str = r#"
name = "generated"
duration = "1h"

[[site]]
id = "care-02"
kind = "facility"
gateway = "gw-care-02"
care_home = { floors = 3, rooms_per_wing = 6 }

[[resident]]
id = "res-203"
site = "care-02"
room = "203"

[[incident]]
id = "smoke"
kind = "smoke"
at = "5m"
site = "care-02"
room = "203"
second_after = "1m"

[[expect]]
alert = "fire_confirmed"
subject = "zone:care-02/f2-east"
after = "smoke"
within = "2m"
"#;

#[test]
fn a_generated_care_home_brings_its_zones_and_sensors() {
    let s = Scenario::parse(GENERATED_CARE_HOME, "gen.toml").unwrap();
    assert_eq!(s.sites[0].facility.zones().count(), 6);
    // 3 floors × 2 wings × (6 rooms + corridor) smoke, 6 call points, 3 heat, hydrant, valve.
    assert_eq!(s.devices.len(), 3 * 2 * 7 + 6 + 3 + 2);
    let truth = s.incidents[0].ground_truth();
    assert_eq!(truth.alerts[1].subject, "zone:care-02/f2-east");
}

#[test]
fn a_household_cannot_be_a_generated_care_home() {
    let text = GENERATED_CARE_HOME.replace("kind = \"facility\"", "kind = \"household\"");
    let (line, field, _) = invalid(&text);
    assert_eq!((line, field), (9, "site.care_home"));
}

#[test]
fn an_oversized_generated_care_home_is_rejected() {
    let text = GENERATED_CARE_HOME.replace("rooms_per_wing = 6", "rooms_per_wing = 60");
    let (_, field, message) = invalid(&text);
    assert_eq!(field, "site.care_home");
    assert!(message.contains("1 to 30 rooms"), "{message}");
}

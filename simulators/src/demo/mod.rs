//! `vigil demo`'s sans-IO core: the demo district (`scenarios/demo-district.toml`, embedded),
//! the people the registry holds for it ([`cast`]), its firmware-in-the-loop boards
//! ([`boards`]) and the looping incident script ([`script`]) — what the boards' hardware
//! senses, the scripted duty operator's answers and a narrative line per step. The driver
//! (`src/demo_cmd.rs`) owns the sockets, the rack and the clock.

pub mod cast;
pub mod script;

pub use script::{
    AlertRef, DemoScript, OperatorAction, OperatorStep, ScriptError, Step, StepKind,
    INSTALLED_CONFIG,
};

use std::sync::Arc;

use crate::board::{boards_for, SimBoard};
use crate::scenario::{Scenario, ScenarioError, WallTime};
use crate::timeline::{Cadence, Timeline};

/// The demo district's scenario file, as shipped.
pub const DISTRICT_FILE: &str = include_str!("../../scenarios/demo-district.toml");

/// The demo district, parsed and validated.
pub fn district() -> Result<Scenario, ScenarioError> {
    Scenario::parse(DISTRICT_FILE, "simulators/scenarios/demo-district.toml")
}

/// The district's boards, running `vigil-firmware`, built as `vigil sim run` builds a
/// scenario's ([`boards_for`]) but with no incident laid out in advance: the script acts
/// each cycle's incidents out on their hardware as it goes. Each board logs in with
/// `login_secret`, is installed with [`INSTALLED_CONFIG`] and counts its boot ids on from
/// `last_boot_id` (a kept data directory's system has seen the boot ids of earlier runs).
pub fn boards(
    district: &Scenario,
    start: WallTime,
    login_secret: &str,
    last_boot_id: u32,
) -> Vec<SimBoard> {
    let mut quiet = district.clone();
    quiet.incidents.clear();
    let quiet = Arc::new(quiet);
    let timeline = Timeline::build(&quiet, start, Cadence::default());
    boards_for(&quiet, &timeline, |_| Some(login_secret.to_owned()))
        .into_iter()
        .map(|mut b| {
            b.set_installed_config(INSTALLED_CONFIG);
            b.set_last_boot_id(last_boot_id);
            b
        })
        .collect()
}

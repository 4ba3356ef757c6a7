//! `vigil demo`'s sans-IO core: the demo district (`scenarios/demo-district.toml`, embedded),
//! the people the registry holds for it ([`cast`]), and the looping incident script
//! ([`script`]) — the timeline's board reports plus the scripted duty operator's answers and a
//! narrative line per step. The driver (`src/demo_cmd.rs`) owns the sockets and the clock.

pub mod cast;
pub mod script;

pub use script::{AlertRef, DemoScript, OperatorAction, OperatorStep, ScriptError, Step, StepKind};

use crate::scenario::{Scenario, ScenarioError};

/// The demo district's scenario file, as shipped.
pub const DISTRICT_FILE: &str = include_str!("../../scenarios/demo-district.toml");

/// The demo district, parsed and validated.
pub fn district() -> Result<Scenario, ScenarioError> {
    Scenario::parse(DISTRICT_FILE, "simulators/scenarios/demo-district.toml")
}

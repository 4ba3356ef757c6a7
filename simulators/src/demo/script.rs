//! The demo's script as a sans-IO core: every cycle acts out the district file's incidents,
//! an electrical hazard and a low battery on the boards' simulated hardware — a button
//! pressed, a fall on a pendant's accelerometer, smoke in a detector's chamber, a leaking
//! current, a cell running down — as [`RackCommand`]s for the firmware-in-the-loop boards
//! ([`crate::board`]), which make every frame themselves; plus the duty operator's answers
//! and a narrative line per step. The driver calls [`DemoScript::poll_step`] with the script
//! clock and sleeps until [`DemoScript::next_deadline`]; times are script time from the
//! demo's start, the clock the boards run on (the driver may run it faster than the wall
//! clock).

use std::collections::VecDeque;
use std::time::Duration;

use vigil_protocol::{ConfigUpdate, DeviceId};

use super::cast::{self, CARE_HOME};
use crate::board::fire::SensorCondition;
use crate::board::pendant::Press;
use crate::board::rack::RackCommand;
use crate::board::BoardInput;
use crate::incident::{IncidentKind, FALL_CANCEL_WINDOW};
use crate::scenario::{DeviceKind, Scenario, WallTime};
use crate::timeline::{Cadence, Timeline};

/// Acknowledgement deadlines of the demo's escalation policy, tier by tier (script time):
/// short, so that a newcomer sees an unanswered call move up within a minute.
pub const TIER_DEADLINES: [Duration; 3] = [
    Duration::from_secs(20),
    Duration::from_secs(40),
    Duration::from_secs(60),
];

/// What the demo's boards are installed with, applied at every boot the way the firmware
/// applies a configuration downlink: a meter report and a heartbeat every minute (a fire
/// node's self-test too), so the API shows fresh readings at once. The firmware's own
/// defaults are 15 min, 1 h and 1 h.
pub const INSTALLED_CONFIG: ConfigUpdate = ConfigUpdate {
    report_interval_s: Some(60),
    heartbeat_interval_s: Some(60),
    fall_cancel_window_s: None,
    pulses_per_litre: None,
    leak_flow_minutes: None,
};

/// Residual current the plant room's monitor senses in the script (limit 300 mA).
pub const HAZARD_RESIDUAL_MA: i32 = 450;
/// A pendant's cell in the script's low-battery step (threshold 3.5 V), and the fresh one
/// fitted later.
pub const LOW_BATTERY_MV: u16 = 3_400;
pub const FRESH_BATTERY_MV: u16 = 3_700;
/// How long the fallen resident lies on the floor before the paramedics help him up.
pub const FALL_LIES_FOR: Duration = Duration::from_secs(70);

/// The alert an operator step is about: its kind and subject as the API names them
/// (`call`, `resident:res-01`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AlertRef {
    pub kind: &'static str,
    pub subject: String,
}

/// What the scripted duty operator does, through the API's lifecycle endpoints.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OperatorAction {
    Acknowledge,
    /// `disposition`: the API's name (`real_emergency`, `false_alarm`, …).
    Resolve {
        disposition: &'static str,
    },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OperatorStep {
    pub alert: AlertRef,
    pub action: OperatorAction,
    pub note: String,
}

/// What the driver must do now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StepKind {
    /// Something for the boards' rack: a board's hardware senses something, a board loses
    /// or gets power.
    Board(RackCommand),
    /// Act as the duty operator.
    Operator(OperatorStep),
    /// Print one line of narrative.
    Say(String),
}

/// A step and when it is due, in script time from the demo's start.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Step {
    pub at: Duration,
    /// Which pass through the script (0 first).
    pub cycle: u32,
    pub kind: StepKind,
}

/// Why the district file cannot be scripted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ScriptError {
    #[error("the demo district has no incident {0:?}, which the script follows")]
    MissingIncident(&'static str),
    #[error("incident {id:?} of the demo district is a {found}, expected a {expected}")]
    WrongIncident {
        id: &'static str,
        expected: &'static str,
        found: &'static str,
    },
    #[error("the demo district has no device {0:?}, which the script uses")]
    MissingDevice(&'static str),
    #[error("the demo district's incidents must all lie inside its {0:?} cycle")]
    CycleTooShort(Duration),
    #[error("the demo district's cycle must last whole minutes (a meter's water is given per minute), found {0:?}")]
    CycleNotWholeMinutes(Duration),
}

/// Steps of one cycle, relative to the cycle's start.
#[derive(Debug, Clone, PartialEq, Eq)]
enum CueKind {
    Step(StepKind),
    /// A narrative line about escalation: true only when the server applies the demo's
    /// policy ([`TIER_DEADLINES`]), so it is said only then.
    Escalation(String),
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct Cue {
    at: Duration,
    kind: CueKind,
}

/// The looping script.
#[derive(Debug, Clone)]
pub struct DemoScript {
    district: Scenario,
    start: WallTime,
    cycle_len: Duration,
    /// The cues of one cycle, relative to its start, in time order.
    plan: Vec<Cue>,
    cycle: u32,
    cues: VecDeque<Cue>,
    narrate_escalation: bool,
}

impl DemoScript {
    /// Plans the script over `district` (the demo file); `start` is the wall time of the
    /// demo's start (the behaviour model's time of day, for the households' water).
    pub fn new(district: Scenario, start: WallTime) -> Result<Self, ScriptError> {
        let plan = plan(&district)?;
        let cycle_len = district.duration;
        if district.incidents.iter().any(|i| i.at >= cycle_len) {
            return Err(ScriptError::CycleTooShort(cycle_len));
        }
        if cycle_len.is_zero() || cycle_len.as_millis() % 60_000 != 0 {
            return Err(ScriptError::CycleNotWholeMinutes(cycle_len));
        }
        let mut script = Self {
            cues: VecDeque::new(),
            district,
            start,
            cycle_len,
            plan,
            cycle: 0,
            narrate_escalation: true,
        };
        script.cues = script.cycle_cues();
        Ok(script)
    }

    /// Whether the narrative announces escalations: only when the server applies the demo's
    /// policy with [`TIER_DEADLINES`] (a server without it keeps its own, longer deadlines).
    pub fn narrate_escalation(&mut self, on: bool) {
        self.narrate_escalation = on;
    }

    /// How long one pass through the script lasts.
    pub fn cycle_len(&self) -> Duration {
        self.cycle_len
    }

    pub fn district(&self) -> &Scenario {
        &self.district
    }

    fn cycle_start(&self) -> Duration {
        self.cycle_len * self.cycle
    }

    /// The next step due at or before `now` (script time from the demo's start).
    #[must_use]
    pub fn poll_step(&mut self, now: Duration) -> Option<Step> {
        loop {
            let base = self.cycle_start();
            let Some(cue_at) = self.cues.front().map(|c| base + c.at) else {
                if now < base + self.cycle_len {
                    return None;
                }
                self.next_cycle();
                continue;
            };
            if cue_at > now {
                return None;
            }
            let cue = self.cues.pop_front()?;
            match cue.kind {
                CueKind::Escalation(text) => {
                    if self.narrate_escalation {
                        return Some(Step {
                            at: cue_at,
                            cycle: self.cycle,
                            kind: StepKind::Say(text),
                        });
                    }
                }
                CueKind::Step(kind) => {
                    return Some(Step {
                        at: cue_at,
                        cycle: self.cycle,
                        kind,
                    })
                }
            }
        }
    }

    /// When the next step is due (script time); the script never ends.
    pub fn next_deadline(&self) -> Duration {
        let base = self.cycle_start();
        self.cues
            .front()
            .map_or(base + self.cycle_len, |c| base + c.at)
    }

    fn next_cycle(&mut self) {
        self.cycle += 1;
        self.cues = self.cycle_cues();
    }

    /// This cycle's cues: the households' water for its minutes (from the behaviour model at
    /// this cycle's time of day), then the plan.
    fn cycle_cues(&self) -> VecDeque<Cue> {
        let offset = self.cycle_start().as_secs() as i64;
        let start = WallTime {
            unix_s: self.start.unix_s + offset,
            utc_offset_min: self.start.utc_offset_min,
        };
        let timeline = Timeline::build(&self.district, start, Cadence::default());
        let minutes = (self.cycle_len.as_secs() / 60) as usize;
        let from_minute = minutes * self.cycle as usize;
        let mut cues: VecDeque<Cue> = self
            .district
            .devices
            .iter()
            .filter(|d| matches!(d.kind, DeviceKind::Meter { .. }))
            .map(|d| {
                let series = timeline.water_per_minute(&d.id).unwrap_or(&[]);
                let ml_per_minute = (0..minutes)
                    .map(|m| series.get(m).copied().unwrap_or(0))
                    .collect();
                sense(
                    Duration::ZERO,
                    &d.id,
                    BoardInput::Water {
                        from_minute,
                        ml_per_minute,
                    },
                )
            })
            .collect();
        cues.extend(self.plan.iter().cloned());
        cues
    }
}

fn incident_at(
    district: &Scenario,
    id: &'static str,
    expected: &'static str,
) -> Result<(Duration, IncidentKind), ScriptError> {
    let i = district
        .incidents
        .iter()
        .find(|i| i.id == id)
        .ok_or(ScriptError::MissingIncident(id))?;
    if i.kind.name() != expected {
        return Err(ScriptError::WrongIncident {
            id,
            expected,
            found: i.kind.name(),
        });
    }
    Ok((i.at, i.kind.clone()))
}

fn device(
    district: &Scenario,
    id: &'static str,
    is_kind: impl Fn(&DeviceKind) -> bool,
) -> Result<DeviceId, ScriptError> {
    district
        .devices
        .iter()
        .find(|d| d.id.as_str() == id && is_kind(&d.kind))
        .map(|d| d.id.clone())
        .ok_or(ScriptError::MissingDevice(id))
}

fn say(at: Duration, text: String) -> Cue {
    Cue {
        at,
        kind: CueKind::Step(StepKind::Say(text)),
    }
}

fn operator(
    at: Duration,
    kind: &'static str,
    subject: String,
    action: OperatorAction,
    note: &str,
) -> Cue {
    Cue {
        at,
        kind: CueKind::Step(StepKind::Operator(OperatorStep {
            alert: AlertRef { kind, subject },
            action,
            note: note.to_owned(),
        })),
    }
}

fn rack(at: Duration, command: RackCommand) -> Cue {
    Cue {
        at,
        kind: CueKind::Step(StepKind::Board(command)),
    }
}

/// `device`'s hardware senses `input` from `at` on.
fn sense(at: Duration, device: &DeviceId, input: BoardInput) -> Cue {
    rack(at, RackCommand::Sense(device.clone(), input))
}

/// One cycle's cues, from the district's incidents `call`, `smoke` and `fall` and its devices
/// `care01-rcm-1` and `pendant-03`.
fn plan(d: &Scenario) -> Result<Vec<Cue>, ScriptError> {
    let s = Duration::from_secs;
    let mut cues = Vec::new();

    // A call, unanswered past the first tier's deadline, then answered and resolved.
    let (call_at, call) = incident_at(d, "call", "call")?;
    let IncidentKind::Call { resident, pendant } = call else {
        return Err(ScriptError::MissingIncident("call"));
    };
    let who = cast::household(&resident).map_or(resident.as_str(), |h| h.short_name);
    let subject = format!("resident:{resident}");
    let [tier0, tier1, _] = TIER_DEADLINES;
    cues.push(sense(call_at, &pendant, BoardInput::Press(Press::Short)));
    cues.push(say(
        call_at,
        format!(
            "household 1: {who} pressed her call button: a critical `call` alert; the on-duty \
             caregiver is told — watch GET /api/v1/alerts?kind=call"
        ),
    ));
    cues.push(Cue {
        at: call_at + tier0,
        kind: CueKind::Escalation(format!(
            "nobody acknowledged {who}'s call within {} s: the policy tells tier 1, the nurse lead",
            tier0.as_secs()
        )),
    });
    let ack = call_at + tier0 + (tier1 / 4);
    cues.push(operator(
        ack,
        "call",
        subject.clone(),
        OperatorAction::Acknowledge,
        &format!("Called {who}: she feels dizzy. Carer Liu Yang on the way."),
    ));
    cues.push(say(
        ack,
        format!(
            "the duty operator acknowledges {who}'s call: escalation stops, her pendant is told help is coming"
        ),
    ));
    cues.push(operator(
        ack + s(15),
        "call",
        subject,
        OperatorAction::Resolve {
            disposition: "real_emergency",
        },
        "Carer on scene: low blood sugar, she is fine after a snack.",
    ));
    cues.push(say(
        ack + s(15),
        format!("the carer is with {who}: the operator resolves the call (real emergency)"),
    ));

    // A pendant's cell runs down; its next heartbeat (a minute apart) carries it. A fresh
    // cell is fitted near the end of the cycle (further down). The pendant boots with it and
    // heartbeats a minute later, early in the next cycle: the cell must run down after that,
    // or the server, never told of the fresh cell, would see no new low battery.
    let zhang_pendant = device(d, "pendant-03", |k| matches!(k, DeviceKind::Pendant { .. }))?;
    let zhang = cast::HOUSEHOLDS[2].short_name;
    let battery_at = call_at + s(60);
    cues.push(sense(
        battery_at,
        &zhang_pendant,
        BoardInput::Battery(LOW_BATTERY_MV),
    ));
    cues.push(say(
        battery_at,
        format!(
            "household 3: {zhang}'s pendant cell has run down to {:.1} V: its next heartbeat \
             (one a minute) raises a `low_battery` warning",
            f64::from(LOW_BATTERY_MV) / 1000.0
        ),
    ));

    // Smoke in a care-home room, confirmed by a second detector, then cleared.
    let (smoke_at, smoke) = incident_at(d, "smoke", "smoke")?;
    let IncidentKind::Smoke {
        site,
        zone,
        room,
        first,
        second,
    } = smoke
    else {
        return Err(ScriptError::MissingIncident("smoke"));
    };
    let zone_subject = format!("zone:{site}/{zone}");
    cues.push(sense(
        smoke_at,
        &first,
        BoardInput::Sense(SensorCondition::Smoke),
    ));
    cues.push(say(
        smoke_at,
        format!(
            "{}: smoke in room {room} reaches {first}: `fire_alarm` for zone {zone}",
            CARE_HOME.site_name
        ),
    ));
    let mut detectors = vec![first];
    let mut clear_at = smoke_at + s(60);
    if let Some((other, after)) = second {
        cues.push(sense(
            smoke_at + after,
            &other,
            BoardInput::Sense(SensorCondition::Smoke),
        ));
        cues.push(say(
            smoke_at + after,
            format!(
                "the smoke reaches a second detector of zone {zone} ({other}): `fire_confirmed`, critical"
            ),
        ));
        cues.push(operator(
            smoke_at + after + s(15),
            "fire_confirmed",
            zone_subject.clone(),
            OperatorAction::Acknowledge,
            "Night nurse checking floor 2; fire brigade informed.",
        ));
        cues.push(say(
            smoke_at + after + s(15),
            "the duty operator acknowledges the confirmed fire".into(),
        ));
        clear_at = smoke_at + after + s(40);
        detectors.push(other);
    }
    for det in &detectors {
        cues.push(sense(
            clear_at,
            det,
            BoardInput::Sense(SensorCondition::Clear),
        ));
    }
    cues.push(say(
        clear_at,
        format!("the smoke in room {room} has cleared (burnt toast): the detectors report normal"),
    ));
    for kind in ["fire_confirmed", "fire_alarm"] {
        cues.push(operator(
            clear_at + s(10),
            kind,
            zone_subject.clone(),
            OperatorAction::Resolve {
                disposition: "false_alarm",
            },
            "Burnt toast in the floor 2 kitchenette; no fire.",
        ));
    }
    cues.push(say(
        clear_at + s(10),
        "the operator resolves the fire alerts as a false alarm".into(),
    ));

    // A fall: the pendant's fall detector feels it, waits for its cancel window, then
    // reports.
    let (fall_at, fall) = incident_at(d, "fall", "fall")?;
    let IncidentKind::Fall {
        resident, pendant, ..
    } = fall
    else {
        return Err(ScriptError::MissingIncident("fall"));
    };
    let who = cast::household(&resident).map_or(resident.as_str(), |h| h.short_name);
    let subject = format!("resident:{resident}");
    cues.push(sense(
        fall_at,
        &pendant,
        BoardInput::Fall {
            lies_for: Some(FALL_LIES_FOR),
        },
    ));
    cues.push(say(
        fall_at,
        format!(
            "household 2: {who} falls in the bathroom; his pendant feels the fall and waits {} s \
             for him to cancel",
            FALL_CANCEL_WINDOW.as_secs()
        ),
    ));
    let reported = fall_at + FALL_CANCEL_WINDOW;
    cues.push(say(
        reported,
        format!("{who} did not cancel: the pendant reports the fall, a critical `fall` alert"),
    ));
    cues.push(operator(
        reported + s(15),
        "fall",
        subject.clone(),
        OperatorAction::Acknowledge,
        &format!("{who} answers on the pendant: he cannot get up. Ambulance called."),
    ));
    cues.push(say(
        reported + s(15),
        format!("the duty operator acknowledges {who}'s fall and sends help"),
    ));
    cues.push(operator(
        reported + s(35),
        "fall",
        subject,
        OperatorAction::Resolve {
            disposition: "real_emergency",
        },
        "Paramedics on scene; no fracture, he stays home with his daughter.",
    ));
    cues.push(say(
        reported + s(35),
        format!("paramedics are with {who}: the operator resolves the fall"),
    ));

    // An electrical hazard in the care home's plant room, then rectified.
    let rcm = device(d, "care01-rcm-1", |k| matches!(k, DeviceKind::Fire { .. }))?;
    let hazard_at = reported + s(40);
    let subject = format!("device:{rcm}");
    cues.push(sense(
        hazard_at,
        &rcm,
        BoardInput::Sense(SensorCondition::Reads(HAZARD_RESIDUAL_MA)),
    ));
    cues.push(say(
        hazard_at,
        format!(
            "{}: residual current {HAZARD_RESIDUAL_MA} mA in the plant room (limit 300 mA): an \
             `electrical_hazard` with a rectification deadline",
            CARE_HOME.site_name
        ),
    ));
    cues.push(operator(
        hazard_at + s(10),
        "electrical_hazard",
        subject.clone(),
        OperatorAction::Acknowledge,
        "Electrician booked.",
    ));
    let fixed_at = hazard_at + s(35);
    cues.push(sense(
        fixed_at,
        &rcm,
        BoardInput::Sense(SensorCondition::Clear),
    ));
    cues.push(operator(
        fixed_at,
        "electrical_hazard",
        subject,
        OperatorAction::Resolve {
            disposition: "real_emergency",
        },
        "Faulty kettle lead replaced; residual current back to normal.",
    ));
    cues.push(say(
        fixed_at,
        "the electrician replaced a faulty kettle lead: the operator resolves the hazard".into(),
    ));

    // The fresh cell: out with the old one (the pendant loses power), in with the new (it
    // boots again and heartbeats a minute later).
    let replaced_at = fixed_at + s(5);
    cues.push(rack(
        replaced_at,
        RackCommand::PowerOff(zhang_pendant.clone()),
    ));
    cues.push(sense(
        replaced_at,
        &zhang_pendant,
        BoardInput::Battery(FRESH_BATTERY_MV),
    ));
    cues.push(rack(
        replaced_at,
        RackCommand::PowerOn(zhang_pendant.clone()),
    ));
    cues.push(operator(
        replaced_at,
        "low_battery",
        format!("device:{zhang_pendant}"),
        OperatorAction::Resolve {
            disposition: "condition_cleared",
        },
        "Volunteer fitted a fresh cell.",
    ));
    cues.push(say(
        replaced_at,
        format!(
            "a volunteer fitted a fresh cell in {zhang}'s pendant (it restarts): the warning is \
             resolved"
        ),
    ));

    // Stable: cues due together keep the order above (the old cell out before the new one in).
    cues.sort_by_key(|c| c.at);
    if let Some(last) = cues.last() {
        if last.at >= d.duration {
            return Err(ScriptError::CycleTooShort(d.duration));
        }
    }
    Ok(cues)
}

#[cfg(test)]
#[path = "script_tests.rs"]
mod tests;

//! The demo's script as a sans-IO core: every cycle plays the district file's timeline (the
//! boards' routine reports and the incidents' frames), plus the duty operator's answers, a few
//! extra reports, and a narrative line per step. The driver calls
//! [`DemoScript::poll_step`] with the script clock and sleeps until
//! [`DemoScript::next_deadline`]; times are script time from the demo's start (the driver may
//! run the script faster than the wall clock).

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::time::Duration;

use vigil_protocol::{
    DeviceId, FireReport, FirmwareVersion, Heartbeat, SensorKind, SignalClass, UplinkBody, ZoneId,
};

use super::cast::{self, CARE_HOME};
use crate::incident::{IncidentKind, FALL_CANCEL_WINDOW};
use crate::scenario::{DeviceKind, Scenario, WallTime};
use crate::timeline::{Action, Cadence, Timeline};

/// Acknowledgement deadlines of the demo's escalation policy, tier by tier (script time):
/// short, so that a newcomer sees an unanswered call move up within a minute.
pub const TIER_DEADLINES: [Duration; 3] = [
    Duration::from_secs(20),
    Duration::from_secs(40),
    Duration::from_secs(60),
];

/// How often the demo's boards report: meters every minute, heartbeats and fire-sensor
/// values every minute, so the API shows fresh readings at once.
pub const DEMO_CADENCE: Cadence = Cadence {
    meter_report: Duration::from_secs(60),
    heartbeat: Duration::from_secs(60),
};

/// Residual current the plant room's monitor reports in the script (limit 300 mA).
pub const HAZARD_RESIDUAL_MA: i32 = 450;
/// A pendant's battery in the script's low-battery step (threshold 3.5 V), and after the
/// battery is replaced.
pub const LOW_BATTERY_MV: u16 = 3_400;
pub const FRESH_BATTERY_MV: u16 = 3_700;

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
// Board actions carry a meter reading inline, as the timeline's do.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq)]
pub enum StepKind {
    /// A board action: publish a frame, go silent, …
    Board(Action),
    /// Act as the duty operator.
    Operator(OperatorStep),
    /// Print one line of narrative.
    Say(String),
}

/// A step and when it is due, in script time from the demo's start.
#[derive(Debug, Clone, PartialEq)]
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
}

/// Steps of one cycle that are not in the timeline, relative to the cycle's start.
// Most cues are steps; boxing them would allocate for nearly every cue to shrink the rest.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq)]
enum CueKind {
    Step(StepKind),
    /// From now on the device's routine "normal" fire reports are withheld: a detector in
    /// alarm does not report normal until the script says the smoke has cleared.
    Hold(DeviceId),
    Release(DeviceId),
    /// A narrative line about escalation: true only when the server applies the demo's
    /// policy ([`TIER_DEADLINES`]), so it is said only then.
    Escalation(String),
}

#[derive(Debug, Clone, PartialEq)]
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
    timeline: Timeline,
    cues: VecDeque<Cue>,
    held: BTreeSet<DeviceId>,
    narrate_escalation: bool,
    /// Per meter, the cumulative litres of the earlier cycles (each cycle's timeline counts
    /// from zero; a real meter's register never goes back).
    meter_base_ml: BTreeMap<DeviceId, u64>,
    meter_last_ml: BTreeMap<DeviceId, u64>,
}

impl DemoScript {
    /// Plans the script over `district` (the demo file); `start` is the wall time of the
    /// demo's start (the behaviour model's time of day).
    pub fn new(district: Scenario, start: WallTime) -> Result<Self, ScriptError> {
        let plan = plan(&district)?;
        let cycle_len = district.duration;
        if district.incidents.iter().any(|i| i.at >= cycle_len) {
            return Err(ScriptError::CycleTooShort(cycle_len));
        }
        let timeline = Timeline::build(&district, start, DEMO_CADENCE);
        Ok(Self {
            cues: plan.iter().cloned().collect(),
            district,
            start,
            cycle_len,
            plan,
            cycle: 0,
            timeline,
            held: BTreeSet::new(),
            narrate_escalation: true,
            meter_base_ml: BTreeMap::new(),
            meter_last_ml: BTreeMap::new(),
        })
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
            let cue_at = self.cues.front().map(|c| base + c.at);
            let board_at = self.timeline.next_deadline().map(|t| base + t);
            // Cues first at equal times: a hold must precede the report it withholds.
            let take_cue = match (cue_at, board_at) {
                (Some(c), Some(b)) => c <= b,
                (Some(_), None) => true,
                (None, Some(_)) => false,
                (None, None) => {
                    let next = base + self.cycle_len;
                    if now < next {
                        return None;
                    }
                    self.next_cycle();
                    continue;
                }
            };
            if take_cue {
                let at = cue_at.filter(|&t| t <= now)?;
                let cue = self.cues.pop_front()?;
                match cue.kind {
                    CueKind::Hold(d) => {
                        self.held.insert(d);
                    }
                    CueKind::Release(d) => {
                        self.held.remove(&d);
                    }
                    CueKind::Escalation(text) => {
                        if self.narrate_escalation {
                            return Some(Step {
                                at,
                                cycle: self.cycle,
                                kind: StepKind::Say(text),
                            });
                        }
                    }
                    CueKind::Step(kind) => {
                        return Some(Step {
                            at,
                            cycle: self.cycle,
                            kind,
                        })
                    }
                }
            } else {
                let at = board_at.filter(|&t| t <= now)?;
                let mut scheduled = self.timeline.poll_action(now.saturating_sub(base))?;
                if self.withheld(&scheduled.action) {
                    continue;
                }
                if let Action::Uplink {
                    device,
                    body: UplinkBody::Meter(m),
                } = &mut scheduled.action
                {
                    m.total_ml += self.meter_base_ml.get(device).copied().unwrap_or(0);
                    self.meter_last_ml.insert(device.clone(), m.total_ml);
                }
                return Some(Step {
                    at,
                    cycle: self.cycle,
                    kind: StepKind::Board(scheduled.action),
                });
            }
        }
    }

    /// When the next step is due (script time); the script never ends.
    pub fn next_deadline(&self) -> Duration {
        let base = self.cycle_start();
        [
            self.cues.front().map(|c| base + c.at),
            self.timeline.next_deadline().map(|t| base + t),
        ]
        .into_iter()
        .flatten()
        .min()
        .unwrap_or(base + self.cycle_len)
    }

    fn withheld(&self, action: &Action) -> bool {
        match action {
            Action::Uplink {
                device,
                body: UplinkBody::Fire(report),
            } => report.signal == SignalClass::Normal && self.held.contains(device),
            Action::Uplink { .. }
            | Action::BoardSilent { .. }
            | Action::BoardBack { .. }
            | Action::GatewayDown { .. }
            | Action::GatewayUp { .. }
            | Action::UplinkCut { .. }
            | Action::UplinkRestored { .. }
            | Action::SetAway { .. }
            | Action::ClearAway { .. } => false,
        }
    }

    fn next_cycle(&mut self) {
        self.cycle += 1;
        let offset = self.cycle_start().as_secs() as i64;
        let start = WallTime {
            unix_s: self.start.unix_s + offset,
            utc_offset_min: self.start.utc_offset_min,
        };
        self.timeline = Timeline::build(&self.district, start, DEMO_CADENCE);
        self.cues = self.plan.iter().cloned().collect();
        self.held.clear();
        self.meter_base_ml = self.meter_last_ml.clone();
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

fn fire_zone(district: &Scenario, id: &'static str) -> Result<(DeviceId, ZoneId), ScriptError> {
    district
        .devices
        .iter()
        .find(|d| d.id.as_str() == id)
        .and_then(|d| match &d.kind {
            DeviceKind::Fire { zone, .. } => Some((d.id.clone(), zone.clone())),
            DeviceKind::Meter { .. } | DeviceKind::Pendant { .. } => None,
        })
        .ok_or(ScriptError::MissingDevice(id))
}

fn device(district: &Scenario, id: &'static str) -> Result<DeviceId, ScriptError> {
    district
        .devices
        .iter()
        .find(|d| d.id.as_str() == id)
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

fn report(at: Duration, device: DeviceId, body: UplinkBody) -> Cue {
    Cue {
        at,
        kind: CueKind::Step(StepKind::Board(Action::Uplink { device, body })),
    }
}

fn fire(sensor: SensorKind, value: i32, signal: SignalClass, zone: &ZoneId) -> UplinkBody {
    UplinkBody::Fire(FireReport {
        sensor,
        value,
        unit: sensor.unit(),
        signal,
        zone: zone.clone(),
        self_test: false,
    })
}

fn heartbeat(battery_mv: u16) -> Option<UplinkBody> {
    Some(UplinkBody::Heartbeat(Heartbeat {
        battery_mv,
        rssi_dbm: -61,
        firmware: FirmwareVersion::new("sim-1.0.0").ok()?,
    }))
}

/// One cycle's cues, from the district's incidents `call`, `smoke` and `fall`.
fn plan(d: &Scenario) -> Result<Vec<Cue>, ScriptError> {
    let s = Duration::from_secs;
    let mut cues = Vec::new();

    // A call, unanswered past the first tier's deadline, then answered and resolved.
    let (call_at, call) = incident_at(d, "call", "call")?;
    let IncidentKind::Call { resident, .. } = call else {
        return Err(ScriptError::MissingIncident("call"));
    };
    let who = cast::household(&resident).map_or(resident.as_str(), |h| h.short_name);
    let subject = format!("resident:{resident}");
    let [tier0, tier1, _] = TIER_DEADLINES;
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
    cues.push(Cue {
        at: smoke_at,
        kind: CueKind::Hold(first.clone()),
    });
    cues.push(say(
        smoke_at,
        format!(
            "{}: smoke in room {room}: `fire_alarm` for zone {zone}",
            CARE_HOME.site_name
        ),
    ));
    let mut detectors = vec![first];
    let mut clear_at = smoke_at + s(60);
    if let Some((other, after)) = second {
        cues.push(Cue {
            at: smoke_at + after,
            kind: CueKind::Hold(other.clone()),
        });
        cues.push(say(
            smoke_at + after,
            format!(
                "a second detector of zone {zone} ({other}) is in alarm: `fire_confirmed`, critical"
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
        cues.push(report(
            clear_at,
            det.clone(),
            fire(SensorKind::Smoke, 12, SignalClass::Normal, &zone),
        ));
        cues.push(Cue {
            at: clear_at,
            kind: CueKind::Release(det.clone()),
        });
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

    // A fall: the pendant waits for its cancel window, then reports.
    let (fall_at, fall) = incident_at(d, "fall", "fall")?;
    let IncidentKind::Fall { resident, .. } = fall else {
        return Err(ScriptError::MissingIncident("fall"));
    };
    let who = cast::household(&resident).map_or(resident.as_str(), |h| h.short_name);
    let subject = format!("resident:{resident}");
    cues.push(say(
        fall_at,
        format!(
            "household 2: {who} falls in the bathroom; his pendant waits {} s for him to cancel",
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
    let (rcm, rcm_zone) = fire_zone(d, "care01-rcm-1")?;
    let hazard_at = reported + s(40);
    let subject = format!("device:{rcm}");
    cues.push(Cue {
        at: hazard_at,
        kind: CueKind::Hold(rcm.clone()),
    });
    cues.push(report(
        hazard_at,
        rcm.clone(),
        fire(
            SensorKind::ResidualCurrent,
            HAZARD_RESIDUAL_MA,
            SignalClass::Normal,
            &rcm_zone,
        ),
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

    // A pendant's battery runs low and is replaced.
    let pendant = device(d, "pendant-03")?;
    let zhang = cast::HOUSEHOLDS[2].short_name;
    let battery_at = hazard_at + s(15);
    if let Some(hb) = heartbeat(LOW_BATTERY_MV) {
        cues.push(report(battery_at, pendant.clone(), hb));
    }
    cues.push(say(
        battery_at,
        format!(
            "household 3: {zhang}'s pendant battery is at {:.1} V: a `low_battery` warning",
            f64::from(LOW_BATTERY_MV) / 1000.0
        ),
    ));
    let fixed_at = battery_at + s(20);
    cues.push(report(
        fixed_at,
        rcm.clone(),
        fire(
            SensorKind::ResidualCurrent,
            18,
            SignalClass::Normal,
            &rcm_zone,
        ),
    ));
    cues.push(Cue {
        at: fixed_at,
        kind: CueKind::Release(rcm),
    });
    cues.push(operator(
        fixed_at,
        "electrical_hazard",
        subject,
        OperatorAction::Resolve {
            disposition: "real_emergency",
        },
        "Faulty kettle lead replaced; residual current back to 18 mA.",
    ));
    cues.push(say(
        fixed_at,
        "the electrician replaced a faulty kettle lead: the operator resolves the hazard".into(),
    ));
    if let Some(hb) = heartbeat(FRESH_BATTERY_MV) {
        cues.push(report(fixed_at + s(5), pendant.clone(), hb));
    }
    cues.push(operator(
        fixed_at + s(5),
        "low_battery",
        format!("device:{pendant}"),
        OperatorAction::Resolve {
            disposition: "condition_cleared",
        },
        "Volunteer replaced the battery.",
    ));
    cues.push(say(
        fixed_at + s(5),
        format!("a volunteer replaced {zhang}'s pendant battery: the warning is resolved"),
    ));

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

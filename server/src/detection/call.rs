//! The call button and the pendant's fall sensor, for one resident (or one pendant without a
//! resident).
//!
//! - A press raises a **critical** `call` alert at once; a fall raises a **critical** `fall`.
//! - A call and a fall less than the merge window apart (default 5 min) are one incident and so one
//!   alert: **the first signal's kind wins** (its alert may already be acknowledged and
//!   escalating, so it is never swapped for another), and the second is added to it as a
//!   repeat with `also_call` / `also_fall` in its details, so the console shows "fall + call".
//! - A cancel (`ButtonKind::Cancel`, or a long press within 30 s of the latest call or fall)
//!   is recorded on the alert it cancels as a rule clearing with reason `resident_cancelled`; the alert stays visible until an operator closes it
//!   (calls and falls never auto-close).
//! - A fall the wearer cancelled on the pendant before it was reported raises nothing.

use std::borrow::Cow;
use std::collections::VecDeque;
use std::time::Duration;

use vigil_protocol::{ButtonEvent, ButtonKind, FallEvent};

use crate::alerts::{duration_secs, AlertKind, Severity, Subject, Timestamp};
use crate::detection::action::{
    check_range, details, secs, AlertKey, ClearReason, ConfigError, DetectorAction, FrameContext,
    FrameRef,
};

/// Frames remembered for duplicate detection and for matching cancels. Calls and falls are
/// rare; eight covers any burst a pendant sends while keeping a resident's state small.
const REMEMBERED_FRAMES: usize = 8;
/// A frame this much older than its arrival is marked as reported late on the alert.
const LATE_AFTER: Duration = Duration::from_secs(60);

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(try_from = "CallConfigFields", into = "CallConfigFields")]
pub struct CallConfig {
    /// A call and a fall this close together are one incident.
    #[serde(with = "duration_secs")]
    pub merge_window: Duration,
    /// A long press this soon after the latest call or fall cancels it, even when the
    /// pendant reported it as a plain long press (e.g. it rebooted in between).
    #[serde(with = "duration_secs")]
    pub cancel_window: Duration,
}

#[derive(serde::Serialize, serde::Deserialize)]
struct CallConfigFields {
    #[serde(with = "duration_secs")]
    merge_window: Duration,
    #[serde(with = "duration_secs")]
    cancel_window: Duration,
}

impl TryFrom<CallConfigFields> for CallConfig {
    type Error = ConfigError;
    fn try_from(f: CallConfigFields) -> Result<Self, ConfigError> {
        let c = Self {
            merge_window: f.merge_window,
            cancel_window: f.cancel_window,
        };
        c.validate()?;
        Ok(c)
    }
}

impl From<CallConfig> for CallConfigFields {
    fn from(c: CallConfig) -> Self {
        Self {
            merge_window: c.merge_window,
            cancel_window: c.cancel_window,
        }
    }
}

impl CallConfig {
    pub fn validate(&self) -> Result<(), ConfigError> {
        check_range("merge_window", "s", secs(self.merge_window), (10, 3600))?;
        // The pendant's own fall cancel window has the same bounds (protocol ConfigUpdate).
        check_range("cancel_window", "s", secs(self.cancel_window), (5, 120))
    }
}

impl Default for CallConfig {
    fn default() -> Self {
        Self {
            merge_window: Duration::from_secs(5 * 60),
            cancel_window: Duration::from_secs(30),
        }
    }
}

/// One incident: the first call or fall and whatever merged into it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
struct Incident {
    key: AlertKey,
    first_occurred_at: Timestamp,
    /// The latest call or fall merged into it.
    last_occurred_at: Timestamp,
    /// When the merge window closes on the server's clock.
    expires_at: Timestamp,
    calls: u32,
    falls: u32,
}

/// A call or fall frame seen recently, and the kind of alert it went to (the subject is
/// this detector's).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
struct SeenFrame {
    frame: FrameRef,
    alert: Option<AlertKind>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct CallCounters {
    pub duplicates: u64,
    pub cancels_without_alert: u64,
    pub falls_cancelled_on_pendant: u64,
    pub long_presses: u64,
}

/// The detector's whole state, serialisable so it survives a restart.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct CallState {
    incident: Option<Incident>,
    recent: VecDeque<SeenFrame>,
    pub counters: CallCounters,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Signal {
    Call,
    Fall,
}

#[derive(Debug)]
pub struct CallDetector {
    config: CallConfig,
    state: CallState,
    actions: VecDeque<DetectorAction>,
}

impl CallDetector {
    pub fn new(config: CallConfig) -> Self {
        Self::restore(config, CallState::default())
    }

    pub fn restore(config: CallConfig, state: CallState) -> Self {
        Self {
            config,
            state,
            actions: VecDeque::new(),
        }
    }

    pub fn state(&self) -> &CallState {
        &self.state
    }

    pub fn poll_action(&mut self) -> Option<DetectorAction> {
        let action = self.actions.pop_front();
        if action.is_none() {
            // Outputs are rare; a drained queue should not keep its buffer for every subject.
            self.actions = VecDeque::new();
        }
        action
    }

    pub fn next_deadline(&self) -> Option<Timestamp> {
        self.state.incident.as_ref().map(|i| i.expires_at)
    }

    pub fn handle_timeout(&mut self, now: Timestamp) {
        if self
            .state
            .incident
            .as_ref()
            .is_some_and(|i| now >= i.expires_at)
        {
            self.state.incident = None;
        }
    }

    pub fn handle_button(&mut self, ctx: &FrameContext, event: &ButtonEvent, now: Timestamp) {
        self.handle_timeout(now);
        let ctx = &*not_in_future(ctx, now);
        if self.is_duplicate(&ctx.frame) {
            return;
        }
        match event.kind {
            ButtonKind::Press => self.signal(ctx, Signal::Call, now),
            ButtonKind::Cancel => self.cancel(ctx, event.cancels_seq, now),
            ButtonKind::LongPress => {
                let window = self.config.cancel_window;
                let cancels = self.state.incident.as_ref().is_some_and(|i| {
                    i.key.subject == subject_of(ctx)
                        && ctx.occurred_at >= i.last_occurred_at
                        && ctx.occurred_at.since(i.last_occurred_at) <= window
                });
                if cancels {
                    self.cancel(ctx, None, now);
                } else {
                    // "I'm fine" with nothing pending: nothing to raise or clear.
                    self.state.counters.long_presses += 1;
                    self.remember(ctx.frame.clone(), None);
                }
            }
        }
    }

    pub fn handle_fall(&mut self, ctx: &FrameContext, event: &FallEvent, now: Timestamp) {
        self.handle_timeout(now);
        let ctx = &*not_in_future(ctx, now);
        if self.is_duplicate(&ctx.frame) {
            return;
        }
        if event.cancelled {
            self.state.counters.falls_cancelled_on_pendant += 1;
            self.remember(ctx.frame.clone(), None);
            return;
        }
        let mut d = details([
            ("free_fall_ms", event.free_fall_ms.to_string()),
            ("peak_mg", event.peak_mg.to_string()),
            ("stillness_ms", event.stillness_ms.to_string()),
            (
                "orientation_change_deg",
                event.orientation_change_deg.to_string(),
            ),
        ]);
        self.signal_with(ctx, Signal::Fall, now, &mut d);
    }

    fn signal(&mut self, ctx: &FrameContext, signal: Signal, now: Timestamp) {
        self.signal_with(ctx, signal, now, &mut details([]));
    }

    fn signal_with(
        &mut self,
        ctx: &FrameContext,
        signal: Signal,
        now: Timestamp,
        extra: &mut crate::detection::action::Details,
    ) {
        let subject = subject_of(ctx);
        let window = self.config.merge_window;
        let merges = self.state.incident.as_ref().is_some_and(|i| {
            i.key.subject == subject
                && ctx.occurred_at.since(i.first_occurred_at) < window
                && i.first_occurred_at.since(ctx.occurred_at) < window
        });
        if !merges {
            let kind = match signal {
                Signal::Call => AlertKind::Call,
                Signal::Fall => AlertKind::Fall,
            };
            self.state.incident = Some(Incident {
                key: AlertKey::new(subject, kind),
                first_occurred_at: ctx.occurred_at,
                last_occurred_at: ctx.occurred_at,
                expires_at: now + window,
                calls: 0,
                falls: 0,
            });
        }
        let Some(incident) = self.state.incident.as_mut() else {
            return;
        };
        incident.last_occurred_at = incident.last_occurred_at.max(ctx.occurred_at);
        let mut d = std::mem::take(extra);
        match signal {
            Signal::Call => {
                incident.calls += 1;
                d.insert("presses".into(), incident.calls.to_string());
                if incident.key.kind != AlertKind::Call {
                    d.insert("also_call".into(), ctx.occurred_at.to_string());
                }
            }
            Signal::Fall => {
                incident.falls += 1;
                d.insert("falls".into(), incident.falls.to_string());
                if incident.key.kind != AlertKind::Fall {
                    d.insert("also_fall".into(), ctx.occurred_at.to_string());
                }
            }
        }
        d.insert("device".into(), ctx.frame.device.to_string());
        d.insert("occurred_at".into(), ctx.occurred_at.to_string());
        if now.since(ctx.occurred_at) >= LATE_AFTER {
            d.insert(
                "reported_late_s".into(),
                now.since(ctx.occurred_at).as_secs().to_string(),
            );
        }
        let key = incident.key.clone();
        let kind = key.kind;
        self.actions.push_back(DetectorAction::Raise {
            site: ctx.site.clone(),
            key,
            severity: Severity::Critical,
            at: ctx.occurred_at,
            origin: Some(ctx.frame.clone()),
            details: d,
        });
        self.remember(ctx.frame.clone(), Some(kind));
    }

    fn cancel(&mut self, ctx: &FrameContext, cancels_seq: Option<u32>, now: Timestamp) {
        let target = match cancels_seq {
            Some(seq) => self
                .state
                .recent
                .iter()
                .rev()
                .find(|s| s.frame.seq == seq && s.frame.boot_id == ctx.frame.boot_id)
                .and_then(|s| s.alert),
            // A cancel that names no frame cancels the incident in progress.
            None => self.state.incident.as_ref().map(|i| i.key.kind),
        };
        self.remember(ctx.frame.clone(), None);
        let Some(kind) = target else {
            self.state.counters.cancels_without_alert += 1;
            return;
        };
        self.actions.push_back(DetectorAction::Clear {
            site: ctx.site.clone(),
            key: AlertKey::new(subject_of(ctx), kind),
            at: ctx.occurred_at,
            reason: ClearReason::ResidentCancelled,
            details: details([
                ("cancelled_at", ctx.occurred_at.to_string()),
                ("cancel_received_at", now.to_string()),
            ]),
        });
    }

    fn is_duplicate(&mut self, frame: &FrameRef) -> bool {
        let dup = self.state.recent.iter().any(|s| &s.frame == frame);
        if dup {
            self.state.counters.duplicates += 1;
        }
        dup
    }

    fn remember(&mut self, frame: FrameRef, alert: Option<AlertKind>) {
        if self.state.recent.len() == REMEMBERED_FRAMES {
            self.state.recent.pop_front();
        }
        self.state.recent.push_back(SeenFrame { frame, alert });
    }
}

/// A pendant whose clock runs ahead must not date an event in the future: it would stop
/// later events from merging with it.
fn not_in_future(ctx: &FrameContext, now: Timestamp) -> Cow<'_, FrameContext> {
    if ctx.occurred_at > now {
        Cow::Owned(FrameContext {
            occurred_at: now,
            ..ctx.clone()
        })
    } else {
        Cow::Borrowed(ctx)
    }
}

fn subject_of(ctx: &FrameContext) -> Subject {
    match &ctx.resident {
        Some(r) => Subject::Resident(r.clone()),
        None => Subject::Device(ctx.frame.device.clone()),
    }
}

#[cfg(test)]
#[path = "call_tests.rs"]
mod tests;

//! The expectation checker: fed the alerts the system raised, it says which of a
//! scenario's expectations passed, failed, or are still open.
//!
//! Sans-IO: the runner that polls the server's API feeds [`ObservedAlert`]s with times on
//! the scenario's clock and asks for the verdicts at `now`.

use std::fmt;
use std::time::Duration;

use crate::scenario::{Expectation, Forbidden, Scenario};

/// An alert as the server's API shows it, timed on the scenario's clock.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObservedAlert {
    /// `AlertKind::as_str()`.
    pub kind: String,
    /// `resident:ID`, `device:ID`, `zone:SITE/ZONE`, `gateway:ID` or `site:ID`.
    pub subject: String,
    pub severity: String,
    pub raised_at: Duration,
    /// When it was escalated to a next tier, if ever.
    pub escalations: Vec<Duration>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    Pass,
    Fail(String),
    /// Not decided yet: the deadline or window has not passed.
    Open,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Row {
    pub line: usize,
    pub rule: String,
    pub verdict: Verdict,
}

/// Checks one scenario's expectations against what was observed.
#[derive(Debug, Clone)]
pub struct ExpectationChecker {
    expectations: Vec<Expectation>,
    forbidden: Vec<Forbidden>,
    observed: Vec<ObservedAlert>,
}

impl ExpectationChecker {
    pub fn new(scenario: &Scenario) -> Self {
        Self {
            expectations: scenario.expectations.clone(),
            forbidden: scenario.forbidden.clone(),
            observed: Vec::new(),
        }
    }

    /// The run stops at `end` (scenario time), before the scenario's own end: windows of
    /// alerts that must not appear are judged up to `end` only (the table shows the
    /// shortened window); expectations due later fail as undecided.
    pub fn end_at(&mut self, end: Duration) {
        for f in &mut self.forbidden {
            f.until = f.until.min(end);
        }
    }

    /// Records an alert, or updates it when the same (kind, subject, raised_at) was seen.
    pub fn handle_alert(&mut self, alert: ObservedAlert) {
        match self.observed.iter_mut().find(|a| {
            a.kind == alert.kind && a.subject == alert.subject && a.raised_at == alert.raised_at
        }) {
            Some(seen) => *seen = alert,
            None => self.observed.push(alert),
        }
    }

    /// The next time a verdict can change without a new alert.
    pub fn next_deadline(&self, now: Duration) -> Option<Duration> {
        self.expectations
            .iter()
            .map(|e| e.deadline)
            .chain(self.forbidden.iter().map(|f| f.until))
            .filter(|&t| t > now)
            .min()
    }

    /// Every expectation's verdict at `now`.
    pub fn verdicts(&self, now: Duration) -> Vec<Row> {
        let mut rows: Vec<Row> = self
            .expectations
            .iter()
            .map(|e| Row {
                line: e.line,
                rule: describe_expectation(e),
                verdict: self.judge_expectation(e, now),
            })
            .collect();
        rows.extend(self.forbidden.iter().map(|f| Row {
            line: f.line,
            rule: describe_forbidden(f),
            verdict: self.judge_forbidden(f, now),
        }));
        rows
    }

    /// The final table when the run ends at `now`: anything still open fails.
    pub fn finish(&self, now: Duration) -> Report {
        let rows = self
            .verdicts(now)
            .into_iter()
            .map(|mut r| {
                if r.verdict == Verdict::Open {
                    r.verdict = Verdict::Fail(format!(
                        "the run ended at {} before this was decided",
                        humantime::format_duration(now)
                    ));
                }
                r
            })
            .collect();
        Report { rows }
    }

    fn judge_expectation(&self, e: &Expectation, now: Duration) -> Verdict {
        let mut candidates = self.observed.iter().filter(|a| {
            a.kind == e.alert
                && a.subject == e.subject
                && a.raised_at >= e.not_before
                && a.raised_at <= e.deadline
        });
        let Some(first) = candidates.clone().min_by_key(|a| a.raised_at) else {
            return if now >= e.deadline {
                Verdict::Fail(format!(
                    "not raised by {}",
                    humantime::format_duration(e.deadline)
                ))
            } else {
                Verdict::Open
            };
        };
        if let Some(want) = &e.severity {
            if !candidates.any(|a| &a.severity == want) {
                return Verdict::Fail(format!(
                    "raised at {} with severity {}, expected {want}",
                    humantime::format_duration(first.raised_at),
                    first.severity
                ));
            }
        }
        if e.escalated {
            let escalated = self.observed.iter().any(|a| {
                a.kind == e.alert
                    && a.subject == e.subject
                    && a.raised_at >= e.not_before
                    && a.escalations.iter().any(|&t| t <= e.deadline)
            });
            if !escalated {
                return if now >= e.deadline {
                    Verdict::Fail(format!(
                        "raised at {} but not escalated by {}",
                        humantime::format_duration(first.raised_at),
                        humantime::format_duration(e.deadline)
                    ))
                } else {
                    Verdict::Open
                };
            }
        }
        Verdict::Pass
    }

    fn judge_forbidden(&self, f: &Forbidden, now: Duration) -> Verdict {
        let offending = self.observed.iter().find(|a| {
            a.kind == f.alert
                && f.subject.as_ref().is_none_or(|s| s == &a.subject)
                && a.raised_at >= f.from
                && a.raised_at < f.until
        });
        match offending {
            Some(a) => Verdict::Fail(format!(
                "raised for {} at {}",
                a.subject,
                humantime::format_duration(a.raised_at)
            )),
            None if now >= f.until => Verdict::Pass,
            None => Verdict::Open,
        }
    }
}

fn describe_expectation(e: &Expectation) -> String {
    let mut s = format!("{} {}", e.alert, e.subject);
    if let Some(sev) = &e.severity {
        s.push_str(&format!(" ({sev})"));
    }
    s.push_str(&format!(" by {}", humantime::format_duration(e.deadline)));
    if e.escalated {
        s.push_str(", escalated");
    }
    s
}

fn describe_forbidden(f: &Forbidden) -> String {
    format!(
        "no {} {} in {}..{}",
        f.alert,
        f.subject.as_deref().unwrap_or("(any subject)"),
        humantime::format_duration(f.from),
        humantime::format_duration(f.until)
    )
}

/// The pass/fail table of a finished run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Report {
    pub rows: Vec<Row>,
}

impl Report {
    pub fn passed(&self) -> bool {
        self.rows.iter().all(|r| r.verdict == Verdict::Pass)
    }

    /// 0 when every expectation passed, 1 otherwise.
    pub fn exit_code(&self) -> u8 {
        u8::from(!self.passed())
    }
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for r in &self.rows {
            let (mark, why) = match &r.verdict {
                Verdict::Pass => ("PASS", String::new()),
                Verdict::Fail(why) => ("FAIL", format!(": {why}")),
                Verdict::Open => ("OPEN", String::new()),
            };
            writeln!(f, "{mark}  line {:>3}  {}{why}", r.line, r.rule)?;
        }
        let failed = self
            .rows
            .iter()
            .filter(|r| r.verdict != Verdict::Pass)
            .count();
        write!(f, "{} expectation(s), {failed} failed", self.rows.len())
    }
}

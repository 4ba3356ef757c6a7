//! Real against simulated statistics, with the tolerance each must meet.

use std::fmt;

use super::stats::{Statistics, TimeBlock};

/// How far the simulated value may be from the real one.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Tolerance {
    /// Relative to the real value (0.25 = ±25 %).
    Relative(f64),
    /// In the statistic's own unit.
    Absolute(f64),
}

impl Tolerance {
    fn admits(self, real: f64, sim: f64) -> bool {
        match self {
            Self::Relative(r) => (sim - real).abs() <= r * real.abs(),
            Self::Absolute(a) => (sim - real).abs() <= a,
        }
    }
}

impl fmt::Display for Tolerance {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Relative(r) => write!(f, "±{:.0}%", r * 100.0),
            Self::Absolute(a) => write!(f, "±{a}"),
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct ComparisonRow {
    pub statistic: String,
    pub real: f64,
    pub simulated: f64,
    pub tolerance: Tolerance,
}

impl ComparisonRow {
    pub fn within(&self) -> bool {
        self.tolerance.admits(self.real, self.simulated)
    }
}

/// The side-by-side table `vigil sim calibrate` prints.
#[derive(Debug, Clone, PartialEq)]
pub struct Comparison {
    pub real_days: usize,
    pub simulated_days: usize,
    pub rows: Vec<ComparisonRow>,
}

impl Comparison {
    pub fn failures(&self) -> impl Iterator<Item = &ComparisonRow> {
        self.rows.iter().filter(|r| !r.within())
    }
}

/// The stated tolerances: event rates ±25 %, median volumes ±25 %, 90th-percentile volumes
/// ±35 %, median durations ±40 %, time-of-day shares ±0.08, daily totals ±25 % (median),
/// ±40 % (90th percentile) and ±8 L (10th percentile), longest daytime dry stretch ±1.5 h,
/// share of days with a 3 h dry stretch ±0.10.
pub fn compare(real: &Statistics, sim: &Statistics) -> Comparison {
    let mut rows = Vec::new();
    let mut row = |statistic: String, r: f64, s: f64, tolerance| {
        rows.push(ComparisonRow {
            statistic,
            real: r,
            simulated: s,
            tolerance,
        })
    };
    for rf in &real.fixtures {
        let Some(sf) = sim.fixture(rf.fixture) else {
            continue;
        };
        let name = rf.fixture.name();
        row(
            format!("{name} events/day"),
            rf.events_per_day,
            sf.events_per_day,
            Tolerance::Relative(0.25),
        );
        row(
            format!("{name} volume p50 (L)"),
            rf.volume_p50_l,
            sf.volume_p50_l,
            Tolerance::Relative(0.25),
        );
        row(
            format!("{name} volume p90 (L)"),
            rf.volume_p90_l,
            sf.volume_p90_l,
            Tolerance::Relative(0.35),
        );
        // The toilet feed logs every flush as 360 s: its duration says nothing.
        if rf.fixture != crate::behaviour::Fixture::Toilet {
            row(
                format!("{name} duration p50 (s)"),
                rf.duration_p50_s,
                sf.duration_p50_s,
                Tolerance::Relative(0.4),
            );
        }
        for (i, block) in TimeBlock::ALL.iter().enumerate() {
            row(
                format!("{name} share {}", block.name()),
                rf.block_share[i],
                sf.block_share[i],
                Tolerance::Absolute(0.08),
            );
        }
    }
    // The 10th percentile sits on the edge of the days away (≈ 10 % of days, near 0 L), so
    // it gets an absolute tolerance.
    let total_tolerances = [
        ("p10", Tolerance::Absolute(8.0)),
        ("p50", Tolerance::Relative(0.25)),
        ("p90", Tolerance::Relative(0.4)),
    ];
    for (i, (label, tolerance)) in total_tolerances.into_iter().enumerate() {
        row(
            format!("daily total {label} (L)"),
            real.daily_total_l[i],
            sim.daily_total_l[i],
            tolerance,
        );
    }
    for (i, label) in ["p25", "p50", "p75"].iter().enumerate() {
        row(
            format!("longest dry 08-20h {label} (h)"),
            real.longest_dry_h[i],
            sim.longest_dry_h[i],
            Tolerance::Absolute(1.5),
        );
    }
    row(
        "days with a 3 h dry stretch".to_string(),
        real.share_days_dry_3h,
        sim.share_days_dry_3h,
        Tolerance::Absolute(0.1),
    );
    Comparison {
        real_days: real.days,
        simulated_days: sim.days,
        rows,
    }
}

impl fmt::Display for Comparison {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "{:<34} {:>10} {:>10} {:>9}  ok   (real: {} days, simulated: {} days)",
            "statistic", "real", "simulated", "tolerance", self.real_days, self.simulated_days
        )?;
        for r in &self.rows {
            writeln!(
                f,
                "{:<34} {:>10.2} {:>10.2} {:>9}  {}",
                r.statistic,
                r.real,
                r.simulated,
                r.tolerance.to_string(),
                if r.within() { "yes" } else { "NO" }
            )?;
        }
        Ok(())
    }
}

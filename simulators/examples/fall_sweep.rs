//! Sensitivity of the fall detector's figures to each threshold: moves one default at a
//! time and re-runs the SisFall evaluation at 50 Hz. A detector tuned for the physics
//! sits on a plateau; one tuned for the files sits on a peak.
//!
//! `cargo run --release -p vigil-sim --example fall_sweep`

use vigil_firmware::fall::FallConfig;
use vigil_sim::fall_eval::{default_data_dir, evaluate, AgeGroup};

fn show(name: &str, config: FallConfig) -> Result<(), vigil_sim::fall_eval::EvalError> {
    let e = evaluate(&default_data_dir(), 50, config)?;
    let (falls, young, elderly) = (
        e.falls(),
        e.daily_activities(AgeGroup::Young),
        e.daily_activities(AgeGroup::Elderly),
    );
    println!(
        "| {name} | {:.1} % | {:.1} % ({}) | {:.1} % ({}) |",
        100.0 * falls.vigil_alarmed_share(),
        100.0 * young.vigil_quiet_share(),
        young.vigil_trials_alarmed,
        100.0 * elderly.vigil_quiet_share(),
        elderly.vigil_trials_alarmed
    );
    Ok(())
}

fn main() -> Result<(), vigil_sim::fall_eval::EvalError> {
    let d = FallConfig::default();
    println!("| setting | sensitivity | young ADL trials quiet (alarmed) | elderly ADL trials quiet (alarmed) |");
    println!("|---|---|---|---|");
    show("defaults", d)?;
    for v in [1800, 2000, 2200, 2500] {
        show(&format!("impact_mg {v}"), FallConfig { impact_mg: v, ..d })?;
    }
    for v in [0, 100, 200, 300] {
        show(
            &format!("min_descent_mm_s {v}"),
            FallConfig {
                min_descent_mm_s: v,
                ..d
            },
        )?;
    }
    for v in [45, 50, 60, 65] {
        show(
            &format!("min_orientation_change_deg {v}"),
            FallConfig {
                min_orientation_change_deg: v,
                ..d
            },
        )?;
    }
    for v in [0, 30, 70] {
        show(
            &format!("min_still_pct {v}"),
            FallConfig {
                min_still_pct: v,
                ..d
            },
        )?;
    }
    for v in [30, 100] {
        show(
            &format!("still_band_mg {v}"),
            FallConfig {
                still_band_mg: v,
                ..d
            },
        )?;
    }
    for v in [2000, 4000] {
        show(
            &format!("observe_ms {v}"),
            FallConfig { observe_ms: v, ..d },
        )?;
    }
    for v in [500, 1500] {
        show(&format!("settle_ms {v}"), FallConfig { settle_ms: v, ..d })?;
    }
    Ok(())
}

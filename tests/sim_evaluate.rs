//! `vigil sim evaluate` as a process: a report on stdout, exit status 0, JSON for tools.

use std::process::{Command, Output};

fn sim_evaluate(threads: &str, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_vigil"))
        .args(["sim", "evaluate", "--households", "3", "--days", "10"])
        .args(["--warmup-days", "2", "--seed", "3", "--threads", threads])
        // No recordings there: the real-recording replay is skipped with a note.
        .args(["--data-dir", "/nonexistent/vigil-data"])
        .args(args)
        .output()
        .expect("vigil runs")
}

#[test]
fn the_report_is_a_table_with_the_verdict_on_the_targets_and_exit_status_zero() {
    let out = sim_evaluate("2", &[]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stdout}\n{stderr}");
    assert!(stdout.contains("| vigil default |"), "{stdout}");
    assert!(stdout.contains("| fixed < 10 L in 12 h |"), "{stdout}");
    assert!(stdout.contains("silent_emergency"), "{stdout}");
    assert!(
        stdout.contains("TARGETS MET") || stdout.contains("TARGETS NOT MET"),
        "{stdout}"
    );
    assert!(stderr.contains("real-recording replay skipped"), "{stderr}");
}

#[test]
fn json_output_carries_the_figures_and_is_the_same_for_the_same_seed() {
    let first = sim_evaluate("2", &["--json"]);
    assert!(first.status.success());
    let report: serde_json::Value =
        serde_json::from_slice(&first.stdout).expect("stdout is one JSON document");
    assert_eq!(report["setup"]["seed"], 3);
    assert!(report["real"].is_null());
    let sets = report["rule_sets"].as_array().expect("rule_sets");
    assert_eq!(sets.len(), 3);
    for set in sets {
        assert!(set["false_alerts_per_household_month"].is_number());
        let incidents = set["incidents"].as_array().expect("incidents");
        assert_eq!(incidents.len(), 5);
        assert!(incidents.iter().all(|i| i["injected"] == 3));
    }
    let again = sim_evaluate("1", &["--json"]);
    assert_eq!(
        first.stdout, again.stdout,
        "the thread count changes nothing"
    );
}

#[test]
fn a_run_too_short_for_its_incidents_is_refused() {
    let out = Command::new(env!("CARGO_BIN_EXE_vigil"))
        .args(["sim", "evaluate", "--households", "2", "--days", "20"])
        .output()
        .expect("vigil runs");
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("--days"), "{stderr}");
}

//! `vigil water-check` as a process: the contract evaluation tools in any language rely on.

use std::io::Write;
use std::process::{Command, Output, Stdio};

fn water_check(args: &[&str], stdin: &str) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_vigil"))
        .arg("water-check")
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("vigil starts");
    let mut input = child.stdin.take().expect("stdin");
    // A process that exits early on bad input closes its stdin: a write error is expected then.
    let _ = input.write_all(stdin.as_bytes());
    drop(input);
    child.wait_with_output().expect("vigil finishes")
}

/// 2024-05-06 00:00 in Europe/Rome (UTC+2).
const MIDNIGHT_ROME: i64 = 1_714_946_400;

fn series(minutes: impl IntoIterator<Item = (i64, f64)>) -> String {
    minutes
        .into_iter()
        .map(|(t, litres)| format!("{t},{litres}\n"))
        .collect()
}

#[test]
fn a_day_of_silence_raises_the_severe_backstop_and_a_use_clears_it() {
    // Data starts at midnight with a 20 L use, then 26 h of zero use, then a use.
    let start = MIDNIGHT_ROME;
    let mut minutes = vec![(start, 20.0)];
    minutes.extend((1..26 * 60).map(|k| (start + k * 60, 0.0)));
    minutes.push((start + 26 * 60 * 60, 5.0));
    let out = water_check(&["--timezone", "Europe/Rome"], &series(minutes));
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8(out.stdout).expect("utf-8");
    let raised_at = start + 60 + 24 * 3600;
    let cleared_at = start + 26 * 3600 + 60;
    assert_eq!(
        stdout,
        format!(
            "{raised_at},water_no_use_severe,raised,critical\n\
             {cleared_at},water_no_use_severe,cleared,critical\n"
        )
    );
}

#[test]
fn minutes_without_lines_are_missing_data_not_silence() {
    // The same 26 h, but the middle 6 h have no lines at all: nothing can be concluded.
    let start = MIDNIGHT_ROME;
    let mut minutes = vec![(start, 20.0)];
    minutes.extend(
        (1..26 * 60)
            .filter(|k| !(10 * 60..16 * 60).contains(k))
            .map(|k| (start + k * 60, 0.0)),
    );
    let out = water_check(&["--timezone", "Europe/Rome"], &series(minutes));
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(String::from_utf8_lossy(&out.stdout), "");
}

#[test]
fn a_tap_left_running_is_reported_with_its_rule_and_severity() {
    let start = MIDNIGHT_ROME + 8 * 3600;
    let minutes: Vec<_> = (0..130).map(|k| (start + k * 60, 6.0)).collect();
    let out = water_check(&["--timezone", "Europe/Rome"], &series(minutes));
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        format!("{},water_continuous_flow,raised,major\n", start + 120 * 60)
    );
}

#[test]
fn bad_input_is_a_clear_error_and_a_failure_exit_never_a_panic() {
    let cases = [
        (
            vec!["--timezone", "Europe/Rome"],
            "1714946400;3\n",
            "line 1",
        ),
        (
            vec!["--timezone", "Europe/Rome"],
            "1714946400,lots\n",
            "litres",
        ),
        (vec!["--timezone", "Europe/Rome"], "abc,1\n", "epoch"),
        (
            vec!["--timezone", "Europe/Rome"],
            "1714946400,-2\n",
            "volume",
        ),
        (
            vec!["--timezone", "Europe/Rome"],
            "1714946400,NaN\n",
            "volume",
        ),
        (
            vec!["--timezone", "Europe/Rome"],
            "1714946460,1\n1714946400,1\n",
            "time order",
        ),
        (
            vec!["--timezone", "Europe/Rome"],
            "1714946400,1\n1714946400,1\n",
            "time order",
        ),
        (vec!["--timezone", "Mars/Olympus"], "", "timezone"),
    ];
    for (args, input, expected) in cases {
        let out = water_check(&args, input);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{input:?}: {stderr}");
        assert!(stderr.contains(expected), "{input:?}: {stderr}");
        assert!(!stderr.contains("panicked"), "{input:?}: {stderr}");
    }
}

#[test]
fn a_missing_timezone_is_a_usage_error() {
    let out = water_check(&[], "");
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("--timezone"));
}

#[test]
fn an_empty_series_prints_nothing() {
    let out = water_check(&["--timezone", "America/Denver"], "");
    assert!(out.status.success());
    assert!(out.stdout.is_empty());
}

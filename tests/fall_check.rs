//! `vigil fall-check` as a process: the contract evaluation tools rely on.

use std::io::Write;
use std::process::{Command, Stdio};

use vigil_sim::fall_traces;

struct Run {
    code: Option<i32>,
    stdout: String,
    stderr: String,
}

fn fall_check(args: &[&str], input: &str) -> Run {
    let mut child = Command::new(env!("CARGO_BIN_EXE_vigil"))
        .arg("fall-check")
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("vigil starts");
    let mut stdin = child.stdin.take().expect("stdin");
    // The child may exit early on bad input; a broken pipe then is expected.
    let _ = stdin.write_all(input.as_bytes());
    drop(stdin);
    let output = child.wait_with_output().expect("vigil finishes");
    Run {
        code: output.status.code(),
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    }
}

fn csv(trace: &[[f64; 3]], rate_hz: u32) -> String {
    trace
        .iter()
        .enumerate()
        .map(|(i, g)| {
            format!(
                "{},{:.4},{:.4},{:.4}\n",
                i as u64 * 1000 / u64::from(rate_hz),
                g[0],
                g[1],
                g[2]
            )
        })
        .collect()
}

fn last_line(text: &str) -> &str {
    text.lines().last().unwrap_or("")
}

fn assert_no_panic(run: &Run) {
    assert!(!run.stderr.contains("panicked"), "panicked: {}", run.stderr);
}

#[test]
fn hard_fall_prints_fall_as_the_last_line_and_exits_zero() {
    for rate in [25u32, 50, 100, 200] {
        let run = fall_check(
            &["--rate", &rate.to_string()],
            &csv(&fall_traces::hard_fall_lying_still(rate), rate),
        );
        assert_eq!(run.code, Some(0), "{}", run.stderr);
        assert_eq!(
            last_line(&run.stdout),
            "FALL",
            "at {rate} Hz; stderr: {}",
            run.stderr
        );
        assert!(
            run.stderr.contains("Fall"),
            "details on stderr: {}",
            run.stderr
        );
    }
}

#[test]
fn lying_down_in_bed_prints_nofall() {
    let run = fall_check(
        &["--rate", "50"],
        &csv(&fall_traces::lying_down_in_bed(50), 50),
    );
    assert_eq!(run.code, Some(0), "{}", run.stderr);
    assert_eq!(last_line(&run.stdout), "NOFALL");
}

#[test]
fn empty_input_is_nofall() {
    let run = fall_check(&["--rate", "50"], "");
    assert_eq!(run.code, Some(0));
    assert_eq!(last_line(&run.stdout), "NOFALL");
}

#[test]
fn a_fall_cut_short_is_judged_on_what_is_there() {
    let trace = fall_traces::hard_fall_lying_still(50);
    // The impact is near 5.1 s: keep 1.8 s after it (0.7 s of observation).
    let cut = csv(&trace[..(6_900 / 20)], 50);
    let run = fall_check(&["--rate", "50"], &cut);
    assert_eq!(run.code, Some(0), "{}", run.stderr);
    assert_eq!(last_line(&run.stdout), "FALL", "stderr: {}", run.stderr);
}

#[test]
fn a_trace_ending_right_after_the_impact_is_undecided_and_nofall() {
    let trace = fall_traces::hard_fall_lying_still(50);
    let cut = csv(&trace[..(5_400 / 20)], 50);
    let run = fall_check(&["--rate", "50"], &cut);
    assert_eq!(run.code, Some(0), "{}", run.stderr);
    assert_eq!(last_line(&run.stdout), "NOFALL");
    assert!(run.stderr.contains("Undecided"), "stderr: {}", run.stderr);
}

#[test]
fn unparseable_line_is_a_clear_error_with_its_line_number() {
    let run = fall_check(&["--rate", "50"], "0,0,1,0\n20,0,1,zero\n");
    assert_ne!(run.code, Some(0));
    assert!(
        run.stderr.contains("line 2") && run.stderr.contains("az_g"),
        "stderr: {}",
        run.stderr
    );
    assert!(run.stdout.is_empty());
    assert_no_panic(&run);
}

#[test]
fn wrong_field_count_is_an_error() {
    let run = fall_check(&["--rate", "50"], "0,0,1\n");
    assert_ne!(run.code, Some(0));
    assert!(run.stderr.contains("expected 4"), "stderr: {}", run.stderr);
    assert_no_panic(&run);
}

#[test]
fn non_finite_values_are_errors() {
    for bad in [
        "0,NaN,1,0\n",
        "0,0,inf,0\n",
        "inf,0,1,0\n",
        "0,0,1,-infinity\n",
    ] {
        let run = fall_check(&["--rate", "50"], bad);
        assert_ne!(run.code, Some(0), "{bad:?} was accepted");
        assert!(run.stderr.contains("line 1"), "stderr: {}", run.stderr);
        assert_no_panic(&run);
    }
}

#[test]
fn time_going_backwards_or_negative_is_an_error() {
    let run = fall_check(&["--rate", "50"], "40,0,1,0\n20,0,1,0\n");
    assert_ne!(run.code, Some(0));
    assert!(run.stderr.contains("line 2"), "stderr: {}", run.stderr);
    let run = fall_check(&["--rate", "50"], "-20,0,1,0\n");
    assert_ne!(run.code, Some(0));
    assert_no_panic(&run);
}

#[test]
fn huge_accelerations_saturate_instead_of_failing() {
    let input: String = (0..500)
        .map(|i| format!("{},1e300,-1e300,0\n", i * 20))
        .collect();
    let run = fall_check(&["--rate", "50"], &input);
    assert_eq!(run.code, Some(0), "{}", run.stderr);
    assert_no_panic(&run);
}

#[test]
fn bad_rates_are_refused() {
    for rate in ["0", "-50", "abc", "50.5", "1001", "NaN", "inf"] {
        let run = fall_check(&["--rate", rate], "0,0,1,0\n");
        assert_ne!(run.code, Some(0), "rate {rate} was accepted");
        assert!(run.stderr.contains("rate"), "stderr: {}", run.stderr);
        assert_no_panic(&run);
    }
    let run = fall_check(&[], "0,0,1,0\n");
    assert_ne!(run.code, Some(0), "--rate is required");
}

#[test]
fn windows_line_endings_and_blank_lines_are_accepted() {
    let trace = csv(&fall_traces::hard_fall_lying_still(50), 50).replace('\n', "\r\n") + "\r\n";
    let run = fall_check(&["--rate", "50.0"], &trace);
    assert_eq!(run.code, Some(0), "{}", run.stderr);
    assert_eq!(last_line(&run.stdout), "FALL");
}

#[test]
fn real_sisfall_recordings_through_the_command() {
    let dir = vigil_sim::fall_eval::default_data_dir();
    if !dir.is_dir() {
        eprintln!(
            "SKIPPED: SisFall data not found at {} (set VIGIL_DATA_DIR)",
            dir.display()
        );
        return;
    }
    for (file, expected) in [
        ("SA01/F01_SA01_R01.txt", "FALL"),
        ("SA02/F09_SA02_R01.txt", "FALL"),
        ("SA01/D19_SA01_R01.txt", "NOFALL"),
        ("SE01/D11_SE01_R01.txt", "NOFALL"),
    ] {
        let samples = vigil_sim::fall_eval::load_trial(&dir.join(file)).expect("readable");
        let trace = vigil_sim::fall_eval::resample(&samples, 200.0, 50.0);
        let run = fall_check(&["--rate", "50"], &csv(&trace, 50));
        assert_eq!(run.code, Some(0), "{file}: {}", run.stderr);
        assert_eq!(last_line(&run.stdout), expected, "{file}: {}", run.stderr);
    }
}
